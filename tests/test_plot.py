"""neurosim.plot: the figures' content (data in the artists, labels, units), and the measures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import neurosim
from neurosim import ALIF, LIF, simulate
from neurosim import plot as P
from neurosim.models.base import NeuronModel


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png_is_drawn(fig, path) -> None:
    """The figure renders to a PNG that is not blank."""
    fig.savefig(path, dpi=60)
    img = mpimg.imread(path)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.05  # not a uniform image


def _markers(ax, marker="v"):
    return [ln for ln in ax.lines if ln.get_marker() == marker]


# ---------------------------------------------------------------------------- membrane
def test_membrane_markers_threshold_and_units(tmp_path):
    res = simulate(LIF(tau_mem=20e-3, t_ref=2e-3), torch.full((1500, 3), 1.5), 1e-4)
    fig = P.plot_membrane(res, neurons=[0, 2])
    ax = fig.axes[0]
    marks = _markers(ax)
    n_shown = int(np.isin(res.spike_index, [0, 2]).sum())
    assert sum(len(m.get_xdata()) for m in marks) == n_shown > 0
    # markers sit at the precise spike times (ms)
    np.testing.assert_allclose(np.sort(np.concatenate([m.get_xdata() for m in marks])),
                               np.sort(res.spike_time[np.isin(res.spike_index, [0, 2])] * 1e3))
    thresh = [ln for ln in ax.lines if ln.get_label() == "threshold"]
    assert len(thresh) == 1 and set(thresh[0].get_ydata()) == {1.0}
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "v (dimensionless)"
    traces = [ln for ln in ax.lines if ln.get_label().startswith("neuron")]
    assert [ln.get_label() for ln in traces] == ["neuron 0", "neuron 2"]
    # the trace starts at rest at t = 0 and then follows the recorded values
    np.testing.assert_allclose(traces[0].get_ydata()[1:], res.v[:, 0].numpy(), rtol=1e-6)
    assert traces[0].get_xdata()[0] == 0 and traces[0].get_ydata()[0] == 0
    _png_is_drawn(fig, tmp_path / "m.png")


def test_membrane_heterogeneous_and_adaptive_thresholds():
    v_th = torch.tensor([1.0, 1.3])
    res = simulate(LIF(v_th=v_th), torch.full((200, 2), 0.5), 1e-4)
    ax = P.plot_membrane(res).axes[0]
    dashed = [ln for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert sorted({float(ln.get_ydata()[0]) for ln in dashed}) == pytest.approx([1.0, 1.3])

    model = ALIF(tau_adapt=50e-3, beta_adapt=0.3)
    res = simulate(model, torch.full((800, 1), 3.0, dtype=torch.float64), 1e-4, record=("v", "b"))
    ax = P.plot_membrane(res).axes[0]
    (adaptive,) = [ln for ln in ax.lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    np.testing.assert_allclose(adaptive.get_ydata(), 1.0 + 0.3 * res.b[:, 0].numpy())
    assert res.spike_time.size >= 3


def test_traces_stacked_by_variable_and_by_neuron(tmp_path):
    model = ALIF(tau_syn=5e-3, input_mode="current")
    res = simulate(model, torch.full((500, 2), 3.0), 1e-4, record="all")
    fig = P.plot_traces(res)
    labels = [ax.get_ylabel() for ax in fig.axes]
    assert labels == ["v (dimensionless)", "i (dimensionless)", "b (dimensionless)"]
    assert fig.axes[-1].get_xlabel() == "time (ms)"
    np.testing.assert_allclose(fig.axes[2].lines[1].get_ydata(), res.b[:, 1].numpy())
    fig2 = P.plot_traces(res, neurons=[0, 1], stack="neurons")
    assert len(fig2.axes) == 2
    per_axis = [sum(len(m.get_xdata()) for m in _markers(ax)) for ax in fig2.axes]
    assert per_axis == [int((res.spike_index == k).sum()) for k in (0, 1)]
    _png_is_drawn(fig, tmp_path / "t.png")
    with pytest.raises(KeyError, match="was not recorded"):
        P.plot_traces(res, variables=["w"])
    with pytest.raises(ValueError, match="stack"):
        P.plot_traces(res, stack="rows")


def test_result_plot_kinds():
    res = simulate(LIF(), torch.full((300, 4), 2.0), 1e-4, record="all")
    for kind in P.PLOT_KINDS:
        fig = res.plot(kind)
        assert fig.axes, kind
    assert res.plot("raster").axes[0].get_ylabel() == "neuron index"
    with pytest.raises(ValueError, match="kind must be one of"):
        res.plot("histogram")
    with pytest.raises(ValueError, match="out of range"):
        res.plot(neurons=[7])


# ---------------------------------------------------------------------------- raster, rate
def test_raster_has_one_point_per_spike(tmp_path):
    tau = torch.linspace(10e-3, 30e-3, 20)
    res = simulate(LIF(tau_mem=tau, t_ref=1e-3), torch.full((1000, 20), 2.0), 1e-4)
    fig = P.plot_raster(res)
    ax = fig.axes[0]
    (line,) = ax.lines
    assert len(line.get_xdata()) == res.spike_time.size == int(res.spikes.sum())
    order = np.lexsort((line.get_xdata(), line.get_ydata()))
    ref = np.lexsort((res.spike_time, res.spike_index))
    np.testing.assert_allclose(line.get_ydata()[order], res.spike_index[ref])
    np.testing.assert_allclose(line.get_xdata()[order], res.spike_time[ref] * 1e3)
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "neuron index"
    assert ax.get_xlim() == pytest.approx((0, 100))
    _png_is_drawn(fig, tmp_path / "r.png")
    # plain arrays and a subset of neurons
    ax2 = P.plot_raster([[0.01, 0.02], [], [0.015]], neurons=[0, 2]).axes[0]
    assert list(ax2.lines[0].get_ydata()) == [0, 0, 2]


def test_population_rate_constant_and_conserves_spikes():
    # 10 neurons firing regularly at 50 Hz with staggered phases: the population rate is 50 Hz
    n, f, dur = 10, 50.0, 1.0
    trains = [np.arange((k + 0.5) / (n * f), dur, 1 / f) for k in range(n)]
    t, r = P.population_rate(trains, bin_width=20e-3, duration=dur)
    assert t.size == 50 and t[0] == pytest.approx(0.01)
    np.testing.assert_allclose(r, f, rtol=1e-12)
    _, rs = P.population_rate(trains, bin_width=1e-3, smooth=10e-3, duration=dur)
    np.testing.assert_allclose(rs, f, rtol=0.05)  # edge-corrected: no roll-off at 0 and 1 s
    t1, r1 = P.population_rate(trains, bin_width=1e-3, duration=dur)
    assert r1.sum() * 1e-3 * n == pytest.approx(sum(len(x) for x in trains))
    with pytest.raises(ValueError, match="smooth"):
        P.population_rate(trains, smooth=-1.0)
    with pytest.raises(ValueError, match="bin_width must be a finite number > 0 s, got 0"):
        P.population_rate(trains, bin_width=0)
    with pytest.raises(ValueError, match="duration must be"):
        P.population_rate(trains, duration=float("nan"))
    with pytest.raises(ValueError, match="non-finite"):
        P.population_rate([[0.1, np.nan]])


def test_population_rate_plot_and_isi_histogram(tmp_path):
    rng = np.random.default_rng(0)
    trains = [np.cumsum(rng.exponential(1 / 40.0, 200)) for _ in range(20)]
    fig = P.plot_population_rate(trains, bin_width=5e-3, smooth=20e-3, duration=2.0)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "population rate (Hz)" and ax.get_xlabel() == "time (ms)"
    (smooth,) = [ln for ln in ax.lines if "Gaussian" in ln.get_label()]
    assert np.mean(smooth.get_ydata()) == pytest.approx(40.0, rel=0.1)
    _png_is_drawn(fig, tmp_path / "rate.png")
    fig = P.plot_isi_histogram(trains, bins=40)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "interspike interval (ms)" and ax.get_ylabel() == "count"
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == 20 * 199
    assert "CV 1.0" in ax.get_legend().get_texts()[0].get_text()


def test_isi_and_cv():
    regular = np.arange(10) * 0.02
    rng = np.random.default_rng(1)
    poisson = np.cumsum(rng.exponential(0.01, 20000))
    cv = P.cv_isi([regular, poisson, [0.1, 0.2], []])
    assert cv[0] == pytest.approx(0.0, abs=1e-12)
    assert cv[1] == pytest.approx(1.0, abs=0.03)
    assert np.isnan(cv[2]) and np.isnan(cv[3])  # fewer than two intervals: undefined
    np.testing.assert_allclose(P.isi([regular])[0], 0.02)
    res = simulate(LIF(t_ref=2e-3), torch.full((2000, 1), 1.5, dtype=torch.float64), 1e-4)
    period = 2e-3 + 20e-3 * math.log(3.0)
    np.testing.assert_allclose(P.isi(res)[0], period, rtol=1e-9)
    with pytest.raises(ValueError, match="sequence of per-neuron"):
        P.isi(np.array([0.1, 0.2]))


# ---------------------------------------------------------------------------- f-I curve
def test_fi_curve_matches_closed_form_lif():
    tau, t_ref = 20e-3, 2e-3
    currents = np.linspace(0.0, 4.0, 17)
    I, f = P.fi_curve(LIF(tau_mem=tau, t_ref=t_ref), currents, duration=0.3, dt=5e-4)
    expected = np.where(currents > 1.0, 1.0 / (t_ref + tau * np.log(
        np.maximum(currents, 1.0 + 1e-12) / np.maximum(currents - 1.0, 1e-300))), 0.0)
    np.testing.assert_array_equal(I, currents)
    # rheobase I = 1: the neuron approaches threshold but never crosses
    np.testing.assert_allclose(f, expected, rtol=1e-7, atol=0)
    # the spike-count measure agrees within one spike over the window
    _, fc = P.fi_curve(LIF(tau_mem=tau, t_ref=t_ref), currents, duration=0.3, dt=5e-4,
                       measure="count")
    assert np.all(np.abs(fc - expected) <= 1 / 0.3 + 1e-9)


def test_fi_curve_batched_over_tensor_parameters_and_plot(tmp_path):
    taus = torch.tensor([10e-3, 20e-3, 40e-3], dtype=torch.float64)
    currents = np.array([1.5, 2.0, 3.0])
    I, f = P.fi_curve(LIF(tau_mem=taus), currents, duration=0.2)
    assert f.shape == (3, 3)
    expected = 1.0 / (taus.numpy()[None, :] * np.log(currents[:, None] / (currents[:, None] - 1)))
    np.testing.assert_allclose(f, expected, rtol=1e-7)
    fig = P.plot_fi_curve(I, f, label="tau", model=LIF)
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[1].get_ydata(), f[:, 1])
    assert ax.get_xlabel() == "input current (dimensionless)"
    assert ax.get_ylabel() == "firing rate (Hz)"
    _png_is_drawn(fig, tmp_path / "fi.png")
    with pytest.raises(ValueError, match="current input mode"):
        P.fi_curve(LIF(tau_syn=5e-3), currents, 0.1)
    with pytest.raises(ValueError, match="transient"):
        P.fi_curve(LIF(), currents, 0.1, transient=0.2)
    with pytest.raises(ValueError, match="duration must be"):
        P.fi_curve(LIF(), currents, -1.0)
    with pytest.raises(ValueError, match="measure"):
        P.fi_curve(LIF(), currents, 0.1, measure="mean")


# ---------------------------------------------------------------------------- phase plane
def _points(segments):
    return np.concatenate(segments)


def test_nullclines_lif_with_synapse_are_the_analytic_lines():
    # tau_m v' = v_leak - v + r i ; tau_s i' = -i + I  (current mode)
    model = LIF(tau_syn=5e-3, input_mode="current", v_leak=0.2, r=2.0, v_th=1.0)
    nc = P.nullclines(model, "v", "i", (-0.5, 1.5), (-1.0, 3.0), input=1.7, n=41)
    v_pts = _points(nc["v"])
    np.testing.assert_allclose(v_pts[:, 1], (v_pts[:, 0] - 0.2) / 2.0, atol=1e-12)
    i_pts = _points(nc["i"])
    np.testing.assert_allclose(i_pts[:, 1], 1.7, atol=1e-12)
    assert np.ptp(i_pts[:, 0]) == pytest.approx(2.0)  # spans the whole v range
    np.testing.assert_allclose(_points(nc["threshold"])[:, 0], 1.0, atol=1e-12)


def test_nullclines_alif_v_b_plane():
    model = ALIF(beta_adapt=0.5, v_leak=0.1)
    nc = P.nullclines(model, "v", "b", (-1.0, 3.0), (-0.5, 2.0), input=1.4, n=31)
    np.testing.assert_allclose(_points(nc["v"])[:, 0], 1.5, atol=1e-12)  # v = v_leak + r I
    np.testing.assert_allclose(_points(nc["b"])[:, 1], 0.0, atol=1e-12)
    th = _points(nc["threshold"])
    np.testing.assert_allclose(th[:, 0], 1.0 + 0.5 * th[:, 1], atol=1e-12)


@dataclass(frozen=True, eq=False)
class _FitzHughNagumo(NeuronModel):
    """A non-spiking 2-variable test model with a cubic nullcline (v' = v - v³/3 - w + I)."""

    spiking: ClassVar[bool] = False
    clamped: ClassVar[tuple[str, ...]] = ()
    a: float = 0.7
    b: float = 0.8
    tau: float = 12.5e-3

    @property
    def state_names(self):
        return ("v", "w")

    def derivatives(self, x, u):
        v, w = x["v"], x["w"]
        return {"v": (v - v ** 3 / 3 - w + u) / 1e-3,
                "w": (v + self.a - self.b * w) / self.tau}


def test_nullclines_nonlinear_model_converge_to_the_cubic():
    model = _FitzHughNagumo()
    errs = []
    for n in (51, 201):
        nc = P.nullclines(model, "v", "w", (-2.5, 2.5), (-2.0, 3.0), input=0.5, n=n)
        p = _points(nc["v"])
        errs.append(np.max(np.abs(p[:, 1] - (p[:, 0] - p[:, 0] ** 3 / 3 + 0.5))))
        q = _points(nc["w"])
        np.testing.assert_allclose(q[:, 1], (q[:, 0] + 0.7) / 0.8, atol=1e-12)  # linear: exact
    assert errs[1] < 1e-3
    assert errs[0] / errs[1] > 10  # second order in the grid step (ratio 16)
    assert "threshold" not in nc


def test_phase_plane_plot_with_trajectory(tmp_path):
    model = LIF(tau_syn=5e-3, input_mode="current", t_ref=1e-3)
    res = simulate(model, torch.full((600, 1), 2.5, dtype=torch.float64), 1e-4, record="all")
    fig = P.plot_phase_plane(model, input=2.5, trajectory=res)
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.lines]
    for lab in ("v-nullcline (dv/dt = 0)", "i-nullcline (di/dt = 0)", "threshold",
                "trajectory", "start"):
        assert lab in labels, lab
    (traj,) = [ln for ln in ax.lines if ln.get_label() == "trajectory"]
    n_spike_steps = int((res.spikes[:, 0] > 0).sum())
    assert n_spike_steps >= 2
    assert int(np.isnan(traj.get_xdata()).sum()) == n_spike_steps  # broken at each reset
    assert np.nanmax(traj.get_xdata()) <= 1.0 + 1e-9  # never beyond the threshold
    assert ax.get_xlabel() == "v (dimensionless)" and ax.get_ylabel() == "i (dimensionless)"
    assert len(ax.collections) == 1  # the vector field
    _png_is_drawn(fig, tmp_path / "pp.png")
    with pytest.raises(ValueError, match="x_range is required"):
        P.plot_phase_plane(model)
    with pytest.raises(ValueError, match="no state variable 'w'"):
        P.nullclines(model, "v", "w", (0, 1), (0, 1))
    with pytest.raises(ValueError, match="name the one"):
        P.plot_phase_plane(ALIF(tau_syn=5e-3), x_range=(0, 1), y_range=(0, 1))
    with pytest.raises(ValueError, match="scalar parameters"):
        P.nullclines(LIF(tau_syn=torch.tensor([5e-3, 6e-3])), "v", "i", (0, 1), (0, 1))


