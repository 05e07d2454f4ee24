"""TOML run configurations and model introspection, for the ``neurosim`` command.

A run configuration has three tables (time in seconds)::

    [model]
    type = "LIF"            # any model class exported by neurosim
    tau_mem = 20e-3         # parameters: numbers, or arrays for a heterogeneous population
    t_ref = 2e-3

    [input]
    kind = "step"           # constant | step | ramp | noisy | poisson
    amplitude = 1.5
    start = 0.02

    [simulation]
    duration = 0.2
    dt = 1e-4
    method = "exact"
    neurons = 1

Every error is a :class:`ConfigError` (a ``ValueError``) whose message names the bad
key as ``table.key``. :func:`model_classes` and :func:`model_parameters` describe the
models generically from their dataclass fields and docstrings, so models added to
the registry (:func:`neurosim.models.register_model`) appear without changes here.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ._checks import DEFAULT_MEMORY_LIMIT, check_memory
from .inputs import noise_current, poisson_spikes, ramp_current, step_current
from .models.base import NeuronModel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class ConfigError(ValueError):
    """A bad configuration; the message names the offending key as ``table.key``."""


# --------------------------------------------------------------------------------------
# model introspection
# --------------------------------------------------------------------------------------
def model_classes() -> dict[str, type[NeuronModel]]:
    """The registered model classes by name (:data:`neurosim.models.REGISTRY`), sorted."""
    from .models import REGISTRY

    return dict(sorted(REGISTRY.items()))


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a model class: name, default, unit and description (from docs)."""

    name: str
    default: Any
    unit: str
    description: str


_ARG_LINE = re.compile(r"^(\s*)(\w+)\s*:\s*(.*)$")
_NOT_UNIT = re.compile(r"^(default|e\.g\.|see|i\.e\.|or |as )", re.IGNORECASE)


def _doc_args(doc: str | None) -> dict[str, str]:
    """``name: description`` entries of the Google-style ``Args:`` sections of a docstring."""
    out: dict[str, str] = {}
    if not doc:
        return out
    lines = inspect.cleandoc(doc).splitlines()
    in_args, indent, current = False, None, None
    for line in lines:
        stripped = line.strip()
        if re.match(r"^(Args|Arguments|Parameters|Attributes)\s*:", stripped):
            in_args, indent, current = True, None, None
            rest = stripped.split(":", 1)[1].strip()
            m = _ARG_LINE.match(rest)  # "Args: as LIF, plus" has no entry on the same line
            if m and " " not in m.group(2):
                current = m.group(2)
                out[current] = m.group(3).strip()
            continue
        if not in_args:
            continue
        if not stripped:
            current = None
            continue
        lead = len(line) - len(line.lstrip())
        if lead == 0 and re.match(r"^\w[\w ]*:\s*$", stripped):  # the next section
            in_args = False
            continue
        m = _ARG_LINE.match(line)
        if m and (indent is None or len(m.group(1)) <= indent):
            indent = len(m.group(1))
            current = m.group(2)
            out[current] = m.group(3).strip()
        elif current is not None:
            out[current] = (out[current] + " " + stripped).strip()
    return out


def _unit_of(description: str) -> str:
    """The first parenthesised group that looks like a unit: ``(s)``, ``(mV)``, ``(pA)``."""
    for m in re.finditer(r"\(([^()]{1,24})\)", description):
        text = m.group(1).strip()
        if _NOT_UNIT.match(text) or "``" in text:
            continue
        if re.fullmatch(r"[a-z]{4,}", text):  # a plain word such as "(resting)"
            continue
        if len(text.split()) > 3 or re.search(r"et al|\b(1[89]|20)\d\d\b", text):
            continue  # a remark or a citation, not a unit
        return text
    return ""


def _plain(text: str) -> str:
    """Docstring markup removed: ``code``, *emphasis*, :role:`target`."""
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", text)
    return text.replace("``", "").replace("*", "")


