"""The contract of one kind of recurrent cell, seen as one layer of a network.

A cell kind knows its gates, the blocks of its per-layer state, one step of a
layer and that step's tangent map. Everything that is the same for every kind
(weights per layer, stacking models, the chain rule between layers, the state
layout) lives in :class:`~sklyap.dynamics.TorchRNNDynamics`; adding a kind is
one subclass of :class:`Cell` in a module of its own, registered in
``CELLS``.

Gate derivatives are written so that they do not underflow in float32:
``tanh'(a) = 4 e^{-2|a|} / (1 + e^{-2|a|})^2`` and
``sigmoid'(a) = sigmoid(a) sigmoid(-a)`` (``1 - tanh(a)**2`` and
``s (1 - s)`` round to exactly zero long before the true value does).
"""

from typing import NamedTuple

import torch


def dtanh(a):
    """``tanh'(a)``, without underflow to zero for large ``|a|``."""
    e = torch.exp(-2.0 * a.abs())
    return 4.0 * e / (1.0 + e) ** 2


def dsigmoid(a, s):
    """``sigmoid'(a)`` given ``s = sigmoid(a)``, without underflow to zero."""
    return s * torch.sigmoid(-a)


def per_trajectory(coef):
    """Coefficients of shape ``(..., B, N)`` broadcast over a frame's ``k`` rows."""
    return coef.unsqueeze(-2)


class LayerTangent(NamedTuple):
    """The tangent quantities of one layer at one step.

    Shapes: ``(..., B, k, N)`` for the frame blocks, ``(..., B, k, gates * N)``
    for the products, where ``...`` is the model axis of a stack (absent for
    one model).
    """

    frames: tuple
    """The layer's blocks of the incoming frame, in the order of ``Cell.blocks``."""
    GH: torch.Tensor
    """The frame's ``h`` block times ``W_hh^T``: ``dh @ W_hh^T``."""
    GI: torch.Tensor
    """The tangent of the layer's input times ``W_ih^T``; None for the first layer,
    whose input (the driving input) has no tangent."""
    out: tuple
    """Views to write the layer's blocks of the outgoing frame into."""


class Cell:
    """One kind of recurrent cell.

    Attributes
    ----------
    name : str
        Short name, also part of a network's stacking signature.
    label : str
        Name for people (tables, messages).
    modules : tuple of nn.Module classes
        The PyTorch modules of this kind (the network and its ``*Cell``).
    gates : int
        Gate blocks stacked in the rows of ``W_ih`` and ``W_hh``.
    blocks : tuple of str
        Blocks of one layer's state, in their order in the state vector; the
        first is the hidden state ``h`` the next layer reads.
    """

    name = None
    label = None
    modules = ()
    gates = 1
    blocks = ("h",)

    @classmethod
    def from_module(cls, module):
        """The cell of ``module`` (one of ``modules``)."""
        return cls()

    def advance(self, state, gi, gh, out, tangent=None):
        """One step of one layer.

        Parameters
        ----------
        state : tuple of Tensor of shape (..., B, N)
            The layer's state blocks, in the order of ``blocks``.
        gi : Tensor of shape (..., B, gates * N)
            ``W_ih u + b_ih`` for the layer's input ``u``; may be overwritten.
        gh : Tensor of shape (..., B, gates * N)
            ``W_hh h + b_hh``; may be overwritten.
        out : tuple of Tensor of shape (..., B, N)
            Views to write the new state blocks into.
        tangent : LayerTangent or None
            The tangent quantities, or None to advance the state alone. ``GH``
            and ``GI`` may be overwritten.
        """
        raise NotImplementedError

    def extra_repr(self):
        """What ``repr`` of a network of this kind adds (``", nonlinearity='relu'"``)."""
        return ""

    def __eq__(self, other):
        return type(other) is type(self) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"
