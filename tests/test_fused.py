"""``neurosim.fused`` (one kernel call with grid spikes, now a wrapper of the engine's
generated kernels) against the reference step loop: spikes, traces, Result, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import fused
from neurosim.engine._codegen import BLOCK

pytest.importorskip("numba")

EXACT = ns.ExactExponential(precise=False)
METHODS = {"euler": "euler", "exact": EXACT}
DT = 1e-3


def _model(kind: str, reset: str = "value", t_ref: float = 0.0, tensor: bool = False,
           dtype=torch.float64, n: int = 40):
    """A hot model; with ``tensor`` every numeric parameter is a per-neuron tensor."""
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
    if tensor:
        gen = torch.Generator().manual_seed(1)
        for k, v in list(kw.items()):
            if isinstance(v, float) and k != "t_ref" and v != 0.0:
                scale = 1 + 0.2 * torch.rand(n, generator=gen, dtype=dtype)
                if k == "v_reset":
                    scale = 1 - 0.5 * torch.rand(n, generator=gen, dtype=dtype)
                kw[k] = (v * scale).requires_grad_(True)
    return cls(**kw)


def _input(model, T=80, n=40, dtype=torch.float64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    scale = 60.0 if model.input_mode == "current" and model.tau_syn is None else 0.6
    if model.input_mode == "current" and model.tau_syn is not None:
        scale = 3.0
    return (torch.rand(T, n, generator=gen, dtype=dtype) * scale).requires_grad_(True)


def _compare(model, method, dtype, detach_reset=False, surrogate="superspike", grads=True):
    u = _input(model, dtype=dtype)
    ref = ns.simulate(model, u, DT, method, record="all", backend="reference",
                      surrogate=surrogate, detach_reset=detach_reset)
    fus = ns.simulate(model, u, DT, method, record="all", backend="fused",
                      surrogate=surrogate, detach_reset=detach_reset)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert torch.equal(fus.spikes, ref.spikes)
    if model.spiking:
        assert ref.spikes.sum() > 0, "the case must spike to test anything"
    assert set(fus.traces) == set(ref.traces)
    for name in ref.traces:
        torch.testing.assert_close(fus.traces[name], ref.traces[name], rtol=0, atol=tol)
    for name in ref.final_state:
        torch.testing.assert_close(fus.final_state[name], ref.final_state[name], rtol=0,
                                   atol=tol)
    np.testing.assert_array_equal(fus.spike_index, ref.spike_index)
    np.testing.assert_array_equal(fus.spike_time, ref.spike_time)
    assert fus.method == ref.method
    if not grads:
        return
    gen = torch.Generator().manual_seed(3)
    weights = {n: torch.randn(ref.traces[n].shape, generator=gen, dtype=dtype)
               for n in ref.traces}
    w_spk = torch.randn(ref.spikes.shape, generator=gen, dtype=dtype)
    params = [u] + [p for p in model.params().values()
                    if isinstance(p, torch.Tensor) and p.requires_grad]

    def loss(res):
        total = (res.spikes * w_spk).sum() + res.final_state["v"].sum()
        for n, w in weights.items():
            if n != "refrac":
                total = total + (res.traces[n] * w).sum()
        return total

    g_ref = torch.autograd.grad(loss(ref), params, allow_unused=True)
    g_fus = torch.autograd.grad(loss(fus), params, allow_unused=True)
    rtol = 1e-4 if dtype == torch.float32 else 1e-9
    assert g_ref[0].abs().max() > 0
    for a, b in zip(g_fus, g_ref, strict=True):
        if b is None:  # unused by the reference (v_reset without reset): zero here
            assert a is None or not bool(a.any())
            continue
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(b.abs().max()))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("kind,reset", [
    ("LIF", "value"), ("LIF", "subtract"), ("LIF", "none"), ("LIF_syn", "value"),
    ("LIF_syn_current", "subtract"), ("ALIF", "value"), ("ALIF", "subtract"),
    ("IF", "value"), ("LI", "value"),
])
def test_fused_matches_reference(kind, reset, method, dtype):
    """Same spikes, traces within 1e-6 (f32) / 1e-12 (f64), same Result, same gradients."""
    model = _model(kind, reset, tensor=True, dtype=dtype)
    _compare(model, METHODS[method], dtype)


@pytest.mark.parametrize("surrogate", ["atan", "sigmoid", "triangle", "exponential",
                                       "gaussian", "straight_through"])
def test_fused_surrogates(surrogate):
    _compare(_model("LIF_syn", "subtract", tensor=True), "euler", torch.float64,
             surrogate=surrogate)


@pytest.mark.parametrize("kind", ["LIF", "ALIF"])
@pytest.mark.parametrize("method", ["euler", "exact"])
def test_fused_detach_reset(kind, method):
    _compare(_model(kind, "value", tensor=True), METHODS[method], torch.float64,
             detach_reset=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["LIF", "LIF_syn_current", "ALIF"])
def test_fused_refractory_euler(kind, dtype):
    """t_ref in seconds, not a multiple of dt: partial refractory steps match exactly."""
    model = _model(kind, "value", t_ref=2.3e-3, tensor=True, dtype=dtype)
    _compare(model, "euler", dtype)


def test_fused_scalar_parameters_and_batch():
    """Float parameters, a batch dimension, and a state carried across two calls."""
    model = ns.LIF(tau_mem=12e-3, tau_syn=3e-3, reset="subtract")
    u = torch.rand(50, 3, 7, dtype=torch.float64) * 0.8
    ref = ns.simulate(model, u, DT, "euler", record="v", backend="reference")
    a = fused.run(model, u[:20], DT, "euler", record="v")
    b = fused.run(model, u[20:], DT, "euler", record="v", state=a.final_state)
    assert a.spikes.shape == (20, 3, 7)
    assert torch.equal(torch.cat([a.spikes, b.spikes]), ref.spikes)
    torch.testing.assert_close(torch.cat([a.traces["v"], b.traces["v"]]), ref.v, rtol=0,
                               atol=1e-12)


def test_fused_no_trace_buffers_without_record():
    out = fused.run(ns.LIF(), torch.rand(30, 5), DT, "euler")
    assert out.traces == {}
    assert out.spikes.shape == (30, 5)
    li = fused.run(ns.LI(), torch.rand(30, 5), DT, "exact", precise=False, record="v")
    assert li.spikes is None and li.traces["v"].shape == (30, 5)


def test_fused_progress_chunks_match():
    model = ns.ALIF(tau_mem=10e-3, reset="subtract")
    u = torch.rand(120, 4, dtype=torch.float64) * 60
    one = ns.simulate(model, u, DT, "euler", backend="fused")
    chunked = ns.simulate(model, u, DT, "euler", backend="fused", progress=True)
    assert torch.equal(one.spikes, chunked.spikes)
    torch.testing.assert_close(one.v, chunked.v, rtol=0, atol=0)


def test_fused_rejects_non_finite_input():
    u = torch.ones(10, 3)
    u[4, 1] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        fused.run(ns.LIF(), u, DT, "euler")


def test_auto_dispatch_and_fallback():
    """auto uses the fused path where supported, the reference path elsewhere."""
    lif = ns.LIF(tau_mem=10e-3)
    assert fused.supports(lif, "euler")
    assert fused.supports(lif, "exact", precise=False)
    assert not fused.supports(lif, "exact")  # precise spike times
    assert not fused.supports(lif, "rk4")
    assert not fused.supports(lif, "adaptive")
    assert not fused.supports(ns.LIF(t_ref=1e-3), EXACT)
    # a callable surrogate is traced like the built-in ones; one that cannot be is refused
    assert fused.supports(lif, "euler", surrogate=lambda x: 2.0 * torch.ones_like(x))
    assert not fused.supports(lif, "euler", surrogate=lambda x: x.numpy())
    assert not fused.supports(lif, "euler", dtype=torch.float16)
    assert "precise" in fused.why_not(lif, "exact")
    u = torch.rand(40, 3, dtype=torch.float64) * 60
    # configurations the fused kernels do not support run on the compiled engine under auto
    # (its contract: the reference's spikes, times to round-off), and raise under fused
    res = ns.simulate(lif, u, DT, "exact")
    ref = ns.simulate(lif, u, DT, "exact", backend="reference")
    np.testing.assert_array_equal(res.spike_index, ref.spike_index)
    np.testing.assert_allclose(res.spike_time, ref.spike_time, rtol=0, atol=1e-15)
    with pytest.raises(ValueError, match="backend='fused'"):
        ns.simulate(lif, u, DT, "exact", backend="fused")
    with pytest.raises(ValueError, match="cannot run"):
        fused.run(lif, u, DT, "rk4")
    with pytest.raises(ValueError, match="backend"):
        ns.simulate(lif, u, DT, "euler", backend="gpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("kind,reset,surrogate", [
    ("LIF", "value", "superspike"), ("LIF", "subtract", "atan"), ("LIF", "none", "superspike"),
    ("LIF_syn", "subtract", "superspike"), ("LIF_syn_current", "value", "sigmoid"),
    ("IF", "subtract", "superspike"),
])
def test_fused_training_gradients(kind, reset, surrogate, method, dtype):
    """The training case (loss on spikes and final state only, no traces): same gradients."""
    model = _model(kind, reset, tensor=True, dtype=dtype)
    u = _input(model, dtype=dtype)
    w = torch.randn(u.shape, generator=torch.Generator().manual_seed(5), dtype=dtype)
    params = [u] + [p for p in model.params().values()
                    if isinstance(p, torch.Tensor) and p.requires_grad]
    grads = []
    for backend in ("reference", "fused"):
        res = ns.simulate(model, u, DT, METHODS[method], record=None, backend=backend,
                          surrogate=surrogate)
        loss = (res.spikes * w).sum() + (res.final_state["v"] ** 2).sum()
        grads.append(torch.autograd.grad(loss, params, allow_unused=True))
    assert grads[0][0].abs().max() > 0
    rtol = 1e-4 if dtype == torch.float32 else 1e-9
    for a, b in zip(grads[1], grads[0], strict=True):
        if b is None:
            assert a is None or not bool(a.any())
            continue
        torch.testing.assert_close(a, b, rtol=rtol, atol=rtol * float(b.abs().max()))


def test_fused_uint8_spikes():
    """A uint8 raster holds the same spikes; it is refused where a gradient is needed."""
    model = ns.LIF(tau_mem=10e-3, reset="subtract")
    u = torch.rand(60, 2000) * 2.5  # more than one block of elements, float32
    a = fused.run(model, u, DT, EXACT)
    b = fused.run(model, u, DT, EXACT, spike_dtype=torch.uint8)
    assert b.spikes.dtype == torch.uint8 and a.spikes.sum() > 0
    assert torch.equal(b.spikes.float(), a.spikes)
    with pytest.raises(ValueError, match="no gradient"):
        fused.run(model, u.requires_grad_(True), DT, EXACT, spike_dtype=torch.uint8)
    with pytest.raises(ValueError, match="spike_dtype"):
        fused.run(model, u.detach(), DT, EXACT, spike_dtype=torch.int64)


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("kind", ["LIF", "LIF_syn"])
def test_fused_training_input_gradient_only(kind, method):
    """Float parameters (nothing to train but the input): the kernel skips parameter sums."""
    model = _model(kind, "subtract", tensor=False, dtype=torch.float32)
    u = _input(model, dtype=torch.float32)
    grads = []
    for backend in ("reference", "fused"):
        res = ns.simulate(model, u, DT, METHODS[method], record=None, backend=backend)
        (g,) = torch.autograd.grad((res.spikes * torch.arange(40.0)).sum(), u)
        grads.append(g)
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4,
                               atol=1e-4 * float(grads[0].abs().max()))


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("kind,surrogate,reset,detach", [
    ("LI", "superspike", "subtract", False), ("LIF", "superspike", "subtract", False),
    ("LIF", "superspike", "value", False), ("LIF", "superspike", "none", False),
    ("LIF", "superspike", "value", True), ("LIF", "atan", "subtract", False),
    ("LIF_syn", "superspike", "subtract", False), ("LIF_syn_current", "sigmoid", "value", False),
    ("IF", "superspike", "subtract", False), ("ALIF", "superspike", "subtract", False),
])
def test_fused_input_gradient_across_blocks(kind, surrogate, reset, detach, method):
    """Training with fixed parameters, over several blocks of elements (the last partial).

    Uniform parameters reach the kernels as one column of coefficients; LI trains on the
    gradient of its output v (a trace). Input gradients and final-state gradients must
    equal the reference loop's.
    """
    n = 2 * BLOCK + 277
    model = _model(kind, reset, dtype=torch.float32)
    u = _input(model, T=50, n=n, dtype=torch.float32).detach()
    u = (u * (1 + torch.linspace(0, 1, n))).requires_grad_(True)
    gen = torch.Generator().manual_seed(7)
    w = torch.randn(u.shape, generator=gen)
    w_final = torch.randn(n, generator=gen)
    grads = []
    for backend in ("reference", "fused"):
        res = ns.simulate(model, u, DT, METHODS[method], record="v" if kind == "LI" else None,
                          backend=backend, surrogate=surrogate, detach_reset=detach)
        out = res.traces["v"] if kind == "LI" else res.spikes
        if model.spiking:
            assert out[:, -100:].sum() > 0
        loss = (out * w).sum() + (res.final_state["v"] * w_final).sum()
        grads.append(torch.autograd.grad(loss, u)[0])
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4,
                               atol=1e-4 * float(grads[0].abs().max()))


@pytest.mark.parametrize("method", ["euler", "exact"])
@pytest.mark.parametrize("kind", ["LI", "LIF", "LIF_syn", "ALIF", "IF"])
def test_fused_compact_coefficients_across_blocks(kind, method):
    """Without gradients, uniform parameters are passed as one column of coefficients.

    Several blocks (the last one partial): spikes, traces and final state must equal
    the reference loop (also refractory LIF under Euler).
    """
    n = 2 * BLOCK + 277
    t_ref = 2.3e-3 if (kind == "LIF" and method == "euler") else 0.0
    model = _model(kind, "subtract", t_ref=t_ref, dtype=torch.float32)
    u = _input(model, T=60, n=n, dtype=torch.float32).detach()
    u = u * (1 + torch.linspace(0, 1, n))  # a different firing rate per block
    with torch.no_grad():
        ref = ns.simulate(model, u, DT, METHODS[method], record="all", backend="reference")
        fus = ns.simulate(model, u, DT, METHODS[method], record="all", backend="fused")
    if model.spiking:
        assert torch.equal(fus.spikes, ref.spikes) and ref.spikes[:, -100:].sum() > 0
    for name in model.state_names:
        torch.testing.assert_close(fus.traces[name], ref.traces[name], rtol=0, atol=1e-6)
        torch.testing.assert_close(fus.final_state[name], ref.final_state[name], rtol=0,
                                   atol=1e-6)
