r"""Fixed-step explicit Runge-Kutta methods: forward Euler and classical RK4.

Both take one step of size *h* per segment and detect a spike at the segment
end only (the spike time sits on the grid), so their spike times are first
order in dt whatever the order of the state update.

* :class:`Euler` — :math:`x_{n+1} = x_n + h f(x_n, u_n)`: order 1, one
  evaluation of *f* per step; what norse, spikingjelly and most peers use.
* :class:`RK4` — the classical four-stage method: order 4 for the sub-threshold
  state, four evaluations of *f* per step.

Both are conditionally stable: on :math:`\dot x = \lambda x` with real
:math:`\lambda < 0`, Euler needs :math:`dt\,|\lambda| \le 2` and RK4
:math:`dt\,|\lambda| \le 2.785`; beyond, errors grow geometrically. Each knows its
limit on a model (:meth:`~neurosim.integrators.Integrator.stability_limit`,
:mod:`neurosim.stability`) and :func:`~neurosim.discretise` warns with a
:class:`~neurosim.errors.StabilityWarning` before running beyond it (for LIF with
``tau_mem = 1 ms``: Euler above 2 ms, RK4 above 2.785 ms).
"""

from __future__ import annotations

from ..models.base import NeuronModel
from .base import Advance, Flow, Integrator, end_of_segment, rhs


class _ExplicitFlow(Flow):
    precise = False

    def __init__(self, model: NeuronModel, dt: float, stepper) -> None:
        super().__init__(model, dt)
        self._stepper = stepper

    def advance(self, x, u, h, clamped, detect) -> Advance:
        hh = self.dt if h is None else h
        x_end = self._stepper(self.model, x, u, hh, clamped)
        return end_of_segment(self.model, x_end, h, detect, self.dt)


def _euler_step(model, x, u, h, clamped):
    f = rhs(model, x, u, clamped)
    return {k: x[k] + h * f[k] for k in x}


def _rk4_step(model, x, u, h, clamped):
    def shifted(k, a):
        return {n: x[n] + a * k[n] for n in x}

    k1 = rhs(model, x, u, clamped)
    k2 = rhs(model, shifted(k1, 0.5 * h), u, clamped)
    k3 = rhs(model, shifted(k2, 0.5 * h), u, clamped)
    k4 = rhs(model, shifted(k3, h), u, clamped)
    return {n: x[n] + (h / 6.0) * (k1[n] + 2.0 * k2[n] + 2.0 * k3[n] + k4[n]) for n in x}


class Euler(Integrator):
    """Forward Euler: ``x ← x + h·f(x, u)``. Order 1; exact for nothing but constants."""

    name = "euler"

    def stability_limit(self, model: NeuronModel):
        r""":math:`|1 + \lambda\,dt| \le 1` for each damped eigenvalue (see neurosim.stability)."""
        from ..stability import EULER_POLYNOMIAL, limit_of

        return limit_of(model, EULER_POLYNOMIAL)

    def prepare(self, model: NeuronModel, dt: float, dtype=None, device=None) -> Flow:
        return _ExplicitFlow(model, dt, _euler_step)

    def __repr__(self) -> str:
        return "Euler()"


class RK4(Integrator):
    """Classical 4th-order Runge-Kutta; spikes detected at the end of each step."""

    name = "rk4"

    def stability_limit(self, model: NeuronModel):
        r""":math:`|R_4(\lambda dt)| \le 1` (real axis: :math:`dt|\lambda| \le 2.785`)."""
        from ..stability import RK4_POLYNOMIAL, limit_of

        return limit_of(model, RK4_POLYNOMIAL)

    def prepare(self, model: NeuronModel, dt: float, dtype=None, device=None) -> Flow:
        return _ExplicitFlow(model, dt, _rk4_step)

    def __repr__(self) -> str:
        return "RK4()"


__all__ = ["Euler", "RK4"]
