r"""Decoders from spike trains or membrane traces to class scores, and the usual losses.

All take time-major tensors ``[T, *batch, classes]`` (the output of a layer) and
reduce over time. Forward values are exact (counts, maxima, first-spike times
on the grid); gradients come from the surrogate of the spike function and
from the membrane.

Time-to-first-spike: with :math:`z_k \in \{0, 1\}` the spikes of step *k*
(ending at :math:`t_k = (k+1)\,dt`),

.. math:: t_\mathrm{first} = \sum_k t_k\, z_k \prod_{j<k}(1 - z_j)
          + t_\mathrm{none}\prod_k (1 - z_k),

which equals the grid time of the first spike (``t_none`` when there is none)
and is differentiable in the *z* through their surrogate gradients.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .._checks import check_positive


def _check(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"{name} must be a tensor [T, *batch, classes], got "
                         f"{getattr(x, 'shape', type(x).__name__)}")


def spike_count(spikes: torch.Tensor) -> torch.Tensor:
    """Number of spikes per neuron over the sequence: ``[T, *b, n] -> [*b, n]``."""
    _check(spikes, "spikes")
    return spikes.sum(0)


def max_membrane(v: torch.Tensor) -> torch.Tensor:
    """Maximum of the membrane over time: ``[T, *b, n] -> [*b, n]`` (gradient to the argmax)."""
    _check(v, "v")
    return v.amax(0)


def mean_membrane(v: torch.Tensor) -> torch.Tensor:
    """Time average of the membrane: ``[T, *b, n] -> [*b, n]``."""
    _check(v, "v")
    return v.mean(0)


def last_membrane(v: torch.Tensor) -> torch.Tensor:
    """Membrane at the last step: ``[T, *b, n] -> [*b, n]``."""
    _check(v, "v")
    return v[-1]


def first_spike_time(spikes: torch.Tensor, dt: float, no_spike: float | None = None
                     ) -> torch.Tensor:
    """Time of the first spike in seconds (end of its step), differentiable (module docs).

    Args:
        spikes: ``[T, *batch, n]`` spikes (counts above 1 count as 1).
        dt: the step in seconds.
        no_spike: the time given to neurons that never fire (default ``(T + 1)·dt``).
    Returns:
        ``[*batch, n]`` first-spike times in seconds.
    """
    _check(spikes, "spikes")
    check_positive("dt", dt, "s")
    T = spikes.shape[0]
    z = torch.clamp(spikes, max=1.0)
    t = torch.arange(1, T + 1, dtype=z.dtype, device=z.device) * dt
    t = t.reshape(T, *([1] * (z.dim() - 1)))
    silent = torch.cumprod(1.0 - z, dim=0)  # prod_{j<=k}(1 - z_j)
    before = torch.cat([torch.ones_like(silent[:1]), silent[:-1]])  # prod_{j<k}
    t_none = (T + 1) * dt if no_spike is None else float(no_spike)
    return (t * z * before).sum(0) + t_none * silent[-1]


def count_cross_entropy(spikes: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the spike counts taken as logits (the most active class wins)."""
    return F.cross_entropy(spike_count(spikes), target)


def max_membrane_cross_entropy(v: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the maximum membrane over time (a leaky-integrator readout)."""
    return F.cross_entropy(max_membrane(v), target)


def first_spike_cross_entropy(spikes: torch.Tensor, target: torch.Tensor, dt: float,
                              tau: float) -> torch.Tensor:
    """Cross-entropy of ``-t_first/tau``: the class that fires first wins.

    ``tau`` (s, > 0) sets how sharply earlier spikes dominate.
    """
    check_positive("tau", tau, "s")
    return F.cross_entropy(-first_spike_time(spikes, dt) / tau, target)


def count_mse(spikes: torch.Tensor, target: torch.Tensor, correct_rate: float = 0.8,
              incorrect_rate: float = 0.2) -> torch.Tensor:
    """Mean squared error of spike counts against ``rate·T`` targets (snntorch's ``mse_count``).

    The target class should fire in ``correct_rate`` of the steps, the others in
    ``incorrect_rate``.
    """
    counts = spike_count(spikes)
    T = spikes.shape[0]
    goal = torch.full_like(counts, incorrect_rate * T)
    goal = goal.scatter(-1, target.unsqueeze(-1), correct_rate * T)
    return F.mse_loss(counts, goal)


def accuracy(scores: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of rows whose largest score is at the target class."""
    return float((scores.argmax(-1) == target).to(torch.float64).mean())


__all__ = ["accuracy", "count_cross_entropy", "count_mse", "first_spike_cross_entropy",
           "first_spike_time", "last_membrane", "max_membrane", "max_membrane_cross_entropy",
           "mean_membrane", "spike_count"]
