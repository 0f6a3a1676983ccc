"""Optuna pruning by the final score that a trial's early spectrum predicts.

The predictor learns from the study itself: the finished trials, each with
the spectrum reported at its early step and its final value. Everything it
reads travels through the study's storage (a trial's user attributes and
intermediate values), so worker processes sharing one storage prune alike.
"""

import math
import threading
import warnings

import numpy as np
from sklearn.base import clone

from ._early import (
    SPECTRUM_ATTR,
    STARTUP_PRIOR,
    StartupPrior,
    default_regressor,
    default_transformer,
    predict_with_spread,
    prior_features,
    record_spectrum,
)
from ._validation import Interval, Options, validate_params

try:
    import optuna
except ImportError as error:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "LyapunovPruner and report_spectrum need Optuna: pip install 'sklyap[optuna]'"
    ) from error

__all__ = ["LyapunovPruner", "report_spectrum"]


def report_spectrum(trial, model, step, *, transformer=None):
    """Compute ``model``'s spectrum and store it with ``trial`` for :class:`LyapunovPruner`.

    Call it after training epoch ``step``, and before ``trial.report(value,
    step)`` and ``trial.should_prune()``: the pruner decides at the step of
    the spectrum. A spectrum that cannot be computed is stored as NaN, and
    such a trial is never pruned by the spectrum.

    Parameters
    ----------
    trial : optuna.trial.Trial
    model : model
        Anything :class:`~sklyap.LyapunovSpectrumTransformer` reads: a
        PyTorch recurrent module, a model holding one, a fitted skorch net.
    step : int
        The epoch the network has trained for.
    transformer : LyapunovSpectrumTransformer, default=None
        How the spectrum is computed (give it the task's driving inputs);
        cloned. Every trial of a study must use the same settings. ``None``
        uses :func:`default_transformer`.

    Returns
    -------
    ndarray of shape (n_features,)
        The spectrum stored.
    """
    from .dynamics import as_dynamics
    from .selection import architecture_of

    transformer = clone(default_transformer() if transformer is None else transformer)
    key, size = architecture_of(as_dynamics(model, rnn=transformer.rnn))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            (spectrum,) = transformer.fit([model]).transform([model])
    except (ValueError, RuntimeError, FloatingPointError) as error:
        warnings.warn(
            f"trial {trial.number}: no spectrum ({error}); it is not pruned by the spectrum",
            UserWarning,
            stacklevel=2,
        )
        spectrum = np.full(transformer.n_features or 1, np.nan)
    trial.set_user_attr(SPECTRUM_ATTR, record_spectrum(spectrum, step, key, size))
    return spectrum


def _kind_of(record):
    """What two trials must share to be compared: the step and the spectrum's length."""
    return record["step"], len(record["spectrum"])


def _describe(architecture):
    return "unknown" if architecture is None else ", ".join(map(str, architecture))


