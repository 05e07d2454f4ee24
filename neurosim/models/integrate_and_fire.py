r"""Leaky integrator and the integrate-and-fire family: LI, LIF, IF, ALIF.

All four share one set of equations (dimensionless voltage, time in seconds):

.. math::

    \tau_\mathrm{mem}\,\dot v &= \lambda\,(v_\mathrm{leak} - v) + r\,(i + I) \\
    \tau_\mathrm{syn}\,\dot i &= -i \quad(+\,I \text{ in current mode})\\
    \tau_\mathrm{adapt}\,\dot b &= -b

with :math:`\lambda = 1` (leaky: LI, LIF, ALIF) or 0 (perfect integrator: IF).
``i`` exists only when ``tau_syn`` is given and ``b`` only for ALIF. A spike is
emitted when :math:`v > v_\mathrm{th} + \beta_\mathrm{adapt} b`; then
``reset="value"`` sets :math:`v \leftarrow v_\mathrm{reset}`,
``reset="subtract"`` sets :math:`v \leftarrow v - (v_\mathrm{th} + \beta b - v_\mathrm{reset})`,
``reset="none"`` leaves *v*; ALIF's :math:`b \leftarrow b + 1`. For ``t_ref`` seconds
after a spike *v* is held (the synaptic current keeps decaying).

Input modes (``input_mode``):

* ``"current"`` (default without ``tau_syn``): *I* is a current held constant
  over each step. Without a synapse it enters the membrane equation; with one it
  drives the synaptic current, :math:`\tau_\mathrm{syn}\dot i = -i + I` (the NIR
  ``CubaLIF`` convention).
* ``"jump"`` (default with ``tau_syn``): the input of each step is added to *i*
  (or to *v* when there is no synapse) at the start of the step: a spike of
  weight *w* gives :math:`i \mathrel{+}= w`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import Param, check_choice, check_less, check_nonnegative, check_positive
from .base import LinearSystem, NeuronModel, Vars, resolve_input_mode

RESETS = ("value", "subtract", "none")


class _Membrane(NeuronModel):
    """Shared physics of LI, LIF, IF and ALIF (see the module docstring)."""

    _leaky: ClassVar[bool] = True
    _adaptive: ClassVar[bool] = False
    #: a trip wire for blow-ups, not a physiological bound: the voltage is dimensionless
    #: (threshold 1 by default), so 1e9 thresholds is far outside any healthy run
    state_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {"v": (-1e9, 1e9)}
    # units of the fields (voltage, resistance and input are dimensionless: v_th = 1)
    # and the plausible ranges of the time constants, in seconds: LIF(tau_mem=20) warns
    param_units: ClassVar[Mapping[str, str]] = {
        "tau_mem": "s", "tau_syn": "s", "t_ref": "s", "tau_adapt": "s", "v_leak": "1",
        "v_th": "1", "v_reset": "1", "r": "1", "beta_adapt": "1"}
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {
        "tau_mem": (1e-5, 5.0), "tau_syn": (1e-5, 5.0), "t_ref": (1e-6, 1.0),
        "tau_adapt": (1e-4, 100.0)}

    def _validate(self) -> None:
        optional = ("tau_syn",)
        self._init_params(optional)
        check_positive("tau_mem", self.tau_mem, "s")
        check_positive("tau_syn", self.tau_syn, "s")
        check_positive("r", self.r)
        if self.spiking:
            check_choice("reset", self.reset, RESETS)
            check_nonnegative("t_ref", self.t_ref, "s")
            check_less("v_reset", self.v_reset, "v_th", self.v_th)
        if self._adaptive:
            check_positive("tau_adapt", self.tau_adapt, "s")
            check_nonnegative("beta_adapt", self.beta_adapt)
        mode = resolve_input_mode(self, self.input_mode,
                                  "jump" if self.tau_syn is not None else "current")
        object.__setattr__(self, "input_mode", mode)
        self.param_shape()  # raises if tensor parameters do not broadcast together

    # -- structure -----------------------------------------------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        names = ("v",)
        if self.tau_syn is not None:
            names += ("i",)
        if self._adaptive:
            names += ("b",)
        return names

    @property
    def input_target(self) -> str | None:
        if self.input_mode == "jump":
            return "i" if self.tau_syn is not None else "v"
        return None

    def rest(self) -> dict[str, Param]:
        out = {name: 0.0 for name in self.state_names}
        out["v"] = self.v_leak if self._leaky else self.v_reset
        return out

    # -- dynamics ------------------------------------------------------------------------
    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        v = x["v"]
        drive = (self.v_leak - v) if self._leaky else torch.zeros_like(v)
        syn = self.tau_syn is not None
        current = self.input_mode == "current"
        if syn:
            drive = drive + self.r * x["i"]
        if current and not syn:
            drive = drive + self.r * u
        out = {"v": drive / self.tau_mem}
        if syn:
            di = -x["i"] + u if current else -x["i"]
            out["i"] = di / self.tau_syn
        if self._adaptive:
            out["b"] = -x["b"] / self.tau_adapt
        return out

    def linear_system(self) -> LinearSystem:
        names = self.state_names
        n = len(names)
        idx = {name: k for k, name in enumerate(names)}
        A: list[list[Param]] = [[0.0] * n for _ in range(n)]
        c: list[Param] = [0.0] * n
        g: list[Param] = [0.0] * n
        current = self.input_mode == "current"
        if self._leaky:
            A[0][0] = -1.0 / self.tau_mem
            c[0] = self.v_leak / self.tau_mem
        if self.tau_syn is not None:
            k = idx["i"]
            A[0][k] = self.r / self.tau_mem
            A[k][k] = -1.0 / self.tau_syn
            if current:
                g[k] = 1.0 / self.tau_syn
        elif current:
            g[0] = self.r / self.tau_mem
        if self._adaptive:
            k = idx["b"]
            A[k][k] = -1.0 / self.tau_adapt
        return LinearSystem(names, tuple(tuple(row) for row in A), tuple(c), tuple(g))

    # -- events --------------------------------------------------------------------------
    def threshold(self, x: Vars) -> torch.Tensor | Param:
        if self._adaptive:
            return self.v_th + self.beta_adapt * x["b"]
        return self.v_th

    def threshold_distance(self, x: Vars) -> torch.Tensor:
        return x["v"] - self.threshold(x)

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        out = dict(x)
        v = x["v"]
        if self.reset == "value":
            out["v"] = torch.zeros_like(v) + self.v_reset
        elif self.reset == "subtract":
            out["v"] = v - (self.threshold(x) - self.v_reset)
        if self._adaptive:
            out["b"] = x["b"] + 1.0
        return out


@dataclass(frozen=True, eq=False)
class LI(_Membrane):
    r"""Leaky integrator (no spikes): the usual readout layer.

    .. math:: \tau_\mathrm{mem}\dot v = v_\mathrm{leak} - v + r\,(i + I), \qquad
              \tau_\mathrm{syn}\dot i = -i

    Args:
        tau_mem: membrane time constant (s), > 0.
        tau_syn: synaptic time constant (s), > 0, or ``None`` for no synaptic current.
        v_leak: leak (resting) potential.
        r: input resistance (voltage per input unit), > 0.
        input_mode: ``"current"`` or ``"jump"``; ``None`` picks ``"jump"`` with a
            synapse and ``"current"`` without.
    """

    spiking: ClassVar[bool] = False
    clamped: ClassVar[tuple[str, ...]] = ()

    tau_mem: Param = 20e-3
    tau_syn: Param | None = None
    v_leak: Param = 0.0
    r: Param = 1.0
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._validate()


@dataclass(frozen=True, eq=False)
class LIF(_Membrane):
    r"""Leaky integrate-and-fire neuron, current-based, optional exponential synapse.

    .. math:: \tau_\mathrm{mem}\dot v = v_\mathrm{leak} - v + r\,(i + I), \qquad
              \tau_\mathrm{syn}\dot i = -i

    spike when :math:`v > v_\mathrm{th}`, then reset and hold *v* for ``t_ref``.
    With constant input *I* from :math:`v_\mathrm{reset}` and no synapse, the
    interspike interval is
    :math:`t_\mathrm{ref} + \tau\ln\frac{rI + v_\mathrm{leak} - v_\mathrm{reset}}
    {rI + v_\mathrm{leak} - v_\mathrm{th}}`.

    Args:
        tau_mem: membrane time constant (s), > 0.
        tau_syn: synaptic time constant (s), > 0, or ``None`` (input is a current
            straight into the membrane).
        v_leak: leak (resting) potential.
        v_th: firing threshold.
        v_reset: reset potential, < ``v_th``.
        r: input resistance, > 0.
        t_ref: refractory period (s), >= 0; *v* is held at its reset value.
        reset: ``"value"`` (to ``v_reset``), ``"subtract"`` (by ``v_th - v_reset``) or ``"none"``.
        input_mode: ``"current"`` or ``"jump"`` (see the module docstring).
    """

    tau_mem: Param = 20e-3
    tau_syn: Param | None = None
    v_leak: Param = 0.0
    v_th: Param = 1.0
    v_reset: Param = 0.0
    r: Param = 1.0
    t_ref: Param = 0.0
    reset: str = "value"
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._validate()


@dataclass(frozen=True, eq=False)
class IF(_Membrane):
    r"""Perfect (non-leaky) integrate-and-fire neuron.

    .. math:: \tau_\mathrm{mem}\dot v = r\,(i + I), \qquad \tau_\mathrm{syn}\dot i = -i

    spike when :math:`v > v_\mathrm{th}`; starts from ``v_reset``. With constant
    input the interspike interval is :math:`t_\mathrm{ref} + \tau(v_\mathrm{th} -
    v_\mathrm{reset})/(rI)`.

    The parameters are those of :class:`LIF` without ``v_leak``; ``tau_mem`` (s) scales the
    integration rate.
    """

    _leaky: ClassVar[bool] = False

    tau_mem: Param = 20e-3
    tau_syn: Param | None = None
    v_th: Param = 1.0
    v_reset: Param = 0.0
    r: Param = 1.0
    t_ref: Param = 0.0
    reset: str = "value"
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._validate()


@dataclass(frozen=True, eq=False)
class ALIF(_Membrane):
    r"""LIF with an adaptive threshold (Bellec et al. 2018), in continuous time.

    .. math:: \tau_\mathrm{mem}\dot v = v_\mathrm{leak} - v + r\,(i + I), \qquad
              \tau_\mathrm{adapt}\dot b = -b

    spike when :math:`v > v_\mathrm{th} + \beta_\mathrm{adapt} b`; at a spike *v*
    resets and :math:`b \leftarrow b + 1`, so each spike raises the threshold by
    ``beta_adapt``, decaying with ``tau_adapt``.

    The parameters are those of :class:`LIF`, plus:

    Args:
        tau_adapt: adaptation time constant (s), > 0.
        beta_adapt: threshold increase per spike (voltage units), >= 0.
    """

    _adaptive: ClassVar[bool] = True

    tau_mem: Param = 20e-3
    tau_syn: Param | None = None
    v_leak: Param = 0.0
    v_th: Param = 1.0
    v_reset: Param = 0.0
    r: Param = 1.0
    t_ref: Param = 0.0
    reset: str = "value"
    input_mode: str | None = None
    tau_adapt: Param = 200e-3
    beta_adapt: Param = 0.2

    def __post_init__(self) -> None:
        self._validate()
