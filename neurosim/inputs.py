r"""Input generators: tensors ``[steps, *shape]`` to pass to :func:`~neurosim.simulate`.

Step ``k`` covers :math:`[k\,dt, (k+1)\,dt]` (times in seconds), matching
:func:`~neurosim.simulate`. Amplitudes may be floats or tensors broadcastable to
``shape`` (one value per neuron). Random inputs are reproducible from ``seed``.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_dt, check_nonnegative, check_positive, describe

Value = float | torch.Tensor


def _times(steps: int, dt: float, dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    return torch.arange(steps, dtype=dtype) * check_dt(dt)


def _full(value: Value, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    v = torch.as_tensor(value, dtype=dtype)
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    try:
        return torch.broadcast_to(v, tuple(shape))
    except RuntimeError:
        raise ValueError(f"{name} of shape {tuple(v.shape)} does not broadcast with the neuron "
                         f"shape {tuple(shape)}") from None


def _window(start: float, stop: float | None, steps: int, dt: float) -> tuple[float, float]:
    duration = steps * dt
    stop = duration if stop is None else float(stop)
    start = float(start)
    if not 0 <= start < stop:
        raise ValueError(f"start and stop must satisfy 0 <= start < stop, got start={start!r} s, "
                         f"stop={stop!r} s")
    if stop > duration * (1 + 1e-12):
        raise ValueError(f"stop must be <= the duration {duration} s, got {stop!r} s")
    return start, stop


def step_current(steps: int, dt: float, amplitude: Value, start: float = 0.0,
                 stop: float | None = None, baseline: Value = 0.0, shape: tuple[int, ...] = (),
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``amplitude`` for the steps starting in ``[start, stop)`` (s), ``baseline`` elsewhere."""
    t = _times(steps, dt, dtype)
    start, stop = _window(start, stop, steps, dt)
    on = ((t >= start - 1e-12 * dt) & (t < stop - 1e-12 * dt)).reshape(-1, *([1] * len(shape)))
    a, b = _full(amplitude, "amplitude", shape, dtype), _full(baseline, "baseline", shape, dtype)
    return torch.where(on, a, b).expand(steps, *shape).clone()


