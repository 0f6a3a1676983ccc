"""The AeLLE study end to end: train a population, take spectra, compare predictors."""

import time
from pathlib import Path

import numpy as np
import torch
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validation import check_device, check_int
from ..aelle import AeLLEClassifier, AeLLERegressor
from ..cache import ContentCache, digest, import_closure
from ..datasets import train_rnn_population
from ..features import SpectrumStatistics
from ..transformer import LyapunovSpectrumTransformer
from ..weights import WeightStatistics
from ._evaluation import Predictor, cross_validate_predictors, scores
from ._result import METRICS, StudyResult, summarise
from ._tasks import TASKS, StudyTask


def library_versions():
    """The versions that produced a result: sklyap (and its commit, in a git
    checkout) and the installed distributions it computes with."""
    import subprocess
    from importlib import metadata

    from .. import __version__

    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=7"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = None
    versions = {"sklyap": __version__, "commit": commit or None}
    for name in ("torch", "scikit-learn", "numpy", "scipy", "skorch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # run from a source tree, not installed
            versions[name] = None
    return versions


__all__ = ["make_predictors", "population_features", "run_study"]

_RIDGE_ALPHAS = np.logspace(-3, 3, 13)


def _ridge():
    return make_pipeline(StandardScaler(), RidgeCV(alphas=_RIDGE_ALPHAS))


def make_predictors(*, early_epoch=1, random_state=0):
    """The study's rows: every predictor, with the features it reads.

    Feature keys: ``final`` and ``early`` (spectra), ``final_novel`` (final
    spectra with other inputs of the task), ``weights_final`` and
    ``weights_early`` (:class:`~sklyap.WeightStatistics`), ``hyper`` (the
    hyperparameters), ``accuracy`` (the validation accuracy after the early
    epoch) and ``early+accuracy`` (early spectra with that accuracy as a last
    column).

    Returns
    -------
    list of Predictor
    """
    rs = random_state
    acc = f"val. accuracy at epoch {early_epoch}"
    forest = RandomForestRegressor(n_estimators=300, random_state=rs)
    rows = []
    for key in ("final", "early"):
        rows += [
            Predictor(
                key,
                "AeLLE",
                AeLLERegressor(random_state=rs),
                key,
                spectrum_only=True,
                novel_features="final_novel" if key == "final" else None,
            ),
            Predictor(key, "ridge on raw spectra", _ridge(), key, spectrum_only=True),
            Predictor(
                key,
                "ridge on SpectrumStatistics",
                make_pipeline(
                    SpectrumStatistics(), StandardScaler(), RidgeCV(alphas=_RIDGE_ALPHAS)
                ),
                key,
                spectrum_only=True,
            ),
            Predictor(key, "random forest on raw spectra", forest, key, spectrum_only=True),
            Predictor(
                key,
                "AeLLEClassifier (top half)",
                AeLLEClassifier(random_state=rs),
                key,
                target="top_half",
            ),
            Predictor(
                key,
                "gradient boosting on WeightStatistics",
                HistGradientBoostingRegressor(random_state=rs),
                f"weights_{key}",
            ),
        ]
    rows += [
        Predictor("early", acc, LinearRegression(), "accuracy"),
        Predictor(
            "early", f"AeLLE on spectra + {acc}", AeLLERegressor(random_state=rs), "early+accuracy"
        ),
        Predictor("early", f"ridge on spectra + {acc}", _ridge(), "early+accuracy"),
        Predictor("early", f"random forest on spectra + {acc}", forest, "early+accuracy"),
        Predictor("none", "ridge on hyperparameters", _ridge(), "hyper"),
    ]
    return rows


# The feature matrices population_features computes, and the rows the study's
# comparisons and embedding are made from.
FEATURE_KEYS = (
    "final",
    "early",
    "final_novel",
    "weights_final",
    "weights_early",
    "hyper",
    "accuracy",
    "early+accuracy",
)
REQUIRED_ROWS = (("final", "AeLLE"), ("early", "AeLLE"))


def _check_predictors(predictors):
    """``predictors`` as a list, checked before any work (None stays None)."""
    if predictors is None:
        return None
    predictors = list(predictors)
    for p in predictors:
        if not isinstance(p, Predictor):
            raise TypeError(f"predictors must be sklyap.study.Predictor rows, got {p!r}")
        for features in (p.features, p.novel_features):
            if features is not None and features not in FEATURE_KEYS:
                raise ValueError(
                    f"predictor {p.key}: unknown features {features!r}; expected one of "
                    f"{', '.join(FEATURE_KEYS)}"
                )
        if p.target not in ("accuracy", "top_half"):
            raise ValueError(
                f"predictor {p.key}: target must be 'accuracy' or 'top_half', got {p.target!r}"
            )
    keys = [p.key for p in predictors]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"predictors must be distinct (spectra, name) rows; repeated: {repeated}")
    missing = [k for k in REQUIRED_ROWS if k not in keys]
    if missing:
        raise ValueError(
            f"predictors lack the rows {missing}: the study's comparisons and embedding are "
            "made from AeLLE on the final and the early spectra (make_predictors() has them)"
        )
    return predictors


