"""What a sweep measured: :class:`SweepResult`, its tables and the anytime figure.

The policies :func:`~sklyap.study.run_sweep` compares are named here
(:data:`POLICIES`), with the results it reports on them: per population
(:class:`SweepResult`) and pooled over populations (:func:`pooled_markdown`,
:func:`plot_anytime`).
"""

import json
from dataclasses import dataclass, field

import numpy as np

from ._replay import BUDGETS
from ._result import json_ready
from ._tables import markdown_table

__all__ = [
    "LYAPUNOV_PRUNERS",
    "OPTUNA_PRUNERS",
    "POLICIES",
    "SweepResult",
    "plot_anytime",
    "pooled_markdown",
]

#: The policies compared, by key: what each is, in a few words.
POLICIES = {
    "none": "no pruning",
    "median": "Optuna MedianPruner",
    "halving": "Optuna SuccessiveHalvingPruner",
    "hyperband": "Optuna HyperbandPruner",
    "lyapunov": "LyapunovPruner on spectra, no prior",
    "lyapunov+score": "LyapunovPruner on spectra + early score, no prior",
    "lyapunov+prior": "LyapunovPruner, its defaults (spectra + score, startup prior)",
    "lyapunov+median": "LyapunovPruner (its defaults) around MedianPruner",
    "pilot": "pilot-based selection (pilot counted)",
    "halving-search": "HalvingGridSearchCV",
}
#: Optuna's own pruners, against the best of which each LyapunovPruner row is paired.
OPTUNA_PRUNERS = ("median", "halving", "hyperband")
LYAPUNOV_PRUNERS = ("lyapunov", "lyapunov+score", "lyapunov+prior", "lyapunov+median")


