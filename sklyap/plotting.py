"""Figures: spectra coloured by accuracy, embeddings, predicted against true.

Needs matplotlib (``pip install sklyap[plot]``). Every function draws on the
given axes (a new figure when ``ax`` is None) and returns the axes.
"""

import numpy as np

__all__ = [
    "plot_embedding",
    "plot_predicted_vs_true",
    "plot_roc",
    "plot_scores",
    "plot_spectra",
]


def _axes(ax):
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("sklyap.plotting needs matplotlib: pip install 'sklyap[plot]'") from None
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


def plot_predicted_vs_true(y_true, y_pred, *, y_err=None, ax=None, label="accuracy"):
    """True values against predictions (scikit-learn's ``PredictionErrorDisplay``),
    with the predictions' error bars and R^2.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_networks,)
    y_err : array-like of shape (n_networks,), default=None
        Error bars on the predictions, e.g. the spread of an ensemble
        (``AeLLERegressor.predict(X, return_std=True)``), drawn horizontally.
    ax : matplotlib Axes, default=None
    label : str, default="accuracy"

    Returns
    -------
    ax : matplotlib Axes
    """
    from sklearn.metrics import PredictionErrorDisplay, r2_score

    ax = _axes(ax)
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_err is not None:
        y_err = np.asarray(y_err, dtype=float)
        if y_err.shape != y_pred.shape:
            raise ValueError(
                f"y_err must have the shape of y_pred {y_pred.shape}, got {y_err.shape}"
            )
        ax.errorbar(y_pred, y_true, xerr=y_err, fmt="none", ecolor="0.6", lw=0.8, zorder=1)
    PredictionErrorDisplay.from_predictions(
        y_true,
        y_pred,
        kind="actual_vs_predicted",
        subsample=None,
        ax=ax,
        scatter_kwargs={"s": 20, "edgecolor": "k", "lw": 0.3, "alpha": 1.0, "zorder": 2},
    )
    # The display places five ticks at the data's own values; plain ticks read better.
    from matplotlib.ticker import AutoLocator

    ax.xaxis.set_major_locator(AutoLocator())
    ax.yaxis.set_major_locator(AutoLocator())
    ax.set_xlabel(f"predicted {label}")
    ax.set_ylabel(f"true {label}")
    ax.set_title(f"$R^2$ = {r2_score(y_true, y_pred):.2f}")
    return ax


def plot_roc(y_true, scores, *, ax=None):
    """ROC curves of one or more scores against binary labels, with their AUC
    (scikit-learn's ``RocCurveDisplay``) and the chance level.

    Parameters
    ----------
    y_true : array-like of shape (n_networks,)
        Binary labels (e.g. ``accuracy >= threshold``).
    scores : dict of str to array-like of shape (n_networks,)
        Scores that rank the networks (a predicted accuracy, a probability),
        by name; one curve each.
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    from sklearn.metrics import RocCurveDisplay

    ax = _axes(ax)
    y_true = np.asarray(y_true)
    for i, (name, score) in enumerate(scores.items()):
        RocCurveDisplay.from_predictions(
            y_true,
            score,
            name=name,
            ax=ax,
            curve_kwargs={"lw": 1.2},
            plot_chance_level=i == len(scores) - 1,
        )
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(fontsize=7, loc="lower right")
    return ax


def plot_scores(rows, *, metric="spearman", labels=None, ax=None):
    """Mean and standard deviation of a score per predictor, one line each.

    Parameters
    ----------
    rows : list of dict
        With ``predictor``, ``<metric>`` and ``<metric>_std`` (the rows of
        :class:`sklyap.study.StudyResult`); rows whose score is NaN are skipped.
    metric : str, default="spearman"
    labels : list of str, default=None
        A prefix per row (e.g. which spectra it reads).
    ax : matplotlib Axes, default=None

    Returns
    -------
    ax : matplotlib Axes
    """
    ax = _axes(ax)
    labels = [""] * len(rows) if labels is None else labels
    kept = [(lab, r) for lab, r in zip(labels, rows) if np.isfinite(r[metric])]
    y = np.arange(len(kept))[::-1]
    means = [r[metric] for _, r in kept]
    stds = [r[f"{metric}_std"] for _, r in kept]
    colours = ["C3" if r["predictor"].startswith("AeLLE") else "C0" for _, r in kept]
    ax.errorbar(means, y, xerr=stds, fmt="none", ecolor="0.4", lw=1, capsize=2)
    ax.scatter(means, y, c=colours, s=25, zorder=3)
    ax.set_yticks(y, [f"{lab}  {r['predictor']}".strip() for lab, r in kept], fontsize=7)
    ax.set_xlabel(metric)
    ax.grid(axis="x", lw=0.4, alpha=0.5)
    return ax
