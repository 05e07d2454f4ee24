r"""The compiled simulation engine: every model and integrator, from the one definition.

:func:`run` executes the whole time loop of a :class:`~neurosim.Step` in one
generated numba kernel per (model structure, integrator, dtype): the model's
physics is traced once from its Python methods (:mod:`neurosim.engine._trace`)
and printed as scalar code together with the integrator
(:mod:`neurosim.engine._codegen`). It computes what the reference loop
(:meth:`neurosim.Step.with_events` applied step by step) computes — the same
spikes, spike times and traces to round-off — for

* every model: the built-in ones and any user-defined
  :class:`~neurosim.models.NeuronModel` whose methods use operators and the
  torch functions in :data:`neurosim.engine._trace.SUPPORTED`;
* every integrator: ``"euler"``, ``"rk4"``, ``"exponential_euler"``,
  ``"exact"`` (grid or precise spike times) and ``"adaptive"`` (Dormand–Prince
  5(4) with per-element error control and located crossings);
* every reset the model defines, refractoriness in seconds (also inside a step),
  heterogeneous tensor parameters and jump or current input.

It runs without autograd: where a gradient is needed, :func:`why_not` says so and
the caller uses the generated training kernels (:mod:`neurosim.engine._train`) or
the reference loop. Spikes leave the
kernel as events (step, element, offset inside the step), in time order per block;
a dense raster and traces are written only when asked for. A state that becomes
non-finite, or leaves its model's declared plausible range (``state_ranges``), stops
the run with :class:`~neurosim.errors.SimulationDiverged` naming the step, time,
element, variable and value.

The first use of a model structure and method compiles a kernel (a one-line
message on stderr says so, typically 2-10 s); the machine code is cached on disk
(:func:`neurosim.engine._codegen.cache_dir`) for later processes.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
import threading
from typing import NamedTuple

import numpy as np
import torch

from .._memory import buffer
from .._sort import merge_runs
from .._validate import check_finite_input
from ..errors import SimulationDiverged
from ..integrators import RK4, Adaptive, Euler, ExactExponential, ExponentialEuler
from ..state import State
from ..step import Step
from . import _codegen as C
from ._trace import ModelIR, TraceError, trace

_METHODS = {Euler: "euler", RK4: "rk4", ExponentialEuler: "exponential_euler",
            ExactExponential: "exact", Adaptive: "adaptive"}

#: a run uses one thread below this much work (element-steps times the operations of one
#: step, see :func:`_step_cost`: LIF up to ~4000 neurons x 1000 steps, AdEx with Euler up
#: to ~1e5 element-steps), where the threads' start and the merge of their events would
#: cost more than they save
SERIAL_WORK = 20_000_000
#: arithmetic operations of one step per integrator stage evaluation
_STAGES = {"euler": 1, "exponential_euler": 2, "rk4": 4, "exact": 1, "adaptive": 8}
_CORES = os.cpu_count() or 1


class Events(NamedTuple):
    """Spike events as the kernels produce them.

    Attributes:
        step: time-step index of each spike (int32 from the engine).
        index: flat (row-major) element index (int32 from the engine).
        offset: time of the spike inside its step, in seconds (state dtype).
        ordered: the events are in (step, index) order (the engine and the reference
            loop produce them so); ``False``: ordered by index within each step and
            block only, and a counting sort by step orders them.
    """

    step: np.ndarray
    index: np.ndarray
    offset: np.ndarray
    ordered: bool = False


class EngineOutput(NamedTuple):
    """What :func:`run` returns.

    Attributes:
        spikes: dense spike counts ``[T, *shape]`` if asked for (``dense=``), else ``None``.
        traces: recorded state variables, each ``[T, *shape]``.
        final_state: the state after the last step.
        events: every spike as :class:`Events`.
    """

    spikes: torch.Tensor | None
    traces: dict[str, torch.Tensor]
    final_state: State
    events: Events


_IR_CACHE: dict[tuple, ModelIR | TraceError] = {}


def _ir(model, dtype: torch.dtype) -> ModelIR:
    params = model.params()
    key = (type(model), tuple((k, v) for k, v in params.items()
                              if not isinstance(v, (torch.Tensor, float, int))
                              or isinstance(v, bool)),
           tuple(k for k, v in params.items() if v is None), dtype)
    hit = _IR_CACHE.get(key)
    if hit is None:
        try:
            hit = trace(model, dtype)
        except TraceError as err:
            hit = err
        if len(_IR_CACHE) > 256:
            _IR_CACHE.clear()
        _IR_CACHE[key] = hit
    if isinstance(hit, TraceError):
        raise hit
    return hit


def method_name(step: Step) -> str | None:
    """The engine's name of ``step``'s integrator, or ``None`` if it has no kernel for it."""
    return _METHODS.get(type(step.integrator))


def _needs_grad(step: Step, u: torch.Tensor, state: State | None) -> bool:
    if not torch.is_grad_enabled():
        return False
    if u.requires_grad:
        return True
    if state is not None and any(v.requires_grad for v in state.values()):
        return True
    return any(isinstance(v, torch.Tensor) and v.requires_grad
               for v in step.model.params().values())


def why_not(step: Step, u: torch.Tensor, state: State | None = None) -> str | None:
    """Why the engine cannot run ``step`` on ``u`` (``None``: it can).

    The engine runs core :class:`~neurosim.step.Step` objects; a wrapper such as
    :class:`~neurosim.conventions.PeerStep` (peer emulation) runs on the reference loop.
    """
    if not isinstance(step, Step):
        return f"{type(step).__name__} runs on the reference loop (the engine runs core steps)"
    method = method_name(step)
    if method is None:
        return f"no engine kernel for the integrator {step.integrator!r}"
    if u.dtype not in (torch.float32, torch.float64):
        return f"dtype {u.dtype} (the engine runs float32 and float64)"
    if u.device.type != "cpu":
        return f"device {u.device}: the engine runs on the CPU"
    for name, value in step.model.params().items():
        if isinstance(value, torch.Tensor) and value.device.type != "cpu":
            return f"parameter {name} lives on {value.device}"
    if _needs_grad(step, u, state):
        return "gradients are needed (the engine runs without autograd)"
    if method == "exact" and step.model.linear_system() is None:
        return None  # prepare() raises the integrator's own error
    try:
        _ir(step.model, u.dtype)
    except TraceError as err:
        return f"the model could not be compiled: {err}"
    return None


#: rough cost of one reference-loop step (s) per method, for small populations; used to
#: decide whether compiling a kernel pays off for a run (see :func:`worth_compiling`)
_REFERENCE_STEP_S = {"euler": 3e-4, "rk4": 6e-4, "exponential_euler": 4e-4, "exact": 3e-4,
                     "adaptive": 3e-3}
#: rough cost of compiling a kernel (s) on a 2-core machine
_COMPILE_S = {"adaptive": 12.0}


def is_compiled(step: Step, dtype: torch.dtype) -> bool:
    """Whether the kernel for ``step`` and ``dtype`` is in memory or in the disk cache."""
    try:
        ir = _ir(step.model, dtype)
    except TraceError:
        return False
    return C.is_compiled(C.Spec(ir, method_name(step), dtype))


#: per kernel key: runs this process sent to the reference loop instead of compiling
_DEFERRED: dict[str, int] = {}


def _spec_key(step: Step, dtype: torch.dtype) -> str | None:
    try:
        ir = _ir(step.model, dtype)
    except TraceError:
        return None
    return C.source_key(C.Spec(ir, method_name(step), dtype))


def worth_compiling(step: Step, u: torch.Tensor) -> bool:
    """Whether to run on the engine now rather than on the reference loop.

    True where the kernel is already compiled (in this process or on disk), where the
    reference loop's estimated time exceeds half a compile (about 2-8 s here), and from
    the second run of the same model structure and method in a process (repeated runs
    and sweeps pay the compile once; the kernel then stays on disk). So a single short
    run, such as a first try in a notebook, never waits for a compile.
    """
    if is_compiled(step, u.dtype):
        return True
    method = method_name(step)
    per_step = _REFERENCE_STEP_S.get(method, 1e-4)
    if method == "exact" and step.precise:
        per_step *= 3
    elements = u[0].numel()
    estimate = u.shape[0] * per_step * (1.0 + elements / 2_000)
    if estimate > 0.5 * _COMPILE_S.get(method, 6.0):
        return True
    return _DEFERRED.get(_spec_key(step, u.dtype) or "", 0) > 0


def defer(step: Step, u: torch.Tensor) -> None:
    """Note a run sent to the reference loop by :func:`worth_compiling` (the next compiles)."""
    key = _spec_key(step, u.dtype)
    if key is not None:
        _DEFERRED[key] = _DEFERRED.get(key, 0) + 1


def _rows(model, ir: ModelIR, method: str, flow, dt: float, shape: torch.Size,
          dtype: torch.dtype) -> torch.Tensor:
    """Coefficient rows ``P`` [n_rows, 1 or M]: parameters, t_ref, and exact propagators."""
    p = model.cast(dtype).params()
    rows: list = [p[name] for name in ir.params]
    t_ref = model.refractory_period if model.spiking else 0.0
    rows.append(t_ref)
    if method == "exact":
        n = len(ir.states)
        for mats in (flow.E_dt[False], flow.E_dt[True], flow.M[False], flow.M[True]):
            for i in range(n):
                for j in range(n + 2):
                    rows.append(mats[..., i, j])
    per_element = any(isinstance(r, torch.Tensor) and r.numel() > 1 for r in rows)
    M = shape.numel()
    out = torch.empty((len(rows), M if per_element else 1), dtype=dtype)
    for k, r in enumerate(rows):
        r = r.detach() if isinstance(r, torch.Tensor) else torch.tensor(float(r), dtype=dtype)
        if per_element:
            out[k] = r.to(dtype).expand(shape).reshape(M)
        else:
            out[k] = r.to(dtype).reshape(-1)[0]
    return out


#: coefficient rows of recent runs with uniform (scalar) parameters, by their values
_ROWS_CACHE: dict[tuple, tuple[torch.Tensor, bool]] = {}


def _rows_key(step: Step, method: str, dtype: torch.dtype) -> tuple | None:
    """The values that determine the coefficient rows, or ``None`` for per-element params."""
    values = []
    for name, v in step.model.params().items():
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                return None
            v = float(v.detach().reshape(()))
        values.append((name, v))
    integ = step.integrator
    return (type(step.model), tuple(values), method, repr(integ), float(step.dt), dtype)


def _coefficients(step: Step, ir: ModelIR, method: str, shape: torch.Size, dtype: torch.dtype,
                  device) -> tuple[torch.Tensor, bool]:
    """Coefficient rows and whether spikes are precise; reused across runs of equal
    scalar parameters (the propagators of ``"exact"`` cost two matrix exponentials)."""
    key = _rows_key(step, method, dtype)
    hit = _ROWS_CACHE.get(key) if key is not None else None
    if hit is not None:
        return hit
    model = step.model
    flow = step.integrator.prepare(model.cast(dtype, device), step.dt, dtype, device)
    out = (_rows(model, ir, method, flow, step.dt, shape, dtype),
           bool(getattr(flow, "precise", False)))
    if key is not None:
        if len(_ROWS_CACHE) >= 64:
            _ROWS_CACHE.clear()
        _ROWS_CACHE[key] = out
    return out


_COSTS: dict[tuple[int, str], tuple[ModelIR, int]] = {}


def _step_cost(ir: ModelIR, method: str) -> int:
    """Rough operations of one element-step: the vector field's nodes times its evaluations
    per step (exact integration: the propagator's multiply-adds)."""
    hit = _COSTS.get((id(ir), method))
    if hit is not None and hit[0] is ir:
        return hit[1]
    if method == "exact":
        cost = (len(ir.states) + 2) * len(ir.states) + 2
    else:
        seen: set[int] = set()
        stack = [ir.f[s] for s in ir.states]
        while stack:
            node = stack.pop()
            if node.id in seen or node.op in ("var", "param", "input", "const"):
                continue
            seen.add(node.id)
            stack.extend(node.args)
        cost = max(1, len(seen)) * _STAGES.get(method, 1)
    if len(_COSTS) > 256:
        _COSTS.clear()
    _COSTS[(id(ir), method)] = (ir, cost)
    return cost


def _announce(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _flat_input(u: torch.Tensor, shape: torch.Size) -> tuple[np.ndarray, int, int, int]:
    """The input as a flat array and element strides: ``u[t, m] = U[uo + t*ut + m*um]``.

    No copy where the input is a view with non-negative strides (e.g. a drive
    ``[N]`` expanded over time, or one value per step expanded over neurons).
    """
    T = u.shape[0]
    M = shape.numel()
    if T == 0 or M == 0:  # nothing to read
        return np.zeros(1, dtype=u.detach().numpy().dtype), 0, 0, 0
    flat = u.detach().expand(T, *shape).reshape(T, M)
    st_t, st_m = flat.stride()
    if st_t < 0 or st_m < 0:
        flat = flat.contiguous()
        st_t, st_m = flat.stride()
    if M == 1:
        st_m = 0
    if T == 1:
        st_t = 0
    size = (T - 1) * st_t + (M - 1) * st_m + 1
    base = flat.as_strided((size,), (1,))
    return base.numpy(), 0, st_t, st_m


def run(step: Step, u: torch.Tensor, state: State, record: tuple[str, ...] = (), *,
        dense: torch.dtype | None = None, progress: bool = False,
        threads: int | None = None) -> EngineOutput:
    """Run ``T = u.shape[0]`` steps of ``step`` on the engine (see the module docstring).

    Args:
        step: the step (model, integrator, dt); :func:`why_not` must be ``None``.
        u: input ``[T, *shape]`` (float32/float64, CPU), already of the state's shape.
        state: the initial state (not modified).
        record: state variables to return as traces (``"refrac"`` too).
        dense: also return dense spike counts ``[T, *shape]`` of this dtype.
        progress: show a progress bar over time.
        threads: worker threads (default: all cores for large runs, one for small).

    Returns:
        :class:`EngineOutput`.

    Raises:
        SimulationDiverged: a state variable became non-finite.
        ValueError: non-finite input (naming the step and element).
        RuntimeError: the adaptive integrator's step size underflowed.
        StiffnessError: the adaptive integrator used up its sub-step budget
            (``max_steps``) in one step, or refused the model before running.
    """
    model, dt = step.model, step.dt
    dtype = u.dtype
    method = method_name(step)
    ir = _ir(model, dtype)
    shape = u.shape[1:]
    T, M = u.shape[0], shape.numel()
    mod = C.load(C.Spec(ir, method, dtype), announce=_announce)
    P, precise = _coefficients(step, ir, method, shape, dtype, u.device)
    ps = 1 if P.shape[1] > 1 else 0
    names = ir.states
    X = torch.stack([state[k].detach().to(dtype).reshape(M) for k in names]).contiguous()
    if model.spiking:
        R = state["refrac"].detach().to(dtype).reshape(M).clone()
    else:
        R = torch.zeros(0, dtype=dtype)
    recv = np.array([names.index(n) if n != "refrac" else len(names) for n in record],
                    dtype=np.int64)
    REC = torch.empty((len(record), T, M), dtype=dtype)
    SPK = torch.zeros((T, M) if dense is not None else (0, M),
                      dtype=dense if dense is not None else torch.uint8)
    U, uo, ut, um = _flat_input(u, shape)
    nblk = -(-M // C.BLOCK)
    if threads is None:
        threads = 1 if T * M * _step_cost(ir, method) < SERIAL_WORK else min(_CORES, nblk)
    threads = max(1, min(threads, nblk))
    # one run of blocks per thread (more runs cost LIF 15-25 %): contiguous, except with
    # adaptive steps, where the cost of an element varies a hundredfold (a spike's
    # upswing) and parameters or inputs that grow along the population (a current ramp)
    # would leave one thread waiting: the blocks are dealt to the runs in snake order
    nchunk = 1 if threads == 1 else threads
    if method == "adaptive":
        blocks, bounds = _deal(nblk, nchunk)
    else:
        blocks = np.arange(nblk, dtype=np.int64)
        bounds = [nblk * k // nchunk for k in range(nchunk + 1)]
    integ = step.integrator
    rtol = float(getattr(integ, "rtol", 0.0))
    atol = float(getattr(integ, "atol", 0.0))
    max_steps = int(integ.budget(dt)) if hasattr(integ, "budget") else 1
    scalar = np.float32 if dtype == torch.float32 else np.float64
    Pn, Xn, Rn, RECn, SPKn = P.numpy(), X.numpy(), R.numpy(), REC.numpy(), SPK.numpy()
    chunks = _time_chunks(T, progress)
    # the event rate of the last run of this kernel sizes the event buffers (no regrowth)
    rate = _EVENT_RATE.get(mod.__name__)
    ev_parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(nchunk)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=T, desc="simulate", unit="step")
    try:
        for t0, t1 in chunks:
            RECc = RECn[:, t0:t1]
            SPKc = SPKn[t0:t1] if dense is not None else SPKn

            todo = iter(range(nchunk))  # next() of a range iterator is atomic under the GIL

            failed: dict[int, BaseException] = {}
            lock = threading.Lock()

            def work(_k: int, t0=t0, t1=t1, RECc=RECc, SPKc=SPKc, todo=todo,
                     failed=failed, lock=lock) -> None:
                for c in todo:
                    with lock:  # a lower run that failed decides the error: skip higher ones
                        if failed and c > min(failed):
                            continue
                    try:
                        ev_parts[c].append(_run_blocks(
                            mod.kernel, int(bounds[c]), int(bounds[c + 1]), blocks, t1 - t0,
                            scalar(dt), U, uo + t0 * ut, ut, um, Pn, ps, Xn, Rn, RECc, recv,
                            SPKc, precise, rtol, atol, max_steps, t0, step, names, dtype,
                            rate, method == "adaptive"))
                    except BaseException as err:  # noqa: BLE001 - raised below
                        with lock:
                            failed[c] = err

            _parallel(work, threads)
            # every run below the lowest failing one ran to its end (none of them was
            # skipped): the error of the first run of blocks that fails, every time
            if failed:
                first = failed[min(failed)]
                if isinstance(first, _BadInput):  # the message of every back end
                    check_finite_input(u)
                    raise ValueError(str(first)) from None
                raise first
            if bar is not None:
                bar.update(t1 - t0)
    finally:
        if bar is not None:
            bar.close()
    # each run of blocks gives its events, time chunk after time chunk, in (step, element)
    # order, and the runs hold increasing ranges of elements: interleaved by step, they
    # are in order
    parts = [p for run_ in ev_parts for p in run_]
    if method == "adaptive" and nchunk > 1 and parts:  # dealt blocks: the runs interleave
        parts = [_sorted_events(*(np.concatenate(a) for a in zip(*parts, strict=True)), M)]
    merged = merge_runs(parts, T) if parts else (np.zeros(0, np.int32), np.zeros(0, np.int32),
                                                 np.zeros(0, scalar))
    ev = Events(*merged, ordered=True)
    if T * M:
        _EVENT_RATE[mod.__name__] = ev.step.size / (T * M)
    final = State({k: X[q].reshape(shape) for q, k in enumerate(names)})  # X is our own
    if model.spiking:
        final["refrac"] = R.reshape(shape)
    traces = {n: REC[q].reshape(T, *shape) for q, n in enumerate(record)}
    spikes = SPK.reshape(T, *shape) if dense is not None else None
    return EngineOutput(spikes, traces, final, ev)


class _BadInput(ValueError):
    """A kernel met a non-finite input (re-raised with the count and first place)."""


def _time_chunks(T: int, progress: bool) -> list[tuple[int, int]]:
    if not progress or T < 2:
        return [(0, T)]
    n = min(T, 100)
    b = np.linspace(0, T, n + 1).astype(int)
    return [(int(b[k]), int(b[k + 1])) for k in range(n) if b[k + 1] > b[k]]


_POOL: tuple[int, int, concurrent.futures.ThreadPoolExecutor] | None = None
_POOL_LOCK = threading.Lock()


def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """The engine's worker threads, started once per process (kernels release the GIL).

    A forked child (a process-pool sweep) does not inherit the threads: it starts its own.
    """
    global _POOL
    with _POOL_LOCK:
        pid = os.getpid()
        if _POOL is None or _POOL[0] != pid or _POOL[1] < workers:
            if _POOL is not None and _POOL[0] == pid:
                _POOL[2].shutdown(wait=False)
            _POOL = (pid, workers, concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="neurosim-engine"))
        return _POOL[2]


def _parallel(work, threads: int) -> None:
    """``work(k)`` for k in 0..threads-1: k = 0 in this thread, the others in the pool."""
    if threads == 1:
        work(0)
        return
    futures = [_pool(threads - 1).submit(work, k) for k in range(1, threads)]
    error: BaseException | None = None
    try:
        work(0)
    except BaseException as err:  # noqa: BLE001 - re-raised after the others finished
        error = err
    for fut in futures:
        try:
            fut.result()
        except BaseException as err:  # noqa: BLE001
            error = error or err
    if error is not None:
        raise error


#: spike events per element-step of the last run of each kernel (sizes the next buffers)
_EVENT_RATE: dict[str, float] = {}


def _run_blocks(kernel, b0, b1, BL, T, dt, U, uo, ut, um, P, ps, X, R, REC, recv, SPK, precise,
                rtol, atol, max_steps, t0, step, names, dtype, rate=None, adaptive=False):
    """Call the kernel on the blocks ``BL[b0:b1]`` over T steps, growing the event buffer
    as needed.

    The kernel stops at the start of a step when fewer slots than elements are left
    (it resumes there with a larger buffer); where one element can spike several times
    in a step (precise spike times), or a frozen element of an adaptive kernel catches up
    over several steps, and fills the buffer inside a step, the state of these blocks is
    restored and the call runs again with twice the room. An adaptive kernel's events
    come out of (step, element) order (frozen elements catch up later): they are sorted
    here, stably (several spikes of one element in one step keep their order).
    """
    M = X.shape[1]
    sel = BL[b0:b1]
    if sel.size == 0 or sel[-1] - sel[0] + 1 == sel.size:  # contiguous: a slice
        lo = int(sel[0]) * C.BLOCK if sel.size else 0
        els: slice | np.ndarray = slice(lo, min(M, (int(sel[-1]) + 1) * C.BLOCK) if sel.size
                                        else 0)
        n_el = els.stop - els.start
    else:  # dealt blocks (adaptive steps)
        els = (sel[:, None] * C.BLOCK + np.arange(C.BLOCK)).ravel()
        els = els[els < M]
        n_el = els.size
    # one event per 8 element-steps, or 10 % above the last run's rate, and room for one
    # step's events: pages of the buffers that no event touches cost no memory
    guess = (T * n_el) // 8 if rate is None else int(1.1 * rate * T * n_el)
    cap = max(4096, 2 * n_el, guess + n_el)
    evt, evm, evs = _event_buffers(cap, dtype)
    info = np.zeros(6, np.int64)
    saved = ((np.array(X[:, els]), np.array(R[els]) if R.shape[0] else None)  # copies
             if precise or adaptive else None)
    while True:
        info[0] = 0
        kernel(b0, b1, BL, T, dt, U, uo, ut, um, P, ps, X, R, REC, recv, SPK, evt, evm, evs,
               info, precise, rtol, atol, max_steps)
        status = int(info[0])
        if status == C.OK:
            break
        if status in (C.EV_FULL, C.EV_RESTART):
            keep = int(info[1]) if status == C.EV_FULL else 0
            if status == C.EV_RESTART:
                if saved is None:
                    raise RuntimeError("engine kernel overflowed its event buffer inside a step")
                X[:, els] = saved[0]
                if saved[1] is not None:
                    R[els] = saved[1]
                info[:] = 0
            cap = max(2 * cap, keep + 2 * n_el)
            new = _event_buffers(cap, dtype)
            for a, b in zip((evt, evm, evs), new, strict=True):
                b[:keep] = a[:keep]
            evt, evm, evs = new
            continue
        _raise(status, info, step, names, t0, X)
    n = int(info[1])
    evt, evm, evs = evt[:n], evm[:n], evs[:n]
    if adaptive:
        evt, evm, evs = _sorted_events(evt, evm, evs, M)
    if t0:
        evt += t0
    return evt, evm, evs


def _sorted_events(evt: np.ndarray, evm: np.ndarray, evs: np.ndarray,
                   M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events in (step, element) order, stably (the spikes of one element in one step keep
    their order); untouched where they are in order already."""
    if evt.size < 2:
        return evt, evm, evs
    key = evt.astype(np.int64) * M + evm
    if not (key[1:] < key[:-1]).any():
        return evt, evm, evs
    order = np.argsort(key, kind="stable")
    return evt[order], evm[order], evs[order]


def _deal(nblk: int, nruns: int) -> tuple[np.ndarray, list[int]]:
    """Blocks dealt to ``nruns`` runs in snake order (run 0, 1, ..., n-1, n-1, ..., 0, 0,
    ...): the blocks run after run (each run's ascending) and where each run starts in that
    list. The runs of a population whose cost grows along it (a current ramp) cost about the
    same (AdEx on a ramp of 1000 neurons, blocks of 0.18, 0.23, 0.27 and 0.33 s: runs
    {0, 3} and {1, 2}, 0.51 and 0.50 s)."""
    owner = [(b % nruns) if (b // nruns) % 2 == 0 else nruns - 1 - (b % nruns)
             for b in range(nblk)]
    runs = [[b for b in range(nblk) if owner[b] == r] for r in range(nruns)]
    bounds = [0]
    for run in runs:
        bounds.append(bounds[-1] + len(run))
    return np.array([b for run in runs for b in run], dtype=np.int64), bounds


def _event_buffers(cap: int, dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step (int32), element (int32) and offset (state dtype) arrays of ``cap`` events."""
    return (buffer((cap,), torch.int32).numpy(), buffer((cap,), torch.int32).numpy(),
            buffer((cap,), dtype).numpy())


def _raise(status: int, info: np.ndarray, step: Step, names, t0: int, X) -> None:
    t = int(info[2]) + t0
    m = int(info[3])
    time = (t + 1) * step.dt
    if status == C.BAD_INPUT:
        raise _BadInput(f"input must be finite, got a non-finite value at step {t} "
                        f"(t = {t * step.dt:.6g} s), element {m}")
    if status in (C.DIVERGED, C.OUT_OF_RANGE):
        q = int(info[4])
        var = names[q]
        value = float(X[q, m])  # the kernel wrote the block's state back
        bounds = step.model.declared_ranges()[var] if status == C.OUT_OF_RANGE else None
        raise SimulationDiverged.at(type(step.model).__name__, variable=var, neuron=m, step=t,
                                    dt=step.dt, method=step.integrator.name, value=value,
                                    bounds=bounds)
    if status == C.TOO_SMALL:
        raise RuntimeError(f"Adaptive integrator: step size fell below the resolution of dt "
                           f"for element {m} in step {t} (t = {time:.6g} s); the model may be "
                           f"diverging or too stiff for an explicit method")
    if status == C.MAX_STEPS:
        from ..integrators.adaptive import over_budget

        integ = step.integrator
        raise over_budget(type(step.model).__name__, integ.budget(step.dt), step.dt, m,
                          integ.rtol, integ.atol, step=t)
    if status == C.MAX_ROUNDS_HIT:
        raise RuntimeError(f"more than {C.MAX_ROUNDS} spikes of element {m} within step {t} "
                           f"of dt={step.dt} s")
    raise RuntimeError(f"engine kernel failed with status {status}")


__all__ = ["EngineOutput", "Events", "defer", "is_compiled", "run", "why_not",
           "worth_compiling"]
