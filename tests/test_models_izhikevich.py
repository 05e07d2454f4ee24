"""Izhikevich (2003) and QIF: oracle spike times, firing classes, closed form, validation."""

import numpy as np
import pytest
import torch
from _oracle import izhikevich_rhs, spike_times

from neurosim import QIF, Adaptive, Izhikevich, simulate
from neurosim.models import IZHIKEVICH_PRESETS

F64 = torch.float64
PAPER = {"RS": (0.02, 0.2, -65.0, 8.0), "FS": (0.1, 0.2, -65.0, 2.0)}


@pytest.fixture(scope="module")
def rs_fs_run():
    """RS and FS in one adaptive run (tensor parameters), I = 10, 500 ms."""
    model = Izhikevich(a=torch.tensor([0.02, 0.1], dtype=F64), b=0.2, c=-65.0,
                       d=torch.tensor([8.0, 2.0], dtype=F64))
    res = simulate(model, torch.full((10, 2), 10.0, dtype=F64), 0.05,
                   method=Adaptive(rtol=1e-8, atol=1e-8, max_steps=100_000), record=None)
    return dict(zip(("RS", "FS"), res.spike_times, strict=True)), model


@pytest.mark.parametrize("name", ["RS", "FS"])
def test_adaptive_matches_solve_ivp_oracle(rs_fs_run, name):
    a, b, c, d = PAPER[name]
    rest = Izhikevich.preset(name).rest()
    ref = spike_times(izhikevich_rhs(a, b, 10.0), [rest["v"], rest["u"]], 0.5,
                      distance=lambda y: y[0] - 30.0,
                      reset=lambda y: np.array([c, y[1] + d]), atol=1e-9)
    got = rs_fs_run[0][name]
    assert ref.size > 5 and got.size == ref.size
    err = np.abs(got - ref).max()
    assert err < 1e-6, f"{name}: max spike-time error {err:.3g} s"


def test_rs_adapts_fs_does_not(rs_fs_run):
    """RS: the first ISI is far shorter than the later ones (strong adaptation, slow
    steady firing). FS: fast firing with little slowing (its recovery variable is
    fast, so the train settles within three spikes)."""
    isi_rs = np.diff(rs_fs_run[0]["RS"])
    isi_fs = np.diff(rs_fs_run[0]["FS"])
    assert isi_rs[-1] > 2.5 * isi_rs[0] and np.all(isi_rs[1:] > 2.5 * isi_rs[0])
    assert isi_fs[-1] < 2.0 * isi_fs[0]
    assert isi_fs[3:].std() / isi_fs[3:].mean() < 0.03
    assert 1.0 / isi_fs[-1] > 100.0 > 30.0 > 1.0 / isi_rs[-1]


def test_bursting_classes_burst():
    """IB fires an initial burst, CH fires repeated bursts (Izhikevich 2003, Fig. 2)."""
    names = ("IB", "CH", "RS")
    model = Izhikevich(**{k: torch.tensor([IZHIKEVICH_PRESETS[n][k] for n in names], dtype=F64)
                          for k in "abcd"})
    res = simulate(model, torch.full((2000, 3), 10.0, dtype=F64), 1e-4, method="rk4",
                   record=None)
    ib, ch, rs = (np.diff(t) for t in res.spike_times)
    assert ib[0] < 10e-3 < ib[-1]            # a burst at onset, then tonic spiking
    assert (ch < 10e-3).sum() >= 4 and (ch > 20e-3).sum() >= 2  # short and long ISIs
    assert rs.min() > 10e-3                    # RS never bursts


def test_rest_is_a_fixed_point():
    for name in IZHIKEVICH_PRESETS:
        m = Izhikevich.preset(name)
        x = {k: torch.tensor(v, dtype=F64) for k, v in m.rest().items()}
        f = m.derivatives(x, torch.tensor(0.0, dtype=F64))
        assert abs(float(f["v"])) < 1e-9 and abs(float(f["u"])) < 1e-9, name
    assert Izhikevich.preset("RS").rest()["v"] == pytest.approx(-70.0)


