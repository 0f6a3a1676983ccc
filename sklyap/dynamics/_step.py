"""Any batched step function as a dynamical system, differentiated by torch.func."""

import copy
import threading

import torch
from torch import nn

from .._validation import check_int
from ._base import Dynamics

# torch.func.jvp enters and leaves forward-mode AD levels, which are global to
# the process: two threads differentiating at once invalidate each other's
# level. Tangent steps are therefore taken one thread at a time (re-entrant: a
# step function may advance another system). Forward-mode AD that other code
# runs in other threads at the same time is not covered.
_FORWARD_AD = threading.RLock()


class StepDynamics(Dynamics):
    """A system given by a batched step function; see :func:`from_step`."""

    def __init__(self, step, state_size, input_size=None, name=None):
        if not callable(step):
            raise TypeError(f"step must be callable as step(state, x), got {step!r}")
        self.step_fn = step
        self.state_size = state_size
        self.input_size = input_size
        self.name = name or getattr(step, "__name__", type(step).__name__)
        self.state_layout = (("s", slice(0, state_size)),)

    def to(self, device=None, dtype=None):
        new = copy.copy(self)
        if isinstance(self.step_fn, nn.Module):
            new.step_fn = copy.deepcopy(self.step_fn).to(device=device, dtype=dtype).eval()
        return new

    def _checked(self, state, out):
        if not isinstance(out, torch.Tensor) or out.shape != state.shape:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"step {self.name!r} returned {shape} for a state of shape "
                f"{tuple(state.shape)}; expected a tensor of the same shape as the state"
            )
        if out.dtype != state.dtype:
            raise TypeError(
                f"step {self.name!r} returned {out.dtype} for a {state.dtype} state; "
                "make the step follow the dtype of its arguments, or pass an nn.Module "
                "(which sklyap casts), or request the matching dtype"
            )
        return out

    def step(self, state, x):
        return self._checked(state, self.step_fn(state, x))

    def step_tangent(self, state, x, frames):
        new_state = self.step(state, x)

        def push(vector):
            return torch.func.jvp(lambda s: self.step_fn(s, x), (state,), (vector,))[1]

        # One forward-mode product per frame vector, vectorised over the k rows.
        with _FORWARD_AD:
            return new_state, torch.func.vmap(push, in_dims=1, out_dims=1)(frames)

    def __repr__(self):
        return (
            f"StepDynamics({self.name}, state_size={self.state_size}, input_size={self.input_size})"
        )


def from_step(step, state_size, *, input_size=None, name=None):
    """Wrap a batched step function as a dynamical system.

    This is how custom recurrent cells, and classic maps, enter sklyap: give
    the step, and the tangent map ``J_t @ Q`` is obtained by forward-mode
    automatic differentiation (``torch.func.jvp`` vectorised with
    ``torch.func.vmap`` over the frame's vectors), so no Jacobian is formed.

    Parameters
    ----------
    step : callable
        ``step(state, x) -> next_state`` with ``state`` of shape ``(B, n)``,
        ``x`` of shape ``(B, input_size)`` and ``next_state`` of shape
        ``(B, n)``; it must be written with differentiable torch operations
        and treat the rows of the batch independently. An ``nn.Module`` is
        copied and cast to the requested dtype and device (never modified); a
        plain function must follow the dtype of its arguments.
    state_size : int
        Number of state variables ``n``.
    input_size : int, default=None
        Number of input features, used to check the inputs; ``None`` skips the
        check. Autonomous maps take inputs with zero features.
    name : str, default=None
        Name used in messages; defaults to the function's name.

    Returns
    -------
    StepDynamics

    Examples
    --------
    The Hénon map has the exponents 0.419 and ln(0.3) - 0.419 = -1.623:

    >>> import torch
    >>> from sklyap import from_step, lyapunov_spectrum
    >>> def henon(s, x):
    ...     return torch.stack([1 - 1.4 * s[:, 0] ** 2 + s[:, 1], 0.3 * s[:, 0]], dim=1)
    >>> dyn = from_step(henon, state_size=2, input_size=0)
    >>> result = lyapunov_spectrum(dyn, torch.zeros(2, 1500, 0), warmup=100,
    ...                            initial_state=torch.full((2, 2), 0.1), device="cpu")
    >>> result.exponents.round(1)
    array([ 0.4, -1.6])
    """
    state_size = check_int(state_size, "state_size", minimum=1)
    input_size = check_int(input_size, "input_size", minimum=0, allow_none=True)
    return StepDynamics(step, state_size, input_size, name)
