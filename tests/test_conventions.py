"""neurosim.conventions against the peers' published update equations and the peers themselves.

Each reference below is the peer's update written out as a tiny loop (DESIGN.md
section 6 and the peers' docs): independent of neurosim's integrators. The
neurosim module must give the same spikes and the membrane to float32 round-off
(|Δv| <= 1e-6 + 1e-6·|v|). Where the peer is installed it is run as well.
"""

import math
import warnings

import pytest
import torch

from neurosim import LI, LIF, Step, discretise, engine
from neurosim import conventions as C
from neurosim.conventions import PeerStep
from neurosim.integrators import Euler
from neurosim.loop import backend_for, run_steps
from neurosim.nn import LIFLayer

T, B, N = 60, 3, 7


def _input(scale=0.6, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N, generator=g, dtype=torch.float64) * scale).to(dtype)


def _same(out, ref, peak=1.0):
    """Same spikes; membranes equal to float32 round-off of the largest membrane value
    ``peak`` that passed through the update (1e-6 relative to it, at least 1e-6)."""
    s, v = out
    rs, rv = ref
    assert s.shape == rs.shape == v.shape == rv.shape
    assert s.sum() > 0  # the comparison covers spikes and resets
    assert torch.equal(s, rs.to(s.dtype))
    tol = 1e-6 * max(1.0, float(torch.as_tensor(peak).detach()))
    torch.testing.assert_close(v, rv.to(v.dtype), atol=tol, rtol=1e-6)


# -- reference loops: the peers' equations -------------------------------------------------
def ref_snntorch_leaky(x, beta, thr, mech, delay):
    U = torch.zeros_like(x[0])
    S, V = [], []
    for t in range(len(x)):
        R = (U > thr).to(x.dtype)  # decided from the previous (stored) membrane
        if mech == "subtract":
            U = beta * U + x[t] - R * thr
        elif mech == "zero":
            U = beta * (1 - R) * U + x[t]
        else:
            U = beta * U + x[t]
        s = (U > thr).to(x.dtype)
        if not delay and mech != "none":
            U = U - s * thr if mech == "subtract" else U * (1 - s)
        S.append(s)
        V.append(U)
    return torch.stack(S), torch.stack(V)


def ref_snntorch_synaptic(x, alpha, beta, thr, mech, delay):
    I = torch.zeros_like(x[0])
    U = torch.zeros_like(x[0])
    S, V = [], []
    for t in range(len(x)):
        R = (U > thr).to(x.dtype)
        I = alpha * I + x[t]
        U = beta * U + I
        if delay:
            U = U - R * thr if mech == "subtract" else U * (1 - R)
        s = (U > thr).to(x.dtype)
        if not delay:
            U = U - s * thr if mech == "subtract" else U * (1 - s)
        S.append(s)
        V.append(U)
    return torch.stack(S), torch.stack(V)


def ref_norse_lif(x, tsi=200.0, tmi=100.0, v_leak=0.0, v_th=1.0, v_reset=0.0, dt=1e-3):
    v = torch.full_like(x[0], v_leak)  # norse starts at rest
    i = torch.zeros_like(x[0])
    S, V = [], []
    for t in range(len(x)):
        i1 = i + x[t]
        v1 = v + dt * tmi * ((v_leak - v) + i1)
        i = i1 - dt * tsi * i1
        z = (v1 > v_th).to(x.dtype)
        v = (1 - z) * v1 + z * v_reset
        S.append(z)
        V.append(v)
    return torch.stack(S), torch.stack(V)


def ref_sinabs_lif(x, tau_mem, tau_syn, norm_input, multi, v_min, thr=1.0):
    am = math.exp(-1.0 / tau_mem)
    v = torch.zeros_like(x[0])
    i = torch.zeros_like(x[0])
    S, V = [], []
    for t in range(len(x)):
        i = math.exp(-1.0 / tau_syn) * (i + x[t]) if tau_syn is not None else x[t]
        v = am * v + ((1 - am) * i if norm_input else i)
        if multi:
            s = (v > 0) * torch.div(v, thr, rounding_mode="trunc")
        else:
            s = (v >= thr).to(x.dtype)
        v = v - s * thr
        if v_min is not None:
            v = torch.clamp(v, min=v_min)
        S.append(s)
        V.append(v)
    return torch.stack(S), torch.stack(V)