def test_units_are_the_papers_and_consistent():
    """Every parameter in the paper's units (a and b both per ms): the preset, the
    paper's numbers and explicit units give one and the same model."""
    assert Izhikevich.param_units["a"] == Izhikevich.param_units["b"] == "1/ms"
    paper = Izhikevich.from_paper(0.02, 0.2, -65.0, 8.0)
    preset = Izhikevich.preset("RS")
    explicit = Izhikevich(a="20 /s", b="200 Hz", c="-65 mV", d="8 mV/ms")
    x = {"v": torch.tensor([-60.0, -20.0], dtype=F64), "u": torch.tensor([-13.0, -5.0], dtype=F64)}
    ref = {"v": 1e3 * (0.04 * x["v"] ** 2 + 5 * x["v"] + 140 - x["u"] + 10.0),
           "u": 1e3 * 0.02 * (0.2 * x["v"] - x["u"])}  # the paper's equations, per second
    for m in (paper, preset, explicit):
        f = m.derivatives(x, torch.tensor(10.0, dtype=F64))
        for k in ("v", "u"):
            torch.testing.assert_close(f[k], ref[k], rtol=1e-12, atol=0)
        assert float(m.linear_rates(x, torch.tensor(0.0))["u"][0]) == pytest.approx(-20.0)
    # the old convention (a per second) is caught: a = 20 /ms is far outside the plausible range
    with pytest.warns(UserWarning, match=r"a=20 1/ms; did you mean 20 1/s \(0.02\)\?"):
        Izhikevich(a=20.0)
    with pytest.raises(ValueError, match="preset must be one of"):
        Izhikevich.preset("XX")


@pytest.mark.parametrize("kwargs, field", [
    (dict(a=0.0), "a"), (dict(c=40.0), "c"), (dict(d=float("inf")), "d"),
    (dict(input_mode="x"), "input_mode"),
])
def test_izhikevich_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        Izhikevich(**kwargs)


def test_qif_matches_closed_form_interspike_interval():
    model = QIF(tau_mem=10e-3, v_rest=0.0, v_c=1.0, v_peak=20.0, v_reset=-0.5, t_ref=1e-3)
    current = 0.6
    isi = model.interspike_interval(current)
    res = simulate(model, torch.full((40, 1), current, dtype=F64), 5e-3, method="adaptive",
                   rtol=1e-9, atol=1e-10, record=None)
    times = res.spike_times[0]
    assert times.size >= 3
    # from v_rest = 0 the first spike is earlier; later intervals are the closed form
    np.testing.assert_allclose(np.diff(times), isi, rtol=0, atol=1e-8)
    assert model.interspike_interval(0.2) == np.inf  # below the rheobase 0.25


def test_qif_fixed_step_methods_approach_closed_form():
    model = QIF(tau_mem=10e-3, v_peak=20.0, v_reset=-0.5)
    isi = model.interspike_interval(0.6)

    def error(method, dt):
        res = simulate(model, torch.full((round(0.2 / dt), 1), 0.6, dtype=F64), dt,
                       method=method, record=None)
        return np.abs(np.diff(res.spike_times[0]) - isi).max()

    # RK4: the trajectory is accurate, the spike sits on the grid: error below dt
    assert error("rk4", 1e-4) < 1e-4
    # Euler: first order; the error shrinks with dt
    e1, e2 = error("euler", 1e-4), error("euler", 2.5e-5)
    assert e1 < 5e-4 and e2 < 0.5 * e1


@pytest.mark.parametrize("kwargs, field", [
    (dict(tau_mem=0.0), "tau_mem"), (dict(v_c=-1.0), "v_rest"), (dict(v_peak=0.5), "v_c"),
    (dict(v_reset=20.0), "v_reset"), (dict(k=0.0), "k"),
])
def test_qif_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        QIF(**kwargs)
