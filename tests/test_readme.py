"""The Python blocks of the README and of the user guide run verbatim, in order,
as a reader would paste them."""

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_blocks(path, tmp_path_factory):
    """Run every Python block of ``path`` in one namespace, in a scratch folder,
    with a scratch cache."""
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)
    folder = tmp_path_factory.mktemp(path.stem)
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    mp.setenv("SKLYAP_CACHE_DIR", str(folder / "cache"))
    namespace = {"__name__": path.stem}
    try:
        for block in blocks:
            exec(compile(block, str(path), "exec"), namespace)
    finally:
        mp.undo()
    return blocks, namespace


@pytest.fixture(scope="module")
def readme_namespace(tmp_path_factory):
    pytest.importorskip("optuna")
    blocks, namespace = run_blocks(ROOT / "README.md", tmp_path_factory)
    assert len(blocks) == 3, "the README's quickstart has three examples"
    return namespace


def test_first_example_measures_the_lstm_as_pytorch_lays_out_its_inputs(readme_namespace):
    ns = readme_namespace
    result = ns["result"]
    # (500, 8, 3) for an LSTM with batch_first=False: 8 trajectories of 500 steps.
    assert result.n_trajectories == 8 and result.warmup == 100
    assert result.exponents.shape == (128,)
    assert np.all(np.diff(result.exponents) <= 0) and result.exponents[0] < 0
    assert ns["X"].shape == (3, 32)


def test_pipeline_example_cross_validates_and_embeds(readme_namespace):
    ns = readme_namespace
    assert len(ns["models"]) == 12
    assert np.all((ns["accuracy"] >= 0) & (ns["accuracy"] <= 1))
    # Mean absolute errors of accuracies in [0, 1], one per fold.
    assert ns["scores"].shape == (3,) and np.all((ns["scores"] <= 0) & (ns["scores"] >= -1))
    assert ns["embedding"].shape == (12, 8) and np.isfinite(ns["embedding"]).all()


def test_pruning_example_runs_an_optuna_study_with_spectra(readme_namespace):
    import optuna

    ns = readme_namespace
    trials = ns["study"].get_trials()
    assert len(trials) == 6
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert all(t.state in done for t in trials)
    for t in trials:
        record = t.user_attrs["sklyap_spectrum"]
        assert record["step"] == 1 and len(record["spectrum"]) == 32
        assert record["architecture"][0] == t.params["cell"]
    # Every trial was judged at its spectrum's step, or the pruner said why not.
    decisions = ns["study"].pruner.decisions_
    assert [d["trial"] for d in decisions] == list(range(6))
    assert all((d["by"] is None) == (d["reason"] is not None) for d in decisions)
    # Fewer than 3 finished trials and than the prior's 5 spectra: nobody judges.
    assert all(d["by"] is None for d in decisions[:3])


def test_models_guide_round_trips_a_checkpoint_and_a_sweep_table(tmp_path_factory):
    pytest.importorskip("pandas")
    blocks, ns = run_blocks(ROOT / "docs" / "models.md", tmp_path_factory)
    assert len(blocks) == 2
    model = ns["model"]
    assert type(model).__name__ == "LSTM" and model.num_layers == 2 and model.hidden_size == 32
    predicted = ns["predictor"].predict(ns["sweep"])
    assert predicted.shape == (12,) and np.isfinite(predicted).all()


def test_computation_guide_measures_a_small_sweep(tmp_path_factory):
    blocks, ns = run_blocks(ROOT / "docs" / "computation.md", tmp_path_factory)
    assert len(blocks) == 1
    assert len(ns["models"]) == 12 and ns["X"].shape == (12, 32)
    assert ns["kept"].sum() >= 10
