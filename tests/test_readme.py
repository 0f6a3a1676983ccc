"""The README's example runs as written."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "the README has no python example"
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert namespace["X"].shape == (3, 32)
    result = namespace["result"]
    assert result.exponents.shape == (128,)
    assert np.all(np.diff(result.exponents) <= 0) and result.exponents[0] < 0


def test_readme_sweep_example_runs_and_drops_the_network_that_diverges():
    import warnings

    import torch
    from torch import nn

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    sweep = [b for b in blocks if "on_error=" in b]
    assert len(sweep) == 1
    torch.manual_seed(0)
    models = [cls(3, size) for cls in (nn.GRU, nn.LSTM, nn.RNN) for size in (4, 6, 8)]
    with torch.no_grad():  # a ReLU network whose state overflows
        diverging = nn.RNN(3, 4, nonlinearity="relu")
        diverging.weight_hh_l0.copy_(1e8 * torch.eye(4))
        diverging.bias_hh_l0.fill_(1.0)
    models.insert(4, diverging)
    namespace = {"models": models, "accuracy": np.linspace(0.2, 0.9, len(models))}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(sweep[0], str(README), "exec"), namespace)
    assert any("1 of 10 models could not be measured" in str(w.message) for w in caught)
    assert namespace["kept"].tolist() == [i != 4 for i in range(10)]
    assert namespace["X"].shape == (10, 32)
