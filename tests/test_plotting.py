"""Figures draw what they are given."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from numpy.testing import assert_allclose

from sklyap.plotting import (
    plot_embedding,
    plot_predicted_vs_true,
    plot_roc,
    plot_scores,
    plot_spectra,
)


def test_plot_spectra_draws_one_line_per_network_sorted_by_colour():
    spectra = np.array([[0.1, -0.5, -1.0], [-0.2, -0.4, -2.0]])
    ax = plot_spectra(spectra, color_by=[0.9, 0.3])
    lines = [line for line in ax.get_lines() if len(line.get_xdata()) == 3]
    assert len(lines) == 2
    # Drawn from lowest to highest value, so the best network is on top.
    np.testing.assert_array_equal(lines[0].get_ydata(), spectra[1])
    np.testing.assert_array_equal(lines[1].get_xdata(), [0, 0.5, 1])
    with pytest.raises(ValueError, match=r"one value per spectrum \(2\), got shape \(3,\)"):
        plot_spectra(spectra, color_by=[1, 2, 3])


def test_plot_embedding_projects_on_principal_components():
    rng = np.random.RandomState(0)
    Z = np.column_stack([np.linspace(-5, 5, 30), 0.1 * rng.randn(30), 0.01 * rng.randn(30)])
    ax = plot_embedding(Z, color_by=np.linspace(0, 1, 30))
    offsets = ax.collections[0].get_offsets()
    # The first principal component is the spread-out first coordinate.
    assert abs(np.corrcoef(offsets[:, 0], Z[:, 0])[0, 1]) > 0.999


def test_plot_predicted_vs_true_reports_r2():
    y = np.array([0.1, 0.5, 0.9, 0.7])
    ax = plot_predicted_vs_true(y, y)
    assert ax.get_title() == "$R^2$ = 1.00"
    ax = plot_predicted_vs_true(y, np.full(4, y.mean()))
    assert ax.get_title() == "$R^2$ = 0.00"
    # One point per network: its prediction across, its true value up.
    assert_allclose(ax.collections[0].get_offsets(), np.column_stack([np.full(4, y.mean()), y]))


def test_plot_predicted_vs_true_draws_error_bars():
    y = np.array([0.1, 0.5, 0.9, 0.7])
    ax = plot_predicted_vs_true(y, y, y_err=np.array([0.0, 0.1, 0.2, 0.3]))
    segments = ax.collections[0].get_segments()  # one bar per network, along the predictions
    assert_allclose([s[1, 0] - s[0, 0] for s in segments], [0.0, 0.2, 0.4, 0.6])
    assert_allclose([s[1, 1] - s[0, 1] for s in segments], 0.0)
    with pytest.raises(ValueError, match=r"shape of y_pred \(4,\), got \(3,\)"):
        plot_predicted_vs_true(y, y, y_err=np.zeros(3))


def test_plot_roc_labels_each_curve_with_its_auc():
    y = np.array([0, 0, 1, 1])
    ax = plot_roc(y, {"perfect": np.array([0.1, 0.2, 0.8, 0.9]), "wrong": -np.arange(4.0)})
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "perfect (AUC = 1.00)",
        "wrong (AUC = 0.00)",
        "Chance level (AUC = 0.5)",
    ]
    assert_allclose(ax.get_lines()[0].get_ydata()[-1], 1.0)  # every curve ends at (1, 1)


def test_plot_scores_skips_nan_rows_and_marks_aelle():
    rows = [
        {"predictor": "AeLLE", "spearman": 0.8, "spearman_std": 0.01},
        {"predictor": "ridge", "spearman": 0.7, "spearman_std": 0.02},
        {"predictor": "classifier", "spearman": float("nan"), "spearman_std": 0.0},
    ]
    ax = plot_scores(rows, labels=["final", "final", "final"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["final  AeLLE", "final  ridge"]
    points = ax.collections[-1]
    assert_allclose(points.get_offsets()[:, 0], [0.8, 0.7])
    assert_allclose(points.get_facecolors()[0], matplotlib.colors.to_rgba("C3"))
