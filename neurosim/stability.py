r"""Stability limits of the explicit integrators, and the stiffness of a model.

An explicit one-step method applied to the linear test equation
:math:`\dot x = \lambda x` multiplies the state by its *stability polynomial*
:math:`R(z)`, :math:`z = \lambda\,dt`, every step; the step is stable when
:math:`|R(z)| \le 1` for every eigenvalue :math:`\lambda` of the dynamics with
:math:`\mathrm{Re}\,\lambda < 0` (Hairer & Wanner, *Solving ODEs II*, IV.2):

=================  ===============================================  =========================
method             :math:`R(z)`                                     real-axis interval
=================  ===============================================  =========================
forward Euler      :math:`1 + z`                                    :math:`dt|\lambda| \le 2`
classical RK4      :math:`\sum_{k \le 4} z^k/k!`                    :math:`dt|\lambda| \le 2.785`
Dormand–Prince 5   :math:`\sum_{k \le 5} z^k/k! + z^6/600`          :math:`dt|\lambda| \le 3.307`
=================  ===============================================  =========================

(the intervals are computed here from the polynomials, by bisection). For
complex :math:`\lambda` the limit is the first :math:`dt` at which
:math:`|R(\lambda\,dt)|` exceeds 1 (for Euler :math:`-2\,\mathrm{Re}\lambda/|\lambda|^2`).
Exact integration is exact for the linear part and exponential Euler solves
the conditionally linear variables exactly with frozen coefficients: neither has a
limit on them (exponential Euler takes a forward-Euler step for the other variables,
and its limit is Euler's on the Jacobian block of those variables). The adaptive
integrator has no fixed limit, but an explicit pair needs at least
:math:`dt\,\rho/3.31` sub-steps per step when the spectral radius of the damped
part is :math:`\rho`: :func:`substeps_needed` is what it uses to refuse hopeless runs.

**Where the eigenvalues come from.** For a model linear between spikes, from the
matrix *A* of :meth:`~neurosim.models.NeuronModel.linear_system` (exact). For a
nonlinear model, from the Jacobian of :meth:`~neurosim.models.NeuronModel.derivatives`
(automatic differentiation, zero input) at the model's
:meth:`~neurosim.models.NeuronModel.stiff_states`: by default its resting state,
i.e. the linearisation of the subthreshold dynamics. Growing modes
(:math:`\mathrm{Re}\,\lambda \ge 0`, such as the upswing of an exponential or
quadratic spike) limit no step size and are ignored; so for AdEx, EIF, QIF and
Izhikevich the limit is that of the dynamics near rest, which says nothing about
how well the spike itself is resolved. Hodgkin–Huxley also declares the state at
the peak of a spike, where the open sodium conductance makes the membrane about
ten times stiffer than at rest: its forward-Euler limit is about 0.055 ms at the
default parameters (measured: 0.05 ms runs, 0.1 ms diverges). A model whose
derivatives cannot be differentiated declares no limit (no warning).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .errors import StabilityWarning

#: coefficients of the stability polynomials, lowest degree first
EULER_POLYNOMIAL = (1.0, 1.0)
RK4_POLYNOMIAL = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24)
DOPRI5_POLYNOMIAL = (1.0, 1.0, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 600)


def _poly(coeffs: tuple[float, ...], z: torch.Tensor) -> torch.Tensor:
    out = torch.zeros_like(z)
    for c in reversed(coeffs):
        out = out * z + c
    return out


@functools.lru_cache(maxsize=8)
def real_interval(coeffs: tuple[float, ...]) -> float:
    """The largest ``s`` with ``|R(-x)| <= 1`` for all ``0 <= x <= s`` (by scan and bisection)."""
    x = torch.linspace(0.0, 10.0, 100_001, dtype=torch.float64)
    bad = _poly(coeffs, -x).abs() > 1.0 + 1e-12
    first = int(bad.nonzero()[0]) if bool(bad.any()) else x.numel() - 1
    lo, hi = float(x[first - 1]), float(x[first])
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if abs(float(_poly(coeffs, torch.tensor(-mid, dtype=torch.float64)))) > 1.0 + 1e-12:
            hi = mid
        else:
            lo = mid
    return lo


def _bisect_rays(coeffs: tuple[float, ...], unit: torch.Tensor) -> torch.Tensor:
    """For unit complex numbers ``unit``, the first ``s`` where ``|R(s * unit)| > 1``."""
    s = torch.linspace(0.0, 4.0, 401, dtype=torch.float64)[1:]
    bad = _poly(coeffs, unit[:, None] * s[None, :]).abs() > 1.0 + 1e-12
    has = bad.any(dim=1)
    first = bad.to(torch.int8).argmax(dim=1)
    hi = torch.where(has, s[first], torch.full(unit.shape, math.inf, dtype=torch.float64))
    lo = torch.where(first > 0, s[(first - 1).clamp(min=0)],
                     torch.zeros(unit.shape, dtype=torch.float64))
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        worse = _poly(coeffs, unit * torch.where(has, mid, lo)).abs() > 1.0 + 1e-12
        hi = torch.where(has & worse, mid, hi)
        lo = torch.where(has & ~worse, mid, lo)
    return torch.where(has, lo, torch.full_like(lo, math.inf))


@functools.lru_cache(maxsize=8)
def _ray_table(coeffs: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(theta, S)``: the stability boundary ``|lambda| dt = S`` along rays of angle
    ``theta`` in ``[pi/2, pi]`` (4097 angles; the region is symmetric about the real axis)."""
    theta = torch.linspace(math.pi / 2, math.pi, 4097, dtype=torch.float64)
    unit = torch.polar(torch.ones_like(theta), theta)
    return theta, _bisect_rays(coeffs, unit)


