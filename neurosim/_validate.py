"""Validation of what users pass to the simulation entry points (below the engine).

Input tensors, their shape against the model's parameters, recorded variable
names and initial states: each failure raises :class:`ValueError` naming the
argument and its value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._checks import broadcast_shapes, check_input_dtype
from .models.base import NeuronModel
from .state import State


def as_input(input: Any, check_finite: bool = True) -> torch.Tensor:
    """The input as a floating tensor ``[T, *neurons]`` (integers become the default dtype).

    Raises ``ValueError`` for a scalar, an empty time axis, a half-precision dtype
    (float16/bfloat16 cannot resolve the state updates of a step) and, with
    ``check_finite``, NaN or infinity (naming the first step and element).
    """
    if not isinstance(input, torch.Tensor):
        try:
            input = torch.as_tensor(np.asarray(input))
        except (TypeError, ValueError) as err:
            raise ValueError(f"input must be a tensor [T, *neurons], got "
                             f"{type(input).__name__}: {err}") from None
    check_input_dtype("input", input)
    if not input.is_floating_point():
        input = input.to(torch.get_default_dtype())
    if input.dim() == 0:
        raise ValueError("input must have a leading time dimension [T, *neurons], got a "
                         "scalar of shape ()")
    if input.shape[0] == 0:
        raise ValueError(f"input must have at least one time step, got shape "
                         f"{tuple(input.shape)}")
    if check_finite:
        check_finite_input(input)
    return input


def check_finite_input(input: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the first step and element where ``input`` is not finite."""
    bad = ~torch.isfinite(input.detach())
    if bool(bad.any()):
        flat = bad.reshape(input.shape[0], -1)
        step, element = (int(i) for i in flat.nonzero()[0])
        value = float(input.detach().reshape(input.shape[0], -1)[step, element])
        raise ValueError(f"input must be finite, got {int(bad.sum())} non-finite values in a "
                         f"tensor of shape {tuple(input.shape)}; the first at step {step}, "
                         f"element {element}: {value}")


def element_shape(u: torch.Tensor, model: NeuronModel) -> torch.Size:
    """The shape ``[*batch, *neurons]`` of one time slice: input and parameters broadcast."""
    try:
        return broadcast_shapes(u.shape[1:], model.param_shape())
    except RuntimeError:
        raise ValueError(f"input of shape {tuple(u.shape)} ([T, *neurons]) does not broadcast "
                         f"with the parameter shape {tuple(model.param_shape())} of "
                         f"{type(model).__name__}") from None


def record_names(record: Any, model: NeuronModel) -> tuple[str, ...]:
    """The state variables to record: ``None`` (none), ``"all"``, a name or names."""
    available = model.state_names + (("refrac",) if model.spiking else ())
    if record is None:
        return ()
    if isinstance(record, str):
        record = available if record == "all" else (record,)
    record = tuple(record)
    for name in record:
        if name not in available:
            raise ValueError(f"record: {type(model).__name__} has no state variable {name!r}; "
                             f"available: {available} or 'all'")
    return record


def check_state(state: State, model: NeuronModel, shape: torch.Size) -> None:
    """Raise ``ValueError`` unless ``state`` has every variable of ``model`` with ``shape``."""
    needed = model.state_names + (("refrac",) if model.spiking else ())
    for name in needed:
        if name not in state:
            raise ValueError(f"state is missing the variable {name!r}; "
                             f"use model.initial_state(shape)")
        if state[name].shape != shape:
            raise ValueError(f"state[{name!r}] has shape {tuple(state[name].shape)}, expected "
                             f"{tuple(shape)} (the input shape without time)")


__all__ = ["as_input", "check_finite_input", "check_state", "element_shape", "record_names"]
