"""Early selection: stop or keep networks by the final accuracy their early spectra predict.

In a sweep run by Optuna, :class:`LyapunovPruner` learns from the sweep's
own finished trials and prunes those whose early spectrum (reported with
:func:`report_spectrum`, or by the skorch callback
:class:`~sklyap.callbacks.LyapunovPruning`) predicts a final score
confidently below the finished trials' top quarter. They need the extra
``sklyap[optuna]``.

A :class:`FinalAccuracyPredictor` is fitted on a pilot population (networks
saved after an early epoch, with the accuracy each reached at the end of
training); its :meth:`~FinalAccuracyPredictor.as_scorer` turns the prediction
into a scorer for scikit-learn's model selection (``GridSearchCV``,
``HalvingGridSearchCV(resource="max_epochs")`` over skorch nets,
``cross_validate``), which then keeps the candidates whose dynamics promise
the best final accuracy. The predictor answers for networks trained as long
as the pilot's were when their spectra were taken; with ``epoch=`` it warns
when a search scores a skorch net trained for another number of epochs (the
later rungs of a successive-halving search).
"""

import copy
import numbers
import warnings
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from ._early import STARTUP_PRIOR, StartupPrior, default_transformer
from ._validation import Interval, Options, check_model_list, validate_params
from .aelle import AeLLERegressor
from .dynamics import as_dynamics, signature_of
from .transformer import LyapunovSpectrumTransformer

__all__ = [
    "STARTUP_PRIOR",
    "FinalAccuracyPredictor",
    "LyapunovPruner",  # noqa: F822 (imported when first used, below)
    "PredictedAccuracyScorer",
    "StartupPrior",
    "default_transformer",
    "report_spectrum",  # noqa: F822
]

# What needs Optuna (the extra sklyap[optuna]) is imported when first used.
_OPTUNA_NAMES = ("LyapunovPruner", "report_spectrum")


