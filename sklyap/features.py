"""Array-in, array-out features of Lyapunov spectra.

A spectrum is one row: exponents sorted in descending order. Networks of
different sizes have spectra of different lengths; the convention for such
*ragged* collections is a 2-D array padded with NaN after each row's own
length.
"""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import validate_data

from ._validation import check_int, check_spectra_not_models

__all__ = [
    "SpectrumResampler",
    "SpectrumStatistics",
    "kaplan_yorke_dimension",
    "resample_spectra",
]


def _row_lengths(X):
    """Length of each row of a NaN-padded 2-D array; errors on inner NaN."""
    finite = ~np.isnan(X)
    lengths = finite.sum(axis=1)
    # A row is well formed when its finite entries come first: the first
    # ``length`` entries are all finite.
    positions = np.arange(X.shape[1])
    prefix = positions[None, :] < lengths[:, None]
    bad = np.flatnonzero((finite != prefix).any(axis=1))
    if bad.size:
        raise ValueError(
            f"rows {bad[:5].tolist()} hold NaN before a finite value; NaN is "
            "only allowed as padding after the end of a shorter spectrum"
        )
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        raise ValueError(f"rows {empty[:5].tolist()} hold no finite exponent; {FAILED_ROWS_HINT}")
    return lengths


FAILED_ROWS_HINT = (
    "rows of NaN are the spectra of networks that could not be measured "
    "(LyapunovSpectrumTransformer(on_error='nan')): drop them first, "
    "kept = np.isfinite(X).all(axis=1); fit(X[kept], y[kept])"
)


def check_no_failed_rows(X):
    """Refuse an array with rows that are entirely NaN, with the recipe to drop them.

    Other inputs pass unchanged, to the estimator's own validation.
    """
    if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and X.shape[1]:
        empty = np.flatnonzero(np.isnan(X).all(axis=1))
        if empty.size:
            raise ValueError(f"X has NaN rows {empty[:10].tolist()}; {FAILED_ROWS_HINT}")
    return X


def resample_spectra(X, n_features):
    """Resample spectra onto a common length by linear interpolation.

    Each row is read as a function of the normalised exponent index
    ``i / (k - 1)`` in ``[0, 1]`` (``k`` the row's own length) and evaluated at
    ``n_features`` equally spaced points of ``[0, 1]``. The first and last
    exponents are therefore kept exactly, a row already of length
    ``n_features`` is returned unchanged, and a non-increasing row stays
    non-increasing. A row of length one is repeated.

    Parameters
    ----------
    X : array-like of shape (n_samples, k) or (k,)
        Spectra, one per row. Shorter spectra are padded with NaN after their
        last exponent. Infinite values are not allowed.
    n_features : int
        Length of the resampled spectra, at least 1.

    Returns
    -------
    ndarray of shape (n_samples, n_features) or (n_features,)
        Resampled spectra, float64; 1-D when ``X`` was 1-D.

    Examples
    --------
    >>> import numpy as np
    >>> from sklyap.features import resample_spectra
    >>> resample_spectra([0.0, -1.0, -2.0], 5)
    array([ 0. , -0.5, -1. , -1.5, -2. ])
    >>> resample_spectra([[0.0, -2.0, np.nan], [1.0, 0.0, -1.0]], 3)
    array([[ 0., -1., -2.],
           [ 1.,  0., -1.]])
    """
    n_features = check_int(n_features, "n_features", minimum=1)
    X = np.asarray(X, dtype=np.float64)
    one_d = X.ndim == 1
    if one_d:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"expected spectra as a 1-D or 2-D array, got shape {X.shape}")
    if np.isinf(X).any():
        raise ValueError("spectra hold infinite values; expected finite exponents")
    lengths = _row_lengths(X)
    out = np.empty((X.shape[0], n_features), dtype=np.float64)
    grid = np.linspace(0.0, 1.0, n_features)
    for k in np.unique(lengths):
        rows = np.flatnonzero(lengths == k)
        block = X[rows, :k]
        if k == 1 or k == n_features:
            out[rows] = block
        else:
            source = np.linspace(0.0, 1.0, k)
            # Piecewise-linear interpolation, vectorised over the rows of the
            # block: locate each target point between two source points.
            right = np.clip(np.searchsorted(source, grid, side="right"), 1, k - 1)
            left = right - 1
            weight = (grid - source[left]) / (source[right] - source[left])
            a, b = block[:, left], block[:, right]
            # a + (b - a) w is monotone in w and exact on a plateau; clipping
            # to [min(a, b), max(a, b)] keeps rounding from crossing the next
            # source point, so a non-increasing row stays non-increasing
            # exactly, and w = 1 gives b itself.
            value = np.clip(a + (b - a) * weight, np.minimum(a, b), np.maximum(a, b))
            out[rows] = np.where(weight == 1.0, b, value)
    return out[0] if one_d else out


