"""Recurrent modules as dynamical systems: steps and analytic tangents.

The reference for every tangent is ``torch.func.jacrev`` of the module's own
forward pass, so the analytic formulas are checked against PyTorch's
implementation of the network, not against a second copy of our equations.
"""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from sklyap import as_dynamics, from_step, lyapunov_spectrum
from sklyap.dynamics import StepDynamics, TorchRNNDynamics

from helpers import ALL_KINDS, D, N, make_module


def _reference_step(module, x):
    """The module's own one-step map on a flat state, in sklyap's layout.

    Layout: RNN/GRU ``[h0, h1, ...]``; LSTM ``[h0, c0, h1, c1, ...]``.
    """
    cell = isinstance(module, (nn.RNNCell, nn.GRUCell, nn.LSTMCell))
    lstm = isinstance(module, (nn.LSTM, nn.LSTMCell))
    L = 1 if cell else module.num_layers

    def f(state):
        if lstm:
            hc = state.reshape(L, 2, N)
            h, c = hc[:, 0], hc[:, 1]
            if cell:
                h_new, c_new = module(x[None], (h, c))
            else:
                _, (h_new, c_new) = module(x.reshape(1, 1, D), (h[:, None], c[:, None]))
            return torch.stack([h_new.reshape(L, N), c_new.reshape(L, N)], dim=1).reshape(-1)
        h = state.reshape(L, N)
        if cell:
            return module(x[None], h).reshape(-1)
        _, h_new = module(x.reshape(1, 1, D), h[:, None])
        return h_new.reshape(-1)

    return f


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind,num_layers", ALL_KINDS)
def test_tangent_equals_jacrev_of_module_forward(kind, num_layers, bias):
    module = make_module(kind, num_layers, bias=bias)
    dyn = as_dynamics(module)
    n = dyn.state_size
    gen = torch.Generator().manual_seed(1)
    B = 3
    states = torch.randn(B, n, generator=gen, dtype=torch.float64)
    xs = 2 * torch.randn(B, D, generator=gen, dtype=torch.float64)
    frames = torch.eye(n, dtype=torch.float64).expand(B, n, n).contiguous()
    next_states, pushed = dyn.step_tangent(states, xs, frames)
    for b in range(B):
        f = _reference_step(module, xs[b])
        J = torch.func.jacrev(f)(states[b])
        # Rows of the frame are tangent vectors: row j of the output is J e_j.
        np.testing.assert_allclose(pushed[b].T.numpy(), J.detach().numpy(), rtol=0, atol=1e-10)
        np.testing.assert_allclose(
            next_states[b].numpy(), f(states[b]).detach().numpy(), rtol=0, atol=1e-12
        )
    # A partial frame of arbitrary (not unit) vectors is carried the same way.
    partial = torch.randn(B, 2, n, generator=gen, dtype=torch.float64)
    _, pushed_partial = dyn.step_tangent(states, xs, partial)
    expected = partial @ pushed  # rows J v = V @ J^T, and pushed[b] is J^T
    np.testing.assert_allclose(pushed_partial.numpy(), expected.numpy(), atol=1e-10)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["rnn_tanh", "gru", "lstm"])
def test_steps_reproduce_module_over_a_sequence(kind, batch_first):
    module = make_module(kind, num_layers=2, batch_first=batch_first, scale=1.0)
    dyn = as_dynamics(module)
    gen = torch.Generator().manual_seed(2)
    B, T = 4, 7
    x = torch.randn(B, T, D, generator=gen, dtype=torch.float64)
    state = torch.randn(B, dyn.state_size, generator=gen, dtype=torch.float64)
    hidden = dyn.unpack_state(state)
    with torch.no_grad():
        _, final = module(x if batch_first else x.transpose(0, 1), hidden)
    expected = dyn.pack_state(*final) if kind == "lstm" else dyn.pack_state(final)
    s = state
    for t in range(T):
        s = dyn.step(s, x[:, t])
    np.testing.assert_allclose(s.numpy(), expected.numpy(), atol=1e-12)


def test_state_layout_and_packing_round_trip():
    dyn = as_dynamics(make_module("lstm", num_layers=2))
    assert dyn.state_size == 4 * N
    assert dyn.state_layout == (
        ("h0", slice(0, N)),
        ("c0", slice(N, 2 * N)),
        ("h1", slice(2 * N, 3 * N)),
        ("c1", slice(3 * N, 4 * N)),
    )
    state = torch.arange(2 * 4 * N, dtype=torch.float64).reshape(2, 4 * N)
    h, c = dyn.unpack_state(state)
    assert h.shape == (2, 2, N)
    np.testing.assert_array_equal(h[1, 0].numpy(), state[0, 2 * N : 3 * N].numpy())
    np.testing.assert_array_equal(c[0, 1].numpy(), state[1, N : 2 * N].numpy())
    np.testing.assert_array_equal(dyn.pack_state(h, c).numpy(), state.numpy())
    gru = as_dynamics(make_module("gru", num_layers=3))
    assert gru.state_size == 3 * N
    assert [name for name, _ in gru.state_layout] == ["h0", "h1", "h2"]


