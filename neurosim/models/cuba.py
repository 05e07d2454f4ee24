r"""Current-based LIF with separate excitatory and inhibitory exponential currents.

The cell of the CUBA benchmark of Brette et al. (2007) (Vogels & Abbott 2005),
as in Brian2's CUBA example; voltages and currents in mV, time in s:

.. math::

    \tau_m\dot v = (E_L - v) + g_e + g_i, \qquad
    \tau_e\dot g_e = -g_e, \qquad \tau_i\dot g_i = -g_i .

``g_e`` and ``g_i`` are currents expressed in mV (current times membrane
resistance). A spike when *v* crosses :math:`v_\mathrm{th}` upward; then
:math:`v \leftarrow v_\mathrm{reset}`, held for ``t_ref`` (the currents keep
decaying). Linear between spikes, so the ``"exact"`` integrator applies.
In a :class:`neurosim.Network`, excitatory projections target ``"g_e"`` and
inhibitory ones ``"g_i"`` (weights in mV, negative for inhibition).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import Param, check_less, check_nonnegative, check_positive
from ._common import FixedThreshold, reset_membrane
from .base import LinearSystem, Vars, resolve_input_mode


@dataclass(frozen=True, eq=False)
class TwoCurrentLIF(FixedThreshold):
    r"""LIF with excitatory and inhibitory exponentially decaying currents (CUBA cell).

    .. math::

        \tau_m\dot v = (E_L - v) + g_e + g_i + I, \qquad
        \tau_e\dot g_e = -g_e, \qquad \tau_i\dot g_i = -g_i

    Defaults: the CUBA benchmark (Brette et al. 2007): τ_m = 20 ms, τ_e = 5 ms,
    τ_i = 10 ms, E_L = -49 mV, θ = -50 mV, v_reset = -60 mV, t_ref = 5 ms.

    Input modes: ``"current"`` (default): *I* (mV) enters the *v* equation;
    ``"jump"``: the input is added to ``g_e`` (positive) or ``g_i`` (negative)
    at the start of each step.

    State: *v*, ``g_e``, ``g_i`` (mV).

    Args:
        tau_mem: membrane time constant (s), > 0.
        tau_exc: excitatory current decay time constant (s), > 0.
        tau_inh: inhibitory current decay time constant (s), > 0.
        v_leak: leak potential (mV).
        v_th: firing threshold (mV).
        v_reset: reset potential (mV), < ``v_th``.
        t_ref: refractory period (s), >= 0.
        input_mode: ``"current"`` or ``"jump"``.
    """

    clamped: ClassVar[tuple[str, ...]] = ("v",)
    voltage_unit: ClassVar[str] = "mV"
    state_units: ClassVar[Mapping[str, str]] = {"g_e": "mV", "g_i": "mV"}
    input_unit: ClassVar[str] = "mV"
    #: v in mV: a membrane beyond ±1 V is physically impossible
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {"v": (-1000.0, 1000.0)}

    tau_mem: Param = 20e-3
    tau_exc: Param = 5e-3
    tau_inh: Param = 10e-3
    v_leak: Param = -49.0
    v_th: Param = -50.0
    v_reset: Param = -60.0
    t_ref: Param = 5e-3
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._init_params()
        check_positive("tau_mem", self.tau_mem, "s")
        check_positive("tau_exc", self.tau_exc, "s")
        check_positive("tau_inh", self.tau_inh, "s")
        check_nonnegative("t_ref", self.t_ref, "s")
        check_less("v_reset", self.v_reset, "v_th", self.v_th)
        mode = resolve_input_mode(self, self.input_mode, "current")
        object.__setattr__(self, "input_mode", mode)
        self.param_shape()

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v", "g_e", "g_i")

    @property
    def input_target(self) -> str | None:
        return "g_e" if self.input_mode == "jump" else None

    def apply_input(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        out = dict(x)
        if self.input_mode == "jump":
            out["g_e"] = x["g_e"] + torch.clamp(u, min=0.0)
            out["g_i"] = x["g_i"] - torch.clamp(-u, min=0.0)
        return out

    def rest(self) -> dict[str, Param]:
        return {"v": self.v_leak, "g_e": 0.0, "g_i": 0.0}

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        drive = (self.v_leak - x["v"]) + x["g_e"] + x["g_i"]
        if self.input_mode == "current":
            drive = drive + u
        return {"v": drive / self.tau_mem, "g_e": -x["g_e"] / self.tau_exc,
                "g_i": -x["g_i"] / self.tau_inh}

    def linear_system(self) -> LinearSystem:
        a = 1.0 / self.tau_mem
        current = self.input_mode == "current"
        return LinearSystem(("v", "g_e", "g_i"),
                            ((-a, a, a), (0.0, -1.0 / self.tau_exc, 0.0),
                             (0.0, 0.0, -1.0 / self.tau_inh)),
                            (self.v_leak * a, 0.0, 0.0),
                            (a if current else 0.0, 0.0, 0.0))

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        return reset_membrane(x, self.v_reset)


__all__ = ["TwoCurrentLIF"]
