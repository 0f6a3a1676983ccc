"""Tests of sklyap.aelle: the AeLLE ensembles (regressor and shared machinery)."""

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
from skorch.exceptions import DeviceWarning

from sklyap import (
    AeLLEClassifier,
    AeLLERegressor,
    SpectrumResampler,
    SpectrumStatistics,
)
from sklyap.aelle._base import bootstrap_weights, split_indices
from sklyap.aelle._network import AeLLELoss, EnsembleAutoencoder
from sklyap.datasets import make_spectra

from helpers import AELLE_FAST as FAST
from helpers import numpy_forward


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
# Learning at the defaults: accuracy prediction and the embedding


def test_defaults_predict_nonlinear_accuracy_and_beat_linear_baselines(data):
    X, y = data
    cv = KFold(5, shuffle=True, random_state=0)
    aelle = cross_val_score(AeLLERegressor(random_state=0), X, y, cv=cv)
    # The two documented baselines: summary statistics + ridge, and ridge on
    # the standardised raw spectra.
    stats = cross_val_score(make_pipeline(SpectrumStatistics(), RidgeCV()), X, y, cv=cv)
    raw = cross_val_score(make_pipeline(StandardScaler(), RidgeCV()), X, y, cv=cv)
    # make_spectra's ceiling is R^2 ~0.99 (noise 0.02); the steep sigmoid of
    # the top exponent is what the linear baselines cannot follow (~0.93, 0.90).
    assert aelle.min() > 0.95
    assert aelle.mean() > stats.mean() + 0.03
    assert aelle.mean() > raw.mean() + 0.03


def test_embedding_orders_networks_by_accuracy(data):
    X, y = data
    Z = AeLLERegressor(random_state=0).fit(X, y).transform(X)
    assert Z.shape == (len(X), 8) and Z.dtype == np.float64
    pc1 = PCA(n_components=1).fit_transform(Z)[:, 0]
    # The sign of a principal component is arbitrary.
    assert abs(spearmanr(pc1, y).statistic) > 0.8


def test_reconstruction(small):
    X, y = small
    est = AeLLERegressor(**{**FAST, "prediction_weight": 1.0}).fit(X, y)
    X_rec = est.inverse_transform(est.transform(X))
    assert X_rec.shape == X.shape and X_rec.dtype == np.float64
    # Two factors behind the spectra, a latent code of 4: the reconstruction
    # error is well below the spread of the spectra around their mean.
    err = np.abs(X_rec - X).mean()
    spread = np.abs(X - X.mean(axis=0)).mean()
    assert err < 0.2 * spread


# --------------------------------------------------------------------------
# The ensemble: independent members, trained together


def test_members_do_not_depend_on_the_size_of_the_ensemble():
    one = EnsembleAutoencoder(6, 2, (5,), 1, "tanh", 0.0, n_members=1, seed=3)
    three = EnsembleAutoencoder(6, 2, (5,), 1, "tanh", 0.0, n_members=3, seed=3)
    for p1, p3 in zip(one.parameters(), three.parameters()):
        assert_array_equal(p1[0].detach(), p3[0].detach())
    # ... and differ from each other.
    assert not torch.equal(three.encoder[0].weight[0], three.encoder[0].weight[1])


