"""PyTorch's recurrent modules as dynamical systems, with analytic tangent maps.

Each layer ``l`` of a stacked network reads the *new* output of the layer
below at the same time step, so one step of the whole network is

    u^0 = x_t,   h^l_{t+1} = cell_l(u^l, h^l_t),   u^{l+1} = h^l_{t+1}

and its tangent map is computed layer by layer with the same chain rule:
the tangent of ``h^l_{t+1}`` depends on the tangent of ``h^l_t`` (through
``W_hh``) and on the already computed tangent of ``u^l`` (through ``W_ih``).
No Jacobian is ever formed: each layer costs one or two matrix products of
the frame with a weight matrix, and the cell (one class per kind, see
``_cell.py``) scales their columns.
"""

import torch
from torch import nn

from ._base import Dynamics
from ._cell import LayerTangent
from ._elman import ElmanCell
from ._gru import GRUCell
from ._lstm import LSTMCell

CELLS = (ElmanCell, GRUCell, LSTMCell)
"""The cell kinds sklyap reads; adding a kind is a :class:`~._cell.Cell` and an entry here."""

SUPPORTED_MODULES = tuple(module for cell in CELLS for module in cell.modules)


def cell_of(module):
    """The :class:`~._cell.Cell` of a recurrent module."""
    for cell in CELLS:
        if isinstance(module, cell.modules):
            return cell.from_module(module)
    raise TypeError(  # pragma: no cover - callers check SUPPORTED_MODULES first
        f"no cell kind for {type(module).__name__}"
    )


def working_numbers(state_size, cell, hidden_size, k):
    """Numbers of working memory per trajectory of the QR algorithm with ``k`` vectors.

    The frames in and out, the QR's Q and R, the products of the frame with
    ``W_hh`` and ``W_ih`` (``gates * N`` columns each), and a few state vectors.
    """
    n = state_size
    return k * (4 * n + k + 2 * cell.gates * hidden_size) + 8 * n


def mark_layout_unknown(module):
    """Mark ``module`` as one whose ``batch_first`` was not recorded (a module
    rebuilt from a traced one): its dynamics then have no layout, as a cell's."""
    module._sklyap_layout_unknown = True


class NonFiniteParameterError(ValueError):
    """A network's weights hold NaN or infinite values."""


def _parameter(module, name, where, nonfinite):
    tensor = getattr(module, name, None)  # unregistered when bias=False
    if tensor is None:
        return None
    if not tensor.dtype.is_floating_point:  # complex weights would be read as their real part
        raise ValueError(
            f"{where}: parameter {name!r} holds {tensor.dtype} numbers; expected real "
            "floating-point weights"
        )
    if not bool(torch.isfinite(tensor.detach()).all()):
        if nonfinite is None:
            raise NonFiniteParameterError(
                f"{where}: parameter {name!r} holds NaN or infinite values"
            )
        nonfinite.append(name)
    return tensor.detach().clone()


def signature_of(dynamics):
    """What must agree for two systems to be stacked: ``None`` for systems that cannot.

    The system's own ``signature`` (see :class:`Dynamics`). Networks of one
    kind (``nn.RNN`` with its nonlinearity, ``nn.GRU`` or ``nn.LSTM``; a
    ``*Cell`` counts as one layer of its network), number of layers, input and
    hidden sizes and bias share a signature, and the sklyap algorithm advances
    them together as one batched system.
    """
    return getattr(dynamics, "signature", None)


class RNNShell:
    """What planning needs of a :class:`TorchRNNDynamics`, without its weights.

    A few numbers per model, so that many models can be checked up front
    without holding a copy of all their weights. It cannot step.
    """

    __slots__ = (
        "batch_first",
        "cell",
        "hidden_size",
        "input_size",
        "nonfinite_parameters",
        "signature",
        "state_size",
    )

    def __init__(self, dynamics):
        self.signature = dynamics.signature
        self.cell = dynamics.cell
        self.hidden_size = dynamics.hidden_size
        self.input_size = dynamics.input_size
        self.state_size = dynamics.state_size
        self.nonfinite_parameters = dynamics.nonfinite_parameters
        self.batch_first = dynamics.batch_first

    def working_numbers(self, k):
        return working_numbers(self.state_size, self.cell, self.hidden_size, k)


