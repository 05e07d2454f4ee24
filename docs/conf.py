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
# Equations render offline: the pip package sphinx-mathjax-offline (in the dev and docs
# extras) copies MathJax 3 into _static/mathjax and points mathjax_path at it, so the
# site needs no CDN. Without the package the pages load MathJax from its CDN.
if importlib.util.find_spec("sphinx-mathjax-offline"):
    extensions.append("sphinx-mathjax-offline")
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
# "Attributes:" sections as fields of the class, not object descriptions that would clash
# with the documented properties and NamedTuple fields of the same names
napoleon_use_ivar = True
napoleon_use_rtype = False

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = "neurosim"
html_static_path = ["_static"]