def test_each_member_gets_the_gradient_of_its_own_loss():
    # The ensemble's loss is the sum of its members' losses, so the gradient
    # of member m is the gradient of member m's loss alone: checked against a
    # one-member module holding member m's weights, in float64.
    rng = np.random.default_rng(0)
    n, d, M = 9, 6, 3
    ensemble = EnsembleAutoencoder(d, 2, (5, 4), 1, "tanh", 0.0, n_members=M, seed=0).double()
    weights = rng.integers(0, 3, size=(n, M)).astype(float) + 0.5
    target = torch.as_tensor(np.hstack([rng.normal(size=(n, d + 1)), weights]))
    x = target[:, :d]
    loss = AeLLELoss(d, 7.0, "regression", M)
    loss(ensemble(x), target).backward()
    for m in range(M):
        single = EnsembleAutoencoder(d, 2, (5, 4), 1, "tanh", 0.0, n_members=1, seed=0).double()
        with torch.no_grad():
            for ps, pe in zip(single.parameters(), ensemble.parameters()):
                ps.copy_(pe[m : m + 1])
        own = target[:, [*range(d + 1), d + 1 + m]]
        AeLLELoss(d, 7.0, "regression", 1)(single(x), own).backward()
        for ps, pe in zip(single.parameters(), ensemble.parameters()):
            assert_allclose(pe.grad[m].numpy(), ps.grad[0].numpy(), rtol=1e-12, atol=1e-14)


def test_first_member_is_the_single_network(small):
    # Trained jointly with others, member 0 follows the path it follows alone
    # (full batches, no dropout: the same data in the same order). float32
    # products of different batch counts round differently, hence the
    # tolerance after 20 Adam steps.
    X, y = small
    params = {**FAST, "max_epochs": 20, "dropout": 0.0}
    alone = AeLLERegressor(**{**params, "n_estimators": 1}).fit(X, y)
    joint = AeLLERegressor(**{**params, "n_estimators": 4}).fit(X, y)
    assert_allclose(joint.transform(X), alone.transform(X), rtol=1e-4, atol=1e-5)
    members = joint._head_outputs(X)[..., 0] * joint.y_scale_ + joint.y_mean_
    assert_allclose(members[0], alone.predict(X), rtol=1e-4, atol=1e-5)
    assert np.abs(members[1] - members[0]).max() > 1e-3  # the others differ


def test_predictions_match_an_independent_forward_pass(fitted, small):
    X, _ = small
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    codes, heads = numpy_forward(fitted.net_.module_, Xs)
    members = heads[..., 0] * fitted.y_scale_ + fitted.y_mean_
    y_pred, y_std = fitted.predict(X, return_std=True)
    assert_allclose(y_pred, members.mean(axis=0), rtol=1e-12, atol=1e-12)
    assert_allclose(y_std, members.std(axis=0), rtol=1e-10, atol=1e-12)
    assert_array_equal(fitted.predict(X), y_pred)
    assert_allclose(fitted.transform(X), codes[0], rtol=1e-12, atol=1e-12)


def test_single_network_has_no_spread(small):
    X, y = small
    est = AeLLERegressor(**{**FAST, "n_estimators": 1, "max_epochs": 5}).fit(X, y)
    _, std = est.predict(X, return_std=True)
    assert_array_equal(std, 0.0)


def test_loss_is_l1_plus_weighted_mse_per_member():
    # Two samples, one feature, two members. Member 0: reconstructions off by
    # 1 and 3 (L1 2), predictions off by 2 and 0 (MSE 2): 2 + 0.5 * 2 = 3.
    # Member 1 weighs sample 0 three times and sample 1 once: L1 (3*1 + 3)/4 =
    # 1.5, MSE (3*4 + 0)/4 = 3: 1.5 + 0.5 * 3 = 3.
    loss = AeLLELoss(n_features=1, prediction_weight=0.5, head="regression", n_members=2)
    member = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    y_pred = torch.stack([member, member])
    y_true = torch.tensor([[0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 1.0, 1.0]])
    assert_allclose(loss.per_member(y_pred, y_true).numpy(), [3.0, 3.0])
    assert loss(y_pred, y_true).item() == pytest.approx(6.0)