# ---------------------------------------------------------------------------- sweeps
def test_sweep_heatmap_content(tmp_path):
    x = np.array([10e-3, 20e-3, 30e-3, 40e-3])
    y = np.array([1.5, 2.0, 3.0])
    values = 1 / (x[None, :] * np.log(y[:, None] / (y[:, None] - 1)))
    fig = P.plot_sweep_heatmap(values, x, y, "tau_mem (s)", "input (dimensionless)")
    ax, cax = fig.axes
    (mesh,) = ax.collections
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 4), values)
    assert cax.get_ylabel() == "firing rate (Hz)"
    assert ax.get_xlabel() == "tau_mem (s)" and ax.get_ylabel() == "input (dimensionless)"
    _png_is_drawn(fig, tmp_path / "h.png")
    with pytest.raises(ValueError, match=r"shape \[len\(y\), len\(x\)\]"):
        P.plot_sweep_heatmap(values.T, x, y, "a", "b")


def test_state_unit_uses_model_declarations():
    assert P.state_unit(LIF(), "v") == "dimensionless"

    class MilliVolt(LIF):
        voltage_unit = "mV"
        state_units = {"w": "pA"}

    m = MilliVolt()
    assert P.state_unit(m, "v") == "mV" and P.state_unit(m, "w") == "pA"
    assert P.state_unit(m, "i") == ""


