"""Helpers shared by the test modules: known systems, reference computations, model makers."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from sklyap.study import TASKS

F64 = torch.float64

# -- networks with known answers (test_lyapunov, test_stacked, test_properties) ---------

# For tests that measure maps at their fixed point on purpose (linear maps from the
# zero state under zero inputs, frames made to underflow): sklyap's warning that the
# spectrum is a fixed point's is expected there, and only there.
AT_A_FIXED_POINT = pytest.mark.filterwarnings(
    "ignore:the driving inputs are constant in time:UserWarning"
)


def orthogonal(n, seed):
    """A seeded random orthogonal n x n matrix (float64)."""
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    return q * torch.sign(torch.diagonal(r))


def linear_rnn(W):
    """An nn.RNN without bias: with zero input it rests at h = 0, where J = W."""
    n = W.shape[0]
    rnn = nn.RNN(2, n, bias=False, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(W)
    return rnn


def make_network(kind, num_layers, hidden, input_size=3, scale=1.0, seed=0):
    """A seeded float64, batch-first nn.RNN/GRU/LSTM with every parameter times ``scale``."""
    torch.manual_seed(seed)
    cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind]
    m = cls(input_size, hidden, num_layers, batch_first=True).double()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(scale)
    return m


def chaotic_rnn(n=32, gain=3.0, seed=2):
    """A batch-first tanh RNN with Gaussian recurrent weights of gain ``gain`` (chaotic for 3)."""
    gen = torch.Generator().manual_seed(seed)
    rnn = nn.RNN(1, n, batch_first=True).double()
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(gain * torch.randn(n, n, generator=gen, dtype=F64) / math.sqrt(n))
        rnn.weight_ih_l0.copy_(torch.randn(n, 1, generator=gen, dtype=F64))
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
    return rnn


def mean_log_abs_det(module, inputs, warmup):
    """Time average of ln|det J_t| along each trajectory, by jacrev of the module itself."""
    lstm = isinstance(module, nn.LSTM)
    L, N = module.num_layers, module.hidden_size
    per_layer = 2 if lstm else 1
    averages = []
    for x_seq in inputs:
        state = torch.zeros(L * per_layer * N, dtype=F64)

        def f(s, x):
            if lstm:
                hc = s.reshape(L, 2, N)
                _, (h, c) = module(x.reshape(1, 1, -1), (hc[:, 0, None], hc[:, 1, None]))
                return torch.stack([h.reshape(L, N), c.reshape(L, N)], dim=1).reshape(-1)
            _, h = module(x.reshape(1, 1, -1), s.reshape(L, 1, N))
            return h.reshape(-1)

        total = 0.0
        for t, x in enumerate(x_seq):
            if t >= warmup:
                J = torch.func.jacrev(f)(state, x)
                total += torch.linalg.slogdet(J)[1].item()
            with torch.no_grad():
                state = f(state, x)
        averages.append(total / (len(x_seq) - warmup))
    return np.array(averages)


# -- every recurrent module kind, saturating (test_dynamics, test_stacked) ----------------

D, N = 3, 5


ALL_KINDS = [
    ("rnn_tanh", 1),
    ("rnn_tanh", 2),
    ("rnn_tanh", 3),
    ("rnn_relu", 1),
    ("rnn_relu", 2),
    ("gru", 1),
    ("gru", 2),
    ("gru", 3),
    ("lstm", 1),
    ("lstm", 2),
    ("lstm", 3),
    ("rnn_cell_tanh", 1),
    ("rnn_cell_relu", 1),
    ("gru_cell", 1),
    ("lstm_cell", 1),
]


def make_module(kind, num_layers=1, bias=True, batch_first=False, seed=0, scale=3.0):
    """A float64 module with weights large enough to saturate some gates."""
    torch.manual_seed(seed)
    if kind == "rnn_tanh":
        m = nn.RNN(D, N, num_layers, bias=bias, batch_first=batch_first)
    elif kind == "rnn_relu":
        m = nn.RNN(D, N, num_layers, nonlinearity="relu", bias=bias, batch_first=batch_first)
    elif kind == "gru":
        m = nn.GRU(D, N, num_layers, bias=bias, batch_first=batch_first)
    elif kind == "lstm":
        m = nn.LSTM(D, N, num_layers, bias=bias, batch_first=batch_first)
    elif kind == "rnn_cell_tanh":
        m = nn.RNNCell(D, N, bias=bias)
    elif kind == "rnn_cell_relu":
        m = nn.RNNCell(D, N, bias=bias, nonlinearity="relu")
    elif kind == "gru_cell":
        m = nn.GRUCell(D, N, bias=bias)
    elif kind == "lstm_cell":
        m = nn.LSTMCell(D, N, bias=bias)
    m = m.double()
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(scale)
    return m


# -- AeLLE (test_aelle, test_aelle_classifier) -----------------------------------------

# A small, fast configuration for tests of the machinery (not of the defaults).
AELLE_FAST = {
    "latent_dim": 4,
    "hidden_dims": (32,),
    "lr": 1e-2,
    "max_epochs": 100,
    "n_estimators": 3,
    "random_state": 0,
}


def numpy_forward(module, Xs):
    """Each member's latent code and head output, computed with numpy from the weights.

    An independent implementation of the forward pass (tanh networks), to check
    the batched torch code against.
    """

    def stack(layers, x, m):
        for i, layer in enumerate(layers):
            weight = layer.weight[m].detach().cpu().double().numpy()
            x = x @ weight + layer.bias[m, 0].detach().cpu().double().numpy()
            if i < len(layers) - 1:
                x = np.tanh(x)
        return x

    codes, heads = [], []
    for m in range(module.n_members):
        z = stack(module.encoder, Xs, m)
        codes.append(z)
        heads.append(stack([module.head], z, m))
    return np.array(codes), np.array(heads)


# -- spectra in tests: short and on the CPU ---------------------------------------------

# Settings of the transformer that keep a test's spectra to milliseconds.
FAST_SPECTRA = {"n_trajectories": 2, "n_steps": 40, "warmup": 10, "device": "cpu"}


# -- the QR algorithm, in NumPy (test_benettin) ------------------------------------------


def benettin_numpy(rnn, inputs, k, warmup, interval, warmup_interval=None):
    """Lyapunov spectra of a one-layer tanh ``nn.RNN`` by the QR algorithm, in NumPy.

    An independent implementation of the schedule: explicit Jacobians
    ``J = diag(1 - h'^2) W_hh``, the frame multiplied by each, a QR every
    ``warmup_interval`` steps of the warm-up (``interval`` by default) and at
    its end, then every ``interval`` steps and at the last step, the log growths
    of the measured QRs summed. Returns ``(B, k)`` spectra, each sorted descending.
    """
    from sklyap.lyapunov import initial_frame

    W = rnn.weight_hh_l0.detach().double().numpy()
    U = rnn.weight_ih_l0.detach().double().numpy()
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().double().numpy()
    inputs = np.asarray(inputs, dtype=np.float64)
    B, T, _ = inputs.shape
    n = W.shape[0]
    frame = initial_frame(n, k).numpy().T  # columns are tangent vectors
    spectra = np.zeros((B, k))
    for trajectory in range(B):
        h, Q, sums, since = np.zeros(n), frame.copy(), np.zeros(k), 0
        for t in range(T):
            h = np.tanh(W @ h + U @ inputs[trajectory, t] + b)
            Q = (1 - h**2)[:, None] * (W @ Q)
            since += 1
            warming = t < warmup
            every = (warmup_interval or interval) if warming else interval
            if since == every or t + 1 == warmup or t + 1 == T:
                Q, R = np.linalg.qr(Q)
                since = 0
                if not warming:
                    sums += np.log(np.abs(np.diag(R)))
        spectra[trajectory] = np.sort(sums / (T - warmup))[::-1]
    return spectra


# -- study and sweep (test_study, test_sweep) -------------------------------------------


def tiny_task(name="digits", n_epochs=2):
    """A study task trained briefly on 200 sequences, driven by short inputs: seconds, not minutes."""
    task = TASKS[name]
    return dataclasses.replace(
        task,
        population={**task.population, "n_epochs": n_epochs, "max_train": 200},
        n_units=6,
        warmup_units=2,
        n_trajectories=2,
    )
