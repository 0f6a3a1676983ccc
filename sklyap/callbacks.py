"""Lyapunov spectra during training: a skorch callback and a plain-PyTorch tracker."""

import numbers
import time

import numpy as np
from sklearn.base import clone
from skorch.callbacks import Callback

from ._validation import Interval, check_int, validate_params
from .transformer import LyapunovSpectrumTransformer

__all__ = ["LyapunovCallback", "LyapunovPruning", "SpectrumTracker"]


def _default_transformer():
    return LyapunovSpectrumTransformer(n_trajectories=4, n_steps=100, warmup=50, random_state=0)


class SpectrumTracker:
    """Record the Lyapunov spectrum of a network as it trains.

    For hand-written training loops: call :meth:`update` after an epoch (or
    any step). The spectra are computed as ``transformer`` would compute them,
    with driving inputs fixed at the first update, so that successive spectra
    are comparable. The network is never modified.

    Parameters
    ----------
    transformer : LyapunovSpectrumTransformer, default=None
        Settings of the computation (inputs, input encoder, number of
        exponents, warm-up, steps, device, ...); cloned, never fitted in
        place. ``None`` uses 4 Gaussian trajectories of 50 warm-up and 100
        measured steps with ``random_state=0``.
    every : int or "auto", default="auto"
        An int computes a spectrum on every ``every``-th call of
        :meth:`update`. ``"auto"`` keeps the cost bounded: the first call is
        always measured, and a later one only if the time spent on spectra,
        including this one (estimated by the last one), stays within
        ``max_fraction`` of the wall time since the tracker was created.
    max_fraction : float, default=0.1
        Budget of ``every="auto"``, in (0, 1].

    Attributes
    ----------
    epochs : list of int
        The epochs (or steps) passed to :meth:`update` that were measured.
    results : list of LyapunovResult
    seconds : list of float
        Wall time of each computation.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklyap.callbacks import SpectrumTracker
    >>> rnn = nn.GRU(2, 8, batch_first=True)
    >>> tracker = SpectrumTracker(every=1)  # every call; the default bounds the cost
    >>> optimiser = torch.optim.SGD(rnn.parameters(), lr=0.1)
    >>> for epoch in range(1, 3):
    ...     loss = rnn(torch.randn(4, 10, 2))[0].pow(2).mean()
    ...     optimiser.zero_grad(); loss.backward(); optimiser.step()
    ...     _ = tracker.update(rnn, epoch)
    >>> tracker.exponents.shape  # (number of updates, n_exponents)
    (2, 8)
    """

    def __init__(self, transformer=None, *, every="auto", max_fraction=0.1):
        self.transformer = transformer
        self.every = every
        self.max_fraction = max_fraction
        self._created = time.perf_counter()

    def _check(self):
        if not (isinstance(self.every, str) and self.every == "auto"):
            check_int(self.every, "every", minimum=1)
        validate_params(
            {"max_fraction": self.max_fraction},
            {"max_fraction": [Interval(float, 0, 1, closed="right")]},
        )
        transformer = self.transformer
        if transformer is None:
            transformer = _default_transformer()
        if not isinstance(transformer, LyapunovSpectrumTransformer):
            raise TypeError(
                f"transformer must be a LyapunovSpectrumTransformer, got {transformer!r}"
            )
        return transformer

    def update(self, model, epoch=None):
        """Measure ``model`` now if this call is due; return the result or None.

        Parameters
        ----------
        model : nn.Module
            The network (anything :func:`sklyap.dynamics.as_dynamics` reads).
        epoch : int, default=None
            Label of this measurement; defaults to the number of calls so far.
        """
        if not hasattr(self, "calls_"):
            self._fitted = clone(self._check()).fit([model])
            self.calls_ = 0
            self.epochs, self.results, self.seconds = [], [], []
        self.calls_ += 1
        if not self._due():
            return None
        start = time.perf_counter()
        (result,) = self._fitted.compute_spectra([model])
        self.seconds.append(time.perf_counter() - start)
        self.epochs.append(self.calls_ if epoch is None else epoch)
        self.results.append(result)
        return result

    def _due(self):
        if isinstance(self.every, numbers.Integral):  # numpy integers too
            return self.calls_ % self.every == 0
        if not self.results:
            return True
        spent, cost = sum(self.seconds), self.seconds[-1]
        wall = time.perf_counter() - self._created
        return spent + cost <= self.max_fraction * (wall + cost)

    @property
    def exponents(self):
        """ndarray of shape (n_measurements, n_exponents): the recorded spectra."""
        if not getattr(self, "results", None):
            raise AttributeError("no spectrum recorded yet: call update() first")
        return np.stack([r.exponents for r in self.results])


