"""The compiled engine against the reference loop, the closed forms and its own contracts.

The reference loop (``backend="reference"``: :meth:`neurosim.Step.with_events` per step)
is the oracle: the engine must give the same spikes (indices, and times to round-off)
and the same traces to round-off, for every model x integrator x reset mode x
refractoriness. The full matrix is marked ``slow`` (each configuration compiles a
kernel); a representative subset runs by default.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import engine
from neurosim.errors import SimulationDiverged
from neurosim.loop import backend_for, run_steps
from neurosim.models.base import NeuronModel
from neurosim.result import sort_events

F64 = torch.float64


def _drive(model: NeuronModel, T: int, N: int, seed: int = 0) -> torch.Tensor:
    """An input that makes every model fire at a few tens of Hz (its own units)."""
    g = torch.Generator().manual_seed(seed)
    r = torch.rand(T, N, generator=g, dtype=F64)
    if isinstance(model, ns.AdEx | ns.EIF):
        return 400.0 + 900.0 * r
    if isinstance(model, ns.HodgkinHuxley):
        return 4.0 + 12.0 * r
    if isinstance(model, ns.Izhikevich):
        return 5.0 + 15.0 * r
    if isinstance(model, ns.QIF):
        return 0.5 + 40.0 * r
    if isinstance(model, ns.CobaLIF):
        return (0.3 * r - 0.05) if model.input_mode == "jump" else 200.0 + 600.0 * r
    if getattr(model, "input_mode", "current") == "jump":
        return 0.6 * r * (r > 0.7)
    return 0.8 + 2.5 * r


def compare(model: NeuronModel, method: str, *, T: int = 300, N: int = 6, dt: float = 1e-4,
            record=None, **kw) -> tuple:
    """Run engine and reference; assert identical spikes and round-off traces."""
    u = _drive(model, T, N)
    step = ns.discretise(model, dt, method, **kw)
    state = model.initial_state((N,), dtype=F64)
    names = tuple(record) if record else model.state_names
    assert backend_for(step, u, state, backend="engine") == "engine"
    a = run_steps(step, u, state, names, events=True, backend="engine")
    b = run_steps(step, u, state, names, events=True, backend="reference")
    ia, ta = sort_events(a.events, dt)
    ib, tb = sort_events(b.events, dt)
    assert ia.size == ib.size, (ia.size, ib.size)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(ta, tb, rtol=0, atol=1e-12)
    for name in names:
        scale = float(b.traces[name].abs().max()) + 1.0
        err = float((a.traces[name] - b.traces[name]).abs().max())
        assert err <= 1e-9 * scale, (name, err)
    for name in model.state_names:
        torch.testing.assert_close(a.final_state[name], b.final_state[name], rtol=1e-9,
                                   atol=1e-9)
    return a, b


# -- the matrix: every model with every integrator that applies -------------------------
LINEAR = [
    ("LIF", lambda **k: ns.LIF(**k)),
    ("LIF-syn", lambda **k: ns.LIF(tau_syn=5e-3, **k)),
    ("LIF-syn-current", lambda **k: ns.LIF(tau_syn=5e-3, input_mode="current", **k)),
    ("LIF-jump", lambda **k: ns.LIF(input_mode="jump", **k)),
    ("IF", lambda **k: ns.IF(**k)),
    ("ALIF", lambda **k: ns.ALIF(**k)),
]
NONLINEAR = [
    ("AdEx", lambda **k: ns.AdEx(**k)),
    ("EIF", lambda **k: ns.EIF(**k)),
    ("Izhikevich", lambda **k: ns.Izhikevich(**k)),
    ("QIF", lambda **k: ns.QIF(**k)),
    ("CobaLIF", lambda **k: ns.CobaLIF(**k)),
]
RESETS = ("value", "subtract", "none")


def _matrix():
    for name, make in LINEAR:
        for reset in RESETS:
            for t_ref in (0.0, 2.5e-4):
                for method in ("euler", "rk4", "exact", "adaptive", "exponential_euler"):
                    yield name, make, {"reset": reset, "t_ref": t_ref}, method, {}
                yield name, make, {"reset": reset, "t_ref": t_ref}, "exact", {"precise": False}
    for name, make in NONLINEAR:
        fields = {f.name for f in dataclasses.fields(make())}
        for t_ref in ((0.0, 2.5e-4) if "t_ref" in fields else (None,)):
            methods = ["euler", "rk4", "adaptive"]
            if make().conditionally_linear:
                methods.append("exponential_euler")
            for method in methods:
                yield name, make, ({} if t_ref is None else {"t_ref": t_ref}), method, {}


MATRIX = list(_matrix())


@pytest.mark.slow
@pytest.mark.parametrize("name, make, params, method, kw", MATRIX,
                         ids=[f"{m[0]}-{'-'.join(f'{k}={v}' for k, v in m[2].items())}-{m[3]}"
                              f"{'-grid' if m[4] else ''}" for m in MATRIX])
def test_engine_matches_reference_full_matrix(name, make, params, method, kw):
    compare(make(**params), method, **kw)


#: the default subset: each integrator, each reset mode, refractoriness, a synapse
FAST = [
    (ns.LIF(t_ref=2.5e-4), "euler", {}),
    (ns.LIF(tau_syn=5e-3, t_ref=2.5e-4), "exact", {}),
    (ns.LIF(reset="subtract"), "exact", {"precise": False}),
    (ns.ALIF(reset="none", t_ref=2.5e-4), "exact", {}),
    (ns.AdEx(t_ref=2.5e-4), "rk4", {}),
    (ns.AdEx(), "adaptive", {}),
    (ns.HodgkinHuxley(), "exponential_euler", {}),
    (ns.Izhikevich(), "euler", {}),
]


@pytest.mark.parametrize("model, method, kw", FAST,
                         ids=[f"{type(m).__name__}-{meth}" for m, meth, _ in FAST])
def test_engine_matches_reference(model, method, kw):
    a, b = compare(model, method, **kw)
    if model.spiking:
        assert a.events.step.size > 3  # the comparison covered spikes


def test_hh_with_rk4_matches_reference():
    compare(ns.HodgkinHuxley(), "rk4", dt=2e-5, T=800, N=3)


# -- models written by users -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SineDriven(NeuronModel):
    """A user model defined in a test file: a leaky membrane with a tanh nonlinearity."""

    tau: float = 10e-3
    gain: float = 2.0
    v_th: float = 1.0
    v_reset: float = 0.0
    t_ref: float = 1e-3

    @property
    def state_names(self):
        return ("v", "a")

    def derivatives(self, x, u):
        v, a = x["v"], x["a"]
        return {"v": (-v + self.gain * torch.tanh(u + a)) / self.tau,
                "a": -a / (5 * self.tau)}

    def threshold_distance(self, x):
        return x["v"] - self.v_th

    def threshold(self, x):
        return self.v_th

    def on_spike(self, x):
        return {"v": torch.zeros_like(x["v"]) + self.v_reset, "a": x["a"] + 0.1}


@pytest.mark.parametrize("method", ["rk4", "adaptive"])
def test_user_defined_model_runs_compiled(method):
    model = SineDriven(gain=torch.linspace(1.5, 3.0, 6, dtype=F64))
    a, _ = compare(model, method)
    assert a.events.step.size > 10


@dataclass(frozen=True, eq=False)
class Branchy(SineDriven):
    """Branches in Python on a state value: cannot be traced."""

    def derivatives(self, x, u):
        if bool((x["v"] > 0.5).any()):
            return {"v": -x["v"] / self.tau, "a": -x["a"]}
        return super().derivatives(x, u)


def test_untraceable_model_falls_back_to_the_reference_loop():
    model = Branchy()
    u = torch.full((50, 2), 1.0, dtype=F64)
    step = ns.discretise(model, 1e-4, "euler")
    state = model.initial_state((2,), dtype=F64)
    reason = engine.why_not(step, u, state)
    assert reason is not None and "Python `if`" in reason
    assert backend_for(step, u, state) == "reference"
    with pytest.raises(ValueError, match="backend='engine' cannot run"):
        run_steps(step, u, state, backend="engine")
    res = ns.simulate(model, u, 1e-4, method="euler")  # still works, on the reference loop
    assert res.n_spikes >= 0


def test_short_runs_do_not_wait_for_a_compile(tmp_path, monkeypatch):
    """auto: a run the reference loop finishes before a compile would runs there; once the
    kernel exists (or the run is long) the engine takes over."""
    monkeypatch.setenv("NEUROSIM_CACHE_DIR", str(tmp_path))  # nothing compiled here yet
    # nor in this process (fused.run, used by other tests, runs on the engine too)
    monkeypatch.setattr(engine._codegen, "_LOADED", {})
    monkeypatch.setattr(engine, "_DEFERRED", {})
    model = ns.LIF(tau_syn=4e-3, reset="subtract")
    step = ns.discretise(model, 1e-4, "euler")
    short = torch.ones(50, 3, dtype=F64)
    state = model.initial_state((3,), dtype=F64)
    assert not engine.is_compiled(step, F64)
    assert backend_for(step, short, state) == "reference"
    assert backend_for(step, short, state) == "reference"  # asking changes nothing
    assert backend_for(step, torch.ones(200_000, 3, dtype=F64), state) == "engine"
    assert run_steps(step, short, state).backend == "reference"  # the first short run
    assert backend_for(step, short, state) == "engine"  # the second one compiles
    assert run_steps(step, short, state).backend == "engine"
    assert engine.is_compiled(step, F64)


def test_gradients_use_the_autograd_paths():
    model = ns.AdEx()
    u = torch.full((20, 2), 800.0, dtype=F64, requires_grad=True)
    step = ns.discretise(model, 1e-4, "rk4")
    state = model.initial_state((2,), dtype=F64)
    assert "gradients" in engine.why_not(step, u, state)
    with torch.no_grad():
        assert backend_for(step, u, state) == "engine"


# -- closed forms on the engine ----------------------------------------------------------
def test_lif_first_spike_to_round_off():
    """LIF from rest under constant drive: T = tau ln(rI/(rI - v_th)), exact to round-off."""
    tau, current = 20e-3, 1.5
    exact = tau * math.log(current / (current - 1.0))
    for dt in (1e-3, 1e-4):
        res = ns.simulate(ns.LIF(tau_mem=tau, t_ref=2e-3),
                          torch.full((int(0.2 / dt), 1), current, dtype=F64), dt)
        times = res.spike_times[0]
        period = 2e-3 + exact
        np.testing.assert_allclose(times[:5], exact + period * np.arange(5), rtol=0,
                                   atol=1e-14)


def test_synaptic_kernel_equal_taus_closed_form():
    """One jump w into i with tau_syn == tau_mem: v(t) = w t exp(-t/tau)/tau (0/0 limit)."""
    tau, w, dt = 10e-3, 0.5, 1e-4
    u = torch.zeros(400, 1, dtype=F64)
    u[0] = w
    res = ns.simulate(ns.LIF(tau_mem=tau, tau_syn=tau, v_th=10.0), u, dt)
    t = res.t.numpy()
    np.testing.assert_allclose(res.v[:, 0].numpy(), w * t * np.exp(-t / tau) / tau, rtol=0,
                               atol=1e-14)


# -- contracts -----------------------------------------------------------------------
def test_divergence_names_step_neuron_and_variable():
    """The issue's probe: HH with rk4 at dt = 1 ms blows up; that is an error, not NaN."""
    u = torch.full((200, 2), 10.0, dtype=F64)
    for backend in ("engine", "reference"):
        with pytest.raises(SimulationDiverged) as info:
            ns.simulate(ns.HodgkinHuxley(), u, 1e-3, method="rk4", backend=backend)
        err = info.value
        assert err.variable in ("v", "m", "h", "n") and 0 <= err.neuron < 2
        assert err.step >= 0 and math.isclose(err.time, (err.step + 1) * 1e-3)
        assert "smaller dt" in str(err) and f"step {err.step}" in str(err)


