"""The AeLLE study and the command line that runs it, on a small population."""

import json

import numpy as np
import pytest

from sklyap.__main__ import main
from sklyap.study import run_aelle_study, top_quartile_precision

pytest.importorskip("matplotlib")

SMALL = ["--n-models", "8", "--epochs", "2", "--max-train", "200", "--n-splits", "2", "--quiet"]


def test_top_quartile_precision_counts_the_overlap():
    y = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6])  # top quarter: items 0 and 1
    assert top_quartile_precision(y, y) == 1.0
    assert top_quartile_precision(y, -y) == 0.0
    assert top_quartile_precision(y, np.array([1, 0, 0, 0, 0, 0, 0, 2.0])) == 0.5


def test_study_reports_every_predictor_with_consistent_scores(tmp_path):
    result = run_aelle_study(n_models=8, n_epochs=2, max_train=200, n_splits=2, n_images=20,
                             cache_dir=tmp_path, verbose=0)  # fmt: skip
    predictors = [(r["spectra"], r["predictor"]) for r in result.rows]
    assert len(predictors) == 9 and predictors[-1] == ("early (ep 1)", "validation accuracy at epoch 1")
    assert result.spectra["final"].shape == result.spectra["early"].shape == (8, 32)
    assert not np.array_equal(result.spectra["final"], result.spectra["early"])
    assert not np.array_equal(result.spectra["final"], result.spectra["final_novel"])
    from sklearn.metrics import r2_score

    aelle_final = result.rows[0]
    assert aelle_final["predictor"] == "AeLLE"
    assert aelle_final["r2"] == pytest.approx(r2_score(result.y, result.predictions["final"]))
    assert result.generalisation["same_inputs_r2"] == pytest.approx(aelle_final["r2"])
    assert result.embedding.shape == (8, 4)
    assert "Generalisation to novel inputs" in result.table()
    assert json.loads(result.to_json())["settings"]["n_models"] == 8


def test_command_line_demo_writes_table_json_and_figures(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["demo", *SMALL, "--output", str(out), "--cache-dir", str(tmp_path / "c")]) == 0
    printed = capsys.readouterr().out
    assert "ridge on SpectrumStatistics" in printed and "AeLLE" in printed
    for name in ("results.json", "spectra.png", "embedding.png", "predicted_vs_true.png"):
        assert (out / name).stat().st_size > 100, name
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 9


def test_command_line_errors(capsys):
    assert main([]) == 2
    with pytest.raises(SystemExit):
        main(["demo", "--device", "tpu", *SMALL])
    assert "unknown device 'tpu'" in capsys.readouterr().err


def test_spectra_command(capsys):
    assert main(["spectra", "--hidden-size", "4", "--n-steps", "30", "--warmup", "10",
                 "--n-trajectories", "2", "--quiet"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "LSTM x4" in printed and "lambda_1" in printed
