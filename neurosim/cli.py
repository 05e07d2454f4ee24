"""The ``neurosim`` command.

Subcommands:

* ``neurosim demo [--out demo.png]``: one LIF neuron under each integrator, a PNG of
  the membrane traces (seconds on CPU).
* ``neurosim run CONFIG.toml [--out PREFIX]``: simulate the model, input and settings of
  a TOML file (see :mod:`neurosim.config`); writes ``PREFIX.npz`` and ``PREFIX.png``.
* ``neurosim models [NAME ...]``: the models with their parameters, defaults and units.

Exit status: 0 on success, 2 on bad input or a run that diverged
(:class:`neurosim.errors.SimulationDiverged`); the message goes to stderr, without a
traceback. Runs estimated to need more than ``--max-memory`` (default 4 GiB) are refused
before anything is allocated.

Adding a subcommand takes a few lines: write ``_add_NAME(sub)`` that creates its parser
with ``sub.add_parser(...)`` and sets ``func`` (``args -> exit code``) with
``set_defaults``, and append it to :data:`COMMANDS`. Raise ``ValueError`` (or
:class:`neurosim.config.ConfigError`) for bad input: :func:`main` turns it into exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path


def _use_agg() -> None:
    import matplotlib

    matplotlib.use("Agg")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


#: the largest ``--dpi``: a figure of 8 x 7 inches is then 8000 x 7000 pixels (224 MB)
MAX_DPI = 1000


def _dpi(text: str) -> float:
    value = _positive(text)
    if not 1 <= value <= MAX_DPI:
        raise argparse.ArgumentTypeError(f"expected a resolution between 1 and {MAX_DPI} dpi, "
                                         f"got {text!r}")
    return value


def _memory(text: str) -> int:
    from ._checks import parse_memory_size

    try:
        return parse_memory_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# --------------------------------------------------------------------------------------
# neurosim demo
# --------------------------------------------------------------------------------------
def _demo(args: argparse.Namespace) -> int:
    _use_agg()
    import matplotlib.pyplot as plt
    import torch

    from . import LIF, simulate
    from ._checks import check_memory

    dt = args.dt
    ratio = args.duration / dt
    if not math.isfinite(ratio):
        raise ValueError(f"--duration {args.duration} s / --dt {dt} s is not a number of steps")
    steps = int(round(ratio))
    if steps < 1:
        raise ValueError(f"--duration {args.duration} s is shorter than one step --dt {dt} s")
    # three runs of one neuron: about 1.5 KiB per step each (the per-step tensors kept by
    # the time loop, measured), plus the plotted arrays
    check_memory(f"the demo ({steps} steps)", steps * 4096, args.max_memory, "--max-memory")
    model = LIF(tau_mem=20e-3, tau_syn=None, t_ref=2e-3)
    drive = torch.full((steps, 1), 1.5, dtype=torch.float64)
    exact_first = 20e-3 * math.log(3.0)  # tau ln(rI / (rI - v_th)) from rest
    methods = ("exact", "euler", "adaptive")
    fig, axes = plt.subplots(len(methods), 1, figsize=(8, 7), sharex=True, layout="constrained")
    for ax, method in zip(axes, methods, strict=True):
        res = simulate(model, drive, dt=dt, method=method)
        res.plot(ax=ax, label=method)
        first = res.spike_times[0][:1]
        if first.size:
            err = abs(first[0] - exact_first) * 1e3
            ax.set_title(f"method={method}: {res.spike_time.size} spikes, first at "
                         f"{first[0] * 1e3:.5f} ms (error {err:.1e} ms)", fontsize="medium")
        else:
            ax.set_title(f"method={method}: no spike", fontsize="medium")
        print(f"{method:>8}: {res.spike_time.size} spikes; first spike at "
              + (f"{first[0] * 1e3:.6f} ms" if first.size else "none"))
    for ax in axes[:-1]:
        ax.set_xlabel("")
    fig.suptitle(f"LIF: tau_mem = 20 ms, t_ref = 2 ms, constant input 1.5, dt = {dt * 1e3:g} ms"
                 f"\nclosed-form first spike at {exact_first * 1e3:.5f} ms")
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="simulate a LIF neuron with each integrator, write a PNG",
                       description="Simulate one LIF neuron (tau_mem = 20 ms, input 1.5) with "
                                   "the exact, Euler and adaptive integrators and write a PNG "
                                   "of the membrane traces.")
    p.add_argument("--out", default="demo.png", help="output PNG path (default: demo.png)")
    p.add_argument("--dt", type=_positive, default=1e-4, help="time step in s (default 1e-4)")
    p.add_argument("--duration", type=_positive, default=0.1,
                   help="simulated time in s (default 0.1)")
    p.add_argument("--max-memory", dest="max_memory", type=_memory, default=_MAX_MEMORY,
                   metavar="SIZE", help="refuse a demo estimated above SIZE (default 4G)")
    p.set_defaults(func=_demo)


# --------------------------------------------------------------------------------------
# neurosim run CONFIG.toml
# --------------------------------------------------------------------------------------
_MAX_MEMORY = 4 * 2**30  # neurosim._checks.DEFAULT_MEMORY_LIMIT, without importing torch
_RESERVED = ("t", "input", "spikes", "spike_index", "spike_time", "model", "config")


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    import neurosim

    from .config import load_toml, parse_run_config

    raw = load_toml(args.config)
    cfg = parse_run_config(raw, max_memory=args.max_memory)
    prefix = Path(args.out) if args.out else Path(Path(args.config).stem)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    res = neurosim.simulate(cfg.model, cfg.input, cfg.dt, cfg.method, record=cfg.record,
                   progress=args.progress, **cfg.options)
    arrays = {
        "t": res.t.cpu().numpy(),
        "input": cfg.input.cpu().numpy(),
        "spikes": res.spikes.detach().cpu().numpy(),
        "spike_index": res.spike_index,
        "spike_time": res.spike_time,
        "model": np.array(type(cfg.model).__name__),
        "config": np.array(json.dumps(raw, default=str)),
    }
    for name, trace in res.traces.items():
        arrays[f"trace_{name}" if name in _RESERVED else name] = trace.detach().cpu().numpy()
    npz = prefix.with_suffix(".npz")
    np.savez_compressed(npz, **arrays)
    print(f"{type(cfg.model).__name__}: {res.spike_time.size} spikes from "
          f"{int(np.prod(tuple(res.shape)))} neuron(s) in {res.duration:g} s "
          f"(method={res.method}, dt={res.dt:g} s)")
    print(f"wrote {npz}")
    if not args.no_plot:
        _use_agg()
        import matplotlib.pyplot as plt

        from .plot import plot_summary

        fig = plot_summary(res, input=cfg.input)
        png = prefix.with_suffix(".png")
        fig.savefig(png, dpi=args.dpi)
        plt.close(fig)
        print(f"wrote {png}")
    return 0


def _add_run(sub) -> None:
    p = sub.add_parser(
        "run", help="simulate a model described by a TOML file; write .npz and .png",
        description="Simulate the [model], [input] and [simulation] of a TOML file. Writes "
                    "PREFIX.npz (t, input, spikes, spike_index, spike_time and one array per "
                    "recorded state variable) and PREFIX.png.",
        epilog="Input kinds: constant, step, ramp, noisy, poisson. See the docs page 'The "
               "neurosim command' for every key.")
    p.add_argument("config", help="the TOML configuration file")
    p.add_argument("--out", default=None,
                   help="output path prefix (default: the config's name in the current folder)")
    p.add_argument("--no-plot", action="store_true", help="write the .npz only")
    p.add_argument("--dpi", type=_dpi, default=110,
                   help=f"PNG resolution, 1 to {MAX_DPI} (default 110)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--max-memory", dest="max_memory", type=_memory, default=_MAX_MEMORY,
                   metavar="SIZE",
                   help="refuse a run estimated above SIZE, e.g. 16G (default 4G)")
    p.set_defaults(func=_run)


# --------------------------------------------------------------------------------------
# neurosim models
# --------------------------------------------------------------------------------------
def _models(args: argparse.Namespace) -> int:
    from .config import describe_models

    print(describe_models(args.names))
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list the models with their parameters, defaults, units",
                       description="List every neuron model exported by neurosim with its "
                                   "parameters, defaults and units.")
    p.add_argument("names", nargs="*", help="only these models (e.g. LIF ALIF)")
    p.set_defaults(func=_models)


def _add_sweep(sub) -> None:
    from .sweep import add_cli

    add_cli(sub)


#: functions that each register one subcommand on the subparsers object
COMMANDS: list[Callable[..., None]] = [_add_demo, _add_run, _add_models, _add_sweep]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``neurosim`` command."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="neurosim", description="neurosim: continuous-time spiking-neuron simulator.",
        epilog="Run 'neurosim COMMAND --help' for the options of a command.")
    parser.add_argument("--version", action="version", version=f"neurosim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 success, 2 bad input or a diverged run, message
    on stderr)."""
    from .errors import SimulationDiverged, StiffnessError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2)
        return int(exc.code) if isinstance(exc.code, int) else 2
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        # warnings (StabilityWarning before a run, UnitWarning...) as one line on stderr
        print(f"neurosim {args.command}: {category.__name__}: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            return int(args.func(args))
    except (ValueError, OSError, SimulationDiverged, StiffnessError) as err:
        print(f"neurosim {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
