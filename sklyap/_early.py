"""What early selection reads and predicts with; Optuna is not needed.

A trial's early spectrum as it is stored (:func:`record_spectrum`), the
default spectrum and regressor of :class:`~sklyap.selection.LyapunovPruner`,
and :class:`StartupPrior`, the model it starts from before any trial of the
study has finished.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.ensemble import ExtraTreesRegressor

__all__ = [
    "PRIOR_FEATURES",
    "SPECTRUM_ATTR",
    "STARTUP_PRIOR",
    "StartupPrior",
    "default_regressor",
    "default_transformer",
    "predict_with_spread",
    "prior_features",
    "record_spectrum",
    "within_ranks",
]

#: The user attribute of a trial that holds its early spectrum.
SPECTRUM_ATTR = "sklyap_spectrum"
#: What :class:`StartupPrior` reads of each trial, as ranks among the study's trials.
PRIOR_FEATURES = ("early score", "largest exponent", "mean exponent", "smallest exponent")


def within_ranks(values):
    """Ranks from 0 to 1 within ``values`` (ties share their mean rank; 0.5 for one value)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return np.full(len(values), 0.5)
    return (rankdata(values, method="average") - 1) / (len(values) - 1)


def prior_features(spectra, scores):
    """The ranks :class:`StartupPrior` reads, one row per trial, ranked among the rows.

    Parameters
    ----------
    spectra : array-like of shape (n_trials, n_exponents)
    scores : array-like of shape (n_trials,)
        The early score, higher better.

    Returns
    -------
    ndarray of shape (n_trials, 4)
        The ranks of :data:`PRIOR_FEATURES`.
    """
    spectra = np.asarray(spectra, dtype=float)
    columns = (scores, spectra.max(axis=1), spectra.mean(axis=1), spectra.min(axis=1))
    return np.column_stack([within_ranks(c) for c in columns])


@dataclass(frozen=True)
class StartupPrior:
    """A trial's final rank predicted from its ranks among the study's trials at the early step.

    A linear model in the ranks of :data:`PRIOR_FEATURES`, fitted on other
    tasks' populations (:meth:`fit`), so that :class:`LyapunovPruner` can
    prune before the study has finished any trial. Its parameters are plain
    numbers (:meth:`to_dict`, :meth:`from_dict`): nothing is unpickled.

    Parameters
    ----------
    intercept : float
    coef : tuple of 4 float
        One per entry of :data:`PRIOR_FEATURES`.
    spread : float
        The standard deviation of the fit's residuals, in ranks; >= 0.
    min_trials : int, default=5
        The prior judges a trial once at least this many trials (itself
        included) have a spectrum and a score at its step; >= 2.
    """

    intercept: float
    coef: tuple
    spread: float
    min_trials: int = 5

    def __post_init__(self):
        coef = tuple(float(c) for c in np.asarray(self.coef, dtype=float).ravel())
        if len(coef) != len(PRIOR_FEATURES) or not all(map(math.isfinite, coef)):
            raise ValueError(
                f"coef must be {len(PRIOR_FEATURES)} finite numbers (one per feature of "
                f"{PRIOR_FEATURES}), got {self.coef!r}"
            )
        if not math.isfinite(self.intercept):
            raise ValueError(f"intercept must be finite, got {self.intercept!r}")
        if not (math.isfinite(self.spread) and self.spread >= 0):
            raise ValueError(f"spread must be a finite number >= 0, got {self.spread!r}")
        if not isinstance(self.min_trials, numbers.Integral) or self.min_trials < 2:
            raise ValueError(f"min_trials must be an int >= 2, got {self.min_trials!r}")
        object.__setattr__(self, "coef", coef)
        object.__setattr__(self, "intercept", float(self.intercept))
        object.__setattr__(self, "spread", float(self.spread))
        object.__setattr__(self, "min_trials", int(self.min_trials))

    @classmethod
    def fit(cls, populations, *, alpha=1.0, min_trials=5):
        """Fit by ridge regression on populations, each ranked within itself.

        Parameters
        ----------
        populations : iterable of (spectra, scores, finals)
            Per population: early spectra (n, n_exponents), early scores and
            final scores (n,), higher better.
        alpha : float, default=1.0
            The ridge penalty (the intercept is not penalised), >= 0.

        Returns
        -------
        StartupPrior
        """
        X, y = [], []
        for spectra, scores, finals in populations:
            X.append(prior_features(spectra, scores))
            y.append(within_ranks(finals))
        if not X:
            raise ValueError("fitting a StartupPrior needs at least one population")
        X, y = np.vstack(X), np.concatenate(y)
        A = np.column_stack([np.ones(len(X)), X])
        penalty = float(alpha) * np.eye(A.shape[1])
        penalty[0, 0] = 0.0
        solution = np.linalg.solve(A.T @ A + penalty, A.T @ y)
        residuals = y - A @ solution
        return cls(
            intercept=solution[0],
            coef=solution[1:],
            spread=float(residuals.std()),
            min_trials=min_trials,
        )

    def predict(self, features):
        """Predicted final ranks of rows of :func:`prior_features`."""
        return self.intercept + np.asarray(features, dtype=float) @ np.asarray(self.coef)

    def to_dict(self):
        """The parameters as plain numbers (JSON)."""
        return {
            "intercept": self.intercept,
            "coef": list(self.coef),
            "spread": self.spread,
            "min_trials": self.min_trials,
        }

    @classmethod
    def from_dict(cls, values):
        """The prior of :meth:`to_dict`'s numbers."""
        return cls(
            intercept=values["intercept"],
            coef=tuple(values["coef"]),
            spread=values["spread"],
            min_trials=values.get("min_trials", 5),
        )


