"""Synthetic spectra with a known relation to a synthetic accuracy."""

import numpy as np

from .._validation import check_int

__all__ = ["make_spectra"]


def make_spectra(n_samples=300, n_exponents=32, *, random_state=0):
    """Synthetic Lyapunov spectra whose "accuracy" is a smooth nonlinear function of them.

    Each spectrum is ``lambda(t) = a - b * t**1.5`` on the normalised exponent
    index ``t`` in ``[0, 1]``, plus Gaussian noise of 0.01, sorted in
    descending order: ``a ~ U(-1, 0.5)`` is about the largest exponent and
    ``b ~ U(1, 2)`` how fast the spectrum falls. The accuracy is a steep
    sigmoid of ``a`` (best near the edge of chaos from below) minus a
    quadratic penalty in ``b``, plus noise of 0.02, so that an ``R^2`` near
    0.99 is the ceiling of any predictor. For tests and benchmarks of
    estimators that read spectra, without training networks.

    Parameters
    ----------
    n_samples : int, default=300
    n_exponents : int, default=32
    random_state : int, default=0
        Seed of numpy's ``default_rng``.

    Returns
    -------
    X : ndarray of shape (n_samples, n_exponents)
    y : ndarray of shape (n_samples,)

    Examples
    --------
    >>> from sklyap.datasets import make_spectra
    >>> X, y = make_spectra(100, 16)
    >>> X.shape, y.shape
    ((100, 16), (100,))
    """
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    n_exponents = check_int(n_exponents, "n_exponents", minimum=1)
    rng = np.random.default_rng(random_state)
    a = rng.uniform(-1.0, 0.5, n_samples)
    b = rng.uniform(1.0, 2.0, n_samples)
    t = np.linspace(0.0, 1.0, n_exponents)
    X = a[:, None] - b[:, None] * t**1.5 + 0.01 * rng.normal(size=(n_samples, n_exponents))
    X = -np.sort(-X, axis=1)
    y = (
        1.0 / (1.0 + np.exp(-10.0 * (a + 0.25)))
        - 0.3 * (b - 1.5) ** 2
        + 0.02 * rng.normal(size=n_samples)
    )
    return X, y
