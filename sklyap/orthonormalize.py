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
``orthonormalize`` argument; :func:`resolve` turns the ``orthonormalize``
setting of :func:`sklyap.lyapunov_spectrum` (a name, ``"auto"`` or a
callable) into one.
"""

import torch

__all__ = ["AUTO", "METHODS", "cholesky_qr2", "householder", "resolve"]


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


def _cholesky_pass(frames):
    """One CholeskyQR pass on row-scaled frames: ``(rows, growth, ok)``.

    With ``D`` the row norms and ``S = D^-1 V`` (unit rows), ``S S^T = L L^T``
    and the new rows are ``L^-1 S``; the growths are ``D_i L_ii``. Scaling the
    rows first makes the pass invariant to the grading of the frame (the
    growths of a QR step span many orders of magnitude) and keeps the Gram
    matrix from under- or overflowing. ``ok`` is False where the Cholesky
    factorisation failed (a frame too ill-conditioned, or a lost direction).
    """
    norms = torch.linalg.vector_norm(frames, dim=-1)
    unit = frames / norms.clamp_min(torch.finfo(frames.dtype).tiny)[..., None]
    lower, info = torch.linalg.cholesky_ex(unit @ unit.mT)
    ok = (info == 0) & (norms > 0).all(dim=-1)
    eye = torch.eye(frames.shape[-2], dtype=frames.dtype, device=frames.device)
    lower = torch.where(ok[..., None, None], lower, eye)  # failed frames: anything finite
    rows = torch.linalg.solve_triangular(lower, unit, upper=False)
    return rows, norms * torch.diagonal(lower, dim1=-2, dim2=-1), ok


def cholesky_qr2(frames):
    """CholeskyQR2: two Cholesky passes, batched, with Householder where they fail.

    Each pass is a Gram matrix, a Cholesky factorisation and a triangular
    solve: batched matrix products, which a GPU runs for all frames at once,
    where Householder QR goes frame by frame. Two passes give rows orthonormal
    to working precision while a frame's (row-scaled) condition number stays
    below about ``1/sqrt(eps)``. The frames where it does not are redone with
    :func:`householder`: never a silently wrong frame. A frame is redone when
    a factorisation failed, when its rows are not orthonormal to ``32 k eps``,
    or when a row leaves the span of the input rows before it or its growth
    is not its own component (an entry of the strict upper triangle of
    ``V Q^T``, or a difference of its diagonal from the growths, above
    ``32 k eps`` times its row's norm): what the decomposition promises,
    checked, at the cost of two more batched products.

    Parameters
    ----------
    frames : Tensor of shape (..., k, n)
        Row-wise frames, ``k <= n``.

    Returns
    -------
    rows : Tensor of shape (..., k, n)
    growth : Tensor of shape (..., k)
    """
    first, growth1, ok1 = _cholesky_pass(frames)
    rows, growth2, ok2 = _cholesky_pass(first)
    growth = growth1 * growth2
    k = frames.shape[-2]
    tol = 32 * k * torch.finfo(frames.dtype).eps
    eye = torch.eye(k, dtype=frames.dtype, device=frames.device)
    orthonormal = (rows @ rows.mT - eye).abs().amax(dim=(-2, -1)) <= tol
    # Row i of V Q^T holds row i's components along the new rows: none past i,
    # and its own, R_ii, is the growth.
    lower = frames @ rows.mT
    norms = torch.linalg.vector_norm(frames, dim=-1)
    nested = (lower.triu(1).abs().amax(dim=-1) <= tol * norms).all(dim=-1)
    diagonal = torch.diagonal(lower, dim1=-2, dim2=-1).abs()
    agrees = ((diagonal - growth).abs() <= tol * norms).all(dim=-1)
    good = ok1 & ok2 & orthonormal & nested & agrees
    if bool(good.all()):
        return rows, growth
    bad = ~good
    rows, growth = rows.clone(), growth.clone()
    rows[bad], growth[bad] = householder(frames[bad])
    return rows, growth


METHODS = {"householder": householder, "cholesky_qr2": cholesky_qr2}
"""The methods by name, as the ``orthonormalize`` setting takes them."""

AUTO = {"cpu": "householder", "cuda": "householder"}
"""The method ``orthonormalize="auto"`` uses on each device type (others: Householder).

Chosen by ``benchmarks/bench_orthonormalize.py``: on the CPU Householder is the
faster (LAPACK's QR against two Gram-Cholesky-solve passes, whose products gain
nothing from batching there). On CUDA the table keeps Householder until the
benchmark has measured CholeskyQR2 there: the method is built for GPUs (batched
products instead of a QR per matrix), but a default is chosen by measurement.
"""


class _Checked:
    """A user's method, its output checked against the contract on its first call."""

    def __init__(self, method):
        self.method, self.checked = method, False

    def __call__(self, frames):
        out = self.method(frames)
        if not self.checked:
            self._check(frames, out)
            self.checked = True
        return out

    def _check(self, frames, out):
        shapes = (tuple(frames.shape), tuple(frames.shape[:-1]))

        def fail(what):
            raise ValueError(
                f"orthonormalize={self.method!r} must return (rows, growth): rows of shape "
                f"{shapes[0]} with orthonormal rows and growth of shape {shapes[1]}, >= 0, "
                f"in the frames' dtype and device; {what}"
            )

        if not (isinstance(out, tuple) and len(out) == 2):
            fail(f"got a {type(out).__name__}")
        if not all(isinstance(t, torch.Tensor) for t in out):
            fail(f"got ({', '.join(type(t).__name__ for t in out)})")
        rows, growth = out
        if (tuple(rows.shape), tuple(growth.shape)) != shapes:
            fail(f"got shapes {tuple(rows.shape)} and {tuple(growth.shape)}")
        if {rows.dtype, growth.dtype} != {frames.dtype} or {rows.device, growth.device} != {
            frames.device
        }:
            fail(f"got {rows.dtype} on {rows.device} and {growth.dtype} on {growth.device}")
        if not (torch.isfinite(rows).all() and torch.isfinite(growth).all()):
            fail("got NaN or infinite values")
        if bool((growth < 0).any()):
            fail("got negative growths")
        eye = torch.eye(shapes[0][-2], dtype=rows.dtype, device=rows.device)
        error = float((rows @ rows.mT - eye).abs().max()) if rows.numel() else 0.0
        if error > torch.finfo(rows.dtype).eps ** 0.5:
            fail(f"got rows whose R R^T differs from the identity by {error:.2g}")


def resolve(method, device):
    """The method an ``orthonormalize`` setting names, for computing on ``device``.

    Parameters
    ----------
    method : {"auto", "householder", "cholesky_qr2"} or callable
        A name, ``"auto"`` (:data:`AUTO`'s choice for the device type) or a
        function ``frames -> (rows, growth)``, whose output is checked against
        the contract on its first call.
    device : torch.device

    Returns
    -------
    callable
    """
    if callable(method):
        return _Checked(method)
    if method == "auto":
        method = AUTO.get(torch.device(device).type, "householder")
    if method not in METHODS:
        raise ValueError(
            f"orthonormalize must be 'auto', one of {sorted(METHODS)} or a callable "
            f"frames -> (rows, growth), got {method!r}"
        )
    return METHODS[method]
