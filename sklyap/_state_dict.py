"""Recurrent modules from their weights: a state_dict in memory, or the
parameters of a TorchScript module.

For PyTorch's recurrent modules the weights tell nearly everything: the kind
from the number of gate blocks in ``weight_hh`` (1 for ``nn.RNN``, 3 for
``nn.GRU``, 4 for ``nn.LSTM``), the sizes from the shapes, the number of layers
from the ``_l<k>`` suffixes, the bias from the presence of ``bias_ih``. Two
things they do not record are arguments here: the nonlinearity of an
``nn.RNN`` and ``batch_first``. Files are read by :mod:`sklyap.checkpoints`.
"""

import os
import re
from collections.abc import Mapping

import torch
from torch import nn

from ._validation import Interval, Options, validate_params
from .dynamics import mark_layout_unknown

__all__ = [
    "MAX_BYTES",
    "available_memory",
    "count_weights",
    "from_torchscript",
    "gib",
    "memory_limit",
    "module_from_state_dict",
]

_WEIGHT_HH = re.compile(
    r"^(?P<prefix>(?:.*\.)?)weight_hh(?:_l(?P<layer>\d+))?(?P<reverse>_reverse)?$"
)
_KINDS = {1: "RNN", 3: "GRU", 4: "LSTM"}
_SCRIPTED_KINDS = {"RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"}
# What torch.save wrote first in its legacy (pre-zip) format: a pickled magic number.


