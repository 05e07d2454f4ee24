"""neurosim.units: strings with units for parameters, and warnings for implausible values."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch

import neurosim
from neurosim import units as U
from neurosim.config import model_classes


@pytest.mark.parametrize("text, unit, expected", [
    ("20 ms", "s", 0.02), ("281 pF", "pF", 281.0), ("0.281 nF", "pF", 281.0),
    ("-70.6 mV", "mV", -70.6), ("30 nS", "nS", 30.0), ("1 uA/cm2", "µA/cm²", 1.0),
    ("0.01 A/m^2", "µA/cm²", 1.0), ("120 mS/cm²", "mS/cm^2", 120.0), ("20 Hz", "1/ms", 0.02),
    ("20 /s", "1/ms", 0.02), ("5 mV/ms", "V/s", 5.0), ("2 MOhm", "Ohm", 2e6),
    ("2 MΩ", "kOhm", 2e3), ("1 nS", "1/GOhm", 1.0), ("1e-3 s", "ms", 1.0), ("3", "1", 3.0),
    ("1 µs", "s", 1e-6), ("1 mm", "m", 1e-3), ("1.5e2 pA", "nA", 0.15), ("1 F/m2", "µF/cm²", 100.0),
])
def test_conversions(text, unit, expected):
    assert U.to_unit("x", text, unit) == pytest.approx(expected, rel=1e-12)


def test_parse_errors_name_the_parameter_and_value():
    with pytest.raises(ValueError, match=r"tau_mem='20 mV' is a voltage, but tau_mem is a time"):
        neurosim.LIF(tau_mem="20 mV")
    with pytest.raises(ValueError, match=r"tau_mem='twenty ms'"):
        neurosim.LIF(tau_mem="twenty ms")
    with pytest.raises(ValueError, match=r"unknown unit 'qs'"):
        neurosim.LIF(tau_mem="20 qs")
    with pytest.raises(ValueError, match=r"c_m='1 ms' is a time, but c_m is a capacitance"):
        neurosim.AdEx(c_m="1 ms")
    with pytest.raises(ValueError, match="must be > 0"):  # validation still runs after conversion
        neurosim.LIF(tau_mem="-5 ms")


def test_models_accept_strings_with_units():
    lif = neurosim.LIF(tau_mem="20 ms", t_ref="2 ms", v_th="1")
    assert (lif.tau_mem, lif.t_ref, lif.v_th) == (0.02, 0.002, 1.0)
    adex = neurosim.AdEx(c_m="281 pF", g_leak="30 nS", v_leak="-70.6 mV", tau_w="144 ms",
                         b="0.0805 nA", a="4 nS")
    ref = neurosim.AdEx()
    for f in ("c_m", "g_leak", "v_leak", "tau_w", "b", "a"):
        assert getattr(adex, f) == pytest.approx(getattr(ref, f), rel=1e-12), f
    hh = neurosim.HodgkinHuxley(g_na="1.2 kS/m^2", c_m="0.01 F/m^2")
    assert hh.g_na == pytest.approx(120.0) and hh.c_m == pytest.approx(1.0)
    assert neurosim.CobaLIF(tau_exc="5 ms").tau_exc == pytest.approx(5e-3)


def test_every_model_declares_the_unit_of_every_numeric_field():
    for name, cls in model_classes().items():
        inst = cls()
        for f in dataclasses.fields(cls):
            if f.name in cls._option_fields:
                continue
            assert f.name in cls.param_units, f"{name}.{f.name} has no declared unit"
            U.parse_unit(cls.param_units[f.name])  # parses
        for field, (lo, hi) in cls.param_ranges.items():
            assert field in cls.param_units and lo < hi
            default = getattr(inst, field, None)  # EIF shares the AdEx table
            assert default in (0, None) or lo <= default <= hi, f"{name}.{field} default"


def test_implausible_values_warn_with_a_suggestion():
    with pytest.warns(U.UnitWarning, match=r"tau_mem=20 s; did you mean 20 ms \(0.02\)\?"):
        neurosim.LIF(tau_mem=20)
    with pytest.warns(U.UnitWarning, match=r"c_m=2.81e-10 pF; did you mean 2.81e-10 F \(281\)"):
        neurosim.AdEx(c_m=281e-12)
    with pytest.warns(U.UnitWarning, match=r"t_ref=2 s; did you mean 2 ms"):
        neurosim.AdEx(t_ref=2.0)
    with pytest.warns(U.UnitWarning, match=r"an entry of the tensor"):
        neurosim.LIF(tau_mem=torch.tensor([20e-3, 30.0]))
    # the warning points at the caller's line, not into neurosim
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        neurosim.LIF(tau_mem=20)
    assert rec and rec[0].filename == __file__


def test_plausible_values_strings_and_trained_tensors_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for cls in model_classes().values():
            cls()  # the defaults are plausible
        neurosim.LIF(tau_mem=20e-3, t_ref=0.0)        # 0 means "off", never flagged
        neurosim.LIF(tau_mem="20 s")                  # explicit unit: the user meant it
        tau = torch.tensor([30.0], requires_grad=True)  # trained parameters move freely
        neurosim.LIF(tau_mem=tau)
        neurosim.Izhikevich.preset("FS")


def test_toml_configs_take_units_too():
    from neurosim.config import ConfigError, build_model

    model = build_model({"type": "AdEx", "c_m": "281 pF", "tau_w": "144 ms"})
    assert model.c_m == 281.0 and model.tau_w == pytest.approx(0.144)
    with pytest.raises(ConfigError, match=r"model.tau_mem: tau_mem='20 mV' is a voltage"):
        build_model({"type": "LIF", "tau_mem": "20 mV"})
