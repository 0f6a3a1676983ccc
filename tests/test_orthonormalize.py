"""The re-orthonormalisation, by the identities that define a QR decomposition."""

import math

import numpy as np
import pytest
import torch

from sklyap.orthonormalize import cholesky_qr2, householder

F64 = torch.float64


def _frames(M, k, n, spread, seed=0, dtype=F64):
    """Frames whose rows grow by factors from 1 down to exp(-spread), in random directions."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.linalg.qr(torch.randn(M, n, k, generator=gen, dtype=F64))[0].mT
    mix = torch.randn(M, k, k, generator=gen, dtype=F64).tril(-1) * 0.3 + torch.eye(k)
    scale = torch.exp(-torch.linspace(0, spread, k, dtype=F64))
    return (scale[:, None] * (mix @ rows)).to(dtype)


def _check_qr(frames, rows, growth, atol, relative=True):
    """rows orthonormal; frames = L rows with L = frames rows^T lower triangular, |L_ii| = growth.

    ``relative``: |L_ii| = growth to ``atol`` relative to each growth; else
    relative to the largest of the frame (what a backward-stable QR promises
    for a frame whose weak directions are ill-determined).
    """
    k = frames.shape[-2]
    eye = torch.eye(k, dtype=rows.dtype)
    torch.testing.assert_close(rows @ rows.mT, eye.expand_as(rows @ rows.mT), rtol=0, atol=atol)
    lower = frames @ rows.mT
    scale = growth.amax(dim=-1, keepdim=True)[..., None]
    torch.testing.assert_close(lower.triu(1) / scale, torch.zeros_like(lower), rtol=0, atol=atol)
    diagonal = torch.diagonal(lower, dim1=-2, dim2=-1).abs()
    if relative:
        torch.testing.assert_close(diagonal, growth, rtol=atol, atol=0)
    else:
        torch.testing.assert_close(
            diagonal / scale[..., 0], growth / scale[..., 0], rtol=0, atol=atol
        )
    torch.testing.assert_close(lower @ rows, frames, rtol=0, atol=atol * float(scale.max()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,spread", [((3, 4, 4), 5.0), ((5, 3, 9), 25.0), ((1, 1, 6), 0.0)])
def test_householder_is_a_qr_decomposition(shape, spread, dtype):
    frames = _frames(*shape, spread=spread, dtype=dtype)
    rows, growth = householder(frames)
    assert rows.shape == frames.shape and growth.shape == frames.shape[:-1]
    assert rows.dtype == growth.dtype == dtype
    # Backward stable: the identities hold to a few ulps, whatever the spread.
    _check_qr(frames, rows, growth, atol=50 * torch.finfo(dtype).eps)


def test_householder_keeps_the_relative_accuracy_of_weak_directions():
    # Rows that shrink by up to e^-25 (cond 7e10), each along its own direction:
    # the growths are the scales, each to relative rounding, however small.
    frames = _frames(4, 5, 7, spread=25.0)
    scale = torch.exp(-torch.linspace(0, 25.0, 5, dtype=F64))
    unmixed = scale[:, None] * torch.linalg.qr(frames.mT)[0].mT
    _, growth = householder(unmixed)
    torch.testing.assert_close(growth, scale.expand(4, 5), rtol=1e-14, atol=0)


def test_householder_gives_zero_growth_to_a_lost_direction():
    frames = _frames(2, 4, 6, spread=1.0)
    frames[1, 2] = frames[1, 0] + frames[1, 1]  # in the span of the rows before it
    rows, growth = householder(frames)
    assert torch.isfinite(rows).all()
    assert growth[1, 2] < 1e-15 * growth[1, 0] and (growth[0] > 0.1).all()


# -- CholeskyQR2, against NumPy's QR -----------------------------------------------------


def _numpy_growth(frames):
    """The oracle: |R_ii| of NumPy's QR of each column frame, in float64."""
    return np.array([np.abs(np.diag(np.linalg.qr(f.T, mode="r"))) for f in frames.double()])


@pytest.fixture
def fallbacks(monkeypatch):
    """The number of frames CholeskyQR2 handed to Householder, per call."""
    import sklyap.orthonormalize as module

    calls, method = [], module.householder

    def counting(frames):
        calls.append(frames.shape[0])
        return method(frames)

    monkeypatch.setattr(module, "householder", counting)
    return calls