class TorchRNNDynamics(Dynamics):
    """An ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (or ``*Cell``), or a stack of them, as a dynamical system.

    Build it with :func:`sklyap.dynamics.as_dynamics`; it holds copies of the
    module's weights, so later changes to the module do not affect it, and
    computing with it never touches the module.

    Notes
    -----
    **State layout.** ``nn.RNN``/``nn.GRU`` with ``L`` layers of hidden size ``N``: the hidden
    states of all layers, ``[h0, h1, ..., h{L-1}]``, ``n = L N``.
    ``nn.LSTM``: hidden and cell state of every layer, layer by layer,
    ``[h0, c0, h1, c1, ...]``, ``n = 2 L N``; the cell state is part of the
    state because the next step depends on it. :meth:`pack_state` and
    :meth:`unpack_state` convert from and to PyTorch's ``h_n`` / ``(h_n, c_n)``.

    **Stacks of models.** :meth:`stack` joins ``M`` systems of one signature (:func:`signature_of`)
    into one whose weights are ``(M, ...)`` tensors. Its batch of ``M * B``
    trajectories is grouped by model: rows ``m * B`` to ``(m + 1) * B - 1``
    belong to model ``m``. Every step is then one batched matrix product per
    weight matrix for all models at once. Its inputs ``x`` are either
    ``(M * B, input_size)``, one row per trajectory, or ``(B, input_size)``,
    the same inputs for every model.

    Dropout between layers is a training-time device and is not applied:
    the dynamics are those of the module in evaluation mode.
    """

    n_models = 1

    def __init__(self, module, *, name=None, check_finite=True):
        if not isinstance(module, SUPPORTED_MODULES):
            raise TypeError(
                f"expected one of {', '.join(m.__name__ for m in SUPPORTED_MODULES)}, "
                f"got {type(module).__name__}"
            )
        where = name or type(module).__name__
        if getattr(module, "bidirectional", False):
            raise ValueError(
                f"{where} is bidirectional; a bidirectional network reads its "
                "input in both directions and is not a forward-in-time dynamical "
                "system. Expected bidirectional=False."
            )
        if getattr(module, "proj_size", 0):
            raise ValueError(
                f"{where} has proj_size={module.proj_size}; LSTMs with projections "
                "are not supported. Expected proj_size=0."
            )
        self.cell = cell_of(module)
        self.kind = self.cell.name
        self.module_type = type(module).__name__
        is_cell = isinstance(module, (nn.RNNCell, nn.GRUCell, nn.LSTMCell))
        self.num_layers = 1 if is_cell else module.num_layers
        self.hidden_size = module.hidden_size
        self.input_size = module.input_size
        self.bias = module.bias
        # None: no layout of its own (a cell, or a traced module that lost it).
        unknown = is_cell or getattr(module, "_sklyap_layout_unknown", False)
        self.batch_first = None if unknown else bool(module.batch_first)
        # Weights carry a leading model axis of length n_models (1 here).
        # Without check_finite, non-finite weights are listed, not refused.
        nonfinite = None if check_finite else []
        self.layers = []
        for layer in range(self.num_layers):
            suffix = "" if is_cell else f"_l{layer}"
            params = {
                key: _parameter(module, f"{key}{suffix}", where, nonfinite)
                for key in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            }
            self.layers.append({k: None if v is None else v[None] for k, v in params.items()})
        self.nonfinite_parameters = tuple(nonfinite or ())
        blocks = self.cell.blocks
        N = self.hidden_size
        self.state_size = len(blocks) * self.num_layers * N
        # Layer by layer, each layer's blocks in the cell's order: [h0, c0, h1, c1, ...].
        width = len(blocks) * N  # one layer's share of the state
        self.state_layout = tuple(
            (f"{block}{layer}", slice(layer * width + j * N, layer * width + (j + 1) * N))
            for layer in range(self.num_layers)
            for j, block in enumerate(blocks)
        )

    @property
    def signature(self):
        return (self.kind, self.num_layers, self.input_size, self.hidden_size, self.bias)

    def working_numbers(self, k):
        return working_numbers(self.state_size, self.cell, self.hidden_size, k)

    @property
    def nbytes(self):
        return sum(w.nbytes for layer in self.layers for w in layer.values() if w is not None)

    # -- conversion -----------------------------------------------------------------

    def _with_layers(self, layers, n_models):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.__dict__.pop("_single_layers", None)
        new.layers = layers
        new.n_models = n_models
        return new

    def to(self, device=None, dtype=None):
        layers = [
            {
                key: None if value is None else value.to(device=device, dtype=dtype, copy=True)
                for key, value in layer.items()
            }
            for layer in self.layers
        ]
        return self._with_layers(layers, self.n_models)

    def shell(self):
        """The signature and sizes without the weights (an :class:`RNNShell`)."""
        return RNNShell(self)

    @classmethod
    def stack(cls, systems):
        """One system advancing several systems of one signature together.

        Parameters
        ----------
        systems : sequence of TorchRNNDynamics
            Systems (single or stacked) sharing :func:`signature_of`, with
            weights of one dtype on one device.

        Returns
        -------
        TorchRNNDynamics
            With ``n_models`` the total number of models, in the given order.
        """
        systems = list(systems)
        if not systems:
            raise ValueError("stack needs at least one system")
        signatures = {signature_of(s) for s in systems}
        if None in signatures or len(signatures) != 1:
            raise ValueError(
                "only recurrent networks of one signature (kind, layers, input size, "
                f"hidden size, bias) can be stacked; got {sorted(signatures, key=str)}"
            )
        layers = [
            {
                key: None if first[key] is None else torch.cat([s.layers[i][key] for s in systems])
                for key in first
            }
            for i, first in enumerate(systems[0].layers)
        ]
        return systems[0]._with_layers(layers, sum(s.n_models for s in systems))

    def unstack(self):
        """The stacked models as a list of single systems."""
        return [
            self._with_layers(
                [
                    {k: None if v is None else v[m : m + 1] for k, v in layer.items()}
                    for layer in self.layers
                ],
                1,
            )
            for m in range(self.n_models)
        ]

    @property
    def dtype(self):
        return self.layers[0]["weight_hh"].dtype

    @property
    def device(self):
        return self.layers[0]["weight_hh"].device

    def pack_state(self, h, c=None):
        """State vectors ``(B, n)`` from PyTorch's ``h_n`` (and ``c_n``) of shape ``(L, B, N)``.

        For the ``*Cell`` modules ``h`` and ``c`` have shape ``(B, N)``.
        """
        given = {"h": h, "c": c}
        parts = {}
        for block in self.cell.blocks:
            if given.get(block) is None:
                raise ValueError(
                    f"a {self.cell.label} state needs {' and '.join(self.cell.blocks)}"
                )
            parts[block] = given[block].reshape(self.num_layers, -1, self.hidden_size)
        return torch.cat(
            [parts[block][layer] for layer in range(self.num_layers) for block in self.cell.blocks],
            dim=-1,
        )

    def unpack_state(self, state):
        """PyTorch's ``h_n`` (or ``(h_n, c_n)``), shape ``(L, B, N)``, from states ``(B, n)``.

        For the ``*Cell`` modules ``L = 1``; take ``[0]`` for their ``(B, N)`` form.
        """
        parts = tuple(
            torch.stack([state[:, sl] for name, sl in self.state_layout if name[0] == block])
            for block in self.cell.blocks
        )
        return parts[0] if len(parts) == 1 else parts

    # -- dynamics -------------------------------------------------------------------

    @staticmethod
    def _affine(u, weight, bias):
        """``u @ weight^T + bias``.

        One model: ``u`` (B, d), ``weight`` (g, d), ``bias`` (g,). A stack:
        ``weight`` (M, g, d), ``bias`` (M, g), and ``u`` (M, B, d) or rows
        ``(B, d)`` shared by all models.
        """
        if bias is None:
            return torch.matmul(u, weight.mT)
        if weight.ndim == 2:
            return torch.addmm(bias, u, weight.mT)
        if u.ndim == 3:
            return torch.baddbmm(bias[:, None, :], u, weight.mT)
        return torch.matmul(u, weight.mT).add_(bias[:, None, :])

    def _step_layers(self):
        """The layers' weights as used by a step: without the model axis for one model."""
        if self.n_models > 1:
            return self.layers
        single = self.__dict__.get("_single_layers")
        if single is None:
            single = [
                {k: None if v is None else v[0] for k, v in layer.items()} for layer in self.layers
            ]
            self.__dict__["_single_layers"] = single
        return single

    def step(self, state, x):
        return self._advance(state, x, None)[0]

    def step_tangent(self, state, x, frames):
        return self._advance(state, x, frames)

    def _advance(self, state, x, frames):
        M = self.n_models
        MB, n = state.shape
        B = MB // M
        if M * B != MB:
            raise ValueError(
                f"a stack of {M} models needs a batch of M * B states, got {MB} states"
            )
        # A stack has a leading model axis; a single model computes without it.
        lead = (M,) if M > 1 else ()
        S = state.view(*lead, B, n)
        new_state = torch.empty_like(state)
        NS = new_state.view(*lead, B, n)
        # Layer input: per trajectory (M, B, d), or shared by all models (B, d).
        u = x.view(*lead, B, -1) if x.shape[0] == MB else x
        du = None  # its tangent; zero for the driving input
        if frames is not None:
            k = frames.shape[1]
            frames = frames.contiguous()  # a no-op for the frames of the QR algorithm
            new_frames = torch.empty_like(frames)
            F, NF = frames.view(*lead, B, k, n), new_frames.view(*lead, B, k, n)
            # The frames as (M, B*k, n) rows: one (batched) GEMM per weight matrix.
            Fr, NFr = frames.view(*lead, B * k, n), new_frames.view(*lead, B * k, n)
        else:
            new_frames = None

        def rows(tangent_rows, weight):
            # (M, B*k, N) @ (M, N, gates*N) -> (M, B, k, gates*N)
            return torch.matmul(tangent_rows, weight.mT).view(*lead, B, k, -1)

        per_layer = len(self.cell.blocks)
        for layer, p in enumerate(self._step_layers()):
            # This layer's blocks of the state, as the state layout places them.
            blocks = [
                sl for _, sl in self.state_layout[layer * per_layer : (layer + 1) * per_layer]
            ]
            hs = blocks[0]
            gi = self._affine(u, p["weight_ih"], p["bias_ih"])
            gh = self._affine(S[..., hs], p["weight_hh"], p["bias_hh"])
            tangent = None
            if frames is not None:
                tangent = LayerTangent(
                    frames=tuple(F[..., sl] for sl in blocks),
                    GH=rows(Fr[..., hs], p["weight_hh"]),
                    GI=None if du is None else rows(du, p["weight_ih"]),
                    out=tuple(NF[..., sl] for sl in blocks),
                )
            self.cell.advance(
                tuple(S[..., sl] for sl in blocks),
                gi,
                gh,
                tuple(NS[..., sl] for sl in blocks),
                tangent,
            )
            u = NS[..., hs]
            du = None if frames is None else NFr[..., hs]
        return new_state, new_frames

    def __repr__(self):
        stacked = f", n_models={self.n_models}" if self.n_models > 1 else ""
        return (
            f"TorchRNNDynamics({self.module_type}, input_size={self.input_size}, "
            f"hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
            f"bias={self.bias}{self.cell.extra_repr()}, state_size={self.state_size}{stacked})"
        )