def record_spectrum(spectrum, step, architecture=None, size=None):
    """The JSON record :func:`report_spectrum` stores: spectrum, step and network.

    Parameters
    ----------
    spectrum : array-like of shape (n_features,)
        NaN where it could not be computed.
    step : int
        The step (epoch) it was taken after.
    architecture : tuple, default=None
        What networks must share to be compared: (cell kind, layers, input
        size, bias) for PyTorch's recurrent modules.
    size : int, default=None
        The network's hidden (state) size.
    """
    spectrum = np.asarray(spectrum, dtype=float)
    if spectrum.ndim != 1 or spectrum.size == 0:
        raise ValueError(f"a spectrum must be a non-empty 1-d array, got shape {spectrum.shape}")
    if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    return {
        "step": int(step),
        "spectrum": [float(v) if math.isfinite(v) else None for v in spectrum],
        "architecture": None if architecture is None else [_plain(v) for v in architecture],
        "size": None if size is None else int(size),
    }


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


#: The :class:`StartupPrior` fitted on the study's three tasks (digits by row,
#: digits by pixel, character text; populations of random_state 0 and 2), as
#: ``python -m sklyap sweep`` writes it (``transfer.json``, "prior"), rounded.
STARTUP_PRIOR = StartupPrior(
    intercept=0.1748, coef=(0.6898, -0.1831, 0.2705, -0.1269), spread=0.1715, min_trials=5
)


def default_transformer():
    """The spectra :func:`report_spectrum` computes by default: 32 values, Gaussian inputs."""
    from .transformer import LyapunovSpectrumTransformer

    return LyapunovSpectrumTransformer(
        n_features=32, n_trajectories=4, n_steps=100, warmup=50, random_state=0
    )


def default_regressor():
    """The pruner's default regressor: 100 extremely randomised trees, whose spread is
    its uncertainty (chosen by ``benchmarks/bench_pruner_inputs.py``)."""
    return ExtraTreesRegressor(n_estimators=100, min_samples_leaf=2, random_state=0, n_jobs=1)


def predict_with_spread(model, X):
    """Mean prediction and its spread: ``predict(return_std=True)`` where the
    regressor has it (AeLLE, Gaussian processes), else the standard deviation
    of an ensemble's members (forests), else 0."""
    if hasattr(model, "estimators_") and hasattr(model, "n_estimators"):
        members = np.stack([tree.predict(X) for tree in model.estimators_])
        return members.mean(axis=0), members.std(axis=0)
    try:
        mean, std = model.predict(X, return_std=True)
    except TypeError:
        mean = model.predict(X)
        std = np.zeros_like(mean, dtype=float)
    return np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
