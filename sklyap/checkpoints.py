"""Recurrent networks from checkpoints: state_dicts, checkpoint files and TorchScript.

A ``state_dict`` holds a network's weights but not its class. For PyTorch's
recurrent modules the weights tell nearly everything: the kind from the
number of gate blocks in ``weight_hh`` (1 for ``nn.RNN``, 3 for ``nn.GRU``, 4
for ``nn.LSTM``), the sizes from the shapes, the number of layers from the
``_l<k>`` suffixes, the bias from the presence of ``bias_ih``. Two things it
does not record are arguments here: the nonlinearity of an ``nn.RNN`` and
``batch_first``; both default to PyTorch's defaults.

Reading a file never runs code from it unless the caller opts in
(``weights_only=False``): state_dicts and checkpoint dicts are read with
``torch.load(weights_only=True)``; TorchScript archives and whole pickled
models, which run code of the file as they load, are refused by default.
"""

import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ._state_dict import (
    MAX_BYTES,
    available_memory,
    count_weights,
    from_torchscript,
    gib,
    memory_limit,
    module_from_state_dict,
)
from ._validation import Options, validate_params

__all__ = [
    "UnsafeLoadError",
    "available_memory",
    "count_weights",
    "load_checkpoint",
    "memory_limit",
    "module_from_state_dict",
]

_LEGACY_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)


class UnsafeLoadError(ValueError):
    """A file that only loading with code execution can read, refused by default.

    Attributes
    ----------
    path : Path
        The file.
    what : str
        What the file is or holds (a TorchScript archive, a pickled model).
    """

    def __init__(self, path, what):
        self.path, self.what = Path(path), what
        super().__init__(self.advice("weights_only=False"))

    def advice(self, opt_in):
        """The message, with ``opt_in`` named as the way to load the file anyway."""
        return (
            f"{self.path}: {self.what}; loading it can run code stored in the file, so "
            f"sklyap refuses it by default. If you trust the file, pass {opt_in}; better, "
            "save the model's state_dict() with torch.save and read that"
        )


def _is_torchscript_archive(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.split("/", 1)[-1].startswith("code/") for n in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _check_archive_size(path, max_bytes):
    """Refuse a zip archive whose members unpack to more than the memory limit.

    ``torch.load`` allocates what the archive holds before any check of
    ``module_from_state_dict`` runs; torch.save stores its members
    uncompressed, but a compressed archive can unpack to far more than its size.
    """
    limit = memory_limit(max_bytes)
    if limit is None or not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > limit:
        raise MemoryError(
            f"{path}: its archive unpacks to {gib(unpacked)}, more than the limit of "
            f"{gib(limit)} (max_bytes)"
        )


def _is_legacy_torch_file(path):
    try:
        with open(path, "rb") as f:
            return f.read(len(_LEGACY_MAGIC)) == _LEGACY_MAGIC
    except OSError:
        return False


def load_checkpoint(
    source,
    *,
    rnn=None,
    nonlinearity="tanh",
    batch_first=False,
    weights_only=True,
    max_bytes="auto",
):
    """The recurrent module saved in a checkpoint file, or held in a state_dict.

    Parameters
    ----------
    source : str, path or mapping
        A file written by ``torch.save(model.state_dict(), path)``, by
        skorch's ``net.save_params(f_params=path)``, by ``torch.save`` of a
        checkpoint dict holding a state_dict (``{"model_state_dict": ...,
        "epoch": ...}``); with ``weights_only=False`` also one written by
        ``torch.jit.save`` of a scripted or traced model, or by
        ``torch.save(model)``; or such a state_dict or checkpoint dict itself.
    rnn : str, default=None
        Attribute path of the recurrent module in the saved model, needed
        when it holds several.
    nonlinearity : {"tanh", "relu"}, default="tanh"
        The nonlinearity of an ``nn.RNN``, which a state_dict does not record.
    batch_first : bool, default=False
        The layout the module built will take (a state_dict does not record
        it; PyTorch's default is False).
    weights_only : bool, default=True
        Read only tensors and plain containers, with
        ``torch.load(weights_only=True)``: nothing in the file runs. TorchScript
        archives (whose loading runs the archive's code, its ``__setstate__``
        methods among it) and whole models saved with ``torch.save(model)``
        (unpickled, which may run arbitrary code) are read only with
        ``weights_only=False``: use it only for files you trust.
    max_bytes : int, "auto" or None, default="auto"
        As for :func:`module_from_state_dict`: the memory the declared sizes
        may need, checked before anything is allocated.

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
    UnsafeLoadError
        When the file is a TorchScript archive or a pickled model and
        ``weights_only=True``; a ``ValueError``.
    ValueError
        When the file is not a PyTorch checkpoint or holds no recurrent
        weights sklyap can read.
    MemoryError
        When the declared sizes need more than ``max_bytes``.
    """
    validate_params(
        {"weights_only": weights_only, "max_bytes": max_bytes},
        {
            "weights_only": [Options(True, False)],
            "max_bytes": MAX_BYTES,
        },
    )
    weights_only = bool(weights_only)
    if isinstance(source, Mapping):
        return module_from_state_dict(
            source, rnn=rnn, nonlinearity=nonlinearity, batch_first=batch_first, max_bytes=max_bytes
        )
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a file path or a state_dict, got {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if _is_torchscript_archive(path):
        if weights_only:
            raise UnsafeLoadError(path, "is a TorchScript archive (saved with torch.jit.save)")
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
    # torch.save writes a zip archive, or (before PyTorch 1.6) a pickle that starts
    # with its magic number; anything else is not one of its files.
    torch_file = zipfile.is_zipfile(path) or _is_legacy_torch_file(path)
    if not torch_file:
        raise ValueError(
            f"{path}: not a PyTorch checkpoint (neither a zip archive written by torch.save "
            "nor a file of its legacy format)"
        )
    _check_archive_size(path, max_bytes)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=weights_only)
    except Exception as exc:
        text = str(exc)
        if weights_only and ("Weights only load failed" in text or "weights_only" in text):
            raise UnsafeLoadError(
                path, "holds pickled Python objects (a whole model saved with torch.save(model)?)"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise ValueError(
            f"{path}: not a readable PyTorch checkpoint (torch.load: {first})"
        ) from None
    if isinstance(loaded, nn.Module):
        return loaded
    try:
        return module_from_state_dict(
            loaded, rnn=rnn, nonlinearity=nonlinearity, batch_first=batch_first, max_bytes=max_bytes
        )
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{path}: {exc}") from None
    except MemoryError as exc:
        raise MemoryError(f"{path}: {exc}") from None
