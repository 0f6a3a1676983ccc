"""The declarative parameter checks: which values pass, and the error each other value gets."""

import numpy as np
import pytest

from sklyap._validation import (
    Interval,
    Options,
    PositiveInts,
    RandomStates,
    check_model_list,
    validate_params,
)


@pytest.mark.parametrize(
    "interval, inside, outside",
    [
        (Interval(int, 1, None), [1, 7, np.int64(3)], [0, -2]),
        (Interval(float, 0, 1, closed="left"), [0, 0.0, 0.5, np.float32(0.99)], [1, 1.0, -1e-9]),
        (Interval(float, 0, 1, closed="neither"), [1e-9, 0.5], [0.0, 1.0]),
        (Interval(float, None, 2, closed="right"), [-1e300, 2.0], [2.5]),
    ],
)
def test_interval_bounds(interval, inside, outside):
    assert all(interval.holds(v) for v in inside)
    assert not any(interval.holds(v) for v in outside)
    assert not interval.holds(float("nan")) and not interval.holds(True)


def test_interval_text():
    assert str(Interval(int, 1, None)) == "an int >= 1"
    assert str(Interval(float, 0, 1, closed="left")) == "a float in [0, 1)"
    assert str(Interval(float, 0, None, closed="neither")) == "a float > 0"
    assert str(Interval(float, None, 3)) == "a float <= 3"
    with pytest.raises(ValueError, match="closed must be"):
        Interval(int, 0, 1, closed="open")


def test_options_compare_types_not_just_values():
    auto = Options("auto", True, False)
    assert auto.holds("auto") and auto.holds(True) and auto.holds(np.bool_(False))
    # numpy's strings, as a column of a sweep table gives them, are strings.
    assert auto.holds(np.str_("auto")) and not auto.holds(np.str_("Auto"))
    assert auto.has_type(np.str_("Auto")) and not Options(None).has_type(np.str_("None"))
    # 1 == True in Python; here the int is not the boolean.
    assert not auto.holds(1) and not auto.holds(0) and not auto.holds("Auto")
    assert str(auto) == "one of 'auto', True, False" and str(Options(None)) == "None"


def test_sequences_and_random_states():
    assert PositiveInts().holds((64, 32)) and PositiveInts().holds(())
    assert not PositiveInts().holds((64, 0)) and not PositiveInts().holds("64")
    rs = RandomStates()
    assert rs.holds(None) and rs.holds(0) and rs.holds(np.random.RandomState(1))
    assert not rs.holds(-1) and not rs.holds(2**32) and not rs.holds(1.5)


def test_validate_params_names_the_value_and_what_was_expected():
    constraints = {
        "n": [Interval(int, 1, None)],
        "size": [Interval(int, 1, None), Options("auto")],
        "anything": "no_validation",
    }
    validate_params({"n": 3, "size": "auto", "anything": object()}, constraints)
    with pytest.raises(ValueError, match=r"^n must be an int >= 1, got 0$"):
        validate_params({"n": 0, "size": 4, "anything": None}, constraints)
    with pytest.raises(TypeError, match=r"^n must be an int >= 1, got 2.5$"):
        validate_params({"n": 2.5, "size": 4, "anything": None}, constraints)
    # A string of the wrong value is the right type (ValueError); a list is not (TypeError).
    with pytest.raises(ValueError, match=r"size must be an int >= 1 or 'auto', got 'big'"):
        validate_params({"n": 1, "size": "big", "anything": None}, constraints)
    with pytest.raises(TypeError, match=r"size must be an int >= 1 or 'auto', got \[4\]"):
        validate_params({"n": 1, "size": [4], "anything": None}, constraints)


def test_check_model_list():
    models = [object(), object()]
    assert check_model_list(models, "anything") == models
    assert check_model_list(tuple(models), "anything") == models
    assert check_model_list(np.array(models, dtype=object), "anything") == models
    with pytest.raises(TypeError, match=r"X must be a list of models \(RNNs\), got dict; wrap"):
        check_model_list({}, "RNNs")
    with pytest.raises(ValueError, match="X is an empty list"):
        check_model_list([], "RNNs")


