"""``nn.RNN`` and ``nn.RNNCell``: ``h' = act(W_ih u + b_ih + W_hh h + b_hh)``."""

import torch
from torch import nn

from ._cell import Cell, dtanh, per_trajectory


class ElmanCell(Cell):
    """The Elman cell, with ``tanh`` or ``relu``; its tangent is ``dh' = act'(a) (G_I + G_H)``."""

    modules = (nn.RNN, nn.RNNCell)
    gates = 1

    def __init__(self, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):  # pragma: no cover - torch rejects it
            raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.name = f"rnn_{nonlinearity}"
        self.label = f"RNN {nonlinearity}"

    @classmethod
    def from_module(cls, module):
        return cls(module.nonlinearity)

    def advance(self, state, gi, gh, out, tangent=None):
        a = gi.add_(gh)
        if self.nonlinearity == "tanh":
            out[0].copy_(torch.tanh(a))
            slope = dtanh(a)
        else:
            out[0].copy_(torch.relu(a))
            slope = (a > 0).to(a.dtype)
        if tangent is not None:
            G = tangent.GH if tangent.GI is None else tangent.GH.add_(tangent.GI)
            torch.mul(G, per_trajectory(slope), out=tangent.out[0])

    def extra_repr(self):
        return f", nonlinearity={self.nonlinearity!r}"
