"""AdEx and EIF: an independent solve_ivp oracle, the Naud et al. (2008) firing
patterns, overflow safety at any dt, the adaptive step budget, validation."""

import numpy as np
import pytest
import torch
from _oracle import adex_rhs, spike_times

import neurosim
from neurosim import EIF, AdEx, simulate
from neurosim.models import NAUD_PRESETS

F64 = torch.float64
T_END = 0.5
NAMES = tuple(NAUD_PRESETS)


def _oracle(name: str, rtol: float | None = None) -> np.ndarray:
    import _oracle as oracle

    p = NAUD_PRESETS[name]
    old = oracle.RTOL
    oracle.RTOL = rtol or old
    try:
        return spike_times(adex_rhs(p, p["current"]), [p["v_leak"], 0.0], T_END,
                           distance=lambda y: y[0],
                           reset=lambda y: np.array([p["v_reset"], y[1] + p["b"]]),
                           atol=np.array([1e-6, 1e-9]))
    finally:
        oracle.RTOL = old


@pytest.fixture(scope="module")
def naud_run():
    """All eight presets in ONE adaptive run (tensor parameters), 500 ms.

    A coarse output grid (50 ms) keeps the number of batched sub-step loops small;
    the adaptive method sub-steps and locates every spike inside it."""
    model = AdEx.presets(NAMES)
    current = torch.tensor([AdEx.preset_current(n) for n in NAMES], dtype=F64)
    dt = 0.05
    res = simulate(model, current.expand(round(T_END / dt), len(NAMES)).clone(), dt,
                   method=neurosim.Adaptive(rtol=1e-7, atol=1e-6, max_steps=100_000),
                   record=None)
    return dict(zip(NAMES, res.spike_times, strict=True))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "irregular"])
def test_adaptive_matches_solve_ivp_oracle(naud_run, name):
    ref = _oracle(name)
    got = naud_run[name]
    assert ref.size >= 1
    assert got.size == ref.size, (got, ref)
    err = np.abs(got - ref).max()
    assert err < 1e-6, f"{name}: max spike-time error {err:.3g} s"


def test_irregular_matches_oracle_while_the_oracle_is_determined(naud_run):
    """The irregular pattern is chaotic: two oracles (rtol 1e-10, 1e-12) drift apart by
    ~1e-4 s within 500 ms, so no integrator determines its late spike times to 1e-6 s.
    Compare on the prefix where the oracles agree to 1e-7 s, and the counts overall."""
    fine, coarse = _oracle("irregular", 1e-12), _oracle("irregular", 1e-10)
    got = naud_run["irregular"]
    n = min(fine.size, coarse.size)
    determined = int(np.argmax(np.abs(fine[:n] - coarse[:n]) > 1e-7))
    assert determined >= 5  # at least the first 5 spikes (~70 ms) are determined
    err = np.abs(got[:determined] - fine[:determined]).max()
    assert err < 1e-6, f"irregular: max error {err:.3g} s over {determined} spikes"
    assert abs(got.size - fine.size) <= 1


def _isi(times):
    return np.diff(times)


def test_naud_patterns(naud_run):
    s = naud_run
    # tonic: regular firing, ISIs constant after the first
    isi = _isi(s["tonic"])
    assert s["tonic"].size > 40 and isi[1:].std() / isi[1:].mean() < 0.02
    # adapting: the ISIs grow, strongly
    isi = _isi(s["adapting"])
    assert s["adapting"].size >= 6 and np.all(np.diff(isi[:6]) > 0) and isi[-1] > 3 * isi[0]
    # initial burst: short ISIs first, then regular long ones
    isi = _isi(s["initial_burst"])
    assert isi[0] < 10e-3 and isi[1] < 10e-3 and isi[-1] > 50e-3
    assert isi[3:].std() / isi[3:].mean() < 0.02
    # regular bursting: short intra-burst and long inter-burst ISIs, alternating, >= 3 bursts
    for name, delayed in (("regular_bursting", False), ("delayed_regular_bursting", True)):
        isi = _isi(s[name])
        long = isi > 40e-3
        assert long.sum() >= 2 and (~long).sum() >= long.sum() + 1, name
        assert not np.any(long[:-1] & long[1:]), name  # every long ISI is followed by a burst
        assert (s[name][0] > 40e-3) == delayed, name
    # delayed accelerating: a delayed first spike, then ISIs that shorten
    isi = _isi(s["delayed_accelerating"])
    assert s["delayed_accelerating"][0] > 25e-3
    assert np.all(np.diff(isi) < 0) and isi[-1] < 0.8 * isi[0]
    # transient: a few spikes at onset, then silence
    assert 1 <= s["transient"].size <= 3 and s["transient"][-1] < 0.1
    # irregular: strongly variable ISIs
    isi = _isi(s["irregular"])
    assert s["irregular"].size > 10 and isi.std() / isi.mean() > 0.3


