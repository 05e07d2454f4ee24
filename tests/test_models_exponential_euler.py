"""ExponentialEuler: the generic conditionally-linear hook, exactness, phi1, registration."""

import math

import pytest
import torch

import neurosim
from neurosim import LIF, QIF, AdEx, ExponentialEuler, HodgkinHuxley, Izhikevich, simulate
from neurosim.integrators import METHODS, get_integrator
from neurosim.integrators.exponential_euler import phi1
from neurosim.models import NeuronModel

F64 = torch.float64


def test_registered_and_exported():
    assert METHODS["exponential_euler"] is ExponentialEuler
    assert isinstance(get_integrator("exponential_euler"), ExponentialEuler)
    assert neurosim.ExponentialEuler is ExponentialEuler
    with pytest.raises(ValueError, match="precise"):
        get_integrator("exponential_euler", precise=True)


def test_phi1_accurate_and_finite_at_zero():
    z = torch.tensor([0.0, 1e-300, 1e-12, -1e-8, 1e-3, -0.5, -50.0, 2.0], dtype=F64,
                     requires_grad=True)
    out = phi1(z)
    ref = [1.0, 1.0, 1.0 + 5e-13, 1.0 - 5e-9, (math.exp(1e-3) - 1) / 1e-3,
           (1 - math.exp(-0.5)) / 0.5, (1 - math.exp(-50.0)) / 50.0, (math.exp(2.0) - 1) / 2.0]
    for got, want in zip(out.tolist(), ref, strict=True):
        assert got == pytest.approx(want, rel=2e-15)
    out.sum().backward()
    assert torch.isfinite(z.grad).all()


def test_exact_for_a_linear_equation_with_constant_coefficient():
    """One-variable LIF: x <- (x + B/A) e^{A dt} - B/A is the exact solution."""
    model = LIF(tau_mem=20e-3, v_th=10.0)  # no spike
    x = torch.full((100, 1), 1.5, dtype=F64)
    a = simulate(model, x, 1e-3, method="exponential_euler")
    t = torch.arange(1, 101, dtype=F64) * 1e-3
    exact = 1.5 * -torch.expm1(-t / 20e-3)
    assert torch.allclose(a.v[:, 0], exact, rtol=1e-13, atol=1e-15)


def test_generic_rates_equal_closed_forms():
    """The default A_i = f_i(x_i + 1) - f_i(x) agrees with the models' closed forms."""
    hh = HodgkinHuxley()
    x = {"v": torch.tensor([-70.0, -40.0, 20.0], dtype=F64),
         "m": torch.tensor([0.05, 0.4, 0.9], dtype=F64),
         "h": torch.tensor([0.6, 0.3, 0.1], dtype=F64),
         "n": torch.tensor([0.3, 0.5, 0.7], dtype=F64)}
    u = torch.tensor(10.0, dtype=F64)
    generic = NeuronModel.linear_rates(hh, x, u)
    closed = hh.linear_rates(x, u)
    for k in closed:
        assert torch.allclose(generic[k], closed[k], rtol=1e-9, atol=1e-6), k
    izh = Izhikevich()
    xi = {"v": torch.tensor([-60.0], dtype=F64), "u": torch.tensor([-10.0], dtype=F64)}
    assert torch.allclose(NeuronModel.linear_rates(izh, xi, u)["u"], izh.linear_rates(xi, u)["u"])
    # a linear model: every variable is conditionally linear, rates are the diagonal of A
    lif = LIF(tau_mem=10e-3, tau_syn=5e-3)
    assert lif.conditionally_linear == ("v", "i")
    xl = {"v": torch.tensor([0.3], dtype=F64), "i": torch.tensor([0.2], dtype=F64)}
    rates = lif.linear_rates(xl, torch.tensor(0.0, dtype=F64))
    assert rates["v"].item() == pytest.approx(-100.0) and rates["i"].item() == pytest.approx(-200.0)


def test_rejects_models_without_conditionally_linear_variables():
    with pytest.raises(ValueError, match="QIF declares none"):
        simulate(QIF(), torch.ones(2, 1), 1e-3, method="exponential_euler")


def test_adex_w_takes_the_exponential_step():
    """With v frozen (refractory), w follows its exact exponential relaxation."""
    model = AdEx(a=2.0, tau_w=30e-3, t_ref=1.0)
    step = neurosim.discretise(model, 1e-3, "exponential_euler")
    state = step.initial_state((1,), dtype=F64)
    state["refrac"] = torch.tensor([1.0], dtype=F64)
    state["v"] = torch.tensor([-50.0], dtype=F64)
    state["w"] = torch.tensor([100.0], dtype=F64)
    _, new = step(state, torch.zeros(1, dtype=F64))
    w_inf = 2.0 * (-50.0 - model.v_leak)
    assert new.v.item() == -50.0
    assert new.w.item() == pytest.approx(w_inf + (100.0 - w_inf) * math.exp(-1e-3 / 30e-3),
                                         rel=1e-14)
