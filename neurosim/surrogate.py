r"""The spike function: Heaviside forward, surrogate derivative backward.

Every spiking model in neurosim emits spikes through :func:`spike_fn`. Its
forward pass is the Heaviside step of the threshold distance
:math:`x = v - \vartheta`,

.. math:: H(x) = 1 \text{ if } x > 0 \text{ else } 0

(the tie ``x == 0`` gives no spike, as in snntorch and norse). Its backward
pass replaces the Dirac delta :math:`H'(x)` by a smooth *surrogate*
:math:`\sigma'(x)`. The surrogates offered, with their default scale:

- ``superspike`` / ``fast_sigmoid``: :math:`1/(\alpha|x|+1)^2`, α = 10
- ``atan`` / ``arctan``: :math:`(\alpha/2)/(1+(\pi\alpha x/2)^2)`, α = 2
- ``sigmoid``: :math:`\alpha\,s(\alpha x)(1-s(\alpha x))` with *s* the logistic, α = 10
- ``triangle``: :math:`\gamma\max(0, 1-|x|/w)`, γ = 1, w = 1
- ``exponential``: :math:`\exp(-|x|/w)/w` (sinabs' single exponential), w = 0.5
- ``gaussian``: :math:`\exp(-x^2/2\sigma^2)/(\sigma\sqrt{2\pi})`, σ = 0.5
- ``straight_through``: :math:`1`

Pass a name, an instance (``SuperSpike(alpha=25)``) or any callable ``x -> σ'(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._checks import positive_number


class Surrogate:
    """Base class: a surrogate is described by its derivative ``σ'(x)``."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the spike function to the threshold distance ``x``."""
        return spike_fn(x, self)


@dataclass(frozen=True)
class SuperSpike(Surrogate):
    """Fast sigmoid (Zenke & Ganguli 2018): ``σ'(x) = 1/(α|x|+1)²``."""

    alpha: float = 10.0

    def __post_init__(self) -> None:
        positive_number("alpha", self.alpha)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (self.alpha * x.abs() + 1.0) ** 2


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctangent (Fang et al. 2021): ``σ'(x) = (α/2)/(1+(παx/2)²)``."""

    alpha: float = 2.0

    def __post_init__(self) -> None:
        positive_number("alpha", self.alpha)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi * self.alpha * x / 2.0) ** 2)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Logistic: ``σ'(x) = α·s(αx)(1−s(αx))``, computed as ``α·e^{−|αx|}/(1+e^{−|αx|})²``.

    The second form never overflows, whatever the magnitude of ``x``.
    """

    alpha: float = 10.0

    def __post_init__(self) -> None:
        positive_number("alpha", self.alpha)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(-(self.alpha * x).abs())
        return self.alpha * e / (1.0 + e) ** 2


@dataclass(frozen=True)
class Triangle(Surrogate):
    """Triangle (Bellec et al. 2018): ``σ'(x) = γ·max(0, 1 − |x|/w)``."""

    gamma: float = 1.0
    width: float = 1.0

    def __post_init__(self) -> None:
        positive_number("gamma", self.gamma)
        positive_number("width", self.width)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * torch.clamp(1.0 - x.abs() / self.width, min=0.0)


@dataclass(frozen=True)
class Exponential(Surrogate):
    """Single exponential (sinabs): ``σ'(x) = exp(−|x|/w)/w``."""

    width: float = 0.5

    def __post_init__(self) -> None:
        positive_number("width", self.width)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x.abs() / self.width) / self.width


@dataclass(frozen=True)
class Gaussian(Surrogate):
    """Gaussian: ``σ'(x) = exp(−x²/2σ²)/(σ√(2π))`` (the derivative of an erfc step)."""

    sigma: float = 0.5

    def __post_init__(self) -> None:
        positive_number("sigma", self.sigma)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sigma
        return torch.exp(-0.5 * (x / s) ** 2) / (s * math.sqrt(2.0 * math.pi))


@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """Straight-through estimator: ``σ'(x) = 1``."""

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)


@dataclass(frozen=True)
class Custom(Surrogate):
    """Wraps a user callable ``x -> σ'(x)``."""

    fn: Callable[[torch.Tensor], torch.Tensor]

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fn(x)
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(out, dtype=x.dtype, device=x.device)
        return out


SURROGATES: dict[str, type[Surrogate]] = {
    "superspike": SuperSpike,
    "fast_sigmoid": SuperSpike,
    "atan": ATan,
    "arctan": ATan,
    "sigmoid": Sigmoid,
    "triangle": Triangle,
    "exponential": Exponential,
    "single_exponential": Exponential,
    "gaussian": Gaussian,
    "straight_through": StraightThrough,
}

SurrogateLike = str | Surrogate | Callable[[torch.Tensor], torch.Tensor] | None


def get_surrogate(spec: SurrogateLike = "superspike", **params: float) -> Surrogate:
    """Resolve a surrogate from a name (with optional parameters), an instance or a callable.

    >>> get_surrogate("atan", alpha=4.0)
    ATan(alpha=4.0)
    """
    if spec is None:
        spec = "superspike"
    if isinstance(spec, Surrogate):
        if params:
            raise ValueError("surrogate parameters can only be given with a surrogate name")
        return spec
    if isinstance(spec, str):
        key = spec.lower()
        if key not in SURROGATES:
            raise ValueError(f"surrogate must be one of {sorted(SURROGATES)} or a callable, "
                             f"got {spec!r}")
        try:
            return SURROGATES[key](**params)
        except TypeError as err:
            raise ValueError(f"bad parameters {params} for surrogate {spec!r}: {err}") from None
    if callable(spec):
        return Custom(spec)
    raise ValueError(f"surrogate must be a name, a Surrogate or a callable, got {spec!r}")


class _SpikeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * ctx.surrogate.derivative(x), None


def spike_fn(x: torch.Tensor, surrogate: SurrogateLike = "superspike") -> torch.Tensor:
    """Heaviside step of the threshold distance ``x`` (dimensionless), with a surrogate gradient.

    Returns a tensor of the dtype of ``x`` holding 0 or 1. Gradients are only
    built when ``x`` requires grad; otherwise this is a plain comparison.
    """
    if not x.requires_grad:
        return (x > 0).to(x.dtype)
    return _SpikeFunction.apply(x, get_surrogate(surrogate))