def ramp_current(steps: int, dt: float, amplitude_end: Value, amplitude_start: Value = 0.0,
                 start: float = 0.0, stop: float | None = None, shape: tuple[int, ...] = (),
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Linear from ``amplitude_start`` at ``start`` to ``amplitude_end`` at ``stop`` (s), held
    outside; each step holds the ramp's value at the step's midpoint (its mean over the step
    where the ramp is linear)."""
    t = _times(steps, dt, dtype)
    start, stop = _window(start, stop, steps, dt)
    mid = (t + dt / 2).clamp(start, stop)
    frac = ((mid - start) / (stop - start)).reshape(-1, *([1] * len(shape)))
    a = _full(amplitude_start, "amplitude_start", shape, dtype)
    b = _full(amplitude_end, "amplitude_end", shape, dtype)
    return (a + (b - a) * frac).expand(steps, *shape).clone()


def noise_current(steps: int, dt: float, std: Value | None = None, mean: Value = 0.0,
                  tau: float | None = None, shape: tuple[int, ...] = (), seed: int = 0,
                  dtype: torch.dtype = torch.float64, *,
                  density: Value | None = None) -> torch.Tensor:
    r"""Gaussian noise current: white, or Ornstein–Uhlenbeck with correlation time ``tau``.

    Give exactly one of ``std`` and ``density``:

    * ``density`` = :math:`\sigma_w` (white noise; units: input unit × √s, e.g.
      pA·√s for AdEx): a white-noise current of that intensity, held over each
      step as its mean over the step, :math:`I_k = \mu + \sigma_w\,\xi_k/\sqrt{dt}`.
      Its effect does not depend on ``dt``: the integral of the current over any
      window of length *T* has variance :math:`\sigma_w^2 T` for every ``dt``
      (the convention of Brian2's ``xi`` and NEST's ``noise_generator`` scaled to
      a density). Use it when comparing runs at different ``dt``.
    * ``std`` without ``tau``: every step holds an independent sample of standard
      deviation ``std`` (input units), **not** scaled with ``dt``: halving ``dt``
      halves the variance of the integrated current, so the same ``std`` drives a
      neuron more weakly at a smaller ``dt``. It equals ``density = std·√dt``.
    * ``std`` with ``tau`` (s): an Ornstein–Uhlenbeck process of stationary mean
      ``mean`` and standard deviation ``std`` (input units), sampled exactly at the
      step starts and started from its stationary distribution; its statistics do
      not depend on ``dt``:

      .. math:: x_{k+1} = \mu + (x_k - \mu)e^{-dt/\tau}
                + \sigma\sqrt{1 - e^{-2dt/\tau}}\,\xi_k,\qquad \xi_k \sim \mathcal N(0, 1)

    Args:
        steps: number of steps, >= 1.
        dt: time step (s).
        std: standard deviation (input units) of each step's sample (white) or of the
            OU process (with ``tau``).
        mean: mean current (input units).
        tau: OU correlation time (s), > 0, or ``None`` for white noise.
        shape: neuron shape of each step.
        seed: random seed.
        dtype: floating dtype.
        density: white-noise intensity :math:`\sigma_w` (input units × √s), >= 0.

    Returns:
        A tensor ``[steps, *shape]``.
    """
    _times(steps, dt, dtype)
    if (std is None) == (density is None):
        raise ValueError(f"give exactly one of std and density, got std={std!r}, "
                         f"density={density!r}")
    if density is not None:
        if tau is not None:
            raise ValueError(f"density is for white noise; with tau={tau!r} s give the OU "
                             "process's std instead")
        d = _full(density, "density", shape, dtype)
        check_nonnegative("density", d)
        s = d / math.sqrt(dt)
    else:
        s = _full(std, "std", shape, dtype)
        check_nonnegative("std", s)
    m = _full(mean, "mean", shape, dtype)
    gen = torch.Generator().manual_seed(int(seed))
    xi = torch.randn((steps, *shape), generator=gen, dtype=dtype)
    if tau is None:
        return m + s * xi
    check_positive("tau", float(tau), "s")
    a = math.exp(-dt / tau)
    b = math.sqrt(-math.expm1(-2 * dt / tau))
    out = torch.empty_like(xi)
    x = xi[0]
    out[0] = x
    for k in range(1, steps):
        x = a * x + b * xi[k]
        out[k] = x
    return m + s * out


#: above this mean count per step torch's Poisson sampler overflows its int64 (it returns
#: -2^63 from about 9.2e18); such counts are drawn from the normal approximation
#: N(lam, lam), rounded, whose relative error there is below 1e-9
POISSON_EXACT_MAX = 2.0**60


def poisson_spikes(steps: int, dt: float, rate: Value, shape: tuple[int, ...] = (),
                   seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Spike counts per step of independent Poisson processes of ``rate`` (Hz) per element.

    Counts are exact Poisson draws for ``rate * dt`` up to :data:`POISSON_EXACT_MAX`
    (about 1.2e18 per step) and the rounded normal approximation above it.
    """
    _times(steps, dt, dtype)
    r = _full(rate, "rate", shape, dtype)
    check_nonnegative("rate", r, "Hz")
    lam = (r * dt).expand(steps, *shape).contiguous()
    if not bool(torch.isfinite(lam).all()):
        raise ValueError(f"rate * dt must be finite in {dtype}, got rate={describe(r)} Hz, "
                         f"dt={dt!r} s")
    gen = torch.Generator().manual_seed(int(seed))
    big = lam > POISSON_EXACT_MAX
    if not bool(big.any()):
        return torch.poisson(lam, generator=gen)
    counts = torch.poisson(torch.where(big, torch.zeros_like(lam), lam), generator=gen)
    wide = lam.to(torch.float64)
    z = torch.randn(lam.shape, generator=gen, dtype=torch.float64)
    approx = (wide + wide.sqrt() * z).round().clamp_min(0).to(dtype)
    return torch.where(big, approx, counts)


__all__ = ["POISSON_EXACT_MAX", "noise_current", "poisson_spikes", "ramp_current", "step_current"]
