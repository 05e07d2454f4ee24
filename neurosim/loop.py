r"""The one time loop of neurosim: a step function applied over the time axis of an input.

:func:`run_steps` serves :func:`neurosim.simulate`, the sequence layers of
:mod:`neurosim.nn` and the sweeps. Step ``k`` covers :math:`[k\,dt, (k+1)\,dt]`
with ``input[k]`` held (or added at its start in jump mode); traces hold the state
at the end of each step, after any reset. It runs on one of two back ends, which
compute the same thing:

* the compiled engine (:mod:`neurosim.engine`), generated from the model's one
  definition: without a gradient, its simulation kernel (every model and
  integrator); with one, its training kernels (:mod:`neurosim.engine._train`: a
  forward and a BPTT backward kernel in one autograd Function; any traceable model
  under Euler or exact integration with spikes on the grid);
* the reference loop: :meth:`neurosim.Step.with_events` per step on tensors, the
  oracle the engine is tested against; autograd, any device, every option, and
  the one back end of :class:`~neurosim.conventions.PeerStep` (peer emulation).

``backend="fused"`` (the name of the former hand-written kernels) asks for one
kernel call with spikes on the grid, forward and backward, and raises where the
engine's training kernels cannot run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ._checks import check_choice
from ._validate import check_finite_input
from .engine import Events
from .errors import SimulationDiverged
from .peer_step import REFERENCE_ONLY, PeerStep
from .state import State
from .step import Step

BACKENDS = ("auto", "engine", "fused", "reference")


class StepsOutput(NamedTuple):
    """What :func:`run_steps` returns.

    Attributes:
        spikes: spike counts per step ``[T, *shape]`` (zeros for non-spiking models), or
            ``None`` where the caller asked for events only (``dense=False``).
        traces: the recorded state variables, each ``[T, *shape]``.
        final_state: the state after the last step.
        events: every spike as (step, flat index, offset inside the step in s), or ``None``
            unless ``events=True``.
        backend: the back end that ran (``"engine"`` or ``"reference"``).
    """

    spikes: torch.Tensor | None
    traces: dict[str, torch.Tensor]
    final_state: State
    events: Events | None
    backend: str


def _fused_reason(step: Step, u: torch.Tensor, state: State,
                  recurrent: torch.Tensor | None) -> str | None:
    """Why ``backend="fused"`` (one kernel call, spikes on the grid, forward and backward)
    cannot run this loop (``None``: it can)."""
    from .engine import _train

    if recurrent is not None:
        return "recurrent connections need the reference path"
    return _train.why_not(step, u, state)


def _engine_reason(step: Step, u: torch.Tensor, state: State,
                   recurrent: torch.Tensor | None) -> str | None:
    from . import engine

    if recurrent is not None:
        return "recurrent connections run on the reference loop"
    return engine.why_not(step, u, state)


def _train_reason(step: Step, u: torch.Tensor, state: State) -> str | None:
    """Why the generated training kernels cannot run this loop (``None``: they can)."""
    from .engine import _train

    return _train.why_not(step, u, state)


def _choose(step: Step | PeerStep, u: torch.Tensor, state: State, *,
            recurrent: torch.Tensor | None = None, backend: str = "auto") -> str:
    """:func:`backend_for`, with ``"short"``: the reference loop instead of a first compile."""
    check_choice("backend", backend, BACKENDS)
    if backend == "reference":
        return "reference"
    if isinstance(step, PeerStep):  # peer emulation: the reference loop's alone
        if backend != "auto":
            raise ValueError(f"backend={backend!r} cannot run this configuration: "
                             f"{REFERENCE_ONLY}")
        return "reference"
    if backend in ("auto", "engine"):
        reason = _engine_reason(step, u, state, recurrent)
        if reason is None:
            if backend == "engine":
                return "engine"
            from . import engine

            # a first short run finishes on the reference loop before a new kernel compiles
            return "engine" if engine.worth_compiling(step, u) else "short"
        from . import engine

        if recurrent is None and engine._needs_grad(step, u, state):
            train_reason = _train_reason(step, u, state)
            if train_reason is None:
                return "train"
            reason = train_reason
        if backend == "engine":
            raise ValueError(f"backend='engine' cannot run this configuration: {reason}")
    if backend == "fused":  # the name of the former hand-written kernels: grid spikes
        reason = _fused_reason(step, u, state, recurrent)
        if reason is not None:
            raise ValueError(f"backend='fused' cannot run this configuration: {reason}")
        from . import engine

        return "train" if engine._needs_grad(step, u, state) else "engine"
    return "reference"


def backend_for(step: Step | PeerStep, u: torch.Tensor, state: State, *,
                recurrent: torch.Tensor | None = None, backend: str = "auto") -> str:
    """The back end :func:`run_steps` uses (``ValueError`` if a requested one cannot run)."""
    chosen = _choose(step, u, state, recurrent=recurrent, backend=backend)
    return {"short": "reference", "train": "engine"}.get(chosen, chosen)


def run_steps(
    step: Step | PeerStep,
    input: torch.Tensor,
    state: State,
    record: Sequence[str] = (),
    *,
    recurrent: torch.Tensor | None = None,
    events: bool = False,
    dense: bool = True,
    progress: bool = False,
    backend: str = "auto",
    check_finite: bool = False,
) -> StepsOutput:
    r"""Apply ``step`` to every time slice of ``input`` (the one time loop; see the module docs).

    Args:
        step: the step function (:func:`~neurosim.discretise`), or a
            :class:`~neurosim.conventions.PeerStep` around one (reference loop only).
        input: ``[T, *shape]``, already of the state's shape, dtype and device.
        state: the initial state (``state["z"]``, the previous spikes, with ``recurrent``).
        record: state variables to record.
        recurrent: optional weights ``W`` ``[n, n]`` of dense recurrence: the input of
            step *k* is :math:`u_k + W z_{k-1}`, and the state carries the spikes ``z``.
        events: also return every spike as (step, index, offset) :class:`~neurosim.engine.Events`.
        dense: return the dense spike counts ``[T, *shape]`` (``False``: ``spikes`` may be
            ``None`` when the engine runs; the events carry the spikes).
        progress: show a progress bar.
        backend: ``"auto"`` (the engine's simulation kernel without gradients, its
            training kernels with them where they apply, else the reference loop; a
            short run without gradients whose kernel is not compiled yet runs on the
            reference loop, which finishes before a compile would:
            :func:`neurosim.engine.worth_compiling`), ``"engine"``, ``"fused"`` (grid
            spikes in one kernel call, forward and backward) or ``"reference"``; a
            requested back end that cannot run raises ``ValueError`` saying why.
        check_finite: raise ``ValueError`` if ``input`` holds NaN or infinity (the
            engine's kernels check as they stream the input anyway).

    Returns:
        A :class:`StepsOutput`.

    Raises:
        SimulationDiverged: a state variable became non-finite (every back end checks).
    """
    u = input
    record = tuple(record)
    chosen = _choose(step, u, state, recurrent=recurrent, backend=backend)
    if chosen == "short":
        from . import engine

        engine.defer(step, u)  # the next run of this structure compiles
        chosen = "reference"
    if chosen == "engine":
        from . import engine

        out = engine.run(step, u, state, record, progress=progress,
                         dense=u.dtype if dense else None)
        spikes = out.spikes
        if dense and not step.model.spiking:
            spikes = torch.zeros_like(u)
        return StepsOutput(spikes, out.traces, out.final_state,
                           out.events if events else None, "engine")
    if chosen == "train":
        return _run_train(step, u, state, record, events, progress)
    if check_finite:
        check_finite_input(u)
    return _run_reference(step, u, state, record, recurrent, events, progress)


def _run_reference(step: Step | PeerStep, u: torch.Tensor, state: State, record: tuple[str, ...],
                   recurrent: torch.Tensor | None, events: bool, progress: bool) -> StepsOutput:
    T = u.shape[0]
    spikes_out: list[torch.Tensor] = []
    traces: dict[str, list[torch.Tensor]] = {n: [] for n in record}
    ev_step: list[torch.Tensor] = []
    ev_index: list[torch.Tensor] = []
    ev_offset: list[torch.Tensor] = []
    names = step.model.state_names
    for k in tqdm(range(T), disable=not progress, desc="simulate", unit="step"):
        x = u[k]
        if recurrent is not None:
            x = x + torch.nn.functional.linear(state["z"], recurrent)
        s, new_state, evs = step.with_events(state, x)
        if recurrent is not None:
            new_state["z"] = s
        _check_finite_state(new_state, names, k, step)
        state = new_state
        spikes_out.append(s)
        for n in record:
            traces[n].append(state[n])
        if events:
            for ev in evs:
                idx = ev.mask.reshape(-1).nonzero().squeeze(1)
                ev_step.append(torch.full_like(idx, k))
                ev_index.append(idx)
                ev_offset.append(ev.offset.detach().reshape(-1)[idx])
    ev = None
    if events:
        if ev_index:
            # rounds of one step come one after the other: order each step by index
            step_ = torch.cat(ev_step).cpu().numpy()
            index = torch.cat(ev_index).cpu().numpy()
            offset = torch.cat(ev_offset).cpu().numpy()
            order = np.lexsort((index, step_))
            ev = Events(step_[order], index[order], offset[order], ordered=True)
        else:
            ev = Events(np.zeros(0, np.int64), np.zeros(0, np.int64),
                        np.zeros(0, torch.empty((), dtype=u.dtype).numpy().dtype))
    return StepsOutput(torch.stack(spikes_out), {n: torch.stack(v) for n, v in traces.items()},
                       state, ev, "reference")


def _check_finite_state(state: State, names: tuple[str, ...], k: int,
                        step: Step | PeerStep) -> None:
    """Raise :class:`SimulationDiverged` if a state variable is not finite after step ``k``,
    or outside the model's declared plausible range (``state_ranges``).

    The culprit is the first element (flat index) with an offending variable, and at it the
    first such variable in state order: what the compiled engine reports.
    """
    ranges = step.model.declared_ranges()
    flags = []
    for name in names:
        value = state[name].detach()
        bad = ~torch.isfinite(value)
        if name in ranges:
            lo, hi = ranges[name]
            bad = bad | (value < lo) | (value > hi)
        flags.append(bad.reshape(-1))
    if not any(bool(f.any()) for f in flags):
        return
    bad_any = torch.stack(flags).any(dim=0)
    element = int(bad_any.nonzero()[0])
    q = next(q for q, f in enumerate(flags) if bool(f[element]))
    name = names[q]
    value = float(state[name].detach().reshape(-1)[element])
    raise SimulationDiverged.at(
        type(step.model).__name__, variable=name, neuron=element, step=k, dt=step.dt,
        method=step.integrator.name, value=value,
        bounds=ranges.get(name) if math.isfinite(value) else None)


def _run_train(step: Step, u: torch.Tensor, state: State, names: tuple[str, ...],
               events: bool, progress: bool) -> StepsOutput:
    """:func:`run_steps` on the generated training kernels (:mod:`neurosim.engine._train`)."""
    from .engine import _announce, _train

    def call(chunk: torch.Tensor, state: State, record: tuple[str, ...]) -> _train.TrainOutput:
        return _train.run(step, chunk, state, announce=_announce)

    return _run_grid(step, u, state, names, events, progress, call, "engine")


def _run_grid(step: Step, u: torch.Tensor, state: State | None, names: tuple[str, ...],
              events: bool, progress: bool, call, label: str) -> StepsOutput:
    """Run ``call(chunk, state, record)`` (a grid-spike kernel) over ``u``, with events as
    the reference step reports them."""
    model, dt = step.model, step.dt
    T = u.shape[0]
    # spike times after a refractory segment need the refractory trace
    refractory = events and model.spiking and (_any_positive(model.refractory_period) or (
        state is not None and _any_positive(state["refrac"])))
    inner = tuple(names) + (("refrac",) if refractory and "refrac" not in names else ())
    outs = []
    start_state = state
    if not progress:  # one call on the input itself (a slice would add a gradient copy)
        outs.append(call(u, state, inner))
        state = outs[0].final_state
    else:
        n_chunks = min(T, 100)
        bounds = np.linspace(0, T, n_chunks + 1).astype(int)
        for k in tqdm(range(n_chunks), desc="simulate", unit="chunk"):
            outs.append(call(u[bounds[k]:bounds[k + 1]], state, inner))
            state = outs[-1].final_state
    traces = {n: torch.cat([o.traces[n] for o in outs]) if len(outs) > 1 else outs[0].traces[n]
              for n in inner}
    shape = u.shape[1:]
    if model.spiking:
        spikes = torch.cat([o.spikes for o in outs]) if len(outs) > 1 else outs[0].spikes
    else:
        spikes = torch.zeros((T, *shape), dtype=u.dtype, device=u.device)
    if not events:
        return StepsOutput(spikes, {n: traces[n] for n in names}, state, None, label)
    # offsets as the reference step reports them: the segment end in the step,
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
    # nonzero walks the raster row by row: (step, index) order
    ev = Events(k.numpy(), index.numpy(), offset.contiguous().numpy(), ordered=True)
    return StepsOutput(spikes, {n: traces[n] for n in names}, state, ev, label)


def _any_positive(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool((value.detach() > 0).any())
    return float(value) > 0


__all__ = ["BACKENDS", "StepsOutput", "backend_for", "run_steps"]
