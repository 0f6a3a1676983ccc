"""Figures: spectra coloured by accuracy, embeddings, predicted against true.

Needs matplotlib (``pip install sklyap[plot]``). Every function draws on the
given axes (a new figure when ``ax`` is None) and returns the axes.
"""

import numpy as np

__all__ = ["plot_embedding", "plot_predicted_vs_true", "plot_spectra"]


def _axes(ax):
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sklyap.plotting needs matplotlib: pip install 'sklyap[plot]'"
        ) from None
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4), layout="constrained")
    return ax


def _colourbar(ax, mappable, label):
    ax.figure.colorbar(mappable, ax=ax, label=label)


def plot_spectra(spectra, color_by=None, *, ax=None, label="accuracy", cmap="viridis"):
    """Spectra against the normalised exponent index, one line per network.

    Parameters
    ----------
    spectra : array-like of shape (n_networks, n_exponents)
    color_by : array-like of shape (n_networks,), default=None
        Colours the lines (e.g. by accuracy), with a colour bar.
    ax : matplotlib Axes, default=None
    label : str, default="accuracy"
        Colour bar label.
    cmap : str, default="viridis"

    Returns
    -------
    ax : matplotlib Axes
    """
    import matplotlib as mpl

    ax = _axes(ax)
    spectra = np.atleast_2d(np.asarray(spectra, dtype=float))
    index = np.linspace(0, 1, spectra.shape[1])
    if color_by is None:
        ax.plot(index, spectra.T, color="C0", alpha=0.6, lw=1)
    else:
        color_by = np.asarray(color_by, dtype=float)
        if color_by.shape != (spectra.shape[0],):
            raise ValueError(
                f"color_by must have one value per spectrum ({spectra.shape[0]}), "
                f"got shape {color_by.shape}"
            )
        norm = mpl.colors.Normalize(color_by.min(), color_by.max())
        colours = mpl.colormaps[cmap](norm(color_by))
        for row, colour in zip(spectra[np.argsort(color_by)], colours[np.argsort(color_by)]):
            ax.plot(index, row, color=colour, alpha=0.8, lw=1)
        _colourbar(ax, mpl.cm.ScalarMappable(norm=norm, cmap=cmap), label)
    ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel("normalised exponent index")
    ax.set_ylabel("Lyapunov exponent (nats / step)")
    return ax


def plot_embedding(Z, color_by, *, ax=None, label="accuracy", cmap="viridis"):
    """The first two principal components of an embedding, coloured by a value.

    Parameters
    ----------
    Z : array-like of shape (n_networks, n_dims)
        For example ``AeLLERegressor.transform(spectra)``.
    color_by : array-like of shape (n_networks,)
    ax : matplotlib Axes, default=None
    label : str, default="accuracy"
    cmap : str, default="viridis"

    Returns
    -------
    ax : matplotlib Axes
    """
    from sklearn.decomposition import PCA

    ax = _axes(ax)
    Z = np.asarray(Z, dtype=float)
    n_components = min(2, Z.shape[1], Z.shape[0])
    P = PCA(n_components=n_components).fit_transform(Z)
    if n_components == 1:
        P = np.column_stack([P[:, 0], np.zeros(len(P))])
    points = ax.scatter(P[:, 0], P[:, 1], c=color_by, cmap=cmap, s=25, edgecolor="k", lw=0.3)
    _colourbar(ax, points, label)
    ax.set_xlabel("embedding PC 1")
    ax.set_ylabel("embedding PC 2")
    return ax


def plot_predicted_vs_true(y_true, y_pred, *, ax=None, label="accuracy"):
    """Predictions against true values, with the identity line and R^2.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_networks,)
    ax : matplotlib Axes, default=None
    label : str, default="accuracy"

    Returns
    -------
    ax : matplotlib Axes
    """
    from sklearn.metrics import r2_score

    ax = _axes(ax)
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    ax.scatter(y_true, y_pred, s=20, edgecolor="k", lw=0.3)
    low = min(y_true.min(), y_pred.min())
    high = max(y_true.max(), y_pred.max())
    ax.plot([low, high], [low, high], color="0.4", lw=0.8, ls="--")
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(f"$R^2$ = {r2_score(y_true, y_pred):.2f}")
    return ax
