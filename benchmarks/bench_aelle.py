"""Time AeLLERegressor.fit on 1,000 spectra of length 256 (the issue's claim).

Usage::

    python benchmarks/bench_aelle.py [--n-samples 1000] [--n-features 256]
                                     [--repeats 3] [--torch-threads 2 1]
                                     [--output PATH]

Prints a table and writes JSON (default ``benchmarks/results/bench_aelle.json``).
Two configurations are timed with default hyper-parameters: early stopping on
(the default), and early stopping off (all ``max_epochs=200`` epochs, the worst
case). The data are synthetic spectra ``a - b * t**1.5`` with a smooth nonlinear
"accuracy"; the held-out R^2 is reported so that speed is not bought with a
model that learnt nothing. Wall times depend on the machine and on anything
else running on it: the load average before and after is recorded. Each
configuration is timed with torch's default number of intra-op threads and with
one thread (``num_threads=None``, so that the estimator's default of one thread
does not override the setting): the layers are small, and on a busy 2-core
machine two threads contend with other processes and run many times slower
than one, which is why ``num_threads="auto"`` uses one.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import sklearn
import skorch
import torch

from sklyap import AeLLERegressor
from sklyap.datasets import make_spectra




def load():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--n-features", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=[torch.get_num_threads(), 1],
        help="intra-op thread counts to time (default: torch's default, and 1)",
    )
    parser.add_argument(
        "--output",
        default=str(Path(__file__).parent / "results" / "bench_aelle.json"),
    )
    args = parser.parse_args(argv)

    X, y = make_spectra(args.n_samples, args.n_features, random_state=0)
    X_test, y_test = make_spectra(500, args.n_features, random_state=1)

    # Warm-up: the first fit in a process pays one-off imports (torch's
    # optimiser machinery) and allocator start-up; it is reported separately.
    t0 = time.perf_counter()
    AeLLERegressor(max_epochs=1, random_state=0).fit(X, y)
    warmup = time.perf_counter() - t0

    load_before = load()
    configs = {
        "early_stopping=True (default)": {},
        "early_stopping=False (200 epochs)": {"early_stopping": False},
    }
    default_threads = torch.get_num_threads()
    runs = [
        (threads, name, params)
        for threads in args.torch_threads
        for name, params in configs.items()
    ]
    results = []
    for threads, name, params in runs:
        torch.set_num_threads(threads)
        times, epochs, r2 = [], [], []
        for repeat in range(args.repeats):
            # num_threads=None: the thread count set above rules, not the
            # estimator's default of one thread.
            est = AeLLERegressor(random_state=repeat, num_threads=None, **params)
            t0 = time.perf_counter()
            est.fit(X, y)
            times.append(time.perf_counter() - t0)
            epochs.append(est.n_iter_)
            r2.append(est.score(X_test, y_test))
        t0 = time.perf_counter()
        est.predict(X_test)
        predict_time = time.perf_counter() - t0
        results.append(
            {
                "config": name,
                "torch_threads": threads,
                "params": params,
                "fit_seconds": times,
                "fit_seconds_median": statistics.median(times),
                "epochs": epochs,
                "seconds_per_epoch_median": statistics.median(
                    t / e for t, e in zip(times, epochs)
                ),
                "test_r2": r2,
                "predict_seconds_500": predict_time,
            }
        )
    load_after = load()
    torch.set_num_threads(default_threads)

    report = {
        "benchmark": "AeLLERegressor.fit",
        "n_samples": args.n_samples,
        "n_features": args.n_features,
        "repeats": args.repeats,
        "defaults": {
            k: v for k, v in AeLLERegressor().get_params().items() if k != "random_state"
        },
        "warmup_fit_1_epoch_seconds": warmup,
        "results": results,
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads_default": default_threads,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "skorch": skorch.__version__,
            "numpy": np.__version__,
            "cuda_available": torch.cuda.is_available(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
    }
    report["defaults"]["hidden_dims"] = list(report["defaults"]["hidden_dims"])

    header = (
        f"{'configuration':36s} {'threads':>7s} {'fit s (median)':>15s} {'runs':>24s} "
        f"{'epochs':>14s} {'s/epoch':>8s} {'test R^2':>9s}"
    )
    print(
        f"AeLLERegressor.fit, {args.n_samples} spectra x {args.n_features}, "
        f"{os.cpu_count()} CPUs, torch's default {default_threads} threads"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        times_str = ", ".join(f"{t:.1f}" for t in r["fit_seconds"])
        ep = ",".join(str(e) for e in r["epochs"])
        print(
            f"{r['config']:36s} {r['torch_threads']:7d} {r['fit_seconds_median']:15.1f} "
            f"{times_str:>24s} {ep:>14s} {r['seconds_per_epoch_median']:8.3f} "
            f"{min(r['test_r2']):9.3f}"
        )
    print(
        f"warm-up fit (1 epoch, first in process): {warmup:.1f} s; "
        f"load average before/after: {load_before} / {load_after}"
    )

    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