def ref_spikingjelly_lif(x, tau, decay_input, v_reset, v_th):
    rest = 0.0 if v_reset is None else v_reset
    V = torch.full_like(x[0], rest)
    S, Vs = [], []
    for t in range(len(x)):
        if decay_input:
            H = V + (x[t] - (V - rest)) / tau
        else:
            H = V - (V - rest) / tau + x[t]
        s = (H >= v_th).to(x.dtype)
        V = H - s * v_th if v_reset is None else H * (1 - s) + v_reset * s
        S.append(s)
        Vs.append(V)
    return torch.stack(S), torch.stack(Vs)


def ref_rnnbuilder_lif(x, tau):
    beta = math.exp(-1.0 / tau)
    m = torch.zeros_like(x[0])
    S, V = [], []
    for t in range(len(x)):
        m = beta * m + x[t]
        s = (m - 1 > 0).to(x.dtype)
        m = m - s
        S.append(s)
        V.append(m)
    return torch.stack(S), torch.stack(V)


def ref_rnnbuilder_adaptive(x, tau, tau_thr, gamma):
    beta, rho = math.exp(-1.0 / tau), math.exp(-1.0 / tau_thr)
    m = torch.zeros_like(x[0])
    b = torch.zeros_like(x[0])
    S, V = [], []
    for t in range(len(x)):
        theta = 1 + b
        s = (m - theta > 0).to(x.dtype)  # from the old membrane
        m = beta * m + x[t] - s * theta
        b = rho * b + gamma * s
        S.append(s)
        V.append(m)
    return torch.stack(S), torch.stack(V)


# -- against the published equations ------------------------------------------------------
@pytest.mark.parametrize("mech", ["subtract", "zero", "none"])
@pytest.mark.parametrize("delay", [True, False])
def test_snntorch_leaky_equations(mech, delay):
    x = _input()
    _same(C.snntorch_leaky(0.9, 1.0, mech, delay)(x), ref_snntorch_leaky(x, 0.9, 1.0, mech, delay))


def test_snntorch_leaky_beta_one_is_the_perfect_integrator():
    x = _input(0.3)
    _same(C.snntorch_leaky(1.0, 1.5)(x), ref_snntorch_leaky(x, 1.0, 1.5, "subtract", True))


@pytest.mark.parametrize("mech", ["subtract", "zero"])
@pytest.mark.parametrize("delay", [True, False])
@pytest.mark.parametrize("alpha", [0.8, 0.9])  # 0.9 == beta: the equal-tau propagator
def test_snntorch_synaptic_equations(mech, delay, alpha):
    x = _input(0.2)
    out = C.snntorch_synaptic(alpha, 0.9, 1.0, mech, delay)(x)
    _same(out, ref_snntorch_synaptic(x, alpha, 0.9, 1.0, mech, delay))


def test_norse_lif_golden_values():
    x = torch.ones(8, 1, 1)
    s, v = C.norse_lif()(x)
    golden = [0.1, 0.27, 0.487, 0.7335, 0.9963, 0.0, 0.3951, 0.7717]
    torch.testing.assert_close(v.flatten(), torch.tensor(golden), atol=1e-4, rtol=0)
    assert s.flatten().tolist() == [0, 0, 0, 0, 0, 1, 0, 0]


def test_norse_lif_equations():
    x = _input(4.0)
    out = C.norse_lif(150.0, 120.0, v_leak=0.1, v_th=0.9, v_reset=-0.2, dt=1e-3)(x)
    _same(out, ref_norse_lif(x, 150.0, 120.0, 0.1, 0.9, -0.2))


