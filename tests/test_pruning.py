"""LyapunovPruner in Optuna studies: decisions by hand, no leakage, several processes."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from sklearn.linear_model import LinearRegression

from sklyap._early import prior_features, within_ranks
from sklyap.callbacks import LyapunovPruning
from sklyap.selection import STARTUP_PRIOR, LyapunovPruner, StartupPrior, report_spectrum
from sklyap.study._replay import outcome, replay_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


def recorded(n=40, n_epochs=3, seed=0):
    """Networks whose final accuracy the spectrum's first value decides,
    while their epoch-1 accuracy is noise."""
    rng = np.random.default_rng(seed)
    spectra = rng.normal(size=(n, 4))
    final = 0.5 + 0.1 * np.tanh(spectra[:, 0])
    curves = np.empty((n, n_epochs))
    curves[:, 0] = 0.3 + 0.01 * rng.random(n)
    curves[:, 1:] = np.linspace(0.4, 1.0, n_epochs - 1) * final[:, None]
    return spectra, curves


def test_decisions_recomputed_by_hand():
    spectra, curves = recorded()
    pruner = LyapunovPruner(
        LinearRegression(),
        n_startup_trials=8,
        quantile=0.5,
        confidence=0.0,
        refit_growth=0.0,
        prior=None,
    )
    run = replay_study(pruner, np.arange(40), curves, spectra=spectra)
    study = run["study"]
    trials = {t.number: t for t in study.get_trials()}
    judged = [d for d in pruner.decisions_ if d["reason"] is None]
    assert len(judged) == 40 - 8
    for decision in judged:
        fitted_on = decision["fitted_on"]
        X = np.column_stack([spectra[fitted_on], curves[fitted_on, 0]])
        y = curves[fitted_on, -1]
        # Trials number i replay network i (the order is 0..n-1).
        model = LinearRegression().fit(X, y)
        i = decision["trial"]
        predicted = model.predict(np.r_[spectra[i], curves[i, 0]][None])[0]
        bar = np.median(y)
        np.testing.assert_allclose(decision["predicted"], predicted, rtol=1e-10)
        np.testing.assert_allclose(decision["bar"], bar, rtol=1e-12)
        assert decision["spread"] == 0.0
        assert decision["pruned"] == (predicted < bar)
        expected = (
            optuna.trial.TrialState.PRUNED if predicted < bar else optuna.trial.TrialState.COMPLETE
        )
        assert trials[i].state == expected
    # Sequential and refitted every time: exactly the trials finished before it.
    for decision in judged:
        i = decision["trial"]
        finished = [j for j in range(i) if trials[j].state == optuna.trial.TrialState.COMPLETE]
        assert decision["fitted_on"] == finished
    # The spectrum decides here: everything pruned was truly below the median of the
    # population, and the best network was kept.
    assert run["completed"] and max(n for _, n in run["completed"]) is not None
    kept = [n for _, n in run["completed"]]
    assert int(np.argmax(curves[:, -1])) in kept
    assert len(run["pruned"]) >= 10


def test_no_finished_trial_is_used_before_it_finishes():
    """With 4 workers, trials finish out of order; a fit may use only trials
    complete at the time of the decision, never running ones."""
    spectra, curves = recorded(n=60, n_epochs=4, seed=1)
    pruner = LyapunovPruner(LinearRegression(), n_startup_trials=6, refit_growth=0.0, prior=None)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    running, finished, checked = [], set(), 0
    order = iter(range(60))
    while True:
        while len(running) < 4 and (i := next(order, None)) is not None:
            running.append([study.ask(), i, 0])
        if not running:
            break
        still = []
        for item in running:
            trial, i, epoch = item
            item[2] = epoch = epoch + 1
            if epoch == 1:
                trial.set_user_attr(
                    "sklyap_spectrum",
                    {
                        "step": 1,
                        "spectrum": spectra[i].tolist(),
                        "architecture": None,
                        "size": None,
                    },
                )
            trial.report(float(curves[i, epoch - 1]), epoch)
            n_decisions = len(pruner.decisions_)
            pruned = trial.should_prune()
            if len(pruner.decisions_) > n_decisions and pruner.decisions_[-1]["reason"] is None:
                fitted = set(pruner.decisions_[-1]["fitted_on"])
                assert fitted == finished, (trial.number, fitted ^ finished)
                checked += 1
            if pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif epoch == curves.shape[1]:
                study.tell(trial, float(curves[i, -1]))
                finished.add(trial.number)
            else:
                still.append(item)
        running = still
    assert checked >= 20


def test_prior_features_are_ranks_within_the_trials():
    spectra = [[1.0, 0.0], [3.0, -1.0], [2.0, 2.0]]
    # Scores 0.5, 0.1, 0.9; largest 1, 3, 2; means 0.5, 1, 2; smallest 0, -1, 2.
    got = prior_features(spectra, [0.5, 0.1, 0.9])
    expected = [[0.5, 0.0, 0.0, 0.5], [0.0, 1.0, 0.5, 0.0], [1.0, 0.5, 1.0, 1.0]]
    np.testing.assert_array_equal(got, expected)
    assert within_ranks([2.0, 2.0, 1.0]).tolist() == [0.75, 0.75, 0.0]
    assert within_ranks([4.0]).tolist() == [0.5]


def test_startup_prior_is_ridge_regression_on_ranks():
    rng = np.random.default_rng(3)
    populations = []
    for n in (30, 50):
        spectra = rng.normal(size=(n, 5))
        scores = rng.random(n)
        finals = scores + 0.3 * spectra.mean(axis=1) + 0.1 * rng.normal(size=n)
        populations.append((spectra, scores, finals))
    X = np.vstack([prior_features(s, e) for s, e, _ in populations])
    y = np.concatenate([within_ranks(f) for _, _, f in populations])
    A = np.column_stack([np.ones(len(X)), X])
    solution, *_ = np.linalg.lstsq(A, y, rcond=None)
    prior = StartupPrior.fit(populations, alpha=0.0)
    np.testing.assert_allclose([prior.intercept, *prior.coef], solution, rtol=1e-9, atol=1e-12)
    assert prior.spread == pytest.approx(np.std(y - A @ solution), rel=1e-9)
    np.testing.assert_allclose(prior.predict(X), A @ solution, rtol=1e-9)
    # The early score and the mean exponent decide the final rank here.
    assert prior.coef[0] > 0.3 and prior.coef[2] > 0.1
    # The penalty shrinks the coefficients, not the intercept.
    ridge = StartupPrior.fit(populations, alpha=100.0)
    assert np.linalg.norm(ridge.coef) < np.linalg.norm(prior.coef)
    # Plain numbers, through JSON and back.
    again = StartupPrior.from_dict(json.loads(json.dumps(prior.to_dict())))
    assert again == prior


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"coef": (1.0, 2.0)}, "coef must be 4 finite numbers"),
        ({"coef": (1.0, 2.0, np.nan, 0.0)}, "coef must be 4 finite numbers"),
        ({"spread": -0.1}, "spread must be a finite number >= 0, got -0.1"),
        ({"intercept": np.inf}, "intercept must be finite, got inf"),
        ({"min_trials": 1}, "min_trials must be an int >= 2, got 1"),
    ],
)
def test_startup_prior_refuses_bad_numbers(kwargs, match):
    values = {"intercept": 0.1, "coef": (0.5, 0.0, 0.0, 0.0), "spread": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        StartupPrior(**values)


def _prior_study(curves, spectra, direction, prior, quantile=0.5):
    """A sequential study of networks 0..n-1 in which only the prior can decide."""
    sign = 1.0 if direction == "maximize" else -1.0
    pruner = LyapunovPruner(n_startup_trials=100, quantile=quantile, prior=prior)
    study = optuna.create_study(direction=direction, pruner=pruner)
    for i in range(len(curves)):
        trial = study.ask()
        trial.set_user_attr(
            "sklyap_spectrum",
            {"step": 1, "spectrum": spectra[i].tolist(), "architecture": None, "size": None},
        )
        for epoch in range(1, curves.shape[1] + 1):
            trial.report(sign * float(curves[i, epoch - 1]), epoch)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, sign * float(curves[i, -1]))
    return pruner, study


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_prior_decisions_recomputed_by_hand(direction):
    spectra, curves = recorded()
    prior = StartupPrior(intercept=0.1, coef=(0.6, 0.1, 0.2, 0.0), spread=0.1, min_trials=3)
    pruner, study = _prior_study(curves, spectra, direction, prior)
    trials = study.get_trials()
    assert [d["trial"] for d in pruner.decisions_] == list(range(40))
    for decision in pruner.decisions_:
        i = decision["trial"]
        if i < 2:  # fewer than min_trials with a spectrum and a score at step 1
            assert decision["by"] is None and decision["pruned"] is False
            continue
        # Every trial so far reported at step 1, pruned or not: ranked among them,
        # the better early score ranking higher whichever the direction.
        ranks = prior_features(spectra[: i + 1], curves[: i + 1, 0])[i]
        predicted = 0.1 + ranks @ [0.6, 0.1, 0.2, 0.0]
        assert decision["by"] == "prior" and decision["fitted_on"] == []
        assert decision["predicted"] == pytest.approx(predicted, rel=1e-12)
        assert decision["pruned"] == (predicted + 0.1 < 0.5)
        pruned = trials[i].state == optuna.trial.TrialState.PRUNED
        assert pruned == decision["pruned"]
        assert not pruned or len(trials[i].intermediate_values) == 1
    assert 5 <= sum(d["pruned"] for d in pruner.decisions_) <= 30


def test_prior_reads_no_final_value():
    """The prior ranks what trials showed at the early step: changing what they
    finish at changes none of its decisions, while the regressor's change."""
    spectra, curves = recorded()
    changed = curves.copy()
    changed[:, 1:] = curves[::-1, 1:]
    runs = [_prior_study(c, spectra, "maximize", STARTUP_PRIOR)[0] for c in (curves, changed)]
    assert [d["predicted"] for d in runs[0].decisions_] == [
        d["predicted"] for d in runs[1].decisions_
    ]
    assert any(d["pruned"] for d in runs[0].decisions_)


