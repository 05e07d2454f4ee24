"""The one simulation time loop, and its :class:`Result`.

Step ``k`` of a simulation covers ``[k·dt, (k+1)·dt]`` with ``input[k]`` held
constant (or added at its start in jump mode). Traces record the state at the
end of each step, after any reset, so ``result.t[k] = (k+1)·dt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import check_choice, check_dt
from .integrators import Integrator
from .models.base import NeuronModel
from .state import State
from .step import Step, discretise
from .surrogate import SurrogateLike


class Result:
    """The outcome of :func:`simulate`.

    Attributes:
        t: end time of each step, in seconds, shape ``[T]``.
        spikes: spike counts per step, shape ``[T, *shape]`` (0/1 unless a neuron
            fires more than once in a step, possible with precise spike times).
        traces: recorded state variables by name, each ``[T, *shape]``; also
            reachable as ``result.v`` or ``result["v"]``.
        spike_index: flat (row-major) neuron index of every spike, sorted by time.
        spike_time: time of every spike in seconds (float64), sorted.
        final_state: the state after the last step (pass it as ``state=`` to continue).
        model, dt, method: what was simulated.
    """

    def __init__(self, *, t: torch.Tensor, spikes: torch.Tensor,
                 traces: dict[str, torch.Tensor], spike_index: np.ndarray,
                 spike_time: np.ndarray, final_state: State, model: NeuronModel, dt: float,
                 method: str) -> None:
        self.t = t
        self.spikes = spikes
        self.traces = traces
        self.spike_index = spike_index
        self.spike_time = spike_time
        self.final_state = final_state
        self.model = model
        self.dt = dt
        self.method = method

    @property
    def shape(self) -> torch.Size:
        """The shape ``[*batch, *neurons]`` of one time slice."""
        return self.spikes.shape[1:]

    @property
    def duration(self) -> float:
        """Simulated time in seconds."""
        return self.dt * self.spikes.shape[0]

    def __getitem__(self, name: str) -> torch.Tensor:
        try:
            return self.traces[name]
        except KeyError:
            raise KeyError(f"{name!r} was not recorded; recorded: {sorted(self.traces)} "
                           f"(pass record=(..., {name!r}) to simulate)") from None

    def __getattr__(self, name: str) -> torch.Tensor:
        if name.startswith("__") or name == "traces":
            raise AttributeError(name)
        traces = self.__dict__.get("traces", {})
        if name in traces:
            return traces[name]
        raise AttributeError(f"Result has no attribute {name!r}; recorded traces: "
                             f"{sorted(traces)}")

    @property
    def spike_times(self) -> np.ndarray:
        """Spike times per neuron: an object array of ``shape``, each entry a float64 array (s).

        Precise (not on the grid) with ``method="exact"`` and ``"adaptive"``.
        """
        n = int(np.prod(tuple(self.shape))) if len(self.shape) else 1
        out = np.empty(n, dtype=object)
        order = np.argsort(self.spike_index, kind="stable")
        idx, times = self.spike_index[order], self.spike_time[order]
        bounds = np.searchsorted(idx, np.arange(n + 1))
        for k in range(n):
            out[k] = times[bounds[k]:bounds[k + 1]]
        return out.reshape(tuple(self.shape)) if len(self.shape) else out[0]

    def spike_count(self) -> torch.Tensor:
        """Number of spikes per neuron, shape ``shape``."""
        return self.spikes.sum(0)

    def firing_rate(self) -> torch.Tensor:
        """Mean firing rate per neuron over the whole run, in Hz."""
        return self.spike_count() / self.duration

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

    def __repr__(self) -> str:
        return (f"Result({type(self.model).__name__}, T={self.spikes.shape[0]}, dt={self.dt}, "
                f"shape={tuple(self.shape)}, method={self.method!r}, "
                f"spikes={self.spike_time.size}, traces={sorted(self.traces)})")


def _as_input(input: Any, check_finite: bool = True) -> torch.Tensor:
    if not isinstance(input, torch.Tensor):
        try:
            input = torch.as_tensor(np.asarray(input))
        except (TypeError, ValueError) as err:
            raise ValueError(f"input must be a tensor [T, *neurons], got "
                             f"{type(input).__name__}: {err}") from None
    if not input.is_floating_point():
        input = input.to(torch.get_default_dtype())
    if input.dim() == 0:
        raise ValueError("input must have a leading time dimension [T, *neurons], got a "
                         "scalar of shape ()")
    if input.shape[0] == 0:
        raise ValueError(f"input must have at least one time step, got shape "
                         f"{tuple(input.shape)}")
    if check_finite and not bool(torch.isfinite(input.detach()).all()):
        raise ValueError(f"input must be finite, got {int((~torch.isfinite(input)).sum())} "
                         f"non-finite values in a tensor of shape {tuple(input.shape)}")
    return input


def _element_shape(u: torch.Tensor, model: NeuronModel) -> torch.Size:
    """The shape ``[*batch, *neurons]`` of one time slice: input and parameters broadcast."""
    try:
        return torch.broadcast_shapes(u.shape[1:], model.param_shape())
    except RuntimeError:
        raise ValueError(f"input of shape {tuple(u.shape)} ([T, *neurons]) does not broadcast "
                         f"with the parameter shape {tuple(model.param_shape())} of "
                         f"{type(model).__name__}") from None


def _record_names(record: Any, model: NeuronModel) -> tuple[str, ...]:
    available = model.state_names + (("refrac",) if model.spiking else ())
    if record is None:
        return ()
    if isinstance(record, str):
        record = available if record == "all" else (record,)
    record = tuple(record)
    for name in record:
        if name not in available:
            raise ValueError(f"record: {type(model).__name__} has no state variable {name!r}; "
                             f"available: {available} or 'all'")
    return record


def _check_state(state: State, model: NeuronModel, shape: torch.Size) -> None:
    needed = model.state_names + (("refrac",) if model.spiking else ())
    for name in needed:
        if name not in state:
            raise ValueError(f"state is missing the variable {name!r}; "
                             f"use model.initial_state(shape)")
        if state[name].shape != shape:
            raise ValueError(f"state[{name!r}] has shape {tuple(state[name].shape)}, expected "
                             f"{tuple(shape)} (the input shape without time)")


def simulate(
    model: NeuronModel,
    input: torch.Tensor,
    dt: float,
    method: str | Integrator = "exact",
    *,
    record: Iterable[str] | str | None = ("v",),
    surrogate: SurrogateLike = "superspike",
    state: State | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    precise: bool | None = None,
    detach_reset: bool = False,
    progress: bool = False,
    backend: str = "auto",
) -> Result:
    """Simulate ``model`` driven by ``input`` on a grid of ``dt`` seconds.

    Args:
        model: the neuron model; tensor parameters give heterogeneous populations.
        input: ``[T, *neurons]`` or ``[T, *batch, *neurons]``; a current (held over
            each step) or jumps, per the model's ``input_mode``. Its dtype
            (float32/float64) and device are used throughout. Its non-time shape is
            broadcast against the parameter shape.
        dt: step in seconds, > 0.
        method: ``"exact"`` (default), ``"euler"``, ``"rk4"``, ``"adaptive"`` or an integrator.
        record: state variables to record (``"all"``, a name, names, or ``None``).
        surrogate: surrogate gradient of the spike function.
        state: initial state (default: the model at rest).
        rtol, atol: tolerances for ``"adaptive"`` (defaults 1e-6, 1e-9).
        precise: for ``"exact"``, locate spikes inside steps (default True).
        detach_reset: cut the gradient through the reset.
        progress: show a progress bar over time steps.
        backend: ``"auto"`` (default) runs the fused kernels of :mod:`neurosim.fused`
            where they support the configuration (LI/LIF/IF/ALIF under ``"euler"``
            or exact integration with ``precise=False``; CPU) and the reference
            step loop otherwise; ``"reference"`` always runs the step loop;
            ``"fused"`` requires the fused kernels (``ValueError`` saying why not).
            Both give the same Result (same spikes, traces to round-off).

    Returns:
        A :class:`Result`. Gradients flow from its tensors to ``input`` and to
        tensor parameters that require grad.

    Example:
        >>> res = simulate(LIF(tau_mem=20e-3), torch.full((1000, 1), 1.5), dt=1e-4)
        >>> res.spike_times[0][:2]   # seconds
    """
    dt = check_dt(dt)
    if not isinstance(model, NeuronModel):
        raise ValueError(f"model must be a neurosim model (LIF, ALIF, ...), got {model!r}")
    u = _as_input(input, check_finite=False)  # checked by run_steps, or by the fused kernel
    shape = _element_shape(u, model)
    if shape != u.shape[1:]:
        u = u.expand(u.shape[0], *shape)
    names = _record_names(record, model)
    step: Step = discretise(model, dt, method, surrogate, detach_reset=detach_reset,
                            rtol=rtol, atol=atol, precise=precise)
    if state is None:
        state = model.initial_state(shape, dtype=u.dtype, device=u.device)
    else:
        _check_state(state, model, shape)
    out = run_steps(step, u, state, names, events=True, progress=progress, backend=backend,
                    check_finite=True)
    t = (torch.arange(1, u.shape[0] + 1, dtype=torch.float64) * dt).to(dtype=u.dtype,
                                                                       device=u.device)
    return Result(
        t=t,
        spikes=out.spikes,
        traces=out.traces,
        spike_index=out.spike_index,
        spike_time=out.spike_time,
        final_state=out.final_state,
        model=model,
        dt=dt,
        method=step.integrator.name,
    )


class StepsOutput(NamedTuple):
    """What :func:`run_steps` returns.

    Attributes:
        spikes: spike counts per step ``[T, *shape]`` (zeros for non-spiking models).
        traces: the recorded state variables, each ``[T, *shape]``.
        final_state: the state after the last step.
        spike_index, spike_time: flat neuron index and time (s, float64) of every
            spike, sorted by time (``None`` unless ``events=True``).
    """

    spikes: torch.Tensor
    traces: dict[str, torch.Tensor]
    final_state: State
    spike_index: np.ndarray | None
    spike_time: np.ndarray | None


def _fused_reason(step: Step, u: torch.Tensor, recurrent: torch.Tensor | None) -> str | None:
    """Why the fused kernels cannot run this loop (``None``: they can)."""
    from . import fused

    if recurrent is not None:
        return "recurrent connections need the reference path"
    if step.multi_spike or step.reset_delay != "none" or step.v_min is not None:
        return "multi_spike, reset_delay and v_min need the reference path"
    return fused.why_not(step.model, step.integrator, surrogate=step.surrogate,
                         dtype=u.dtype, device=u.device)


def run_steps(
    step: Step,
    input: torch.Tensor,
    state: State,
    record: Sequence[str] = (),
    *,
    recurrent: torch.Tensor | None = None,
    events: bool = False,
    progress: bool = False,
    backend: str = "auto",
    check_finite: bool = False,
) -> StepsOutput:
    r"""The one time loop of neurosim: ``step`` applied to every time slice of ``input``.

    :func:`simulate`, the sequence layers of :mod:`neurosim.nn` and the sweeps all
    run through it. Step ``k`` covers :math:`[k\,dt, (k+1)\,dt]` with ``input[k]``;
    traces hold the state at the end of each step, after any reset.

    Args:
        step: the step function (:func:`~neurosim.discretise`).
        input: ``[T, *shape]``, already of the state's shape, dtype and device.
        state: the initial state (``state["z"]``, the previous spikes, with ``recurrent``).
        record: state variables to record.
        recurrent: optional weights ``W`` ``[n, n]`` of dense recurrence: the input of
            step *k* is :math:`u_k + W z_{k-1}`, and the state carries the spikes ``z``.
        events: also collect every spike's neuron index and time (seconds).
        progress: show a progress bar.
        backend: ``"auto"``: the fused kernels of :mod:`neurosim.fused` where they
            support the configuration, else the reference loop; ``"reference"``;
            ``"fused"`` (``ValueError`` saying why not, where they cannot).
        check_finite: raise ``ValueError`` if ``input`` holds NaN or infinity. The fused
            kernels always count non-finite inputs as they stream them (no extra pass);
            the reference loop checks first only when asked.

    Returns:
        A :class:`StepsOutput`.
    """
    check_choice("backend", backend, ("auto", "reference", "fused"))
    u = input
    record = tuple(record)
    if backend != "reference":
        reason = _fused_reason(step, u, recurrent)
        if reason is None:
            return _run_fused(step, u, state, record, events, progress)
        if backend == "fused":
            raise ValueError(f"backend='fused' cannot run this configuration: {reason}")
    if check_finite:
        _as_input(u)
    dt = step.dt
    T = u.shape[0]
    spikes_out: list[torch.Tensor] = []
    traces: dict[str, list[torch.Tensor]] = {n: [] for n in record}
    ev_index: list[torch.Tensor] = []
    ev_time: list[torch.Tensor] = []
    for k in tqdm(range(T), disable=not progress, desc="simulate", unit="step"):
        x = u[k]
        if recurrent is not None:
            x = x + torch.nn.functional.linear(state["z"], recurrent)
        s, new_state, evs = step.with_events(state, x)
        if recurrent is not None:
            new_state["z"] = s
        state = new_state
        spikes_out.append(s)
        for n in record:
            traces[n].append(state[n])
        if events:
            for ev in evs:
                idx = ev.mask.reshape(-1).nonzero().squeeze(1)
                ev_index.append(idx)
                ev_time.append(k * dt + ev.offset.detach().reshape(-1)[idx].to(torch.float64))
    index = times = None
    if events and ev_index:
        index = torch.cat(ev_index).cpu().numpy()
        times = torch.cat(ev_time).cpu().numpy()
        order = np.lexsort((index, times))
        index, times = index[order], times[order]
    elif events:
        index, times = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    return StepsOutput(torch.stack(spikes_out), {n: torch.stack(v) for n, v in traces.items()},
                       state, index, times)


def _run_fused(step: Step, u: torch.Tensor, state: State | None, names: tuple[str, ...],
               events: bool, progress: bool) -> StepsOutput:
    """:func:`run_steps` on the fused kernels (one call, or chunks with a progress bar)."""
    from . import fused

    model, dt = step.model, step.dt
    T = u.shape[0]
    # spike times after a refractory segment need the refractory trace
    refractory = events and model.spiking and (fused._any_positive(model.t_ref) or (
        state is not None and fused._any_positive(state["refrac"])))
    inner = tuple(names) + (("refrac",) if refractory and "refrac" not in names else ())
    outs = []
    start_state = state

    def call(chunk: torch.Tensor, state: State | None) -> fused.FusedOutput:
        return fused.run(model, chunk, dt, step.integrator, record=inner,
                         surrogate=step.surrogate, state=state, detach_reset=step.detach_reset)

    if not progress:  # one call on the input itself (a slice would add a gradient copy)
        outs.append(call(u, state))
        state = outs[0].final_state
    else:
        n_chunks = min(T, 100)
        bounds = np.linspace(0, T, n_chunks + 1).astype(int)
        for k in tqdm(range(n_chunks), desc="simulate", unit="chunk"):
            outs.append(call(u[bounds[k]:bounds[k + 1]], state))
            state = outs[-1].final_state
    traces = {n: torch.cat([o.traces[n] for o in outs]) if len(outs) > 1 else outs[0].traces[n]
              for n in inner}
    shape = u.shape[1:]
    if model.spiking:
        spikes = torch.cat([o.spikes for o in outs]) if len(outs) > 1 else outs[0].spikes
    else:
        spikes = torch.zeros((T, *shape), dtype=u.dtype, device=u.device)
    if not events:
        return StepsOutput(spikes, {n: traces[n] for n in names}, state, None, None)
    # spike times as the reference step reports them: k*dt + the segment end in the step,
    # h_r + (dt - h_r) in the state dtype after a refractory segment h_r
    flat = spikes.detach().reshape(T, -1)
    k, index = flat.nonzero(as_tuple=True)
    dt_s = torch.full((), dt, dtype=u.dtype)
    offset = dt_s.expand(k.shape)
    if refractory and k.numel():
        r_all = traces["refrac"].detach().reshape(T, -1)
        if start_state is None:
            r0 = torch.zeros(flat.shape[1], dtype=u.dtype)
        else:
            r0 = start_state["refrac"].detach().to(u.dtype).reshape(-1)
        r_prev = torch.where(k > 0, r_all[(k - 1).clamp(min=0), index], r0[index])
        h_r = torch.minimum(r_prev, dt_s)
        offset = torch.where(r_prev > 0, h_r + (dt_s - h_r), offset)
    times = k.numpy() * dt + offset.to(torch.float64).numpy()
    index = index.numpy()
    order = np.lexsort((index, times))
    return StepsOutput(spikes, {n: traces[n] for n in names}, state, index[order],
                       times[order])


__all__ = ["Result", "StepsOutput", "run_steps", "simulate"]
