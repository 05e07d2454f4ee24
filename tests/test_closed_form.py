"""Closed-form checks of the integrators on models with known solutions (float64)."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import neurosim
from neurosim import ALIF, IF, LI, LIF, simulate

F64 = torch.float64


def lif_isi(tau, r, I, v_leak, v_reset, v_th):
    """Time from v_reset to v_th of a LIF neuron under constant current (s)."""
    return tau * math.log((r * I + v_leak - v_reset) / (r * I + v_leak - v_th))


LIF_PARAMS = dict(tau_mem=20e-3, v_leak=-0.2, v_th=1.0, v_reset=0.1, r=2.0, t_ref=2.35e-3)
DRIVE = 0.9  # r·I + v_leak = 1.6 > v_th


def constant_drive(T, dt, value=DRIVE, n=1):
    return torch.full((int(round(T / dt)), n), value, dtype=F64)


@pytest.mark.parametrize("dt", [1e-3, 1e-4])
def test_exact_lif_first_spike_and_rate_to_1e9(dt):
    p = LIF_PARAMS
    model = LIF(**p)
    state = model.initial_state((1,), dtype=F64)
    state["v"][:] = p["v_reset"]
    res = simulate(model, constant_drive(0.3, dt), dt, method="exact", state=state)
    T = lif_isi(p["tau_mem"], p["r"], DRIVE, p["v_leak"], p["v_reset"], p["v_th"])
    times = res.spike_times[0]
    assert len(times) >= 8
    assert abs(times[0] - T) / T < 1e-9
    isi = np.diff(times)
    np.testing.assert_allclose(isi, p["t_ref"] + T, rtol=1e-9)
    # spike times are not on the grid
    assert np.abs(times / dt - np.round(times / dt)).max() > 1e-3


def test_exact_precision_does_not_depend_on_dt():
    p = LIF_PARAMS
    T = lif_isi(p["tau_mem"], p["r"], DRIVE, p["v_leak"], p["v_reset"], p["v_th"])
    errs = []
    for dt in (1e-3, 3e-4, 1e-4):
        state = LIF(**p).initial_state((1,), dtype=F64)
        state["v"][:] = p["v_reset"]
        res = simulate(LIF(**p), constant_drive(0.1, dt), dt, state=state)
        errs.append(abs(res.spike_times[0][0] - T) / T)
    assert max(errs) < 1e-12


@pytest.mark.parametrize("rtol", [1e-6, 1e-9])
def test_adaptive_lif_within_tolerance(rtol):
    p = LIF_PARAMS
    state = LIF(**p).initial_state((1,), dtype=F64)
    state["v"][:] = p["v_reset"]
    res = simulate(LIF(**p), constant_drive(0.2, 1e-3), 1e-3, method="adaptive", rtol=rtol,
                   atol=rtol * 1e-3, state=state)
    T = lif_isi(p["tau_mem"], p["r"], DRIVE, p["v_leak"], p["v_reset"], p["v_th"])
    times = res.spike_times[0]
    assert len(times) >= 5
    assert abs(times[0] - T) / T < 10 * rtol
    np.testing.assert_allclose(np.diff(times), p["t_ref"] + T, rtol=10 * rtol)


def test_euler_converges_with_order_one():
    """Sub-threshold trace error and spike-time error both shrink like dt.

    Euler puts spikes on the grid, so one neuron's spike-time error jumps with the
    grid phase; the mean over 40 drives averages that out and shows the order.
    """
    tau, I = 20e-3, 0.9  # stays below threshold: v -> 0.9
    model = LIF(tau_mem=tau)
    drives = torch.linspace(1.2, 3.0, 40, dtype=F64)
    first = tau * torch.log(drives / (drives - 1.0))
    trace_err, spike_err = [], []
    dts = [4e-4, 2e-4, 1e-4, 5e-5]
    for dt in dts:
        res = simulate(model, constant_drive(0.05, dt, I), dt, method="euler")
        exact = I * (1 - torch.exp(-res.t / tau))
        trace_err.append((res.v[:, 0] - exact).abs().max().item())
        x = constant_drive(0.05, dt, 1.0, n=40) * drives
        res = simulate(model, x, dt, method="euler")
        t0 = np.array([st[0] for st in res.spike_times])
        spike_err.append(np.abs(t0 - first.numpy()).mean())
    for errs in (trace_err, spike_err):
        order = np.polyfit(np.log(dts), np.log(errs), 1)[0]
        assert 0.9 < order < 1.1


def test_rk4_converges_with_order_four():
    tau_m, tau_s = 20e-3, 5e-3
    model = LI(tau_mem=tau_m, tau_syn=tau_s, input_mode="current")
    errs = []
    dts = [1e-3, 5e-4, 2.5e-4]
    ref = simulate(model, constant_drive(0.04, 1e-4, 1.0), 1e-4, method="exact").v[-1, 0]
    for dt in dts:
        res = simulate(model, constant_drive(0.04, dt, 1.0), dt, method="rk4")
        errs.append(abs(res.v[-1, 0] - ref).item())
    order = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert 3.8 < order < 4.2


@pytest.mark.parametrize("tau_syn", [5e-3, 20e-3, 20e-3 * (1 + 1e-9)])
@pytest.mark.parametrize("method", ["exact", "adaptive"])
def test_psp_after_one_input_spike(tau_syn, method):
    tau_m, w, dt = 20e-3, 0.7, 1e-4
    model = LI(tau_mem=tau_m, tau_syn=tau_syn)  # jump input into i
    x = torch.zeros(1000, 1, dtype=F64)
    x[0] = w
    kw = dict(rtol=1e-10, atol=1e-13) if method == "adaptive" else {}
    res = simulate(model, x, dt, method=method, **kw)
    t = res.t
    if tau_syn == tau_m:
        expected = w * t * torch.exp(-t / tau_m) / tau_m
    else:
        # w·tau_s/(tau_m − tau_s)·(e^{−t/tau_m} − e^{−t/tau_s}), written without cancellation
        rate = 1 / tau_syn - 1 / tau_m
        expected = w * torch.exp(-t / tau_m) * -torch.expm1(-t * rate) / (rate * tau_m)
    tol = 1e-13 if method == "exact" else 1e-8
    assert torch.isfinite(res.v).all()
    assert (res.v[:, 0] - expected).abs().max() < tol * expected.abs().max()


def test_equal_taus_exact_in_lif_with_synapse():
    """A LIF neuron with tau_mem == tau_syn fires when w·t·e^{-t/tau}/tau crosses v_th."""
    tau, w, dt = 10e-3, 5.0, 1e-3
    model = LIF(tau_mem=tau, tau_syn=tau)
    x = torch.zeros(50, 1, dtype=F64)
    x[0] = w
    res = simulate(model, x, dt)
    t_cross = brentq(lambda t: w * t * math.exp(-t / tau) / tau - 1.0, 0, tau)
    assert abs(res.spike_times[0][0] - t_cross) < 1e-15 + 1e-12 * t_cross


def test_propagator_accurate_for_tiny_dt_over_tau():
    tau, dt = 1.0, 1e-7
    model = LI(tau_mem=tau)
    state = model.initial_state((1,), dtype=F64)
    state["v"][:] = 1.0
    res = simulate(model, torch.zeros(100, 1, dtype=F64), dt, state=state)
    expected = torch.exp(-res.t / tau)
    assert ((res.v[:, 0] - expected) / expected).abs().max() < 1e-14


def test_if_closed_form_rate():
    tau, r, I, t_ref = 10e-3, 1.5, 0.4, 1e-3
    model = IF(tau_mem=tau, r=r, t_ref=t_ref)
    res = simulate(model, constant_drive(0.2, 1e-3, I), 1e-3)
    isi = tau * 1.0 / (r * I) + t_ref
    np.testing.assert_allclose(np.diff(res.spike_times[0]), isi, rtol=1e-10)
    np.testing.assert_allclose(res.spike_times[0][0], tau / (r * I), rtol=1e-10)


def test_alif_second_spike_against_root_of_closed_form():
    """After the first spike b = e^{-t/tau_a}: the second spike is where v(t) = v_th + beta·b."""
    tau, tau_a, beta, I = 20e-3, 100e-3, 0.3, 1.5
    model = ALIF(tau_mem=tau, tau_adapt=tau_a, beta_adapt=beta)
    for method, kw, tol in [("exact", {}, 1e-12), ("adaptive", dict(rtol=1e-10, atol=1e-13), 1e-8)]:
        res = simulate(model, constant_drive(0.08, 1e-3, I), 1e-3, method=method, **kw)
        t1 = tau * math.log(I / (I - 1.0))
        t2 = brentq(lambda s: I * (1 - math.exp(-s / tau)) - 1 - beta * math.exp(-s / tau_a),
                    1e-9, 0.08)
        times = res.spike_times[0]
        assert abs(times[0] - t1) < tol
        assert abs(times[1] - (t1 + t2)) < tol
        assert np.all(np.diff(np.diff(times[:4])) > 0), "ISIs grow under adaptation"


def test_float32_follows_input_and_agrees_with_float64():
    model = LIF(tau_mem=20e-3, tau_syn=5e-3, input_mode="current")
    x64 = constant_drive(0.1, 1e-4, 2.0)
    r64 = simulate(model, x64, 1e-4)
    r32 = simulate(model, x64.float(), 1e-4)
    assert r32.v.dtype == torch.float32 and r32.spikes.dtype == torch.float32
    assert torch.equal(r32.spikes.double(), r64.spikes)
    # float32 round-off accumulates over the 1000 steps: 1000 · 2^-23 ≈ 1.2e-4
    assert (r32.v.double() - r64.v).abs().max() < 1.2e-4
    np.testing.assert_allclose(r32.spike_time, r64.spike_time, atol=1e-6)


def test_exact_agrees_with_adaptive_on_alif_with_synapse():
    model = ALIF(tau_mem=15e-3, tau_syn=4e-3, tau_adapt=50e-3, beta_adapt=0.5, t_ref=1e-3,
                 input_mode="current")
    x = constant_drive(0.15, 5e-4, 3.0, n=3) * torch.tensor([1.0, 1.5, 2.0], dtype=F64)
    a = simulate(model, x, 5e-4, method="exact", record="all")
    b = simulate(model, x, 5e-4, method="adaptive", rtol=1e-10, atol=1e-13, record="all")
    assert a.spike_time.size > 10
    np.testing.assert_array_equal(a.spike_index, b.spike_index)
    np.testing.assert_allclose(a.spike_time, b.spike_time, atol=1e-9)
    for name in ("v", "i", "b"):
        assert (a[name] - b[name]).abs().max() < 1e-7


def test_exact_method_rejects_nonlinear_model():
    class Quadratic(neurosim.LIF):
        def linear_system(self):
            return None

    with pytest.raises(ValueError, match="linear between spikes"):
        simulate(Quadratic(), torch.ones(3, 1), 1e-3, method="exact")