def max_stable_dt(coeffs: tuple[float, ...], eigs: torch.Tensor) -> torch.Tensor:
    r"""The largest stable step (s) for each eigenvalue (1/s) in ``eigs`` (complex tensor).

    ``inf`` for eigenvalues with :math:`\mathrm{Re}\,\lambda \ge 0` (no limit). A real
    eigenvalue gets :func:`real_interval` / :math:`|\lambda|`; a complex one
    :math:`S(\theta)/|\lambda|`, where :math:`S(\theta)` is the distance to the boundary
    of the stability region along the ray of angle :math:`\theta = \arg\lambda`,
    tabulated once per method at 4097 angles and interpolated (for forward Euler the
    closed form :math:`-2\,\mathrm{Re}\lambda/|\lambda|^2`).
    """
    eigs = eigs.to(torch.complex128).reshape(-1)
    out = torch.full(eigs.shape, math.inf, dtype=torch.float64)
    damped = eigs.real < 0
    real = damped & (eigs.imag == 0)
    out[real] = real_interval(coeffs) / eigs[real].real.abs()
    cplx = damped & ~real
    if bool(cplx.any()):
        lam = eigs[cplx]
        rho = lam.abs()
        if tuple(coeffs) == EULER_POLYNOMIAL:
            out[cplx] = -2.0 * lam.real / rho ** 2
        else:
            theta, S = _ray_table(tuple(coeffs))
            angle = torch.atan2(lam.imag.abs(), lam.real).numpy()
            out[cplx] = torch.from_numpy(np.interp(angle, theta.numpy(), S.numpy())) / rho
    return out


def _detached(model):
    """A copy of ``model`` whose tensor parameters are detached float64 CPU tensors."""
    new = object.__new__(type(model))
    for k, v in model.params().items():
        if isinstance(v, torch.Tensor):
            v = v.detach().to(dtype=torch.float64, device="cpu")
        object.__setattr__(new, k, v)
    return new


def jacobians(model) -> torch.Tensor | None:
    """Jacobians ``[n_probe, *param_shape, n, n]`` (1/s) of the model's vector field.

    From :meth:`linear_system` where the model has one (exact), else by automatic
    differentiation of :meth:`derivatives` at each of :meth:`stiff_states` with zero
    input. ``None`` when they cannot be computed (e.g. a derivative that is not
    differentiable).
    """
    m = _detached(model)
    names = tuple(m.state_names)
    n = len(names)
    shape = m.param_shape()
    system = m.linear_system()
    if system is not None:
        J = torch.zeros(*shape, n, n, dtype=torch.float64)
        for i in range(n):
            for j in range(n):
                J[..., i, j] = torch.as_tensor(system.A[i][j], dtype=torch.float64)
        return J[None]
    out = []
    try:
        for probe in m.stiff_states().values():
            with torch.enable_grad():
                x = {k: torch.as_tensor(probe[k], dtype=torch.float64).expand(shape).clone()
                     .requires_grad_(True) for k in names}
                f = m.derivatives(x, torch.zeros(shape, dtype=torch.float64))
                J = torch.zeros(*shape, n, n, dtype=torch.float64)
                for i, k in enumerate(names):
                    if not f[k].requires_grad:
                        continue
                    grads = torch.autograd.grad(f[k].sum(), [x[j] for j in names],
                                                allow_unused=True, retain_graph=True)
                    for j, g in enumerate(grads):
                        if g is not None:
                            J[..., i, j] = g
            out.append(J)
    except (RuntimeError, NotImplementedError, TypeError, KeyError):
        return None
    J = torch.stack(out)
    return J if bool(torch.isfinite(J).all()) else None


