"""Planning a computation: which device, which batches, how many workers and threads.

Models of one signature are stacked into batches that fit a memory budget
(:func:`plan_batches`); a cost model fitted to the benchmarks chooses the
device (:data:`DEVICE_COSTS`) and decides when joblib's workers pay for their
start (:func:`workers_for`).
"""

import math

import numpy as np
import torch
from joblib import effective_n_jobs
from joblib.parallel import get_active_backend

from ._validation import free_cores, threads_for
from .dynamics import signature_of

__all__ = [
    "DEVICE_COSTS",
    "SMALL_FRAME",
    "WORKER_START_SECONDS",
    "auto_budget",
    "batch_numbers",
    "batch_threads",
    "choose_device",
    "estimated_seconds",
    "plan_batches",
    "split_for_workers",
    "workers_for",
]


def auto_budget(device):
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    return 8 * 2**20


# The time of one step of a batch of M models of state size n is a + b M
# milliseconds (full spectrum, B = 8, float64): ``DEVICE_COSTS[device][n] = (a, b)``,
# fitted to the one-model (M = 1) and stacked (M = 16 to 64) columns of
# benchmarks/bench_population.py (benchmarks/README.md), each the mean over RNN,
# GRU and LSTM of that n: "cpu" on one thread of a 2-core Xeon (2026-11-22),
# "cuda" on one H200 (2026-11-30; n = 512 from its GPU-against-CPU table). A GPU
# step has a fixed cost that the CPU's lacks (a = 0.7-8.7 ms), and a cost per
# model nearly flat up to n = 128 (its batched QR goes matrix by matrix): one
# network goes to the CPU up to n = 128, a population of them from n of about 40.
DEVICE_COSTS = {
    "cpu": {
        16: (0.42, 0.094),
        32: (0.40, 0.34),
        64: (0.25, 1.33),
        128: (0.11, 6.97),
        256: (0.0, 32.4),
    },
    "cuda": {
        16: (0.68, 0.38),
        32: (0.71, 0.42),
        64: (1.62, 0.38),
        128: (8.67, 0.29),
        256: (1.79, 4.84),
        512: (1.79, 15.4),
    },
}


def _batch_step_ms(device_type, n, count, costs):
    """Milliseconds a step of ``count`` models of state size ``n`` takes, by ``costs``.

    ``a`` is interpolated linearly and ``b`` log-log in ``n``; past the table's
    largest ``n``, ``a`` stays and ``b`` grows as over its last interval.
    """
    table = costs[device_type]
    sizes = sorted(table)
    xs, x = np.log(sizes), math.log(n)
    a = float(np.interp(x, xs, [table[m][0] for m in sizes]))
    logb = np.log([table[m][1] for m in sizes])
    if x > xs[-1]:
        slope = (logb[-1] - logb[-2]) / (xs[-1] - xs[-2])
        b = math.exp(logb[-1] + slope * (x - xs[-1]))
    else:
        b = math.exp(np.interp(x, xs, logb))
    return a + b * count


def choose_device(systems, cuda, costs=None):
    """The faster device for these systems by the cost model: ``cuda`` or the CPU.

    Systems of one state size are costed as one stacked batch, ``a + b M``
    (:data:`DEVICE_COSTS`, or ``costs``); the predicted step of a device is the
    sum over state sizes, and the device whose prediction is smaller (the
    CPU on a tie) is chosen. The figures are for 8 trajectories and full
    spectra; the model does not see other trajectory counts, ``n_exponents``
    or dtypes.
    """
    costs = DEVICE_COSTS if costs is None else costs
    counts = {}
    for system in systems:
        counts[system.state_size] = counts.get(system.state_size, 0) + 1
    predicted = {
        device: sum(_batch_step_ms(device, n, count, costs) for n, count in counts.items())
        for device in ("cpu", "cuda")
    }
    return cuda if predicted["cuda"] < predicted["cpu"] else torch.device("cpu")


