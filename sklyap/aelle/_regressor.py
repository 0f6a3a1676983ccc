"""AeLLERegressor: the AeLLE embedding with a regression head (accuracy)."""

import warnings

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.validation import validate_data

from .._validation import caller_stacklevel, check_spectra_not_models
from ..features import check_no_failed_rows
from ._base import (
    SHARED_ATTRIBUTES,
    SHARED_PARAMETERS,
    BaseAeLLE,
    constant_columns,
    fill_doc,
    standardise_stats,
)

__all__ = ["AeLLERegressor"]


@fill_doc(parameters=SHARED_PARAMETERS, attributes=SHARED_ATTRIBUTES)
class AeLLERegressor(RegressorMixin, BaseAeLLE):
    """Autoencoder Lyapunov latent embedding (AeLLE) that predicts accuracy.

    An autoencoder maps each spectrum (a row of ``X``) through an encoder
    ``n_features -> hidden_dims -> latent_dim`` and back through the mirrored
    decoder, while a linear head predicts the target (typically the network's
    accuracy) from the latent code. Both are trained jointly on

        ``loss = mean |X_hat - X| + prediction_weight * mean (y_hat - y)**2``

    where ``X`` (per column) and ``y`` are standardised inside the estimator,
    so that ``prediction_weight`` weighs the two terms the same way on any
    data. An ensemble of ``n_estimators`` such networks is trained (AdamW,
    full batches for small data) and :meth:`predict` averages their
    predictions, in the user's units; :meth:`transform` returns the latent
    code of the first network, an embedding of "how a network computes" in
    which networks of similar quality land together.

    Spectra of different lengths must first be brought onto one axis, e.g.
    with :class:`~sklyap.SpectrumResampler` in a pipeline; ``X`` itself may
    not hold NaN.

    Parameters
    ----------
    {parameters}

    Attributes
    ----------
    {attributes}
    y_mean_, y_scale_ : float
        Mean and standard deviation used to standardise ``y``. For a
        constant ``y`` (a ``UserWarning`` says so), that constant and 0:
        :meth:`predict` then returns the constant (``y`` was standardised
        with scale 1).

    See Also
    --------
    AeLLEClassifier : The same embedding with a classification head.
    SpectrumResampler : Puts spectra of different lengths on one axis.
    SpectrumStatistics : Hand-made spectrum features, for a baseline.

    Notes
    -----
    The defaults were chosen by ``benchmarks/bench_aelle_defaults.py`` on
    populations of 50 and 200 trained networks and on 1,000 and 10,000
    synthetic spectra; ``docs/aelle.md`` and ``benchmarks/README.md`` give
    the figures.

    Pickled estimators trained on a CUDA device load on a machine without
    CUDA: the tensors are mapped to the CPU and ``device_`` becomes ``"cpu"``
    (with a warning).

    Examples
    --------
    >>> from sklyap import AeLLERegressor
    >>> from sklyap.datasets import make_spectra
    >>> X, y = make_spectra(n_samples=200, n_exponents=16, random_state=0)
    >>> est = AeLLERegressor(max_epochs=200, random_state=0).fit(X, y)  # a quick fit
    >>> est.transform(X).shape
    (200, 8)
    >>> y_pred, y_std = est.predict(X[:3], return_std=True)
    >>> y_pred.shape, y_std.shape
    ((3,), (3,))
    >>> bool(est.score(X, y) > 0.9)
    True
    """

    _head = "regression"

    def fit(self, X, y):
        """Train the ensemble of autoencoders and their prediction heads.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Spectra, one per row, all of the same length (see
            :class:`~sklyap.SpectrumResampler` for ragged ones). Finite values
            only. Not modified.
        y : array-like of shape (n_samples,)
            Target per spectrum (e.g. the network's accuracy), numbers. Not
            modified.

        Returns
        -------
        self : AeLLERegressor
            The fitted estimator.
        """
        check_spectra_not_models(X, self)
        device = self._validate_params()
        check_no_failed_rows(X)
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must hold numbers (one target per spectrum), got dtype {y.dtype}")
        y_mean, y_scale = standardise_stats(y[:, None])
        y_mean, y_scale = float(y_mean[0]), float(y_scale[0])
        constant = bool(constant_columns(y[:, None])[0])
        if constant:
            warnings.warn(
                f"y is constant ({len(y)} samples, all {float(np.median(y))!r}): the prediction "
                "head learns nothing, and predict returns that constant",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        self._fit_ensemble(X, (y - y_mean) / y_scale, 1, device)
        # A constant y is predicted as itself: its median (exactly the value) and
        # a scale of 0, the spread it has, so that the head's output drops out.
        self.y_mean_ = float(np.median(y)) if constant else y_mean
        self.y_scale_ = 0.0 if constant else y_scale
        return self

    def predict(self, X, return_std=False):
        """Predict the target (e.g. accuracy) of each spectrum: the ensemble's mean.

        Parameters
        ----------
        X : array-like of shape (n_samples, `n_features_in_`)
            Spectra, one per row.
        return_std : bool, default=False
            Also return the standard deviation of the networks' predictions
            (0 for a single network): the ensemble's spread, a measure of its
            disagreement rather than a calibrated error.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions in the units of the ``y`` passed to :meth:`fit`,
            float64.
        y_std : ndarray of shape (n_samples,)
            Only with ``return_std=True``.
        """
        heads = self._head_outputs(X)[..., 0]
        y_pred = self.y_mean_ + self.y_scale_ * heads.mean(axis=0)
        if return_std:
            return y_pred, self.y_scale_ * heads.std(axis=0)
        return y_pred
