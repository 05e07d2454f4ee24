"""Results in and out: save and load a :class:`~neurosim.Result`, and hand it to Neo.

The file format (``neurosim-result``, version 1) is an uncompressed (or, on request,
compressed) NumPy ``.npz`` archive: a JSON header and one array per tensor. It is
read with :func:`numpy.load` alone (``allow_pickle=False``), so any tool can open it;
``docs/io.md`` lists every key with its dtype and unit.

* :func:`save_result` / :func:`load_result` (also ``neurosim.load``): the round
  trip gives back equal times, traces, spike events, final state, model, dt,
  method and shape.
* :func:`to_neo`: a :class:`neo.Segment` of :class:`neo.SpikeTrain` (seconds) and
  :class:`neo.AnalogSignal` (the model's units), for Elephant and the Neo ecosystem;
  needs the optional extra ``pip install "neurosim[neo]"``.

Only the documented public attributes of a :class:`~neurosim.Result` are read:
``t, traces, spike_index, spike_time, final_state, model, dt, method, shape``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from .models import REGISTRY, NeuronModel
from .state import State

#: the format name written in every header
FORMAT = "neurosim-result"
#: the format version this module writes; it reads this version and older ones
FORMAT_VERSION = 1

#: the model classes a file may name (neurosim.models.REGISTRY: the built-in ones and those
#: registered with register_model); nothing else is ever looked up or imported
MODEL_REGISTRY: dict[str, type[NeuronModel]] = REGISTRY

PathLike = str | os.PathLike


def _neurosim_version() -> str:
    from . import __version__

    return __version__


# -- tensors <-> arrays -----------------------------------------------------------------
def _to_array(x: Any, what: str) -> tuple[np.ndarray, str]:
    """A NumPy array of ``x`` and the torch dtype name to restore (bfloat16 etc. as float32)."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.to(torch.float32)
        return t.numpy().copy(), dtype
    if isinstance(x, np.ndarray):
        return x, "numpy"
    raise ValueError(f"{what} must be a tensor or an array, got {type(x).__name__}")


def _from_array(a: np.ndarray, dtype: str, device: torch.device | str | None) -> Any:
    if dtype == "numpy":
        return a
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t.to(dtype=getattr(torch, dtype), device=device)


def model_to_dict(model: NeuronModel, arrays: dict[str, np.ndarray], prefix: str,
                  dtypes: dict[str, str]) -> dict[str, Any]:
    """JSON description of ``model``; tensor parameters go to ``arrays`` under ``prefix``."""
    cls = type(model)
    if MODEL_REGISTRY.get(cls.__name__) is not cls:
        raise ValueError(f"model: only neurosim's own model classes can be saved "
                         f"({sorted(MODEL_REGISTRY)}), got {cls.__module__}.{cls.__qualname__}")
    params: dict[str, Any] = {}
    for f in dataclasses.fields(model):
        if not f.init:
            continue
        value = getattr(model, f.name)
        if isinstance(value, torch.Tensor):
            key = prefix + f.name
            arrays[key], dtypes[key] = _to_array(value, f"parameter {f.name}")
            params[f.name] = {"array": key}
        elif value is None or isinstance(value, str | bool | int | float):
            params[f.name] = value
        else:
            raise ValueError(f"model parameter {f.name}={value!r} ({type(value).__name__}) "
                             f"cannot be saved: expected a float, tensor, string or None")
    return {"class": cls.__name__, "params": params}


def model_from_dict(spec: dict[str, Any], arrays: Any, dtypes: dict[str, str],
                    device: torch.device | str | None = None) -> NeuronModel:
    """Rebuild a model saved by :func:`model_to_dict` (validated by its constructor)."""
    name = spec.get("class")
    cls = MODEL_REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"model class {name!r} is not a neurosim model; known: "
                         f"{sorted(MODEL_REGISTRY)}")
    params = {}
    for key, value in spec["params"].items():
        if isinstance(value, dict):
            params[key] = _from_array(arrays[value["array"]], dtypes[value["array"]], device)
        else:
            params[key] = value
    return cls(**params)


# -- Result construction: the one place that knows Result's constructor ---------------------
def _make_result(**fields: Any):
    """Build a :class:`~neurosim.Result` from its public fields.

    ``fields``: ``t, traces, spike_index, spike_time, final_state, model, dt, method``
    and ``shape`` (the shape of one time slice). The Result keeps the spike events
    (``spike_index``, ``spike_time``) and builds a dense raster only when asked.
    """
    from .result import Result

    shape = tuple(fields.pop("shape"))
    t = fields["t"]
    return Result(spikes=None, shape=shape, n_steps=int(t.shape[0]), dtype=t.dtype, **fields)