def test_bootstrap_weights_are_a_resampling():
    # A weighted loss with bootstrap counts equals the plain loss over the
    # resampled rows.
    rng = np.random.default_rng(1)
    n, d = 12, 3
    w = bootstrap_weights(n, 2, seed=5)
    assert w.shape == (n, 2) and (w.sum(axis=0) == n).all()
    assert not np.array_equal(w[:, 0], w[:, 1])
    y_pred = torch.as_tensor(rng.normal(size=(2, n, d + 1)))
    y_true = torch.as_tensor(np.hstack([rng.normal(size=(n, d + 1)), w]))
    weighted = AeLLELoss(d, 2.0, "regression", 2).per_member(y_pred, y_true)
    for m in range(2):
        rows = np.repeat(np.arange(n), w[:, m].astype(int))
        plain = AeLLELoss(d, 2.0, "regression", 1).per_member(
            y_pred[m : m + 1, rows],
            torch.cat([y_true[rows, : d + 1], torch.ones(len(rows), 1, dtype=y_true.dtype)], dim=1),
        )
        assert weighted[m].item() == pytest.approx(plain.item(), rel=1e-12)


def test_bootstrap_changes_the_members(small):
    X, y = small
    params = {**FAST, "max_epochs": 10, "dropout": 0.0}
    plain = AeLLERegressor(**params).fit(X, y)
    boot = AeLLERegressor(**{**params, "bootstrap": True}).fit(X, y)
    assert not np.allclose(plain.predict(X), boot.predict(X))
    assert_array_equal(
        boot.predict(X), AeLLERegressor(**{**params, "bootstrap": True}).fit(X, y).predict(X)
    )


# --------------------------------------------------------------------------
# Training loop: resolved settings, early stopping, determinism, verbosity


def test_auto_settings_follow_the_number_of_samples():
    X, y = make_spectra(n_samples=1100, n_exponents=4, random_state=0)
    fast = {
        "latent_dim": 2,
        "hidden_dims": (4,),
        "max_epochs": 2,
        "n_estimators": 1,
        "random_state": 0,
    }
    tiny = AeLLERegressor(**fast).fit(X[:500], y[:500])
    # Up to 512 samples: one batch of everything.
    assert tiny.batch_size_ == 500 and tiny.net_.history[-1, "train_batch_count"] == 1
    small = AeLLERegressor(**fast).fit(X[:999], y[:999])
    # Below 1,000 samples: no validation split, batches of 512.
    assert small.early_stopping_ is False and small.validation_loss_curve_ is None
    assert small.batch_size_ == 512 and small.net_.history[-1, "train_batch_count"] == 2
    large = AeLLERegressor(**fast).fit(X, y)
    # 1,100 samples: 110 held out, 990 trained on in batches of 512.
    assert large.early_stopping_ is True and len(large.validation_loss_curve_) == 2
    assert large.batch_size_ == 512 and large.net_.history[-1, "train_batch_count"] == 2
    forced = AeLLERegressor(**{**fast, "early_stopping": False, "batch_size": 100}).fit(X, y)
    assert forced.early_stopping_ is False and forced.net_.history[-1, "train_batch_count"] == 11


def test_early_stopping_restores_best_weights_by_value(small):
    X, y = small
    est = AeLLERegressor(
        latent_dim=4,
        hidden_dims=(32,),
        lr=3e-2,
        max_epochs=300,
        n_iter_no_change=5,
        early_stopping=True,
        n_estimators=2,
        random_state=0,
        device="cpu",
    ).fit(X, y)
    curve = est.validation_loss_curve_
    assert est.n_iter_ < 300  # it did stop early
    assert est.n_iter_ == len(curve) == len(est.loss_curve_)
    assert est.best_epoch_ < est.n_iter_
    assert curve[est.best_epoch_ - 1] == curve.min()
    # Recompute the validation loss of the weights the estimator kept. Had
    # the best state been kept by reference, it would have followed training
    # to the last epoch and this would equal curve[-1] instead.
    split_seed = check_random_state(0).randint(np.iinfo(np.int32).max, size=4)[2]
    train, valid = split_indices(len(X), 0.1, split_seed)
    # 0.1 * 120 is 12.000000000000002 in floating point; 12 are held out.
    assert len(valid) == 12 and len(train) == 108
    assert_allclose(est.x_mean_, X.mean(axis=0))  # standardised on all samples
    Xs = (X[valid] - est.x_mean_) / est.x_scale_
    ys = (y[valid] - est.y_mean_) / est.y_scale_
    target = torch.as_tensor(np.hstack([Xs, ys[:, None], np.ones((12, 2))]), dtype=torch.float32)
    module = est.net_.module_.eval()
    with torch.no_grad():
        out = module(torch.as_tensor(Xs, dtype=torch.float32))
    loss = AeLLELoss(X.shape[1], est.prediction_weight, "regression", 2)(out, target).item() / 2
    assert loss == pytest.approx(curve.min(), rel=1e-5)
    assert loss != pytest.approx(curve[-1], rel=1e-3)


