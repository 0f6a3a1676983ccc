"""Spectra recorded during training, in skorch and in plain loops."""

import copy

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from torch import nn

from sklyap import LyapunovSpectrumTransformer, lyapunov_spectrum
from sklyap.callbacks import LyapunovCallback, SpectrumTracker


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 5, batch_first=True)
        self.head = nn.Linear(5, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def _data():
    X = np.random.RandomState(0).randn(64, 12, 3).astype("float32")
    return X, (X[:, :, 0].sum(axis=1) > 0).astype("int64")


def test_tracker_records_the_spectrum_of_the_model_at_each_update():
    torch.manual_seed(0)
    net = _Net()
    settings = LyapunovSpectrumTransformer(
        n_trajectories=2, n_steps=60, warmup=20, random_state=1, device="cpu"
    )
    tracker = SpectrumTracker(settings, every=2)
    X, y = _data()
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    expected = {}
    for epoch in range(1, 5):
        loss = nn.functional.cross_entropy(net(torch.as_tensor(X)), torch.as_tensor(y))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        before = copy.deepcopy(net.state_dict())
        result = tracker.update(net, epoch)
        assert all(torch.equal(net.state_dict()[k], v) for k, v in before.items())
        assert (result is None) == (epoch % 2 == 1)
        if result is not None:
            inputs = tracker._fitted.inputs_
            expected[epoch] = lyapunov_spectrum(net, inputs, warmup=20, device="cpu").exponents
    assert tracker.epochs == [2, 4]
    np.testing.assert_allclose(tracker.exponents, np.stack([expected[2], expected[4]]), atol=1e-12)
    assert not np.allclose(expected[2], expected[4]), "training should move the spectrum"
    assert len(tracker.seconds) == 2 and settings.__dict__.get("inputs_") is None


def test_auto_schedule_keeps_the_cost_within_budget(monkeypatch):
    """Epochs of 0.5 s, spectra of 1 s, budget 25%: measured after epochs 1, 12, 18, 24.

    The clock starts at 0 with the tracker. Epoch e ends at 0.5 e plus the time
    already spent on spectra. After epoch 1 (t = 0.5) the first spectrum is
    taken (t = 1.5). A later one is taken when (spent + 1) <= 0.25 (t + 1): with
    spent = 1, t >= 7, which epoch 12 reaches (t = 1 + 0.5 * 12); with spent = 2,
    t >= 11, reached by epoch 18 (t = 8 + 0.5 * 6); with spent = 3, t >= 15,
    reached by epoch 24 (t = 12 + 0.5 * 6).
    """
    import sklyap.callbacks as callbacks

    clock = {"t": 0.0}
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: clock["t"])

    def one_second_spectrum(self, models):
        clock["t"] += 1.0
        return ["a spectrum"]

    monkeypatch.setattr(LyapunovSpectrumTransformer, "compute_spectra", one_second_spectrum)
    tracker = SpectrumTracker(max_fraction=0.25)
    net = _Net()
    for epoch in range(1, 25):
        clock["t"] += 0.5
        tracker.update(net, epoch)
        # Never more than the budget, but for the spectrum just taken.
        assert sum(tracker.seconds) <= 0.25 * clock["t"] + 1.0
    assert tracker.epochs == [1, 12, 18, 24]


def test_numpy_integer_schedule_is_honoured():
    tracker = SpectrumTracker(
        LyapunovSpectrumTransformer(n_trajectories=1, n_steps=5, warmup=1, device="cpu"),
        every=np.int64(3),
    )
    net = _Net()
    for epoch in range(1, 7):
        tracker.update(net, epoch)
    assert tracker.epochs == [3, 6]


def test_tracker_errors():
    with pytest.raises(TypeError, match="transformer must be a LyapunovSpectrumTransformer"):
        SpectrumTracker("fast").update(_Net())
    with pytest.raises(ValueError, match="every must be an int >= 1, got 0"):
        SpectrumTracker(every=0).update(_Net())
    with pytest.raises(ValueError, match=r"max_fraction must be a float in \(0, 1\], got 0"):
        SpectrumTracker(max_fraction=0).update(_Net())
    with pytest.raises(AttributeError, match="call update"):
        _ = SpectrumTracker().exponents


def test_skorch_callback_records_spectra_in_history():
    X, y = _data()
    settings = LyapunovSpectrumTransformer(
        n_trajectories=2, n_steps=50, warmup=10, random_state=0, device="cpu"
    )
    net = NeuralNetClassifier(
        _Net,
        max_epochs=4,
        lr=0.05,
        train_split=None,
        verbose=0,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        callbacks=[LyapunovCallback(settings, every=2)],
    )
    net.fit(X, y)
    measured = [row["epoch"] for row in net.history if "lyapunov" in row]
    assert measured == [2, 4]
    last = net.history[-1]
    callback = dict(net.callbacks_)["LyapunovCallback"]
    inputs = callback.tracker_._fitted.inputs_
    expected = lyapunov_spectrum(net.module_, inputs, warmup=10, device="cpu").exponents
    np.testing.assert_allclose(last["lyapunov"], expected, atol=1e-12)
    assert last["lyapunov_max"] == pytest.approx(expected[0])
    assert last["lyapunov_seconds"] > 0
