r"""Conductance-based leaky integrate-and-fire neuron (CobaLIF).

Units: *v* and reversal potentials in mV, conductances in nS, capacitance in
pF, currents in pA, time in s (pA/pF = 10³ mV/s):

.. math::

    C\dot v &= 10^3\big(g_L(E_L - v) + g_e(E_e - v) + g_i(E_i - v) + I\big),\\
    \tau_e\dot g_e &= -g_e, \qquad \tau_i\dot g_i = -g_i .

A spike when *v* crosses :math:`v_\mathrm{th}` upward; then
:math:`v \leftarrow v_\mathrm{reset}`, held for ``t_ref`` (the conductances
keep decaying). Defaults: the COBA benchmark cell of Brette et al. (2007)
(C = 200 pF, g_L = 10 nS, i.e. τ_m = 20 ms; E_L = -60, θ = -50, E_e = 0,
E_i = -80 mV; τ_e = 5 ms, τ_i = 10 ms; t_ref = 5 ms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import Param, check_less, check_nonnegative, check_positive
from ._common import FixedThreshold, reset_membrane
from .base import Vars, resolve_input_mode

_PA_PER_PF = 1e3


@dataclass(frozen=True, eq=False)
class CobaLIF(FixedThreshold):
    r"""Leaky integrate-and-fire neuron with excitatory and inhibitory conductances.

    .. math::

        C\dot v = g_L(E_L - v) + g_e(E_e - v) + g_i(E_i - v) + I, \qquad
        \tau_e\dot g_e = -g_e, \qquad \tau_i\dot g_i = -g_i

    (the *v* equation times 10³ for mV/s; see the module docstring). Between
    spikes it is linear in each variable with the others held but bilinear
    (:math:`g_e v`) overall: ``"exponential_euler"`` integrates it with every
    variable conditionally linear, ``"exact"`` does not apply.

    Input modes:

    * ``"jump"`` (default): the input is a signed conductance jump in nS, as from
      synaptic spikes of weight *w*: :math:`g_e \mathrel{+}= \max(w, 0)`,
      :math:`g_i \mathrel{+}= \max(-w, 0)` (positive weights excite, negative inhibit).
    * ``"current"``: the input is a current *I* in pA entering the *v* equation.

    State: *v* (mV), ``g_e``, ``g_i`` (nS).

    Args:
        c_m: capacitance (pF), > 0.
        g_leak: leak conductance (nS), > 0.
        v_leak: leak reversal potential (mV).
        v_th: firing threshold (mV).
        v_reset: reset potential (mV), < ``v_th``.
        e_exc: excitatory reversal potential (mV).
        e_inh: inhibitory reversal potential (mV).
        tau_exc: excitatory conductance decay time constant (s), > 0.
        tau_inh: inhibitory conductance decay time constant (s), > 0.
        t_ref: refractory period (s), >= 0.
        input_mode: ``"jump"``, the default: signed conductance jumps in nS; or
            ``"current"``: a current in pA.
    """

    clamped: ClassVar[tuple[str, ...]] = ("v",)
    voltage_unit: ClassVar[str] = "mV"
    state_units: ClassVar[Mapping[str, str]] = {"g_e": "nS", "g_i": "nS"}
    input_unit: ClassVar[str] = "nS (jump) / pA (current)"
    param_units: ClassVar[Mapping[str, str]] = {
        "c_m": "pF", "g_leak": "nS", "v_leak": "mV", "v_th": "mV", "v_reset": "mV",
        "e_exc": "mV", "e_inh": "mV", "tau_exc": "s", "tau_inh": "s", "t_ref": "s"}
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "c_m": (1.0, 1e6), "g_leak": (1e-2, 1e5), "tau_exc": (1e-5, 5.0),
        "tau_inh": (1e-5, 5.0), "t_ref": (1e-6, 1.0)}
    #: v in mV: a membrane beyond ±1 V is physically impossible (the conductances pull
    #: it between the reversal potentials)
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {"v": (-1000.0, 1000.0)}

    c_m: Param = 200.0
    g_leak: Param = 10.0
    v_leak: Param = -60.0
    v_th: Param = -50.0
    v_reset: Param = -60.0
    e_exc: Param = 0.0
    e_inh: Param = -80.0
    tau_exc: Param = 5e-3
    tau_inh: Param = 10e-3
    t_ref: Param = 5e-3
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._init_params()
        check_positive("c_m", self.c_m, "pF")
        check_positive("g_leak", self.g_leak, "nS")
        check_positive("tau_exc", self.tau_exc, "s")
        check_positive("tau_inh", self.tau_inh, "s")
        check_nonnegative("t_ref", self.t_ref, "s")
        check_less("v_reset", self.v_reset, "v_th", self.v_th)
        mode = resolve_input_mode(self, self.input_mode, "jump")
        object.__setattr__(self, "input_mode", mode)
        self.param_shape()

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v", "g_e", "g_i")

    @property
    def input_target(self) -> str | None:
        return "g_e" if self.input_mode == "jump" else None

    @property
    def conditionally_linear(self) -> tuple[str, ...]:
        return ("v", "g_e", "g_i")

    def apply_input(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        out = dict(x)
        if self.input_mode == "jump":
            out["g_e"] = x["g_e"] + torch.clamp(u, min=0.0)
            out["g_i"] = x["g_i"] + torch.clamp(-u, min=0.0)
        return out

    def rest(self) -> dict[str, Param]:
        return {"v": self.v_leak, "g_e": 0.0, "g_i": 0.0}

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        v, g_e, g_i = x["v"], x["g_e"], x["g_i"]
        i = self.g_leak * (self.v_leak - v) + g_e * (self.e_exc - v) + g_i * (self.e_inh - v)
        if self.input_mode == "current":
            i = i + u
        return {"v": (_PA_PER_PF / self.c_m) * i, "g_e": -g_e / self.tau_exc,
                "g_i": -g_i / self.tau_inh}

    def linear_rates(self, x: Vars, u: torch.Tensor, f: Vars | None = None
                     ) -> dict[str, torch.Tensor]:
        g = self.g_leak + x["g_e"] + x["g_i"]
        zero = torch.zeros_like(x["v"])
        return {"v": -(_PA_PER_PF / self.c_m) * g, "g_e": zero - 1.0 / self.tau_exc,
                "g_i": zero - 1.0 / self.tau_inh}

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        return reset_membrane(x, self.v_reset)


__all__ = ["CobaLIF"]