# -- save / load -------------------------------------------------------------------------
def save_result(result: Any, path: PathLike, *, compress: bool = False) -> None:
    """Save a :class:`~neurosim.Result` to ``path`` in the ``neurosim-result`` format.

    Args:
        result: the result of :func:`neurosim.simulate`.
        path: the file to write (conventionally ``*.npz``; no suffix is added).
        compress: zip-deflate the arrays (smaller, slower).

    The file holds the times ``t`` (s), the spike events (``spike_index`` int64 flat
    neuron index, ``spike_time`` float64 s), every recorded trace (the model's units),
    the final state, the model's class and parameters, ``dt`` (s), the method and the
    shape; see ``docs/io.md``. Tensors are detached and copied to the CPU.

    Raises:
        ValueError: the model is not one of neurosim's own classes, or a parameter
            is of a type that cannot be stored.
    """
    arrays: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}

    def put(key: str, value: Any, what: str) -> None:
        arrays[key], dtypes[key] = _to_array(value, what)

    put("t", result.t, "result.t")
    arrays["spike_index"] = np.asarray(result.spike_index, dtype=np.int64)
    arrays["spike_time"] = np.asarray(result.spike_time, dtype=np.float64)
    for name, trace in result.traces.items():
        put("trace/" + name, trace, f"trace {name!r}")
    for name, value in result.final_state.items():
        put("final_state/" + name, value, f"final_state[{name!r}]")
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "neurosim_version": _neurosim_version(),
        "model": model_to_dict(result.model, arrays, "param/", dtypes),
        "dt": float(result.dt),
        "method": str(result.method),
        "shape": [int(n) for n in result.shape],
        "traces": list(result.traces),
        "final_state": list(result.final_state),
        "dtypes": dtypes,
    }
    arrays["header"] = np.array(json.dumps(header))
    writer = np.savez_compressed if compress else np.savez
    with open(path, "wb") as f:
        writer(f, **arrays)


def read_header(path: PathLike) -> dict[str, Any]:
    """The JSON header of a ``neurosim-result`` file, checked for format name and version."""
    with np.load(path, allow_pickle=False) as data:
        return _check_header(data, path)


def _check_header(data: Any, path: PathLike) -> dict[str, Any]:
    if "header" not in data.files:
        raise ValueError(f"{os.fspath(path)!r} is not a neurosim result file (no 'header' "
                         f"entry; entries: {sorted(data.files)[:8]})")
    header = json.loads(str(data["header"][()]))
    if header.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)!r}: format {header.get('format')!r} is not "
                         f"{FORMAT!r}")
    version = header.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{os.fspath(path)!r}: format_version={version!r} is not supported; "
                         f"this neurosim ({_neurosim_version()}) reads versions 1 to "
                         f"{FORMAT_VERSION} (written by neurosim "
                         f"{header.get('neurosim_version')!r}; upgrade neurosim to read it)")
    return header


def load_result(path: PathLike, *, device: torch.device | str | None = None):
    """Load a :class:`~neurosim.Result` written by :func:`save_result`.

    Args:
        path: the ``.npz`` file.
        device: where to put the tensors (default: the CPU).

    Returns:
        A Result equal to the saved one (times, traces, spike events, final state,
        model and its parameters, dt, method, shape).

    Raises:
        ValueError: not a neurosim result file, an unsupported ``format_version``,
            or a model class that neurosim does not have.
    """
    with np.load(path, allow_pickle=False) as data:
        header = _check_header(data, path)
        dtypes = header["dtypes"]

        def get(key: str) -> Any:
            return _from_array(data[key], dtypes[key], device)

        model = model_from_dict(header["model"], data, dtypes, device)
        fields = dict(
            t=get("t"),
            traces={name: get("trace/" + name) for name in header["traces"]},
            spike_index=np.asarray(data["spike_index"], dtype=np.int64),
            spike_time=np.asarray(data["spike_time"], dtype=np.float64),
            final_state=State({name: get("final_state/" + name)
                               for name in header["final_state"]}),
            model=model,
            dt=float(header["dt"]),
            method=header["method"],
            shape=tuple(header["shape"]),
        )
    return _make_result(**fields)


# -- Neo -----------------------------------------------------------------------------------
def _import_neo():
    try:
        import neo
        import quantities as pq
    except ImportError as err:
        raise ImportError(f"to_neo needs the packages neo and quantities ({err}); install "
                          f'them with: pip install "neurosim[neo]"') from None
    return neo, pq


