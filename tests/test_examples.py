"""Every script in examples/ runs in smoke mode (--smoke --out PNG) with the Agg backend.

The scripts run in this process through runpy (a subprocess per script would spend
seconds importing torch each time); each must write a non-blank PNG.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


def test_there_are_at_least_five_examples():
    names = {p.stem for p in EXAMPLES}
    assert len(EXAMPLES) >= 5
    assert {"lif_integrators", "fi_curve", "population_raster", "phase_plane",
            "train_tiny"} <= names


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_in_smoke_mode(script, tmp_path, monkeypatch, capsys):
    out = tmp_path / f"{script.stem}.png"
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(sys, "argv", [str(script), "--smoke", "--out", str(out)])
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        plt.close("all")
    assert f"wrote {out}" in capsys.readouterr().out
    assert out.stat().st_size > 15_000
    img = mpimg.imread(out)
    assert img.shape[0] > 200 and img.shape[1] > 300
    assert img[..., :3].std() > 0.05  # something was drawn
