"""LyapunovPruner's inputs and regressor: replayed studies on recorded populations.

Each regressor (a random forest, extremely randomised trees, a Gaussian
process) reads each input (the early spectrum and score; the same
with the network's early weight statistics, :class:`sklyap.WeightStatistics`)
in replayed Optuna studies (:func:`sklyap.study._replay.replay_study`, one
worker) over the study's populations of ``random_state`` 0, 4 random orders
each, beside Optuna's MedianPruner and SuccessiveHalvingPruner. The startup
prior is off throughout (it reads the spectrum alone), so that the rows differ
only in what the regressor learns. It prints the mean regret and top-10%
recall within 20, 35 and 50% of the epochs and the epochs spent, names the
row of lowest mean regret over the three budgets (ties: higher recall at 35%;
the criterion by which the sweep picks the best of Optuna's pruners), and the time
of one fit on 100 finished trials for each regressor and for
:class:`sklyap.AeLLERegressor` (too slow to replay: it would be refitted some
thirty times in each study). The populations and their spectra come from the
cache (``python -m sklyap sweep`` computes them).

    python benchmarks/bench_pruner_inputs.py [--quick] [--out PATH]
"""

import time
import warnings

import numpy as np
import optuna
from _common import parse_args, write_report
from _replays import METRICS, TASKS, recorded_populations, replay_order
from joblib import Parallel, delayed
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, WhiteKernel
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklyap import AeLLERegressor
from sklyap.selection import LyapunovPruner

INPUTS = ("spectra + score", "spectra + score + weights")
REGRESSORS = {
    "random forest": lambda: RandomForestRegressor(
        n_estimators=100, min_samples_leaf=2, random_state=0, n_jobs=1
    ),
    "extra trees": lambda: ExtraTreesRegressor(
        n_estimators=100, min_samples_leaf=2, random_state=0, n_jobs=1
    ),
    "Gaussian process": lambda: make_pipeline(
        StandardScaler(),
        GaussianProcessRegressor(RBF(5.0) + WhiteKernel(0.1), normalize_y=True, random_state=0),
    ),
}
BASELINES = {
    "MedianPruner": optuna.pruners.MedianPruner,
    "SuccessiveHalvingPruner": optuna.pruners.SuccessiveHalvingPruner,
}


def replay(name, data, inputs, k):
    if name in BASELINES:
        pruner = BASELINES[name]()
    else:
        pruner = LyapunovPruner(REGRESSORS[name](), prior=None)
    features = data["spectra"]
    if inputs == INPUTS[1]:
        features = np.column_stack([features, data["weights"]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mixed populations warn at their start
        return replay_order(pruner, data, k, spectra=features)


def fit_seconds(make, X, y):
    start = time.perf_counter()
    make().fit(X, y)
    return time.perf_counter() - start


def main(argv=None):
    args = parse_args(__doc__, "one task, 2 orders", "bench_pruner_inputs.json", argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tasks = TASKS[:1] if args.quick else TASKS
    n_orders = 2 if args.quick else 4
    populations = recorded_populations(tasks)
    candidates = [(name, INPUTS[0]) for name in BASELINES]
    candidates += [(name, inputs) for name in REGRESSORS for inputs in INPUTS]
    jobs = [(c, task, k) for c in candidates for task in tasks for k in range(n_orders)]
    results = Parallel(n_jobs=-1)(
        delayed(replay)(name, populations[task], inputs, k) for (name, inputs), task, k in jobs
    )
    # One fit on 100 finished trials of the first task, both inputs.
    data = populations[tasks[0]]
    y = data["curves"][:100, -1]
    makers = {**REGRESSORS, "AeLLERegressor (defaults)": lambda: AeLLERegressor(random_state=0)}
    timings = {}
    for inputs in INPUTS:
        X = np.column_stack([data["spectra"], data["curves"][:, data["early_epoch"] - 1]])
        if inputs == INPUTS[1]:
            X = np.column_stack([X, data["weights"]])
        timings[inputs] = {name: fit_seconds(make, X[:100], y) for name, make in makers.items()}
    rows = []
    for name, inputs in candidates:
        row = {"pruner": name, "inputs": inputs}
        for task in tasks:
            runs = [
                r for ((n, i), t, _), r in zip(jobs, results) if (n, i, t) == (name, inputs, task)
            ]
            row[task] = {m: float(np.mean([r[m] for r in runs])) for m in METRICS}
        row["mean"] = {m: float(np.mean([row[t][m] for t in tasks])) for m in METRICS}
        if name in REGRESSORS:
            row["fit_s_100_trials"] = timings[inputs][name]
        rows.append(row)
        label = name if name in BASELINES else f"{name}, {inputs}"
        cells = "  ".join(f"{row['mean'][m]:.3f}" for m in METRICS)
        print(f"{label:52s} {cells}")
        if args.quick:
            continue
        for task in tasks:
            cells = "  ".join(f"{row[task][m]:.3f}" for m in METRICS)
            print(f"  {task:50s} {cells}")
    print("columns (means over " + ", ".join(tasks) + "): " + ", ".join(METRICS))
    ours = [r for r in rows if r["pruner"] in REGRESSORS]
    best = min(
        ours,
        key=lambda r: (
            round(np.mean([r["mean"][f"regret_at_{b}"] for b in (20, 35, 50)]), 6),
            -r["mean"]["top10_recall_at_35"],
        ),
    )
    print(f"lowest mean regret over the budgets: {best['pruner']}, {best['inputs']}")
    for inputs, by_name in timings.items():
        print(
            f"one fit on 100 trials ({inputs}): "
            + ", ".join(f"{n} {s:.2f} s" for n, s in by_name.items())
        )
    write_report(
        "bench_pruner_inputs",
        args.out,
        rows,
        tasks=list(tasks),
        n_orders=n_orders,
        fits=timings,
        chosen=f"{best['pruner']}, {best['inputs']}",
    )


if __name__ == "__main__":
    main()