def test_plot_module_is_reachable_from_the_package():
    assert neurosim.plot.plot_raster is P.plot_raster


def test_summary_panels(tmp_path):
    model = LIF(tau_syn=5e-3)  # jump input into i
    u = torch.zeros(400, 3)
    u[10:200:5] = 0.6
    res = simulate(model, u, 1e-4)
    fig = P.plot_summary(res, input=u)
    ax_in, ax_v, ax_raster = fig.axes
    assert ax_in.get_ylabel() == "input, jumps of i (dimensionless)"
    assert ax_v.get_ylabel() == "v (dimensionless)"
    assert len(ax_raster.lines[0].get_xdata()) == res.spike_time.size > 0
    assert ax_raster.get_xlabel() == "time (ms)" and ax_v.get_xlabel() == ""
    _png_is_drawn(fig, tmp_path / "s.png")
    single = P.plot_summary(simulate(LIF(), torch.ones(50, 1), 1e-3))
    assert len(single.axes) == 1  # no input given, one neuron: no raster


# ---------------------------------------------------------------------------- issue 17
class _NoDenseSpikes:
    """A Result without the dense ``spikes`` tensor: plots must work from the events."""

    def __init__(self, res):
        self._res = res

    def __getattr__(self, name):
        if name == "spikes":
            raise AssertionError("a plot read the dense Result.spikes")
        if name == "shape":
            return self._res.shape
        return getattr(self._res, name)

    def __getitem__(self, name):
        return self._res[name]


