"""CobaLIF and the rnnbuilder family (NoReset, Cooldown, Discontinuous)."""

import math

import numpy as np
import pytest
import torch
from _oracle import trajectory

from neurosim import LIF, CobaLIF, Cooldown, Discontinuous, NoReset, discretise, simulate

F64 = torch.float64


# -- CobaLIF --------------------------------------------------------------------------------
def test_signed_jumps_route_to_excitatory_and_inhibitory_conductances():
    model = CobaLIF()
    step = discretise(model, 1e-4, "exponential_euler")
    state = step.initial_state((2,), dtype=F64)
    _, state = step(state, torch.tensor([3.0, -2.0], dtype=F64))
    decay_e, decay_i = math.exp(-1e-4 / 5e-3), math.exp(-1e-4 / 10e-3)
    # exponential Euler is exact for the (linear, constant-rate) conductance decay
    assert state.g_e.tolist() == pytest.approx([3.0 * decay_e, 0.0], rel=1e-14, abs=0)
    assert state.g_i.tolist() == pytest.approx([0.0, 2.0 * decay_i], rel=1e-14, abs=0)
    assert state.v[0] > model.v_leak > state.v[1]  # excitation depolarises, inhibition not


def _coba_rhs(t, y):
    v, ge, gi = y
    i = 10.0 * (-60.0 - v) + ge * (0.0 - v) + gi * (-80.0 - v)
    return [1e3 * i / 200.0, -ge / 5e-3, -gi / 10e-3]


@pytest.mark.parametrize("method, dts, order", [("exponential_euler", (4e-5, 2e-5, 1e-5), 1),
                                                ("rk4", (4e-4, 2e-4, 1e-4), 4)])
def test_coba_convergence_against_solve_ivp(method, dts, order):
    """Subthreshold response to one excitatory (8 nS) and one inhibitory (4 nS) jump."""
    t_end = 4e-3
    ref = trajectory(_coba_rhs, [-60.0, 8.0, 4.0], t_end)
    errors = []
    for dt in dts:
        n = round(t_end / dt)
        x = torch.zeros(n, 1, dtype=F64)
        x[0] = 8.0
        state = CobaLIF().initial_state((1,), dtype=F64)
        state["g_i"] = torch.tensor([4.0], dtype=F64)
        res = simulate(CobaLIF(), x, dt, method=method, state=state, record="all")
        errors.append(abs(float(res.v[-1, 0]) - ref[0]))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(orders - order) < 0.15), (orders, errors)


def test_coba_adaptive_matches_lif_closed_form_without_synaptic_input():
    """Constant current, no conductance input: the LIF closed form with t_ref."""
    x = torch.full((400, 1), 300.0, dtype=F64)
    a = simulate(CobaLIF(input_mode="current"), x, 1e-4, method="adaptive", rtol=1e-9,
                 atol=1e-9, record=None)
    tau = 200.0 / 10.0 * 1e-3
    v_inf = -60.0 + 300.0 / 10.0
    isi = 5e-3 + tau * math.log((v_inf + 60.0) / (v_inf + 50.0))
    first = tau * math.log((v_inf + 60.0) / (v_inf + 50.0))
    np.testing.assert_allclose(a.spike_times[0], first + isi * np.arange(a.spike_times[0].size),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("kwargs, field", [
    (dict(c_m=0.0), "c_m"), (dict(g_leak=-1.0), "g_leak"), (dict(tau_exc=0.0), "tau_exc"),
    (dict(tau_inh=-1.0), "tau_inh"), (dict(t_ref=-1.0), "t_ref"), (dict(v_reset=-40.0),
                                                                     "v_reset"),
    (dict(input_mode="x"), "input_mode"),
])
def test_coba_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        CobaLIF(**kwargs)


# -- rnnbuilder family ----------------------------------------------------------------------
def test_noreset_is_lif_without_reset_and_matches_the_rnnbuilder_recursion():
    tau, dt = 5e-3, 1e-3
    beta = math.exp(-dt / tau)
    x = torch.rand(60, 3, dtype=F64, generator=torch.Generator().manual_seed(0)) * 0.6
    res = simulate(NoReset(tau_mem=tau), x / (1 - beta), dt, method="exact", precise=False)
    lif = simulate(LIF(tau_mem=tau, reset="none"), x / (1 - beta), dt, method="exact",
                   precise=False)
    assert torch.equal(res.spikes, lif.spikes) and torch.allclose(res.v, lif.v, atol=0)
    m = torch.zeros(3, dtype=F64)
    for k in range(x.shape[0]):  # rnnbuilder: m = beta m + x; s = H(m - 1), no reset
        m = beta * m + x[k]
        assert torch.allclose(res.v[k], m, rtol=1e-12, atol=1e-12)
        assert torch.equal(res.spikes[k], (m > 1).to(F64))
    assert res.spike_count().sum() > 10


def test_noreset_spikes_once_per_step_with_precise_methods():
    x = torch.full((50, 1), 2.0, dtype=F64)
    for method in ("exact", "adaptive"):
        res = simulate(NoReset(tau_mem=5e-3), x, 1e-3, method=method)
        above = res.v[:, 0] > 1.0
        assert res.spikes.max() == 1.0
        # after the first crossing the neuron stays above: one spike in every later step
        first = int(torch.nonzero(above)[0])
        assert torch.all(res.spikes[first + 1:, 0] == 1.0), method


def test_cooldown_exponential_euler_is_exact_and_sign_inverts():
    model = Cooldown(tau_mem=10e-3, v_th=1.2, offset=0.5, sign=torch.tensor([1.0, -1.0]))
    x = torch.full((100, 2), 0.8, dtype=F64)
    res = simulate(model, x, 1e-3, method="exponential_euler", record="v")
    g = 0.8 - 0.5 + 1.0  # ELU(0.3) + 1
    v0 = math.exp(-0.5)  # rest: ELU(-0.5) + 1
    t = torch.arange(1, 101, dtype=F64) * 1e-3
    exact = g + (v0 - g) * torch.exp(-t / 10e-3)
    assert torch.allclose(res.v[:, 0], exact, rtol=1e-13, atol=1e-14)
    assert torch.equal(res.spikes[:, 0], (exact > 1.2).to(F64))
    assert torch.equal(res.spikes[:, 1], (exact < 1.2).to(F64))
    alt = Cooldown.alternating(4)
    assert alt.sign.tolist() == [1.0, 1.0, -1.0, -1.0]


def test_cooldown_validation():
    with pytest.raises(ValueError, match="sign"):
        Cooldown(sign=0.5)
    with pytest.raises(ValueError, match="tau_mem"):
        Cooldown(tau_mem=0.0)
    with pytest.raises(ValueError, match="linear between spikes"):
        simulate(Cooldown(), torch.ones(2, 1), 1e-3, method="exact")
    with pytest.raises(ValueError, match="n must be"):
        Cooldown.alternating(0)


@pytest.mark.parametrize("method", ["exact", "euler", "rk4", "exponential_euler", "adaptive"])
def test_discontinuous_spikes_from_the_input_alone(method):
    x = torch.randn(30, 4, dtype=F64, generator=torch.Generator().manual_seed(1)) + 1.0
    x.requires_grad_(True)
    res = simulate(Discontinuous(v_th=1.0), x, 1e-3, method=method)
    assert torch.equal(res.spikes.detach(), (x.detach() > 1.0).to(F64))
    res.spikes.sum().backward()  # the surrogate gradient reaches the input
    assert torch.all(x.grad > 0)
