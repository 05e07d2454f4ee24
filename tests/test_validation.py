"""Bad input raises ValueError naming the parameter and its value."""

import math

import numpy as np
import pytest
import torch

from neurosim import ALIF, IF, LI, LIF, discretise, simulate


@pytest.mark.parametrize("cls", [LI, LIF, IF, ALIF])
@pytest.mark.parametrize("field", ["tau_mem", "tau_syn"])
@pytest.mark.parametrize("value", [0.0, -0.01])
def test_nonpositive_time_constants(cls, field, value):
    with pytest.raises(ValueError, match=rf"{field} must be > 0 s, got {value!r}"):
        cls(**{field: value})


def test_tensor_parameter_error_names_the_bad_entry():
    with pytest.raises(ValueError, match=r"tau_mem must be > 0 s, got tensor of shape \(3,\) "
                                         r"\(min -0.001"):
        LIF(tau_mem=torch.tensor([0.01, -0.001, 0.02]))


@pytest.mark.parametrize("v_reset", [1.0, 1.5])
def test_reset_not_below_threshold(v_reset):
    with pytest.raises(ValueError, match=rf"v_reset must be < v_th, got v_reset={v_reset!r}, "
                                         r"v_th=1.0"):
        LIF(v_reset=v_reset)


@pytest.mark.parametrize("cls", [LIF, ALIF, IF])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_parameters(cls, value):
    with pytest.raises(ValueError, match=r"v_th must be finite, got"):
        cls(v_th=value)
    with pytest.raises(ValueError, match=r"tau_mem must be finite"):
        cls(tau_mem=torch.tensor([0.01, value]))


def test_other_fields():
    with pytest.raises(ValueError, match=r"t_ref must be >= 0 s, got -0.001"):
        LIF(t_ref=-1e-3)
    with pytest.raises(ValueError, match=r"reset must be one of .* got 'zero'"):
        LIF(reset="zero")
    with pytest.raises(ValueError, match=r"input_mode must be one of .* got 'spike'"):
        LIF(input_mode="spike")
    with pytest.raises(ValueError, match=r"tau_adapt must be > 0 s, got 0.0"):
        ALIF(tau_adapt=0.0)
    with pytest.raises(ValueError, match=r"r must be > 0, got -2.0"):
        LIF(r=-2.0)
    with pytest.raises(ValueError, match=r"v_th='1 mV' is a voltage, but v_th is a dimensionless"):
        LIF(v_th="1 mV")  # strings with units are converted (neurosim.units); LIF's v is unitless
    with pytest.raises(ValueError, match=r"do not broadcast"):
        LIF(tau_mem=torch.full((3,), 0.01), v_th=torch.ones(4))


@pytest.mark.parametrize("dt", [0.0, -1e-3, math.nan, math.inf])
def test_bad_dt(dt):
    with pytest.raises(ValueError, match=rf"dt must be a finite number > 0 s, got {dt!r}"):
        simulate(LIF(), torch.ones(5, 1), dt)
    with pytest.raises(ValueError, match="dt must be"):
        discretise(LIF(), dt)


def test_bad_input_shapes_and_values():
    model = LIF(tau_mem=torch.full((4,), 0.02))
    with pytest.raises(ValueError, match=r"input of shape \(10, 3\) .* does not broadcast with "
                                         r"the parameter shape \(4,\)"):
        simulate(model, torch.ones(10, 3), 1e-3)
    with pytest.raises(ValueError, match=r"input must have a leading time dimension"):
        simulate(LIF(), torch.tensor(1.0), 1e-3)
    with pytest.raises(ValueError, match=r"at least one time step, got shape \(0, 2\)"):
        simulate(LIF(), torch.ones(0, 2), 1e-3)
    with pytest.raises(ValueError, match=r"input must be finite, got 1 non-finite"):
        simulate(LIF(), torch.tensor([[1.0], [math.nan]]), 1e-3)
    with pytest.raises(ValueError, match=r"state\['v'\] has shape \(2,\), expected \(3,\)"):
        simulate(LIF(), torch.ones(5, 3), 1e-3, state=LIF().initial_state((2,)))


def test_bad_method_and_options():
    with pytest.raises(ValueError, match=r"method must be one of .* got 'leapfrog'"):
        simulate(LIF(), torch.ones(3, 1), 1e-3, method="leapfrog")
    with pytest.raises(ValueError, match=r"rtol and atol only apply to method='adaptive'"):
        simulate(LIF(), torch.ones(3, 1), 1e-3, method="euler", rtol=1e-3)
    with pytest.raises(ValueError, match=r"record: LIF has no state variable 'w'"):
        simulate(LIF(), torch.ones(3, 1), 1e-3, record=("w",))
    with pytest.raises(ValueError, match=r"model must be a neurosim model"):
        simulate("LIF", torch.ones(3, 1), 1e-3)


def test_numpy_input_and_parameters_are_accepted():
    res = simulate(LIF(tau_mem=np.array([0.01, 0.02])), np.full((100, 2), 2.0), 1e-3)
    assert res.spikes.shape == (100, 2)
    assert res.spikes.dtype == torch.float64  # numpy's float64 is followed


def test_adaptive_step_budget_raises():
    from neurosim import Adaptive

    with pytest.raises(RuntimeError, match=r"max_steps=3"):
        simulate(LIF(tau_mem=1e-4), torch.ones(2, 1), 1e-2, method=Adaptive(rtol=1e-12,
                                                                          atol=1e-14,
                                                                          max_steps=3))
