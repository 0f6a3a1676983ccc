"""One torch thread or all of them, by the size of the frames: where is the crossover?

``num_threads="auto"`` computes a batch on one thread when its frames hold at
most ``sklyap.lyapunov.SMALL_FRAME`` numbers (``M * B * n * k``) and on all of
the calling process's threads otherwise. For single models and stacks of
several sizes this times ``lyapunov_spectrum`` (full spectra, float64) with
one thread and with all, alternating the two over the repeats so that both
see the same load, and reports the best time of each and their ratio.

    python benchmarks/bench_threads.py [--quick] [--repeats R] [--out PATH]
"""

import argparse
import time

import torch
from _common import RESULTS, write_report
from torch import nn

from sklyap import lyapunov_spectrum
from sklyap.lyapunov import SMALL_FRAME

CASES = [
    # (kind, hidden size, models, trajectories)
    ("RNN", 32, 1, 16),
    ("GRU", 32, 1, 16),
    ("RNN", 64, 1, 16),
    ("LSTM", 32, 1, 16),
    ("RNN", 128, 1, 4),
    ("RNN", 128, 1, 8),
    ("LSTM", 64, 1, 8),
    ("RNN", 128, 1, 16),
    ("GRU", 128, 1, 16),
    ("LSTM", 64, 4, 8),
    ("LSTM", 32, 16, 16),
    ("LSTM", 128, 1, 16),
]
QUICK = [("RNN", 32, 1, 16), ("RNN", 128, 1, 8), ("RNN", 128, 1, 16)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three cases")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--out", default=str(RESULTS / "bench_threads.json"))
    args = parser.parse_args(argv)
    all_threads = torch.get_num_threads()
    rows = []
    print(
        f"{'case':>22} {'frame':>9} {'1 thread ms/step':>17} "
        f"{f'{all_threads} threads ms/step':>18} {'ratio':>6}"
    )
    for kind, hidden, count, B in QUICK if args.quick else CASES:
        torch.manual_seed(0)
        models = [getattr(nn, kind)(4, hidden, batch_first=True) for _ in range(count)]
        inputs = torch.randn(B, args.steps, 4, generator=torch.Generator().manual_seed(1))
        n = (2 if kind == "LSTM" else 1) * hidden
        frame = count * B * n * n
        best = {1: float("inf"), all_threads: float("inf")}
        for _ in range(args.repeats):
            for threads in best:
                start = time.perf_counter()
                lyapunov_spectrum(
                    models if count > 1 else models[0],
                    inputs,
                    warmup=0,
                    batch_first=True,
                    device="cpu",
                    num_threads=threads,
                    memory_budget=2**30,
                )
                best[threads] = min(best[threads], time.perf_counter() - start)
        one, many = (1e3 * best[t] / args.steps for t in (1, all_threads))
        name = f"{count}x {kind} N={hidden} B={B}"
        print(f"{name:>22} {frame:9d} {one:17.2f} {many:18.2f} {one / many:6.2f}")
        rows.append(
            {
                "kind": kind,
                "hidden_size": hidden,
                "models": count,
                "trajectories": B,
                "frame_numbers": frame,
                "one_thread_ms_per_step": one,
                "all_threads_ms_per_step": many,
                "all_threads": all_threads,
                "speedup_of_threads": one / many,
            }
        )
    write_report("bench_threads", args.out, rows, small_frame=SMALL_FRAME)


if __name__ == "__main__":
    main()
