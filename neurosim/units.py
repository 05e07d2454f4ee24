r"""Physical units for model parameters: parse ``"20 ms"``, convert, check plausibility.

Every model class declares the unit of each numeric field in ``param_units`` (a
class-level mapping, e.g. ``LIF.param_units["tau_mem"] == "s"``,
``AdEx.param_units["c_m"] == "pF"``) and, where a value far outside it is
almost surely a mistake, a plausible range in ``param_ranges`` (in that unit).
A parameter given as a string with a unit is converted to the declared unit:

>>> neurosim.LIF(tau_mem="20 ms").tau_mem
0.02
>>> neurosim.AdEx(c_m="0.281 nF").c_m
281.0

and a plain number outside the plausible range warns (:class:`UnitWarning`),
suggesting the SI prefix that would make sense (``LIF(tau_mem=20)`` warns
"tau_mem=20 s; did you mean 20 ms (0.02)?").

Grammar. A quantity is a number followed by a unit expression; a unit expression
is a product of factors joined by ``*``, ``·``, ``.`` or spaces, each optionally
divided (``/``), where a factor is an optional SI prefix (``Y Z E P T G M k h da
d c m u µ n p f a z y``) and a unit symbol, optionally raised to an integer power
(``cm^2``, ``cm**2``, ``cm2``, ``cm²``, ``s^-1``, ``s⁻¹``). Symbols: ``s``,
``Hz``, ``V``, ``A``, ``S``, ``F``, ``Ohm`` (``Ω``), ``m`` (metre), ``g`` (gram),
``mol``, ``M`` (mol/l), ``l`` or ``L`` (litre), and ``1`` (dimensionless, so
``1/ms`` works). A bare symbol wins over a prefix (``m`` is the metre, ``ms`` the
millisecond, ``mm`` the millimetre). ``"dimensionless"`` and ``""`` are the unit 1.
"""

from __future__ import annotations

import math
import os
import re
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Quantity", "Unit", "UnitWarning", "check_plausible", "convert", "parse_quantity",
           "parse_unit", "to_unit"]

#: base dimensions: kg, m, s, A, mol
_DIMS = ("kg", "m", "s", "A", "mol")


class UnitWarning(UserWarning):
    """A parameter value far outside its model's plausible range (probably a unit mistake)."""


@dataclass(frozen=True)
class Unit:
    """A unit: a scale factor to SI base units and a dimension vector (kg, m, s, A, mol)."""

    scale: float
    dims: tuple[int, int, int, int, int]

    def __mul__(self, other: Unit) -> Unit:
        return Unit(self.scale * other.scale,
                    tuple(a + b for a, b in zip(self.dims, other.dims, strict=True)))

    def __truediv__(self, other: Unit) -> Unit:
        return Unit(self.scale / other.scale,
                    tuple(a - b for a, b in zip(self.dims, other.dims, strict=True)))

    def __pow__(self, k: int) -> Unit:
        return Unit(self.scale ** k, tuple(a * k for a in self.dims))

    def dimension(self) -> str:
        """The dimension: its name when common (``"voltage"``), else in SI base units
        (``"kg m^2 s^-3 A^-1"``)."""
        named = _DIMENSION_NAMES.get(self.dims)
        if named:
            return named
        parts = [f"{n}^{p}" if p != 1 else n for n, p in zip(_DIMS, self.dims, strict=True) if p]
        return " ".join(parts)


def _u(scale: float, kg: int = 0, m: int = 0, s: int = 0, A: int = 0, mol: int = 0) -> Unit:
    return Unit(scale, (kg, m, s, A, mol))