@pytest.mark.parametrize("kind", [kind for kind, layers in ALL_KINDS if layers == 1])
def test_each_cell_kind_matches_pytorchs_weights_and_state(kind):
    module = make_module(kind)
    dyn = as_dynamics(module)
    cell = dyn.cell
    # The cell's gates are the blocks of PyTorch's stacked weight rows.
    weight = getattr(module, "weight_hh", None)
    weight = module.weight_hh_l0 if weight is None else weight
    assert weight.shape == (cell.gates * N, N)
    assert isinstance(module, cell.modules)
    # Its blocks make the state: h first, which the next layer reads.
    assert cell.blocks[0] == "h" and dyn.state_size == len(cell.blocks) * N
    assert [name for name, _ in dyn.state_layout] == [f"{b}0" for b in cell.blocks]
    assert dyn.signature == (cell.name, 1, D, N, True)
    # Planning needs the same of the shell as of the system.
    assert dyn.shell().working_numbers(3) == dyn.working_numbers(3)


def test_gate_derivatives_do_not_underflow_in_float32():
    """Saturated tanh units keep a tiny, nonzero slope: no ``1 - tanh**2`` rounding to 0."""
    rnn = nn.RNN(1, 1, bias=False)
    with torch.no_grad():
        rnn.weight_ih_l0.fill_(1.0)
        rnn.weight_hh_l0.fill_(1.0)
    dyn = as_dynamics(rnn).to(dtype=torch.float32)
    state = torch.zeros(1, 1)
    x = torch.full((1, 1), 20.0)  # tanh(20) == 1 exactly in float32
    _, pushed = dyn.step_tangent(state, x, torch.ones(1, 1, 1))
    true_slope = 1.0 / np.cosh(np.float64(20.0)) ** 2  # about 1.7e-17
    assert 1.0 - torch.tanh(torch.tensor(20.0)) ** 2 == 0  # what naive code would use
    np.testing.assert_allclose(pushed.item(), true_slope, rtol=1e-5)


class _Classifier(nn.Module):
    def __init__(self, core=None):
        super().__init__()
        self.embed = nn.Embedding(10, D)
        self.encoder = nn.Sequential()
        self.encoder.add_module("rnn", core if core is not None else nn.GRU(D, N))
        self.head = nn.Linear(N, 2)