@dataclass
class SweepResult:
    """What :func:`run_sweep` measured on one population.

    Attributes
    ----------
    settings : dict
    rows : list of dict
        One per policy and number of workers: ``key`` (of :data:`POLICIES`),
        ``policy``, ``workers``, and for each metric of
        :data:`~sklyap.study._replay.REPLAY_METRICS` its mean, ``_std`` and
        ``_per_repeat`` (per order). The pilot and ``HalvingGridSearchCV``
        do not depend on the workers: their rows repeat for each.
    curves : list of dict
        ``key``, ``workers``, ``grid`` (fractions of the epochs of training
        every network to the end, in steps of 0.01 up to the most any policy
        spent) and ``regret`` (mean over orders of the
        regret of what had finished by then): the anytime figure's lines.
    timings : dict
    """

    settings: dict
    rows: list
    curves: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    def row(self, key, workers):
        """The row of policy ``key`` with ``workers`` workers."""
        for r in self.rows:
            if r["key"] == key and r["workers"] == workers:
                return r
        raise KeyError(f"no row for policy {key!r} with {workers} workers")

    def best_optuna(self, workers):
        """The key of Optuna's pruner of lowest mean regret over the budgets."""

        def cost(key):
            row = self.row(key, workers)
            return (np.mean([row[f"regret_at_{int(100 * b)}"] for b in BUDGETS]), key)

        return min(OPTUNA_PRUNERS, key=cost)

    def comparisons(self):
        """Each LyapunovPruner row against the best of Optuna's pruners, paired over orders.

        Returns
        -------
        list of dict
            ``policy``, ``against``, ``workers``, ``n_orders``, and for each
            budget's regret and top-10% recall and the final recall:
            ``<metric>_difference`` (mean
            of the per-order differences), ``<metric>_better`` (orders in
            which the policy is better: lower regret, higher recall) and
            ``<metric>_equal``.
        """
        out = []
        metrics = [(f"regret_at_{int(100 * b)}", -1) for b in BUDGETS]
        metrics += [(f"top10_recall_at_{int(100 * b)}", 1) for b in BUDGETS]
        metrics += [("top10_recall", 1)]
        for workers in self.settings["workers"]:
            best = self.best_optuna(workers)
            for key in LYAPUNOV_PRUNERS:
                row, baseline = self.row(key, workers), self.row(best, workers)
                item = {"policy": key, "against": best, "workers": workers}
                for metric, sign in metrics:
                    d = np.subtract(row[f"{metric}_per_repeat"], baseline[f"{metric}_per_repeat"])
                    item[f"{metric}_difference"] = float(d.mean())
                    item[f"{metric}_better"] = int((sign * d > 1e-12).sum())
                    item[f"{metric}_equal"] = int((np.abs(d) <= 1e-12).sum())
                item["n_orders"] = len(d)
                out.append(item)
        return out

    def to_json(self):
        """Settings, rows, curves, comparisons and timings as JSON text."""
        payload = {
            "settings": self.settings,
            "rows": self.rows,
            "curves": self.curves,
            "comparisons": self.comparisons(),
            "timings": self.timings,
        }
        return json.dumps(json_ready(payload), indent=2, allow_nan=False)

    def _header(self):
        s = self.settings
        return (
            f"{s['title']}, population random_state {s['random_state']}: {s['n_models']} "
            f"networks swept in {s['n_orders']} random orders, {s['n_epochs']} epochs each to "
            f"the end, spectra after epoch {s['early_epoch']}; every epoch counted (the "
            f"pilot's {s['n_pilot']} networks included), and each spectrum as "
            f"{s['spectrum_cost_mean']:.2f} epochs on average; mean ± std over orders"
        )

    _COLUMNS = (
        *(f"regret at {int(100 * b)}%" for b in BUDGETS),
        *(f"top-10% recall at {int(100 * b)}%" for b in BUDGETS[1:]),
        "top-10% recall",
        "epochs",
        "to near-best",
    )

    def _cells(self, row):
        regrets = [
            f"{row[f'regret_at_{int(100 * b)}']:.3f} ± {row[f'regret_at_{int(100 * b)}_std']:.3f}"
            for b in BUDGETS
        ]
        near = np.asarray(row["epochs_to_near_best_per_repeat"], dtype=float)
        found = np.isfinite(near)
        near_text = (
            f"{100 * near[found].mean():.0f}% ({found.sum()}/{len(near)})"
            if found.any()
            else f"never (0/{len(near)})"
        )
        recalls = [
            f"{row[f'{key}']:.2f} ± {row[f'{key}_std']:.2f}"
            for key in (*(f"top10_recall_at_{int(100 * b)}" for b in BUDGETS[1:]), "top10_recall")
        ]
        return (
            *regrets,
            *recalls,
            f"{100 * row['epochs_fraction']:.0f}%",
            near_text,
        )

    def _comparison_lines(self):
        lines = []
        for c in self.comparisons():
            parts = [
                f"regret at {int(100 * b)}% {c[f'regret_at_{int(100 * b)}_difference']:+.3f} "
                f"(lower in {c[f'regret_at_{int(100 * b)}_better']}, equal in "
                f"{c[f'regret_at_{int(100 * b)}_equal']})"
                for b in BUDGETS
            ]
            parts += [
                f"top-10% recall at {int(100 * b)}% "
                f"{c[f'top10_recall_at_{int(100 * b)}_difference']:+.2f} (higher in "
                f"{c[f'top10_recall_at_{int(100 * b)}_better']}, equal in "
                f"{c[f'top10_recall_at_{int(100 * b)}_equal']})"
                for b in BUDGETS
            ]
            lines.append(
                f"{POLICIES[c['policy']]} - {POLICIES[c['against']]}, {c['workers']} "
                f"worker{'s' if c['workers'] > 1 else ''}, {c['n_orders']} orders: "
                + "; ".join(parts)
            )
        return lines

    def table(self):
        """The rows as aligned text."""
        width = max(len(r["policy"]) for r in self.rows)
        heads = ("workers", *self._COLUMNS)
        cells = [(str(r["workers"]), *self._cells(r)) for r in self.rows]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
        cols = f"{'policy':{width}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, widths))
        lines = [self._header(), "", cols, "-" * len(cols)]
        for r in self.rows:
            cells = (str(r["workers"]), *self._cells(r))
            lines.append(
                f"{r['policy']:{width}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths))
            )
        lines.append(
            "\nregret at b%: best final accuracy of all networks minus the best of those "
            "finished within b% of the epochs of training all to the end (minus the worst "
            "network's, when none had finished); to near-best: "
            "epochs until one within 0.005 of the best finished (orders in which one did)"
            "\n\nPaired over the same orders, against the best of Optuna's pruners:"
        )
        lines += [f"  {line}" for line in self._comparison_lines()]
        return "\n".join(lines)

    def markdown(self):
        """The rows as a Markdown table."""
        body = [[r["policy"], r["workers"], *self._cells(r)] for r in self.rows]
        lines = [
            self._header() + ".",
            "",
            *markdown_table(["policy", "workers", *self._COLUMNS], body),
        ]
        lines += ["", "Paired over the same orders, against the best of Optuna's pruners:", ""]
        lines += [f"* {line}" for line in self._comparison_lines()]
        return "\n".join(lines)

    def plot(self, ax=None, *, workers=1):
        """The anytime figure of this population: :func:`plot_anytime` of it alone,
        its regret axis from 0 up to what the curves reach.

        Returns
        -------
        matplotlib Axes
        """
        (ax,) = plot_anytime([self], workers=workers, axes=None if ax is None else [ax], ymax=None)
        return ax


