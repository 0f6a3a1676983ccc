"""Every example script runs, with small settings, and writes its figure."""

import json
import runpy
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The settings that run each example in seconds; the docs build runs the
# examples with them too (docs/_gallery.py).
SMALL = json.loads((EXAMPLES / "small_settings.json").read_text())


def test_every_example_has_small_settings():
    assert sorted(p.name for p in EXAMPLES.glob("plot_*.py")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_example_runs(name, tmp_path, monkeypatch, capsys):
    out = tmp_path / "figure.png"
    monkeypatch.setenv("SKLYAP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", [name, *SMALL[name], "--out", str(out)])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    assert out.stat().st_size > 10_000
    assert f"saved {out}" in capsys.readouterr().out
