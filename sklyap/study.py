"""The AeLLE study end to end: train a population, take spectra, predict accuracy.

This is what ``python -m sklyap demo`` runs. It trains (or loads from the
cache) a population of RNNs on sequential digits, computes their Lyapunov
spectra at the last epoch and at an early epoch, and cross-validates
:class:`~sklyap.AeLLERegressor` against simpler predictors of each network's
final test accuracy.
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._validation import check_device, check_int
from .aelle import AeLLERegressor
from .datasets import digit_streams, load_sequential_digits, train_rnn_population
from .features import SpectrumStatistics
from .transformer import LyapunovSpectrumTransformer

__all__ = ["StudyResult", "run_aelle_study", "top_quartile_precision"]


def top_quartile_precision(y_true, y_pred):
    """Fraction of the networks predicted to be in the top quarter that truly are."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = max(1, int(round(len(y_true) / 4)))
    true_top = set(np.argsort(-y_true, kind="stable")[:k])
    pred_top = np.argsort(-y_pred, kind="stable")[:k]
    return sum(i in true_top for i in pred_top) / k


def _scores(y, pred):
    return dict(
        r2=float(r2_score(y, pred)),
        spearman=float(spearmanr(y, pred).statistic),
        top_quartile=float(top_quartile_precision(y, pred)),
    )


def _oof_predictions(estimator, X, y, groups, n_splits, X_test=None):
    """Out-of-fold predictions, grouped by network; optionally tested on other features."""
    X_test = X if X_test is None else X_test
    pred = np.empty(len(y))
    for train, test in GroupKFold(n_splits=n_splits).split(X, y, groups):
        model = clone(estimator).fit(X[train], y[train])
        pred[test] = model.predict(X_test[test])
    return pred


