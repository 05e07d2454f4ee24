"""Reliability outside the engine (issue 16): validation in float64, inputs that overflow,
half-precision inputs, tolerances and surrogate scales, memory bounds and exit codes of the
``neurosim`` command, plotting an empty result. See docs/reliability.md."""

from __future__ import annotations

import math
import textwrap

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
