r"""What a spike does: locating the crossing, and the reset that keeps a gradient.

Two pieces are shared by every integrator and by the step function:

* :func:`find_crossing` — a safeguarded Newton iteration that finds, for many
  elements at once, the time :math:`s^*\in[0, h]` where the threshold distance
  :math:`d(x(s))` of a trajectory changes sign. Exact integration evaluates
  :math:`x(s)` with the exact propagator (as NEST's ``*_ps`` models do); the
  adaptive integrator with a Runge-Kutta step from the start of the sub-step.
  Newton steps that leave the bracket fall back to bisection, so the iteration
  always converges; it stops when the update is below a few ulps of *h*.

* :func:`select_reset` — the reset as a differentiable selection:
  ``where(spiked, x_reset, x)`` forward (exact values, no round-off from
  ``x + z·(x_reset − x)``), and ``∂x_new/∂z = x_reset − x`` backward, so the
  surrogate gradient of the spike ``z`` also flows through the reset unless
  ``detach_reset`` is asked for (snntorch detaches by default, sinabs does not).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Evaluate = Callable[[torch.Tensor], tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]


def find_crossing(
    evaluate: Evaluate,
    h: torch.Tensor,
    d_end: torch.Tensor,
    d_start: torch.Tensor,
    max_iter: int = 60,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Locate the root of ``d`` on ``[0, h]`` for each element (1-D tensors).

    Args:
        evaluate: ``s -> (x(s), d(x(s)), d'(s))`` for a tensor of times ``s``.
        h: segment lengths (s); ``d(0) = d_start <= 0 < d(h) = d_end``.
    Returns:
        ``(s, x(s))``: the crossing times and the states there.
    """
    with torch.no_grad():
        a = torch.zeros_like(h)
        b = h.clone()
        da, db = d_start.detach(), d_end.detach()
        denom = db - da
        s = torch.where(denom > 0, b - db * (b - a) / denom, 0.5 * (a + b))
        tol = 4.0 * torch.finfo(h.dtype).eps * h
        for _ in range(max_iter):
            _, d, slope = evaluate(s)
            d, slope = d.detach(), slope.detach()
            left = d <= 0
            a = torch.where(left, s, a)
            b = torch.where(left, b, s)
            newton = s - d / slope
            ok = torch.isfinite(newton) & (newton >= a) & (newton <= b)
            s_new = torch.where(ok, newton, 0.5 * (a + b))
            done = (s_new - s).abs() <= tol
            s = s_new
            if bool(done.all()):
                break
    x, _, _ = evaluate(s)
    return s, x


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
