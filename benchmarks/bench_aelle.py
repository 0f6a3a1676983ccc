"""Time AeLLERegressor.fit at its defaults, from a population's size to a large sweep's.

Usage::

    python benchmarks/bench_aelle.py [--quick] [--repeats 3] [--torch-threads 2 1] [--out PATH]

Fits ``AeLLERegressor(random_state=r)`` (every other parameter at its default)
on synthetic spectra ``a - b * t**1.5`` with a smooth nonlinear "accuracy"
(:func:`~sklyap.datasets.make_spectra`) of three shapes: 200 x 32 (a study's
population), 1,000 x 256 and 10,000 x 32 (early stopping is on from 1,000
samples). The held-out R^2 is reported so that speed is not bought with a model
that learnt nothing. Each shape is timed with torch's default number of
intra-op threads and with one (``num_threads=None``, so that the estimator's
own choice, one thread on CPU, does not override the setting). The load average
before and after is recorded: wall times depend on anything else running.
Prints a table and writes JSON (default ``benchmarks/results/bench_aelle.json``).
"""

import argparse
import os
import statistics
import time

import torch
from _common import RESULTS, write_report

from sklyap import AeLLERegressor
from sklyap.datasets import make_spectra

SHAPES = [(200, 32), (1000, 256), (10000, 32)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 x 32 only, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=[torch.get_num_threads(), 1],
        help="intra-op thread counts to time (default: torch's, and 1)",
    )
    parser.add_argument("--out", default=str(RESULTS / "bench_aelle.json"))
    args = parser.parse_args(argv)
    shapes = SHAPES[:1] if args.quick else SHAPES
    repeats = 1 if args.quick else args.repeats

    # The first fit in a process pays one-off imports and allocator start-up.
    start = time.perf_counter()
    AeLLERegressor(max_epochs=1, random_state=0).fit(*make_spectra(50, 8, random_state=0))
    warmup = time.perf_counter() - start

    load_before = os.getloadavg()
    default_threads = torch.get_num_threads()
    rows = []
    for n_samples, n_features in shapes:
        X, y = make_spectra(n_samples, n_features, random_state=0)
        X_test, y_test = make_spectra(1000, n_features, random_state=1)
        for threads in args.torch_threads:
            torch.set_num_threads(threads)
            times, epochs, r2 = [], [], []
            for repeat in range(repeats):
                est = AeLLERegressor(random_state=repeat, num_threads=None)
                start = time.perf_counter()
                est.fit(X, y)
                times.append(time.perf_counter() - start)
                epochs.append(est.n_iter_)
                r2.append(float(est.score(X_test, y_test)))
            rows.append(
                {
                    "n_samples": n_samples,
                    "n_features": n_features,
                    "torch_threads": threads,
                    "early_stopping": bool(est.early_stopping_),
                    "batch_size": est.batch_size_,
                    "fit_s": times,
                    "fit_s_median": statistics.median(times),
                    "epochs": epochs,
                    "test_r2": r2,
                }
            )
            r = rows[-1]
            print(
                f"{n_samples:>6} x {n_features:<4} threads {threads}  fit {r['fit_s_median']:6.1f} s"
                f"  epochs {min(epochs)}-{max(epochs)}  early stopping {r['early_stopping']!s:5}"
                f"  batch {r['batch_size']:>4}  test R^2 {min(r2):.3f}",
                flush=True,
            )
    torch.set_num_threads(default_threads)
    load_after = os.getloadavg()
    print(
        f"warm-up fit (first in process): {warmup:.1f} s; load average before/after: "
        f"{load_before[0]:.1f} / {load_after[0]:.1f}"
    )
    defaults = AeLLERegressor().get_params()
    defaults["hidden_dims"] = list(defaults["hidden_dims"])
    write_report(
        "AeLLERegressor.fit",
        args.out,
        rows,
        repeats=repeats,
        defaults=defaults,
        warmup_s=warmup,
        load_before=load_before,
        load_after=load_after,
        cpu_count=os.cpu_count(),
    )


if __name__ == "__main__":
    main()
