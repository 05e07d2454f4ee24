"""Validation helpers shared by models, integrators and simulate().

Every failure raises :class:`ValueError` whose message names the offending
parameter and shows its value, as the conventions in ``docs/concepts.md`` ask.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import torch

Param = float | torch.Tensor


def describe(value: Any) -> str:
    """A short human-readable rendering of a parameter value for error messages."""
    if isinstance(value, torch.Tensor):
        if value.numel() == 1:
            return repr(value.item())
        finite = value[torch.isfinite(value)]
        bad = "" if finite.numel() == value.numel() else ", contains non-finite entries"
        if finite.numel():
            rng = f"min {finite.min().item():.6g}, max {finite.max().item():.6g}"
        else:
            rng = "no finite entries"
        return f"tensor of shape {tuple(value.shape)} ({rng}{bad})"
    return repr(value)


def as_param(name: str, value: Any, *, optional: bool = False,
             unit: str | None = None) -> Param | None:
    """Accept a Python number or a floating tensor; reject anything else or non-finite values.

    With ``unit`` (the field's declared unit), a string with a unit such as ``"20 ms"``
    is also accepted and converted to ``unit`` (:func:`neurosim.units.to_unit`).
    """
    if isinstance(value, str) and unit is not None:
        from .units import to_unit

        value = to_unit(name, value, unit)
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} must be a number or a tensor, got None")
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number or a tensor, got {value!r}")
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.dtype in (torch.int32, torch.int64)):
            raise ValueError(f"{name} must be a real tensor, got dtype {value.dtype}")
        if not value.is_floating_point():
            value = value.to(torch.get_default_dtype())
        if not bool(torch.isfinite(value.detach()).all()):
            raise ValueError(f"{name} must be finite, got {describe(value)}")
        return value
    if isinstance(value, Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return value
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return as_param(name, torch.as_tensor(value))
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    raise ValueError(f"{name} must be a number or a tensor, got {type(value).__name__} {value!r}")


def _values(value: Param) -> torch.Tensor:
    return value.detach() if isinstance(value, torch.Tensor) else torch.tensor(value)


def check_positive(name: str, value: Param | None, unit: str = "") -> None:
    """Raise unless every entry of ``value`` is > 0 (``None`` passes)."""
    if value is None:
        return
    if not bool((_values(value) > 0).all()):
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name} must be > 0{u}, got {describe(value)}")


def check_nonnegative(name: str, value: Param | None, unit: str = "") -> None:
    """Raise unless every entry of ``value`` is >= 0 (``None`` passes)."""
    if value is None:
        return
    if not bool((_values(value) >= 0).all()):
        u = f" {unit}" if unit else ""
        raise ValueError(f"{name} must be >= 0{u}, got {describe(value)}")


def check_less(name_a: str, a: Param, name_b: str, b: Param) -> None:
    """Raise unless ``a < b`` everywhere (after broadcasting)."""
    try:
        ok = bool((_values(a) < _values(b)).all())
    except RuntimeError as err:
        raise ValueError(
            f"{name_a} ({describe(a)}) and {name_b} ({describe(b)}) do not broadcast: {err}"
        ) from None
    if not ok:
        raise ValueError(f"{name_a} must be < {name_b}, got {name_a}={describe(a)}, "
                         f"{name_b}={describe(b)}")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def check_dt(dt: Any) -> float:
    """Validate a time step in seconds and return it as a float."""
    if isinstance(dt, torch.Tensor):
        if dt.numel() != 1:
            raise ValueError(f"dt must be a scalar in seconds, got {describe(dt)}")
        dt = dt.item()
    if isinstance(dt, bool) or not isinstance(dt, Real):
        raise ValueError(f"dt must be a number in seconds, got {dt!r}")
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number > 0 s, got {dt!r}")
    return dt