def _train(task, n_models, seed, n_jobs, cache_dir, verbose):
    """The task's population (loaded from the cache when it is there)."""
    return train_rnn_population(
        n_models=n_models,
        snapshot_epochs=(task.early_epoch,),
        random_state=seed,
        n_jobs=n_jobs,
        cache_dir=cache_dir,
        verbose=verbose,
        **task.population,
    )


def _inputs(task, seed):
    """The driving inputs: ``{"val": ..., "test": ..., "warmup": int}``."""
    rng = np.random.RandomState(seed)
    inputs, warmup = task.driving_inputs("val", rng)
    novel, _ = task.driving_inputs("test", rng)
    return {"val": inputs, "test": novel, "warmup": warmup}


def _spectra(task, final, early, inputs, n_features, device, n_jobs, verbose):
    """Final, early and final-with-novel-inputs spectra, and weight statistics, of networks."""
    lst = LyapunovSpectrumTransformer(
        inputs["val"],
        input_encoder=task.input_encoder,
        warmup=inputs["warmup"],
        n_features=n_features,
        device=device,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    weights = WeightStatistics()
    return {
        "final": lst.fit_transform(final),
        "early": lst.transform(early),
        "final_novel": clone(lst).set_params(inputs=inputs["test"]).fit(final).transform(final),
        "weights_final": weights.fit_transform(final),
        "weights_early": weights.transform(early),
    }


def _spectrum_code():
    """The modules the spectra depend on: what computing them can import, the study's
    inputs and this module (see :func:`~sklyap.cache.import_closure`)."""
    roots = ("sklyap.transformer", "sklyap.weights", "sklyap.datasets")
    return [*import_closure(roots), "sklyap.study._tasks", "sklyap.study._run"]


def task_spec(task):
    if isinstance(task, StudyTask):
        return task
    if isinstance(task, str) and task in TASKS:
        return TASKS[task]
    raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)} or a StudyTask")


