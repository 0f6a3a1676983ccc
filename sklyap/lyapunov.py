"""Lyapunov spectra of recurrent networks: the one compute path.

Every spectrum sklyap computes goes through :func:`run_spectra`: the settings
are checked once into a :class:`SpectrumSettings`, the models are planned into
batches of one signature that fit a memory budget (:func:`plan_batches`),
each batch is stacked and run by the QR algorithm (:mod:`sklyap._benettin`),
in this process or in joblib's workers, and the results and warnings are
collected. :func:`lyapunov_spectrum` and
:class:`sklyap.LyapunovSpectrumTransformer` are thin adapters over it. The
settings and result types are in :mod:`sklyap._settings`, the input layout
and its checks in :mod:`sklyap._layout`, the planning in :mod:`sklyap._planning`,
the transformer's reading of models (one :class:`SystemSource` each) in
:mod:`sklyap._model_source`.

At about 600 lines this module is over the ~500 the package keeps to:
:func:`lyapunov_spectrum`'s docstring, the contract of every setting, is a
fifth of it, and the compute path reads best in one place.
"""

import math
import warnings

import numpy as np
import torch
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from ._benettin import initial_frame, qr_iteration
from ._layout import (
    DEFAULT_WARMUP,
    check_initial_state,
    check_inputs,
    check_n_exponents,
    check_warmup,
    input_layout,
)
from ._planning import (
    DEVICE_COSTS,
    SMALL_FRAME,
    batch_numbers,
    batch_threads,
    choose_device,
    plan_batches,
    split_for_workers,
    workers_for,
)
from ._settings import LyapunovResult, SpectrumSettings
from ._validation import (
    caller_stacklevel,
    torch_threads,
)
from .dynamics import NonFiniteParameterError, as_dynamics
from .orthonormalize import resolve

__all__ = [
    "DEFAULT_WARMUP",
    "DEVICE_COSTS",
    "SMALL_FRAME",
    "LyapunovResult",
    "SpectrumSettings",
    "SystemSource",
    "choose_device",
    "initial_frame",
    "lyapunov_spectrum",
    "plan_batches",
    "run_spectra",
]


