"""Populations of trained recurrent networks, as in a hyperparameter sweep."""

import copy
import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.utils import check_random_state
from torch import nn
from tqdm.auto import tqdm

from .._validation import Interval, Options, check_int, torch_threads, validate_params
from ..cache import ContentCache, digest
from ._tasks import load_char_text, load_sequential_digits

__all__ = ["RNNPopulation", "RecurrentClassifier", "train_rnn_population"]

_CELLS = ("RNN", "GRU", "LSTM")


class RecurrentClassifier(nn.Module):
    """A recurrent core between an input layer and a linear readout.

    ``embedding`` (only with ``vocabulary_size``) -> ``rnn`` (``nn.RNN``,
    ``nn.GRU`` or ``nn.LSTM``, batch first) -> ``head`` (linear). With
    ``sequence_output=False`` the head reads the last hidden state (sequence
    classification); with ``True`` it reads every step (next-token prediction).

    Parameters
    ----------
    input_size : int
        Input features per step, or the vocabulary size with ``vocabulary_size``.
    hidden_size : int
    n_classes : int
    cell : {"RNN", "GRU", "LSTM"}, default="LSTM"
    vocabulary_size : int, default=None
        Read token ids through an ``nn.Embedding`` of this many symbols.
    embedding_dim : int, default=16
    sequence_output : bool, default=False
    init_scale : float, default=None
        Initialise every parameter of the recurrent core uniform in
        ``(-g/sqrt(N), g/sqrt(N))``, PyTorch's own range times ``g``, from
        torch's global random generator: the initialisation gain that
        :func:`train_rnn_population` sweeps, here for networks trained
        elsewhere (a skorch grid, say). ``None`` keeps PyTorch's default
        (``g = 1``, drawn the same way).
    """

    def __init__(
        self,
        input_size,
        hidden_size,
        n_classes,
        cell="LSTM",
        *,
        vocabulary_size=None,
        embedding_dim=16,
        sequence_output=False,
        init_scale=None,
    ):
        super().__init__()
        validate_params(
            {"cell": cell, "init_scale": init_scale},
            {
                "cell": [Options(*_CELLS)],
                "init_scale": [Interval(float, 0, None, closed="neither"), Options(None)],
            },
        )
        core_input = input_size
        if vocabulary_size is not None:
            self.embedding = nn.Embedding(vocabulary_size, embedding_dim)
            core_input = embedding_dim
        else:
            self.embedding = None
        self.rnn = getattr(nn, cell)(core_input, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, n_classes)
        if init_scale is not None:  # after the readout: it is drawn as without
            bound = init_scale / math.sqrt(hidden_size)
            with torch.no_grad():
                for p in self.rnn.parameters():
                    p.uniform_(-bound, bound)
        self.sequence_output = sequence_output

    def forward(self, x):
        if self.embedding is not None:
            x = self.embedding(x)
        out, _ = self.rnn(x)
        return self.head(out if self.sequence_output else out[:, -1])


@functools.lru_cache(maxsize=4)
def _load_task(task):
    if task == "digits":
        return load_sequential_digits("row")
    if task == "digits_pixel":
        return load_sequential_digits("pixel")
    if task == "char_text":
        return load_char_text(seq_len=50, encoding="ids")
    raise ValueError(f"unknown task {task!r}; expected 'digits', 'digits_pixel' or 'char_text'")


def _build(task, data, hp):
    """A network for ``task``; its constructor's draws leave the global RNG as it was."""
    with torch.random.fork_rng(devices=[]):
        if task == "char_text":
            return RecurrentClassifier(
                data.input_size,
                hp["hidden_size"],
                data.n_classes,
                hp["cell"],
                vocabulary_size=data.input_size,
                sequence_output=True,
            )
        return RecurrentClassifier(data.input_size, hp["hidden_size"], data.n_classes, hp["cell"])


def _accuracy(model, X, y, batch_size=512):
    correct = 0
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            logits = model(X[start : start + batch_size])
            correct += (logits.argmax(-1) == y[start : start + batch_size]).sum().item()
    return correct / y.numel()


