r"""Adaptive Dormand-Prince 5(4) integration with per-element error control.

Inside every output step ``dt`` each element (neuron, batch entry, sweep
sample) advances with its own sub-step size *k*, chosen by the embedded error
estimate of the Dormand-Prince pair (Dormand & Prince 1980; the method behind
``scipy``'s ``RK45`` and ``torchdiffeq``'s ``dopri5``):

.. math:: \mathrm{err} = \sqrt{\tfrac1n\sum_j \Big(\frac{\hat x_j - x_j}
          {\mathrm{atol} + \mathrm{rtol}\max(|x_j|, |x^\mathrm{new}_j|)}\Big)^2},
          \qquad k_{n+1} = k_n\cdot\mathrm{clip}(0.9\,\mathrm{err}_n^{-1/5}, 0.2, 5).

A sub-step is accepted when err ≤ 1. From the second accepted sub-step of a step on, the
smaller of that and Gustafsson's (1994) predictive size is taken,

.. math:: k_{n+1} = k_n\cdot\mathrm{clip}\Big(0.9\,\frac{k_n}{k_{n-1}}
          \Big(\frac{\mathrm{err}_{n-1}}{\mathrm{err}_n^2}\Big)^{1/5}, 0.2, 5\Big)

(:math:`k_{n-1}`, :math:`\mathrm{err}_{n-1}`: the previous accepted sub-step), which follows
an error growing from sub-step to sub-step, as on a spike's upswing: there the plain rule
grew the step after each accepted sub-step and had the next one rejected (AdEx: ~145
sub-steps per spike, half of them rejected; ~72 with the predictive size).

Every element has its own sub-step size, so one fast neuron does not shrink
everyone's step (as in torchode, unlike a single global step size). After every
accepted sub-step the threshold is checked; a crossing is located inside that
sub-step by Newton iteration on Runge-Kutta steps of the right length from its
start (so the crossing state has the accuracy of an accepted step), the reset
is applied, and integration continues in the same ``dt``, as NEST's ``aeif_*``
and Brian2's GSL methods do.

It works for any model with :meth:`~neurosim.models.NeuronModel.derivatives`,
linear or not. Cost: 6 evaluations of *f* per accepted sub-step (first same as
last), plus rejected ones; the number of sub-steps grows like
``tol^{-1/5}``.

**Budget and hopeless steps.** Each element may attempt at most ``max_steps``
sub-steps (accepted or rejected) within one ``dt``, over all the spike rounds of
that step; by default :math:`\max(1000,\ dt / 1\,\mu s)`. A healthy spike of
an exponential or quadratic model costs at most about 150 sub-steps at the default
tolerances (AdEx: about 75; its upswing needs sub-steps near 1e-13 s), so the default allows
thousands of spikes per second per element — several times the fastest firing
of any neuron — and a run beyond it (AdEx driven with 1e6 pA fires at ~90 kHz)
stops within about a thousand sub-steps with :class:`~neurosim.errors.StiffnessError`
instead of grinding on. An explicit pair is also limited by stability: with the
spectral radius :math:`\rho` of the damped dynamics, a sub-step longer than
:math:`3.31/\rho` is rejected, so a step needs at least :math:`dt\,\rho/3.31`
sub-steps (:func:`neurosim.stability.substeps_needed`). :meth:`Adaptive.prepare`
refuses, before running, a model whose estimate alone exceeds the budget
(``LIF(tau_mem=1e-9)`` at ``dt = 1 ms`` needs 3e5): such a model wants
``method="exact"`` (linear dynamics, any dt), a smaller ``dt`` or an implicit
method.
States narrower than float64 are integrated in float64 inside the step and
rounded back at its end: the error control and the sub-step times need that
resolution (the upswing of an exponential or quadratic spike to its cut-off
takes sub-steps far below the float32 resolution of ``dt``).
"""

from __future__ import annotations

import functools
import math

import torch

from ..errors import StiffnessError
from ..events import find_crossing, take, take_model
from ..models.base import NeuronModel, subset_model
from .base import Advance, Flow, Integrator, rhs, threshold_slope

