"""Networks that misbehave, models in training mode or elsewhere, interruptions, workers.

A sweep must never yield a silent garbage row, never change the user's
models, and survive being stopped.
"""

import os
import time
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import Ridge
from torch import nn

from sklyap import (
    AeLLERegressor,
    LyapunovSpectrumTransformer,
    SpectrumStatistics,
    as_dynamics,
    from_step,
    lyapunov_spectrum,
)
from sklyap.dynamics import NonFiniteParameterError

from helpers import AT_A_FIXED_POINT, FAST_SPECTRA

FAST = {**FAST_SPECTRA, "random_state": 0}


def _diverging(input_size=2):
    """A ReLU RNN whose state grows by 1e8 per step: it overflows float64 within 40 steps."""
    rnn = nn.RNN(input_size, 3, nonlinearity="relu", batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(1e8 * torch.eye(3))
        rnn.bias_hh_l0.fill_(1.0)
    return rnn


def _nan_weights(input_size=2):
    gru = nn.GRU(input_size, 4, batch_first=True)
    with torch.no_grad():
        gru.weight_hh_l0[1, 2] = float("nan")
    return gru


def _sweep():
    torch.manual_seed(0)
    return [
        nn.GRU(2, 4, batch_first=True),
        _diverging(),
        nn.LSTM(2, 3, batch_first=True),
        _nan_weights(),
        nn.GRU(2, 4, batch_first=True),
        nn.RNN(2, 5, batch_first=True),
    ]


def _state(models):
    return [{k: v.clone() for k, v in m.state_dict().items()} for m in models]


def _assert_unchanged(models, before):
    for model, saved in zip(models, before):
        after = model.state_dict()
        assert after.keys() == saved.keys()
        for key in saved:
            # Bit for bit, NaN included.
            assert torch.equal(after[key].isnan(), saved[key].isnan())
            assert torch.equal(after[key].nan_to_num(), saved[key].nan_to_num()), key


def test_misbehaving_networks_raise_by_default_naming_the_model():
    models = _sweep()
    lst = LyapunovSpectrumTransformer(**FAST)
    with pytest.raises(NonFiniteParameterError, match="model 3: .*'weight_hh_l0' holds NaN"):
        lst.fit(models)
    healthy = [m for i, m in enumerate(models) if i != 3]
    lst.fit(healthy)
    with pytest.raises(FloatingPointError, match="model 1: the network's state became NaN"):
        lst.transform(healthy)


def test_on_error_nan_gives_nan_rows_warns_once_and_keeps_the_others():
    models = _sweep()
    before = _state(models)
    lst = LyapunovSpectrumTransformer(on_error="nan", n_features=5, **FAST)
    with pytest.warns(RuntimeWarning) as caught:
        X = lst.fit_transform(models)
    messages = [str(w.message) for w in caught if "could not be measured" in str(w.message)]
    assert len(messages) == 1
    assert "2 of 6 models" in messages[0] and "indices [1, 3]" in messages[0]
    assert [w.filename for w in caught if "could not be measured" in str(w.message)] == [__file__]
    assert "model 1: the network's state became NaN" in messages[0]
    assert "model 3: parameters ['weight_hh_l0'] hold NaN" in messages[0]
    assert np.isnan(X[[1, 3]]).all()
    kept = np.isfinite(X).all(axis=1)
    assert kept.tolist() == [True, False, True, False, True, True]
    # The other rows are exactly what they are without the misbehaving networks.
    healthy = [models[i] for i in np.flatnonzero(kept)]
    alone = clone(lst).set_params(on_error="raise").fit(healthy).transform(healthy)
    np.testing.assert_array_equal(X[kept], alone)
    _assert_unchanged(models, before)
    with pytest.warns(RuntimeWarning, match="1 of 2 models"):
        results = lst.compute_spectra(models[:2])
    assert results[0].error is None and np.isfinite(results[0].exponents).all()
    assert "state became NaN" in results[1].error and np.isnan(results[1].exponents).all()
    assert "error=" in repr(results[1])


@AT_A_FIXED_POINT
def test_overflowing_frames_become_nan_rows_too():
    # Exponents of ln 1e3 = 6.9 per step: with 200 steps between QRs the frame overflows.
    linear = nn.RNN(2, 3, bias=False, batch_first=True).double()
    with torch.no_grad():
        linear.weight_hh_l0.copy_(1e3 * torch.eye(3, dtype=torch.float64))
    models = [nn.GRU(2, 3, batch_first=True), linear]
    inputs = np.zeros((1, 260, 2))
    lst = LyapunovSpectrumTransformer(
        inputs, warmup=10, qr_interval=200, on_error="nan", device="cpu"
    )
    with pytest.warns(RuntimeWarning, match="model 1: the tangent frame overflowed"):
        X = lst.fit_transform(models)
    assert np.isfinite(X[0]).all() and np.isnan(X[1]).all()


def test_lyapunov_spectrum_on_error_for_lists():
    models = [nn.GRU(2, 3, batch_first=True), _diverging(), nn.GRU(2, 3, batch_first=True)]
    inputs = torch.randn(2, 150, 2, generator=torch.Generator().manual_seed(0))
    results = lyapunov_spectrum(models, inputs, warmup=10, on_error="nan", device="cpu")
    assert [r.error is None for r in results] == [True, False, True]
    np.testing.assert_allclose(
        results[2].exponents,
        lyapunov_spectrum(models[2], inputs, warmup=10, device="cpu").exponents,
        rtol=0,
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="on_error must be one of 'raise', 'nan', got 'skip'"):
        lyapunov_spectrum(models, inputs, on_error="skip", device="cpu")
    with pytest.raises(ValueError, match="on_error must be one of 'raise', 'nan', got 'ignore'"):
        LyapunovSpectrumTransformer(on_error="ignore", **FAST).fit(models)


def test_estimators_downstream_refuse_nan_rows_and_the_recipe_works():
    with pytest.warns(RuntimeWarning, match="could not be measured"):
        X = LyapunovSpectrumTransformer(on_error="nan", n_features=4, **FAST).fit_transform(
            _sweep()
        )
    y = np.linspace(0.1, 0.9, len(X))
    for estimator in (AeLLERegressor(max_epochs=5, random_state=0), SpectrumStatistics()):
        with pytest.raises(ValueError, match=r"rows \[1, 3\].*on_error='nan'.*kept = "):
            estimator.fit(X, y)
    kept = np.isfinite(X).all(axis=1)
    AeLLERegressor(max_epochs=5, random_state=0, device="cpu").fit(X[kept], y[kept])
    Ridge().fit(SpectrumStatistics().fit_transform(X[kept]), y[kept])


class _Tagger(nn.Module):
    """Embedding and dropout before a two-layer LSTM with dropout between its layers."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Embedding(6, 3), nn.Dropout(0.5))
        self.rnn = nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True)


@pytest.mark.parametrize("encoder", ["encoder", lambda model, x: model.encoder(x)])
def test_training_mode_models_are_measured_in_evaluation_mode(encoder):
    torch.manual_seed(1)
    models = [_Tagger().train() for _ in range(3)]
    before = _state(models)
    tokens = np.random.RandomState(0).randint(0, 6, size=(2, 40))
    lst = LyapunovSpectrumTransformer(tokens, input_encoder=encoder, warmup=10, device="cpu")
    first = lst.fit_transform(models)
    np.testing.assert_array_equal(first, lst.transform(models))  # no dropout noise
    assert all(m.training and m.encoder[1].training for m in models)
    _assert_unchanged(models, before)
    evaluated = [_Tagger() for _ in range(3)]
    for copy_, model in zip(evaluated, models):
        copy_.load_state_dict(model.state_dict())
        copy_.eval()
    np.testing.assert_array_equal(lst.transform(evaluated), first)


def test_models_of_other_dtypes_are_stacked_with_the_rest():
    torch.manual_seed(2)
    models = [
        nn.GRU(2, 4, batch_first=True),
        nn.GRU(2, 4, batch_first=True).double(),
        nn.GRU(2, 4, batch_first=True).half(),
    ]
    lst = LyapunovSpectrumTransformer(**FAST)
    X = lst.fit_transform(models)
    for row, model in zip(X, models):
        reference = lyapunov_spectrum(model, lst.inputs_, warmup=10, device="cpu")
        np.testing.assert_allclose(row, reference.exponents, rtol=0, atol=1e-12)
    assert [p.dtype for m in models for p in list(m.parameters())[:1]] == [
        torch.float32,
        torch.float64,
        torch.float16,
    ]


@pytest.mark.cuda
def test_models_on_another_device_than_the_computation():
    torch.manual_seed(3)
    models = [
        nn.LSTM(2, 4, batch_first=True).cuda(),
        nn.LSTM(2, 4, batch_first=True),
        nn.GRU(2, 3, batch_first=True).cuda(),
    ]
    before = _state(models)
    on_cpu = LyapunovSpectrumTransformer(**FAST).fit_transform(models)
    on_gpu = LyapunovSpectrumTransformer(**{**FAST, "device": "cuda"}).fit_transform(models)
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=0, atol=1e-9)
    assert [next(m.parameters()).device.type for m in models] == ["cuda", "cpu", "cuda"]
    _assert_unchanged(models, before)


class _Interrupt:
    """A step function that raises KeyboardInterrupt on its ``at``-th call, as Ctrl-C would."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, state, x):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return 0.5 * torch.tanh(state) + x.sum(dim=1, keepdim=True)


def test_an_interrupted_transform_leaves_everything_intact():
    torch.manual_seed(4)
    models = [
        nn.GRU(2, 4, batch_first=True),
        nn.LSTM(2, 3, batch_first=True),
        None,
        nn.GRU(2, 4, batch_first=True),
    ]
    lst = LyapunovSpectrumTransformer(**FAST)
    models[2] = from_step(_Interrupt(at=10**9), 3, input_size=2)
    lst.fit(models)
    inputs = lst.inputs_.copy()
    expected = lst.transform(models)
    models[2] = from_step(_Interrupt(at=15), 3, input_size=2)
    before = _state([m for m in models if isinstance(m, nn.Module)])
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        lst.transform(models)
    assert torch.get_num_threads() == threads
    _assert_unchanged([m for m in models if isinstance(m, nn.Module)], before)
    np.testing.assert_array_equal(lst.inputs_, inputs)
    models[2] = from_step(_Interrupt(at=10**9), 3, input_size=2)
    np.testing.assert_array_equal(lst.transform(models), expected)


class _ThreadRecorder:
    """A step function that writes the torch thread count of the process running it."""

    def __init__(self, path):
        self.path = path

    def __call__(self, state, x):
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()} {torch.get_num_threads()}\n")
        return 0.5 * state


