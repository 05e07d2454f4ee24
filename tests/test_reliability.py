"""Reliability outside the engine (issue 16): validation in float64, inputs that overflow,
half-precision inputs, tolerances and surrogate scales, memory bounds and exit codes of the
``neurosim`` command, plotting an empty result. See docs/reliability.md."""

from __future__ import annotations

import contextlib
import math
import textwrap
import warnings

import pytest
import torch

import neurosim
from neurosim import LIF, cli
from neurosim._checks import check_input_dtype, parse_memory_size, positive_number
from neurosim.errors import SimulationDiverged
from neurosim.inputs import POISSON_EXACT_MAX, poisson_spikes
from neurosim.surrogate import ATan, Exponential, Gaussian, Sigmoid, SuperSpike, Triangle


# -- validation compares in float64 ------------------------------------------------------
def test_validation_compares_python_floats_in_float64():
    """0.999999999 < 1 and 1e-50 > 0 hold in float64; in float32 they round to 1 and 0."""
    assert LIF(v_reset=0.999999999, v_th=1).v_reset == 0.999999999
    assert LIF(tau_mem=1e-50).tau_mem == 1e-50
    assert LIF(tau_syn=1e-50).tau_syn == 1e-50
    with pytest.raises(ValueError, match="v_reset must be < v_th"):
        LIF(v_reset=1.0, v_th=1)
    with pytest.raises(ValueError, match="tau_mem must be > 0"):
        LIF(tau_mem=0.0)


def test_validation_of_a_float64_tensor_against_a_python_float():
    v_reset = torch.tensor([0.5, 0.999999999], dtype=torch.float64)
    assert LIF(v_reset=v_reset, v_th=1.0).v_reset is v_reset


# -- inputs -------------------------------------------------------------------------------
@pytest.mark.parametrize("lam", [1e19, 1e20, 4e18])
def test_poisson_spikes_with_huge_rate_dt_do_not_overflow(lam):
    """torch.poisson returns -9.2e18 from about 9.2e18 on; the counts stay near lam."""
    counts = poisson_spikes(200, 1.0, lam, seed=3)
    assert (counts >= 0).all()
    assert abs(float(counts.mean()) / lam - 1) < 1e-6
    assert float(counts.std()) > 0  # random, not a constant


def test_poisson_spikes_below_the_switch_are_unchanged_and_mixed_rates_work():
    small = poisson_spikes(50, 1e-3, torch.tensor([20.0, 300.0]), shape=(2,), seed=1)
    again = poisson_spikes(50, 1e-3, torch.tensor([20.0, 300.0]), shape=(2,), seed=1)
    assert torch.equal(small, again)
    mixed = poisson_spikes(50, 1.0, torch.tensor([3.0, 10 * POISSON_EXACT_MAX]), shape=(2,))
    assert (mixed[:, 0] < 50).all() and (mixed[:, 1] > POISSON_EXACT_MAX).all()


def test_poisson_spikes_rate_dt_overflowing_the_dtype_is_refused():
    with pytest.raises(ValueError, match=r"rate \* dt must be finite in torch.float32"):
        poisson_spikes(3, 10.0, 1e38, dtype=torch.float32)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_check_input_dtype_refuses_half_precision(dtype):
    with pytest.raises(ValueError, match=rf"input has dtype {dtype}; neurosim simulates in "
                                         r"float32 or float64"):
        check_input_dtype("input", torch.ones(3, 2, dtype=dtype))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool])
def test_check_input_dtype_accepts_float32_float64_and_integers(dtype):
    check_input_dtype("input", torch.ones(3, 2, dtype=dtype))


def test_simulate_refuses_bfloat16_input():
    """bfloat16 drive gave 0 spikes instead of 24 (issue 16); it must be refused."""
    with pytest.raises(ValueError, match="bfloat16"):
        neurosim.simulate(LIF(), torch.full((500, 1), 1.5, dtype=torch.bfloat16), 1e-3)


# -- tolerances and surrogate scales ------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(rtol=math.inf), "rtol must be a finite number > 0, got inf"),
    (dict(rtol="1e-3"), "rtol must be a number > 0, got str '1e-3'"),
    (dict(rtol=True), "rtol must be a number > 0, got bool True"),
    (dict(atol=math.nan), "atol must be a finite number > 0, got nan"),
    (dict(atol=-1e-9), "atol must be a finite number > 0, got -1e-09"),
    (dict(max_steps=True), "max_steps must be a positive integer"),
])
def test_adaptive_tolerances_are_finite_positive_numbers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        neurosim.Adaptive(**kwargs)


