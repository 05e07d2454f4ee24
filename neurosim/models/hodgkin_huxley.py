r"""The Hodgkin-Huxley (1952) squid giant axon, time in seconds.

Units are those of the paper (modern sign convention, rest near -65 mV):
*v* in mV, *C* in µF/cm², conductances in mS/cm², currents in µA/cm²; the
gating variables *m*, *h*, *n* are dimensionless. Since
(µA/cm²)/(µF/cm²) = V/s = mV/ms, the paper's equations (in ms) are multiplied
by :math:`10^3` ms/s:

.. math::

    C\dot v &= 10^3\big(I - \bar g_\mathrm{Na} m^3 h (v - E_\mathrm{Na})
              - \bar g_\mathrm{K} n^4 (v - E_\mathrm{K}) - g_L (v - E_L)\big),\\
    \dot x &= 10^3\big(\alpha_x(v)(1 - x) - \beta_x(v)\,x\big), \quad x \in \{m, h, n\},

with the rate functions (per ms, *v* in mV)

.. math::

    \alpha_m &= \frac{0.1\,(v + 40)}{1 - e^{-(v + 40)/10}}, &
    \beta_m &= 4\,e^{-(v + 65)/18},\\
    \alpha_h &= 0.07\,e^{-(v + 65)/20}, &
    \beta_h &= \frac{1}{1 + e^{-(v + 35)/10}},\\
    \alpha_n &= \frac{0.01\,(v + 55)}{1 - e^{-(v + 55)/10}}, &
    \beta_n &= 0.125\,e^{-(v + 65)/80}.

The removable singularities of :math:`\alpha_m`, :math:`\alpha_n` are
evaluated through :math:`x/(1 - e^{-x}) = 1/\varphi_1(-x)` with ``expm1``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import Param, check_positive
from ._common import FixedThreshold
from .base import Vars, resolve_input_mode

_MS = 1e3


def _x_over_expm1(x: torch.Tensor) -> torch.Tensor:
    """``x / (1 - exp(-x))``, equal to 1 at ``x = 0``, accurate near it."""
    safe = torch.where(x == 0, torch.full_like(x, torch.finfo(x.dtype).tiny), x)  # limit: 1
    return safe / -torch.expm1(-safe)


def rates(v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    r"""The six HH rate functions :math:`(\alpha_m, \beta_m, \alpha_h, \beta_h, \alpha_n,
    \beta_n)` in 1/ms at the membrane potential ``v`` (mV)."""
    w = v + 65.0
    a_m = _x_over_expm1((w - 25.0) * 0.1)
    b_m = 4.0 * torch.exp(w * (-1.0 / 18.0))
    a_h = 0.07 * torch.exp(w * (-1.0 / 20.0))
    b_h = torch.sigmoid((w - 30.0) * 0.1)
    a_n = 0.1 * _x_over_expm1((w - 10.0) * 0.1)
    b_n = 0.125 * torch.exp(w * (-1.0 / 80.0))
    return a_m, b_m, a_h, b_h, a_n, b_n


@dataclass(frozen=True, eq=False)
class HodgkinHuxley(FixedThreshold):
    r"""Hodgkin-Huxley (1952) point neuron (equations in the module docstring).

    A spike is an upward crossing of ``v_th`` (default 0 mV): the model has no
    reset (``crossing_only = True``), so a neuron that starts a step above
    ``v_th`` does not spike in it, and one action potential gives one spike.
    With the 1952 parameters the cell rests at about -65 mV, has a class-2 onset
    of repetitive firing near 6.3 µA/cm² and fires at about 68 Hz at 10 µA/cm².
    All four variables are conditionally linear: ``"exponential_euler"`` is the
    natural integrator (exact for the gating variables at frozen *v*).

    State: *v* (mV), *m*, *h*, *n*. Input: current density (µA/cm²) or, with
    ``input_mode="jump"``, a voltage jump (mV). Starts at its resting point
    (the fixed point with zero input, found by Newton iteration).

    Args:
        c_m: membrane capacitance (µF/cm²), > 0.
        g_na: maximal sodium conductance (mS/cm²), > 0.
        g_k: maximal potassium conductance (mS/cm²), > 0.
        g_l: leak conductance (mS/cm²), > 0.
        e_na: sodium reversal potential (mV).
        e_k: potassium reversal potential (mV).
        e_l: leak reversal potential (mV).
        v_th: spike detection level (mV).
        input_mode: ``"current"``, the default: a current density in µA/cm²; or
            ``"jump"``: a voltage jump in mV.
    """

    clamped: ClassVar[tuple[str, ...]] = ()
    crossing_only: ClassVar[bool] = True
    voltage_unit: ClassVar[str] = "mV"
    state_units: ClassVar[Mapping[str, str]] = {"m": "dimensionless", "h": "dimensionless",
                                                "n": "dimensionless"}
    input_unit: ClassVar[str] = "µA/cm²"
    param_units: ClassVar[Mapping[str, str]] = {
        "c_m": "µF/cm²", "g_na": "mS/cm²", "g_k": "mS/cm²", "g_l": "mS/cm²", "e_na": "mV",
        "e_k": "mV", "e_l": "mV", "v_th": "mV"}
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "c_m": (1e-2, 100.0), "g_na": (1e-3, 1e4), "g_k": (1e-3, 1e4), "g_l": (1e-4, 1e3)}
    #: a membrane beyond ±1 V is physically impossible (reversal potentials lie within
    #: about ±100 mV, and the ODE keeps v between them up to the drive); gates are
    #: probabilities in [0, 1], which exact dynamics never leave: a margin of 1 either side
    #: still lets a method near its stability limit overshoot without tripping
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "v": (-1000.0, 1000.0), "m": (-1.0, 2.0), "h": (-1.0, 2.0), "n": (-1.0, 2.0)}

    c_m: Param = 1.0
    g_na: Param = 120.0
    g_k: Param = 36.0
    g_l: Param = 0.3
    e_na: Param = 50.0
    e_k: Param = -77.0
    e_l: Param = -54.387
    v_th: Param = 0.0
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._init_params()
        for name in ("c_m", "g_na", "g_k", "g_l"):
            check_positive(name, getattr(self, name), "µF/cm²" if name == "c_m" else "mS/cm²")
        mode = resolve_input_mode(self, self.input_mode, "current")
        object.__setattr__(self, "input_mode", mode)
        self.param_shape()

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v", "m", "h", "n")

    @property
    def input_target(self) -> str | None:
        return "v" if self.input_mode == "jump" else None

    @property
    def conditionally_linear(self) -> tuple[str, ...]:
        return ("v", "m", "h", "n")

    def _conductances(self, x: Vars) -> tuple[torch.Tensor, torch.Tensor]:
        g_na = self.g_na * x["m"] ** 3 * x["h"]
        g_k = self.g_k * x["n"] ** 4
        return g_na, g_k

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        v = x["v"]
        g_na, g_k = self._conductances(x)
        i = -(g_na * (v - self.e_na) + g_k * (v - self.e_k) + self.g_l * (v - self.e_l))
        if self.input_mode == "current":
            i = i + u
        a_m, b_m, a_h, b_h, a_n, b_n = rates(v)
        return {
            "v": (_MS / self.c_m) * i,
            "m": _MS * (a_m * (1.0 - x["m"]) - b_m * x["m"]),
            "h": _MS * (a_h * (1.0 - x["h"]) - b_h * x["h"]),
            "n": _MS * (a_n * (1.0 - x["n"]) - b_n * x["n"]),
        }

    def linear_rates(self, x: Vars, u: torch.Tensor, f: Vars | None = None
                     ) -> dict[str, torch.Tensor]:
        g_na, g_k = self._conductances(x)
        a_m, b_m, a_h, b_h, a_n, b_n = rates(x["v"])
        return {
            "v": -(_MS / self.c_m) * (g_na + g_k + self.g_l),
            "m": -_MS * (a_m + b_m),
            "h": -_MS * (a_h + b_h),
            "n": -_MS * (a_n + b_n),
        }

    def stiff_states(self) -> dict[str, Mapping[str, Param]]:
        """Rest, and the falling phase of a spike just after its peak, where the open sodium
        and potassium conductances make the membrane stiffest: the state of the default
        model driven by 10 µA/cm² (exponential Euler, dt = 0.01 ms) 2.3 ms into its first
        spike. There the Jacobian's spectral radius is 3.6e4 1/s (at rest 4.7e3 1/s), so
        forward Euler is stable up to dt = 2/3.6e4 s ≈ 0.055 ms and RK4 up to ≈ 0.077 ms
        (measured: both run at 0.05 ms and diverge at 0.1 ms).
        """
        return {"rest": self.rest(),
                "the peak of a spike": {"v": 37.68, "m": 0.9652, "h": 0.2994, "n": 0.5638}}

    def rest(self) -> dict[str, Param]:
        shape = self.param_shape()
        p = {k: torch.as_tensor(val.detach() if isinstance(val, torch.Tensor) else val,
                                dtype=torch.float64)
             for k, val in self.params().items() if k != "input_mode"}
        v = torch.full(shape, -65.0, dtype=torch.float64)

        def current(v):
            a_m, b_m, a_h, b_h, a_n, b_n = rates(v)
            m, h, n = a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)
            i = (p["g_na"] * m ** 3 * h * (v - p["e_na"]) + p["g_k"] * n ** 4 * (v - p["e_k"])
                 + p["g_l"] * (v - p["e_l"]))
            return i, m, h, n

        for _ in range(50):  # Newton on the steady-state current, numeric slope
            i, *_ = current(v)
            slope = (current(v + 1e-6)[0] - current(v - 1e-6)[0]) / 2e-6
            step = i / slope
            v = v - step.clamp(-5.0, 5.0)
            if bool((step.abs() < 1e-12).all()):
                break
        _, m, h, n = current(v)
        out = {"v": v, "m": m, "h": h, "n": n}
        return {k: (float(t) if t.dim() == 0 else t) for k, t in out.items()}


__all__ = ["HodgkinHuxley", "rates"]