def test_the_default_pruner_starts_from_the_prior_then_learns():
    spectra, curves = recorded(n=60)
    pruner = LyapunovPruner(LinearRegression(), n_startup_trials=8)
    assert pruner.prior is STARTUP_PRIOR
    replay_study(pruner, np.arange(60), curves, spectra=spectra)
    by = [d["by"] for d in pruner.decisions_]
    # The prior judges from its fifth trial; the regressor once 8 have finished.
    assert by[:4] == [None] * 4 and by[4] == "prior"
    first = by.index("regressor")
    assert set(by[4:first]) == {"prior"} and set(by[first:]) == {"regressor"}
    assert len(pruner.decisions_[first]["fitted_on"]) == 8
    with pytest.raises(TypeError, match="prior must be a StartupPrior or None, got 'default'"):
        LyapunovPruner(prior="default")


def test_too_few_finished_trials_prune_nothing():
    spectra, curves = recorded()
    run = replay_study(
        LyapunovPruner(n_startup_trials=100, prior=None), np.arange(40), curves, spectra=spectra
    )
    assert run["pruned"] == []
    assert run["epochs"] == curves.size


def test_nan_spectrum_is_never_pruned_nor_learnt_from():
    spectra, curves = recorded()
    spectra[::3] = np.nan
    pruner = LyapunovPruner(LinearRegression(), n_startup_trials=5, refit_growth=0.0, prior=None)
    run = replay_study(pruner, np.arange(40), curves, spectra=spectra)
    pruned = {n for _, n in run["pruned"]}
    assert pruned and not pruned & set(range(0, 40, 3))
    for decision in pruner.decisions_:
        assert not set(decision["fitted_on"]) & set(range(0, 40, 3))
    assert all(
        d["reason"] == "its spectrum (or early score) is not finite"
        for d in pruner.decisions_
        if d["trial"] % 3 == 0
    )