def lyapunov_spectrum(
    model,
    inputs,
    *,
    n_exponents=None,
    warmup=DEFAULT_WARMUP,
    batch_first=None,
    qr_interval=1,
    orthonormalize="auto",
    dtype=torch.float64,
    device="auto",
    initial_state=None,
    rnn=None,
    memory_budget="auto",
    num_threads="auto",
    on_error="raise",
    n_jobs=None,
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
    orthonormalize : {"auto", "householder", "cholesky_qr2"} or callable, default="auto"
        How frames are re-orthonormalised (:mod:`sklyap.orthonormalize`):
        Householder QR, or CholeskyQR2 (batched products, with Householder
        for the frames it cannot factor). ``"auto"`` takes the method
        measured fastest on the device (:data:`sklyap.orthonormalize.AUTO`).
        A callable ``frames -> (rows, growth)`` is checked against that
        contract on its first call.
    dtype : torch.dtype or str, default=torch.float64
        Compute dtype, float64 or float32; log sums are accumulated in float64
        either way. A ``RuntimeWarning`` says when a float32 spectrum spans
        more than 8 nats per step, where its most negative exponents are
        unreliable (``docs/computation.md`` has the measured errors).
    device : str or torch.device, default="auto"
        ``"auto"``: the CPU on a machine without CUDA; with CUDA, the device
        the cost model predicts faster for these models
        (:func:`choose_device`). ``"cpu"``, ``"cuda"`` or ``"cuda:<i>"`` as said.
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
        Torch CPU threads for each batch of models (restored afterwards).
        ``"auto"``: when the models fit one batch, the calling process's
        thread count less the cores other processes hold at the start
        (at least one) if its frames hold more than ``2**15`` numbers (``M *
        B * n * k``), and one thread otherwise; when they need several
        batches, one thread per batch (batches are parallelised with
        ``n_jobs`` instead). The count never depends on ``n_jobs``, so
        neither does a batch's result, bit for bit (``n_jobs > 1`` may split
        batches, which changes results by rounding only); for results that
        do not depend on the machine's load either, pass an int. An int sets
        the count; ``None`` keeps the setting of the process that computes
        (in joblib's workers, the cores divided by ``n_jobs``). Ignored on
        CUDA.
    on_error : {"raise", "nan"}, default="raise"
        What weights holding NaN or inf, a trajectory that diverges, or a
        frame that over- or underflows do: raise (``NonFiniteParameterError``
        or ``FloatingPointError``, naming the model's index in a list), or
        give a result whose arrays are NaN and whose ``error`` says what went
        wrong, so that the other models of a list are kept.
    n_jobs : int, default=None
        Batches of models computed in parallel through joblib, as in
        scikit-learn; ``None`` means 1 unless in a ``joblib.parallel_config``
        context. Models that fit one batch, and work too small to pay for
        starting worker processes, run in this process.
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
    settings = SpectrumSettings.checked(
        n_exponents=n_exponents,
        warmup=warmup,
        batch_first=batch_first,
        qr_interval=qr_interval,
        orthonormalize=orthonormalize,
        dtype=dtype,
        device=device,
        memory_budget=memory_budget,
        num_threads=num_threads,
        on_error=on_error,
        n_jobs=n_jobs,
        verbose=verbose,
    )
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
    check_n_exponents(n_exponents, [d.state_size for d in dynamics], single=single)
    settings = settings.for_systems(dynamics)
    layout, source = input_layout(dynamics, batch_first)
    shape = tuple(np.shape(inputs)) if inputs is not None else ()
    inputs = check_inputs(inputs, dynamics, settings.dtype, settings.device, layout)
    check_warmup(warmup, inputs.shape[1], shape, layout, source)
    if initial_state is not None:
        sizes = {d.state_size for d in dynamics}
        if len(sizes) > 1:
            raise ValueError(
                f"one initial_state cannot serve models of state sizes {sorted(sizes)}"
            )
        initial_state = check_initial_state(
            initial_state, inputs.shape[0], sizes.pop(), settings.dtype, settings.device
        )
    results = [None] * len(dynamics)
    for index, result in run_spectra(
        dynamics,
        inputs,
        settings,
        initial_state=initial_state,
        indexed=not single,
        n_jobs=n_jobs,
        progress=None if not verbose else "steps" if single else "models",
    ):
        results[index] = result
    return results[0] if single else results


# -- the compute path --------------------------------------------------------------------


class SystemSource:
    """One system as :func:`run_spectra` reads it: planned from its :attr:`shell`,
    read once, by :meth:`read`, when its batch is sent.

    This one holds a system ready to run, with driving inputs of its own or
    none (the shared ones); a subclass may read them from elsewhere (a model,
    an input encoder) when its batch is sent.

    Parameters
    ----------
    system : Dynamics
    inputs : Tensor of shape (B, T, d), default=None
        The system's own checked inputs; ``None`` for the shared ones.
    refused : str, default=None
        Why the system is not to be computed; it then gets a failed result.

    Attributes
    ----------
    shell : Dynamics
        What planning needs of the system (:meth:`~sklyap.dynamics.Dynamics.shell`).
    refused : str or None
    """

    def __init__(self, system, inputs=None, *, refused=None):
        self.shell = system.shell()
        self.refused = refused
        self._system, self._inputs = system, inputs

    def read(self):
        """The system and its own inputs (``None``: the shared ones)."""
        return self._system, self._inputs


def run_spectra(
    systems,
    inputs,
    settings,
    *,
    initial_state=None,
    indexed=True,
    n_jobs=None,
    progress=None,
    warn_failed=False,
):
    """Spectra of checked systems: plan, run (in batches, in workers) and warn.

    Yields ``(index, LyapunovResult)`` for every system as its batch finishes,
    so that a caller keeping only the exponents holds nothing else; after the
    last, warns once for float32 spectra too wide to resolve (and, with
    ``warn_failed``, for the systems that could not be measured).

    Parameters
    ----------
    systems : list of Dynamics or SystemSource
        The systems; each is planned from its shell and read once, when its
        batch is sent.
    inputs : Tensor of shape (B, T, d), or tuple (B, T)
        Checked driving inputs shared by all systems; or, when every source
        reads inputs of its own, their number of trajectories and time steps.
    settings : SpectrumSettings
    initial_state : Tensor of shape (B, n), default=None
        Shared by all systems; zeros by default.
    indexed : bool, default=True
        Prefix error messages with ``model <index>:``.
    n_jobs : int, default=None
        Worker processes for the batches (see :func:`lyapunov_spectrum`).
    progress : {None, "models", "steps"}, default=None
        A progress bar over systems, or over the time steps of each batch.
    warn_failed : bool, default=False
        Warn, once, with the indices and reasons of the systems that failed.
    """
    sources = [s if isinstance(s, SystemSource) else SystemSource(s) for s in systems]
    shells = [source.shell for source in sources]
    shared = isinstance(inputs, torch.Tensor)
    B, T = inputs.shape[:2] if shared else inputs
    settings = settings.for_systems(shells)
    failed = {i: s.refused for i, s in enumerate(sources) if s.refused is not None}
    for index, shell in enumerate(shells):
        if index in failed or not shell.nonfinite_parameters:
            continue
        error = f"parameters {list(shell.nonfinite_parameters)} hold NaN or infinite values"
        if settings.on_error == "raise":
            raise NonFiniteParameterError((f"model {index}: " if indexed else "") + error)
        failed[index] = error
    todo = [i for i in range(len(shells)) if i not in failed]
    input_numbers = 0
    if not shared and todo:  # every system has inputs of its own
        input_numbers = B * T * max(shells[i].input_size or 1 for i in todo)
    batches = plan_batches(
        [shells[i] for i in todo],
        B,
        n_exponents=settings.n_exponents,
        dtype=settings.dtype,
        memory_budget=settings.memory_budget,
        device=settings.device,
        input_numbers=input_numbers,
    )
    batches = [[todo[j] for j in batch] for batch in batches]
    # One batch is the whole computation: it runs here, on threads if large.
    alone = len(batches) == 1
    workers = 1
    if not alone:
        numbers = [batch_numbers(shells, batch, B, settings) for batch in batches]
        workers = workers_for(n_jobs, numbers, T)
    batches = split_for_workers(batches, workers)

    def task(batch):
        members, own = zip(*(sources[i].read() for i in batch))
        if any((x is None) != shared for x in own):
            raise ValueError(
                "every source reads inputs of its own when run_spectra is given their "
                "(B, T), and none when it is given shared inputs"
            )
        frame = sum(B * settings.frame_size(m.state_size) * m.state_size for m in members)
        return delayed(_run_batch)(
            list(members),
            inputs if shared else torch.cat(own),
            settings,
            shared=shared,
            threads=batch_threads(settings, frame, alone),
            initial_state=initial_state,
            names=batch if indexed else None,
            step_progress=progress == "steps",
        )

    bar = None
    if progress == "models":
        bar = tqdm(total=len(systems), desc="Lyapunov spectra", unit="model", leave=False)
    spans, settled = [], []
    try:
        for index in sorted(failed):
            yield index, settings.failed(failed[index], shells[index].state_size, B, T)
        if bar is not None:
            bar.update(len(failed))
        tasks = (task(batch) for batch in batches)
        if workers > 1:
            outputs = Parallel(n_jobs=workers, return_as="generator")(tasks)
        else:
            outputs = (function(*args, **kwargs) for function, args, kwargs in tasks)
        try:
            for batch, results in zip(batches, outputs):
                for index, result in zip(batch, results):
                    if result.error is not None:
                        failed[index] = result.error
                    spans.append((index if indexed else None, _float32_span(result)))
                    if result.fixed_point:
                        settled.append(index)
                    yield index, result
                if bar is not None:
                    bar.update(len(batch))
        except BaseException:
            # Interrupted (an exception, KeyboardInterrupt, or the caller closing
            # this generator): close joblib's generator now, which cancels the
            # batches not yet computed and ends loky's workers, rather than when
            # it is collected (a traceback that is kept keeps it alive, and the
            # workers busy, then idle for loky's timeout).
            outputs.close()
            raise
    finally:
        if bar is not None:
            bar.close()
    _warn_float32(spans)
    if settled:
        warnings.warn(
            f"the driving inputs are constant in time, and {len(settled)} of {len(systems)} "
            f"model(s) (indices {settled[:10]}) sat at a fixed point at the end of every "
            "trajectory: their spectra are the log growth rates of a fixed point's Jacobian, "
            "not of driven dynamics. Drive them with the task's inputs, or random ones, to "
            "measure how they compute (LyapunovResult.fixed_point marks them)",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    if warn_failed and failed:
        shown = "; ".join(f"model {i}: {failed[i]}" for i in sorted(failed)[:5])
        more = "" if len(failed) <= 5 else f"; and {len(failed) - 5} more"
        warnings.warn(
            f"{len(failed)} of {len(systems)} models could not be measured and have "
            f"NaN spectra (on_error='nan'), indices {sorted(failed)[:20]}: {shown}{more}. "
            "Drop their rows before fitting estimators: "
            "X[np.isfinite(X).all(axis=1)].",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )


def _run_batch(members, inputs, settings, *, shared, threads, initial_state, names, step_progress):
    """Spectra of the ``M`` systems of one batch, stacked, along ``B`` trajectories each.

    Runs where it is sent (this process or a worker). ``inputs`` is ``(B, T,
    d)``, shared by the systems, or ``(M * B, T, d)``, each system's own.
    """
    dtype, device = settings.dtype, settings.device
    M = len(members)
    # Each on the device and in the dtype of the computation (models may live
    # elsewhere); copies, so that nothing of the caller's moves.
    members = [m.to(device=device, dtype=dtype) for m in members]
    system = members[0] if M == 1 else type(members[0]).stack(members)
    inputs = inputs.to(device=device, dtype=dtype)
    B, T = (inputs.shape[0] if shared else inputs.shape[0] // M), inputs.shape[1]
    n = system.state_size
    k = settings.frame_size(n)
    if initial_state is None:
        state = system.initial_state(M * B, dtype=dtype, device=device)
    else:
        state = initial_state.to(device=device, dtype=dtype).repeat(M, 1)
    with torch.no_grad(), torch_threads(threads):
        log_sums, state, underflow, intervals = qr_iteration(
            system,
            inputs,
            state,
            k,
            settings.warmup,
            settings.qr_interval,
            orthonormalize=resolve(settings.orthonormalize, device),
            n_models=M,
            verbose=step_progress,
        )
    n_steps = T - settings.warmup
    settled = _settled(system, inputs, state, M, shared)
    state_ok = torch.isfinite(state).all(dim=1).view(M, B).all(dim=1).tolist()
    sums_ok = torch.isfinite(log_sums).all(dim=1).view(M, B).all(dim=1).tolist()
    underflow = underflow.view(M, B).any(dim=1).tolist()
    per_trajectory = (log_sums / n_steps).cpu().numpy().reshape(M, B, k)
    final_state = state.to(torch.float64).cpu().numpy().reshape(M, B, n)
    results = []
    for m in range(M):
        interval = intervals[m]
        error = None
        if not state_ok[m]:
            error = (
                "the network's state became NaN or infinite: the trajectory diverged "
                "(unbounded activations and large weights?)"
            )
        elif not sums_ok[m]:
            error = "the tangent frame overflowed " + (
                f"between re-orthonormalisations; use a smaller qr_interval than {interval}"
                if interval > 1
                else _within_one_step(settings, k, underflow=False)
            )
        elif underflow[m] and interval > 1:
            error = (
                f"the tangent frame underflowed below the smallest normal {settings.dtype_name} "
                "number between re-orthonormalisations, so the most negative exponents would "
                f"be biased; use a smaller qr_interval than {interval}"
                + (", or float64" if dtype == torch.float32 else "")
            )
        elif underflow[m]:
            error = (
                f"the tangent frame underflowed below the smallest normal {settings.dtype_name} "
                "number " + _within_one_step(settings, k, underflow=True)
            )
        if error is not None:
            if settings.on_error == "raise":
                where = "" if names is None else f"model {names[m]}: "
                raise FloatingPointError(where + error)
            results.append(settings.failed(error, n, B, T, qr_interval=interval))
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
                warmup=settings.warmup,
                qr_interval=interval,
                dtype=settings.dtype_name,
                device=str(device),
                final_state=final_state[m],
                fixed_point=settled[m],
            )
        )
    return results


def _settled(system, inputs, state, M, shared):
    """Per model: whether constant inputs left every trajectory at a fixed point.

    ``inputs`` is ``(B, T, d)`` shared by the ``M`` models, or ``(M * B, T, d)``,
    each model's own: a model counts only if its own inputs are constant in
    time. Inputs with no features drive nothing (an autonomous system by
    design) and are not counted as constant. One more step from the final
    state, under the same input, must move it by at most ``sqrt(eps)`` relative.
    """
    if inputs.shape[-1] == 0 or inputs.shape[1] < 2:
        return [False] * M
    steady = (inputs == inputs[:, :1]).flatten(1).all(dim=1)  # per trajectory
    per_model = steady.all().expand(M) if shared else steady.view(M, -1).all(dim=1)
    if not bool(per_model.any()):
        return [False] * M
    with torch.no_grad():
        moved = (system.step(state, inputs[:, -1]) - state).abs()
    tol = math.sqrt(torch.finfo(state.dtype).eps) * (1 + state.abs())
    at_rest = (moved <= tol).all(dim=1).view(M, -1).all(dim=1)
    return (at_rest & per_model).tolist()


def _within_one_step(settings, k, *, underflow):
    """Why the frame over- or underflowed between two steps (qr_interval=1), and what to try."""
    tries = []
    if underflow and k > 1:
        tries.append(f"fewer n_exponents than {k} (the leading exponents are unaffected)")
    if settings.dtype == torch.float32:
        tries.append("dtype=float64")
    tries += ["fewer steps or smaller inputs", 'on_error="nan" to keep the other models\' spectra']
    return (
        f"within a single step (qr_interval=1): the Jacobian "
        f"{'contracts' if underflow else 'expands'} some directions by more than "
        f"{settings.dtype_name} can represent in one step, as when units are driven deep into "
        f"saturation. Try {', '.join(tries[:-1])}, or {tries[-1]}"
    )


# Nats of spread between the leading and the weakest direction, per
# re-orthonormalisation, that float32 resolves: half its digits, -log(eps)/2.
_FLOAT32_SPREAD = -0.5 * math.log(torch.finfo(torch.float32).eps)


def _float32_span(result):
    """Nats between the leading and the weakest direction per re-orthonormalisation."""
    if result.error is not None or result.dtype != "float32":
        return 0.0
    return (result.exponents[0] - result.exponents[-1]) * result.qr_interval


def _warn_float32(spans):
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
