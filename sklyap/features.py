"""Array-in, array-out features of Lyapunov spectra.

A spectrum is one row: exponents sorted in descending order. Networks of
different sizes have spectra of different lengths; the convention for such
*ragged* collections is a 2-D array padded with NaN after each row's own
length.
"""

import numbers

import numpy as np

__all__ = ["resample_spectra"]


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
        raise ValueError(f"rows {empty[:5].tolist()} hold no finite exponent")
    return lengths


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
    if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral):
        raise TypeError(f"n_features must be an int, got {n_features!r}")
    if n_features < 1:
        raise ValueError(f"n_features must be >= 1, got {n_features}")
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
        if k == 1:
            out[rows] = block
        elif k == n_features:
            out[rows] = block
        else:
            source = np.linspace(0.0, 1.0, k)
            # Piecewise-linear interpolation, vectorised over the rows of the
            # block: locate each target point between two source points.
            right = np.clip(np.searchsorted(source, grid, side="right"), 1, k - 1)
            left = right - 1
            weight = (grid - source[left]) / (source[right] - source[left])
            out[rows] = block[:, left] * (1.0 - weight) + block[:, right] * weight
    return out[0] if one_d else out
