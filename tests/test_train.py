"""Training on the generated engine kernels against the reference loop's torch autograd.

Forward: the same spikes, traces and final state; backward: the same gradients with
respect to the input, the initial state and every tensor parameter (float64 to
round-off), for every model x method x reset x surrogate x refractoriness the kernels
support, and for a model defined here (the engine knows no model class).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.engine import _train
from neurosim.models.base import NeuronModel

pytest.importorskip("numba")

EXACT = ns.ExactExponential(precise=False)
METHODS = {"euler": "euler", "exact": EXACT}
DT = 1e-3
F64 = torch.float64


def _model(kind: str, reset: str = "value", t_ref: float = 0.0, dtype=F64, n: int = 40):
    """A model whose every numeric parameter is a per-neuron tensor that requires grad."""
    kw: dict = {}
    if kind == "LI":
        kw = dict(tau_mem=8e-3, tau_syn=4e-3, v_leak=0.1)
    elif kind == "LIF":
        kw = dict(tau_mem=10e-3, v_leak=0.1, v_th=1.0, v_reset=0.05, reset=reset, t_ref=t_ref)
    elif kind == "LIF_syn":
        kw = dict(tau_mem=10e-3, tau_syn=5e-3, v_th=1.0, reset=reset, t_ref=t_ref)
    elif kind == "LIF_syn_current":
        kw = dict(tau_mem=10e-3, tau_syn=5e-3, reset=reset, t_ref=t_ref, input_mode="current")
    elif kind == "ALIF":
        kw = dict(tau_mem=10e-3, tau_adapt=50e-3, beta_adapt=0.3, reset=reset, t_ref=t_ref)
    elif kind == "IF":
        kw = dict(tau_mem=10e-3, reset=reset, t_ref=t_ref)
    cls = {"LI": ns.LI, "ALIF": ns.ALIF, "IF": ns.IF}.get(kind, ns.LIF)
    gen = torch.Generator().manual_seed(1)
    for k, v in list(kw.items()):
        if isinstance(v, float) and k != "t_ref" and v != 0.0:
            scale = 1 + 0.2 * torch.rand(n, generator=gen, dtype=dtype)
            if k == "v_reset":
                scale = 1 - 0.5 * torch.rand(n, generator=gen, dtype=dtype)
            kw[k] = (v * scale).requires_grad_(True)
    return cls(**kw)


def _input(model, T=80, n=40, dtype=F64, seed=0, scale=None):
    gen = torch.Generator().manual_seed(seed)
    if scale is None:
        scale = 60.0 if model.input_mode == "current" and model.tau_syn is None else 0.6
        if model.input_mode == "current" and model.tau_syn is not None:
            scale = 3.0
    return (torch.rand(T, n, generator=gen, dtype=dtype) * scale).requires_grad_(True)


def compare(model, method, dtype=F64, detach_reset=False, surrogate="superspike", u=None,
            state=None, dt=DT):
    """Forward identical, gradients of a loss on spikes, traces and final state equal."""
    u = _input(model, dtype=dtype) if u is None else u
    runs = {}
    for backend in ("reference", "engine"):
        runs[backend] = ns.simulate(model, u, dt, method, record="all", backend=backend,
                                    surrogate=surrogate, detach_reset=detach_reset,
                                    state=state)
    ref, gen = runs["reference"], runs["engine"]
    assert ns.loop.backend_for(ns.discretise(model, dt, method, surrogate), u,
                               ref.final_state) == "engine"
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.equal(gen.spikes, ref.spikes)
    if model.spiking:
        assert ref.spikes.sum() > 0, "the case must spike to test anything"
    for name in ref.traces:
        torch.testing.assert_close(gen.traces[name], ref.traces[name], rtol=0, atol=tol)
    for name in ref.final_state:
        torch.testing.assert_close(gen.final_state[name], ref.final_state[name], rtol=0,
                                   atol=tol)
    np.testing.assert_array_equal(gen.spike_index, ref.spike_index)
    np.testing.assert_array_equal(gen.spike_time, ref.spike_time)
    gen_ = torch.Generator().manual_seed(3)
    weights = {n: torch.randn(ref.traces[n].shape, generator=gen_, dtype=dtype)
               for n in ref.traces if n != "refrac"}
    w_spk = torch.randn(ref.spikes.shape, generator=gen_, dtype=dtype)
    params = [u] + [p for p in model.params().values()
                    if isinstance(p, torch.Tensor) and p.requires_grad]
    if state is not None:
        params += [v for v in state.values() if v.requires_grad]

    def loss(res):
        total = (res.spikes * w_spk).sum() + (res.final_state[model.membrane] ** 2).sum()
        for n, w in weights.items():
            total = total + (res.traces[n] * w).sum()
        return total

    g_ref = torch.autograd.grad(loss(ref), params, allow_unused=True)
    g_gen = torch.autograd.grad(loss(gen), params, allow_unused=True)
    rtol = 1e-4 if dtype == torch.float32 else 1e-10
    assert g_ref[0].abs().max() > 0
    for a, b in zip(g_gen, g_ref, strict=True):
        if b is None:  # unused by the reference (v_reset without reset): zero here
            assert a is None or not bool(a.any())
            continue
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(b.abs().max()))
    return ref, gen


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("kind,reset", [
    ("LIF", "value"), ("LIF", "subtract"), ("LIF", "none"), ("LIF_syn", "value"),
    ("LIF_syn_current", "subtract"), ("ALIF", "value"), ("ALIF", "subtract"),
    ("IF", "value"), ("IF", "subtract"), ("LI", "value"),
])
def test_matches_reference(kind, reset, method):
    compare(_model(kind, reset), METHODS[method])


@pytest.mark.parametrize("method", ["euler", "exact"])
def test_float32(method):
    compare(_model("ALIF", "subtract", dtype=torch.float32), METHODS[method], torch.float32)


_SLOW = pytest.mark.slow  # a kernel module of its own to compile (about 5 s each, cold)


@pytest.mark.parametrize("surrogate", ["superspike", "atan", "sigmoid", "triangle",
                                       "exponential", "gaussian", "straight_through"])
@pytest.mark.parametrize("method", ["euler", pytest.param("exact", marks=_SLOW)])
def test_surrogates(surrogate, method):
    """Every built-in surrogate, its derivative traced from the class's own formula."""
    compare(_model("LIF_syn", "subtract"), METHODS[method], surrogate=surrogate)


