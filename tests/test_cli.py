"""The neurosim command: main(argv) exit codes, stderr messages, written files and their content."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import neurosim
from neurosim import cli
from neurosim.config import (
    ConfigError,
    build_input,
    describe_models,
    model_classes,
    model_parameters,
    parse_run_config,
)


def _write(tmp_path, text, name="cfg.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


LIF_STEP = """
    [model]
    type = "LIF"
    tau_mem = 20e-3
    t_ref = 2e-3

    [input]
    kind = "step"
    amplitude = 1.5
    start = 0.01
    stop = 0.09

    [simulation]
    duration = 0.1
    dt = 1e-4
    method = "exact"
"""


def test_run_writes_npz_and_png_with_the_closed_form_spikes(tmp_path, capsys):
    cfg = _write(tmp_path, LIF_STEP)
    out = tmp_path / "out" / "lif"
    assert cli.main(["run", str(cfg), "--out", str(out)]) == 0
    data = np.load(out.with_suffix(".npz"))
    assert data["t"].shape == (1000,) and data["v"].shape == (1000, 1)
    assert data["input"][99, 0] == 0 and data["input"][100, 0] == 1.5
    assert data["input"][899, 0] == 1.5 and data["input"][900, 0] == 0
    # spikes from rest at 10 ms: first at 10 ms + tau ln 3, then every t_ref + tau ln 3
    period = 2e-3 + 20e-3 * math.log(3.0)
    expected = 0.01 + 20e-3 * math.log(3.0) + period * np.arange(3)
    np.testing.assert_allclose(data["spike_time"], expected, rtol=0, atol=1e-12)
    assert data["spikes"].sum() == 3 and str(data["model"]) == "LIF"
    assert out.with_suffix(".png").stat().st_size > 20_000
    assert "3 spikes" in capsys.readouterr().out


def test_run_default_prefix_and_no_plot(tmp_path, monkeypatch):
    cfg = _write(tmp_path, LIF_STEP, "mycell.toml")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", str(cfg), "--no-plot"]) == 0
    assert (tmp_path / "mycell.npz").exists() and not (tmp_path / "mycell.png").exists()


@pytest.mark.parametrize("patch, key", [
    (("tau_mem = 20e-3", "tau_mme = 20e-3"), "model.tau_mme"),
    (("tau_mem = 20e-3", "tau_mem = -20e-3"), "model.tau_mem"),
    (('type = "LIF"', 'type = "LIFF"'), "model.type"),
    (('kind = "step"', 'kind = "stepp"'), "input.kind"),
    (("amplitude = 1.5", "amplitude = true"), "input.amplitude"),
    (("stop = 0.09", "stop = 0.5"), "input.stop"),
    (("duration = 0.1", "duration = -1"), "simulation.duration"),
    (('method = "exact"', 'method = "leapfrog"'), "simulation.method"),
    (("dt = 1e-4", "dt = 1e-4\nspeed = 3"), "simulation.speed"),
    (("[simulation]", "[simulaton]"), "config.simulaton"),
])
def test_run_validation_errors_name_the_key(tmp_path, capsys, patch, key):
    cfg = _write(tmp_path, LIF_STEP.replace(*patch))
    assert cli.main(["run", str(cfg), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert key in err and err.startswith("neurosim run: error:")
    assert not (tmp_path / "x.npz").exists()


def test_run_bad_files_exit_2(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "missing.toml")]) == 2
    assert "not found" in capsys.readouterr().err
    bad = _write(tmp_path, "[model\ntype = 'LIF'")
    assert cli.main(["run", str(bad)]) == 2
    assert "invalid TOML" in capsys.readouterr().err
    assert cli.main(["run"]) == 2  # argparse: missing CONFIG
    assert "required" in capsys.readouterr().err


def test_heterogeneous_population_and_record(tmp_path):
    cfg = _write(tmp_path, """
        [model]
        type = "ALIF"
        tau_mem = [10e-3, 20e-3, 40e-3]
        tau_syn = 5e-3
        input_mode = "current"

        [input]
        kind = "constant"
        amplitude = 3.0

        [simulation]
        duration = 0.05
        dt = 2e-4
        record = ["i"]
    """)
    assert cli.main(["run", str(cfg), "--out", str(tmp_path / "a"), "--no-plot"]) == 0
    data = np.load(tmp_path / "a.npz")
    assert data["v"].shape == data["i"].shape == (250, 3)  # membrane always recorded
    assert "b" not in data.files
    counts = np.bincount(data["spike_index"], minlength=3)
    assert counts[0] > counts[1] > counts[2] > 0  # faster membrane, more spikes


def _input(kind_table, steps=2000, dt=1e-4, shape=(4,), mode="current"):
    return build_input(kind_table, steps, dt, shape, mode)


def test_input_kinds_values():
    u = _input({"kind": "ramp", "amplitude_start": 1.0, "amplitude_end": 3.0, "start": 0.05,
                "stop": 0.15})
    assert u.shape == (2000, 4)
    assert u[0, 0] == 1.0 and u[-1, 0] == 3.0
    # step k holds the mean of the ramp over [k dt, (k+1) dt]
    k = 1000  # [0.1, 0.1001]: ramp value at 0.10005
    assert u[k, 0].item() == pytest.approx(1.0 + 2.0 * (0.10005 - 0.05) / 0.1)
    w = _input({"kind": "noisy", "mean": 0.5, "std": 2.0, "seed": 3}, steps=20000)
    assert w.mean().item() == pytest.approx(0.5, abs=0.03)
    assert w.std().item() == pytest.approx(2.0, rel=0.02)
    assert torch.equal(w, _input({"kind": "noisy", "mean": 0.5, "std": 2.0, "seed": 3},
                                 steps=20000))
    assert not torch.equal(w, _input({"kind": "noisy", "mean": 0.5, "std": 2.0, "seed": 4},
                                     steps=20000))
    # Ornstein-Uhlenbeck: stationary std and lag-1 autocorrelation exp(-dt/tau)
    ou = _input({"kind": "noisy", "std": 1.0, "tau": 1e-3, "seed": 0}, steps=40000, shape=(8,))
    assert ou.std().item() == pytest.approx(1.0, rel=0.05)
    x = ou.numpy()
    lag1 = np.mean(x[1:] * x[:-1]) / np.mean(x * x)
    assert lag1 == pytest.approx(math.exp(-0.1), abs=0.01)


def test_poisson_input_rate_and_modes():
    table = {"kind": "poisson", "rate": [100.0, 400.0], "weight": 0.5, "seed": 1}
    jump = _input(table, steps=20000, shape=(2,), mode="jump")
    counts = (jump / 0.5).sum(0).numpy()  # 2 s of input
    np.testing.assert_allclose(counts / 2.0, [100.0, 400.0], rtol=0.06)
    np.testing.assert_array_equal(jump / 0.5, torch.round(jump / 0.5))  # integer counts
    cur = _input(table, steps=20000, shape=(2,), mode="current")
    torch.testing.assert_close(cur * 1e-4, jump)  # a pulse of weight/dt carries the weight


def test_parse_run_config_errors():
    base = {"model": {"type": "LIF"}, "input": {"kind": "constant", "amplitude": 1.0},
            "simulation": {"duration": 0.01}}
    assert parse_run_config(base).input.shape == (100, 1)
    with pytest.raises(ConfigError, match=r"simulation\.neurons: 4 does not broadcast"):
        parse_run_config({**base, "model": {"type": "LIF", "tau_mem": [0.01, 0.02]},
                          "simulation": {"duration": 0.01, "neurons": 4}})
    with pytest.raises(ConfigError, match=r"input\.amplitude: amplitude of shape \(3,\)"):
        parse_run_config({**base, "input": {"kind": "constant", "amplitude": [1, 2, 3]},
                          "simulation": {"duration": 0.01, "neurons": 2}})
    with pytest.raises(ConfigError, match=r"input\.std: missing"):
        parse_run_config({**base, "input": {"kind": "noisy"}})
    with pytest.raises(ConfigError, match=r"simulation\.record: LIF has no state variable 'b'"):
        parse_run_config({**base, "simulation": {"duration": 0.01, "record": ["b"]}})
    with pytest.raises(ConfigError, match=r"model\.v_reset"):
        parse_run_config({**base, "model": {"type": "LIF", "v_reset": 2.0}})
    with pytest.raises(ConfigError, match=r"input: missing table"):
        parse_run_config({"model": {"type": "LIF"}, "simulation": {"duration": 0.01}})


def test_models_lists_every_exported_model_with_units(capsys):
    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    for name in model_classes():
        assert f"\n{name}: " in f"\n{out}"
    assert set(model_classes()) >= {"LI", "LIF", "IF", "ALIF"}
    params = {p.name: p for p in model_parameters(neurosim.ALIF)}
    assert params["tau_adapt"].unit == "s" and params["tau_adapt"].default == 0.2
    assert params["v_th"].unit == "dimensionless"
    # IF documents its fields "as LIF": found through the other models
    if_params = {p.name: p for p in model_parameters(neurosim.IF)}
    assert if_params["t_ref"].unit == "s" and "refractory" in if_params["t_ref"].description
    assert cli.main(["models", "LIF"]) == 0
    only = capsys.readouterr().out
    assert only.startswith("LIF:") and "ALIF" not in only and "tau_mem" in only
    assert cli.main(["models", "Nope"]) == 2
    assert "unknown model 'Nope'" in capsys.readouterr().err


def test_models_picks_up_a_model_registered_later(monkeypatch):
    """Registration is explicit (neurosim.models.register_model), not a scan of __all__."""
    from dataclasses import dataclass

    @dataclass(frozen=True, eq=False)
    class Toy(neurosim.LIF):
        """A toy model.

        Args:
            tau_toy: toy time constant (ms), > 0.
        """

        tau_toy: float = 3.0

    from neurosim.models import REGISTRY, register_model

    monkeypatch.setattr(neurosim, "__all__", [*neurosim.__all__, "Toy"])
    monkeypatch.setattr(neurosim, "Toy", Toy, raising=False)
    assert "Toy" not in model_classes()  # exporting a name registers nothing
    monkeypatch.setitem(REGISTRY, "Toy", Toy)
    REGISTRY.pop("Toy")
    assert register_model(Toy) is Toy
    monkeypatch.setitem(REGISTRY, "Toy", Toy)  # removed again when the test ends
    assert "Toy" in model_classes()
    with pytest.raises(ValueError, match="already registered"):
        register_model(type("Toy", (neurosim.LIF,), {}))
    text = describe_models(["Toy"])
    assert "tau_toy" in text and " ms " in text and "tau_mem" in text


def test_help_everywhere(capsys):
    for argv in ([], ["--help"], ["demo", "--help"], ["run", "--help"], ["models", "--help"]):
        code = cli.main(argv)
        out = capsys.readouterr()
        if argv:
            assert code == 0 and "usage: neurosim" in out.out, argv
        else:
            assert code == 2 and "usage: neurosim" in out.err
    assert cli.main(["--version"]) == 0
    assert neurosim.__version__ in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_demo_bad_input_and_output(tmp_path, capsys):
    assert cli.main(["demo", "--dt", "-1"]) == 2
    assert "expected a number > 0" in capsys.readouterr().err
    assert cli.main(["demo", "--duration", "1e-5", "--out", str(tmp_path / "d.png")]) == 2
    assert "shorter than one step" in capsys.readouterr().err
    out = tmp_path / "d.png"
    assert cli.main(["demo", "--duration", "0.03", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exact" in text and "euler" in text and "adaptive" in text
    assert out.stat().st_size > 20_000


def test_console_script_module_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neurosim.cli", "run",
                           str(tmp_path / "none.toml")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "not found" in proc.stderr and proc.stdout == ""


def test_input_generators_directly():
    from neurosim import inputs

    u = inputs.step_current(10, 1e-3, amplitude=[1.0, 2.0], start=2e-3, stop=5e-3, shape=(2,))
    assert u[:, 1].tolist() == [0, 0, 2, 2, 2, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="stop must be <= the duration"):
        inputs.step_current(10, 1e-3, 1.0, stop=0.5)
    with pytest.raises(ValueError, match="std must be >= 0"):
        inputs.noise_current(10, 1e-3, std=-1.0)
    with pytest.raises(ValueError, match="tau must be > 0"):
        inputs.noise_current(10, 1e-3, std=1.0, tau=0.0)
    with pytest.raises(ValueError, match="rate must be >= 0"):
        inputs.poisson_spikes(10, 1e-3, rate=-5.0)
    with pytest.raises(ValueError, match="steps must be an integer"):
        inputs.ramp_current(0, 1e-3, 1.0)
    r = inputs.ramp_current(4, 0.25, amplitude_end=4.0)
    torch.testing.assert_close(r, torch.tensor([0.5, 1.5, 2.5, 3.5], dtype=torch.float64))


@pytest.mark.parametrize("description, unit", [
    ("membrane time constant (s), > 0.", "s"),
    ("leak (resting) potential (mV).", "mV"),
    ("membrane capacitance (pF), > 0", "pF"),
    ("sodium conductance (mS/cm²)", "mS/cm²"),
    ("adaptation coupling (Naud et al. 2008)", ""),
    ("slope factor (default 2)", ""),
    ("firing threshold.", ""),
])
def test_unit_is_read_from_the_description(description, unit):
    from neurosim.config import _unit_of

    assert _unit_of(description) == unit
