"""Parameter spaces: the sets of parameter values a sweep runs.

A space is an ordered list of *N* parameter sets; set *k* is row *k* of the
results. Three kinds:

* :class:`Grid` — the Cartesian product of named values (row-major: the last
  name varies fastest), e.g. ``Grid(tau_mem=[10e-3, 20e-3], I=np.linspace(1, 3, 50))``;
* :class:`Points` — an explicit list of dicts, all with the same names;
* :class:`Random` — ``n`` samples, uniform (or log-uniform) in given ranges,
  drawn from ``numpy.random.default_rng(seed)``.

Every space turns into ``columns()``: a dict name -> float64 array of length *N*,
and into a JSON-able description (``describe()`` / :func:`space_from_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: the most values one ``{start, stop, num}`` grid axis may have (a bound checked before
#: the axis is allocated; the size of the whole sweep is bounded by ``run_sweep``)
MAX_AXIS = 10**7


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"parameter names must be identifiers, got {name!r}")
    return name


def _values(name: str, values: Any) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"values of {name!r} must be numbers, got {values!r}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values of {name!r} must be a non-empty 1-D sequence, got shape "
                         f"{arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"values of {name!r} must be finite, got {arr[~np.isfinite(arr)][:3]}")
    return arr


class Space:
    """Base class of parameter spaces."""

    kind: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        """The swept parameter names, in order."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def columns(self) -> dict[str, np.ndarray]:
        """Name -> float64 array of length ``len(self)``: row *k* is parameter set *k*."""
        raise NotImplementedError

    def head(self, k: int) -> dict[str, np.ndarray]:
        """The columns of the first ``k`` parameter sets (cheap for a large grid)."""
        return {n: v[:k] for n, v in self.columns().items()}

    def describe(self) -> dict[str, Any]:
        """A JSON-able description that :func:`space_from_dict` turns back into the space."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} sets of {', '.join(self.names)})"


class Grid(Space):
    """The Cartesian product of named values; the last name varies fastest.

    Example:
        >>> Grid(tau_mem=[10e-3, 20e-3], I=np.linspace(1.0, 3.0, 5))   # 10 sets
    """

    kind = "grid"

    def __init__(self, axes: Mapping[str, Iterable[float]] | None = None,
                 **more: Iterable[float]) -> None:
        merged = dict(axes or {})
        for k, v in more.items():
            if k in merged:
                raise ValueError(f"grid axis {k!r} given twice")
            merged[k] = v
        if not merged:
            raise ValueError("a Grid needs at least one named axis")
        self.axes = {_check_name(k): _values(k, v) for k, v in merged.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of values along each axis."""
        return tuple(v.size for v in self.axes.values())

    def __len__(self) -> int:
        return math.prod(self.shape)

    def columns(self) -> dict[str, np.ndarray]:
        mesh = np.meshgrid(*self.axes.values(), indexing="ij")
        return {k: m.reshape(-1) for k, m in zip(self.axes, mesh, strict=True)}

    def head(self, k: int) -> dict[str, np.ndarray]:
        rows = np.arange(min(k, len(self)))
        index = np.unravel_index(rows, self.shape)
        return {n: v[i] for (n, v), i in zip(self.axes.items(), index, strict=True)}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "axes": {k: v.tolist() for k, v in self.axes.items()}}


class Points(Space):
    """An explicit list of parameter sets (dicts with the same keys)."""

    kind = "points"

    def __init__(self, sets: Sequence[Mapping[str, float]]) -> None:
        sets = list(sets)
        if not sets:
            raise ValueError("Points needs at least one parameter set, got an empty list")
        names = tuple(sets[0])
        for k, s in enumerate(sets):
            if not isinstance(s, Mapping) or tuple(s) != names:
                raise ValueError(f"parameter set {k} must be a dict with the keys {names} "
                                 f"(in that order), got {s!r}")
        self._names = tuple(_check_name(n) for n in names)
        self._cols = {n: _values(n, [s[n] for s in sets]) for n in names}

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def __len__(self) -> int:
        return next(iter(self._cols.values())).size if self._cols else 0

    def columns(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._cols.items()}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": {k: v.tolist() for k, v in self._cols.items()}}