def population_features(
    task="digits",
    *,
    n_models=None,
    n_features=32,
    device="auto",
    random_state=0,
    n_jobs=None,
    cache_dir=None,
    verbose=1,
):
    """A trained population's spectra, weights, hyperparameters and accuracies.

    The study's data, without the study: trains (or loads) the population of
    ``task`` and computes (or loads) its spectra, both cached
    (:class:`~sklyap.cache.ContentCache`): the spectra under a key of the
    networks' weights, the driving inputs, ``n_features``, the task's
    spectrum settings, the source of the library and the versions.

    Parameters
    ----------
    task : str or StudyTask, default="digits"
    n_models : int, default=None
        Population size; None uses the task's.
    n_features : int, default=32
        Resampled spectrum length.
    device : str, default="auto"
    random_state : int, default=0
        Seeds the population and the driving inputs.
    n_jobs : int, default=None
    cache_dir : str, Path, None or False, default=None
        Cache folder; None uses :func:`~sklyap.cache.default_cache_dir`,
        False disables caching.
    verbose : int, default=1

    Returns
    -------
    task : StudyTask
    features : dict of ndarray
        One row per network: ``final``, ``early`` and ``final_novel`` spectra,
        ``weights_final`` and ``weights_early`` (:class:`~sklyap.WeightStatistics`),
        ``hyper`` (:meth:`~sklyap.datasets.RNNPopulation.hyperparameter_matrix`),
        ``accuracy`` (validation accuracy after the early epoch, one column)
        and ``early+accuracy`` (the early spectra beside it).
    population : RNNPopulation
        Its ``test_accuracy[:, -1]`` is the study's target.
    """
    spec = task_spec(task)
    n_models = check_int(spec.n_models if n_models is None else n_models, "n_models", minimum=4)
    n_features = check_int(n_features, "n_features", minimum=2)
    random_state = check_int(random_state, "random_state", minimum=0)
    check_device(device)
    population = _train(spec, n_models, random_state, n_jobs, cache_dir, verbose)
    final, early = population.models(), population.models(spec.early_epoch)
    inputs = _inputs(spec, random_state)

    def compute():
        return _spectra(spec, final, early, inputs, n_features, device, n_jobs, verbose)

    if cache_dir is False:
        features = compute()
    else:
        fields = {
            "weights": [[digest(m.state_dict()) for m in pair] for pair in zip(final, early)],
            "hyperparameters": population.hyperparameters,
            "task": spec.population["task"],
            "inputs": digest(inputs),
            "input_encoder": spec.input_encoder,
            "warmup": int(inputs["warmup"]),
            "early_epoch": spec.early_epoch,
            "n_features": n_features,
        }
        payload = ContentCache(cache_dir).get_or_compute(
            "spectra",
            fields,
            lambda: {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in compute().items()},
            code=_spectrum_code(),
        )
        features = {k: v.numpy() for k, v in payload.items()}
    early_accuracy = population.val_accuracy[:, spec.early_epoch - 1]
    features["hyper"], _ = population.hyperparameter_matrix()
    features["accuracy"] = early_accuracy[:, None]
    features["early+accuracy"] = np.column_stack([features["early"], early_accuracy])
    return spec, features, population


