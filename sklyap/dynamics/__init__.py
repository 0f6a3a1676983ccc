"""Recurrent networks as dynamical systems.

:func:`as_dynamics` is the one door from "a model" to a :class:`Dynamics`;
:func:`from_step` brings any batched step function (custom cells, classic
maps) through the same door.
"""

from collections.abc import Mapping

import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from ._base import Dynamics
from ._step import StepDynamics, from_step
from ._torch_rnn import (
    SUPPORTED_MODULES,
    NonFiniteParameterError,
    TorchRNNDynamics,
    mark_layout_unknown,
    signature_of,
)

__all__ = [
    "Dynamics",
    "NonFiniteParameterError",
    "StepDynamics",
    "TorchRNNDynamics",
    "as_dynamics",
    "from_step",
    "mark_layout_unknown",
    "recurrent_module",
    "signature_of",
]

_SUPPORTED_NAMES = ", ".join(f"nn.{m.__name__}" for m in SUPPORTED_MODULES)


def torch_module_of(obj):
    """``obj`` itself, or the module of a fitted skorch net (its ``module_``)."""
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(getattr(obj, "module_", None), nn.Module):
        return obj.module_
    if hasattr(obj, "initialize") and hasattr(obj, "module"):  # a skorch net, not initialised
        raise NotFittedError(
            f"this {type(obj).__name__} is not initialized yet: its module_ exists "
            "after net.fit(...) or net.initialize() (and net.load_params(...) for saved weights)"
        )
    return obj


def _recurrent_candidates(module):
    return [
        (name, sub)
        for name, sub in module.named_modules()
        if name and isinstance(sub, SUPPORTED_MODULES)
    ]


def _describe(candidates):
    return ", ".join(f"{name!r} ({type(sub).__name__})" for name, sub in candidates)


def as_dynamics(obj, *, rnn=None, check_finite=True):
    """Turn a model into a :class:`Dynamics`.

    Parameters
    ----------
    obj : nn.Module, Dynamics or fitted skorch net
        One of ``nn.RNN`` (tanh or relu), ``nn.GRU``, ``nn.LSTM``,
        ``nn.RNNCell``, ``nn.GRUCell``, ``nn.LSTMCell`` (any number of layers,
        with or without bias, ``batch_first`` either way); an ``nn.Module``
        that contains exactly one of these (or several, with ``rnn`` naming
        one); a fitted skorch ``NeuralNet`` (its ``module_`` is used); or a
        :class:`Dynamics`, returned as it is. A TorchScript module (scripted
        or traced) is read through its parameters; a state_dict goes through
        :func:`sklyap.load_checkpoint` first. Custom cells enter through
        :func:`from_step`.
    rnn : str, default=None
        Attribute path of the recurrent module inside ``obj`` (for example
        ``"encoder.rnn"``), needed when ``obj`` contains several.
    check_finite : bool, default=True
        Refuse weights holding NaN or inf (:class:`NonFiniteParameterError`,
        a ``ValueError``). With False they are accepted and listed in the
        result's ``nonfinite_parameters``, for callers that report such
        networks rather than stop.

    Returns
    -------
    Dynamics
        For the built-in modules a :class:`TorchRNNDynamics` holding copies of
        the weights: the model itself is never modified or moved.

    Raises
    ------
    TypeError
        When ``obj`` is not a model sklyap can read.
    ValueError
        For bidirectional networks, LSTMs with ``proj_size > 0``, weights
        holding NaN or inf (:class:`NonFiniteParameterError`), or an ambiguous
        or unknown ``rnn``.

    Examples
    --------
    >>> from torch import nn
    >>> from sklyap.dynamics import as_dynamics
    >>> class Classifier(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.rnn = nn.LSTM(3, 8, num_layers=2, batch_first=True)
    ...         self.head = nn.Linear(8, 10)
    >>> dyn = as_dynamics(Classifier())
    >>> dyn.state_size, [name for name, _ in dyn.state_layout]
    (32, ['h0', 'c0', 'h1', 'c1'])
    """
    if rnn is not None and not isinstance(rnn, str):
        raise TypeError(f"rnn must be an attribute path such as 'encoder.rnn', got {rnn!r}")
    if isinstance(obj, Dynamics):
        if rnn is not None:
            raise ValueError(f"rnn={rnn!r} was given but obj is already a Dynamics")
        n_models = getattr(obj, "n_models", 1)
        if n_models > 1:
            raise ValueError(
                f"obj is a stack of {n_models} models; pass the models as a list "
                "(for instance obj.unstack()), so that each gets its own result"
            )
        return obj
    name, target = recurrent_module(obj, rnn=rnn)
    return TorchRNNDynamics(target, name=name, check_finite=check_finite)


