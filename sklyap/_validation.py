"""Checks and conversions shared by the public functions and estimators."""

import contextlib
import os
import sys
import numbers

import numpy as np
import torch

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def check_dtype(dtype):
    """Return the torch floating dtype named by ``dtype``.

    Accepts ``torch.float32``/``torch.float64``, numpy's float32/float64 and
    the strings ``"float32"``/``"float64"``.
    """
    if dtype is None:
        resolved = None  # np.dtype(None) would silently mean float64
    elif isinstance(dtype, torch.dtype):
        resolved = dtype
    elif isinstance(dtype, str) and dtype in _DTYPES:
        resolved = _DTYPES[dtype]
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
        resolved = _DTYPES.get(name)
    if resolved not in (torch.float32, torch.float64):
        raise ValueError(
            f"dtype must be float32 or float64 (a torch dtype or the strings "
            f"'float32'/'float64'), got {dtype!r}"
        )
    return resolved


def check_device(device):
    """Return the ``torch.device`` named by ``device``.

    ``"auto"`` (or ``None``) means the first CUDA device when one is available
    and the CPU otherwise. Asking for CUDA on a machine without it is an error
    rather than a silent fallback.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        try:
            resolved = torch.device(device)
        except RuntimeError:
            raise ValueError(
                f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or "
                "'cuda:<index>'"
            ) from None
    else:
        raise TypeError(f"device must be a string or torch.device, got {device!r}")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"unsupported device {device!r}; expected 'auto', 'cpu', 'cuda' or "
            "'cuda:<index>'"
        )
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine; use device='cpu' or device='auto'"
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    return resolved


def check_int(value, name, *, minimum=None, allow_none=False):
    """Check that ``value`` is an integer (not a bool) no smaller than ``minimum``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = "an int or None" if allow_none else "an int"
        raise TypeError(f"{name} must be {expected}, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def as_float_tensor(array, name, dtype, device):
    """Copy ``array`` (tensor or array-like) to a floating tensor; reject NaN/inf."""
    if isinstance(array, torch.Tensor):
        tensor = array.detach()
    else:
        try:
            tensor = torch.as_tensor(np.asarray(array))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a tensor or array of numbers: {exc}") from None
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    tensor = tensor.to(device=device, dtype=dtype, copy=True)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} holds NaN or infinite values")
    return tensor


def batch_of_sequences(inputs, name="inputs"):
    """View inputs of shape (T, d) as one trajectory (1, T, d); require 3-D otherwise.

    Works on numpy arrays and torch tensors alike.
    """
    if inputs.ndim == 2:
        inputs = inputs[None]
    if inputs.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_trajectories, n_time_steps, input_size) or "
            f"(n_time_steps, input_size), got shape {tuple(inputs.shape)}"
        )
    return inputs


def check_num_threads(num_threads):
    """Accept "auto", None or a positive int for a ``num_threads`` parameter."""
    if num_threads is None or (isinstance(num_threads, str) and num_threads == "auto"):
        return num_threads
    return check_int(num_threads, "num_threads", minimum=1)


def threads_for(num_threads, device, *, small):
    """The torch thread count a ``num_threads`` parameter asks for, or None.

    None (leave torch's setting alone) on CUDA and for ``num_threads=None``;
    for ``"auto"``, one thread when the work is ``small``, else None; an int
    as given.
    """
    if torch.device(device).type != "cpu" or num_threads is None:
        return None
    if isinstance(num_threads, str):  # "auto"
        return 1 if small else None
    return num_threads


@contextlib.contextmanager
def torch_threads(n):
    """Run the block with ``n`` torch CPU threads, then restore the setting.

    ``None`` leaves the setting alone. The setting is process-wide: other
    threads of the process see it while the block runs.
    """
    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def caller_stacklevel():
    """The ``stacklevel`` for ``warnings.warn`` that points at the user's code.

    Called from the function that warns; skips the frames of sklyap and of
    scikit-learn's wrappers (``fit_transform``, ``set_output``), whose depth
    varies with the path a call takes.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE_DIR)
        or f"{os.sep}sklearn{os.sep}" in frame.f_code.co_filename
    ):
        frame, level = frame.f_back, level + 1
    return level


def _positive_int_or_auto(value, name, what):
    if isinstance(value, str):
        if value != "auto":
            raise ValueError(f"{name} must be {what} or 'auto', got {value!r}")
        return value
    return check_int(value, name, minimum=1)


def check_qr_interval(qr_interval):
    """Accept a positive int or ``"auto"`` for a ``qr_interval`` parameter."""
    return _positive_int_or_auto(qr_interval, "qr_interval", "a positive int")


def check_on_error(on_error):
    """Accept "raise" or "nan" for an ``on_error`` parameter."""
    if not isinstance(on_error, str) or on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    return on_error


def check_memory_budget(memory_budget):
    """Accept ``"auto"`` or a positive number of bytes for a ``memory_budget`` parameter."""
    return _positive_int_or_auto(memory_budget, "memory_budget", "a number of bytes")
