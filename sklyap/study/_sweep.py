"""Early selection in a hyperparameter sweep, every epoch counted.

A trained population (:func:`population_features`) is swept again and again,
one trial per network in a random order, by real Optuna studies with their
own pruners and with :class:`~sklyap.selection.LyapunovPruner`, which learns
from the study's finished trials; by today's pilot-based selection (its pilot
counted); and by scikit-learn's ``HalvingGridSearchCV``. Training is
deterministic for a network's seed, so a trial trained to epoch ``e`` is the
population's network after epoch ``e``: the recorded learning curves and
spectra replay every study without training again (:mod:`._replay`).
"""

import math
import time
import warnings

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV
from tqdm.auto import tqdm

from .._early import StartupPrior
from .._validation import Interval, check_int, validate_params
from ..datasets import train_rnn_population
from ..transformer import LyapunovSpectrumTransformer
from ._replay import BUDGETS, REPLAY_METRICS, import_optuna, outcome, pilot_policy, replay_study
from ._result import summarise
from ._run import library_versions, population_features, task_spec
from ._sweep_result import LYAPUNOV_PRUNERS, POLICIES, SweepResult

__all__ = ["POLICIES", "SweepResult", "measure_spectrum_cost", "run_sweep"]

# Policies whose decisions do not depend on the number of workers.
_UNTIMED = ("pilot", "halving-search")


class RecordedTraining(BaseEstimator):
    """A sweep candidate as a model-selection search sees it.

    Fitting candidate ``candidate`` for ``max_epochs`` epochs gives the
    network recorded after that epoch (its training is deterministic), so
    fitting looks the network up, and :meth:`score` is its recorded
    validation accuracy then: what ``HalvingGridSearchCV`` with
    ``resource="max_epochs"`` would measure by training it.

    Parameters
    ----------
    candidate : int, default=0
        Row of ``curves``.
    max_epochs : int, default=1
    curves : ndarray of shape (n_networks, n_epochs), default=None
        Validation accuracy of every network after every epoch.
    first_scores : ndarray of shape (n_networks,), default=None
        Scores that replace the validation accuracy after ``first_epochs``
        (a prediction of the final accuracy, say): what a scorer with
        ``later="score"`` gives (see
        :meth:`sklyap.selection.FinalAccuracyPredictor.as_scorer`).
    first_epochs : int, default=1
    """

    def __init__(self, candidate=0, max_epochs=1, curves=None, first_scores=None, first_epochs=1):
        self.candidate = candidate
        self.max_epochs = max_epochs
        self.curves = curves
        self.first_scores = first_scores
        self.first_epochs = first_epochs

    def fit(self, X, y=None):
        if not 1 <= self.max_epochs <= self.curves.shape[1]:
            raise ValueError(
                f"max_epochs must be in [1, {self.curves.shape[1]}] (the recorded epochs), "
                f"got {self.max_epochs}"
            )
        self.epochs_ = self.max_epochs
        return self

    def score(self, X, y=None):
        if self.first_scores is not None and self.epochs_ == self.first_epochs:
            return float(self.first_scores[self.candidate])
        return float(self.curves[self.candidate, self.epochs_ - 1])


def successive_halving(curves, candidates, *, min_epochs, factor, first_scores=None):
    """``HalvingGridSearchCV`` over ``candidates``, with the epochs as its resource.

    Its first iteration ranks the candidates by ``first_scores`` when given
    (one per row of ``curves``), the later ones by their validation accuracy.

    Returns
    -------
    kept : ndarray of int
        The candidates of its last iteration, all of which are then trained
        to the last epoch (the search itself would refit only its best, for
        the resources of its last iteration).
    epochs : int
        Epochs it trains, counting training that resumes from the previous
        iteration's weights (the search itself retrains each iteration from
        scratch), until the kept candidates reach the last epoch.
    """
    n_epochs = curves.shape[1]
    search = HalvingGridSearchCV(
        RecordedTraining(curves=curves, first_scores=first_scores, first_epochs=min_epochs),
        {"candidate": [int(c) for c in candidates]},
        resource="max_epochs",
        min_resources=min_epochs,
        max_resources=n_epochs,
        factor=factor,
        cv=[(np.array([0]), np.array([1]))],
        refit=False,
    ).fit(np.zeros((2, 1)))
    results = search.cv_results_
    last = np.flatnonzero(results["iter"] == results["iter"].max())
    kept = np.array([results["params"][i]["candidate"] for i in last])
    rungs = [0, *search.n_resources_]
    epochs = sum(
        n * (r - previous) for n, r, previous in zip(search.n_candidates_, rungs[1:], rungs)
    )
    return kept, int(epochs + len(kept) * (n_epochs - rungs[-1]))


