"""When do worker processes pay? Serial against n_jobs=2 over sweeps of several sizes.

For each sweep (models of one kind and size, Gaussian inputs of B trajectories
and T steps), in one run:

* ``serial``: ``LyapunovSpectrumTransformer(n_jobs=1).fit_transform(models)``;
* ``workers``: the same with ``n_jobs=2``, forced into joblib's worker processes
  (however small the work) and with the workers started afresh, as a first
  call in a session pays;
* ``estimate``: sklyap's estimate of the serial time, from which it decides to
  run in workers (when it exceeds ``WORKER_START_SECONDS * n / (n - 1)``, 6 s
  for two) or in-process.

The rule is right for a sweep when it picks the faster of the two. It prints a
table and writes JSON (default ``benchmarks/results/bench_jobs.json``).

    python benchmarks/bench_jobs.py [--quick] [--out PATH]
"""

import warnings

import torch
from _common import best_of, parse_args, write_report
from joblib.externals.loky import get_reusable_executor
from torch import nn

import sklyap.lyapunov as engine
from sklyap import LyapunovSpectrumTransformer, as_dynamics
from sklyap._planning import batch_numbers, estimated_seconds, plan_batches
from sklyap.lyapunov import SpectrumSettings

SWEEPS = [
    # (kind, hidden size, models, trajectories, measured steps)
    ("GRU", 16, 24, 8, 200),
    ("GRU", 32, 24, 8, 400),
    ("LSTM", 32, 64, 8, 400),
    ("RNN", 64, 16, 8, 400),
    ("LSTM", 64, 32, 8, 400),
    ("RNN", 128, 8, 16, 300),
    ("LSTM", 128, 8, 8, 300),
]
QUICK = SWEEPS[:3]
WARMUP = 100


def _models(kind, hidden, count):
    torch.manual_seed(0)
    return [getattr(nn, kind)(4, hidden, batch_first=True) for _ in range(count)]


def estimate(models, B, T):
    """sklyap's estimate of the serial time, in seconds (as the engine computes it)."""
    settings = SpectrumSettings()
    systems = [as_dynamics(m) for m in models]
    batches = plan_batches(systems, B)
    return estimated_seconds([batch_numbers(systems, batch, B, settings) for batch in batches], T)


def main(argv=None):
    args = parse_args(__doc__, "the three smallest sweeps", "bench_jobs.json", argv)
    rows = []
    print(
        f"{'sweep':>22} {'serial s':>9} {'workers s':>10} {'estimate s':>11} "
        f"{'rule':>10} {'right':>6}"
    )
    for kind, hidden, count, B, steps in QUICK if args.quick else SWEEPS:
        models = _models(kind, hidden, count)
        params = {"n_trajectories": B, "n_steps": steps, "warmup": WARMUP, "random_state": 0}
        params["device"] = "cpu"

        def serially(params=params, models=models):
            LyapunovSpectrumTransformer(**params).fit_transform(models)

        def in_workers(params=params, models=models):
            get_reusable_executor().shutdown(wait=True)  # start the workers afresh
            LyapunovSpectrumTransformer(n_jobs=2, **params).fit_transform(models)

        serial = best_of(serially, 1)
        forced, engine.WORKER_START_SECONDS = engine.WORKER_START_SECONDS, 0.0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # loky's notes on its workers
                workers = best_of(in_workers, 1)
        finally:
            engine.WORKER_START_SECONDS = forced
        guess = estimate(models, B, WARMUP + steps)
        rule = "workers" if guess > 2 * engine.WORKER_START_SECONDS else "in-process"
        right = (rule == "workers") == (workers < serial)
        name = f"{count} {kind} N={hidden} B={B} T={WARMUP + steps}"
        print(f"{name:>22} {serial:9.2f} {workers:10.2f} {guess:11.2f} {rule:>10} {right!s:>6}")
        rows.append(
            {
                "kind": kind,
                "hidden_size": hidden,
                "models": count,
                "trajectories": B,
                "time_steps": WARMUP + steps,
                "serial_s": serial,
                "workers_s": workers,
                "estimate_s": guess,
                "rule": rule,
                "right": bool(right),
            }
        )
    write_report("bench_jobs", args.out, rows, worker_start_seconds=engine.WORKER_START_SECONDS)


if __name__ == "__main__":
    main()
