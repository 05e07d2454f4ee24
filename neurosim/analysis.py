r"""Measures of spike trains and models: pure computations, no plotting.

:mod:`neurosim.plot` draws these measures and :mod:`neurosim.sweep` tabulates
them; both call the functions here, so each measure has one implementation.

Spike trains are passed in one of two forms:

* a :class:`~neurosim.Result` (anything with ``spike_index``, ``spike_time``,
  ``shape`` and ``duration``): the measures read its spike *events* (flat neuron
  index and time of every spike), never a dense ``[T, N]`` spike tensor;
* a sequence of 1-D arrays of spike times in seconds, one per neuron
  (``result.spike_times.ravel()`` has that form);
* :class:`SpikeEvents` from :func:`events` (to sort the events once when
  computing several measures).

Return types: every function returns NumPy arrays (float64 unless stated), never
torch tensors, so the measures of a Result combine directly with
``result.spike_times`` (NumPy) and with each other. Times are in seconds, rates in
Hz; "per neuron" means over the flattened neuron shape ``[*batch, *neurons]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch

from ._checks import check_dt

if TYPE_CHECKING:  # pragma: no cover
    from .models.base import NeuronModel

#: a Result, or a sequence of per-neuron spike-time arrays (s)
SpikeTrains = Any


class SpikeEvents(NamedTuple):
    """All spikes of a population as events, sorted by (neuron, time): ``index``, the flat
    neuron index of each spike (int64); ``time``, its time in seconds (float64); ``n``, the
    number of neurons (the flattened neuron shape); ``duration``, the length of the
    recording in seconds, or ``None`` when unknown."""

    index: np.ndarray
    time: np.ndarray
    n: int
    duration: float | None

    @property
    def counts(self) -> np.ndarray:
        """Spikes per neuron (int64, shape ``[n]``)."""
        return np.bincount(self.index, minlength=self.n)

    @property
    def starts(self) -> np.ndarray:
        """Position in ``index``/``time`` of each neuron's first spike (shape ``[n]``)."""
        c = self.counts
        return np.concatenate([[0], np.cumsum(c)[:-1]]).astype(np.int64) if self.n else c