def pooled_markdown(results, *, workers=1, keys=None):
    """One Markdown table of several populations' results, pooled by task.

    Each cell is the mean ± std over every order of every population of the
    task; ``keys`` selects the policies (all by default).

    Parameters
    ----------
    results : list of SweepResult
    workers : int, default=1
    keys : sequence of str, default=None

    Returns
    -------
    str
    """
    keys = list(POLICIES) if keys is None else list(keys)
    columns = [f"regret_at_{int(100 * b)}" for b in BUDGETS]
    columns += [f"top10_recall_at_{int(100 * b)}" for b in BUDGETS[1:]]
    heads = [f"regret at {int(100 * b)}%" for b in BUDGETS]
    heads += [f"top-10% recall at {int(100 * b)}%" for b in BUDGETS[1:]]
    body = []
    tasks = list(dict.fromkeys(r.settings["task"] for r in results))
    for task in tasks:
        mine = [r for r in results if r.settings["task"] == task]
        title = mine[0].settings["title"]
        seeds = ", ".join(str(r.settings["random_state"]) for r in mine)
        for key in keys:
            rows = [r.row(key, workers) for r in mine]
            cells = []
            for column, digits in zip(columns, [3, 3, 3, 2, 2]):
                values = np.concatenate([row[f"{column}_per_repeat"] for row in rows])
                cells.append(f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}")
            epochs = np.concatenate([row["epochs_fraction_per_repeat"] for row in rows])
            cells.append(f"{100 * epochs.mean():.0f}%")
            body.append([f"{title} ({seeds})", POLICIES[key], *cells])
    return "\n".join(markdown_table(["task", "policy", *heads, "epochs"], body))


def plot_anytime(results, *, workers=1, axes=None, ymax=0.06):
    """The anytime figure of several populations, pooled by task: mean regret of what
    had finished against the epochs spent, one panel per task.

    Parameters
    ----------
    results : list of SweepResult
    workers : int, default=1
    axes : sequence of matplotlib Axes, default=None
        One per task; None makes a figure.
    ymax : float or None, default=0.06
        Upper limit of the regret axis (a search that has finished nothing
        yet sits far above it); None leaves it to the curves.

    Returns
    -------
    list of matplotlib Axes
    """
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r.settings["task"] for r in results))
    if axes is None:
        _, axes = plt.subplots(
            1, len(tasks), figsize=(4.6 * len(tasks), 3.6), layout="constrained", squeeze=False
        )
        axes = axes[0]
    for ax, task in zip(axes, tasks):
        mine = [r for r in results if r.settings["task"] == task]
        for i, key in enumerate(POLICIES):
            curves = [
                c for r in mine for c in r.curves if c["key"] == key and c["workers"] == workers
            ]
            # Populations' grids share their steps and may end apart: past its
            # end a curve keeps its last value (nothing more finishes).
            grid = max((c["grid"] for c in curves), key=len)
            regret = np.mean(
                [
                    np.pad(c["regret"], (0, len(grid) - len(c["regret"])), mode="edge")
                    for c in curves
                ],
                axis=0,
            )
            ax.plot(
                100 * np.asarray(grid),
                regret,
                "-" if key.startswith("lyapunov") else "--",
                color=f"C{i}",
                lw=1.8 if key.startswith("lyapunov") else 1.2,
                label=POLICIES[key],
            )
        for budget in BUDGETS:
            ax.axvline(100 * budget, color="0.85", lw=0.8, zorder=0)
        seeds = ", ".join(str(r.settings["random_state"]) for r in mine)
        ax.set_title(f"{mine[0].settings['title']}\npopulations {seeds}", fontsize=9)
        ax.set_xlabel("epochs spent (% of training all to the end)")
        ax.set_xlim(0, 100 * max(max(c["grid"]) for r in mine for c in r.curves))
        ax.set_ylim(0, ymax)
    axes[0].set_ylabel(f"regret, {workers} worker{'s' if workers > 1 else ''}")
    axes[-1].legend(fontsize=6, loc="upper right")
    return list(axes)
