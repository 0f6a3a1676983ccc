"""What the study measured: the table, the paired comparisons, JSON and figures."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["StudyResult"]

# AeLLE "leads" when no other spectrum-only predictor's mean Spearman is
# higher by more than this.
LEAD_TOLERANCE = 0.02


@dataclass
class StudyResult:
    """Everything :func:`~sklyap.study.run_study` measured.

    Attributes
    ----------
    settings : dict
        The task, population, spectra and cross-validation settings.
    rows : list of dict
        One per predictor: ``spectra``, ``predictor``, ``spectrum_only``, and
        for each of ``spearman``, ``r2``, ``top_quartile`` and ``auc`` the
        mean over repeats, ``<metric>_std`` and ``<metric>_per_repeat``.
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
    y: np.ndarray
    early_accuracy: np.ndarray
    spectra: dict
    oof: dict
    embedding: dict
    hyperparameters: list
    timings: dict = field(default_factory=dict)

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
            higher), ``n_repeats``, ``criterion`` and ``leads``.
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

    @staticmethod
    def _paired(row, other, tolerance):
        d = np.subtract(row["spearman_per_repeat"], other["spearman_per_repeat"])
        return {
            "spectra": row["spectra"],
            "predictor": row["predictor"],
            "against": other["predictor"],
            "mean_difference": float(d.mean()),
            "std_difference": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
            "wins": int((d > 0).sum()),
            "n_repeats": len(d),
            "criterion": f"above, or within {tolerance:g}" if tolerance else "above",
            "leads": bool(d.mean() >= -tolerance if tolerance else d.mean() > 0),
        }

    def table(self):
        """The results as aligned text: mean ± standard deviation over repeats."""
        s = self.settings
        header = (
            f"{s['title']}: {s['n_models']} networks, final test accuracy "
            f"{self.y.min():.2f} to {self.y.max():.2f}; {s['n_repeats']} x {s['n_splits']}-fold "
            "cross-validation grouped by network, mean ± std over repeats"
        )
        cols = f"{'spectra':14} {'predictor':50} {'Spearman':>11} {'R^2':>12} {'top-25%':>11} {'AUC top half':>12}"
        lines = [header, "", cols, "-" * len(cols)]
        for r in self.rows:
            cells = []
            for metric in ("spearman", "r2", "top_quartile", "auc"):
                if np.isnan(r[metric]):
                    cells.append("-")
                else:
                    cells.append(f"{r[metric]:.2f} ± {r[f'{metric}_std']:.2f}")
            lines.append(
                f"{self._label(r['spectra']):14} {r['predictor']:50} {cells[0]:>11} "
                f"{cells[1]:>12} {cells[2]:>11} {cells[3]:>12}"
            )
        lines += ["", "Paired comparisons of Spearman over the same splits:"]
        for c in self.comparisons():
            verdict = ("leads: " if c["leads"] else "does not lead: not ") + c["criterion"]
            lines.append(
                f"  {self._label(c['spectra'])}: {c['predictor']} - {c['against']} = "
                f"{c['mean_difference']:+.3f} ± {c['std_difference']:.3f}, higher in "
                f"{c['wins']} of {c['n_repeats']} repeats ({verdict})"
            )
        return "\n".join(lines)

    def to_json(self):
        """Settings, rows, comparisons and timings as JSON text."""
        payload = {
            "settings": self.settings,
            "rows": self.rows,
            "comparisons": self.comparisons(),
            "timings": self.timings,
        }
        return json.dumps(_json_ready(payload), indent=2, allow_nan=False)

    def save_figures(self, folder):
        """Write spectra, embedding, predicted-vs-true, ROC and score figures to ``folder``.

        Returns
        -------
        list of Path
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

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
            plt.close(fig)

        keys = ("final", "early")
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
        for ax, key in zip(axes, keys):
            plot_spectra(self.spectra[key], self.y, ax=ax, label="final test accuracy")
            ax.set_title(f"{self._label(key)} spectra")
        save(fig, "spectra.png")

        fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
        for ax, key in zip(axes, keys):
            plot_embedding(self.embedding[key], self.y, ax=ax, label="final test accuracy")
            ax.set_title(f"AeLLE embedding, {self._label(key)} spectra")
        save(fig, "embedding.png")

        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
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
        fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), layout="constrained")
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

        fig, ax = plt.subplots(figsize=(8, 0.32 * len(self.rows) + 1.2), layout="constrained")
        plot_scores(
            self.rows,
            metric="spearman",
            labels=[self._label(r["spectra"]) for r in self.rows],
            ax=ax,
        )
        ax.set_title(f"{self.settings['title']}: Spearman, mean ± std over repeats", fontsize=10)
        save(fig, "scores.png")
        return paths


def _json_ready(value):
    """Numbers as Python numbers, NaN as null (JSON has no NaN), recursively."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