def test_norse_li_equations():
    x = _input(2.0)
    s, v = C.norse_li(150.0, 120.0, v_leak=0.1)(x)
    assert torch.equal(s, torch.zeros_like(v))
    _, ref_v = ref_norse_lif(x, 150.0, 120.0, 0.1, v_th=1e30)
    torch.testing.assert_close(v, ref_v, atol=1e-6, rtol=1e-6)


def _sinabs_input(norm_input, multi, seed=0):
    """Drives that make the sinabs neuron fire; several thresholds per step when multi."""
    x = _input(1.0, seed)
    if not multi:
        return x * (3.0 if norm_input else 0.3)
    scale = 60.0 if norm_input else 6.0
    return x * scale - 0.25 * scale  # negative inputs exercise the clipping at min_v_mem


@pytest.mark.parametrize("tau_syn", [None, 5.0, 10.0])
@pytest.mark.parametrize("norm_input", [True, False])
@pytest.mark.parametrize("multi", [False, True])
def test_sinabs_lif_equations(tau_syn, norm_input, multi):
    x = _sinabs_input(norm_input, multi)
    v_min = -0.5 if multi else None
    module = C.sinabs_lif(10.0, tau_syn, norm_input, "multi" if multi else "single", v_min)
    s, v = module(x)
    ref = ref_sinabs_lif(x, 10.0, tau_syn, norm_input, multi, v_min)
    _same((s, v), ref, peak=(ref[1] + ref[0]).abs().max())  # pre-reset membrane
    if multi:
        assert s.max() >= 2
        assert v.min() == -0.5


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("v_reset", [0.0, -0.3, None])
def test_spikingjelly_lif_equations(decay_input, v_reset):
    x = _input(2.5 if decay_input else 0.7)
    out = C.spikingjelly_lif(3.0, decay_input, v_reset, 1.0)(x)
    _same(out, ref_spikingjelly_lif(x, 3.0, decay_input, v_reset, 1.0))


def test_rnnbuilder_lif_equations():
    x = _input()
    _same(C.rnnbuilder_lif(8.0)(x), ref_rnnbuilder_lif(x, 8.0))


def test_rnnbuilder_adaptive_equations():
    x = _input(0.9)
    out = C.rnnbuilder_adaptive(8.0, 30.0, 0.5)(x)
    ref = ref_rnnbuilder_adaptive(x, 8.0, 30.0, 0.5)
    _same(out, ref)


def test_conventions_run_in_float64_and_reject_bad_parameters():
    x = _input(dtype=torch.float64)
    s, v = C.snntorch_leaky(0.8)(x)
    assert v.dtype == torch.float64
    rs, rv = ref_snntorch_leaky(x, 0.8, 1.0, "subtract", True)
    assert torch.equal(s, rs)
    torch.testing.assert_close(v, rv, atol=1e-13, rtol=1e-13)
    with pytest.raises(ValueError, match="beta"):
        C.snntorch_leaky(1.5)
    with pytest.raises(ValueError, match="reset_mechanism"):
        C.snntorch_leaky(0.9, reset_mechanism="zap")
    with pytest.raises(ValueError, match="tau_mem_inv"):
        C.norse_lif(tau_mem_inv=-1.0)
    with pytest.raises(ValueError, match="spike_fn"):
        C.sinabs_lif(10.0, spike_fn="double")
    with pytest.raises(ValueError, match="gamma"):
        C.rnnbuilder_adaptive(5.0, 10.0, -1.0)


