"""The QR (Benettin) algorithm over a batch of trajectories of one (stacked) system.

For a system ``s_{t+1} = F(s_t, x_t)`` with Jacobians ``J_t = dF/ds``, a frame
``Q`` of ``k`` orthonormal tangent vectors is carried along the trajectory and
re-orthonormalised every ``m`` steps:

    Z = J_{t+m-1} ... J_t Q,     Q', R = qr(Z),     sum_i += log |R_ii|

and ``lambda_i = sum_i / (number of measured steps)``. The first ``warmup``
steps are re-orthonormalised as usual but not counted. This module knows the
schedule (warm-up, intervals, the ``"auto"`` probe, per-model groups) and
nothing of models, batches of models or estimators; the re-orthonormalisation
itself is a method of :mod:`sklyap.orthonormalize`.
"""

import math

import torch
from tqdm.auto import tqdm

from .orthonormalize import householder

__all__ = ["MAX_AUTO_INTERVAL", "auto_interval", "initial_frame", "interval_groups", "qr_iteration"]


def initial_frame(n, k, *, dtype=torch.float64, device="cpu"):
    """The starting frame: the first ``k`` columns of a fixed random orthogonal matrix.

    Returned row-wise, shape ``(k, n)``. A random frame has a component along
    every direction, so no invariant coordinate subspace (decoupled units, a
    block-diagonal ``W_hh``) can trap a partial spectrum away from the leading
    exponents, as the unit vectors ``e_1 ... e_k`` can. The matrix is drawn
    from a generator with a fixed seed, and a frame of ``k`` vectors is the
    head of the frame of ``n``, so results are reproducible and a partial
    spectrum is exactly the head of the full one.
    """
    gen = torch.Generator().manual_seed(0)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q[:, :k].mT.to(device=device, dtype=dtype).contiguous()


# Longest interval "auto" chooses; beyond it the QR's share of a step is small.
MAX_AUTO_INTERVAL = 16


def auto_interval(widest_step_spread, largest_rate, smallest_rate, dtype):
    """The longest interval that keeps the weakest direction at half the digits of
    ``dtype`` and the frame within half the exponent range of ``dtype``.

    ``widest_step_spread`` is the widest ``max_i log R_ii - min_i log R_ii``
    of one step, ``largest_rate`` and ``smallest_rate`` the largest and
    smallest ``log R_ii`` of one step, all observed during the warm-up.
    """
    finfo = torch.finfo(dtype)
    digits = -0.5 * math.log(finfo.eps)
    interval = MAX_AUTO_INTERVAL
    if widest_step_spread > 0:
        interval = min(interval, int(digits / widest_step_spread))  # 0 for an infinite spread
    if largest_rate > 0:  # no overflow between re-orthonormalisations
        interval = min(interval, int(0.5 * math.log(finfo.max) / largest_rate))
    if smallest_rate < 0:  # no underflow either
        interval = min(interval, int(0.5 * math.log(finfo.tiny) / smallest_rate))
    return max(1, interval)


