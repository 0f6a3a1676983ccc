"""Spectra of many networks at once: stacked batches against a loop over models.

In one run, for RNN/GRU/LSTM at hidden sizes N = 16, 32, 64, 128 (full
spectrum, B = 8 trajectories, float64, qr_interval=1) this times:

* ``loop``: ``[lyapunov_spectrum(model, inputs) for model in models]``, the
  single-model path once per model;
* ``stacked``: ``lyapunov_spectrum(models, inputs)``, which stacks networks
  of one signature and advances them together in batches that fit the
  default memory budget;

checks that both give the same exponents, and reports model-steps per
second and the ratio; and the stacked path with ``orthonormalize="cholesky_qr2"``,
its speed against Householder's and the largest difference of its exponents
from CPU Householder in float64. The target configuration is 64 LSTMs with N = 32 and
300 steps; larger N use fewer models and steps (per model-step times are
compared, on the same models and inputs for both paths).

Then, on trained networks (a small digits population from
``sklyap.datasets.train_rnn_population``, cached) and on random ones, it
reports what ``qr_interval="auto"`` chooses, the speed-up over
``qr_interval=1`` and the largest change of an exponent; and the speed and
accuracy of float32 against float64. With CUDA it also times the stacked
path on the GPU at N = 128 and 512 against the CPU.

    python benchmarks/bench_population.py [--quick] [--gpu-only] [--threads T] [--out PATH]

``--gpu-only`` skips the CPU tables (the GPU-against-CPU table still runs
the CPU side), for a short lease on a GPU machine.
"""

import time
import warnings

import numpy as np
import torch
from _common import best_of, parse_args, write_report
from torch import nn

from sklyap import lyapunov_spectrum

B, INPUT_SIZE, WARMUP_FRACTION = 8, 8, 0.2
# (models, time steps) per hidden size.
SIZES = {16: (64, 300), 32: (64, 300), 64: (32, 150), 128: (16, 50)}
QUICK = {16: (16, 100), 32: (64, 300)}
# On a GPU a step costs about the same at every size here; 50 steps suffice.
GPU_SIZES = {N: (M, 50) for N, (M, _) in SIZES.items()}


def _models(kind, N, M, gain=None, seed=0):
    torch.manual_seed(seed)
    models = [getattr(nn, kind)(INPUT_SIZE, N, batch_first=True) for _ in range(M)]
    if gain is not None:
        with torch.no_grad():
            for model in models:
                nn.init.normal_(model.weight_hh_l0, 0.0, gain / np.sqrt(N))
    return models


def _inputs(T, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, INPUT_SIZE, generator=gen, dtype=torch.float64)


def _max_difference(a, b):
    return float(max(np.abs(x.exponents - y.exponents).max() for x, y in zip(a, b)))