def recurrent_module(obj, *, rnn=None):
    """The recurrent module of a model, and its attribute path.

    Parameters
    ----------
    obj : nn.Module or fitted skorch net
        A recurrent module (``nn.RNN``, ``nn.GRU``, ``nn.LSTM`` or their
        ``*Cell``), or a module containing exactly one (or several, with
        ``rnn`` naming one). A TorchScript module (scripted or traced) is
        read through its parameters.
    rnn : str, default=None
        Attribute path of the recurrent module inside ``obj``.

    Returns
    -------
    name : str or None
        The attribute path (None when ``obj`` is the recurrent module).
    module : nn.Module
        The recurrent module itself (not a copy; for TorchScript an eager
        copy built from its parameters).

    Raises
    ------
    TypeError, ValueError
        As :func:`as_dynamics`, for objects that hold no recurrent module or
        several without ``rnn``.
    """
    if rnn is not None and not isinstance(rnn, str):
        raise TypeError(f"rnn must be an attribute path such as 'encoder.rnn', got {rnn!r}")
    obj = torch_module_of(obj)
    if isinstance(obj, Mapping):
        raise TypeError(
            f"got a {type(obj).__name__} (a state_dict or checkpoint dict?), not a model; "
            "build the model from it with sklyap.load_checkpoint(state_dict) (it reads the "
            "kind and sizes from the weights), or model.load_state_dict(state_dict)"
        )
    if isinstance(obj, torch.jit.ScriptModule):
        from .._state_dict import from_torchscript

        return from_torchscript(obj, rnn=rnn)
    if not isinstance(obj, nn.Module):
        raise TypeError(
            f"expected a PyTorch recurrent model ({_SUPPORTED_NAMES}, a module "
            f"containing one, or a Dynamics from sklyap.from_step), got "
            f"{type(obj).__name__}"
        )
    if rnn is not None:
        try:
            target = obj.get_submodule(rnn)
        except AttributeError:
            candidates = _recurrent_candidates(obj)
            hint = f"; its recurrent modules are {_describe(candidates)}" if candidates else ""
            raise ValueError(f"{type(obj).__name__} has no submodule {rnn!r}{hint}") from None
        if not isinstance(target, SUPPORTED_MODULES):
            raise TypeError(
                f"submodule {rnn!r} is a {type(target).__name__}; expected one of "
                f"{_SUPPORTED_NAMES}"
            )
        return rnn, target
    if isinstance(obj, SUPPORTED_MODULES):
        return None, obj
    candidates = _recurrent_candidates(obj)
    if not candidates:
        raise TypeError(
            f"{type(obj).__name__} contains no recurrent module sklyap can read "
            f"(expected one of {_SUPPORTED_NAMES}); wrap custom cells with "
            "sklyap.from_step(step, state_size)"
        )
    if len(candidates) > 1:
        raise ValueError(
            f"{type(obj).__name__} contains {len(candidates)} recurrent modules: "
            f"{_describe(candidates)}; choose one with rnn='<path>'"
        )
    return candidates[0]
