"""Recurrent modules from state_dicts, checkpoint files, skorch files and TorchScript."""

import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sklyap import load_checkpoint, lyapunov_spectrum, module_from_state_dict
from sklyap.cli import main
from sklyap.dynamics import as_dynamics

F64 = torch.float64


class Classifier(nn.Module):
    def __init__(self, cell=nn.LSTM, hidden=6, layers=2, **kwargs):
        super().__init__()
        self.embed = nn.Linear(3, 3)
        self.rnn = cell(3, hidden, num_layers=layers, batch_first=True, **kwargs)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.head(self.rnn(self.embed(x))[0][:, -1])


def _inputs(B=3, T=150, d=3, seed=0):
    return torch.randn(B, T, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _same_spectrum(a, b, batch_first=True):
    x = _inputs()
    ra = lyapunov_spectrum(a, x, batch_first=batch_first, device="cpu")
    rb = lyapunov_spectrum(b, x, batch_first=batch_first, device="cpu")
    np.testing.assert_array_equal(ra.per_trajectory, rb.per_trajectory)
    return ra


@pytest.mark.parametrize(
    "module",
    [
        nn.RNN(3, 5, num_layers=2),
        nn.RNN(3, 5, nonlinearity="relu", bias=False),
        nn.GRU(3, 4, num_layers=3),
        nn.LSTM(3, 4, bias=False),
        nn.RNNCell(3, 5),
        nn.GRUCell(3, 4),
        nn.LSTMCell(3, 4, bias=False),
    ],
    ids=repr,
)
def test_the_module_is_rebuilt_from_its_weights(module):
    torch.manual_seed(0)
    nonlinearity = getattr(module, "nonlinearity", "tanh")
    built = module_from_state_dict(module.state_dict(), nonlinearity=nonlinearity)
    assert repr(built) == repr(module)
    for (name, p), (name_b, q) in zip(module.named_parameters(), built.named_parameters()):
        assert name == name_b
        assert torch.equal(p, q) and p.data_ptr() != q.data_ptr()  # a copy
    assert not built.training
    _same_spectrum(module, built)


def test_a_model_containing_the_network_is_found_by_its_prefix_and_keeps_dtype():
    torch.manual_seed(1)
    model = Classifier().double()
    built = module_from_state_dict(model.state_dict(), batch_first=True)
    assert isinstance(built, nn.LSTM) and built.num_layers == 2 and built.batch_first
    assert built.weight_hh_l0.dtype == F64
    _same_spectrum(model, built)


def test_nested_checkpoint_dicts_and_several_networks():
    torch.manual_seed(2)

    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.GRU(3, 4)
            self.decoder = nn.LSTM(4, 5)

    two = Two()
    with pytest.raises(ValueError, match=r"2 recurrent modules: \['decoder', 'encoder'\].*rnn="):
        module_from_state_dict(two.state_dict())
    assert isinstance(module_from_state_dict(two.state_dict(), rnn="decoder"), nn.LSTM)
    with pytest.raises(
        ValueError, match=r"no recurrent module 'rnn'; it has \['decoder', 'encoder'\]"
    ):
        module_from_state_dict(two.state_dict(), rnn="rnn")
    checkpoint = {"epoch": 7, "model_state_dict": Classifier().state_dict(), "optimizer": {}}
    assert isinstance(module_from_state_dict(checkpoint), nn.LSTM)
    ema = {"model": Classifier().state_dict(), "ema": Classifier().state_dict()}
    with pytest.raises(ValueError, match=r"several state_dicts.*\['ema', 'model'\]"):
        module_from_state_dict(ema)


@pytest.mark.parametrize(
    "module, match",
    [
        (nn.LSTM(3, 4, bidirectional=True), "bidirectional"),
        (nn.LSTM(3, 4, proj_size=2), "projections"),
        (nn.Linear(3, 4), "no recurrent weights"),
    ],
)
def test_weights_sklyap_cannot_read_are_refused(module, match):
    with pytest.raises(ValueError, match=match):
        module_from_state_dict(module.state_dict())


def test_bad_arguments():
    state = nn.RNN(3, 4).state_dict()
    with pytest.raises(
        ValueError, match="nonlinearity must be one of 'tanh', 'relu', got 'sigmoid'"
    ):
        module_from_state_dict(state, nonlinearity="sigmoid")
    with pytest.raises(TypeError, match="batch_first must be one of True, False, got 1"):
        module_from_state_dict(state, batch_first=1)
    with pytest.raises(TypeError, match="holds a list; expected a state_dict"):
        module_from_state_dict([1, 2])
    with pytest.raises(TypeError, match="source must be a file path or a state_dict, got int"):
        load_checkpoint(3)


def test_a_state_dict_passed_as_a_model_says_how_to_load_it():
    with pytest.raises(TypeError, match=r"got a OrderedDict .*sklyap.load_checkpoint"):
        lyapunov_spectrum(nn.LSTM(3, 4).state_dict(), _inputs(), device="cpu")


def test_files_load_safely_by_default(tmp_path):
    torch.manual_seed(3)
    model = Classifier(cell=nn.GRU)
    torch.save(model.state_dict(), tmp_path / "state.pt")
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    torch.save(model, tmp_path / "whole.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    for name in ("state.pt", "ckpt.pt"):
        _same_spectrum(model, load_checkpoint(tmp_path / name, batch_first=True))
    with pytest.raises(
        ValueError, match=r"whole.pt: holds pickled Python objects.*weights_only=False"
    ):
        load_checkpoint(tmp_path / "whole.pt")
    whole = load_checkpoint(str(tmp_path / "whole.pt"), weights_only=False)
    _same_spectrum(model, whole)
    with pytest.raises(ValueError, match="notes.pt: not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "notes.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt: no such file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_skorch_save_params_files(tmp_path):
    net = _skorch_net()
    net.save_params(f_params=tmp_path / "params.pt")
    loaded = load_checkpoint(tmp_path / "params.pt", batch_first=True)
    _same_spectrum(net, loaded)


def test_an_unfitted_skorch_net_says_so():
    from sklearn.exceptions import NotFittedError
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(Classifier)
    with pytest.raises(NotFittedError, match="NeuralNetClassifier is not initialized yet"):
        as_dynamics(net)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TorchScript is, in torch >= 2.10
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_torchscript_is_read_through_its_parameters(tmp_path):
    torch.manual_seed(4)
    lstm = nn.LSTM(3, 5, batch_first=True)
    scripted = torch.jit.script(lstm)
    x = _inputs()
    expected = lyapunov_spectrum(lstm, x, device="cpu")
    got = lyapunov_spectrum(scripted, x, device="cpu")  # batch_first read from the script
    np.testing.assert_array_equal(got.per_trajectory, expected.per_trajectory)
    traced = torch.jit.trace(nn.GRU(3, 4), torch.randn(7, 2, 3))
    path = _save(torch.jit.save, traced, tmp_path / "traced.pt")
    with pytest.raises(
        ValueError, match=r"traced.pt: is a TorchScript archive.*weights_only=False"
    ):
        load_checkpoint(path)  # loading one runs its code: only when asked
    built = load_checkpoint(path, weights_only=False)
    assert isinstance(built, nn.GRU) and not built.batch_first
    np.testing.assert_array_equal(built.weight_hh_l0.detach(), traced.weight_hh_l0.detach())
    with pytest.raises(ValueError, match="traced RNN does not record its nonlinearity"):
        as_dynamics(torch.jit.trace(nn.RNN(3, 4), torch.randn(7, 2, 3)))
    # A scripted container: the recurrent module inside is found.
    container = torch.jit.script(nn.Sequential(nn.Linear(3, 3), nn.GRU(3, 4)))
    assert as_dynamics(container).state_size == 4


def _save(save, obj, path):
    save(obj, str(path))
    return path


# -- the command line -----------------------------------------------------------


@pytest.fixture
def checkpoints(tmp_path):
    torch.manual_seed(5)
    models = {
        "a_gru.pt": nn.GRU(3, 4),
        "b_lstm.pt": nn.LSTM(3, 3, num_layers=2),
        "c_rnn.pth": nn.RNN(2, 5),
    }
    folder = tmp_path / "runs"
    folder.mkdir()
    for name, model in models.items():
        torch.save(model.state_dict(), folder / name)
    (folder / "README.txt").write_text("not a checkpoint, not read")
    return folder, models


def _skorch_net():
    from skorch import NeuralNetClassifier

    X = np.random.RandomState(0).randn(32, 10, 3).astype(np.float32)
    net = NeuralNetClassifier(
        Classifier, max_epochs=1, criterion=nn.CrossEntropyLoss, train_split=None, verbose=0
    )
    return net.fit(X, np.arange(32) % 2)


def test_command_line_measures_a_folder_of_checkpoints(checkpoints, tmp_path, capsys):
    folder, models = checkpoints
    net = _skorch_net()
    net.save_params(f_params=folder / "d_skorch.pt")
    models["d_skorch.pt"] = net.module_  # an LSTM inside a classifier
    out = tmp_path / "spectra.csv"
    code = main(
        [
            "spectra",
            str(folder),
            "--n-trajectories",
            "3",
            "--n-steps",
            "40",
            "--warmup",
            "20",
            "--device",
            "cpu",
            "--output",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "a_gru.pt (GRU 1x4)" in printed and "b_lstm.pt (LSTM 2x3)" in printed
    assert "d_skorch.pt (LSTM 2x6)" in printed
    rows = list(csv.DictReader(out.open()))
    assert [r["checkpoint"].rsplit("/", 1)[-1] for r in rows] == sorted(models)
    for row in rows:
        model = models[row["checkpoint"].rsplit("/", 1)[-1]]
        # The same Gaussian inputs the command (and the transformer) draws for seed 0:
        # torch's generator seeded by NumPy's RandomState(0), trajectories first.
        seed = int(np.random.RandomState(0).randint(np.iinfo(np.int32).max))
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(3, 60, as_dynamics(model).input_size, generator=gen, dtype=F64)
        expected = lyapunov_spectrum(model, x, warmup=20, batch_first=True, device="cpu")
        got = [float(v) for k, v in row.items() if k.startswith("lambda_") and v]
        np.testing.assert_allclose(got, expected.exponents, rtol=0, atol=1e-15)
        assert int(row["state_size"]) == expected.state_size


def test_command_line_with_inputs_json_npz_plot_and_a_bad_file(
    checkpoints, tmp_path, capsys, session_matplotlib
):
    folder, models = checkpoints
    (folder / "c_rnn.pth").unlink()  # input size 2; the inputs below have 3
    (folder / "broken.pt").write_bytes(b"\x00\x01 not a checkpoint")
    x = np.random.RandomState(1).randn(50, 2, 3)  # (T, B, input_size): PyTorch's layout
    np.save(tmp_path / "inputs.npy", x)
    for suffix in ("json", "npz"):
        out = tmp_path / f"spectra.{suffix}"
        code = main(
            [
                "spectra",
                str(folder),
                "--inputs",
                str(tmp_path / "inputs.npy"),
                "--warmup",
                "10",
                "--n-exponents",
                "2",
                "--device",
                "cpu",
                "--output",
                str(out),
                "--plot",
                str(tmp_path / "s.png"),
                "--quiet",
            ]
        )
        assert code == 1  # broken.pt
        assert "broken.pt: not a PyTorch checkpoint" in capsys.readouterr().err
    assert session_matplotlib()  # the command, run in a session, leaves its matplotlib alone
    expected = lyapunov_spectrum(models["a_gru.pt"], x, warmup=10, n_exponents=2, device="cpu")
    rows = json.loads((tmp_path / "spectra.json").read_text())
    by_name = {r["checkpoint"].rsplit("/", 1)[-1]: r for r in rows}
    np.testing.assert_allclose(by_name["a_gru.pt"]["exponents"], expected.exponents, atol=1e-15)
    assert "not a PyTorch checkpoint" in by_name["broken.pt"]["error"]
    saved = np.load(tmp_path / "spectra.npz")
    assert saved["exponents"].shape == (3, 2) and np.isnan(saved["exponents"][2]).all()
    assert (tmp_path / "s.png").stat().st_size > 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["spectra"], "give checkpoint files or folders"),
        (["spectra", "x.pt", "--random"], "--random measures fresh networks"),
        (["spectra", "--random", "--inputs", "x.npy"], "--inputs drives checkpoints"),
        (["spectra", "x.pt", "--output", "s.txt"], r"s.txt: expected a file ending in .csv"),
        (["spectra", "--random", "--hidden-size", "0"], "expected an int >= 1, got 0"),
    ],
)
def test_command_line_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("hidden", [1, 4])
def test_random_networks_print_their_spectra(hidden, capsys):
    # Every column of the printed table, against the spectra of the networks the
    # command says it built: PyTorch's initialisation for seed 0, the recurrent
    # weights times the gain, driven by the transformer's Gaussian inputs for
    # the same seed. One unit: a spectrum of one exponent has no lambda_2.
    from sklyap import LyapunovSpectrumTransformer

    argv = ["--hidden-size", str(hidden), "--n-steps", "20", "--warmup", "5"]
    assert main(["spectra", "--random", *argv, "--n-trajectories", "2", "--device", "cpu",
                 "--quiet"]) == 0  # fmt: skip
    rows = {
        " ".join(line.split()[:2]): line.split()[2:]
        for line in capsys.readouterr().out.splitlines()
        if line.split()[:1] in (["RNN"], ["GRU"], ["LSTM"])
    }
    assert list(rows) == [f"{k} x{g}" for g in (1, 4) for k in ("RNN", "GRU", "LSTM")]
    torch.manual_seed(0)
    for gain in (1, 4):
        for kind in ("RNN", "GRU", "LSTM"):
            model = getattr(nn, kind)(4, hidden)
            with torch.no_grad():
                model.weight_hh_l0.mul_(gain)
            lst = LyapunovSpectrumTransformer(
                n_trajectories=2, n_steps=20, warmup=5, random_state=0, device="cpu"
            )
            (result,) = lst.fit([model]).compute_spectra([model])
            ex = result.exponents
            state, first, stderr, second, last, total, positive = rows[f"{kind} x{gain}"]
            assert int(state) == len(ex) == (2 if kind == "LSTM" else 1) * hidden
            assert float(first) == pytest.approx(ex[0], abs=5e-5)  # printed to 4 places
            assert float(stderr.removeprefix("+-")) == pytest.approx(result.stderr[0], abs=5e-5)
            assert (
                second == "-" if len(ex) == 1 else float(second) == pytest.approx(ex[1], abs=5e-5)
            )
            assert float(last) == pytest.approx(ex[-1], abs=5e-5)
            assert float(total) == pytest.approx(ex.sum(), abs=5e-4)  # to 3 places
            assert int(positive) == int((ex > 0).sum())


def test_the_console_script_names_itself_and_the_command(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "sklyap"
    if not script.exists():
        pytest.skip("sklyap is not installed as a command here")
    done = subprocess.run(
        [str(script), "spectra", str(tmp_path / "missing.pt"), "--quiet"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "missing.pt: no such file" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run(
        [str(script), "spectra"], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.startswith("usage: sklyap spectra")


# -- found in review: layouts of traced modules, custom cells, bad archives ---------------


class TwoNetworks(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.GRU(3, 4)
        self.decoder = nn.LSTM(3, 5)


class LayerNormCell(nn.Module):
    """A custom cell with PyTorch's parameter names and submodules of its own."""

    def __init__(self):
        super().__init__()
        self.weight_ih = nn.Parameter(torch.randn(16, 3))
        self.weight_hh = nn.Parameter(torch.randn(16, 4))
        self.norm = nn.LayerNorm(16)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_traced_module_has_no_layout_of_its_own(tmp_path):
    torch.manual_seed(6)
    lstm = nn.LSTM(3, 5, batch_first=True)
    traced = torch.jit.trace(lstm, torch.randn(2, 7, 3))
    assert as_dynamics(traced).batch_first is None  # traced modules lose batch_first
    x = _inputs(B=4, T=130)
    expected = lyapunov_spectrum(lstm, x, device="cpu")
    for batch_first in (True, None):  # said, or the default for models without a layout
        got = lyapunov_spectrum(traced, x, batch_first=batch_first, device="cpu")
        np.testing.assert_array_equal(got.per_trajectory, expected.per_trajectory)
    path = _save(torch.jit.save, traced, tmp_path / "traced.pt")
    assert load_checkpoint(path, batch_first=True, weights_only=False).batch_first
    np.save(tmp_path / "x.npy", x.numpy())
    out = tmp_path / "s.json"
    assert main(["spectra", str(path), "--inputs", str(tmp_path / "x.npy"), "--batch-first",
                 "--unsafe-load", "--device", "cpu", "--output", str(out), "--quiet"]) == 0  # fmt: skip
    row = json.loads(out.read_text())[0]
    np.testing.assert_allclose(row["exponents"], expected.exponents, rtol=0, atol=1e-15)


def test_a_custom_cell_with_submodules_is_refused_not_misread():
    with pytest.raises(ValueError, match="not a PyTorch nn.RNN/GRU/LSTM or cell.*from_step"):
        module_from_state_dict({f"cell.{k}": v for k, v in LayerNormCell().state_dict().items()})


def test_non_tensor_entries_beside_the_weights_are_ignored():
    torch.manual_seed(7)
    gru = nn.GRU(3, 4)
    state = {**gru.state_dict(), "_extra_state": {"version": 2}}
    built = module_from_state_dict(state)
    assert torch.equal(built.weight_hh_l0, gru.weight_hh_l0)


def test_a_corrupt_torchscript_archive_is_a_clear_error(tmp_path):
    import zipfile

    path = tmp_path / "broken.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/code/__torch__.py", "not code")
    with pytest.raises(ValueError, match="broken.pt: not a readable TorchScript archive"):
        load_checkpoint(path, weights_only=False)


def test_command_line_rnn_option_for_whole_models_and_nan_rows_in_json(tmp_path, capsys):
    torch.manual_seed(8)
    two = TwoNetworks()
    torch.save(two, tmp_path / "two.pt")
    broken = TwoNetworks()  # a state_dict this time, its decoder holding a NaN
    with torch.no_grad():
        broken.decoder.weight_hh_l0[0, 0] = float("nan")
    torch.save(broken.state_dict(), tmp_path / "nan.pt")
    out = tmp_path / "s.json"
    code = main(["spectra", str(tmp_path / "two.pt"), str(tmp_path / "nan.pt"), "--unsafe-load",
                 "--rnn", "decoder", "--n-steps", "20", "--warmup", "5", "--device", "cpu",
                 "--output", str(out), "--quiet"])  # fmt: skip
    assert code == 1  # the NaN weights
    printed = capsys.readouterr().out
    assert "two.pt (LSTM 1x5)" in printed and "nan.pt (LSTM 1x5)" in printed

    def no_nan(constant):
        raise AssertionError(f"{constant} is not JSON")

    rows = json.loads(out.read_text(), parse_constant=no_nan)
    assert rows[0]["error"] is None and len(rows[0]["exponents"]) == 10
    assert "NaN or infinite" in rows[1]["error"] and rows[1]["exponents"] == [None] * 10


# -- safety: nothing runs on load, every file on its own -----------------------------


def _archive_that_writes(path, marker):
    """A TorchScript archive whose __setstate__, run as it loads, creates ``marker``."""

    class Planted(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(2))
            self.target = str(marker)

        @torch.jit.export
        def __getstate__(self):
            return (self.target, self.weight, self.training)

        @torch.jit.export
        def __setstate__(self, state: tuple[str, torch.Tensor, bool]):
            self.target = state[0]
            self.weight = state[1]
            self.training = state[2]
            # Maps the file shared, creating it, and writes into it.
            written = torch.from_file(self.target, shared=True, size=4, dtype=torch.uint8)
            self.weight = self.weight + written.fill_(65).sum()

        def forward(self, x):
            return x * self.weight

    torch.jit.save(torch.jit.script(Planted()), str(path))
    return path


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TorchScript is, in torch >= 2.10
def test_a_torchscript_archive_runs_no_code_unless_asked(tmp_path, capsys):
    marker = tmp_path / "written-by-the-file"
    path = _archive_that_writes(tmp_path / "lstm.pt", marker)
    torch.jit.load(str(path))  # the control: loading it does run its code
    assert marker.read_bytes() == b"AAAA"
    marker.unlink()
    with pytest.raises(ValueError, match=r"lstm.pt: is a TorchScript archive.*weights_only=False"):
        load_checkpoint(path)
    assert not marker.exists()
    out = tmp_path / "s.json"
    code = main(["spectra", str(path), "--device", "cpu", "--output", str(out), "--quiet"])
    assert code == 1 and not marker.exists()
    error = json.loads(out.read_text())[0]["error"]
    # The command line speaks in its own options.
    assert "--unsafe-load" in error and "weights_only" not in error


def test_a_file_that_is_not_a_checkpoint_gets_no_advice_to_load_it_unsafely(tmp_path, capsys):
    import pickle

    (tmp_path / "notes.pt").write_text("hello, not a checkpoint")
    with (tmp_path / "plain.pkl").open("wb") as f:
        pickle.dump({"a": 1}, f, protocol=4)  # a pickle, but not torch.save's
    for name in ("notes.pt", "plain.pkl"):
        with pytest.raises(ValueError, match=f"{name}: not a PyTorch checkpoint") as info:
            load_checkpoint(tmp_path / name)
        assert "weights_only" not in str(info.value)
    assert main(["spectra", str(tmp_path), "--device", "cpu", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "not a PyTorch checkpoint" in err and "unsafe" not in err and "weights_only" not in err


def _expanded_lstm(hidden, input_size=4):
    """An LSTM state_dict of stride-0 tensors: a few bytes on disk, any declared size."""
    one = torch.zeros(1)
    return {
        "weight_ih_l0": one.expand(4 * hidden, input_size),
        "weight_hh_l0": one.expand(4 * hidden, hidden),
        "bias_ih_l0": one.expand(4 * hidden),
        "bias_hh_l0": one.expand(4 * hidden),
    }


def test_declared_sizes_are_checked_before_anything_is_allocated(tmp_path, capsys):
    path = tmp_path / "huge.pt"
    torch.save(_expanded_lstm(100_000), path)
    assert path.stat().st_size < 10_000
    # 4e10 weights: 160 GB as float32 and 320 GB more as float64, far above the limit.
    with pytest.raises(
        MemoryError, match=r"huge.pt: .*an LSTM of input size 4, hidden size 100000 .* 447 GiB"
    ):
        load_checkpoint(path)
    small = nn.GRU(3, 4).state_dict()  # 3 * 4 * (3 + 4 + 2) = 108 weights, 12 bytes each
    assert isinstance(module_from_state_dict(small, max_bytes=108 * 12), nn.GRU)
    with pytest.raises(MemoryError, match="declares 108 weights"):
        module_from_state_dict(small, max_bytes=108 * 12 - 1)
    # On the command line: that file's row, the others measured and written.
    torch.save(nn.GRU(4, 3).state_dict(), tmp_path / "good.pt")
    out = tmp_path / "s.csv"
    code = main(["spectra", str(tmp_path), "--n-steps", "20", "--warmup", "5",
                 "--device", "cpu", "--output", str(out), "--quiet"])  # fmt: skip
    assert code == 1
    rows = {r["checkpoint"].rsplit("/", 1)[-1]: r for r in csv.DictReader(out.open())}
    assert "hidden size 100000" in rows["huge.pt"]["error"] and "GiB" in rows["huge.pt"]["error"]
    assert rows["good.pt"]["error"] == "" and rows["good.pt"]["lambda_3"] != ""


def test_the_engine_memory_is_checked_before_computing(tmp_path):
    torch.save(nn.LSTM(4, 64).state_dict(), tmp_path / "lstm.pt")
    out = tmp_path / "s.json"
    # 128 exponents of a state of 128, 8 trajectories, 8 bytes each: 8 * 8 * (128 * (4*128
    # + 128 + 2*4*64) + 8*128) = 9,502,720 bytes = 0.00885 GiB, over a limit of 1 MiB.
    code = main(["spectra", str(tmp_path / "lstm.pt"), "--max-memory", str(1 / 1024),
                 "--device", "cpu", "--output", str(out), "--quiet"])  # fmt: skip
    assert code == 1
    error = json.loads(out.read_text())[0]["error"]
    assert "LSTM 1x64 (state size 128, 128 exponents, 8 trajectories) needs 0.00885 GiB" in error


@pytest.mark.parametrize(
    "shapes, match",
    [
        ({"weight_ih_l0": (4, 3), "weight_hh_l0": (4, 0)}, "declare a hidden size of 0"),
        ({"weight_ih_l0": (8, 0), "weight_hh_l0": (8, 2)}, "declare a input size of 0"),
    ],
)
def test_a_size_of_0_is_refused_by_name(shapes, match):
    state = {k: torch.zeros(shape) for k, shape in shapes.items()}
    with pytest.raises(ValueError, match=match):
        module_from_state_dict(state)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int64])
def test_weights_that_are_not_real_floats_are_refused(dtype):
    state = {
        k: v.to(dtype) if k == "weight_hh_l0" else v for k, v in nn.RNN(3, 4).state_dict().items()
    }
    with pytest.raises(ValueError, match=f"weight_hh_l0 holds {dtype} numbers"):
        module_from_state_dict(state)


def test_mixed_dtypes_are_read_as_stored_never_cast_down():
    torch.manual_seed(9)
    lstm = nn.LSTM(3, 4).double()
    state = lstm.state_dict()
    state["weight_hh_l0"] = state["weight_hh_l0"].half()  # one float16 tensor among float64
    built = module_from_state_dict(state)
    assert built.weight_ih_l0.dtype == F64
    # float64 weights kept bit for bit (cast down to float16 first, they would not be).
    assert torch.equal(built.weight_ih_l0, lstm.weight_ih_l0)
    assert not torch.equal(lstm.weight_ih_l0.half().double(), lstm.weight_ih_l0)
    assert torch.equal(built.weight_hh_l0, state["weight_hh_l0"].double())  # exact: widening


def test_one_file_failing_in_any_way_costs_the_others(checkpoints, tmp_path, monkeypatch, capsys):
    import sklyap.checkpoints
    import sklyap.lyapunov

    folder, _ = checkpoints
    load, spectrum = sklyap.checkpoints.load_checkpoint, sklyap.lyapunov.lyapunov_spectrum

    def load_or_fail(path, **kwargs):
        if path.name == "b_lstm.pt":  # an error no check foresaw
            raise ZeroDivisionError("integer division or modulo by zero")
        return load(path, **kwargs)

    def spectrum_or_fail(systems, *args, **kwargs):
        if any(s.state_size == 5 for s in systems):  # c_rnn.pth, at compute time
            raise RuntimeError("out of memory")
        return spectrum(systems, *args, **kwargs)

    monkeypatch.setattr(sklyap.checkpoints, "load_checkpoint", load_or_fail)
    monkeypatch.setattr(sklyap.lyapunov, "lyapunov_spectrum", spectrum_or_fail)
    torch.save(nn.GRU(3, 2).state_dict(), folder / "e_gru.pt")  # stacked with a_gru.pt
    out = tmp_path / "s.json"
    code = main(["spectra", str(folder), "--n-steps", "20", "--warmup", "5",
                 "--device", "cpu", "--output", str(out), "--quiet"])  # fmt: skip
    assert code == 1
    rows = {r["checkpoint"].rsplit("/", 1)[-1]: r for r in json.loads(out.read_text())}
    assert rows["b_lstm.pt"]["error"] == "ZeroDivisionError: integer division or modulo by zero"
    assert rows["c_rnn.pth"]["error"] == "RuntimeError: out of memory"
    for name in ("a_gru.pt", "e_gru.pt"):
        assert rows[name]["error"] is None and np.isfinite(rows[name]["exponents"]).all()


def test_the_output_path_is_checked_before_any_work(checkpoints, monkeypatch, capsys):
    import sklyap.checkpoints

    folder, _ = checkpoints
    monkeypatch.setattr(sklyap.checkpoints, "load_checkpoint", None)  # no call may reach it
    with pytest.raises(SystemExit) as exit_info:
        main(["spectra", str(folder), "--output", "/nonexistent/dir/x.csv"])
    assert exit_info.value.code == 2
    assert "--output /nonexistent/dir/x.csv: the folder /nonexistent/dir does not exist" in (
        capsys.readouterr().err
    )


def test_an_interrupted_run_keeps_what_it_finished(checkpoints, tmp_path, monkeypatch, capsys):
    import sklyap.cli.spectra
    import sklyap.lyapunov

    folder, _ = checkpoints
    spectrum, calls = sklyap.lyapunov.lyapunov_spectrum, []

    def interrupted_second_time(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return spectrum(*args, **kwargs)

    monkeypatch.setattr(sklyap.lyapunov, "lyapunov_spectrum", interrupted_second_time)
    monkeypatch.setattr(sklyap.cli.spectra, "_CHUNK", 1)
    out = tmp_path / "s.json"
    code = main(["spectra", str(folder), "--n-steps", "20", "--warmup", "5",
                 "--device", "cpu", "--output", str(out), "--quiet"])  # fmt: skip
    assert code == 130
    rows = json.loads(out.read_text())
    assert len(rows) == 3 and sum(len(r["exponents"]) > 0 for r in rows) == 1
    assert "holds the 1 measured so far" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--warmup", "60"],
            r"--inputs \S+x.npy: --warmup 60 leaves no measured step in inputs of 50 time "
            r"steps.*read as \(T, B, input_size\).*; pass --batch-first if they are",
        ),
        (["--warmup", "-1"], "expected an int >= 0, got -1"),
    ],
)
def test_the_command_line_speaks_in_its_own_options(argv, message, checkpoints, tmp_path, capsys):
    folder, _ = checkpoints
    np.save(tmp_path / "x.npy", np.zeros((50, 2, 3)))
    with pytest.raises(SystemExit) as exit_info:
        main(["spectra", str(folder), "--inputs", str(tmp_path / "x.npy"), *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "batch_first=" not in err


@pytest.mark.parametrize("name", ["n_exponents", "warmup", "n_jobs", "qr_interval"])
def test_options_refuse_what_the_library_refuses(name):
    # The command line reads its spectrum options through the library's own
    # table: a value passes on the command line exactly when the library takes it.
    import argparse

    from sklyap._validation import SPECTRUM_CONSTRAINTS, validate_params
    from sklyap.cli._options import constrained

    parse = constrained(*SPECTRUM_CONSTRAINTS[name])
    for text in ["-3", "-1", "0", "1", "7", "2.5", "auto", "none", "x"]:
        try:
            value = parse(text)
        except argparse.ArgumentTypeError as exc:
            value, refused = None, str(exc)
        else:
            refused = None
        if refused is None:
            validate_params({name: value}, {name: SPECTRUM_CONSTRAINTS[name]})
            assert str(value) == text
        else:
            assert refused.endswith(f"got {text!r}" if not text.lstrip("-").isdigit() else text)
            if text.lstrip("-").isdigit():
                with pytest.raises(ValueError, match=f"{name} must be .*, got {text}"):
                    validate_params({name: int(text)}, {name: SPECTRUM_CONSTRAINTS[name]})


def test_max_memory_is_read_in_gib():
    from sklyap.cli.spectra import _max_memory

    assert _max_memory("1.5") == 3 * 2**29 and _max_memory("auto") == "auto"
    for bad in ["0", "-1", "inf", "nan", "lots"]:
        with pytest.raises(Exception, match=r"expected 'auto' or a float > 0 \(GiB\)"):
            _max_memory(bad)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["study", "--n-jobs", "0"],
         r"--n-jobs: expected an int <= -1 or an int >= 1 \(1: one worker, -1: all cores"),
        (["spectra", "--random", "--hidden-size", "100000"],
         r"--hidden-size 100000 --input-size 4: the 6 networks' weights need [\d.]+e\+03 GiB"),
    ],
)  # fmt: skip
def test_sizes_and_workers_are_refused_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_module_with_complex_weights_is_refused_not_read_as_its_real_part():
    with warnings.catch_warnings():  # torch's own, that complex modules are experimental
        warnings.simplefilter("ignore", UserWarning)
        rnn = nn.RNN(3, 4).to(torch.complex64)
    with pytest.raises(ValueError, match="parameter 'weight_ih_l0' holds torch.complex64 numbers"):
        lyapunov_spectrum(rnn, _inputs(), device="cpu")


def test_a_compressed_archive_is_refused_before_torch_unpacks_it(tmp_path):
    import zipfile

    stored = tmp_path / "stored.pt"
    torch.save(
        {"weight_hh_l0": torch.zeros(4 * 512, 512), "weight_ih_l0": torch.zeros(2048, 3)}, stored
    )
    packed = tmp_path / "packed.pt"  # the same members, deflated: 8 MB of zeros in a few KB
    with zipfile.ZipFile(stored) as src, zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert packed.stat().st_size < 100_000
    with pytest.raises(MemoryError, match=r"packed.pt: its archive unpacks to 0.00\d+ GiB"):
        load_checkpoint(packed, max_bytes=2**20)


def test_a_failed_row_names_its_file_once(tmp_path, capsys):
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    out = tmp_path / "s.json"
    assert main(["spectra", str(tmp_path), "--output", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("junk.pt") == 1 and "junk.pt: not a PyTorch checkpoint" in err
    (row,) = json.loads(out.read_text())
    assert row["error"].startswith("not a PyTorch checkpoint") and "junk.pt" not in row["error"]


def test_an_interrupt_while_loading_keeps_the_rows_so_far(checkpoints, tmp_path, monkeypatch):
    import sklyap.checkpoints

    folder, _ = checkpoints
    load = sklyap.checkpoints.load_checkpoint

    def interrupted_at_the_second(path, **kwargs):
        if path.name == "b_lstm.pt":
            raise KeyboardInterrupt
        return load(path, **kwargs)

    monkeypatch.setattr(sklyap.checkpoints, "load_checkpoint", interrupted_at_the_second)
    out = tmp_path / "s.csv"
    assert main(["spectra", str(folder), "--output", str(out), "--quiet"]) == 130
    rows = list(csv.DictReader(out.open()))
    assert [r["model"] for r in rows] == ["GRU 1x4", "", ""]  # read before the interrupt


def test_a_single_trajectory_is_described_as_one(checkpoints, tmp_path, capsys):
    folder, _ = checkpoints
    np.save(tmp_path / "x.npy", np.zeros((50, 3)))
    for flag in ([], ["--batch-first"]):
        with pytest.raises(SystemExit):
            main(
                [
                    "spectra",
                    str(folder),
                    "--inputs",
                    str(tmp_path / "x.npy"),
                    "--warmup",
                    "60",
                    *flag,
                ]
            )
        err = capsys.readouterr().err
        assert "shape (50, 3) read as one trajectory (T, input_size))" in err
        assert "--batch-first" not in err.splitlines()[-1]


def test_the_safety_section_says_what_must_be_trusted():
    # The user guide's promise, held to what the code does: what runs code unless
    # asked is refused, and what must be trusted (any pickle, the cache's numbers)
    # is said to be.
    root = Path(__file__).resolve().parents[1]
    text = " ".join((root / "docs" / "models.md").read_text().split())
    safety = text[text.index("## Safety") :]
    for named in ("TorchScript", "torch.save(model)", "joblib.dump", "the cache folder"):
        assert named in safety, named
    assert "--unsafe-load" in safety and "weights_only=False" in safety
    assert (
        "trust"
        in " ".join((root / "docs" / "computation.md").read_text().split()).split("## The cache")[1]
    )


def test_the_command_draws_the_transformers_gaussian_inputs(checkpoints, tmp_path):
    """Without --inputs, a checkpoint's spectrum is the transformer's for the same
    seed and settings: one way of drawing Gaussian inputs."""
    from sklyap import LyapunovSpectrumTransformer

    folder, models = checkpoints
    out = tmp_path / "s.json"
    argv = ["spectra", str(folder / "a_gru.pt"), "--n-steps", "30", "--warmup", "5"]
    assert main([*argv, "--seed", "3", "--device", "cpu", "--output", str(out), "--quiet"]) == 0
    exponents = json.loads(out.read_text())[0]["exponents"]
    expected = LyapunovSpectrumTransformer(
        n_trajectories=8, n_steps=30, warmup=5, random_state=3, device="cpu"
    ).fit_transform([models["a_gru.pt"]])[0]
    np.testing.assert_allclose(exponents, expected, rtol=0, atol=1e-12)
