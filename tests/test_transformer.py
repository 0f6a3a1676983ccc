"""LyapunovSpectrumTransformer: features, inputs, encoders and the scikit-learn API."""

import copy
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError, SkipTestWarning
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks
from torch import nn

from sklyap import LyapunovSpectrumTransformer, lyapunov_spectrum, resample_spectra

from helpers import FAST_SPECTRA


def _population(n_models=6, input_size=2, seed=0):
    """RNNs whose recurrent gain, and so their largest exponent, increases with the index."""
    torch.manual_seed(seed)
    models = []
    for i in range(n_models):
        m = [nn.RNN, nn.GRU, nn.LSTM][i % 3](input_size, 4 + i % 2, batch_first=True)
        with torch.no_grad():
            m.weight_hh_l0.mul_(1.0 + 0.5 * i)
        models.append(m)
    return models


class _TokenModel(nn.Module):
    def __init__(self, vocab=7, dim=3, hidden=5):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.gru = nn.GRU(dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)


def test_features_are_the_spectra_of_each_model():
    torch.manual_seed(0)
    models = [
        nn.RNN(2, 4, batch_first=True),
        nn.GRU(2, 5, batch_first=True),
        nn.LSTM(2, 1, batch_first=True),
    ]
    lst = LyapunovSpectrumTransformer(random_state=0, **FAST_SPECTRA)
    features = lst.fit_transform(models)
    assert features.dtype == np.float64 and features.shape == (3, 5)
    for i, model in enumerate(models):
        expected = lyapunov_spectrum(model, lst.inputs_, warmup=10, device="cpu").exponents
        np.testing.assert_allclose(features[i], resample_spectra(expected, 5), rtol=0, atol=1e-12)
    # Model 1 (GRU, state size 5) is the longest: its row is its spectrum, untouched.
    expected_1 = lyapunov_spectrum(models[1], lst.inputs_, warmup=10, device="cpu").exponents
    np.testing.assert_array_equal(features[1], expected_1)
    # Model 0 (RNN, state size 4) is stretched over the same index range: endpoints kept.
    expected_0 = lyapunov_spectrum(models[0], lst.inputs_, warmup=10, device="cpu").exponents
    assert features[0, 0] == expected_0[0] and features[0, -1] == expected_0[-1]