def _train_network(task, hp, n_epochs, snapshot_epochs, batch_size, max_train):
    """Train one network; return its accuracies per epoch and state dicts at snapshots.

    Everything random (initialisation, batch order) comes from ``hp["seed"]``
    through a local generator: the global torch RNG is neither used nor changed.
    """
    data = _load_task(task)
    gen = torch.Generator().manual_seed(hp["seed"])
    with torch_threads(1):
        model = _build(task, data, hp)
        # Uniform initialisation in (-g/sqrt(N), g/sqrt(N)) for the recurrent core
        # (PyTorch's own range times the gain g), PyTorch's range for the rest.
        with torch.no_grad():
            bound = 1.0 / math.sqrt(hp["hidden_size"])
            for name, p in model.named_parameters():
                scale = hp["init_scale"] if name.startswith("rnn.") else 1.0
                if name.startswith("embedding."):
                    p.normal_(0.0, 1.0, generator=gen)
                else:
                    p.uniform_(-scale * bound, scale * bound, generator=gen)
        X_train = torch.as_tensor(data.X_train[:max_train])
        y_train = torch.as_tensor(data.y_train[:max_train])
        X_val, y_val = torch.as_tensor(data.X_val), torch.as_tensor(data.y_val)
        X_test, y_test = torch.as_tensor(data.X_test), torch.as_tensor(data.y_test)
        optimiser = torch.optim.Adam(model.parameters(), lr=hp["learning_rate"])
        loss_fn = nn.CrossEntropyLoss()
        snapshots = {}
        if 0 in snapshot_epochs:
            snapshots[0] = copy.deepcopy(model.state_dict())
        val_acc, test_acc, losses = [], [], []
        for epoch in range(1, n_epochs + 1):
            model.train()
            order = torch.randperm(len(X_train), generator=gen)
            total = 0.0
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                logits = model(X_train[idx])
                loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y_train[idx].reshape(-1))
                optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
                total += loss.item() * len(idx)
            model.eval()
            losses.append(total / len(order))
            val_acc.append(_accuracy(model, X_val, y_val))
            test_acc.append(_accuracy(model, X_test, y_test))
            if epoch in snapshot_epochs:
                snapshots[epoch] = copy.deepcopy(model.state_dict())
    return {
        "val_accuracy": val_acc,
        "test_accuracy": test_acc,
        "train_loss": losses,
        "snapshots": snapshots,
    }


# The modules a network's training runs: a change to any of them retrains.
_TRAINING_CODE = ("sklyap.datasets._population", "sklyap.datasets._tasks", "sklyap._validation")


def _data_digest(task):
    """Content digest of the data ``task`` trains and is evaluated on."""
    data = _load_task(task)
    arrays = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")
    return digest({name: data[name] for name in (*arrays, "input_size", "n_classes")})


def _train_and_store(cache, fields, *args):
    """:func:`_train_network`, its result written to ``cache`` (a ContentCache, or None)."""
    result = _train_network(*args)
    if cache is not None:
        snapshots = {int(e): dict(state) for e, state in result["snapshots"].items()}
        result = {**result, "snapshots": snapshots}
        cache.put("network", fields, result, code=_TRAINING_CODE)
    return result