def _seconds(name: str, value: Any) -> float:
    """A finite duration > 0 in seconds; the ValueError names the parameter."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0 s, got {value!r}")
    return float(value)


def _np(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _is_result(x: Any) -> bool:
    return all(hasattr(x, a) for a in ("spike_index", "spike_time", "shape", "duration"))


def events(spikes: SpikeTrains) -> SpikeEvents:
    """The spike events of a Result or of per-neuron spike-time arrays.

    Args:
        spikes: a :class:`~neurosim.Result`, a sequence of 1-D arrays of spike
            times (s), one per neuron, or :class:`SpikeEvents` (returned as is).

    Returns:
        :class:`SpikeEvents` sorted by neuron, then time.

    Raises:
        ValueError: for a plain numeric array (ambiguous: one train or a dense
            raster?) or non-finite spike times.
    """
    if isinstance(spikes, SpikeEvents):
        return spikes
    if _is_result(spikes):
        shape = tuple(spikes.shape)
        n = int(np.prod(shape)) if shape else 1
        idx = np.asarray(spikes.spike_index, dtype=np.int64).reshape(-1)
        t = np.asarray(spikes.spike_time, dtype=np.float64).reshape(-1)
        duration = float(spikes.duration)
    else:
        if isinstance(spikes, torch.Tensor) or \
                (isinstance(spikes, np.ndarray) and spikes.dtype.kind != "O"):
            raise ValueError("spikes must be a Result or a sequence of per-neuron spike-time "
                             f"arrays, got a numeric array of shape {tuple(spikes.shape)}; wrap "
                             "a single train as [times]")
        try:
            trains = [np.asarray(_np(tr), dtype=np.float64).reshape(-1) for tr in spikes]
        except (TypeError, ValueError) as err:
            raise ValueError(f"spikes must be a Result or a sequence of per-neuron spike-time "
                             f"arrays (s): {err}") from None
        for k, tr in enumerate(trains):
            if not np.all(np.isfinite(tr)):
                raise ValueError(f"spikes: train {k} contains non-finite spike times")
        n = len(trains)
        idx = np.concatenate([np.full(tr.size, k, dtype=np.int64) for k, tr in
                              enumerate(trains)]) if n else np.zeros(0, np.int64)
        t = np.concatenate(trains) if n else np.zeros(0)
        duration = None
    order = np.lexsort((t, idx))
    return SpikeEvents(idx[order], t[order], n, duration)


def spike_trains(spikes: SpikeTrains) -> list[np.ndarray]:
    """Per-neuron spike-time arrays (s, float64, sorted), over the flattened neuron shape."""
    ev = events(spikes)
    bounds = np.searchsorted(ev.index, np.arange(ev.n + 1))
    return [ev.time[bounds[k]:bounds[k + 1]] for k in range(ev.n)]


def spike_counts(spikes: SpikeTrains) -> np.ndarray:
    """Number of spikes per neuron (int64, shape ``[n]``)."""
    return events(spikes).counts


def firing_rate(spikes: SpikeTrains, duration: float | None = None) -> np.ndarray:
    """Mean firing rate per neuron in Hz: spike count / duration.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).
        duration: recording length in seconds (default: the Result's duration;
            required for plain spike-time arrays).

    Returns:
        float64 array ``[n]`` in Hz (NumPy, unlike :meth:`Result.firing_rate`).
    """
    ev = events(spikes)
    dur = ev.duration if duration is None else _seconds("duration", duration)
    if dur is None:
        raise ValueError("duration is required for spike-time arrays (s); a Result knows it")
    return ev.counts / dur


def first_spike_latency(spikes: SpikeTrains) -> np.ndarray:
    """Time of each neuron's first spike in seconds (NaN without spikes), shape ``[n]``."""
    ev = events(spikes)
    out = np.full(ev.n, np.nan)
    has = ev.counts > 0
    out[has] = ev.time[ev.starts[has]]
    return out


def isi(spikes: SpikeTrains) -> list[np.ndarray]:
    """Interspike intervals (s) of each neuron: ``np.diff`` of its sorted spike times.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).

    Returns:
        One float64 array per neuron (empty for fewer than two spikes).
    """
    return [np.diff(tr) for tr in spike_trains(spikes)]