@pytest.mark.parametrize("num_threads", ["auto", None])
def test_workers_cap_their_threads(tmp_path, num_threads, workers):
    # A frame above lyapunov_spectrum's single-thread threshold (B * n * k > 2**15).
    n, B = 64, 65
    records = [tmp_path / f"threads{i}.txt" for i in range(2)]
    systems = [from_step(_ThreadRecorder(str(p)), n, input_size=1) for p in records]
    inputs = np.zeros((B, 3, 1))
    lst = LyapunovSpectrumTransformer(
        inputs, warmup=1, n_jobs=2, num_threads=num_threads, device="cpu"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # loky's warnings about its workers
        lst.fit_transform(systems)
    lines = [line.split() for p in records for line in p.read_text().splitlines()]
    assert {pid for pid, _ in lines} - {str(os.getpid())}, "ran in worker processes"
    # "auto": one thread for each of several batches, however large (workers are
    # the parallelism); None: the workers' own, joblib's cap of the cores over n_jobs.
    cap = 1 if num_threads == "auto" else max(1, (os.cpu_count() or 1) // 2)
    assert {int(count) for _, count in lines} == {cap}


@AT_A_FIXED_POINT
def test_small_work_runs_in_this_process_whatever_n_jobs(tmp_path):
    record = tmp_path / "threads.txt"
    systems = [from_step(_ThreadRecorder(str(record)), 3, input_size=1) for _ in range(4)]
    lst = LyapunovSpectrumTransformer(np.zeros((2, 3, 1)), warmup=1, n_jobs=2, device="cpu")
    lst.fit_transform(systems)
    assert {line.split()[0] for line in record.read_text().splitlines()} == {str(os.getpid())}


def test_work_goes_to_workers_when_they_pay_for_their_start():
    from sklyap._planning import WORKER_START_SECONDS, estimated_seconds, workers_for

    numbers = [10**6] * 4
    per_step = estimated_seconds(numbers, 1)
    # Two workers halve the time: they pay once it exceeds twice their start.
    below = int(2 * WORKER_START_SECONDS / per_step)
    assert workers_for(2, numbers, below) == 1
    assert workers_for(2, numbers, below + 1) == 2
    # Four workers save three quarters: 4/3 of their start.
    assert workers_for(4, numbers, int(4 / 3 * WORKER_START_SECONDS / per_step) + 1) == 4
    assert workers_for(1, numbers, 10**6) == 1
    # The estimate adds a cost per batch and step to a cost per number and step.
    assert estimated_seconds([10, 10], 3) == pytest.approx(
        estimated_seconds([10], 3) * 2, rel=1e-12
    )
    assert estimated_seconds([10**6], 2) == 2 * estimated_seconds([10**6], 1)
    # A backend the user chose is always given the work.
    with joblib.parallel_config(backend="threading"):
        assert workers_for(2, [1, 1], 1) == 2


def _assert_parallel_equals_serial(lst, models):
    serial = lst.fit_transform(models)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # loky's warnings about its workers
        parallel = clone(lst).set_params(n_jobs=2).fit(models).transform(models)
    np.testing.assert_array_equal(parallel, serial)


def test_parallel_jobs_give_identical_rows_for_large_frames(workers):
    # Frames of 8 * 160 * 160 numbers, above the single-thread size, in two
    # batches: one thread each, serially and in workers alike (the rounding of
    # matrix products depends on the number of threads).
    torch.manual_seed(5)
    models = [nn.GRU(2, 160, batch_first=True) for _ in range(2)]
    lst = LyapunovSpectrumTransformer(
        n_trajectories=8, n_steps=3, warmup=1, device="cpu", memory_budget=1, random_state=0
    )
    _assert_parallel_equals_serial(lst, models)


def test_batches_are_split_for_the_workers_without_changing_a_bit(workers):
    from sklyap._planning import split_for_workers

    assert split_for_workers([[0, 1, 2, 3, 4, 5, 6, 7], [8]], 1) == [[0, 1, 2, 3, 4, 5, 6, 7], [8]]
    assert split_for_workers([[0, 1, 2, 3, 4, 5, 6, 7], [8]], 2) == [
        [0, 1],
        [2, 3],
        [4, 5, 6, 7],
        [8],
    ]
    assert split_for_workers([[0], [1]], 4) == [[0], [1]]
    # One batch of 8 GRUs with n_jobs=1; four batches of 2 with n_jobs=2.
    torch.manual_seed(6)
    models = [nn.GRU(2, 8, batch_first=True) for _ in range(8)]
    lst = LyapunovSpectrumTransformer(**FAST)
    _assert_parallel_equals_serial(lst, models)


def test_transform_holds_what_it_read_only_within_its_budget():
    # transform reads each model once and holds it until its batch runs, up to
    # its budget; past it, a model is described by a few numbers (an RNNShell)
    # and read again then (benchmarks/bench_memory.py measures the memory).
    from sklyap.dynamics._torch_rnn import RNNShell

    models = [nn.LSTM(2, 64, batch_first=True), nn.GRU(2, 8, batch_first=True)]
    lst = LyapunovSpectrumTransformer(**FAST).fit(models)
    weights = [sum(p.nbytes for p in m.parameters()) for m in models]
    # Budgets: nothing; the LSTM alone (then the GRU would pass it); both.
    for budget, held in [(0, [0, 0]), (weights[0], [weights[0], 0]), (sum(weights), weights)]:
        sources = lst._sources(models, hold_bytes=budget)
        assert [s.nbytes for s in sources] == held
        assert all(isinstance(s.shell, RNNShell) for s in sources)
        assert [s.shell.state_size for s in sources] == [128, 8]
    assert not any(
        isinstance(getattr(s.shell, slot), torch.Tensor)
        for s in sources
        for slot in RNNShell.__slots__
    )


def test_held_inputs_count_against_the_budget_and_refused_models_hold_nothing():
    class Embedded(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(5, 2)
            self.gru = nn.GRU(2, 3, batch_first=True)

    models = [Embedded() for _ in range(3)]
    with torch.no_grad():
        models[1].gru.weight_hh_l0[0, 0] = float("nan")  # refused for its weights
    tokens = np.arange(40).reshape(2, 20) % 5
    lst = LyapunovSpectrumTransformer(
        tokens, input_encoder="embedding", warmup=5, on_error="nan", device="cpu"
    ).fit(models)
    weights = sum(p.nbytes for p in models[0].gru.parameters())
    inputs = 2 * 20 * 2 * 8  # float64 encoded inputs
    # Room for one model's weights and inputs: one of the two computed holds
    # both, the other nothing, and the refused one nothing whatever the room.
    sources = lst._sources(models, hold_bytes=weights + inputs)
    assert sorted(s.nbytes for s in sources) == [0, 0, weights + inputs]
    assert sources[1].nbytes == 0
    sources = lst._sources(models, hold_bytes=10**9)
    assert [s.nbytes for s in sources] == [weights + inputs, 0, weights + inputs]
    assert sources[1].shell.nonfinite_parameters and sources[1].read()[0] is not None


def test_a_stacked_system_is_refused_as_one_model():
    from sklyap.dynamics import TorchRNNDynamics, as_dynamics

    stack = TorchRNNDynamics.stack([as_dynamics(nn.GRU(2, 3, batch_first=True)) for _ in range(3)])
    with pytest.raises(ValueError, match="obj is a stack of 3 models; pass the models as a list"):
        lyapunov_spectrum(stack, torch.randn(3, 40, 2), warmup=5, device="cpu")
    results = lyapunov_spectrum(stack.unstack(), torch.randn(3, 40, 2), warmup=5, device="cpu")
    assert len(results) == 3


class _Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(5, 2)
        self.rnn = nn.GRU(2, 3, batch_first=True)


def test_encoded_inputs_are_checked_before_any_spectrum():
    torch.manual_seed(7)
    models = [_Tokens() for _ in range(3)]
    tokens = np.random.RandomState(0).randint(0, 5, size=(2, 30))
    cases = [
        (
            lambda m, x: m.embedding(x)[:, ::3],
            r"model 0: input_encoder returned inputs of shape "
            r"\(2, 10, 2\); it must keep .* \(2, 30\)",
        ),
        # 1, 2 and 3 trajectories: 6 rows in all, as 3 models of 2 would give.
        (
            lambda m, x: m.embedding(x[[0, 1, 1][: 1 + int(m.tag)]]),
            r"model 0: input_encoder returned inputs of shape \(1, 30, 2\)",
        ),
    ]
    for i, model in enumerate(models):
        model.tag = torch.tensor(i)
    for encoder, match in cases:
        lst = LyapunovSpectrumTransformer(tokens, input_encoder=encoder, warmup=10, device="cpu")
        with pytest.raises(ValueError, match=match):
            lst.fit(models).transform(models)


def test_non_finite_encoded_inputs_raise_or_give_a_nan_row():
    torch.manual_seed(8)
    models = [_Tokens() for _ in range(3)]
    with torch.no_grad():
        models[1].embedding.weight[2] = float("inf")
    tokens = np.full((2, 30), 2)
    lst = LyapunovSpectrumTransformer(tokens, input_encoder="embedding", warmup=10, device="cpu")
    with pytest.raises(ValueError, match="model 1: input_encoder returned NaN or infinite values"):
        lst.fit_transform(models)
    with pytest.warns(RuntimeWarning, match="model 1: input_encoder returned NaN or infinite"):
        X = lst.set_params(on_error="nan").fit_transform(models)
    assert np.isnan(X[1]).all() and np.isfinite(X[[0, 2]]).all()


def test_every_model_failing_gives_nan_rows_with_workers_too(workers):
    models = [_nan_weights(), _nan_weights()]
    lst = LyapunovSpectrumTransformer(on_error="nan", n_jobs=2, **FAST)
    with pytest.warns(RuntimeWarning, match="2 of 2 models could not be measured"):
        X = lst.fit_transform(models)
    assert X.shape == (2, 4) and np.isnan(X).all()


def test_failed_results_have_the_shapes_and_settings_of_the_others():
    models = [nn.GRU(2, 3, batch_first=True), _diverging(), _nan_weights()]
    lst = LyapunovSpectrumTransformer(on_error="nan", n_exponents=2, **FAST).fit(models)
    with pytest.warns(RuntimeWarning, match="2 of 3 models"):
        good, diverged, nan_weights = lst.compute_spectra(models)
    for failed in (diverged, nan_weights):
        assert failed.exponents.shape == good.exponents.shape == (2,)
        assert failed.per_trajectory.shape == good.per_trajectory.shape == (2, 2)
        assert failed.final_state.shape == (2, failed.state_size)
        assert (failed.n_steps, failed.warmup, failed.qr_interval, failed.dtype, failed.device) == (
            good.n_steps,
            good.warmup,
            good.qr_interval,
            good.dtype,
            good.device,
        )
    assert "weight_hh_l0" in nan_weights.error and "diverged" in diverged.error


def test_lyapunov_spectrum_lists_keep_going_past_nan_weights():
    inputs = torch.randn(2, 30, 2, generator=torch.Generator().manual_seed(1))
    models = [nn.GRU(2, 3, batch_first=True), _nan_weights()]
    with pytest.raises(NonFiniteParameterError, match="model 1: .*'weight_hh_l0' holds NaN"):
        lyapunov_spectrum(models, inputs, warmup=5, device="cpu")
    good, bad = lyapunov_spectrum(models, inputs, warmup=5, on_error="nan", device="cpu")
    assert good.error is None and np.isnan(bad.exponents).all()
    assert bad.error == "parameters ['weight_hh_l0'] hold NaN or infinite values"


def _wide_linear():
    """Exponents ln 0.9 and ln 1e-5: a spread of 11.4 nats, more than float32 resolves."""
    U = torch.linalg.qr(
        torch.randn(2, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    )[0]
    rnn = nn.RNN(2, 2, bias=False, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(U @ torch.diag(torch.tensor([0.9, 1e-5], dtype=torch.float64)) @ U.T)
    return rnn


@pytest.mark.parametrize("params", [{"memory_budget": 1}, {"n_jobs": 2}])
def test_the_float32_warning_is_given_once_in_the_calling_process(params, workers):
    models = [_wide_linear() for _ in range(3)]
    lst = LyapunovSpectrumTransformer(
        np.zeros((2, 40, 2)), warmup=10, dtype="float32", device="cpu", **params
    )
    lst.fit(models)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lst.transform(models)
    found = [w for w in caught if "float32 resolves" in str(w.message)]
    assert len(found) == 1 and "3 model(s) (indices [0, 1, 2])" in str(found[0].message)
    assert found[0].filename == __file__  # it points at the caller's line


def test_same_batches_give_the_same_bits_whatever_n_jobs(workers):
    # memory_budget=1: one model per batch, the same plan for any n_jobs.
    torch.manual_seed(7)
    models = [nn.LSTM(2, 6) for _ in range(4)]
    inputs = torch.randn(80, 3, 2, generator=torch.Generator().manual_seed(0))
    params = {"warmup": 20, "device": "cpu", "memory_budget": 1}
    serial = lyapunov_spectrum(models, inputs, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # loky's warnings about its workers
        parallel = lyapunov_spectrum(models, inputs, n_jobs=2, **params)
    for s, p in zip(serial, parallel):
        np.testing.assert_array_equal(p.exponents, s.exponents)


def _loky_workers():
    """Command lines of this process's loky worker processes (not its resource trackers)."""
    psutil = pytest.importorskip("psutil")
    lines = []
    for child in psutil.Process().children(recursive=True):
        try:
            line = " ".join(child.cmdline())
        except psutil.Error:  # ended meanwhile
            continue
        if "loky" in line and "resource_tracker" not in line:
            lines.append(line)
    return lines


def test_an_interrupted_run_ends_its_workers(workers):
    # A KeyboardInterrupt inside the compute path whose traceback is kept (as an
    # interactive session keeps the last one): the workers must not compute on,
    # then idle for loky's timeout (300 s).
    from sklyap.lyapunov import SpectrumSettings, run_spectra

    torch.manual_seed(0)
    systems = [as_dynamics(nn.GRU(2, 8)) for _ in range(6)]
    inputs = torch.randn(4, 60, 2, dtype=torch.float64)
    spectra = run_spectra(systems, inputs, SpectrumSettings(warmup=10, memory_budget=1), n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # joblib's "tasks cancelled"
        next(spectra)
        assert _loky_workers(), "the batches ran in loky's workers"
        with pytest.raises(KeyboardInterrupt) as kept:
            spectra.throw(KeyboardInterrupt)
    # Far below loky's 300 s, with room for a machine busy with other tests.
    deadline = time.monotonic() + 30.0
    while _loky_workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _loky_workers(), kept
