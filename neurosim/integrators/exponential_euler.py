r"""Exponential Euler for conditionally linear equations (Brian2's ``exponential_euler``).

For a variable whose derivative is affine in itself when the other variables
are held, :math:`\dot x_i = A_i x_i + B_i` (with :math:`A_i`, :math:`B_i`
depending on the other variables and on the input), one step of length *h*
freezes :math:`A_i` and :math:`B_i` at the start of the step and solves the
linear equation exactly:

.. math::

    x_i \leftarrow \Big(x_i + \frac{B_i}{A_i}\Big)e^{A_i h} - \frac{B_i}{A_i}
    = x_i + h\,f_i(x)\,\varphi_1(A_i h), \qquad
    \varphi_1(z) = \frac{e^z - 1}{z},\ \varphi_1(0) = 1 .

The right-hand form is what is computed: ``expm1`` keeps it accurate for small
:math:`A_i h`, it never divides by a small :math:`A_i`, and it is forward Euler
where :math:`A_i = 0`. All variables are updated from the same start state.
Variables that are not conditionally linear (e.g. the membrane of AdEx, EIF,
QIF and Izhikevich) take a forward-Euler step. The method is of order 1, but
it is exact for linear equations with constant coefficients and stays stable
for stiff linear parts (the gating variables of Hodgkin-Huxley, a fast
conductance): the standard integrator for Hodgkin-Huxley-type models.

Which variables are conditionally linear, and their rates :math:`A_i`, come from
the model's generic interface (:attr:`~neurosim.models.NeuronModel.conditionally_linear`,
:meth:`~neurosim.models.NeuronModel.linear_rates`); the integrator knows no model.
Spikes are detected at the end of each step (on the grid), as with Euler and RK4.
Cost per step: one evaluation of *f* plus the rates (closed forms, or one extra
evaluation of *f* per conditionally linear variable by default).
"""

from __future__ import annotations

import torch

from ..models.base import NeuronModel
from .base import Advance, Flow, Integrator, end_of_segment, rhs


def phi1(z: torch.Tensor) -> torch.Tensor:
    r""":math:`\varphi_1(z) = (e^z - 1)/z` with :math:`\varphi_1(0) = 1`, accurate for small |z|."""
    zero = z == 0
    safe = torch.where(zero, torch.ones_like(z), z)
    return torch.where(zero, torch.ones_like(z), torch.expm1(safe) / safe)


def _exponential_euler_step(model: NeuronModel, names, x, u, h, clamped):
    f = rhs(model, x, u, clamped)
    rates = model.linear_rates(x, u, f) if names else {}
    out = {}
    for k in x:
        if k in rates:
            out[k] = x[k] + h * f[k] * phi1(rates[k] * h)
        else:
            out[k] = x[k] + h * f[k]
    return out


class _ExponentialEulerFlow(Flow):
    precise = False

    def __init__(self, model: NeuronModel, dt: float) -> None:
        super().__init__(model, dt)
        self.names = tuple(model.conditionally_linear)

    def advance(self, x, u, h, clamped, detect) -> Advance:
        hh = self.dt if h is None else h
        x_end = _exponential_euler_step(self.model, self.names, x, u, hh, clamped)
        return end_of_segment(self.model, x_end, h, detect, self.dt)


class ExponentialEuler(Integrator):
    r"""Exponential Euler: :math:`x_i \leftarrow x_i + h f_i \varphi_1(A_i h)` (see module docs).

    Exact for linear equations with constant coefficients, order 1 otherwise;
    the natural choice for Hodgkin-Huxley gating variables. Raises
    :class:`ValueError` for a model that declares no conditionally linear variable.
    """

    name = "exponential_euler"

    def stability_limit(self, model: NeuronModel):
        """Euler's limit on the Jacobian block of the variables that are *not* conditionally
        linear (those take a forward-Euler step); ``None`` when every variable is (the
        frozen linear update is unconditionally stable)."""
        from ..stability import EULER_POLYNOMIAL, limit_of

        rest = tuple(k for k in model.state_names if k not in model.conditionally_linear)
        if not rest:
            return None
        return limit_of(model, EULER_POLYNOMIAL, rest)

    def prepare(self, model: NeuronModel, dt: float, dtype=None, device=None) -> Flow:
        if not model.conditionally_linear:
            raise ValueError(
                f"ExponentialEuler needs conditionally linear variables, but "
                f"{type(model).__name__} declares none (conditionally_linear=()); "
                f"use method='euler', 'rk4' or 'adaptive'"
            )
        unknown = set(model.conditionally_linear) - set(model.state_names)
        if unknown:
            raise ValueError(f"conditionally_linear of {type(model).__name__} names unknown "
                             f"variables {sorted(unknown)}; state: {model.state_names}")
        return _ExponentialEulerFlow(model, dt)

    def __repr__(self) -> str:
        return "ExponentialEuler()"


__all__ = ["ExponentialEuler", "phi1"]
