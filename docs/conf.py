"""Sphinx configuration of sklyap's user guide and API reference.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` (CI does).
"""

import sys
from pathlib import Path

import sklyap

sys.path.insert(0, str(Path(__file__).parent))  # docs/_gallery.py

project = "sklyap"
author = "sklyap developers"
release = version = sklyap.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "results", "README.md", "_gallery.py"]
myst_heading_anchors = 3

autosummary_generate = True
templates_path = ["_templates"]
autodoc_default_options = {"members": True}

# scikit-learn's metadata-routing setters (set_*_request) and the parameter and
# output configuration of every estimator are left to scikit-learn's documentation.
_SKLEARN_MEMBERS = {"get_metadata_routing", "get_params", "set_params", "set_output"}


def _skip_sklearn_members(app, what, name, obj, skip, options):
    if name in _SKLEARN_MEMBERS or (name.startswith("set_") and name.endswith("_request")):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_members)


numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# The gallery runs every example, with the small settings the tests use, and
# shows its figure.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "reset_argv": "_gallery.small_settings",
    "download_all_examples": False,
}

html_theme = "alabaster"
html_title = "sklyap"
