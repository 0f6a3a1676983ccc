"""The gallery runs each example with the small settings the tests run it with
(examples/small_settings.json), writing its figure file to a scratch folder."""

import json
import tempfile
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SMALL = json.loads((EXAMPLES / "small_settings.json").read_text())
SCRATCH = Path(tempfile.mkdtemp(prefix="sklyap-gallery-"))


def small_settings(gallery_conf, script_vars):
    """sphinx-gallery's ``reset_argv``: the command-line arguments of one example."""
    name = Path(script_vars["src_file"]).name
    return [*SMALL[name], "--out", str(SCRATCH / Path(name).with_suffix(".png"))]