def model_parameters(cls: type[NeuronModel]) -> list[ParamInfo]:
    """The parameters of a model class with defaults, units and descriptions.

    Descriptions come from the ``Args:`` section of the class docstring, else of a
    base class, else of another exported model with the same voltage unit documenting
    a field of that name (``IF``'s docstring says "as LIF"). A unit is the first
    parenthesised group of the description (``"membrane time constant (s), > 0"``
    gives ``s``) unless the class declares it in ``param_units``; a field may instead
    carry ``metadata={"unit": ...}``.
    """
    if not (inspect.isclass(cls) and dataclasses.is_dataclass(cls)):
        raise ValueError(f"cls must be a model dataclass, got {cls!r}")
    sources = [_doc_args(c.__doc__) for c in cls.__mro__ if c is not object]
    # borrow only from models with the same voltage unit: "v_th" is mV in HH, not in LIF
    sources += [_doc_args(c.__doc__) for c in model_classes().values()
                if c is not cls and c.voltage_unit == cls.voltage_unit]
    out = []
    for f in dataclasses.fields(cls):
        descs = [s[f.name] for s in sources if f.name in s]
        desc = _plain(descs[0]) if descs else ""
        declared = cls.param_units.get(f.name, "")  # the model's own declaration wins
        unit = str(f.metadata.get("unit", "")) or \
            ("dimensionless" if declared == "1" else declared) or next(
            (u for u in map(_unit_of, descs) if u), "")
        if not unit and f.name.startswith("v_"):
            unit = cls.voltage_unit
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out.append(ParamInfo(f.name, default, unit, desc))
    return out


def describe_models(names: list[str] | None = None) -> str:
    """Human-readable listing of models, parameters, defaults and units (``neurosim models``)."""
    classes = model_classes()
    if names:
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise ConfigError(f"unknown model {unknown[0]!r}; available: {', '.join(classes)}")
        classes = {n: classes[n] for n in names}
    blocks = []
    for name, cls in classes.items():
        doc = inspect.getdoc(cls) or ""
        summary = doc.splitlines()[0] if doc else ""
        lines = [f"{name}: {summary}"]
        try:
            inst = cls()
            state = ", ".join(inst.state_names)
            mode = getattr(inst, "input_mode", None) or "current"
            lines.append(f"  state: {state}; spiking: {'yes' if cls.spiking else 'no'}; "
                         f"input: {mode} ({cls.input_unit}); voltage unit: {cls.voltage_unit}")
        except Exception:  # noqa: BLE001 - a model without defaults: describe its fields only
            lines.append(f"  voltage unit: {cls.voltage_unit}; input unit: {cls.input_unit}")
        params = model_parameters(cls)
        rows = [(p.name, "(required)" if p.default is dataclasses.MISSING else _fmt(p.default),
                 p.unit or "-", p.description) for p in params]
        head = ("parameter", "default", "unit", "description")
        widths = [max(len(r[j]) for r in [*rows, head]) for j in range(3)]
        for r in [head, *rows]:
            lines.append("  " + "  ".join(f"{c:<{w}}" for c, w in zip(r[:3], widths, strict=True))
                         + f"  {r[3]}".rstrip())
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


# --------------------------------------------------------------------------------------
# reading configurations
# --------------------------------------------------------------------------------------
def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a missing file or a syntax error is a :class:`ConfigError`."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def _table(cfg: Mapping[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    if name not in cfg:
        if required:
            raise ConfigError(f"{name}: missing table [{name}]")
        return {}
    value = cfg[name]
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name}: must be a table [{name}], got {type(value).__name__}")
    return dict(value)


def _check_keys(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key; allowed: {', '.join(sorted(allowed))}")


def _number(table: Mapping[str, Any], key: str, where: str, default: Any = ...,
            positive: bool = False, nonnegative: bool = False) -> float:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}.{key}: missing (a number is required)")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}.{key}: must be a finite number, got {value!r}")
    if positive and not value > 0:
        raise ConfigError(f"{where}.{key}: must be > 0, got {value!r}")
    if nonnegative and value < 0:
        raise ConfigError(f"{where}.{key}: must be >= 0, got {value!r}")
    return float(value)


def _array(table: Mapping[str, Any], key: str, where: str, dtype: torch.dtype,
           default: Any = ...) -> torch.Tensor:
    """A number or (nested) array of numbers as a tensor."""
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}.{key}: missing (a number or an array is required)")
        return torch.as_tensor(default, dtype=dtype)
    value = table[key]
    try:
        if isinstance(value, bool) or (isinstance(value, list) and _has_bool(value)):
            raise TypeError("booleans are not numbers")
        out = torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ConfigError(f"{where}.{key}: must be a number or an array of numbers, "
                          f"got {value!r} ({err})") from None
    if not bool(torch.isfinite(out).all()):
        raise ConfigError(f"{where}.{key}: must be finite, got {value!r}")
    return out


def _has_bool(value: list) -> bool:
    return any(_has_bool(v) if isinstance(v, list) else isinstance(v, bool) for v in value)


