"""The QR algorithm's schedule against an independent NumPy implementation."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from sklyap import lyapunov_spectrum
from sklyap._benettin import qr_iteration
from sklyap.dynamics import as_dynamics
from sklyap.orthonormalize import householder

from helpers import benettin_numpy, orthogonal

F64 = torch.float64


def _rnn(gain, n=6, seed=0):
    """A driven tanh RNN whose W_hh has singular values from 1.5 gain down to 0.5 gain.

    Distinct singular values keep the exponents apart (so each is well
    conditioned), and their ratio of 3 keeps a 7-step interval within a few
    digits of float64.
    """
    gen = torch.Generator().manual_seed(seed)
    rnn = nn.RNN(2, n, batch_first=True).double()
    singular = torch.linspace(1.5, 0.5, n, dtype=F64)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(gain * orthogonal(n, seed) * singular @ orthogonal(n, seed + 7))
        # Weak drive: the units stay off saturation, so tanh' spreads the log
        # growths little beyond what the singular values do.
        rnn.weight_ih_l0.copy_(0.3 * torch.randn(n, 2, generator=gen, dtype=F64))
        rnn.bias_ih_l0.copy_(0.05 * torch.randn(n, generator=gen, dtype=F64))
        rnn.bias_hh_l0.zero_()
    return rnn


INPUTS = torch.randn(3, 90, 2, generator=torch.Generator().manual_seed(1), dtype=F64)

# The two implementations round differently in every product and QR; each
# exponent is an average over 60-90 steps of well-separated, well-conditioned
# log growths, so they agree to about 1e-13. 1e-11 leaves room for BLAS.
ATOL = 1e-11


@pytest.mark.parametrize("interval", [1, 3, 7])
@pytest.mark.parametrize("k", [6, 2])
@pytest.mark.parametrize("warmup", [0, 30])
def test_fixed_intervals_match_numpy(interval, k, warmup):
    rnn = _rnn(1.0)
    result = lyapunov_spectrum(
        rnn, INPUTS, n_exponents=k, warmup=warmup, qr_interval=interval, device="cpu"
    )
    expected = benettin_numpy(rnn, INPUTS, k, warmup, interval)
    np.testing.assert_allclose(result.per_trajectory, expected, rtol=0, atol=ATOL)


def test_auto_intervals_of_a_stack_match_numpy_model_by_model():
    # Gains 0.2, 0.6 and 1.5: per-step spreads of log growth that "auto" turns
    # into different intervals, so the stack re-orthonormalises in groups.
    models = [_rnn(gain, seed=seed) for seed, gain in enumerate([0.2, 0.6, 1.5])]
    results = lyapunov_spectrum(models, INPUTS, warmup=30, qr_interval="auto", device="cpu")
    intervals = [r.qr_interval for r in results]
    assert len(set(intervals)) > 1, intervals
    for model, result in zip(models, results):
        # "auto" re-orthonormalises every step of the warm-up, then at its interval.
        expected = benettin_numpy(model, INPUTS, 6, 30, result.qr_interval, warmup_interval=1)
        np.testing.assert_allclose(result.per_trajectory, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("warmup,interval", [(30, 7), (0, 1), (30, "auto")])
def test_number_of_re_orthonormalisations(warmup, interval):
    calls = []

    def counting(frames):
        calls.append(frames.shape[0])
        return householder(frames)

    dyn = as_dynamics(_rnn(0.9))
    with torch.no_grad():
        *_, (used,) = qr_iteration(
            dyn, INPUTS, torch.zeros(3, 6, dtype=F64), 6, warmup, interval, orthonormalize=counting
        )
    # The warm-up every `interval` steps ("auto": every step) and at its end;
    # then every `used` steps and at the last step. T = 90.
    every = 1 if interval == "auto" else interval
    expected = math.ceil(warmup / every) + math.ceil((90 - warmup) / used)
    assert used == interval if interval != "auto" else used > 1  # "auto" lengthens it here
    assert len(calls) == expected
    assert set(calls) == {3}  # all trajectories at once


def test_the_seam_takes_any_qr():
    """A method of the seam's contract (here modified Gram-Schmidt, written out in
    NumPy, with no QR routine) gives the same spectrum."""

    def gram_schmidt(frames):
        rows, growth = [], []
        for frame in frames.numpy():  # (k, n): the frame's vectors are its rows
            q, norms = np.empty_like(frame), np.empty(len(frame))
            for j, v in enumerate(frame):
                v = v.copy()
                for i in range(j):  # modified: against the updated vector
                    v -= (q[i] @ v) * q[i]
                norms[j] = np.linalg.norm(v)
                q[j] = v / norms[j]
            rows.append(q)
            growth.append(norms)
        return torch.from_numpy(np.array(rows)), torch.from_numpy(np.array(growth))

    dyn = as_dynamics(_rnn(1.0))
    results = []
    for method in (householder, gram_schmidt):
        with torch.no_grad():
            sums, *_ = qr_iteration(
                dyn, INPUTS, torch.zeros(3, 6, dtype=F64), 6, 30, 2, orthonormalize=method
            )
        results.append(sums.numpy() / 60)
    np.testing.assert_allclose(results[1], results[0], rtol=0, atol=ATOL)
    assert math.isfinite(results[0].sum())
