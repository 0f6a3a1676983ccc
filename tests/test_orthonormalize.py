"""The re-orthonormalisation, by the identities that define a QR decomposition."""

import pytest
import torch

from sklyap.orthonormalize import householder

F64 = torch.float64


def _frames(M, k, n, spread, seed=0, dtype=F64):
    """Frames whose rows grow by factors from 1 down to exp(-spread), in random directions."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.linalg.qr(torch.randn(M, n, k, generator=gen, dtype=F64))[0].mT
    mix = torch.randn(M, k, k, generator=gen, dtype=F64).tril(-1) * 0.3 + torch.eye(k)
    scale = torch.exp(-torch.linspace(0, spread, k, dtype=F64))
    return (scale[:, None] * (mix @ rows)).to(dtype)


def _check_qr(frames, rows, growth, atol):
    """rows orthonormal; frames = L rows with L = frames rows^T lower triangular, |L_ii| = growth."""
    k = frames.shape[-2]
    eye = torch.eye(k, dtype=rows.dtype)
    torch.testing.assert_close(rows @ rows.mT, eye.expand_as(rows @ rows.mT), rtol=0, atol=atol)
    lower = frames @ rows.mT
    scale = growth.amax(dim=-1, keepdim=True)[..., None]
    torch.testing.assert_close(lower.triu(1) / scale, torch.zeros_like(lower), rtol=0, atol=atol)
    torch.testing.assert_close(
        torch.diagonal(lower, dim1=-2, dim2=-1).abs(), growth, rtol=atol, atol=0
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
