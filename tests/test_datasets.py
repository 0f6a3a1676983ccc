"""Real tasks and trained populations."""

import gc
import warnings

import numpy as np
import pytest
import torch

from sklyap.datasets import (
    RecurrentClassifier,
    default_cache_dir,
    load_char_text,
    load_sequential_digits,
    train_rnn_population,
)
from sklyap.datasets._population import _accuracy, _load_task


def test_sequential_digits_split_is_fixed_disjoint_and_stratified():
    data = load_sequential_digits("row")
    n = [len(data.y_train), len(data.y_val), len(data.y_test)]
    assert n == [1077, 360, 360] and sum(n) == 1797
    assert data.X_train.dtype == np.float32 and data.X_train.min() == 0 and data.X_train.max() == 1
    rows = {split: {x.tobytes() for x in data[f"X_{split}"]} for split in ("train", "val", "test")}
    # A few digits images are exact duplicates in scikit-learn's data; almost all are unique.
    assert len(rows["train"] & rows["test"]) <= 2 and len(rows["val"] & rows["test"]) <= 2
    for split in ("val", "test"):
        counts = np.bincount(data[f"y_{split}"], minlength=10)
        assert counts.min() >= 35 and counts.max() <= 37  # 360 / 10 = 36 per class
    again = load_sequential_digits("row")
    np.testing.assert_array_equal(again.X_test, data.X_test)
    pixel = load_sequential_digits("pixel")
    assert (pixel.n_steps, pixel.input_size) == (64, 1)
    np.testing.assert_array_equal(pixel.X_val.reshape(-1, 8, 8), data.X_val)
    with pytest.raises(ValueError, match="mode must be one of 'row', 'pixel', got 'column'"):
        load_sequential_digits("column")


def test_char_text_targets_are_the_next_characters():
    data = load_char_text(seq_len=20)
    assert data.X_train.shape[1] == 20 and data.y_train.shape == data.X_train.shape
    np.testing.assert_array_equal(data.y_train[:, :-1], data.X_train[:, 1:])
    sizes = np.array([len(data.X_train), len(data.X_val), len(data.X_test)])
    np.testing.assert_allclose(sizes / sizes.sum(), [0.8, 0.1, 0.1], atol=0.002)
    text = (
        "".join(data.vocabulary[i] for i in data.X_train[0]) + data.vocabulary[data.y_train[0, -1]]
    )
    from sklyap.datasets._tasks import _python_documentation_text

    assert _python_documentation_text().startswith(text)
    assert data.vocabulary[0] == "\N{REPLACEMENT CHARACTER}" and data.n_classes == len(
        data.vocabulary
    )
    assert 60 < data.n_classes < 110
    onehot = load_char_text(seq_len=20, encoding="onehot")
    assert onehot.X_val.shape == (*data.X_val.shape, data.n_classes)
    np.testing.assert_array_equal(onehot.X_val.argmax(-1), data.X_val)
    with pytest.raises(ValueError, match="encoding must be one of 'ids', 'onehot'"):
        load_char_text(encoding="ascii")
    with pytest.raises(ValueError, match="seq_len must be an int >= 1"):
        load_char_text(seq_len=0)


SMALL = {"n_epochs": 2, "max_train": 256, "snapshot_epochs": (0, 1), "verbose": 0}


def test_population_records_accuracies_that_its_snapshots_reproduce(tmp_path):
    rng_state = torch.random.get_rng_state()
    pop = train_rnn_population("digits", 4, cache_dir=tmp_path, random_state=1, **SMALL)
    assert torch.equal(torch.random.get_rng_state(), rng_state), "global RNG was used"
    assert len(pop) == 4 and pop.n_epochs == 2 and pop.snapshot_epochs == (0, 1, 2)
    assert pop.val_accuracy.shape == pop.test_accuracy.shape == pop.train_loss.shape == (4, 2)
    assert {hp["cell"] for hp in pop.hyperparameters} <= {"RNN", "GRU", "LSTM"}
    data = _load_task("digits")
    X_val, y_val = torch.as_tensor(data.X_val), torch.as_tensor(data.y_val)
    for epoch in (1, 2):
        for i, model in enumerate(pop.models(epoch)):
            assert isinstance(model, RecurrentClassifier) and not model.training
            assert _accuracy(model, X_val, y_val) == pop.val_accuracy[i, epoch - 1]
    # Initial snapshots differ from trained ones.
    initial, final = pop.models(0)[0], pop.models()[0]
    assert not torch.equal(initial.rnn.weight_hh_l0, final.rnn.weight_hh_l0)
    with pytest.raises(ValueError, match=r"no snapshot after epoch 5; .* \[0, 1, 2\]"):
        pop.models(5)
    X, names = pop.hyperparameter_matrix()
    assert X.shape == (4, 6) and names[3] == "log2_hidden_size"
    np.testing.assert_allclose(np.exp(X[:, 4]), [hp["init_scale"] for hp in pop.hyperparameters])
    np.testing.assert_array_equal(X[:, :3].sum(axis=1), 1)


