"""Small pieces of physics shared by several model files (no integrator, no loop)."""

from __future__ import annotations

from typing import ClassVar

import torch

from .._checks import Param
from .base import NeuronModel, Vars


class FixedThreshold(NeuronModel):
    """A spike when the membrane crosses a fixed parameter upward (``v_th``, ``v_peak``...).

    Subclasses name the parameter in :attr:`threshold_field`; the reset is
    :meth:`reset_membrane` (to a parameter) or none (state unchanged).
    """

    #: the dataclass field holding the spike threshold
    threshold_field: ClassVar[str] = "v_th"

    def threshold(self, x: Vars) -> Param:
        return getattr(self, self.threshold_field)

    def threshold_distance(self, x: Vars) -> torch.Tensor:
        return x[self.membrane] - getattr(self, self.threshold_field)

    def on_spike(self, x: Vars) -> dict[str, torch.Tensor]:
        return dict(x)


def reset_membrane(x: Vars, value: Param, name: str = "v") -> dict[str, torch.Tensor]:
    """A copy of the state with variable ``name`` set to ``value`` (broadcast to its shape)."""
    out = dict(x)
    out[name] = torch.zeros_like(x[name]) + value
    return out
