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