def available_memory():
    """Bytes of memory available to a new allocation, as the operating system says.

    ``MemAvailable`` of ``/proc/meminfo`` on Linux, else the free physical
    pages (``os.sysconf``); ``None`` where neither can be read.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def memory_limit(max_bytes="auto"):
    """The bytes a ``max_bytes`` setting allows: ``"auto"`` is half of :func:`available_memory`.

    An int is returned as it is; ``None`` (no limit, or ``"auto"`` where the
    available memory cannot be read) means no limit.
    """
    if max_bytes != "auto":
        return max_bytes
    available = available_memory()
    return None if available is None else available // 2


def count_weights(kind, input_size, hidden_size, num_layers=1, *, bias=True):
    """The number of weights of an ``nn.RNN``, ``nn.GRU`` or ``nn.LSTM`` (or cell) of these sizes.

    Parameters
    ----------
    kind : {"RNN", "GRU", "LSTM"}
    input_size, hidden_size : int
    num_layers : int, default=1
    bias : bool, default=True

    Returns
    -------
    int
        ``sum over layers of gates * N * (inputs + N + 2 * bias)``, with 1, 3
        or 4 gate blocks and a layer's inputs the previous layer's ``N``.

    Examples
    --------
    >>> from torch import nn
    >>> from sklyap.checkpoints import count_weights
    >>> count_weights("GRU", 3, 4, 2), sum(p.numel() for p in nn.GRU(3, 4, 2).parameters())
    (228, 228)
    """
    gates = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
    return sum(
        gates * hidden_size * ((input_size if layer == 0 else hidden_size) + hidden_size + 2 * bias)
        for layer in range(num_layers)
    )


# What max_bytes may be, in load_checkpoint and module_from_state_dict alike.
MAX_BYTES = [Interval(int, 1, None), Options("auto", None)]


def gib(n_bytes):
    return f"{n_bytes / 2**30:.3g} GiB"


def _check_tensors(weights, where):
    """Refuse weights that are not real floating-point numbers; the dtype to build in."""
    bad = {k: v.dtype for k, v in weights.items() if not v.dtype.is_floating_point}
    if bad:
        key, dtype = next(iter(bad.items()))
        kind = "complex" if dtype.is_complex else "not floating-point"
        raise ValueError(
            f"{where}: {key} holds {dtype} numbers ({kind}); expected the real "
            "floating-point weights of an nn.RNN/GRU/LSTM"
            + ("" if len(bad) == 1 else f" (also {sorted(bad)[1:4]})")
        )
    # The widest dtype among the weights: none is cast down before the engine reads it.
    dtype = None
    for value in weights.values():
        dtype = value.dtype if dtype is None else torch.promote_types(dtype, value.dtype)
    return dtype


def _is_tensor_mapping(obj):
    """A state_dict: a mapping whose recurrent weights (``weight_hh...``) are tensors."""
    if not isinstance(obj, Mapping) or not obj:
        return False
    weights = [v for k, v in obj.items() if _WEIGHT_HH.match(str(k))]
    if weights:
        return all(isinstance(v, torch.Tensor) for v in weights)
    return all(isinstance(v, torch.Tensor) for v in obj.values())


def _find_state_dict(obj, where):
    """The state_dict inside a checkpoint: ``obj`` itself or one of its values."""
    if _is_tensor_mapping(obj):
        return obj
    if isinstance(obj, Mapping):
        found = {
            key: value
            for key, value in obj.items()
            if _is_tensor_mapping(value) and any(_WEIGHT_HH.match(str(k)) for k in value)
        }
        if len(found) == 1:
            return next(iter(found.values()))
        if len(found) > 1:
            raise ValueError(
                f"{where} holds several state_dicts with recurrent weights, under keys "
                f"{sorted(map(str, found))}; pass the one to read, e.g. checkpoint[{next(iter(found))!r}]"
            )
        raise ValueError(
            f"{where} is a dict without recurrent weights (keys {sorted(map(str, obj))[:8]}); "
            "expected a state_dict of an nn.RNN/GRU/LSTM (or of a model containing one), "
            "or a checkpoint dict holding one"
        )
    raise TypeError(
        f"{where} holds a {type(obj).__name__}; expected a state_dict (a dict of tensors)"
    )


def module_from_state_dict(
    state_dict, *, rnn=None, nonlinearity="tanh", batch_first=False, max_bytes="auto"
):
    """Build the PyTorch recurrent module whose weights a ``state_dict`` holds.

    Parameters
    ----------
    state_dict : mapping of str to Tensor
        The ``state_dict()`` of an ``nn.RNN``, ``nn.GRU``, ``nn.LSTM``, one of
        their ``*Cell`` forms, or of a model containing one (then its keys
        carry a prefix such as ``"rnn."``); a checkpoint dict holding such a
        state_dict under one key (``"model_state_dict"``, say) also works.
    rnn : str, default=None
        Attribute path of the recurrent module in the model (``"encoder.rnn"``),
        needed when the state_dict holds several.
    nonlinearity : {"tanh", "relu"}, default="tanh"
        The nonlinearity of an ``nn.RNN``, which a state_dict does not record;
        ignored for GRUs and LSTMs.
    batch_first : bool, default=False
        Given to the module built; a state_dict does not record it.
    max_bytes : int, "auto" or None, default="auto"
        Refuse, before allocating anything, a module whose declared sizes need
        more bytes than this for its weights (dense, as stored) and the
        engine's float64 copy of them. ``"auto"``: half the memory the
        operating system reports available (:func:`available_memory`);
        ``None``: no limit.

    Returns
    -------
    nn.Module
        A new ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (or cell) in evaluation mode, on
        the CPU, holding a copy of the stored weights in the widest
        floating-point dtype among them (none is cast down).

    Raises
    ------
    ValueError
        When the weights are not those of a recurrent module sklyap reads
        (bidirectional, projected LSTMs, a size of 0, complex or integer
        weights), or several recurrent modules are present and ``rnn`` does
        not choose one.
    MemoryError
        When the declared sizes need more than ``max_bytes``.

    Examples
    --------
    >>> from torch import nn
    >>> from sklyap import module_from_state_dict
    >>> class Model(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.rnn = nn.GRU(3, 8, num_layers=2)
    ...         self.head = nn.Linear(8, 1)
    >>> module_from_state_dict(Model().state_dict())
    GRU(3, 8, num_layers=2)
    """
    validate_params(
        {"nonlinearity": nonlinearity, "batch_first": batch_first, "max_bytes": max_bytes},
        {
            "nonlinearity": [Options("tanh", "relu")],
            "batch_first": [Options(True, False)],
            "max_bytes": MAX_BYTES,
        },
    )
    nonlinearity, batch_first = str(nonlinearity), bool(batch_first)  # numpy's, as Python's
    if rnn is not None and not isinstance(rnn, str):
        raise TypeError(f"rnn must be an attribute path such as 'encoder.rnn', got {rnn!r}")
    state = _find_state_dict(state_dict, "the state_dict")
    prefixes = {}
    for key in state:
        match = _WEIGHT_HH.match(str(key))
        if match:
            prefixes.setdefault(match["prefix"], []).append(match)
    if not prefixes:
        raise ValueError(
            f"the state_dict has no recurrent weights (no 'weight_hh' key among "
            f"{list(state)[:8]}); expected the weights of an nn.RNN/GRU/LSTM or a model "
            "containing one"
        )
    if rnn is not None:
        prefix = rnn + "." if rnn else ""
        if prefix not in prefixes:
            raise ValueError(
                f"the state_dict has no recurrent module {rnn!r}; it has "
                f"{sorted(p.rstrip('.') or '<top level>' for p in prefixes)}"
            )
    elif len(prefixes) > 1:
        raise ValueError(
            f"the state_dict holds {len(prefixes)} recurrent modules: "
            f"{sorted(p.rstrip('.') or '<top level>' for p in prefixes)}; choose one with rnn='<path>'"
        )
    else:
        prefix = next(iter(prefixes))
    matches = prefixes[prefix]
    where = prefix.rstrip(".") or "the state_dict"
    if any(m["reverse"] for m in matches):
        raise ValueError(
            f"{where} holds the weights of a bidirectional network (keys ending in "
            "'_reverse'), which is not a forward-in-time dynamical system"
        )
    below = [str(k)[len(prefix) :] for k in state if str(k).startswith(prefix)]
    nested = [k for k in below if "." in k]
    if nested:
        raise ValueError(
            f"{where} is not a PyTorch nn.RNN/GRU/LSTM or cell: its weights sit beside "
            f"submodules ({nested[:3]}), as in a custom cell, whose step sklyap cannot "
            "infer from weights; build the model and pass it through sklyap.from_step"
        )
    weights = {
        str(k)[len(prefix) :]: v
        for k, v in state.items()
        if str(k).startswith(prefix) and isinstance(v, torch.Tensor)
    }
    if any(k.startswith("weight_hr") for k in weights):
        raise ValueError(f"{where} holds an LSTM with projections (weight_hr_l*); not supported")
    is_cell = matches[0]["layer"] is None
    layers = sorted(int(m["layer"]) for m in matches) if not is_cell else [0]
    if layers != list(range(len(layers))):
        raise ValueError(f"{where} has layers {layers}; expected 0 to {len(layers) - 1}")
    suffix = "" if is_cell else "_l0"
    dtype = _check_tensors(weights, where)
    w_hh, w_ih = weights[f"weight_hh{suffix}"], weights.get(f"weight_ih{suffix}")
    if w_ih is None or w_hh.ndim != 2 or w_ih.ndim != 2:
        raise ValueError(
            f"{where}: weight_hh{suffix} of shape {tuple(w_hh.shape)} and its weight_ih "
            f"of shape {None if w_ih is None else tuple(w_ih.shape)} are not those of an "
            "nn.RNN/GRU/LSTM (two matrices expected)"
        )
    for name, size in (("hidden size", w_hh.shape[1]), ("input size", w_ih.shape[1])):
        if size == 0:
            raise ValueError(
                f"{where}: weight_hh{suffix} of shape {tuple(w_hh.shape)} and weight_ih"
                f"{suffix} of shape {tuple(w_ih.shape)} declare a {name} of 0; expected "
                "a network with at least one hidden unit and one input feature"
            )
    hidden = w_hh.shape[1]
    if w_hh.shape[0] % hidden:
        raise ValueError(
            f"{where}: weight_hh{suffix} of shape {tuple(w_hh.shape)} is not a stack of "
            f"square gate blocks of size {hidden}"
        )
    gates = w_hh.shape[0] // hidden
    if gates not in _KINDS:
        raise ValueError(
            f"{where}: weight_hh{suffix} has {gates} gate blocks of size {hidden}; "
            "expected 1 (RNN), 3 (GRU) or 4 (LSTM)"
        )
    kind = _KINDS[gates]
    bias = f"bias_ih{suffix}" in weights
    # The module holds its weights densely (a file of expanded tensors can declare
    # sizes far beyond its own), and the engine a float64 copy of them: check the
    # memory the declared sizes need before anything is allocated.
    numbers = count_weights(kind, w_ih.shape[1], hidden, len(layers), bias=bias)
    need = numbers * (torch.empty((), dtype=dtype).element_size() + 8)
    limit = memory_limit(max_bytes)
    if limit is not None and need > limit:
        article = "a" if kind == "GRU" else "an"
        raise MemoryError(
            f"{where}: {article} {kind}{'Cell' if is_cell else ''} of input size {w_ih.shape[1]}, "
            f"hidden size {hidden} and {len(layers)} layer(s) declares {numbers:,} weights, "
            f"which need {gib(need)} (as stored and as the engine's float64 copy), more "
            f"than the limit of {gib(limit)} (max_bytes="
            f"{'auto: half the available memory' if max_bytes == 'auto' else max_bytes})"
        )
    kwargs = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
    if is_cell:
        module = getattr(nn, kind + "Cell")(w_ih.shape[1], hidden, bias=bias, **kwargs)
    else:
        module = getattr(nn, kind)(
            w_ih.shape[1],
            hidden,
            num_layers=len(layers),
            bias=bias,
            batch_first=batch_first,
            **kwargs,
        )
    module = module.to(dtype)
    try:
        module.load_state_dict(weights)
    except RuntimeError as exc:
        raise ValueError(f"{where}: the weights do not fit an {module!r}: {exc}") from None
    return module.eval()


def from_torchscript(module, *, rnn=None, batch_first=None):
    """An eager copy of the recurrent module inside a TorchScript module, and its path.

    A scripted module records ``batch_first``; a traced one does not, and then
    ``batch_first`` decides (``None``: the copy is marked as having no layout of
    its own, so inputs are read as the caller's ``batch_first=`` says, or
    ``(B, T, input_size)``).
    """
    candidates = [
        (name, sub)
        for name, sub in module.named_modules()
        if getattr(sub, "original_name", None) in _SCRIPTED_KINDS
        and any(k.startswith("weight_hh") for k, _ in sub.named_parameters(recurse=False))
    ]
    if rnn is not None:
        candidates = [(n, s) for n, s in candidates if n == rnn]
    if len(candidates) != 1:
        found = [n or "<top level>" for n, _ in candidates]
        hint = "choose one with rnn='<path>', or load" if len(candidates) > 1 else "Load"
        raise ValueError(
            f"a TorchScript module ({module.original_name}) is read through its "
            f"parameters, which needs exactly one nn.RNN/GRU/LSTM in it; found "
            f"{found or 'none'}{'' if rnn is None else f' named {rnn!r}'}. {hint.capitalize()} "
            "its state_dict() into the eager model: model.load_state_dict(scripted.state_dict())"
        )
    name, sub = candidates[0]
    kind = sub.original_name
    nonlinearity = getattr(sub, "nonlinearity", None)
    if kind.startswith("RNN") and nonlinearity not in ("tanh", "relu"):
        raise ValueError(
            f"a traced {kind} does not record its nonlinearity; build the eager module "
            f"and load the weights: nn.{kind}(..., nonlinearity='tanh' or 'relu')"
            ".load_state_dict(traced.state_dict()), or sklyap.module_from_state_dict("
            "traced.state_dict(), nonlinearity=...)"
        )
    state = {k: v.detach().cpu() for k, v in sub.state_dict().items()}
    recorded = getattr(sub, "batch_first", None)
    layout = recorded if recorded is not None else batch_first
    eager = module_from_state_dict(
        state, nonlinearity=nonlinearity or "tanh", batch_first=bool(layout)
    )
    if layout is None and not kind.endswith("Cell"):
        mark_layout_unknown(eager)
    return name or None, eager
