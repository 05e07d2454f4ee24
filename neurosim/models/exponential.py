r"""Exponential integrate-and-fire models: EIF (Fourcaud-Trocmé et al. 2003) and
AdEx (Brette & Gerstner 2005), with the Naud et al. (2008) firing-pattern presets.

Units (those of the papers, time in seconds): membrane potential *v* in mV,
currents (*I*, *w*, *b*) in pA, conductances (``g_leak``, *a*) in nS, capacitance
``c_m`` in pF, time constants and ``t_ref`` in s. Since pA/pF = V/s = 10³ mV/s,

.. math::

    \dot v &= \frac{10^3}{C}\Big(g_L(E_L - \bar v) + g_L\Delta_T
              e^{(\bar v - V_T)/\Delta_T} - w + I\Big) \quad\text{(mV/s)},\\
    \tau_w \dot w &= a(\bar v - E_L) - w \quad\text{(AdEx only)},
    \qquad \bar v = \min(v, V_\mathrm{peak}).

A spike is emitted when *v* crosses :math:`V_\mathrm{peak}` upward; then
:math:`v \leftarrow V_r` and (AdEx) :math:`w \leftarrow w + b`, and *v* is held
for ``t_ref`` (*w* keeps evolving). The membrane potential inside the vector
field is capped at :math:`V_\mathrm{peak}` (:math:`\bar v`), as NEST's ``aeif_*``
models do: below the peak this changes nothing, above it (a fixed-step method
that overshoots the peak within one step) it keeps the exponential, and every
other term, finite, so no dt produces inf or NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import Param, check_choice, check_less, check_nonnegative, check_positive
from ._common import FixedThreshold, reset_membrane
from .base import Vars, resolve_input_mode

#: pA/pF expressed in mV/s
_PA_PER_PF = 1e3


@dataclass(frozen=True, eq=False)
class _ExponentialIF(FixedThreshold):
    """Shared parameters and physics of EIF and AdEx (see the module docstring)."""

    _adaptive: ClassVar[bool] = False
    threshold_field: ClassVar[str] = "v_peak"
    clamped: ClassVar[tuple[str, ...]] = ("v",)
    voltage_unit: ClassVar[str] = "mV"
    state_units: ClassVar[Mapping[str, str]] = {"w": "pA"}
    input_unit: ClassVar[str] = "pA"
    # units of the fields (AdEx adds a, tau_w, b) and plausible ranges in those units
    param_units: ClassVar[Mapping[str, str]] = {
        "c_m": "pF", "g_leak": "nS", "v_leak": "mV", "v_t": "mV", "delta_t": "mV",
        "v_peak": "mV", "v_reset": "mV", "t_ref": "s", "a": "nS", "tau_w": "s", "b": "pA"}
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "c_m": (1.0, 1e6), "g_leak": (1e-2, 1e5), "delta_t": (1e-2, 50.0), "t_ref": (1e-6, 1.0),
        "tau_w": (1e-4, 100.0)}
    #: v: ±1 V is physically impossible, and v is reset at ``v_peak`` (0 mV by default)
    #: after every step, so a healthy run stays far inside; w: 1 µA (1e6 pA) of adaptation
    #: current is three orders of magnitude beyond cortical cells (nA)
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "v": (-1000.0, 1000.0), "w": (-1e6, 1e6)}

    c_m: Param = 281.0
    g_leak: Param = 30.0
    v_leak: Param = -70.6
    v_t: Param = -50.4
    delta_t: Param = 2.0
    v_peak: Param = 0.0
    v_reset: Param = -70.6
    t_ref: Param = 0.0
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._validate()

    def _validate(self) -> None:
        self._init_params()
        check_positive("c_m", self.c_m, "pF")
        check_positive("g_leak", self.g_leak, "nS")
        check_positive("delta_t", self.delta_t, "mV")
        check_nonnegative("t_ref", self.t_ref, "s")
        check_less("v_reset", self.v_reset, "v_peak", self.v_peak)
        check_less("v_t", self.v_t, "v_peak", self.v_peak)
        if self._adaptive:
            check_positive("tau_w", self.tau_w, "s")
        mode = resolve_input_mode(self, self.input_mode, "current")
        check_choice("input_mode", mode, ("current", "jump"))
        object.__setattr__(self, "input_mode", mode)
        self.param_shape()

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v", "w") if self._adaptive else ("v",)

    @property
    def input_target(self) -> str | None:
        return "v" if self.input_mode == "jump" else None

    @property
    def conditionally_linear(self) -> tuple[str, ...]:
        return ("w",) if self._adaptive else ()

    def linear_rates(self, x: Vars, u: torch.Tensor, f: Vars | None = None
                     ) -> dict[str, torch.Tensor]:
        if not self._adaptive:
            return {}
        return {"w": torch.zeros_like(x["w"]) - 1.0 / self.tau_w}

    def rest(self) -> dict[str, Param]:
        out: dict[str, Param] = {"v": self.v_leak}
        if self._adaptive:
            out["w"] = 0.0
        return out

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        v = torch.clamp(x["v"], max=self.v_peak)
        current = self.g_leak * (self.v_leak - v) + \
            self.g_leak * self.delta_t * torch.exp((v - self.v_t) / self.delta_t)
        if self.input_mode == "current":
            current = current + u
        out = {}
        if self._adaptive:
            current = current - x["w"]
            out["w"] = (self.a * (v - self.v_leak) - x["w"]) / self.tau_w
        out["v"] = (_PA_PER_PF / self.c_m) * current
        return out

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        out = reset_membrane(x, self.v_reset)
        if self._adaptive:
            out["w"] = x["w"] + self.b
        return out


@dataclass(frozen=True, eq=False)
class EIF(_ExponentialIF):
    r"""Exponential integrate-and-fire neuron (Fourcaud-Trocmé et al. 2003).

    .. math:: C\dot v = g_L(E_L - v) + g_L\Delta_T e^{(v - V_T)/\Delta_T} + I

    (times 10³ for mV/s; *v* capped at ``v_peak`` inside the exponential).
    A spike when *v* crosses ``v_peak`` upward; then :math:`v \leftarrow V_r`,
    held for ``t_ref``. State: *v* (mV). Input: current *I* (pA), or with
    ``input_mode="jump"`` a voltage jump (mV) added to *v*. Nonlinear in *v*:
    no exact or exponential-Euler integration; use ``"adaptive"`` (precise spike
    times), ``"rk4"`` or ``"euler"``. Defaults: the cell of Brette & Gerstner (2005).

    Args:
        c_m: membrane capacitance (pF), > 0.
        g_leak: leak conductance (nS), > 0.
        v_leak: leak reversal potential :math:`E_L` (mV).
        v_t: threshold of the exponential :math:`V_T` (mV), < ``v_peak``.
        delta_t: slope factor :math:`\Delta_T` (mV), > 0.
        v_peak: spike cut-off potential (mV).
        v_reset: reset potential :math:`V_r` (mV), < ``v_peak``.
        t_ref: refractory period (s), >= 0.
        input_mode: ``"current"``, the default: a current in pA; or ``"jump"``: a
            voltage jump in mV.
    """


#: Naud et al. (2008), Table 1: the eight firing patterns. Units as in :class:`AdEx`
#: (pF, nS, mV, s, pA); ``"current"`` is the step current (pA) that shows the pattern.
NAUD_PRESETS: dict[str, dict[str, float]] = {
    "tonic": dict(c_m=200.0, g_leak=10.0, v_leak=-70.0, v_t=-50.0, delta_t=2.0, a=2.0,
                  tau_w=30e-3, b=0.0, v_reset=-58.0, current=500.0),
    "adapting": dict(c_m=200.0, g_leak=12.0, v_leak=-70.0, v_t=-50.0, delta_t=2.0, a=2.0,
                     tau_w=300e-3, b=60.0, v_reset=-58.0, current=500.0),
    "initial_burst": dict(c_m=130.0, g_leak=18.0, v_leak=-58.0, v_t=-50.0, delta_t=2.0,
                          a=4.0, tau_w=150e-3, b=120.0, v_reset=-50.0, current=400.0),
    "regular_bursting": dict(c_m=200.0, g_leak=10.0, v_leak=-58.0, v_t=-50.0, delta_t=2.0,
                             a=2.0, tau_w=120e-3, b=100.0, v_reset=-46.0, current=210.0),
    "delayed_accelerating": dict(c_m=200.0, g_leak=12.0, v_leak=-70.0, v_t=-50.0,
                                 delta_t=2.0, a=-10.0, tau_w=300e-3, b=0.0, v_reset=-58.0,
                                 current=300.0),
    "delayed_regular_bursting": dict(c_m=100.0, g_leak=10.0, v_leak=-65.0, v_t=-50.0,
                                     delta_t=2.0, a=-10.0, tau_w=90e-3, b=30.0,
                                     v_reset=-47.0, current=110.0),
    "transient": dict(c_m=100.0, g_leak=10.0, v_leak=-65.0, v_t=-50.0, delta_t=2.0, a=10.0,
                      tau_w=90e-3, b=100.0, v_reset=-47.0, current=180.0),
    "irregular": dict(c_m=100.0, g_leak=12.0, v_leak=-60.0, v_t=-50.0, delta_t=2.0, a=-11.0,
                      tau_w=130e-3, b=30.0, v_reset=-48.0, current=160.0),
}


@dataclass(frozen=True, eq=False)
class AdEx(_ExponentialIF):
    r"""Adaptive exponential integrate-and-fire neuron (Brette & Gerstner 2005).

    .. math::

        C\dot v &= g_L(E_L - v) + g_L\Delta_T e^{(v - V_T)/\Delta_T} - w + I,\\
        \tau_w\dot w &= a(v - E_L) - w

    (the *v* equation times 10³ for mV/s; *v* capped at ``v_peak`` inside the
    vector field, as NEST does). A spike when *v* crosses ``v_peak`` upward; then
    :math:`v \leftarrow V_r`, :math:`w \leftarrow w + b`, and *v* is held for
    ``t_ref``. State: *v* (mV), *w* (pA). Input: current *I* (pA), or a voltage
    jump (mV) with ``input_mode="jump"``. *w* is conditionally linear, so
    ``"exponential_euler"`` applies (exponential step for *w*, Euler for *v*).
    Defaults: the regular-spiking cell of Brette & Gerstner (2005).

    Presets: ``AdEx.preset(name)`` for the Naud et al. (2008) patterns
    (:data:`NAUD_PRESETS`: ``tonic``, ``adapting``, ``initial_burst``,
    ``regular_bursting``, ``delayed_accelerating``, ``delayed_regular_bursting``,
    ``transient``, ``irregular``), each shown under the step current
    ``AdEx.preset_current(name)`` (pA).

    Args:
        c_m: membrane capacitance (pF), > 0.
        g_leak: leak conductance (nS), > 0.
        v_leak: leak reversal potential :math:`E_L` (mV).
        v_t: threshold of the exponential :math:`V_T` (mV), < ``v_peak``.
        delta_t: slope factor :math:`\Delta_T` (mV), > 0.
        v_peak: spike cut-off potential (mV).
        v_reset: reset potential :math:`V_r` (mV), < ``v_peak``.
        t_ref: refractory period (s), >= 0.
        input_mode: ``"current"``, the default: a current in pA; or ``"jump"``: a
            voltage jump in mV.
        a: subthreshold adaptation conductance (nS), any sign.
        tau_w: adaptation time constant (s), > 0.
        b: spike-triggered adaptation increment (pA).
    """

    _adaptive: ClassVar[bool] = True

    a: Param = 4.0
    tau_w: Param = 144e-3
    b: Param = 80.5

    @classmethod
    def preset(cls, name: str, **overrides: Param) -> AdEx:
        """The Naud et al. (2008) parameter set ``name`` (see :data:`NAUD_PRESETS`)."""
        params = dict(_naud(name))
        params.pop("current")
        params.update(overrides)
        return cls(**params)

    @staticmethod
    def preset_current(name: str) -> float:
        """The step current (pA) under which preset ``name`` shows its pattern."""
        return _naud(name)["current"]

    @classmethod
    def presets(cls, names: tuple[str, ...] | None = None) -> AdEx:
        """All (or the named) Naud presets as ONE model with 1-D tensor parameters,
        in the order of ``names`` (default: :data:`NAUD_PRESETS` order), for a batched run.
        """
        names = tuple(NAUD_PRESETS) if names is None else tuple(names)
        rows = [_naud(n) for n in names]
        keys = [k for k in rows[0] if k != "current"]
        return cls(**{k: torch.tensor([r[k] for r in rows], dtype=torch.float64)
                      for k in keys})


def _naud(name: str) -> dict[str, float]:
    key = name.lower().replace(" ", "_").replace("-", "_")
    if key not in NAUD_PRESETS:
        raise ValueError(f"preset must be one of {sorted(NAUD_PRESETS)}, got {name!r}")
    return NAUD_PRESETS[key]


__all__ = ["EIF", "NAUD_PRESETS", "AdEx"]