def test_non_finite_input_names_step_and_element():
    u = torch.ones(30, 4, dtype=F64)
    u[17, 2] = float("nan")
    for backend in ("engine", "reference"):
        with pytest.raises(ValueError, match="step 17.*element 2"):
            ns.simulate(ns.LIF(), u, 1e-4, method="euler", backend=backend)


def test_event_buffer_grows_and_keeps_order():
    """Far more spikes than the first buffer holds (every neuron fires every step)."""
    model = ns.LIF(tau_mem=1e-3, reset="value")
    u = torch.full((300, 700), 50.0, dtype=F64)
    step = ns.discretise(model, 1e-4, "euler")
    state = model.initial_state((700,), dtype=F64)
    out = engine.run(step, u, state, threads=2)
    ref = run_steps(step, u, state, events=True, backend="reference")
    assert out.events.step.size == ref.events.step.size > 4096 * 10
    ia, ta = sort_events(out.events, 1e-4)
    ib, tb = sort_events(ref.events, 1e-4)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(ta, tb, rtol=0, atol=1e-15)


def test_event_buffer_overflow_inside_a_step_reruns_the_call():
    """Precise spikes: each neuron fires about 3000 times in every step, so the buffer (4096
    events) fills inside a step; the call runs again from the saved state with more room.
    Constant drive u from the reset value 0: the spikes are periodic, period
    tau ln(u / (u - v_th)), in closed form."""
    tau, u0, dt, T = 1e-3, 3e4, 1e-4, 3
    model = ns.LIF(tau_mem=tau, reset="value")
    u = torch.full((T, 2), u0, dtype=F64)
    step = ns.discretise(model, dt, "exact")
    out = engine.run(step, u, model.initial_state((2,), dtype=F64), ("v",), threads=1)
    period = tau * math.log(u0 / (u0 - 1.0))
    n = math.floor(T * dt / period)
    assert out.events.step.size == 2 * n > 4096
    index, times = sort_events(out.events, dt)
    want = np.repeat(np.arange(1, n + 1) * period, 2)
    np.testing.assert_array_equal(index, np.tile([0, 1], n))
    np.testing.assert_allclose(times, want, rtol=0, atol=1e-15)
    # the state after the run is the closed form's, to the same 1e-15 s in time (the
    # membrane rises at u0 / tau = 3e7 per second there)
    v_end = u0 * (1 - math.exp(-(T * dt - n * period) / tau))
    assert abs(float(out.final_state["v"][0]) - v_end) < 1e-15 * u0 / tau