def test_minimising_study_prunes_the_high_values():
    spectra, curves = recorded()
    pruner = LyapunovPruner(
        LinearRegression(), n_startup_trials=8, refit_growth=0.0, confidence=0, prior=None
    )
    study = optuna.create_study(direction="minimize", pruner=pruner)
    for i in range(40):
        trial = study.ask()
        trial.set_user_attr(
            "sklyap_spectrum",
            {"step": 1, "spectrum": spectra[i].tolist(), "architecture": None, "size": None},
        )
        trial.report(-float(curves[i, 0]), 1)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, -float(curves[i, -1]))
    judged = [d for d in pruner.decisions_ if d["reason"] is None]
    assert judged
    for d in judged:
        assert d["pruned"] == (d["predicted"] > d["bar"])
    pruned = [d["trial"] for d in judged if d["pruned"]]
    # Minimising -final: what it prunes are networks of low final accuracy.
    assert np.mean(curves[pruned, -1]) < np.median(curves[:, -1])


def test_foreign_network_is_not_pruned_and_warns():
    spectra, curves = recorded()
    architectures = [("GRU", 1, 8, True)] * 39 + [("LSTM", 1, 8, True)]
    sizes = [16] * 39 + [16]
    pruner = LyapunovPruner(LinearRegression(), n_startup_trials=5, confidence=0, prior=None)
    with pytest.warns(UserWarning, match=r"trial 39: its network \(LSTM, 1, 8, True\) is of none"):
        replay_study(
            pruner, np.arange(40), curves, spectra=spectra, architectures=architectures, sizes=sizes
        )
    sizes = [16] * 39 + [64]
    pruner = LyapunovPruner(LinearRegression(), n_startup_trials=5, confidence=0, prior=None)
    with pytest.warns(UserWarning, match="hidden size 64 is outside the finished trials' 16 to 16"):
        replay_study(
            pruner,
            np.arange(40),
            curves,
            spectra=spectra,
            architectures=[("GRU",)] * 40,
            sizes=sizes,
        )
    assert pruner.decisions_[-1]["pruned"] is False


