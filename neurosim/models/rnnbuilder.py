r"""The rnnbuilder neuron family as continuous-time models (time constants in seconds).

rnnbuilder defines its neurons as discrete updates with :math:`\beta = e^{-1/\tau}`
and τ counted in steps (threshold 1). neurosim states the ODE whose exact
discretisation they are, so that the time step becomes a free choice:

* :class:`NoReset`: :math:`\tau\dot v = v_\mathrm{leak} - v + rI`, a spike in every
  step in which :math:`v > v_\mathrm{th}` (level rule), no reset. rnnbuilder's
  ``m = βm + x; s = H(m - 1)`` is its exact discretisation with the input
  pre-scaled by :math:`1/(1-\beta)` (jump input: ``input_mode="jump"``).
* :class:`Cooldown`: :math:`\tau\dot v = g(I) - v` with the positive drive
  :math:`g(I) = \mathrm{ELU}(I - I_0) + 1` (:math:`= e^{I - I_0}` below the
  offset), a spike in every step in which :math:`\sigma(v - v_\mathrm{th}) > 0`,
  where :math:`\sigma = \pm1` (rnnbuilder inverts half of the neurons: they spike
  while *below* threshold; :meth:`Cooldown.alternating`). No reset.
* :class:`Discontinuous`: the limit τ → 0: the membrane *is* the input of the
  step, :math:`v = I`, and a spike is emitted in every step with :math:`I > v_\mathrm{th}`.
* Bellec et al.'s adaptive neuron is :class:`~neurosim.ALIF` (threshold
  :math:`v_\mathrm{th} + \beta_\mathrm{adapt} b`, :math:`b \mathrel{+}= 1` per spike,
  :math:`\tau_\mathrm{adapt}\dot b = -b`); rnnbuilder's :math:`\gamma` is ``beta_adapt``.

All three emit at most one spike per step (a neuron still above threshold
after a spike emits no further spike in that step), so their spike counts
depend on dt by design, as in the discrete originals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch

from .._checks import Param, check_choice, check_positive, describe
from ._common import FixedThreshold
from .base import LinearSystem, Vars
from .integrate_and_fire import _Membrane


@dataclass(frozen=True, eq=False)
class NoReset(_Membrane):
    r"""Leaky integrator that spikes while above threshold and never resets.

    .. math:: \tau_\mathrm{mem}\dot v = v_\mathrm{leak} - v + r\,(i + I), \qquad
              \tau_\mathrm{syn}\dot i = -i

    A spike in each step in which :math:`v > v_\mathrm{th}` (checked after every
    step, and at its start with precise methods); *v* is never reset. Linear
    between spikes: ``"exact"`` applies.

    Args: as :class:`~neurosim.LIF` without ``v_reset``, ``t_ref`` and ``reset``.
    """

    reset: ClassVar[str] = "none"
    t_ref: ClassVar[float] = 0.0
    v_reset: ClassVar[float] = -math.inf

    tau_mem: Param = 20e-3
    tau_syn: Param | None = None
    v_leak: Param = 0.0
    v_th: Param = 1.0
    r: Param = 1.0
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._validate()


def _check_sign(sign: Param) -> None:
    values = sign.detach() if isinstance(sign, torch.Tensor) else torch.tensor(sign)
    if not bool(((values == 1) | (values == -1)).all()):
        raise ValueError(f"sign must be +1 or -1 (per neuron), got {describe(sign)}")


@dataclass(frozen=True, eq=False)
class Cooldown(FixedThreshold):
    r"""rnnbuilder's cooldown neuron in continuous time.

    .. math:: \tau_\mathrm{mem}\dot v = g(I) - v, \qquad
              g(I) = \mathrm{ELU}(I - I_0) + 1 > 0

    A spike in each step in which :math:`\sigma\,(v - v_\mathrm{th}) > 0`; no reset.
    With :math:`\sigma = -1` the neuron fires while its trace is *below*
    threshold. *v* is linear in itself with the input-dependent drive held over
    the step, so ``"exponential_euler"`` integrates it exactly; ``"exact"`` does
    not apply (the drive is nonlinear in *I*).

    Args:
        tau_mem: time constant (s), > 0.
        v_th: threshold.
        offset: input offset :math:`I_0`.
        sign: +1 to spike above threshold, -1 below; a float or per-neuron tensor.
        input_mode: only ``"current"``.
    """

    clamped: ClassVar[tuple[str, ...]] = ()
    param_units: ClassVar[Mapping[str, str]] = {"tau_mem": "s", "v_th": "1", "offset": "1",
                                                "sign": "1"}
    param_ranges: ClassVar[Mapping[str, tuple[float, float]]] = {"tau_mem": (1e-5, 5.0)}

    tau_mem: Param = 20e-3
    v_th: Param = 1.0
    offset: Param = 0.0
    sign: Param = 1.0
    input_mode: str | None = None

    def __post_init__(self) -> None:
        self._init_params()
        check_positive("tau_mem", self.tau_mem, "s")
        _check_sign(self.sign)
        mode = "current" if self.input_mode is None else self.input_mode
        check_choice("input_mode", mode, ("current",))
        object.__setattr__(self, "input_mode", mode)
        self.param_shape()

    @classmethod
    def alternating(cls, n: int, **kwargs: Param) -> Cooldown:
        """``n`` neurons whose second half is inverted (sign -1), as in rnnbuilder."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        sign = torch.ones(n)
        sign[n // 2:] = -1.0
        return cls(sign=sign, **kwargs)

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v",)

    @property
    def conditionally_linear(self) -> tuple[str, ...]:
        return ("v",)

    def drive(self, u: torch.Tensor) -> torch.Tensor:
        """The positive drive :math:`g(I) = \\mathrm{ELU}(I - I_0) + 1`."""
        return torch.nn.functional.elu(u - self.offset) + 1.0

    def rest(self) -> dict[str, Param]:
        offset = torch.as_tensor(self.offset, dtype=torch.float64)
        v = torch.nn.functional.elu(-offset) + 1.0
        return {"v": float(v) if v.dim() == 0 else v}

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"v": (self.drive(u) - x["v"]) / self.tau_mem}

    def linear_rates(self, x: Vars, u: torch.Tensor, f: Vars | None = None
                     ) -> dict[str, torch.Tensor]:
        return {"v": torch.zeros_like(x["v"]) - 1.0 / self.tau_mem}

    def threshold_distance(self, x: Vars) -> torch.Tensor:
        return self.sign * super().threshold_distance(x)