def test_features_match_an_independent_numpy_implementation():
    """Rows against the QR algorithm written out in NumPy (explicit Jacobians,
    one trajectory at a time), not against the engine the transformer runs on."""
    from helpers import benettin_numpy, orthogonal

    models = []
    for seed, gain in enumerate((0.5, 1.0, 2.0)):
        # Distinct singular values (1.5 to 0.5 times the gain) keep the exponents
        # apart, so each is well conditioned and the two codes agree to rounding.
        model = nn.RNN(3, 5, batch_first=True).double()
        singular = torch.linspace(1.5, 0.5, 5, dtype=torch.float64)
        with torch.no_grad():
            model.weight_hh_l0.copy_(
                gain * orthogonal(5, seed) * singular @ orthogonal(5, seed + 7)
            )
            gen = torch.Generator().manual_seed(seed)
            model.weight_ih_l0.copy_(0.3 * torch.randn(5, 3, generator=gen, dtype=torch.float64))
            model.bias_ih_l0.copy_(0.05 * torch.randn(5, generator=gen, dtype=torch.float64))
            model.bias_hh_l0.zero_()
        models.append(model)
    inputs = torch.randn(4, 70, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    features = LyapunovSpectrumTransformer(inputs, warmup=20, device="cpu").fit_transform(models)
    for row, model in zip(features, models):
        expected = benettin_numpy(model, inputs.numpy(), k=5, warmup=20, interval=1)
        np.testing.assert_allclose(row, expected.mean(axis=0), rtol=0, atol=1e-11)


def test_gaussian_inputs_are_seeded_and_scaled():
    models = _population(2)
    a = LyapunovSpectrumTransformer(
        n_trajectories=8, n_steps=300, warmup=20, input_scale=0.5, random_state=3, device="cpu"
    ).fit(models)
    assert a.inputs_.shape == (8, 320, 2) and a.inputs_.dtype == np.float64
    assert abs(a.inputs_.std() - 0.5) < 0.02 and abs(a.inputs_.mean()) < 0.02
    b = clone(a).fit(models)
    np.testing.assert_array_equal(a.inputs_, b.inputs_)
    np.testing.assert_array_equal(a.transform(models), b.transform(models))
    c = clone(a).set_params(random_state=4).fit(models)
    assert not np.array_equal(a.inputs_, c.inputs_)
    rng = np.random.RandomState(5)
    d = clone(a).set_params(random_state=rng).fit(models)
    assert not np.array_equal(a.inputs_, d.inputs_)


def test_fit_fixes_the_width_for_later_models():
    small, large = nn.GRU(2, 3, batch_first=True), nn.LSTM(2, 6, batch_first=True)
    lst = LyapunovSpectrumTransformer(random_state=0, **FAST_SPECTRA).fit([small])
    assert lst.n_features_out_ == 3
    np.testing.assert_array_equal(lst.state_sizes_, [3])
    out = lst.transform([large, small])
    assert out.shape == (2, 3)
    spectrum = lyapunov_spectrum(large, lst.inputs_, warmup=10, device="cpu").exponents
    assert spectrum.shape == (12,)
    np.testing.assert_allclose(out[0], resample_spectra(spectrum, 3), atol=1e-12)
    assert out[0, 0] == spectrum[0] and out[0, -1] == spectrum[-1]
    fixed = LyapunovSpectrumTransformer(n_features=10, random_state=0, **FAST_SPECTRA).fit([small])
    assert fixed.transform([large]).shape == (1, 10)
    assert list(fixed.get_feature_names_out()[[0, 9]]) == ["lyapunov0", "lyapunov9"]


def test_partial_spectra():
    models = _population(3)
    lst = LyapunovSpectrumTransformer(n_exponents=2, random_state=0, **FAST_SPECTRA)
    out = lst.fit_transform(models)
    full = LyapunovSpectrumTransformer(random_state=0, **FAST_SPECTRA).fit(models)
    for i, model in enumerate(models):
        expected = lyapunov_spectrum(model, full.inputs_, warmup=10, device="cpu").exponents
        np.testing.assert_allclose(out[i], expected[:2], atol=1e-10)


def test_explicit_inputs_are_shared_and_copied():
    inputs = np.random.RandomState(0).randn(3, 30, 2)
    original = inputs.copy()
    models = _population(2)
    lst = LyapunovSpectrumTransformer(torch.as_tensor(inputs), warmup=5, device="cpu")
    out = lst.fit_transform(models)
    np.testing.assert_array_equal(lst.inputs_, inputs)
    np.testing.assert_array_equal(inputs, original)
    expected = lyapunov_spectrum(models[0], inputs, warmup=5, device="cpu").exponents
    np.testing.assert_allclose(out[0], resample_spectra(expected, 5), atol=1e-12)


def test_input_encoder_by_submodule_path_and_callable():
    torch.manual_seed(0)
    models = [_TokenModel(), _TokenModel()]
    tokens = np.random.RandomState(1).randint(0, 7, size=(2, 40))
    lst = LyapunovSpectrumTransformer(tokens, input_encoder="embedding", warmup=10, device="cpu")
    out = lst.fit_transform(models)
    for i, model in enumerate(models):
        with torch.no_grad():
            embedded = model.embedding(torch.as_tensor(tokens)).double()
        expected = lyapunov_spectrum(model, embedded, warmup=10, device="cpu").exponents
        np.testing.assert_allclose(out[i], expected, atol=1e-10)
    one_hot = LyapunovSpectrumTransformer(
        tokens,
        input_encoder=lambda model, x: (
            nn.functional.one_hot(x, 7).double() @ model.embedding.weight.double()
        ),
        warmup=10,
        device="cpu",
    )
    np.testing.assert_allclose(one_hot.fit_transform(models), out, atol=1e-10)


def test_transform_encodes_each_model_once_within_its_budget():
    # Read once and held until its batch runs; past the budget (1 byte here)
    # read again then, with the same result.
    torch.manual_seed(0)
    models = [_TokenModel() for _ in range(3)]
    tokens = np.random.RandomState(1).randint(0, 7, size=(2, 40))
    calls = []

    def embed(model, x):
        calls.append(model.embedding.weight[0, 0].item())
        return model.embedding(x).double()

    weight = [m.embedding.weight[0, 0].item() for m in models]
    out = {}
    for budget, times in [("auto", 1), (1, 2)]:
        lst = LyapunovSpectrumTransformer(
            tokens, input_encoder=embed, warmup=10, memory_budget=budget, device="cpu"
        ).fit(models)
        calls.clear()
        out[budget] = lst.transform(models)
        assert sorted(calls) == sorted(weight * times)
    # The budget also cuts the batches (stacked against one by one): rounding only.
    np.testing.assert_allclose(out["auto"], out[1], rtol=0, atol=1e-12)


def test_an_in_place_encoder_cannot_change_the_fitted_inputs():
    tokens = np.random.RandomState(1).randint(0, 7, size=(2, 30)).astype(float)

    def doubling(model, x):
        x.mul_(2)  # a careless encoder
        return nn.functional.one_hot(x.long() % 7, 7).double() @ model.embedding.weight.double()

    torch.manual_seed(0)
    lst = LyapunovSpectrumTransformer(tokens, input_encoder=doubling, warmup=5, device="cpu")
    lst.fit_transform([_TokenModel(), _TokenModel(), _TokenModel()])
    np.testing.assert_array_equal(lst.inputs_, tokens)


def test_submodule_encoder_reads_fitted_skorch_nets():
    class FittedNet:  # what as_dynamics reads of a fitted skorch net: module_
        def __init__(self, module):
            self.module_ = module

    torch.manual_seed(0)
    model = _TokenModel()
    tokens = np.random.RandomState(1).randint(0, 7, size=(2, 30))
    lst = LyapunovSpectrumTransformer(tokens, input_encoder="embedding", warmup=5, device="cpu")
    np.testing.assert_array_equal(lst.fit_transform([FittedNet(model)]), lst.transform([model]))


def test_models_are_never_modified():
    models = _population(3)
    models[1].train()
    before = [copy.deepcopy(m.state_dict()) for m in models]
    LyapunovSpectrumTransformer(random_state=0, dtype="float64", **FAST_SPECTRA).fit_transform(
        models
    )
    for model, state in zip(models, before):
        for key, value in state.items():
            assert model.state_dict()[key].dtype == torch.float32
            assert torch.equal(model.state_dict()[key], value)
    assert models[1].training


def test_pipeline_grid_search_cross_validation_clone_and_pickle(tmp_path):
    models = _population(8)
    lst = LyapunovSpectrumTransformer(n_features=4, random_state=0, **FAST_SPECTRA)
    features = clone(lst).fit_transform(models)
    y = features[:, 0]  # the largest exponent: a target the features predict well
    pipe = make_pipeline(clone(lst), StandardScaler(), Ridge(alpha=1e-3))
    pipe.fit(models, y)
    assert pipe.score(models, y) > 0.99
    scores = cross_val_score(pipe, models, y, cv=KFold(2), scoring="neg_mean_absolute_error")
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    search = GridSearchCV(pipe, {"ridge__alpha": [1e-3, 1e3]}, cv=KFold(2))
    search.fit(models, y)
    assert search.best_params_ == {"ridge__alpha": 1e-3}
    fitted = clone(lst).fit(models)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(models[:2]), fitted.transform(models[:2]))
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    loaded = joblib.load(tmp_path / "pipe.joblib")
    np.testing.assert_array_equal(loaded.predict(models), pipe.predict(models))