def test_validation_split_size():
    # ceil(fraction * n): 0.1 * 15 -> 2 held out; 0.25 * 10 -> 3.
    assert [len(part) for part in split_indices(15, 0.1, 0)] == [13, 2]
    assert [len(part) for part in split_indices(10, 0.25, 0)] == [7, 3]


def test_determinism_and_global_rng_untouched(small):
    X, y = small
    params = {**FAST, "max_epochs": 10, "bootstrap": True}
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
    out, err = capsys.readouterr()
    assert out == "" and "AeLLERegressor" in err and "/3 " in err  # a bar over epochs
    AeLLERegressor(**{**FAST, "max_epochs": 3, "verbose": 2, "early_stopping": True}).fit(X, y)
    out, _ = capsys.readouterr()
    lines = out.strip().splitlines()
    assert "epoch" in lines[0] and "train_loss" in lines[0] and "valid_loss" in lines[0]
    rows = [line.split()[0] for line in lines[2:] if line.split()[0].isdigit()]
    assert rows == ["1", "2", "3"]


def test_inputs_not_modified(small):
    X, y = small
    X_in, y_in = X.copy(), y.copy()
    est = AeLLERegressor(**{**FAST, "max_epochs": 2}).fit(X_in, y_in)
    est.predict(X_in, return_std=True)
    est.inverse_transform(est.transform(X_in))
    assert_array_equal(X_in, X)
    assert_array_equal(y_in, y)


def test_feature_names_out(fitted):
    assert fitted.get_feature_names_out().tolist() == ["aelle0", "aelle1", "aelle2", "aelle3"]


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
        AeLLERegressor(hidden_dims=(16,), lr=1e-2, max_epochs=30, n_estimators=2, random_state=0),
    )
    grid = GridSearchCV(
        pipe,
        {"aelleregressor__latent_dim": [1, 3], "aelleregressor__prediction_weight": [0.0, 2.0]},
        cv=KFold(3, shuffle=True, random_state=0),
    )
    grid.fit(X, y)
    assert len(grid.cv_results_["params"]) == 4
    scores = {
        (p["aelleregressor__latent_dim"], p["aelleregressor__prediction_weight"]): s
        for p, s in zip(grid.cv_results_["params"], grid.cv_results_["mean_test_score"])
    }
    # A prediction weight of 0 never trains the head, which keeps its random
    # initial weights: its R^2 is whatever that projection of the code gives.
    # Training the head does better, and the search picks it.
    assert grid.best_params_["aelleregressor__prediction_weight"] == 2.0
    assert min(scores[(1, 2.0)], scores[(3, 2.0)]) > 0.9
    assert max(scores[(1, 0.0)], scores[(3, 0.0)]) < min(scores[(1, 2.0)], scores[(3, 2.0)])
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
    return (
        *est.predict(X, return_std=True),
        est.transform(X),
        est.inverse_transform(est.transform(X)),
    )


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