@pytest.mark.parametrize("spread", [0.0, 5.0, 13.8, 23.0, 40.0])
def test_cholesky_qr2_matches_numpy_on_graded_frames(spread, fallbacks):
    # Rows shrinking by up to e^-spread: condition numbers 1 to 2e17 (13.8: 1e6,
    # 23: 1e10). Scaling the rows first makes the Gram matrix as well conditioned
    # as the mixing, so no frame needs Householder and every growth, the weakest
    # included, matches the oracle to relative rounding.
    frames = _frames(16, 8, 12, spread=spread)
    rows, growth = cholesky_qr2(frames)
    assert fallbacks == []
    np.testing.assert_allclose(growth.numpy(), _numpy_growth(frames), rtol=1e-12, atol=0)
    _check_qr(frames, rows, growth, atol=50 * torch.finfo(F64).eps)


def _conditioned(M, k, n, cond, seed=0):
    """Frames with singular values set directly, from 1 down to 1/cond, in mixed rows."""
    gen = torch.Generator().manual_seed(seed)
    left = torch.linalg.qr(torch.randn(M, k, k, generator=gen, dtype=F64))[0]
    right = torch.linalg.qr(torch.randn(M, n, k, generator=gen, dtype=F64))[0]
    values = torch.logspace(0, -math.log10(cond), k, dtype=F64)
    return left @ (values[:, None] * right.mT)


@pytest.mark.parametrize("cond", [1e6, 1e10])
def test_cholesky_qr2_on_ill_conditioned_frames(cond, fallbacks):
    # Condition numbers below and above 1/sqrt(eps) = 7e7, not by grading (which
    # the row scaling divides out) but in the rows' directions: every row leans
    # on the others. Above it, the Gram matrix cannot be factored accurately,
    # and Householder must take over.
    frames = _conditioned(6, 5, 9, cond)
    rows, growth = cholesky_qr2(frames)
    if cond > 1e8:
        assert sum(fallbacks) >= 1
    # A QR decomposition to working precision, whichever method made each frame.
    _check_qr(frames, rows, growth, atol=50 * torch.finfo(F64).eps, relative=False)
    # Against the oracle: the weak growths of such frames are determined only to
    # about eps * cond relative to the largest; two backward-stable QRs (NumPy's
    # and Householder's) differ by that much.
    scale = growth.amax(dim=-1, keepdim=True).numpy()
    difference = np.abs(growth.numpy() - _numpy_growth(frames)) / scale
    assert (difference <= 10 * np.finfo(np.float64).eps * cond).all()


@pytest.mark.parametrize("closeness", [1e-6, 1e-10])
def test_cholesky_qr2_on_nearly_dependent_rows(closeness, fallbacks):
    # Row 1 within `closeness` of row 0: condition numbers of about 1e6 and 1e10.
    gen = torch.Generator().manual_seed(0)
    frames = torch.randn(4, 6, 10, generator=gen, dtype=F64)
    frames[:, 1] = frames[:, 0] + closeness * frames[:, 1]
    rows, growth = cholesky_qr2(frames)
    if closeness < 1e-8:
        assert sum(fallbacks) >= 1
    _check_qr(frames, rows, growth, atol=50 * torch.finfo(F64).eps, relative=False)
    scale = growth.amax(dim=-1, keepdim=True).numpy()
    cond = np.linalg.cond(frames.numpy())[:, None]
    difference = np.abs(growth.numpy() - _numpy_growth(frames)) / scale
    assert (difference <= 10 * np.finfo(np.float64).eps * cond).all()


def test_cholesky_qr2_gives_zero_growth_to_a_lost_direction(fallbacks):
    frames = _frames(2, 4, 6, spread=1.0)
    frames[1, 2] = frames[1, 0] + frames[1, 1]  # in the span of the rows before it
    rows, growth = cholesky_qr2(frames)
    assert sum(fallbacks) <= 1  # that frame at most (rounding may let it pass the checks)
    assert torch.isfinite(rows).all()
    assert growth[1, 2] < 1e-15 * growth[1, 0] and (growth[0] > 0.1).all()
    np.testing.assert_allclose(growth[0].numpy(), _numpy_growth(frames[:1])[0], rtol=1e-12)


def test_cholesky_qr2_in_float32():
    frames = _frames(5, 3, 9, spread=6.0, dtype=torch.float32)
    rows, growth = cholesky_qr2(frames)
    assert rows.dtype == growth.dtype == torch.float32
    _check_qr(frames, rows, growth, atol=50 * torch.finfo(torch.float32).eps)