def test_adaptive_tolerance_errors_reach_simulate_as_value_errors():
    with pytest.raises(ValueError, match="rtol must be a number > 0, got str"):
        neurosim.simulate(LIF(), torch.ones(5, 1), 1e-3, method="adaptive", rtol="1e-3")
    a = neurosim.Adaptive(rtol=torch.tensor(1e-4), atol=1e-8)
    assert a.rtol == pytest.approx(1e-4) and isinstance(a.rtol, float)


@pytest.mark.parametrize("make, name", [
    (lambda v: SuperSpike(alpha=v), "alpha"), (lambda v: ATan(alpha=v), "alpha"),
    (lambda v: Sigmoid(alpha=v), "alpha"), (lambda v: Triangle(gamma=v), "gamma"),
    (lambda v: Triangle(width=v), "width"), (lambda v: Exponential(width=v), "width"),
    (lambda v: Gaussian(sigma=v), "sigma"),
])
@pytest.mark.parametrize("value", [math.inf, math.nan, 0.0, "2"])
def test_surrogate_scales_must_be_finite_positive_numbers(make, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be a (finite )?number > 0"):
        make(value)


def test_surrogate_with_large_finite_alpha_still_works():
    x = torch.linspace(-1, 1, 5, requires_grad=True)
    neurosim.spike_fn(x, SuperSpike(alpha=1e6)).sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("text, value", [("8G", 8 * 2**30), ("512MiB", 512 * 2**20),
                                         ("100K", 102400), ("1e9", 10**9), ("2kB", 2048)])
def test_parse_memory_size(text, value):
    assert parse_memory_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "lots", "0", "-1G", "1e30G"])
def test_parse_memory_size_refuses(text):
    with pytest.raises(ValueError, match="memory size"):
        parse_memory_size(text)


def test_positive_number_helper():
    assert positive_number("x", 3) == 3.0
    with pytest.raises(ValueError, match=r"x must be a number > 0, got list \[1.0\]"):
        positive_number("x", [1.0])


# -- plotting an empty result --------------------------------------------------------------
def test_plot_of_an_empty_result_is_a_clear_error():
    res = neurosim.simulate(LIF(), torch.zeros(5, 0), 1e-3)
    with pytest.raises(ValueError, match=r"nothing to plot: the result has no neurons "
                                         r"\(shape \(0,\)\)"):
        res.plot()


# -- the neurosim command: exit codes and memory bounds -----------------------------------
RUN = textwrap.dedent("""
    [model]
    type = "LIF"

    [input]
    kind = "constant"
    amplitude = 1.5

    [simulation]
    duration = 0.05
    dt = 1e-4
""")