def test_continuation_progress_threads_and_strided_input():
    model = ns.AdEx(a=torch.linspace(0.0, 8.0, 130, dtype=F64))
    drive = torch.linspace(300, 1500, 130, dtype=F64).expand(400, 130)  # stride 0 in time
    opts = {"method": "rk4", "backend": "engine"}
    whole = ns.simulate(model, drive, 1e-4, record=("v", "w"), **opts)
    half = ns.simulate(model, drive[:200], 1e-4, record=("v", "w"), **opts)
    rest = ns.simulate(model, drive[200:], 1e-4, record=("v", "w"), state=half.final_state,
                       **opts)
    torch.testing.assert_close(torch.cat([half.v, rest.v]), whole.v, rtol=0, atol=0)
    chunked = ns.simulate(model, drive, 1e-4, record="v", progress=True, **opts)
    torch.testing.assert_close(chunked.v, whole.v, rtol=0, atol=0)
    np.testing.assert_array_equal(chunked.spike_index, whole.spike_index)
    one = run_steps(ns.discretise(model, 1e-4, "rk4"), drive,
                    model.initial_state((130,), dtype=F64), ("v",), events=True,
                    backend="engine")
    torch.testing.assert_close(one.traces["v"], whole.v, rtol=0, atol=0)
    # one value per step for every neuron (stride 0 over neurons)
    per_step = torch.linspace(800, 900, 400, dtype=F64)[:, None].expand(400, 130)
    a = ns.simulate(model, per_step, 1e-4, **opts)
    b = ns.simulate(model, per_step.contiguous(), 1e-4, **opts)
    torch.testing.assert_close(a.v, b.v, rtol=0, atol=0)