def test_population_is_seeded_cached_and_prefix_stable(tmp_path):
    first = train_rnn_population("digits", 3, cache_dir=tmp_path, random_state=2, **SMALL)
    assert len(list(tmp_path.rglob("*.pt"))) == 3, "nothing was cached"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = train_rnn_population(
            "digits", 3, cache_dir=tmp_path, random_state=2, n_jobs=2, **SMALL
        )
        gc.collect()
    cancelled = [w for w in caught if "cancelled" in str(w.message)]
    assert not cancelled, "all cached: no workers, nothing cancelled"
    np.testing.assert_array_equal(again.val_accuracy, first.val_accuracy)
    uncached = train_rnn_population("digits", 2, cache_dir=False, random_state=2, **SMALL)
    assert uncached.hyperparameters == first.hyperparameters[:2]
    np.testing.assert_array_equal(uncached.test_accuracy, first.test_accuracy[:2])
    other = train_rnn_population("digits", 3, cache_dir=False, random_state=3, **SMALL)
    assert other.hyperparameters != first.hyperparameters


def test_char_text_population_uses_an_embedding():
    pop = train_rnn_population(
        "char_text", 1, cells=("GRU",), cache_dir=False, n_epochs=1, max_train=64, verbose=0
    )
    (model,) = pop.models()
    assert model.embedding is not None and model.sequence_output
    assert 0 <= pop.val_accuracy[0, 0] <= 1


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SKLYAP_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("SKLYAP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "sklyap"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"task": "mnist"}, "unknown task 'mnist'"),
        ({"cells": ("RNN", "TCN")}, "cells must be a non-empty subset"),
        ({"init_scale_range": (2.0, 1.0)}, r"init_scale_range must be \(low, high\)"),
        ({"learning_rate_range": (0.0, 1.0)}, r"learning_rate_range must be \(low, high\)"),
        ({"snapshot_epochs": (5,), "n_epochs": 2}, "go past n_epochs=2"),
        ({"n_models": 0}, "n_models must be an int >= 1"),
    ],
)
def test_population_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_rnn_population(**{"cache_dir": False, "verbose": 0, **kwargs})


def test_recurrent_classifier_scales_the_initial_range_of_its_core():
    torch.manual_seed(0)
    model = RecurrentClassifier(8, 16, 10, "GRU", init_scale=5.0)
    bound = 5.0 / 4.0  # g / sqrt(N)
    for name, p in model.rnn.named_parameters():
        values = p.detach().abs()
        assert values.max() <= bound and values.max() > 0.9 * bound, name
    # PyTorch's own range (g = 1) without it; the readout is never rescaled.
    torch.manual_seed(0)
    plain = RecurrentClassifier(8, 16, 10, "GRU")
    assert all(p.abs().max() <= 0.25 for p in plain.rnn.parameters())
    assert torch.equal(plain.head.weight, model.head.weight)
    for bad, error in [
        (0, ValueError),
        (-1.0, ValueError),
        (float("nan"), ValueError),
        ("2", TypeError),
        (True, TypeError),
    ]:
        with pytest.raises(error, match=f"init_scale must be a float > 0 or None, got {bad!r}"):
            RecurrentClassifier(8, 16, 10, init_scale=bad)
    with pytest.raises(ValueError, match="cell must be one of 'RNN', 'GRU', 'LSTM', got 'rnn'"):
        RecurrentClassifier(8, 16, 10, "rnn")