def test_parallel_jobs_give_identical_rows(workers):
    models = _population(4)
    lst = LyapunovSpectrumTransformer(random_state=0, **FAST_SPECTRA).fit(models)
    serial = lst.transform(models)
    parallel = clone(lst).set_params(n_jobs=2).fit(models).transform(models)
    np.testing.assert_array_equal(parallel, serial)


def test_progress_bar_and_compute_spectra(capsys):
    models = _population(2)
    lst = LyapunovSpectrumTransformer(random_state=0, verbose=1, **FAST_SPECTRA).fit(models)
    results = lst.compute_spectra(models)
    assert "Lyapunov spectra" in capsys.readouterr().err
    assert [r.state_size for r in results] == [4, 5]
    assert results[0].per_trajectory.shape == (2, 4)


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_tags_renamed,
        estimator_checks.check_valid_tag_types,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
        estimator_checks.check_mixin_order,
    ],
    ids=lambda check: check.__name__,
)
def test_scikit_learn_api_checks_that_need_no_array(check):
    check("LyapunovSpectrumTransformer", LyapunovSpectrumTransformer())


def test_scikit_learn_checks_never_feed_it_arrays():
    """Its tags say X is not an array, so the array checks are skipped, not failed."""
    with pytest.warns(SkipTestWarning):
        estimator_checks.check_estimator(LyapunovSpectrumTransformer())


def test_transform_before_fit():
    with pytest.raises(NotFittedError):
        LyapunovSpectrumTransformer().transform(_population(1))