def _pruner(key, prior):
    """The pruner of policy ``key``; ``prior`` stands in for the default prior."""
    optuna = import_optuna()

    from ..selection import LyapunovPruner

    return {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "lyapunov": lambda: LyapunovPruner(early_score=False, prior=None),
        "lyapunov+score": lambda: LyapunovPruner(prior=None),
        "lyapunov+prior": lambda: LyapunovPruner(prior=prior),
        "lyapunov+median": lambda: LyapunovPruner(
            prior=prior, wrapped_pruner=optuna.pruners.MedianPruner()
        ),
    }[key]()


def _run_policy(key, order, seed, data, n_workers, n_pilot, keep, factor):
    """One policy over the networks in ``order``: its run, as :func:`replay_study` gives it.

    Only the policies that read spectra take them, and pay for them."""
    curves, spectra, early = data["curves"], data["spectra"], data["early_epoch"]
    cost = data["spectrum_cost"]
    if key == "pilot":
        return pilot_policy(
            order,
            curves,
            spectra,
            n_pilot=n_pilot,
            keep=keep,
            early_epoch=early,
            spectrum_cost=cost,
        )
    if key == "halving-search":
        kept, epochs = successive_halving(curves, order, min_epochs=early, factor=factor)
        return {"completed": [(epochs, int(n)) for n in kept], "pruned": [], "epochs": epochs}
    # A trial of a kind no finished trial has is not pruned, with a warning: here
    # the start of every mixed population, and counted in the decisions instead.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "LyapunovPruner does not prune", UserWarning)
        reads = key in LYAPUNOV_PRUNERS
        run = replay_study(
            _pruner(key, data["prior"]),
            order,
            curves,
            spectra=spectra if reads else None,
            early_epoch=early,
            architectures=data["architectures"],
            sizes=data["sizes"],
            n_workers=n_workers,
            seed=seed,
            spectrum_cost=cost if reads else None,
        )
    del run["study"]
    return run


def _anytime_regret(anytime, final, grid):
    """Regret on ``grid`` (fractions of the epochs) of a run's best-so-far steps."""
    best = np.full(len(grid), final.min())
    for fraction, value in anytime:
        best[grid >= fraction - 1e-12] = value
    return final.max() - best


def _best_time(fn, repeats=2):
    fn()  # warm-up: data loading, first allocations
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure_spectrum_cost(task, population, *, random_state=0):
    """What one early spectrum costs, in epochs of training, for each kind of network.

    For each (cell, hidden size) of ``population``, times one epoch of the
    task's trainer (training and evaluation, one thread) and one spectrum of
    such a network alone, with the study's driving inputs and settings: what
    a trial of a sweep pays to report its spectrum. The best of two after a
    warm-up.

    Returns
    -------
    cost : ndarray of shape (n_networks,)
        Each network's kind's cost, in epochs.
    by_kind : dict
        ``"<cell> <hidden size>"`` to the cost, the seconds of an epoch and
        of a spectrum.
    """
    inputs, warmup = task.driving_inputs("val", np.random.RandomState(random_state))
    transformer = LyapunovSpectrumTransformer(
        inputs, input_encoder=task.input_encoder, warmup=warmup, n_features=32, n_jobs=1
    )
    kinds = sorted({(hp["cell"], int(hp["hidden_size"])) for hp in population.hyperparameters})
    by_kind = {}
    for cell, size in kinds:
        settings = {**task.population, "n_epochs": 1, "cells": (cell,), "hidden_sizes": (size,)}

        def train(settings=settings):
            return train_rnn_population(
                n_models=1, random_state=0, n_jobs=1, cache_dir=False, verbose=0, **settings
            )

        epoch = _best_time(train)
        model = train().models()[0]
        spectrum = _best_time(lambda model=model: transformer.fit_transform([model]))
        by_kind[f"{cell} {size}"] = {
            "epochs": spectrum / epoch,
            "epoch_s": epoch,
            "spectrum_s": spectrum,
        }
    cost = np.array(
        [
            by_kind[f"{hp['cell']} {int(hp['hidden_size'])}"]["epochs"]
            for hp in population.hyperparameters
        ]
    )
    return cost, by_kind


