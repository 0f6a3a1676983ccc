"""Many networks at once: stacked dynamics, batching by memory, qr_interval="auto", float32.

The reference for every stacked computation is the single-model path, model
by model; the reference for "auto" is ``qr_interval=1`` and the autograd
determinant of ``test_lyapunov``.
"""

import math
import pathlib
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sklyap import LyapunovSpectrumTransformer, as_dynamics, from_step, lyapunov_spectrum
from sklyap._benettin import auto_interval
from sklyap.dynamics import TorchRNNDynamics, signature_of
from sklyap.lyapunov import plan_batches

from helpers import (
    ALL_KINDS,
    AT_A_FIXED_POINT,
    D,
    chaotic_rnn,
    linear_rnn,
    make_module,
    make_network,
    mean_log_abs_det,
    orthogonal,
)

F64 = torch.float64


def _rnn(hidden, gain, seed=1):
    """A batch-first float64 tanh RNN(3, hidden), every parameter seeded, with
    Gaussian recurrent weights of ``gain``."""
    torch.manual_seed(seed)
    return _gain(nn.RNN(3, hidden, batch_first=True).double(), gain, seed)


def _gain(model, gain, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        W = model.weight_hh_l0
        W.copy_(gain * torch.randn(W.shape, generator=gen, dtype=W.dtype) / math.sqrt(W.shape[1]))
    return model


def _normal(eigenvalues, seed):
    """A symmetric matrix with the given eigenvalues: a linear RNN's exponents are their logs."""
    U = orthogonal(len(eigenvalues), seed)
    return U @ torch.diag(torch.tensor(eigenvalues, dtype=F64)) @ U.T


def _sensitivity(module, inputs, warmup):
    """How far a relative perturbation of 1e-15 of the inputs moves the exponents.

    Finite-time exponents can be ill-conditioned: in multi-layer networks
    rounding-level perturbations move the weakest ones by up to 1e-2 (far
    below their statistical error). Comparing two schedules to 1e-6 only
    means something where this is small.
    """
    a = lyapunov_spectrum(module, inputs, warmup=warmup, device="cpu")
    b = lyapunov_spectrum(module, inputs * (1 + 1e-15), warmup=warmup, device="cpu")
    return np.abs(a.per_trajectory - b.per_trajectory).max()


# -- stacked dynamics ------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kind,num_layers", ALL_KINDS)
def test_stacked_step_equals_each_model(kind, num_layers, bias):
    M, B, k = 3, 4, 5
    systems = [as_dynamics(make_module(kind, num_layers, bias=bias, seed=s)) for s in range(M)]
    stack = TorchRNNDynamics.stack(systems)
    assert stack.n_models == M and signature_of(stack) == signature_of(systems[0])
    n = stack.state_size
    gen = torch.Generator().manual_seed(1)
    states = torch.randn(M * B, n, generator=gen, dtype=F64)
    frames = torch.randn(M * B, k, n, generator=gen, dtype=F64)
    own = torch.randn(M * B, D, generator=gen, dtype=F64)
    shared = own[:B]
    for xs, per_model in ((own, lambda m: own[m * B : (m + 1) * B]), (shared, lambda m: shared)):
        next_states, pushed = stack.step_tangent(states, xs, frames)
        np.testing.assert_allclose(stack.step(states, xs), next_states, rtol=0, atol=0)
        for m, single in enumerate(systems):
            rows = slice(m * B, (m + 1) * B)
            s1, p1 = single.step_tangent(states[rows], per_model(m), frames[rows])
            np.testing.assert_allclose(next_states[rows], s1, rtol=0, atol=1e-13)
            np.testing.assert_allclose(pushed[rows], p1, rtol=0, atol=1e-12)


def test_stack_unstack_round_trip_and_refusals():
    systems = [as_dynamics(nn.GRU(3, 4, 2, batch_first=True)) for _ in range(3)]
    stack = TorchRNNDynamics.stack([TorchRNNDynamics.stack(systems[:2]), systems[2]])
    assert stack.n_models == 3 and "n_models=3" in repr(stack)
    for original, back in zip(systems, stack.unstack()):
        for a, b in zip(original.layers, back.layers):
            assert all(torch.equal(a[key], b[key]) for key in a)
    with pytest.raises(ValueError, match="only recurrent networks of one signature"):
        TorchRNNDynamics.stack([systems[0], as_dynamics(nn.GRU(3, 5, 2, batch_first=True))])
    with pytest.raises(ValueError, match="only recurrent networks of one signature"):
        TorchRNNDynamics.stack([systems[0], from_step(lambda s, x: s, 8)])
    with pytest.raises(ValueError, match="at least one"):
        TorchRNNDynamics.stack([])
    with pytest.raises(ValueError, match="a stack of 3 models needs a batch of M \\* B states"):
        stack.step(torch.zeros(4, 8, dtype=F64), torch.zeros(4, 3, dtype=F64))


def test_signature_groups_cells_with_one_layer_networks():
    assert signature_of(as_dynamics(nn.LSTMCell(3, 4))) == signature_of(
        as_dynamics(nn.LSTM(3, 4, batch_first=True))
    )
    assert signature_of(as_dynamics(nn.RNN(3, 4, batch_first=True))) != signature_of(
        as_dynamics(nn.RNN(3, 4, nonlinearity="relu", batch_first=True))
    )
    assert signature_of(as_dynamics(nn.GRU(3, 4, batch_first=True))) != signature_of(
        as_dynamics(nn.GRU(3, 4, bias=False, batch_first=True))
    )
    assert signature_of(from_step(lambda s, x: s, 4)) is None


# -- lists of models -------------------------------------------------------------------


def _mixed_models():
    torch.manual_seed(0)
    return [
        nn.GRU(3, 6, batch_first=True),
        nn.LSTM(3, 4, batch_first=True),
        nn.GRU(3, 6, batch_first=True),
        nn.RNN(3, 5, 2, batch_first=True),
        nn.GRUCell(3, 6),
        nn.LSTM(3, 4, batch_first=True),
        from_step(lambda s, x: 0.5 * torch.tanh(s) + x.sum(1, keepdim=True), 3),
        nn.GRU(3, 6, batch_first=True),
    ]


@pytest.mark.parametrize("memory_budget", ["auto", 1, 10**9])
def test_list_of_models_equals_one_call_per_model(memory_budget):
    models = _mixed_models()
    inputs = torch.randn(3, 60, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    results = lyapunov_spectrum(
        models, inputs, warmup=10, device="cpu", memory_budget=memory_budget
    )
    assert isinstance(results, list) and len(results) == len(models)
    for model, result in zip(models, results):
        alone = lyapunov_spectrum(model, inputs, warmup=10, device="cpu")
        assert result.state_size == alone.state_size
        np.testing.assert_allclose(result.per_trajectory, alone.per_trajectory, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.final_state, alone.final_state, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.stderr, alone.stderr, rtol=0, atol=1e-12)


def test_list_with_partial_spectra_and_an_initial_state():
    torch.manual_seed(3)
    models = [nn.LSTM(2, 3, batch_first=True) for _ in range(4)]
    inputs = torch.randn(2, 40, 2, dtype=F64)
    start = torch.linspace(-0.5, 0.5, 6, dtype=F64)
    results = lyapunov_spectrum(
        models, inputs, n_exponents=2, warmup=5, initial_state=start, device="cpu"
    )
    for model, result in zip(models, results):
        alone = lyapunov_spectrum(
            model, inputs, n_exponents=2, warmup=5, initial_state=start, device="cpu"
        )
        np.testing.assert_allclose(result.exponents, alone.exponents, rtol=0, atol=1e-12)


def test_list_errors_name_the_model():
    inputs = torch.zeros(2, 10, 3)
    with pytest.raises(TypeError, match="model 1: expected a PyTorch recurrent model"):
        lyapunov_spectrum([nn.GRU(3, 2, batch_first=True), "lstm"], inputs, device="cpu")
    with pytest.raises(
        ValueError,
        match=r"n_exponents=3 exceeds the state size of models \[1\] \(state sizes \[2\]\)",
    ):
        lyapunov_spectrum(
            [nn.GRU(3, 4, batch_first=True), nn.GRU(3, 2, batch_first=True)],
            inputs,
            n_exponents=3,
            device="cpu",
        )
    with pytest.raises(
        ValueError, match="inputs have 3 features per step but model 1 expects input_size=4"
    ):
        lyapunov_spectrum(
            [nn.GRU(3, 2, batch_first=True), nn.GRU(4, 2, batch_first=True)], inputs, device="cpu"
        )
    with pytest.raises(ValueError, match="one initial_state cannot serve models of state sizes"):
        lyapunov_spectrum(
            [nn.GRU(3, 2, batch_first=True), nn.GRU(3, 3, batch_first=True)],
            inputs,
            initial_state=torch.zeros(2),
            warmup=2,
            device="cpu",
        )
    with pytest.raises(ValueError, match="empty list"):
        lyapunov_spectrum([], inputs, device="cpu")


def test_a_diverging_model_in_a_stack_is_named():
    torch.manual_seed(0)
    models = [nn.RNN(1, 4, nonlinearity="relu", batch_first=True).double() for _ in range(3)]
    with torch.no_grad():
        models[1].weight_hh_l0.copy_(1e3 * torch.eye(4))
        models[1].bias_hh_l0.fill_(1.0)
    with pytest.raises(FloatingPointError, match="model 1: the network's state became NaN"):
        lyapunov_spectrum(models, torch.ones(1, 200, 1), warmup=0, device="cpu")


# -- batches ---------------------------------------------------------------------------


def test_plan_batches_groups_by_signature_within_the_budget():
    models = _mixed_models()
    dynamics = [as_dynamics(m) for m in models]
    B, k = 3, None
    batches = plan_batches(dynamics, B, memory_budget=10**9)
    # GRU(3, 6) and GRUCell(3, 6) share a signature; the custom system is alone.
    assert batches == [[0, 2, 4, 7], [1, 5], [3], [6]]
    # The budget of one GRU(3, 6) model: frames, Q, R and the (B, k, 2*3*N) products.
    n, N = 6, 6
    per_model = 8 * B * (n * (4 * n + n + 2 * 3 * N) + 8 * n)
    assert plan_batches(dynamics, B, memory_budget=2 * per_model)[0] == [0, 2]
    assert plan_batches(dynamics, B, memory_budget=2 * per_model - 1)[0] == [0]
    half = plan_batches(dynamics, B, memory_budget=2 * per_model, dtype=torch.float32)
    assert half[0] == [0, 2, 4, 7]
    # Each index exactly once, whatever the budget; a model above it runs alone.
    for budget in (1, 5000, 10**9):
        flat = sorted(i for batch in plan_batches(dynamics, B, memory_budget=budget) for i in batch)
        assert flat == list(range(len(models)))
    assert all(len(b) == 1 for b in plan_batches(dynamics, B, n_exponents=k, memory_budget=1))
    # Per-model inputs count against the budget.
    assert plan_batches(dynamics, B, memory_budget=2 * per_model, input_numbers=1)[0] == [0]


def test_auto_budget_on_the_cpu_is_8_mib():
    dyn = [as_dynamics(nn.LSTM(4, 32, batch_first=True)) for _ in range(64)]
    # One LSTM(4, 32) with B = 8: k = n = 64, 64 * (256 + 64 + 256) + 512 numbers per trajectory.
    per_model = 8 * 8 * (64 * (4 * 64 + 64 + 2 * 4 * 32) + 8 * 64)
    expected = (8 * 2**20) // per_model
    assert next(len(b) for b in plan_batches(dyn, 8)) == expected


# -- the transformer -------------------------------------------------------------------


def test_transformer_stacks_mixed_lists_and_keeps_their_order():
    models = [m for m in _mixed_models() if isinstance(m, nn.Module)]
    lst = LyapunovSpectrumTransformer(
        n_trajectories=2, n_steps=30, warmup=10, random_state=0, device="cpu"
    )
    stacked = lst.fit_transform(models)
    alone = lst.set_params(memory_budget=1).transform(models)
    np.testing.assert_allclose(stacked, alone, rtol=0, atol=1e-12)
    inputs = torch.tensor(lst.inputs_)
    for row, model in zip(lst.compute_spectra(models), models):
        reference = lyapunov_spectrum(model, inputs, warmup=10, device="cpu")
        np.testing.assert_allclose(row.exponents, reference.exponents, rtol=0, atol=1e-12)


def test_transformer_stacks_models_with_inputs_of_their_own():
    torch.manual_seed(4)

    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(5, 3)
            self.rnn = nn.GRU(3, 4, batch_first=True)

    models = [Tagger() for _ in range(4)]
    tokens = np.random.RandomState(0).randint(0, 5, size=(2, 40))
    lst = LyapunovSpectrumTransformer(tokens, input_encoder="embedding", warmup=10, device="cpu")
    stacked = lst.fit_transform(models)
    for row, model in zip(stacked, models):
        encoded = model.embedding(torch.tensor(tokens)).detach().double()
        reference = lyapunov_spectrum(model, encoded, warmup=10, device="cpu")
        np.testing.assert_allclose(row, reference.exponents, rtol=0, atol=1e-12)


# -- qr_interval="auto" -----------------------------------------------------------------


def test_auto_interval_rule():
    digits64 = -0.5 * math.log(torch.finfo(F64).eps)  # 18.0
    assert auto_interval(0.0, 0.0, 0.0, F64) == 16
    assert auto_interval(digits64 / 5 + 1e-9, 0.0, 0.0, F64) == 4
    assert auto_interval(digits64 / 5 - 1e-9, 0.0, 0.0, F64) == 5
    assert auto_interval(100.0, 0.0, 0.0, F64) == 1
    assert auto_interval(math.inf, 0.0, 0.0, F64) == 1  # a direction annihilated
    assert auto_interval(1.0, 0.0, 0.0, torch.float32) == 7  # -log(eps32)/2 = 7.97
    # The frame is kept within half the exponent range of the dtype, growing
    # (709 / 2 / 100 = 3.5) or shrinking (-87.3 / 2 / -6.2 = 7.0 in float32).
    assert auto_interval(0.0, 100.0, 0.0, F64) == 3
    assert auto_interval(0.0, 0.0, -6.2, torch.float32) == 7
    assert auto_interval(0.0, 0.0, -50.0, F64) == 7


@AT_A_FIXED_POINT
@pytest.mark.parametrize(
    "dtype,scale,interval",
    [
        # Every exponent is ln(scale), and the frame may shrink by half the
        # dtype's exponent range, ln(tiny) / 2, between QRs:
        ("float32", 0.002, 7),  # -87.34 / 2 / ln(0.002) = -43.67 / -6.215 = 7.03
        ("float64", 1e-22, 6),  # -708.40 / 2 / ln(1e-22) = -354.20 / -50.66 = 6.99
    ],
)
def test_auto_interval_keeps_a_contracting_frame_from_underflowing(dtype, scale, interval):
    rnn = linear_rnn(scale * orthogonal(6, seed=4))
    inputs = torch.zeros(2, 120, 2)
    exact = lyapunov_spectrum(rnn, inputs, warmup=30, dtype=dtype, device="cpu")
    auto = lyapunov_spectrum(rnn, inputs, warmup=30, dtype=dtype, qr_interval="auto", device="cpu")
    assert auto.qr_interval == interval
    np.testing.assert_allclose(auto.exponents, exact.exponents, rtol=0, atol=1e-6)
    np.testing.assert_allclose(auto.exponents, math.log(scale), rtol=0, atol=1e-5)
    with pytest.raises(FloatingPointError, match="underflowed") as info:
        lyapunov_spectrum(rnn, inputs, warmup=30, dtype=dtype, qr_interval=16, device="cpu")
    assert ("or float64" in str(info.value)) == (dtype == "float32")


@pytest.mark.parametrize(
    "make,min_interval",
    [
        (lambda: make_network("gru", 1, hidden=16), 8),
        (lambda: _rnn(32, 0.8), 3),
        (lambda: _rnn(32, 1.5), 2),
        (lambda: make_network("lstm", 1, hidden=8, scale=2.0), 1),
    ],
)
def test_auto_interval_keeps_every_exponent_to_1e_6(make, min_interval):
    module = make()
    inputs = torch.randn(4, 400, 3, generator=torch.Generator().manual_seed(7), dtype=F64)
    assert _sensitivity(module, inputs, 100) < 1e-9
    exact = lyapunov_spectrum(module, inputs, warmup=100, device="cpu")
    auto = lyapunov_spectrum(module, inputs, warmup=100, qr_interval="auto", device="cpu")
    assert auto.qr_interval >= min_interval
    np.testing.assert_allclose(auto.per_trajectory, exact.per_trajectory, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_auto_interval_keeps_the_sum_identity(kind):
    module = make_network(kind, 1, hidden=6, scale=1.0)
    inputs = torch.randn(2, 80, 3, generator=torch.Generator().manual_seed(5), dtype=F64)
    result = lyapunov_spectrum(module, inputs, warmup=16, qr_interval="auto", device="cpu")
    assert result.qr_interval > 1
    expected = mean_log_abs_det(module, inputs, warmup=16)
    np.testing.assert_allclose(result.per_trajectory.sum(axis=1), expected, rtol=0, atol=1e-8)


@AT_A_FIXED_POINT
def test_auto_interval_is_chosen_per_model_in_a_stack():
    slow, fast = 0.9, 1e-4  # exponents ln 0.9 and ln 1e-4: a spread of 9.1 nats per step
    narrow = linear_rnn(0.8 * orthogonal(6, seed=0))
    wide = linear_rnn(_normal([slow] * 3 + [fast] * 3, seed=1))
    models = [narrow, wide, narrow]
    inputs = torch.zeros(2, 120, 2, dtype=F64)
    results = lyapunov_spectrum(models, inputs, warmup=20, qr_interval="auto", device="cpu")
    assert [r.qr_interval for r in results] == [16, 1, 16]
    expected = {0: [math.log(0.8)] * 6, 1: [math.log(slow)] * 3 + [math.log(fast)] * 3}
    for index, result in enumerate(results):
        alone = lyapunov_spectrum(
            models[index], inputs, warmup=20, qr_interval="auto", device="cpu"
        )
        assert alone.qr_interval == result.qr_interval
        np.testing.assert_allclose(result.exponents, alone.exponents, rtol=0, atol=1e-12)
        np.testing.assert_allclose(result.exponents, expected[index % 2], rtol=0, atol=1e-10)


def test_auto_interval_falls_back_to_every_step():
    inputs = torch.randn(2, 60, 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    chaotic = chaotic_rnn(n=8)
    # No warm-up to observe: every step.
    assert (
        lyapunov_spectrum(chaotic, inputs, warmup=1, qr_interval="auto", device="cpu").qr_interval
        == 1
    )
    # A direction annihilated exactly (a dead ReLU) has an infinite spread.
    dead = nn.RNN(1, 4, nonlinearity="relu", batch_first=True).double()
    with torch.no_grad():
        dead.bias_ih_l0.fill_(-100.0)
    result = lyapunov_spectrum(dead, inputs, warmup=10, qr_interval="auto", device="cpu")
    assert result.qr_interval == 1
    np.testing.assert_allclose(result.exponents, math.log(torch.finfo(F64).tiny))


# -- float32 ---------------------------------------------------------------------------


@AT_A_FIXED_POINT
def test_float32_warns_when_the_spread_exceeds_what_it_resolves():
    wide = linear_rnn(_normal([0.9, 0.5, 1e-4, 1e-5], seed=2))  # spread ln(0.9 / 1e-5) = 11.4
    narrow = linear_rnn(0.8 * orthogonal(4, seed=3))
    inputs = torch.zeros(2, 60, 2)
    with pytest.warns(
        RuntimeWarning, match=r"spans up to 11\.4 nats .* more than float32 resolves \(about 8\)"
    ) as caught:
        lyapunov_spectrum(wide, inputs, warmup=10, dtype="float32", device="cpu")
    (spread,) = [w for w in caught if w.category is RuntimeWarning]
    assert spread.filename == __file__  # it points at the caller's line
    with pytest.warns(RuntimeWarning, match=r"the spectra of 1 model\(s\) \(indices \[1\]\)"):
        lyapunov_spectrum([narrow, wide], inputs, warmup=10, dtype="float32", device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        lyapunov_spectrum(narrow, inputs, warmup=10, dtype="float32", device="cpu")
        lyapunov_spectrum(wide, inputs, warmup=10, dtype="float64", device="cpu")
        # Fewer exponents, a narrower spread: no warning.
        lyapunov_spectrum(wide, inputs, n_exponents=2, warmup=10, dtype="float32", device="cpu")


@pytest.mark.parametrize(
    "make,atol",
    [
        (lambda: make_network("gru", 1, hidden=32), 1e-6),  # spread 0.7 nats: 1.2e-7 measured
        (lambda: _rnn(64, 0.8), 3e-5),  # 4.8 nats: 4.7e-6
        (lambda: make_network("lstm", 1, hidden=16, scale=0.5), 5e-4),  # 7.0 nats: 1.1e-4
    ],
)
def test_float32_accuracy_on_networks_of_moderate_spread(make, atol):
    # The weakest direction keeps about eps32 * exp(spread) of relative
    # precision per step, so the error grows with the spread of the spectrum:
    # 1e-7 to 1e-4 was measured on these networks (and on trained ones, in
    # benchmarks/bench_population.py); the tolerances are 3-8x the measurement.
    module = make()
    inputs = torch.randn(4, 300, 3, generator=torch.Generator().manual_seed(9), dtype=F64)
    ref = lyapunov_spectrum(module, inputs, warmup=60, device="cpu")
    assert ref.exponents[0] - ref.exponents[-1] < 8
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = lyapunov_spectrum(module, inputs, warmup=60, dtype="float32", device="cpu")
    np.testing.assert_allclose(single.exponents, ref.exponents, rtol=0, atol=atol)


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM])
def test_batch_sizes_change_spectra_by_rounding_only(kind):
    # A model alone takes unbatched matrix products, stacked ones batched
    # products, whose kernels round differently: a few ulps per step. The QR
    # algorithm amplifies them in the weakest exponents of an LSTM (measured up
    # to 8e-13 of the largest exponent, docs/distributed.md), hence 1e-11.
    torch.manual_seed(0)
    models = [kind(3, 8) for _ in range(4)]
    inputs = torch.randn(150, 4, 3, generator=torch.Generator().manual_seed(1))
    alone = lyapunov_spectrum(models, inputs, warmup=50, device="cpu", memory_budget=1)
    stacked = lyapunov_spectrum(models, inputs, warmup=50, device="cpu", memory_budget=2**30)
    for a, s in zip(alone, stacked):
        scale = np.abs(s.exponents).max()
        np.testing.assert_allclose(a.exponents, s.exponents, rtol=0, atol=1e-11 * scale)
    # Not bit for bit: the docs said so of any batch size, and must not again.
    assert any(not np.array_equal(a.exponents, s.exponents) for a, s in zip(alone, stacked))
    root = pathlib.Path(__file__).resolve().parents[1]
    for doc in ("docs/distributed.md", "README.md"):
        text = " ".join((root / doc).read_text().split())
        assert "bit for bit in a batch of any size" not in text, doc