def run_study(
    task="digits",
    *,
    n_models=None,
    n_repeats=5,
    n_splits=5,
    n_features=32,
    predictors=None,
    device="auto",
    random_state=0,
    n_jobs=None,
    cache_dir=None,
    verbose=1,
):
    """Predict the final accuracy of trained RNNs from their Lyapunov spectra, and compare.

    1. Train (or load from the cache) a population of ``n_models`` networks
       for ``task`` (see :data:`~sklyap.study.TASKS`): the initialisation
       scale varies widely, the learning rate narrowly.
    2. Drive every network with the same inputs of the task's validation
       split and compute its Lyapunov spectrum after the early epoch and
       after the last one, resampled onto ``n_features`` exponents; the final
       spectra once more with inputs of the test split (novel inputs of the
       same task). Spectra are cached, keyed by the networks' weights.
    3. Cross-validate every predictor (:func:`make_predictors`) of the final
       test accuracy on the same splits: ``n_repeats`` times, grouped by
       network, ``n_splits`` folds. Each repeat predicts every network once
       out of fold; its scores (Spearman, R^2, top-quartile precision, ROC
       AUC of "top half") are computed over all networks, and the table
       gives their mean and standard deviation over the repeats.

    Parameters
    ----------
    task : {"digits", "digits_pixel", "char_text"} or StudyTask, default="digits"
        A key of :data:`~sklyap.study.TASKS`, or a task of one's own (for
        example one of them with fewer epochs, through
        ``dataclasses.replace``).
    n_models : int, default=None
        Population size; None uses the task's (200).
    n_repeats : int, default=5
    n_splits : int, default=5
    n_features : int, default=32
        Resampled spectrum length.
    predictors : list of Predictor, default=None
        The rows; None uses :func:`make_predictors`.
    device : str, default="auto"
        Where the spectra are computed.
    random_state : int, default=0
        Seeds the population, the driving inputs, the splits and the
        estimators.
    n_jobs : int, default=None
        Parallel workers (training, spectra, cross-validation).
    cache_dir : str, Path, None or False, default=None
        Cache of trained networks and their spectra; None uses
        :func:`~sklyap.datasets.default_cache_dir`, False disables caching.
    verbose : int, default=1
        ``1`` shows progress bars.

    Returns
    -------
    StudyResult
    """
    spec = task_spec(task)
    predictors = _check_predictors(predictors)
    n_models = check_int(spec.n_models if n_models is None else n_models, "n_models", minimum=4)
    n_repeats = check_int(n_repeats, "n_repeats", minimum=1)
    n_splits = check_int(n_splits, "n_splits", minimum=2)
    if n_splits > n_models:
        raise ValueError(f"n_splits={n_splits} must be <= n_models={n_models}")
    timings = {}
    start = time.perf_counter()
    spec, features, population = population_features(
        spec,
        n_models=n_models,
        n_features=n_features,
        device=device,
        random_state=random_state,
        n_jobs=n_jobs,
        cache_dir=cache_dir,
        verbose=verbose,
    )
    timings["population_and_spectra_s"] = time.perf_counter() - start
    y = population.test_accuracy[:, -1]
    early_accuracy = features["accuracy"][:, 0]
    if predictors is None:
        predictors = make_predictors(early_epoch=spec.early_epoch, random_state=random_state)

    start = time.perf_counter()
    oof = cross_validate_predictors(
        predictors,
        features,
        y,
        groups=np.arange(n_models),
        n_splits=n_splits,
        n_repeats=n_repeats,
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=verbose,
    )
    timings["cross_validation_s"] = time.perf_counter() - start

    top_half = y >= np.median(y)
    rows = []
    for p in predictors:
        out = oof[p.key]
        per_repeat = [
            scores(y, out["prediction"][r], top_half=top_half, has_r2=p.target == "accuracy")
            for r in range(n_repeats)
        ]
        rows.append(_row(p.spectra, p.name, per_repeat, p.spectrum_only))
        if "novel" in out:
            per_repeat = [scores(y, out["novel"][r], top_half=top_half) for r in range(n_repeats)]
            rows.append(_row(p.spectra, f"{p.name}, novel inputs", per_repeat, False))

    # The embedding of the figures: AeLLE fitted on every network.
    start = time.perf_counter()
    aelle = next(p.estimator for p in predictors if p.name == "AeLLE" and p.spectra == "final")
    embedding = {
        key: clone(aelle).fit(features[key], y).transform(features[key])
        for key in ("final", "early")
    }
    timings["embedding_s"] = time.perf_counter() - start
    settings = {
        "task": spec.name,
        "title": spec.title,
        "n_models": n_models,
        "early_epoch": spec.early_epoch,
        "final_epoch": spec.population["n_epochs"],
        "n_features": n_features,
        "n_trajectories": spec.n_trajectories,
        "n_units": spec.n_units,
        "warmup_units": spec.warmup_units,
        "n_repeats": n_repeats,
        "n_splits": n_splits,
        "random_state": random_state,
        "population": {
            k: list(v) if isinstance(v, tuple) else v for k, v in spec.population.items()
        },
        "target": "test accuracy after the last epoch",
        "top_half_threshold": float(np.median(y)),
        "accuracy_range": [float(y.min()), float(y.max())],
        "versions": library_versions(),
    }
    return StudyResult(
        settings=settings,
        rows=rows,
        y=y,
        early_accuracy=early_accuracy,
        spectra={k: features[k] for k in ("final", "early", "final_novel")},
        oof=oof,
        embedding=embedding,
        hyperparameters=population.hyperparameters,
        timings=timings,
    )


def _row(spectra, name, per_repeat, spectrum_only):
    row = {"spectra": spectra, "predictor": name, "spectrum_only": spectrum_only}
    for metric in METRICS:
        row.update(summarise(metric, [s[metric] for s in per_repeat]))
    return row