def test_result_memory_is_events_not_a_raster():
    res = ns.simulate(ns.LIF(), torch.full((500, 1000), 1.5), 1e-4, record=None,
                      backend="engine")
    assert res._spikes is None  # no [T, N] raster was built
    dense = res.spikes  # built on demand, equal to the counts
    assert dense.shape == (500, 1000)
    assert int(dense.sum()) == res.n_spikes == res.spike_index.size
    assert torch.equal(res.spike_count(), dense.sum(0))


def test_float32_engine_agrees_with_reference_to_float32_round_off():
    """Spike times agree to a few float32 ulps of t; traces to that difference times the
    membrane's slope (about 30 /s here, so 1e-7 s becomes a few 1e-6 in v)."""
    model = ns.LIF(tau_syn=3e-3, t_ref=1e-3)
    x = torch.rand(400, 3, generator=torch.Generator().manual_seed(3)) * 3
    a = ns.simulate(model, x, 5e-4, record=("v", "i"), backend="engine")
    b = ns.simulate(model, x, 5e-4, record=("v", "i"), backend="reference")
    np.testing.assert_array_equal(a.spike_index, b.spike_index)
    np.testing.assert_allclose(a.spike_time, b.spike_time, rtol=0, atol=1e-7)
    torch.testing.assert_close(a.v, b.v, rtol=1e-5, atol=1e-5)