def test_surrogate_parameters_share_one_kernel():
    """alpha is a coefficient row: two values, one kernel module, each its own gradient."""
    model = _model("LIF", "subtract")
    compare(model, "euler", surrogate=ns.surrogate.ATan(alpha=4.0))
    compare(model, "euler", surrogate=ns.surrogate.ATan(alpha=0.5))


def test_custom_surrogate_callable_is_traced():
    compare(_model("LIF", "value"), "euler",
            surrogate=lambda x: 0.3 / (1.0 + 4.0 * x * x))


@pytest.mark.parametrize("kind", ["LIF", "ALIF"])
@pytest.mark.parametrize("method", ["euler", "exact"])
def test_detach_reset(kind, method):
    compare(_model(kind, "value"), METHODS[method], detach_reset=True)


@pytest.mark.parametrize("kind,reset", [("LIF", "value"), ("LIF_syn_current", "subtract"),
                                        ("ALIF", "value"), ("IF", "subtract")])
def test_refractory_euler(kind, reset):
    """t_ref in seconds, not a multiple of dt: partial refractory steps, same gradients."""
    compare(_model(kind, reset, t_ref=2.3e-3), "euler")


def test_initial_state_gradient_and_refractory_start():
    """Gradients reach a given initial state; a state still refractory at the start."""
    model = _model("LIF_syn", "subtract")
    gen = torch.Generator().manual_seed(4)
    state = ns.State(v=torch.rand(40, generator=gen, dtype=F64).requires_grad_(True),
                     i=torch.rand(40, generator=gen, dtype=F64).requires_grad_(True),
                     refrac=torch.rand(40, generator=gen, dtype=F64) * 3e-3)
    compare(model, "euler", state=state)


def test_scalar_parameters_batch_and_input_only():
    """Float parameters and a batch: only the input trains (no parameter sums)."""
    model = ns.LIF(tau_mem=10e-3, tau_syn=5e-3, reset="subtract")
    u = (torch.rand(60, 3, 300, generator=torch.Generator().manual_seed(2), dtype=F64)
         * 0.6).requires_grad_(True)
    compare(model, EXACT, u=u)


