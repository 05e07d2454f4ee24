"""Hodgkin-Huxley (1952): oracle spike times, rest, firing onset, convergence orders."""

import numpy as np
import pytest
import torch
from _oracle import hh_rhs, spike_times, trajectory

from neurosim import Adaptive, HodgkinHuxley, simulate

F64 = torch.float64
NAMES = ("v", "m", "h", "n")


def _rest_vector():
    rest = HodgkinHuxley().rest()
    return [rest[k] for k in NAMES]


@pytest.fixture(scope="module")
def hh_run():
    """I = 5 and 10 µA/cm² in one adaptive run, 500 ms. Without a reset, HH spikes at
    most once per step (upward crossings), so dt = 10 ms stays below the ~15 ms ISI."""
    x = torch.ones(50, 2, dtype=F64) * torch.tensor([5.0, 10.0], dtype=F64)
    res = simulate(HodgkinHuxley(), x, 0.01,
                   method=Adaptive(rtol=1e-6, atol=1e-6, max_steps=100_000), record=None)
    return res.spike_times


def test_adaptive_matches_solve_ivp_oracle(hh_run):
    for k, current in enumerate((5.0, 10.0)):
        ref = spike_times(hh_rhs(current), _rest_vector(), 0.5, distance=lambda y: y[0],
                          reset=None, atol=1e-10)
        got = hh_run[k]
        assert got.size == ref.size >= 1
        err = np.abs(got - ref).max()
        assert err < 1e-6, f"I={current}: max spike-time error {err:.3g} s"


def test_firing_onset_and_rate(hh_run):
    five, ten = hh_run
    assert five.size == 1 and five[0] < 0.02       # one onset spike, no repetitive firing
    rate = 1.0 / np.diff(ten[-10:]).mean()
    assert 66.0 < rate < 70.0                      # ~68 Hz at 10 µA/cm²
    assert ten.size > 30


def test_rest_near_minus_65_mv():
    model = HodgkinHuxley()
    rest = model.rest()
    assert abs(rest["v"] + 65.0) < 0.1
    x = {k: torch.tensor(v, dtype=F64) for k, v in rest.items()}
    f = model.derivatives(x, torch.tensor(0.0, dtype=F64))
    assert all(abs(float(f[k])) < 1e-6 for k in NAMES)
    res = simulate(model, torch.zeros(200, 1, dtype=F64), 1e-4, method="exponential_euler",
                   record="v")
    assert (res.v + 65.0).abs().max() < 0.1 and res.spike_count().item() == 0


def test_one_spike_per_action_potential_with_every_method():
    """Upward crossings only: fixed-step methods find the oracle's spikes, one per AP."""
    ref = spike_times(hh_rhs(10.0), _rest_vector(), 0.05, distance=lambda y: y[0], reset=None)
    x = torch.full((1000, 1), 10.0, dtype=F64)
    for method in ("euler", "rk4", "exponential_euler"):
        res = simulate(HodgkinHuxley(), x, 5e-5, method=method, record=None)
        got = res.spike_times[0]
        assert got.size == ref.size == 4, method
        # RK4 is accurate to the grid; the first-order methods have a period error of a
        # few per cent at dt = 50 µs (it accumulates in the spike phase)
        if method == "rk4":
            assert np.abs(got - ref).max() < 5e-5
        else:
            assert abs(np.diff(got).mean() / np.diff(ref).mean() - 1.0) < 0.03, method


def _final_error(method: str, dt: float, t_end: float, ref: np.ndarray) -> float:
    n = round(t_end / dt)
    res = simulate(HodgkinHuxley(), torch.full((n, 1), 10.0, dtype=F64), dt, method=method,
                   record="all")
    return max(abs(float(res[k][-1, 0]) - ref[j]) / (1.0 if k != "v" else 100.0)
               for j, k in enumerate(NAMES))


def _orders(method, dts, t_end=3e-3):
    ref = trajectory(hh_rhs(10.0), _rest_vector(), t_end)
    errors = [_final_error(method, dt, t_end, ref) for dt in dts]
    return np.log2(np.array(errors[:-1]) / np.array(errors[1:])), errors


def test_rk4_converges_at_order_4():
    orders, errors = _orders("rk4", [2e-5, 1e-5, 5e-6], t_end=1e-3)
    assert np.all(np.abs(orders - 4.0) < 0.3), (orders, errors)


def test_exponential_euler_converges_at_order_1():
    orders, errors = _orders("exponential_euler", [1e-5, 5e-6, 2.5e-6])
    assert np.all(np.abs(orders - 1.0) < 0.1), (orders, errors)


def test_exponential_euler_is_stable_where_euler_is_not():
    """At dt = 0.1 ms forward Euler overshoots the stiff gating dynamics; exponential Euler
    keeps the gating variables in [0, 1] and the rate near the reference."""
    x = torch.full((1000, 1), 10.0, dtype=F64)
    res = simulate(HodgkinHuxley(), x, 1e-4, method="exponential_euler", record="all")
    for k in ("m", "h", "n"):
        assert res[k].min() >= 0.0 and res[k].max() <= 1.0
    rate = 1.0 / np.diff(res.spike_times[0][-4:]).mean()
    assert 64.0 < rate < 72.0


@pytest.mark.parametrize("kwargs, field", [
    (dict(c_m=0.0), "c_m"), (dict(g_na=-1.0), "g_na"), (dict(g_k=0.0), "g_k"),
    (dict(g_l=float("nan")), "g_l"), (dict(input_mode="x"), "input_mode"),
])
def test_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        HodgkinHuxley(**kwargs)
