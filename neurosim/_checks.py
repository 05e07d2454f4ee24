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


def broadcast_shapes(*shapes: tuple[int, ...] | torch.Size) -> torch.Size:
    """``torch.broadcast_shapes`` for plain shapes, without its per-call overhead
    (tens of microseconds, which a short simulation notices); ``RuntimeError`` where
    the shapes do not broadcast, as torch raises."""
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        for k, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1:
                if out[k] not in (1, size):
                    raise RuntimeError(f"shapes {[tuple(s) for s in shapes]} do not broadcast")
                out[k] = size
    return torch.Size(out)


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
    """The value as a tensor for comparisons, in float64: a Python float such as
    ``0.999999999`` or ``1e-50`` must not be rounded to float32 (to 1.0 or 0.0) first."""
    if isinstance(value, torch.Tensor):
        v = value.detach()
        if v.device.type == "mps":  # no float64 there; compare in the tensor's own dtype
            return v
        return v.to(torch.float64)
    return torch.tensor(value, dtype=torch.float64)


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


#: default bound on the memory a command may allocate for one run (``--max-memory``)
DEFAULT_MEMORY_LIMIT = 4 * 2**30


def format_bytes(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KiB"``: a memory size for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


_SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory_size(text: str) -> int:
    """A memory size in bytes from ``"8G"``, ``"512MiB"``, ``"100K"`` or ``"1e9"``.

    Suffixes K, M, G, T are powers of 1024 and may be followed by ``iB`` or ``B``.
    """
    t = str(text).strip()
    for tail in ("iB", "B"):
        if t.endswith(tail) and len(t) > len(tail):
            t = t[:-len(tail)]
            break
    unit = t[-1:].upper() if t[-1:].isalpha() and t[-1:].upper() in _SIZE_UNITS else ""
    try:
        value = float(t[:-1] if unit else t) * _SIZE_UNITS[unit]
    except ValueError:
        raise ValueError(f"expected a memory size such as 8G or 512M, got {text!r}") from None
    if not 1 <= value < 2**63:
        raise ValueError(f"expected a memory size of at least 1 byte, got {text!r}")
    return int(value)


def check_memory(what: str, nbytes: float, limit: int, override: str) -> None:
    """Refuse (``ValueError``) a task estimated to need more than ``limit`` bytes.

    Args:
        what: the task, for the message (``"the run (200000 steps x 1e11 neurons)"``).
        nbytes: its estimated memory in bytes.
        limit: the bound in bytes.
        override: how the user raises the bound (``"--max-memory"``).
    """
    if not nbytes <= limit:
        raise ValueError(f"{what} needs about {format_bytes(nbytes)}, above the limit of "
                         f"{format_bytes(limit)}; make it smaller, or raise the limit with "
                         f"{override}")


def positive_number(name: str, value: Any) -> float:
    """A finite real number > 0 as a float (a one-element tensor is accepted).

    Rejects booleans, strings, ``inf`` and ``nan`` with a ``ValueError`` naming ``name``.
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number > 0, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


#: dtypes a simulation input may have; half precision is refused (see check_input_dtype)
INPUT_DTYPES = (torch.float32, torch.float64)


def check_input_dtype(name: str, tensor: torch.Tensor) -> None:
    """Refuse a floating input tensor narrower than float32 (float16, bfloat16, float8...).

    Half precision cannot resolve the small per-step changes of a membrane (a bfloat16
    input gave 0 spikes where float32 gives 24), so it is rejected with a ``ValueError``
    naming the dtype instead of running silently wrong. Integer and bool tensors pass
    (they are converted to the default dtype by the caller).
    """
    if not isinstance(tensor, torch.Tensor):
        return
    if tensor.is_floating_point() and tensor.dtype not in INPUT_DTYPES:
        raise ValueError(f"{name} has dtype {tensor.dtype}; neurosim simulates in float32 or "
                         f"float64 (narrower floats lose the small per-step changes of the "
                         f"state and give wrong results): convert it, e.g. {name}.float()")
    if tensor.is_complex():
        raise ValueError(f"{name} must be real, got dtype {tensor.dtype}")
