"""Figures draw what they are given."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from sklyap.plotting import plot_embedding, plot_predicted_vs_true, plot_spectra  # noqa: E402


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
