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
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ._validation import (
    SPECTRUM_CONSTRAINTS,
    as_float_tensor,
    batch_of_sequences,
    caller_stacklevel,
    check_device,
    check_dtype,
    threads_for,
    torch_threads,
    validate_params,
)
from .dynamics import NonFiniteParameterError, TorchRNNDynamics, as_dynamics, signature_of
from .dynamics._torch_rnn import _GATES

__all__ = ["LyapunovResult", "initial_frame", "lyapunov_spectrum", "plan_batches"]


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
        Steps between re-orthonormalisations after the warm-up (the one
        chosen when ``qr_interval="auto"`` was asked for).
    dtype : str
        Compute dtype (log sums are always accumulated in float64).
    device : str
        Device the computation ran on.
    final_state : ndarray of shape (n_trajectories, state_size)
        State at the end of each trajectory.
    error : str or None
        Why the computation failed, for a model computed with
        ``on_error="nan"`` whose trajectory diverged or whose frame over- or
        underflowed (its arrays are then NaN); None otherwise.
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
    error: str = None

    @classmethod
    def failed(
        cls,
        error,
        *,
        n_exponents,
        n_trajectories,
        state_size,
        n_steps,
        warmup,
        qr_interval,
        dtype,
        device,
    ):
        """The result of a model that could not be measured: NaN arrays, and why."""
        k, B = n_exponents, n_trajectories
        return cls(
            exponents=np.full(k, np.nan),
            per_trajectory=np.full((B, k), np.nan),
            stderr=np.full(k, np.nan),
            state_size=state_size,
            n_steps=n_steps,
            warmup=warmup,
            qr_interval=qr_interval,
            dtype=str(dtype).replace("torch.", ""),
            device=str(device),
            final_state=np.full((B, state_size), np.nan),
            error=error,
        )

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
            f"qr_interval={self.qr_interval}, dtype={self.dtype!r}, device={self.device!r}"
            + ("" if self.error is None else f", error={self.error!r}")
            + ")"
        )


DEFAULT_WARMUP = 100
"""Warm-up steps when none are given, in :func:`lyapunov_spectrum`, the
transformer and the command line alike."""


def resolve_batch_first(dynamics, batch_first=None):
    """Whether the inputs of these systems are laid out ``(B, T, ...)``.

    ``batch_first`` given (True or False) is the answer. ``None`` follows the
    models: ``nn.RNN``/``nn.GRU``/``nn.LSTM`` say how they lay out a batch of
    sequences (``batch_first``, ``False`` by PyTorch's default); cells and step
    functions have no convention and do not count. Models that disagree are
    an error; ``None`` is returned when no model has a convention.
    """
    if batch_first is not None:
        return bool(batch_first)
    takes = {}
    for index, dyn in enumerate(dynamics):
        if getattr(dyn, "batch_first", None) is not None:
            takes.setdefault(dyn.batch_first, []).append(index)
    if len(takes) > 1:
        raise ValueError(
            "the models lay out their inputs differently: models "
            f"{takes[True][:5]} take batch_first=True (B, T, input_size) and models "
            f"{takes[False][:5]} batch_first=False (T, B, input_size); pass "
            "batch_first= to say how the inputs are laid out"
        )
    return takes.popitem()[0] if takes else None


def input_layout(dynamics, batch_first=None):
    """``(batch_first, source)``: the layout inputs are read in, and where it came from.

    The layout is :func:`resolve_batch_first`'s, ``True`` where no model has one;
    ``source`` is what :func:`describe_layout` takes: ``"argument"``, ``"model"``
    or ``"default"``.
    """
    resolved = resolve_batch_first(dynamics, batch_first)
    if batch_first is not None:
        return resolved, "argument"
    if resolved is None:
        return True, "default"
    return resolved, "model"


