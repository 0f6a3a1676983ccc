"""Early selection in a sweep: successive halving, the policies' outcomes, the command."""

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from sklyap.__main__ import main
from sklyap.study import population_features, run_sweep
from sklyap.study._sweep import _outcome, successive_halving

from helpers import tiny_task


def test_successive_halving_keeps_the_best_of_each_rung_and_counts_its_epochs():
    # 9 candidates, 9 epochs, factor 3: rungs after epochs 1, 3 and 9 with 9, 3
    # and 1 candidates. Candidate i's accuracy after epoch e is i/10 until epoch
    # 2; from epoch 3 candidate 6 overtakes 7 and 8.
    curves = np.tile(np.arange(9)[:, None] / 10, (1, 9))
    curves[6, 2:] = 0.95
    kept, epochs = successive_halving(curves, range(9), min_epochs=1, factor=3)
    assert kept.tolist() == [6]
    # 9 candidates x 1 epoch, 3 resume to epoch 3, 1 to epoch 9; nothing left to train.
    assert epochs == 9 * 1 + 3 * 2 + 1 * 6
    # 8 candidates need only 2 rungs (1 + floor(log3 8)): the 3 best after epoch
    # 1 are kept, trained on from epoch 3 to 9.
    kept, epochs = successive_halving(
        curves[[0, 1, 2, 3, 4, 5, 7, 8]], range(8), min_epochs=1, factor=3
    )
    assert sorted(kept.tolist()) == [5, 6, 7] and epochs == 8 * 1 + 3 * 2 + 3 * 6
    # Candidates of a rung beyond the last epoch are trained on to it: 4 epochs,
    # factor 2 gives rungs 1, 2, 4 with 4, 2, 1 candidates.
    kept, epochs = successive_halving(
        np.tile(np.arange(4)[:, None], (1, 4)), range(4), min_epochs=1, factor=2
    )
    assert kept.tolist() == [3] and epochs == 4 + 2 * 1 + 1 * 2
    # First scores rank the first rung instead of the accuracy after epoch 1:
    # they put candidates 0, 1 and 2 ahead, of which the accuracy keeps 2.
    first = np.array([0.9, 0.8, 0.7, 0, 0, 0, 0, 0, 0])
    kept, epochs = successive_halving(curves, range(9), min_epochs=1, factor=3, first_scores=first)
    assert kept.tolist() == [2] and epochs == 9 * 1 + 3 * 2 + 1 * 6


def test_outcome_of_a_policy_known_answers():
    final = np.array([0.5, 0.9, 0.2, 0.8, 0.1, 0.3, 0.4, 0.6, 0.7, 0.05, 0.15, 0.25])
    # Top 10% of 12 candidates: the 2 best (ceil(1.2)), candidates 1 and 3.
    outcome = _outcome(final, np.array([3, 0, 2]), epochs=30, n_epochs=5)
    assert outcome == {
        "regret": pytest.approx(0.1),
        "top10_recall": 0.5,
        "epochs_fraction": 0.5,
        "kept_fraction": 0.25,
    }
    assert _outcome(final, np.array([1]), epochs=60, n_epochs=5)["regret"] == 0.0
    # A kept candidate tied with the last of the top 10% counts as one of them.
    tied = np.array([0.9, 0.8, 0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.05, 0.15])
    assert _outcome(tied, np.array([2, 0]), epochs=12, n_epochs=1)["top10_recall"] == 1.0
    assert _outcome(tied, np.array([2, 1, 5]), epochs=12, n_epochs=1)["top10_recall"] == 1.0
    assert _outcome(tied, np.array([3, 2]), epochs=12, n_epochs=1)["top10_recall"] == 0.5


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    settings = {"n_pilot": 12, "n_candidates": 10, "n_models": 24, "cache_dir": cache}
    result = run_sweep(
        tiny_task(n_epochs=4), keep=0.3, n_draws=3, predictor=Ridge(), verbose=0, **settings
    )
    return result, settings