def __getattr__(name):
    if name in _OPTUNA_NAMES:
        from ._pruning import LyapunovPruner, report_spectrum

        return {"LyapunovPruner": LyapunovPruner, "report_spectrum": report_spectrum}[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def architecture_of(dynamics):
    """What a network must share with the pilot, and its size along the one free axis.

    For PyTorch's recurrent modules: (cell kind, layers, input size, bias)
    and the hidden size; for other systems their type and input size, and the state size.
    """
    signature = signature_of(dynamics)
    if signature is None:
        return (type(dynamics).__name__, None, dynamics.input_size, None), dynamics.state_size
    _, layers, input_size, hidden_size, bias = signature
    return (dynamics.cell.label, layers, input_size, bias), hidden_size


def _describe(key):
    kind, layers, input_size, bias = key
    text = str(kind)
    if layers is not None:
        text += f" of {layers} layer{'s' if layers != 1 else ''}"
    text += f", input_size={input_size}"
    if bias is not None:
        text += f", bias={bias}"
    return text


def _check_scores(values, n, name):
    values = np.asarray(values, dtype=float)
    if values.shape != (n,):
        raise ValueError(f"{name} must hold one number per network ({n}), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} holds NaN or infinite values at indices "
            f"{np.flatnonzero(~np.isfinite(values)).tolist()}"
        )
    return values


class FinalAccuracyPredictor(BaseEstimator):
    """Predict a network's final accuracy from its spectrum early in training.

    Fitted on a pilot population: networks saved after an early epoch (``X``)
    and the accuracy each reached at the end of training (``y``), optionally
    with each network's validation score at that early epoch. It predicts the
    final accuracy of new networks of the same task and family, trained for
    as long as the pilot's, and :meth:`as_scorer` makes that prediction a
    scorer for scikit-learn's model selection.

    Parameters
    ----------
    transformer : LyapunovSpectrumTransformer, default=None
        How the spectra are computed; give it driving inputs of the task
        (``inputs=``, with ``input_encoder=`` for token ids) and its ``n_jobs``.
        Cloned, never fitted in place. ``None`` uses
        ``LyapunovSpectrumTransformer()``: Gaussian inputs.
    regressor : regressor, default=None
        Maps the spectra (with ``early_score=True``, the spectra and the
        early score as a last column) to the final accuracy. Cloned. ``None``
        uses ``AeLLERegressor(random_state=0)``.
    early_score : bool, default=False
        Whether the regressor also reads each network's score at the early
        epoch: given to :meth:`fit` and :meth:`predict`, and taken by the
        scorer as ``estimator.score(X, y)`` on the data it is called with.
    epoch : int, default=None
        The epoch after which the pilot networks were taken. When given, the
        scorer warns on a skorch net whose history holds another number of
        epochs: its prediction is then an extrapolation. ``None`` checks
        nothing.

    Attributes
    ----------
    early_score_ : bool
        ``early_score`` as fitted.
    transformer_ : LyapunovSpectrumTransformer
        Fitted on the pilot networks: its driving inputs and output width
        are those of every later spectrum.
    regressor_ : regressor
        Fitted on the pilot's features.
    architectures_ : list of tuple
        The architectures of the pilot: (cell kind, layers, input size,
        bias), in order of first appearance.
    hidden_sizes_ : (int, int)
        The smallest and largest hidden size (state size, for custom
        systems) in the pilot. Networks of another architecture, or of a
        hidden size outside these, are refused: the predictor would be
        extrapolating.
    n_networks_ : int
        Size of the pilot population.

    See Also
    --------
    PredictedAccuracyScorer : The scorer :meth:`as_scorer` returns.
    AeLLERegressor : The default regressor.

    Examples
    --------
    >>> from sklyap.selection import FinalAccuracyPredictor
    >>> from sklyap.datasets import train_rnn_population
    >>> pilot = train_rnn_population("digits", n_models=6, n_epochs=2, max_train=100,
    ...                              cells=("GRU",), hidden_sizes=(8,), verbose=0,
    ...                              cache_dir=False)
    >>> predictor = FinalAccuracyPredictor(early_score=True).fit(
    ...     pilot.models(epoch=1), pilot.test_accuracy[:, -1],
    ...     early_score=pilot.val_accuracy[:, 0])
    >>> predictor.predict(pilot.models(epoch=1)[:2],
    ...                   early_score=pilot.val_accuracy[:2, 0]).shape
    (2,)
    """

    _parameter_constraints: ClassVar[dict] = {
        "early_score": [Options(True, False)],
        "epoch": [Interval(int, 0, None), Options(None)],
    }

    def __init__(self, transformer=None, regressor=None, *, early_score=False, epoch=None):
        self.transformer = transformer
        self.regressor = regressor
        self.early_score = early_score
        self.epoch = epoch

    def _check_params(self):
        validate_params(self.get_params(deep=False), self._parameter_constraints)
        if self.transformer is not None and not isinstance(
            self.transformer, LyapunovSpectrumTransformer
        ):
            raise TypeError(
                f"transformer must be a LyapunovSpectrumTransformer or None, got {self.transformer!r}"
            )
        if self.regressor is not None and not hasattr(self.regressor, "fit"):
            raise TypeError(f"regressor must be a scikit-learn regressor, got {self.regressor!r}")

    def _early(self, early_score, n, reads):
        if reads:
            if early_score is None:
                raise ValueError(
                    "this predictor reads the early score (early_score=True): pass "
                    "early_score=, one number per network"
                )
            return _check_scores(early_score, n, "early_score")
        if early_score is not None:
            raise ValueError(
                "early_score was given, but this predictor was built with "
                "early_score=False and reads the spectra alone"
            )
        return None

    def _features(self, models, scores):
        spectra = self.transformer_.transform(models)
        failed = np.flatnonzero(np.isnan(spectra).any(axis=1))
        if len(failed):
            raise ValueError(
                f"networks {failed.tolist()} have no spectrum (NaN); a prediction needs "
                "one for every network"
            )
        return spectra if scores is None else np.column_stack([spectra, scores])

    def fit(self, X, y, *, early_score=None):
        """Compute the pilot's spectra and fit the regressor to its final accuracies.

        Parameters
        ----------
        X : list of models
            The pilot networks after the early epoch (anything
            :class:`~sklyap.LyapunovSpectrumTransformer` reads, fitted skorch
            nets included).
        y : array-like of shape (n_networks,)
            Their accuracy at the end of training.
        early_score : array-like of shape (n_networks,), default=None
            Their validation score after the early epoch; required with
            ``early_score=True``, refused without.

        Returns
        -------
        self : FinalAccuracyPredictor
        """
        self._check_params()
        models = check_model_list(X, "recurrent networks")
        y = _check_scores(y, len(models), "y")
        scores = self._early(early_score, len(models), self.early_score)
        transformer = self.transformer or LyapunovSpectrumTransformer()
        architectures, sizes = {}, []
        for model in models:
            key, size = architecture_of(as_dynamics(model, rnn=transformer.rnn))
            architectures[key] = None
            sizes.append(size)
        self.transformer_ = clone(transformer).fit(models)
        features = self._features(models, scores)
        regressor = AeLLERegressor(random_state=0) if self.regressor is None else self.regressor
        self.regressor_ = clone(regressor).fit(features, y)
        self.early_score_ = bool(self.early_score)
        self.architectures_ = list(architectures)
        self.hidden_sizes_ = (min(sizes), max(sizes))
        self.n_networks_ = len(models)
        return self

    def check_architecture(self, model):
        """Raise ``ValueError`` unless ``model`` is of an architecture of the pilot.

        Its cell kind, number of layers, input size and bias must be those of
        a pilot network, and its hidden size within the pilot's smallest and
        largest.
        """
        check_is_fitted(self, "regressor_")
        key, size = architecture_of(as_dynamics(model, rnn=self.transformer_.rnn))
        low, high = self.hidden_sizes_
        if key not in self.architectures_:
            pilot = "; ".join(_describe(k) for k in self.architectures_)
            raise ValueError(
                f"this predictor was not fitted for a network of {_describe(key)}: its pilot "
                f"population holds {pilot}"
            )
        if not low <= size <= high:
            raise ValueError(
                f"this predictor was not fitted for a network of hidden_size {size}: its pilot "
                f"population's hidden sizes are {low} to {high}"
            )

    def predict(self, X, *, early_score=None):
        """The predicted final accuracy of each network.

        Parameters
        ----------
        X : list of models
            Networks after the same early epoch as the pilot's.
        early_score : array-like of shape (n_networks,), default=None
            Required with ``early_score=True``.

        Returns
        -------
        ndarray of shape (n_networks,)
        """
        check_is_fitted(self, "regressor_")
        models = check_model_list(X, "recurrent networks")
        scores = self._early(early_score, len(models), self.early_score_)
        for model in models:
            self.check_architecture(model)
        return np.asarray(self.regressor_.predict(self._features(models, scores)), dtype=float)

    def as_scorer(self, *, later="warn"):
        """This fitted predictor as a scorer for scikit-learn's model selection.

        The scorer holds a copy: refitting this predictor later does not
        change it.

        Parameters
        ----------
        later : {"warn", "score"}, default="warn"
            What the scorer does with a skorch net trained for more epochs
            than ``epoch`` (the later rungs of a successive-halving search):
            ``"warn"`` predicts anyway, with a warning; ``"score"`` returns
            ``estimator.score(X, y)``, the search's own measure, so that the
            spectra choose at the first rung and the learning curve after.
            ``"score"`` needs ``epoch``.

        Returns
        -------
        PredictedAccuracyScorer
        """
        check_is_fitted(self, "regressor_")
        return PredictedAccuracyScorer(copy.deepcopy(self), later=later)


class PredictedAccuracyScorer:
    """Score a fitted network by the final accuracy a :class:`FinalAccuracyPredictor` predicts.

    Pass it as ``scoring=`` to ``GridSearchCV``, ``HalvingGridSearchCV``,
    ``cross_validate`` or ``cross_val_score``: they call it as
    ``scorer(estimator, X, y)`` with a fitted estimator (a skorch net, or a
    torch module) and the data of the fold it is scored on. The network's
    spectrum is computed as for the pilot; with ``early_score=True``,
    ``estimator.score(X, y)`` is its early score. Higher is better.

    The prediction is meant for networks trained as long as the pilot's
    were: in ``HalvingGridSearchCV(resource="max_epochs")`` that is the first
    rung, where most candidates are stopped; later rungs score networks
    trained longer, which ``later`` decides about.

    Parameters
    ----------
    predictor : FinalAccuracyPredictor
        Fitted.
    later : {"warn", "score"}, default="warn"
        For a skorch net trained longer than the predictor's ``epoch``:
        predict with a warning, or return ``estimator.score(X, y)`` (see
        :meth:`FinalAccuracyPredictor.as_scorer`).

    Raises
    ------
    ValueError
        When called on a network of an architecture the predictor was not
        fitted for (see :meth:`FinalAccuracyPredictor.check_architecture`),
        or whose spectrum cannot be computed. Model selection records such a
        candidate with its ``error_score`` (NaN by default, ranked last).
    """

    def __init__(self, predictor, *, later="warn"):
        if not isinstance(predictor, FinalAccuracyPredictor):
            raise TypeError(f"predictor must be a FinalAccuracyPredictor, got {predictor!r}")
        check_is_fitted(predictor, "regressor_")
        validate_params({"later": later}, {"later": [Options("warn", "score")]})
        if later == "score" and predictor.epoch is None:
            raise ValueError(
                "later='score' needs the predictor's epoch (the epoch of its pilot networks), "
                "to tell a net trained longer"
            )
        self.predictor = predictor
        self.later = later

    def __call__(self, estimator, X=None, y=None):
        epoch = self.predictor.epoch
        history = getattr(estimator, "history", None)
        if self.later == "score" and history is not None and len(history) > epoch:
            return float(estimator.score(X, y))
        if epoch is not None and history is not None and len(history) != epoch:
            warnings.warn(
                f"scoring a net trained for {len(history)} epochs with a predictor fitted on "
                f"networks after epoch {epoch}: the predicted final accuracy extrapolates",
                UserWarning,
                stacklevel=2,
            )
        early_score = None
        if self.predictor.early_score_:
            if X is None:
                raise ValueError(
                    "this scorer reads the early score, estimator.score(X, y): call it "
                    "with the data to score on"
                )
            early_score = estimator.score(X, y)
            if not isinstance(early_score, numbers.Real):
                raise TypeError(f"estimator.score returned {early_score!r}; expected a number")
            early_score = [early_score]
        (predicted,) = self.predictor.predict([estimator], early_score=early_score)
        return float(predicted)

    def __repr__(self):
        later = "" if self.later == "warn" else f", later={self.later!r}"
        return f"PredictedAccuracyScorer({self.predictor!r}{later})"
