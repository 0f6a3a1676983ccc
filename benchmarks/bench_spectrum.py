"""Time full Lyapunov spectra against the irreducible linear algebra and a naive baseline.

For RNN/GRU/LSTM at hidden sizes N = 32, 128, 512 and B = 16 trajectories,
in one run, this measures per time step:

* ``sklyap``: :func:`sklyap.lyapunov_spectrum` (full spectrum, qr_interval=1),
  the whole call divided by the number of steps;
* ``floor``: the linear algebra no implementation can avoid for the same
  shapes: the product of the (B, k, N) frame with the recurrent weight matrix
  ``W_hh`` (gates * N rows) and one batched QR of the (B, n, k) frame;
* ``naive``: the Jacobian built by autograd at every step
  (``vmap(jacrev(step))`` of the module's own forward pass), then ``J @ Q``
  and the QR.

It prints a table and writes JSON (default ``benchmarks/results/bench_spectrum.json``).

    python benchmarks/bench_spectrum.py [--quick] [--threads T] [--out PATH]
"""

import torch
from _common import best_of, parse_args, write_report
from torch import nn

from sklyap import as_dynamics, lyapunov_spectrum

GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _module(kind, n, input_size, seed=0):
    torch.manual_seed(seed)
    return getattr(nn, kind)(input_size, n, batch_first=True).double()


def time_sklyap(module, inputs, repeats):
    return (
        best_of(
            lambda: lyapunov_spectrum(module, inputs, warmup=0, device="cpu", num_threads=None),
            repeats,
        )
        / inputs.shape[1]
    )


def time_floor(module, B, steps, repeats):
    dyn = as_dynamics(module)
    n, N = dyn.state_size, dyn.hidden_size
    W = dyn.layers[0]["weight_hh"]
    frames = torch.linalg.qr(torch.randn(B, n, n, dtype=torch.float64))[0].mT.contiguous()

    def run():
        V = frames
        for _ in range(steps):
            V[:, :, :N] @ W.mT
            q, _ = torch.linalg.qr(V.mT)
            V = q.mT

    return best_of(run, repeats) / steps


def time_naive(module, inputs, repeats):
    """Autograd Jacobian every step, then J @ Q and QR (the approach sklyap avoids)."""
    dyn = as_dynamics(module)
    n = dyn.state_size
    B, T, _ = inputs.shape
    lstm = isinstance(module, nn.LSTM)
    N = module.hidden_size

    def f(s, x):
        if lstm:
            _out, (h, c) = module(x.reshape(1, 1, -1), (s[None, None, :N], s[None, None, N:]))
            return torch.cat([h.reshape(-1), c.reshape(-1)])
        return module(x.reshape(1, 1, -1), s.reshape(1, 1, N))[1].reshape(-1)

    jac = torch.func.jacrev(f)

    def run():
        state = torch.zeros(B, n, dtype=torch.float64)
        Q = torch.eye(n, dtype=torch.float64).expand(B, n, n)
        log_sums = torch.zeros(B, n, dtype=torch.float64)
        for t in range(T):
            # PyTorch's fused RNN kernels have no vmap rule: one Jacobian per trajectory.
            J = torch.stack([jac(state[b], inputs[b, t]) for b in range(B)])
            with torch.no_grad():
                state = torch.stack([f(state[b], inputs[b, t]) for b in range(B)])
                Q, R = torch.linalg.qr(J @ Q)
                log_sums += torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs())
        return log_sums

    return best_of(run, repeats) / T


def main(argv=None):
    args = parse_args(__doc__, "N = 32, 128 only, fewer steps", "bench_spectrum.json", argv)
    B, input_size = 16, 8
    sizes = (32, 128) if args.quick else (32, 128, 512)
    # Steps per size, so each measurement takes seconds, not minutes.
    steps = {32: 200, 128: 30, 512: 3}
    naive_steps = {32: 50, 128: 5, 512: 1}
    rows = []
    header = (
        f"{'model':5} {'N':>4} {'n':>5} {'sklyap ms/step':>15} {'steps/s':>8} "
        f"{'floor ms/step':>14} {'x floor':>8} {'naive ms/step':>14} {'speed-up':>9}"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B={B}, float64, CPU")
    print(header)
    print("-" * len(header))
    for kind in ("RNN", "GRU", "LSTM"):
        for N in sizes:
            module = _module(kind, N, input_size)
            gen = torch.Generator().manual_seed(1)
            inputs = torch.randn(B, steps[N], input_size, generator=gen, dtype=torch.float64)
            repeats = 3 if N < 512 else 1
            t_sklyap = time_sklyap(module, inputs, repeats)
            t_floor = time_floor(module, B, steps[N], repeats)
            t_naive = time_naive(module, inputs[:, : naive_steps[N]], 1 if N >= 128 else 2)
            n = as_dynamics(module).state_size
            row = {
                "model": kind,
                "hidden_size": N,
                "state_size": n,
                "batch": B,
                "sklyap_s_per_step": t_sklyap,
                "steps_per_s": 1 / t_sklyap,
                "floor_s_per_step": t_floor,
                "ratio_to_floor": t_sklyap / t_floor,
                "naive_s_per_step": t_naive,
                "speedup_over_naive": t_naive / t_sklyap,
            }
            rows.append(row)
            print(
                f"{kind:5} {N:>4} {n:>5} {1e3 * t_sklyap:>15.2f} {1 / t_sklyap:>8.1f} "
                f"{1e3 * t_floor:>14.2f} {t_sklyap / t_floor:>8.2f} {1e3 * t_naive:>14.2f} "
                f"{t_naive / t_sklyap:>9.1f}",
                flush=True,
            )
    write_report("bench_spectrum", args.out, rows, batch=B, dtype="float64")


if __name__ == "__main__":
    main()
