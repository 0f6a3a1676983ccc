"""sklyap at its defaults against the textbook QR algorithm, on the same work.

The baseline is this file's own implementation of the algorithm that public
reference code for Lyapunov spectra of RNNs follows: at every step, for every
trajectory, form the full ``n x n`` Jacobian explicitly from the analytic
derivatives, multiply the frame by it, and take a QR of the frame, in float32,
one model at a time. It is timed twice: one trajectory at a time (``loop``,
as the reference does) and with the trajectories of a model batched
(``batched``, a stronger baseline). sklyap runs
``lyapunov_spectrum(models, inputs)`` at its defaults (float64, its own
schedule, threads and stacking), on the same inputs.

It also times a ``floor`` for each case: the float64 linear algebra of the QR
algorithm with a QR every step, a QR of every trajectory's frame and the
product of the frames with the recurrent weights, all models in one stacked
batch, on one thread or on all, whichever is faster (timed over 100 steps and
scaled). ``loop / floor`` estimates the largest speed-up over the loop that a
float64 implementation with that schedule could show on this machine; it is
not strict, since smaller batches that stay in the caches can run faster than
one stack. And it times sklyap with ``dtype="float32"``, the baseline's
precision, on the same work. sklyap and the floor are the best of two runs,
the baselines run once.

Cases, each with B trajectories of T steps (100 of warm-up) from PyTorch's
default initialisation:

* one RNN (tanh), N = 128, full spectrum;
* one LSTM, N = 128, full spectrum (n = 256, the cell state included);
* 64 LSTMs, N = 32, full spectra;
* one LSTM, N = 512, the 8 leading exponents (n = 1024).

It prints a table with the speed-up (baseline time over sklyap time) and the
largest difference between the two spectra, and writes JSON (default
``benchmarks/results/bench_reference.json``).

    python benchmarks/bench_reference.py [--quick] [--out PATH]
"""

import warnings

import numpy as np
import torch
from _common import best_of, parse_args, write_report
from torch import nn

from sklyap import lyapunov_spectrum
from sklyap.lyapunov import initial_frame
from sklyap.orthonormalize import householder

CASES = [
    # (name, kind, hidden size, models, exponents or None, trajectories, steps)
    ("RNN N=128 full", "RNN", 128, 1, None, 16, 400),
    ("LSTM N=128 full", "LSTM", 128, 1, None, 16, 300),
    ("64 LSTMs N=32 full", "LSTM", 32, 64, None, 16, 300),
    ("LSTM N=512 k=8", "LSTM", 512, 1, 8, 8, 200),
]
QUICK = [
    ("RNN N=64 full", "RNN", 64, 1, None, 8, 200),
    ("8 LSTMs N=16 full", "LSTM", 16, 8, None, 8, 200),
]
WARMUP = 100
# sklyap and the floor, best of this many runs; the baselines (minutes) run once.
REPEATS = 2


def _dtanh(a):
    return 1 - torch.tanh(a) ** 2


def _dsigmoid(a):
    s = torch.sigmoid(a)
    return s * (1 - s)


def rnn_step(p, h, x):
    """The next state of a tanh RNN and its Jacobian ``(B, N, N)``."""
    a = x @ p["weight_ih_l0"].T + p["bias_ih_l0"] + h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
    return torch.tanh(a), _dtanh(a)[:, :, None] * p["weight_hh_l0"]


def lstm_step(p, state, x):
    """The next ``[h, c]`` of an LSTM and its Jacobian ``(B, 2N, 2N)``, blocks [h, c]."""
    N = p["weight_hh_l0"].shape[1]
    h, c = state[:, :N], state[:, N:]
    a = x @ p["weight_ih_l0"].T + p["bias_ih_l0"] + h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
    a_i, a_f, a_g, a_o = a.split(N, dim=1)
    W_i, W_f, W_g, W_o = p["weight_hh_l0"].split(N, dim=0)
    i, f, g, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g), torch.sigmoid(a_o)
    c_new = f * c + i * g
    h_new = o * torch.tanh(c_new)
    dc_dh = (
        (c * _dsigmoid(a_f))[:, :, None] * W_f
        + (g * _dsigmoid(a_i))[:, :, None] * W_i
        + (i * _dtanh(a_g))[:, :, None] * W_g
    )
    dc_dc = torch.diag_embed(f)
    scale = o * _dtanh(c_new)
    dh_dh = (torch.tanh(c_new) * _dsigmoid(a_o))[:, :, None] * W_o + scale[:, :, None] * dc_dh
    dh_dc = torch.diag_embed(scale * f)
    J = torch.cat([torch.cat([dh_dh, dh_dc], dim=2), torch.cat([dc_dh, dc_dc], dim=2)], dim=1)
    return torch.cat([h_new, c_new], dim=1), J


