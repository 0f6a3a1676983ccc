"""Models as the transformer reads them: each read once, with its own inputs.

A :class:`ModelSource` reads a model into its dynamics and, with an input
encoder, encodes and checks the model's own inputs; :func:`run_spectra
<sklyap.lyapunov.run_spectra>` plans from its shell and reads it when its
batch is sent.
"""

import copy

import torch

from .dynamics import as_dynamics, torch_module_of
from .lyapunov import SystemSource

__all__ = ["ModelSource", "NonFiniteInputs", "check_width", "encode_inputs"]


class NonFiniteInputs(ValueError):
    """An input encoder returned NaN or infinite values."""

    reason = "input_encoder returned NaN or infinite values"


def eval_copy(model):
    """A deep copy of a model (or fitted skorch net) with its module in evaluation mode."""
    model = copy.deepcopy(model)
    module = torch_module_of(model)
    if isinstance(module, torch.nn.Module):
        module.eval()
    return model


def encode_inputs(encoder, model, raw, index):
    """The recurrent core's inputs for model ``index``: ``raw`` (an array of
    task inputs, batch first) through ``encoder``, as a float64 tensor."""
    # A copy: an encoder that works in place must not change the caller's inputs.
    raw = torch.tensor(raw)
    if raw.is_floating_point():
        raw = raw.to(torch.float64)
    with torch.no_grad():
        if isinstance(encoder, str):
            model = torch_module_of(model)
            if not isinstance(model, torch.nn.Module):
                raise TypeError(
                    f"model {index}: input_encoder={encoder!r} names a submodule, "
                    f"but the model is a {type(model).__name__}"
                )
            try:
                module = model.get_submodule(encoder)
            except AttributeError:
                raise ValueError(
                    f"model {index} ({type(model).__name__}) has no submodule {encoder!r}"
                ) from None
            module = copy.deepcopy(module).to(device="cpu", dtype=torch.float64).eval()
            encoded = module(raw)
        else:
            # An evaluation-mode copy: no dropout, and the user's model is
            # untouched whatever the encoder does.
            encoded = encoder(eval_copy(model), raw)
    if not isinstance(encoded, torch.Tensor) or encoded.ndim != 3:
        shape = tuple(encoded.shape) if hasattr(encoded, "shape") else type(encoded).__name__
        raise ValueError(
            f"model {index}: input_encoder returned {shape}; expected a tensor of "
            "shape (n_trajectories, n_time_steps, input_size)"
        )
    return encoded.detach().to(device="cpu", dtype=torch.float64)


def check_width(width, dynamics, index):
    """Refuse inputs of ``width`` features for a model that expects another."""
    if dynamics.input_size is not None and width != dynamics.input_size:
        raise ValueError(
            f"model {index}: the inputs have {width} features per step "
            f"but the network expects input_size={dynamics.input_size}"
        )


class ModelSource(SystemSource):
    """One model as ``transform`` reads it, held until its batch is sent.

    Reads ``model`` into its dynamics at once (refusing it with its
    ``index``); :meth:`encode` encodes and checks its own inputs. After
    :meth:`release` only the shell is kept, and :meth:`read` reads the model
    again.

    Parameters
    ----------
    model : model
        Anything :func:`~sklyap.dynamics.as_dynamics` reads.
    index : int
        The model's place in the caller's list, for messages.
    rnn : str or None
        The recurrent module's path in the model.
    on_error : {"raise", "nan"}
        ``"raise"``: weights or encoded inputs holding NaN or inf raise.
        ``"nan"``: such weights are listed in the shell's
        ``nonfinite_parameters`` (:func:`~sklyap.lyapunov.run_spectra` then
        refuses the model), and such inputs refuse it (:attr:`refused`).
    encoder : str or callable, default=None
        The input encoder; ``None`` for models driven by shared inputs.
    inputs : ndarray of shape (B, T, ...), default=None
        The raw task inputs the encoder maps, batch first.
    """

    def __init__(self, model, index, *, rnn, on_error, encoder=None, inputs=None):
        self._model, self._index, self._rnn, self._on_error = model, index, rnn, on_error
        self._encoder, self._raw = encoder, inputs
        try:
            system = self._dynamics()
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"model {index}: {exc}") from None
        super().__init__(system)

    def _dynamics(self):
        return as_dynamics(self._model, rnn=self._rnn, check_finite=self._on_error == "raise")

    def _inputs_of(self, dynamics):
        inputs = encode_inputs(self._encoder, self._model, self._raw, self._index)
        expected = tuple(self._raw.shape[:2])
        if tuple(inputs.shape[:2]) != expected:
            raise ValueError(
                f"model {self._index}: input_encoder returned inputs of shape "
                f"{tuple(inputs.shape)}; it must keep the trajectories and time steps of "
                f"the inputs, {expected}"
            )
        if not bool(torch.isfinite(inputs).all()):
            raise NonFiniteInputs(f"model {self._index}: {NonFiniteInputs.reason}")
        check_width(inputs.shape[-1], dynamics, self._index)
        return inputs

    @property
    def nbytes(self):
        """Bytes of tensor data held of the model: its copied weights and its
        encoded inputs (resident memory adds each tensor's overhead)."""
        system_bytes = 0 if self._system is None else self._system.nbytes
        return system_bytes + (0 if self._inputs is None else self._inputs.nbytes)

    def encode(self):
        """Encode and check the model's inputs; with ``on_error="nan"``, refuse
        the model if they are not finite. A model refused for its weights is
        not encoded."""
        if self.shell.nonfinite_parameters:
            return
        try:
            inputs = self._inputs_of(self.shell)
        except NonFiniteInputs:
            if self._on_error == "raise":
                raise
            self.refused = NonFiniteInputs.reason
            self.release()
            return
        if self._system is not None:
            self._inputs = inputs

    def release(self):
        """Keep only the shell; :meth:`read` reads the model again."""
        self._system = self._inputs = None

    def read(self):
        if self._system is None:
            system = self._dynamics()
            return system, None if self._encoder is None else self._inputs_of(system)
        held = self._system, self._inputs
        self.release()  # the batch owns them now
        return held
