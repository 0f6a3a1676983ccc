"""Early selection in a hyperparameter sweep: which candidates to train to the end.

A population of trained networks (:func:`population_features`) is split,
again and again at random, into a pilot (trained to the end: its epoch-1
spectra and final accuracies fit the predictors) and a sweep of candidates
(trained one epoch, then judged). Each policy keeps some candidates and
trains them to the end; it is scored by the best final accuracy it finds.
Training is deterministic for a network's seed, so a candidate trained to
epoch ``e`` is the population's network after epoch ``e``: the recorded
learning curves give every policy's outcome without training again.
"""

import json
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import HalvingGridSearchCV
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from .._validation import Interval, check_int, validate_params
from ..aelle import AeLLERegressor
from ._result import json_ready, summarise
from ._run import library_versions, population_features, task_spec

__all__ = ["SweepResult", "run_sweep"]

SWEEP_METRICS = ("regret", "top10_recall", "epochs_fraction", "kept_fraction")

_FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.5)
_FACTORS = (2, 3, 4)

# The policies that are successive-halving searches (set by a factor, not a
# fraction kept), and the paired comparisons: (policy, against).
_SEARCHES = ("halving", "halving+spectra")
_PAIRS = (
    ("spectra", "accuracy"),
    ("spectra+accuracy", "accuracy"),
    ("halving+spectra", "halving"),
)


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


def _top(scores, k):
    """Indices of the ``k`` highest scores (ties by position)."""
    return np.argsort(-np.asarray(scores), kind="stable")[:k]


def _outcome(final, kept, epochs, n_epochs):
    """Regret, recall of the true top 10%, the fraction of epochs and of candidates kept.

    The top 10% are the ``ceil(n / 10)`` best final accuracies; a kept
    candidate tied with the last of them counts as one of them.
    """
    n = len(final)
    k = max(1, math.ceil(0.1 * n))
    threshold = np.sort(final)[::-1][k - 1]
    hits = int((final[np.asarray(kept)] >= threshold).sum())
    return {
        "regret": float(final.max() - final[kept].max()),
        "top10_recall": min(hits, k) / k,
        "epochs_fraction": epochs / (n * n_epochs),
        "kept_fraction": len(kept) / n,
    }


