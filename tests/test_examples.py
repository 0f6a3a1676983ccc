"""Every example script runs, with small settings, and writes its figure."""

import runpy
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = {
    "plot_spectrum_vs_gain.py": ["--hidden-size", "6", "--n-steps", "40", "--warmup", "10"],
    "plot_training_spectra.py": ["--epochs", "2", "--hidden-size", "8", "--n-images", "12"],
    "plot_early_selection.py": [
        "--n-pilot",
        "12",
        "--n-fresh",
        "6",
        "--epochs",
        "2",
        "--max-train",
        "200",
        "--n-images",
        "12",
    ],
    "plot_optuna_pruning.py": [
        "--n-trials",
        "8",
        "--n-startup",
        "3",
        "--epochs",
        "2",
        "--max-train",
        "200",
        "--n-images",
        "12",
    ],
    "plot_aelle_population.py": [
        "--n-models",
        "6",
        "--epochs",
        "2",
        "--max-train",
        "200",
        "--n-images",
        "12",
    ],
}


def test_every_example_has_small_settings():
    assert sorted(p.name for p in EXAMPLES.glob("plot_*.py")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    out = tmp_path / "figure.png"
    monkeypatch.setenv("SKLYAP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", [name, *SMALL[name], "--out", str(out)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert out.stat().st_size > 10_000
    assert f"saved {out}" in capsys.readouterr().out