def test_spike_arrays_outlive_their_result_and_later_runs():
    """spike_index / spike_time live in pooled buffers (neurosim._memory): arrays a user
    keeps must not be recycled by later runs after the Result is gone."""
    import gc

    u = (1.0 + 0.2 * torch.rand(20_000, generator=torch.Generator().manual_seed(0))).expand(
        500, 20_000).contiguous()
    model = ns.LIF(tau_mem=10e-3, reset="subtract")
    res = ns.simulate(model, u, 1e-3, "exact", precise=False, record=None, backend="engine")
    index, times = res.spike_index, res.spike_time
    assert index.nbytes > 1 << 16  # large enough to come from the pool
    copies = (index.copy(), times.copy())
    del res
    gc.collect()
    for _ in range(3):
        other = ns.simulate(model, 1.3 * u, 1e-3, "exact", precise=False, record=None,
                            backend="engine")
        assert other.spike_index.size == other.spike_time.size > index.size
        del other
        gc.collect()
    np.testing.assert_array_equal(index, copies[0])
    np.testing.assert_array_equal(times, copies[1])


def test_adaptive_first_stage_reuse_is_exact_across_calls_and_inputs():
    """Adaptive steps take the last step's derivative as their first stage where the input
    repeats (first same as last): a run split in two, a run in time chunks (each call
    starts afresh) and an input that changes every step (no reuse) agree to the bit with
    one whole run; the reference loop agrees to round-off."""
    n = 96
    model = ns.AdEx(a=torch.linspace(0.0, 8.0, n, dtype=F64))
    drive = torch.linspace(400.0, 1500.0, n, dtype=F64).expand(600, n)  # stride 0 in time
    opts = {"method": "adaptive", "backend": "engine", "rtol": 1e-6}
    whole = ns.simulate(model, drive, 1e-4, record=("v", "w"), **opts)
    assert whole.spike_index.size > 50
    half = ns.simulate(model, drive[:300], 1e-4, record=("v", "w"), **opts)
    rest = ns.simulate(model, drive[300:], 1e-4, record=("v", "w"), state=half.final_state,
                       **opts)
    torch.testing.assert_close(torch.cat([half.v, rest.v]), whole.v, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([half.w, rest.w]), whole.w, rtol=0, atol=0)
    chunked = ns.simulate(model, drive, 1e-4, record="v", progress=True, **opts)
    torch.testing.assert_close(chunked.v, whole.v, rtol=0, atol=0)
    dense = ns.simulate(model, drive.contiguous(), 1e-4, record="v", **opts)
    torch.testing.assert_close(dense.v, whole.v, rtol=0, atol=0)
    np.testing.assert_array_equal(dense.spike_time, whole.spike_time)
    # every other step a different input: the first stage is evaluated every step
    wobble = drive + torch.tensor([0.0, 1e-9], dtype=F64).repeat(300)[:, None]
    a = ns.simulate(model, wobble, 1e-4, record="v", **opts)
    b = ns.simulate(model, wobble, 1e-4, record="v", **{**opts, "backend": "reference"})
    np.testing.assert_array_equal(a.spike_index, b.spike_index)
    np.testing.assert_allclose(a.spike_time, b.spike_time, rtol=0, atol=1e-12)
    torch.testing.assert_close(a.v, b.v, rtol=1e-9, atol=1e-9)


