"""Inputs are laid out as the model's forward takes them; one default warm-up everywhere."""

import numpy as np
import pytest
import torch
from torch import nn

from sklyap import LyapunovSpectrumTransformer, from_step, lyapunov_spectrum
from sklyap.dynamics import as_dynamics

F64 = torch.float64


def _lstm(batch_first, seed=0):
    torch.manual_seed(seed)
    return nn.LSTM(3, 8, num_layers=2, batch_first=batch_first).double()


def _twin(module):
    """The same weights, the other layout."""
    twin = type(module)(
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        batch_first=not module.batch_first,
    ).double()
    twin.load_state_dict(module.state_dict())
    return twin


def test_pytorch_default_layout_is_time_first_and_matches_forward():
    # The case: an nn.LSTM built with PyTorch's defaults, given (T, B, d).
    lstm = _lstm(batch_first=False)
    x = torch.randn(300, 4, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    result = lyapunov_spectrum(lstm, x, device="cpu")
    assert result.n_trajectories == 4 and result.n_steps == 200 and result.warmup == 100
    # The trajectory the engine followed is PyTorch's own: its final state is
    # what lstm(x) returns, laid out [h0, c0, h1, c1].
    with torch.no_grad():
        _, (h, c) = lstm(x)
    expected = torch.cat([h[0], c[0], h[1], c[1]], dim=1).numpy()
    np.testing.assert_allclose(result.final_state, expected, rtol=0, atol=1e-12)
    # The batch-first twin given the same trajectories batch first agrees exactly.
    twin = lyapunov_spectrum(_twin(lstm), x.transpose(0, 1), device="cpu")
    np.testing.assert_array_equal(twin.per_trajectory, result.per_trajectory)
    # And so does an explicit override of the layout.
    forced = lyapunov_spectrum(lstm, x.transpose(0, 1), batch_first=True, device="cpu")
    np.testing.assert_array_equal(forced.per_trajectory, result.per_trajectory)


def test_a_layout_that_cannot_be_right_says_which_was_assumed():
    lstm = _lstm(batch_first=False)
    x = torch.randn(4, 300, 3, dtype=F64)  # batch first, but the LSTM is not
    with pytest.raises(
        ValueError,
        match=r"warmup=100 leaves no measured step in inputs of 4 "
        r"time steps.*read as \(T, B, input_size\), as the model's "
        r"batch_first=False says; pass batch_first=True",
    ):
        lyapunov_spectrum(lstm, x, device="cpu")
    with pytest.raises(ValueError, match=r"as batch_first=True says; pass batch_first=False"):
        lyapunov_spectrum(lstm, x.transpose(0, 1)[:50], batch_first=True, device="cpu")
    with pytest.raises(TypeError, match="batch_first must be one of True, False, None, got 'yes'"):
        lyapunov_spectrum(lstm, x, batch_first="yes", device="cpu")


def test_cells_and_step_functions_take_trajectories_first():
    torch.manual_seed(1)
    cell = nn.GRUCell(3, 5).double()
    x = torch.randn(2, 130, 3, dtype=F64)
    result = lyapunov_spectrum(cell, x, device="cpu")
    assert result.n_trajectories == 2
    assert as_dynamics(cell).batch_first is None
    assert from_step(lambda s, u: 0.5 * s, 2).batch_first is None


def test_a_list_of_models_that_disagree_needs_the_layout_said():
    models = [_lstm(False), _lstm(True), nn.GRUCell(3, 4)]
    x = torch.randn(150, 2, 3, dtype=F64)
    with pytest.raises(
        ValueError,
        match=r"models \[1\] take batch_first=True .* models \[0\] "
        r"batch_first=False .*pass batch_first=",
    ):
        lyapunov_spectrum(models, x, device="cpu")
    both = lyapunov_spectrum(models, x, batch_first=False, device="cpu")
    assert [r.n_trajectories for r in both] == [2, 2, 2]
    np.testing.assert_array_equal(both[0].per_trajectory, both[1].per_trajectory)  # same weights


def test_transformer_follows_the_models_and_keeps_inputs_trajectories_first():
    lstm = _lstm(False)
    x = np.random.RandomState(0).randn(150, 3, 3)  # (T, B, d)
    lst = LyapunovSpectrumTransformer(inputs=x, device="cpu").fit([lstm])
    assert lst.batch_first_ is False and lst.inputs_.shape == (3, 150, 3)
    np.testing.assert_array_equal(lst.inputs_, x.swapaxes(0, 1))
    features = lst.transform([lstm])
    expected = lyapunov_spectrum(lstm, x, device="cpu").exponents
    np.testing.assert_array_equal(features[0], expected)
    # Models with the other convention, at transform: an error, not a silent misreading.
    with pytest.raises(ValueError, match="the models take batch_first=True inputs, but fit read"):
        lst.transform([_lstm(True)])
    # Said explicitly, both conventions are measured on the same trajectories.
    lst = LyapunovSpectrumTransformer(inputs=x, batch_first=False, device="cpu")
    features = lst.fit_transform([lstm, _twin(lstm)])
    np.testing.assert_array_equal(features[0], features[1])
    with pytest.raises(ValueError, match=r"read as \(T, B, input_size\), as the model's"):
        LyapunovSpectrumTransformer(inputs=x.swapaxes(0, 1)).fit([lstm])


def test_one_default_warmup_for_the_function_the_transformer_and_the_command_line():
    from sklyap.cli import build_parser

    lstm = _lstm(True)
    x = torch.randn(2, 130, 3, dtype=F64)
    assert lyapunov_spectrum(lstm, x, device="cpu").warmup == 100
    lst = LyapunovSpectrumTransformer(inputs=x.numpy(), device="cpu").fit([lstm])
    assert lst.compute_spectra([lstm])[0].warmup == 100
    assert build_parser().parse_args(["spectra", "x.pt"]).warmup == 100