_ONE = _u(1.0)
_SYMBOLS: dict[str, Unit] = {
    "1": _ONE,
    "s": _u(1.0, s=1),
    "Hz": _u(1.0, s=-1),
    "m": _u(1.0, m=1),
    "g": _u(1e-3, kg=1),
    "A": _u(1.0, A=1),
    "V": _u(1.0, kg=1, m=2, s=-3, A=-1),
    "S": _u(1.0, kg=-1, m=-2, s=3, A=2),
    "F": _u(1.0, kg=-1, m=-2, s=4, A=2),
    "Ohm": _u(1.0, kg=1, m=2, s=-3, A=-2),
    "ohm": _u(1.0, kg=1, m=2, s=-3, A=-2),
    "Ω": _u(1.0, kg=1, m=2, s=-3, A=-2),
    "mol": _u(1.0, mol=1),
    "l": _u(1e-3, m=3),
    "L": _u(1e-3, m=3),
    "M": _u(1e3, m=-3, mol=1),
}
_DIMENSION_NAMES = {
    (0, 0, 0, 0, 0): "dimensionless", (0, 0, 1, 0, 0): "time", (0, 0, -1, 0, 0): "rate (1/time)",
    (1, 2, -3, -1, 0): "voltage", (0, 0, 0, 1, 0): "current", (-1, -2, 3, 2, 0): "conductance",
    (-1, -2, 4, 2, 0): "capacitance", (1, 2, -3, -2, 0): "resistance", (0, 1, 0, 0, 0): "length",
    (0, -2, 0, 1, 0): "current density", (-1, -4, 3, 2, 0): "conductance density",
    (-1, -4, 4, 2, 0): "capacitance density", (1, 2, -4, -1, 0): "voltage rate (V/s)",
}
_PREFIXES: dict[str, int] = {
    "Y": 24, "Z": 21, "E": 18, "P": 15, "T": 12, "G": 9, "M": 6, "k": 3, "h": 2, "da": 1,
    "d": -1, "c": -2, "m": -3, "u": -6, "µ": -6, "μ": -6, "n": -9, "p": -12, "f": -15,
    "a": -18, "z": -21, "y": -24,
}
_EXP_OF_PREFIX = {e: p for p, e in _PREFIXES.items() if p not in ("u", "μ", "da", "h", "d", "c")}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_FACTOR = re.compile(r"^(?P<sym>[A-Za-zµμΩ]+|1)(?:\^|\*\*)?(?P<exp>[-+]?\d+)?$")
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def _symbol(text: str) -> Unit:
    if text in _SYMBOLS:
        return _SYMBOLS[text]
    for p in sorted(_PREFIXES, key=len, reverse=True):
        if text.startswith(p) and text[len(p):] in _SYMBOLS and text[len(p):] != "1":
            return _SYMBOLS[text[len(p):]] * Unit(10.0 ** _PREFIXES[p], (0, 0, 0, 0, 0))
    raise ValueError(f"unknown unit {text!r}")


def parse_unit(text: str) -> Unit:
    """Parse a unit expression (``"ms"``, ``"µA/cm²"``, ``"mS/cm^2"``, ``"1/s"``, ``"nS"``).

    Raises:
        ValueError: naming the part that is not a unit.
    """
    if not isinstance(text, str):
        raise ValueError(f"a unit must be a string, got {text!r}")
    s = text.strip().translate(_SUPERSCRIPTS)
    if s in ("", "dimensionless", "1"):
        return _ONE
    s = s.replace("·", "*").replace("⋅", "*")
    # '/' binds to the next factor only (mV/ms/ms = mV ms^-2); spaces, '*' and '.' multiply
    tokens = re.findall(r"/|[^\s*/]+", re.sub(r"(?<=[A-Za-zµμΩ\d])\.(?=[A-Za-zµμΩ])", " ", s))
    out, divide = _ONE, False
    if not tokens:
        raise ValueError(f"empty unit {text!r}")
    for tok in tokens:
        if tok == "/":
            if divide:
                raise ValueError(f"unit {text!r}: two '/' in a row")
            divide = True
            continue
        m = _FACTOR.match(tok)
        if m is None:
            raise ValueError(f"unit {text!r}: cannot read {tok!r}")
        try:
            factor = _symbol(m.group("sym"))
        except ValueError:
            # a trailing digit run may be part of no symbol: "cm2" = cm^2
            raise ValueError(f"unit {text!r}: unknown unit {m.group('sym')!r}") from None
        factor = factor ** int(m.group("exp") or 1)
        out = out / factor if divide else out * factor
        divide = False
    if divide:
        raise ValueError(f"unit {text!r} ends with '/'")
    return out


@dataclass(frozen=True)
class Quantity:
    """A number with its unit, as parsed from ``"20 ms"``."""

    value: float
    unit: Unit
    text: str


def parse_quantity(text: str) -> Quantity:
    """Parse ``"<number> <unit>"`` (``"20 ms"``, ``"-70.6mV"``, ``"1e-3 s"``, ``"5"``).

    Raises:
        ValueError: when the text does not start with a number or the unit is unknown.
    """
    m = _NUMBER.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"expected a number with a unit such as '20 ms', got {text!r}")
    return Quantity(float(m.group(1)), parse_unit(m.group(2)), text)