def run_sweep(
    task="digits",
    *,
    n_orders=10,
    workers=(1, 4),
    n_pilot=50,
    keep=0.1,
    factor=3,
    n_models=None,
    spectrum_cost="auto",
    prior=None,
    device="auto",
    random_state=0,
    n_jobs=None,
    cache_dir=None,
    verbose=1,
):
    """Compare pruning policies over a trained population, every epoch counted.

    Each of ``n_orders`` random orders of the population's networks is swept
    by every policy of :data:`POLICIES`: real Optuna studies (one trial per
    network, enqueued in that order) with no pruning, Optuna's
    ``MedianPruner``, ``SuccessiveHalvingPruner`` and ``HyperbandPruner`` (their
    defaults), and :class:`~sklyap.selection.LyapunovPruner` on the spectra
    and on the spectra and the early score with no prior, with its defaults
    (``prior`` as its startup prior), and so around ``MedianPruner``; with each number of ``workers`` in flight (trials
    finish out of order). Beside them: today's pilot-based selection (the
    first ``n_pilot`` networks of the order trained to the end, a random
    forest fitted on them keeps the ``keep`` fraction of the rest it ranks
    highest after the early epoch) and ``HalvingGridSearchCV`` with the
    epochs as its resource and ``factor``.

    Parameters
    ----------
    task : str or StudyTask, default="digits"
    n_orders : int, default=10
    workers : sequence of int, default=(1, 4)
    n_pilot : int, default=50
    keep : float, default=0.1
        In (0, 1].
    factor : int, default=3
    n_models : int, default=None
        Population size; None uses the task's.
    spectrum_cost : "auto" or float, default="auto"
        What a trial pays to take its early spectrum, in epochs, counted for
        the policies that read spectra (LyapunovPruner, the pilot): "auto"
        measures it for each kind of network (:func:`measure_spectrum_cost`,
        timings: the result then varies from run to run); a number is the
        same for every network (0: spectra free).
    prior : StartupPrior, default=None
        The startup prior of the pruners with their defaults. The default
        :data:`~sklyap.selection.STARTUP_PRIOR` was fitted on the study's
        tasks, so a sweep of one of them should be given a prior fitted
        without it (:func:`transfer_study`'s ``priors``); None: no prior.
    device, random_state, n_jobs, cache_dir, verbose
        As for :func:`population_features`; ``random_state`` seeds the
        population and the orders. ``n_jobs`` also runs the orders in parallel.

    Returns
    -------
    SweepResult
    """
    import_optuna()  # the extra sklyap[optuna]: fail before any work

    spec = task_spec(task)
    n_orders = check_int(n_orders, "n_orders", minimum=2)
    n_pilot = check_int(n_pilot, "n_pilot", minimum=4)
    factor = check_int(factor, "factor", minimum=2)
    validate_params({"keep": keep}, {"keep": [Interval(float, 0, 1, closed="right")]})
    keep = float(keep)
    workers = tuple(check_int(w, "workers", minimum=1) for w in np.atleast_1d(workers).tolist())
    if not workers or len(set(workers)) != len(workers):
        raise ValueError(f"workers must be distinct ints >= 1, got {workers}")
    n_models = check_int(spec.n_models if n_models is None else n_models, "n_models", minimum=1)
    auto = isinstance(spectrum_cost, str) and spectrum_cost == "auto"
    number = isinstance(spectrum_cost, (int, float, np.number)) and not isinstance(
        spectrum_cost, bool
    )
    if not (auto or (number and np.isfinite(spectrum_cost) and spectrum_cost >= 0)):
        raise ValueError(
            f"spectrum_cost must be 'auto' or a number of epochs >= 0, got {spectrum_cost!r}"
        )
    if prior is not None and not isinstance(prior, StartupPrior):
        raise TypeError(f"prior must be a StartupPrior or None, got {prior!r}")
    if n_pilot >= n_models:
        raise ValueError(
            f"n_pilot={n_pilot} leaves no candidates in a population of n_models={n_models}"
        )

    start = time.perf_counter()
    spec, features, population = population_features(
        spec,
        n_models=n_models,
        device=device,
        random_state=random_state,
        n_jobs=n_jobs,
        cache_dir=cache_dir,
        verbose=verbose,
    )
    timings = {"population_and_spectra_s": time.perf_counter() - start}
    curves = population.val_accuracy
    final = curves[:, -1]
    n_epochs, early = population.n_epochs, spec.early_epoch
    if n_epochs <= early:
        raise ValueError(
            f"the population trains {n_epochs} epochs, no more than the early epoch {early}: "
            "there is nothing to prune"
        )
    if n_epochs < early * factor:
        warnings.warn(
            f"with {n_epochs} epochs, judged after epoch {early}, successive halving at factor "
            f"{factor} has one iteration and keeps every candidate",
            UserWarning,
            stacklevel=2,
        )
    if isinstance(spectrum_cost, str):
        start = time.perf_counter()
        cost, by_kind = measure_spectrum_cost(spec, population, random_state=random_state)
        timings["spectrum_cost_s"] = time.perf_counter() - start
    else:
        cost, by_kind = np.full(n_models, float(spectrum_cost)), None
    data = {
        "prior": prior,
        "spectrum_cost": cost,
        "curves": curves,
        "spectra": features["early"],
        "early_epoch": early,
        "architectures": [(hp["cell"],) for hp in population.hyperparameters],
        "sizes": [int(hp["hidden_size"]) for hp in population.hyperparameters],
    }
    orders = [
        np.random.default_rng([random_state, k]).permutation(n_models) for k in range(n_orders)
    ]
    jobs = [(key, k, w) for key in POLICIES for k in range(n_orders) for w in workers]
    jobs = [(key, k, w) for key, k, w in jobs if key not in _UNTIMED or w == workers[0]]
    start = time.perf_counter()
    tasks = (
        delayed(_run_policy)(key, orders[k], k, data, w, n_pilot, keep, factor)
        for key, k, w in jobs
    )
    runs = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    if verbose:
        runs = tqdm(runs, total=len(jobs), desc=f"replayed studies on {spec.name}", unit="study")
    outcomes = {}
    for (key, _, w), run in zip(jobs, runs, strict=True):
        for w_ in workers if key in _UNTIMED else (w,):
            outcomes.setdefault((key, w_), []).append(outcome(run, final, n_epochs))
    timings["studies_s"] = time.perf_counter() - start

    # Percent steps up to the most any policy spent (spectra may take it past 100%).
    most = max(r["epochs_fraction"] for runs_ in outcomes.values() for r in runs_)
    grid = np.arange(0, math.ceil(100 * max(1.0, most) - 1e-9) + 1) / 100
    rows, lines = [], []
    for w in workers:
        for key in POLICIES:
            runs_ = outcomes[(key, w)]
            row = {"key": key, "policy": POLICIES[key], "workers": w}
            for metric in REPLAY_METRICS:
                row.update(summarise(metric, [r[metric] for r in runs_]))
            rows.append(row)
            regret = np.mean([_anytime_regret(r["anytime"], final, grid) for r in runs_], axis=0)
            lines.append(
                {"key": key, "workers": w, "grid": grid.tolist(), "regret": regret.tolist()}
            )
    settings = {
        "task": spec.name,
        "title": spec.title,
        "n_models": n_models,
        "n_orders": n_orders,
        "workers": list(workers),
        "n_pilot": n_pilot,
        "keep": keep,
        "factor": factor,
        "early_epoch": early,
        "n_epochs": n_epochs,
        "random_state": random_state,
        "budgets": list(BUDGETS),
        "spectrum_cost": spectrum_cost if by_kind is None else by_kind,
        "spectrum_cost_mean": float(cost.mean()),
        "prior": None if prior is None else prior.to_dict(),
        "versions": library_versions(),
    }
    return SweepResult(settings=settings, rows=rows, curves=lines, timings=timings)
