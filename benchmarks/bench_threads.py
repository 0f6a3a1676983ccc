"""Threads on a quiet and on a loaded machine: the default rule against fixed counts.

``num_threads="auto"`` computes a batch on one thread when its frames hold at
most ``sklyap.lyapunov.SMALL_FRAME`` numbers (``M * B * n * k``), and otherwise
on the process's threads less the cores that other processes hold when the
computation starts (``sklyap._validation.free_cores``). For single models from
N = 16 to 512 and for stacks, this times ``lyapunov_spectrum`` (full spectra,
float64) with one thread, with all, and with ``"auto"``, alternating them over
the repeats so that all see the same load, and reports the best time of each
and the ratio of ``"auto"`` to the best fixed count (the target: at most 1.2).

``--load`` runs the same with another process spinning on one core for the
whole run, as on a shared machine; run it both ways:

    python benchmarks/bench_threads.py [--quick] [--load] [--repeats R] [--out PATH]
"""

import argparse
import multiprocessing
import time

import torch
from _common import RESULTS, write_report
from torch import nn

from sklyap import lyapunov_spectrum
from sklyap._validation import free_cores
from sklyap.lyapunov import SMALL_FRAME

CASES = [
    # (kind, hidden size, models, trajectories, steps)
    ("RNN", 16, 1, 8, 300),
    ("RNN", 32, 1, 16, 300),
    ("GRU", 32, 1, 16, 300),
    ("LSTM", 32, 1, 16, 200),
    ("RNN", 64, 1, 16, 200),
    ("LSTM", 64, 1, 8, 150),
    ("RNN", 128, 1, 8, 100),
    ("GRU", 128, 1, 16, 60),
    ("LSTM", 128, 1, 16, 30),
    ("RNN", 256, 1, 8, 30),
    ("RNN", 512, 1, 4, 8),
    ("LSTM", 32, 16, 16, 60),
    ("LSTM", 64, 4, 8, 60),
]
QUICK = [("RNN", 32, 1, 16, 150), ("LSTM", 64, 1, 8, 100), ("RNN", 128, 1, 16, 60)]


def _spin(stop):
    while not stop.is_set():
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three cases")
    parser.add_argument("--load", action="store_true", help="a process spins on one core")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    out = args.out or str(RESULTS / f"bench_threads{'_loaded' if args.load else ''}.json")
    all_threads = torch.get_num_threads()
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=_spin, args=(stop,), daemon=True)
    if args.load:
        spinner.start()
        time.sleep(0.5)
    settings = {"1": 1, str(all_threads): all_threads, "auto": "auto"}
    rows = []
    print(f"{'load' if args.load else 'quiet'}: free_cores() = {free_cores()}")
    print(
        f"{'case':>24} {'frame':>9} "
        + " ".join(f"{name + ' ms/step':>14}" for name in settings)
        + f" {'auto/best':>9}"
    )
    try:
        for kind, hidden, count, B, steps in QUICK if args.quick else CASES:
            torch.manual_seed(0)
            models = [getattr(nn, kind)(4, hidden, batch_first=True) for _ in range(count)]
            inputs = torch.randn(B, steps, 4, generator=torch.Generator().manual_seed(1))
            n = (2 if kind == "LSTM" else 1) * hidden
            frame = count * B * n * n
            best = dict.fromkeys(settings, float("inf"))
            for _ in range(args.repeats):
                for name, threads in settings.items():
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
                    best[name] = min(best[name], time.perf_counter() - start)
            ms = {name: 1e3 * t / steps for name, t in best.items()}
            fixed = min(ms["1"], ms[str(all_threads)])
            label = f"{count}x {kind} N={hidden} B={B}"
            print(
                f"{label:>24} {frame:9d} "
                + " ".join(f"{ms[name]:14.2f}" for name in settings)
                + f" {ms['auto'] / fixed:9.2f}"
            )
            rows.append(
                {
                    "kind": kind,
                    "hidden_size": hidden,
                    "models": count,
                    "trajectories": B,
                    "frame_numbers": frame,
                    "ms_per_step": ms,
                    "auto_over_best_fixed": ms["auto"] / fixed,
                }
            )
    finally:
        stop.set()
        if spinner.is_alive():
            spinner.join()
    worst = max(r["auto_over_best_fixed"] for r in rows)
    print(f"worst auto / best fixed: {worst:.2f}")
    write_report(
        "bench_threads",
        out,
        rows,
        small_frame=SMALL_FRAME,
        load=args.load,
        all_threads=all_threads,
        worst_auto_over_best_fixed=worst,
    )


if __name__ == "__main__":
    main()
