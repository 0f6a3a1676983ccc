"""Early selection: the predictor of final accuracy and its scorer inside model selection."""

import copy
import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, KFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from sklyap import LyapunovSpectrumTransformer, lyapunov_spectrum, resample_spectra
from sklyap.datasets import (
    RecurrentClassifier,
    digit_streams,
    load_sequential_digits,
    train_rnn_population,
)
from sklyap.selection import FinalAccuracyPredictor, PredictedAccuracyScorer

WARMUP, WIDTH = 16, 16
DATA = load_sequential_digits()
INPUTS = digit_streams(DATA.X_val, n_trajectories=3, n_images=10, random_state=0)


def _transformer():
    return LyapunovSpectrumTransformer(
        inputs=INPUTS, warmup=WARMUP, n_features=WIDTH, device="cpu", random_state=0
    )


def _regressor():
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))


@pytest.fixture(scope="module")
def pilot():
    return train_rnn_population(
        "digits",
        n_models=10,
        n_epochs=2,
        max_train=150,
        cells=("GRU",),
        hidden_sizes=(8, 16),
        cache_dir=False,
        verbose=0,
    )


@pytest.fixture(scope="module")
def predictor(pilot):
    return FinalAccuracyPredictor(_transformer(), _regressor(), early_score=True).fit(
        pilot.models(epoch=1), pilot.test_accuracy[:, -1], early_score=pilot.val_accuracy[:, 0]
    )


def _spectrum_features(models):
    """Each model's spectrum by lyapunov_spectrum, resampled to the transformer's width."""
    spectra = [lyapunov_spectrum(m, INPUTS, warmup=WARMUP, device="cpu").exponents for m in models]
    width = max(len(s) for s in spectra)
    padded = np.full((len(spectra), width), np.nan)
    for i, s in enumerate(spectra):
        padded[i, : len(s)] = s
    return resample_spectra(padded, WIDTH)


def _accuracy(module, X, y):
    with torch.no_grad():
        return float((module(torch.as_tensor(X)).argmax(-1).numpy() == y).mean())


def test_predictions_are_the_regressor_on_spectra_and_early_scores(pilot, predictor):
    models = pilot.models(epoch=1)
    features = np.column_stack([_spectrum_features(models), pilot.val_accuracy[:, 0]])
    regressor = clone(_regressor()).fit(features, pilot.test_accuracy[:, -1])
    assert predictor.n_networks_ == 10
    assert predictor.architectures_ == [("GRU", 1, 8, True)]
    assert predictor.hidden_sizes_ == (8, 16)
    assert_allclose(
        predictor.predict(models[:4], early_score=pilot.val_accuracy[:4, 0]),
        regressor.predict(features[:4]),
        rtol=1e-9,
    )
    # Without the early score, the regressor reads the spectra alone.
    alone = FinalAccuracyPredictor(_transformer(), _regressor()).fit(
        models, pilot.test_accuracy[:, -1]
    )
    expected = clone(_regressor()).fit(features[:, :-1], pilot.test_accuracy[:, -1])
    assert_allclose(alone.predict(models), expected.predict(features[:, :-1]), rtol=1e-9)
    # The default regressor is AeLLE.
    assert type(FinalAccuracyPredictor(_transformer()).fit(models, pilot.test_accuracy[:, -1])
               .regressor_).__name__ == "AeLLERegressor"  # fmt: skip


RECORDED = []


class _Record(Callback):
    """Keeps a copy of every network a search trains, in the order it trains them."""

    def on_train_end(self, net, **kwargs):
        RECORDED.append(copy.deepcopy(net.module_).eval())


def _net(**kwargs):
    torch.manual_seed(0)
    settings = {
        "module__input_size": 8,
        "module__hidden_size": 8,
        "module__n_classes": 10,
        "module__cell": "GRU",
        "max_epochs": 1,
        "lr": 0.01,
        "batch_size": 64,
        "optimizer": torch.optim.Adam,
        "criterion": nn.CrossEntropyLoss,
        "train_split": None,
        "verbose": 0,
        **kwargs,
    }
    return NeuralNetClassifier(RecurrentClassifier, **settings)


X, Y = DATA.X_train[:200], DATA.y_train[:200]