def build_model(table: Mapping[str, Any], where: str = "model",
                dtype: torch.dtype = torch.float64) -> NeuronModel:
    """A model from a config table: ``type`` names the class, other keys are its parameters.

    Arrays become tensor parameters (a heterogeneous population).
    """
    table = dict(table)
    classes = model_classes()
    kind = table.pop("type", None)
    if kind is None:
        raise ConfigError(f"{where}.type: missing; one of {', '.join(classes)}")
    if not isinstance(kind, str) or kind not in classes:
        raise ConfigError(f"{where}.type: unknown model {kind!r}; one of {', '.join(classes)}")
    cls = classes[kind]
    fields = {f.name for f in dataclasses.fields(cls)}
    _check_keys(table, where, fields | {"type"})
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, list):
            kwargs[key] = _array(table, key, where, dtype)
        elif isinstance(value, Mapping):
            raise ConfigError(f"{where}.{key}: must be a number, string or array, got a table")
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        text = str(err)
        name = next((k for k in kwargs if text.startswith(k)), None)
        prefix = f"{where}.{name}" if name else where
        raise ConfigError(f"{prefix}: {text}") from None


INPUT_KINDS: dict[str, tuple[set[str], set[str]]] = {
    # kind: (required keys, optional keys)
    "constant": ({"amplitude"}, set()),
    "step": ({"amplitude"}, {"start", "stop", "baseline"}),
    "ramp": ({"amplitude_end"}, {"amplitude_start", "start", "stop"}),
    "noisy": ({"std"}, {"mean", "tau", "seed"}),
    "poisson": ({"rate", "weight"}, {"seed"}),
}


def _fits(value: torch.Tensor, shape: tuple[int, ...]) -> bool:
    try:
        torch.broadcast_to(value, tuple(shape))
    except RuntimeError:
        return False
    return True


