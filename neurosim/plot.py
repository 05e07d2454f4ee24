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

import re
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
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .models.base import NeuronModel
    from .result import Result

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


def state_unit(model: NeuronModel, name: str, units: Mapping[str, str] | None = None) -> str:
    """The unit of state variable ``name`` of ``model``, for axis labels ("" if unknown).

    Looks in ``units`` (the caller's choice, e.g. ``{"v": "mV"}`` for an LIF whose
    numbers are millivolts), then in the model class's ``state_units`` mapping, then
    ``voltage_unit`` for the membrane variable; in dimensionless models every
    variable is dimensionless.
    """
    if units and name in units:
        return str(units[name])
    declared = getattr(model, "state_units", None)
    if isinstance(declared, Mapping) and name in declared:
        return str(declared[name])
    if name == model.membrane:
        return model.voltage_unit
    if model.voltage_unit == "dimensionless":
        return "dimensionless"
    return ""


def input_unit_of(model: NeuronModel, unit: str | None = None) -> str:
    """The unit of the model's input for axis labels: ``unit`` if given, else the unit of
    the variable the input jumps (jump mode), else the class's ``input_unit``."""
    if unit is not None:
        return unit
    target = getattr(model, "input_target", None)
    if target is not None:
        return state_unit(model, target)
    declared = str(getattr(model, "input_unit", "") or "")
    # a class declaring both modes, "nS (jump) / pA (current)": the current's unit
    current = re.search(r"([^/]+?)\s*\(current\)", declared)
    return current.group(1).strip() if current else declared


def _outside_legend(ax: Axes, **kwargs: Any) -> None:
    """A legend to the right of the axes, so it never covers data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              fontsize="small", frameon=False, **kwargs)


def _line_note(ax: Axes, y: float, text: str, color: Any = _GREY) -> None:
    """A small label just above a horizontal line, at the right end of the axes."""
    ax.annotate(text, xy=(0.995, y), xycoords=("axes fraction", "data"), ha="right",
                va="bottom", fontsize="small", color=color)


def _cutoff_field(model: NeuronModel) -> str | None:
    """The field holding the spike cut-off of models that reset at a peak value (AdEx,
    EIF, Izhikevich, QIF: the upstroke is cut at ``v_peak``); ``None`` otherwise."""
    field = getattr(model, "threshold_field", None)
    return field if field == "v_peak" and hasattr(model, "v_peak") else None


#: soft thresholds drawn (dotted) in membrane plots: field -> label
_SOFT_THRESHOLDS = {"v_t": "soft threshold (v_t)", "v_c": "critical potential (v_c)"}


def _label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def is_geometric(values: Any, rtol: float = 1e-6) -> bool:
    """Whether ``values`` (>= 3 of them, all > 0) form a geometric progression, such as
    ``np.geomspace(1e-3, 1e-1, 9)``: such a parameter grid is drawn on a log axis."""
    v = np.sort(_np(values).reshape(-1))
    if v.size < 3 or not np.all(v > 0):
        return False
    r = v[1:] / v[:-1]
    return bool(r[0] > 1 + 1e-9 and np.allclose(r, r[0], rtol=max(rtol, 1e-6), atol=0)
                and not np.allclose(np.diff(v), v[1] - v[0], rtol=1e-6, atol=0))


def _scale(ax: Axes, which: str, values: np.ndarray, scale: str | None) -> None:
    """Set a log axis for a geometric grid (``scale=None``), or the scale asked for."""
    if scale is None:
        scale = "log" if is_geometric(values) else "linear"
    if scale not in ("linear", "log"):
        raise ValueError(f"{which}scale must be 'linear', 'log' or None, got {scale!r}")
    (ax.set_xscale if which == "x" else ax.set_yscale)(scale)


def _edges(v: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around the centres ``v`` (geometric midpoints on a log axis)."""
    w = np.log(v) if log else v
    if w.size == 1:
        e = np.array([w[0] - 0.5, w[0] + 0.5])
    else:
        mid = (w[1:] + w[:-1]) / 2
        e = np.concatenate([[w[0] - (mid[0] - w[0])], mid, [w[-1] + (w[-1] - mid[-1])]])
    return np.exp(e) if log else e


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


