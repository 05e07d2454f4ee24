"""The :class:`Sweep` description and the work of one chunk."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._checks import check_dt
from ..models.base import NeuronModel
from ..result import Result
from ._inputs import Input, Streams, as_input
from ._measures import BUILTIN, builtin_measures, user_measure
from ._names import normalise_allowed, qualified_name, resolve_name
from ._space import Grid, Points, Space

_DTYPES = {"float64": torch.float64, "float32": torch.float32}
_OPTIONS = ("rtol", "atol", "precise")
_PROBE_SETS = 16  # parameter sets tried to find a valid model for the early record check


def _model_class(model: Any, allow_modules: tuple[str, ...] = ()) -> type[NeuronModel]:
    if isinstance(model, str):
        from ..config import model_classes

        model = resolve_name(model, "model", model_classes(), allow_modules)
    if not (isinstance(model, type) and issubclass(model, NeuronModel)):
        raise ValueError(f"model must be a neurosim model class (LIF, ALIF, ...) or its name, "
                         f"got {model!r}")
    return model


def _space(params: Any) -> Space:
    if isinstance(params, Space):
        return params
    if isinstance(params, Mapping):
        return Grid(params)
    if isinstance(params, Sequence) and not isinstance(params, str):
        return Points(params)
    raise ValueError(f"params must be a Grid, Points, Random, a dict of axes or a list of "
                     f"dicts, got {params!r}")


def _measures(measures: Any, allow_modules: tuple[str, ...] = ()
              ) -> dict[str, Callable[[Result], Any] | None]:
    """Name -> user function, or None for a built-in measure."""
    if isinstance(measures, str) or callable(measures):
        measures = (measures,)
    items = measures.items() if isinstance(measures, Mapping) else [(None, m) for m in measures]
    out: dict[str, Callable[[Result], Any] | None] = {}
    for name, m in items:
        if isinstance(m, str) and m in BUILTIN:
            name, fn = name or m, None
        elif isinstance(m, str):
            if ":" not in m:
                raise ValueError(f"measure must be one of {BUILTIN}, 'module:function' or a "
                                 f"function of the Result, got {m!r}")
            fn = resolve_name(m, "measure", {}, allow_modules, known=BUILTIN)
            if not callable(fn):
                raise ValueError(f"measure {m!r} is not a function")
            name = name or m.rpartition(":")[2].rpartition(".")[2]
        elif callable(m):
            fn, name = m, name or getattr(m, "__name__", None)
        else:
            raise ValueError(f"measure must be a name or a function of the Result, got {m!r}")
        if not isinstance(name, str) or not name.isidentifier() or name == "error":
            raise ValueError(f"measure name must be an identifier other than 'error', got "
                             f"{name!r}")
        if name in out:
            raise ValueError(f"measure {name!r} given twice")
        out[name] = fn
    if not out:
        raise ValueError("measures must name at least one measure")
    return out


class Sweep:
    """A parameter sweep: which model, which parameter sets, which input, what to measure.

    Names given as strings (the model, measures, an input function) resolve only among
    neurosim's own (``"LIF"``, ``"rate"``), unless their module is listed in
    ``allow_modules``; pass the class or function itself to use your own without that.

    Args:
        model: a model class (``neurosim.LIF``) or its name (``"LIF"``; ``"pkg.mod:Class"``
            with ``allow_modules=["pkg"]``).
        params: the parameter sets: a :class:`Grid`, :class:`Points` or :class:`Random`; a
            dict of axes (a grid) or a list of dicts (points). Names that are model
            fields become tensor parameters of shape ``[n]`` along the batch
            dimension; other names are read by the input (e.g. ``I``).
        input: a number (constant current), the name of a swept parameter (constant,
            one value per set), an array ``[T]``, an ``Input`` (``Noise``,
            ``Poisson``...), a dict describing one, or a function
            ``(params, rng) -> [T, n]`` (params: name -> tensor ``[n]``; rng: :class:`Streams`).
        dt: time step in seconds.
        duration: simulated time in seconds, a multiple of ``dt``.
        method: integrator name (``"exact"``, ``"euler"``, ``"rk4"``, ``"adaptive"``).
        base: fixed model parameters (floats, or strings for options like ``reset``).
        measures: built-in names (``rate``, ``count``, ``latency``, ``isi``, ``cv``,
            ``spike_times``), functions ``fn(result) -> [n, ...]``, ``"module:function"``
            strings, or a dict name -> one of these.
        record: state variables whose traces are kept (``[n, T]`` per variable).
        seed: sweep seed; set *k*'s random input uses ``SeedSequence(seed, spawn_key=(k,))``.
        dtype: ``"float64"`` (default) or ``"float32"``.
        options: passed to ``neurosim.simulate``: ``rtol``, ``atol``, ``precise``.
        allow_modules: modules (and their submodules) from which ``"module:qualname"``
            strings may be imported; empty by default (see ``docs/reliability.md``).

    Example:
        >>> sweep = Sweep(LIF, Grid(tau_mem=[10e-3, 20e-3], I=np.linspace(0, 3, 31)),
        ...               input="I", dt=1e-4, duration=1.0, base={"t_ref": 2e-3},
        ...               measures=("rate", "cv"))
        >>> ds = run_sweep(sweep)          # an xarray.Dataset, one row per set
    """

    def __init__(self, model: Any, params: Any, input: Any = 0.0, *, dt: float,
                 duration: float, method: str = "exact", base: Mapping[str, Any] | None = None,
                 measures: Any = ("rate",), record: Sequence[str] | str = (), seed: int = 0,
                 dtype: str = "float64", options: Mapping[str, Any] | None = None,
                 allow_modules: Sequence[str] | str = ()) -> None:
        allowed = normalise_allowed(allow_modules)
        self.model = _model_class(model, allowed)
        self.space = _space(params)
        self.input: Input = as_input(input, allowed)
        self.dt = check_dt(dt)
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or \
                not math.isfinite(duration) or duration <= 0:
            raise ValueError(f"duration must be a number > 0 s, got {duration!r}")
        self.duration = float(duration)
        steps = round(self.duration / self.dt)
        if steps < 1 or abs(steps * self.dt - self.duration) > 1e-9 * self.duration:
            raise ValueError(f"duration must be a multiple of dt, got duration={duration!r}, "
                             f"dt={dt!r}")
        self.n_steps = int(steps)
        if not isinstance(method, str):
            raise ValueError(f"method must be an integrator name, got {method!r}")
        self.method = method
        if base is not None and not isinstance(base, Mapping):
            raise ValueError(f"base must be a table of fixed model parameters, got {base!r}")
        self.base = dict(base or {})
        self.measures = _measures(measures, allowed)
        if not isinstance(record, (str, Sequence)) or not all(
                isinstance(r, str) for r in ((record,) if isinstance(record, str) else record)):
            raise ValueError(f"record must be a state variable name or a list of names, got "
                             f"{record!r}")
        self.record = (record,) if isinstance(record, str) else tuple(record)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = seed
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {tuple(_DTYPES)}, got {dtype!r}")
        self.dtype = dtype
        if options is not None and not isinstance(options, Mapping):
            raise ValueError(f"options must be a table (rtol, atol, precise), got {options!r}")
        self.options = dict(options or {})
        for k in self.options:
            if k not in _OPTIONS:
                raise ValueError(f"options: unknown option {k!r}; allowed: {_OPTIONS}")
        self._check_names()
        self._columns: dict[str, np.ndarray] | None = None

    # -- structure ------------------------------------------------------------------------
    def _check_names(self) -> None:
        fields = {f.name for f in dataclasses.fields(self.model)}
        for k, v in self.base.items():
            if k not in fields:
                raise ValueError(f"base: {self.model.__name__} has no parameter {k!r}; "
                                 f"parameters: {sorted(fields)}")
            if v is not None and not isinstance(v, (int, float, str)):
                raise ValueError(f"base: {k} must be a number, a string or None, got {v!r}")
        used = self.input.uses()
        reserved = {"point", "time", "spike", "error", *self.measures, *self.record}
        for name in self.space.names:
            if name in reserved:
                raise ValueError(f"swept parameter {name!r} clashes with a result name; "
                                 f"reserved: {sorted(reserved)}")
            if name in self.base:
                raise ValueError(f"parameter {name!r} is both swept and in base")
            if name not in fields and used is not None and name not in used:
                raise ValueError(f"swept parameter {name!r} is neither a parameter of "
                                 f"{self.model.__name__} ({sorted(fields)}) nor read by the "
                                 f"input {self.input!r}")
        if used:
            missing = used - set(self.space.names)
            if missing:
                raise ValueError(f"input {self.input!r} reads {sorted(missing)}, which are not "
                                 f"swept parameters {self.space.names}")
        # check the record names on the model of the first valid set among the first few:
        # an invalid set is not an error of the sweep, it fails alone when run (isolated)
        if self.record and len(self.space) <= 10**6:
            head = self.space.head(_PROBE_SETS)
            for k in range(min(_PROBE_SETS, len(self.space))):
                try:
                    model = self.make_model({n: torch.as_tensor(v[k:k + 1], dtype=torch.float64)
                                             for n, v in head.items()})
                except (ValueError, TypeError):
                    continue
                available = model.state_names + (("refrac",) if model.spiking else ())
                for r in self.record:
                    if r not in available:
                        raise ValueError(f"record: {self.model.__name__} has no state variable "
                                         f"{r!r}; available: {available}")
                break

    @property
    def model_params(self) -> tuple[str, ...]:
        """The swept names that are parameters of the model."""
        fields = {f.name for f in dataclasses.fields(self.model)}
        return tuple(n for n in self.space.names if n in fields)

    def __len__(self) -> int:
        return len(self.space)

    def columns(self) -> dict[str, np.ndarray]:
        """Name -> float64 array ``[N]`` of the swept values (cached)."""
        if self._columns is None:
            self._columns = self.space.columns()
        return self._columns

    def make_model(self, params: Mapping[str, torch.Tensor]) -> NeuronModel:
        """The model for a chunk: base parameters plus swept ones as tensors ``[n]``."""
        kwargs = dict(self.base)
        kwargs.update({k: params[k] for k in self.model_params})
        return self.model(**kwargs)

    def bytes_per_set(self) -> int:
        """Estimated peak memory of one parameter set in a chunk, in bytes.

        ``simulate`` keeps the spikes and each recorded trace per step, then stacks
        them (x2), and the input is ``[T, n]``.
        """
        item = 8 if self.dtype == "float64" else 4
        return item * self.n_steps * (3 + 2 * len(self.record)) + 256

    def result_bytes(self) -> int:
        """Estimated memory of the assembled results of the whole sweep, in bytes.

        Per parameter set: the swept values, one float per measure (``spike_times``
        counted as 16 spikes), each recorded trace, the error text and bookkeeping;
        twice over, for the chunks and the assembled copy. Used by ``run_sweep`` to
        refuse a sweep whose results cannot fit before anything is allocated.
        """
        per_set = 8 * (len(self.space.names) + len(self.measures) + 15 * ("spike_times" in
                                                                           self.measures))
        per_set += 8 * self.n_steps * len(self.record) + 64
        return 2 * len(self.space) * per_set

    def run(self, **kwargs: Any) -> Any:
        """``run_sweep(self, **kwargs)``: the results as an ``xarray.Dataset``."""
        from ._run import run_sweep

        return run_sweep(self, **kwargs)

    # -- description ----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Everything that determines the results, as a JSON-able dict."""
        return {
            "format": "neurosim.sweep/1",
            "model": qualified_name(self.model),
            "space": self.space.describe(),
            "input": self.input.describe(),
            "dt": self.dt,
            "duration": self.duration,
            "method": self.method,
            "base": self.base,
            "measures": {k: "builtin" if fn is None else qualified_name(fn)
                         for k, fn in self.measures.items()},
            "record": list(self.record),
            "seed": self.seed,
            "dtype": self.dtype,
            "options": self.options,
        }

    def to_json(self) -> str:
        """The description as JSON (key order is significant: grid axes, measures)."""
        return json.dumps(self.describe())

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], allow_modules: Sequence[str] | str = ()) -> Sweep:
        """Rebuild a sweep from :meth:`describe` output.

        User functions named in it are imported only from ``allow_modules`` (their
        modules must be listed explicitly); neurosim's own names always resolve.
        """
        from ._inputs import input_from_dict
        from ._space import space_from_dict

        allowed = normalise_allowed(allow_modules)
        try:
            measures = {k: k if v == "builtin" else v for k, v in d["measures"].items()}
            return cls(d["model"], space_from_dict(d["space"]),
                       input_from_dict(d["input"], allowed), dt=d["dt"],
                       duration=d["duration"], method=d["method"], base=d["base"],
                       measures=measures, record=d["record"], seed=d["seed"], dtype=d["dtype"],
                       options=d["options"], allow_modules=allowed)
        except (KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"not a valid sweep description: {type(err).__name__}: "
                             f"{err}") from None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_columns"] = None  # recomputed in the worker; keeps tasks small
        return state

    def __repr__(self) -> str:
        return (f"Sweep({self.model.__name__}, {self.space!r}, input={self.input!r}, "
                f"dt={self.dt}, duration={self.duration}, method={self.method!r}, "
                f"measures={list(self.measures)})")