class LyapunovCallback(Callback):
    """skorch callback: the Lyapunov spectrum of the net's recurrent core every few epochs.

    After the first epoch, and then as often as the budget allows (or after
    every ``every``-th epoch), computes the spectrum of ``net.module_`` (its
    recurrent submodule, found as :func:`sklyap.dynamics.as_dynamics` finds
    it) and records it in the net's history: ``"<key>"`` holds the exponents
    (a list), ``"<key>_max"`` the largest exponent and ``"<key>_seconds"``
    the time it took. Epochs in between record nothing.

    Parameters
    ----------
    transformer : LyapunovSpectrumTransformer, default=None
        Settings of the computation, as for :class:`SpectrumTracker`.
    every : int or "auto", default="auto"
        Measure after every ``every``-th epoch; ``"auto"`` measures after the
        first epoch and then whenever the time spent on spectra stays within
        ``max_fraction`` of the training time so far.
    max_fraction : float, default=0.1
        Budget of ``every="auto"``.
    key : str, default="lyapunov"
        Name of the history entries.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from torch import nn
    >>> from skorch import NeuralNetClassifier
    >>> from sklyap.callbacks import LyapunovCallback
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.rnn = nn.LSTM(3, 6, batch_first=True)
    ...         self.head = nn.Linear(6, 2)
    ...     def forward(self, x):
    ...         return self.head(self.rnn(x)[0][:, -1])
    >>> X = np.random.RandomState(0).randn(32, 10, 3).astype("float32")
    >>> y = (X[:, :, 0].sum(axis=1) > 0).astype("int64")
    >>> net = NeuralNetClassifier(Net, max_epochs=2, train_split=None, verbose=0,
    ...                           criterion=nn.CrossEntropyLoss,
    ...                           callbacks=[LyapunovCallback(every=1)])
    >>> _ = net.fit(X, y)
    >>> len(net.history[-1, "lyapunov"])  # 2 * 6 exponents: (h, c)
    12
    """

    def __init__(self, transformer=None, *, every="auto", max_fraction=0.1, key="lyapunov"):
        self.transformer = transformer
        self.every = every
        self.max_fraction = max_fraction
        self.key = key

    def initialize(self):
        self.tracker_ = SpectrumTracker(
            self.transformer, every=self.every, max_fraction=self.max_fraction
        )
        self.tracker_._check()
        return self

    def on_train_begin(self, net, **kwargs):
        # The budget of every="auto" counts training time from here.
        self.tracker_._created = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)
        result = self.tracker_.update(net.module_, epoch)
        if result is None:
            return
        net.history.record(self.key, result.exponents.tolist())
        net.history.record(f"{self.key}_max", float(result.exponents[0]))
        net.history.record(f"{self.key}_seconds", self.tracker_.seconds[-1])


class LyapunovPruning(Callback):
    """Report a skorch net's progress to an Optuna trial, with its early spectrum, and stop it when pruned.

    After every epoch the net's ``monitor`` score goes to ``trial.report``;
    after epoch ``epoch`` the net's spectrum goes with it
    (:func:`sklyap.selection.report_spectrum`), so that a
    :class:`sklyap.selection.LyapunovPruner` can judge it. When the study's
    pruner says so, the callback raises ``optuna.TrialPruned``, which ends
    ``net.fit`` and tells Optuna the trial was pruned.

    Parameters
    ----------
    trial : optuna.trial.Trial
    transformer : LyapunovSpectrumTransformer, default=None
        How the spectrum is computed; the same for every trial of a study.
        ``None`` uses :func:`sklyap.selection.default_transformer`.
    epoch : int, default=1
        The epoch after which the spectrum is taken.
    monitor : str, default="valid_acc"
        The history key reported after each epoch (higher is better for a
        study that maximises).
    """

    def __init__(self, trial, transformer=None, *, epoch=1, monitor="valid_acc"):
        self.trial = trial
        self.transformer = transformer
        self.epoch = epoch
        self.monitor = monitor

    def initialize(self):
        from .selection import report_spectrum

        self.epoch = check_int(self.epoch, "epoch", minimum=1)
        if not isinstance(self.monitor, str):
            raise TypeError(f"monitor must be a history key (str), got {self.monitor!r}")
        self._report_spectrum = report_spectrum
        return self

    def on_epoch_end(self, net, **kwargs):
        import optuna

        epoch = len(net.history)
        if self.monitor not in net.history[-1]:
            raise KeyError(
                f"LyapunovPruning monitors {self.monitor!r}, which the net's history does not "
                f"hold after epoch {epoch} (it holds {sorted(net.history[-1])})"
            )
        if epoch == self.epoch:
            self._report_spectrum(self.trial, net.module_, epoch, transformer=self.transformer)
        self.trial.report(float(net.history[-1, self.monitor]), epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")