def isi_stats(spikes: SpikeTrains) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Mean and standard deviation (``ddof=0``) of each neuron's interspike intervals.

    Vectorised over neurons (no Python loop), so it serves sweeps of many
    thousands of parameter sets.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).

    Returns:
        ``(mean, std, count)``: float64 arrays ``[n]`` in seconds (NaN where a neuron
        has no interval) and the number of intervals per neuron (int64).
    """
    ev = events(spikes)
    same = ev.index[1:] == ev.index[:-1]
    intervals = np.diff(ev.time)[same]
    owner = ev.index[1:][same]
    count = np.bincount(owner, minlength=ev.n)
    total = np.bincount(owner, weights=intervals, minlength=ev.n)
    safe = np.maximum(count, 1)
    mean = np.where(count > 0, total / safe, np.nan)
    dev2 = np.bincount(owner, weights=(intervals - mean[owner]) ** 2, minlength=ev.n)
    std = np.where(count > 0, np.sqrt(dev2 / safe), np.nan)
    return mean, std, count


def cv_isi(spikes: SpikeTrains) -> np.ndarray:
    r"""Coefficient of variation of the interspike intervals, per neuron.

    .. math:: \mathrm{CV} = \frac{\mathrm{std}(\mathrm{ISI})}{\mathrm{mean}(\mathrm{ISI})}

    (population standard deviation, ``ddof=0``). 0 for a regular train, 1 for a
    Poisson process.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).

    Returns:
        float64 array ``[n]`` (dimensionless); NaN where the CV is undefined (fewer
        than two intervals, i.e. fewer than three spikes).
    """
    mean, std, count = isi_stats(spikes)
    ok = count >= 2
    return np.where(ok, std / np.where(ok, mean, 1.0), np.nan)


def padded_spike_times(spikes: SpikeTrains) -> np.ndarray:
    """All spike times (s), one row per neuron, NaN-padded to the largest count: ``[n, max]``."""
    ev = events(spikes)
    counts = ev.counts
    width = int(counts.max()) if ev.n else 0
    out = np.full((ev.n, width), np.nan)
    rank = np.arange(ev.index.size) - ev.starts[ev.index]
    out[ev.index, rank] = ev.time
    return out


def population_rate(spikes: SpikeTrains, bin_width: float = 1e-3, smooth: float | None = None,
                    duration: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""Population firing rate: spikes per neuron per second in time bins.

    .. math:: r_k = \frac{\#\{\text{spikes in } [k\Delta, (k+1)\Delta)\}}{N\,\Delta}

    With ``smooth`` = σ (seconds) the binned rate is convolved with a Gaussian of
    standard deviation σ, normalised at the edges (each output bin is divided by
    the kernel mass inside the recording), so a constant rate stays constant.

    Args:
        spikes: a :class:`~neurosim.Result` or per-neuron spike-time arrays (s).
        bin_width: bin width Δ in seconds, > 0.
        smooth: Gaussian kernel standard deviation σ in seconds, > 0, or ``None``.
        duration: length of the recording in seconds (default: the Result's duration,
            else the last spike time); spikes outside ``[0, duration]`` are ignored.

    Returns:
        ``(t, rate)``: float64 bin centres in seconds and the rate in Hz (per neuron).
    """
    bin_width = _seconds("bin_width", bin_width)
    ev = events(spikes)
    dur = ev.duration if duration is None else _seconds("duration", duration)
    if dur is None:
        dur = max(float(ev.time.max()) if ev.time.size else 0.0, bin_width)
    if ev.n == 0:
        raise ValueError("spikes: no neurons")
    n_bins = max(1, int(np.ceil(dur / bin_width - 1e-9)))
    edges = np.arange(n_bins + 1) * bin_width
    allt = ev.time[(ev.time >= 0) & (ev.time <= edges[-1])]  # outside the recording: ignored
    counts = np.bincount(np.minimum((allt / bin_width).astype(np.int64), n_bins - 1),
                         minlength=n_bins).astype(np.float64)
    rate = counts / (ev.n * bin_width)
    if smooth is not None:
        smooth = _seconds("smooth", smooth)
        half = int(np.ceil(4 * smooth / bin_width))
        lags = np.arange(-half, half + 1) * bin_width
        kernel = np.exp(-0.5 * (lags / smooth) ** 2)
        num = np.convolve(rate, kernel, mode="full")[half:half + n_bins]
        den = np.convolve(np.ones(n_bins), kernel, mode="full")[half:half + n_bins]
        rate = num / den
    return (edges[:-1] + edges[1:]) / 2, rate


# --------------------------------------------------------------------------------------
# f-I curve
# --------------------------------------------------------------------------------------
def default_method(model: NeuronModel) -> str:
    """The integration method that suits ``model`` for measures of its firing.

    ``"exact"`` (exact propagator, precise spike times) when the model is linear
    between spikes (it has a :meth:`~neurosim.models.NeuronModel.linear_system`),
    else ``"adaptive"`` (error-controlled Dormand-Prince, precise spike times),
    which integrates every model (AdEx, EIF, Izhikevich, QIF, Hodgkin-Huxley...).
    """
    try:
        linear = model.linear_system() is not None
    except NotImplementedError:
        linear = False
    return "exact" if linear else "adaptive"