def convert(value: float, from_unit: str | Unit, to_unit: str | Unit) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (same dimension required)."""
    a = parse_unit(from_unit) if isinstance(from_unit, str) else from_unit
    b = parse_unit(to_unit) if isinstance(to_unit, str) else to_unit
    if a.dims != b.dims:
        raise ValueError(f"cannot convert {from_unit!r} ({a.dimension()}) to {to_unit!r} "
                         f"({b.dimension()})")
    return _clean(value * a.scale / b.scale)


def _clean(x: float) -> float:
    """Round off the last-bit noise of a decimal rescaling (0.020000000000000004 -> 0.02)."""
    if x == 0 or not math.isfinite(x):
        return x
    r = float(f"{x:.15g}")
    return r if abs(r - x) <= 4 * math.ulp(x) else x


def to_unit(name: str, text: str, unit: str) -> float:
    """Convert the string ``text`` (``"20 ms"``) for parameter ``name`` to ``unit``.

    Raises:
        ValueError: naming the parameter, the value and the expected unit.
    """
    try:
        q = parse_quantity(text)
    except ValueError as err:
        raise ValueError(f"{name}={text!r}: {err} (expected a value in {unit})") from None
    target = parse_unit(unit)
    if q.unit.dims != target.dims:
        raise ValueError(f"{name}={text!r} is a {q.unit.dimension()}, but {name} is a "
                         f"{target.dimension()} in {unit or 'dimensionless'}")
    return _clean(q.value * q.unit.scale / target.scale)


def _rescaled(unit: str, decades: int) -> str | None:
    """The name of the unit U' with ``x U' = x·10^decades U``: ``("s", -3)`` -> ``"ms"``,
    ``("1/ms", -3)`` -> ``"1/s"``; ``None`` when no SI prefix does it."""
    if unit.startswith("1/"):
        inner = _rescaled(unit[2:], -decades)
        return None if inner is None else "1/" + inner
    m = re.match(r"^([A-Za-zµμΩ]+)(.*)$", unit)
    if not m:
        return None
    head, tail = m.group(1), m.group(2)
    if tail[:1] and tail[0] not in "/ *·":
        return None  # the first factor has a power (cm²): prefixes do not shift simply
    if head in _SYMBOLS:
        prefix_exp, sym = 0, head
    else:
        for p in sorted(_PREFIXES, key=len, reverse=True):
            if head.startswith(p) and head[len(p):] in _SYMBOLS:
                prefix_exp, sym = _PREFIXES[p], head[len(p):]
                break
        else:
            return None
    new = prefix_exp + decades
    if new == 0:
        return sym + tail
    if new not in _EXP_OF_PREFIX:
        return None
    return _EXP_OF_PREFIX[new] + sym + tail


def check_plausible(owner: str, name: str, value: Any, unit: str,
                    bounds: tuple[float, float]) -> None:
    """Warn (:class:`UnitWarning`) when ``value`` lies outside ``bounds`` (in ``unit``).

    The message suggests the SI prefix that would bring the value into range:
    ``tau_mem=20 s; did you mean 20 ms (0.02)?``. Zero is never flagged (it means
    "off" for ``t_ref`` and the like); tensors are checked on their finite entries.
    """
    lo, hi = bounds
    try:
        import torch

        if isinstance(value, torch.Tensor):
            if value.requires_grad:
                return  # trained parameters move; they are not checked
            v = value.detach()
            v = v[torch.isfinite(v) & (v != 0)]
            if v.numel() == 0:
                return
            vals = [float(v.min()), float(v.max())]
        else:
            vals = [float(value)] if value != 0 else []
    except (TypeError, ValueError):
        return
    # values the model's validation rejects anyway (a negative time constant) are not flagged
    bad = [x for x in vals if not lo <= x <= hi and not (lo > 0 and x < 0)]
    if not bad:
        return
    x = bad[0]
    hint, example = "", _example(unit)
    for decades in (-3, 3, -6, 6, -9, 9, -12, 12):
        scaled = x * 10.0 ** decades
        if lo <= scaled <= hi:
            other = _rescaled(unit, decades)
            if other is not None:
                hint = f"; did you mean {x:g} {other} ({_clean(scaled):g})?"
                example = f"{x:g} {other}"
            else:
                hint = f"; did you mean {_clean(scaled):g} {unit}?"
            break
    shown = f"{x:g} {unit}" if unit not in ("", "1") else f"{x:g}"
    where = "" if len(vals) == 1 else " (an entry of the tensor)"
    warnings.warn(f"{owner}: {name}={shown}{where}{hint} ({name} is in {unit or 'dimensionless'};"
                  f" plausible range [{lo:g}, {hi:g}]; pass a string with a unit, such as "
                  f"'{example}', to be explicit)", UnitWarning, stacklevel=_user_level())


def _example(unit: str) -> str:
    return {"s": "20 ms", "pF": "281 pF", "nS": "30 nS", "mV": "-70 mV"}.get(unit, f"1 {unit}")



def _user_level() -> int:
    """``stacklevel`` that points a warning at the first frame outside neurosim."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    level, frame = 1, sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith(pkg)
                                 or frame.f_code.co_filename.startswith("<")):
        frame, level = frame.f_back, level + 1
    return level


def declared_unit(cls: type, name: str) -> str | None:
    """The unit a model class declares for field ``name`` (``param_units``), or ``None``."""
    units = getattr(cls, "param_units", None)
    if isinstance(units, Mapping):
        return units.get(name)
    return None