def build_input(table: Mapping[str, Any], steps: int, dt: float, shape: tuple[int, ...],
                input_mode: str = "current", where: str = "input",
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""The input tensor ``[steps, *shape]`` described by an ``[input]`` table.

    Kinds (values may be arrays broadcast over the neurons; times in seconds), each made
    by a function of :mod:`neurosim.inputs`:

    * ``constant``: ``amplitude``.
    * ``step``: ``baseline`` (0) before ``start`` (0) and from ``stop`` (end) on,
      ``amplitude`` in between.
    * ``ramp``: linear from ``amplitude_start`` (0) at ``start`` (0) to ``amplitude_end``
      at ``stop`` (end), held outside.
    * ``noisy``: ``mean`` (0) plus Gaussian noise of standard deviation ``std``: white
      (independent per step) without ``tau``, else an Ornstein-Uhlenbeck process with
      correlation time ``tau`` (s), sampled exactly:
      :math:`x_{k+1} = \mu + (x_k - \mu)e^{-dt/\tau} + \sigma\sqrt{1 - e^{-2dt/\tau}}\,\xi_k`,
      started from its stationary distribution. Seeded by ``seed`` (0).
    * ``poisson``: independent Poisson spike trains of ``rate`` (Hz) per neuron, each
      spike carrying ``weight``: added to the model's jump target in ``"jump"`` input
      mode, a current pulse ``weight/dt`` over one step (charge ``weight``) in
      ``"current"`` mode. Seeded by ``seed`` (0).
    """
    table = dict(table)
    kind = table.pop("kind", None)
    if not isinstance(kind, str) or kind not in INPUT_KINDS:
        raise ConfigError(f"{where}.kind: must be one of {', '.join(INPUT_KINDS)}, got {kind!r}")
    required, optional = INPUT_KINDS[kind]
    _check_keys(table, where, required | optional | {"kind"})
    for key in sorted(required):
        if key not in table:
            raise ConfigError(f"{where}.{key}: missing (required for kind = {kind!r})")
    values: dict[str, Any] = {}
    for key in table:
        if key == "seed":
            values[key] = int(_number(table, key, where, 0, nonnegative=True))
        elif key == "tau" or key in ("start", "stop"):
            values[key] = _number(table, key, where)
        else:
            values[key] = _array(table, key, where, dtype)
    func = {"constant": step_current, "step": step_current, "ramp": ramp_current,
            "noisy": noise_current, "poisson": poisson_spikes}[kind]
    args = {k: v for k, v in values.items() if k != "weight"}
    try:
        out = func(steps, dt, shape=tuple(shape), dtype=dtype, **args)
    except ValueError as err:
        text = str(err)
        key = next((k for k in sorted(values, key=len, reverse=True) if text.startswith(k)), None)
        raise ConfigError(f"{where}.{key}: {text}" if key else f"{where}: {text}") from None
    if kind == "poisson":
        weight = values["weight"]
        if not _fits(weight, shape):
            raise ConfigError(f"{where}.weight: shape {tuple(weight.shape)} does not broadcast "
                              f"with the neuron shape {tuple(shape)}")
        # a spike is a jump of `weight`, or in current mode a pulse weight/dt over one step
        return out * weight if input_mode == "jump" else out * (weight / dt)
    return out


SIM_KEYS = {"duration", "dt", "method", "neurons", "record", "dtype", "rtol", "atol"}


@dataclass
class RunConfig:
    """A validated ``neurosim run`` configuration."""

    model: NeuronModel
    input: torch.Tensor
    dt: float
    method: str
    record: tuple[str, ...]
    options: dict[str, Any]
    raw: dict[str, Any]


def parse_run_config(cfg: Mapping[str, Any],
                     max_memory: int = DEFAULT_MEMORY_LIMIT) -> RunConfig:
    """Validate a run configuration (the dict of a TOML file) and build model and input.

    Args:
        cfg: the parsed TOML.
        max_memory: bound in bytes on the estimated memory of the run (input, spikes
            and recorded traces, ``steps x neurons``); a larger run is refused with a
            :class:`ConfigError` before anything is allocated (``--max-memory``).
    """
    _check_keys(cfg, "config", {"model", "input", "simulation"})
    sim = _table(cfg, "simulation")
    _check_keys(sim, "simulation", SIM_KEYS)
    dtypes = {"float64": torch.float64, "float32": torch.float32}
    dtype_name = sim.get("dtype", "float64")
    if not isinstance(dtype_name, str) or dtype_name not in dtypes:
        raise ConfigError(f"simulation.dtype: must be 'float64' or 'float32', got {dtype_name!r}")
    dtype = dtypes[dtype_name]
    duration = _number(sim, "duration", "simulation", positive=True)
    dt = _number(sim, "dt", "simulation", 1e-4, positive=True)
    ratio = duration / dt
    if not math.isfinite(ratio) or ratio > 2**62:
        raise ConfigError(f"simulation.dt: duration {duration} s / dt {dt} s is not a usable "
                          f"number of steps ({ratio:g})")
    steps = int(round(ratio))
    if steps < 1:
        raise ConfigError(f"simulation.duration: {duration} s is shorter than one step dt={dt} s")
    from .integrators import METHODS

    method = sim.get("method", "exact")
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise ConfigError(f"simulation.method: must be one of {', '.join(sorted(METHODS))}, "
                          f"got {method!r}")
    neurons = sim.get("neurons", 1)
    if isinstance(neurons, bool) or not isinstance(neurons, int) or neurons < 1:
        raise ConfigError(f"simulation.neurons: must be an integer >= 1, got {neurons!r}")
    options = {}
    for key in ("rtol", "atol"):
        if key in sim:
            options[key] = _number(sim, key, "simulation", positive=True)
    model = build_model(_table(cfg, "model"), dtype=dtype)
    try:
        shape = tuple(torch.broadcast_shapes((neurons,), model.param_shape()))
    except RuntimeError:
        raise ConfigError(f"simulation.neurons: {neurons} does not broadcast with the parameter "
                          f"shape {tuple(model.param_shape())} of the model") from None
    record = sim.get("record", "all")
    available = model.state_names + (("refrac",) if model.spiking else ())
    n_traces = len(model.state_names) if record == "all" else (
        len(record) if isinstance(record, list) else 1)
    item = 8 if dtype == torch.float64 else 4
    try:
        # per step: the time loop's per-step tensors (about 1.5 KiB, measured) and, per
        # neuron, the input, spikes and traces with their stacked copies
        per_step = 2048 + item * math.prod(shape) * (3 + 2 * (n_traces + 1))
        check_memory(f"the run ({steps} steps x {math.prod(shape)} neurons)",
                     steps * per_step, max_memory, "--max-memory")
    except ValueError as err:
        raise ConfigError(f"simulation: {err}") from None
    if record == "all":
        record = list(model.state_names)
    if isinstance(record, str):
        record = [record]
    if not isinstance(record, list) or not all(isinstance(r, str) for r in record):
        raise ConfigError(f"simulation.record: must be 'all' or a list of names, got {record!r}")
    for name in record:
        if name not in available:
            raise ConfigError(f"simulation.record: {type(model).__name__} has no state variable "
                              f"{name!r}; available: {', '.join(available)}")
    if model.membrane not in record and model.membrane in model.state_names:
        record = [model.membrane, *record]
    mode = "jump" if model.input_target is not None else "current"
    u = build_input(_table(cfg, "input"), steps, dt, shape, mode, dtype=dtype)
    return RunConfig(model, u, dt, method, tuple(record), options, dict(cfg))


__all__ = ["ConfigError", "INPUT_KINDS", "ParamInfo", "RunConfig", "build_input", "build_model",
           "describe_models", "load_toml", "model_classes", "model_parameters",
           "parse_run_config"]
