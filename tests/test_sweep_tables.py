"""Models as sweep tables hold them, and clear early errors for bad inputs."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from torch import nn

from sklyap import LyapunovSpectrumTransformer, SpectrumResampler, WeightStatistics

# -- sweep tables -------------------------------------------------------------------
from helpers import FAST_SPECTRA


@pytest.fixture(scope="module")
def sweep():
    torch.manual_seed(2)
    models = [nn.GRU(2, h) for h in (3, 4, 5, 3, 4, 5)]
    return pd.DataFrame(
        {"model": models, "lr": [1e-3, 1e-2, 1e-1] * 2, "accuracy": np.linspace(0.2, 0.9, 6)}
    )


FAST = {**FAST_SPECTRA, "n_features": 4, "random_state": 0}


@pytest.mark.parametrize(
    "as_input",
    [
        lambda df: df["model"],
        lambda df: df[["model"]],
        lambda df: tuple(df["model"]),
        lambda df: df[["model"]].to_numpy(),
        lambda df: df["model"].to_numpy(),
    ],
    ids=["Series", "DataFrame", "tuple", "2-D object array", "1-D object array"],
)
@pytest.mark.parametrize("Estimator", [LyapunovSpectrumTransformer, WeightStatistics])
def test_models_in_any_column_form(sweep, as_input, Estimator):
    estimator = Estimator(**FAST) if Estimator is LyapunovSpectrumTransformer else Estimator()
    expected = estimator.fit_transform(list(sweep["model"]))
    np.testing.assert_array_equal(estimator.fit_transform(as_input(sweep)), expected)


def test_a_wider_dataframe_is_refused(sweep):
    with pytest.raises(ValueError, match=r"DataFrame of 2 columns \['model', 'lr'\].*one column"):
        LyapunovSpectrumTransformer(**FAST).fit(sweep[["model", "lr"]])


def test_column_transformer_over_a_sweep_table(sweep):
    table = ColumnTransformer(
        [
            ("spectrum", LyapunovSpectrumTransformer(**FAST), "model"),
            ("settings", "passthrough", ["lr"]),
        ]
    )
    pipe = make_pipeline(table, Ridge(alpha=1e-3)).fit(sweep, sweep["accuracy"])
    by_hand = np.hstack(
        [
            LyapunovSpectrumTransformer(**FAST).fit_transform(list(sweep["model"])),
            sweep[["lr"]].to_numpy(),
        ]
    )
    ridge = Ridge(alpha=1e-3).fit(by_hand, sweep["accuracy"])
    np.testing.assert_allclose(pipe.predict(sweep), ridge.predict(by_hand), rtol=1e-12)


# -- errors, early --------------------------------------------------------------------


def test_inputs_without_trajectories():
    with pytest.raises(ValueError, match=r"inputs hold no trajectory: shape \(0, 150, 3\)"):
        LyapunovSpectrumTransformer(inputs=np.zeros((0, 150, 3)), batch_first=True).fit(
            [nn.GRU(3, 4)]
        )


@pytest.mark.parametrize(
    "n_jobs, error, match",
    [
        ("two", TypeError, "n_jobs must be an int <= -1 or an int >= 1 or None, got 'two'"),
        (2.5, TypeError, "n_jobs must be an int <= -1 or an int >= 1 or None, got 2.5"),
        (0, ValueError, "n_jobs must be an int <= -1 or an int >= 1 or None, got 0"),
    ],
)
def test_bad_n_jobs_is_refused_at_fit(n_jobs, error, match):
    with pytest.raises(error, match=match):
        LyapunovSpectrumTransformer(n_jobs=n_jobs).fit([nn.GRU(3, 4)])


def test_resampler_takes_a_ragged_list_of_spectra():
    spectra = [np.array([0.0, -1.0, -2.0]), [1.0, -1.0], (2.0, 1.0)]
    padded = np.array([[0.0, -1.0, -2.0], [1.0, -1.0, np.nan], [2.0, 1.0, np.nan]])
    resampler = SpectrumResampler(n_features=5).fit(spectra)
    assert resampler.n_features_in_ == 3
    expected = SpectrumResampler(n_features=5).fit_transform(padded)
    np.testing.assert_array_equal(resampler.transform(spectra), expected)
    np.testing.assert_array_equal(expected[1], [1.0, 0.5, 0.0, -0.5, -1.0])
    # Shorter spectra at transform are padded to the fitted width.
    np.testing.assert_array_equal(resampler.transform([[1.0, -1.0]]), expected[1:2])


def test_inverse_transform_of_a_dataframe_gives_no_torch_warning(recwarn):
    from sklyap import AeLLERegressor
    from sklyap.datasets import make_spectra

    X, y = make_spectra(n_samples=40, n_exponents=6, random_state=0)
    est = AeLLERegressor(max_epochs=2, n_estimators=1, device="cpu").fit(X, y)
    Z = est.transform(X)
    np.testing.assert_array_equal(est.inverse_transform(pd.DataFrame(Z)), est.inverse_transform(Z))
    assert not [w for w in recwarn if "not writable" in str(w.message)]
