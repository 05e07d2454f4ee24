r"""Plots built on matplotlib; the measures they draw live in :mod:`neurosim.analysis`.

Every plotting function draws into ``ax`` (or a new figure when ``ax`` is ``None``)
and returns the matplotlib :class:`~matplotlib.figure.Figure`, so figures compose.
Nothing here selects a backend: everything works headless with ``MPLBACKEND=Agg``.
Time axes are in milliseconds; every other axis states its unit, taken from the
model class (``voltage_unit``, ``state_units``, ``input_unit``) unless passed.

Spike trains are passed as a :class:`~neurosim.Result` or as a sequence of 1-D
arrays of spike times in seconds, one per neuron (``result.spike_times.ravel()``
has that form).

The measures :func:`isi`, :func:`cv_isi`, :func:`population_rate`, :func:`fi_curve`
and :func:`nullclines` are defined in :mod:`neurosim.analysis` and re-exported
here, so ``from neurosim.plot import fi_curve`` keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .analysis import (
    SpikeTrains,
    check_range,
    cv_isi,
    events,
    fi_curve,
    grid_state,
    isi,
    nullclines,
    population_rate,
    spike_trains,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .models.base import NeuronModel
    from .simulate import Result

#: colour of threshold lines and nullcline of the first variable
_GREY = "0.35"


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (8, 3.5)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _flat_trace(result: Result, name: str) -> np.ndarray:
    trace = _np(result[name])
    return trace.reshape(trace.shape[0], -1)


def state_unit(model: NeuronModel, name: str) -> str:
    """The unit of state variable ``name`` of ``model``, for axis labels ("" if unknown).

    Uses the model's optional ``state_units`` mapping, then ``voltage_unit`` for the
    membrane variable; in dimensionless models every variable is dimensionless.
    """
    units = getattr(model, "state_units", None)
    if isinstance(units, Mapping) and name in units:
        return str(units[name])
    if name == model.membrane:
        return model.voltage_unit
    if model.voltage_unit == "dimensionless":
        return "dimensionless"
    return ""


def _label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _check_neurons(neurons: Sequence[int] | int | None, n_total: int, default: int = 5
                   ) -> list[int]:
    if neurons is None:
        return list(range(min(n_total, default)))
    if isinstance(neurons, (int, np.integer)):
        neurons = [int(neurons)]
    neurons = [int(k) for k in neurons]
    for k in neurons:
        if not 0 <= k < n_total:
            raise ValueError(f"neurons: index {k} out of range for {n_total} neurons")
    return neurons


def _spike_trains(spikes: SpikeTrains) -> tuple[list[np.ndarray], float | None]:
    """Per-neuron spike-time arrays (s) and the duration when known."""
    return spike_trains(spikes), events(spikes).duration


# --------------------------------------------------------------------------------------
# membrane traces
# --------------------------------------------------------------------------------------
def _threshold_trace(result: Result) -> np.ndarray | float | None:
    """The (possibly adaptive, per-neuron) threshold over time, flattened to [T, N], or a float."""
    model = result.model
    if not model.spiking:
        return None
    x = {n: result.traces[n] for n in model.state_names if n in result.traces}
    rest = model.initial_state(result.shape, dtype=torch.float64)
    for n in model.state_names:
        x.setdefault(n, rest[n].expand(result.spikes.shape))
    try:
        th = model.threshold(x)
    except (NotImplementedError, KeyError):
        return None
    if not isinstance(th, torch.Tensor):
        return float(th)
    th = _np(th)
    if th.size == 1:
        return float(th.reshape(()))
    full = np.broadcast_to(th, tuple(result.spikes.shape))
    return full.reshape(full.shape[0], -1)


def plot_membrane(result: Result, neurons: Sequence[int] | int | None = None,
                  ax: Axes | None = None, label: str | None = None, color: Any = None,
                  show_threshold: bool = True) -> Figure:
    """Membrane potential against time, with the threshold and a marker at each spike.

    The threshold is drawn dashed: one horizontal line when it is the same for every
    neuron and constant, else one line per neuron (heterogeneous ``v_th``, or the
    adaptive threshold of ALIF when its ``b`` was recorded). Spike markers (``"v"``)
    sit above the traces, one per spike, at the precise spike time.

    Args:
        result: a :class:`~neurosim.Result` whose membrane variable was recorded.
        neurons: flat neuron indices to draw (default: the first up to 5).
        ax: matplotlib Axes to draw into; a new figure when ``None``.
        label: legend label prefix (default: ``"neuron k"``).
        color: a matplotlib colour for all lines (default: the colour cycle).
        show_threshold: draw the firing threshold as a dashed line.

    Returns:
        The matplotlib Figure.
    """
    model = result.model
    name = model.membrane
    v = _flat_trace(result, name)
    neurons = _check_neurons(neurons, v.shape[1])
    fig, ax = _new_axes(ax)
    t_ms = np.concatenate([[0.0], _np(result.t)]) * 1e3
    rest = model.initial_state(result.shape, dtype=torch.float64)[name]
    v0 = _np(rest).reshape(-1)
    th = _threshold_trace(result) if (model.spiking and show_threshold) else None
    top = np.nanmax(v[:, neurons]) if v.size else 1.0
    if isinstance(th, float):
        top = max(top, th)
    elif th is not None:
        top = max(top, float(np.nanmax(th[:, neurons])))
    span = top - min(np.nanmin(v[:, neurons]), top)
    marker_y = top + 0.06 * (span if span > 0 else 1.0)
    times = result.spike_time
    for k in neurons:
        series = np.concatenate([[v0[k]], v[:, k]])
        lab = f"{label or 'neuron'} {k}" if len(neurons) > 1 or label is None else label
        (line,) = ax.plot(t_ms, series, lw=1.2, label=lab, color=color)
        if th is not None and not isinstance(th, float):
            ax.plot(t_ms[1:], th[:, k], ls="--", lw=0.9, color=line.get_color(), alpha=0.7)
        if model.spiking:
            st = times[result.spike_index == k] * 1e3
            if st.size:
                ax.plot(st, np.full(st.size, marker_y), "v", color=line.get_color(), ms=5,
                        linestyle="none")
    if isinstance(th, float):
        ax.axhline(th, color=_GREY, ls="--", lw=1, label="threshold")
    elif th is not None:
        ax.plot([], [], ls="--", color=_GREY, label="threshold")  # legend entry only
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(_label(name, state_unit(model, name)))
    ax.set_xlim(0, t_ms[-1])
    ax.set_title(f"{type(model).__name__}, method={result.method}, dt={result.dt * 1e3:g} ms")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_traces(result: Result, variables: Sequence[str] | None = None,
                neurons: Sequence[int] | int | None = None, stack: str = "variables",
                fig: Figure | None = None) -> Figure:
    """Several state variables or several neurons, stacked on a shared time axis.

    Args:
        result: a :class:`~neurosim.Result`.
        variables: recorded variables to show (default: every recorded one except ``refrac``).
        neurons: flat neuron indices (default: the first up to 5).
        stack: ``"variables"`` (one panel per variable, all neurons in each) or
            ``"neurons"`` (one panel per neuron, showing the membrane variable).
        fig: a matplotlib Figure to draw into (default: a new one).

    Returns:
        The matplotlib Figure; its axes are ordered top to bottom.
    """
    import matplotlib.pyplot as plt

    model = result.model
    if variables is None:
        variables = [n for n in result.traces if n != "refrac"]
    variables = list(variables)
    for name in variables:
        result[name]  # raises KeyError naming what was recorded
    if stack not in ("variables", "neurons"):
        raise ValueError(f"stack must be 'variables' or 'neurons', got {stack!r}")
    n_total = int(np.prod(tuple(result.shape))) if len(result.shape) else 1
    neurons = _check_neurons(neurons, n_total)
    panels = variables if stack == "variables" else neurons
    if not panels:
        raise ValueError("nothing to plot: no recorded variables (pass record=... to simulate)")
    if fig is None:
        fig = plt.figure(figsize=(8, 1.2 + 2.0 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    t_ms = _np(result.t) * 1e3
    for ax, panel in zip(axes, panels, strict=True):
        if stack == "neurons":
            plot_membrane(result, neurons=[panel], ax=ax, label=f"neuron {panel}")
            ax.set_title(f"neuron {panel}", fontsize="medium")
        elif panel == model.membrane:
            plot_membrane(result, neurons=neurons, ax=ax)
            ax.set_title("")
        else:
            x = _flat_trace(result, panel)
            for k in neurons:
                ax.plot(t_ms, x[:, k], lw=1.2, label=f"neuron {k}")
            ax.set_ylabel(_label(panel, state_unit(model, panel)))
            if len(neurons) > 1:
                ax.legend(loc="lower right", fontsize="small")
        ax.set_xlabel("")
    axes[-1].set_xlabel("time (ms)")
    fig.suptitle(f"{type(model).__name__}, method={result.method}, dt={result.dt * 1e3:g} ms")
    return fig


# --------------------------------------------------------------------------------------
# spike trains: raster, population rate, ISI
# --------------------------------------------------------------------------------------
def plot_raster(spikes: SpikeTrains, neurons: Sequence[int] | None = None,
                ax: Axes | None = None, color: Any = "k", marker: str = "|",
                markersize: float | None = None) -> Figure:
    """Raster plot: one mark per spike at (time, neuron index).

    All spikes are one :class:`~matplotlib.lines.Line2D`, so its data has exactly one
    point per spike.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).
        neurons: neuron indices to show (default: all).
        ax: matplotlib Axes (default: a new figure).
        color, marker, markersize: matplotlib styling.

    Returns:
        The matplotlib Figure.
    """
    trains, duration = _spike_trains(spikes)
    idx = list(range(len(trains))) if neurons is None else \
        _check_neurons(neurons, len(trains), default=len(trains))
    fig, ax = _new_axes(ax)
    t = np.concatenate([trains[k] for k in idx]) if idx else np.zeros(0)
    y = np.concatenate([np.full(trains[k].size, k) for k in idx]) if idx else np.zeros(0)
    if markersize is None:
        markersize = float(np.clip(300.0 / max(len(idx), 1), 1.5, 8.0))
    ax.plot(t * 1e3, y, linestyle="none", marker=marker, color=color, ms=markersize,
            mew=max(0.6, markersize / 6), label=f"{t.size} spikes")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron index")
    if duration is not None:
        ax.set_xlim(0, duration * 1e3)
    if idx:
        ax.set_ylim(min(idx) - 0.5 - 0.01 * len(idx), max(idx) + 0.5 + 0.01 * len(idx))
    if len(idx) <= 12:
        ax.set_yticks(idx)
    return fig


def plot_population_rate(spikes: SpikeTrains, bin_width: float = 1e-3,
                         smooth: float | None = 5e-3, duration: float | None = None,
                         ax: Axes | None = None) -> Figure:
    """The binned population rate (grey steps) and its Gaussian-smoothed version (line).

    Args: as :func:`population_rate`; ``smooth=None`` draws only the binned rate.

    Returns:
        The matplotlib Figure.
    """
    fig, ax = _new_axes(ax)
    t, binned = population_rate(spikes, bin_width, None, duration)
    ax.stairs(binned, np.append(t - bin_width / 2, t[-1] + bin_width / 2) * 1e3,
              color="0.6", fill=True, alpha=0.6, label=f"binned, {bin_width * 1e3:g} ms")
    if smooth is not None:
        _, sm = population_rate(spikes, bin_width, smooth, duration)
        ax.plot(t * 1e3, sm, color="C3", lw=1.5, label=f"Gaussian, σ = {smooth * 1e3:g} ms")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("population rate (Hz)")
    ax.set_xlim(0, (t[-1] + bin_width / 2) * 1e3)
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small")
    return fig


def plot_isi_histogram(spikes: SpikeTrains, bins: int | Sequence[float] = 30,
                       neurons: Sequence[int] | None = None, ax: Axes | None = None) -> Figure:
    """Histogram of the interspike intervals pooled over ``neurons``, with their CV.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).
        bins: number of bins, or bin edges in milliseconds.
        neurons: neuron indices to pool (default: all).
        ax: matplotlib Axes (default: a new figure).

    Returns:
        The matplotlib Figure. The legend states the mean ISI and the CV of the pooled
        intervals.
    """
    intervals = isi(spikes)
    idx = range(len(intervals)) if neurons is None else \
        _check_neurons(neurons, len(intervals), default=len(intervals))
    pooled = np.concatenate([intervals[k] for k in idx]) if len(idx) else np.zeros(0)
    fig, ax = _new_axes(ax, figsize=(5, 3.5))
    if pooled.size:
        cv = pooled.std() / pooled.mean() if pooled.size >= 2 else float("nan")
        label = f"{pooled.size} ISIs, mean {pooled.mean() * 1e3:.3g} ms, CV {cv:.2f}"
    else:
        label = "no interspike intervals"
    ax.hist(pooled * 1e3, bins=bins, color="C0", alpha=0.8, label=label)
    ax.set_xlabel("interspike interval (ms)")
    ax.set_ylabel("count")
    ax.legend(loc="upper right", fontsize="small")
    return fig


# --------------------------------------------------------------------------------------
# f-I curve
# --------------------------------------------------------------------------------------
def plot_fi_curve(currents: Any, rates: Any, ax: Axes | None = None, label: str | None = None,
                  input_unit: str = "dimensionless", marker: str = "o", **line_kwargs: Any
                  ) -> Figure:
    """Plot an f-I curve (rate against input), e.g. from :func:`fi_curve`.

    Args:
        currents: input values, shape ``[n]``.
        rates: rates in Hz, shape ``[n]`` or ``[n, m]`` (one line per column).
        ax: matplotlib Axes (default: a new figure).
        label: legend label (one line), or a prefix for several.
        input_unit: unit of the input, for the x label.
        marker: marker style; further keyword arguments go to ``ax.plot``.

    Returns:
        The matplotlib Figure.
    """
    x = _np(currents).reshape(-1)
    y = _np(rates).reshape(x.size, -1)
    fig, ax = _new_axes(ax, figsize=(5, 3.8))
    for j in range(y.shape[1]):
        lab = label if y.shape[1] == 1 else f"{label or 'element'} {j}"
        ax.plot(x, y[:, j], marker=marker, ms=3.5, lw=1.3, label=lab, **line_kwargs)
    ax.set_xlabel(_label("input current", input_unit))
    ax.set_ylabel("firing rate (Hz)")
    ax.set_ylim(bottom=0)
    if label is not None or y.shape[1] > 1:
        ax.legend(loc="upper left", fontsize="small")
    return fig


# --------------------------------------------------------------------------------------
# phase plane
# --------------------------------------------------------------------------------------
def plot_phase_plane(model: NeuronModel, x: str | None = None, y: str | None = None,
                     x_range: Sequence[float] | None = None,
                     y_range: Sequence[float] | None = None, input: float = 0.0,
                     trajectory: Result | None = None, neuron: int = 0, n: int = 201,
                     vector_field: bool = True, fixed: Mapping[str, float] | None = None,
                     ax: Axes | None = None) -> Figure:
    """Phase plane of two state variables: nullclines, threshold, vector field, trajectory.

    Args:
        model: a neuron model with scalar parameters and at least two state variables.
        x, y: the variables on the axes (default: the membrane variable and the other
            state variable of a two-variable model).
        x_range, y_range: extent of the plane in state units (default: the trajectory's
            range with a margin; required without a trajectory).
        input: the constant input current used for the nullclines and vector field.
        trajectory: a :class:`~neurosim.Result` recording ``x`` and ``y``; drawn with
            breaks at resets (jumps are not part of the flow).
        neuron: flat index of the neuron whose trajectory is drawn.
        n: grid points per axis for the nullclines.
        vector_field: draw normalised arrows of the flow direction.
        fixed: values of other state variables (default: rest).
        ax: matplotlib Axes (default: a new figure).

    Returns:
        The matplotlib Figure. Nullclines are labelled ``"<x>-nullcline"``.
    """
    names = model.state_names
    if x is None:
        x = model.membrane
    if y is None:
        others = [nm for nm in names if nm != x]
        if len(others) != 1:
            raise ValueError(f"y: {type(model).__name__} has state variables {names}; name the "
                             "one to plot against x")
        y = others[0]
    traj = None
    if trajectory is not None:
        tx, ty = _flat_trace(trajectory, x), _flat_trace(trajectory, y)
        _check_neurons([neuron], tx.shape[1])
        traj = (tx[:, neuron], ty[:, neuron])
        spiked = _np(trajectory.spikes).reshape(tx.shape[0], -1)[:, neuron] > 0
    for which, r, data in (("x_range", x_range, 0), ("y_range", y_range, 1)):
        if r is None:
            if traj is None:
                raise ValueError(f"{which} is required without a trajectory")
            lo, hi = float(np.min(traj[data])), float(np.max(traj[data]))
            pad = 0.15 * (hi - lo) if hi > lo else 1.0
            if which == "x_range":
                x_range = (lo - pad, hi + pad)
            else:
                y_range = (lo - pad, hi + pad)
    x_range, y_range = check_range("x_range", x_range), check_range("y_range", y_range)
    lines = nullclines(model, x, y, x_range, y_range, input, n, fixed)
    fig, ax = _new_axes(ax, figsize=(5.5, 4.5))
    if vector_field:
        m = 17
        xs, ys = np.linspace(*x_range, m), np.linspace(*y_range, m)
        state = grid_state(model, x, y, xs, ys, fixed)
        with torch.no_grad():
            f = model.cast(torch.float64).derivatives(
                state, torch.full(state[x].shape, float(input), dtype=torch.float64))
        # directions in axis-normalised coordinates, so arrows show where the flow goes
        fx = _np(f[x]) / (x_range[1] - x_range[0])
        fy = _np(f[y]) / (y_range[1] - y_range[0])
        norm = np.hypot(fx, fy)
        norm[norm == 0] = 1.0
        X, Y = np.meshgrid(xs, ys)
        ax.quiver(X, Y, fx / norm, fy / norm, color="0.75", angles="xy", pivot="mid",
                  scale=m * 1.4, width=0.003)
    styles = {x: dict(color="C0", lw=2), y: dict(color="C1", lw=2),
              "threshold": dict(color=_GREY, lw=1.2, ls="--")}
    for key, segs in lines.items():
        lab = "threshold" if key == "threshold" else f"{key}-nullcline (d{key}/dt = 0)"
        for j, seg in enumerate(segs):
            ax.plot(seg[:, 0], seg[:, 1], label=lab if j == 0 else None, **styles[key])
    if traj is not None:
        px, py = traj[0].copy(), traj[1].copy()
        if spiked.any():  # break the line where a reset jumped the state
            cut = np.flatnonzero(spiked)
            px, py = np.insert(px, cut, np.nan), np.insert(py, cut, np.nan)
        ax.plot(px, py, color="k", lw=1.0, label="trajectory")
        ax.plot(traj[0][:1], traj[1][:1], "o", color="k", ms=5, label="start")
    ax.set_xlim(*x_range)
    ax.set_ylim(*y_range)
    ax.set_xlabel(_label(x, state_unit(model, x)))
    ax.set_ylabel(_label(y, state_unit(model, y)))
    ax.set_title(f"{type(model).__name__}, input = {input:g}")
    ax.legend(loc="best", fontsize="small")
    return fig


# --------------------------------------------------------------------------------------
# parameter sweeps
# --------------------------------------------------------------------------------------
def plot_sweep_heatmap(values: Any, x: Any, y: Any, x_label: str, y_label: str,
                       ax: Axes | None = None, cbar_label: str = "firing rate (Hz)",
                       cmap: str = "viridis", log: bool = False) -> Figure:
    """Heatmap of a measure (e.g. a firing rate) over two swept parameters.

    Args:
        values: array ``[len(y), len(x)]`` (rows follow ``y``).
        x, y: the swept parameter values (monotonic), drawn at cell centres.
        x_label, y_label: axis labels, with units (e.g. ``"tau_mem (s)"``).
        ax: matplotlib Axes (default: a new figure).
        cbar_label: colour-bar label, with unit.
        cmap: matplotlib colour map.
        log: logarithmic colour scale (values must be > 0).

    Returns:
        The matplotlib Figure (the colour bar is its last axes).
    """
    from matplotlib.colors import LogNorm

    z = _np(values)
    xv, yv = _np(x).reshape(-1), _np(y).reshape(-1)
    if z.shape != (yv.size, xv.size):
        raise ValueError(f"values must have shape [len(y), len(x)] = {(yv.size, xv.size)}, "
                         f"got {z.shape}")
    fig, ax = _new_axes(ax, figsize=(5.5, 4.2))
    norm = LogNorm() if log else None
    mesh = ax.pcolormesh(xv, yv, z, shading="nearest", cmap=cmap, norm=norm)
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label(cbar_label)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    return fig


# --------------------------------------------------------------------------------------
# overview and dispatch for Result.plot
# --------------------------------------------------------------------------------------
def plot_summary(result: Result, input: torch.Tensor | np.ndarray | None = None,
                 neurons: Sequence[int] | int | None = None, fig: Figure | None = None
                 ) -> Figure:
    """Overview of a run: the input (if given), membrane traces and, for several
    neurons, the raster of all of them, on a shared time axis.

    Args:
        result: a :class:`~neurosim.Result` with its membrane variable recorded.
        input: the input ``[T, *neurons]`` that drove the run (plotted for ``neurons``).
        neurons: flat indices of the traces to show (default: the first up to 5).
        fig: a matplotlib Figure to draw into.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    n_total = int(np.prod(tuple(result.shape))) if len(result.shape) else 1
    neurons = _check_neurons(neurons, n_total)
    panels = (["input"] if input is not None else []) + ["membrane"]
    if n_total > 1 and result.model.spiking:
        panels.append("raster")
    ratios = [1.0 if p == "input" else 2.0 for p in panels]
    if fig is None:
        fig = plt.figure(figsize=(8, 1.0 + 1.6 * sum(ratios)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": ratios})[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        if panel == "input":
            u = _np(input)
            u = np.broadcast_to(u.reshape(u.shape[0], -1), (u.shape[0], n_total)) \
                if u.reshape(u.shape[0], -1).shape[1] == 1 else u.reshape(u.shape[0], -1)
            t_ms = (np.arange(u.shape[0] + 1)) * result.dt * 1e3
            for k in neurons:
                ax.stairs(u[:, k], t_ms, baseline=None, lw=1.0, label=f"neuron {k}")
            target = result.model.input_target
            name = f"input, jumps of {target}" if target else "input"
            ax.set_ylabel(_label(name, state_unit(result.model, target) if target
                                 else result.model.input_unit))
        elif panel == "membrane":
            plot_membrane(result, neurons=neurons, ax=ax)
            ax.set_title("")
        else:
            plot_raster(result, ax=ax)
        ax.set_xlabel("")
    axes[-1].set_xlabel("time (ms)")
    fig.suptitle(f"{type(result.model).__name__}, method={result.method}, "
                 f"dt={result.dt * 1e3:g} ms, {result.spike_time.size} spikes")
    return fig


PLOT_KINDS = ("membrane", "traces", "raster", "rate", "isi", "summary")


def plot_result(result: Result, kind: str = "membrane", **kwargs: Any) -> Figure:
    """Dispatch for :meth:`neurosim.Result.plot`.

    Args:
        result: a :class:`~neurosim.Result`.
        kind: ``"membrane"`` (:func:`plot_membrane`), ``"traces"`` (:func:`plot_traces`),
            ``"raster"`` (:func:`plot_raster`), ``"rate"`` (:func:`plot_population_rate`),
            ``"isi"`` (:func:`plot_isi_histogram`) or ``"summary"`` (:func:`plot_summary`).
        **kwargs: passed to that function.

    Returns:
        The matplotlib Figure.
    """
    funcs = {"membrane": plot_membrane, "traces": plot_traces, "raster": plot_raster,
             "rate": plot_population_rate, "isi": plot_isi_histogram, "summary": plot_summary}
    if kind not in funcs:
        raise ValueError(f"kind must be one of {PLOT_KINDS}, got {kind!r}")
    return funcs[kind](result, **kwargs)


__all__ = [
    "PLOT_KINDS", "cv_isi", "fi_curve", "isi", "nullclines", "plot_fi_curve",
    "plot_isi_histogram", "plot_membrane", "plot_phase_plane", "plot_population_rate",
    "plot_raster", "plot_result", "plot_summary", "plot_sweep_heatmap", "plot_traces",
    "population_rate", "state_unit",
]