def test_sweep_policies_cost_what_they_train_and_find_what_they_keep(sweep):
    result, settings = sweep
    rows = {r["policy"]: r for r in result.rows}
    assert list(rows) == [
        "epoch-1 validation accuracy",
        "Ridge on epoch-1 spectra",
        "Ridge on epoch-1 spectra + accuracy",
        "random",
        "successive halving (HalvingGridSearchCV)",
        "successive halving, first rung by Ridge on spectra + accuracy",
    ]
    # Every candidate trains 1 of 4 epochs, the 3 kept (30% of 10) the other 3.
    for name in list(rows)[:4]:
        assert rows[name]["epochs_fraction_per_repeat"] == pytest.approx([(10 + 3 * 3) / 40] * 3)
        assert rows[name]["kept_fraction"] == pytest.approx(0.3)
        assert all(r >= 0 for r in rows[name]["regret_per_repeat"])
    # Every policy recomputed from the population on each draw: the predictor
    # learns from the pilot alone, the search runs on the candidates' curves.
    _, features, population = population_features(
        tiny_task(n_epochs=4), n_models=24, cache_dir=settings["cache_dir"], verbose=0
    )
    rng = np.random.RandomState(0)
    final = population.test_accuracy[:, -1]
    expected = {name: [] for name in rows}
    for _ in range(3):
        order = rng.permutation(24)
        pilot, candidates = order[:12], order[12:22]
        scores = {
            "epoch-1 validation accuracy": features["accuracy"][candidates, 0],
            "random": rng.permutation(10),
        }
        for name, key in [("spectra", "early"), ("spectra + accuracy", "early+accuracy")]:
            model = Ridge().fit(features[key][pilot], final[pilot])
            scores[f"Ridge on epoch-1 {name}"] = model.predict(features[key][candidates])
        for name, score in scores.items():
            kept = candidates[np.argsort(-score, kind="stable")[:3]]
            expected[name].append(final[candidates].max() - final[kept].max())
        for name, first in [
            ("successive halving (HalvingGridSearchCV)", None),
            (
                "successive halving, first rung by Ridge on spectra + accuracy",
                scores["Ridge on epoch-1 spectra + accuracy"],
            ),
        ]:
            kept, _ = successive_halving(
                population.val_accuracy[candidates],
                range(10),
                min_epochs=1,
                factor=3,
                first_scores=first,
            )
            expected[name].append(final[candidates].max() - final[candidates[kept]].max())
    for name in rows:
        assert rows[name]["regret_per_repeat"] == pytest.approx(expected[name]), name
    # The paired comparisons against the early accuracy, from the same draws.
    names = list(rows)
    pairs = [(names[1], names[0]), (names[2], names[0]), (names[5], names[4])]
    assert len(result.comparisons()) == 3
    for comparison, (name, against) in zip(result.comparisons(), pairs):
        assert (comparison["policy"], comparison["against"]) == (name, against)
        d = np.array(expected[name]) - np.array(expected[against])
        assert comparison["regret_difference"] == pytest.approx(d.mean())
        assert comparison["regret_better"] == int((d < -1e-12).sum())
        assert comparison["regret_equal"] == int((abs(d) <= 1e-12).sum())
    # Keeping everything finds the best and costs all the epochs.
    full = run_sweep(
        tiny_task(n_epochs=4), keep=1.0, n_draws=2, predictor=Ridge(), verbose=0, **settings
    )
    for row in full.rows[:4]:
        assert row["regret"] == 0.0 and row["top10_recall"] == 1.0
        assert row["epochs_fraction"] == pytest.approx(1.0)


def test_sweep_is_deterministic_for_a_seed_and_its_json_reads_back(sweep):
    result, settings = sweep
    again = run_sweep(
        tiny_task(n_epochs=4), keep=0.3, n_draws=3, predictor=Ridge(), verbose=0, **settings
    )
    assert again.rows == result.rows and again.curves == result.curves
    payload = json.loads(result.to_json())
    assert payload["settings"]["n_candidates"] == 10 and payload["settings"]["keep"] == 0.3
    # 4 policies x 5 fractions (0.3 among them), and 2 searches x 3 factors.
    assert len(payload["curves"]) == 4 * 5 + 2 * 3
    assert "| successive halving (HalvingGridSearchCV) |" in result.markdown()
    assert "regret" in result.table() and "mean ± std over draws" in result.table()
    assert (
        "Ridge on epoch-1 spectra - epoch-1 validation accuracy: top-10% recall" in result.table()
    )
    assert payload["comparisons"] == json.loads(json.dumps(result.comparisons()))


def test_sweep_takes_numpy_fractions_and_warns_when_halving_cannot_halve(sweep):
    _, settings = sweep
    result = run_sweep(
        tiny_task(n_epochs=4),
        keep=np.float32(0.3),
        n_draws=2,
        predictor=Ridge(),
        verbose=0,
        **settings,
    )
    assert result.rows[0]["kept_fraction"] == pytest.approx(0.3)
    with pytest.warns(UserWarning, match="at factor 5 has one iteration and keeps every candidate"):
        run_sweep(
            tiny_task(n_epochs=4), factor=5, n_draws=2, predictor=Ridge(), verbose=0, **settings
        )


def test_sweep_command_refuses_bad_options(capsys):
    for option, value, expected in [
        ("--keep", "2", "expected a fraction in (0, 1], got 2"),
        ("--keep", "some", "expected a fraction in (0, 1], got 'some'"),
        ("--factor", "1", "expected an integer >= 2, got 1"),
        ("--task", "mnist", "invalid choice: 'mnist'"),
    ]:
        with pytest.raises(SystemExit):
            main(["sweep", option, value])
        assert expected in capsys.readouterr().err


def test_sweep_refuses_bad_settings_before_training():
    for bad, error in [
        (0, ValueError),
        (1.5, ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
        ("0.1", TypeError),
    ]:
        with pytest.raises(error, match=f"keep must be a float in \\(0, 1\\], got {bad!r}"):
            run_sweep("digits", keep=bad)
    with pytest.raises(ValueError, match="n_pilot \\+ n_candidates = 30 networks, more than"):
        run_sweep("digits", n_pilot=20, n_candidates=10, n_models=25)
    with pytest.raises(ValueError, match="n_models=200; pass a larger n_models to train more"):
        run_sweep("digits", n_pilot=150, n_candidates=100)
    with pytest.raises(TypeError, match="predictor must be a scikit-learn regressor"):
        run_sweep("digits", predictor="ridge")
    with pytest.raises(ValueError, match="factor must be an int >= 2, got 1"):
        run_sweep("digits", factor=1)
    with pytest.raises(ValueError, match="unknown task 'mnist'"):
        run_sweep("mnist")


@pytest.mark.slow
def test_sweep_command_writes_table_json_and_figure(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["sweep", "--task", "digits", "--n-models", "16", "--n-pilot", "8"]
    args += ["--n-candidates", "8", "--n-draws", "2", "--epochs", "3", "--max-train", "200"]
    args += ["--output", str(out), "--cache-dir", str(tmp_path / "c"), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "successive halving (HalvingGridSearchCV)" in printed
    (payload,) = json.loads((out / "results.json").read_text())
    assert payload["settings"]["task"] == "digits" and len(payload["rows"]) == 6
    assert (out / "regret.png").stat().st_size > 10_000
    assert "| policy | keeps | regret |" in (out / "results.md").read_text()
