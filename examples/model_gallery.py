"""One small figure per neuron model, and an overview sheet of them all.

Each figure is one ``neurosim.simulate`` call (tensor parameters or a batch of
inputs): eif.png, qif.png, izhikevich.png, hodgkin_huxley.png, coba_lif.png and
rnnbuilder.png. With ``--outdir`` they are kept there (the documentation pages use
``--outdir docs/_static/models``); the overview sheet goes to ``--out``.

    python examples/model_gallery.py [--out model_gallery.png] [--outdir DIR] [--smoke]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import neurosim  # noqa: E402
from neurosim.models import IZHIKEVICH_PRESETS  # noqa: E402

F64 = torch.float64


def _step_input(steps: int, values: list[float], onset: int) -> torch.Tensor:
    x = torch.zeros(steps, len(values), dtype=F64)
    x[onset:] = torch.tensor(values, dtype=F64)
    return x


def _two_currents(model, currents, labels, ylabel, duration, out, dpi, dt=1e-5,
                  method="rk4", onset=0.01):
    """One panel: the membrane of ``model`` under two step currents."""
    x = _step_input(round(duration / dt), currents, round(onset / dt))
    res = neurosim.simulate(model, x, dt, method=method)
    fig, ax = plt.subplots(figsize=(6, 2.4), layout="constrained")
    for k, label in enumerate(labels):
        ax.plot(res.t.numpy() * 1e3, res.v[:, k].numpy(), lw=0.8, label=label)
    ax.set_xlabel("time (ms)", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    fig.savefig(out, dpi=dpi)


def eif(duration, out, dpi):
    _two_currents(neurosim.EIF(), [600.0, 900.0], ["I = 600 pA", "I = 900 pA"], "v (mV)",
                  duration, out, dpi)


def qif(duration, out, dpi):
    _two_currents(neurosim.QIF(v_reset=-0.5), [0.3, 0.6], ["I = 0.3", "I = 0.6"], "v",
                  duration, out, dpi, onset=0.0)


def izhikevich(duration, out, dpi):
    dt = 5e-5
    names = tuple(IZHIKEVICH_PRESETS)
    model = neurosim.Izhikevich(**{k: torch.tensor([IZHIKEVICH_PRESETS[n][k] for n in names],
                                                   dtype=F64) for k in "abcd"})
    res = neurosim.simulate(model, _step_input(round(duration / dt), [10.0] * len(names),
                                               round(0.01 / dt)), dt, method="rk4")
    fig, axes = plt.subplots(len(names), 1, figsize=(6, 7), sharex=True, layout="constrained")
    for k, (ax, name) in enumerate(zip(axes, names, strict=True)):
        ax.plot(res.t.numpy() * 1e3, res.v[:, k].numpy(), lw=0.7, color="k")
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("time (ms)", fontsize=8)
    fig.suptitle("Izhikevich (2003) classes, I = 10", fontsize=9)
    fig.savefig(out, dpi=dpi)


def hodgkin_huxley(duration, out, dpi):
    _two_currents(neurosim.HodgkinHuxley(), [5.0, 10.0], ["I = 5 µA/cm²", "I = 10 µA/cm²"],
                  "v (mV)", duration, out, dpi, method="exponential_euler")


def coba_lif(duration, out, dpi):
    dt = 1e-4
    steps = round(duration / dt)
    gen = torch.Generator().manual_seed(0)
    exc = (torch.rand(steps, 1, generator=gen, dtype=F64) < 0.3) * 3.0
    inh = (torch.rand(steps, 1, generator=gen, dtype=F64) < 0.1) * 6.0
    res = neurosim.simulate(neurosim.CobaLIF(), exc - inh, dt, method="exponential_euler",
                            record="all")
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(6, 3.4), sharex=True, layout="constrained")
    a1.plot(res.t.numpy() * 1e3, res.v[:, 0].numpy(), lw=0.8, color="k")
    a1.set_ylabel("v (mV)", fontsize=8)
    a2.plot(res.t.numpy() * 1e3, res.g_e[:, 0].numpy(), lw=0.8, label="g_e")
    a2.plot(res.t.numpy() * 1e3, res.g_i[:, 0].numpy(), lw=0.8, label="g_i")
    a2.set_ylabel("nS", fontsize=8)
    a2.set_xlabel("time (ms)", fontsize=8)
    a2.legend(fontsize=7, frameon=False)
    for ax in (a1, a2):
        ax.tick_params(labelsize=8)
    fig.savefig(out, dpi=dpi)


def rnnbuilder(duration, out, dpi):
    dt = 1e-3
    steps = round(duration / dt)
    t = torch.arange(steps, dtype=F64) * dt
    x = (1.6 * torch.sin(2 * torch.pi * 5.0 * t)).unsqueeze(1)
    models = {"NoReset (tau 20 ms)": neurosim.NoReset(),
              "Cooldown, sign +1 / -1": neurosim.Cooldown.alternating(2),
              "Discontinuous": neurosim.Discontinuous()}
    fig, axes = plt.subplots(3, 1, figsize=(6, 5), sharex=True, layout="constrained")
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        n = int(model.param_shape().numel()) if model.param_shape() else 1
        res = neurosim.simulate(model, x.expand(steps, n), dt, method="exponential_euler")
        ax.plot(t.numpy() * 1e3, x[:, 0].numpy(), lw=0.6, color="0.6", label="input")
        ax.plot(t.numpy() * 1e3, res.v[:, 0].numpy(), lw=0.8, color="k", label="v")
        for k in range(n):
            spikes = res.spikes[:, k].nonzero().squeeze(1).numpy()
            ax.plot(t.numpy()[spikes] * 1e3, [-1.6 - 0.3 * k] * len(spikes), "|", ms=4)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7, frameon=False, loc="upper right")
    axes[-1].set_xlabel("time (ms)", fontsize=8)
    fig.savefig(out, dpi=dpi)


FIGURES = {"eif": (eif, 0.1), "qif": (qif, 0.15), "izhikevich": (izhikevich, 0.2),
           "hodgkin_huxley": (hodgkin_huxley, 0.1), "coba_lif": (coba_lif, 0.2),
           "rnnbuilder": (rnnbuilder, 0.4)}


def overview(files: list[Path], out: str, dpi: int) -> None:
    """Tile the model figures into one sheet."""
    fig, axes = plt.subplots(2, 3, figsize=(12, 7), layout="constrained")
    for ax, path in zip(axes.ravel(), files, strict=True):
        ax.imshow(mpimg.imread(path))
        ax.set_title(path.stem.replace("_", " "), fontsize=9)
        ax.axis("off")
    fig.savefig(out, dpi=dpi)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="model_gallery.png", help="overview PNG")
    parser.add_argument("--outdir", default=None,
                        help="keep the per-model figures here (e.g. docs/_static/models)")
    parser.add_argument("--smoke", action="store_true", help="short runs, for tests")
    parser.add_argument("--dpi", type=int, default=72, help="figure resolution")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(args.outdir or tmp)
        outdir.mkdir(parents=True, exist_ok=True)
        files = []
        for name, (draw, duration) in FIGURES.items():
            files.append(outdir / f"{name}.png")
            draw(0.02 if args.smoke else duration, files[-1], args.dpi)
            plt.close("all")
            if args.outdir:
                print(f"wrote {files[-1]}")
        overview(files, args.out, args.dpi)
        plt.close("all")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