class _TwoCores(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.LSTM(D, N)
        self.dec = nn.GRU(N, N)


def test_container_module_is_searched():
    model = _Classifier()
    dyn = as_dynamics(model)
    assert isinstance(dyn, TorchRNNDynamics) and dyn.kind == "gru"
    picked = as_dynamics(_TwoCores(), rnn="dec")
    assert picked.kind == "gru" and picked.input_size == N
    assert as_dynamics(model, rnn="encoder.rnn").kind == "gru"


def test_skorch_like_object_uses_its_module():
    class FittedNet:
        module_ = _Classifier(nn.LSTM(D, N))

    assert as_dynamics(FittedNet()).kind == "lstm"


def test_dynamics_pass_through_and_from_step():
    dyn = from_step(lambda s, x: s, 3)
    assert as_dynamics(dyn) is dyn
    with pytest.raises(ValueError, match="already a Dynamics"):
        as_dynamics(dyn, rnn="x")


@pytest.mark.parametrize(
    "obj,exc,match",
    [
        (object(), TypeError, "expected a PyTorch recurrent model"),
        ("lstm", TypeError, "got str"),
        (nn.Linear(3, 3), TypeError, "contains no recurrent module"),
        (nn.Sequential(nn.Linear(3, 3), nn.Tanh()), TypeError, "contains no recurrent module"),
        (nn.LSTM(3, 4, bidirectional=True), ValueError, "bidirectional"),
        (nn.GRU(3, 4, bidirectional=True), ValueError, "bidirectional"),
        (nn.LSTM(3, 4, proj_size=2), ValueError, "proj_size=2"),
        (_TwoCores(), ValueError, r"2 recurrent modules: 'enc' \(LSTM\), 'dec' \(GRU\)"),
    ],
)
def test_unreadable_models_raise_clear_errors(obj, exc, match):
    with pytest.raises(exc, match=match):
        as_dynamics(obj)


def test_bad_rnn_path_lists_candidates():
    with pytest.raises(ValueError, match=r"no submodule 'decoder'.*'enc' \(LSTM\)"):
        as_dynamics(_TwoCores(), rnn="decoder")
    with pytest.raises(TypeError, match="submodule 'head' is a Linear"):
        as_dynamics(_Classifier(), rnn="head")
    with pytest.raises(TypeError, match="attribute path"):
        as_dynamics(_Classifier(), rnn=3)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_rejected(value):
    model = _Classifier(nn.LSTM(D, N))
    with torch.no_grad():
        model.encoder.rnn.weight_hh_l0[2, 1] = value
    with pytest.raises(ValueError, match="encoder.rnn: parameter 'weight_hh_l0' holds NaN"):
        as_dynamics(model)


def test_user_model_is_never_modified_or_moved():
    model = _Classifier(nn.LSTM(D, N, num_layers=2, dropout=0.5, batch_first=True))
    model.train()
    before = copy.deepcopy(model.state_dict())
    grads = [p.requires_grad for p in model.parameters()]
    inputs = torch.randn(2, 30, D)
    result = lyapunov_spectrum(model, inputs, dtype="float64", device="cpu", warmup=5)
    assert result.state_size == 4 * N
    after = model.state_dict()
    for key, value in before.items():
        assert after[key].dtype == value.dtype == torch.float32
        assert after[key].device == value.device
        assert torch.equal(after[key], value), key
    assert [p.requires_grad for p in model.parameters()] == grads
    assert model.training and all(p.grad is None for p in model.parameters())


def test_snapshot_is_independent_of_later_training():
    rnn = nn.RNN(D, N)
    dyn = as_dynamics(rnn)
    saved = dyn.layers[0]["weight_hh"].clone()
    with torch.no_grad():
        rnn.weight_hh_l0.add_(1.0)
    assert torch.equal(dyn.layers[0]["weight_hh"], saved)


# -- from_step -------------------------------------------------------------------


def _custom_cell_step(params):
    """A minimal gated cell written by hand: h' = (1-z) h + z tanh(W h + U x)."""
    W, U, Wz = params

    def step(h, x):
        z = torch.sigmoid(h @ Wz.T)
        return (1 - z) * h + z * torch.tanh(h @ W.T + x @ U.T)

    return step


def test_from_step_tangent_equals_jacrev():
    gen = torch.Generator().manual_seed(3)
    n, d = 6, 2
    params = [
        torch.randn(n, n, generator=gen, dtype=torch.float64) * 1.5,
        torch.randn(n, d, generator=gen, dtype=torch.float64),
        torch.randn(n, n, generator=gen, dtype=torch.float64),
    ]
    step = _custom_cell_step(params)
    dyn = from_step(step, n, input_size=d)
    B = 2
    states = torch.randn(B, n, generator=gen, dtype=torch.float64)
    xs = torch.randn(B, d, generator=gen, dtype=torch.float64)
    frames = torch.randn(B, 4, n, generator=gen, dtype=torch.float64)
    next_states, pushed = dyn.step_tangent(states, xs, frames)
    for b in range(B):
        J = torch.func.jacrev(lambda s, b=b: step(s[None], xs[b][None])[0])(states[b])
        np.testing.assert_allclose(pushed[b].numpy(), (frames[b] @ J.T).numpy(), atol=1e-12)
        np.testing.assert_allclose(
            next_states[b].numpy(), step(states[b : b + 1], xs[b : b + 1])[0].numpy()
        )


def test_from_step_systems_in_threads_equal_serial():
    # torch.func.jvp's forward-AD levels are global to the process: threads
    # differentiating at once used to fail ("invalid index") or abort the process.
    from joblib import parallel_config

    gen = torch.Generator().manual_seed(4)
    systems = []
    for _ in range(6):
        params = [torch.randn(5, *shape, generator=gen, dtype=torch.float64) for shape in
                  [(5,), (2,), (5,)]]  # fmt: skip
        systems.append(from_step(_custom_cell_step(params), 5, input_size=2))
    x = torch.randn(3, 120, 2, generator=gen, dtype=torch.float64)
    serial = lyapunov_spectrum(systems, x, warmup=10, n_jobs=1)
    with parallel_config(backend="threading", n_jobs=3):
        threaded = lyapunov_spectrum(systems, x, warmup=10, memory_budget=1, n_jobs=3)
    for one, other in zip(serial, threaded):
        np.testing.assert_array_equal(other.exponents, one.exponents)


def test_from_step_module_is_cast_on_a_copy():
    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, h, x):
            return torch.tanh(self.lin(h) + x)

    cell = Cell()  # float32 parameters
    before = copy.deepcopy(cell.state_dict())
    result = lyapunov_spectrum(
        from_step(cell, 4, input_size=4),
        torch.randn(2, 50, 4),
        warmup=10,
        dtype=torch.float64,
        device="cpu",
    )
    assert result.exponents.shape == (4,)
    assert cell.lin.weight.dtype == torch.float32
    assert all(torch.equal(cell.state_dict()[k], v) for k, v in before.items())


def test_from_step_reports_bad_steps():
    with pytest.raises(TypeError, match="step must be callable"):
        from_step(3, 2)
    with pytest.raises(ValueError, match="state_size must be an int >= 1, got 0"):
        from_step(lambda s, x: s, 0)
    wrong_shape = from_step(lambda s, x: s[:, :1], 2, name="shrink")
    with pytest.raises(
        ValueError, match=r"step 'shrink' returned \(3, 1\) for a state of shape \(3, 2\)"
    ):
        lyapunov_spectrum(wrong_shape, torch.zeros(3, 10, 0), warmup=2, device="cpu")
    wrong_dtype = from_step(lambda s, x: s.float(), 2, name="single")
    with pytest.raises(TypeError, match="returned torch.float32 for a torch.float64 state"):
        lyapunov_spectrum(wrong_dtype, torch.zeros(3, 10, 0), warmup=2, device="cpu")
    assert isinstance(wrong_dtype, StepDynamics)
