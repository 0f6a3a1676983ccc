"""The QR algorithm against known answers: linear maps, identities, direct estimates."""

import math
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from sklyap import as_dynamics, from_step, lyapunov_spectrum
from sklyap.lyapunov import initial_frame

from helpers import (
    AT_A_FIXED_POINT,
    F64,
    chaotic_rnn,
    linear_rnn,
    make_network,
    mean_log_abs_det,
    orthogonal,
)


@AT_A_FIXED_POINT
def test_scaled_orthogonal_map_has_all_exponents_ln_s():
    n, s = 12, 0.8
    rnn = linear_rnn(s * orthogonal(n, seed=0))
    result = lyapunov_spectrum(rnn, torch.zeros(3, 60, 2), warmup=10, device="cpu")
    np.testing.assert_allclose(result.exponents, np.full(n, math.log(s)), rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.per_trajectory, math.log(s), rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.final_state, 0.0)


@AT_A_FIXED_POINT
def test_normal_map_has_exponents_ln_abs_eigenvalues():
    # A real normal matrix: orthogonal similarity of a block-diagonal matrix
    # holding real eigenvalues and one scaled rotation (a complex pair).
    theta = 1.1
    blocks = torch.zeros(6, 6, dtype=F64)
    blocks[0, 0], blocks[1, 1] = 0.95, -0.8
    blocks[2:4, 2:4] = 0.7 * torch.tensor(
        [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=F64
    )
    blocks[4, 4], blocks[5, 5] = 0.5, -0.3
    U = orthogonal(6, seed=1)
    W = U @ blocks @ U.T
    eig = torch.linalg.eigvals(W)
    expected = np.sort(np.log(np.abs(eig.numpy())))[::-1]
    np.testing.assert_allclose(expected, np.log([0.95, 0.8, 0.7, 0.7, 0.5, 0.3]), atol=1e-12)
    result = lyapunov_spectrum(linear_rnn(W), torch.zeros(2, 500, 2), warmup=400, device="cpu")
    np.testing.assert_allclose(result.exponents, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_sum_of_exponents_equals_mean_log_det(kind, num_layers):
    module = make_network(kind, num_layers, hidden=6, scale=2.5)
    gen = torch.Generator().manual_seed(5)
    inputs = torch.randn(2, 40, 3, generator=gen, dtype=F64)
    result = lyapunov_spectrum(module, inputs, warmup=8, device="cpu")
    expected = mean_log_abs_det(module, inputs, warmup=8)
    np.testing.assert_allclose(result.per_trajectory.sum(axis=1), expected, rtol=0, atol=1e-8)
    np.testing.assert_allclose(result.exponents.sum(), expected.mean(), rtol=0, atol=1e-8)


def test_largest_exponent_matches_direct_two_trajectory_estimate():
    rnn = chaotic_rnn()
    n, T, warmup, eps = 32, 1500, 300, 1e-8
    gen = torch.Generator().manual_seed(7)
    inputs = 0.3 * torch.randn(1, T, 1, generator=gen, dtype=F64)
    initial = 0.5 * torch.randn(n, generator=gen, dtype=F64)
    qr = lyapunov_spectrum(
        rnn, inputs, n_exponents=1, warmup=warmup, initial_state=initial, device="cpu"
    )

    # Direct estimate with the module's own forward pass: evolve a reference
    # and a perturbed trajectory, measure the separation, renormalise it to eps.
    direction = torch.randn(n, generator=gen, dtype=F64)
    h = initial.reshape(1, 1, n)
    h_pert = h + eps * direction.reshape(1, 1, n) / direction.norm()
    total = 0.0
    with torch.no_grad():
        for t in range(T):
            x = inputs[:, t : t + 1]
            _, h = rnn(x, h)
            _, h_pert = rnn(x, h_pert)
            distance = (h_pert - h).norm().item()
            if t >= warmup:
                total += math.log(distance / eps)
            h_pert = h + (h_pert - h) * (eps / distance)
    direct = total / (T - warmup)
    assert qr.exponents[0] > 0.1, "the test network should be chaotic"
    assert abs(qr.exponents[0] - direct) < 1e-4


def test_partial_spectrum_equals_leading_part_of_full_spectrum():
    module = make_network("lstm", 2, hidden=10, scale=2.0)
    inputs = torch.randn(3, 300, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    full = lyapunov_spectrum(module, inputs, warmup=100, device="cpu")
    part = lyapunov_spectrum(module, inputs, n_exponents=5, warmup=100, device="cpu")
    assert full.exponents.shape == (40,) and part.exponents.shape == (5,)
    np.testing.assert_allclose(part.per_trajectory, full.per_trajectory[:, :5], rtol=0, atol=1e-10)


def test_initial_frame_is_orthonormal_and_nested():
    full = initial_frame(7, 7)
    np.testing.assert_allclose((full @ full.T).numpy(), np.eye(7), atol=1e-14)
    np.testing.assert_array_equal(initial_frame(7, 3).numpy(), full[:3].numpy())
    assert np.all(np.abs(full.numpy()) > 0), "every vector has a component on every axis"


@AT_A_FIXED_POINT
def test_partial_spectrum_is_not_trapped_in_an_invariant_subspace():
    # s -> diag(0.5, 2) s: the unit vector e_1 never leaves the contracting axis.
    diagonal = from_step(lambda s, x: s * torch.tensor([0.5, 2.0], dtype=s.dtype), 2)
    result = lyapunov_spectrum(
        diagonal, torch.zeros(1, 50, 0), n_exponents=1, warmup=10, device="cpu"
    )
    np.testing.assert_allclose(result.exponents, [math.log(2.0)], atol=1e-12)
    # An RNN whose units form two decoupled blocks, the faster one listed second.
    W = torch.zeros(6, 6, dtype=F64)
    W[:3, :3] = 0.3 * orthogonal(3, seed=3)
    W[3:, 3:] = 0.9 * orthogonal(3, seed=4)
    partial = lyapunov_spectrum(
        linear_rnn(W), torch.zeros(1, 80, 2), n_exponents=2, warmup=16, device="cpu"
    )
    np.testing.assert_allclose(partial.exponents, [math.log(0.9)] * 2, atol=1e-10)


def test_chaotic_spectrum_is_sorted_with_positive_leading_exponents():
    result = lyapunov_spectrum(
        chaotic_rnn(), 0.3 * torch.randn(4, 600, 1, dtype=F64), warmup=200, device="cpu"
    )
    assert np.all(np.diff(result.per_trajectory, axis=1) <= 0)
    assert result.exponents[0] > 0.1 and result.exponents[-1] < 0


def test_longer_qr_interval_gives_the_same_spectrum_when_spread_is_moderate():
    # The R factors of a product are the product of the R factors, so
    # re-orthonormalising every 4 steps changes only rounding.
    module = make_network("gru", 1, hidden=8, scale=1.5)
    inputs = torch.randn(2, 203, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    every = lyapunov_spectrum(module, inputs, warmup=50, device="cpu")
    fourth = lyapunov_spectrum(module, inputs, warmup=50, qr_interval=4, device="cpu")
    assert fourth.qr_interval == 4
    np.testing.assert_allclose(fourth.exponents, every.exponents, rtol=0, atol=1e-10)


def test_float32_compute_agrees_with_float64():
    module = make_network("gru", 1, hidden=16, scale=2.0)
    inputs = torch.randn(4, 400, 3, generator=torch.Generator().manual_seed(6), dtype=F64)
    ref = lyapunov_spectrum(module, inputs, warmup=100, device="cpu")
    single = lyapunov_spectrum(module, inputs, warmup=100, dtype="float32", device="cpu")
    assert single.dtype == "float32" and ref.dtype == "float64"
    assert single.exponents.dtype == np.float64
    np.testing.assert_allclose(single.exponents, ref.exponents, rtol=0, atol=1e-4)


def _henon(s, x):
    return torch.stack([1 - 1.4 * s[:, 0] ** 2 + s[:, 1], 0.3 * s[:, 0]], dim=1)


def test_henon_map_through_from_step():
    dyn = from_step(_henon, state_size=2, input_size=0)
    start = torch.tensor([[0.1, 0.1], [0.3, -0.1]], dtype=F64)
    result = lyapunov_spectrum(
        dyn, torch.zeros(2, 1500, 0), warmup=100, initial_state=start, device="cpu"
    )
    # det J = -0.3 at every step, so the sum is exactly ln 0.3.
    np.testing.assert_allclose(result.per_trajectory.sum(axis=1), math.log(0.3), atol=1e-10)
    # Known value of the largest exponent of the Henon attractor: 0.41922.
    assert abs(result.exponents[0] - 0.41922) < 0.01


@AT_A_FIXED_POINT
def test_dead_relu_network_contracts_to_the_floor():
    rnn = nn.RNN(1, 4, nonlinearity="relu", batch_first=True).double()
    with torch.no_grad():
        rnn.bias_ih_l0.fill_(-100.0)  # every unit inactive: J = 0
    result = lyapunov_spectrum(rnn, torch.zeros(2, 20, 1), warmup=2, device="cpu")
    np.testing.assert_allclose(result.exponents, math.log(torch.finfo(F64).tiny))
    # After several steps an exact zero could be underflow: it is refused.
    with pytest.raises(FloatingPointError, match="underflowed"):
        lyapunov_spectrum(rnn, torch.zeros(2, 20, 1), warmup=2, qr_interval=3, device="cpu")


def test_summary_statistics_and_settings_are_recorded():
    module = make_network("rnn", 1, hidden=5, scale=2.0)
    inputs = torch.randn(5, 50, 3, generator=torch.Generator().manual_seed(8), dtype=F64)
    result = lyapunov_spectrum(module, inputs, warmup=10, device="cpu")
    assert (result.warmup, result.n_steps, result.qr_interval) == (10, 40, 1)
    assert (result.state_size, result.n_exponents, result.n_trajectories) == (5, 5, 5)
    assert result.device == "cpu"
    np.testing.assert_allclose(result.exponents, result.per_trajectory.mean(axis=0))
    np.testing.assert_allclose(
        result.stderr, result.per_trajectory.std(axis=0, ddof=1) / math.sqrt(5)
    )
    assert "LyapunovResult(exponents=[" in repr(result)
    one = lyapunov_spectrum(
        module, inputs[0].numpy(), warmup=10, device="cpu"
    )  # (T, d): one trajectory
    assert one.n_trajectories == 1 and np.isnan(one.stderr).all()
    np.testing.assert_allclose(one.exponents, result.per_trajectory[0], atol=1e-12)


def test_same_call_gives_identical_results():
    module = make_network("lstm", 2, hidden=6, scale=2.0)
    inputs = torch.randn(2, 80, 3, generator=torch.Generator().manual_seed(9))
    a = lyapunov_spectrum(module, inputs, warmup=16, device="cpu")
    b = lyapunov_spectrum(module, inputs, warmup=16, device="cpu")
    np.testing.assert_array_equal(a.per_trajectory, b.per_trajectory)


def test_initial_state_is_used():
    module = make_network("gru", 1, hidden=4, scale=2.0)
    inputs = torch.randn(2, 30, 3, dtype=F64)
    start = torch.randn(2, 4, dtype=F64)
    result = lyapunov_spectrum(module, inputs, initial_state=start, warmup=6, device="cpu")
    with torch.no_grad():
        _, h = module(inputs, start[None])  # batch first, as the engine read it
    np.testing.assert_allclose(result.final_state, h[0].numpy(), atol=1e-12)


def test_divergence_and_overflow_raise():
    rnn = nn.RNN(1, 3, nonlinearity="relu", bias=False, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(10.0 * torch.eye(3, dtype=F64))
        rnn.weight_ih_l0.fill_(1.0)
    with pytest.raises(FloatingPointError, match="state became NaN or infinite"):
        lyapunov_spectrum(rnn, torch.ones(1, 400, 1), warmup=0, device="cpu")
    with pytest.raises(FloatingPointError, match="smaller qr_interval than 2000"):
        lyapunov_spectrum(
            chaotic_rnn(gain=8.0),
            torch.zeros(1, 2000, 1),
            warmup=0,
            qr_interval=2000,
            initial_state=torch.full((32,), 0.5),
            device="cpu",
        )


@pytest.mark.parametrize("num_threads,during", [("auto", 1), (None, "unchanged"), (2, 2)])
def test_thread_count_during_the_computation_and_after(num_threads, during):
    seen = []

    def step(s, x):
        seen.append(torch.get_num_threads())
        return 0.5 * s

    before = torch.get_num_threads()
    lyapunov_spectrum(
        from_step(step, 3), torch.zeros(2, 5, 0), warmup=1, device="cpu", num_threads=num_threads
    )
    assert torch.get_num_threads() == before
    assert set(seen) == {before if during == "unchanged" else during}


def test_batches_in_threads_never_change_the_process_thread_count(monkeypatch):
    """torch's thread count is process-wide: batches that a thread-based backend
    runs concurrently compute with the process's count and never set it."""
    import threading

    from joblib import parallel_config

    from sklyap._validation import torch_threads

    seen = []
    before = torch.get_num_threads()
    with torch_threads(3):  # in the main thread it is set...
        assert torch.get_num_threads() == 3
    assert torch.get_num_threads() == before

    def record():
        with torch_threads(before + 1):
            seen.append(torch.get_num_threads())

    thread = threading.Thread(target=record)
    thread.start()
    thread.join()
    assert seen[-1] == before  # ...in another thread it is left alone

    import sklyap.lyapunov

    counts, iterate = [], sklyap.lyapunov.qr_iteration

    def counting(*args, **kwargs):
        counts.append(torch.get_num_threads())
        return iterate(*args, **kwargs)

    monkeypatch.setattr(sklyap.lyapunov, "qr_iteration", counting)
    torch.manual_seed(0)
    models = [nn.RNN(2, 3) for _ in range(4)]
    with parallel_config(backend="threading", n_jobs=2):
        lyapunov_spectrum(
            models, torch.randn(20, 2, 2, generator=torch.Generator().manual_seed(0)), warmup=1,
            memory_budget=1, num_threads=before + 1,
            device="cpu",
        )  # fmt: skip
    assert len(counts) == 4 and set(counts) == {before}
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "n,n_models,budget,free,expected",
    [
        (64, 1, "auto", 2, "all"),  # one batch, 65 * 64 * 64 numbers: the process's threads
        (64, 1, "auto", 1, 1),  # the same, another process holding a core: the one left
        (3, 1, "auto", 2, 1),  # one batch, a small frame: one thread
        (64, 2, 1, 2, 1),  # two large batches: one thread each, workers or not
    ],
)
def test_auto_threads_follow_the_batch_plan(n, n_models, budget, free, expected, monkeypatch):
    import sklyap._planning

    monkeypatch.setattr(sklyap._planning, "free_cores", lambda: free)  # the machine's load
    seen = []

    def step(s, x):
        seen.append(torch.get_num_threads())
        return 0.5 * s

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        systems = [from_step(step, n) for _ in range(n_models)]
        lyapunov_spectrum(
            systems, torch.zeros(65, 3, 0), warmup=1, memory_budget=budget, device="cpu"
        )
    finally:
        torch.set_num_threads(previous)
    assert set(seen) == {2 if expected == "all" else expected}


@AT_A_FIXED_POINT
@pytest.mark.parametrize("dtype,qr_interval", [("float32", 25), ("float64", 200)])
def test_underflow_between_re_orthonormalisations_raises(dtype, qr_interval):
    # Every exponent is ln 0.01 = -4.6: over qr_interval steps the frame shrinks
    # by 1e-50 (float32) or 1e-400 (float64), below the smallest number.
    rnn = linear_rnn(0.01 * torch.eye(4, dtype=F64))
    with pytest.raises(FloatingPointError, match=f"underflowed below the smallest normal {dtype}"):
        lyapunov_spectrum(
            rnn,
            torch.zeros(1, 400, 2),
            warmup=0,
            qr_interval=qr_interval,
            dtype=dtype,
            device="cpu",
        )
    fine = lyapunov_spectrum(
        rnn, torch.zeros(1, 400, 2), warmup=0, qr_interval=5, dtype=dtype, device="cpu"
    )
    np.testing.assert_allclose(fine.exponents, math.log(0.01), rtol=1e-5)


@AT_A_FIXED_POINT
def test_progress_bar_when_verbose(capsys):
    lyapunov_spectrum(
        make_network("rnn", 1, hidden=3), torch.zeros(1, 20, 3), warmup=4, device="cpu", verbose=1
    )
    assert "Lyapunov steps" in capsys.readouterr().err


RNN = nn.RNN(3, 4, batch_first=True)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"n_exponents": 0}, ValueError, "n_exponents must be an int >= 1 or None, got 0"),
        ({"n_exponents": 5}, ValueError, "n_exponents must be <= the state size 4, got 5"),
        ({"n_exponents": 2.0}, TypeError, "n_exponents must be an int >= 1 or None, got 2.0"),
        ({"warmup": -1}, ValueError, "warmup must be an int >= 0, got -1"),
        (
            {"warmup": 10},
            ValueError,
            r"warmup=10 leaves no measured step .* expected fewer than 10 warm-up steps",
        ),
        ({"qr_interval": 0}, ValueError, "qr_interval must be an int >= 1 or 'auto', got 0"),
        (
            {"qr_interval": "fast"},
            ValueError,
            "qr_interval must be an int >= 1 or 'auto', got 'fast'",
        ),
        ({"qr_interval": 2.0}, TypeError, "qr_interval must be an int >= 1 or 'auto', got 2.0"),
        ({"memory_budget": 0}, ValueError, "memory_budget must be an int >= 1 or 'auto', got 0"),
        (
            {"memory_budget": "lots"},
            ValueError,
            "memory_budget must be an int >= 1 or 'auto', got 'lots'",
        ),
        ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
        ({"device": "mps"}, ValueError, "unsupported device 'mps'"),
        ({"device": 3}, TypeError, "device must be a string or torch.device"),
        ({"dtype": "float16"}, ValueError, "dtype must be float32 or float64.*'float16'"),
        ({"dtype": torch.int64}, ValueError, "dtype must be float32 or float64"),
        ({"dtype": None}, ValueError, "dtype must be float32 or float64.*got None"),
        (
            {"initial_state": torch.zeros(3)},
            ValueError,
            r"initial_state must have shape \(4,\) or \(2, 4\)",
        ),
        ({"initial_state": torch.full((4,), float("nan"))}, ValueError, "initial_state holds NaN"),
        ({"rnn": "core"}, ValueError, "no submodule 'core'"),
        (
            {"num_threads": 0},
            ValueError,
            "num_threads must be an int >= 1 or one of 'auto', None, got 0",
        ),
        (
            {"num_threads": "all"},
            ValueError,
            "num_threads must be an int >= 1 or one of 'auto', None, got 'all'",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lyapunov_spectrum(RNN, torch.zeros(2, 10, 3), **{"device": "cpu", "warmup": 2, **kwargs})


@pytest.mark.parametrize(
    "inputs,exc,match",
    [
        (torch.zeros(10), ValueError, r"inputs must have shape .* got shape \(10,\)"),
        (torch.zeros(1, 2, 10, 3), ValueError, r"got shape \(1, 2, 10, 3\)"),
        (
            torch.zeros(2, 10, 5),
            ValueError,
            "inputs have 5 features per step but the network expects input_size=3",
        ),
        (torch.zeros(0, 10, 3), ValueError, "no trajectory or no time step"),
        (torch.full((2, 10, 3), float("inf")), ValueError, "inputs holds NaN or infinite"),
        (np.full((2, 10, 3), np.nan), ValueError, "inputs holds NaN or infinite"),
        ([["a", "b"]], TypeError, "inputs must be a tensor or array of numbers"),
        (None, ValueError, "inputs are required"),
    ],
)
def test_bad_inputs_raise_clear_errors(inputs, exc, match):
    with pytest.raises(exc, match=match):
        lyapunov_spectrum(RNN, inputs, device="cpu")


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="device='cuda' was requested but CUDA is not available"):
        lyapunov_spectrum(RNN, torch.zeros(2, 10, 3), device="cuda")


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_cuda_matches_cpu(kind):
    module = make_network(kind, 2, hidden=16, scale=2.0)
    inputs = torch.randn(4, 200, 3, generator=torch.Generator().manual_seed(10), dtype=F64)
    cpu = lyapunov_spectrum(module, inputs, device="cpu")
    gpu = lyapunov_spectrum(module, inputs, device="cuda")
    assert gpu.device.startswith("cuda")
    assert next(module.parameters()).device.type == "cpu"
    # The sum of the full spectrum is the mean log|det J|, well conditioned:
    # the devices agree to rounding.
    np.testing.assert_allclose(
        gpu.per_trajectory.sum(axis=1), cpu.per_trajectory.sum(axis=1), rtol=0, atol=1e-11
    )
    # How a near-degenerate pair splits that sum is as sensitive as the problem
    # itself: here a one-ulp change of the inputs moves single exponents by up to
    # 4e-7 on the CPU alone. The devices may differ by about as much, no more.
    nudged = lyapunov_spectrum(module, inputs * (1 + 2**-52), device="cpu")
    sensitivity = np.abs(nudged.per_trajectory - cpu.per_trajectory).max()
    assert 1e-10 < sensitivity < 1e-6
    np.testing.assert_allclose(
        gpu.per_trajectory, cpu.per_trajectory, rtol=0, atol=1e-10 + 10 * sensitivity
    )


def test_as_dynamics_state_size_matches_result():
    module = make_network("lstm", 2, hidden=3)
    assert lyapunov_spectrum(module, torch.zeros(1, 5, 3), warmup=1, device="cpu").state_size == (
        as_dynamics(module).state_size
    )


def test_a_frame_that_underflows_within_one_step_says_what_to_try():
    # Weights x300 drive the units deep into saturation: a single step's Jacobian
    # contracts some directions below the smallest normal float64.
    torch.manual_seed(0)
    rnn = nn.RNN(4, 32)
    with torch.no_grad():
        for p in rnn.parameters():
            p.mul_(300)
    inputs = torch.randn(200, 3, 4, generator=torch.Generator().manual_seed(0))
    for dtype in ("float64", "float32"):
        with pytest.raises(FloatingPointError, match="within a single step") as info:
            lyapunov_spectrum(rnn, inputs, device="cpu", dtype=dtype)
        message = str(info.value)
        assert "smaller qr_interval" not in message
        assert "fewer n_exponents than 32" in message
        assert 'on_error="nan"' in message and "fewer steps or smaller inputs" in message
        assert ("dtype=float64" in message) == (dtype == "float32")
    # As the message says, the leading exponents are measured with fewer of them.
    result = lyapunov_spectrum(rnn, inputs, device="cpu", n_exponents=4)
    assert np.isfinite(result.exponents).all() and result.exponents[0] < 0


def test_constant_inputs_that_leave_a_network_at_a_fixed_point_warn():
    # Zero inputs and the zero initial state: an RNN without bias sits at its
    # fixed point 0, whose Jacobian is W_hh, whatever the steps.
    torch.manual_seed(0)
    rnn = nn.RNN(2, 4, bias=False)
    with pytest.warns(UserWarning, match=r"constant in time, and 1 of 1 model\(s\) .* fixed point"):
        result = lyapunov_spectrum(rnn, torch.zeros(60, 3, 2), warmup=10, device="cpu")
    assert result.fixed_point
    W = rnn.weight_hh_l0.detach().double().numpy()
    expected = np.log(np.abs(np.linalg.eigvals(W)))
    # A QR iteration over 50 powers of W converges to the log moduli of its eigenvalues
    # at a rate of their gaps over 50 steps: the leading one to about 1e-2.
    assert abs(result.exponents[0] - np.sort(expected)[-1]) < 0.05
    with pytest.warns(UserWarning, match="fixed point"):  # constant, not zero: it settles
        assert lyapunov_spectrum(rnn, torch.ones(60, 3, 2), warmup=10, device="cpu").fixed_point
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        # Driven: no fixed point.
        driven = lyapunov_spectrum(rnn, torch.randn(60, 3, 2), warmup=10, device="cpu")
        assert not driven.fixed_point
        # Constant inputs, but a chaotic network never settles: its attractor is measured.
        chaotic = chaotic_rnn(n=16, gain=3.0)
        x = torch.ones(2, 200, chaotic.input_size, dtype=F64)
        assert not lyapunov_spectrum(
            chaotic, x, warmup=50, batch_first=True, device="cpu"
        ).fixed_point
        # No input features at all: an autonomous system by design, not warned about.
        dyn = from_step(lambda s, x: 0.5 * s, state_size=2, input_size=0)
        zero = torch.zeros(2, 30, 0, dtype=F64)
        assert not lyapunov_spectrum(dyn, zero, warmup=5, device="cpu").fixed_point


# -- the orthonormalisation method --------------------------------------------------------


@pytest.mark.parametrize("kind", [nn.GRU, nn.LSTM])
def test_every_orthonormalisation_method_gives_the_same_spectrum(kind):
    from sklyap.orthonormalize import householder

    torch.manual_seed(3)
    models = [kind(3, 12) for _ in range(3)]
    x = torch.randn(250, 4, 3, generator=torch.Generator().manual_seed(4), dtype=F64)
    reference = lyapunov_spectrum(models, x, orthonormalize="householder", device="cpu")
    calls = []

    def mine(frames):  # a user's method: Householder, counted
        calls.append(frames.shape)
        return householder(frames)

    import sklyap.orthonormalize as module

    redone = []
    for method in ("cholesky_qr2", "auto", mine):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module, "householder", lambda f: redone.append(f) or householder(f))
            got = lyapunov_spectrum(models, x, orthonormalize=method, device="cpu")
        if method == "cholesky_qr2":  # CholeskyQR2 itself, not its fallback, made the frames
            assert redone == []
        for r, g in zip(reference, got):
            # Two backward-stable QRs differ by rounding, which the algorithm
            # amplifies in an LSTM's weakest exponents to ~1e-12 of the largest
            # (as between batch sizes, test_stacked); 1e-10 leaves room.
            scale = np.abs(r.exponents).max()
            np.testing.assert_allclose(g.exponents, r.exponents, rtol=0, atol=1e-10 * scale)
    assert calls and all(shape[1:] == calls[0][1:] for shape in calls)  # it was used


def test_orthonormalize_auto_takes_the_device_s_measured_choice(monkeypatch):
    import sklyap.orthonormalize as module

    used = []
    cholesky = module.cholesky_qr2
    monkeypatch.setitem(module.METHODS, "cholesky_qr2", lambda f: used.append(1) or cholesky(f))
    monkeypatch.setitem(module.AUTO, "cpu", "cholesky_qr2")  # a fake table
    lyapunov_spectrum(nn.GRU(2, 4), torch.randn(30, 2, 2), warmup=5, device="cpu")
    assert len(used) == 30  # one re-orthonormalisation a step
    monkeypatch.setitem(module.AUTO, "cpu", "householder")
    lyapunov_spectrum(nn.GRU(2, 4), torch.randn(30, 2, 2), warmup=5, device="cpu")
    assert len(used) == 30


def test_bad_orthonormalisation_methods_are_named():
    rnn, x = nn.RNN(2, 4), torch.randn(30, 2, 2)
    with pytest.raises(
        ValueError, match=r"orthonormalize must be one of 'auto', 'householder', 'cholesky_qr2'"
    ):
        lyapunov_spectrum(rnn, x, warmup=5, orthonormalize="gram_schmidt", device="cpu")
    shapes = r"rows of shape \(2, 4, 4\) with orthonormal rows and growth of shape \(2, 4\)"
    with pytest.raises(ValueError, match=shapes + r".*got shapes \(2, 4, 4\) and \(2, 4, 4\)"):
        lyapunov_spectrum(rnn, x, warmup=5, orthonormalize=lambda f: (f, f), device="cpu")
    # Right shapes, wrong contents: rows that are not orthonormal, negative growths.
    with pytest.raises(ValueError, match=r"R R\^T differs from the identity by"):
        lyapunov_spectrum(
            rnn, x, warmup=5, orthonormalize=lambda f: (f, f[..., 0].abs()), device="cpu"
        )

    def negative(frames):
        rows = torch.linalg.qr(frames.mT)[0].mT
        return rows, -frames[..., 0].abs() - 1

    with pytest.raises(ValueError, match="got negative growths"):
        lyapunov_spectrum(rnn, x, warmup=5, orthonormalize=negative, device="cpu")


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux's CPU affinity")
def test_free_cores_are_the_cores_other_processes_do_not_hold(monkeypatch):
    import sklyap._validation as validation

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(validation, "_cpu_quota", lambda: None)
    readings = iter([0, 5, 3, 3, 3])  # a passing spike is outvoted: the median
    monkeypatch.setattr(validation, "_running_elsewhere", lambda: next(readings))
    assert validation.free_cores() == 5
    monkeypatch.setattr(validation, "_running_elsewhere", lambda: 11)
    assert validation.free_cores() == 1  # never less than one
    monkeypatch.setattr(validation, "_running_elsewhere", lambda: None)  # cannot be read
    assert validation.free_cores() == 8
    # A quota of 2 CPUs (a container's --cpus=2): no more threads than that.
    monkeypatch.setattr(validation, "_cpu_quota", lambda: 2)
    assert validation.free_cores() == 2
    # Confined to 4 of the machine's 8 CPUs (a cpuset): the machine-wide count of
    # running tasks says nothing of those 4, and is not read.
    monkeypatch.setattr(validation, "_cpu_quota", lambda: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(validation, "_running_elsewhere", lambda: 60)
    assert validation.free_cores() == 4


def test_all_cores_means_the_free_ones_for_workers(monkeypatch, workers):
    import sklyap._planning

    numbers = [10**9, 10**9]  # work that pays for workers
    monkeypatch.setattr(sklyap._planning, "free_cores", lambda: 1)
    assert sklyap._planning.workers_for(-1, numbers, 100) == 1  # another process holds a core
    assert sklyap._planning.workers_for(2, numbers, 100) == 2  # a count asked for is kept
    monkeypatch.setattr(sklyap._planning, "free_cores", lambda: 2)
    assert sklyap._planning.workers_for(-1, numbers, 100) == min(2, os.cpu_count())


# -- device="auto": the cost model -------------------------------------------------------


def test_the_cost_model_chooses_the_faster_device():
    from sklyap.lyapunov import DEVICE_COSTS, choose_device

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    one_lstm = [as_dynamics(nn.LSTM(3, 64))]  # n = 128: cpu 0.11 + 6.97, cuda 8.67 + 0.29
    assert choose_device(one_lstm, cuda) == cpu
    sixteen = one_lstm * 16  # cpu 0.11 + 16 * 6.97 = 111.6, cuda 8.67 + 16 * 0.29 = 13.3
    assert choose_device(sixteen, cuda) == cuda
    small = [as_dynamics(nn.RNN(3, 16))] * 64  # cpu 0.42 + 64 * 0.094, cuda 0.68 + 64 * 0.38
    assert choose_device(small, cuda) == cpu
    assert choose_device([as_dynamics(nn.RNN(3, 512))], cuda) == cuda  # past the CPU's table
    # a interpolated linearly, b log-log (here b = n^2 / 256 on the CPU).
    fake = {"cpu": {16: (0.0, 1.0), 64: (0.0, 16.0)}, "cuda": {16: (2.0, 0.5), 64: (2.0, 0.5)}}
    assert choose_device([as_dynamics(nn.RNN(3, 16))], cuda, costs=fake) == cpu  # 1 < 2.5
    assert choose_device([as_dynamics(nn.RNN(3, 32))], cuda, costs=fake) == cuda  # 4 > 2.5
    # Systems of one state size are one batch: the fixed cost counts once per size.
    assert choose_device([as_dynamics(nn.RNN(3, 16))] * 8, cuda, costs=fake) == cuda  # 8 > 6
    mixed = [as_dynamics(nn.RNN(3, 16)), as_dynamics(nn.RNN(3, 17))]  # 2.07 < 2 * 2.5
    assert choose_device(mixed, cuda, costs=fake) == cpu
    assert set(DEVICE_COSTS) == {"cpu", "cuda"}


def test_device_auto_on_a_cuda_machine_follows_the_cost_model(monkeypatch):
    import sklyap._planning
    import sklyap._settings

    # A machine that reports CUDA, and a table by which the CPU is always faster:
    # the computation runs on the CPU, and nothing touches CUDA.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(
        sklyap._planning,
        "DEVICE_COSTS",
        {"cpu": {16: (0.0, 1.0), 256: (0.0, 1.0)}, "cuda": {16: (1.0, 2.0), 256: (1.0, 2.0)}},
    )
    x = torch.randn(2, 40, 3, dtype=F64)
    result = lyapunov_spectrum(nn.GRU(3, 8), x, warmup=5, batch_first=True)
    assert result.device == "cpu"

    def consulted(*args, **kwargs):
        raise AssertionError("a device said is not second-guessed")

    monkeypatch.setattr(sklyap._settings, "choose_device", consulted)
    said = lyapunov_spectrum(nn.GRU(3, 8), x, warmup=5, batch_first=True, device="cpu")
    assert said.device == "cpu"
