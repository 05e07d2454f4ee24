"""The documentation builds with Sphinx, warnings as errors, and contains what it should."""

from __future__ import annotations

import html as html_lib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GALLERY = ("lif_integrators", "fi_curve", "population_raster", "phase_plane", "train_tiny")


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> Path:
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = tmp_path_factory.mktemp("docs") / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         str(DOCS), str(out), "-d", str(out.parent / "doctrees")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**__import__("os").environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_docs_build_without_warnings_and_include_every_page(html):
    pages = [p.relative_to(DOCS).with_suffix(".html") for p in DOCS.rglob("*.md")
             if "_build" not in p.parts]
    for page in pages:
        assert (html / page).exists(), page
    index = (html / "index.html").read_text()
    # glob toctrees: every model, example and guide page is linked from the index
    for page in pages:
        if page.name != "index.html":
            assert f'href="{page.as_posix()}"' in index, page


def test_api_reference_is_generated_from_docstrings(html):
    api = (html / "reference" / "api.html").read_text()
    for name in ("neurosim.simulate", "neurosim.LIF", "neurosim.Result.plot",
                 "neurosim.plot.plot_phase_plane", "neurosim.plot.fi_curve",
                 "neurosim.config.build_input", "neurosim.cli.main",
                 # every public module (issue 17): nn, analysis, units, inputs, ...
                 "neurosim.nn.LIFLayer", "neurosim.nn.max_membrane_cross_entropy",
                 "neurosim.analysis.fi_curve", "neurosim.analysis.cv_isi",
                 "neurosim.units.parse_unit", "neurosim.inputs.noise_current",
                 "neurosim.surrogate.get_surrogate", "neurosim.conventions.snntorch_leaky",
                 "neurosim.fused.run", "neurosim.errors.SimulationDiverged",
                 "module-neurosim.models.integrate_and_fire", "module-neurosim.step",
                 "neurosim.conventions.PeerStep", "module-neurosim.peer_step"):
        assert f'id="{name}"' in api, name
    assert "membrane time constant" in api  # napoleon rendered the Args sections


def test_example_pages_show_script_and_figure(html):
    for name in GALLERY:
        png = DOCS / "_static" / "examples" / f"{name}.png"
        assert png.exists() and 8_000 < png.stat().st_size < 300_000, png
        page = (html / "examples" / f"{name}.html").read_text()
        assert f"{name}.png" in page
        text = html_lib.unescape(re.sub(r"<[^>]+>", "", page))
        assert "def main() -> None:" in text  # the literalinclude of the script
    math_page = (html / "models" / "lif.html").read_text()
    assert "\\tau_\\mathrm{mem}" in math_page  # dollarmath kept the LaTeX for MathJax


def test_math_renders_offline(html):
    """MathJax ships inside the built site (sphinx-mathjax-offline), not from a CDN."""
    page = (html / "models" / "lif.html").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', page, flags=re.IGNORECASE)
    assert scripts and all("://" not in src for src in scripts), scripts
    local = (html / "models" / scripts[0].split("?")[0]).resolve()
    assert local.exists() and local.stat().st_size > 100_000, local
    assert (local.parent / "output" / "chtml" / "fonts").is_dir()
