"""The content-keyed cache: keys name what a value depends on, entries are checked and
never unpickled, and nothing is deleted behind the user's back."""

import pathlib
import pickle
import shutil

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

import sklyap
from sklyap import cache
from sklyap.cache import ContentCache, cache_info, clear_cache, digest
from sklyap.datasets import _population, train_rnn_population
from sklyap.study import _run, population_features

from helpers import tiny_task

TINY = {"n_models": 3, "n_epochs": 1, "max_train": 50, "verbose": 0}


@pytest.fixture
def trainings(monkeypatch):
    """Count the networks trained (in this process)."""
    calls = []
    train = _population._train_network

    def counting(*args):
        calls.append(args[1]["seed"])
        return train(*args)

    monkeypatch.setattr(_population, "_train_network", counting)
    return calls


def entries(location, kind="network"):
    return sorted((pathlib.Path(location) / "sklyap-cache-v1" / kind).glob("*.pt"))


def same_population(a, b):
    assert_array_equal(a.val_accuracy, b.val_accuracy)
    assert_array_equal(a.test_accuracy, b.test_accuracy)
    assert_array_equal(a.train_loss, b.train_loss)
    for m, n in zip(a.models(), b.models()):
        for (name, p), (_, q) in zip(m.state_dict().items(), n.state_dict().items()):
            assert torch.equal(p, q), name


def test_digest_is_deterministic_and_sees_every_bit():
    t = torch.linspace(-1, 1, 12, dtype=torch.float32).reshape(3, 4)
    value = {"w": t, "b": [1, 2.5, None, True, "x"], "a": np.arange(3)}
    assert digest(value) == digest(dict(reversed(list(value.items()))))
    assert len(digest(value)) == 64
    bumped = t.clone()
    bumped[1, 2] = torch.nextafter(bumped[1, 2], torch.tensor(2.0))
    assert digest(bumped) != digest(t)
    assert digest(t.double()) != digest(t)
    assert torch.equal(t.double().float(), t)
    view = t.T
    assert not view.is_contiguous() and digest(view) == digest(view.contiguous())
    assert digest(np.asfortranarray(t.numpy())) == digest(t.numpy())
    assert digest(1) != digest(1.0) != digest("1") and digest([1]) != digest((1,))
    with pytest.raises(TypeError, match="cannot hash 'object'"):
        digest(object())


def test_an_entry_round_trips_and_only_plain_payloads_are_stored(tmp_path):
    store = ContentCache(tmp_path)
    assert pickle.loads(pickle.dumps(store)).location == tmp_path
    payload = {"w": {0: torch.ones(2, 3)}, "acc": [0.5, 0.25], "name": "x"}
    assert store.get("k", {"a": 1}) is None
    path = store.put("k", {"a": 1}, payload)
    assert path.parent == tmp_path / "sklyap-cache-v1" / "k" and list(path.parent.iterdir()) == [
        path
    ]
    got = store.get("k", {"a": 1})
    assert digest(got) == digest(payload) and isinstance(got["w"][0], torch.Tensor)
    assert (
        store.get("k", {"a": 2}) is None
        and store.get("k", {"a": 1}, code=["sklyap.weights"]) is None
    )
    with pytest.raises(TypeError, match="'ndarray'"):
        store.put("k", {"a": 1}, {"x": np.zeros(2)})


def test_a_second_call_is_served_from_the_cache_also_after_workers_wrote_it(tmp_path, trainings):
    first = train_rnn_population("digits", cache_dir=tmp_path, n_jobs=2, **TINY)
    assert len(entries(tmp_path)) == 3
    again = train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    assert trainings == []  # trained in the workers, served here
    same_population(first, again)
    fresh = train_rnn_population("digits", cache_dir=False, **TINY)
    assert len(trainings) == 3
    same_population(first, fresh)


def test_a_change_to_any_training_module_retrains_and_deletes_nothing(
    tmp_path, trainings, monkeypatch
):
    train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    old = entries(tmp_path)
    assert len(trainings) == 3 and len(old) == 3
    source = cache._source

    def edited(name):  # a module that _train_network calls, not its own
        return source(name) + (b"\n# edited\n" if name == "sklyap.datasets._tasks" else b"")

    monkeypatch.setattr(cache, "_source", edited)
    train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    assert len(trainings) == 6
    assert set(old) < set(entries(tmp_path)) and len(entries(tmp_path)) == 6
    assert cache_info(tmp_path).kinds["network"]["stale"] == 3