def stacked_vs_loop(sizes, device):
    print(f"\nStacked against a loop over models ({device}, B={B}, float64, full spectrum)")
    header = (
        f"{'model':5} {'N':>4} {'n':>4} {'M':>3} {'T':>4} {'loop ms/model-step':>19} "
        f"{'stacked ms/model-step':>22} {'model-steps/s':>14} {'speed-up':>9} {'max |dl|':>9} "
        f"{'CholQR2 m-s/s':>13} {'vs Hh':>8} {'CholQR2 |dl|':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for kind in ("RNN", "GRU", "LSTM"):
        for N, (M, T) in sizes.items():
            models = _models(kind, N, M)
            x = _inputs(T)
            warmup = int(WARMUP_FRACTION * T)
            out = {}

            def loop(models=models, x=x, warmup=warmup, out=out):
                out["loop"] = [
                    lyapunov_spectrum(m, x, warmup=warmup, device=device) for m in models
                ]

            def stacked(models=models, x=x, warmup=warmup, out=out, method="householder"):
                out[method] = lyapunov_spectrum(
                    models, x, warmup=warmup, device=device, orthonormalize=method
                )

            t_loop = best_of(loop, 1)
            t_stacked = best_of(stacked, 1)
            t_cholesky = best_of(lambda: stacked(method="cholesky_qr2"), 1)
            out["stacked"] = out["householder"]
            n = out["loop"][0].state_size
            per = M * T
            # The reference: CPU Householder in float64 (the stacked run itself on the CPU).
            reference = out["stacked"]
            if device != "cpu":
                reference = lyapunov_spectrum(models, x, warmup=warmup, device="cpu")
            row = {
                "model": kind,
                "hidden_size": N,
                "state_size": n,
                "n_models": M,
                "n_steps": T,
                "batch": B,
                "device": device,
                "loop_s_per_model_step": t_loop / per,
                "stacked_s_per_model_step": t_stacked / per,
                "stacked_model_steps_per_s": per / t_stacked,
                "speedup": t_loop / t_stacked,
                "max_abs_difference": _max_difference(out["loop"], out["stacked"]),
                "cholesky_qr2_model_steps_per_s": per / t_cholesky,
                "cholesky_qr2_over_householder": t_stacked / t_cholesky,
                "max_abs_difference_from_cpu_householder": {
                    "householder": _max_difference(out["stacked"], reference),
                    "cholesky_qr2": _max_difference(out["cholesky_qr2"], reference),
                },
            }
            rows.append(row)
            print(
                f"{kind:5} {N:>4} {n:>4} {M:>3} {T:>4} {1e3 * t_loop / per:>19.3f} "
                f"{1e3 * t_stacked / per:>22.3f} {per / t_stacked:>14.0f} "
                f"{t_loop / t_stacked:>9.2f} {row['max_abs_difference']:>9.1e} "
                f"{per / t_cholesky:>13.0f} {t_stacked / t_cholesky:>8.2f} "
                f"{row['max_abs_difference_from_cpu_householder']['cholesky_qr2']:>9.1e}",
                flush=True,
            )
    return rows


def _trained_networks(quick):
    from sklyap.datasets import train_rnn_population

    population = train_rnn_population(
        "digits",
        8 if quick else 16,
        n_epochs=5,
        learning_rate_range=(3e-3, 1e-2),
        random_state=0,
        verbose=0,
    )
    return population.models()


def _digit_inputs(T):
    from sklyap.datasets import digit_streams, load_sequential_digits

    data = load_sequential_digits("row")
    streams = digit_streams(data.X_val, B, T // data.n_steps, np.random.RandomState(0))
    return torch.tensor(streams)


def interval_and_precision(quick, device):
    """qr_interval="auto" and float32 against the exact float64, qr_interval=1 run."""
    T = 200 if quick else 400
    digits = _digit_inputs(T)
    gaussian = _inputs(T, seed=2)
    sets = {
        "trained on digits (mixed)": (_trained_networks(quick), digits),
        "random GRU, N=32 (contracting)": (_models("GRU", 32, 16), gaussian),
        "random RNN, N=64, gain 0.8 (contracting)": (_models("RNN", 64, 16, gain=0.8), gaussian),
        "random RNN, N=64, gain 1.5 (chaotic)": (_models("RNN", 64, 16, gain=1.5), gaussian),
        "random RNN, N=64, gain 3 (chaotic)": (_models("RNN", 64, 16, gain=3.0), gaussian),
        "random LSTM, N=32": (_models("LSTM", 32, 16), gaussian),
    }
    print(f"\nqr_interval='auto' and float32 against float64 with qr_interval=1 ({device})")
    header = (
        f"{'networks':42} {'spread':>7} {'auto intervals':>15} {'auto x':>7} "
        f"{'auto max |dl|':>14} {'f32 x':>6} {'f32 max |dl|':>13} {'f32 median':>11}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name, (models, x) in sets.items():
        warmup = T // 5
        runs, times = {}, {}
        for key, kwargs in {
            "exact": {},
            "auto": {"qr_interval": "auto"},
            "float32": {"dtype": torch.float32},
        }.items():
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                runs[key] = lyapunov_spectrum(models, x, warmup=warmup, device=device, **kwargs)
            times[key] = time.perf_counter() - start
            if key == "float32":
                warned = any("float32 resolves" in str(w.message) for w in caught)
        exact = runs["exact"]
        spreads = [r.exponents[0] - r.exponents[-1] for r in exact]
        f32 = [np.abs(a.exponents - b.exponents).max() for a, b in zip(exact, runs["float32"])]
        intervals = sorted({r.qr_interval for r in runs["auto"]})
        row = {
            "networks": name,
            "n_models": len(models),
            "n_steps": T,
            "device": device,
            "spread_min": float(min(spreads)),
            "spread_max": float(max(spreads)),
            "auto_intervals": intervals,
            "auto_speedup": times["exact"] / times["auto"],
            "auto_max_abs_difference": _max_difference(exact, runs["auto"]),
            "float32_speedup": times["exact"] / times["float32"],
            "float32_max_abs_difference": float(max(f32)),
            "float32_median_abs_difference": float(np.median(f32)),
            "float32_warned": warned,
        }
        rows.append(row)
        spread = f"{min(spreads):.1f}-{max(spreads):.1f}"
        print(
            f"{name:42} {spread:>7} {intervals!s:>15} {row['auto_speedup']:>7.2f} "
            f"{row['auto_max_abs_difference']:>14.1e} {row['float32_speedup']:>6.2f} "
            f"{row['float32_max_abs_difference']:>13.1e} "
            f"{row['float32_median_abs_difference']:>11.1e}",
            flush=True,
        )
    return rows


def gpu_against_cpu(quick):
    print("\nStacked path on the GPU against the CPU (B=8, float64, full spectrum)")
    rows = []
    for kind in ("RNN", "GRU", "LSTM"):
        for N, M, T_gpu, T_cpu in ((128, 64, 100, 5), (512, 8, 20, 1)):
            if quick and N == 512:
                continue
            models = _models(kind, N, M)
            rates = {}
            for device, T in (("cuda", T_gpu), ("cpu", T_cpu)):
                x = _inputs(T + 1)

                def run(models=models, x=x, device=device):
                    lyapunov_spectrum(models, x, warmup=1, device=device)
                    if device == "cuda":
                        torch.cuda.synchronize()

                run()  # warm-up: kernels, allocator
                rates[device] = M * (T + 1) / best_of(run, 1 if device == "cpu" else 3)
            row = {
                "model": kind,
                "hidden_size": N,
                "n_models": M,
                "gpu_model_steps_per_s": rates["cuda"],
                "cpu_model_steps_per_s": rates["cpu"],
                "gpu_over_cpu": rates["cuda"] / rates["cpu"],
            }
            rows.append(row)
            print(
                f"{kind:5} N={N:>4} M={M:>3}: GPU {rates['cuda']:>10.0f} model-steps/s, "
                f"CPU {rates['cpu']:>8.1f}, GPU/CPU {row['gpu_over_cpu']:>7.1f}",
                flush=True,
            )
    return rows


def main(argv=None):
    args = parse_args(
        __doc__,
        "N = 16, 32 only; fewer networks",
        "bench_population.json",
        argv,
        extra=[("--gpu-only", "skip the CPU-only tables")],
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    rows, settings, gpu = [], [], []
    if not args.gpu_only:
        rows = stacked_vs_loop(QUICK if args.quick else SIZES, "cpu")
        settings = interval_and_precision(args.quick, "cpu")
    if torch.cuda.is_available():
        print(f"CUDA device: {torch.cuda.get_device_name()}")
        # The report is written after each GPU table, so that a run cut short keeps its figures.
        rows += stacked_vs_loop(QUICK if args.quick else GPU_SIZES, "cuda")
        write_report("bench_population", args.out, rows)
        gpu = gpu_against_cpu(args.quick)
        write_report("bench_population", args.out, rows, gpu_against_cpu=gpu)
        settings += interval_and_precision(args.quick, "cuda")
    else:
        print("\nno CUDA device: the GPU rows are skipped")
    write_report(
        "bench_population", args.out, rows, interval_and_precision=settings, gpu_against_cpu=gpu
    )


if __name__ == "__main__":
    main()
