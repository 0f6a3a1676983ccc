"""Tests of AeLLEClassifier, and the scikit-learn API checks of both AeLLE estimators."""

import pickle

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.special import softmax
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklyap import AeLLEClassifier, AeLLERegressor
from sklyap.datasets import make_spectra

from helpers import AELLE_FAST as FAST
from helpers import numpy_forward


@pytest.fixture(scope="module")
def spectra():
    X, accuracy = make_spectra(n_samples=300, n_exponents=12, random_state=0)
    return X, accuracy


@pytest.fixture(scope="module")
def fitted(spectra):
    X, accuracy = spectra
    return AeLLEClassifier(**FAST).fit(X[:200], accuracy[:200] >= 0.5)


def test_separates_good_from_bad_networks_out_of_sample(fitted, spectra):
    X, accuracy = spectra
    good = accuracy >= 0.5
    assert 0.3 < good.mean() < 0.7  # both classes well represented
    assert fitted.score(X[200:], good[200:]) >= 0.9
    proba = fitted.predict_proba(X[200:])[:, 1]
    # The probability of "good" ranks networks by their accuracy.
    assert np.corrcoef(proba, accuracy[200:])[0, 1] > 0.7


def test_probabilities_are_the_mean_of_the_members_softmax(fitted, spectra):
    X, _ = spectra
    Xs = (X[200:] - fitted.x_mean_) / fitted.x_scale_
    logits = np.stack([numpy_forward(fitted.net_.module_, Xs)[1][m] for m in range(3)])
    expected = softmax(logits, axis=-1).mean(axis=0)
    proba = fitted.predict_proba(X[200:])
    assert proba.dtype == np.float64 and proba.shape == (100, 2)
    assert_allclose(proba, expected, rtol=1e-5, atol=1e-7)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert_allclose(fitted.predict_log_proba(X[200:]), np.log(proba))
    assert_array_equal(fitted.predict(X[200:]), fitted.classes_[proba.argmax(axis=1)])


@pytest.mark.parametrize(
    "labels",
    [np.array(["bad", "good"]), np.array([-1, 1]), np.array([0.0, 1.0]), np.array([3, 7, 9])],
)
def test_any_labels(spectra, labels):
    X, accuracy = spectra
    bins = np.quantile(accuracy, np.linspace(0, 1, len(labels) + 1)[1:-1])
    y = labels[np.digitize(accuracy, bins)]
    clf = AeLLEClassifier(**FAST).fit(X, y)
    assert_array_equal(clf.classes_, np.sort(labels))
    assert set(clf.predict(X)) <= set(labels) and clf.predict(X).dtype == labels.dtype
    assert clf.predict_proba(X).shape == (len(X), len(labels))
    assert clf.score(X, y) > 1 / len(labels) + 0.3  # well above chance


def test_transform_is_the_first_members_code(fitted, spectra):
    X, _ = spectra
    Z = fitted.transform(X)
    Xs = (X - fitted.x_mean_) / fitted.x_scale_
    assert_allclose(Z, numpy_forward(fitted.net_.module_, Xs)[0][0], rtol=1e-5, atol=1e-6)


def test_pickle_clone_and_model_selection(fitted, spectra):
    X, accuracy = spectra
    good = accuracy >= 0.5
    again = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    assert clone(fitted).get_params() == fitted.get_params()
    scores = cross_val_score(AeLLEClassifier(**{**FAST, "max_epochs": 30}), X, good, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.8
    search = GridSearchCV(
        AeLLEClassifier(**{**FAST, "max_epochs": 30}), {"latent_dim": [1, 4]}, cv=2
    ).fit(X, good)
    assert search.best_params_["latent_dim"] in (1, 4)


def test_bad_targets(spectra):
    X, accuracy = spectra
    with pytest.raises(ValueError, match="at least 2 classes; y holds 1 class: 'only'"):
        AeLLEClassifier(**FAST).fit(X, np.array(["only"] * len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        AeLLEClassifier(**FAST).fit(X, accuracy)  # continuous: a regression target
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AeLLEClassifier(**FAST).fit(X, accuracy[:10] > 0.5)


# --------------------------------------------------------------------------
# scikit-learn's API checks: quick settings in the default run, the defaults
# themselves among the slow tests.

QUICK = {
    "latent_dim": 8,
    "hidden_dims": (32,),
    "max_epochs": 20,
    "lr": 1e-2,
    "n_estimators": 2,
    "random_state": 0,
}


@parametrize_with_checks([AeLLERegressor(**QUICK), AeLLEClassifier(**QUICK)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([AeLLERegressor(random_state=0), AeLLEClassifier(random_state=0)])
def test_sklearn_compatible_at_defaults(estimator, check):
    check(estimator)


def test_models_instead_of_spectra_are_refused():
    from torch import nn

    with pytest.raises(TypeError, match=r"AeLLEClassifier takes spectra.*\(GRU\)"):
        AeLLEClassifier(**FAST).fit([nn.GRU(3, 8), nn.GRU(3, 8)], [0, 1])