def test_swapped_entries_are_detected_and_recomputed(tmp_path, trainings):
    train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    a, b, _ = entries(tmp_path)
    a.rename(tmp_path / "swap")
    b.rename(a)
    (tmp_path / "swap").rename(b)
    with pytest.warns(UserWarning, match="holds the entry of another key") as record:
        served = train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    assert {str(a), str(b)} == {str(w.message).split()[3] for w in record}
    assert len(trainings) == 5
    same_population(served, train_rnn_population("digits", cache_dir=False, **TINY))


def test_truncated_corrupted_and_junk_entries_are_recomputed(tmp_path, trainings):
    train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    truncated, corrupted, junk = entries(tmp_path)
    truncated.write_bytes(truncated.read_bytes()[:500])
    entry = torch.load(corrupted, weights_only=True)
    entry["payload"]["val_accuracy"][0] = 1.0  # key and checksum left as they were
    torch.save(entry, corrupted)
    junk.write_bytes(b"not a cache entry")
    with pytest.warns(UserWarning) as record:
        served = train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    problems = sorted(str(w.message) for w in record)
    assert len(problems) == 3 and len(trainings) == 6
    assert sum("cannot be read safely" in p for p in problems) == 2
    assert sum(f"{corrupted} does not match its checksum" in p for p in problems) == 1
    same_population(served, train_rnn_population("digits", cache_dir=False, **TINY))


def test_a_bad_entry_is_reported_to_the_caller_also_with_workers(tmp_path):
    train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    bad = entries(tmp_path)[1]
    bad.write_bytes(b"not a cache entry")
    with pytest.warns(UserWarning, match=f"{bad} cannot be read safely") as record:
        served = train_rnn_population("digits", cache_dir=tmp_path, n_jobs=2, **TINY)
    assert record[0].filename == __file__  # it points at the caller's line
    same_population(served, train_rnn_population("digits", cache_dir=False, **TINY))
    assert torch.load(bad, weights_only=True)["payload"]  # rewritten by the worker


class Planted:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_a_planted_pickle_is_never_run(tmp_path, trainings):
    train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    target = entries(tmp_path)[0]
    marker = tmp_path / "ran"
    with open(target, "wb") as f:
        pickle.dump({"key": target.stem, "payload": Planted(marker)}, f)
    with pytest.warns(UserWarning, match=f"{target} cannot be read safely"):
        train_rnn_population("digits", cache_dir=tmp_path, **TINY)
    assert not marker.exists() and len(trainings) == 4
    pickle.loads(pickle.dumps(Planted(marker)))  # what unpickling the entry would have done
    assert marker.exists()


def test_spectra_follow_the_networks_weights(tmp_path, monkeypatch):
    computed = []
    spectra = _run._spectra

    def counting(*args):
        computed.append(1)
        return spectra(*args)

    monkeypatch.setattr(_run, "_spectra", counting)
    kwargs = {"n_models": 4, "n_features": 6, "cache_dir": tmp_path, "verbose": 0}
    kwargs |= {"device": "cpu", "n_jobs": 1}
    _, first, _ = population_features(tiny_task(), **kwargs)
    _, again, _ = population_features(tiny_task(), **kwargs)
    assert len(computed) == 1
    for key, value in first.items():
        assert_array_equal(again[key], value)

    # Other weights for the same task and seeds (the networks retrained by other code).
    shutil.rmtree(tmp_path / "sklyap-cache-v1" / "network")
    train = _population._train_network

    def other_weights(*args):
        result = train(*args)
        for state in result["snapshots"].values():
            state["rnn.weight_hh_l0"] *= 1.5
        return result

    monkeypatch.setattr(_population, "_train_network", other_weights)
    _, changed, _ = population_features(tiny_task(), **kwargs)
    assert len(computed) == 2
    assert not np.array_equal(changed["final"], first["final"])
    assert len(entries(tmp_path, "spectra")) == 2