# --------------------------------------------------------------------------------------
# membrane traces
# --------------------------------------------------------------------------------------
def _threshold_trace(result: Result) -> np.ndarray | float | None:
    """The (possibly adaptive, per-neuron) threshold over time, flattened to [T, N], or a float."""
    model = result.model
    if not model.spiking:
        return None
    full_shape = (len(result.t), *tuple(result.shape))
    x = {n: result.traces[n] for n in model.state_names if n in result.traces}
    rest = model.initial_state(result.shape, dtype=torch.float64)
    for n in model.state_names:
        x.setdefault(n, rest[n].expand(full_shape))
    try:
        th = model.threshold(x)
    except (NotImplementedError, KeyError):
        return None
    if not isinstance(th, torch.Tensor):
        return float(th)
    th = _np(th)
    if th.size == 1:
        return float(th.reshape(()))
    full = np.broadcast_to(th, full_shape)
    return full.reshape(full.shape[0], -1)


def _per_neuron(model: NeuronModel, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """A (possibly tensor) parameter broadcast to the neuron shape and flattened."""
    return np.broadcast_to(_np(getattr(model, field)), shape).reshape(-1)


def plot_membrane(result: Result, neurons: Sequence[int] | int | None = None,
                  ax: Axes | None = None, label: str | None = None, color: Any = None,
                  show_threshold: bool = True, unit: str | None = None) -> Figure:
    """Membrane potential against time, with the threshold and each spike at its precise time.

    The model's threshold (:meth:`~neurosim.models.NeuronModel.threshold`) is drawn
    dashed: one horizontal line when it is the same for every neuron and constant,
    else one line per neuron (heterogeneous ``v_th``, or the adaptive threshold of
    ALIF when its ``b`` was recorded).

    Models whose upstroke is cut at a peak and reset (AdEx, EIF, Izhikevich, QIF)
    record the trace after the reset, so the recorded samples never show the spike.
    For them each spike is drawn at its precise time as a line from the trace up to
    ``v_peak``, with a marker (``"v"``) at the peak; the dashed line at ``v_peak`` is
    labelled "spike cut-off (v_peak)", and the soft threshold ``v_t`` of EIF/AdEx
    (or the critical potential ``v_c`` of QIF) is dotted. Other models get one
    marker per spike above the traces, at the precise spike time.

    A legend (to the right of the axes) appears only for several neurons or a
    ``label``; threshold lines carry a small text label instead.

    Args:
        result: a :class:`~neurosim.Result` whose membrane variable was recorded.
        neurons: flat neuron indices to draw (default: the first up to 5).
        ax: matplotlib Axes to draw into; a new figure when ``None``.
        label: legend label (one neuron) or label prefix (default: ``"neuron k"``).
        color: a matplotlib colour for all lines (default: the colour cycle).
        show_threshold: draw the threshold / cut-off lines.
        unit: the unit of the membrane variable for the axis label (default: the
            model's ``voltage_unit``; e.g. ``"mV"`` for an LIF whose numbers are mV).

    Returns:
        The matplotlib Figure.
    """
    model = result.model
    name = model.membrane
    v = _flat_trace(result, name)
    n_total = v.shape[1]
    neurons = _check_neurons(neurons, n_total)
    if not neurons:
        raise ValueError(f"nothing to plot: the result has no neurons (shape "
                         f"{tuple(result.shape)}) or neurons selects none")
    fig, ax = _new_axes(ax)
    t_ms = np.concatenate([[0.0], _np(result.t)]) * 1e3
    rest = model.initial_state(result.shape, dtype=torch.float64)[name]
    v0 = _np(rest).reshape(-1)
    shape = tuple(result.shape)
    cutoff = _cutoff_field(model) if model.spiking else None
    peak = _per_neuron(model, cutoff, shape) if cutoff else None
    th = _threshold_trace(result) if (model.spiking and show_threshold) else None
    top = float(np.nanmax(v[:, neurons])) if v.size else 1.0
    if peak is not None:
        top = max(top, float(np.max(peak[neurons])))
    if isinstance(th, float):
        top = max(top, th)
    elif th is not None:
        top = max(top, float(np.nanmax(th[:, neurons])))
    span = top - min(float(np.nanmin(v[:, neurons])), top)
    marker_y = top + 0.06 * (span if span > 0 else 1.0)
    ev = events(result)
    bounds = np.searchsorted(ev.index, np.arange(n_total + 1))
    for k in neurons:
        series = np.concatenate([[v0[k]], v[:, k]])
        st = ev.time[bounds[k]:bounds[k + 1]] * 1e3 if model.spiking else np.zeros(0)
        tk = t_ms
        if peak is not None and st.size:
            # the spike: up to v_peak at the precise spike time, then the recorded reset
            pos = np.searchsorted(t_ms, st, side="left")
            tk = np.insert(t_ms, pos, st)
            series = np.insert(series, pos, peak[k])
        lab = (label if label is not None and len(neurons) == 1
               else f"{label or 'neuron'} {k}")
        (line,) = ax.plot(tk, series, lw=1.2, label=lab, color=color)
        if th is not None and not isinstance(th, float):
            ax.plot(t_ms[1:], th[:, k], ls="--", lw=0.9, color=line.get_color(), alpha=0.7)
        if st.size:
            y = np.full(st.size, peak[k] if peak is not None else marker_y)
            ax.plot(st, y, "v", color=line.get_color(), ms=5 if peak is None else 4,
                    linestyle="none", label="_spikes")
    if th is not None:
        what = "spike cut-off (v_peak)" if cutoff else \
            "spike detection level (v_th)" if getattr(model, "crossing_only", False) else \
            "threshold"
        if isinstance(th, float):
            ax.axhline(th, color=_GREY, ls="--", lw=1, label=what)
            _line_note(ax, th, what)
        else:
            ax.plot([], [], ls="--", color=_GREY, label=what)  # names the per-neuron lines
        for field, text in _SOFT_THRESHOLDS.items():
            if cutoff and hasattr(model, field):
                soft = _per_neuron(model, field, shape)[neurons]
                if np.all(soft == soft[0]):
                    ax.axhline(float(soft[0]), color=_GREY, ls=":", lw=1, label=text)
                    _line_note(ax, float(soft[0]), text)
    lo, hi = ax.get_ylim()
    room = top + 0.1 * (span if span > 0 else 1.0)  # the line labels and markers fit inside
    if hi < room:
        ax.set_ylim(lo, room)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel(_label(name, state_unit(model, name, {name: unit} if unit else None)))
    ax.set_xlim(0, t_ms[-1])
    ax.set_title(f"{type(model).__name__}, method={result.method}, dt={result.dt * 1e3:g} ms")
    if len(neurons) > 1 or label is not None:
        # the traces, and the legend-only entry naming per-neuron threshold lines
        handles = [ln for ln in ax.lines if ln.get_label() and not
                   ln.get_label().startswith("_") and
                   (ln.get_linestyle() == "-" or len(ln.get_xdata()) == 0)]
        _outside_legend(ax, handles=handles)
    return fig


def plot_traces(result: Result, variables: Sequence[str] | None = None,
                neurons: Sequence[int] | int | None = None, stack: str = "variables",
                fig: Figure | None = None, units: Mapping[str, str] | None = None) -> Figure:
    """Several state variables or several neurons, stacked on a shared time axis.

    Args:
        result: a :class:`~neurosim.Result`.
        variables: recorded variables to show (default: every recorded one except ``refrac``).
        neurons: flat neuron indices (default: the first up to 5).
        stack: ``"variables"`` (one panel per variable, all neurons in each) or
            ``"neurons"`` (one panel per neuron, showing the membrane variable).
        fig: a matplotlib Figure to draw into (default: a new one).
        units: units for the axis labels by variable name (default: the model's
            declarations, see :func:`state_unit`), e.g. ``{"v": "mV"}``.

    Returns:
        The matplotlib Figure; its axes are ordered top to bottom. A legend (right of
        the top panel) appears only when several neurons share a panel.
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
            plot_membrane(result, neurons=[panel], ax=ax,
                          unit=(units or {}).get(model.membrane))
            ax.get_legend() and ax.get_legend().remove()
            ax.set_title(f"neuron {panel}", fontsize="medium")
        elif panel == model.membrane:
            plot_membrane(result, neurons=neurons, ax=ax, unit=(units or {}).get(panel))
            ax.set_title("")
            if ax.get_legend() is not None and ax is not axes[0]:
                ax.get_legend().remove()
        else:
            x = _flat_trace(result, panel)
            for k in neurons:
                ax.plot(t_ms, x[:, k], lw=1.2, label=f"neuron {k}")
            ax.set_ylabel(_label(panel, state_unit(model, panel, units)))
            if len(neurons) > 1 and ax is axes[0]:
                _outside_legend(ax)
        ax.set_xlabel("")
    axes[-1].set_xlabel("time (ms)")
    fig.suptitle(f"{type(model).__name__}, method={result.method}, dt={result.dt * 1e3:g} ms")
    return fig


# --------------------------------------------------------------------------------------
# spike trains: raster, population rate, ISI
# --------------------------------------------------------------------------------------
def _raster_style(n_neurons: int, n_spikes: int, ax: Axes) -> tuple[float, float]:
    """Dot size (points) and opacity for a raster of ``n_neurons`` rows and ``n_spikes`` dots.

    The dot shrinks with the number of rows (about the row height, 0.5-4 pt) and
    becomes translucent when the dots would cover more than a fifth of the axes, so
    rasters of 1e3-1e5 neurons show firing density instead of a solid wall.
    """
    fig = ax.figure
    w_in, h_in = fig.get_size_inches()
    pos = ax.get_position()
    width_pt, height_pt = w_in * pos.width * 72.0, h_in * pos.height * 72.0
    size = float(np.clip(height_pt / max(n_neurons, 1), 0.5, 4.0))
    coverage = n_spikes * size ** 2 / max(width_pt * height_pt, 1.0)
    alpha = float(np.clip(0.2 / coverage, 0.1, 1.0)) if coverage > 0 else 1.0
    return size, alpha


def plot_raster(spikes: SpikeTrains, neurons: Sequence[int] | None = None,
                ax: Axes | None = None, color: Any = "k", marker: str = "o",
                markersize: float | None = None, alpha: float | None = None) -> Figure:
    """Raster plot: one dot per spike at (time, neuron index).

    All spikes are one :class:`~matplotlib.lines.Line2D`, so its data has exactly one
    point per spike. The dots are sized by the number of neurons (row height, 0.5-4
    pt) and made translucent where they would overlap, so a raster of 10⁴-10⁵
    neurons shows where the population fires densely; with more than 10⁵ spikes the
    dots are rasterised, so vector outputs (PDF, SVG) stay small.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).
        neurons: neuron indices to show (default: all).
        ax: matplotlib Axes (default: a new figure).
        color, marker: matplotlib styling (default: black dots).
        markersize: dot size in points (default: scaled by the number of neurons).
        alpha: opacity (default: scaled by the density of spikes).

    Returns:
        The matplotlib Figure.
    """
    ev = events(spikes)
    n = ev.n
    idx = list(range(n)) if neurons is None else _check_neurons(neurons, n, default=n)
    fig, ax = _new_axes(ax)
    if neurons is None:
        t, y = ev.time, ev.index.astype(np.float64)
    else:
        keep = np.isin(ev.index, idx)
        t, y = ev.time[keep], ev.index[keep].astype(np.float64)
    rows = (max(idx) - min(idx) + 1) if idx else 1
    size, auto_alpha = _raster_style(rows, t.size, ax)
    ms = size if markersize is None else float(markersize)
    ax.plot(t * 1e3, y, linestyle="none", marker=marker, color=color, ms=ms,
            mew=0 if marker in ("o", ".", "s") else max(0.6, ms / 6),
            alpha=auto_alpha if alpha is None else alpha, label=f"{t.size} spikes",
            rasterized=t.size > 100_000)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("neuron index")
    if ev.duration is not None:
        ax.set_xlim(0, ev.duration * 1e3)
    if idx:
        pad = 0.5 + 0.01 * rows
        ax.set_ylim(min(idx) - pad, max(idx) + pad)
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
    if smooth is not None:  # two curves to tell apart
        _outside_legend(ax)
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
    ax.legend(loc="best", fontsize="small", handlelength=0, handletextpad=0)
    return fig


# --------------------------------------------------------------------------------------
# f-I curve
# --------------------------------------------------------------------------------------
def plot_fi_curve(currents: Any, rates: Any, ax: Axes | None = None, label: str | None = None,
                  input_unit: str | None = None, marker: str = "o", *,
                  model: NeuronModel | type[NeuronModel] | None = None,
                  xscale: str | None = None, **line_kwargs: Any) -> Figure:
    """Plot an f-I curve (rate against input), e.g. from :func:`fi_curve`.

    Args:
        currents: input values, shape ``[n]``.
        rates: rates in Hz, shape ``[n]`` or ``[n, m]`` (one line per column).
        ax: matplotlib Axes (default: a new figure).
        label: legend label (one line), or a prefix for several.
        input_unit: unit of the input for the x label; default: the ``input_unit`` of
            ``model`` (µA/cm² for Hodgkin-Huxley, pA for AdEx), else no unit.
        marker: marker style; further keyword arguments go to ``ax.plot``.
        model: the model (or model class) the curve belongs to, for the unit.
        xscale: ``"linear"``, ``"log"`` or ``None`` (log for geometric currents).

    Returns:
        The matplotlib Figure.

    Example:
        >>> I, f = fi_curve(hh, np.linspace(0, 20, 21))
        >>> plot_fi_curve(I, f, model=hh)   # x label "input current (µA/cm²)"
    """
    x = _np(currents).reshape(-1)
    y = _np(rates).reshape(x.size, -1)
    if input_unit is None and model is not None:
        input_unit = input_unit_of(model) if not isinstance(model, type) else model.input_unit
    fig, ax = _new_axes(ax, figsize=(5, 3.8))
    for j in range(y.shape[1]):
        lab = label if y.shape[1] == 1 else f"{label or 'element'} {j}"
        ax.plot(x, y[:, j], marker=marker, ms=3.5, lw=1.3, label=lab, **line_kwargs)
    ax.set_xlabel(_label("input current", input_unit or ""))
    ax.set_ylabel("firing rate (Hz)")
    ax.set_ylim(bottom=0)
    _scale(ax, "x", x, xscale)
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
                     ax: Axes | None = None, units: Mapping[str, str] | None = None) -> Figure:
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
        units: axis-label units overriding the model's, by variable name, plus
            ``"input"`` for the title.

    Returns:
        The matplotlib Figure. Nullclines are labelled ``"<x>-nullcline"``; the
        spike condition is labelled "threshold", or "spike cut-off (v_peak)" for
        models cut at a peak (AdEx, EIF, Izhikevich, QIF). The legend sits to the
        right of the plane.
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
        # the steps in which this neuron spiked, from its spike events: step k covers
        # (k dt, (k+1) dt]
        st = trajectory.spike_time[trajectory.spike_index == neuron]
        steps = np.clip(np.ceil(st / trajectory.dt - 1e-6).astype(np.int64) - 1,
                        0, tx.shape[0] - 1)
        spiked = np.zeros(tx.shape[0], dtype=bool)
        spiked[steps] = True
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
        cut = "spike cut-off (v_peak)" if _cutoff_field(model) else "threshold"
        lab = cut if key == "threshold" else f"{key}-nullcline (d{key}/dt = 0)"
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
    ax.set_xlabel(_label(x, state_unit(model, x, units)))
    ax.set_ylabel(_label(y, state_unit(model, y, units)))
    u_unit = input_unit_of(model, (units or {}).get("input"))
    u_unit = "" if u_unit == "dimensionless" else f" {u_unit}"
    ax.set_title(f"{type(model).__name__}, input = {input:g}{u_unit}")
    _outside_legend(ax)
    return fig


# --------------------------------------------------------------------------------------
# parameter sweeps
# --------------------------------------------------------------------------------------
def plot_sweep_heatmap(values: Any, x: Any, y: Any, x_label: str, y_label: str,
                       ax: Axes | None = None, cbar_label: str = "firing rate (Hz)",
                       cmap: str = "viridis", log: bool = False, xscale: str | None = None,
                       yscale: str | None = None) -> Figure:
    """Heatmap of a measure (e.g. a firing rate) over two swept parameters.

    A geometric grid (``np.geomspace``, :func:`is_geometric`) is drawn on a log axis,
    with each cell centred on its value in log space.

    Args:
        values: array ``[len(y), len(x)]`` (rows follow ``y``).
        x, y: the swept parameter values (monotonic), drawn at cell centres.
        x_label, y_label: axis labels, with units (e.g. ``"tau_mem (s)"``).
        ax: matplotlib Axes (default: a new figure).
        cbar_label: colour-bar label, with unit.
        cmap: matplotlib colour map.
        log: logarithmic colour scale (values must be > 0).
        xscale, yscale: ``"linear"``, ``"log"`` or ``None`` (log for a geometric grid).

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
    _scale(ax, "x", xv, xscale)
    _scale(ax, "y", yv, yscale)
    norm = LogNorm() if log else None
    xe = _edges(xv, ax.get_xscale() == "log")
    ye = _edges(yv, ax.get_yscale() == "log")
    mesh = ax.pcolormesh(xe, ye, z, shading="flat", cmap=cmap, norm=norm)
    cbar = fig.colorbar(mesh, ax=ax)
    cbar.set_label(cbar_label)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    return fig