def test_convention_modules_are_differentiable():
    x = _input().requires_grad_()
    s, v = C.snntorch_synaptic(0.8, 0.9)(x)
    (s.sum() + v.sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# -- PeerStep: the grid-step rules on top of a core step --------------------------------------
@pytest.mark.parametrize("option", [{"multi_spike": True}, {"reset_delay": "end"},
                                    {"v_min": -0.5}])
@pytest.mark.parametrize("method, kwargs, said", [("adaptive", {}, "'adaptive'"),
                                                  ("exact", {}, "precise=True")])
def test_peer_options_refuse_spikes_located_inside_the_step(option, method, kwargs, said):
    step = discretise(LIF(), 1e-4, method, **kwargs)
    assert step.precise
    (name,) = option
    with pytest.raises(ValueError, match=f"{name}=.*needs spikes on the grid.*{said}"):
        PeerStep(step, **option)
    with pytest.raises(ValueError, match=f"{name}=.*{said}"):
        discretise(LIF(), 1e-4, method, **kwargs, **option)  # refused before it warns
    with pytest.raises(ValueError, match=f"{name}=.*{said}"):
        LIFLayer(method=method, precise=method == "exact", **option)  # at construction


def test_discretise_adaptive_multi_spike_is_refused():
    """The case of issue 13: the adaptive integrator has no ``precise`` flag to read off."""
    with pytest.raises(ValueError, match="multi_spike=True.*method='adaptive'"):
        discretise(LIF(), 1e-4, "adaptive", multi_spike=True)


@pytest.mark.parametrize("method, kwargs", [("euler", {}), ("rk4", {}),
                                            ("exponential_euler", {}),
                                            ("exact", {"precise": False})])
def test_peer_options_accept_spikes_on_the_grid(method, kwargs):
    step = discretise(LIF(reset="subtract"), 1e-3, method, **kwargs)
    assert not step.precise
    peer = PeerStep(step, multi_spike=True, v_min=-0.5)
    assert peer.active == {"multi_spike": True, "v_min": -0.5}
    assert PeerStep(step, reset_delay="end").active == {"reset_delay": "end"}
    # a floor on a non-spiking membrane does not care where spikes would be
    li = PeerStep(discretise(LI(), 1e-3, "exact"), v_min=0.0)
    _, state = li(li.initial_state((2,)), torch.tensor([-50.0, 50.0]))
    assert state["v"][0] == 0.0 and state["v"][1] > 0


def test_discretise_peer_options_are_deprecated_and_build_the_same_wrapper():
    model = LIF(tau_mem=20e-3, reset="subtract", input_mode="jump")
    u = _input(4.0).reshape(T, -1).to(torch.float64)
    new = PeerStep(discretise(model, 1e-3, "exact", precise=False), multi_spike=True,
                   v_min=-0.5)
    with pytest.warns(DeprecationWarning, match="PeerStep") as caught:
        old = discretise(model, 1e-3, "exact", precise=False, multi_spike=True, v_min=-0.5)
    (deprecation,) = [w for w in caught if w.category is DeprecationWarning]
    assert deprecation.filename == __file__  # points at the caller
    assert isinstance(old, PeerStep) and old.options == new.options
    a = run_steps(old, u, old.initial_state(u.shape[1:], dtype=u.dtype), ("v",))
    b = run_steps(new, u, new.initial_state(u.shape[1:], dtype=u.dtype), ("v",))
    assert a.spikes.max() > 1  # several spikes in one step were counted
    assert torch.equal(a.spikes, b.spikes) and torch.equal(a.traces["v"], b.traces["v"])
    assert a.traces["v"].min() >= -0.5
    # the defaults build the core step, without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        plain = discretise(model, 1e-3, "euler", multi_spike=False, reset_delay="none",
                           v_min=None)
    assert type(plain) is Step


def test_core_step_has_no_peer_options():
    step = discretise(LIF(), 1e-3, "euler")
    for name in ("multi_spike", "reset_delay", "v_min"):
        assert not hasattr(step, name)
    with pytest.raises(TypeError):
        Step(LIF(), 1e-3, Euler(), multi_spike=True)
    with pytest.raises(ValueError, match="core neurosim Step"):
        PeerStep(PeerStep(step, multi_spike=True), v_min=0.0)
    assert LIFLayer(method="euler").make_step().__class__ is Step
    made = LIFLayer(method="euler", reset_delay="end").make_step()
    assert isinstance(made, PeerStep) and made.reset_delay == "end"


