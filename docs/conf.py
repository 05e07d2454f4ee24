"""Sphinx configuration of the neurosim documentation (MyST markdown + autodoc).

Build: ``sphinx-build -W -b html docs docs/_build/html`` (tests/test_docs.py does it).
Pages are found by glob toctrees in index.md: any new ``docs/*.md`` (listed after
"getting-started" and "concepts", alphabetically),
``docs/models/*.md`` or ``docs/examples/*.md`` appears without editing this file.
"""

from __future__ import annotations

import importlib.util
import os
import sys

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

project = "neurosim"
author = "neurosim developers"
copyright = "neurosim developers"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["dollarmath", "amsmath", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = "neurosim"
html_static_path = ["_static"]