class Quadratic(NeuronModel):
    """A user-defined model (in the test file): a quadratic membrane with adaptation."""

    tau: float = 10e-3
    tau_w: float = 30e-3
    a: float = 0.5
    v_peak: float = 1.0
    v_r: float = -0.2
    t_ref: float = 0.0
    clamped: ClassVar[tuple[str, ...]] = ("v",)
    input_mode: str = "current"

    @property
    def state_names(self):
        return ("v", "w")

    def derivatives(self, x, u):
        v, w = x["v"], x["w"]
        return {"v": (v * v - w + u) / self.tau, "w": (self.a * torch.tanh(v) - w) / self.tau_w}

    def threshold_distance(self, x):
        return x["v"] - self.v_peak

    def on_spike(self, x):
        return {"v": torch.zeros_like(x["v"]) + self.v_r, "w": x["w"] + 0.1}

    def rest(self):
        return {"v": 0.0, "w": 0.0}


Quadratic = dataclasses.dataclass(frozen=True, eq=False)(Quadratic)


@pytest.mark.parametrize("t_ref", [0.0, pytest.param(1.5e-3, marks=_SLOW)])
def test_user_defined_model_trains_on_the_engine(t_ref):
    """A model the engine has never seen: same spikes and gradients as torch autograd."""
    n = 30
    gen = torch.Generator().manual_seed(5)
    tau = (10e-3 * (1 + 0.3 * torch.rand(n, generator=gen, dtype=F64))).requires_grad_(True)
    a = torch.tensor(0.5, dtype=F64, requires_grad=True)
    model = Quadratic(tau=tau, a=a, t_ref=t_ref)
    u = (torch.rand(100, n, generator=gen, dtype=F64) * 2.0).requires_grad_(True)
    compare(model, "euler", u=u)


@pytest.mark.slow
def test_adex_euler_trains_on_the_engine():
    n = 8
    gen = torch.Generator().manual_seed(6)
    model = ns.AdEx(a=torch.full((n,), 4.0, dtype=F64, requires_grad=True),
                    tau_w=torch.tensor(144e-3, dtype=F64, requires_grad=True), t_ref=0.5e-3)
    u = (torch.linspace(500.0, 1500.0, n, dtype=F64).expand(400, n)
         * (1 + 0.1 * torch.rand(400, n, generator=gen, dtype=F64))).requires_grad_(True)
    compare(model, "euler", u=u, dt=1e-4)


def test_why_not_names_what_stays_on_the_reference_loop():
    u = torch.rand(5, 3, requires_grad=True)
    lif = ns.LIF()

    def reason(model, method, **kw):
        step = ns.discretise(model, DT, method, **kw)
        return _train.why_not(step, u, step.initial_state((3,)))

    assert reason(lif, "euler") is None
    assert reason(lif, "exact", precise=False) is None
    assert "precise" in reason(lif, "exact")
    assert "rk4" in reason(lif, "rk4").lower() or "RK4" in reason(lif, "rk4")
    assert "t_ref" in reason(ns.LIF(t_ref=1e-3), "exact", precise=False)
    assert "surrogate" in reason(lif, "euler", surrogate=lambda x: x.numpy())
    assert reason(lif, "euler", multi_spike=True) is not None


def test_non_finite_input_and_divergence_are_reported_with_gradients():
    """The training kernels check as they stream: a NaN input is a ValueError naming its
    place, a state that overflows a SimulationDiverged naming the variable."""
    u = torch.ones(10, 3, dtype=F64)
    u[4, 1] = float("nan")
    with pytest.raises(ValueError, match="step 4, element 1"):
        ns.simulate(ns.LIF(reset="none"), u.requires_grad_(True), DT, "euler")
    huge = torch.full((10, 3), 1e308, dtype=F64, requires_grad=True)
    with pytest.raises(ns.errors.SimulationDiverged, match="'v'"):
        ns.simulate(ns.LIF(reset="none", v_th=1e300), huge, DT, "euler")


def test_declared_range_is_checked_with_gradients_as_without():
    """A state leaving the model's declared plausible range (LIF: |v| <= 1e9) raises the
    same SimulationDiverged (step, element, variable) on the training kernels as on the
    simulation engine."""
    u = torch.ones(6, 4, dtype=F64)
    u[3, 2] = 1e12  # v after step 3 of element 2: about dt/tau * 1e12 = 1e11
    errors = []
    for grad in (False, True):
        x = u.clone().requires_grad_(grad)
        with pytest.raises(ns.errors.SimulationDiverged, match="declared plausible range") as e:
            ns.simulate(ns.LIF(reset="none"), x, DT, "euler", backend="engine")
        errors.append((e.value.step, e.value.neuron, e.value.variable, e.value.bounds))
    assert errors[0] == errors[1] == (3, 2, "v", (-1e9, 1e9))