def test_peer_step_runs_on_the_reference_loop():
    peer = PeerStep(discretise(LIF(reset="subtract"), 1e-3, "euler"), multi_spike=True)
    u = torch.full((20, 4), 3.0, dtype=torch.float64)
    state = peer.initial_state((4,), dtype=torch.float64)
    assert backend_for(peer, u, state) == "reference"
    assert "reference loop" in engine.why_not(peer, u, state)
    for backend in ("engine", "fused"):
        with pytest.raises(ValueError, match=f"backend='{backend}'.*PeerStep"):
            backend_for(peer, u, state, backend=backend)
    out = run_steps(peer, u, state, ("v",))
    assert out.backend == "reference"
    manual = state
    for k in range(len(u)):
        z, manual = peer(manual, u[k])
        assert torch.equal(z, out.spikes[k])
        assert torch.equal(manual["v"], out.traces["v"][k])


# -- against the peers themselves ----------------------------------------------------------
@pytest.mark.parametrize("mech", ["subtract", "zero"])
@pytest.mark.parametrize("delay", [True, False])
def test_against_snntorch_leaky(mech, delay):
    snn = pytest.importorskip("snntorch")
    x = _input()
    lif = snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism=mech, reset_delay=delay)
    mem = lif.init_leaky()
    S, V = [], []
    for t in range(T):
        s, mem = lif(x[t], mem)
        S.append(s)
        V.append(mem)
    _same(C.snntorch_leaky(0.9, 1.0, mech, delay)(x), (torch.stack(S), torch.stack(V)))


@pytest.mark.parametrize("mech", ["subtract", "zero"])
@pytest.mark.parametrize("delay", [True, False])
def test_against_snntorch_synaptic(mech, delay):
    snn = pytest.importorskip("snntorch")
    x = _input(0.2)
    lif = snn.Synaptic(alpha=0.8, beta=0.9, threshold=1.0, reset_mechanism=mech,
                       reset_delay=delay)
    syn, mem = lif.init_synaptic()
    S, V = [], []
    for t in range(T):
        s, syn, mem = lif(x[t], syn, mem)
        S.append(s)
        V.append(mem)
    _same(C.snntorch_synaptic(0.8, 0.9, 1.0, mech, delay)(x), (torch.stack(S), torch.stack(V)))


def test_against_norse():
    pytest.importorskip("norse")
    from norse.torch import LIF, LIFParameters

    x = _input(4.0)
    p = LIFParameters(tau_syn_inv=torch.tensor(150.0), tau_mem_inv=torch.tensor(120.0),
                      v_leak=torch.tensor(0.1), v_th=torch.tensor(0.9),
                      v_reset=torch.tensor(-0.2))
    s, states = LIF(p, dt=1e-3, record_states=True)(x)
    out = C.norse_lif(150.0, 120.0, v_leak=0.1, v_th=0.9, v_reset=-0.2)(x)
    _same(out, (s, states.v))


@pytest.mark.parametrize("tau_syn", [None, 5.0])
@pytest.mark.parametrize("multi", [False, True])
def test_against_sinabs(tau_syn, multi):
    pytest.importorskip("sinabs")
    from sinabs.activation import MultiSpike, SingleSpike
    from sinabs.layers import LIF

    x = _sinabs_input(True, multi)
    v_min = -0.5 if multi else None
    layer = LIF(tau_mem=10.0, tau_syn=tau_syn, spike_fn=MultiSpike if multi else SingleSpike,
                min_v_mem=v_min, norm_input=True, record_states=True)
    s = layer(x.transpose(0, 1)).transpose(0, 1)
    v = layer.recordings["v_mem"].transpose(0, 1)
    out = C.sinabs_lif(10.0, tau_syn, True, "multi" if multi else "single", v_min)(x)
    _same(out, (s, v), peak=(v + s).abs().max())


@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_against_spikingjelly(decay_input, v_reset):
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import neuron

    x = _input(2.5 if decay_input else 0.7)
    node = neuron.LIFNode(tau=3.0, decay_input=decay_input, v_reset=v_reset, v_threshold=1.0,
                          step_mode="m", store_v_seq=True)
    s = node(x)
    _same(C.spikingjelly_lif(3.0, decay_input, v_reset, 1.0)(x), (s, node.v_seq))
