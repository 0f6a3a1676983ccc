"""The re-orthonormalisation methods side by side: Householder against CholeskyQR2.

For batches of square frames (``M`` frames of ``n x n``, the full spectrum of a
state of size ``n``; graded as a step of the QR algorithm leaves them) this
times :func:`sklyap.orthonormalize.householder` and
:func:`sklyap.orthonormalize.cholesky_qr2` on the CPU (one thread, and the
process's threads) and, with CUDA, on the GPU, in float64, and reports the
time per frame, the ratio and the largest relative difference of the growths.
These figures choose ``orthonormalize="auto"`` (``sklyap.orthonormalize.AUTO``).

    python benchmarks/bench_orthonormalize.py [--quick] [--threads T] [--out PATH]
"""

import torch
from _common import best_of, parse_args, write_report

from sklyap.orthonormalize import cholesky_qr2, householder

# (frames in the batch, n): 64 models x 8 trajectories and smaller batches.
CASES = [(512, 16), (512, 32), (512, 64), (128, 128), (32, 256), (8, 512)]
QUICK = [(512, 16), (128, 64)]


def _frames(M, n, device, seed=0):
    """Frames whose rows shrink by factors from 1 to e^-20, mixed as one step mixes them."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.linalg.qr(torch.randn(M, n, n, generator=gen, dtype=torch.float64))[0].mT
    mix = torch.randn(M, n, n, generator=gen, dtype=torch.float64).tril(-1) / n + torch.eye(n)
    scale = torch.exp(-torch.linspace(0, 20.0, n, dtype=torch.float64))
    return (scale[:, None] * (mix @ rows)).to(device)


def _time(method, frames, repeats, device):
    def run():
        method(frames)
        if device.type == "cuda":
            torch.cuda.synchronize()

    run()  # warm up (CUDA kernels, LAPACK workspaces)
    return best_of(run, repeats)


def main(argv=None):
    args = parse_args(__doc__, "two cases", "bench_orthonormalize.json", argv)
    devices = [("cpu, 1 thread", torch.device("cpu"), 1)]
    if torch.get_num_threads() > 1:
        devices.append((f"cpu, {torch.get_num_threads()} threads", torch.device("cpu"), None))
    if torch.cuda.is_available():
        devices.append(("cuda", torch.device("cuda"), None))
    rows = []
    print(
        f"{'device':>16} {'frames':>6} {'n':>4} {'householder us/frame':>21} "
        f"{'cholesky_qr2 us/frame':>22} {'ratio':>6} {'max rel dg':>10}"
    )
    all_threads = torch.get_num_threads()
    for label, device, threads in devices:
        torch.set_num_threads(threads or all_threads)
        for M, n in QUICK if args.quick else CASES:
            frames = _frames(M, n, device)
            repeats = 3 if M * n * n < 2**22 else 2
            times = {
                name: _time(method, frames, repeats, device) / M * 1e6
                for name, method in (("householder", householder), ("cholesky_qr2", cholesky_qr2))
            }
            g_h, g_c = householder(frames)[1], cholesky_qr2(frames)[1]
            diff = float(((g_c - g_h).abs() / g_h).max())
            ratio = times["householder"] / times["cholesky_qr2"]
            print(
                f"{label:>16} {M:6d} {n:4d} {times['householder']:21.1f} "
                f"{times['cholesky_qr2']:22.1f} {ratio:6.2f} {diff:10.1e}"
            )
            rows.append(
                {
                    "device": label,
                    "frames": M,
                    "n": n,
                    "householder_us_per_frame": times["householder"],
                    "cholesky_qr2_us_per_frame": times["cholesky_qr2"],
                    "speedup_of_cholesky_qr2": ratio,
                    "max_relative_growth_difference": diff,
                }
            )
    torch.set_num_threads(all_threads)
    write_report("bench_orthonormalize", args.out, rows)


if __name__ == "__main__":
    main()
