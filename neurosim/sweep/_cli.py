"""``neurosim sweep CONFIG.toml``: a sweep described in a TOML file.

Example ``fi.toml``::

    model = "LIF"
    input = "I"                 # a number, a swept name, or an [input] table
    dt = 1e-3                   # s
    duration = 1.0              # s
    method = "exact"
    measures = ["rate", "latency", "cv"]

    [base]                      # fixed model parameters
    t_ref = 2e-3

    [grid]                      # or [random] / [[points]]
    tau_mem = [0.01, 0.02, 0.04]
    I = { start = 0.5, stop = 4.0, num = 36 }

    [run]                       # how to run (does not change the results)
    out = "fi_sweep"            # relative to the TOML file
    executor = "process"        # "inprocess", "process" or "dask" (a local cluster)
    workers = 2

A file is data, never code: names resolve only among neurosim's own unless a module is
allowed on the command line (``--allow-module mypkg``), and a scheduler address
(``tcp://...``) is accepted only from ``--executor``, never from the file.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._core import Sweep
from ._run import SweepWarning, run_sweep
from ._space import Points, Random, space_from_dict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_SWEEP_KEYS = {"model", "input", "dt", "duration", "method", "measures", "record", "seed",
               "dtype", "base", "options", "grid", "random", "points", "run"}
_RUN_KEYS = {"out", "executor", "workers", "threads", "chunk_size", "max_memory",
             "max_result_memory"}
#: executors a configuration file may choose (all local); addresses only from the CLI
_FILE_EXECUTORS = ("inprocess", "process", "dask")


def _check_run(run: Any) -> dict[str, Any]:
    if not isinstance(run, Mapping):
        raise ValueError(f"config: [run] must be a table, got {run!r}")
    run = dict(run)
    bad = set(run) - _RUN_KEYS
    if bad:
        raise ValueError(f"config: unknown keys in [run]: {sorted(bad)}; allowed: "
                         f"{sorted(_RUN_KEYS)}")
    if "out" in run and not isinstance(run["out"], str):
        raise ValueError(f"config: run.out must be a folder name (a string), got {run['out']!r}")
    if "executor" in run:
        ex = run["executor"]
        if isinstance(ex, str) and "://" in ex:
            raise ValueError(f"config: run.executor = {ex!r}: a scheduler address is accepted "
                             f"only on the command line (--executor {ex}), never from a "
                             f"config file")
        if ex not in _FILE_EXECUTORS:
            raise ValueError(f"config: run.executor must be one of {_FILE_EXECUTORS}, got "
                             f"{ex!r}")
    for key in ("workers", "threads", "chunk_size", "max_memory", "max_result_memory"):
        v = run.get(key, 1)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"config: run.{key} must be an integer >= 1, got {v!r}")
    return run


def sweep_from_config(config: Mapping[str, Any], allow_modules: Sequence[str] | str = ()
                      ) -> tuple[Sweep, dict[str, Any]]:
    """A :class:`Sweep` and the ``run_sweep`` keyword arguments from a parsed TOML dict.

    Args:
        config: the parsed TOML.
        allow_modules: modules whose functions and classes the file may name as
            ``"module:qualname"`` (the ``--allow-module`` option); none by default.

    Raises:
        ValueError: any invalid entry, a name outside neurosim's registries and
            ``allow_modules``, or a scheduler address in ``[run]``.
    """
    try:
        return _sweep_from_config(config, allow_modules)
    except (TypeError, AttributeError, KeyError, IndexError) as err:  # wrongly typed values
        raise ValueError(f"config: invalid value ({type(err).__name__}: {err})") from None


def _sweep_from_config(config: Mapping[str, Any], allow_modules: Sequence[str] | str
                       ) -> tuple[Sweep, dict[str, Any]]:
    if not isinstance(config, Mapping):
        raise ValueError(f"config: must be a table, got {type(config).__name__}")
    unknown = set(config) - _SWEEP_KEYS
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; allowed: {sorted(_SWEEP_KEYS)}")
    spaces = [k for k in ("grid", "random", "points") if k in config]
    if len(spaces) != 1:
        raise ValueError(f"config: give exactly one of [grid], [random] or [[points]], got "
                         f"{spaces or 'none'}")
    kind = spaces[0]
    if kind in ("grid", "random") and not isinstance(config[kind], Mapping):
        raise ValueError(f"config: [{kind}] must be a table, got {config[kind]!r}")
    if kind == "points" and (not isinstance(config["points"], list) or not all(
            isinstance(p, Mapping) for p in config["points"])):
        raise ValueError(f"config: [[points]] must be a list of tables, got {config['points']!r}")
    if kind == "grid":
        space = space_from_dict({"kind": "grid", "axes": config["grid"]})
    elif kind == "random":
        r = dict(config["random"])
        try:
            space = Random(r.pop("n"), r.pop("ranges"), seed=r.pop("seed", 0),
                           log=r.pop("log", ()))
        except KeyError as err:
            raise ValueError(f"config: [random] needs {err.args[0]!r}") from None
        if r:
            raise ValueError(f"config: unknown keys in [random]: {sorted(r)}")
    else:
        space = Points(config["points"])
    for key in ("model", "dt", "duration"):
        if key not in config:
            raise ValueError(f"config: missing the key {key!r}")
    if not isinstance(config["model"], str):
        raise ValueError(f"config: model must be a model name such as 'LIF', got "
                         f"{config['model']!r}")
    run = _check_run(config.get("run", {}))
    sweep = Sweep(config["model"], space, config.get("input", 0.0), dt=config["dt"],
                  duration=config["duration"], method=config.get("method", "exact"),
                  base=config.get("base"), measures=config.get("measures", ("rate",)),
                  record=config.get("record", ()), seed=config.get("seed", 0),
                  dtype=config.get("dtype", "float64"), options=config.get("options"),
                  allow_modules=allow_modules)
    return sweep, run


def load_config(path: str | Path, allow_modules: Sequence[str] | str = ()
                ) -> tuple[Sweep, dict[str, Any]]:
    """Read a sweep TOML file; ``run["out"]`` is made relative to the file's folder.

    ``allow_modules``: see :func:`sweep_from_config`.
    """
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"config: cannot read {str(path)!r}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"config: {str(path)!r} is not valid TOML: {err}") from None
    sweep, run = sweep_from_config(config, allow_modules)
    if "out" in run:
        run["out"] = str(path.parent / run["out"])
    return sweep, run


def parse_bytes(text: str) -> int:
    """``argparse`` type of a memory size (``"8G"``, ``"512MiB"``, ``"1e9"``)."""
    from .._checks import parse_memory_size

    try:
        return parse_memory_size(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def write_plot(sweep: Any, ds: Any, path: Path) -> Path | None:
    """Draw the first scalar measure of a grid sweep beside its results.

    One swept parameter: a curve (:func:`neurosim.plot.plot_sweep_curve`); two: a heatmap
    (:func:`neurosim.plot.plot_sweep_heatmap`); geometric grids on log axes. Returns the
    path written, or ``None`` (another space, more axes, or no scalar measure).
    """
    import numpy as np

    from ._measures import UNITS
    from ._space import Grid

    space = sweep.space
    if not isinstance(space, Grid) or len(space.names) not in (1, 2):
        return None
    measure = next((m for m in ("rate", "count", "cv", "latency") if m in ds.data_vars
                    and ds[m].dims == ("point",)), None)
    if measure is None:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .. import plot

    values = np.asarray(ds[measure].values, dtype=float).reshape(space.shape)
    unit = UNITS.get(measure, "")
    label = f"{measure} ({unit})" if unit and unit != "1" else measure
    axes = list(space.axes.items())
    if len(axes) == 1:
        (name, x), = axes
        fig = plot.plot_sweep_curve(values, x, x_label=name, y_label=label)
    else:
        (ny, y), (nx, x) = axes  # row-major grid: the last name varies fastest
        fig = plot.plot_sweep_heatmap(values, x, y, x_label=nx, y_label=ny, cbar_label=label)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _command(args: argparse.Namespace) -> int:
    sweep, run = load_config(args.config, allow_modules=args.allow_modules or ())
    for key in ("out", "executor", "workers", "threads", "chunk_size", "max_result_memory"):
        value = getattr(args, key)
        if value is not None:
            run[key] = value
    run.setdefault("out", str(Path(args.config).with_suffix("")) + "_sweep")
    print(f"{sweep!r}: {len(sweep)} parameter sets -> {run['out']}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = run_sweep(sweep, resume=not args.fresh, progress=not args.no_progress, **run)
    shown: set[str] = set()
    for w in caught:  # failed sets are listed below; anything else (corrupt chunks) here
        text = str(w.message)
        if type(w.message) is not SweepWarning and text not in shown:  # once per message:
            shown.add(text)  # e.g. a StabilityWarning of every chunk of one configuration
            print(f"warning: {text}", file=sys.stderr)
    print(f"computed {ds.attrs['chunks_computed']} chunks, reused {ds.attrs['chunks_loaded']}; "
          f"wrote {Path(run['out']) / 'results.nc'}")
    figure = write_plot(sweep, ds, Path(run["out"]) / "sweep.png")
    if figure is not None:
        print(f"wrote {figure}")
    failed = ds.error.values != ""
    if failed.any():
        print(f"{int(failed.sum())} of {len(sweep)} parameter sets failed:", file=sys.stderr)
        table = ds.isel(point=failed.nonzero()[0][:20])
        for k in range(table.sizes["point"]):
            params = {n: float(table[n].values[k]) for n in sweep.space.names}
            print(f"  point {int(table.point.values[k])} {params}: "
                  f"{table.error.values[k]}", file=sys.stderr)
        return 1
    return 0


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``sweep`` subcommand on an ``argparse`` subparsers object."""
    p = subparsers.add_parser("sweep", help="run a parameter sweep described in a TOML file",
                              description="Run a parameter sweep described in a TOML file "
                                          "(see docs/sweeps.md); results go to an output "
                                          "directory, and a rerun resumes it.")
    p.add_argument("config", help="the sweep's TOML file")
    p.add_argument("--out", default=None,
                   help="output directory (default: [run] out, else CONFIG_sweep/)")
    p.add_argument("--executor", default=None,
                   help="inprocess | process | dask | tcp://host:port (default: [run] or "
                        "inprocess; a scheduler address only here, never in the file)")
    p.add_argument("--allow-module", dest="allow_modules", action="append", default=None,
                   metavar="MODULE",
                   help="let the file name functions or models of MODULE (and its "
                        "submodules) as 'MODULE:name'; repeatable. Without it only neurosim's "
                        "own names resolve")
    p.add_argument("--max-result-memory", dest="max_result_memory", type=parse_bytes,
                   default=None, metavar="SIZE",
                   help="refuse a sweep whose results are estimated above SIZE (e.g. 16G; "
                        "default 4G)")
    p.add_argument("--workers", type=int, default=None, help="worker processes")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    p.add_argument("--chunk-size", dest="chunk_size", type=int, default=None,
                   help="parameter sets per chunk (default: from the memory budget)")
    p.add_argument("--fresh", action="store_true",
                   help="discard finished chunks in the output directory instead of resuming "
                        "(only in a neurosim sweep folder: any other non-empty folder is "
                        "refused)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true",
                   help="no progress bar")
    p.set_defaults(func=_command)
    return p


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``neurosim-sweep CONFIG.toml [options]``; returns the exit code (1: some sets failed,
    2: bad input)."""
    parser = argparse.ArgumentParser(prog="neurosim")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sweep", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.func(args)
    except (ValueError, OSError) as err:
        print(f"neurosim sweep: error: {err}", file=sys.stderr)
        return 2


__all__ = ["add_cli", "cli_main", "load_config", "parse_bytes", "sweep_from_config"]