@pytest.fixture(scope="module")
def adex_run():
    return simulate(neurosim.AdEx(), torch.full((2000, 1), 800.0, dtype=torch.float64), 1e-4,
                    method="adaptive", record=("v", "w"))


def test_cutoff_models_draw_each_spike_up_to_v_peak(adex_run, tmp_path):
    res = _NoDenseSpikes(adex_run)
    ax = P.plot_membrane(res).axes[0]
    (trace,) = [ln for ln in ax.lines if ln.get_label() == "neuron 0"]
    t, v = trace.get_xdata(), trace.get_ydata()
    st = adex_run.spike_time * 1e3
    assert st.size >= 3
    # the recorded trace never reaches the cut-off (it is recorded after the reset)...
    assert adex_run.v.max() < -30.0
    # ...but the drawn line goes up to v_peak = 0 mV at each precise spike time
    at_peak = t[v == 0.0]
    np.testing.assert_allclose(np.sort(at_peak), np.sort(st))
    (marks,) = _markers(ax)
    np.testing.assert_allclose(marks.get_xdata(), st)
    np.testing.assert_array_equal(marks.get_ydata(), 0.0)
    labels = [ln.get_label() for ln in ax.lines]
    assert "threshold" not in labels  # v_peak is not the threshold of AdEx
    (cut,) = [ln for ln in ax.lines if ln.get_label() == "spike cut-off (v_peak)"]
    assert set(cut.get_ydata()) == {0.0}
    (soft,) = [ln for ln in ax.lines if ln.get_label() == "soft threshold (v_t)"]
    assert set(soft.get_ydata()) == {-50.4}
    assert ax.get_ylabel() == "v (mV)"
    assert ax.get_legend() is None  # one neuron: no legend
    assert ax.get_ylim()[1] > 0.0  # the peaks are inside the axes
    _png_is_drawn(ax.figure, tmp_path / "adex.png")


