"""Early selection without any finished trial: what transfers from other tasks.

Leaving one task out, models fitted on the other tasks' populations (early
spectra and early accuracy as ranks within their population, against the rank
of the final accuracy) rank the networks of the task left out: a random
forest, and :class:`~sklyap.selection.StartupPrior`, the linear model in four
ranks that :class:`~sklyap.selection.LyapunovPruner` can start from. Rules
that read the early spectrum alone rank them with no training at all. Each is
scored by Spearman's correlation with the final accuracy.
"""

import json
import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import spearmanr
from sklearn.ensemble import RandomForestRegressor

from .._early import StartupPrior, prior_features
from .._early import within_ranks as ranks
from ._result import json_ready
from ._run import library_versions, population_features
from ._tables import markdown_table

__all__ = ["TRANSFER_RULES", "TransferResult", "fit_prior", "transfer_study"]

#: The rankings compared on each population, by key: what each is.
TRANSFER_RULES = {
    "transferred": "forest fitted on the other tasks (spectra + early accuracy, as ranks)",
    "transferred_spectra": "forest fitted on the other tasks (spectra alone, as ranks)",
    "startup_prior": "StartupPrior fitted on the other tasks (linear in four ranks)",
    "largest_near_zero": "zero-label: -abs(largest exponent)",
    "mean_exponent": "zero-label: mean exponent",
    "early_accuracy": "early accuracy (a finished epoch, no finished trial)",
}
#: A ranking that reaches this Spearman on a task left out transfers.
TRANSFERS = 0.6


def spearman(a, b):
    """Spearman's rank correlation (ties by mean rank); NaN when either is constant."""
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def _rank_columns(X):
    return np.column_stack([ranks(column) for column in np.asarray(X, dtype=float).T])


def _rankings(train, test):
    """Each rule's scores of ``test``'s networks (higher: predicted better)."""
    out = {}
    for key, with_accuracy in (("transferred", True), ("transferred_spectra", False)):
        X = np.vstack([_features(p, with_accuracy) for p in train])
        y = np.concatenate([ranks(p["final"]) for p in train])
        forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=3, random_state=0)
        out[key] = forest.fit(X, y).predict(_features(test, with_accuracy))
    spectra = test["spectra"]
    prior = fit_prior(train)
    out["startup_prior"] = prior.predict(prior_features(spectra, test["early_accuracy"]))
    out["largest_near_zero"] = -np.abs(spectra.max(axis=1))
    out["mean_exponent"] = spectra.mean(axis=1)
    out["early_accuracy"] = test["early_accuracy"]
    return out


def fit_prior(populations):
    """:class:`~sklyap.selection.StartupPrior` fitted on ``populations`` (dicts
    of ``spectra``, ``early_accuracy`` and ``final``)."""
    return StartupPrior.fit([(p["spectra"], p["early_accuracy"], p["final"]) for p in populations])


def _features(population, with_accuracy):
    X = population["spectra"]
    if with_accuracy:
        X = np.column_stack([X, population["early_accuracy"]])
    return _rank_columns(X)


def transfer_rows(populations):
    """Each population ranked by each rule of :data:`TRANSFER_RULES`, its task left out.

    Parameters
    ----------
    populations : dict
        ``(task, random_state)`` to a dict of ``spectra`` (n_networks,
        n_features), ``early_accuracy`` and ``final`` (n_networks,).

    Returns
    -------
    list of dict
        The rows of :class:`TransferResult`.
    """
    rows = []
    for name, seed in populations:
        train = [p for (task, _), p in populations.items() if task != name]
        test = populations[(name, seed)]
        scores = _rankings(train, test)
        row = {"task": name, "random_state": seed}
        row.update({key: spearman(scores[key], test["final"]) for key in TRANSFER_RULES})
        rows.append(row)
    return rows


