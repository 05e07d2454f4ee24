"""Plots built on matplotlib. Every function returns the Figure so users can compose."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from .simulate import Result


def _flat_trace(result: Result, name: str) -> np.ndarray:
    trace = result[name].detach().cpu().to(torch.float64)
    return trace.reshape(trace.shape[0], -1).numpy()


def plot_membrane(result: Result, neurons: Sequence[int] | int | None = None, ax: Any = None,
                  label: str | None = None, color: Any = None, show_threshold: bool = True):
    """Membrane potential against time, with the threshold and a marker at each spike.

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
    import matplotlib.pyplot as plt

    model = result.model
    name = model.membrane
    v = _flat_trace(result, name)
    n_total = v.shape[1]
    if neurons is None:
        neurons = list(range(min(n_total, 5)))
    elif isinstance(neurons, int):
        neurons = [neurons]
    for k in neurons:
        if not 0 <= k < n_total:
            raise ValueError(f"neurons: index {k} out of range for {n_total} neurons")
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
    else:
        fig = ax.figure
    t_ms = np.concatenate([[0.0], result.t.detach().cpu().double().numpy()]) * 1e3
    v0 = model.initial_state(()).get(name)
    start = float(v0) if v0 is not None and v0.numel() == 1 else np.nan
    times = result.spike_time
    for k in neurons:
        series = np.concatenate([[start if np.isfinite(start) else v[0, k]], v[:, k]])
        lab = f"{label or 'neuron'} {k}" if len(neurons) > 1 or label is None else label
        (line,) = ax.plot(t_ms, series, lw=1.2, label=lab, color=color)
        if model.spiking:
            st = times[result.spike_index == k] * 1e3
            if st.size:
                top = np.nanmax(series) if np.isfinite(series).any() else 1.0
                ax.plot(st, np.full(st.size, top), "v", color=line.get_color(), ms=5,
                        linestyle="none")
    if model.spiking and show_threshold:
        th = getattr(model, "v_th", None)
        if th is not None:
            th = th if not isinstance(th, torch.Tensor) else th.detach().flatten()[0].item()
            ax.axhline(float(th), color="0.4", ls="--", lw=1, label="threshold")
    ax.set_xlabel("time (ms)")
    unit = model.voltage_unit
    ax.set_ylabel(f"{name} ({unit})" if unit != "dimensionless" else f"{name} (dimensionless)")
    ax.set_title(f"{type(model).__name__}, method={result.method}, dt={result.dt * 1e3:g} ms")
    ax.legend(loc="lower right", fontsize="small")
    return fig


__all__ = ["plot_membrane"]