def test_izhikevich_spikes_reach_v_peak_and_lif_keeps_markers_above():
    izh = neurosim.Izhikevich.preset("RS")
    res = simulate(izh, torch.full((1500, 1), 10.0, dtype=torch.float64), 1e-4, method="rk4")
    ax = P.plot_membrane(res).axes[0]
    (trace,) = [ln for ln in ax.lines if ln.get_label() == "neuron 0"]
    assert int((trace.get_ydata() == 30.0).sum()) == res.spike_time.size > 0
    assert [ln.get_label() for ln in ax.lines if ln.get_linestyle() == "--"] == \
        ["spike cut-off (v_peak)"]
    lif = simulate(LIF(), torch.full((500, 1), 1.5), 1e-4)
    ax = P.plot_membrane(lif).axes[0]
    (marks,) = _markers(ax)
    assert np.all(marks.get_ydata() > 1.0)  # above the threshold line, as before


def test_hh_threshold_is_named_a_detection_level_and_units_come_from_the_model():
    hh = neurosim.HodgkinHuxley()
    res = simulate(hh, torch.full((300, 1), 10.0, dtype=torch.float64), 1e-4,
                   method="exponential_euler", record="all")
    ax = P.plot_membrane(res).axes[0]
    assert "spike detection level (v_th)" in [ln.get_label() for ln in ax.lines]
    fig = P.plot_summary(res, input=torch.full((300, 1), 10.0))
    assert fig.axes[0].get_ylabel() == "input (µA/cm²)"
    labels = [a.get_ylabel() for a in P.plot_traces(res).axes]
    assert labels == ["v (mV)", "m (dimensionless)", "h (dimensionless)", "n (dimensionless)"]
    fig = P.plot_fi_curve([0.0, 10.0], [0.0, 68.0], model=hh)
    assert fig.axes[0].get_xlabel() == "input current (µA/cm²)"
    fig = P.plot_fi_curve([0.0, 500.0], [0.0, 20.0], model=neurosim.AdEx)
    assert fig.axes[0].get_xlabel() == "input current (pA)"
    coba = neurosim.CobaLIF(input_mode="current")
    assert P.input_unit_of(coba) == "pA" and P.input_unit_of(neurosim.CobaLIF()) == "nS"
    # without a model the unit is unknown: no unit rather than a wrong "dimensionless"
    assert P.plot_fi_curve([0, 1], [0, 1]).axes[0].get_xlabel() == "input current"