@dataclass
class TransferResult:
    """What :func:`transfer_study` measured.

    Attributes
    ----------
    settings : dict
    rows : list of dict
        One per population: ``task``, ``random_state``, and for each key of
        :data:`TRANSFER_RULES` the Spearman correlation of its ranking with
        the final accuracy.
    priors : dict
        Task name to the :class:`~sklyap.selection.StartupPrior` fitted on
        the other tasks' populations (what a sweep of that task may start
        from without having seen it).
    prior : StartupPrior
        Fitted on every population.
    """

    settings: dict
    rows: list
    priors: dict
    prior: StartupPrior

    def transfers(self):
        """The rules that reach Spearman >= 0.6 on every population of every task left out."""
        return [
            key
            for key in TRANSFER_RULES
            if key != "early_accuracy" and all(row[key] >= TRANSFERS for row in self.rows)
        ]

    def to_json(self):
        payload = {
            "settings": self.settings,
            "rows": self.rows,
            "transfers": self.transfers(),
            "prior": self.prior.to_dict(),
            "priors": {task: prior.to_dict() for task, prior in self.priors.items()},
        }
        return json.dumps(json_ready(payload), indent=2, allow_nan=False)

    def _lines(self):
        head = ["population", *TRANSFER_RULES.values()]
        body = [
            [f"{r['task']} ({r['random_state']})", *(f"{r[k]:+.2f}" for k in TRANSFER_RULES)]
            for r in self.rows
        ]
        return head, body

    def _verdict(self):
        found = self.transfers()
        if found:
            return "Transfers (Spearman >= 0.6 on every task left out): " + ", ".join(found)
        return (
            "Nothing without a finished trial reaches Spearman >= 0.6 on every task left out: "
            "the pruner starts blind, and waits for its startup trials"
        )

    def table(self):
        """The rows as text."""
        head, body = self._lines()
        lines = [
            "Without any finished trial: Spearman with the final accuracy, each task left out "
            f"of the fit ({', '.join(self.settings['tasks'])})"
        ]
        for row in body:
            lines.append("  " + row[0])
            lines += [f"    {h}: {v}" for h, v in zip(head[1:], row[1:])]
        return "\n".join([*lines, self._verdict()])

    def markdown(self):
        """The rows as a Markdown table."""
        head, body = self._lines()
        lines = [
            "Without any finished trial: Spearman's correlation with the final accuracy, "
            "each task left out of the fit.",
            "",
            *markdown_table(head, body),
        ]
        return "\n".join([*lines, "", self._verdict() + "."])


def transfer_study(
    tasks=("digits", "digits_pixel", "char_text"),
    random_states=(0, 2),
    *,
    n_models=None,
    device="auto",
    n_jobs=None,
    cache_dir=None,
):
    """Rank each task's networks with nothing learnt from that task.

    Parameters
    ----------
    tasks : sequence of str or StudyTask
        At least two.
    random_states : sequence of int, default=(0, 2)
        The populations of each task.
    n_models, device, n_jobs, cache_dir
        As for :func:`population_features`.

    Returns
    -------
    TransferResult
    """
    tasks = list(tasks)
    if len(tasks) < 2:
        raise ValueError(f"leaving one task out needs at least two tasks, got {tasks}")
    populations = {}
    names = []
    for task in tasks:
        for seed in random_states:
            spec, features, population = population_features(
                task,
                n_models=n_models,
                device=device,
                random_state=seed,
                n_jobs=n_jobs,
                cache_dir=cache_dir,
                verbose=0,
            )
            populations[(spec.name, seed)] = {
                "spectra": features["early"],
                "early_accuracy": features["accuracy"][:, 0],
                "final": population.val_accuracy[:, -1],
            }
        names.append(spec.name)
    rows = transfer_rows(populations)
    priors = {
        name: fit_prior([p for (task, _), p in populations.items() if task != name])
        for name in names
    }
    settings = {
        "tasks": names,
        "random_states": list(random_states),
        "target": "validation accuracy after the last epoch",
        "versions": library_versions(),
    }
    return TransferResult(
        settings=settings, rows=rows, priors=priors, prior=fit_prior(populations.values())
    )
