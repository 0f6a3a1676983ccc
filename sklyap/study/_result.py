"""What the study measured: the table, the paired comparisons, JSON and figures.

At about 530 lines this module is just over the ~500 the package keeps to:
nearly a fifth of it is :meth:`StudyResult.save_figures`, which draws from the same
rows the tables are written from.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._tables import markdown_table

__all__ = ["StudyResult"]

# AeLLE "leads" when no other spectrum-only predictor's mean Spearman is
# higher by more than this.
LEAD_TOLERANCE = 0.02

METRICS = ("spearman", "r2", "top_quartile", "auc")

# Settings that belong to one population and may differ between pooled ones.
_PER_POPULATION = {"random_state", "top_half_threshold", "accuracy_range", "versions"}


def summarise(metric, values):
    """A row's entries for one metric: mean and standard deviation over runs, and the runs."""
    values = np.asarray(values, dtype=float)
    return {
        metric: float(values.mean()),
        f"{metric}_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        f"{metric}_per_repeat": [float(v) for v in values],
    }


def _nan_for_none(value):
    """JSON's null back to NaN (see :func:`json_ready`), in numbers and lists of numbers."""
    if value is None:
        return np.nan
    if isinstance(value, list):
        return [np.nan if v is None else v for v in value]
    return value


@dataclass
class StudyResult:
    """Everything :func:`~sklyap.study.run_study` measured.

    A result read back from JSON (:meth:`from_json`) or pooled over
    populations (:meth:`pool`) keeps ``settings``, ``rows`` and ``timings``;
    its arrays (``y`` to ``hyperparameters``) are None.

    Attributes
    ----------
    settings : dict
        The task, population, spectra and cross-validation settings.
    rows : list of dict
        One per predictor: ``spectra``, ``predictor``, ``spectrum_only``, and
        for each of ``spearman``, ``r2``, ``top_quartile`` and ``auc`` the
        mean over repeats, ``<metric>_std`` and ``<metric>_per_repeat``
        (pooled: also ``<metric>_per_population``).
    y : ndarray of shape (n_models,)
        Final test accuracy of every network.
    early_accuracy : ndarray of shape (n_models,)
        Validation accuracy after the early epoch.
    spectra : dict of ndarray
        ``final``, ``early`` and ``final_novel`` spectra, (n_models, n_features).
    oof : dict
        Out-of-fold predictions per row key ``(spectra, predictor)``: arrays of
        shape (n_repeats, n_models) under ``prediction`` (and ``std``,
        ``novel``).
    embedding : dict of ndarray
        AeLLE's embedding of the ``final`` and ``early`` spectra, fitted on
        every network.
    hyperparameters : list of dict
    timings : dict
    """

    settings: dict
    rows: list
    y: np.ndarray = None
    early_accuracy: np.ndarray = None
    spectra: dict = None
    oof: dict = None
    embedding: dict = None
    hyperparameters: list = None
    timings: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, text):
        """A result read back from :meth:`to_json`: settings, rows and timings.

        The arrays (accuracies, spectra, out-of-fold predictions, embedding)
        are not saved in JSON and are None; :meth:`table`,
        :meth:`comparisons` and :meth:`pool` work without them,
        :meth:`save_figures` does not.

        Parameters
        ----------
        text : str
            What :meth:`to_json` wrote (for example a study's
            ``results.json``).

        Returns
        -------
        StudyResult
        """
        payload = json.loads(text)
        missing = {"settings", "rows"} - set(payload)
        if missing:
            raise ValueError(f"not a study's JSON: no {sorted(missing)} in it")
        rows = [{k: _nan_for_none(v) for k, v in row.items()} for row in payload["rows"]]
        return cls(settings=payload["settings"], rows=rows, timings=payload.get("timings", {}))

    @classmethod
    def pool(cls, results):
        """The results of the same study on independent populations, as one.

        Each population (a study run with its own ``random_state``: its own
        trained networks, driving inputs and splits) contributes its repeats;
        every row's scores are the concatenation of the populations' repeats,
        in the order given, so that the comparisons stay paired (the same
        population and splits for every predictor). Means and standard
        deviations are then taken over all runs, and the standard deviation
        includes the differences between populations. Rows also carry
        ``<metric>_per_population``, the mean of each population.

        Parameters
        ----------
        results : sequence of StudyResult
            At least two, of the same task, settings and rows, with distinct
            ``random_state``.

        Returns
        -------
        StudyResult
            Without arrays (see :meth:`from_json`). Its settings hold
            ``n_populations`` and, per population, the lists of
            ``random_state``, ``top_half_threshold`` (each population's
            median accuracy, which defines its top half) and ``versions``;
            ``accuracy_range`` spans all populations (dropped when one lacks
            it). Its timings are the sums over the populations.

        Raises
        ------
        ValueError
            For fewer than two results, a result that is already pooled, a
            repeated ``random_state``, settings that differ in anything but
            the per-population ones above, rows that differ, or a row whose
            repeats disagree with its ``n_repeats``.
        """
        results = list(results)
        if len(results) < 2 or not all(isinstance(r, StudyResult) for r in results):
            raise ValueError(
                f"pool needs at least two StudyResult, got {[type(r).__name__ for r in results]}"
            )
        first = results[0]
        seeds = []
        for r in results:
            if r.settings.get("n_populations", 1) != 1:
                raise ValueError("pool takes results of one population each, not pooled ones")
            differs = sorted(
                k
                for k in set(first.settings) | set(r.settings)
                if k not in _PER_POPULATION and first.settings.get(k) != r.settings.get(k)
            )
            if differs:
                raise ValueError(
                    f"cannot pool studies whose settings differ in {differs}: "
                    f"{[first.settings.get(k) for k in differs]} against "
                    f"{[r.settings.get(k) for k in differs]}"
                )
            keys = [(row["spectra"], row["predictor"]) for row in r.rows]
            expected = [(row["spectra"], row["predictor"]) for row in first.rows]
            if keys != expected:
                only_first = [k for k in expected if k not in keys]
                only_this = [k for k in keys if k not in expected]
                seed, other = first.settings.get("random_state"), r.settings.get("random_state")
                raise ValueError(
                    "cannot pool studies with different rows (spectra, predictor): "
                    + (
                        f"only random_state {seed} has {only_first}, "
                        f"only random_state {other} has {only_this}"
                        if only_first or only_this
                        else f"random_state {other} has them in another order"
                    )
                )
            for row in r.rows:
                if len(row["spearman_per_repeat"]) != r.settings["n_repeats"]:
                    raise ValueError(
                        f"row {row['predictor']!r} on {row['spectra']!r} spectra of "
                        f"random_state {r.settings['random_state']} holds "
                        f"{len(row['spearman_per_repeat'])} repeats, its settings "
                        f"n_repeats={r.settings['n_repeats']}"
                    )
            seeds.append(r.settings["random_state"])
        if len(set(seeds)) != len(seeds):
            raise ValueError(
                f"the populations must be independent: random_state {seeds} repeats a seed"
            )
        settings = dict(first.settings)
        settings["random_state"] = seeds
        settings["n_populations"] = len(results)
        settings["top_half_threshold"] = [r.settings["top_half_threshold"] for r in results]
        settings["versions"] = [r.settings.get("versions") for r in results]
        ranges = [r.settings.get("accuracy_range") for r in results]
        if all(ranges):
            settings["accuracy_range"] = [min(a for a, _ in ranges), max(b for _, b in ranges)]
        else:
            settings.pop("accuracy_range", None)
        rows = []
        for i, row in enumerate(first.rows):
            members = [r.rows[i] for r in results]
            pooled = {k: row[k] for k in ("spectra", "predictor", "spectrum_only")}
            for metric in METRICS:
                pooled.update(
                    summarise(metric, [v for m in members for v in m[f"{metric}_per_repeat"]])
                )
                pooled[f"{metric}_per_population"] = [m[metric] for m in members]
            rows.append(pooled)
        timings = {}
        for r in results:
            for k, v in r.timings.items():
                timings[k] = timings.get(k, 0.0) + v
        return cls(settings=settings, rows=rows, timings=timings)

    def _label(self, spectra):
        if spectra == "none":
            return "(none)"
        epoch = self.settings[f"{spectra}_epoch"]
        return f"{spectra} (ep {epoch})"

    def row(self, spectra, predictor):
        """The row of ``predictor`` on ``spectra`` ("final", "early" or "none")."""
        for row in self.rows:
            if row["spectra"] == spectra and row["predictor"] == predictor:
                return row
        raise KeyError(f"no row {predictor!r} on {spectra!r} spectra")

    def comparisons(self):
        """Paired comparisons over repeats (the same splits), on Spearman.

        For the final and early spectra: AeLLE against the best other
        predictor that reads only spectra; it ``leads`` when its mean is
        above, or below by at most 0.02. On the early spectra also AeLLE on
        the spectra and the early accuracy against that accuracy alone: it
        ``leads`` only when its mean is above (the question is whether the
        spectra add to the learning curve).

        Returns
        -------
        list of dict
            ``spectra``, ``predictor``, ``against``, ``mean_difference``,
            ``std_difference``, ``wins`` (repeats in which ``predictor`` is
            higher), ``n_repeats`` (the paired repeats: over all populations
            of a pooled result), ``criterion`` and ``leads``; for a pooled
            result also ``mean_difference_per_population`` and
            ``leads_per_population`` (the criterion applied to each
            population's mean difference), while ``leads`` and the choice of
            the best other predictor go by the pooled means.
        """
        out = []
        for key in ("final", "early"):
            others = [
                r
                for r in self.rows
                if r["spectra"] == key and r["spectrum_only"] and r["predictor"] != "AeLLE"
            ]
            if not others:
                continue
            best = max(others, key=lambda r: r["spearman"])
            out.append(self._paired(self.row(key, "AeLLE"), best, LEAD_TOLERANCE))
        with_accuracy = [r for r in self.rows if r["predictor"].startswith("AeLLE on spectra + ")]
        alone = [r for r in self.rows if r["predictor"].startswith("val. accuracy at epoch")]
        if with_accuracy and alone:
            out.append(self._paired(with_accuracy[0], alone[0], 0.0))
        return out

    def _paired(self, row, other, tolerance):
        d = np.subtract(row["spearman_per_repeat"], other["spearman_per_repeat"])

        def leads(mean):
            return bool(mean >= -tolerance if tolerance else mean > 0)

        extra = {}
        n_populations = self.settings.get("n_populations", 1)
        if n_populations > 1:
            per_population = d.reshape(n_populations, -1).mean(axis=1)
            extra["mean_difference_per_population"] = [float(v) for v in per_population]
            extra["leads_per_population"] = [leads(v) for v in per_population]
        return {
            "spectra": row["spectra"],
            "predictor": row["predictor"],
            "against": other["predictor"],
            "mean_difference": float(d.mean()),
            "std_difference": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
            "wins": int((d > 0).sum()),
            "n_repeats": len(d),
            "criterion": f"above, or within {tolerance:g}" if tolerance else "above",
            "leads": leads(d.mean()),
            **extra,
        }

    def _header(self):
        s = self.settings
        n_populations = s.get("n_populations", 1)
        if self.y is not None:
            low, high = self.y.min(), self.y.max()
        else:
            low, high = s.get("accuracy_range", (np.nan, np.nan))
        if n_populations == 1:
            header = f"{s['title']}: {s['n_models']} networks"
        else:
            seeds = ", ".join(str(v) for v in s["random_state"])
            header = (
                f"{s['title']}: {n_populations} populations of {s['n_models']} networks "
                f"(random_state {seeds})"
            )
        if np.isfinite(low):
            header += f", final test accuracy {low:.2f} to {high:.2f}"
        return header + (
            f"; {s['n_repeats']} x {s['n_splits']}-fold cross-validation grouped by network"
            + ("" if n_populations == 1 else " on each")
            + f", mean ± std over {self._runs}"
        )

    @property
    def _runs(self):
        return "repeats" if self.settings.get("n_populations", 1) == 1 else "runs"

    @staticmethod
    def _cells(row):
        """Mean ± std of each metric ("-" where undefined), and the populations' Spearman."""
        cells = [
            "-" if np.isnan(row[m]) else f"{row[m]:.2f} ± {row[f'{m}_std']:.2f}" for m in METRICS
        ]
        per_population = " / ".join(f"{v:.2f}" for v in row.get("spearman_per_population", []))
        return cells, per_population

    def _comparison_lines(self):
        lines = []
        for c in self.comparisons():
            verdict = ("leads: " if c["leads"] else "does not lead: not ") + c["criterion"]
            if "leads_per_population" in c:
                each = c["leads_per_population"]
                verdict += f" on the pooled mean; on {sum(each)} of {len(each)} populations alone"
            by_population = "".join(
                f"; random_state {seed}: {v:+.3f}"
                for seed, v in zip(
                    np.atleast_1d(self.settings["random_state"]),
                    c.get("mean_difference_per_population", []),
                )
            )
            lines.append(
                f"{self._label(c['spectra'])}: {c['predictor']} - {c['against']} = "
                f"{c['mean_difference']:+.3f} ± {c['std_difference']:.3f}, higher in "
                f"{c['wins']} of {c['n_repeats']} {self._runs} ({verdict}){by_population}"
            )
        return lines

    def table(self):
        """The results as aligned text: mean ± standard deviation over repeats
        (over all runs of all populations, for a pooled result), then the
        paired comparisons."""
        pooled = self.settings.get("n_populations", 1) > 1
        width = max([len("per popul.")] + [len(self._cells(r)[1]) for r in self.rows])
        names = max(len(r["predictor"]) for r in self.rows)
        cols = (
            f"{'spectra':14} {'predictor':{names}} {'Spearman':>11} "
            + (f"{'per popul.':>{width}} " if pooled else "")
            + f"{'R^2':>12} {'top-25%':>11} {'AUC top half':>12}"
        )
        lines = [self._header(), "", cols, "-" * len(cols)]
        for r in self.rows:
            cells, per_population = self._cells(r)
            lines.append(
                f"{self._label(r['spectra']):14} {r['predictor']:{names}} {cells[0]:>11} "
                + (f"{per_population:>{width}} " if pooled else "")
                + f"{cells[1]:>12} {cells[2]:>11} {cells[3]:>12}"
            )
        lines += ["", "Paired comparisons of Spearman over the same splits:"]
        lines += [f"  {line}" for line in self._comparison_lines()]
        return "\n".join(lines)

    def markdown(self):
        """The results as a Markdown table and list, for reports.

        The same figures as :meth:`table`; AeLLE's rows are in bold.

        Returns
        -------
        str
        """
        pooled = self.settings.get("n_populations", 1) > 1
        head = ["spectra", "predictor", "Spearman"]
        if pooled:
            seeds = " / ".join(str(v) for v in self.settings["random_state"])
            head.append(f"Spearman per population ({seeds})")
        head += ["R²", "top-25%", "AUC top half"]
        body = []
        for r in self.rows:
            cells, per_population = self._cells(r)
            name, first = r["predictor"], cells[0]
            if name == "AeLLE":
                name, first = f"**{name}**", f"**{first}**"
            row = [self._label(r["spectra"]), name, first]
            if pooled:
                row.append(per_population)
            body.append(row + cells[1:])
        lines = [self._header() + ".", "", *markdown_table(head, body)]
        lines += ["", "Paired comparisons of Spearman on the same splits:", ""]
        lines += [f"* {line}" for line in self._comparison_lines()]
        return "\n".join(lines)

    def to_json(self):
        """Settings, rows, comparisons and timings as JSON text."""
        payload = {
            "settings": self.settings,
            "rows": self.rows,
            "comparisons": self.comparisons(),
            "timings": self.timings,
        }
        return json.dumps(json_ready(payload), indent=2, allow_nan=False)

    #: The files :meth:`save_figures` writes.
    FIGURES = ("spectra.png", "embedding.png", "predicted_vs_true.png", "roc.png", "scores.png")

    def save_figures(self, folder):
        """Write spectra, embedding, predicted-vs-true, ROC and score figures to ``folder``.

        The files are named as in :attr:`FIGURES`.

        Returns
        -------
        list of Path
        """
        if self.y is None:
            raise ValueError(
                "no figures from a result without its arrays (read from JSON, or pooled); "
                "save the figures of each population's run_study result"
            )
        # Figures of their own, not pyplot's: nothing here touches the backend
        # the caller chose, nor pyplot's list of open figures.
        from matplotlib.figure import Figure

        from ..plotting import (
            plot_embedding,
            plot_predicted_vs_true,
            plot_roc,
            plot_scores,
            plot_spectra,
        )

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []

        def save(fig, name):
            paths.append(folder / name)
            fig.savefig(paths[-1], dpi=120)

        keys = ("final", "early")
        fig = Figure(figsize=(10, 4), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, key in zip(axes, keys):
            plot_spectra(self.spectra[key], self.y, ax=ax, label="final test accuracy")
            ax.set_title(f"{self._label(key)} spectra")
        save(fig, "spectra.png")

        fig = Figure(figsize=(10, 4), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, key in zip(axes, keys):
            plot_embedding(self.embedding[key], self.y, ax=ax, label="final test accuracy")
            ax.set_title(f"AeLLE embedding, {self._label(key)} spectra")
        save(fig, "embedding.png")

        fig = Figure(figsize=(10, 4.2), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, key in zip(axes, keys):
            out = self.oof[(key, "AeLLE")]
            plot_predicted_vs_true(
                self.y,
                out["prediction"][0],
                y_err=out.get("std", [None])[0],
                ax=ax,
                label="final test accuracy",
            )
            ax.set_title(
                f"AeLLE, {self._label(key)} spectra (out of fold, repeat 1): " + ax.get_title(),
                fontsize=9,
            )
        save(fig, "predicted_vs_true.png")

        top_half = self.y >= self.settings["top_half_threshold"]
        fig = Figure(figsize=(9, 4.2), layout="constrained")
        axes = fig.subplots(1, 2)
        for ax, key in zip(axes, keys):
            curves = {}
            accuracy = f"val. accuracy at epoch {self.settings['early_epoch']}"
            names = ["AeLLEClassifier (top half)", "AeLLE", "random forest on raw spectra"]
            if key == "early":
                names.append(f"AeLLE on spectra + {accuracy}")
            for name in names:
                if (key, name) in self.oof:
                    curves[name] = self.oof[(key, name)]["prediction"][0]
            if key == "early":
                curves[accuracy] = self.early_accuracy
            plot_roc(top_half, curves, ax=ax)
            ax.set_title(f"top half from {self._label(key)} spectra (out of fold)", fontsize=9)
        save(fig, "roc.png")

        fig = Figure(figsize=(8, 0.32 * len(self.rows) + 1.2), layout="constrained")
        ax = fig.subplots()
        plot_scores(
            self.rows,
            metric="spearman",
            labels=[self._label(r["spectra"]) for r in self.rows],
            ax=ax,
        )
        ax.set_title(f"{self.settings['title']}: Spearman, mean ± std over repeats", fontsize=10)
        save(fig, "scores.png")
        return paths


def json_ready(value):
    """Numbers as Python numbers, NaN as null (JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