def plan_batches(
    dynamics,
    n_trajectories,
    *,
    n_exponents=None,
    dtype=torch.float64,
    memory_budget="auto",
    device="cpu",
    input_numbers=0,
):
    """Split systems into batches that are advanced together.

    Systems of one signature (:func:`sklyap.dynamics.signature_of`) are
    stacked, in the order they come, into batches whose working memory
    (``Dynamics.working_numbers``) fits ``memory_budget``; every other system
    is a batch of its own.

    Parameters
    ----------
    dynamics : list of Dynamics
    n_trajectories : int
        Trajectories per model, ``B``.
    n_exponents : int, default=None
        Frame size ``k``; ``None`` for the full spectrum of each system.
    dtype : torch.dtype, default=torch.float64
    memory_budget : int or "auto", default="auto"
        Bytes per batch; ``"auto"`` as in :func:`lyapunov_spectrum`. A
        system that alone exceeds the budget still runs, alone.
    device : str or torch.device, default="cpu"
        Where the batches will run (for the ``"auto"`` budget).
    input_numbers : int, default=0
        Numbers of per-model inputs (``B * T * input_size`` when every model
        has inputs of its own), counted against the budget.

    Returns
    -------
    list of list of int
        Indices into ``dynamics``, each list one batch; every index appears
        once.
    """
    budget = auto_budget(device) if memory_budget == "auto" else memory_budget
    itemsize = torch.empty((), dtype=dtype).element_size()
    groups = {}
    for index, dyn in enumerate(dynamics):
        sig = signature_of(dyn)
        groups.setdefault(("alone", index) if sig is None else sig, []).append(index)
    batches = []
    for indices in groups.values():
        dyn = dynamics[indices[0]]
        k = dyn.state_size if n_exponents is None else n_exponents
        per_model = itemsize * (n_trajectories * dyn.working_numbers(k) + input_numbers)
        size = max(1, budget // per_model)
        batches.extend(indices[i : i + size] for i in range(0, len(indices), size))
    return batches


# A batch whose frames hold at most this many numbers runs on one thread with
# num_threads="auto": its operations are too small for threads to share. The
# crossover measured by benchmarks/bench_threads.py lies between 2**14 (one
# thread faster) and 2**16 (two threads as fast or faster).
SMALL_FRAME = 2**15

# Starting joblib's worker processes (each a new Python that imports torch)
# costs about this much, measured by benchmarks/bench_jobs.py; n workers pay
# for it once the serial time exceeds WORKER_START_SECONDS * n / (n - 1).
# The serial time is estimated from a cost per batch and step and a cost per
# number of working memory and step, fitted to the same benchmark.
WORKER_START_SECONDS = 3.0
_SECONDS_PER_BATCH_STEP = 2e-4
_SECONDS_PER_NUMBER_STEP = 5e-9


def batch_numbers(systems, batch, n_trajectories, settings):
    """Working numbers of a batch: the sum over its models of ``B * working_numbers(k)``."""
    return sum(
        n_trajectories * systems[i].working_numbers(settings.frame_size(systems[i].state_size))
        for i in batch
    )


def workers_for(n_jobs, numbers, n_time_steps):
    """Worker processes for batches holding ``numbers`` working numbers each:
    joblib's count, or 1 (this process) for work too small to pay for starting
    them. A backend the user chose (Dask, threads) is always given the work."""
    n = effective_n_jobs(n_jobs)
    if n <= 1 or not numbers:
        return 1
    if type(get_active_backend()[0]).__name__ != "LokyBackend":
        return n
    if n_jobs is not None and n_jobs < 0:  # "all cores": those not held by other work now
        n = min(n, free_cores())
        if n <= 1:
            return 1
    return n if estimated_seconds(numbers, n_time_steps) > WORKER_START_SECONDS * n / (n - 1) else 1


def estimated_seconds(numbers, n_time_steps):
    """Estimated serial time of batches holding ``numbers`` working numbers each."""
    return n_time_steps * (
        len(numbers) * _SECONDS_PER_BATCH_STEP + sum(numbers) * _SECONDS_PER_NUMBER_STEP
    )


def split_for_workers(batches, n_workers):
    """Halve the largest batches until there are two per worker (or one per model)."""
    batches = [list(b) for b in batches]
    while n_workers > 1 and batches and len(batches) < 2 * n_workers:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        batch = batches[largest]
        if len(batch) == 1:
            break
        half = (len(batch) + 1) // 2
        batches[largest : largest + 1] = [batch[:half], batch[half:]]
    return batches


def batch_threads(settings, frame_numbers, alone):
    """The torch thread count for a batch, fixed in the calling process, or None.

    ``"auto"``: the calling process's count for a large batch that is the whole
    computation (``alone``), one thread otherwise. Several batches are
    parallelised over workers, never over threads as well (workers with
    several threads each would oversubscribe the cores), and the count does
    not depend on ``n_jobs``, so neither does the result.
    """
    threads = threads_for(settings.num_threads, settings.device, small=frame_numbers <= SMALL_FRAME)
    if threads is None and settings.num_threads == "auto" and settings.device.type == "cpu":
        # Threads that another process's work would preempt make every small
        # parallel region wait: only the cores free now.
        return min(torch.get_num_threads(), free_cores()) if alone else 1
    return threads