# Dormand-Prince 5(4) Butcher tableau
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B = _A[6] + (0.0,)
# difference between the 5th- and 4th-order weights: the error estimate
_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


@functools.lru_cache(maxsize=16)
def _coefficients(dtype: torch.dtype, device: torch.device
                  ) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The tableau rows and error weights as tensors of the given dtype and device."""
    rows = [torch.tensor(a, dtype=dtype, device=device) for a in _A]
    return rows, torch.tensor(_E, dtype=dtype, device=device)


def _dopri_step(model, x, f0, u, k, clamped):
    """One DOPRI5 step of per-element size ``k``: returns (x_new, f_new, error vector dict).

    The variables are stacked into one tensor ``[n_vars, *shape]`` so that each
    stage costs a few tensor operations whatever the number of variables.
    """
    names = list(x)
    X = torch.stack([x[n] for n in names])
    rows, e_w = _coefficients(X.dtype, X.device)
    stages = [torch.stack([f0[n] for n in names])]
    for i in range(1, 7):
        incr = torch.tensordot(rows[i], torch.stack(stages), dims=1)
        Xi = X + k * incr
        xi = {n: Xi[j] for j, n in enumerate(names)}
        if i == 6:
            x_new = xi  # the 7th stage point is the 5th-order solution (FSAL)
        fi = rhs(model, xi, u, clamped)
        stages.append(torch.stack([fi[n] for n in names]))
    E = k * torch.tensordot(e_w, torch.stack(stages), dims=1)
    err = {n: E[j] for j, n in enumerate(names)}
    f_new = {n: stages[6][j] for j, n in enumerate(names)}
    return x_new, f_new, err


def over_budget(model: str, max_steps: int, dt: float, element: int, rtol: float,
                atol: float, step: int | None = None) -> StiffnessError:
    """The error for an element that used up its sub-step budget within one step."""
    where = f"element {element}" + ("" if step is None else f", step {step}")
    return StiffnessError(
        f"Adaptive integrator exceeded max_steps={max_steps} sub-steps within one "
        f"dt={dt:g} s ({where}; rtol={rtol}, atol={atol}): the {model} dynamics are too "
        f"fast for this step (stiff, or firing far above physiological rates: each spike "
        f"costs ~100 sub-steps). Check the input and parameters; use method='exact' where "
        f"the model is linear, a smaller dt, or raise max_steps")


class _AdaptiveFlow(Flow):
    precise = True

    def __init__(self, model: NeuronModel, dt: float, integ: Adaptive) -> None:
        super().__init__(model, dt)
        self.rtol, self.atol = integ.rtol, integ.atol
        self.max_steps = integ.budget(dt)
        self.names = model.state_names
        #: sub-steps attempted per element in the current step (over its rounds)
        self._used: torch.Tensor | None = None

    def begin_step(self) -> None:
        self._used = None

    def _norm(self, err, x, x_new):
        """RMS of the scaled error per element; step-size control carries no gradient."""
        total = 0.0
        for n in self.names:
            scale = self.atol + self.rtol * torch.maximum(x[n].detach().abs(),
                                                          x_new[n].detach().abs())
            total = total + (err[n].detach() / scale) ** 2
        out = torch.sqrt(total / len(self.names))
        return torch.where(torch.isfinite(out), out, torch.full_like(out, float("inf")))

    def advance(self, x, u, h, clamped, detect) -> Advance:
        dtype = x[self.names[0]].dtype
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            return self._advance(x, u, h, clamped, detect)
        # narrow states are integrated in float64: the error control and the sub-step
        # times need its resolution (an AdEx upswing needs sub-steps of ~1e-13 s)
        wide = torch.float64
        adv = self._advance({k: v.to(wide) for k, v in x.items()}, u.to(wide),
                            None if h is None else h.to(wide), clamped, detect)
        return Advance({k: v.to(dtype) for k, v in adv.x.items()}, adv.s.to(dtype),
                       adv.crossed, None if adv.d is None else adv.d.to(dtype))

    def _advance(self, x, u, h, clamped, detect) -> Advance:
        model = self.model
        ref = x[self.names[0]]
        if h is None:
            h = torch.full_like(ref, self.dt)
        s = torch.zeros_like(h)
        k = h.clone()
        active = h > 0
        crossed = torch.zeros_like(active)
        d = None
        if detect is not None:
            d = model.threshold_distance(x)
            crossed = active & detect & (d > 0)  # above threshold at the start: spike at s = 0
            active = active & ~crossed
        f = rhs(model, x, u, clamped)
        x_cross = {n: x[n] for n in self.names}
        s_cross = torch.zeros_like(h)
        d_cross = d
        tiny = 16 * torch.finfo(h.dtype).eps * self.dt
        # the last accepted sub-step of each element (0: none yet in this call) and its
        # err^(-1/5)
        k_acc = torch.zeros_like(h)
        q_acc = torch.ones_like(h)
        used = torch.zeros(h.shape, dtype=torch.int64) if self._used is None else self._used
        spent = int(used.max()) if used.numel() else 0  # an upper bound of any element's count
        for _ in range(self.max_steps + 1):
            if not bool(active.any()):
                break
            used = used + active
            spent += 1
            if spent > self.max_steps and bool((used > self.max_steps).any()):
                self._used = None
                raise self._over_budget(int((used > self.max_steps).reshape(-1).nonzero()[0]))
            remaining = h - s
            last = k >= remaining
            kk = torch.where(active, torch.where(last, remaining, k), torch.zeros_like(k))
            x_new, f_new, err = _dopri_step(model, x, f, u, kk, clamped)
            norm = self._norm(err, x, x_new)
            accept = active & (norm <= 1.0)
            if detect is not None:
                d_new = model.threshold_distance(x_new)
                hit = accept & detect & (d_new > 0)
                if bool(hit.any()):
                    s_hit, x_hit = self._locate(hit, x, f, u, kk, clamped, d_new)
                    x_cross = {n: x_cross[n].index_put((hit,), x_hit[n]) for n in self.names}
                    s_cross = s_cross.index_put((hit,), s[hit] + s_hit)
                    d_cross = torch.where(hit, d_new, d_cross)
                    crossed = crossed | hit
                    accept = accept & ~hit
                    active = active & ~hit
            x = {n: torch.where(accept, x_new[n], x[n]) for n in self.names}
            f = {n: torch.where(accept, f_new[n], f[n]) for n in self.names}
            s = torch.where(accept, torch.where(last, h, s + kk), s)
            q = norm.clamp(min=1e-10) ** -0.2
            factor = torch.clamp(0.9 * q, 0.2, 5.0)
            # from the second accepted sub-step on, Gustafsson's predictive factor as well
            # (the smaller one wins): it follows an error that grows from step to step
            kd = kk.detach()
            seen = accept & (k_acc > 0)
            pred = torch.clamp(0.9 * (kd / torch.where(seen, k_acc, 1.0)) * (q * q / q_acc),
                               0.2, 5.0)
            factor = torch.where(seen, torch.minimum(factor, pred), factor)
            k_acc = torch.where(accept, kd, k_acc)
            q_acc = torch.where(accept, q, q_acc)
            k = torch.where(active, kk * factor, k)
            active = active & (s < h)
            if bool((active & (k < tiny)).any()):
                raise RuntimeError(
                    f"Adaptive integrator: step size fell below {tiny:.3g} s "
                    f"(rtol={self.rtol}, atol={self.atol}); the model may be diverging "
                    f"or too stiff for an explicit method"
                )
        self._used = used
        if detect is None:
            return Advance(x, h, crossed, None)
        d_end = model.threshold_distance(x)
        x_stop = {n: torch.where(crossed, x_cross[n], x[n]) for n in self.names}
        s_stop = torch.where(crossed, s_cross, h)
        d_out = torch.where(crossed, d_cross, d_end)
        return Advance(x_stop, s_stop, crossed, d_out)

    def _over_budget(self, element: int) -> StiffnessError:
        return over_budget(type(self.model).__name__, self.max_steps, self.dt, element,
                           self.rtol, self.atol)

    def _locate(self, mask, x, f, u, k, clamped, d_new):
        """Crossing time inside the accepted sub-step ``[0, k]`` for elements in ``mask``."""
        model = subset_model(self.model, mask)
        x0 = {n: x[n][mask] for n in self.names}
        f0 = {n: f[n][mask] for n in self.names}
        um = u[mask]

        n = int(mask.sum())

        def evaluate(sig, idx):
            m = take_model(model, idx, n)
            xs, fs, _ = _dopri_step(m, {k: take(v, idx) for k, v in x0.items()},
                                    {k: take(v, idx) for k, v in f0.items()}, take(um, idx),
                                    sig, clamped)
            return xs, m.threshold_distance(xs), threshold_slope(m, xs, fs)

        d0 = model.threshold_distance(x0)
        return find_crossing(evaluate, k[mask], d_new[mask], d0)


class Adaptive(Integrator):
    r"""Dormand-Prince 5(4) with per-element error control and precise spike times.

    Args:
        rtol: relative tolerance per sub-step.
        atol: absolute tolerance per sub-step, in the units of each state variable.
        max_steps: the most sub-steps (accepted or rejected) one element may attempt
            within one ``dt``, over all its spike rounds; ``None`` (default):
            :math:`\max(1000,\ dt / 1\,\mu s)` (see the module docstring).

    Raises:
        StiffnessError: from :meth:`prepare` when the model's stiffness alone needs more
            sub-steps per step than ``max_steps``; while running, when an element uses
            up ``max_steps`` within one step.
    """

    name = "adaptive"
    precise = True  # spikes are always located inside the step
    #: the automatic budget: at least this many sub-steps per step ...
    MIN_BUDGET = 1000
    #: ... or one per this many seconds of dt
    BUDGET_INTERVAL = 1e-6

    def __init__(self, rtol: float = 1e-6, atol: float = 1e-9,
                 max_steps: int | None = None) -> None:
        from .._checks import positive_number

        rtol = positive_number("rtol", rtol)  # finite and > 0: inf or "1e-3" are refused
        atol = positive_number("atol", atol)
        if max_steps is not None and (isinstance(max_steps, bool)
                                      or not isinstance(max_steps, int) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
        self.rtol, self.atol, self.max_steps = rtol, atol, max_steps

    def budget(self, dt: float) -> int:
        """Sub-steps one element may attempt within one step of ``dt`` seconds."""
        if self.max_steps is not None:
            return self.max_steps
        return max(self.MIN_BUDGET, math.ceil(round(dt / self.BUDGET_INTERVAL, 6)))

    def check_stiffness(self, model: NeuronModel, dt: float) -> None:
        """Refuse (:class:`StiffnessError`) a model whose stiffness alone needs more sub-steps
        per step than the budget (:func:`neurosim.stability.substeps_needed`)."""
        from ..stability import substeps_needed, suggestion

        need = substeps_needed(model, dt)
        budget = self.budget(dt)
        if need is None or need[0] <= budget:
            return
        n, rho = need
        raise StiffnessError(
            f"{type(model).__name__} is too stiff for method='adaptive' at dt={dt:g} s: its "
            f"fastest decay rate |lambda| = {rho:.3g} 1/s gives dt*|lambda| = {dt * rho:.3g}, "
            f"so the explicit Dormand-Prince pair needs at least {n:.3g} sub-steps per step "
            f"(stable only for sub-steps <= 3.31/|lambda|), beyond its budget "
            f"max_steps={budget}. Use {suggestion(model)}, a smaller dt, or an implicit "
            f"(stiff) solver; refused before running")

    def prepare(self, model: NeuronModel, dt: float, dtype=None, device=None) -> Flow:
        self.check_stiffness(model, dt)
        return _AdaptiveFlow(model, dt, self)

    def __repr__(self) -> str:
        return f"Adaptive(rtol={self.rtol}, atol={self.atol}, max_steps={self.max_steps})"
