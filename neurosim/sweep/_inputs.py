r"""Inputs of a sweep, built per chunk as a ``[T, n]`` tensor (*n* parameter sets).

A value in an input description is either a number or the name of a swept
parameter (then each set gets its own value, e.g. the current *I* of an f-I
curve). Random inputs draw from :class:`Streams`: one independent numpy
generator per parameter set, seeded by ``SeedSequence(seed, spawn_key=(row,))``
(the ``row``-th child of ``SeedSequence(seed).spawn``), so a set's input depends on
the sweep seed and its row only, never on chunking or the executor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from ._names import qualified_name, resolve_name

#: neurosim's own input functions a description may name (``kind = "function"``); names
#: outside it need an allowed module (see :mod:`neurosim.sweep._names`)
INPUT_FUNCTIONS: dict[str, Callable[..., Any]] = {}

Value = float | str


def _value(name: str, v: Any) -> Value:
    if isinstance(v, str):
        if not v.isidentifier():
            raise ValueError(f"{name} must be a number or a swept parameter name, got {v!r}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise ValueError(f"{name} must be a number or a swept parameter name, got {v!r}")
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v!r}")
    return float(v)


class Streams:
    """Per-parameter-set random streams for one chunk.

    Sampling methods return tensors of shape ``[T, n]`` (time-major, one column
    per parameter set), drawn column by column from that set's own generator.

    Attributes:
        generators: one ``numpy.random.Generator`` per set of the chunk (made when
            first used: a deterministic input draws nothing).
        n: number of parameter sets in the chunk.
        n_steps: number of time steps *T*.
        dt: time step in seconds.
    """

    def __init__(self, seed: int, rows: np.ndarray, n_steps: int, dt: float,
                 dtype: torch.dtype) -> None:
        self._seed, self._rows = seed, rows
        #: number of parameter sets (columns)
        self.n = len(rows)
        self._generators: list[np.random.Generator] | None = None
        self.n_steps, self.dt, self.dtype = n_steps, dt, dtype

    @property
    def generators(self) -> list[np.random.Generator]:
        """One generator per set, seeded by (seed, row): made on first use only (about
        20 us each), so deterministic inputs cost nothing per set."""
        if self._generators is None:
            self._generators = [
                np.random.default_rng(np.random.SeedSequence(self._seed, spawn_key=(int(r),)))
                for r in self._rows]
        return self._generators

    def _stack(self, draw: Callable[[np.random.Generator, int], np.ndarray]) -> torch.Tensor:
        cols = [draw(g, k) for k, g in enumerate(self.generators)]
        return torch.as_tensor(np.stack(cols, axis=1), dtype=self.dtype)

    def normal(self) -> torch.Tensor:
        """Standard normal samples, ``[T, n]``."""
        return self._stack(lambda g, k: g.standard_normal(self.n_steps))

    def uniform(self) -> torch.Tensor:
        """Uniform samples on [0, 1), ``[T, n]``."""
        return self._stack(lambda g, k: g.random(self.n_steps))

    def poisson(self, lam: float | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Poisson counts with mean ``lam`` per step (a number or one value per set)."""
        lam = np.broadcast_to(np.asarray(torch.as_tensor(lam).detach().cpu(), dtype=np.float64),
                              (self.n,))
        if (lam < 0).any():
            raise ValueError(f"poisson: lam must be >= 0, got min {lam.min()!r}")
        return self._stack(lambda g, k: g.poisson(lam[k], self.n_steps).astype(np.float64))


class Input:
    """Base class: ``build(params, rng) -> [T, n]`` from per-set parameters (tensors ``[n]``)."""

    kind: str = ""

    def uses(self) -> set[str] | None:
        """Swept parameter names this input reads (``None``: may read any)."""
        return {v for v in vars(self).values() if isinstance(v, str)}

    def build(self, params: Mapping[str, torch.Tensor], rng: Streams) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, **vars(self)}

    def _get(self, v: Value, params: Mapping[str, torch.Tensor], rng: Streams) -> torch.Tensor:
        if isinstance(v, str):
            return params[v]
        return torch.tensor(v, dtype=rng.dtype)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({inner})"


class Constant(Input):
    """A constant current ``value`` (a number or a swept parameter name)."""

    kind = "constant"

    def __init__(self, value: Value) -> None:
        self.value = _value("value", value)

    def build(self, params, rng):
        return self._get(self.value, params, rng).expand(rng.n_steps, rng.n)


class Noise(Input):
    r"""Gaussian current, independent per step: :math:`I_k = \mu + \sigma\,\xi_k`.

    :math:`\xi_k \sim N(0, 1)`, independent across steps and parameter sets.

    ``std`` is the standard deviation of the step-held current (for white noise of
    intensity :math:`s` use :math:`\sigma = s/\sqrt{dt}`).
    """

    kind = "noise"

    def __init__(self, mean: Value = 0.0, std: Value = 1.0) -> None:
        self.mean, self.std = _value("mean", mean), _value("std", std)

    def build(self, params, rng):
        return self._get(self.mean, params, rng) + self._get(self.std, params, rng) * rng.normal()


