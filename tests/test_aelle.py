"""Tests of sklyap.aelle: the AeLLE autoencoder regressor."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import skorch.net
import torch
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.exceptions import DeviceWarning

from sklyap import AeLLERegressor, SpectrumResampler, SpectrumStatistics
from sklyap.aelle import _AeLLELoss, _split_indices
from sklyap.datasets import make_spectra

# A small, fast configuration used throughout.
FAST = dict(latent_dim=4, hidden_dims=(32,), lr=1e-2, max_epochs=100, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_spectra()


@pytest.fixture(scope="module")
def small():
    return make_spectra(n_samples=120, n_exponents=12, random_state=1)


@pytest.fixture(scope="module")
def fitted(small):
    X, y = small
    return AeLLERegressor(**{**FAST, "max_epochs": 30}).fit(X, y)


# --------------------------------------------------------------------------
# scikit-learn API checks


def _expected_failed_checks(estimator):
    # Every check passes for the instance below; the dict is kept so that a
    # future failure has to be listed here with its reason.
    return {}


@parametrize_with_checks(
    # check_regressors_train sets ``alpha = 0.01`` on any estimator with an
    # ``alpha`` parameter (meant for linear models); with the prediction loss
    # weighted that little, a latent code of 8 (close to the 10 features) is
    # needed for the code to keep the one informative feature. Few epochs keep
    # the whole run quick.
    [
        AeLLERegressor(
            latent_dim=8,
            hidden_dims=(32,),
            max_epochs=20,
            lr=1e-2,
            batch_size=32,
            random_state=0,
        )
    ],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------
# Learning: accuracy prediction and the embedding


def test_predicts_nonlinear_accuracy_and_beats_linear_baselines(data):
    X, y = data
    cv = KFold(5, shuffle=True, random_state=0)
    aelle = cross_val_score(AeLLERegressor(**FAST), X, y, cv=cv)
    # The two documented baselines: summary statistics + ridge, and ridge on
    # the standardised raw spectra.
    stats = cross_val_score(make_pipeline(SpectrumStatistics(), RidgeCV()), X, y, cv=cv)
    raw = cross_val_score(make_pipeline(StandardScaler(), RidgeCV()), X, y, cv=cv)
    # Measured: AeLLE ~0.99 per fold, statistics ~0.93, raw ridge ~0.90; the
    # steep sigmoid is what the linear baselines cannot follow.
    assert aelle.min() > 0.95
    assert aelle.mean() > stats.mean() + 0.03
    assert aelle.mean() > raw.mean() + 0.03
    assert 0.8 < stats.mean() < 0.97
    assert 0.8 < raw.mean() < 0.97


def test_embedding_orders_networks_by_accuracy(data):
    X, y = data
    est = AeLLERegressor(**FAST).fit(X, y)
    Z = est.transform(X)
    assert Z.shape == (len(X), 4) and Z.dtype == np.float64
    pc1 = PCA(n_components=1).fit_transform(Z)[:, 0]
    # The sign of a principal component is arbitrary. Measured ~0.93.
    assert abs(spearmanr(pc1, y).statistic) > 0.8


def test_reconstruction(fitted, small):
    X, _ = small
    X_rec = fitted.inverse_transform(fitted.transform(X))
    assert X_rec.shape == X.shape and X_rec.dtype == np.float64
    # Reconstruction error well below the spread of the spectra around their
    # mean spectrum (two factors, a latent code of 4).
    err = np.abs(X_rec - X).mean()
    spread = np.abs(X - X.mean(axis=0)).mean()
    assert err < 0.2 * spread


def test_units_of_y_and_x(small):
    # X and y are standardised inside: an affine change of units of y gives
    # the same predictions in the new units, and per-column affine changes of
    # X give the same embedding.
    X, y = small
    params = {**FAST, "max_epochs": 15}
    base = AeLLERegressor(**params).fit(X, y)
    scaled_y = AeLLERegressor(**params).fit(X, 1000.0 * y + 5.0)
    assert_allclose(scaled_y.predict(X), 1000.0 * base.predict(X) + 5.0, rtol=1e-4)
    col_scale = np.linspace(0.5, 3.0, X.shape[1])
    X2 = X * col_scale - 7.0
    scaled_x = AeLLERegressor(**params).fit(X2, y)
    assert_allclose(scaled_x.transform(X2), base.transform(X), rtol=1e-4, atol=1e-5)
    assert_allclose(scaled_x.predict(X2), base.predict(X), rtol=1e-4, atol=1e-6)
    assert_allclose(base.y_mean_, y.mean())
    assert_allclose(base.y_scale_, y.std())
    assert_allclose(base.x_mean_, X.mean(axis=0))


def test_loss_is_l1_plus_alpha_mse():
    # Two samples, one feature: reconstructions off by 1 and 3 (L1 = 2),
    # predictions off by 2 and 0 (MSE = 2), alpha = 0.5: 2 + 0.5 * 2 = 3.
    loss = _AeLLELoss(n_features=1, alpha=0.5)
    y_pred = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    y_true = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert loss(y_pred, y_true).item() == pytest.approx(3.0)


# --------------------------------------------------------------------------
# Training loop: early stopping, determinism, verbosity


def test_early_stopping_restores_best_weights_by_value(small):
    X, y = small
    est = AeLLERegressor(
        latent_dim=4,
        hidden_dims=(32,),
        lr=3e-2,
        max_epochs=300,
        n_iter_no_change=5,
        random_state=0,
    ).fit(X, y)
    curve = est.validation_loss_curve_
    assert est.n_iter_ < 300  # it did stop early
    assert est.n_iter_ == len(curve) == len(est.loss_curve_)
    assert est.best_epoch_ < est.n_iter_
    assert curve[est.best_epoch_ - 1] == curve.min()
    # Recompute the validation loss of the weights the estimator kept. Had
    # the best state been kept by reference, it would have followed training
    # to the last epoch and this would equal curve[-1] instead.
    split_seed = check_random_state(0).randint(np.iinfo(np.int32).max, size=3)[2]
    train, valid = _split_indices(len(X), 0.1, split_seed)
    # 0.1 * 120 is 12.000000000000002 in floating point; 12 are held out.
    assert len(valid) == 12 and len(train) == 108
    assert np.intersect1d(train, valid).size == 0
    Xs = (X - est.x_mean_) / est.x_scale_
    ys = (y - est.y_mean_) / est.y_scale_
    target = torch.as_tensor(np.hstack([Xs, ys[:, None]])[valid], dtype=torch.float32)
    module = est.net_.module_.eval()
    with torch.no_grad():
        out = module(torch.as_tensor(Xs[valid], dtype=torch.float32))
    loss = _AeLLELoss(X.shape[1], 1.0)(out, target).item()
    assert loss == pytest.approx(curve.min(), rel=1e-5)
    assert loss != pytest.approx(curve[-1], rel=1e-3)


def test_validation_split_size():
    # ceil(fraction * n): 0.1 * 15 -> 2 held out; 0.25 * 10 -> 3.
    assert [len(part) for part in _split_indices(15, 0.1, 0)] == [13, 2]
    assert [len(part) for part in _split_indices(10, 0.25, 0)] == [7, 3]


def test_without_early_stopping_runs_all_epochs(small):
    X, y = small
    est = AeLLERegressor(**{**FAST, "max_epochs": 7, "early_stopping": False}).fit(X, y)
    assert est.n_iter_ == est.best_epoch_ == 7
    assert est.validation_loss_curve_ is None
    # All samples were used for training: 120 samples, batches of 64 -> 2.
    assert est.net_.history[-1, "train_batch_count"] == 2


def test_determinism_and_global_rng_untouched(small):
    X, y = small
    params = {**FAST, "max_epochs": 10}
    state = torch.get_rng_state()
    first = AeLLERegressor(**params).fit(X, y)
    # Fitting neither draws from nor reseeds the global torch RNG ...
    assert torch.equal(torch.get_rng_state(), state)
    torch.rand(100)  # ... and its state does not matter.
    second = AeLLERegressor(**params).fit(X, y)
    assert_array_equal(first.predict(X), second.predict(X))
    assert_array_equal(first.transform(X), second.transform(X))
    other = AeLLERegressor(**{**params, "random_state": 1}).fit(X, y)
    assert not np.allclose(other.predict(X), first.predict(X))


def test_fit_transform_matches_fit_then_transform(small):
    X, y = small
    params = {**FAST, "max_epochs": 5}
    assert_array_equal(
        AeLLERegressor(**params).fit_transform(X, y),
        AeLLERegressor(**params).fit(X, y).transform(X),
    )


def test_verbose(small, capsys):
    X, y = small
    AeLLERegressor(**{**FAST, "max_epochs": 3, "verbose": 0}).fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    AeLLERegressor(**{**FAST, "max_epochs": 3, "verbose": 1}).fit(X, y)
    out, _ = capsys.readouterr()
    lines = out.strip().splitlines()
    assert "epoch" in lines[0] and "train_loss" in lines[0] and "valid_loss" in lines[0]
    # One row per epoch, starting with the epoch number.
    rows = [line.split()[0] for line in lines[2:] if line.split()[0].isdigit()]
    assert rows == ["1", "2", "3"]


def test_inputs_not_modified(small):
    X, y = small
    X_in, y_in = X.copy(), y.copy()
    est = AeLLERegressor(**{**FAST, "max_epochs": 2}).fit(X_in, y_in)
    est.predict(X_in)
    est.inverse_transform(est.transform(X_in))
    assert_array_equal(X_in, X)
    assert_array_equal(y_in, y)


def test_feature_names_out(fitted):
    assert fitted.get_feature_names_out().tolist() == ["aelle0", "aelle1", "aelle2", "aelle3"]


# --------------------------------------------------------------------------
# Model selection


def test_pipeline_grid_search_on_ragged_spectra():
    # Networks of two sizes: spectra of 12 and 8 exponents, NaN-padded.
    X, y = make_spectra(n_samples=150, n_exponents=12, random_state=2)
    X_short, _ = make_spectra(n_samples=150, n_exponents=8, random_state=2)
    X = X.copy()
    X[1::2, :8] = X_short[1::2]
    X[1::2, 8:] = np.nan
    pipe = make_pipeline(
        SpectrumResampler(n_features=10),
        AeLLERegressor(hidden_dims=(16,), lr=1e-2, max_epochs=30, random_state=0),
    )
    grid = GridSearchCV(
        pipe,
        {"aelleregressor__latent_dim": [1, 3], "aelleregressor__alpha": [0.0, 2.0]},
        cv=KFold(3, shuffle=True, random_state=0),
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    scores = {
        (p["aelleregressor__latent_dim"], p["aelleregressor__alpha"]): s
        for p, s in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"])
    }
    # alpha = 0 never trains the prediction head, which keeps its random
    # initial weights: its R^2 is whatever that projection of the code gives
    # (measured 0.81 and -3.5). Training the head (alpha = 2) does better
    # (measured 0.96 and 0.98) and the search picks it.
    assert grid.best_params_["aelleregressor__alpha"] == 2.0
    assert min(scores[(1, 2.0)], scores[(3, 2.0)]) > 0.9
    assert max(scores[(1, 0.0)], scores[(3, 0.0)]) < min(scores[(1, 2.0)], scores[(3, 2.0)])
    assert grid.best_score_ == max(scores.values())
    best = grid.best_estimator_
    latent = best.named_steps["aelleregressor"].latent_dim
    assert best.transform(X).shape == (150, latent)


def test_clone(fitted):
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params()
    assert not hasattr(twin, "net_")
    twin.set_params(latent_dim=3, hidden_dims=(8, 4))
    assert twin.get_params()["hidden_dims"] == (8, 4)


# --------------------------------------------------------------------------
# Persistence


def _outputs(est, X):
    return est.predict(X), est.transform(X), est.inverse_transform(est.transform(X))


def test_pickle_and_joblib_round_trips(fitted, small, tmp_path):
    X, _ = small
    expected = _outputs(fitted, X)
    restored = pickle.loads(pickle.dumps(fitted))
    path = tmp_path / "aelle.joblib"
    joblib.dump(fitted, path)
    loaded = joblib.load(path)
    for est in (restored, loaded):
        for got, want in zip(_outputs(est, X), expected):
            assert_array_equal(got, want)
    # The validation split is not carried along in the pickle.
    assert restored.net_.train_split is None


def _pickle_as_if_on_cuda(est, monkeypatch):
    """Pickle a CPU-fitted estimator as if it had been trained on CUDA.

    torch tags every serialised storage with its device through
    ``torch.serialization.location_tag``. Tagging the storages of the module's
    parameters and of the optimizer's state ``cuda:0`` (the tensors that live
    on the GPU after training there; generator states and the like stay on
    the CPU), and marking the net and the estimator as living on CUDA, gives
    the bytes a CUDA machine would write.
    """
    est = pickle.loads(pickle.dumps(est))  # a private copy to relabel
    est.device_ = "cuda"
    est.net_.device = "cuda"
    on_gpu = [*est.net_.module_.parameters(), *est.net_.module_.buffers()]
    for state in est.net_.optimizer_.state.values():
        on_gpu += [v for v in state.values() if torch.is_tensor(v) and v.dim() > 0]
    pointers = {t.untyped_storage().data_ptr() for t in on_gpu}
    original = torch.serialization.location_tag

    def location_tag(storage):
        return "cuda:0" if storage.data_ptr() in pointers else original(storage)

    with monkeypatch.context() as m:
        m.setattr(torch.serialization, "location_tag", location_tag)
        payload = pickle.dumps(est)
    assert len(pointers) > 0
    return payload


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CPU-only machine")
def test_cuda_pickled_estimator_loads_on_cpu(fitted, small, monkeypatch, tmp_path):
    X, _ = small
    payload = _pickle_as_if_on_cuda(fitted, monkeypatch)

    # Control: the payload really holds CUDA tensors. Loading them where
    # they were saved (no mapping) fails on this CPU-only machine.
    with monkeypatch.context() as m:
        m.setattr(skorch.net, "get_map_location", lambda device: torch.device("cuda"))
        with pytest.raises(RuntimeError, match="CUDA"):
            pickle.loads(payload)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = pickle.loads(payload)
    categories = {w.category for w in caught}
    assert DeviceWarning in categories  # skorch mapped the tensors to the CPU
    assert any("fitted on 'cuda'" in str(w.message) for w in caught)
    assert est.device_ == "cpu"
    assert torch.device(est.net_.device).type == "cpu"
    assert all(p.device.type == "cpu" for p in est.net_.module_.parameters())
    for got, want in zip(_outputs(est, X), _outputs(fitted, X)):
        assert_array_equal(got, want)

    # joblib.load goes through the same mechanism.
    path = tmp_path / "cuda_pickled.pkl"
    path.write_bytes(payload)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est2 = joblib.load(path)
    assert est2.device_ == "cpu"
    assert_array_equal(est2.predict(X), fitted.predict(X))


def test_dropout_generator_not_pickled(small):
    X, y = small
    est = AeLLERegressor(**{**FAST, "max_epochs": 2, "dropout": 0.2}).fit(X, y)
    assert isinstance(est.net_.module_._dropout_generator, torch.Generator)
    restored = pickle.loads(pickle.dumps(est))
    assert restored.net_.module_._dropout_generator is None
    assert_array_equal(restored.predict(X), est.predict(X))


@pytest.mark.parametrize(
    "device,exc,match",
    [
        ("tpu", ValueError, "unknown device 'tpu'"),
        ("mps", ValueError, "unsupported device 'mps'"),
        (3, TypeError, "device must be a string or torch.device, got 3"),
    ],
)
def test_bad_devices(small, device, exc, match):
    X, y = small
    with pytest.raises(exc, match=match):
        AeLLERegressor(**{**FAST, "device": device}).fit(X, y)


def test_cuda_request_without_cuda(small, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = small
    with pytest.raises(ValueError, match="device='cuda' was requested but CUDA is not"):
        AeLLERegressor(**{**FAST, "device": "cuda"}).fit(X, y)
    est = AeLLERegressor(**{**FAST, "max_epochs": 1, "device": "auto"}).fit(X, y)
    assert est.device_ == "cpu"


@pytest.mark.parametrize("num_threads,during", [("auto", 1), (None, "unchanged"), (2, 2)])
def test_thread_count_while_fitting_and_predicting(small, monkeypatch, num_threads, during):
    X, y = small
    seen = []
    forward = _AeLLELoss.forward

    def spy(self, y_pred, y_true):
        seen.append(torch.get_num_threads())
        return forward(self, y_pred, y_true)

    monkeypatch.setattr(_AeLLELoss, "forward", spy)
    before = torch.get_num_threads()
    est = AeLLERegressor(**{**FAST, "max_epochs": 2, "num_threads": num_threads}).fit(X, y)
    est.predict(X)
    assert torch.get_num_threads() == before
    assert set(seen) == {before if during == "unchanged" else during}
    with pytest.raises(ValueError, match="num_threads must be >= 1"):
        AeLLERegressor(num_threads=0).fit(X, y)


@pytest.mark.cuda
def test_fit_on_cuda_predicts_like_cpu_shape(small):
    X, y = small
    est = AeLLERegressor(**{**FAST, "max_epochs": 5, "device": "cuda"}).fit(X, y)
    assert est.device_ == "cuda"
    assert est.predict(X).shape == (len(X),)


# --------------------------------------------------------------------------
# Bad input: a clear error, before any training


@pytest.mark.parametrize(
    "make_bad, error, match",
    [
        (
            lambda X, y: (np.where(np.eye(*X.shape, dtype=bool), np.nan, X), y),
            ValueError,
            "Input X contains NaN",
        ),
        (
            lambda X, y: (np.where(np.eye(*X.shape, dtype=bool), np.inf, X), y),
            ValueError,
            "Input X contains infinity",
        ),
        (lambda X, y: (X[:, 0], y), ValueError, "Expected 2D array, got 1D array"),
        (lambda X, y: (X, y[:-1]), ValueError, "inconsistent numbers of samples"),
        (
            lambda X, y: (X, np.where(np.arange(len(y)) == 3, np.nan, y)),
            ValueError,
            "Input y contains NaN",
        ),
        (lambda X, y: (X[:1], y[:1]), ValueError, "1 sample"),
    ],
)
def test_bad_data(small, make_bad, error, match):
    X, y = small
    X_bad, y_bad = make_bad(X, y)
    est = AeLLERegressor(**FAST)
    with pytest.raises(error, match=match):
        est.fit(X_bad, y_bad)
    assert not hasattr(est, "net_")


def test_too_few_samples_for_validation_split(small):
    X, y = small
    # ceil(0.5 * 3) = 2 samples held out leaves 1 for training.
    est = AeLLERegressor(**{**FAST, "validation_fraction": 0.5})
    with pytest.raises(ValueError, match=r"too few samples for the validation split: n_samples=3"):
        est.fit(X[:3], y[:3])
    assert not hasattr(est, "net_")
    # Without early stopping, three samples are enough.
    AeLLERegressor(**{**FAST, "max_epochs": 1, "early_stopping": False}).fit(X[:3], y[:3])


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"alpha": -0.5}, ValueError, r"alpha must be in \[0.0, inf\), got -0.5"),
        ({"alpha": "big"}, TypeError, "alpha must be a real number, got 'big'"),
        ({"latent_dim": 0}, ValueError, "latent_dim must be >= 1, got 0"),
        ({"latent_dim": 2.5}, TypeError, "latent_dim must be an int, got 2.5"),
        (
            {"hidden_dims": (16, 0)},
            ValueError,
            r"hidden_dims must hold positive ints, got \(16, 0\)",
        ),
        ({"hidden_dims": 16}, TypeError, "hidden_dims must be a tuple of positive ints, got 16"),
        ({"activation": "softmax"}, ValueError, "activation must be one of .*got 'softmax'"),
        ({"dropout": 1.0}, ValueError, r"dropout must be in \[0.0, 1.0\), got 1.0"),
        ({"lr": 0.0}, ValueError, r"lr must be in \(0.0, inf\), got 0.0"),
        ({"max_epochs": 0}, ValueError, "max_epochs must be >= 1, got 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
        (
            {"validation_fraction": 1.0},
            ValueError,
            r"validation_fraction must be in \(0.0, 1.0\), got 1.0",
        ),
        ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change must be >= 1, got 0"),
        ({"early_stopping": "yes"}, TypeError, "early_stopping must be a bool, got 'yes'"),
        ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
        ({"random_state": "seed"}, ValueError, "'seed' cannot be used to seed"),
    ],
)
def test_bad_params(small, params, error, match):
    X, y = small
    est = AeLLERegressor(**{**FAST, **params})  # __init__ accepts anything
    with pytest.raises(error, match=match):
        est.fit(X, y)
    assert not hasattr(est, "net_")


def test_bad_input_after_fit(fitted, small):
    X, _ = small
    with pytest.raises(ValueError, match="X has 3 features, but AeLLERegressor is expecting 12"):
        fitted.predict(X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features, but AeLLERegressor is expecting 12"):
        fitted.transform(X[:, :3])
    with pytest.raises(
        ValueError, match="Z has 3 columns, but AeLLERegressor has a latent code of dimension 4"
    ):
        fitted.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        fitted.predict(np.where(np.arange(12) == 3, np.nan, X[:1]))
    # A row of NaN: a network the transformer could not measure (on_error="nan").
    nan_row = np.vstack([X[:2], np.full((1, 12), np.nan)])
    for method in (fitted.predict, fitted.transform, lambda A: clone(fitted).fit(A, [0, 1, 2])):
        with pytest.raises(ValueError, match=r"X has NaN rows \[2\]; .*on_error='nan'.* drop "
                                             r"them first, kept = np.isfinite"):  # fmt: skip
            method(nan_row)