def plot_sweep_curve(values: Any, x: Any, x_label: str, y_label: str = "firing rate (Hz)",
                     ax: Axes | None = None, labels: Sequence[str] | None = None,
                     xscale: str | None = None, marker: str = "o") -> Figure:
    """A measure against one swept parameter (one line per column of ``values``).

    A geometric grid of ``x`` is drawn on a log axis. A legend (right of the axes)
    appears only with several lines.

    Args:
        values: array ``[len(x)]`` or ``[len(x), m]``.
        x: the swept parameter values.
        x_label, y_label: axis labels, with units (e.g. ``"tau_mem (s)"``).
        ax: matplotlib Axes (default: a new figure).
        labels: one legend label per column (default: ``"0"``, ``"1"``, ...).
        xscale: ``"linear"``, ``"log"`` or ``None`` (log for a geometric grid).
        marker: matplotlib marker.

    Returns:
        The matplotlib Figure.
    """
    xv = _np(x).reshape(-1)
    z = _np(values).reshape(xv.size, -1)
    if labels is not None and len(labels) != z.shape[1]:
        raise ValueError(f"labels: {len(labels)} given for {z.shape[1]} lines")
    fig, ax = _new_axes(ax, figsize=(5.5, 3.8))
    order = np.argsort(xv)
    for j in range(z.shape[1]):
        ax.plot(xv[order], z[order, j], marker=marker, ms=3.5, lw=1.3,
                label=str(labels[j]) if labels is not None else str(j))
    _scale(ax, "x", xv, xscale)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if z.shape[1] > 1:
        _outside_legend(ax)
    return fig