@dataclass
class Chunk:
    """The results of rows ``start:stop``: arrays with a leading dimension ``stop - start``."""

    start: int
    stop: int
    data: dict[str, np.ndarray]
    error: np.ndarray  # str per row; "" where the set succeeded
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> np.ndarray:
        """Boolean mask of the failed rows."""
        return self.error != ""


def _simulate_rows(sweep: Sweep, rows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    dtype = _DTYPES[sweep.dtype]
    cols = sweep.columns()
    params = {k: torch.as_tensor(v[rows], dtype=dtype) for k, v in cols.items()}
    model = sweep.make_model(params)
    rng = Streams(sweep.seed, rows, sweep.n_steps, sweep.dt, dtype)
    u = sweep.input.build(params, rng)
    import neurosim  # looked up per call: the engine (or a test) may replace it

    res = neurosim.simulate(model, u, sweep.dt, sweep.method, record=sweep.record,
                            **sweep.options)
    n = rows.size
    builtin = tuple(k for k, fn in sweep.measures.items() if fn is None)
    data = builtin_measures(res, builtin)
    for name, fn in sweep.measures.items():
        if fn is not None:
            data[name] = user_measure(name, fn, res)
    for name in sweep.record:
        data[name] = res[name].detach().cpu().to(torch.float64).reshape(sweep.n_steps, n).T.numpy()
    error = np.full(n, "", dtype=object)
    for name, value in res.final_state.items():
        bad = ~torch.isfinite(value.detach()).reshape(n).cpu().numpy()
        for k in np.flatnonzero(bad & (error == "")):
            error[k] = f"non-finite state variable {name!r} at the end of the run"
    return data, error


def _blank(data: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    return {k: np.full((n,) + v.shape[1:], np.nan) for k, v in data.items()}


def _concat(a: Chunk, b: Chunk) -> Chunk:
    keys = list(a.data) or list(b.data)
    data = {}
    for k in keys:
        x = a.data.get(k, _blank(b.data, a.stop - a.start).get(k))
        y = b.data.get(k, _blank(a.data, b.stop - b.start).get(k))
        if x.ndim == 2 and y.ndim == 2 and x.shape[1] != y.shape[1]:  # ragged: pad with NaN
            w = max(x.shape[1], y.shape[1])
            x = np.pad(x, ((0, 0), (0, w - x.shape[1])), constant_values=np.nan)
            y = np.pad(y, ((0, 0), (0, w - y.shape[1])), constant_values=np.nan)
        data[k] = np.concatenate([x, y])
    return Chunk(a.start, b.stop, data, np.concatenate([a.error, b.error]),
                 a.seconds + b.seconds, {"bisections": a.meta.get("bisections", 0)
                                         + b.meta.get("bisections", 0) + 1})


def run_chunk(sweep: Sweep, start: int, stop: int) -> Chunk:
    """Simulate rows ``start:stop`` of ``sweep`` in one vectorised ``simulate`` call.

    A chunk that raises (any ``Exception``: an invalid parameter, a
    :class:`~neurosim.errors.SimulationDiverged`, an error in a user measure; user code's
    ``SystemExit`` and the like are turned into exceptions first) is bisected until the
    failing sets are isolated; each is returned with its error message (and NaN
    measures), the others with results. Non-finite final states mark only their own
    rows as failed.
    """
    t0 = time.perf_counter()
    rows = np.arange(start, stop)
    try:
        data, error = _simulate_rows(sweep, rows)
    except Exception as err:
        if stop - start == 1:
            msg = f"{type(err).__name__}: {err}"
            tb = traceback.extract_tb(err.__traceback__)
            where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
            return Chunk(start, stop, {}, np.array([msg + where], dtype=object),
                         time.perf_counter() - t0)
        mid = (start + stop) // 2
        return _concat(run_chunk(sweep, start, mid), run_chunk(sweep, mid, stop))
    if (error != "").any():
        for v in data.values():
            if v.dtype.kind == "f":
                v[error != ""] = np.nan
    return Chunk(start, stop, data, error, time.perf_counter() - t0)


__all__ = ["Chunk", "Sweep", "run_chunk"]