def _unit(pq: Any, unit: str) -> Any:
    """A ``quantities`` unit from a model's unit string ("mV", "µA/cm²", "dimensionless")."""
    text = unit.strip().replace("µ", "u").replace("²", "**2").replace("³", "**3")
    if text in ("", "1", "dimensionless"):
        return pq.dimensionless
    try:
        return pq.Quantity(1.0, text).units
    except (LookupError, ValueError, SyntaxError, TypeError):
        raise ValueError(f"unit {unit!r} of the model is not understood by quantities") from None


def trace_unit(model: NeuronModel, name: str) -> str:
    """The unit of state variable ``name`` of ``model`` (``refrac`` is in seconds)."""
    if name == "refrac":
        return "s"
    if name == type(model).membrane:
        return type(model).voltage_unit
    return type(model).state_units.get(name, "dimensionless")


def to_neo(result: Any, neurons: Iterable[int] | None = None):
    """The result as a :class:`neo.Segment`, for Elephant and the Neo ecosystem.

    Args:
        result: a :class:`~neurosim.Result`.
        neurons: flat (row-major) indices of the neurons to include; default all.

    Returns:
        A ``neo.Segment`` with one ``neo.SpikeTrain`` per neuron (times in s,
        ``t_start`` 0, ``t_stop`` the simulated duration ``len(t)·dt``; annotated with
        ``neuron`` (flat index) and ``neuron_index`` (index in ``result.shape``)) and
        one ``neo.AnalogSignal`` per recorded trace (shape ``[T, n_neurons]``, sampling
        period dt, ``t_start`` dt since traces hold the state at the end of each step,
        units from the model's ``voltage_unit`` / ``state_units``; named after the
        variable, annotated with the neuron indices in ``array_annotations``).

    Raises:
        ImportError: neo or quantities is missing (``pip install "neurosim[neo]"``).
        ValueError: a neuron index out of range.
    """
    neo, pq = _import_neo()
    shape = tuple(result.shape)
    n = int(np.prod(shape, dtype=np.int64))
    if neurons is None:
        idx = np.arange(n)
    else:
        idx = np.asarray(list(neurons), dtype=np.int64).reshape(-1)
        bad = idx[(idx < 0) | (idx >= n)]
        if bad.size:
            raise ValueError(f"neurons: index {int(bad[0])} is out of range for {n} neurons "
                             f"(shape {shape})")
    dt = float(result.dt)
    n_steps = int(result.t.shape[0])
    spike_time = np.asarray(result.spike_time, dtype=np.float64)
    spike_index = np.asarray(result.spike_index, dtype=np.int64)
    t_stop = max(n_steps * dt, float(spike_time.max()) if spike_time.size else 0.0)
    model_name = type(result.model).__name__
    seg = neo.Segment(name=f"neurosim {model_name}",
                      description=f"{model_name}, dt={dt} s, method={result.method}")
    seg.annotate(model=model_name, dt=dt, method=str(result.method), shape=list(shape))
    order = np.argsort(spike_index, kind="stable")
    sorted_index, sorted_time = spike_index[order], spike_time[order]
    bounds = np.searchsorted(sorted_index, np.stack([idx, idx + 1]))
    for k, flat in enumerate(idx):
        times = np.sort(sorted_time[bounds[0, k]:bounds[1, k]])
        st = neo.SpikeTrain(times, units=pq.s, t_start=0.0 * pq.s, t_stop=t_stop * pq.s,
                            name=f"neuron {int(flat)}")
        st.annotate(neuron=int(flat),
                    neuron_index=[int(i) for i in np.unravel_index(int(flat), shape)])
        seg.spiketrains.append(st)
    for name, trace in result.traces.items():
        data = trace.detach().cpu().reshape(n_steps, n)[:, torch.from_numpy(idx)]
        if data.dtype not in (torch.float32, torch.float64):
            data = data.to(torch.float64)
        unit = _unit(pq, trace_unit(result.model, name))
        sig = neo.AnalogSignal(data.numpy(), units=unit, sampling_period=dt * pq.s,
                               t_start=dt * pq.s, name=name,
                               array_annotations={"neuron": idx.copy()})
        seg.analogsignals.append(sig)
    return seg


# -- network monitors ------------------------------------------------------------------
MONITOR_FORMAT = "neurosim-monitor"