class LyapunovPruner(optuna.pruners.BasePruner):
    """Prune a trial whose early spectrum predicts a final value confidently below the bar.

    At the step of the spectrum :func:`report_spectrum` stored, the pruner
    fits ``regressor`` on the study's finished trials (their spectra at that
    step, with ``early_score=True`` their value reported then, against their
    final values) and prunes the trial when the predicted final value plus
    ``confidence`` times the prediction's spread is below the ``quantile`` of
    the finished trials' final values (above, for a study that minimises):
    by default, when even its optimistic prediction misses the finished
    trials' top quarter.
    Until ``n_startup_trials`` trials have finished, ``prior`` (if any)
    decides by the same rule in ranks: it prunes a trial whose predicted
    final rank among the study's trials, plus ``confidence`` times the
    prior's spread, is below ``quantile``; without a prior nothing is pruned
    then. At other steps, and at that step when it does not prune, ``wrapped_pruner``
    (if any) decides, so that the learning curve keeps pruning later on.

    Everything it reads is in the study's storage, so several worker
    processes sharing one storage prune alike.

    Parameters
    ----------
    regressor : regressor, default=None
        Features to final value; cloned. ``None`` uses
        :func:`default_regressor`. Its spread is read as in
        :func:`predict_with_spread`.
    early_score : bool, default=True
        Whether the features include the value the trial reported at the
        spectrum's step.
    n_startup_trials : int, default=10
        Finished trials (with a spectrum of the same length at the same
        step) needed before the pruner prunes.
    quantile : float, default=0.75
        The bar: this quantile of the finished trials' final values, in
        (0, 1) (for a study that minimises, the quantile ``1 - quantile``).
    confidence : float, default=1.0
        How many spreads the prediction must stay below the bar, >= 0.

    The defaults were chosen by the replay benchmark (``python -m sklyap
    sweep``; see the user guide's page on early selection).
    refit_growth : float, default=0.1
        The regressor is refitted when the finished trials have grown by
        this fraction (at least one trial) since the last fit, >= 0.
    prior : StartupPrior or None, default=STARTUP_PRIOR
        What decides before ``n_startup_trials`` trials have finished: a
        model of the final rank learnt on other tasks (the default was
        learnt on the three tasks of the package's study), or None to prune
        nothing then.
    wrapped_pruner : optuna.pruners.BasePruner, default=None

    Attributes
    ----------
    decisions_ : list of dict
        This process's decisions at the spectrum's step: ``trial`` (number),
        ``fitted_on`` (numbers of the trials the regressor was fitted on),
        ``predicted``, ``spread``, ``bar``, ``pruned``, ``by`` ("regressor",
        "prior" or None) and ``reason`` (why the spectrum could not decide,
        else None). A decision by the prior predicts a rank (from 0, the
        worst, to 1) and its ``fitted_on`` is empty.
    """

    _parameter_constraints = {  # noqa: RUF012
        "early_score": [Options(True, False)],
        "n_startup_trials": [Interval(int, 2, None)],
        "quantile": [Interval(float, 0, 1, closed="neither")],
        "confidence": [Interval(float, 0, None)],
        "refit_growth": [Interval(float, 0, None)],
    }

    def __init__(
        self,
        regressor=None,
        *,
        early_score=True,
        n_startup_trials=10,
        quantile=0.75,
        confidence=1.0,
        refit_growth=0.1,
        prior=STARTUP_PRIOR,
        wrapped_pruner=None,
    ):
        validate_params(
            {
                "early_score": early_score,
                "n_startup_trials": n_startup_trials,
                "quantile": quantile,
                "confidence": confidence,
                "refit_growth": refit_growth,
            },
            self._parameter_constraints,
        )
        if regressor is not None and not (
            hasattr(regressor, "fit") and hasattr(regressor, "predict")
        ):
            raise TypeError(f"regressor must be a scikit-learn regressor, got {regressor!r}")
        if prior is not None and not isinstance(prior, StartupPrior):
            raise TypeError(f"prior must be a StartupPrior or None, got {prior!r}")
        if wrapped_pruner is not None and not isinstance(wrapped_pruner, optuna.pruners.BasePruner):
            raise TypeError(
                f"wrapped_pruner must be an Optuna pruner or None, got {wrapped_pruner!r}"
            )
        self.regressor = regressor
        self.early_score = early_score
        self.n_startup_trials = n_startup_trials
        self.quantile = float(quantile)
        self.confidence = float(confidence)
        self.refit_growth = float(refit_growth)
        self.prior = prior
        self.wrapped_pruner = wrapped_pruner
        self.decisions_ = []
        self._fits = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def prune(self, study, trial):
        """Whether ``trial`` should stop (Optuna calls it from ``trial.should_prune()``)."""
        record = trial.user_attrs.get(SPECTRUM_ATTR)
        at_spectrum = record is not None and trial.last_step == record["step"]
        if at_spectrum and self._prune_by_spectrum(study, trial, record):
            return True
        if self.wrapped_pruner is None:
            return False
        return self.wrapped_pruner.prune(study, trial)

    def _sign(self, study):
        if len(study.directions) != 1:
            raise ValueError("LyapunovPruner prunes single-objective studies only")
        return 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0

    def _features(self, record, trial):
        values = [np.nan if v is None else v for v in record["spectrum"]]
        if self.early_score:
            values.append(trial.intermediate_values.get(record["step"], np.nan))
        return np.asarray(values, dtype=float)

    def _prune_by_spectrum(self, study, trial, record):
        sign = self._sign(study)
        decision = {"trial": trial.number, "fitted_on": [], "predicted": None, "spread": None}
        decision.update(bar=None, pruned=False, by=None, reason=None)
        x = self._features(record, trial)
        trials = study.get_trials(deepcopy=False)
        training, X = self._training(trials, record)
        if not np.isfinite(x).all():
            decision["reason"] = "its spectrum (or early score) is not finite"
        elif len(training) < self.n_startup_trials:
            decision["reason"] = (
                f"{len(training)} finished trials with a spectrum of its length at its step, "
                f"fewer than n_startup_trials={self.n_startup_trials}"
            )
            if self.prior is not None:
                self._decide_by_prior(decision, trials, trial, record, sign)
        else:
            decision["reason"] = self._foreign(record, training)
            if decision["reason"] is not None:
                warnings.warn(
                    f"LyapunovPruner does not prune trial {trial.number}: {decision['reason']}",
                    UserWarning,
                    stacklevel=3,
                )
        if decision["reason"] is None and decision["by"] is None:
            model, fitted_on = self._fit(training, X, record)
            mean, spread = predict_with_spread(model, x[None])
            values = np.array([sign * t.value for t in training])
            bar = float(np.quantile(values, self.quantile))
            decision.update(
                fitted_on=fitted_on,
                predicted=float(mean[0]),
                spread=float(spread[0]),
                bar=float(sign * bar),
                pruned=bool(sign * mean[0] + self.confidence * spread[0] < bar),
                by="regressor",
            )
        with self._lock:
            self.decisions_.append(decision)
        return decision["pruned"]

    def _decide_by_prior(self, decision, trials, trial, record, sign):
        """The prior's decision on ``trial``, ranked among the trials with a
        spectrum of its kind and a finite score at its step (``decision``
        unchanged when there are fewer than the prior's ``min_trials``)."""
        spectra, scores, mine = [], [], None
        for t in trials:
            other = record if t.number == trial.number else t.user_attrs.get(SPECTRUM_ATTR)
            if other is None or _kind_of(other) != _kind_of(record):
                continue
            spectrum = np.array([np.nan if v is None else v for v in other["spectrum"]])
            score = t.intermediate_values.get(record["step"], np.nan)
            if np.isfinite(spectrum).all() and score is not None and math.isfinite(score):
                if t.number == trial.number:
                    mine = len(scores)
                spectra.append(spectrum)
                scores.append(sign * score)
        if mine is None or len(scores) < self.prior.min_trials:
            return
        predicted = float(self.prior.predict(prior_features(spectra, scores)[mine]))
        decision.update(
            predicted=predicted,
            spread=self.prior.spread,
            bar=self.quantile,
            pruned=bool(predicted + self.confidence * self.prior.spread < self.quantile),
            by="prior",
            reason=None,
        )

    def _training(self, trials, record):
        """The finished trials with a usable spectrum of ``record``'s length at its
        step, and their features (one row each)."""
        complete = optuna.trial.TrialState.COMPLETE
        rows, kept = [], []
        for t in trials:
            if t.state != complete:
                continue
            other = t.user_attrs.get(SPECTRUM_ATTR)
            if (
                other is None
                or _kind_of(other) != _kind_of(record)
                or t.value is None
                or not math.isfinite(t.value)
            ):
                continue
            features = self._features(other, t)
            if np.isfinite(features).all():
                kept.append(t)
                rows.append(features)
        return kept, np.asarray(rows, dtype=float)

    @staticmethod
    def _foreign(record, training):
        """Why the trial's network is unlike those of ``training``, or None."""
        records = [t.user_attrs[SPECTRUM_ATTR] for t in training]
        known = {repr(r["architecture"]): r["architecture"] for r in records}
        if repr(record["architecture"]) not in known:
            return (
                f"its network ({_describe(record['architecture'])}) is of none of the finished "
                f"trials' kinds ({'; '.join(_describe(a) for a in known.values())})"
            )
        sizes = [r["size"] for r in records if r["size"] is not None]
        size = record["size"]
        if size is None or not sizes:
            return None
        low, high = min(sizes), max(sizes)
        if not low <= size <= high:
            return (
                f"its hidden size {size} is outside the finished trials' {low} to {high}; "
                "the prediction would extrapolate"
            )
        return None

    def _fit(self, training, X, record):
        """The regressor fitted on ``training`` (features ``X``), or on an earlier
        subset of it fewer than ``refit_growth`` of it ago."""
        numbers_ = tuple(sorted(t.number for t in training))
        key = repr(_kind_of(record))
        with self._lock:
            last = self._fits.get(key)
        if last is not None:
            model, fitted_on = last
            grown = len(numbers_) - len(fitted_on)
            if set(fitted_on) <= set(numbers_) and grown < max(
                1, math.ceil(self.refit_growth * len(fitted_on))
            ):
                return model, list(fitted_on)
        y = np.array([t.value for t in training], dtype=float)
        regressor = default_regressor() if self.regressor is None else self.regressor
        model = clone(regressor).fit(X, y)
        with self._lock:
            self._fits[key] = (model, numbers_)
        return model, list(numbers_)

    def __repr__(self):
        return (
            f"LyapunovPruner(regressor={self.regressor!r}, early_score={self.early_score}, "
            f"n_startup_trials={self.n_startup_trials}, quantile={self.quantile}, "
            f"confidence={self.confidence}, prior={self.prior!r}, "
            f"wrapped_pruner={self.wrapped_pruner!r})"
        )