def test_dropout_masks():
    settings = {
        "n_features": 4,
        "latent_dim": 2,
        "hidden_dims": (8,),
        "n_outputs": 1,
        "activation": "tanh",
        "dropout": 0.25,
        "n_members": 3,
        "seed": 5,
    }
    module = EnsembleAutoencoder(**settings)
    x = torch.ones(3, 2000, 50)
    dropped = module._drop(x)
    # Inverted dropout: a kept unit is scaled by 1 / (1 - p).
    values, counts = torch.unique(dropped, return_counts=True)
    assert_allclose(values.numpy(), [0.0, 1 / 0.75])
    assert abs(counts[0].item() / x.numel() - 0.25) < 0.005
    # Seeded: a module with the same seed draws the same masks; eval mode draws none.
    twin = EnsembleAutoencoder(**settings)
    assert torch.equal(twin._drop(x), dropped)
    assert not torch.equal(module._drop(x), dropped)  # the next masks differ
    assert module.eval()._drop(x) is x


def test_dropout_generator_not_pickled(small):
    X, y = small
    # On the CPU the masks come from numpy (on a GPU from a torch generator).
    est = AeLLERegressor(**{**FAST, "max_epochs": 2, "dropout": 0.2, "device": "cpu"}).fit(X, y)
    assert isinstance(est.net_.module_._dropout_generator, np.random.Generator)
    restored = pickle.loads(pickle.dumps(est))
    assert restored.net_.module_._dropout_generator is None
    assert_array_equal(restored.predict(X), est.predict(X))


# --------------------------------------------------------------------------
# Devices and threads


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
    forward = AeLLELoss.forward

    def spy(self, y_pred, y_true):
        seen.append(torch.get_num_threads())
        return forward(self, y_pred, y_true)

    monkeypatch.setattr(AeLLELoss, "forward", spy)
    before = torch.get_num_threads()
    params = {**FAST, "max_epochs": 2, "num_threads": num_threads, "device": "cpu"}
    est = AeLLERegressor(**params).fit(X, y)
    est.predict(X)
    assert torch.get_num_threads() == before
    assert set(seen) == {before if during == "unchanged" else during}


@pytest.mark.cuda
@pytest.mark.parametrize("Estimator", [AeLLERegressor, AeLLEClassifier])
def test_fit_on_cuda_agrees_with_cpu(small, Estimator):
    X, y = small
    if Estimator is AeLLEClassifier:
        y = y > np.median(y)
    params = {**FAST, "max_epochs": 5, "dropout": 0.0}
    gpu = Estimator(**{**params, "device": "cuda"}).fit(X, y)
    cpu = Estimator(**{**params, "device": "cpu"}).fit(X, y)
    assert gpu.device_ == "cuda"
    # Five float32 Adam steps from the same initial weights on two devices.
    assert_allclose(gpu.transform(X), cpu.transform(X), rtol=1e-3, atol=1e-4)


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
        (lambda X, y: (X, np.array(["good", "bad"] * 60)), ValueError, "y must hold numbers"),
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
    est = AeLLERegressor(**{**FAST, "validation_fraction": 0.5, "early_stopping": True})
    with pytest.raises(ValueError, match=r"too few samples for the validation split: n_samples=3"):
        est.fit(X[:3], y[:3])
    assert not hasattr(est, "net_")
    # With the defaults (no validation split below 1,000 samples), three are enough.
    AeLLERegressor(**{**FAST, "max_epochs": 1}).fit(X[:3], y[:3])