def test_adaptive_lanes_equal_one_element_at_a_time():
    """The side-by-side sub-steps of many elements (``_lanes``) give, element by element,
    exactly what the one-element advance gives: state, crossing time, sub-step count."""
    from neurosim.engine import _codegen as C

    model = ns.AdEx()
    ir = engine._ir(model, F64)
    mod = C.load(C.Spec(ir, "adaptive", F64))
    step = ns.discretise(model, 1e-4, "adaptive", rtol=1e-6)
    P, _ = engine._coefficients(step, ir, "adaptive", torch.Size([1]), F64, torch.device("cpu"))
    P = P.numpy()
    # states along an upswing and after it (start of steps with many sub-steps)
    rng = np.random.default_rng(3)
    nq = 40
    XI = np.stack([rng.uniform(-60.0, -35.0, nq), rng.uniform(0.0, 200.0, nq)])
    UI = rng.uniform(500.0, 1500.0, nq)
    MI = np.zeros(nq, np.int64)
    DI = rng.uniform(size=nq) < 0.8
    out = (np.empty((2, nq)), np.empty(nq), np.empty(nq, bool), np.empty(nq),
           np.empty(nq, np.int64), np.empty(nq, np.int64))
    lanes = (np.empty((9, C.LANES)), np.empty((6, C.LANES)), np.empty(C.LANES, np.int64),
             np.empty(C.LANES, np.int64), np.empty(C.LANES, np.int64),
             np.empty((P.shape[0], C.LANES)))
    eps = float(np.finfo(np.float64).eps)
    # the jobs wait in the ring JQ; the lanes run while any is live (minlive 1) and
    # report the finished ones as they come
    JQ = np.arange(nq, dtype=np.int64)
    JS = np.array([0, nq, 0], np.int64)
    DN = np.empty(nq + C.LANES, np.int64)
    finished = []
    while True:
        nd = mod._lanes(XI, UI, MI, DI, JQ, JS, P, 1e-6, 1e-9, 5000, 1e-4, eps, *out, *lanes,
                        DN, 1)
        if nd == 0:
            break
        finished += DN[:nd].tolist()
    assert sorted(finished) == list(range(nq)) and JS[2] == 0
    OY, OS, OH, OD, OT, ON = out
    assert ON.sum() > 5 * nq and OH.any() and not OH.all()
    for q in range(nq):
        y, s, hit, d, st, nit = mod._adaptive((XI[0, q], XI[1, q]), UI[q], 1e-4, P, 0, False,
                                              bool(DI[q]), 1e-6, 1e-9, 5000, 1e-4, eps)
        assert (OY[0, q], OY[1, q], OS[q], OH[q], OT[q], ON[q]) == (y[0], y[1], s, hit, st, nit)
        if hit:
            assert OD[q] == d


