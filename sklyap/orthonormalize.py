"""Re-orthonormalisation of tangent frames: the one seam of the QR algorithm.

The QR (Benettin) algorithm carries a frame of ``k`` tangent vectors and, every
``qr_interval`` steps, replaces it by an orthonormal frame spanning the same
nested subspaces, keeping the growth of each direction. For a frame stored
row-wise, ``V`` of shape ``(..., k, n)`` (rows are tangent vectors), that is the
QR decomposition of the column frame ``Z = V^T = Q R``: the new rows are
``Q^T`` and the growths are ``|R_ii|``.

A method is a function ``frames -> (rows, growth)`` over a batch of frames:

- ``rows``: shape ``(..., k, n)``, orthonormal rows, row ``i`` in the span of
  the first ``i + 1`` input rows (signs are free);
- ``growth``: shape ``(..., k)``, ``|R_ii| >= 0`` in the dtype of the frames;
  ``0`` for a direction the frame has lost entirely.

:func:`sklyap._benettin.qr_iteration` takes the method as its
``orthonormalize`` argument; :func:`householder` is the one sklyap uses.
"""

import torch

__all__ = ["householder"]


def householder(frames):
    """Householder QR (LAPACK's ``geqrf``, or the device's), one frame at a time.

    Backward stable for any frame, including frames that lost a direction.

    Parameters
    ----------
    frames : Tensor of shape (..., k, n)
        Row-wise frames, ``k <= n``.

    Returns
    -------
    rows : Tensor of shape (..., k, n)
    growth : Tensor of shape (..., k)
    """
    # frames.mT is the column frame, already in the column-major layout LAPACK takes.
    q, r = torch.linalg.qr(frames.mT)
    return q.mT, torch.diagonal(r, dim1=-2, dim2=-1).abs()
