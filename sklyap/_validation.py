"""Checks and conversions shared by the public functions and estimators."""

import contextlib
import math
import numbers
import os
import sys
import threading
import time

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
                f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
            ) from None
    else:
        raise TypeError(f"device must be a string or torch.device, got {device!r}")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"unsupported device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
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
    """Check that ``value`` is an int (not a bool) no smaller than ``minimum``; return it.

    The messages are those of :func:`validate_params`: ``"n must be an int >= 1,
    got 0"``.
    """
    alternatives = [Interval(int, minimum, None)] + ([Options(None)] if allow_none else [])
    validate_params({name: value}, {name: alternatives})
    return None if value is None else int(value)


def as_float_tensor(array, name, dtype, device):
    """Copy ``array`` (tensor or array-like) to a floating tensor; reject NaN/inf."""
    if isinstance(array, torch.Tensor):
        tensor = array.detach()
    else:
        try:
            tensor = torch.tensor(np.asarray(array))  # a copy: read-only arrays are fine
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


def _own_running():
    """This process's threads that are running now (Linux ``/proc/self/task``)."""
    own = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                own += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except OSError:  # a thread that ended meanwhile
            continue
    return own


def _running_elsewhere():
    """Tasks of other processes running now (Linux), or None where it cannot be read.

    ``/proc/loadavg``'s count of running tasks, less this process's running
    threads, counted just before and just after (its threads may stop
    spinning in between): the cores other work holds at this moment.
    """
    try:
        before = _own_running()
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = max(before, _own_running())
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - own)