def fi_curve(model: NeuronModel, currents: Sequence[float] | np.ndarray | torch.Tensor,
             duration: float = 1.0, dt: float = 1e-4, method: str | None = None, *,
             transient: float = 0.0, measure: str = "isi", dtype: torch.dtype = torch.float64,
             progress: bool = False, **simulate_kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Firing rate against constant input current, from one batched simulation.

    The currents form a leading batch dimension, ``input[T, n_currents, *param_shape]``,
    so the whole curve (and every element of a heterogeneous model) is one call of
    :func:`~neurosim.simulate`.

    Args:
        model: a neuron model in current input mode (``input_target is None``).
        currents: constant input values, 1-D, in the model's input unit
            (``type(model).input_unit``: dimensionless for LIF, pA for AdEx,
            µA/cm² for Hodgkin-Huxley).
        duration: simulated time per current, in seconds.
        dt: time step in seconds.
        method: integration method (see :func:`~neurosim.simulate`); default
            :func:`default_method`: ``"exact"`` for models linear between spikes,
            else ``"adaptive"``, so every model works without choosing one.
        transient: initial time in seconds whose spikes are ignored.
        measure: ``"isi"``: the inverse mean interspike interval of the spikes after
            ``transient`` (0 with fewer than two; precise for regular firing);
            ``"count"``: spikes after ``transient`` divided by ``duration - transient``.
        dtype: floating dtype of the simulation.
        progress: show a progress bar.
        **simulate_kwargs: passed to :func:`~neurosim.simulate` (e.g. ``rtol``).

    Returns:
        ``(currents, rates)``: float64 NumPy arrays; ``rates`` has shape
        ``[n_currents, *param_shape]``, in Hz.

    Example:
        >>> I, f = fi_curve(LIF(tau_mem=20e-3, t_ref=2e-3), np.linspace(0, 3, 31), 0.5)
    """
    from . import simulate as _sim

    simulate = _sim if callable(_sim) else _sim.simulate
    if model.input_target is not None:
        raise ValueError(f"fi_curve needs a model in current input mode; {type(model).__name__} "
                         f"has input_mode={getattr(model, 'input_mode', None)!r} (pass "
                         "input_mode='current')")
    if measure not in ("isi", "count"):
        raise ValueError(f"measure must be 'isi' or 'count', got {measure!r}")
    dt = check_dt(dt)
    duration = _seconds("duration", duration)
    if not 0 <= transient < duration:
        raise ValueError(f"transient must be in [0, duration={duration}) s, got {transient!r}")
    if method is None:
        method = default_method(model)
    cur = torch.as_tensor(_np(currents), dtype=dtype).reshape(-1)
    if cur.numel() == 0:
        raise ValueError("currents must not be empty")
    pshape = tuple(model.param_shape())
    steps = int(round(duration / dt))
    drive = cur.reshape(1, -1, *([1] * len(pshape))).expand(steps, -1, *pshape)
    res = simulate(model, drive, dt, method, record=None, progress=progress, **simulate_kwargs)
    ev = events(res)
    keep = ev.time >= transient
    ev = SpikeEvents(ev.index[keep], ev.time[keep], ev.n, ev.duration)
    if measure == "count":
        rates = ev.counts / (res.duration - transient)
    else:
        counts = ev.counts
        has = counts >= 2
        first = ev.time[ev.starts[has]]
        last = ev.time[(ev.starts + counts - 1)[has]]
        rates = np.zeros(ev.n)
        rates[has] = (counts[has] - 1) / (last - first)
    return _np(cur), rates.reshape(cur.numel(), *pshape)


# --------------------------------------------------------------------------------------
# nullclines
# --------------------------------------------------------------------------------------
def grid_state(model: NeuronModel, x: str, y: str, xs: np.ndarray, ys: np.ndarray,
               fixed: Mapping[str, float] | None = None) -> dict[str, torch.Tensor]:
    """The state on the grid ``xs × ys`` of variables ``x`` and ``y`` (float64 tensors
    ``[len(ys), len(xs)]``), the other variables at ``fixed`` or at rest."""
    if tuple(model.param_shape()):
        raise ValueError(f"phase planes need scalar parameters; {type(model).__name__} has "
                         f"tensor parameters of shape {tuple(model.param_shape())}")
    names = model.state_names
    for var, what in ((x, "x"), (y, "y")):
        if var not in names:
            raise ValueError(f"{what}: {type(model).__name__} has no state variable {var!r}; "
                             f"it has {names}")
    if x == y:
        raise ValueError(f"x and y must be different state variables, both are {x!r}")
    extra = set(fixed or {}) - set(names)
    if extra:
        raise ValueError(f"fixed: {type(model).__name__} has no state variables {sorted(extra)}")
    X, Y = np.meshgrid(xs, ys)
    rest = model.rest()
    state = {}
    for n in names:
        if n == x:
            state[n] = torch.as_tensor(X)
        elif n == y:
            state[n] = torch.as_tensor(Y)
        else:
            value = (fixed or {}).get(n, rest[n])
            state[n] = torch.full(X.shape, float(value), dtype=torch.float64)
    return state


def _levels(xs: np.ndarray, ys: np.ndarray, z: np.ndarray) -> list[np.ndarray]:
    import contourpy

    gen = contourpy.contour_generator(xs, ys, z, line_type="Separate")
    return [np.asarray(seg) for seg in gen.lines(0.0)]


def check_range(name: str, r: Sequence[float]) -> tuple[float, float]:
    """``(low, high)`` as floats, finite with low < high; the ValueError names ``name``."""
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {r!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"{name} must be finite with low < high, got {r!r}")
    return lo, hi


def nullclines(model: NeuronModel, x: str, y: str, x_range: Sequence[float],
               y_range: Sequence[float], input: float = 0.0, n: int = 201,
               fixed: Mapping[str, float] | None = None) -> dict[str, list[np.ndarray]]:
    r"""Nullclines of a model in the plane of two state variables, computed generically.

    :meth:`~neurosim.models.NeuronModel.derivatives` is evaluated on an ``n × n`` grid
    with the input held at ``input``; the nullcline of variable *x* is the zero level
    set of :math:`\dot x`, traced with linear interpolation between grid points
    (exact for dynamics linear in the plane, error :math:`O(h^2)` in the grid step
    otherwise). Works for any model, e.g. LIF with a synapse (v, i), ALIF (v, b),
    Izhikevich or AdEx (v, w).

    Args:
        model: a neuron model with scalar parameters.
        x, y: names of the two state variables spanning the plane.
        x_range, y_range: (low, high) extent of the grid, in the variables' units
            (``type(model).voltage_unit`` / ``state_units``).
        input: the constant input, in ``type(model).input_unit``.
        n: grid points per axis, >= 3.
        fixed: values of the other state variables (default: their resting values).

    Returns:
        ``{x: segments, y: segments}`` plus ``"threshold": segments`` for spiking
        models: each a list of ``[k, 2]`` float64 arrays of (x, y) points.
    """
    if n < 3:
        raise ValueError(f"n must be >= 3, got {n!r}")
    xs = np.linspace(*check_range("x_range", x_range), int(n))
    ys = np.linspace(*check_range("y_range", y_range), int(n))
    state = grid_state(model, x, y, xs, ys, fixed)
    u = torch.full(state[x].shape, float(input), dtype=torch.float64)
    model64 = model.cast(torch.float64)
    with torch.no_grad():
        f = model64.derivatives(state, u)
        out = {x: _levels(xs, ys, _np(f[x])), y: _levels(xs, ys, _np(f[y]))}
        if model.spiking:
            try:
                d = _np(model64.threshold_distance(state))
                out["threshold"] = _levels(xs, ys, np.broadcast_to(d, state[x].shape))
            except NotImplementedError:
                pass
    return out


__all__ = [
    "SpikeEvents", "check_range", "cv_isi", "default_method", "events", "fi_curve",
    "firing_rate", "first_spike_latency", "grid_state", "isi", "isi_stats", "nullclines",
    "padded_spike_times", "population_rate", "spike_counts", "spike_trains",
]
