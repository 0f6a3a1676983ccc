"""Recurrent networks from checkpoints: state_dicts, checkpoint files and TorchScript.

A ``state_dict`` holds a network's weights but not its class. For PyTorch's
recurrent modules the weights tell nearly everything: the kind from the
number of gate blocks in ``weight_hh`` (1 for ``nn.RNN``, 3 for ``nn.GRU``, 4
for ``nn.LSTM``), the sizes from the shapes, the number of layers from the
``_l<k>`` suffixes, the bias from the presence of ``bias_ih``. Two things it
does not record are arguments here: the nonlinearity of an ``nn.RNN`` and
``batch_first``; both default to PyTorch's defaults.
"""

import os
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ._validation import Options, validate_params
from .dynamics._torch_rnn import mark_layout_unknown

__all__ = ["load_checkpoint", "module_from_state_dict"]

# "<prefix>weight_hh" (a cell) or "<prefix>weight_hh_l<k>" (a layer of a network).
_WEIGHT_HH = re.compile(
    r"^(?P<prefix>(?:.*\.)?)weight_hh(?:_l(?P<layer>\d+))?(?P<reverse>_reverse)?$"
)
_KINDS = {1: "RNN", 3: "GRU", 4: "LSTM"}
_SCRIPTED_KINDS = {"RNN", "GRU", "LSTM", "RNNCell", "GRUCell", "LSTMCell"}


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


def module_from_state_dict(state_dict, *, rnn=None, nonlinearity="tanh", batch_first=False):
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

    Returns
    -------
    nn.Module
        A new ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (or cell) in evaluation mode, on
        the CPU, with the dtype of the stored weights and a copy of them.

    Raises
    ------
    ValueError
        When the weights are not those of a recurrent module sklyap reads
        (bidirectional, projected LSTMs), or several recurrent modules are
        present and ``rnn`` does not choose one.

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
        {"nonlinearity": nonlinearity, "batch_first": batch_first},
        {"nonlinearity": [Options("tanh", "relu")], "batch_first": [Options(True, False)]},
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
    w_hh, w_ih = weights[f"weight_hh{suffix}"], weights.get(f"weight_ih{suffix}")
    if w_ih is None or w_hh.ndim != 2 or w_hh.shape[0] % w_hh.shape[1]:
        raise ValueError(
            f"{where}: weight_hh{suffix} of shape {tuple(w_hh.shape)} and "
            "its weight_ih are not those of an nn.RNN/GRU/LSTM"
        )
    hidden = w_hh.shape[1]
    gates = w_hh.shape[0] // hidden
    if gates not in _KINDS:
        raise ValueError(
            f"{where}: weight_hh{suffix} has {gates} gate blocks of size {hidden}; "
            "expected 1 (RNN), 3 (GRU) or 4 (LSTM)"
        )
    kind = _KINDS[gates]
    bias = f"bias_ih{suffix}" in weights
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
    module = module.to(w_hh.dtype)
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


def _is_torchscript_archive(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.split("/", 1)[-1].startswith("code/") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_checkpoint(source, *, rnn=None, nonlinearity="tanh", batch_first=False, weights_only=True):
    """The recurrent module saved in a checkpoint file, or held in a state_dict.

    Parameters
    ----------
    source : str, path or mapping
        A file written by ``torch.save(model.state_dict(), path)``, by
        skorch's ``net.save_params(f_params=path)``, by ``torch.save`` of a
        checkpoint dict holding a state_dict (``{"model_state_dict": ...,
        "epoch": ...}``), by ``torch.jit.save`` of a scripted or traced model;
        or such a state_dict or checkpoint dict itself.
    rnn : str, default=None
        Attribute path of the recurrent module in the saved model, needed
        when it holds several.
    nonlinearity : {"tanh", "relu"}, default="tanh"
        The nonlinearity of an ``nn.RNN``, which a state_dict does not record.
    batch_first : bool, default=False
        The layout the module built will take (a state_dict does not record
        it; PyTorch's default is False).
    weights_only : bool, default=True
        Load files with ``torch.load(weights_only=True)``, which reads tensors
        and plain containers and never runs code from the file. A whole model
        saved with ``torch.save(model)`` needs ``weights_only=False``, which
        unpickles (and so may run) arbitrary code: use it only for files you
        trust.

    Returns
    -------
    nn.Module
        A recurrent module in evaluation mode on the CPU (or, for a whole
        pickled model, the model as saved), ready for
        :func:`sklyap.lyapunov_spectrum` and the transformer.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is not a PyTorch checkpoint, needs ``weights_only=False``,
        or holds no recurrent weights sklyap can read.
    """
    validate_params({"weights_only": weights_only}, {"weights_only": [Options(True, False)]})
    weights_only = bool(weights_only)
    if isinstance(source, Mapping):
        return module_from_state_dict(
            source, rnn=rnn, nonlinearity=nonlinearity, batch_first=batch_first
        )
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a file path or a state_dict, got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if _is_torchscript_archive(path):
        try:
            with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                scripted = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "RuntimeError"
            raise ValueError(f"{path}: not a readable TorchScript archive ({first})") from None
        try:
            return from_torchscript(scripted, rnn=rnn, batch_first=batch_first)[1]
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:
        text = str(exc)
        pickled = "Weights only load failed" in text or "weights_only" in text
        # torch.save writes a zip archive; anything else is not one of its files.
        if weights_only and pickled and zipfile.is_zipfile(path):
            raise ValueError(
                f"{path}: holds pickled Python objects (a whole model saved with "
                "torch.save(model)?), which weights_only loading refuses because "
                "unpickling can run code from the file. If you trust the file, pass "
                "weights_only=False (--unsafe-load on the command line); better, save "
                "model.state_dict()"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise ValueError(
            f"{path}: not a PyTorch checkpoint (torch.load could not read it: {first})"
        ) from None
    if isinstance(loaded, nn.Module):
        return loaded
    try:
        return module_from_state_dict(
            loaded, rnn=rnn, nonlinearity=nonlinearity, batch_first=batch_first
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
