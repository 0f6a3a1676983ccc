"""Tests of sklyap.features: resampling and summary statistics of spectra."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklyap import (
    SpectrumResampler,
    SpectrumStatistics,
    kaplan_yorke_dimension,
    resample_spectra,
)
from sklyap.features import STATISTICS

nan = np.nan


# --------------------------------------------------------------------------
# scikit-learn API checks


_NAN_PADDING_REASON = (
    "the estimator accepts NaN only as padding after the end of a shorter "
    "spectrum (allow_nan tag); this check scatters NaN at random positions, "
    "which is rejected with a ValueError by design"
)


def _expected_failed_checks(estimator):
    return {
        "check_estimators_pickle": _NAN_PADDING_REASON,
    }


@parametrize_with_checks(
    [SpectrumResampler(n_features=8), SpectrumStatistics()],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------
# SpectrumResampler


def test_resampler_known_answers():
    X = np.array(
        [
            [0.0, -1.0, -2.0, -3.0],  # k=4, source grid 0, 1/3, 2/3, 1
            [3.0, 1.0, nan, nan],  # k=2: a straight line from 3 to 1
            [0.7, nan, nan, nan],  # k=1: repeated
        ]
    )
    Xt = SpectrumResampler(n_features=3).fit_transform(X)
    # Targets t = 0, 1/2, 1. Row 0 at t=1/2 lies half way between the source
    # points 1/3 (-1) and 2/3 (-2): -1.5.
    expected = np.array(
        [
            [0.0, -1.5, -3.0],
            [3.0, 2.0, 1.0],
            [0.7, 0.7, 0.7],
        ]
    )
    assert_allclose(Xt, expected, rtol=0, atol=1e-15)
    assert Xt.dtype == np.float64


def test_resampler_upsampling_ragged():
    # Row 0 (k=3, grid 0, 1/2, 1) onto 5 points 0, 1/4, ..., 1: the midpoints
    # of neighbouring exponents are inserted.
    X = [[0.0, -2.0, -4.0], [1.0, -1.0, nan]]
    Xt = SpectrumResampler(n_features=5).fit_transform(X)
    assert_allclose(Xt[0], [0.0, -1.0, -2.0, -3.0, -4.0])
    assert_allclose(Xt[1], [1.0, 0.5, 0.0, -0.5, -1.0])


def test_resampler_matches_function_and_names():
    rng = np.random.default_rng(0)
    X = -np.sort(rng.normal(size=(6, 10)), axis=1)
    X[2, 7:] = nan
    est = SpectrumResampler(n_features=4).fit(X)
    assert_array_equal(est.transform(X), resample_spectra(X, 4))
    assert est.get_feature_names_out().tolist() == [
        "exponent0",
        "exponent1",
        "exponent2",
        "exponent3",
    ]


def test_resampler_does_not_modify_input_and_is_stateless():
    X = np.array([[0.5, -0.5, nan], [0.1, -0.1, -0.3]])
    X_copy = X.copy()
    # Stateless: usable without fit.
    Xt = SpectrumResampler(n_features=2).transform(X)
    assert_array_equal(X, X_copy)
    assert_allclose(Xt, [[0.5, -0.5], [0.1, -0.3]])


@pytest.mark.parametrize(
    "X, error, match",
    [
        ([[0.0, nan, -1.0]], ValueError, "NaN before a finite value"),
        ([[nan, nan]], ValueError, "no finite exponent"),
        ([[0.0, -np.inf]], ValueError, "infinity|infinite"),
        ([0.0, -1.0], ValueError, "Expected 2D array, got 1D array"),
    ],
)
def test_resampler_bad_input(X, error, match):
    with pytest.raises(error, match=match):
        SpectrumResampler(n_features=3).fit_transform(X)


@pytest.mark.parametrize(
    "n_features, error, match",
    [(0, ValueError, "n_features must be an int >= 1, got 0"), (2.5, TypeError, "got 2.5")],
)
def test_resampler_bad_n_features(n_features, error, match):
    with pytest.raises(error, match=match):
        SpectrumResampler(n_features=n_features).fit([[0.0, -1.0]])


def test_resampler_wrong_width_after_fit():
    est = SpectrumResampler(n_features=3).fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="X has 3 features, but SpectrumResampler"):
        est.transform(np.zeros((2, 3)))


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.integers(2, 12)),
        elements=st.floats(-10, 10, allow_nan=False),
    ),
    st.integers(2, 20),
)
def test_resampler_properties(X, n_features):
    X = -np.sort(-X, axis=1)  # descending spectra
    Xt = SpectrumResampler(n_features=n_features).fit_transform(X)
    # Endpoints are kept, descending rows stay descending, values stay in range.
    assert_allclose(Xt[:, 0], X[:, 0])
    assert_allclose(Xt[:, -1], X[:, -1])
    assert np.all(np.diff(Xt, axis=1) <= 1e-12)
    # Resampling onto the row's own length is the identity.
    assert_array_equal(SpectrumResampler(n_features=X.shape[1]).fit_transform(X), X)


# --------------------------------------------------------------------------
# Kaplan-Yorke dimension


@pytest.mark.parametrize(
    "spectrum, expected",
    [
        # Lorenz system (sigma=10, rho=28, beta=8/3), exponents from the
        # literature: S1 = 0.9056, S2 = 0.9056, S3 = -13.6667 < 0, so j = 2
        # and D = 2 + 0.9056 / 14.5723 = 2.062145...
        ([0.9056, 0.0, -14.5723], 2.0 + 0.9056 / 14.5723),
        # Henon map (a=1.4, b=0.3): j = 1, D = 1 + 0.42 / 1.62 = 1.259259...
        ([0.42, -1.62], 1.0 + 0.42 / 1.62),
        # S1 = 0.5, S2 = 0.5, S3 = -0.5: j = 2, D = 2 + 0.5 / 1.0 = 2.5.
        ([0.5, 0.0, -1.0], 2.5),
        # Unsorted input is sorted first: the same spectrum as above.
        ([-1.0, 0.5, 0.0], 2.5),
        # Four exponents, S = 1.0, 1.5, 0.5, -1.5: j = 3, D = 3 + 0.5 / 2 = 3.25.
        ([1.0, 0.5, -1.0, -2.0], 3.25),
        # lambda_1 < 0, a stable fixed point: D = 0.
        ([-0.1, -0.5], 0.0),
        # Full sum exactly 0 (volume preserving): D = n = 3.
        ([1.0, 0.5, -1.5], 3.0),
        # Full sum > 0 (expanding): D = n = 2.
        ([2.0, -1.0], 2.0),
        # lambda_1 = 0: S1 = 0 >= 0, so j = 1 and D = 1 + 0 / 1 = 1.
        ([0.0, -1.0], 1.0),
        # A single exponent: 0 if negative, 1 otherwise.
        ([-0.3], 0.0),
        ([0.3], 1.0),
    ],
)
def test_kaplan_yorke_known_answers(spectrum, expected):
    assert kaplan_yorke_dimension(spectrum) == pytest.approx(expected, rel=1e-14)


def test_kaplan_yorke_ragged_rows():
    # Row 0: S = 0.3, 0.2, -0.3: j = 2, D = 2 + 0.2 / 0.5 = 2.4.
    # Row 1: the Henon spectrum padded with NaN.
    X = [[0.3, -0.1, -0.5, nan], [0.42, -1.62, nan, nan], [1.0, 0.5, -1.0, -2.0]]
    assert_allclose(kaplan_yorke_dimension(X), [2.4, 1.0 + 0.42 / 1.62, 3.25])


@settings(max_examples=100, deadline=None)
@given(arrays(np.float64, st.integers(1, 10), elements=st.floats(-5, 5, allow_nan=False)))
def test_kaplan_yorke_properties(spectrum):
    d = kaplan_yorke_dimension(spectrum)
    s = np.sort(spectrum)[::-1]
    n = s.size
    assert 0.0 <= d <= n
    if s[0] < 0:
        assert d == 0.0
    elif s.sum() >= 0:
        assert d == n
    else:
        # S_{j+1} = S_j + lambda_{j+1} < 0 gives S_j / |lambda_{j+1}| < 1, so
        # j = floor(D): the partial sum of j exponents is >= 0, of j + 1 < 0.
        j = int(np.floor(d))
        assert 1 <= j < n
        assert s[:j].sum() >= 0
        assert s[: j + 1].sum() < 0


# --------------------------------------------------------------------------
# SpectrumStatistics


def test_statistics_known_answer():
    # Spectrum (0.5, 0.0, -1.0), worked by hand:
    #   max = 0.5; mean = -0.5 / 3 = -1/6;
    #   deviations 2/3, 1/6, -5/6 -> squares 4/9, 1/36, 25/36, sum 7/6,
    #   variance 7/18, std = sqrt(7/18) = 0.623610...;
    #   one positive exponent, fraction 1/3; Kaplan-Yorke 2.5 (see above);
    #   KS entropy = 0.5.
    # Spectrum (0.3, -0.1, -0.5) padded with NaN:
    #   mean = -0.1; deviations 0.4, 0, -0.4 -> variance 0.32 / 3, std 0.326599;
    #   KY = 2 + 0.2 / 0.5 = 2.4; KS = 0.3.
    # Spectrum (1.2, 0.4, 0.1, -3.0): mean = -1.3 / 4 = -0.325;
    #   deviations 1.525, 0.725, 0.425, -2.675 -> squares 2.325625, 0.525625,
    #   0.180625, 7.155625, sum 10.1875, variance 2.546875, std 1.595893...;
    #   three positive, fraction 0.75; S = 1.2, 1.6, 1.7, -1.3 -> j = 3,
    #   KY = 3 + 1.7 / 3 = 3.566667; KS = 1.7.
    # Spectrum (-0.2, -0.4) padded: no positive exponent, KY = 0, KS = 0,
    #   mean -0.3, std 0.1.
    X = np.array(
        [
            [0.5, 0.0, -1.0, nan],
            [0.3, -0.1, -0.5, nan],
            [1.2, 0.4, 0.1, -3.0],
            [-0.2, -0.4, nan, nan],
        ]
    )
    X_copy = X.copy()
    est = SpectrumStatistics()
    Xt = est.fit_transform(X)
    expected = np.array(
        [
            [0.5, -1 / 6, np.sqrt(7 / 18), 1, 1 / 3, 2.5, 0.5],
            [0.3, -0.1, np.sqrt(0.32 / 3), 1, 1 / 3, 2.4, 0.3],
            [1.2, -0.325, np.sqrt(2.546875), 3, 0.75, 3 + 1.7 / 3, 1.7],
            [-0.2, -0.3, 0.1, 0, 0, 0, 0],
        ]
    )
    assert_allclose(Xt, expected, rtol=1e-12, atol=1e-15)
    assert_array_equal(X, X_copy)
    assert (
        tuple(est.get_feature_names_out())
        == STATISTICS
        == (
            "max_exponent",
            "mean_exponent",
            "std_exponent",
            "n_positive",
            "fraction_positive",
            "kaplan_yorke_dimension",
            "ks_entropy",
        )
    )


def test_statistics_unsorted_rows_are_sorted():
    est = SpectrumStatistics()
    assert_allclose(est.fit_transform([[-1.0, 0.5, 0.0]]), est.fit_transform([[0.5, 0.0, -1.0]]))


def test_statistics_pandas_output():
    pd = pytest.importorskip("pandas")
    est = SpectrumStatistics().set_output(transform="pandas")
    out = est.fit_transform(np.array([[0.42, -1.62]]))
    assert isinstance(out, pd.DataFrame)
    assert out["kaplan_yorke_dimension"].iloc[0] == pytest.approx(1 + 0.42 / 1.62)


@settings(max_examples=50, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 10)),
        elements=st.floats(-5, 5, allow_nan=False),
    )
)
def test_statistics_properties(X):
    Xt = SpectrumStatistics().fit_transform(X)
    n = X.shape[1]
    assert_allclose(Xt[:, 0], X.max(axis=1))
    assert_allclose(Xt[:, 1], X.mean(axis=1), atol=1e-12)
    assert_allclose(Xt[:, 2], X.std(axis=1), atol=1e-12)
    assert_array_equal(Xt[:, 3], (X > 0).sum(axis=1))
    assert_allclose(Xt[:, 4], (X > 0).mean(axis=1))
    assert np.all((Xt[:, 5] >= 0) & (Xt[:, 5] <= n))
    # KS entropy bounds: at least the largest positive exponent, at most n of it.
    assert np.all(Xt[:, 6] >= np.maximum(X.max(axis=1), 0) - 1e-12)
    assert np.all(Xt[:, 6] <= n * np.maximum(X.max(axis=1), 0) + 1e-12)


def test_statistics_clone_and_errors():
    est = clone(SpectrumStatistics())
    with pytest.raises(ValueError, match="NaN before a finite value"):
        est.fit_transform([[0.1, nan, -0.2]])
    with pytest.raises(ValueError, match="infinity|infinite"):
        est.fit_transform([[0.1, np.inf]])


@pytest.mark.parametrize("est", [SpectrumResampler(n_features=5), SpectrumStatistics()])
def test_pickle_round_trip_with_padding(est):
    import pickle

    X = np.array([[0.3, -0.1, -0.5, nan], [0.42, -1.62, nan, nan], [1.0, 0.5, -1.0, -2.0]])
    est.fit(X)
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.transform(X), est.transform(X))
    assert restored.n_features_in_ == 4


@pytest.mark.parametrize("Estimator", [SpectrumResampler, SpectrumStatistics])
def test_models_instead_of_spectra_are_refused(Estimator):
    from torch import nn

    models = [nn.GRU(3, 8), nn.LSTM(3, 4)]
    match = rf"{Estimator.__name__} takes spectra.*torch modules \(GRU, LSTM\).*LyapunovSpectrum"
    with pytest.raises(TypeError, match=match):
        Estimator().fit(models)
    fitted = Estimator().fit(np.array([[0.0, -1.0], [0.5, -2.0]]))
    with pytest.raises(TypeError, match=match):
        fitted.transform(models)
    with pytest.raises(TypeError, match=match):
        fitted.transform(np.array(models, dtype=object))