# --------------------------------------------------------------------------------------
# overview and dispatch for Result.plot
# --------------------------------------------------------------------------------------
def plot_summary(result: Result, input: torch.Tensor | np.ndarray | None = None,
                 neurons: Sequence[int] | int | None = None, fig: Figure | None = None,
                 units: Mapping[str, str] | None = None) -> Figure:
    """Overview of a run: the input (if given), membrane traces and, for several
    neurons, the raster of all of them, on a shared time axis.

    Args:
        result: a :class:`~neurosim.Result` with its membrane variable recorded.
        input: the input ``[T, *neurons]`` that drove the run (plotted for ``neurons``).
        neurons: flat indices of the traces to show (default: the first up to 5).
        fig: a matplotlib Figure to draw into.
        units: axis-label units overriding the model's, by variable name, plus
            ``"input"`` for the input panel (e.g. ``{"v": "mV", "input": "nA"}``).

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
            ax.set_ylabel(_label(name, input_unit_of(result.model, (units or {}).get("input"))))
        elif panel == "membrane":
            plot_membrane(result, neurons=neurons, ax=ax,
                          unit=(units or {}).get(result.model.membrane))
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
    "input_unit_of", "is_geometric", "plot_isi_histogram", "plot_membrane", "plot_phase_plane",
    "plot_population_rate", "plot_raster", "plot_result", "plot_summary", "plot_sweep_curve",
    "plot_sweep_heatmap", "plot_traces", "population_rate", "state_unit",
]