@pytest.mark.parametrize("method", ["euler", "rk4", "exponential_euler", "adaptive"])
def test_strong_input_never_gives_inf_or_nan(method):
    model = AdEx.preset("tonic")
    # the adaptive method resolves every spike: keep its firing rate (and cost) moderate
    dts = (1e-3,) if method == "adaptive" else (1e-5, 1e-4, 1e-3, 1e-2)
    amps = [1e3, 3e3, 1e4] if method == "adaptive" else [1e3, 1e5, 1e7]
    for dt in dts:
        x = torch.full((5 if method == "adaptive" else 20, 3), 1.0, dtype=F64) * \
            torch.tensor(amps, dtype=F64)
        res = simulate(model, x, dt, method=method, record="all")
        for name in ("v", "w"):
            assert torch.isfinite(res[name]).all(), (method, dt, name)
        assert res.spike_count()[-1] > 0
        assert (res.v <= model.v_peak).all()  # reset after every detected crossing


def test_adaptive_step_budget_raises_clear_error():
    model = AdEx.preset("tonic")
    x = torch.full((5, 1), 500.0, dtype=F64)
    with pytest.raises(RuntimeError, match="max_steps=3"):
        simulate(model, x, 5e-3, method=neurosim.Adaptive(rtol=1e-10, atol=1e-10, max_steps=3))


def test_exact_method_rejected_and_exponential_euler_applies_to_w_only():
    with pytest.raises(ValueError, match="AdEx is not"):
        simulate(AdEx(), torch.ones(3, 1), 1e-4, method="exact")
    with pytest.raises(ValueError, match="EIF declares none"):
        simulate(EIF(), torch.ones(3, 1), 1e-4, method="exponential_euler")
    assert AdEx().conditionally_linear == ("w",)


def test_eif_matches_oracle():
    p = dict(c_m=281.0, g_leak=30.0, v_leak=-70.6, v_t=-50.4, delta_t=2.0, v_reset=-70.6,
             a=0.0, tau_w=1.0, b=0.0)
    ref = spike_times(adex_rhs(p, 800.0), [-70.6, 0.0], 0.1, distance=lambda y: y[0],
                      reset=lambda y: np.array([-70.6, 0.0]), atol=np.array([1e-6, 1e-9]))
    res = simulate(EIF(), torch.full((20, 1), 800.0, dtype=F64), 5e-3, method="adaptive",
                   rtol=1e-7, atol=1e-6, record=None)
    got = res.spike_times[0]
    assert got.size == ref.size >= 3
    assert np.abs(got - ref).max() < 1e-6


def test_refractory_holds_v_at_reset_while_w_evolves():
    model = AdEx.preset("adapting", t_ref=2e-3)
    res = simulate(model, torch.full((200, 1), 500.0, dtype=F64), 1e-4, method="rk4",
                   record="all")
    k = int(torch.nonzero(res.spikes[:, 0])[0])
    held = res.v[k:k + 20, 0]  # 2 ms = 20 steps
    assert torch.all(held == model.v_reset) and res.v[k + 21, 0] != model.v_reset
    assert res.w[k + 19, 0] != res.w[k, 0]
    assert res.w[k, 0] > 59.0  # b = 60 pA added at the spike


def test_presets_api():
    m = AdEx.preset("Initial burst")
    assert m.c_m == 130.0 and m.tau_w == 150e-3 and AdEx.preset_current("initial_burst") == 400
    assert AdEx.preset("tonic", t_ref=1e-3).t_ref == 1e-3
    assert AdEx.presets().param_shape() == torch.Size([8])
    with pytest.raises(ValueError, match="preset must be one of"):
        AdEx.preset("bursty")


@pytest.mark.parametrize("kwargs, field", [
    (dict(c_m=0.0), "c_m"), (dict(g_leak=-1.0), "g_leak"), (dict(delta_t=0.0), "delta_t"),
    (dict(tau_w=0.0), "tau_w"), (dict(t_ref=-1e-3), "t_ref"), (dict(v_reset=5.0), "v_reset"),
    (dict(v_t=1.0), "v_t"), (dict(a=float("nan")), "a"), (dict(input_mode="spike"), "input_mode"),
])
def test_validation(kwargs, field):
    with pytest.raises(ValueError, match=field) as err:
        AdEx(**kwargs)
    value = next(iter(kwargs.values()))
    assert repr(value) in str(err.value) or str(value) in str(err.value)
    if field not in ("tau_w", "a"):
        with pytest.raises(ValueError, match=field):
            EIF(**kwargs)


def test_float32_runs_agree_with_float64():
    """float32 input works with every method; the adaptive one integrates in float64
    inside the step, so the upswing to v_peak = 0 mV resolves."""
    model = AdEx.presets()
    current = torch.tensor([AdEx.preset_current(n) for n in NAMES], dtype=F64)
    x = current.expand(60, len(NAMES)).clone()
    for method in ("adaptive", "rk4", "exponential_euler"):
        r64 = simulate(model, x, 5e-4, method=method, record=None)
        r32 = simulate(model, x.float(), 5e-4, method=method, record=None)
        assert r32.spikes.dtype == torch.float32
        assert torch.equal(r32.spikes.double(), r64.spikes), method
        np.testing.assert_allclose(r32.spike_time, r64.spike_time, atol=1e-5)


def test_gradients_reach_parameters_and_input():
    a = torch.tensor(2.0, dtype=F64, requires_grad=True)
    x = torch.full((300, 1), 500.0, dtype=F64, requires_grad=True)
    res = simulate(AdEx.preset("adapting", a=a), x, 1e-4, method="rk4")
    (res.spikes.sum() + res.v.mean()).backward()
    assert a.grad is not None and torch.isfinite(a.grad) and a.grad != 0
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