def test_adaptive_frozen_elements_give_what_each_element_gives_alone():
    """Flagged elements of an adaptive run wait frozen until the lanes are full, then catch
    up step by step: in a population (full lanes), on two threads, and with an event
    buffer too small for the run (the call stops at a step, every frozen element catches
    up first, and it resumes), each element gives exactly what it gives alone (where the
    lanes never fill): traces, dense spikes, spike times and final state, with a
    refractory period and an input that changes every step."""
    n, T = 1000, 4000  # four blocks: two threads take blocks {0, 3} and {1, 2}
    model = ns.AdEx(t_ref=1e-3)
    g = torch.Generator().manual_seed(5)
    drive = 900.0 + 500.0 * torch.randn(T, n, generator=g, dtype=F64)
    step = ns.discretise(model, 1e-4, "adaptive", rtol=1e-6)

    def run(u: torch.Tensor, **kw) -> engine.EngineOutput:
        return engine.run(step, u, model.initial_state((u.shape[1],), dtype=F64),
                          record=("v", "w", "refrac"), dense=torch.uint8, **kw)

    one = run(drive, threads=1)
    ev = one.events
    assert ev.step.size > 4096  # more than the smallest event buffer holds
    key = ev.step.astype(np.int64) * n + ev.index
    assert (np.diff(key) >= 0).all()  # in (step, element) order
    for k in engine._EVENT_RATE:  # size the next buffers for no events at all
        engine._EVENT_RATE[k] = 0.0
    for other in (run(drive, threads=2), run(drive, threads=1)):
        for a, b in zip(one.events[:3], other.events[:3], strict=True):
            np.testing.assert_array_equal(a, b)
        for name in ("v", "w", "refrac"):
            torch.testing.assert_close(other.traces[name], one.traces[name], rtol=0, atol=0)
        assert torch.equal(other.spikes, one.spikes)
    for m in (0, 137, 300, 511, 999):
        alone = run(drive[:, m:m + 1])
        for name in ("v", "w", "refrac"):
            torch.testing.assert_close(alone.traces[name][:, 0], one.traces[name][:, m],
                                       rtol=0, atol=0)
            torch.testing.assert_close(alone.final_state[name][0], one.final_state[name][m],
                                       rtol=0, atol=0)
        assert torch.equal(alone.spikes[:, 0], one.spikes[:, m])
        mine = ev.index == m
        assert mine.sum() > 5
        np.testing.assert_array_equal(alone.events.step, ev.step[mine])
        np.testing.assert_array_equal(alone.events.offset, ev.offset[mine])

def test_blocks_are_dealt_to_the_runs_of_adaptive_steps_in_snake_order():
    """Every block once, each run's blocks ascending, and a population whose cost grows
    along it (block b costs b + 1) split evenly between the runs."""
    for nblk, runs in ((1, 1), (4, 2), (5, 2), (40, 2), (41, 3), (7, 8)):
        blocks, bounds = engine._deal(nblk, runs)
        assert sorted(blocks.tolist()) == list(range(nblk))
        assert bounds[0] == 0 and bounds[-1] == nblk and len(bounds) == runs + 1
        costs = [int((blocks[bounds[r]:bounds[r + 1]] + 1).sum()) for r in range(runs)]
        for r in range(runs):
            part = blocks[bounds[r]:bounds[r + 1]]
            assert (np.diff(part) > 0).all()
        if nblk % (2 * runs) == 0:
            assert max(costs) == min(costs)
    assert engine._deal(4, 2)[0].tolist() == [0, 3, 1, 2]


def test_threads_split_into_runs_give_the_same_results():
    """Runs of blocks are taken by the threads as they come free: the spikes, their order
    and the final state do not depend on the thread count."""
    n = 3000
    model = ns.AdEx()
    drive = torch.linspace(500.0, 1500.0, n, dtype=F64).expand(300, n)
    step = ns.discretise(model, 1e-4, "rk4")
    state = model.initial_state((n,), dtype=F64)
    one = engine.run(step, drive, state, threads=1)
    two = engine.run(step, drive, state, threads=2)
    assert one.events.step.size > 100
    for a, b in zip(one.events[:3], two.events[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    for k in ("v", "w"):
        torch.testing.assert_close(one.final_state[k], two.final_state[k], rtol=0, atol=0)