@dataclass
class StudyResult:
    """Everything the study measured; see :func:`run_aelle_study`."""

    settings: dict
    rows: list
    generalisation: dict
    y: np.ndarray
    spectra: dict
    predictions: dict
    embedding: np.ndarray
    hyperparameters: list
    timings: dict = field(default_factory=dict)

    def table(self):
        """The results as aligned text."""
        lines = [
            f"{'spectra':14} {'predictor':34} {'R^2':>6} {'Spearman':>9} {'top-25%':>8}",
            "-" * 75,
        ]
        for row in self.rows:
            lines.append(
                f"{row['spectra']:14} {row['predictor']:34} {row['r2']:>6.2f} "
                f"{row['spearman']:>9.2f} {row['top_quartile']:>8.2f}"
            )
        g = self.generalisation
        lines += [
            "",
            "Generalisation to novel inputs (AeLLE on final-epoch spectra, "
            "out-of-fold networks):",
            f"  R^2 with the training inputs {g['same_inputs_r2']:.2f}, with novel inputs of the "
            f"same task {g['novel_inputs_r2']:.2f} (Spearman {g['same_inputs_spearman']:.2f} -> "
            f"{g['novel_inputs_spearman']:.2f})",
        ]
        return "\n".join(lines)

    def to_json(self):
        return json.dumps(dict(settings=self.settings, rows=self.rows,
                               generalisation=self.generalisation, timings=self.timings),
                          indent=2)  # fmt: skip

    def save_figures(self, folder):
        """Write spectra.png, embedding.png and predicted_vs_true.png to ``folder``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .plotting import plot_embedding, plot_predicted_vs_true, plot_spectra

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, layout="constrained")
        for ax, key in zip(axes, ("early", "final")):
            plot_spectra(self.spectra[key], self.y, ax=ax, label="final test accuracy")
            ax.set_title(f"{key} spectra (epoch {self.settings[f'{key}_epoch']})")
        paths.append(folder / "spectra.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
        ax = plot_embedding(self.embedding, self.y, label="final test accuracy")
        ax.set_title("AeLLE embedding of final-epoch spectra")
        paths.append(folder / "embedding.png")
        ax.figure.savefig(paths[-1], dpi=120)
        plt.close(ax.figure)
        fig, axes = plt.subplots(1, 2, figsize=(9, 4), layout="constrained")
        for ax, key in zip(axes, ("final", "early")):
            plot_predicted_vs_true(self.y, self.predictions[key], ax=ax, label="accuracy")
            ax.set_title(f"AeLLE, {key} spectra: " + ax.get_title())
        paths.append(folder / "predicted_vs_true.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
        return paths


def run_aelle_study(
    *,
    n_models=60,
    n_epochs=10,
    early_epoch=1,
    n_features=32,
    n_trajectories=8,
    n_images=40,
    warmup_images=8,
    n_splits=5,
    learning_rate_range=(3e-3, 1e-2),
    aelle=None,
    max_train=None,
    device="auto",
    random_state=0,
    n_jobs=None,
    cache_dir=None,
    verbose=1,
):
    """Predict the final accuracy of trained RNNs from their Lyapunov spectra.

    1. Train (or load from the cache) ``n_models`` RNN/GRU/LSTM networks of
       varied size, initialisation scale and learning rate on sequential
       digits (row by row). The learning rate varies within
       ``learning_rate_range``; by default a range in which Adam trains every
       network to near convergence in 10 epochs, so that differences in
       accuracy come from the networks, not from how far the optimiser got.
       Over the wider range of :func:`~sklyap.datasets.train_rnn_population`
       (3e-4 to 3e-2) the learning rate alone explains most of the accuracy
       (``--learning-rate-range 3e-4 3e-2`` on the command line shows it).
    2. Drive every network with the same streams of validation images
       (``n_images`` images read one after another, the first
       ``warmup_images`` as warm-up) and compute its Lyapunov spectrum after
       ``early_epoch`` and after the last epoch, resampled onto ``n_features``
       exponents.
    3. Cross-validate (grouped by network, ``n_splits`` folds) predictors of
       the final test accuracy: AeLLE, ridge regression on the raw spectra,
       ridge on :class:`~sklyap.SpectrumStatistics`, ridge on the
       hyperparameters alone, and (early setting) the early validation
       accuracy itself.
    4. Generalisation: AeLLE trained on spectra taken with the validation
       streams predicts from spectra of the same (held-out) networks taken
       with streams of test images.

    Returns
    -------
    StudyResult
    """
    check_device(device)
    n_models = check_int(n_models, "n_models", minimum=2)
    n_epochs = check_int(n_epochs, "n_epochs", minimum=1)
    early_epoch = check_int(early_epoch, "early_epoch", minimum=1)
    if early_epoch > n_epochs:
        raise ValueError(f"early_epoch={early_epoch} must be <= n_epochs={n_epochs}")
    n_splits = check_int(n_splits, "n_splits", minimum=2)
    if n_splits > n_models:
        raise ValueError(f"n_splits={n_splits} must be <= n_models={n_models}")
    start = time.perf_counter()
    timings = {}
    population = train_rnn_population(
        "digits", n_models, n_epochs=n_epochs, snapshot_epochs=(early_epoch,),
        learning_rate_range=learning_rate_range, max_train=max_train, random_state=random_state, n_jobs=n_jobs,
        cache_dir=cache_dir, verbose=verbose,
    )  # fmt: skip
    timings["train_or_load_s"] = time.perf_counter() - start
    data = load_sequential_digits("row")
    rng = np.random.RandomState(random_state)
    inputs = digit_streams(data.X_val, n_trajectories, n_images, rng)
    novel = digit_streams(data.X_test, n_trajectories, n_images, rng)
    lst = LyapunovSpectrumTransformer(
        inputs, warmup=warmup_images * data.n_steps, n_features=n_features,
        device=device, n_jobs=n_jobs, verbose=verbose,
    )  # fmt: skip
    start = time.perf_counter()
    final_models = population.models()
    spectra = {"final": lst.fit_transform(final_models),
               "early": lst.transform(population.models(early_epoch))}  # fmt: skip
    spectra["final_novel"] = clone(lst).set_params(inputs=novel).fit(final_models).transform(final_models)
    timings["spectra_s"] = time.perf_counter() - start

    y = population.test_accuracy[:, -1]
    groups = np.arange(n_models)
    hyper, _ = population.hyperparameter_matrix()
    early_acc = population.val_accuracy[:, early_epoch - 1 : early_epoch]
    if aelle is None:
        aelle = AeLLERegressor(latent_dim=4, hidden_dims=(64, 32), alpha=1.0, max_epochs=300,
                               random_state=random_state, device=device)  # fmt: skip
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    stats = make_pipeline(SpectrumStatistics(), StandardScaler(),
                          RidgeCV(alphas=np.logspace(-3, 3, 13)))  # fmt: skip
    predictors = [("AeLLE", aelle), ("ridge on raw spectra", ridge),
                  ("ridge on SpectrumStatistics", stats)]  # fmt: skip
    start = time.perf_counter()
    rows, predictions = [], {}
    for key in ("final", "early"):
        label = f"{key} (ep {n_epochs if key == 'final' else early_epoch})"
        for name, estimator in predictors:
            pred = _oof_predictions(estimator, spectra[key], y, groups, n_splits)
            if name == "AeLLE":
                predictions[key] = pred
            rows.append(dict(spectra=label, predictor=name, **_scores(y, pred)))
        pred = _oof_predictions(ridge, hyper, y, groups, n_splits)
        rows.append(dict(spectra=label, predictor="ridge on hyperparameters only", **_scores(y, pred)))
        if key == "early":
            pred = _oof_predictions(LinearRegression(), early_acc, y, groups, n_splits)
            rows.append(dict(spectra=label, predictor=f"validation accuracy at epoch {early_epoch}",
                             **_scores(y, pred)))  # fmt: skip
    novel_pred = _oof_predictions(aelle, spectra["final"], y, groups, n_splits,
                                  X_test=spectra["final_novel"])  # fmt: skip
    same = _scores(y, predictions["final"])
    other = _scores(y, novel_pred)
    generalisation = dict(same_inputs_r2=same["r2"], novel_inputs_r2=other["r2"],
                          same_inputs_spearman=same["spearman"],
                          novel_inputs_spearman=other["spearman"])  # fmt: skip
    embedding = clone(aelle).fit(spectra["final"], y).transform(spectra["final"])
    timings["cross_validation_s"] = time.perf_counter() - start
    settings = dict(task="digits (row by row)", n_models=n_models, n_epochs=n_epochs,
                    early_epoch=early_epoch, final_epoch=n_epochs, n_features=n_features,
                    n_trajectories=n_trajectories, n_images=n_images,
                    warmup_images=warmup_images, n_splits=n_splits, random_state=random_state,
                    learning_rate_range=list(learning_rate_range),
                    target="test accuracy after the last epoch")  # fmt: skip
    return StudyResult(settings=settings, rows=rows, generalisation=generalisation, y=y,
                       spectra=spectra, predictions=predictions, embedding=embedding,
                       hyperparameters=population.hyperparameters, timings=timings)  # fmt: skip
