"""Surrogate spike function and gradients through simulate()."""

import math

import pytest
import torch

import neurosim
from neurosim import LI, LIF, discretise, simulate
from neurosim.surrogate import SURROGATES, Sigmoid, get_surrogate, spike_fn

F64 = torch.float64


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_spike_fn_forward_is_heaviside_and_backward_is_the_surrogate(name):
    x = torch.linspace(-2, 2, 41, dtype=F64, requires_grad=True)
    z = spike_fn(x, name)
    assert torch.equal(z.detach(), (x > 0).to(F64))  # tie x == 0 gives no spike
    z.sum().backward()
    torch.testing.assert_close(x.grad, get_surrogate(name).derivative(x.detach()))


@pytest.mark.parametrize("name", ["superspike", "atan", "sigmoid", "exponential", "gaussian"])
def test_surrogates_are_normalised_derivatives_of_a_step(name):
    """Each smooth surrogate has the integral its formula promises (1 for a unit step)."""
    x = torch.linspace(-200, 200, 2_000_001, dtype=F64)
    d = get_surrogate(name).derivative(x)
    integral = torch.trapezoid(d, x).item()
    # 1/(α|x|+1)² integrates to 2/α; sinabs' exp(−|x|/w)/w to 2
    expected = {"superspike": 2 / 10.0, "exponential": 2.0}.get(name, 1.0)
    assert integral == pytest.approx(expected, rel=2e-3)


def test_sigmoid_surrogate_is_stable_for_huge_inputs():
    x = torch.tensor([-1e30, -1e4, 0.0, 1e4, 1e30], dtype=torch.float32, requires_grad=True)
    spike_fn(x, Sigmoid(alpha=50.0)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[2] == pytest.approx(50.0 / 4)


def test_callable_surrogate_and_bad_names():
    x = torch.tensor([0.3], requires_grad=True)
    spike_fn(x, lambda x: 7.0 * torch.ones_like(x)).backward()
    assert x.grad.item() == 7.0
    with pytest.raises(ValueError, match="surrogate"):
        get_surrogate("nope")
    with pytest.raises(ValueError, match="alpha"):
        get_surrogate("atan", alpha=-1.0)


@pytest.mark.parametrize("method", ["exact", "euler", "adaptive"])
def test_surrogate_gradient_reaches_parameters_and_inputs(method):
    tau = torch.full((4,), 20e-3, dtype=F64, requires_grad=True)
    v_th = torch.tensor(1.0, dtype=F64, requires_grad=True)
    x = (torch.rand(200, 4, dtype=F64, generator=torch.Generator().manual_seed(0)) * 3
         ).requires_grad_()
    res = simulate(LIF(tau_mem=tau, v_th=v_th, tau_syn=5e-3, input_mode="current"), x, 1e-3,
                   method=method)
    assert res.spikes.sum() > 0
    (res.spikes.sum() + res.v.sum()).backward()
    for g in (tau.grad, v_th.grad, x.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_detach_reset_changes_the_gradient():
    def grad(detach):
        x = torch.full((60, 1), 2.0, dtype=F64, requires_grad=True)
        res = simulate(LIF(tau_mem=10e-3), x, 1e-3, method="euler", detach_reset=detach)
        res.v.sum().backward()
        return x.grad

    g_attached, g_detached = grad(False), grad(True)
    assert torch.isfinite(g_attached).all() and torch.isfinite(g_detached).all()
    assert not torch.allclose(g_attached, g_detached)


@pytest.mark.parametrize("method", ["exact", "euler", "rk4"])
def test_gradcheck_smooth_leaky_integrator(method):
    """LI has no spikes: the simulation is smooth in the input and the time constants."""
    def run(x, tau_m, tau_s):
        model = LI(tau_mem=tau_m, tau_syn=tau_s, input_mode="current")
        return simulate(model, x, 1e-3, method=method).v

    x = torch.randn(15, 2, dtype=F64, generator=torch.Generator().manual_seed(1),
                    requires_grad=True)
    tau_m = torch.tensor([10e-3, 30e-3], dtype=F64, requires_grad=True)
    tau_s = torch.tensor(5e-3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (x, tau_m, tau_s), eps=1e-7, atol=1e-6)


def test_gradcheck_lif_subthreshold_and_between_spikes():
    """Away from the threshold, a LIF trajectory (with its spikes fixed) is smooth."""
    def run(x, tau_m):
        return simulate(LIF(tau_mem=tau_m, v_th=10.0), x, 1e-3, method="exact").v

    x = torch.rand(20, 3, dtype=F64, generator=torch.Generator().manual_seed(2),
                   requires_grad=True)
    tau_m = torch.tensor([10e-3, 20e-3, 40e-3], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (x, tau_m), eps=1e-7, atol=1e-6)


def test_gradient_of_first_spike_state_matches_finite_difference_in_precise_mode():
    """The state right after a precise reset is smooth in tau_syn away from events on the grid."""
    def v_end(tau_s):
        x = torch.zeros(30, 1, dtype=F64)
        x[0] = 5.0
        return simulate(LIF(tau_mem=10e-3, tau_syn=tau_s), x, 1e-3, record=("i",)).i[-1, 0]

    tau_s = torch.tensor(4e-3, dtype=F64, requires_grad=True)
    v_end(tau_s).backward()
    h = 1e-9
    fd = (v_end(tau_s.detach() + h) - v_end(tau_s.detach() - h)) / (2 * h)
    assert tau_s.grad.item() == pytest.approx(fd.item(), rel=1e-5)


def test_no_nan_gradient_for_extreme_inputs():
    x = torch.tensor([[1e6], [-1e6], [0.0], [1e6]], requires_grad=True)
    res = simulate(LIF(tau_mem=20e-3), x, 1e-3, method="euler")
    (res.spikes.sum() + res.v.sum()).backward()
    assert torch.isfinite(x.grad).all()


def test_custom_training_loop_with_discretise():
    """A few Adam steps on the input weights raise the spike count towards a target."""
    torch.manual_seed(0)
    w = torch.full((5,), 0.5, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.05)
    step = discretise(LIF(tau_mem=10e-3), 1e-3, "exact", "atan", precise=False)
    losses = []
    for _ in range(30):
        state = step.initial_state((5,))
        count = 0
        for _t in range(50):
            s, state = step(state, w * 2.0)
            count = count + s
        loss = ((count - 5.0) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert math.isfinite(losses[-1])
    assert neurosim.Step is type(step)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_gradient_of_one_neuron_does_not_depend_on_the_rest_of_the_batch(backend):
    """The reset's surrogate path exists in every step for every element, so a neuron's
    gradient is the same alone and next to a neuron that spikes when it does not."""
    model = neurosim.LIF(tau_mem=10e-3, reset="subtract")
    T = 60
    quiet = torch.full((T,), 0.9, dtype=torch.float64)  # stays below threshold
    loud = torch.full((T,), 5.0, dtype=torch.float64)   # spikes often

    def grad_of_first(columns):
        u = torch.stack(columns, dim=1).requires_grad_(True)
        res = neurosim.simulate(model, u, 1e-3, method="euler", backend=backend,
                                surrogate="sigmoid")
        res.v[:, 0].sum().backward()
        return u.grad[:, 0]

    alone = grad_of_first([quiet])
    beside = grad_of_first([quiet, loud])
    assert bool((alone != 0).any())
    torch.testing.assert_close(alone, beside, rtol=1e-14, atol=0)