@pytest.mark.parametrize(
    "X,exc,match",
    [
        ([], ValueError, "empty list"),
        (
            nn.GRU(2, 3, batch_first=True),
            TypeError,
            r"X must be a list of models .* wrap a single model as \[model\]",
        ),
        (np.zeros((3, 4)), TypeError, "X must be a list of models"),
        (
            [nn.GRU(2, 3, batch_first=True), nn.Linear(2, 2)],
            TypeError,
            "model 1: Linear contains no recurrent module",
        ),
        (
            [nn.LSTM(2, 3, bidirectional=True, batch_first=True)],
            ValueError,
            "model 0: LSTM is bidirectional",
        ),
        (
            [nn.GRU(2, 3, batch_first=True), nn.GRU(3, 3, batch_first=True)],
            ValueError,
            r"models have input sizes \[2, 3\]",
        ),
    ],
)
def test_bad_model_lists(X, exc, match):
    with pytest.raises(exc, match=match):
        LyapunovSpectrumTransformer(**FAST_SPECTRA).fit(X)


@pytest.mark.parametrize(
    "params,exc,match",
    [
        ({"n_exponents": 4}, ValueError, r"n_exponents=4 exceeds the state size of models \[0\]"),
        ({"n_exponents": 0}, ValueError, "n_exponents must be an int >= 1 or None, got 0"),
        ({"n_features": 0}, ValueError, "n_features must be an int >= 1 or None, got 0"),
        ({"n_steps": 0}, ValueError, "n_steps must be an int >= 1, got 0"),
        ({"n_trajectories": 1.5}, TypeError, "n_trajectories must be an int >= 1, got 1.5"),
        ({"warmup": -3}, ValueError, "warmup must be an int >= 0, got -3"),
        ({"qr_interval": 0}, ValueError, "qr_interval must be an int >= 1 or 'auto', got 0"),
        ({"input_scale": -1.0}, ValueError, "input_scale must be a float > 0, got -1.0"),
        ({"dtype": "float16"}, ValueError, "dtype must be float32 or float64"),
        ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
        ({"input_encoder": 3}, TypeError, "input_encoder must be a submodule path"),
        ({"input_encoder": "embedding"}, ValueError, "input_encoder needs task inputs"),
        (
            {"inputs": np.zeros((2, 30, 5))},
            ValueError,
            "model 0: the inputs have 5 features per step but the network expects input_size=2",
        ),
        (
            {"inputs": np.zeros((2, 8, 2))},
            ValueError,
            "warmup=10 leaves no measured step in inputs of 8 time steps",
        ),
        (
            {"inputs": np.zeros((2, 30, 2, 1))},
            ValueError,
            r"inputs must have shape .* got shape \(2, 30, 2, 1\)",
        ),
        ({"inputs": np.full((2, 30, 2), np.nan)}, ValueError, "inputs hold NaN or infinite values"),
        ({"inputs": np.array([[["a"]]])}, TypeError, "inputs must hold numbers"),
    ],
)
def test_bad_parameters(params, exc, match):
    with pytest.raises(exc, match=match):
        LyapunovSpectrumTransformer(**{**FAST_SPECTRA, **params}).fit_transform(
            [nn.GRU(2, 3, batch_first=True)]
        )


def test_bad_encoders():
    tokens = np.zeros((2, 20), dtype=int)
    with pytest.raises(ValueError, match="model 0 .* has no submodule 'embed'"):
        LyapunovSpectrumTransformer(tokens, input_encoder="embed", **FAST_SPECTRA).fit_transform(
            [_TokenModel()]
        )
    with pytest.raises(ValueError, match=r"input_encoder returned \(2, 20\)"):
        LyapunovSpectrumTransformer(
            tokens, input_encoder=lambda m, x: x.double(), **FAST_SPECTRA
        ).fit_transform([_TokenModel()])


def test_constant_inputs_that_leave_networks_at_a_fixed_point_warn_once():
    models = [nn.RNN(2, 4, bias=False, batch_first=True) for _ in range(3)]
    lst = LyapunovSpectrumTransformer(np.zeros((2, 40, 2)), warmup=10, device="cpu")
    with pytest.warns(UserWarning, match=r"3 of 3 model\(s\) \(indices \[0, 1, 2\]\)") as record:
        lst.fit_transform(models)
    assert sum("fixed point" in str(w.message) for w in record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        LyapunovSpectrumTransformer(random_state=0, **FAST_SPECTRA).fit_transform(models)
    # Each model's own inputs (an encoder), stacked in one batch: only the model
    # whose own inputs are constant counts, whatever else shares its batch.
    models[0].silent = True

    def encode(model, ids):
        if getattr(model, "silent", False):
            return torch.zeros(*ids.shape, 2, dtype=torch.float64)
        return torch.randn(*ids.shape, 2, generator=torch.Generator().manual_seed(0))

    lst = LyapunovSpectrumTransformer(np.zeros((2, 40)), input_encoder=encode, warmup=10)
    with pytest.warns(UserWarning, match=r"1 of 3 model\(s\) \(indices \[0\]\)"):
        lst.fit_transform(models)