def save_monitor(monitor: Any, path: PathLike, *, compress: bool = False) -> None:
    """Save a network monitor (:class:`~neurosim.SpikeMonitor` or
    :class:`~neurosim.StateMonitor`) to ``path`` as ``.npz`` with a JSON header.

    Keys: ``header`` (JSON: format ``"neurosim-monitor"``, version, neurosim version,
    ``kind`` ``"spikes"`` or ``"states"``, the source's size ``n``, the recorded variable
    names); spikes: ``i`` (int64 neuron index), ``t`` (float64 s); states: ``t`` (float64
    sample times, s), ``neurons`` (int64) and ``var/<name>`` (``[n_samples, n_neurons]``).
    """
    from .network import SpikeMonitor, StateMonitor

    if isinstance(monitor, SpikeMonitor):
        header = {"kind": "spikes", "n": int(monitor.source.n), "variables": []}
        arrays = {"i": np.asarray(monitor.i, np.int64), "t": np.asarray(monitor.t, np.float64)}
    elif isinstance(monitor, StateMonitor):
        header = {"kind": "states", "n": int(monitor.population.n),
                  "variables": list(monitor.variables)}
        arrays = {"t": np.asarray(monitor.t, np.float64),
                  "neurons": np.asarray(monitor.neurons, np.int64)}
        for v in monitor.variables:
            arrays[f"var/{v}"] = np.asarray(getattr(monitor, v))
    else:
        raise ValueError(f"monitor must be a SpikeMonitor or StateMonitor, got {monitor!r}")
    header.update(format=MONITOR_FORMAT, format_version=FORMAT_VERSION,
                  neurosim_version=_neurosim_version())
    arrays["header"] = np.array(json.dumps(header))
    (np.savez_compressed if compress else np.savez)(path, **arrays)


def load_monitor(path: PathLike) -> dict[str, Any]:
    """Read a monitor saved by :func:`save_monitor`: a dict with ``kind``, ``n``, ``t`` and
    ``i`` (spikes) or ``neurons`` and one array per variable (states)."""
    with np.load(path, allow_pickle=False) as data:
        if "header" not in data:
            raise ValueError(f"{path} is not a neurosim monitor file (no header)")
        header = json.loads(str(data["header"]))
        if header.get("format") != MONITOR_FORMAT:
            raise ValueError(f"{path}: format {header.get('format')!r}, expected "
                             f"{MONITOR_FORMAT!r}")
        if int(header.get("format_version", -1)) > FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {header['format_version']} is newer than "
                             f"this neurosim reads ({FORMAT_VERSION})")
        out: dict[str, Any] = {"kind": header["kind"], "n": header["n"],
                               "t": np.array(data["t"])}
        if header["kind"] == "spikes":
            out["i"] = np.array(data["i"])
        else:
            out["neurons"] = np.array(data["neurons"])
            for v in header["variables"]:
                out[v] = np.array(data[f"var/{v}"])
    return out


def monitor_to_neo(monitor: Any, t_stop: float | None = None):
    """A network monitor as a ``neo.Segment``: a SpikeMonitor gives one ``SpikeTrain`` per
    neuron (s, ``t_start`` 0, ``t_stop`` given or the last spike); a StateMonitor one
    ``AnalogSignal`` per variable (``[n_samples, n_neurons]``, its sampling interval,
    units from the population's model)."""
    from .network import SpikeMonitor, StateMonitor

    neo, pq = _import_neo()
    seg = neo.Segment(name="neurosim network monitor")
    if isinstance(monitor, SpikeMonitor):
        trains = monitor.spike_trains()
        last = max((float(tr[-1]) for tr in trains if tr.size), default=0.0)
        stop = last if t_stop is None else float(t_stop)
        if stop < last:
            raise ValueError(f"t_stop={t_stop!r} s is before the last spike at {last} s")
        for k, tr in enumerate(trains):
            st = neo.SpikeTrain(tr, units=pq.s, t_start=0.0 * pq.s, t_stop=stop * pq.s)
            st.annotate(neuron=k)
            seg.spiketrains.append(st)
        return seg
    if isinstance(monitor, StateMonitor):
        t = np.asarray(monitor.t)
        if t.size < 2:
            raise ValueError("monitor_to_neo needs at least two samples of a StateMonitor")
        model = monitor.population.model
        for v in monitor.variables:
            sig = neo.AnalogSignal(np.asarray(getattr(monitor, v)),
                                   units=_unit(pq, trace_unit(model, v)),
                                   sampling_period=float(t[1] - t[0]) * pq.s,
                                   t_start=float(t[0]) * pq.s, name=v)
            sig.array_annotate(neuron=np.asarray(monitor.neurons))
            seg.analogsignals.append(sig)
        return seg
    raise ValueError(f"monitor must be a SpikeMonitor or StateMonitor, got {monitor!r}")


__all__ = ["MONITOR_FORMAT", "load_monitor", "monitor_to_neo", "save_monitor", "FORMAT",
           "FORMAT_VERSION", "MODEL_REGISTRY", "load_result", "read_header",
           "save_result", "to_neo", "trace_unit"]
