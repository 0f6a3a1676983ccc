"""LyapunovPruner's defaults: a grid of its settings replayed on recorded populations.

Each setting of ``LyapunovPruner`` (the early score as an input or not, the
bar's quantile, the confidence in spreads, the startup trials) runs replayed
Optuna studies (:func:`sklyap.study._replay.replay_study`, one worker) over
the study's populations of ``random_state`` 0 (the populations of 2 are held
out of the choice, for ``python -m sklyap sweep``), in 4 random orders each,
beside Optuna's MedianPruner, SuccessiveHalvingPruner and HyperbandPruner.
It prints the mean regret and top-10% recall within 20, 35 and 50% of the
epochs of training every network to the end, and the epochs spent, and names
the setting of lowest mean regret at 35% over the populations (ties: higher
recall at 35%). The populations and their spectra come from the cache
(``python -m sklyap sweep`` computes them).

    python benchmarks/bench_pruner_defaults.py [--quick] [--out PATH]
"""

import itertools

import numpy as np
import optuna
from _common import parse_args, write_report
from _replays import METRICS, TASKS, recorded_populations, replay_order
from joblib import Parallel, delayed

from sklyap.selection import LyapunovPruner


def settings(quick):
    grid = itertools.product(
        [True, False] if not quick else [True],
        [0.5, 0.75],
        [0.0, 0.5, 1.0] if not quick else [0.0, 1.0],
        [10, 20] if not quick else [10],
    )
    for early_score, quantile, confidence, n_startup in grid:
        name = (
            f"LyapunovPruner(early_score={early_score}, quantile={quantile}, "
            f"confidence={confidence}, n_startup_trials={n_startup})"
        )
        yield (
            name,
            {
                "early_score": early_score,
                "quantile": quantile,
                "confidence": confidence,
                "n_startup_trials": n_startup,
            },
        )


BASELINES = {
    "MedianPruner": optuna.pruners.MedianPruner,
    "SuccessiveHalvingPruner": optuna.pruners.SuccessiveHalvingPruner,
    "HyperbandPruner": optuna.pruners.HyperbandPruner,
}


def replay(name, params, data, k):
    pruner = BASELINES[name]() if params is None else LyapunovPruner(**params)
    return replay_order(pruner, data, k)


def main(argv=None):
    args = parse_args(
        __doc__, "one task, 2 orders, a smaller grid", "bench_pruner_defaults.json", argv
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tasks = TASKS[:1] if args.quick else TASKS
    n_orders = 2 if args.quick else 4
    populations = recorded_populations(tasks)
    candidates = [(name, None) for name in BASELINES] + list(settings(args.quick))
    jobs = [(c, task, k) for c in candidates for task in tasks for k in range(n_orders)]
    results = Parallel(n_jobs=-1)(
        delayed(replay)(name, params, populations[task], k) for (name, params), task, k in jobs
    )
    rows = []
    for name, params in candidates:
        row = {"setting": name, "params": params}
        for task in tasks:
            runs = [r for ((n, _), t, _), r in zip(jobs, results) if n == name and t == task]
            row[task] = {m: float(np.mean([r[m] for r in runs])) for m in METRICS}
        row["mean"] = {m: float(np.mean([row[t][m] for t in tasks])) for m in METRICS}
        rows.append(row)
        cells = "  ".join(f"{row['mean'][m]:.3f}" for m in METRICS)
        print(f"{name:90s} {cells}")
    print("columns (means over " + ", ".join(tasks) + "): " + ", ".join(METRICS))
    ours = [r for r in rows if r["params"] is not None]
    best = min(
        ours, key=lambda r: (round(r["mean"]["regret_at_35"], 6), -r["mean"]["top10_recall_at_35"])
    )
    print(f"lowest mean regret at 35%: {best['setting']}")
    write_report(
        "bench_pruner_defaults",
        args.out,
        rows,
        tasks=list(tasks),
        n_orders=n_orders,
        chosen=best["setting"],
    )


if __name__ == "__main__":
    main()