def test_grid_search_scores_every_candidate_by_its_predicted_final_accuracy(predictor):
    RECORDED.clear()
    grid = {"module__hidden_size": [8, 16], "lr": [0.003, 0.03]}
    cv = KFold(2)
    search = GridSearchCV(
        _net(callbacks=[_Record()]),
        grid,
        scoring=predictor.as_scorer(),
        cv=cv,
        error_score="raise",
    ).fit(X, Y)
    splits = list(cv.split(X))
    assert len(RECORDED) == 4 * 2 + 1  # every candidate on every split, then the refit
    for i, module in enumerate(RECORDED[:-1]):
        candidate, split = divmod(i, 2)
        test = splits[split][1]
        expected = predictor.predict([module], early_score=[_accuracy(module, X[test], Y[test])])
        got = search.cv_results_[f"split{split}_test_score"][candidate]
        assert got == pytest.approx(expected[0], rel=1e-9)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_index_ == int(np.argmax(scores)) and np.ptp(scores) > 0


def test_cross_validate_scores_each_fold_by_its_predicted_final_accuracy(predictor):
    RECORDED.clear()
    scores = cross_validate(
        _net(callbacks=[_Record()]), X, Y, scoring=predictor.as_scorer(), cv=KFold(2)
    )["test_score"]
    for (_, test), module, score in zip(KFold(2).split(X), RECORDED, scores):
        expected = predictor.predict([module], early_score=[_accuracy(module, X[test], Y[test])])
        assert score == pytest.approx(expected[0], rel=1e-9)


def test_halving_search_over_epochs_keeps_the_candidates_it_scores_best(predictor):
    RECORDED.clear()
    search = HalvingGridSearchCV(
        _net(callbacks=[_Record()]),
        {"module__hidden_size": [8, 16], "lr": [0.001, 0.003, 0.01, 0.03]},
        resource="max_epochs",
        min_resources=1,
        max_resources=2,
        factor=2,
        scoring=predictor.as_scorer(),
        cv=KFold(2),
        error_score="raise",
        random_state=0,
    ).fit(X, Y)
    results = search.cv_results_
    # The first rung: every candidate after one epoch, scored by its prediction.
    splits = list(KFold(2).split(X))
    for i, module in enumerate(RECORDED[:16]):
        candidate, split = divmod(i, 2)
        test = splits[split][1]
        expected = predictor.predict([module], early_score=[_accuracy(module, X[test], Y[test])])
        assert results[f"split{split}_test_score"][candidate] == pytest.approx(expected[0])
    first = np.flatnonzero(results["iter"] == 0)
    second = np.flatnonzero(results["iter"] == 1)
    assert set(results["n_resources"][first]) == {1} and set(results["n_resources"][second]) == {2}

    def candidate(i):  # the parameters of the grid, without the resource
        return tuple(sorted((k, v) for k, v in results["params"][i].items() if k != "max_epochs"))

    best_first = first[np.argsort(results["mean_test_score"][first])[-len(second) :]]
    assert {candidate(i) for i in second} == {candidate(i) for i in best_first}


def test_halving_search_ranks_by_the_spectra_first_and_by_its_own_score_after(pilot):
    fitted = FinalAccuracyPredictor(_transformer(), _regressor(), epoch=1).fit(
        pilot.models(epoch=1), pilot.test_accuracy[:, -1]
    )
    RECORDED.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no extrapolation warning at the later rung
        search = HalvingGridSearchCV(
            _net(callbacks=[_Record()]),
            {"module__hidden_size": [8, 16], "lr": [0.003, 0.01, 0.03]},
            resource="max_epochs",
            min_resources=1,
            max_resources=3,
            factor=3,
            scoring=fitted.as_scorer(later="score"),
            cv=KFold(2),
            error_score="raise",
        ).fit(X, Y)
    results, splits = search.cv_results_, list(KFold(2).split(X))
    assert list(results["iter"]) == [0] * 6 + [1] * 2
    for i, module in enumerate(RECORDED[:16]):
        row, split = divmod(i, 2)
        test = splits[split][1]
        # After epoch 1 the predicted final accuracy; after epoch 3 the net's
        # own accuracy on the fold.
        early = row < 6
        expected = fitted.predict([module])[0] if early else _accuracy(module, X[test], Y[test])
        assert results[f"split{split}_test_score"][row] == pytest.approx(expected), i
    with pytest.raises(ValueError, match="later='score' needs the predictor's epoch"):
        FinalAccuracyPredictor(_transformer(), _regressor()).fit(
            pilot.models(epoch=1), pilot.test_accuracy[:, -1]
        ).as_scorer(later="score")
    with pytest.raises(ValueError, match="later must be one of 'warn', 'score', got 'later'"):
        fitted.as_scorer(later="later")


