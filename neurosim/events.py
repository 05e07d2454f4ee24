r"""What a spike does: locating the crossing, and the reset that keeps a gradient.

Two pieces are shared by every integrator and by the step function:

* :func:`find_crossing` — a safeguarded Newton iteration that finds, for many
  elements at once, the time :math:`s^*\in[0, h]` where the threshold distance
  :math:`d(x(s))` of a trajectory changes sign. Exact integration evaluates
  :math:`x(s)` with the exact propagator (as NEST's ``*_ps`` models do); the
  adaptive integrator with a Runge-Kutta step from the start of the sub-step.
  Newton steps that leave the bracket fall back to bisection, so the iteration
  always converges; each element stops on its own when its update is below a
  few ulps of *h* or has reached the round-off band of *d*, and only the
  elements still iterating are evaluated.

* :func:`select_reset` — the reset as a differentiable selection:
  ``where(spiked, x_reset, x)`` forward (exact values, no round-off from
  ``x + z·(x_reset − x)``), and ``∂x_new/∂z = x_reset − x`` backward, so the
  surrogate gradient of the spike ``z`` also flows through the reset unless
  ``detach_reset`` is asked for (snntorch detaches by default, sinabs does not).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .models.base import NeuronModel, subset_model

Evaluate = Callable[[torch.Tensor, torch.Tensor | None],
                    tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]


def find_crossing(
    evaluate: Evaluate,
    h: torch.Tensor,
    d_end: torch.Tensor,
    d_start: torch.Tensor,
    max_iter: int = 60,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Locate the root of ``d`` on ``[0, h]`` for each element (1-D tensors).

    Args:
        evaluate: ``(s, idx) -> (x(s), d(x(s)), d'(s))`` for the elements ``idx``
            (a 1-D index tensor; ``None``: all elements) at their times ``s`` (s).
        h: segment lengths (s); ``d(0) = d_start <= 0 < d(h) = d_end``.
        max_iter: the most iterations for any element.
    Returns:
        ``(s, x(s))``: the crossing times and the states there.

    Each element stops on its own, and only the elements still iterating are
    evaluated: when its update is below ``4·eps·h``, when ``d`` is exactly 0, or
    when a Newton update no longer shrinks although it is already below
    ``sqrt(eps)·h`` — the iterate is then inside the band where round-off of
    ``d`` decides the sign, and further iterations only move it within that band.
    """
    with torch.no_grad():
        a = torch.zeros_like(h)
        b = h.clone()
        da, db = d_start.detach(), d_end.detach()
        denom = db - da
        s = torch.where(denom > 0, b - db * (b - a) / denom, 0.5 * (a + b))
        eps = torch.finfo(h.dtype).eps
        tol = 4.0 * eps * h
        noise = eps**0.5 * h
        last_step = h.clone()
        idx = torch.arange(h.numel(), device=h.device)
        for _ in range(max_iter):
            if idx.numel() == 0:
                break
            si, ai, bi = s[idx], a[idx], b[idx]
            _, d, slope = evaluate(si, idx)
            d, slope = d.detach(), slope.detach()
            left = d <= 0
            ai = torch.where(left, si, ai)
            bi = torch.where(left, bi, si)
            newton = si - d / slope
            ok = torch.isfinite(newton) & (newton >= ai) & (newton <= bi)
            s_new = torch.where(ok, newton, 0.5 * (ai + bi))
            s_new = torch.where(d == 0, si, s_new)
            step = (s_new - si).abs()
            done = ((step <= tol[idx]) | (d == 0)
                    | (ok & (step <= noise[idx]) & (step >= last_step[idx])))
            s[idx], a[idx], b[idx], last_step[idx] = s_new, ai, bi, step
            idx = idx[~done]
    x, _, _ = evaluate(s, None)
    return s, x


def take(values: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """``values[idx]`` (``None``: all); a helper for :data:`Evaluate` implementations."""
    return values if idx is None else values[idx]


def take_model(model: NeuronModel, idx: torch.Tensor | None, n: int) -> NeuronModel:
    """A model with 1-D parameters of length ``n`` restricted to the elements ``idx``."""
    if idx is None:
        return model
    mask = torch.zeros(n, dtype=torch.bool, device=idx.device)
    mask[idx] = True
    return subset_model(model, mask)


def select_reset(
    spiked: torch.Tensor,
    z: torch.Tensor | None,
    x: dict[str, torch.Tensor],
    x_reset: dict[str, torch.Tensor],
    detach_reset: bool,
) -> dict[str, torch.Tensor]:
    """Per element, the reset state where ``spiked`` else ``x``; surrogate gradient via ``z``."""
    out = {}
    grad = z is not None and z.requires_grad and not detach_reset
    for k, xk in x.items():
        rk = x_reset[k]
        if rk is xk:
            out[k] = xk
            continue
        new = torch.where(spiked, rk, xk)
        if grad:
            new = new + (z - z.detach()) * (rk - xk)
        out[k] = new
    return out
