"""Stability guidance (issue 16): each integrator knows its stability limit and
``discretise``/``simulate`` warn with ``StabilityWarning`` before running beyond it."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import neurosim
from neurosim import LIF, AdEx, HodgkinHuxley, Izhikevich, discretise, simulate
from neurosim.errors import StabilityWarning
from neurosim.stability import (
    DOPRI5_POLYNOMIAL,
    EULER_POLYNOMIAL,
    RK4_POLYNOMIAL,
    max_stable_dt,
    real_interval,
)


def _stability_warnings(fn) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if issubclass(w.category, StabilityWarning)]


def test_real_axis_intervals_of_the_stability_polynomials():
    """Euler 2, RK4 2.7853, DoPri5 3.3066 (Hairer & Wanner II, Fig. IV.2.1)."""
    assert real_interval(EULER_POLYNOMIAL) == pytest.approx(2.0, abs=1e-9)
    assert real_interval(RK4_POLYNOMIAL) == pytest.approx(2.785293563, abs=1e-8)
    assert real_interval(DOPRI5_POLYNOMIAL) == pytest.approx(3.3066, abs=1e-4)


def test_euler_limit_for_complex_eigenvalues_is_minus_two_re_over_modulus_squared():
    lam = torch.tensor([-100.0 + 300.0j, -50.0 + 0.0j, 10.0 + 0.0j], dtype=torch.complex128)
    got = max_stable_dt(EULER_POLYNOMIAL, lam)
    expected = [200.0 / (100.0 ** 2 + 300.0 ** 2), 2.0 / 50.0, math.inf]
    assert got[0] == pytest.approx(expected[0], rel=1e-9)
    assert got[1] == pytest.approx(expected[1], rel=1e-9)
    assert got[2] == math.inf  # a growing mode limits no step


def test_rk4_limit_near_the_imaginary_axis_is_two_sqrt_two():
    """RK4's stability region reaches 2*sqrt(2) along the imaginary axis (a classic value);
    the interpolated ray table gives it for an almost undamped oscillation."""
    lam = torch.tensor([-1e-6 + 1.0j, -1e-6 - 1.0j], dtype=torch.complex128)
    got = max_stable_dt(RK4_POLYNOMIAL, lam)
    assert got[0] == pytest.approx(2 * math.sqrt(2), rel=1e-3) and got[1] == got[0]


def test_the_limit_of_a_million_element_population_is_cheap():
    """A heterogeneous AdEx (complex eigenvalues) of 1e6 elements: no per-element scan."""
    import time

    model = AdEx(a=torch.linspace(-5.0, 10.0, 1_000_000), tau_w=0.02)
    t0 = time.perf_counter()
    limit = neurosim.get_integrator("rk4").stability_limit(model)
    assert time.perf_counter() - t0 < 30  # was 90 s with a scan per eigenvalue
    assert limit.dt_max_each.shape == (1_000_000,)


def test_lif_euler_warns_beyond_two_tau_once_per_simulate():
    """tau = 1 ms: dt = 3 ms is beyond dt|lambda| = 2; one warning for the whole run."""
    u = torch.full((20, 3), 1.5, dtype=torch.float64)
    msgs = _stability_warnings(lambda: simulate(LIF(tau_mem=1e-3), u, 3e-3, "euler"))
    assert len(msgs) == 1
    msg = msgs[0]
    assert "'euler'" in msg and "dt=0.003 s" in msg and "> 2" in msg
    assert "dt <= 0.002 s" in msg and "method='exact'" in msg and "smaller dt" in msg


def test_lif_euler_within_the_limit_and_exact_do_not_warn():
    u = torch.full((20, 3), 1.5, dtype=torch.float64)
    assert _stability_warnings(lambda: simulate(LIF(tau_mem=1e-3), u, 1e-3, "euler")) == []
    assert _stability_warnings(lambda: simulate(LIF(tau_mem=1e-3), u, 3e-3, "exact")) == []
    assert _stability_warnings(lambda: discretise(LIF(tau_mem=1e-3), 1.0, "exponential_euler")) \
        == []
    assert _stability_warnings(lambda: discretise(LIF(tau_mem=1e-3), 1.0, "adaptive")) == []


def test_rk4_limit_is_2_785_tau():
    model = LIF(tau_mem=1e-3)
    assert _stability_warnings(lambda: discretise(model, 2.78e-3, "rk4")) == []
    msgs = _stability_warnings(lambda: discretise(model, 2.79e-3, "rk4"))
    assert len(msgs) == 1 and "'rk4'" in msgs[0] and "> 2.785" in msgs[0]
    # and euler warns at that dt too
    assert len(_stability_warnings(lambda: discretise(model, 2.1e-3, "euler"))) == 1


def test_the_limit_uses_the_fastest_eigenvalue_of_a_synaptic_lif():
    """v and i decay with tau_mem and tau_syn: the faster one sets the limit."""
    model = LIF(tau_mem=20e-3, tau_syn=1e-3)
    assert _stability_warnings(lambda: discretise(model, 1.9e-3, "euler")) == []
    assert len(_stability_warnings(lambda: discretise(model, 2.1e-3, "euler"))) == 1


def test_heterogeneous_population_names_the_share_beyond_the_limit():
    model = LIF(tau_mem=torch.tensor([1e-3, 10e-3, 20e-3]))
    msgs = _stability_warnings(lambda: discretise(model, 3e-3, "euler"))
    assert len(msgs) == 1 and "1 of 3 elements" in msgs[0]


def test_hodgkin_huxley_euler_limit_near_0_055_ms():
    """From the Jacobian at the peak of a spike; measured: 0.05 ms runs, 0.1 ms diverges."""
    limit = neurosim.get_integrator("euler").stability_limit(HodgkinHuxley())
    assert 5e-5 < limit.dt_max < 6e-5
    assert _stability_warnings(lambda: discretise(HodgkinHuxley(), 5e-5, "euler")) == []
    assert len(_stability_warnings(lambda: discretise(HodgkinHuxley(), 1e-4, "euler"))) == 1
    # exponential Euler integrates every HH variable exactly with frozen rates: no limit
    assert _stability_warnings(lambda: discretise(HodgkinHuxley(), 1e-3,
                                                  "exponential_euler")) == []


def test_hodgkin_huxley_limit_is_the_measured_one():
    """Euler runs at dt = 0.05 ms (below the limit) and diverges at 0.1 ms (beyond it)."""
    u = torch.full((400, 1), 10.0, dtype=torch.float64)
    simulate(HodgkinHuxley(), u[:400], 5e-5, "euler", backend="reference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StabilityWarning)
        with pytest.raises(neurosim.errors.SimulationDiverged):
            simulate(HodgkinHuxley(), u, 1e-4, "euler", backend="reference")


def test_izhikevich_at_10_ms_gets_a_stability_hint():
    """The issue's Izhikevich at dt = 10 ms (wrong rates, no hint): the linearisation at
    rest (|lambda| = 593 1/s for RS) limits Euler to 3.4 ms, so it now warns."""
    msgs = _stability_warnings(lambda: discretise(Izhikevich(), 10e-3, "euler"))
    assert len(msgs) == 1 and "Izhikevich" in msgs[0] and "0.00337" in msgs[0]
    assert _stability_warnings(lambda: discretise(Izhikevich(), 1e-3, "euler")) == []


def test_adex_limit_is_that_of_the_subthreshold_dynamics():
    limit = neurosim.get_integrator("euler").stability_limit(AdEx())
    assert "rest" in limit.source
    assert 15e-3 < limit.dt_max < 25e-3


def test_a_user_can_silence_the_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=StabilityWarning)
        discretise(LIF(tau_mem=1e-3), 3e-3, "euler")
    assert caught == []


def test_the_warning_points_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        discretise(LIF(tau_mem=1e-3), 3e-3, "euler")
    assert caught[0].filename == __file__


def test_a_network_population_warns_once_when_built():
    pop = neurosim.network.Population(LIF(tau_mem=1e-3), 4, method="euler")
    net = neurosim.network.Network(pop, dt=3e-3, backend="reference")
    msgs = _stability_warnings(lambda: net.run(6e-3))
    assert len(msgs) == 1
    assert _stability_warnings(lambda: net.run(6e-3)) == []  # built once


def test_an_nn_layer_warns_when_built_not_per_forward():
    msgs = _stability_warnings(
        lambda: neurosim.nn.LIFLayer(4, dt=3e-3, method="euler", tau_mem=1e-3))
    assert len(msgs) == 1 and "euler" in msgs[0]
    assert _stability_warnings(
        lambda: neurosim.nn.LIFLayer(4, dt=1e-3, method="euler", tau_mem=1e-3)) == []
    layer = neurosim.nn.LIFLayer(4, dt=3e-3, method="exact", tau_mem=1e-3)  # no limit
    assert _stability_warnings(lambda: layer(torch.ones(5, 1, 4))) == []
