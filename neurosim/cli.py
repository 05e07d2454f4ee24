"""The ``neurosim`` command.

``neurosim demo [--out demo.png]`` simulates one LIF neuron under each
integrator and writes a figure of the membrane traces.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from . import LIF, simulate

    dt = args.dt
    steps = int(round(args.duration / dt))
    model = LIF(tau_mem=20e-3, tau_syn=None, t_ref=2e-3)
    drive = torch.full((steps, 1), 1.5, dtype=torch.float64)
    methods = ("exact", "euler", "adaptive")
    fig, axes = plt.subplots(len(methods), 1, figsize=(8, 7), sharex=True, layout="constrained")
    for ax, method in zip(axes, methods, strict=True):
        res = simulate(model, drive, dt=dt, method=method)
        res.plot(ax=ax, label=method)
        first = res.spike_times[0][:1]
        ax.set_title(f"method={method}: {res.spike_time.size} spikes, first at "
                     f"{first[0] * 1e3:.5f} ms" if first.size else f"method={method}")
        print(f"{method:>8}: {res.spike_time.size} spikes; first spike at "
              + (f"{first[0] * 1e3:.6f} ms" if first.size else "none"))
    for ax in axes[:-1]:
        ax.set_xlabel("")
    fig.suptitle(f"LIF, tau_mem = 20 ms, constant input 1.5, dt = {dt * 1e3:g} ms")
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neurosim`` command."""
    parser = argparse.ArgumentParser(prog="neurosim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a LIF neuron with each integrator, write a PNG")
    demo.add_argument("--out", default="demo.png", help="output PNG path (default: demo.png)")
    demo.add_argument("--dt", type=_positive, default=1e-4, help="time step in s (default 1e-4)")
    demo.add_argument("--duration", type=_positive, default=0.1,
                      help="simulated time in s (default 0.1)")
    demo.set_defaults(func=_demo)
    from .sweep import add_cli as add_sweep_cli  # `neurosim sweep CONFIG.toml` (issue 6)
    add_sweep_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 success, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"neurosim: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