@dataclass
class SweepResult:
    """What :func:`run_sweep` measured on one task.

    Attributes
    ----------
    settings : dict
    rows : list of dict
        One per policy at the chosen fraction (successive halving at its
        factor): ``key`` (the policy's short name: ``accuracy``, ``spectra``,
        ``spectra+accuracy``, ``random``, ``halving``, ``halving+spectra``),
        ``policy``, ``setting`` (the fraction kept, or the factor),
        ``keeps`` (as text) and for each of ``regret``, ``top10_recall``,
        ``epochs_fraction`` and ``kept_fraction`` the mean, ``_std`` and
        ``_per_repeat`` (per draw).
    curves : list of dict
        The same for every fraction in (0.05, 0.1, 0.2, 0.3, 0.5) and every
        factor in (2, 3, 4): the figure's points.
    timings : dict
    """

    settings: dict
    rows: list
    curves: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def to_json(self):
        """Settings, rows, curves and timings as JSON text."""
        payload = {
            "settings": self.settings,
            "rows": self.rows,
            "curves": self.curves,
            "comparisons": self.comparisons(),
            "timings": self.timings,
        }
        return json.dumps(json_ready(payload), indent=2, allow_nan=False)

    def comparisons(self):
        """Each spectrum policy against the early accuracy alone, and successive halving
        steered by the spectra against plain successive halving, paired over draws.

        Returns
        -------
        list of dict
            ``policy``, ``against``, and for ``top10_recall`` and ``regret``:
            ``<metric>_difference`` (mean of the per-draw differences),
            ``<metric>_better`` (draws in which ``policy`` is better: higher
            recall, lower regret), ``<metric>_equal``; and ``n_draws``.
        """
        rows = {r["key"]: r for r in self.rows}
        out = []
        for policy, against in _PAIRS:
            row, baseline = rows[policy], rows[against]
            item = {"policy": row["policy"], "against": baseline["policy"]}
            for metric, sign in (("top10_recall", 1), ("regret", -1)):
                d = np.subtract(row[f"{metric}_per_repeat"], baseline[f"{metric}_per_repeat"])
                item[f"{metric}_difference"] = float(d.mean())
                item[f"{metric}_better"] = int((sign * d > 1e-12).sum())
                item[f"{metric}_equal"] = int((np.abs(d) <= 1e-12).sum())
                item["n_draws"] = len(d)
            out.append(item)
        return out

    def _comparison_lines(self):
        return [
            f"{c['policy']} - {c['against']}: top-10% recall "
            f"{c['top10_recall_difference']:+.2f} (higher in {c['top10_recall_better']}, "
            f"equal in {c['top10_recall_equal']} of {c['n_draws']} draws), regret "
            f"{c['regret_difference']:+.3f} (lower in {c['regret_better']}, equal in "
            f"{c['regret_equal']})"
            for c in self.comparisons()
        ]

    def _header(self):
        s = self.settings
        return (
            f"{s['title']}: {s['n_draws']} draws of a pilot of {s['n_pilot']} and a sweep of "
            f"{s['n_candidates']} candidates from {s['n_models']} trained networks "
            f"(random_state {s['random_state']}); trained {s['n_epochs']} epochs to the end, "
            f"judged after epoch {s['early_epoch']}; mean ± std over draws"
        )

    def _cells(self, row):
        return (
            f"{row['regret']:.3f} ± {row['regret_std']:.3f}",
            f"{row['top10_recall']:.2f} ± {row['top10_recall_std']:.2f}",
            f"{100 * row['epochs_fraction']:.0f} ± {100 * row['epochs_fraction_std']:.0f}%",
        )

    def table(self):
        """The rows as aligned text."""
        width = max(len(r["policy"]) for r in self.rows)
        cols = f"{'policy':{width}}  {'keeps':>15}  {'regret':>13}  {'top-10% recall':>14}  {'epochs':>9}"
        lines = [self._header(), "", cols, "-" * len(cols)]
        for r in self.rows:
            regret, recall, epochs = self._cells(r)
            lines.append(
                f"{r['policy']:{width}}  {r['keeps']:>15}  {regret:>13}  {recall:>14}  {epochs:>9}"
            )
        lines.append(
            "\nregret: best final accuracy of all candidates minus the best of those kept; "
            "epochs: of training every candidate to the end\n\nPaired over the same draws:"
        )
        lines += [f"  {line}" for line in self._comparison_lines()]
        return "\n".join(lines)

    def markdown(self):
        """The rows as a Markdown table."""
        lines = [
            self._header() + ".",
            "",
            "| policy | keeps | regret | top-10% recall | epochs |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append("| " + " | ".join([r["policy"], r["keeps"], *self._cells(r)]) + " |")
        lines += ["", "Paired over the same draws:", ""]
        lines += [f"* {line}" for line in self._comparison_lines()]
        return "\n".join(lines)

    def plot(self, ax=None):
        """Mean regret against the mean fraction of epochs, per policy, with the spread.

        Returns
        -------
        matplotlib Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        for policy in dict.fromkeys(c["policy"] for c in self.curves):
            points = [c for c in self.curves if c["policy"] == policy]
            ax.errorbar(
                [100 * c["epochs_fraction"] for c in points],
                [c["regret"] for c in points],
                yerr=[c["regret_std"] for c in points],
                marker="o",
                capsize=2,
                label=policy,
            )
        ax.set_xlabel("epochs spent (% of training every candidate to the end)")
        ax.set_ylabel("regret (best final accuracy missed)")
        ax.set_title(self.settings["title"], fontsize=10)
        ax.legend(fontsize=7)
        return ax


def _policy_names(early_epoch, predictor):
    acc = f"epoch-{early_epoch} validation accuracy"
    name = "AeLLE" if isinstance(predictor, AeLLERegressor) else type(predictor).__name__
    return {
        "accuracy": acc,
        "spectra": f"{name} on epoch-{early_epoch} spectra",
        "spectra+accuracy": f"{name} on epoch-{early_epoch} spectra + accuracy",
        "random": "random",
        "halving": "successive halving (HalvingGridSearchCV)",
        "halving+spectra": f"successive halving, first rung by {name} on spectra + accuracy",
    }


def run_sweep(
    task="digits",
    *,
    n_pilot=100,
    n_candidates=100,
    keep=0.1,
    factor=3,
    n_draws=10,
    n_models=None,
    predictor=None,
    device="auto",
    random_state=0,
    n_jobs=None,
    cache_dir=None,
    verbose=1,
):
    """Compare policies that decide after an early epoch which candidates to train on.

    For each of ``n_draws`` random splits of a trained population into a
    pilot of ``n_pilot`` networks and a sweep of ``n_candidates``, every
    candidate is trained to the early epoch, and each policy keeps the
    fraction ``keep`` of them that it ranks highest and trains those to the
    end: (a) by their validation accuracy then (what successive halving and
    median pruning use), (b) by the final accuracy ``predictor`` predicts
    from their early spectra, after fitting on the pilot, (c) the same from
    the spectra and the early accuracy, (d) at random. (e) scikit-learn's
    ``HalvingGridSearchCV`` runs on the candidates with the epochs as its
    resource, its ``factor`` and its own scoring (the validation accuracy),
    and keeps the candidates of its last iteration; (f) the same search
    ranks its first iteration by the prediction of (c) instead. Epochs are counted as
    if training resumed from the last checkpoint, for every policy (the
    search itself retrains each iteration from scratch).

    Parameters
    ----------
    task : str or StudyTask, default="digits"
    n_pilot, n_candidates : int, default=100
    keep : float, default=0.1
        Fraction of the candidates that policies (a) to (d) keep, in (0, 1]:
        ``max(1, floor(keep * n_candidates + 0.5))`` of them.
    factor : int, default=3
        ``HalvingGridSearchCV``'s factor (>= 2).
    n_draws : int, default=10
    n_models : int, default=None
        Size of the population the draws come from, at least
        ``n_pilot + n_candidates``; None uses the task's.
    predictor : regressor, default=None
        Early features to final accuracy; cloned. None uses
        ``AeLLERegressor(random_state=0)``.
    device, random_state, n_jobs, cache_dir, verbose
        As for :func:`population_features`; ``random_state`` seeds the
        population and the draws.

    Returns
    -------
    SweepResult
    """
    spec = task_spec(task)
    n_pilot = check_int(n_pilot, "n_pilot", minimum=4)
    n_candidates = check_int(n_candidates, "n_candidates", minimum=4)
    n_draws = check_int(n_draws, "n_draws", minimum=2)
    factor = check_int(factor, "factor", minimum=2)
    validate_params({"keep": keep}, {"keep": [Interval(float, 0, 1, closed="right")]})
    keep = float(keep)
    n_models = check_int(spec.n_models if n_models is None else n_models, "n_models", minimum=1)
    if n_pilot + n_candidates > n_models:
        raise ValueError(
            f"n_pilot + n_candidates = {n_pilot + n_candidates} networks, more than the "
            f"population's n_models={n_models}; pass a larger n_models to train more"
        )
    predictor = AeLLERegressor(random_state=0) if predictor is None else predictor
    if not hasattr(predictor, "fit") or not hasattr(predictor, "predict"):
        raise TypeError(f"predictor must be a scikit-learn regressor, got {predictor!r}")

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
    final = population.test_accuracy[:, -1]
    curves = population.val_accuracy
    n_epochs, early = population.n_epochs, spec.early_epoch
    names = _policy_names(early, predictor)
    rng = check_random_state(random_state)
    fractions = sorted({*_FRACTIONS, keep})
    factors = sorted({*_FACTORS, factor})
    # Successive halving of a single iteration keeps every candidate.
    if n_epochs < early * factor:
        warnings.warn(
            f"with {n_epochs} epochs, judged after epoch {early}, successive halving at factor "
            f"{factor} has one iteration and keeps every candidate",
            UserWarning,
            stacklevel=2,
        )
    outcomes = {}  # (policy, setting) -> list of per-draw outcomes

    start = time.perf_counter()
    draws = range(n_draws)
    if verbose:
        draws = tqdm(draws, desc=f"sweep draws on {spec.name}", unit="draw")
    for _ in draws:
        order = rng.permutation(n_models)
        pilot, candidates = order[:n_pilot], order[n_pilot : n_pilot + n_candidates]
        scores = {
            "accuracy": features["accuracy"][candidates, 0],
            "random": rng.permutation(n_candidates),
        }
        for key, columns in (("spectra", "early"), ("spectra+accuracy", "early+accuracy")):
            X = features[columns]
            model = clone(predictor).fit(X[pilot], final[pilot])
            scores[key] = model.predict(X[candidates])
        y = final[candidates]
        for fraction in fractions:
            k = max(1, math.floor(fraction * n_candidates + 0.5))
            epochs = n_candidates * early + k * (n_epochs - early)
            for key, score in scores.items():
                outcome = _outcome(y, _top(score, k), epochs, n_epochs)
                outcomes.setdefault((key, fraction), []).append(outcome)
        for f in factors:
            for key, first in (("halving", None), ("halving+spectra", scores["spectra+accuracy"])):
                kept, epochs = successive_halving(
                    curves[candidates],
                    range(n_candidates),
                    min_epochs=early,
                    factor=f,
                    first_scores=first,
                )
                outcomes.setdefault((key, f), []).append(_outcome(y, kept, epochs, n_epochs))
    timings["draws_s"] = time.perf_counter() - start

    def summary(key, setting):
        runs = outcomes[(key, setting)]
        row = {"key": key, "policy": names[key], "setting": setting}
        for metric in SWEEP_METRICS:
            row.update(summarise(metric, [r[metric] for r in runs]))
        row["keeps"] = f"{row['kept_fraction']:.0%}" + (
            f" (factor {setting})" if key in _SEARCHES else ""
        )
        return row

    rows = [summary(key, factor if key in _SEARCHES else keep) for key in names]
    points = [
        summary(key, s) for key in names for s in (factors if key in _SEARCHES else fractions)
    ]
    settings = {
        "task": spec.name,
        "title": spec.title,
        "n_models": n_models,
        "n_pilot": n_pilot,
        "n_candidates": n_candidates,
        "n_draws": n_draws,
        "keep": keep,
        "factor": factor,
        "early_epoch": early,
        "n_epochs": n_epochs,
        "random_state": random_state,
        "predictor": repr(predictor),
        "versions": library_versions(),
    }
    return SweepResult(settings=settings, rows=rows, curves=points, timings=timings)
