"""Reset modes and refractoriness."""

import math

import numpy as np
import pytest
import torch

from neurosim import ALIF, LIF, discretise, simulate

F64 = torch.float64


def test_value_vs_subtract_on_the_grid():
    """Euler spikes at the step end; value → v_reset, subtract → v − (v_th − v_reset)."""
    dt, tau = 1e-3, 10e-3
    for reset in ("value", "subtract", "none"):
        model = LIF(tau_mem=tau, v_reset=0.2, reset=reset)
        step = discretise(model, dt, "euler")
        state = model.initial_state((1,), dtype=F64)
        state["v"][:] = 0.95
        spikes, new = step(state, torch.tensor([3.0], dtype=F64))
        v_end = 0.95 + dt / tau * (3.0 - 0.95)
        assert spikes.item() == 1.0
        expected = {"value": 0.2, "subtract": v_end - 0.8, "none": v_end}[reset]
        assert new.v.item() == pytest.approx(expected, abs=1e-15)


def test_subtract_reset_precise_lands_on_v_reset():
    model = LIF(tau_mem=20e-3, v_reset=0.0, reset="subtract")
    res = simulate(model, torch.full((400, 1), 1.5, dtype=F64), 1e-3)
    value = simulate(LIF(tau_mem=20e-3), torch.full((400, 1), 1.5, dtype=F64), 1e-3)
    # precise crossing: v = v_th at the spike, so subtracting is the same as resetting
    np.testing.assert_allclose(res.spike_time, value.spike_time, atol=1e-13)


def test_subtract_keeps_excess_on_the_grid():
    """With grid spikes, subtract keeps the overshoot: v_after = v_prev + dt·f(v_prev) − 1."""
    dt, tau, I = 1e-3, 20e-3, 1.5
    x = torch.full((500, 1), I, dtype=F64)
    res = simulate(LIF(tau_mem=tau, reset="subtract"), x, dt, method="euler")
    k = res.spikes[:, 0].nonzero().squeeze(1)
    assert k.numel() > 5
    v_prev = res.v[k - 1, 0]
    overshoot = v_prev + dt / tau * (I - v_prev) - 1.0
    assert (overshoot > 0).all()
    torch.testing.assert_close(res.v[k, 0], overshoot, rtol=0, atol=1e-15)


def test_reset_none_keeps_firing_while_above():
    model = LIF(tau_mem=10e-3, reset="none")
    res = simulate(model, torch.full((100, 1), 2.0, dtype=F64), 1e-3, method="euler")
    above = res.v[:, 0] > 1.0
    assert torch.equal(res.spikes[:, 0].bool(), above)


def test_multiple_precise_spikes_in_one_step():
    """Strong drive, dt much larger than the ISI: every spike is located and counted."""
    tau, I, dt = 20e-3, 10.0, 5e-3
    isi = tau * math.log(I / (I - 1.0))
    res = simulate(LIF(tau_mem=tau), torch.full((4, 1), I, dtype=F64), dt)
    assert res.spikes.max() > 1
    np.testing.assert_allclose(np.diff(res.spike_times[0]), isi, rtol=1e-10)
    assert res.spikes.sum() == res.spike_time.size


@pytest.mark.parametrize("method", ["exact", "euler", "adaptive"])
def test_refractory_duration_independent_of_dt(method):
    """v stays at v_reset for t_ref seconds after a spike, whatever dt (not a step count)."""
    t_ref = 3.3e-3
    model = LIF(tau_mem=10e-3, t_ref=t_ref, v_reset=0.0)
    held = []
    for dt in (1e-4, 2.5e-5):
        res = simulate(model, torch.full((int(0.04 / dt), 1), 3.0, dtype=F64), dt, method=method)
        t_spike = res.spike_times[0][0]
        after = (res.t > t_spike) & (res.t < t_spike + 2 * t_ref)
        flat = res.v[after, 0] == 0.0
        # last grid time with v still exactly at v_reset
        t_last = res.t[after][flat].max().item()
        held.append(t_last - t_spike)
        assert t_last <= t_spike + t_ref + 1e-12
        assert t_last > t_spike + t_ref - dt - 1e-12
    assert abs(held[0] - held[1]) < 1e-4 + 1e-12


def test_refractory_rate_exact_closed_form_across_dt():
    tau, I, t_ref = 20e-3, 1.5, 2.2e-3
    T = tau * math.log(I / (I - 1))
    for dt in (1e-3, 1e-4):
        res = simulate(LIF(tau_mem=tau, t_ref=t_ref), torch.full((int(0.2 / dt), 1), I,
                                                                 dtype=F64), dt)
        np.testing.assert_allclose(np.diff(res.spike_times[0]), T + t_ref, rtol=1e-9)


def test_synaptic_current_decays_during_refractoriness():
    tau_s = 5e-3
    model = LIF(tau_mem=10e-3, tau_syn=tau_s, t_ref=10e-3)
    x = torch.zeros(200, 1, dtype=F64)
    x[0] = 30.0
    res = simulate(model, x, 1e-4, record="all")
    t_spike = res.spike_times[0][0]
    during = (res.t > t_spike + 1e-4) & (res.t < t_spike + 9e-3)
    assert (res.v[during, 0] == 0).all()
    np.testing.assert_allclose(res.i[during, 0], 30.0 * torch.exp(-res.t[during] / tau_s),
                               rtol=1e-12)


def test_alif_threshold_jumps_by_beta_per_spike():
    model = ALIF(tau_mem=10e-3, tau_adapt=1.0, beta_adapt=0.25)
    res = simulate(model, torch.full((300, 1), 3.0, dtype=F64), 1e-4, record="all")
    n = res.spike_time.size
    assert n >= 3
    t_last = res.t[-1].item()
    expected_b = sum(math.exp(-(t_last - ts) / 1.0) for ts in res.spike_times[0])
    assert res.b[-1, 0].item() == pytest.approx(expected_b, rel=1e-12)