@dataclass
class RNNPopulation:
    """Trained networks with their hyperparameters and learning curves.

    Attributes
    ----------
    task : str
        Name of the task the networks were trained on.
    hyperparameters : list of dict
        Per network: ``cell``, ``hidden_size``, ``init_scale``, ``learning_rate``
        and ``seed``.
    val_accuracy, test_accuracy : ndarray of shape (n_models, n_epochs)
        Accuracy after every epoch (column ``e - 1`` is after epoch ``e``).
    train_loss : ndarray of shape (n_models, n_epochs)
        Mean training loss of every epoch.
    snapshot_epochs : tuple of int
        Epochs after which the networks were saved (0: at initialisation).
    """

    task: str
    hyperparameters: list
    val_accuracy: np.ndarray
    test_accuracy: np.ndarray
    train_loss: np.ndarray
    snapshot_epochs: tuple
    _snapshots: list = field(repr=False, default_factory=list)

    def __len__(self):
        return len(self.hyperparameters)

    @property
    def n_epochs(self):
        return self.val_accuracy.shape[1]

    def models(self, epoch=None):
        """The networks as saved after ``epoch`` (default: the last snapshot).

        Returns fresh :class:`RecurrentClassifier` modules in evaluation mode.
        """
        epoch = max(self.snapshot_epochs) if epoch is None else epoch
        if epoch not in self.snapshot_epochs:
            raise ValueError(
                f"no snapshot after epoch {epoch}; snapshots were taken after epochs "
                f"{list(self.snapshot_epochs)}"
            )
        data = _load_task(self.task)
        models = []
        for hp, states in zip(self.hyperparameters, self._snapshots):
            model = _build(self.task, data, hp)
            model.load_state_dict(states[epoch])
            models.append(model.eval())
        return models

    def hyperparameter_matrix(self):
        """Numeric hyperparameters: one-hot cell, log2 hidden size, log init scale, log lr.

        Returns
        -------
        X : ndarray of shape (n_models, 6)
        names : list of str
        """
        names = [
            "cell_RNN",
            "cell_GRU",
            "cell_LSTM",
            "log2_hidden_size",
            "log_init_scale",
            "log_learning_rate",
        ]
        rows = [
            [hp["cell"] == c for c in _CELLS]
            + [
                math.log2(hp["hidden_size"]),
                math.log(hp["init_scale"]),
                math.log(hp["learning_rate"]),
            ]
            for hp in self.hyperparameters
        ]
        return np.asarray(rows, dtype=np.float64), names


