"""The QR (Benettin) algorithm for Lyapunov spectra of driven systems.

For a system ``s_{t+1} = F(s_t, x_t)`` with Jacobians ``J_t = dF/ds``, a frame
``Q`` of ``k`` orthonormal tangent vectors is carried along the trajectory and
re-orthonormalised every ``m`` steps:

    Z = J_{t+m-1} ... J_t Q,     Q', R = qr(Z),     sum_i += log |R_ii|

and ``lambda_i = sum_i / (number of measured steps)``: the average
logarithmic growth rate per step, in natural-log units, of the ``i``-th
direction. The first ``warmup`` steps move the state onto its attractor and
the frame onto the Lyapunov directions; they are re-orthonormalised as usual
but not counted.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import (
    as_float_tensor,
    batch_of_sequences,
    check_device,
    check_dtype,
    check_int,
    check_num_threads,
    threads_for,
    torch_threads,
)
from .dynamics import as_dynamics

__all__ = ["LyapunovResult", "initial_frame", "lyapunov_spectrum"]


@dataclass(frozen=True, repr=False, eq=False)
class LyapunovResult:
    """Lyapunov spectrum of one system along a batch of driven trajectories.

    Attributes
    ----------
    exponents : ndarray of shape (k,)
        Lyapunov exponents in descending order, natural log per time step,
        averaged over the trajectories.
    per_trajectory : ndarray of shape (n_trajectories, k)
        The spectrum of each trajectory, each sorted in descending order.
    stderr : ndarray of shape (k,)
        Standard error of the mean over trajectories (sample standard
        deviation over ``sqrt(n_trajectories)``); NaN for a single trajectory.
    state_size : int
        Dimension ``n`` of the state the exponents describe.
    n_steps : int
        Number of measured steps (the sequence length minus the warm-up).
    warmup : int
        Number of warm-up steps that were run but not counted.
    qr_interval : int
        Steps between re-orthonormalisations.
    dtype : str
        Compute dtype (log sums are always accumulated in float64).
    device : str
        Device the computation ran on.
    final_state : ndarray of shape (n_trajectories, state_size)
        State at the end of each trajectory.
    """

    exponents: np.ndarray
    per_trajectory: np.ndarray
    stderr: np.ndarray
    state_size: int
    n_steps: int
    warmup: int
    qr_interval: int
    dtype: str
    device: str
    final_state: np.ndarray = field(default=None)

    @property
    def n_exponents(self):
        """Number of exponents ``k``."""
        return self.exponents.shape[0]

    @property
    def n_trajectories(self):
        """Number of trajectories averaged over."""
        return self.per_trajectory.shape[0]

    def __repr__(self):
        with np.printoptions(precision=4, suppress=True, threshold=8, edgeitems=3):
            shown = np.array2string(self.exponents, separator=", ")
        return (
            f"LyapunovResult(exponents={shown}, n_exponents={self.n_exponents}, "
            f"state_size={self.state_size}, n_trajectories={self.n_trajectories}, "
            f"n_steps={self.n_steps}, warmup={self.warmup}, "
            f"qr_interval={self.qr_interval}, dtype={self.dtype!r}, device={self.device!r})"
        )


def _check_inputs(inputs, dynamics, dtype, device):
    if inputs is None:
        raise ValueError("inputs are required: a tensor or array of shape (B, T, input_size)")
    tensor = batch_of_sequences(as_float_tensor(inputs, "inputs", dtype, device))
    expected = dynamics.input_size
    if expected is not None and tensor.shape[-1] != expected:
        raise ValueError(
            f"inputs have {tensor.shape[-1]} features per step but the network expects "
            f"input_size={expected}"
        )
    if tensor.shape[0] == 0 or tensor.shape[1] == 0:
        raise ValueError(f"inputs hold no trajectory or no time step: shape {tuple(tensor.shape)}")
    return tensor


def _check_initial_state(initial_state, n_trajectories, state_size, dtype, device):
    state = as_float_tensor(initial_state, "initial_state", dtype, device)
    if state.ndim == 1:
        state = state.expand(n_trajectories, -1)
    if state.shape != (n_trajectories, state_size):
        raise ValueError(
            f"initial_state must have shape ({state_size},) or "
            f"({n_trajectories}, {state_size}), got {tuple(state.shape)}"
        )
    return state.contiguous()


def lyapunov_spectrum(
    model,
    inputs,
    *,
    n_exponents=None,
    warmup=None,
    qr_interval=1,
    dtype=torch.float64,
    device="auto",
    initial_state=None,
    rnn=None,
    num_threads="auto",
    verbose=0,
):
    """Lyapunov spectrum of a recurrent network driven by the given inputs.

    Parameters
    ----------
    model : nn.Module or Dynamics
        Anything :func:`sklyap.dynamics.as_dynamics` accepts: ``nn.RNN``,
        ``nn.GRU``, ``nn.LSTM``, their ``*Cell`` forms, a module containing
        one of them, or a system from :func:`sklyap.from_step`. It is never
        modified or moved.
    inputs : Tensor or array-like of shape (B, T, input_size) or (T, input_size)
        Driving inputs of ``B`` trajectories of ``T`` steps. The first
        ``warmup`` steps are warm-up; the remaining ``T - warmup`` are measured.
    n_exponents : int, default=None
        Number ``k`` of leading exponents to compute, ``1 <= k <= state_size``;
        ``None`` computes the full spectrum. A step costs ``O(B k n N)`` for a
        state of size ``n`` and hidden size ``N``: linear in ``k``. The frame
        starts from a fixed random orthonormal frame
        (:func:`initial_frame`), so the result is reproducible and the ``k``
        exponents are the leading ones even when the dynamics leave
        coordinate subspaces invariant.
    warmup : int, default=None
        Steps run (with re-orthonormalisation) but not counted, so that the
        state settles and the frame aligns with the Lyapunov directions.
        ``None`` uses the first fifth of the sequence, ``T // 5``.
    qr_interval : int, default=1
        Re-orthonormalise every ``qr_interval`` steps. Larger values are
        faster but lose the most negative exponents once
        ``(lambda_1 - lambda_k) * qr_interval`` nears ``-log(eps)`` of the
        compute dtype (about 36 in float64, 16 in float32), and the frame
        under- or overflows once ``lambda_k * qr_interval`` passes the log of
        the smallest or largest number (about -708 and 709 in float64, -87 and
        88 in float32); under- and overflow raise ``FloatingPointError``.
    dtype : torch.dtype or str, default=torch.float64
        Compute dtype, float64 or float32; log sums are accumulated in float64
        either way.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available and the CPU otherwise.
    initial_state : Tensor or array-like of shape (n,) or (B, n), default=None
        Initial state in the layout of the model's dynamics
        (``Dynamics.state_layout``); zeros by default, as PyTorch uses.
    rnn : str, default=None
        Attribute path of the recurrent module when ``model`` contains several.
    num_threads : "auto", int or None, default="auto"
        Torch CPU threads during the computation (restored afterwards).
        ``"auto"`` uses one thread when a frame holds at most ``2**18``
        numbers (``B * n * k``): a step is then a few small operations, which
        gain little from threads and lose much when another process holds a
        core (each operation waits for the preempted thread; 50x slower was
        measured). Larger problems keep torch's setting, as does ``None``.
        Ignored on CUDA.
    verbose : int, default=0
        ``1`` shows a progress bar over time steps.

    Returns
    -------
    LyapunovResult

    Notes
    -----
    A direction that one step annihilates exactly (a zero singular value of
    ``J``, as an inactive ReLU unit gives) has exponent ``-inf``; to keep
    results finite, such a step contributes the logarithm of the smallest
    positive normal number of the compute dtype instead (about -708 in
    float64, -87 in float32). With ``qr_interval > 1`` an exact zero cannot
    be told from underflow and raises ``FloatingPointError``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklyap import lyapunov_spectrum
    >>> gen = torch.Generator().manual_seed(0)
    >>> lstm = nn.LSTM(input_size=2, hidden_size=8)
    >>> inputs = torch.randn(4, 300, 2, generator=gen)
    >>> result = lyapunov_spectrum(lstm, inputs, warmup=100, device="cpu")
    >>> result.exponents.shape, result.per_trajectory.shape
    ((16,), (4, 16))
    >>> bool(result.exponents[0] < 0)  # a freshly initialised LSTM contracts
    True
    """
    dtype = check_dtype(dtype)
    device = check_device(device)
    qr_interval = check_int(qr_interval, "qr_interval", minimum=1)
    verbose = check_int(verbose, "verbose", minimum=0)
    check_num_threads(num_threads)
    dynamics = as_dynamics(model, rnn=rnn)
    n = dynamics.state_size
    k = check_int(n_exponents, "n_exponents", minimum=1, allow_none=True)
    if k is None:
        k = n
    elif k > n:
        raise ValueError(f"n_exponents must be <= the state size {n}, got {k}")
    inputs = _check_inputs(inputs, dynamics, dtype, device)
    B, T = inputs.shape[:2]
    warmup = T // 5 if warmup is None else check_int(warmup, "warmup", minimum=0)
    if warmup >= T:
        raise ValueError(
            f"warmup={warmup} leaves no measured step in inputs of {T} time steps; "
            f"expected 0 <= warmup < {T}"
        )
    if initial_state is None:
        state = dynamics.initial_state(B, dtype=dtype, device=device)
    else:
        state = _check_initial_state(initial_state, B, n, dtype, device)

    dynamics = dynamics.to(device=device, dtype=dtype)
    threads = threads_for(num_threads, device, small=B * n * k <= _SMALL_FRAME)
    with torch.no_grad(), torch_threads(threads):
        log_sums, state, underflow = _qr_iteration(
            dynamics, inputs, state, k, warmup, qr_interval, verbose
        )
    n_steps = T - warmup
    if not bool(torch.isfinite(state).all()):
        raise FloatingPointError(
            "the network's state became NaN or infinite: the trajectory diverged "
            "(unbounded activations such as ReLU with large weights?)"
        )
    if not bool(torch.isfinite(log_sums).all()):
        raise FloatingPointError(
            "the tangent frame overflowed between re-orthonormalisations; use a "
            f"smaller qr_interval than {qr_interval}"
        )
    if bool(underflow):
        raise FloatingPointError(
            "the tangent frame underflowed below the smallest normal "
            f"{str(dtype).replace('torch.', '')} number between re-orthonormalisations, "
            f"so the most negative exponents would be biased; use a smaller qr_interval "
            f"than {qr_interval}, or float64"
        )
    per_trajectory = (log_sums / n_steps).cpu().numpy()
    per_trajectory = -np.sort(-per_trajectory, axis=1)
    exponents = per_trajectory.mean(axis=0)
    if B > 1:
        stderr = per_trajectory.std(axis=0, ddof=1) / math.sqrt(B)
    else:
        stderr = np.full(k, np.nan)
    return LyapunovResult(
        exponents=exponents,
        per_trajectory=per_trajectory,
        stderr=stderr,
        state_size=n,
        n_steps=n_steps,
        warmup=warmup,
        qr_interval=qr_interval,
        dtype=str(dtype).replace("torch.", ""),
        device=str(device),
        final_state=state.to(torch.float64).cpu().numpy(),
    )


_SMALL_FRAME = 2**18


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


def _qr_iteration(dynamics, inputs, state, k, warmup, qr_interval, verbose):
    """Run the QR algorithm; return float64 log sums (B, k), the final state, and
    whether the frame underflowed between re-orthonormalisations."""
    B, T = inputs.shape[:2]
    n = state.shape[1]
    dtype, device = state.dtype, state.device
    tiny = torch.finfo(dtype).tiny
    # Rows of the frame are tangent vectors.
    frames = initial_frame(n, k, dtype=dtype, device=device).expand(B, k, n).contiguous()
    log_sums = torch.zeros(B, k, dtype=torch.float64, device=device)
    underflow = torch.zeros((), dtype=torch.bool, device=device)
    since_qr = 0
    steps = range(T)
    if verbose:
        steps = tqdm(steps, desc="Lyapunov steps", unit="step", leave=False)
    for t in steps:
        state, frames = dynamics.step_tangent(state, inputs[:, t], frames)
        since_qr += 1
        if since_qr == qr_interval or t + 1 == warmup or t + 1 == T:
            steps_in_block = since_qr
            # frames.mT is the column frame (B, n, k), already column-major.
            q, r = torch.linalg.qr(frames.mT)
            frames = q.mT
            since_qr = 0
            if t >= warmup:
                growth = torch.diagonal(r, dim1=-2, dim2=-1).abs()
                # A subnormal R_ii has lost precision: the frame underflowed. An
                # exact zero after one step is a direction the step annihilates
                # (clamped, see the docstring); after several it may be underflow.
                lost = (growth < tiny) & (growth > 0) if steps_in_block == 1 else growth < tiny
                underflow |= lost.any()
                log_sums += torch.log(growth.clamp_min(tiny).to(torch.float64))
    return log_sums, state, underflow
