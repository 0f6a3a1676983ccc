"""Choose AeLLE's defaults: candidate settings scored on several populations, and timed.

Usage::

    python benchmarks/bench_aelle_defaults.py [--quick] [--tasks digits ...] [--no-timing]
                                              [--candidates NAME ...] [--repeats 2] [--n-jobs 2] [--out PATH]

Cases (every candidate sees the same splits):

* the *selection* populations: the study's three tasks trained with
  ``random_state=1`` (the README's study uses 0, so the defaults are not tuned
  on the populations they are reported on), final and early spectra, 200
  networks each; scored by the Spearman correlation of out-of-fold
  predictions with the final test accuracy, ``--repeats`` x 5-fold;
* a small sample: 50 networks drawn from each selection population's final
  spectra (5-fold, the same repeats);
* speed: ``fit`` on 1,000 and 10,000 synthetic spectra of length 32
  (:func:`~sklyap.datasets.make_spectra`), with the held-out R^2.

The random forest and the ridge of the study are scored alongside, for scale.
Populations and spectra come from the study's cache (they are trained and
computed on the first run). Prints a table and writes JSON (default
``benchmarks/results/bench_aelle_defaults.json``).
"""

import argparse
import time

import numpy as np
from _common import RESULTS, write_report
from joblib import Parallel, delayed
from scipy.stats import spearmanr
from sklearn.base import clone
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklyap import AeLLERegressor
from sklyap.datasets import make_spectra
from sklyap.study import population_features

CANDIDATES = {
    "lr=3e-3, 300 epochs": {"lr": 3e-3, "max_epochs": 300},
    "lr=1e-2, 300 epochs": {"lr": 1e-2, "max_epochs": 300},
    "lr=3e-2, 300 epochs": {"lr": 3e-2, "max_epochs": 300},
    "lr=1e-2, 1000 epochs": {"lr": 1e-2, "max_epochs": 1000},
    "lr=3e-2, 1000 epochs": {"lr": 3e-2, "max_epochs": 1000},
}
RIVALS = {
    "random forest": RandomForestRegressor(n_estimators=300, random_state=0),
    "ridge": make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13))),
}


def _fold(estimator, X, y, train, test):
    start = time.perf_counter()
    prediction = clone(estimator).fit(X[train], y[train]).predict(X[test])
    return prediction, time.perf_counter() - start


def out_of_fold_spearman(estimator, X, y, repeats, n_jobs):
    """Spearman of out-of-fold predictions, per repeat, and the median fit time."""
    jobs = [
        (r, train, test)
        for r in range(repeats)
        for train, test in KFold(5, shuffle=True, random_state=100 + r).split(X)
    ]
    done = Parallel(n_jobs=n_jobs)(delayed(_fold)(estimator, X, y, tr, te) for _, tr, te in jobs)
    predictions = np.empty((repeats, len(y)))
    for (r, _, test), (prediction, _) in zip(jobs, done):
        predictions[r, test] = prediction
    rho = [float(spearmanr(y, p).statistic) for p in predictions]
    return rho, float(np.median([t for _, t in done]))


def population_cases(tasks, n_jobs):
    cases = {}
    rng = np.random.RandomState(0)
    for task in tasks:
        _, features, population = population_features(task, random_state=1, n_jobs=n_jobs)
        y = population.test_accuracy[:, -1]
        cases[f"{task} final"] = (features["final"], y)
        cases[f"{task} early"] = (features["early"], y)
        pick = rng.choice(len(y), 50, replace=False)
        cases[f"{task} final, 50 networks"] = (features["final"][pick], y[pick])
    return cases


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits only, one repeat")
    parser.add_argument(
        "--tasks",
        nargs="*",
        default=["digits", "digits_pixel", "char_text"],
        help="selection populations to score (default: all three)",
    )
    parser.add_argument("--no-timing", action="store_true", help="skip the synthetic timings")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--candidates",
        nargs="+",
        default=list(CANDIDATES),
        metavar="NAME",
        help="candidates to score (default: all)",
    )
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "bench_aelle_defaults.json"))
    args = parser.parse_args(argv)
    tasks = ["digits"] if args.quick else args.tasks
    repeats = 1 if args.quick else args.repeats

    cases = population_cases(tasks, args.n_jobs)
    unknown = sorted(set(args.candidates) - set(CANDIDATES))
    if unknown:
        parser.error(f"unknown candidates {unknown}; expected names from {list(CANDIDATES)}")
    candidates = {name: CANDIDATES[name] for name in args.candidates}
    estimators = {
        name: AeLLERegressor(random_state=0, **params) for name, params in candidates.items()
    }
    estimators.update(RIVALS)
    rows = []
    for case, (X, y) in cases.items():
        for name, est in estimators.items():
            rho, fit_s = out_of_fold_spearman(est, X, y, repeats, args.n_jobs)
            rows.append(
                {
                    "case": case,
                    "candidate": name,
                    "spearman": float(np.mean(rho)),
                    "spearman_per_repeat": rho,
                    "fit_s": fit_s,
                }
            )
            print(f"{case:28} {name:34} {np.mean(rho):6.3f} {fit_s:6.1f} s", flush=True)

    timings = []
    X_test, y_test = make_spectra(2000, 32, random_state=1)
    for n in () if args.no_timing else (1000, 10000):
        X, y = make_spectra(n, 32, random_state=0)
        for name, params in candidates.items():
            est = AeLLERegressor(random_state=0, **params)
            start = time.perf_counter()
            est.fit(X, y)
            seconds = time.perf_counter() - start
            timings.append(
                {
                    "n_samples": n,
                    "candidate": name,
                    "fit_s": seconds,
                    "epochs": est.n_iter_,
                    "test_r2": float(est.score(X_test, y_test)),
                }
            )
            print(
                f"synthetic n={n:<6} {name:34} {seconds:6.1f} s  {est.n_iter_:4d} epochs  "
                f"R^2 {timings[-1]['test_r2']:.3f}",
                flush=True,
            )

    if not cases:
        write_report("AeLLE defaults", args.out, rows, timings=timings, candidates=candidates)
        return
    print("\nMean Spearman over repeats (out of fold, 5 folds):")
    names = list(estimators)
    print(f"{'case':28} " + " ".join(f"{n[:14]:>14}" for n in names))
    for case in cases:
        values = {r["candidate"]: r["spearman"] for r in rows if r["case"] == case}
        print(f"{case:28} " + " ".join(f"{values[n]:14.3f}" for n in names))
    mean = {n: float(np.mean([r["spearman"] for r in rows if r["candidate"] == n])) for n in names}
    print(f"{'mean over cases':28} " + " ".join(f"{mean[n]:14.3f}" for n in names))
    write_report(
        "AeLLE defaults",
        args.out,
        rows,
        timings=timings,
        repeats=repeats,
        candidates=candidates,
        mean_over_cases=mean,
    )


if __name__ == "__main__":
    main()