def _log_uniform(rng, bounds):
    low, high = bounds
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def train_rnn_population(
    task="digits",
    n_models=60,
    *,
    cells=_CELLS,
    hidden_sizes=(16, 32, 64),
    init_scale_range=(0.5, 20.0),
    learning_rate_range=(3e-4, 3e-2),
    n_epochs=10,
    snapshot_epochs=(1,),
    batch_size=64,
    max_train=None,
    random_state=0,
    n_jobs=None,
    cache_dir=None,
    verbose=1,
):
    """Train a population of recurrent networks whose hyperparameters vary.

    Each network draws a cell type, a hidden size, a weight-initialisation
    scale (log-uniform: every parameter of the recurrent core, ``W_ih``,
    ``W_hh`` and the biases, starts uniform in ``(-g/sqrt(N), g/sqrt(N))``,
    PyTorch's default range times ``g``, so some networks start contracting,
    some chaotic) and a learning rate
    (log-uniform), and is trained with Adam and cross-entropy, gradients
    clipped to norm 1. Validation and test accuracy are recorded after every
    epoch, and the weights after the ``snapshot_epochs`` and the last epoch,
    so that spectra can be taken early in training.

    Networks are drawn in sequence from ``random_state``: the first ``k``
    networks of a population of ``n > k`` are those of a population of ``k``.
    Trained networks are cached on disk (:class:`~sklyap.cache.ContentCache`,
    one entry per network, keyed by task, hyperparameters, training settings,
    a digest of the task's data, the source of the training code and the
    versions), so a second call, or a larger population, trains only what is
    new; a change to any of these trains again.

    Parameters
    ----------
    task : {"digits", "digits_pixel", "char_text"}, default="digits"
        Sequential digits row by row (8 steps), pixel by pixel (64 steps), or
        next-character prediction on Python's documentation.
    n_models : int, default=60
    cells : sequence of {"RNN", "GRU", "LSTM"}, default=("RNN", "GRU", "LSTM")
    hidden_sizes : sequence of int, default=(16, 32, 64)
    init_scale_range : (float, float), default=(0.5, 20.0)
        Bounds of the log-uniform initialisation gain ``g``.
    learning_rate_range : (float, float), default=(3e-4, 3e-2)
        Bounds of the log-uniform learning rate.
    n_epochs : int, default=10
    snapshot_epochs : sequence of int, default=(1,)
        Epochs after which to keep the weights (0 = at initialisation); the
        last epoch is always kept.
    batch_size : int, default=64
    max_train : int, default=None
        Use only the first ``max_train`` training sequences (for quick runs).
    random_state : int, default=0
    n_jobs : int, default=None
        Networks trained in parallel (joblib); each trains on one thread.
    cache_dir : str, Path, None or False, default=None
        Cache folder; ``None`` uses :func:`~sklyap.cache.default_cache_dir`,
        ``False`` disables caching.
    verbose : int, default=1
        ``1`` shows a progress bar over networks.

    Returns
    -------
    RNNPopulation
    """
    n_models = check_int(n_models, "n_models", minimum=1)
    n_epochs = check_int(n_epochs, "n_epochs", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    max_train = check_int(max_train, "max_train", minimum=1, allow_none=True)
    _load_task(task)  # unknown tasks fail here, before any training
    bad_cells = [c for c in cells if c not in _CELLS]
    if not cells or bad_cells:
        raise ValueError(f"cells must be a non-empty subset of {_CELLS}, got {cells!r}")
    sizes = [check_int(h, "hidden_sizes entry", minimum=1) for h in hidden_sizes]
    if not sizes:
        raise ValueError("hidden_sizes must not be empty")
    for name, bounds in (
        ("init_scale_range", init_scale_range),
        ("learning_rate_range", learning_rate_range),
    ):
        if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1]:
            raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {bounds!r}")
    snaps = sorted(
        {check_int(e, "snapshot epoch", minimum=0) for e in snapshot_epochs} | {n_epochs}
    )
    if snaps[-1] > n_epochs:
        raise ValueError(f"snapshot_epochs {snaps} go past n_epochs={n_epochs}")
    rng = check_random_state(random_state)
    hyperparameters = []
    for _ in range(n_models):
        hyperparameters.append(
            {
                "cell": str(cells[rng.randint(len(cells))]),
                "hidden_size": int(sizes[rng.randint(len(sizes))]),
                "init_scale": _log_uniform(rng, init_scale_range),
                "learning_rate": _log_uniform(rng, learning_rate_range),
                "seed": int(rng.randint(np.iinfo(np.int32).max)),
            }
        )
    snaps = tuple(snaps)
    cache = None if cache_dir is False else ContentCache(cache_dir)
    settings = {
        "task": task,
        "n_epochs": n_epochs,
        "snapshot_epochs": list(snaps),
        "batch_size": batch_size,
        "max_train": max_train,
        "data": None if cache is None else _data_digest(task),
    }
    fields = [{**settings, "hyperparameters": hp} for hp in hyperparameters]
    # Entries are read here, so that a warning about a bad one reaches the caller;
    # only the networks missing from the cache go to the workers, which store them.
    results = [None] * n_models
    if cache is not None:
        results = [cache.get("network", f, code=_TRAINING_CODE) for f in fields]
    todo = [i for i, result in enumerate(results) if result is None]
    if todo:  # no workers, and no generator left unread, when every network is cached
        tasks = (
            delayed(_train_and_store)(
                cache, fields[i], task, hyperparameters[i], n_epochs, snaps, batch_size, max_train
            )
            for i in todo
        )
        trained = Parallel(n_jobs=n_jobs, return_as="generator")(tasks)
        if verbose:
            trained = tqdm(
                trained,
                total=n_models,
                initial=n_models - len(todo),
                desc=f"training on {task}",
                unit="network",
            )
        # The generator first, so that it is read to its end and closes.
        for result, i in zip(trained, todo):
            results[i] = result
    return RNNPopulation(
        task=task,
        hyperparameters=hyperparameters,
        val_accuracy=np.array([r["val_accuracy"] for r in results]),
        test_accuracy=np.array([r["test_accuracy"] for r in results]),
        train_loss=np.array([r["train_loss"] for r in results]),
        snapshot_epochs=snaps,
        _snapshots=[r["snapshots"] for r in results],
    )
