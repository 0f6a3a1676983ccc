"""The README's Python blocks run verbatim, in order, as a reader would paste them."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def readme_namespace(tmp_path_factory):
    """Run every block in one namespace, in a scratch folder, with a scratch cache."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 4, "the README lost its python examples"
    folder = tmp_path_factory.mktemp("readme")
    mp = pytest.MonkeyPatch()
    mp.chdir(folder)
    mp.setenv("SKLYAP_CACHE_DIR", str(folder / "cache"))
    namespace = {"__name__": "readme"}
    try:
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    finally:
        mp.undo()
    return namespace


def test_first_example_measures_the_lstm_as_pytorch_lays_out_its_inputs(readme_namespace):
    ns = readme_namespace
    result = ns["result"]
    # (500, 8, 3) for an LSTM with batch_first=False: 8 trajectories of 500 steps.
    assert result.n_trajectories == 8 and result.warmup == 100
    assert result.exponents.shape == (128,)
    assert np.all(np.diff(result.exponents) <= 0) and result.exponents[0] < 0
    assert ns["X"].shape[1] == 32


def test_sweep_example_fits_on_every_measured_network(readme_namespace):
    ns = readme_namespace
    assert len(ns["models"]) == 12 and ns["X"].shape == (12, 32)
    assert ns["kept"].sum() >= 10
    assert np.all((ns["accuracy"] >= 0) & (ns["accuracy"] <= 1))


def test_checkpoint_example_round_trips_the_spectrum(readme_namespace):
    model = readme_namespace["model"]
    assert type(model).__name__ == "LSTM" and model.num_layers == 2 and model.hidden_size == 32


def test_sweep_table_example_predicts_from_the_model_column(readme_namespace):
    ns = readme_namespace
    predicted = ns["predictor"].predict(ns["sweep"])
    assert predicted.shape == (12,) and np.isfinite(predicted).all()


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
    # Trials after the 3 startup trials were judged by the spectrum, or said why not.
    decisions = ns["study"].pruner.decisions_
    assert [d["trial"] for d in decisions] == list(range(6))
    assert all(d["reason"] is not None for d in decisions[:3])