@dataclass(frozen=True, eq=False)
class Discontinuous(FixedThreshold):
    r"""The τ → 0 limit of a leaky neuron: spikes from the input alone.

    The state *v* holds the input of the current step (:math:`v \leftarrow I`
    at the start of each step, :math:`\dot v = 0` within it), and a spike is
    emitted in each step with :math:`I > v_\mathrm{th}`: rnnbuilder's
    ``s = H(x - 1)``. The surrogate gradient flows to the input. Works with every
    integrator (its flow is the identity).

    Args:
        v_th: threshold on the input.
    """

    clamped: ClassVar[tuple[str, ...]] = ()
    param_units: ClassVar[Mapping[str, str]] = {"v_th": "1"}

    v_th: Param = 1.0

    def __post_init__(self) -> None:
        self._init_params()
        self.param_shape()

    @property
    def state_names(self) -> tuple[str, ...]:
        return ("v",)

    @property
    def input_target(self) -> str | None:
        return "v"

    def apply_input(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"v": u + torch.zeros_like(x["v"])}

    def derivatives(self, x: Vars, u: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"v": torch.zeros_like(x["v"])}

    def linear_system(self) -> LinearSystem:
        return LinearSystem(("v",), ((0.0,),), (0.0,), (0.0,))


__all__ = ["Cooldown", "Discontinuous", "NoReset"]
