"""Draws the figures of docs/plotting.md into docs/_static/plotting/ (small PNGs, 80 dpi).

Run from the repository root: ``python docs/plotting_figures.py``. The "before" figures were
drawn once by the plotting code as it was before issue 17 and are kept as they are.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

import neurosim  # noqa: E402
from neurosim import inputs  # noqa: E402
from neurosim import plot as P  # noqa: E402

OUT = Path(__file__).resolve().parent / "_static" / "plotting"
DPI = 80


def adex_run() -> neurosim.Result:
    """The Brette-Gerstner (2005) AdEx cell under an 800 pA step, 300 ms."""
    drive = torch.full((3000, 1), 800.0, dtype=torch.float64)
    return neurosim.simulate(neurosim.AdEx(), drive, 1e-4, method="adaptive", record=("v", "w"))


def raster_run(n: int = 10_000) -> neurosim.Result:
    """n LIF neurons with a drive that grows with the neuron index, OU noise and a
    common 20 ms pulse at 150 ms: rates from 0 to about 60 Hz, and a synchronous volley."""
    steps, dt = 3000, 1e-4
    drive = torch.linspace(0.8, 1.6, n)
    u = drive + inputs.noise_current(steps, dt, std=0.6, tau=5e-3, shape=(n,), seed=1,
                                     dtype=torch.float32)
    u = u + inputs.step_current(steps, dt, 0.8, start=0.15, stop=0.17, shape=(n,),
                                dtype=torch.float32)
    return neurosim.simulate(neurosim.LIF(tau_mem=20e-3, t_ref=2e-3), u.float(), dt,
                             method="exact", precise=False, record=None)


def save(fig, path: Path) -> None:
    """Save small: 80 dpi, then a 32-colour palette (a third of the bytes, same look)."""
    fig.savefig(path, dpi=DPI)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - matplotlib depends on pillow
        return
    Image.open(path).convert("RGB").quantize(colors=32).save(path, optimize=True)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    before = os.environ.get("NEUROSIM_FIGURES_BEFORE") == "1"
    tag = "before" if before else "after"
    fig = P.plot_membrane(adex_run())
    fig.set_size_inches(7, 3)
    save(fig, OUT / f"adex_membrane_{tag}.png")
    fig = P.plot_raster(raster_run())
    fig.set_size_inches(7, 3.5)
    save(fig, OUT / f"raster_1e4_{tag}.png")


if __name__ == "__main__":
    main()
