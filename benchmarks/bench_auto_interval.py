"""Does ``qr_interval="auto"`` keep trained networks' spectra, and what does it save?

For populations of networks trained on the study's tasks (at initialisation,
after one epoch and at the end of training), driven by the study's inputs, it
computes every spectrum with ``qr_interval=1`` and with ``"auto"`` in one run and
reports the intervals "auto" chose, the largest difference of any exponent
between the two, and the time of each.

    python benchmarks/bench_auto_interval.py [--quick] [--out PATH]

Populations are trained (and cached, as the study's are) on first use.
"""

import time

import numpy as np
from _common import parse_args, write_report

from sklyap import LyapunovSpectrumTransformer
from sklyap.datasets import train_rnn_population
from sklyap.study import TASKS


def main(argv=None):
    args = parse_args(__doc__, "digits only, 12 networks", "bench_auto_interval.json", argv)
    tasks, n_models = (["digits"], 12) if args.quick else (["digits", "digits_pixel"], 30)
    rows = []
    print(
        f"{'population':>28} {'intervals (count)':>28} {'max |diff|':>11} "
        f"{'every step s':>13} {'auto s':>7}"
    )
    for name in tasks:
        task = TASKS[name]
        population = train_rnn_population(
            n_models=n_models,
            snapshot_epochs=(0, task.early_epoch),
            random_state=0,
            verbose=0,
            **task.population,
        )
        inputs, warmup = task.driving_inputs("val", np.random.RandomState(0))
        for epoch in (0, task.early_epoch, population.snapshot_epochs[-1]):
            models = population.models(epoch)
            timings, results = {}, {}
            for interval in (1, "auto"):
                lst = LyapunovSpectrumTransformer(
                    inputs, warmup=warmup, qr_interval=interval, device="cpu"
                ).fit(models)
                start = time.perf_counter()
                results[interval] = lst.compute_spectra(models)
                timings[interval] = time.perf_counter() - start
            diff = max(
                float(np.abs(a.exponents - b.exponents).max())
                for a, b in zip(results[1], results["auto"])
            )
            chosen = [r.qr_interval for r in results["auto"]]
            counts = {int(i): chosen.count(i) for i in sorted(set(chosen))}
            label = f"{name}, epoch {epoch}"
            print(
                f"{label:>28} {counts!s:>28} {diff:11.1e} {timings[1]:13.2f} {timings['auto']:7.2f}"
            )
            rows.append(
                {
                    "task": name,
                    "epoch": epoch,
                    "models": len(models),
                    "intervals": counts,
                    "max_abs_difference": diff,
                    "every_step_s": timings[1],
                    "auto_s": timings["auto"],
                }
            )
    write_report("bench_auto_interval", args.out, rows)


if __name__ == "__main__":
    main()