def baseline(model, inputs, k, batched=True):
    """The textbook algorithm for one model: explicit Jacobians, a QR every step, float32.

    ``batched=False`` runs the trajectories one after another.
    """
    if not batched:
        spectra = [baseline(model, inputs[b : b + 1], k) for b in range(inputs.shape[0])]
        return np.mean(spectra, axis=0)
    p = {name: t.detach().float() for name, t in model.named_parameters()}
    lstm = isinstance(model, nn.LSTM)
    step = lstm_step if lstm else rnn_step
    B, T, _ = inputs.shape
    n = (2 if lstm else 1) * model.hidden_size
    k = n if k is None else k
    x_all = inputs.float()
    state = torch.zeros(B, n)
    Q = initial_frame(n, k, dtype=torch.float32).mT.expand(B, n, k)
    sums = torch.zeros(B, k, dtype=torch.float64)
    with torch.no_grad():
        for t in range(T):
            state, J = step(p, state, x_all[:, t])
            Q, R = torch.linalg.qr(J @ Q)
            if t >= WARMUP:
                sums += torch.log(torch.diagonal(R, dim1=1, dim2=2).abs()).double()
    spectra = -np.sort(-(sums / (T - WARMUP)).numpy(), axis=1)
    return spectra.mean(axis=0)


def floor(models, B, steps, k, probe=100):
    """Seconds of the float64 QR of every frame and the frames times ``W_hh``, ``steps``
    times, in one stacked batch: ``probe`` steps timed on one thread and on all, the
    faster scaled to ``steps``."""
    M, N = len(models), models[0].hidden_size
    lstm = isinstance(models[0], nn.LSTM)
    n = (2 if lstm else 1) * N
    k = n if k is None else k
    weights = torch.stack([m.weight_hh_l0.detach().double() for m in models]).mT
    start = initial_frame(n, k).expand(M * B, k, n).contiguous()
    probe = min(probe, steps)

    def run():
        frames = start
        for _ in range(probe):
            torch.bmm(frames[:, :, :N].reshape(M, B * k, N), weights)
            frames = householder(frames)[0]

    threads = torch.get_num_threads()
    times = []
    for count in sorted({1, threads}):
        torch.set_num_threads(count)
        try:
            times.append(best_of(run, REPEATS))
        finally:
            torch.set_num_threads(threads)
    return min(times) * steps / probe


def main(argv=None):
    args = parse_args(__doc__, "two small cases", "bench_reference.json", argv)
    rows = []
    print(
        f"{'case':>20} {'loop s':>8} {'batched s':>10} {'sklyap s':>9} {'vs loop':>8} "
        f"{'vs batched':>11} {'max |diff|':>11} {'intervals':>10} {'floor s':>8} {'loop/floor':>11} {'float32 s':>10} {'vs loop':>8}"
    )
    for name, kind, hidden, count, k, B, steps in QUICK if args.quick else CASES:
        torch.manual_seed(0)
        models = [getattr(nn, kind)(4, hidden, batch_first=True) for _ in range(count)]
        gen = torch.Generator().manual_seed(1)
        inputs = torch.randn(B, WARMUP + steps, 4, generator=gen)
        results, spectra = [], []

        def run_baseline(models=models, inputs=inputs, k=k, out=results):
            out[:] = [baseline(m, inputs, k) for m in models]

        def run_loop(models=models, inputs=inputs, k=k):
            return [baseline(m, inputs, k, batched=False) for m in models]

        def run_sklyap(models=models, inputs=inputs, k=k, dtype="float64", out=spectra):
            out[:] = lyapunov_spectrum(models, inputs, n_exponents=k, batch_first=True, dtype=dtype)

        loop = best_of(run_loop, 1)
        base = best_of(run_baseline, 1)
        ours = best_of(run_sklyap, REPEATS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # float32's resolution, expected
            ours32 = best_of(lambda: run_sklyap(dtype="float32", out=[]), REPEATS)
        least = floor(models, B, WARMUP + steps, k)
        diff = max(float(np.abs(r.exponents - b).max()) for r, b in zip(spectra, results))
        intervals = sorted({r.qr_interval for r in spectra})
        speedup = base / ours
        print(
            f"{name:>20} {loop:8.2f} {base:10.2f} {ours:9.2f} {loop / ours:7.1f}x "
            f"{speedup:10.1f}x {diff:11.1e} {intervals!s:>10} {least:8.2f} {loop / least:10.1f}x "
            f"{ours32:10.2f} {loop / ours32:7.1f}x"
        )
        rows.append(
            {
                "case": name,
                "kind": kind,
                "hidden_size": hidden,
                "models": count,
                "n_exponents": k,
                "trajectories": B,
                "time_steps": WARMUP + steps,
                "loop_s": loop,
                "baseline_s": base,
                "sklyap_s": ours,
                "speedup": speedup,
                "speedup_vs_loop": loop / ours,
                "max_abs_difference": diff,
                "qr_intervals": intervals,
                "floor_s": least,
                "speedup_bound_vs_loop": loop / least,
                "sklyap_float32_s": ours32,
                "float32_speedup_vs_loop": loop / ours32,
            }
        )
    write_report("bench_reference", args.out, rows)


if __name__ == "__main__":
    main()