def qr_iteration(
    dynamics,
    inputs,
    state,
    k,
    warmup,
    qr_interval,
    *,
    orthonormalize=householder,
    n_models=1,
    verbose=False,
):
    """Run the QR algorithm for ``n_models`` stacked models of ``B`` trajectories each.

    ``inputs`` is ``(B, T, d)``, shared by the models, or ``(M * B, T, d)``;
    ``state`` the initial states ``(M * B, n)``; ``orthonormalize`` a method of
    :mod:`sklyap.orthonormalize`.

    Returns float64 log sums (M*B, k), the final state, a (M*B,) flag of
    trajectories whose frame underflowed between re-orthonormalisations, and
    the interval each model used after the warm-up (a list of M ints).
    """
    T = inputs.shape[1]
    MB, n = state.shape
    B = MB // n_models
    dtype, device = state.dtype, state.device
    tiny = torch.finfo(dtype).tiny
    # Rows of the frame are tangent vectors.
    frames = initial_frame(n, k, dtype=dtype, device=device).expand(MB, k, n).contiguous()
    log_sums = torch.zeros(MB, k, dtype=torch.float64, device=device)
    underflow = torch.zeros(MB, dtype=torch.bool, device=device)
    auto = qr_interval == "auto"
    # "auto" watches the second half of the warm-up, re-orthonormalising every step.
    probe_from = warmup // 2 if auto and warmup >= 2 else T
    widest = torch.zeros(MB, dtype=torch.float64, device=device)
    largest = torch.zeros(MB, dtype=torch.float64, device=device)
    smallest = torch.zeros(MB, dtype=torch.float64, device=device)
    # After the warm-up, models re-orthonormalise in groups of one interval:
    # {interval: the rows of its models, or None for all rows}.
    warmup_interval = 1 if auto else qr_interval
    groups = {warmup_interval: None}
    intervals = [1 if auto else qr_interval] * n_models

    def reorthonormalise(rows, block, probe=False):
        """QR of the frames of ``rows`` (None: all) after ``block`` steps.

        Returns their log |R_ii|, which rows lost precision, and (when
        probing) which rows had a direction annihilated.
        """
        nonlocal frames
        sub = frames if rows is None else frames[rows]
        q, growth = orthonormalize(sub)
        if rows is None:
            frames = q
        else:
            frames[rows] = q
        # A subnormal R_ii has lost precision: the frame underflowed. An exact
        # zero after one step is a direction the step annihilates (clamped, see
        # ``sklyap.lyapunov_spectrum``); after several it may be underflow.
        small = growth < tiny
        lost = small & (growth > 0) if block == 1 else small
        logs = torch.log(growth.clamp_min(tiny).to(torch.float64))
        return logs, lost.any(dim=1), small.any(dim=1) if probe else None

    steps = range(T)
    if verbose:
        steps = tqdm(steps, desc="Lyapunov steps", unit="step", leave=False)
    for t in steps:
        state, frames = dynamics.step_tangent(state, inputs[:, t], frames)
        if t < warmup:
            if (t + 1) % warmup_interval and t + 1 != warmup:
                continue
            logs, _, small = reorthonormalise(None, warmup_interval, probe=t >= probe_from)
            if t >= probe_from:
                spread = logs.max(dim=1).values - logs.min(dim=1).values
                # A direction annihilated (or nearly) in one step: an unbounded spread.
                spread = spread.masked_fill(small, math.inf)
                widest = torch.maximum(widest, spread)
                largest = torch.maximum(largest, logs.max(dim=1).values)
                smallest = torch.minimum(smallest, logs.min(dim=1).values)
            if t + 1 == warmup and probe_from < T:
                # The one read of device values in the loop.
                per_model = zip(
                    widest.view(n_models, B).max(dim=1).values.tolist(),
                    largest.view(n_models, B).max(dim=1).values.tolist(),
                    smallest.view(n_models, B).min(dim=1).values.tolist(),
                )
                intervals = [auto_interval(w, top, low, dtype) for w, top, low in per_model]
                groups = interval_groups(intervals, B, device)
            continue
        since = t + 1 - warmup  # steps since the warm-up's closing QR
        for interval, rows in groups.items():
            block = since % interval or interval
            if block == interval or t + 1 == T:
                logs, lost, _ = reorthonormalise(rows, block)
                if rows is None:
                    log_sums += logs
                    underflow |= lost
                else:
                    log_sums[rows] += logs
                    underflow[rows] |= lost
    return log_sums, state, underflow, intervals


def interval_groups(intervals, B, device):
    """``{interval: rows of its models}``, or ``{interval: None}`` when all share one."""
    if len(set(intervals)) == 1:
        return {intervals[0]: None}
    groups = {}
    for model, interval in enumerate(intervals):
        groups.setdefault(interval, []).extend(range(model * B, (model + 1) * B))
    return {m: torch.tensor(rows, device=device) for m, rows in sorted(groups.items())}