@pytest.mark.parametrize(
    "params, error, match",
    [
        (
            {"prediction_weight": -0.5},
            ValueError,
            r"prediction_weight must be a float >= 0, got -0.5",
        ),
        (
            {"prediction_weight": "big"},
            TypeError,
            "prediction_weight must be a float >= 0, got 'big'",
        ),
        ({"latent_dim": 0}, ValueError, "latent_dim must be an int >= 1, got 0"),
        ({"latent_dim": 2.5}, TypeError, "latent_dim must be an int >= 1, got 2.5"),
        (
            {"hidden_dims": (16, 0)},
            ValueError,
            r"hidden_dims must be a tuple of ints >= 1, got \(16, 0\)",
        ),
        ({"hidden_dims": 16}, TypeError, "hidden_dims must be a tuple of ints >= 1, got 16"),
        ({"n_estimators": 0}, ValueError, "n_estimators must be an int >= 1, got 0"),
        ({"bootstrap": "yes"}, TypeError, "bootstrap must be one of True, False, got 'yes'"),
        ({"activation": "softmax"}, ValueError, "activation must be one of .*got 'softmax'"),
        ({"dropout": 1.0}, ValueError, r"dropout must be a float in \[0, 1\), got 1.0"),
        ({"weight_decay": -1e-3}, ValueError, "weight_decay must be a float >= 0, got -0.001"),
        ({"lr": 0.0}, ValueError, "lr must be a float > 0, got 0.0"),
        ({"max_epochs": 0}, ValueError, "max_epochs must be an int >= 1, got 0"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1 or 'auto', got 0"),
        (
            {"batch_size": "full"},
            ValueError,
            "batch_size must be an int >= 1 or 'auto', got 'full'",
        ),
        (
            {"early_stopping": "yes"},
            ValueError,
            "early_stopping must be one of 'auto', True, False, got 'yes'",
        ),
        (
            {"validation_fraction": 1.0},
            ValueError,
            r"validation_fraction must be a float in \(0, 1\), got 1.0",
        ),
        ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change must be an int >= 1, got 0"),
        ({"num_threads": 0}, ValueError, "num_threads must be an int >= 1 or one of 'auto', None"),
        ({"num_threads": 2.5}, TypeError, "num_threads must be an int >= 1 or one of 'auto', None"),
        ({"device": "tpu"}, ValueError, "unknown device 'tpu'"),
        ({"random_state": "seed"}, ValueError, "random_state must be an int in"),
        ({"verbose": -1}, ValueError, "verbose must be an int >= 0 or one of True, False"),
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
        with pytest.raises(
            ValueError,
            match=r"X has NaN rows \[2\]; .*on_error='nan'.* drop "
            r"them first, kept = np.isfinite",
        ):
            method(nan_row)


def test_a_constant_y_warns_and_is_predicted_exactly(small):
    X, _ = small
    y = np.full(len(X), 0.83)  # its mean, 0.8299999999999998, is not 0.83
    est = AeLLERegressor(**{**FAST, "max_epochs": 5})
    with pytest.warns(UserWarning, match="y is constant"):
        est.fit(X, y)
    # y_scale_ is the spread, 0, so the head's output (finite) drops out and
    # predict returns y_mean_, the median of the equal values: exactly 0.83.
    assert est.y_scale_ == 0.0
    y_pred, y_std = est.predict(X, return_std=True)
    assert_array_equal(y_pred, y)
    assert_array_equal(y_std, 0.0)


@pytest.mark.parametrize("Estimator", [AeLLERegressor, AeLLEClassifier])
def test_models_instead_of_spectra_are_refused_before_any_work(Estimator, small):
    models = [torch.nn.GRU(3, 8), torch.nn.GRU(3, 8), torch.nn.LSTM(3, 4)]
    match = (
        rf"{Estimator.__name__} takes spectra, an array of shape \(n_models, n_features\), "
        r"but X holds torch modules \(GRU, LSTM\); compute their spectra first with "
        "LyapunovSpectrumTransformer"
    )
    with pytest.raises(TypeError, match=match):
        Estimator(**FAST).fit(models, [0, 1, 0])
    X, y = small
    fitted = Estimator(**{**FAST, "max_epochs": 2}).fit(X, (y > np.median(y)).astype(int))
    for method in ("predict", "transform"):
        with pytest.raises(TypeError, match=match):
            getattr(fitted, method)(models)
