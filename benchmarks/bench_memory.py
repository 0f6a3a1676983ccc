"""Peak memory of LyapunovSpectrumTransformer.transform against the number of models.

The claim under test: peak memory during ``transform`` does not grow with the
number of models beyond the output array and what ``transform`` holds of the
models it has read until their batch runs (the models themselves being
already in memory). Working memory (a batch of stacked models) is bounded by
``memory_budget``, and what is held of models read ahead by 8 MiB of tensor
data (or ``memory_budget``, if smaller), by design.

Each run is a fresh Python process (one torch thread, CPU), so that its peak
resident memory is its own. Two series:

``small``
    2,000 seeded models (``nn.GRU(4, 8)``, ``nn.LSTM(4, 8)``, ``nn.RNN(4, 16)``
    in turn) are built; a transformer (``n_trajectories=4, n_steps=100,
    warmup=20``) is fitted on the first ``m`` and transforms them, for
    m = 100, 500, 1000 (and 2000), under the default ``memory_budget="auto"`` (8 MiB on
    the CPU) and under 1 MiB (batches of at most 13 to 42 models, full for
    the LSTMs and RNNs from m = 100 on).
``large``
    ``m`` seeded ``nn.LSTM(4, 256)`` (about 1 MiB of parameters each), for
    m = 10, 40, 80; two leading exponents, 2 trajectories of 12 steps,
    memory budget 1 MiB (one model per batch): a series where the models'
    parameters dominate.

Per run: ``models_kib`` (resident memory the built models added) and their
parameter bytes; ``rss_before_kib`` (resident memory just before
``transform``, after ``fit`` and after freed heap memory is handed back);
``transform_peak_kib`` (the high-water mark of resident memory during
``transform`` alone, reset just before it through /proc/self/clear_refs) and
``transform_growth_kib`` (that peak minus ``rss_before_kib``);
``ru_maxrss_kib`` (the process's peak over the whole run, from getrusage);
``output_kib``; ``seconds`` (the transform's wall time); ``batches`` (the
batch sizes the transformer plans); and two diagnostics of what ``transform``
avoids holding for its whole duration: ``dynamics_kib``, the resident memory
of ``as_dynamics`` of every model at once (``transform`` reads each model
once and holds its weight copies only within 8 MiB or ``memory_budget``; past it, it
keeps a few numbers of a model and reads it again when its batch is
computed), and ``results_kib``, what the per-model ``LyapunovResult`` objects
of ``compute_spectra`` hold (tracemalloc; ``transform`` keeps only each
model's resampled row).

    python benchmarks/bench_memory.py [--out PATH]

Linux only (/proc/self/status, /proc/self/clear_refs).
"""

import argparse
import contextlib
import ctypes
import gc
import json
import os
import re
import resource
import subprocess
import sys
import time
import tracemalloc

import torch
from _common import RESULTS, write_report
from torch import nn

N_SMALL = 2000
SMALL = {"n_trajectories": 4, "n_steps": 100, "warmup": 20}
LARGE = {"n_exponents": 2, "n_trajectories": 2, "n_steps": 10, "warmup": 2, "memory_budget": 2**20}
SERIES = [
    ("small", "auto", [100, 500, 1000, 2000]),
    ("small", 2**20, [100, 500, 1000]),
    ("large", 2**20, [10, 40, 80]),
]


def _status(key):
    """A field of /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))


def _reset_peak():
    """Reset the process's high-water mark of resident memory (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _trim():
    """Collect garbage and hand freed heap memory back to the system (glibc)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def build_models(series, m):
    """The models of a run: all 2,000 small ones, or ``m`` large ones."""
    models = []
    for i in range(N_SMALL if series == "small" else m):
        torch.manual_seed(i)
        if series == "small":
            models.append((nn.GRU(4, 8), nn.LSTM(4, 8), nn.RNN(4, 16))[i % 3])
        else:
            models.append(nn.LSTM(4, 256))
    return models


def child(series, m, budget):
    """One measured run; prints its row as JSON."""
    torch.set_num_threads(1)
    from sklyap import LyapunovSpectrumTransformer, as_dynamics
    from sklyap.lyapunov import plan_batches

    rss_start = _status("VmRSS")
    models = build_models(series, m)
    models_kib = _status("VmRSS") - rss_start
    param_bytes = sum(p.numel() * p.element_size() for x in models for p in x.parameters())
    subset = models[:m]
    params = dict(SMALL, memory_budget=budget) if series == "small" else LARGE
    lst = LyapunovSpectrumTransformer(device="cpu", random_state=0, **params).fit(subset)
    _trim()  # so that memory freed by fit is not reused unseen by transform
    rss_before = _status("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    X = lst.transform(subset)
    seconds = time.perf_counter() - start
    transform_peak = _status("VmHWM")
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    output_bytes = X.nbytes
    del X

    # Diagnostics, after the measured run: what transform holds for its
    # whole duration besides one batch's working memory.
    _trim()
    rss = _status("VmRSS")
    dynamics = [as_dynamics(x) for x in subset]
    dynamics_kib = _status("VmRSS") - rss
    batches = plan_batches(
        dynamics,
        lst.inputs_.shape[0],
        n_exponents=lst.n_exponents,
        memory_budget=lst.memory_budget,
    )
    del dynamics
    tracemalloc.start()
    results = lst.compute_spectra(subset)
    results_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del results

    print(
        json.dumps(
            {
                "series": series,
                "n_models": m,
                "memory_budget": budget,
                "models_built": len(models),
                "models_kib": models_kib,
                "model_param_kib": round(param_bytes / 1024, 1),
                "rss_before_kib": rss_before,
                "transform_peak_kib": transform_peak,
                "transform_growth_kib": transform_peak - rss_before,
                "ru_maxrss_kib": ru_maxrss,
                "output_kib": round(output_bytes / 1024, 1),
                "dynamics_kib": dynamics_kib,
                "results_kib": round(results_bytes / 1024, 1),
                "seconds": round(seconds, 3),
                "batches": sorted((len(b) for b in batches), reverse=True),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "bench_memory.json"))
    parser.add_argument(
        "--child", nargs=3, metavar=("SERIES", "M", "BUDGET"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in every run (and as the report records)
    if args.child:
        series, m, budget = args.child
        child(series, int(m), budget if budget == "auto" else int(budget))
        return

    header = (
        f"{'series':>6} {'budget':>6} {'models':>6} {'models KiB':>10} {'param KiB':>9} "
        f"{'before KiB':>10} {'peak KiB':>9} {'growth KiB':>10} {'output KiB':>10} "
        f"{'dynamics KiB':>12} {'results KiB':>11} {'ru_maxrss':>9} {'s':>6}  batches"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for series, budget, sizes in SERIES:
        for m in sizes:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", series, str(m), str(budget)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append(row)
            label = "auto" if budget == "auto" else f"{budget // 2**20}MiB"
            b = row["batches"]
            print(
                f"{series:>6} {label:>6} {m:>6} {row['models_kib']:>10} "
                f"{row['model_param_kib']:>9} {row['rss_before_kib']:>10} "
                f"{row['transform_peak_kib']:>9} {row['transform_growth_kib']:>10} "
                f"{row['output_kib']:>10} {row['dynamics_kib']:>12} {row['results_kib']:>11} "
                f"{row['ru_maxrss_kib']:>9} {row['seconds']:>6}  {len(b)} of <= {max(b)}"
            )
    write_report("memory", args.out, rows, note="each run a fresh process, one torch thread")


if __name__ == "__main__":
    main()