def test_user_units_for_a_model_in_millivolts():
    model = LIF(v_leak=-70.0, v_th=-50.0, v_reset=-70.0, r=1.0)
    res = simulate(model, torch.full((500, 2), 25.0), 1e-4, record="all")
    assert P.plot_membrane(res).axes[0].get_ylabel() == "v (dimensionless)"
    assert P.plot_membrane(res, unit="mV").axes[0].get_ylabel() == "v (mV)"
    fig = P.plot_summary(res, input=torch.full((500, 2), 25.0), units={"v": "mV", "input": "mV"})
    assert [a.get_ylabel() for a in fig.axes[:2]] == ["input (mV)", "v (mV)"]
    assert P.plot_traces(res, units={"v": "mV"}).axes[0].get_ylabel() == "v (mV)"


def test_legends_only_when_they_help_and_outside_the_data(tmp_path):
    res = simulate(LIF(), torch.full((500, 3), 1.5), 1e-4)
    assert P.plot_membrane(res, neurons=[1]).axes[0].get_legend() is None
    fig = P.plot_membrane(res, neurons=[0, 1, 2])
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["neuron 0", "neuron 1", "neuron 2"]
    fig.savefig(tmp_path / "legend.png", dpi=60)  # lay out, then compare boxes
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1 - 1