def describe_layout(shape, batch_first, source):
    """How inputs of ``shape`` were read, and how to read them the other way.

    ``source`` says where the layout came from: ``"argument"`` (batch_first=
    given), ``"model"`` (the models' own) or ``"default"`` (models without one).
    """
    if len(shape) != 3:
        return f"inputs of shape {tuple(shape)} read as one trajectory (T, input_size)"
    read = "(B, T, input_size)" if batch_first else "(T, B, input_size)"
    other = "(T, B, input_size)" if batch_first else "(B, T, input_size)"
    why = {
        "argument": f"as batch_first={batch_first} says",
        "model": f"as the model's batch_first={batch_first} says",
        "default": "the layout for models without one of their own",
    }[source]
    return (
        f"inputs of shape {tuple(shape)} read as {read}, {why}; pass "
        f"batch_first={not batch_first} if they are {other}"
    )


def _check_inputs(inputs, dynamics, dtype, device, batch_first):
    if inputs is None:
        raise ValueError("inputs are required: a tensor or array of shape (B, T, input_size)")
    tensor = as_float_tensor(inputs, "inputs", dtype, device)
    if tensor.ndim == 3 and not batch_first:
        tensor = tensor.transpose(0, 1)
    tensor = batch_of_sequences(tensor)
    for index, dyn in enumerate(dynamics):
        expected = dyn.input_size
        if expected is not None and tensor.shape[-1] != expected:
            which = "the network expects" if len(dynamics) == 1 else f"model {index} expects"
            raise ValueError(
                f"inputs have {tensor.shape[-1]} features per step but {which} "
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
    warmup=DEFAULT_WARMUP,
    batch_first=None,
    qr_interval=1,
    dtype=torch.float64,
    device="auto",
    initial_state=None,
    rnn=None,
    memory_budget="auto",
    num_threads="auto",
    on_error="raise",
    verbose=0,
):
    """Lyapunov spectrum of a recurrent network driven by the given inputs.

    Parameters
    ----------
    model : nn.Module, Dynamics, or list of them
        Anything :func:`sklyap.dynamics.as_dynamics` accepts: ``nn.RNN``,
        ``nn.GRU``, ``nn.LSTM``, their ``*Cell`` forms, a module containing
        one of them, or a system from :func:`sklyap.from_step`. It is never
        modified or moved. A list of models, all driven by the same
        ``inputs``, returns a list of results; networks of one signature
        (kind, layers, sizes, bias) are stacked and advanced together as one
        batched system, which is much faster than one call per model on a GPU
        (see ``memory_budget``).
    inputs : Tensor or array-like of shape (B, T, input_size), (T, B, input_size) or (T, input_size)
        Driving inputs of ``B`` trajectories of ``T`` steps, laid out as the
        model's ``forward`` takes them (see ``batch_first``); ``(T,
        input_size)`` is one trajectory. The first ``warmup`` steps are
        warm-up; the remaining ``T - warmup`` are measured.
    n_exponents : int, default=None
        Number ``k`` of leading exponents to compute, ``1 <= k <= state_size``;
        ``None`` computes the full spectrum. The cost of a step is linear in
        ``k``; the ``k`` exponents are the leading ones, from a fixed initial
        frame (:func:`initial_frame`).
    warmup : int, default=100
        Steps run (with re-orthonormalisation) but not counted, so that the
        state settles and the frame aligns with the Lyapunov directions.
        Inputs of at most ``warmup`` steps are an error.
    batch_first : bool, default=None
        Layout of 3-D ``inputs``: ``True`` for ``(B, T, input_size)``,
        ``False`` for ``(T, B, input_size)``. ``None`` follows the model, as
        its ``forward`` would: ``nn.RNN``/``nn.GRU``/``nn.LSTM`` by their
        ``batch_first`` (``False`` unless built with ``batch_first=True``);
        cells and step functions take ``(B, T, input_size)``. A list of models
        that disagree needs it said.
    qr_interval : int or "auto", default=1
        Re-orthonormalise every ``qr_interval`` steps. Longer intervals are
        faster but lose the weakest exponents once the spectrum's spread over
        an interval nears ``-log(eps)``, and a frame that under- or overflows
        raises ``FloatingPointError``. ``"auto"`` chooses, per model, from the
        warm-up, the longest interval (at most 16) that keeps the weakest
        direction at full precision; it is reported in
        ``LyapunovResult.qr_interval``. The user guide,
        ``docs/computation.md``, explains the rule.
    dtype : torch.dtype or str, default=torch.float64
        Compute dtype, float64 or float32; log sums are accumulated in float64
        either way. A ``RuntimeWarning`` says when a float32 spectrum spans
        more than 8 nats per step, where its most negative exponents are
        unreliable (``docs/computation.md`` has the measured errors).
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available and the CPU otherwise (for
        populations of small networks the CPU can be faster; see
        ``docs/computation.md``).
    initial_state : Tensor or array-like of shape (n,) or (B, n), default=None
        Initial state in the layout of the model's dynamics
        (``Dynamics.state_layout``); zeros by default, as PyTorch uses. With
        a list of models, the same initial state for each.
    rnn : str, default=None
        Attribute path of the recurrent module when ``model`` contains several.
    memory_budget : int or "auto", default="auto"
        Bytes that the frames and their products of the models advanced
        together may use; a list of models is cut into batches that fit
        (:func:`plan_batches`), a single model always runs whole. ``"auto"``
        is half the free memory of a CUDA device, and 8 MiB on the CPU.
    num_threads : "auto", int or None, default="auto"
        Torch CPU threads during the computation (restored afterwards).
        ``"auto"`` uses one thread when a frame holds at most ``2**18``
        numbers (``B * n * k``, for one batch of models), and torch's setting
        otherwise, as does ``None``. Ignored on CUDA.
    on_error : {"raise", "nan"}, default="raise"
        What weights holding NaN or inf, a trajectory that diverges, or a
        frame that over- or underflows do: raise (``NonFiniteParameterError``
        or ``FloatingPointError``, naming the model's index in a list), or
        give a result whose arrays are NaN and whose ``error`` says what went
        wrong, so that the other models of a list are kept.
    verbose : int, default=0
        ``1`` shows a progress bar over time steps, or over models for a list.

    Returns
    -------
    LyapunovResult, or list of LyapunovResult for a list of models

    Raises
    ------
    FloatingPointError
        When a trajectory diverges or the frame over- or underflows (unless
        ``on_error="nan"``); with a list of models the message names the
        index of the model.

    Notes
    -----
    Finite-time exponents can be ill-conditioned: in multi-layer networks the
    weakest exponents of two correct runs that round differently (other
    schedules, dtypes, stacking or devices) can differ far above rounding,
    while their sum agrees to rounding. A direction that a step annihilates
    exactly contributes the logarithm of the smallest normal number instead
    of ``-inf``. ``docs/computation.md`` explains both, with figures.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklyap import lyapunov_spectrum
    >>> gen = torch.Generator().manual_seed(0)
    >>> lstm = nn.LSTM(input_size=2, hidden_size=8)
    >>> inputs = torch.randn(300, 4, 2, generator=gen)  # (T, B, input_size), as lstm takes them
    >>> result = lyapunov_spectrum(lstm, inputs, device="cpu")
    >>> result.exponents.shape, result.per_trajectory.shape
    ((16,), (4, 16))
    >>> bool(result.exponents[0] < 0)  # a freshly initialised LSTM contracts
    True

    Many networks of one architecture are advanced together:

    >>> lstms = [nn.LSTM(2, 8) for _ in range(3)]
    >>> results = lyapunov_spectrum(lstms, inputs, device="cpu")
    >>> [r.exponents.shape for r in results]
    [(16,), (16,), (16,)]
    """
    dtype = check_dtype(dtype)
    device = check_device(device)
    settings = {
        "n_exponents": n_exponents,
        "warmup": warmup,
        "batch_first": batch_first,
        "qr_interval": qr_interval,
        "memory_budget": memory_budget,
        "on_error": on_error,
        "num_threads": num_threads,
        "verbose": verbose,
    }
    validate_params(settings, SPECTRUM_CONSTRAINTS)
    single = not isinstance(model, (list, tuple))
    models = [model] if single else list(model)
    if not models:
        raise ValueError("model is an empty list; expected at least one model")
    dynamics = []
    for index, obj in enumerate(models):
        try:
            dynamics.append(as_dynamics(obj, rnn=rnn, check_finite=on_error == "raise"))
        except (TypeError, ValueError) as exc:
            if single:
                raise
            raise type(exc)(f"model {index}: {exc}") from None
    n_min = min(d.state_size for d in dynamics)
    k = n_exponents
    if k is not None and k > n_min:
        where = "the state size" if single else "the smallest state size among the models,"
        raise ValueError(f"n_exponents must be <= {where} {n_min}, got {k}")
    layout, source = input_layout(dynamics, batch_first)
    shape = tuple(np.shape(inputs)) if inputs is not None else ()
    inputs = _check_inputs(inputs, dynamics, dtype, device, layout)
    T = inputs.shape[1]
    if warmup >= T:
        raise ValueError(
            f"warmup={warmup} leaves no measured step in inputs of {T} time steps; "
            f"expected 0 <= warmup < {T} ({describe_layout(shape, layout, source)})"
        )
    if initial_state is not None:
        sizes = {d.state_size for d in dynamics}
        if len(sizes) > 1:
            raise ValueError(
                f"one initial_state cannot serve models of state sizes {sorted(sizes)}"
            )
        initial_state = _check_initial_state(
            initial_state, inputs.shape[0], sizes.pop(), dtype, device
        )
    results = compute_spectra(
        dynamics,
        inputs,
        n_exponents=k,
        warmup=warmup,
        qr_interval=qr_interval,
        dtype=dtype,
        device=device,
        initial_state=initial_state,
        memory_budget=memory_budget,
        num_threads=num_threads,
        on_error=on_error,
        progress=None if single or not verbose else "models",
        step_progress=bool(verbose) and single,
        names=None if single else list(range(len(dynamics))),
    )
    if dtype == torch.float32:
        warn_float32([(None if single else i, float32_span(r)) for i, r in enumerate(results)])
    return results[0] if single else results


