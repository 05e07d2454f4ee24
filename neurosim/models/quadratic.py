r"""Quadratic integrate-and-fire models: Izhikevich (2003) and the QIF neuron.

Izhikevich's simple model is published with time in milliseconds. neurosim keeps
*time* in seconds (``dt``, ``t``, spike times), and keeps every parameter and
variable of the model in the paper's units, which are consistent with each other
(all rates per millisecond):

=========  ===========  ==================================================
quantity   unit         meaning
=========  ===========  ==================================================
*v*, *c*   mV           membrane potential, reset potential
*a*        1/ms         recovery rate (RS: 0.02)
*b*        1/ms         sensitivity of *u* to *v*, (mV/ms)/mV (RS: 0.2)
*u*, *d*   mV/ms        recovery variable and its jump at a spike (RS: 8)
*I*        mV/ms        input (the paper's "current", e.g. 10)
=========  ===========  ==================================================

The right-hand sides, in mV/ms and (mV/ms)/ms, are multiplied by
:math:`10^3\ \mathrm{ms/s}` to give rates per second:

.. math::

    \dot v &= 10^3\,\big(0.04\,\bar v^2 + 5\,\bar v + 140 - u + I\big),\\
    \dot u &= 10^3\,a\,(b\,\bar v - u),
    \qquad \bar v = \min(v, v_\mathrm{peak}).

When *v* crosses :math:`v_\mathrm{peak}` = 30 mV upward: :math:`v \leftarrow c`,
:math:`u \leftarrow u + d`. Inside the vector field *v* is capped at
:math:`v_\mathrm{peak}`; below it this changes nothing, above it (a fixed step
that overshoots) it keeps the quadratic term finite.

Earlier versions took *a* per second (RS: ``a = 20``) next to *b* per ms; a
plain ``a`` above 1/ms now warns ("did you mean 20 1/s (0.02)?"), and
``a="20 /s"`` states the unit explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import Param, check_less, check_nonnegative, check_positive
from ._common import FixedThreshold, reset_membrane
from .base import Vars, resolve_input_mode

#: milliseconds per second: the paper's time unit
_MS = 1e3

#: Izhikevich (2003), Fig. 2, in the paper's units (a, b in 1/ms; c in mV; d in mV/ms).
IZHIKEVICH_PRESETS: dict[str, dict[str, float]] = {
    "RS": dict(a=0.02, b=0.2, c=-65.0, d=8.0),    # regular spiking
    "IB": dict(a=0.02, b=0.2, c=-55.0, d=4.0),    # intrinsically bursting
    "CH": dict(a=0.02, b=0.2, c=-50.0, d=2.0),    # chattering
    "FS": dict(a=0.1, b=0.2, c=-65.0, d=2.0),     # fast spiking
    "LTS": dict(a=0.02, b=0.25, c=-65.0, d=2.0),  # low-threshold spiking
    "TC": dict(a=0.02, b=0.25, c=-65.0, d=0.05),  # thalamo-cortical
    "RZ": dict(a=0.1, b=0.26, c=-65.0, d=2.0),    # resonator
}


class _Validated(FixedThreshold):
    """Input-mode handling and the spike at ``v_peak`` shared by the quadratic models."""

    threshold_field: ClassVar[str] = "v_peak"

    def _finish(self) -> None:
        mode = resolve_input_mode(self, self.input_mode, "current")
        object.__setattr__(self, "input_mode", mode)
        self.param_shape()

    @property
    def input_target(self) -> str | None:
        return "v" if self.input_mode == "jump" else None


@dataclass(frozen=True, eq=False)
class Izhikevich(_Validated):
    r"""Izhikevich's simple model (Izhikevich 2003), time in seconds.

    .. math::

        \dot v = 10^3\,(0.04v^2 + 5v + 140 - u + I), \qquad \dot u = 10^3\,a(bv - u)

    spike when *v* crosses ``v_peak`` upward, then :math:`v \leftarrow c`,
    :math:`u \leftarrow u + d` (see the module docstring for units and the
    ms → s conversion). Parameters and state are in the paper's units (rates per
    ms); only time is in seconds. State: *v* (mV), *u* (mV/ms).
    Input: current *I* (the paper's unit, mV/ms; e.g. 10) or, with
    ``input_mode="jump"``, a voltage jump (mV). *u* is conditionally linear
    (``"exponential_euler"`` applies). Starts at its resting point (the stable
    fixed point of the unforced system; ``v = -65``, ``u = b v`` if none exists).

    Presets: ``Izhikevich.preset("RS")`` — RS, IB, CH, FS, LTS, TC, RZ
    (:data:`IZHIKEVICH_PRESETS`).

    Args:
        a: recovery rate (1/ms), the paper's number (RS: 0.02); > 0.
        b: sensitivity of *u* to *v* (1/ms), the paper's number (RS: 0.2).
        c: reset potential (mV), < ``v_peak``.
        d: increment of *u* at a spike (mV/ms), the paper's number.
        v_peak: spike cut-off (mV), default 30.
        input_mode: ``"current"``, the default: a current in mV/ms; or ``"jump"``: a
            voltage jump in mV.
    """

    clamped: ClassVar[tuple[str, ...]] = ()
    voltage_unit: ClassVar[str] = "mV"
    state_units: ClassVar[Mapping[str, str]] = {"u": "mV/ms"}
    input_unit: ClassVar[str] = "mV/ms"
    # every rate per ms, as in the paper (see the module docstring)
    param_units: ClassVar[Mapping[str, str]] = {
        "a": "1/ms", "b": "1/ms", "c": "mV", "d": "mV/ms", "v_peak": "mV"}
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "a": (1e-4, 1.0), "b": (-2.0, 2.0)}
    #: v (mV): ±1 V is physically impossible, and v is reset at ``v_peak`` (30 mV) after
    #: every step; u (mV/ms) relaxes to b·v (abs(b) <= 2, so within ±2000 for v in range)
    #: plus d per spike, and a large u silences the neuron: ±1e5 is never reached healthily
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "v": (-1000.0, 1000.0), "u": (-1e5, 1e5)}

    a: Param = 0.02
    b: Param = 0.2
    c: Param = -65.0
    d: Param = 8.0
    v_peak: Param = 30.0
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._init_params()
        check_positive("a", self.a, "1/ms")
        check_less("c", self.c, "v_peak", self.v_peak)
        self._finish()

    @classmethod
    def preset(cls, name: str, **overrides: Param) -> Izhikevich:
        """The Izhikevich (2003) cell class ``name``: RS, IB, CH, FS, LTS, TC or RZ."""
        key = name.upper()
        if key not in IZHIKEVICH_PRESETS:
            raise ValueError(f"preset must be one of {sorted(IZHIKEVICH_PRESETS)}, got {name!r}")
        return cls(**{**IZHIKEVICH_PRESETS[key], **overrides})

    @classmethod
    def from_paper(cls, a: Param, b: Param, c: Param, d: Param, **kwargs: Param) -> Izhikevich:
        """Build from the paper's (a, b, c, d); the same as ``Izhikevich(a=a, b=b, c=c, d=d)``,
        since the model's parameters are in the paper's units."""
        return cls(a=a, b=b, c=c, d=d, **kwargs)

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v", "u")

    @property
    def conditionally_linear(self) -> tuple[str, ...]:
        return ("u",)

    def linear_rates(self, x: Vars, u: torch.Tensor, f: Vars | None = None
                     ) -> dict[str, torch.Tensor]:
        return {"u": torch.zeros_like(x["u"]) - _MS * self.a}

    def rest(self) -> dict[str, Param]:
        b = torch.as_tensor(self.b, dtype=torch.float64)
        disc = (5.0 - b) ** 2 - 4 * 0.04 * 140.0
        v = torch.where(disc >= 0, (-(5.0 - b) - torch.sqrt(disc.clamp(min=0))) / 0.08,
                        torch.full_like(b, -65.0))
        if v.dim() == 0:
            v = float(v)
        return {"v": v, "u": self.b * v}

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        v = torch.clamp(x["v"], max=self.v_peak)
        dv = 0.04 * v * v + 5.0 * v + 140.0 - x["u"]
        if self.input_mode == "current":
            dv = dv + u
        return {"v": _MS * dv, "u": (_MS * self.a) * (self.b * v - x["u"])}

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        out = reset_membrane(x, self.c)
        out["u"] = x["u"] + self.d
        return out


@dataclass(frozen=True, eq=False)
class QIF(_Validated):
    r"""Quadratic integrate-and-fire neuron (dimensionless voltage, time in seconds).

    .. math::

        \tau_\mathrm{mem}\dot v = k\,(\bar v - v_\mathrm{rest})(\bar v - v_c) + r I,
        \qquad \bar v = \min(v, v_\mathrm{peak})

    with a stable rest :math:`v_\mathrm{rest}` and an unstable critical point
    :math:`v_c > v_\mathrm{rest}` (the normal form of a saddle-node onset, class-1
    excitability). A spike when *v* crosses ``v_peak`` upward; then
    :math:`v \leftarrow v_\mathrm{reset}`, held for ``t_ref``. With constant input
    above the rheobase :math:`I_\mathrm{rh} = k(v_c - v_\mathrm{rest})^2/(4r)`,
    writing :math:`m = (v_\mathrm{rest} + v_c)/2`, :math:`q = rI - rI_\mathrm{rh}`,
    the interspike interval is

    .. math:: t_\mathrm{ref} + \frac{\tau_\mathrm{mem}}{\sqrt{kq}}\Big[
              \arctan\Big(\sqrt{k/q}\,(v_\mathrm{peak} - m)\Big) -
              \arctan\Big(\sqrt{k/q}\,(v_\mathrm{reset} - m)\Big)\Big].

    State: *v*. Input: current (``"current"``, default) or voltage jump (``"jump"``).

    Args:
        tau_mem: membrane time constant (s), > 0.
        v_rest: resting potential, < ``v_c``.
        v_c: critical (unstable) potential, < ``v_peak``.
        v_peak: spike cut-off.
        v_reset: reset potential, < ``v_peak``.
        k: curvature, > 0.
        r: input resistance, > 0.
        t_ref: refractory period (s), >= 0.
        input_mode: ``"current"`` or ``"jump"``.
    """

    clamped: ClassVar[tuple[str, ...]] = ("v",)
    param_units: ClassVar[Mapping[str, str]] = {
        "tau_mem": "s", "v_rest": "1", "v_c": "1", "v_peak": "1", "v_reset": "1", "k": "1",
        "r": "1", "t_ref": "s"}
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "tau_mem": (1e-5, 5.0), "t_ref": (1e-6, 1.0)}
    #: a trip wire for blow-ups: the voltage is dimensionless and reset at ``v_peak``
    #: (10 by default) after every step; 1e9 is far outside any healthy run
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {"v": (-1e9, 1e9)}

    tau_mem: Param = 20e-3
    v_rest: Param = 0.0
    v_c: Param = 1.0
    v_peak: Param = 10.0
    v_reset: Param = 0.0
    k: Param = 1.0
    r: Param = 1.0
    t_ref: Param = 0.0
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._init_params()
        check_positive("tau_mem", self.tau_mem, "s")
        check_positive("k", self.k)
        check_positive("r", self.r)
        check_nonnegative("t_ref", self.t_ref, "s")
        check_less("v_rest", self.v_rest, "v_c", self.v_c)
        check_less("v_c", self.v_c, "v_peak", self.v_peak)
        check_less("v_reset", self.v_reset, "v_peak", self.v_peak)
        self._finish()

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v",)

    def rest(self) -> dict[str, Param]:
        return {"v": self.v_rest}

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        v = torch.clamp(x["v"], max=self.v_peak)
        drive = self.k * (v - self.v_rest) * (v - self.v_c)
        if self.input_mode == "current":
            drive = drive + self.r * u
        return {"v": drive / self.tau_mem}

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        return reset_membrane(x, self.v_reset)

    def interspike_interval(self, current: float) -> float:
        """The closed-form interspike interval (s) under a constant current (see above).

        Only for float parameters; ``inf`` at or below the rheobase.
        """
        p = {k: float(v) for k, v in self.params().items() if k != "input_mode"}
        q = p["r"] * current - p["k"] * (p["v_c"] - p["v_rest"]) ** 2 / 4.0
        if q <= 0:
            return math.inf
        m = 0.5 * (p["v_rest"] + p["v_c"])
        s = math.sqrt(p["k"] / q)
        return p["t_ref"] + p["tau_mem"] / math.sqrt(p["k"] * q) * (
            math.atan(s * (p["v_peak"] - m)) - math.atan(s * (p["v_reset"] - m)))


__all__ = ["IZHIKEVICH_PRESETS", "QIF", "Izhikevich"]