def test_raster_dots_scale_with_the_number_of_neurons():
    rng = np.random.default_rng(0)
    big = [np.sort(rng.uniform(0, 0.3, rng.poisson(10))) for _ in range(10_000)]
    (line,) = P.plot_raster(big).axes[0].lines
    assert line.get_marker() == "o" and line.get_linestyle() == "None"
    assert line.get_markersize() <= 1.0 and line.get_alpha() < 1.0
    assert len(line.get_xdata()) == sum(t.size for t in big)
    (small,) = P.plot_raster(big[:10]).axes[0].lines
    assert small.get_markersize() >= 3.0 and small.get_alpha() == 1.0
    (custom,) = P.plot_raster(big[:10], marker="|", markersize=6, alpha=0.5).axes[0].lines
    assert (custom.get_marker(), custom.get_markersize(), custom.get_alpha()) == ("|", 6, 0.5)


def test_geometric_grids_are_drawn_on_log_axes():
    taus = np.geomspace(1e-3, 1e-1, 5)
    currents = np.linspace(1.5, 3.0, 4)
    values = np.arange(20.0).reshape(4, 5)
    fig = P.plot_sweep_heatmap(values, taus, currents, "tau_mem (s)", "I")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"
    (mesh,) = ax.collections
    xs = np.unique(mesh.get_coordinates()[..., 0])
    # cell edges at the geometric midpoints: each value is centred on a log axis
    np.testing.assert_allclose(xs[1:-1], np.sqrt(taus[1:] * taus[:-1]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(4, 5), values)
    lin = P.plot_sweep_heatmap(values, np.linspace(1e-3, 1e-1, 5), currents, "a", "b")
    assert lin.axes[0].get_xscale() == "linear"
    curve = P.plot_sweep_curve(values.T, taus, "tau_mem (s)", labels=["a", "b", "c", "d"])
    assert curve.axes[0].get_xscale() == "log" and curve.axes[0].get_legend() is not None
    assert P.plot_sweep_curve(values[0], taus, "tau", xscale="linear").axes[0].get_legend() \
        is None
    assert P.is_geometric([1, 2, 4, 8]) and not P.is_geometric([1, 2, 3]) \
        and not P.is_geometric([0, 1, 2])
    with pytest.raises(ValueError, match="xscale must be"):
        P.plot_sweep_curve(values[0], taus, "tau", xscale="symlog")


def test_phase_plane_of_a_cutoff_model_names_v_peak(adex_run):
    model = neurosim.AdEx()
    fig = P.plot_phase_plane(model, x_range=(-75, 5), y_range=(-50, 400), input=800.0,
                             trajectory=_NoDenseSpikes(adex_run))
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.lines]
    assert "spike cut-off (v_peak)" in labels and "threshold" not in labels
    assert ax.get_title() == "AdEx, input = 800 pA"
    assert ax.get_xlabel() == "v (mV)" and ax.get_ylabel() == "w (pA)"
    (traj,) = [ln for ln in ax.lines if ln.get_label() == "trajectory"]
    assert int(np.isnan(traj.get_xdata()).sum()) == adex_run.spike_time.size
