"""The integrator interface shared by every time-stepping method.

An integrator turns any :class:`~neurosim.models.NeuronModel` into a *flow*:
``advance(x, u, h, clamped, detect)`` moves each element's continuous state
forward by its own duration ``h`` (seconds) under the input ``u`` held constant,
and, where asked, stops at the first upward threshold crossing. The single
event loop in :mod:`neurosim.step` builds steps, resets and refractoriness
from it. Integrators know nothing about a specific model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..models.base import NeuronModel, Vars


class Advance(NamedTuple):
    """What :meth:`Flow.advance` returns (all tensors have the element shape).

    Attributes:
        x: the state where the element stopped: at its crossing if ``crossed``,
            else at the end of its duration.
        s: the time advanced, in seconds (<= ``h``).
        crossed: whether the element crossed its threshold.
        d: the threshold distance that decided the spike (> 0 exactly where
            ``crossed`` for detecting elements); the surrogate gradient flows through it.
    """

    x: dict[str, torch.Tensor]
    s: torch.Tensor
    crossed: torch.Tensor
    d: torch.Tensor | None


def rhs(model: NeuronModel, x: Vars, u: torch.Tensor, clamped: bool) -> dict[str, torch.Tensor]:
    """The model's derivatives, with the refractory-clamped variables frozen if ``clamped``."""
    f = model.derivatives(x, u)
    if clamped:
        f = {k: (torch.zeros_like(val) if k in model.clamped else val) for k, val in f.items()}
    return f


def threshold_slope(model: NeuronModel, x: Vars, f: Vars) -> torch.Tensor:
    """Time derivative of the (affine) threshold distance along the vector field ``f``."""
    shifted = {k: x[k] + f[k] for k in x}
    return model.threshold_distance(shifted) - model.threshold_distance(x)


class Flow:
    """A model prepared by an integrator for one ``dt``, dtype and device."""

    #: whether crossings are located inside the step (else spikes sit at the segment end)
    precise: bool = False

    def __init__(self, model: NeuronModel, dt: float) -> None:
        self.model = model
        self.dt = dt

    def begin_step(self) -> None:
        """Called by :class:`~neurosim.Step` before the rounds of every step (the adaptive
        flow resets its per-step sub-step budget here). Default: nothing."""

    def advance(self, x: dict[str, torch.Tensor], u: torch.Tensor, h: torch.Tensor | None,
                clamped: bool, detect: torch.Tensor | None) -> Advance:
        """Advance each element by ``h`` seconds (``None``: by ``dt`` everywhere).

        ``detect`` is a boolean mask of the elements whose threshold crossings
        count (``None``: no detection at all).
        """
        raise NotImplementedError


class Integrator:
    """Base class of integrators: a small, immutable description of a method."""

    #: the method name accepted by :func:`neurosim.simulate`
    name: str = ""
    #: whether spike times are located inside the step (exact with ``precise=True``,
    #: adaptive); ``False``: spikes on the grid, at the end of the step
    precise: bool = False

    def prepare(self, model: NeuronModel, dt: float, dtype: torch.dtype,
                device: torch.device) -> Flow:
        """Build the flow of ``model`` for step ``dt`` (seconds) on states of ``dtype``/``device``.

        The model's tensor parameters have already been cast to ``dtype`` and ``device``.
        """
        raise NotImplementedError

    def stability_limit(self, model: NeuronModel):
        """The :class:`~neurosim.stability.StabilityLimit` of this method on ``model``.

        ``None`` (the default) where the method has no step-size limit (exact,
        adaptive) or none is known for the model. See :mod:`neurosim.stability`.
        """
        return None


def end_of_segment(model: NeuronModel, x_end: dict[str, torch.Tensor], h: torch.Tensor,
                   detect: torch.Tensor | None, dt: float) -> Advance:
    """The grid event rule: a detecting element spikes when ``d > 0`` at the segment end."""
    if h is None:
        h = torch.full_like(next(iter(x_end.values())), dt)
    if detect is None:
        return Advance(x_end, h, torch.zeros_like(h, dtype=torch.bool), None)
    d = model.threshold_distance(x_end)
    crossed = (d > 0) & detect & (h > 0)
    return Advance(x_end, h, crossed, d)