class Poisson(Input):
    """Poisson spike input: ``weight`` × Poisson(``rate``·dt) counts per step (``rate`` in Hz).

    Use with ``input_mode="jump"`` models (e.g. ``LIF(tau_syn=...)``): each input
    spike adds ``weight`` to the synaptic current.
    """

    kind = "poisson"

    def __init__(self, rate: Value, weight: Value = 1.0) -> None:
        self.rate, self.weight = _value("rate", rate), _value("weight", weight)

    def build(self, params, rng):
        lam = self._get(self.rate, params, rng) * rng.dt
        return self._get(self.weight, params, rng) * rng.poisson(lam)


class Array(Input):
    """A fixed input tensor ``[T]`` or ``[T, 1]``, the same for every parameter set."""

    kind = "array"

    def __init__(self, values: Any) -> None:
        arr = np.asarray(torch.as_tensor(values).detach().cpu(), dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1 or not np.isfinite(arr).all():
            raise ValueError(f"input array must be finite of shape [T] or [T, 1], got shape "
                             f"{arr.shape}")
        self.values = arr

    def uses(self) -> set[str]:
        return set()

    def build(self, params, rng):
        if self.values.size != rng.n_steps:
            raise ValueError(f"input array has {self.values.size} steps, the sweep "
                             f"{rng.n_steps} (duration / dt)")
        return torch.as_tensor(self.values, dtype=rng.dtype)[:, None].expand(
            rng.n_steps, rng.n)

    def describe(self) -> dict[str, Any]:
        digest = hashlib.sha256(np.ascontiguousarray(self.values).tobytes()).hexdigest()
        return {"kind": self.kind, "steps": int(self.values.size), "sha256": digest}


class FunctionInput(Input):
    """A user function ``fn(params, rng) -> [T, n]`` (params: name -> tensor ``[n]``).

    For process pools and Dask the function must be importable (defined at module
    level); the description stores its ``module:qualname``.
    """

    kind = "function"

    def __init__(self, fn: Callable[[Mapping[str, torch.Tensor], Streams], Any]) -> None:
        if not callable(fn):
            raise ValueError(f"input function must be callable, got {fn!r}")
        self.fn = fn

    def uses(self) -> None:
        return None

    def build(self, params, rng):
        from ._measures import call_user

        out = torch.as_tensor(call_user(f"input function {qualified_name(self.fn)}", self.fn,
                                        params, rng), dtype=rng.dtype)
        n = rng.n
        if out.dim() == 1:
            out = out[:, None]
        if out.dim() != 2 or out.shape[0] != rng.n_steps or out.shape[1] not in (1, n):
            raise ValueError(f"input function {qualified_name(self.fn)} returned shape "
                             f"{tuple(out.shape)}, expected [T={rng.n_steps}, n={n}]")
        return out.expand(rng.n_steps, n)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "function": qualified_name(self.fn)}


def as_input(value: Any, allow_modules: Iterable[str] = ()) -> Input:
    """Normalise a sweep's ``input``: number, parameter name, array, dict, Input or callable.

    ``allow_modules``: modules from which a ``kind = "function"`` description may import
    its ``function`` (see :func:`neurosim.sweep._names.resolve_name`).
    """
    if isinstance(value, Input):
        return value
    if isinstance(value, str) or isinstance(value, (int, float)) and not isinstance(value, bool):
        return Constant(value)
    if isinstance(value, Mapping):
        return input_from_dict(value, allow_modules)
    if isinstance(value, (np.ndarray, torch.Tensor, list, tuple)):
        return Array(value)
    if callable(value):
        return FunctionInput(value)
    raise ValueError(f"input must be a number, a swept parameter name, an array [T], an "
                     f"Input or a function (params, rng) -> [T, n], got {value!r}")


def input_from_dict(d: Mapping[str, Any], allow_modules: Iterable[str] = ()) -> Input:
    """An input from its description (the TOML ``[input]`` table).

    A ``kind = "function"`` input names its function as ``"module:qualname"``, resolved
    only in :data:`INPUT_FUNCTIONS` or in ``allow_modules``.
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"input description must be a table, got {d!r}")
    d = dict(d)
    kind = d.pop("kind", "constant")
    kinds = {"constant": Constant, "noise": Noise, "poisson": Poisson}
    if kind == "function":
        unknown = set(d) - {"function"}
        if unknown:
            raise ValueError(f"input of kind 'function': unknown keys {sorted(unknown)}")
        return FunctionInput(resolve_name(d.get("function"), "input function", INPUT_FUNCTIONS,
                                          allow_modules))
    if not isinstance(kind, str) or kind not in kinds:
        raise ValueError(f"input kind must be one of {sorted(kinds) + ['function']}, got {kind!r}")
    try:
        return kinds[kind](**d)
    except TypeError as err:
        raise ValueError(f"input of kind {kind!r}: {err}") from None


__all__ = ["Array", "Constant", "FunctionInput", "Input", "Noise", "Poisson", "Streams",
           "INPUT_FUNCTIONS", "as_input", "input_from_dict", "qualified_name"]