def _cpu_quota():
    """The CPUs a cgroup v2 quota (``cpu.max``) allows this process, or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        return None if quota == "max" else max(1, int(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def free_cores(samples=5):
    """The CPUs of this process that other processes do not hold now.

    The CPUs this process may run on (``os.sched_getaffinity``, capped by a
    cgroup's ``cpu.max`` quota) less the tasks of other processes running at
    this moment, the median of ``samples`` readings a millisecond apart; at
    least 1. The count of running tasks is the whole machine's, so it is read
    only where this process may run on every CPU of the machine: confined to a
    subset (a container's or a cluster job's cpuset), or where the count
    cannot be read, all of this process's CPUs are taken as free.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
    quota = _cpu_quota()
    if quota is not None:
        cores = min(cores, quota)
    if cores < (os.cpu_count() or cores):
        return cores
    readings = []
    for i in range(samples):
        if i:
            time.sleep(0.001)
        busy = _running_elsewhere()
        if busy is None:
            return cores
        readings.append(busy)
    return max(1, cores - sorted(readings)[len(readings) // 2])


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

    ``None`` leaves the setting alone, and so does a block run in any thread
    but the main thread: the setting is process-wide, so batches running in
    threads (joblib's threading backend, a Dask worker's thread pool) would
    change it under each other. They compute with the process's setting.
    """
    previous = torch.get_num_threads()
    if n is None or n == previous or threading.current_thread() is not threading.main_thread():
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


def check_model_list(X, kinds):
    """``X`` as a list of models; raise before any work.

    Accepted: a list or tuple, a 1-D object array or one of a single column,
    a pandas Series, or a one-column DataFrame (a "model" column of a sweep
    table, as a ``ColumnTransformer`` passes it). ``kinds`` names the accepted
    models in the error message.
    """
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # a pandas DataFrame
        if X.shape[1] != 1:
            raise ValueError(
                f"X is a DataFrame of {X.shape[1]} columns {list(X.columns)[:5]}; expected "
                "one column of models (select it, e.g. df['model'], or name it in a "
                "ColumnTransformer)"
            )
        X = X.iloc[:, 0]
    if hasattr(X, "iloc") and getattr(X, "ndim", None) == 1:  # a pandas Series
        X = X.tolist()
    if isinstance(X, np.ndarray) and X.dtype == object:
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim == 1:
            X = list(X)
    if not isinstance(X, (list, tuple)):
        raise TypeError(
            f"X must be a list of models ({kinds}), got {type(X).__name__}; "
            "wrap a single model as [model]"
        )
    if len(X) == 0:
        raise ValueError("X is an empty list; expected at least one model")
    return list(X)


def check_spectra_not_models(X, estimator):
    """Refuse torch modules given to an estimator of spectra, with the way to spectra.

    ``X`` is a module, or a list, tuple or object array holding one; anything
    else passes unchanged, to the estimator's own validation.
    """
    items = [X]
    if isinstance(X, (list, tuple)) or (isinstance(X, np.ndarray) and X.dtype == object):
        items = np.asarray(X, dtype=object).ravel() if isinstance(X, np.ndarray) else X
    if not any(isinstance(item, torch.nn.Module) for item in items):
        return X
    name = type(estimator).__name__
    kinds = sorted({type(item).__name__ for item in items if isinstance(item, torch.nn.Module)})
    raise TypeError(
        f"{name} takes spectra, an array of shape (n_models, n_features), but X holds "
        f"torch modules ({', '.join(kinds[:3])}); compute their spectra first with "
        f"LyapunovSpectrumTransformer, e.g. make_pipeline(LyapunovSpectrumTransformer(), "
        f"{name}())"
    )


# -- declarative parameter checks ------------------------------------------------------


class Interval:
    """A real or integer range: ``Interval(int, 1, None)`` is "an int >= 1".

    ``closed`` is one of "both", "left", "right", "neither"; ``None`` bounds are
    open, but the value must be finite. Booleans are neither ints nor reals here.
    """

    def __init__(self, kind, low, high, *, closed="both"):
        if kind not in (int, float):
            raise ValueError(f"kind must be int or float, got {kind!r}")
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be 'both', 'left', 'right' or 'neither', got {closed!r}")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def has_type(self, value):
        if isinstance(value, (bool, np.bool_)):
            return False
        base = numbers.Integral if self.kind is int else numbers.Real
        return isinstance(value, base)

    def holds(self, value):
        if not self.has_type(value) or not math.isfinite(value):
            return False
        low_ok = (
            self.low is None
            or value > self.low
            or (value == self.low and self.closed in ("both", "left"))
        )
        high_ok = (
            self.high is None
            or value < self.high
            or (value == self.high and self.closed in ("both", "right"))
        )
        return low_ok and high_ok

    def __str__(self):
        what = "an int" if self.kind is int else "a float"
        if self.low is not None and self.high is not None:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            return f"{what} in {left}{self.low}, {self.high}{right}"
        if self.low is not None:
            return f"{what} {'>=' if self.closed in ('both', 'left') else '>'} {self.low}"
        if self.high is not None:
            return f"{what} {'<=' if self.closed in ('both', 'right') else '<'} {self.high}"
        return what


class Options:
    """One of a fixed set of values (strings, booleans, None): ``Options("auto", True, False)``."""

    def __init__(self, *values):
        self.values = values

    @staticmethod
    def _kind(value):
        """The type ``value`` is compared as: numpy's booleans as bool, numpy's
        strings (and other str subclasses) as str, anything else as itself."""
        if isinstance(value, np.bool_):
            return bool
        if isinstance(value, str):
            return str
        return type(value)

    def has_type(self, value):
        return any(self._kind(value) is type(v) for v in self.values)

    def holds(self, value):
        return any(self._kind(value) is type(v) and value == v for v in self.values)

    def __str__(self):
        if len(self.values) == 1:
            return repr(self.values[0])
        return "one of " + ", ".join(repr(v) for v in self.values)


class Callables:
    """Any callable, described as ``what``."""

    def __init__(self, what="a callable"):
        self.what = what

    def has_type(self, value):
        return callable(value)

    def holds(self, value):
        return callable(value)

    def __str__(self):
        return self.what


class PositiveInts:
    """A tuple (or other finite sequence) of ints >= 1, possibly empty."""

    def has_type(self, value):
        return not isinstance(value, (str, bytes)) and hasattr(value, "__len__")

    def holds(self, value):
        return self.has_type(value) and all(Interval(int, 1, None).holds(v) for v in value)

    def __str__(self):
        return "a tuple of ints >= 1"


class RandomStates:
    """An int, a numpy RandomState or None, as ``sklearn.utils.check_random_state`` takes."""

    def has_type(self, value):
        return True

    def holds(self, value):
        return (
            value is None
            or isinstance(value, np.random.RandomState)
            or Interval(int, 0, 2**32 - 1).holds(value)
        )

    def __str__(self):
        return "an int in [0, 2**32 - 1], a numpy RandomState or None"


def validate_params(params, constraints):
    """Check each parameter against its constraints; raise before any work.

    ``constraints`` maps a name to a list of alternatives (:class:`Interval`,
    :class:`Options`, ...); a value passes when one of them holds. A value of
    none of the accepted types raises ``TypeError``, a value of an accepted
    type outside the accepted range ``ValueError``; both name the value and
    what was expected. A name mapped to ``"no_validation"`` is not checked.
    """
    for name, alternatives in constraints.items():
        if alternatives == "no_validation":
            continue
        value = params[name]
        if any(c.holds(value) for c in alternatives):
            continue
        expected = " or ".join(str(c) for c in alternatives)
        error = ValueError if any(c.has_type(value) for c in alternatives) else TypeError
        raise error(f"{name} must be {expected}, got {value!r}")


SPECTRUM_CONSTRAINTS = {
    "n_exponents": [Interval(int, 1, None), Options(None)],
    "warmup": [Interval(int, 0, None)],
    "batch_first": [Options(True, False, None)],
    "qr_interval": [Interval(int, 1, None), Options("auto")],
    "orthonormalize": [
        Options("auto", "householder", "cholesky_qr2"),
        Callables("a callable frames -> (rows, growth)"),
    ],
    "memory_budget": [Interval(int, 1, None), Options("auto")],
    "on_error": [Options("raise", "nan")],
    "num_threads": [Interval(int, 1, None), Options("auto", None)],
    "n_jobs": [Interval(int, None, -1), Interval(int, 1, None), Options(None)],
    "verbose": [Interval(int, 0, None), Options(True, False)],
}
"""The settings of a spectrum computation that :func:`sklyap.lyapunov_spectrum` and
:class:`sklyap.LyapunovSpectrumTransformer` share, checked by one table so that
both say the same thing of a bad value (``dtype`` and ``device`` are converted by
:func:`check_dtype` and :func:`check_device`)."""