def test_wrapped_pruner_decides_the_other_steps():
    spectra, curves = recorded(n_epochs=5)
    calls = []

    class Recording(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            calls.append(trial.last_step)
            return trial.last_step == 3

    run = replay_study(
        LyapunovPruner(n_startup_trials=100, prior=None, wrapped_pruner=Recording()),
        np.arange(10),
        curves,
        spectra=spectra,
    )
    assert sorted(set(calls)) == [1, 2, 3]
    assert run["pruned"] == [(3, i) for i in range(10)]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"quantile": 1.5}, "quantile"),
        ({"confidence": -1.0}, "confidence"),
        ({"n_startup_trials": 1}, "n_startup_trials"),
        ({"early_score": "yes"}, "early_score"),
        ({"regressor": "forest"}, "regressor must be a scikit-learn regressor"),
        ({"wrapped_pruner": "median"}, "wrapped_pruner must be an Optuna pruner"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LyapunovPruner(**kwargs)


def test_multi_objective_study_is_refused():
    pruner = LyapunovPruner()
    study = optuna.create_study(directions=["maximize", "minimize"])
    trial = study.ask()
    trial.set_user_attr(
        "sklyap_spectrum", {"step": 1, "spectrum": [0.0], "architecture": None, "size": None}
    )
    frozen = study.get_trials()[0]
    frozen.intermediate_values[1] = 0.5
    with pytest.raises(ValueError, match="single-objective studies only"):
        pruner.prune(study, frozen)


def test_outcome_counts_epochs_and_regret():
    final = np.array([0.1, 0.9, 0.5, 0.7])
    run = {"completed": [(3, 0), (7, 2), (12, 1)], "pruned": [(1, 3)], "epochs": 12}
    got = outcome(run, final, n_epochs=5)
    # 20 epochs for all four to the end.
    assert got["anytime"] == [(0.15, 0.1), (0.35, 0.5), (0.6, 0.9)]
    assert got["regret_at_20"] == pytest.approx(0.8)
    assert got["regret_at_35"] == pytest.approx(0.4)
    assert got["regret_at_50"] == pytest.approx(0.4)
    assert got["regret"] == 0.0
    assert got["top10_recall"] == 1.0
    # The best network (1) is the top 10% of four; it finished at 60% of the epochs.
    assert [got[f"top10_recall_at_{b}"] for b in (20, 35, 50)] == [0.0, 0.0, 0.0]
    assert got["epochs_fraction"] == 0.6
    assert got["epochs_to_near_best"] == 0.6
    got = outcome({"completed": [], "pruned": [], "epochs": 4}, final, n_epochs=5)
    assert got["regret_at_20"] == pytest.approx(0.8) and np.isnan(got["epochs_to_near_best"])


def test_pruner_pickles_and_keeps_deciding():
    import pickle

    spectra, curves = recorded()
    pruner = pickle.loads(
        pickle.dumps(LyapunovPruner(LinearRegression(), n_startup_trials=5, prior=None))
    )
    run = replay_study(pruner, np.arange(40), curves, spectra=spectra)
    assert run["pruned"]


WORKER = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import optuna
    from sklearn.linear_model import LinearRegression
    from sklyap.selection import LyapunovPruner
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = np.load(sys.argv[2])
    spectra, curves = data["spectra"], data["curves"]
    pruner = LyapunovPruner(LinearRegression(), n_startup_trials=6, confidence=0.0, prior=None)
    study = optuna.load_study(study_name="s", storage=sys.argv[1], pruner=pruner)

    def objective(trial):
        i = trial.number  # unique across processes; the storage numbers the trials
        trial.set_user_attr("pid", os.getpid())
        for epoch in range(1, curves.shape[1] + 1):
            if epoch == 1:
                trial.set_user_attr("sklyap_spectrum", {
                    "step": 1, "spectrum": spectra[i].tolist(), "architecture": None, "size": None})
            trial.report(float(curves[i, epoch - 1]), epoch)
            if trial.should_prune():
                trial.set_user_attr("fitted_on", pruner.decisions_[-1]["fitted_on"])
                raise optuna.TrialPruned()
            if epoch == 1 and pruner.decisions_ and pruner.decisions_[-1]["trial"] == trial.number:
                trial.set_user_attr("fitted_on", pruner.decisions_[-1]["fitted_on"])
        return float(curves[i, -1])

    study.optimize(objective, n_trials=int(sys.argv[3]))
    """
)


def test_two_processes_share_one_sqlite_storage(tmp_path):
    spectra, curves = recorded(n=40)
    np.savez(tmp_path / "data.npz", spectra=spectra, curves=curves)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), storage, str(tmp_path / "data.npz"), "20"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    states = [t.state for t in trials]
    assert len(trials) == 40
    assert states.count(optuna.trial.TrialState.PRUNED) >= 5
    assert states.count(optuna.trial.TrialState.COMPLETE) >= 6
    pids = {t.number: t.user_attrs["pid"] for t in trials}
    assert len(set(pids.values())) == 2
    # Each process learnt from trials the other one ran: the spectra came through the storage.
    crossed = {
        pids[t.number]
        for t in trials
        if any(pids[j] != pids[t.number] for j in t.user_attrs.get("fitted_on", []))
    }
    assert crossed == set(pids.values())


def test_skorch_callback_reports_and_prunes():
    import torch
    from skorch import NeuralNetClassifier
    from torch import nn

    from sklyap import LyapunovSpectrumTransformer

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(2, 6, batch_first=True)
            self.out = nn.Linear(6, 2)

        def forward(self, x):
            return self.out(self.rnn(x)[0][:, -1])

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5, 2)).astype(np.float32)
    y = (X[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    transformer = LyapunovSpectrumTransformer(
        n_features=4, n_trajectories=2, n_steps=20, warmup=5, random_state=0
    )

    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return trial.last_step == 2

    study = optuna.create_study(direction="maximize", pruner=Always())

    def objective(trial):
        torch.manual_seed(0)
        net = NeuralNetClassifier(
            Net,
            max_epochs=4,
            lr=0.1,
            verbose=0,
            callbacks=[LyapunovPruning(trial, transformer, epoch=1)],
        )
        net.fit(X, y)
        return float(net.history[-1, "valid_acc"])

    study.optimize(objective, n_trials=1)
    (trial,) = study.get_trials()
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [1, 2]
    record = trial.user_attrs["sklyap_spectrum"]
    assert record["step"] == 1 and len(record["spectrum"]) == 4
    assert record["architecture"] == ["GRU", 1, 2, True] and record["size"] == 6


def test_report_spectrum_matches_the_transformer():
    from torch import nn

    from sklyap import LyapunovSpectrumTransformer

    rnn = nn.LSTM(3, 5, batch_first=True)
    transformer = LyapunovSpectrumTransformer(
        n_features=5, n_trajectories=2, n_steps=30, warmup=5, random_state=1
    )
    study = optuna.create_study()
    trial = study.ask()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = report_spectrum(trial, rnn, 2, transformer=transformer)
    expected = transformer.fit([rnn]).transform([rnn])[0]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    record = study.get_trials()[0].user_attrs["sklyap_spectrum"]
    np.testing.assert_allclose(record["spectrum"], expected, rtol=1e-12)
    assert record["step"] == 2 and record["size"] == 5


@pytest.mark.parametrize(
    "code",
    [
        "from sklyap.selection import LyapunovPruner",
        "from sklyap.selection import report_spectrum",
        "from sklyap.study import run_sweep; run_sweep('digits')",
    ],
)
def test_without_optuna_the_error_names_the_extra(code):
    program = f"import sys; sys.modules['optuna'] = None\n{code}"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 1
    assert "pip install 'sklyap[optuna]'" in done.stderr.splitlines()[-1]


def test_without_optuna_the_library_and_the_study_still_import():
    """Only the pruner needs the extra: the study, the command line and the
    prior import without it (a plain install has no Optuna)."""
    program = (
        "import sys; sys.modules['optuna'] = None\n"
        "import sklyap.study, sklyap.cli, sklyap.__main__\n"
        "from sklyap.selection import STARTUP_PRIOR, FinalAccuracyPredictor\n"
        "print(STARTUP_PRIOR.min_trials)"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "5"


def test_the_sweep_command_without_optuna_says_so(monkeypatch, capsys):
    from sklyap.cli import main

    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["sweep", "--task", "digits"]) == 2
    assert "pip install 'sklyap[optuna]'" in capsys.readouterr().err


def test_a_spectrum_costs_what_it_is_said_to():
    spectra, curves = recorded(n=10)
    cost = np.arange(10) / 10
    free = replay_study(
        LyapunovPruner(n_startup_trials=100, prior=None), np.arange(10), curves, spectra=spectra
    )
    paid = replay_study(
        LyapunovPruner(n_startup_trials=100, prior=None),
        np.arange(10),
        curves,
        spectra=spectra,
        spectrum_cost=cost,
    )
    assert paid["epochs"] == pytest.approx(free["epochs"] + cost.sum())
    # Trial i finishes after its own and every earlier trial's epochs and spectra.
    for (spent, network), (base, _) in zip(paid["completed"], free["completed"]):
        assert spent == pytest.approx(base + cost[: network + 1].sum())
