"""neurosim.analysis: one implementation of each measure, from spike events, NumPy out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neurosim
from neurosim import LIF, analysis, simulate
from neurosim import plot as P
from neurosim.sweep._measures import builtin_measures

F64 = torch.float64


class _EventsOnly:
    """A Result stand-in that has spike events but no dense ``spikes`` tensor: the
    measures must not need one (Result's dense spikes are becoming lazy)."""

    def __init__(self, res):
        self.spike_index, self.spike_time = res.spike_index, res.spike_time
        self.shape, self.duration = res.shape, res.duration

    def __getattr__(self, name):
        raise AssertionError(f"a measure read Result.{name}")


@pytest.fixture(scope="module")
def lif_run():
    tau = torch.linspace(10e-3, 30e-3, 6, dtype=F64).reshape(2, 3)
    drive = torch.full((3000, 2, 3), 2.0, dtype=F64)
    drive[:, 1, 2] = 0.5  # one silent neuron
    return simulate(LIF(tau_mem=tau, t_ref=2e-3), drive, 1e-4, record=None)


def test_measures_use_events_and_return_numpy(lif_run):
    ev_only = _EventsOnly(lif_run)
    counts = analysis.spike_counts(ev_only)
    rates = analysis.firing_rate(ev_only)
    for out in (counts, rates, analysis.cv_isi(ev_only), analysis.first_spike_latency(ev_only),
                *analysis.isi_stats(ev_only), analysis.padded_spike_times(ev_only)):
        assert isinstance(out, np.ndarray)
    # the same numbers as Result's own (torch) methods, flattened over [*batch, *neurons]
    np.testing.assert_array_equal(counts, lif_run.spike_count().reshape(-1).numpy())
    np.testing.assert_allclose(rates, lif_run.firing_rate().reshape(-1).numpy(), rtol=1e-12)
    assert counts[5] == 0 and np.isnan(analysis.first_spike_latency(ev_only)[5])
    t, r = analysis.population_rate(ev_only, bin_width=10e-3)
    assert t.size == 30 and r.sum() * 10e-3 * 6 == pytest.approx(counts.sum())


def test_isi_stats_equal_the_per_neuron_definition(lif_run):
    mean, std, n = analysis.isi_stats(lif_run)
    for k, train in enumerate(lif_run.spike_times.reshape(-1)):
        d = np.diff(np.sort(train))
        assert n[k] == d.size
        if d.size:
            assert mean[k] == pytest.approx(d.mean(), rel=1e-12)
            assert std[k] == pytest.approx(d.std(), rel=1e-9, abs=1e-15)
        else:
            assert np.isnan(mean[k]) and np.isnan(std[k])
    # regular firing from rest: closed-form period after the first spike
    period = 2e-3 + 10e-3 * math.log(2.0)
    assert analysis.isi(lif_run)[0][1:] == pytest.approx(np.full(n[0] - 1, period), rel=1e-9)


def test_sweep_measures_are_the_analysis_measures(lif_run):
    flat = _EventsOnly(lif_run)
    out = builtin_measures(flat, ("rate", "count", "latency", "isi", "cv", "spike_times"))
    np.testing.assert_array_equal(out["cv"], analysis.cv_isi(flat))
    np.testing.assert_array_equal(out["isi"], analysis.isi_stats(flat)[0])
    np.testing.assert_array_equal(out["rate"], analysis.firing_rate(flat))
    np.testing.assert_array_equal(out["latency"], analysis.first_spike_latency(flat))
    np.testing.assert_array_equal(out["spike_times"], analysis.padded_spike_times(flat))
    rows = out["spike_times"]
    assert rows.shape == (6, int(out["count"].max()))
    np.testing.assert_array_equal(rows[0, :int(out["count"][0])], lif_run.spike_times[0, 0])


def test_plot_reexports_the_analysis_functions():
    for name in ("isi", "cv_isi", "population_rate", "fi_curve", "nullclines"):
        assert getattr(P, name) is getattr(analysis, name), name
    assert neurosim.analysis is analysis


def test_spike_time_arrays_and_errors():
    cv = analysis.cv_isi([np.arange(10) * 0.02, [0.1, 0.2], []])
    assert cv[0] == pytest.approx(0.0, abs=1e-12) and np.isnan(cv[1]) and np.isnan(cv[2])
    np.testing.assert_allclose(analysis.firing_rate([[0.1, 0.2], [0.3]], duration=0.5), [4, 2])
    with pytest.raises(ValueError, match="duration is required"):
        analysis.firing_rate([[0.1]])
    with pytest.raises(ValueError, match="duration must be a finite number > 0 s, got -1"):
        analysis.firing_rate([[0.1]], duration=-1)
    with pytest.raises(ValueError, match="numeric array of shape"):
        analysis.isi(torch.zeros(3, 2))


@pytest.mark.parametrize("model, currents, silent, firing", [
    (neurosim.HodgkinHuxley(), [2.0, 10.0], 0.0, (60.0, 75.0)),   # µA/cm²; ~68 Hz at 10
    (neurosim.AdEx(), [0.0, 800.0], 0.0, (15.0, 60.0)),            # pA
])
def test_fi_curve_default_method_works_for_nonlinear_models(model, currents, silent, firing):
    assert analysis.default_method(model) == "adaptive"
    I, f = analysis.fi_curve(model, currents, duration=0.08, dt=1e-4)
    np.testing.assert_array_equal(I, currents)
    assert f[0] == silent
    assert firing[0] < f[1] < firing[1]


def test_default_method_is_exact_for_linear_models():
    assert analysis.default_method(LIF()) == "exact"
    assert analysis.default_method(neurosim.Izhikevich()) == "adaptive"


# ---------------------------------------------------------------------------- noise units
def test_white_noise_density_does_not_depend_on_dt():
    """With ``density`` the integral of the current over a window has variance
    density² · T for every dt; ``std`` alone is a per-step sample (dt-dependent)."""
    from neurosim import inputs

    density, window = 0.5, 0.05
    for dt in (1e-3, 1e-4):
        steps = round(window / dt)
        u = inputs.noise_current(steps, dt, density=density, shape=(4000,), seed=3)
        integral = u.sum(0) * dt
        assert float(integral.var()) == pytest.approx(density ** 2 * window, rel=0.08)
        assert float(u.std()) == pytest.approx(density / math.sqrt(dt), rel=0.02)
        per_step = inputs.noise_current(steps, dt, std=1.0, shape=(4000,), seed=3)
        np.testing.assert_allclose(per_step * density / math.sqrt(dt), u, rtol=1e-12)
    with pytest.raises(ValueError, match="exactly one of std and density"):
        inputs.noise_current(10, 1e-3)
    with pytest.raises(ValueError, match="exactly one of std and density"):
        inputs.noise_current(10, 1e-3, std=1.0, density=1.0)
    with pytest.raises(ValueError, match="density is for white noise"):
        inputs.noise_current(10, 1e-3, density=1.0, tau=5e-3)
    with pytest.raises(ValueError, match="density must be >= 0"):
        inputs.noise_current(10, 1e-3, density=-1.0)
