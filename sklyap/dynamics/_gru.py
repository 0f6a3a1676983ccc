"""``nn.GRU`` and ``nn.GRUCell``, with PyTorch's gate order ``r, z, n``.

    r = s(a_r),  z = s(a_z),  n = tanh(W_in u + b_in + r (W_hn h + b_hn)),
    h' = (1 - z) n + z h

The reset gate multiplies ``W_hn h + b_hn``, bias included.
"""

import torch
from torch import nn

from ._cell import Cell, dsigmoid, dtanh, per_trajectory


class GRUCell(Cell):
    """The gated recurrent unit.

    Its tangent: ``dh' = (1 - z) dn + z dh + (h - n) dz`` with
    ``dz = s'(a_z) G_z``, ``dr = s'(a_r) G_r`` and
    ``dn = tanh'(a_n) (GI_n + dr (W_hn h + b_hn) + r GH_n)``.
    """

    name = "gru"
    label = "GRU"
    modules = (nn.GRU, nn.GRUCell)
    gates = 3

    def advance(self, state, gi, gh, out, tangent=None):
        (h,) = state
        N = h.shape[-1]
        a_r = gi[..., :N] + gh[..., :N]
        a_z = gi[..., N : 2 * N] + gh[..., N : 2 * N]
        r = torch.sigmoid(a_r)
        z = torch.sigmoid(a_z)
        hn = gh[..., 2 * N :]  # W_hn h + b_hn, which the reset gate multiplies
        a_n = gi[..., 2 * N :] + r * hn
        n = torch.tanh(a_n)
        torch.add(n, z * (h - n), out=out[0])
        if tangent is None:
            return
        GH, GI = tangent.GH, tangent.GI
        keep = torch.sigmoid(-a_z)  # 1 - z, without rounding to 0 in float32
        dn_coef = dtanh(a_n) * keep
        coef_r = dsigmoid(a_r, r) * hn * dn_coef
        coef_z = dsigmoid(a_z, z) * (h - n)
        if GI is not None:
            GH[..., : 2 * N].add_(GI[..., : 2 * N])
        dh_new = tangent.out[0]
        torch.mul(tangent.frames[0], per_trajectory(z), out=dh_new)
        dh_new.addcmul_(GH[..., :N], per_trajectory(coef_r))
        dh_new.addcmul_(GH[..., N : 2 * N], per_trajectory(coef_z))
        dh_new.addcmul_(GH[..., 2 * N :], per_trajectory(r * dn_coef))
        if GI is not None:
            dh_new.addcmul_(GI[..., 2 * N :], per_trajectory(dn_coef))