def _write(tmp_path, text: str):
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def test_run_maps_simulation_diverged_to_exit_2(tmp_path, capsys, monkeypatch):
    def diverge(*args, **kwargs):
        raise SimulationDiverged("state 'v' became nan at step 7 (t = 0.0008 s), neuron 0; "
                                 "use a smaller dt or another method",
                                 step=7, time=8e-4, neuron=0, variable="v", value=math.nan)

    monkeypatch.setattr(neurosim, "simulate", diverge)
    rc = cli.main(["run", str(_write(tmp_path, RUN)), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "neurosim run: error: state 'v' became nan at step 7" in err
    assert not (tmp_path / "r.npz").exists()


def test_run_prints_a_stability_warning_before_running(tmp_path, capsys):
    """`neurosim run` with Euler at dt = 2.5 tau_mem: one StabilityWarning on stderr."""
    text = RUN.replace("dt = 1e-4", 'dt = 0.05\nmethod = "euler"').replace(
        "duration = 0.05", "duration = 0.5")
    rc = cli.main(["run", str(_write(tmp_path, text)), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 0
    assert err.count("StabilityWarning") == 1 and "dt=0.05 s" in err and "dt <= 0.04 s" in err


def test_run_maps_a_stiffness_refusal_to_exit_2(tmp_path, capsys):
    text = RUN.replace('type = "LIF"', 'type = "LIF"\ntau_mem = "1 ns"').replace(
        "dt = 1e-4", 'dt = 1e-3\nmethod = "adaptive"')
    rc = cli.main(["run", str(_write(tmp_path, text)), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "neurosim run: error: LIF is too stiff for method='adaptive'" in err
    assert not (tmp_path / "r.npz").exists()


@pytest.mark.parametrize("old, new, match", [
    ("duration = 0.05", "duration = 0.05\nneurons = 100000000000",
     r"simulation: the run \(500 steps x 100000000000 neurons\) needs about .* above the "
     r"limit of 4 GiB.*--max-memory"),
    ("dt = 1e-4", "dt = 1e-300", "simulation.dt: duration 0.05 s / dt 1e-300 s is not a "
                                 "usable number of steps"),
    ("dt = 1e-4", "dt = 5e-324", "simulation.dt: .* is not a usable number of steps"),
    ('type = "LIF"', 'type = ["LIF"]', r"model.type: unknown model \['LIF'\]"),
    ('kind = "constant"', 'kind = ["constant"]', r"input.kind: must be one of .* got "
                                                 r"\['constant'\]"),
    ("dt = 1e-4", 'dt = 1e-4\ndtype = ["float32"]', r"simulation.dtype: must be .* got "
                                                    r"\['float32'\]"),
    ("dt = 1e-4", "dt = [1e-4]", r"simulation.dt: must be a finite number, got \[0.0001\]"),
    ("duration = 0.05", "duration = 0.05\nneurons = 1e11",
     "simulation.neurons: must be an integer >= 1, got 100000000000.0"),
])
def test_run_bad_values_exit_2_with_the_key(tmp_path, capsys, old, new, match):
    rc = cli.main(["run", str(_write(tmp_path, RUN.replace(old, new))), "--no-plot",
                   "--out", str(tmp_path / "r")])
    assert rc == 2
    assert __import__("re").search(match, capsys.readouterr().err)


def test_run_memory_limit_is_overridable(tmp_path, capsys):
    path = _write(tmp_path, RUN)
    assert cli.main(["run", str(path), "--no-plot", "--max-memory", "100K",
                     "--out", str(tmp_path / "r")]) == 2
    assert "above the limit of 100 KiB" in capsys.readouterr().err
    assert cli.main(["run", str(path), "--no-plot", "--max-memory", "64M",
                     "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r.npz").exists()


@pytest.mark.parametrize("dpi", ["1e9", "0", "inf", "5000"])
def test_run_dpi_is_bounded(tmp_path, capsys, dpi):
    rc = cli.main(["run", str(_write(tmp_path, RUN)), "--dpi", dpi,
                   "--out", str(tmp_path / "r")])
    assert rc == 2 and "--dpi" in capsys.readouterr().err


def test_demo_long_duration_is_refused_before_allocating(tmp_path, capsys):
    rc = cli.main(["demo", "--duration", "1000", "--out", str(tmp_path / "d.png")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "the demo (10000000 steps) needs about 38.1 GiB, above the limit of 4 GiB" in err
    assert not (tmp_path / "d.png").exists()
    rc = cli.main(["demo", "--dt", "1e-300", "--out", str(tmp_path / "d.png")])
    assert rc == 2 and "needs about" in capsys.readouterr().err


def test_reliability_page_names_only_existing_tests():
    """Every ``file::test`` in docs/reliability.md's tables is a test that exists."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "reliability.md").read_text()
    refs = set(re.findall(r"`(test_\w+\.py)::(test_\w+)`", text))
    assert len(refs) > 30
    for file, name in sorted(refs):
        source = (root / "tests" / file).read_text()
        assert re.search(rf"^def {name}\(", source, re.M), f"{file}::{name}"


# -- model-declared plausible state ranges ---------------------------------------------------
def test_builtin_models_declare_their_ranges_in_their_units():
    assert neurosim.HodgkinHuxley().declared_ranges() == {
        "v": (-1000.0, 1000.0), "m": (-1.0, 2.0), "h": (-1.0, 2.0), "n": (-1.0, 2.0)}
    assert neurosim.AdEx().declared_ranges() == {"v": (-1000.0, 1000.0), "w": (-1e6, 1e6)}
    assert neurosim.EIF().declared_ranges() == {"v": (-1000.0, 1000.0)}  # no w
    assert neurosim.Izhikevich().declared_ranges() == {"v": (-1000.0, 1000.0), "u": (-1e5, 1e5)}
    assert LIF().declared_ranges() == {"v": (-1e9, 1e9)}


@contextlib.contextmanager
def warnings_ignored():
    """No StabilityWarning (the runs below are beyond the limit on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", neurosim.errors.StabilityWarning)
        yield


class _NarrowLIF(LIF):
    """A LIF whose synaptic current declares the range [-10, 10] (a test model)."""

    state_ranges = {"v": (-1e9, 1e9), "i": (-10.0, 10.0)}


def _kick(T: int = 12, step: int = 5, element: int = 1, size: float = 25.0) -> torch.Tensor:
    u = torch.zeros(T, 3, dtype=torch.float64)
    u[step, element] = size
    u[step + 2, 2] = size  # a later one elsewhere: the first is reported
    return u


@pytest.mark.parametrize("backend", ["reference", pytest.param("engine", marks=pytest.mark.slow)])
def test_leaving_a_declared_range_raises_like_a_non_finite_value(backend):
    model = _NarrowLIF(tau_mem=20e-3, tau_syn=5e-3, input_mode="jump")
    with pytest.raises(SimulationDiverged) as info:
        neurosim.simulate(model, _kick(), 1e-3, "exact", backend=backend)
    err = info.value
    assert (err.step, err.neuron, err.variable, err.bounds) == (5, 1, "i", (-10.0, 10.0))
    # the jump of 25 at the start of step 5, decayed over the step with tau_syn = 5 ms
    assert err.value == pytest.approx(25.0 * math.exp(-0.2), rel=1e-12)
    assert err.time == pytest.approx(6e-3)
    assert "left its declared plausible range [-10, 10] (value 20.4683)" in str(err)
    assert "step 5" in str(err) and "element 1" in str(err) and "smaller dt" in str(err)


def test_engine_and_reference_name_the_same_step_neuron_and_variable():
    """HH with rk4 at dt = 1 ms (the issue's probe): the reference loop and the engine stop
    at the same step, element and variable, in float32 and float64."""
    for dtype in (torch.float64, torch.float32):
        u = torch.tensor([[0.0, 10.0, 10.0]], dtype=dtype).expand(200, 3)
        errs = []
        for backend in ("reference", "engine"):
            with warnings_ignored(), pytest.raises(SimulationDiverged) as info:
                neurosim.simulate(neurosim.HodgkinHuxley(), u, 1e-3, "rk4", backend=backend)
            errs.append(info.value)
        ref, eng = errs
        assert (ref.step, ref.neuron, ref.variable) == (eng.step, eng.neuron, eng.variable)
        assert ref.bounds == eng.bounds == (-1000.0, 1000.0)
        assert eng.value == pytest.approx(ref.value, rel=1e-4)


@pytest.mark.parametrize("backend", ["reference", "engine"])
def test_lif_rk4_with_dt_far_beyond_tau_fails_loudly(backend):
    """The issue's sweep stored v = -6.4e107 unflagged (finite, so no NaN check caught it):
    the growth past LIF's declared |v| <= 1e9 now stops the run at once."""
    u = torch.full((40, 2), 0.5, dtype=torch.float64)
    with warnings_ignored(), pytest.raises(SimulationDiverged,
                                           match="left its declared plausible range") as info:
        neurosim.simulate(LIF(tau_mem=1e-3), u, 0.05, "rk4", backend=backend)
    assert info.value.step == 1 and abs(info.value.value) > 1e9


def test_lif_rk4_sweep_with_dt_far_beyond_tau_marks_the_set_failed():
    from neurosim.sweep import Grid, Sweep, SweepWarning, run_sweep

    sweep = Sweep("LIF", Grid(tau_mem=[1e-3, 1.0], I=[0.5]), input="I", dt=0.05, duration=2.0,
                  method="rk4", dtype="float64")
    with warnings_ignored(), pytest.warns(SweepWarning, match="declared plausible range"):
        ds = run_sweep(sweep, progress=False)
    assert list(ds.error.values != "") == [True, False]


def test_izhikevich_at_10_ms_warns_but_stays_in_range():
    """The issue's Izhikevich at dt = 10 ms (50 Hz with Euler instead of 23 Hz): its state
    never leaves the declared ranges (v is reset at 30 mV, so it stays within -150..30 mV),
    so the hint is the stability warning (Euler's limit at rest is 3.4 ms), not an error."""
    u = torch.full((100, 1), 10.0, dtype=torch.float64)
    with pytest.warns(neurosim.errors.StabilityWarning, match="Izhikevich"):
        res = neurosim.simulate(neurosim.Izhikevich(), u, 10e-3, "euler", backend="reference")
    assert float(res.spike_count()[0]) == 50  # the wrong rate the issue saw
    u = torch.full((1000, 1), 10.0, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", neurosim.errors.StabilityWarning)  # within the limit
        fine = neurosim.simulate(neurosim.Izhikevich(), u, 1e-3, "rk4", backend="reference")
    assert float(fine.spike_count()[0]) == 23


@pytest.mark.parametrize("backend", ["reference", "engine"])
def test_network_population_leaving_its_range_names_step_neuron_and_variable(backend):
    from neurosim.network import Network, Population, SpikeMonitor

    pop = Population(neurosim.HodgkinHuxley(), 3, method="rk4",
                     input=torch.tensor([0.0, 10.0, 10.0]))
    net = Network(pop, SpikeMonitor(pop), dt=1e-3, backend=backend)
    with warnings_ignored(), pytest.raises(SimulationDiverged,
                                           match="declared plausible range") as info:
        net.run(0.05)
    assert (info.value.step, info.value.neuron, info.value.variable) == (1, 1, "v")


def test_a_range_must_have_low_below_high():
    class Bad(LIF):
        state_ranges = {"v": (1.0, -1.0)}

    with pytest.raises(ValueError, match="low < high"):
        Bad().declared_ranges()


# -- hopeless adaptive steps fail fast ---------------------------------------------------------
def _count_dopri(monkeypatch) -> list[int]:
    import neurosim.integrators.adaptive as adaptive

    calls = [0]
    original = adaptive._dopri_step

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(adaptive, "_dopri_step", counted)
    return calls


@pytest.mark.parametrize("backend", ["reference", "engine"])
def test_adaptive_refuses_a_hopelessly_stiff_lif_before_running(backend, monkeypatch):
    """LIF(tau_mem=1e-9) at dt = 1 ms: 95 s on one step before a RuntimeError; now refused
    before any sub-step: dt*|lambda| = 1e6 needs >= 3e5 Dormand-Prince sub-steps."""
    from neurosim.errors import StiffnessError

    calls = _count_dopri(monkeypatch)
    u = torch.full((3, 1), 1.5, dtype=torch.float64)
    with pytest.raises(StiffnessError, match="too stiff") as info:
        neurosim.simulate(LIF(tau_mem="1 ns"), u, 1e-3, "adaptive", backend=backend)
    msg = str(info.value)
    assert "dt*|lambda| = 1e+06" in msg and "method='exact'" in msg and "implicit" in msg
    assert "3.02e+05 sub-steps" in msg and "max_steps=1000" in msg
    assert calls[0] == 0


def test_adaptive_adex_at_1e6_pa_stops_within_its_budget(monkeypatch):
    """AdEx driven with 1e6 pA fires at ~90 kHz (12655 sub-steps in the first 1 ms step
    before); it now stops after its budget of 1000 sub-steps in step 0."""
    from neurosim.errors import StiffnessError

    calls = _count_dopri(monkeypatch)
    u = torch.full((3, 1), 1e6, dtype=torch.float64)
    with pytest.raises(StiffnessError, match="exceeded max_steps=1000 sub-steps") as info:
        neurosim.simulate(neurosim.AdEx(), u, 1e-3, "adaptive", backend="reference")
    assert "AdEx dynamics are too fast" in str(info.value)
    assert calls[0] < 2500  # the budget, plus the located crossings of the spikes before


def test_adaptive_budget_per_step_engine_matches_reference():
    """Three AdEx elements, the middle one hopelessly driven: both back ends stop on it, in
    the first step, with the same budget; a healthy run is unaffected."""
    from neurosim.errors import StiffnessError

    u = torch.tensor([[500.0, 1e6, 500.0]], dtype=torch.float64).expand(3, 3)
    for backend in ("reference", "engine"):
        with pytest.raises(StiffnessError, match=r"max_steps=1000 .*element 1") as info:
            neurosim.simulate(neurosim.AdEx(), u, 1e-3, "adaptive", backend=backend)
        if backend == "engine":
            assert "step 0" in str(info.value)
    ok = neurosim.simulate(neurosim.AdEx(), torch.full((50, 1), 800.0, dtype=torch.float64),
                           1e-3, "adaptive", backend="engine")
    assert float(ok.spike_count()[0]) > 0


def test_adaptive_default_budget_scales_with_dt():
    adaptive = neurosim.Adaptive()
    assert adaptive.budget(1e-4) == 1000 and adaptive.budget(1e-3) == 1000
    assert adaptive.budget(0.1) == 100_000
    assert neurosim.Adaptive(max_steps=7).budget(0.1) == 7
