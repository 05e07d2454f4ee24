"""The outcome of a simulation: spike events, recorded traces and the final state.

A :class:`Result` keeps what the run produced and nothing more: spikes as events
(step, neuron, offset inside the step), O(number of spikes) in memory; traces
only for the variables asked for. The dense raster :attr:`Result.spikes`, the
time-sorted :attr:`Result.spike_index` / :attr:`Result.spike_time` and the
per-neuron :attr:`Result.spike_times` are built on first access.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .models.base import NeuronModel
from .state import State


class Result:
    """The outcome of :func:`neurosim.simulate`.

    Attributes:
        t: end time of each step, in seconds, shape ``[T]`` (``t[k] = (k+1)·dt``).
        spikes: spike counts per step, ``[T, *shape]`` (0/1 unless a neuron fires more
            than once in a step, possible with precise spike times); built from the
            events on first access unless the run produced it (training paths).
        traces: recorded state variables by name, each ``[T, *shape]``; also
            reachable as ``result.v`` or ``result["v"]``.
        spike_index: flat (row-major) neuron index of every spike (int64), sorted by time.
        spike_time: time of every spike in seconds (float64), sorted (ties by index).
        final_state: the state after the last step (pass it as ``state=`` to continue).
        model, dt, method: what was simulated.
    """

    def __init__(self, *, traces: dict[str, torch.Tensor], final_state: State,
                 model: NeuronModel, dt: float, method: str,
                 t: torch.Tensor | None = None, spikes: torch.Tensor | None = None,
                 spike_index: np.ndarray | None = None, spike_time: np.ndarray | None = None,
                 events: Any = None, n_steps: int | None = None,
                 shape: tuple[int, ...] | torch.Size | None = None,
                 dtype: torch.dtype | None = None) -> None:
        self.traces = traces
        self.final_state = final_state
        self.model = model
        self.dt = float(dt)
        self.method = method
        self._t = t
        self._spikes = spikes
        self._events = events
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None
        if spike_index is not None or spike_time is not None:
            if spike_index is None or spike_time is None:
                raise ValueError("spike_index and spike_time must be given together")
            self._sorted = (np.asarray(spike_index, dtype=np.int64),
                            np.asarray(spike_time, dtype=np.float64))
        if shape is None:
            if spikes is not None:
                shape = spikes.shape[1:]
            else:
                shape = next(iter(final_state.values())).shape
        self._shape = torch.Size(shape)
        if n_steps is None:
            if t is not None:
                n_steps = int(t.shape[0])
            elif spikes is not None:
                n_steps = int(spikes.shape[0])
            elif traces:
                n_steps = int(next(iter(traces.values())).shape[0])
            else:
                raise ValueError("n_steps is needed when neither t, spikes nor traces are given")
        self._n_steps = int(n_steps)
        if dtype is None:
            dtype = next(iter(final_state.values())).dtype
        self._dtype = dtype

    # -- shape and time ------------------------------------------------------------------
    @property
    def shape(self) -> torch.Size:
        """The shape ``[*batch, *neurons]`` of one time slice."""
        return self._shape

    @property
    def n_steps(self) -> int:
        """Number of time steps ``T``."""
        return self._n_steps

    @property
    def duration(self) -> float:
        """Simulated time in seconds."""
        return self.dt * self._n_steps

    @property
    def t(self) -> torch.Tensor:
        """End time of each step in seconds, ``[T]``, in the run's dtype."""
        if self._t is None:
            self._t = (torch.arange(1, self._n_steps + 1, dtype=torch.float64) * self.dt).to(
                self._dtype)
        return self._t

    @property
    def n_neurons(self) -> int:
        """Number of elements (batch x neurons) in one time slice."""
        return int(np.prod(tuple(self._shape))) if len(self._shape) else 1

    # -- spikes --------------------------------------------------------------------------
    def _sorted_events(self) -> tuple[np.ndarray, np.ndarray]:
        if self._sorted is None:
            self._sorted = sort_events(self._events, self.dt, self._n_steps)
        return self._sorted

    @property
    def spike_index(self) -> np.ndarray:
        """Flat neuron index of every spike (int64), in time order."""
        return self._sorted_events()[0]

    @property
    def spike_time(self) -> np.ndarray:
        """Time of every spike in seconds (float64), sorted; ties in neuron order."""
        return self._sorted_events()[1]

    @property
    def n_spikes(self) -> int:
        """Total number of spikes."""
        if self._sorted is not None:
            return int(self._sorted[0].size)
        if self._events is not None:
            return int(self._events.step.size)
        return int(self.spikes.detach().sum())

    @property
    def spikes(self) -> torch.Tensor:
        """Spike counts per step ``[T, *shape]`` (built from the events on first access)."""
        if self._spikes is None:
            T, n = self._n_steps, self.n_neurons
            dense = torch.zeros(T * n, dtype=self._dtype)
            if self._events is not None:
                step, index = self._events.step, self._events.index
            else:
                index, times = self._sorted_events()
                step = np.minimum((times / self.dt).astype(np.int64), T - 1)
            flat = torch.from_numpy(np.asarray(step, np.int64) * n + np.asarray(index, np.int64))
            dense.index_add_(0, flat, torch.ones(flat.shape[0], dtype=self._dtype))
            self._spikes = dense.reshape(T, *self._shape)
        return self._spikes

    @property
    def spike_times(self) -> np.ndarray:
        """Spike times per neuron: an object array of ``shape``, each entry a float64 array (s).

        Precise (not on the grid) with ``method="exact"`` and ``"adaptive"``.
        """
        n = self.n_neurons
        idx, times = self._sorted_events()
        order = np.argsort(idx, kind="stable")
        bounds = np.searchsorted(idx[order], np.arange(n + 1))
        per = np.split(times[order], bounds[1:-1])
        out = np.empty(n, dtype=object)
        for k in range(n):
            out[k] = per[k]
        return out.reshape(tuple(self._shape)) if len(self._shape) else out[0]

    def spike_count(self) -> torch.Tensor:
        """Number of spikes per neuron, shape ``shape`` (torch, the run's dtype)."""
        if self._spikes is not None and self._events is None and self._sorted is None:
            return self._spikes.sum(0)
        # the raw events serve: counting needs no time order
        idx = self._events.index if self._events is not None else self.spike_index
        counts = np.bincount(idx, minlength=self.n_neurons)[: self.n_neurons]
        return torch.from_numpy(counts).to(self._dtype).reshape(self._shape)

    def firing_rate(self) -> torch.Tensor:
        """Mean firing rate per neuron over the whole run, in Hz."""
        return self.spike_count() / self.duration

    # -- traces --------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.traces[name]
        except KeyError:
            raise KeyError(f"{name!r} was not recorded; recorded: {sorted(self.traces)} "
                           f"(pass record=(..., {name!r}) to simulate)") from None

    def __getattr__(self, name: str) -> torch.Tensor:
        if name.startswith("_") or name == "traces":
            raise AttributeError(name)
        traces = self.__dict__.get("traces", {})
        if name in traces:
            return traces[name]
        raise AttributeError(f"Result has no attribute {name!r}; recorded traces: "
                             f"{sorted(traces)}")

    def plot(self, kind: str = "membrane", **kwargs: Any):
        """Plot this result with :mod:`neurosim.plot`.

        Args:
            kind: ``"membrane"`` (default: membrane traces, threshold line, spike markers),
                ``"traces"`` (every recorded variable, stacked), ``"raster"``, ``"rate"``
                (population rate), ``"isi"`` (ISI histogram) or ``"summary"``.
            **kwargs: passed to the plotting function, e.g. ``neurons=[0, 3]``, ``ax=ax``.

        Returns:
            The matplotlib Figure.
        """
        from .plot import plot_result

        return plot_result(self, kind, **kwargs)

    def save(self, path: Any, *, compress: bool = False) -> None:
        """Save to ``path`` in the documented ``neurosim-result`` format (:mod:`neurosim.io`)."""
        from .io import save_result

        save_result(self, path, compress=compress)

    def to_neo(self, neurons: Any = None) -> Any:
        """A ``neo.Segment`` with a SpikeTrain per neuron and an AnalogSignal per trace.

        Needs ``pip install "neurosim[neo]"``; see :func:`neurosim.io.to_neo`.
        """
        from .io import to_neo

        return to_neo(self, neurons)

    def __repr__(self) -> str:
        return (f"Result({type(self.model).__name__}, T={self._n_steps}, dt={self.dt}, "
                f"shape={tuple(self._shape)}, method={self.method!r}, "
                f"spikes={self.n_spikes}, traces={sorted(self.traces)})")


def sort_events(events: Any, dt: float, n_steps: int | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """``(index, time)`` of spike events sorted by time, ties by index.

    ``events`` has ``step`` (int), ``index`` (int) and ``offset`` (seconds inside
    the step) arrays, ordered by index within each step and block; where ``ordered``
    is true (the engine and the reference loop) they are in (step, index) order
    already and nothing moves. The time of a spike is
    ``step·dt + offset`` in float64. A stable counting sort by step does the work in
    O(events + steps); a sort by time follows only where precise offsets reorder
    spikes inside a step.
    """
    if events is None or len(events.step) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    from ._sort import by_step

    step = np.asarray(events.step)
    if n_steps is None:
        n_steps = int(step.max()) + 1
    index, times, monotonic = by_step(step, np.asarray(events.index),
                                      np.asarray(events.offset), dt, n_steps,
                                      ordered=bool(getattr(events, "ordered", False)))
    if not monotonic:
        again = np.lexsort((index, times))
        index, times = index[again], times[again]
    return index, times


__all__ = ["Result", "sort_events"]