@pytest.mark.parametrize(
    "name, value",
    [
        ("n_exponents", 0),
        ("n_exponents", 2.0),
        ("warmup", -1),
        ("batch_first", "yes"),
        ("qr_interval", "fast"),
        ("qr_interval", 0),
        ("memory_budget", 1.5),
        ("on_error", "skip"),
        ("num_threads", 0),
        ("verbose", -2),
    ],
)
def test_function_and_transformer_say_the_same_of_a_bad_setting(name, value):
    import torch
    from torch import nn

    from sklyap import LyapunovSpectrumTransformer, lyapunov_spectrum

    gru = nn.GRU(2, 3, batch_first=True)
    with pytest.raises((TypeError, ValueError)) as from_function:
        lyapunov_spectrum(gru, torch.zeros(1, 30, 2), **{"warmup": 5, "device": "cpu", name: value})
    with pytest.raises((TypeError, ValueError)) as from_transformer:
        LyapunovSpectrumTransformer(**{"warmup": 5, name: value}).fit([gru])
    assert from_function.type is from_transformer.type
    assert str(from_function.value) == str(from_transformer.value)
    assert str(from_function.value).startswith(f"{name} must be ")
    assert str(from_function.value).endswith(f"got {value!r}")


def _bad_value_calls():
    from torch import nn

    from sklyap import load_checkpoint, module_from_state_dict, resample_spectra
    from sklyap.callbacks import SpectrumTracker
    from sklyap.datasets import RecurrentClassifier, load_char_text, load_sequential_digits
    from sklyap.study import run_sweep

    state = nn.GRU(2, 3).state_dict()
    V, T = ValueError, TypeError  # a value of an accepted type out of range; a wrong type
    return [
        (lambda v: run_sweep("digits", keep=v), "keep", [(0, V), (1.5, V), ("0.1", T)]),
        (lambda v: RecurrentClassifier(2, 3, 2, init_scale=v), "init_scale", [(0.0, V), ("2", T)]),
        (lambda v: RecurrentClassifier(2, 3, 2, cell=v), "cell", [("lstm", V), (3, T)]),
        (
            lambda v: SpectrumTracker(max_fraction=v).update(nn.GRU(2, 3)),
            "max_fraction",
            [(0, V), ("1", T)],
        ),
        (lambda v: resample_spectra([[0.0, -1.0]], v), "n_features", [(0, V), (2.5, T)]),
        (lambda v: load_sequential_digits(mode=v), "mode", [("column", V), (None, T)]),
        (lambda v: load_char_text(encoding=v), "encoding", [("bytes", V), (1, T)]),
        (
            lambda v: module_from_state_dict(state, nonlinearity=v),
            "nonlinearity",
            [("sigmoid", V)],
        ),
        (lambda v: module_from_state_dict(state, batch_first=v), "batch_first", [(1, T)]),
        (lambda v: load_checkpoint(state, weights_only=v), "weights_only", [(0, T), (None, T)]),
    ]


BAD_VALUE_CALLS = _bad_value_calls()


@pytest.mark.parametrize(
    "call, name, cases", BAD_VALUE_CALLS, ids=[name for _, name, _ in BAD_VALUE_CALLS]
)
def test_every_entry_point_says_the_same_of_a_bad_value(call, name, cases):
    """One voice: the name, what was expected and the value, raised before any work."""
    for value, error in cases:
        with pytest.raises((TypeError, ValueError)) as info:
            call(value)
        message = str(info.value)
        assert info.type is error, (value, message)
        assert message.startswith(f"{name} must be "), message
        assert message.endswith(f", got {value!r}"), message


def test_numpy_scalars_pass_and_reach_torch_as_python_values():
    from torch import nn

    from sklyap import module_from_state_dict
    from sklyap.datasets import RecurrentClassifier

    state = nn.GRU(2, 3).state_dict()
    gru = module_from_state_dict(state, nonlinearity=np.str_("tanh"), batch_first=np.True_)
    assert gru.batch_first is True
    model = RecurrentClassifier(2, 3, 2, cell=np.str_("GRU"), init_scale=np.float32(2.0))
    assert isinstance(model.rnn, nn.GRU)
