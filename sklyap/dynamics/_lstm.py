"""``nn.LSTM`` and ``nn.LSTMCell``, with PyTorch's gate order ``i, f, g, o``.

    c' = f c + i g,   h' = o tanh(c')

The cell state ``c`` is part of the state: the next step depends on it.
"""

import torch
from torch import nn

from ._cell import Cell, dsigmoid, dtanh, per_trajectory


class LSTMCell(Cell):
    """The long short-term memory cell; its state blocks are ``h`` and ``c``.

    Its tangent: ``dc' = f dc + c s'(a_f) G_f + g s'(a_i) G_i + i tanh'(a_g) G_g``
    and ``dh' = tanh(c') s'(a_o) G_o + o tanh'(c') dc'``, with ``G = GH + GI``.
    """

    name = "lstm"
    label = "LSTM"
    modules = (nn.LSTM, nn.LSTMCell)
    gates = 4
    blocks = ("h", "c")

    def advance(self, state, gi, gh, out, tangent=None):
        _, c = state
        N = c.shape[-1]
        a = gi.add_(gh)
        a_i, a_f, a_g, a_o = (a[..., j * N : (j + 1) * N] for j in range(4))
        i = torch.sigmoid(a_i)
        f = torch.sigmoid(a_f)
        g = torch.tanh(a_g)
        o = torch.sigmoid(a_o)
        h_new, c_new = out
        torch.add(f * c, i * g, out=c_new)
        tanh_c = torch.tanh(c_new)
        torch.mul(o, tanh_c, out=h_new)
        if tangent is None:
            return
        G = tangent.GH if tangent.GI is None else tangent.GH.add_(tangent.GI)
        dh_new, dc_new = tangent.out
        torch.mul(tangent.frames[1], per_trajectory(f), out=dc_new)
        dc_new.addcmul_(G[..., :N], per_trajectory(dsigmoid(a_i, i) * g))
        dc_new.addcmul_(G[..., N : 2 * N], per_trajectory(dsigmoid(a_f, f) * c))
        dc_new.addcmul_(G[..., 2 * N : 3 * N], per_trajectory(dtanh(a_g) * i))
        torch.mul(G[..., 3 * N :], per_trajectory(dsigmoid(a_o, o) * tanh_c), out=dh_new)
        dh_new.addcmul_(dc_new, per_trajectory(o * dtanh(c_new)))