def test_a_network_the_predictor_was_not_fitted_for_is_refused(predictor):
    scorer = predictor.as_scorer()
    lstm = _net(module__cell="LSTM").fit(X, Y)
    with pytest.raises(
        ValueError, match=r"not fitted for a network of LSTM of 1 layer, input_size=8"
    ):
        scorer(lstm, X, Y)
    wide = _net(module__hidden_size=32).fit(X, Y)
    message = "not fitted for a network of hidden_size 32: its pilot population's hidden sizes are 8 to 16"
    with pytest.raises(ValueError, match=message):
        scorer(wide, X, Y)
    with pytest.raises(ValueError, match="input_size=4"):
        predictor.predict([nn.GRU(4, 8, batch_first=True)], early_score=[0.5])
    # In a search, a refused candidate gets the error score (NaN), ranked last.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(
            _net(), {"module__cell": ["LSTM", "GRU"]}, scoring=scorer, cv=KFold(2)
        ).fit(X, Y)
    assert np.isnan(search.cv_results_["mean_test_score"][0])
    assert search.best_params_ == {"module__cell": "GRU"}


def test_the_scorer_warns_on_a_net_trained_longer_than_the_pilot(pilot):
    fitted = FinalAccuracyPredictor(_transformer(), _regressor(), epoch=1).fit(
        pilot.models(epoch=1), pilot.test_accuracy[:, -1]
    )
    scorer = fitted.as_scorer()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer(_net(max_epochs=1).fit(X, Y), X, Y)
    with pytest.warns(
        UserWarning, match="trained for 2 epochs with a predictor fitted on networks after epoch 1"
    ):
        scorer(_net(max_epochs=2).fit(X, Y), X, Y)
    # The scorer holds a copy, and the predictor answers as it was fitted.
    before = scorer(_net().fit(X, Y), X, Y)
    fitted.set_params(early_score=True)
    assert fitted.predict(pilot.models(epoch=1)[:1]).shape == (1,)
    fitted.fit(pilot.models(epoch=1)[:5], pilot.test_accuracy[:5, -1], early_score=np.ones(5))
    assert scorer(_net().fit(X, Y), X, Y) == before


def test_the_scorer_pickles_and_scores_the_same(predictor):
    net = _net().fit(X, Y)
    scorer = predictor.as_scorer()
    expected = scorer(net, X[:50], Y[:50])
    assert pickle.loads(pickle.dumps(scorer))(net, X[:50], Y[:50]) == expected
    buffer = io.BytesIO()
    joblib.dump(scorer, buffer)
    buffer.seek(0)
    assert joblib.load(buffer)(net, X[:50], Y[:50]) == expected
    assert repr(scorer).startswith("PredictedAccuracyScorer(FinalAccuracyPredictor(")


def test_bad_inputs_are_refused_before_any_spectrum(pilot, predictor):
    models, y = pilot.models(epoch=1), pilot.test_accuracy[:, -1]
    with pytest.raises(ValueError, match="early_score=True\\): pass early_score="):
        FinalAccuracyPredictor(_transformer(), early_score=True).fit(models, y)
    with pytest.raises(ValueError, match="early_score was given, but"):
        FinalAccuracyPredictor(_transformer()).fit(models, y, early_score=y)
    with pytest.raises(ValueError, match=r"y must hold one number per network \(10\)"):
        FinalAccuracyPredictor(_transformer()).fit(models, y[:3])
    with pytest.raises(
        ValueError, match=r"early_score holds NaN or infinite values at indices \[2\]"
    ):
        FinalAccuracyPredictor(_transformer(), early_score=True).fit(
            models, y, early_score=np.where(np.arange(10) == 2, np.nan, 0.5)
        )
    with pytest.raises(
        TypeError, match="transformer must be a LyapunovSpectrumTransformer or None"
    ):
        FinalAccuracyPredictor("fast").fit(models, y)
    with pytest.raises(TypeError, match="early_score must be one of True, False, got 'yes'"):
        FinalAccuracyPredictor(early_score="yes").fit(models, y)
    with pytest.raises(NotFittedError):
        FinalAccuracyPredictor().as_scorer()
    with pytest.raises(NotFittedError):
        PredictedAccuracyScorer(FinalAccuracyPredictor())
    with pytest.raises(ValueError, match="call it with the data to score on"):
        predictor.as_scorer()(_net().fit(X, Y))
