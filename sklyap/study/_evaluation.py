"""Repeated, grouped cross-validation of predictors on identical splits."""

import inspect
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.model_selection import GroupKFold
from tqdm.auto import tqdm

__all__ = ["Predictor", "cross_validate_predictors", "scores", "top_quartile_precision"]


def top_quartile_precision(y_true, y_pred):
    """Fraction of the networks predicted to be in the top quarter that truly are.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_networks,)

    Returns
    -------
    float
        ``|predicted top k  ∩  true top k| / k`` with ``k = round(n / 4)``
        (at least 1); ties are broken by position.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = max(1, round(len(y_true) / 4))
    true_top = set(np.argsort(-y_true, kind="stable")[:k])
    pred_top = np.argsort(-y_pred, kind="stable")[:k]
    return sum(i in true_top for i in pred_top) / k


def scores(y, prediction, *, top_half, has_r2=True):
    """Spearman, R^2, top-quartile precision and ROC AUC of "top half" for one prediction.

    ``prediction`` ranks the networks (a predicted accuracy, or a probability
    of being in the top half, for which R^2 means nothing: ``has_r2=False``
    gives NaN).
    """
    return {
        "spearman": float(spearmanr(y, prediction).statistic),
        "r2": float(r2_score(y, prediction)) if has_r2 else float("nan"),
        "top_quartile": float(top_quartile_precision(y, prediction)),
        "auc": float(roc_auc_score(top_half, prediction)),
    }


@dataclass
class Predictor:
    """One row of the study: an estimator on a feature matrix.

    Attributes
    ----------
    spectra : str
        The spectra the row belongs to ("final" or "early"), or "none".
    name : str
        The predictor, as the table shows it.
    estimator : estimator
        Cloned and fitted on every training split.
    features : str
        The key of the feature matrix it reads.
    target : {"accuracy", "top_half"}
        What it is fitted to: the accuracy (a regressor), or whether the
        network is in the top half (a classifier, scored by its probability).
    spectrum_only : bool
        Whether it reads nothing but spectra (the predictors AeLLE must lead).
    novel_features : str or None
        Also predict from this feature matrix (the same networks driven by
        other inputs), with the estimator fitted on ``features``.
    """

    spectra: str
    name: str
    estimator: object
    features: str
    target: str = "accuracy"
    spectrum_only: bool = False
    novel_features: str = None

    @property
    def key(self):
        return (self.spectra, self.name)


def _fit_predict(predictor, features, y, top_half, train, test):
    """Fit on ``train``; return predictions on ``test`` (and the ensemble's spread, novel inputs)."""
    X = features[predictor.features]
    target = top_half if predictor.target == "top_half" else y
    est = clone(predictor.estimator).fit(X[train], target[train])
    out = {}
    if predictor.target == "top_half":
        out["prediction"] = est.predict_proba(X[test])[:, 1]
    elif "return_std" in inspect.signature(est.predict).parameters:
        out["prediction"], out["std"] = est.predict(X[test], return_std=True)
    else:
        out["prediction"] = est.predict(X[test])
    if predictor.novel_features is not None:
        out["novel"] = est.predict(features[predictor.novel_features][test])
    return out


def cross_validate_predictors(
    predictors, features, y, *, groups, n_splits, n_repeats, random_state, n_jobs=None, verbose=0
):
    """Out-of-fold predictions of every predictor, on the same splits, repeated.

    Repeat ``r`` shuffles the groups with its own seed and cuts them into
    ``n_splits`` folds (``GroupKFold``); every predictor sees exactly these
    splits, so differences between rows are paired. Every network is
    predicted once per repeat.

    Returns
    -------
    dict
        ``{predictor.key: {"prediction": (n_repeats, n), "std": ..., "novel": ...}}``.
    """
    y = np.asarray(y, dtype=np.float64)
    top_half = y >= np.median(y)
    seeds = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max, size=n_repeats)
    splits = [
        (r, train, test)
        for r, seed in enumerate(seeds)
        for train, test in GroupKFold(n_splits, shuffle=True, random_state=int(seed)).split(
            y, y, groups
        )
    ]
    jobs = [(p, r, train, test) for p in predictors for r, train, test in splits]
    tasks = (
        delayed(_fit_predict)(p, features, y, top_half, train, test) for p, _, train, test in jobs
    )
    results = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
    if verbose:
        results = tqdm(results, total=len(jobs), desc="cross-validating", unit="fit")
    out = {}
    for (p, r, _, test), result in zip(jobs, results):
        slot = out.setdefault(p.key, {})
        for name, values in result.items():
            slot.setdefault(name, np.full((n_repeats, len(y)), np.nan))[r, test] = values
    return out