def _pad_ragged(X, width):
    """A list of 1-D spectra (of any lengths) as a NaN-padded 2-D array, at least ``width`` wide.

    Anything else is returned as it is.
    """
    if not isinstance(X, (list, tuple)) or not X:
        return X
    rows = []
    for row in X:
        row = np.asarray(row)
        if row.ndim != 1:
            return X  # not a list of 1-D spectra: let validation say what it is
        rows.append(row)
    out = np.full((len(rows), max(max(len(r) for r in rows), width or 0)), np.nan)
    for index, row in enumerate(rows):
        try:
            out[index, : len(row)] = row
        except (TypeError, ValueError):
            raise TypeError(f"spectrum {index} must hold numbers, got dtype {row.dtype}") from None
    return out


def _check_spectra(estimator, X, reset):
    """Validate a 2-D array of (possibly NaN-padded) spectra for a transformer.

    A list of 1-D spectra of different lengths is padded with NaN first.
    """
    check_spectra_not_models(X, estimator)
    X = _pad_ragged(X, None if reset else getattr(estimator, "n_features_in_", None))
    X = validate_data(
        estimator,
        X,
        reset=reset,
        dtype=np.float64,
        ensure_all_finite="allow-nan",
    )
    return X


class SpectrumResampler(TransformerMixin, BaseEstimator):
    """Resample Lyapunov spectra onto a common length.

    Each row (one network's spectrum, exponents in descending order) is read
    as a piecewise-linear function of the normalised exponent index
    ``i / (k - 1)`` in ``[0, 1]``, ``k`` being the row's own length, and is
    evaluated at ``n_features`` equally spaced points of ``[0, 1]``. Spectra
    of networks of different sizes thereby share one axis, and can be fed to
    :class:`~sklyap.AeLLERegressor` or any other estimator.

    The transformer is stateless: :meth:`fit` only records the number of
    input columns, and :meth:`transform` can be called without fitting.

    Input convention for ragged spectra: a collection of spectra of different
    lengths is a 2-D array as wide as the longest one, each shorter row padded
    with NaN *after* its last exponent, or a list of 1-D spectra (padded so).
    NaN before a finite value, rows made only of NaN, and infinite values are
    errors.

    Parameters
    ----------
    n_features : int, default=64
        Length of the resampled spectra, at least 1. The first and last
        exponents of each row are kept exactly; a row of length one is
        repeated.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the input columns, when ``X`` had string column names.

    See Also
    --------
    resample_spectra : The underlying function.
    SpectrumStatistics : Summary statistics of each spectrum.

    Examples
    --------
    >>> import numpy as np
    >>> from sklyap import SpectrumResampler
    >>> X = np.array([[0.0, -2.0, np.nan],
    ...               [1.0, 0.0, -1.0]])
    >>> SpectrumResampler(n_features=5).fit_transform(X)
    array([[ 0. , -0.5, -1. , -1.5, -2. ],
           [ 1. ,  0.5,  0. , -0.5, -1. ]])
    """

    def __init__(self, n_features=64):
        self.n_features = n_features

    def fit(self, X, y=None):
        """Record the number of input columns; nothing is learnt.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Spectra, one per row, NaN-padded when ragged.
        y : None
            Ignored.

        Returns
        -------
        self : SpectrumResampler
            The fitted transformer.
        """
        _check_n_features_param(self.n_features)
        X = _check_spectra(self, X, reset=True)
        _row_lengths(X)
        return self

    def transform(self, X):
        """Resample each spectrum onto ``n_features`` points.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Spectra, one per row, NaN-padded when ragged.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_features)
            Resampled spectra, float64.
        """
        _check_n_features_param(self.n_features)
        X = _check_spectra(self, X, reset=False)
        return resample_spectra(X, self.n_features)

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output columns: ``exponent0 ... exponent{n-1}``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per resampled position.
        """
        _check_n_features_param(self.n_features)
        return np.asarray([f"exponent{i}" for i in range(self.n_features)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.allow_nan = True
        return tags


def _check_n_features_param(n_features):
    check_int(n_features, "n_features", minimum=1)


#: Names of the columns returned by :class:`SpectrumStatistics`, in order.
STATISTICS = (
    "max_exponent",
    "mean_exponent",
    "std_exponent",
    "n_positive",
    "fraction_positive",
    "kaplan_yorke_dimension",
    "ks_entropy",
)


def kaplan_yorke_dimension(spectra):
    """Kaplan-Yorke (Lyapunov) dimension of each spectrum.

    With the exponents of a row sorted in descending order
    ``lambda_1 >= ... >= lambda_n`` and partial sums
    ``S_j = lambda_1 + ... + lambda_j``, let ``j`` be the largest index with
    ``S_j >= 0``. Then ``D = j + S_j / |lambda_{j+1}|``. Edge cases:

    - ``lambda_1 < 0`` (no ``j`` exists, a stable fixed point): ``D = 0``;
    - ``S_n >= 0`` (no contraction, e.g. a volume-preserving map): ``D = n``,
      the length of the row.

    Because partial sums rise while exponents are positive and fall once they
    are negative, the indices with ``S_j >= 0`` form a prefix, so ``j`` is
    their count. The comparisons are exact: no tolerance is applied to sums
    that are zero up to rounding.

    Parameters
    ----------
    spectra : array-like of shape (n_samples, k) or (k,)
        Spectra, one per row, in any order (each row is sorted internally);
        shorter rows padded with NaN after their last exponent.

    Returns
    -------
    ndarray of shape (n_samples,) or float
        The dimension of each row, float64; a float when ``spectra`` is 1-D.

    Examples
    --------
    >>> from sklyap.features import kaplan_yorke_dimension
    >>> float(kaplan_yorke_dimension([0.5, 0.0, -1.0]))
    2.5
    """
    X = np.asarray(spectra, dtype=np.float64)
    one_d = X.ndim == 1
    if one_d:
        X = X[None, :]
    if X.ndim != 2:
        raise ValueError(f"expected spectra as a 1-D or 2-D array, got shape {X.shape}")
    if np.isinf(X).any():
        raise ValueError("spectra hold infinite values; expected finite exponents")
    lengths = _row_lengths(X)
    out = _kaplan_yorke(_sort_descending(X), lengths)
    return float(out[0]) if one_d else out


def _sort_descending(X):
    """Sort each row in descending order, NaN padding staying at the end."""
    # np.sort places NaN last in ascending order; sorting -X keeps them last.
    return -np.sort(-X, axis=1)


def _kaplan_yorke(S, lengths):
    """Kaplan-Yorke dimension of rows already sorted in descending order."""
    n_samples, width = S.shape
    valid = np.arange(width)[None, :] < lengths[:, None]
    partial = np.cumsum(np.where(valid, S, 0.0), axis=1)
    j = ((partial >= 0.0) & valid).sum(axis=1)
    dim = np.zeros(n_samples, dtype=np.float64)
    full = j == lengths
    dim[full] = lengths[full]
    inner = np.flatnonzero((j > 0) & ~full)
    if inner.size:
        jj = j[inner]
        dim[inner] = jj + partial[inner, jj - 1] / np.abs(S[inner, jj])
    return dim


class SpectrumStatistics(TransformerMixin, BaseEstimator):
    """Summary statistics of each Lyapunov spectrum, as named features.

    For each row (one network's spectrum; shorter rows padded with NaN after
    their last exponent, see :class:`SpectrumResampler`) the transformer
    returns, in this order:

    ``max_exponent``
        The largest exponent ``lambda_1``.
    ``mean_exponent``
        The mean of the row's exponents.
    ``std_exponent``
        Their population standard deviation (``ddof=0``).
    ``n_positive``
        The number of strictly positive exponents.
    ``fraction_positive``
        That number divided by the row's own length.
    ``kaplan_yorke_dimension``
        The Kaplan-Yorke dimension; see :func:`kaplan_yorke_dimension` for
        the definition and its edge cases (``0`` when ``lambda_1 < 0``, the
        row's length when the sum of all exponents is ``>= 0``).
    ``ks_entropy``
        The Kolmogorov-Sinai entropy estimate given by Pesin's formula: the
        sum of the positive exponents (``0`` when none is positive), in nats
        per step when the exponents are.

    The rows need not be sorted. The transformer is stateless.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns seen during :meth:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the input columns, when ``X`` had string column names.

    See Also
    --------
    SpectrumResampler : Spectra of different lengths onto one axis.
    AeLLERegressor : A learnt embedding of whole spectra.

    Notes
    -----
    A simple baseline for predicting a network's accuracy from its spectrum
    is ``make_pipeline(SpectrumStatistics(), RidgeCV())``;
    it is a useful yardstick for :class:`~sklyap.AeLLERegressor`.

    Examples
    --------
    >>> import numpy as np
    >>> from sklyap import SpectrumStatistics
    >>> stats = SpectrumStatistics()
    >>> Xt = stats.fit_transform([[0.5, 0.0, -1.0]])
    >>> dict(zip(stats.get_feature_names_out(), Xt[0].round(4).tolist()))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'max_exponent': 0.5, 'mean_exponent': -0.1667, 'std_exponent': 0.6236,
     'n_positive': 1.0, 'fraction_positive': 0.3333,
     'kaplan_yorke_dimension': 2.5, 'ks_entropy': 0.5}
    """

    def fit(self, X, y=None):
        """Record the number of input columns; nothing is learnt.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Spectra, one per row, NaN-padded when ragged.
        y : None
            Ignored.

        Returns
        -------
        self : SpectrumStatistics
            The fitted transformer.
        """
        X = _check_spectra(self, X, reset=True)
        _row_lengths(X)
        return self

    def transform(self, X):
        """Compute the statistics of each spectrum.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Spectra, one per row, NaN-padded when ragged.

        Returns
        -------
        X_new : ndarray of shape (n_samples, 7)
            One column per statistic, in the order of
            :meth:`get_feature_names_out`, float64.
        """
        X = _check_spectra(self, X, reset=False)
        lengths = _row_lengths(X)
        S = _sort_descending(X)
        valid = np.arange(S.shape[1])[None, :] < lengths[:, None]
        zeroed = np.where(valid, S, 0.0)
        mean = zeroed.sum(axis=1) / lengths
        centred = np.where(valid, S - mean[:, None], 0.0)
        std = np.sqrt((centred**2).sum(axis=1) / lengths)
        positive = valid & (zeroed > 0.0)
        n_positive = positive.sum(axis=1)
        out = np.column_stack(
            [
                S[:, 0],
                mean,
                std,
                n_positive.astype(np.float64),
                n_positive / lengths,
                _kaplan_yorke(S, lengths),
                np.where(positive, zeroed, 0.0).sum(axis=1),
            ]
        )
        return out

    def get_feature_names_out(self, input_features=None):
        """Get the names of the output columns, see the class docstring.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``max_exponent, mean_exponent, std_exponent, n_positive,
            fraction_positive, kaplan_yorke_dimension, ks_entropy``.
        """
        return np.asarray(STATISTICS, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.allow_nan = True
        return tags
