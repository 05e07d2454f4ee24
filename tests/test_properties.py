"""Property tests (hypothesis): random valid parameters and inputs.

For every draw, the compiled engine and the reference loop give the same spikes (indices
equal, times within 1e-12 s) and traces to round-off, or both raise the same clear error;
a run split in two equals the uninterrupted run. Parameters are run-time data of the
kernels, so the draws share a handful of compiled kernels. Settings: 12 examples per
property, no deadline (the first example compiles), derandomised so CI is reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurosim as ns
from neurosim.errors import SimulationDiverged
from neurosim.loop import run_steps
from neurosim.result import sort_events

F64 = torch.float64
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _agree(model, method, u, dt):
    step = ns.discretise(model, dt, method)
    state = model.initial_state(u.shape[1:], dtype=F64)
    outcomes = []
    for backend in ("engine", "reference"):
        try:
            out = run_steps(step, u, state, ("v",), events=True, backend=backend)
            outcomes.append(out)
        except SimulationDiverged as err:
            outcomes.append(err)
    a, b = outcomes
    if isinstance(a, Exception) or isinstance(b, Exception):
        assert type(a) is type(b), (a, b)  # both diverge, or neither
        assert a.variable == b.variable and a.neuron == b.neuron and a.step == b.step
        return None
    ia, ta = sort_events(a.events, dt)
    ib, tb = sort_events(b.events, dt)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(ta, tb, rtol=0, atol=1e-12)
    scale = float(b.traces["v"].abs().max()) + 1.0
    assert float((a.traces["v"] - b.traces["v"]).abs().max()) <= 1e-9 * scale
    assert all(bool(torch.isfinite(x).all()) for x in a.final_state.values())
    return a


@SETTINGS
@given(tau_mem=st.floats(2e-3, 50e-3), tau_syn=st.floats(1e-3, 20e-3),
       v_reset=st.floats(-1.0, 0.5), t_ref=st.sampled_from([0.0, 1e-4, 2.5e-4, 1e-3]),
       gain=st.floats(0.5, 4.0), method=st.sampled_from(["euler", "exact"]),
       seed=st.integers(0, 2**16))
def test_lif_engine_equals_reference(tau_mem, tau_syn, v_reset, t_ref, gain, method, seed):
    model = ns.LIF(tau_mem=tau_mem, tau_syn=tau_syn, v_reset=v_reset, t_ref=t_ref)
    g = torch.Generator().manual_seed(seed)
    u = gain * torch.rand(200, 4, generator=g, dtype=F64)
    _agree(model, method, u, 1e-4)


@SETTINGS
@given(a=st.floats(-5.0, 10.0), b=st.floats(0.0, 150.0), tau_w=st.floats(20e-3, 400e-3),
       current=st.floats(0.0, 2000.0), dt=st.sampled_from([5e-5, 1e-4, 5e-4]))
def test_adex_rk4_engine_equals_reference_or_both_diverge(a, b, tau_w, current, dt):
    model = ns.AdEx(a=a, b=b, tau_w=tau_w)
    u = torch.full((150, 2), current, dtype=F64)
    u[:, 1] *= 0.5
    _agree(model, "rk4", u, dt)


@SETTINGS
@given(split=st.integers(1, 299), method=st.sampled_from(["euler", "exact"]),
       seed=st.integers(0, 2**16))
def test_resume_equals_uninterrupted_run(split, method, seed):
    model = ns.LIF(tau_syn=5e-3, t_ref=5e-4)
    g = torch.Generator().manual_seed(seed)
    u = 0.3 * torch.rand(300, 3, generator=g, dtype=F64)
    opts = {"method": method, "backend": "engine", "record": "v"}
    whole = ns.simulate(model, u, 1e-4, **opts)
    first = ns.simulate(model, u[:split], 1e-4, **opts)
    rest = ns.simulate(model, u[split:], 1e-4, state=first.final_state, **opts)
    torch.testing.assert_close(torch.cat([first.v, rest.v]), whole.v, rtol=0, atol=0)
    times = np.concatenate([first.spike_time, rest.spike_time + split * 1e-4])
    np.testing.assert_allclose(times, whole.spike_time, rtol=0, atol=1e-15)


@pytest.mark.parametrize("method", ["euler", "rk4", "exponential_euler"])
def test_huge_steps_diverge_loudly_not_silently(method):
    """dt far beyond the stability limit: a clear error on both paths, never NaN output."""
    u = torch.full((100, 2), 10.0, dtype=F64)
    for backend in ("engine", "reference"):
        try:
            res = ns.simulate(ns.HodgkinHuxley(), u, 2e-3, method=method, backend=backend)
        except SimulationDiverged:
            continue
        assert bool(torch.isfinite(res.v).all())