_SMALL_FRAME = 2**18


# Working memory of the QR algorithm per model and trajectory, in numbers of
# the compute dtype, for a frame of k vectors of a state of size n and hidden
# size N with `gates` gate blocks: frames in and out, the QR's Q and R, and
# the products of the frame with W_hh and W_ih.
def _numbers_per_trajectory(dynamics, k):
    n = dynamics.state_size
    if signature_of(dynamics) is not None:  # a recurrent network, or its shell
        wide = 2 * _GATES[dynamics.kind] * dynamics.hidden_size
    else:  # vmap(jvp) of a step function: the tangent of every intermediate
        wide = 4 * n
    return k * (4 * n + k + wide) + 8 * n


def _auto_budget(device):
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return 8 * 2**20


def plan_batches(
    dynamics,
    n_trajectories,
    *,
    n_exponents=None,
    dtype=torch.float64,
    memory_budget="auto",
    device="cpu",
    input_numbers=0,
):
    """Split systems into batches that are advanced together.

    Systems of one signature (:func:`sklyap.dynamics.signature_of`) are
    stacked, in the order they come, into batches whose working memory fits
    ``memory_budget``; every other system is a batch of its own.

    Parameters
    ----------
    dynamics : list of Dynamics
    n_trajectories : int
        Trajectories per model, ``B``.
    n_exponents : int, default=None
        Frame size ``k``; ``None`` for the full spectrum of each system.
    dtype : torch.dtype, default=torch.float64
    memory_budget : int or "auto", default="auto"
        Bytes per batch; ``"auto"`` as in :func:`lyapunov_spectrum`. A
        system that alone exceeds the budget still runs, alone.
    device : str or torch.device, default="cpu"
        Where the batches will run (for the ``"auto"`` budget).
    input_numbers : int, default=0
        Numbers of per-model inputs (``B * T * input_size`` when every model
        has inputs of its own), counted against the budget.

    Returns
    -------
    list of list of int
        Indices into ``dynamics``, each list one batch; every index appears
        once.
    """
    budget = _auto_budget(device) if memory_budget == "auto" else memory_budget
    itemsize = torch.empty((), dtype=dtype).element_size()
    groups = {}
    for index, dyn in enumerate(dynamics):
        sig = signature_of(dyn)
        groups.setdefault(("alone", index) if sig is None else sig, []).append(index)
    batches = []
    for indices in groups.values():
        dyn = dynamics[indices[0]]
        k = dyn.state_size if n_exponents is None else n_exponents
        per_model = itemsize * (n_trajectories * _numbers_per_trajectory(dyn, k) + input_numbers)
        size = max(1, budget // per_model)
        batches.extend(indices[i : i + size] for i in range(0, len(indices), size))
    return batches


def compute_spectra(
    dynamics,
    inputs,
    *,
    n_exponents,
    warmup,
    qr_interval,
    dtype,
    device,
    initial_state=None,
    memory_budget="auto",
    num_threads="auto",
    on_error="raise",
    progress=None,
    step_progress=False,
    names=None,
):
    """The QR algorithm for checked systems and inputs, in batches; one result per system.

    ``inputs`` is one tensor ``(B, T, d)`` shared by all systems, or a list
    of such tensors, one per system. ``names`` (indices, usually) prefix the
    error messages. Systems whose weights hold NaN or inf (listed in their
    ``nonfinite_parameters``, see ``as_dynamics(check_finite=False)``) are
    not computed: they raise, or give a failed result with ``on_error="nan"``.
    """
    per_model = isinstance(inputs, (list, tuple))
    B, T = (inputs[0] if per_model else inputs).shape[:2]
    results = [None] * len(dynamics)
    todo = []
    for i, dyn in enumerate(dynamics):
        bad = getattr(dyn, "nonfinite_parameters", ())
        if not bad:
            todo.append(i)
            continue
        error = f"parameters {list(bad)} hold NaN or infinite values"
        if on_error == "raise":
            where = "" if names is None else f"model {names[i]}: "
            raise NonFiniteParameterError(where + error)
        results[i] = unmeasured(
            error,
            dyn.state_size,
            n_exponents=n_exponents,
            n_trajectories=B,
            n_time_steps=T,
            warmup=warmup,
            qr_interval=qr_interval,
            dtype=dtype,
            device=device,
        )
    batches = plan_batches(
        [dynamics[i] for i in todo],
        B,
        n_exponents=n_exponents,
        dtype=dtype,
        memory_budget=memory_budget,
        device=device,
        input_numbers=inputs[0].numel() if per_model else 0,
    )
    batches = [[todo[j] for j in batch] for batch in batches]
    bar = None
    if progress:
        bar = tqdm(total=len(dynamics), desc="Lyapunov spectra", unit="model", leave=False)
        bar.update(len(dynamics) - len(todo))
    try:
        for batch in batches:
            # Each on the device and in the dtype of the computation (models may
            # live elsewhere); copies, so that nothing of the caller's moves.
            members = [dynamics[i].to(device=device, dtype=dtype) for i in batch]
            system = members[0] if len(members) == 1 else TorchRNNDynamics.stack(members)
            batch_inputs = (torch.cat([inputs[i] for i in batch]) if per_model else inputs).to(
                device=device, dtype=dtype
            )
            batch_names = None if names is None else [names[i] for i in batch]
            for i, result in zip(
                batch,
                _run_batch(
                    system,
                    len(batch),
                    B,
                    batch_inputs,
                    n_exponents,
                    warmup,
                    qr_interval,
                    dtype,
                    device,
                    initial_state,
                    num_threads,
                    step_progress,
                    batch_names,
                    on_error,
                ),
            ):
                results[i] = result
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return results


def unmeasured(
    error,
    state_size,
    *,
    n_exponents,
    n_trajectories,
    n_time_steps,
    warmup,
    qr_interval,
    dtype,
    device,
):
    """The failed result of a model refused before its computation, with the
    settings of the others (``qr_interval="auto"`` is reported as 1)."""
    return LyapunovResult.failed(
        error,
        n_exponents=state_size if n_exponents is None else n_exponents,
        n_trajectories=n_trajectories,
        state_size=state_size,
        n_steps=n_time_steps - warmup,
        warmup=warmup,
        qr_interval=1 if qr_interval == "auto" else qr_interval,
        dtype=dtype,
        device=device,
    )


# Nats of spread between the leading and the weakest direction, per
# re-orthonormalisation, that float32 resolves: half its digits, -log(eps)/2.
_FLOAT32_SPREAD = -0.5 * math.log(torch.finfo(torch.float32).eps)


def float32_span(result):
    """Nats between the leading and the weakest direction per re-orthonormalisation."""
    if result.error is not None or result.dtype != "float32":
        return 0.0
    return (result.exponents[0] - result.exponents[-1]) * result.qr_interval


def warn_float32(spans):
    """Warn once when float32 cannot resolve spectra: ``spans`` are (index or None, span)."""
    wide = [(name, span) for name, span in spans if span > _FLOAT32_SPREAD]
    if not wide:
        return
    worst = max(span for _, span in wide)
    which = (
        "the spectrum spans"
        if wide[0][0] is None
        else (
            f"the spectra of {len(wide)} model(s) (indices {[name for name, _ in wide][:10]}) span"
        )
    )
    warnings.warn(
        f"{which} up to {worst:.1f} nats (lambda_1 - lambda_k, times qr_interval) between "
        f"re-orthonormalisations, more than float32 resolves (about "
        f"{_FLOAT32_SPREAD:.0f}): the most negative exponents are unreliable. Use "
        "dtype=float64, fewer n_exponents, or a smaller qr_interval.",
        RuntimeWarning,
        stacklevel=caller_stacklevel(),
    )


def _run_batch(
    system,
    M,
    B,
    inputs,
    k,
    warmup,
    qr_interval,
    dtype,
    device,
    initial_state,
    num_threads,
    verbose,
    names,
    on_error="raise",
):
    """Spectra of the ``M`` models of ``system`` along ``B`` trajectories each.

    ``inputs`` is ``(B, T, d)``, shared by the models, or ``(M * B, T, d)``.
    """
    T = inputs.shape[1]
    n = system.state_size
    k = n if k is None else k
    if initial_state is None:
        state = system.initial_state(M * B, dtype=dtype, device=device)
    else:
        state = initial_state.to(device=device, dtype=dtype).repeat(M, 1)
    threads = threads_for(num_threads, device, small=M * B * n * k <= _SMALL_FRAME)
    with torch.no_grad(), torch_threads(threads):
        log_sums, state, underflow, intervals = _qr_iteration(
            system, inputs, state, k, warmup, qr_interval, verbose, n_models=M
        )
    n_steps = T - warmup
    state_ok = torch.isfinite(state).all(dim=1).view(M, B).all(dim=1).tolist()
    sums_ok = torch.isfinite(log_sums).all(dim=1).view(M, B).all(dim=1).tolist()
    underflow = underflow.view(M, B).any(dim=1).tolist()
    per_trajectory = (log_sums / n_steps).cpu().numpy().reshape(M, B, k)
    final_state = state.to(torch.float64).cpu().numpy().reshape(M, B, n)
    dtype_name = str(dtype).replace("torch.", "")
    results = []
    for m in range(M):
        where = "" if names is None else f"model {names[m]}: "
        interval = intervals[m]
        error = None
        if not state_ok[m]:
            error = (
                "the network's state became NaN or infinite: the trajectory diverged "
                "(unbounded activations such as ReLU with large weights?)"
            )
        elif not sums_ok[m]:
            error = (
                "the tangent frame overflowed between re-orthonormalisations; use a "
                f"smaller qr_interval than {interval}"
            )
        elif underflow[m]:
            error = (
                f"the tangent frame underflowed below the smallest normal {dtype_name} "
                "number between re-orthonormalisations, so the most negative exponents "
                f"would be biased; use a smaller qr_interval than {interval}"
                + (", or float64" if dtype == torch.float32 else "")
            )
        if error is not None:
            if on_error == "raise":
                raise FloatingPointError(where + error)
            results.append(
                LyapunovResult.failed(
                    error,
                    n_exponents=k,
                    n_trajectories=B,
                    state_size=n,
                    n_steps=n_steps,
                    warmup=warmup,
                    qr_interval=interval,
                    dtype=dtype,
                    device=device,
                )
            )
            continue
        traj = -np.sort(-per_trajectory[m], axis=1)
        exponents = traj.mean(axis=0)
        stderr = traj.std(axis=0, ddof=1) / math.sqrt(B) if B > 1 else np.full(k, np.nan)
        results.append(
            LyapunovResult(
                exponents=exponents,
                per_trajectory=traj,
                stderr=stderr,
                state_size=n,
                n_steps=n_steps,
                warmup=warmup,
                qr_interval=interval,
                dtype=dtype_name,
                device=str(device),
                final_state=final_state[m],
            )
        )
    return results


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
_MAX_AUTO_INTERVAL = 16


def _auto_interval(widest_step_spread, largest_rate, smallest_rate, dtype):
    """The longest interval that keeps the weakest direction at half the digits of
    ``dtype`` and the frame within half the exponent range of ``dtype``.

    ``widest_step_spread`` is the widest ``max_i log R_ii - min_i log R_ii``
    of one step, ``largest_rate`` and ``smallest_rate`` the largest and
    smallest ``log R_ii`` of one step, all observed during the warm-up.
    """
    finfo = torch.finfo(dtype)
    digits = -0.5 * math.log(finfo.eps)
    interval = _MAX_AUTO_INTERVAL
    if widest_step_spread > 0:
        interval = min(interval, int(digits / widest_step_spread))  # 0 for an infinite spread
    if largest_rate > 0:  # no overflow between re-orthonormalisations
        interval = min(interval, int(0.5 * math.log(finfo.max) / largest_rate))
    if smallest_rate < 0:  # no underflow either
        interval = min(interval, int(0.5 * math.log(finfo.tiny) / smallest_rate))
    return max(1, interval)


def _qr_iteration(dynamics, inputs, state, k, warmup, qr_interval, verbose, n_models=1):
    """Run the QR algorithm for ``n_models`` stacked models of ``B`` trajectories each.

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
        # sub.mT is the column frame (., n, k), already column-major.
        q, r = torch.linalg.qr(sub.mT)
        if rows is None:
            frames = q.mT
        else:
            frames[rows] = q.mT
        growth = torch.diagonal(r, dim1=-2, dim2=-1).abs()
        # A subnormal R_ii has lost precision: the frame underflowed. An exact
        # zero after one step is a direction the step annihilates (clamped, see
        # lyapunov_spectrum); after several it may be underflow.
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
                intervals = [_auto_interval(w, top, low, dtype) for w, top, low in per_model]
                groups = _interval_groups(intervals, B, device)
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


def _interval_groups(intervals, B, device):
    """``{interval: rows of its models}``, or ``{interval: None}`` when all share one."""
    if len(set(intervals)) == 1:
        return {intervals[0]: None}
    groups = {}
    for model, interval in enumerate(intervals):
        groups.setdefault(interval, []).extend(range(model * B, (model + 1) * B))
    return {m: torch.tensor(rows, device=device) for m, rows in sorted(groups.items())}