class Random(Space):
    """``n`` random parameter sets, uniform in ``ranges`` (log-uniform for names in ``log``).

    Args:
        n: number of sets, >= 1.
        ranges: name -> ``(low, high)`` with ``low < high`` (and ``low > 0`` when log).
        seed: seed of ``numpy.random.default_rng``; the same seed gives the same sets.
        log: names sampled uniformly in ``log(value)``.
    """

    kind = "random"

    def __init__(self, n: int, ranges: Mapping[str, Sequence[float]], seed: int = 0,
                 log: Iterable[str] = ()) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if not ranges:
            raise ValueError("Random needs at least one range")
        self.n, self.seed = int(n), int(seed)
        self.log = tuple(log)
        self.ranges: dict[str, tuple[float, float]] = {}
        for name, r in ranges.items():
            _check_name(name)
            bounds = _values(name, r)
            if bounds.size != 2 or not bounds[0] < bounds[1]:
                raise ValueError(f"range of {name!r} must be (low, high) with low < high, "
                                 f"got {r!r}")
            lo, hi = float(bounds[0]), float(bounds[1])
            if name in self.log and lo <= 0:
                raise ValueError(f"log range of {name!r} must have low > 0, got {r!r}")
            self.ranges[name] = (lo, hi)
        for name in self.log:
            if name not in self.ranges:
                raise ValueError(f"log: {name!r} is not one of the ranges {tuple(self.ranges)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.ranges)

    def __len__(self) -> int:
        return self.n

    def columns(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        out = {}
        for name, (lo, hi) in self.ranges.items():
            if name in self.log:
                out[name] = np.exp(rng.uniform(math.log(lo), math.log(hi), self.n))
            else:
                out[name] = rng.uniform(lo, hi, self.n)
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "n": self.n, "seed": self.seed,
                "ranges": {k: list(v) for k, v in self.ranges.items()}, "log": list(self.log)}


def space_from_dict(d: Mapping[str, Any]) -> Space:
    """Rebuild a space from :meth:`Space.describe` output (also the TOML form)."""
    kind = d.get("kind")
    if kind == "grid":
        return Grid({k: _axis(k, v) for k, v in d["axes"].items()})
    if kind == "points":
        cols = d["columns"]
        n = len(next(iter(cols.values())))
        return Points([{k: cols[k][i] for k in cols} for i in range(n)])
    if kind == "random":
        return Random(d["n"], d["ranges"], seed=d.get("seed", 0), log=d.get("log", ()))
    raise ValueError(f"space kind must be 'grid', 'points' or 'random', got {kind!r}")


def _axis(name: str, spec: Any) -> Any:
    """A grid axis: a list of values, or ``{start, stop, num[, log]}`` (lin/geomspace)."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"start", "stop", "num", "log"}
        if unknown or not {"start", "stop", "num"} <= set(spec):
            raise ValueError(f"axis {name!r}: expected a list or {{start, stop, num[, log]}}, "
                             f"got {dict(spec)!r}")
        num = spec["num"]
        if isinstance(num, float) and num.is_integer() and num <= MAX_AXIS:
            num = int(num)  # "num = 1e3" in TOML is a float
        if isinstance(num, bool) or not isinstance(num, (int, np.integer)) or \
                not 1 <= num <= MAX_AXIS:
            raise ValueError(f"axis {name!r}: num must be an integer from 1 to {MAX_AXIS}, got "
                             f"{num!r}")
        fn = np.geomspace if spec.get("log", False) else np.linspace
        try:
            return fn(float(spec["start"]), float(spec["stop"]), int(num))
        except (TypeError, ValueError) as err:
            raise ValueError(f"axis {name!r}: {err}") from None
    return spec


__all__ = ["Grid", "Points", "Random", "Space", "space_from_dict"]