@dataclass(frozen=True)
class StabilityLimit:
    """The stability limit of an integrator on a model.

    Attributes:
        dt_max: the largest stable step (s), the smallest over elements and probe states.
        rate: :math:`|\\lambda|` (1/s) of the eigenvalue that sets it.
        bound: ``dt_max * rate`` (2 for Euler on a real eigenvalue, 2.785 for RK4).
        source: where the eigenvalues come from (for messages).
        dt_max_each: the limit per element (``[*param_shape]``), for counting offenders.
    """

    dt_max: float
    rate: float
    bound: float
    source: str
    dt_max_each: torch.Tensor


def limit_of(model, coeffs: tuple[float, ...], variables: tuple[str, ...] | None = None
             ) -> StabilityLimit | None:
    """The stability limit of the method with polynomial ``coeffs`` on ``model``.

    ``variables``: restrict the Jacobian to these variables (exponential Euler: those it
    integrates with a forward-Euler step). ``None`` when no limit is known.
    """
    J = jacobians(model)
    if J is None:
        return None
    names = tuple(model.state_names)
    if variables is not None:
        idx = [names.index(v) for v in variables]
        if not idx:
            return None
        J = J[..., idx, :][..., :, idx]
    eigs = torch.linalg.eigvals(J)  # [probe, *shape, n]
    each = max_stable_dt(coeffs, eigs).reshape(eigs.shape)
    per_element = each.amin(dim=(0, -1))  # over probe states and eigenvalues
    flat = each.reshape(-1)
    k = int(flat.argmin())
    dt_max = float(flat[k])
    if not math.isfinite(dt_max):
        return None
    rate = float(eigs.reshape(-1)[k].abs())
    source = ("the linear part" if model.linear_system() is not None
              else "the Jacobian at " + " and ".join(model.stiff_states()))
    return StabilityLimit(dt_max, rate, dt_max * rate, source, per_element)


def spectral_radius(model) -> float | None:
    """The largest :math:`|\\lambda|` (1/s) among damped eigenvalues (``None``: unknown)."""
    J = jacobians(model)
    if J is None:
        return None
    eigs = torch.linalg.eigvals(J).reshape(-1)
    damped = eigs[eigs.real < 0]
    return float(damped.abs().max()) if damped.numel() else 0.0


def substeps_needed(model, dt: float) -> tuple[float, float] | None:
    """``(n, rho)``: the fewest Dormand–Prince sub-steps per step ``dt`` that stability allows,
    :math:`n = dt\\,\\rho / 3.3066`, and the spectral radius :math:`\\rho` (1/s)."""
    rho = spectral_radius(model)
    if rho is None:
        return None
    return dt * rho / real_interval(DOPRI5_POLYNOMIAL), rho


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside neurosim (so warnings point at user code)."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def suggestion(model) -> str:
    """Which method to suggest instead of a smaller dt, for this model."""
    if model.linear_system() is not None:
        return "method='exact' (or 'exponential_euler')"
    if model.conditionally_linear and set(model.conditionally_linear) == set(model.state_names):
        return "method='exponential_euler'"
    return "method='adaptive'"


def check_stability(model, integrator, dt: float) -> StabilityLimit | None:
    """Warn (:class:`~neurosim.errors.StabilityWarning`) if ``dt`` is beyond the limit.

    Called once per :func:`~neurosim.discretise` (so once per :func:`~neurosim.simulate`,
    network population, sweep chunk and ``neurosim run``). Returns the limit, or ``None``
    when the integrator has none for this model.
    """
    try:
        limit = integrator.stability_limit(model)
    except Exception:  # noqa: BLE001 - guidance must never break a run
        return None
    if limit is None or dt <= limit.dt_max:
        return limit
    beyond = int((limit.dt_max_each < dt).sum())
    total = limit.dt_max_each.numel()
    which = "" if total == 1 else f" for {beyond} of {total} elements"
    warnings.warn(
        f"method={integrator.name!r} with dt={dt:g} s is beyond its stability limit on "
        f"{type(model).__name__}{which}: dt*|lambda| = {dt * limit.rate:.3g} > "
        f"{limit.bound:.4g} (|lambda| = {limit.rate:.4g} 1/s, from {limit.source}); "
        f"stable for dt <= {limit.dt_max:.3g} s. Use a smaller dt or {suggestion(model)}",
        StabilityWarning, stacklevel=_user_stacklevel())
    return limit


__all__ = ["DOPRI5_POLYNOMIAL", "EULER_POLYNOMIAL", "RK4_POLYNOMIAL", "StabilityLimit",
           "check_stability", "jacobians", "limit_of", "max_stable_dt", "real_interval",
           "spectral_radius", "substeps_needed"]
