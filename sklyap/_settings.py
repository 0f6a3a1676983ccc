"""What a spectrum computation is asked and what it returns: :class:`SpectrumSettings`
(the settings, checked once) and :class:`LyapunovResult` (one system's spectrum)."""

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from ._layout import DEFAULT_WARMUP
from ._planning import choose_device
from ._validation import SPECTRUM_CONSTRAINTS, check_device, check_dtype, validate_params

__all__ = ["LyapunovResult", "SpectrumSettings"]


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
    fixed_point : bool
        True when the driving inputs were constant in time and every
        trajectory ended at a fixed point of the step (its last step moved
        the state by less than ``sqrt(eps)`` relative): the exponents are
        then those of that fixed point, not of driven dynamics.
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
    fixed_point: bool = False

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


_CPU = torch.device("cpu")


@dataclass(frozen=True)
class SpectrumSettings:
    """The settings of a spectrum computation, checked once.

    Build it with :meth:`checked`; the fields are those of
    :func:`lyapunov_spectrum`, with ``dtype`` and ``device`` resolved to torch
    objects.
    """

    n_exponents: int = None
    warmup: int = DEFAULT_WARMUP
    qr_interval: object = 1
    orthonormalize: object = "auto"
    dtype: torch.dtype = torch.float64
    device: torch.device = _CPU
    device_auto: bool = False
    memory_budget: object = "auto"
    num_threads: object = "auto"
    on_error: str = "raise"

    @classmethod
    def checked(cls, **params):
        """Check ``params`` against the shared constraints table and build the settings.

        Raises ``TypeError`` or ``ValueError`` naming the bad value and what
        was expected; ``batch_first`` and ``verbose``, checked here too, are
        not part of the settings.
        """
        validate_params(params, SPECTRUM_CONSTRAINTS)
        names = {f.name for f in dataclasses.fields(cls)}
        values = {name: value for name, value in params.items() if name in names}
        values["dtype"] = check_dtype(params.get("dtype", cls.dtype))
        device = params.get("device", "auto")
        values["device"] = check_device(device)
        # "auto" on a CUDA machine: the cost model chooses, once the work is known.
        values["device_auto"] = values["device"].type == "cuda" and (
            device is None or (isinstance(device, str) and device == "auto")
        )
        return cls(**values)

    def for_systems(self, systems):
        """These settings with ``device="auto"`` resolved for ``systems`` by the cost
        model (:func:`choose_device`), on a machine with CUDA; as they are otherwise."""
        if not self.device_auto:
            return self
        device = choose_device(systems, self.device)
        return dataclasses.replace(self, device=device, device_auto=False)

    @property
    def dtype_name(self):
        return str(self.dtype).replace("torch.", "")

    def frame_size(self, state_size):
        """The number ``k`` of exponents computed for a state of ``state_size``."""
        return state_size if self.n_exponents is None else self.n_exponents

    def failed(self, error, state_size, n_trajectories, n_time_steps, qr_interval=None):
        """The result of a model that could not be measured: NaN arrays, and why.

        ``qr_interval`` is the interval the model used; by default the
        setting (``"auto"`` reported as 1, for a model refused before it ran).
        """
        if qr_interval is None:
            qr_interval = 1 if self.qr_interval == "auto" else self.qr_interval
        k, B = self.frame_size(state_size), n_trajectories
        return LyapunovResult(
            exponents=np.full(k, np.nan),
            per_trajectory=np.full((B, k), np.nan),
            stderr=np.full(k, np.nan),
            state_size=state_size,
            n_steps=n_time_steps - self.warmup,
            warmup=self.warmup,
            qr_interval=qr_interval,
            dtype=self.dtype_name,
            device=str(self.device),
            final_state=np.full((B, state_size), np.nan),
            error=error,
        )
