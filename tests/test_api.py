"""The public surface: Result, discretise, state handling, plotting, the demo command."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neurosim
from neurosim import ALIF, LI, LIF, State, discretise, simulate

ROOT = Path(__file__).resolve().parents[1]


def test_result_fields_and_trace_access():
    res = simulate(ALIF(tau_syn=5e-3), torch.full((300, 2), 8.0), 1e-4, record="all")
    assert res.t.shape == (300,) and res.t[0].item() == pytest.approx(1e-4)
    assert res.t[-1].item() == pytest.approx(0.03)
    assert set(res.traces) == {"v", "i", "b", "refrac"}
    assert res.v is res["v"] and res.b is res.traces["b"]
    assert res.spikes.shape == (300, 2)
    assert res.spike_times.shape == (2,)
    assert res.spike_index.size == res.spike_time.size == int(res.spikes.sum())
    assert np.all(np.diff(res.spike_time) >= 0)
    assert res.firing_rate().shape == (2,)
    torch.testing.assert_close(res.firing_rate(), res.spike_count() / 0.03)
    assert res.final_state.v is not None and isinstance(res.final_state, State)
    with pytest.raises(AttributeError, match="recorded traces"):
        _ = res.w
    with pytest.raises(KeyError, match="was not recorded"):
        simulate(LIF(), torch.ones(3, 1), 1e-3)["refrac"]
    assert "ALIF" in repr(res)


def test_custom_loop_with_discretise_equals_simulate():
    """The reference time loop is the step applied T times, bit for bit (the compiled
    engine, simulate's default, agrees to round-off: tests/test_engine.py)."""
    model = LIF(tau_mem=15e-3, tau_syn=3e-3, t_ref=1e-3)
    x = torch.rand(400, 3, generator=torch.Generator().manual_seed(3)) * 3
    res = simulate(model, x, 5e-4, record=("v", "i"), backend="reference")
    step = discretise(model, 5e-4)
    state = model.initial_state((3,))
    for k in range(400):
        spikes, state = step(state, x[k])
        assert torch.equal(spikes, res.spikes[k])
        assert torch.equal(state.v, res.v[k])
    assert torch.equal(state.i, res.final_state.i)


def test_continuing_from_final_state_equals_one_run():
    model = LIF(tau_mem=10e-3, t_ref=2e-3)
    x = torch.full((600, 1), 1.8, dtype=torch.float64)
    whole = simulate(model, x, 1e-4)
    first = simulate(model, x[:250], 1e-4)
    second = simulate(model, x[250:], 1e-4, state=first.final_state)
    torch.testing.assert_close(torch.cat([first.v, second.v]), whole.v, rtol=0, atol=0)
    np.testing.assert_allclose(np.concatenate([first.spike_time, second.spike_time + 0.025]),
                               whole.spike_time, atol=1e-15)


def test_initial_state_and_leaky_integrator():
    st = LIF(v_leak=-0.5).initial_state((2, 3), dtype=torch.float64)
    assert st.v.shape == (2, 3) and (st.v == -0.5).all() and (st.refrac == 0).all()
    assert "refrac" not in LI().initial_state((1,))
    res = simulate(LI(tau_mem=10e-3), torch.full((50, 1), 1.0), 1e-3)
    assert res.spikes.sum() == 0 and res.spike_time.size == 0
    assert res.spike_times.shape == (1,) and res.spike_times[0].size == 0


def test_jump_and_current_input_modes():
    dt, tau = 1e-3, 10e-3
    jump = simulate(LIF(tau_mem=tau, input_mode="jump"), torch.tensor([[0.5], [0.0]]), dt)
    # the jump is added at the start of the step, then decays for dt
    assert jump.v[0, 0].item() == pytest.approx(0.5 * np.exp(-dt / tau), rel=1e-6)
    cur = simulate(LIF(tau_mem=tau), torch.tensor([[0.5], [0.0]]), dt)
    assert cur.v[0, 0].item() == pytest.approx(0.5 * (1 - np.exp(-dt / tau)), rel=1e-6)
    assert LIF(tau_syn=5e-3).input_mode == "jump" and LIF().input_mode == "current"


def test_plot_returns_figure_with_threshold_and_spike_markers(tmp_path):
    res = simulate(LIF(tau_mem=20e-3), torch.full((1000, 2), 1.5), 1e-4)
    fig = res.plot()
    ax = fig.axes[0]
    markers = [ln for ln in ax.lines if ln.get_marker() == "v"]
    assert sum(len(ln.get_xdata()) for ln in markers) == res.spike_time.size == 8
    assert any(ln.get_linestyle() == "--" for ln in ax.lines)  # threshold
    assert ax.get_xlabel() == "time (ms)" and "v" in ax.get_ylabel()
    out = tmp_path / "trace.png"
    fig.savefig(out)
    assert out.stat().st_size > 10_000


def test_public_names():
    for name in ("LI", "LIF", "IF", "ALIF", "simulate", "discretise", "Result", "Euler",
                 "ExactExponential", "Adaptive", "RK4", "spike_fn", "surrogate"):
        assert hasattr(neurosim, name), name


def test_progress_bar_is_optional(capsys):
    simulate(LIF(), torch.ones(20, 1), 1e-3, progress=True)
    assert "simulate" in capsys.readouterr().err


def test_demo_command_writes_png(tmp_path):
    out = tmp_path / "demo.png"
    proc = subprocess.run([sys.executable, "-m", "neurosim.cli", "demo", "--out", str(out),
                           "--duration", "0.03"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 20_000
    assert "exact" in proc.stdout and "wrote" in proc.stdout


def test_lif_integrators_example_runs(tmp_path):
    out = tmp_path / "ex.png"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "lif_integrators.py"),
                           "--smoke", "--out", str(out)], capture_output=True, text=True,
                          timeout=120, env={"MPLBACKEND": "Agg", **__import__("os").environ})
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 20_000
