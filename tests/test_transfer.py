"""Ranking without a finished trial: Spearman, and what transfers between tasks."""

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from sklyap._early import prior_features
from sklyap.study._transfer import (
    TRANSFER_RULES,
    TransferResult,
    fit_prior,
    ranks,
    spearman,
    transfer_rows,
)


def test_spearman_is_scipys_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=40).astype(float)  # many ties
    b = a + rng.normal(size=40)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, rel=1e-12)
    assert ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [5 / 6, 0.0, 5 / 6, 1 / 3]
    assert np.isnan(spearman(np.ones(5), np.arange(5)))


def population(rng, n, scale, shift):
    """Networks whose final accuracy falls with |largest exponent|, on a task's own
    scale: what transfers is the order, not the values."""
    spectra = np.sort(rng.normal(size=(n, 6)), axis=1)[:, ::-1] * scale + shift
    largest = spectra.max(axis=1)
    final = 0.9 - 0.3 * np.abs(largest - shift) / scale + 0.01 * rng.normal(size=n)
    early = rng.random(n)  # uninformative
    return {"spectra": spectra, "early_accuracy": early, "final": final}


def test_a_rule_shared_by_the_tasks_transfers_and_is_scored_by_hand():
    rng = np.random.default_rng(1)
    populations = {
        (task, seed): population(rng, 80, scale, shift)
        for task, scale, shift in (("a", 1.0, 0.0), ("b", 3.0, -2.0), ("c", 0.5, 1.0))
        for seed in (0, 2)
    }
    rows = transfer_rows(populations)
    assert [(r["task"], r["random_state"]) for r in rows] == list(populations)
    for row in rows:
        test = populations[(row["task"], row["random_state"])]
        expected = spearmanr(-np.abs(test["spectra"].max(axis=1)), test["final"]).statistic
        assert row["largest_near_zero"] == pytest.approx(expected, rel=1e-12)
        assert row["early_accuracy"] == pytest.approx(
            spearmanr(test["early_accuracy"], test["final"]).statistic, rel=1e-12
        )
        # The forest learnt the order on the other tasks' ranks.
        assert row["transferred_spectra"] > 0.6
        # So did the startup prior: a linear model of the same ranks, by hand.
        train = [p for (task, _), p in populations.items() if task != row["task"]]
        prior = fit_prior(train)
        predicted = prior.predict(prior_features(test["spectra"], test["early_accuracy"]))
        assert row["startup_prior"] == pytest.approx(
            spearmanr(predicted, test["final"]).statistic, rel=1e-12
        )
        assert row["startup_prior"] > 0.6
    prior = fit_prior(populations.values())
    result = TransferResult(
        settings={"tasks": ["a", "b", "c"]}, rows=rows, priors={"a": prior}, prior=prior
    )
    assert json.loads(result.to_json())["prior"] == prior.to_dict()
    assert "transferred_spectra" in result.transfers()
    assert "early_accuracy" not in result.transfers()
    assert "| a (0) |" in result.markdown()
    assert set(TRANSFER_RULES) <= set(rows[0])


def test_the_shipped_prior_is_the_one_the_sweep_fitted():
    """STARTUP_PRIOR is what ``python -m sklyap sweep`` fitted on every population
    (docs/results/sweep_transfer.json), rounded to four decimals."""
    from pathlib import Path

    from sklyap.selection import STARTUP_PRIOR

    path = Path(__file__).parents[1] / "docs" / "results" / "sweep_transfer.json"
    fitted = json.loads(path.read_text())["prior"]
    assert STARTUP_PRIOR.intercept == pytest.approx(fitted["intercept"], abs=5e-5)
    np.testing.assert_allclose(STARTUP_PRIOR.coef, fitted["coef"], atol=5e-5)
    assert STARTUP_PRIOR.spread == pytest.approx(fitted["spread"], abs=5e-5)
    assert STARTUP_PRIOR.min_trials == fitted["min_trials"]
