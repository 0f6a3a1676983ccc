"""How inputs are laid out and checked, one policy for :func:`~sklyap.lyapunov_spectrum`,
:class:`~sklyap.LyapunovSpectrumTransformer` and the command line.

Inputs are read the way the models' own ``forward`` reads them
(:func:`resolve_batch_first`); every message about a misread layout says how
the inputs were read and how to say the other (:func:`describe_layout`).
"""

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._validation import as_float_tensor, batch_of_sequences

__all__ = [
    "DEFAULT_WARMUP",
    "check_initial_state",
    "check_inputs",
    "check_n_exponents",
    "check_warmup",
    "describe_layout",
    "gaussian_inputs",
    "input_layout",
    "resolve_batch_first",
    "spell_argument",
]

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


def spell_argument(name, value):
    """A setting as a Python call spells it: ``batch_first=True``."""
    return f"{name}={value}"


def describe_layout(shape, batch_first, source, spell=spell_argument):
    """How inputs of ``shape`` were read, and how to read them the other way.

    ``source`` says where the layout came from: ``"argument"`` (batch_first=
    given), ``"model"`` (the models' own) or ``"default"`` (models without one).
    ``spell(name, value)`` writes a setting as the caller's user gives it (an
    argument by default, an option on the command line).
    """
    if len(shape) != 3:
        return f"inputs of shape {tuple(shape)} read as one trajectory (T, input_size)"
    read = "(B, T, input_size)" if batch_first else "(T, B, input_size)"
    other = "(T, B, input_size)" if batch_first else "(B, T, input_size)"
    why = {
        "argument": f"as {spell('batch_first', batch_first)} says",
        "model": f"as the model's batch_first={batch_first} says",
        "default": "the layout for models without one of their own",
    }[source]
    return (
        f"inputs of shape {tuple(shape)} read as {read}, {why}; pass "
        f"{spell('batch_first', not batch_first)} if they are {other}"
    )


def check_inputs(inputs, dynamics, dtype, device, batch_first):
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


def check_initial_state(initial_state, n_trajectories, state_size, dtype, device):
    state = as_float_tensor(initial_state, "initial_state", dtype, device)
    if state.ndim == 1:
        state = state.expand(n_trajectories, -1)
    if state.shape != (n_trajectories, state_size):
        raise ValueError(
            f"initial_state must have shape ({state_size},) or "
            f"({n_trajectories}, {state_size}), got {tuple(state.shape)}"
        )
    return state.contiguous()


def check_warmup(
    warmup, n_time_steps, shape, batch_first, source, *, encoded=False, spell=spell_argument
):
    """Refuse a warm-up that leaves no measured step in inputs of ``n_time_steps``,
    saying how inputs of ``shape`` were read (``encoded``: the trailing axis is
    an input encoder's, not ``input_size``), with settings written by ``spell``
    (see :func:`describe_layout`)."""
    if warmup < n_time_steps:
        return
    layout = describe_layout(shape, batch_first, source, spell)
    if encoded:
        layout = layout.replace(", input_size)", ", ...)")
    raise ValueError(
        f"{spell('warmup', warmup)} leaves no measured step in inputs of {n_time_steps} "
        f"time steps; expected fewer than {n_time_steps} warm-up steps ({layout})"
    )


def check_n_exponents(n_exponents, state_sizes, *, single=False):
    """Refuse ``n_exponents`` beyond the state size of any model (``state_sizes``,
    in the models' order), naming them."""
    if n_exponents is None:
        return
    too_small = [i for i, n in enumerate(state_sizes) if n < n_exponents]
    if not too_small:
        return
    if single:
        raise ValueError(
            f"n_exponents must be <= the state size {state_sizes[0]}, got {n_exponents}"
        )
    raise ValueError(
        f"n_exponents={n_exponents} exceeds the state size of models {too_small[:5]} "
        f"(state sizes {[state_sizes[i] for i in too_small[:5]]})"
    )


def gaussian_inputs(n_trajectories, n_time_steps, input_size, *, scale=1.0, random_state=None):
    """Standard normal driving inputs times ``scale``, ``(B, T, input_size)`` float64,
    seeded by ``random_state`` (an int, a RandomState or None) the same way
    wherever sklyap draws them."""
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    gen = torch.Generator().manual_seed(int(seed))
    shape = (n_trajectories, n_time_steps, input_size)
    return scale * torch.randn(shape, generator=gen, dtype=torch.float64)