def test_cache_info_counts_stale_entries_and_clear_removes_only_them(tmp_path, monkeypatch):
    store = ContentCache(tmp_path)
    code = ["sklyap.weights"]
    store.put("a", {"i": 0}, [1.0], code=code)
    with monkeypatch.context() as m:
        m.setattr(sklyap, "__version__", "0.0.1")
        store.put("a", {"i": 1}, [1.0], code=code)
    source = cache._source
    with monkeypatch.context() as m:
        m.setattr(cache, "_source", lambda name: source(name) + b"# older")
        store.put("b", {"i": 2}, [2.0], code=code)
    # Where joblib's Memory kept sklyap's training before, beside another user's cache.
    old = tmp_path / "joblib" / "sklyap" / "datasets" / "_population" / "_train_network"
    old.mkdir(parents=True)
    (old / "output.pkl").write_bytes(b"12345")
    (tmp_path / "joblib" / "theirs").mkdir()

    info = cache_info(tmp_path)
    assert info.kinds["a"]["entries"] == 2 and info.kinds["a"]["stale"] == 1
    assert info.kinds["b"] == {
        "entries": 1,
        "bytes": entries(tmp_path, "b")[0].stat().st_size,
        "stale": 1,
    }
    assert (info.n_entries, info.n_stale) == (
        3,
        2,
    ) and info.old_joblib == tmp_path / "joblib" / "sklyap"
    assert "a: 2 entries" in str(info) and "2 stale" in str(info) and "joblib" in str(info)

    removed = clear_cache(tmp_path, stale_only=True)
    assert len(removed) == 2 and store.get("a", {"i": 0}, code=code) == [1.0]
    assert cache_info(tmp_path).n_stale == 0 and (tmp_path / "joblib").exists()
    removed = clear_cache(tmp_path)
    assert set(removed) == {tmp_path / "sklyap-cache-v1", tmp_path / "joblib" / "sklyap"}
    assert (tmp_path / "joblib" / "theirs").is_dir()  # another user's cache is theirs
    assert cache_info(tmp_path).n_entries == 0 and "no entries" in str(cache_info(tmp_path))


def test_the_cache_command_says_where_and_what_and_clears(tmp_path, monkeypatch, capsys):
    from sklyap.cli import main

    store = ContentCache(tmp_path)
    store.put("network", {"i": 0}, [1.0], code=["sklyap.weights"])
    with monkeypatch.context() as m:
        m.setattr(sklyap, "__version__", "0.0.1")  # made by another version: stale
        store.put("network", {"i": 1}, [2.0], code=["sklyap.weights"])
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert str(tmp_path) in printed and "network: 2 entries" in printed and "1 stale" in printed
    assert main(["cache", "clear", "--stale", "--cache-dir", str(tmp_path)]) == 0
    assert "Removed 1 stale entries" in capsys.readouterr().out
    assert store.get("network", {"i": 0}, code=["sklyap.weights"]) == [1.0]
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert cache_info(tmp_path).n_entries == 0


def test_import_closure_follows_every_import_of_the_package(tmp_path, monkeypatch):
    # A package of four modules: a imports b at module level, b imports c inside a
    # function, d is imported by nobody; the package's __init__ imports nothing.
    package = tmp_path / "closurepkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import os\nfrom . import b\n")
    (package / "b.py").write_text("def f():\n    from .sub.c import g\n    return g\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from ..b import f\nimport closurepkg.a\n")
    (package / "d.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cache.import_closure(["closurepkg.a"]) == [
        "closurepkg",
        "closurepkg.a",
        "closurepkg.b",
        "closurepkg.sub",
        "closurepkg.sub.c",
    ]
    assert cache.import_closure(["closurepkg.d"]) == ["closurepkg", "closurepkg.d"]


def test_the_spectra_key_covers_what_computes_them_and_not_the_pruner():
    code = _run._spectrum_code()
    for name in (
        "sklyap.lyapunov",
        "sklyap._benettin",
        "sklyap.orthonormalize",
        "sklyap.dynamics._lstm",
        "sklyap.dynamics._torch_rnn",
        # Imported inside a function of sklyap.dynamics.
        "sklyap._state_dict",
        # Imported by the package's __init__.
        "sklyap.checkpoints",
        "sklyap.transformer",
        "sklyap.weights",
        "sklyap.study._tasks",
        "sklyap.study._run",
    ):
        assert name in code, name
    for name in (
        "sklyap._pruning",
        "sklyap._early",
        "sklyap.selection",
        "sklyap.callbacks",
        "sklyap.study._sweep",
        "sklyap.study._sweep_result",
    ):
        assert name not in code, name
