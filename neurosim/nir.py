r"""NIR (Neuromorphic Intermediate Representation) export and import.

NIR describes a network as a graph of continuous-time nodes (time constants in
seconds): ``LI``, ``CubaLI``, ``LIF``, ``CubaLIF``, ``IF``, ``Affine``, ``Linear``,
``Scale``, with ``Input`` and ``Output`` nodes. neurosim's models *are* these ODEs,
so the mapping is direct (see ``docs/io.md`` for every field):

=================================  ==============================================
neurosim                           NIR
=================================  ==============================================
``LI`` (no ``tau_syn``)            ``LI(tau=tau_mem, r, v_leak)``
``LI`` with ``tau_syn``            ``CubaLI(tau_syn, tau_mem, r, v_leak, w_in)``
``LIF`` (no ``tau_syn``)           ``LIF(tau=tau_mem, r, v_leak, v_threshold=v_th, v_reset)``
``LIF`` with ``tau_syn``           ``CubaLIF(tau_syn, tau_mem, r, v_leak, v_threshold,
                                   v_reset, w_in)``
``IF`` (no ``tau_syn``)            ``IF(r=r/tau_mem, v_threshold, v_reset)``
``torch.nn.Linear``                ``Affine(weight, bias)`` / ``Linear(weight)`` without bias
``recurrent=True`` layer           a cycle: neuron -> ``Linear(W)`` -> neuron
=================================  ==============================================

Input modes. NIR's input is a signal held over each step (zero-order hold), which
is neurosim's ``input_mode="current"``: exported with ``w_in = 1``. A ``"jump"``
input (``i += u`` at the start of a step) is exported with the same charge per
step under that reading: ``w_in = tau_syn/dt`` (CubaLI/CubaLIF), ``r = tau_mem/dt``
(LI/LIF without synapse), ``r = 1/dt`` (IF) — the convention snntorch uses.

What NIR cannot say (``reset="subtract"``/``"none"``, ``t_ref > 0``, the
integrator, ``dt``, the surrogate, learned parameters, ...) travels in the
``metadata`` of each node and of the graph, as a JSON string under the key
``"neurosim"``; :func:`import_nir` restores it exactly when the node's NIR fields
still agree with it, so neurosim -> NIR -> neurosim is exact. Other tools ignore
it and see a reset-to-value neuron without refractoriness (:func:`export_nir`
warns when that changes the dynamics).

The ``nir`` package is imported only inside the functions (``pip install
"neurosim[nir]"``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .models import IF, LI, LIF, NeuronModel
from .nn.modules import IFLayer, Layer, LIFLayer, LILayer, NeuronModule

#: the model classes that have a NIR node, and their layers
LAYERS: dict[type[NeuronModel], type[Layer]] = {LI: LILayer, LIF: LIFLayer, IF: IFLayer}
_MODELS = {cls.__name__: cls for cls in LAYERS}
_META = "neurosim"
_INPUT_MODES = (None, "current", "jump")


def _nir():
    try:
        import nir
    except ImportError as err:
        raise ImportError(f"neurosim.nir needs the package nir ({err}); install it with: "
                          f'pip install "neurosim[nir]"') from None
    return nir


def _version() -> str:
    from . import __version__

    return __version__


# -- small modules the imported networks use ----------------------------------------------
class Sequential(torch.nn.Sequential):
    """A chain of modules on time-major tensors ``[T, *batch, features]``.

    Like :class:`torch.nn.Sequential`, except that neurosim layers return
    ``(output, state)``: the output is passed on. :func:`import_nir` returns one;
    :func:`export_nir` accepts it (and any ``torch.nn.Sequential``).
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        """Run every module in turn; returns the last one's output."""
        return self.outputs(input)[-1]

    def outputs(self, input: torch.Tensor) -> list[torch.Tensor]:
        """The output of every module (spikes of spiking layers, v of LI layers)."""
        out, x = [], input
        for module in self:
            x = module(x)
            if isinstance(x, tuple):
                x = x[0]
            out.append(x)
        return out


class Scale(torch.nn.Module):
    """Elementwise scaling ``y = x * scale`` (NIR's ``Scale`` node)."""

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input * self.scale


class Shift(torch.nn.Module):
    """Elementwise constant ``y = x + bias``: the bias of a recurrent ``Affine`` node."""

    def __init__(self, bias: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("bias", torch.as_tensor(bias))

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input + self.bias


# -- JSON for parameters (exact: floats as repr, tensors as lists of their values) ------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu()
        return {"tensor": t.to(torch.float64).reshape(-1).tolist(), "shape": list(t.shape),
                "dtype": str(t.dtype).removeprefix("torch.")}
    return value


def _unjson(value: Any) -> Any:
    if isinstance(value, dict) and "tensor" in value:
        return torch.tensor(value["tensor"], dtype=torch.float64).to(
            getattr(torch, value["dtype"])).reshape(value["shape"])
    return value


def _decode(meta: Any) -> dict[str, Any] | None:
    raw = meta.get(_META) if isinstance(meta, dict) else None
    if raw is None:
        return None
    if isinstance(raw, bytes | np.bytes_):
        raw = raw.decode("utf8")
    try:
        return json.loads(str(raw))
    except (TypeError, ValueError):
        return None


# -- neurosim model <-> NIR fields --------------------------------------------------------
def _array(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape).astype(np.float32)


def nir_fields(model: NeuronModel, dt: float, shape: Sequence[int]) -> tuple[str, dict]:
    """The NIR node type and its parameter arrays (float32, ``shape``) for ``model``.

    Args:
        model: an :class:`~neurosim.LI`, :class:`~neurosim.LIF` or :class:`~neurosim.IF`.
        dt: the step in seconds (used only for ``input_mode="jump"``, see the module doc).
        shape: the neuron shape.

    Raises:
        ValueError: a model NIR has no node for (ALIF, AdEx, ..., IF with a synapse).
    """
    cls = type(model)
    if cls not in LAYERS:
        raise ValueError(f"model: NIR has no node for {cls.__name__}; export LI, LIF or IF")
    shape = tuple(int(n) for n in shape)
    p = model.params()
    jump = p["input_mode"] == "jump"
    syn = p["tau_syn"] is not None
    r = p["r"]
    if cls is IF:
        if syn:
            raise ValueError("model: NIR's IF node has no synapse; IF with tau_syn="
                             f"{p['tau_syn']!r} cannot be exported (use LIF with a synapse)")
        r_if = 1.0 / dt if jump else r / p["tau_mem"]
        return "IF", {"r": _array(r_if, shape), "v_threshold": _array(p["v_th"], shape),
                      "v_reset": _array(p["v_reset"], shape)}
    out = {"tau_mem": _array(p["tau_mem"], shape), "v_leak": _array(p["v_leak"], shape)}
    if syn:
        out["tau_syn"] = _array(p["tau_syn"], shape)
        out["r"] = _array(r, shape)
        w_in = p["tau_syn"] / dt if jump else 1.0
        out["w_in"] = _array(w_in, shape)
        kind = "CubaLI" if cls is LI else "CubaLIF"
    else:
        out["r"] = _array(p["tau_mem"] / dt if jump else r, shape)
        out["tau"] = out.pop("tau_mem")
        kind = "LI" if cls is LI else "LIF"
    if cls is LIF:
        out["v_threshold"] = _array(p["v_th"], shape)
        out["v_reset"] = _array(p["v_reset"], shape)
    return kind, out


def _module_options(module: NeuronModule) -> dict[str, Any]:
    from .surrogate import SURROGATES

    options: dict[str, Any] = {
        "size": list(module.size) if module.size is not None else None,
        "dt": module.dt,
        "method": module.integrator.name,
        "precise": bool(getattr(module.integrator, "precise", False)),
        "detach_reset": module.detach_reset,
        "learn": list(module.learn),
        "per_neuron": [n for n in module.learn
                       if module.size is not None
                       and tuple(torch.as_tensor(getattr(module, n)).shape) == module.size],
        "recurrent": module.recurrent,
        "autapses": module.autapses,
        "backend": module.backend,
        **module.peer_options,
    }
    s = module.surrogate
    name = next((k for k, c in SURROGATES.items() if type(s) is c), None)
    if name is not None and dataclasses.is_dataclass(s):
        options["surrogate"] = {"name": name, "params": dataclasses.asdict(s)}
    return options


def _unfaithful(model: NeuronModel) -> list[str]:
    """What NIR's reading of the node gets wrong about ``model`` (carried in metadata)."""
    p = model.params()
    out = []
    if p.get("reset", "value") != "value":
        out.append(f"reset={p['reset']!r}")
    t_ref = p.get("t_ref", 0.0)
    if bool(torch.as_tensor(t_ref).ne(0).any()):
        out.append("t_ref > 0")
    return out


# -- export -------------------------------------------------------------------------------
def export_nir(obj: Any, dt: float | None = None, *, size: int | Sequence[int] | None = None,
               method: str | None = None, warn: bool = True):
    """A NIR graph of a neurosim network, layer or model.

    Args:
        obj: a :class:`torch.nn.Sequential` (or :class:`Sequential`) of
            ``torch.nn.Linear`` and neurosim layers/cells (``LIFLayer``, ``LILayer``,
            ``IFLayer``, ``LIFCell``, ... with or without ``recurrent=True``); a single
            such module; or a model (:class:`~neurosim.LI`, :class:`~neurosim.LIF`,
            :class:`~neurosim.IF`).
        dt: the step in seconds. Modules carry their own (``dt`` must then be ``None``
            or equal); required for a bare model.
        size: the neuron shape of a bare model whose parameters are all scalars.
        method: the integrator recorded for a bare model (metadata only).
        warn: warn when a neuron has a reset or refractory period that NIR's nodes
            cannot express (it travels in the metadata for neurosim).

    Returns:
        A ``nir.NIRGraph`` with an ``input`` and an ``output`` node; its
        ``metadata["neurosim"]`` (JSON) holds the neurosim version, ``dt`` (s) and
        method, and every neuron node's ``metadata["neurosim"]`` its model and
        module options.

    Raises:
        ValueError: a module or model NIR cannot express, or a missing/inconsistent
            ``dt`` or ``size``.
        ImportError: the ``nir`` package is missing.
    """
    nir = _nir()
    if isinstance(obj, torch.nn.Sequential):
        items = list(obj)
    else:
        items = [obj]
    if not items:
        raise ValueError("obj: an empty Sequential has nothing to export")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    prev = "input"
    first_shape: tuple[int, ...] | None = None
    dts, methods = set(), set()
    for k, item in enumerate(items):
        name = str(k)
        entry_shape, node, extra = _export_item(nir, item, dt, size, method, warn, name)
        if first_shape is None:
            first_shape = entry_shape
        nodes[name] = node
        edges.append((prev, name))
        for extra_name, extra_node in extra.items():
            nodes[extra_name] = extra_node
            edges.append((name, extra_name))
            edges.append((extra_name, name))
        meta = _decode(node.metadata)
        if meta is not None:
            dts.add(meta["module"]["dt"])
            methods.add(meta["module"]["method"])
        prev = name
    out_shape = tuple(int(n) for n in nodes[prev].output_type["output"])
    nodes["input"] = nir.Input(input_type=np.array(first_shape))
    nodes["output"] = nir.Output(output_type=np.array(out_shape))
    edges.append((prev, "output"))
    graph_meta = {"neurosim_version": _version(),
                  "dt": dts.pop() if len(dts) == 1 else None,
                  "method": methods.pop() if len(methods) == 1 else None}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={_META: json.dumps(graph_meta)})


def _export_item(nir: Any, item: Any, dt: float | None, size: Any, method: str | None,
                 warn: bool, name: str) -> tuple[tuple[int, ...], Any, dict[str, Any]]:
    """(input shape, node, extra nodes in a cycle with it) of one element."""
    if isinstance(item, torch.nn.Linear):
        w = item.weight.detach().cpu().numpy()
        if item.bias is None:
            return (w.shape[1],), nir.Linear(weight=w), {}
        return (w.shape[1],), nir.Affine(weight=w, bias=item.bias.detach().cpu().numpy()), {}
    if isinstance(item, Scale):
        s = item.scale.detach().cpu().numpy()
        return tuple(s.shape), nir.Scale(scale=s), {}
    if isinstance(item, Shift):  # NIR has no bias node: an Affine with identity weights
        b = item.bias.detach().cpu().numpy().reshape(-1)
        return (b.size,), nir.Affine(weight=np.eye(b.size, dtype=b.dtype), bias=b), {}
    if isinstance(item, NeuronModule):
        if dt is not None and float(dt) != item.dt:
            raise ValueError(f"dt={dt!r} differs from the dt={item.dt!r} of module {name} "
                             f"({type(item).__name__}); pass dt=None")
        model = item.model()
        if item.size is not None:
            shape = item.size
        elif len(model.param_shape()):
            shape = tuple(model.param_shape())
        else:
            raise ValueError(f"module {name} ({type(item).__name__}) has size=None and scalar "
                             f"parameters: NIR needs the neuron shape; build it with size=")
        options = _module_options(item)
        step_dt = item.dt
    elif isinstance(item, NeuronModel):
        if dt is None:
            raise ValueError(f"dt is required to export a bare model ({type(item).__name__})")
        model = item
        if size is not None:
            shape = (size,) if isinstance(size, int) else tuple(size)
        elif len(model.param_shape()):
            shape = tuple(model.param_shape())
        else:
            raise ValueError(f"size is required: the parameters of {type(item).__name__} are "
                             f"all scalars, and NIR needs the neuron shape")
        step_dt = float(dt)
        options = {"size": list(shape), "dt": step_dt, "method": method, "recurrent": False}
    else:
        raise ValueError(f"module {name}: cannot export {type(item).__name__} to NIR: expected "
                         f"torch.nn.Linear, Scale, Shift, a neurosim layer/cell of LI, LIF or "
                         f"IF, or a model")
    kind, fields = nir_fields(model, step_dt, shape)
    problems = _unfaithful(model)
    if problems and warn:
        warnings.warn(f"NIR node {name} ({kind}): {', '.join(problems)} cannot be expressed in "
                      f"NIR; it is kept in the node metadata for neurosim, other tools will see "
                      f"a reset to v_reset without refractory period", UserWarning, stacklevel=3)
    meta = {"class": type(model).__name__,
            "params": {k: _jsonable(v) for k, v in model.params().items()},
            "module": options}
    extra = {}
    if options.get("recurrent"):
        w = item.recurrent_matrix().detach().cpu().numpy()
        extra[f"{name}.w_rec"] = nir.Linear(weight=w)
    node = getattr(nir, kind)(**fields, metadata={_META: json.dumps(meta)})
    return tuple(shape), node, extra


# -- import -------------------------------------------------------------------------------
def import_nir(graph: Any, dt: float | None = None, *, method: str | None = None,
               input_mode: str | None = None, backend: str = "auto",
               layer_kwargs: dict[str, Any] | None = None) -> Sequential:
    """A torch module (a :class:`Sequential` of neurosim layers) from a NIR graph.

    Args:
        graph: a ``nir.NIRGraph`` or the path of a NIR file (``nir.write``).
        dt: the step in seconds; default: the ``dt`` in the graph's neurosim metadata
            (required for graphs written by other tools).
        method: the integrator of every neuron layer (``"exact"``, ``"euler"``, ...);
            default: the node's neurosim metadata, else ``"exact"``. snntorch's and
            norse's neurons are forward-Euler discretisations: use ``"euler"`` to
            reproduce them.
        input_mode: how a ``CubaLI``/``CubaLIF`` node's input enters, where the
            node has no neurosim metadata: ``None``/``"current"`` (NIR's reading, the
            input held over each step: ``r`` becomes ``r·w_in``) or ``"jump"`` (the
            same charge added at the start of each step: ``i += u·w_in·dt/tau_syn``,
            ``r`` becomes ``r·w_in·dt/tau_syn``; snntorch's ``Synaptic``).
        backend: passed to the layers (``"auto"``, ``"reference"``, ``"engine"``, ``"fused"``).
        layer_kwargs: keyword arguments for every neuron layer, over what the graph
            says: model parameters or layer options, e.g. ``{"reset": "subtract",
            "reset_delay": "end"}`` for snntorch's default ``Leaky`` (whose exporter
            writes a reset to zero whatever its ``reset_mechanism``).

    Returns:
        A :class:`Sequential`: ``torch.nn.Linear`` for ``Affine``/``Linear``,
        :class:`Scale`, and ``LILayer``/``LIFLayer``/``IFLayer`` for the neuron nodes
        (``recurrent=True`` where a neuron -> ``Linear``/``Affine`` -> same neuron cycle
        exists). Input ``[T, *batch, features]``.

    Raises:
        ValueError: a node type neurosim does not import, a graph that is not a chain
            (plus self-recurrence), a missing ``dt``, or parameters neurosim rejects.
        ImportError: the ``nir`` package is missing.
    """
    nir = _nir()
    if input_mode not in _INPUT_MODES:
        raise ValueError(f"input_mode must be None, 'current' or 'jump', got {input_mode!r}")
    if isinstance(graph, str | os.PathLike):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.NIRGraph.from_list(graph)
    graph_meta = _decode(getattr(graph, "metadata", None)) or {}
    if dt is None:
        dt = graph_meta.get("dt")
        if dt is None:
            raise ValueError("dt is required: the graph carries no neurosim dt metadata")
    dt = float(dt)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
    nodes, edges = _flatten(nir, graph)
    recurrent = _recurrences(nir, nodes, edges)
    chain = _chain(nir, nodes, edges)
    modules: list[torch.nn.Module] = []
    for name in chain:
        node = nodes[name]
        if isinstance(node, nir.Affine | nir.Linear):
            modules.append(_linear(nir, node))
        elif isinstance(node, nir.Scale):
            modules.append(Scale(torch.from_numpy(_np(node.scale))))
        elif isinstance(node, nir.LI | nir.CubaLI | nir.LIF | nir.CubaLIF | nir.IF):
            w_rec, bias = recurrent.get(name, (None, None))
            if bias is not None:
                modules.append(Shift(torch.from_numpy(_np(bias))))
            modules.append(_neuron_layer(nir, name, node, dt, method, input_mode, backend,
                                         w_rec, layer_kwargs or {}))
        else:
            raise ValueError(f"node {name!r}: NIR {type(node).__name__} nodes are not imported "
                             f"by neurosim (supported: Affine, Linear, Scale, LI, CubaLI, "
                             f"LIF, CubaLIF, IF)")
    return Sequential(*modules)


def _flatten(nir: Any, graph: Any, prefix: str = "") -> tuple[dict[str, Any], list]:
    """Nodes and edges with nested graphs inlined (inner names ``outer.inner``)."""
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _flatten(nir, node, full + ".")
            ins = [n for n, v in inner_nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in inner_nodes.items() if isinstance(v, nir.Output)]
            entry[full] = [b for a, b in inner_edges if a in ins]
            exit_[full] = [a for a, b in inner_edges if b in outs]
            nodes.update({n: v for n, v in inner_nodes.items() if n not in ins + outs})
            edges.extend((a, b) for a, b in inner_edges if a not in ins and b not in outs)
        else:
            nodes[full] = node
    for a, b in graph.edges:
        a, b = prefix + a, prefix + b
        for src in exit_.get(a, [a]):
            for dst in entry.get(b, [b]):
                edges.append((src, dst))
    return nodes, edges


def _recurrences(nir: Any, nodes: dict[str, Any], edges: list) -> dict[str, tuple]:
    """Find neuron -> Linear/Affine -> same neuron cycles; remove them from the graph."""
    neuron_types = (nir.LI, nir.CubaLI, nir.LIF, nir.CubaLIF, nir.IF)
    found = {}
    for a, b in list(edges):
        if (isinstance(nodes.get(a), neuron_types)
                and isinstance(nodes.get(b), nir.Linear | nir.Affine) and (b, a) in edges):
            if [e for e in edges if b in e and e not in ((a, b), (b, a))]:
                raise ValueError(f"node {b!r}: a recurrent weight node must connect only "
                                 f"{a!r} to itself")
            node = nodes.pop(b)
            bias = getattr(node, "bias", None)
            if bias is not None and not np.any(np.asarray(bias)):
                bias = None
            found[a] = (_np(node.weight), None if bias is None else _np(bias))
            edges.remove((a, b))
            edges.remove((b, a))
    return found


def _chain(nir: Any, nodes: dict[str, Any], edges: list) -> list[str]:
    ins = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
    outs = [n for n, v in nodes.items() if isinstance(v, nir.Output)]
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(f"graph: neurosim imports graphs with one Input and one Output node, "
                         f"got inputs {ins} and outputs {outs}")
    succ: dict[str, list[str]] = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    order, cur = [], ins[0]
    while True:
        nxt = succ.get(cur, [])
        if len(nxt) != 1:
            raise ValueError(f"graph: node {cur!r} has {len(nxt)} successors {nxt}; neurosim "
                             f"imports chains (with self-recurrent layers) only")
        cur = nxt[0]
        if cur == outs[0]:
            break
        if cur in order:
            raise ValueError(f"graph: a cycle through {cur!r} that is not a neuron's recurrent "
                             f"weight")
        order.append(cur)
    if len(order) != len(nodes) - 2:
        rest = sorted(set(nodes) - set(order) - {ins[0], outs[0]})
        raise ValueError(f"graph: nodes {rest} are not on the path from input to output")
    return order


def _np(a: Any) -> np.ndarray:
    """A NumPy copy of an array or tensor (norse writes torch tensors into its nodes)."""
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy().copy()
    return np.array(a)


def _linear(nir: Any, node: Any) -> torch.nn.Linear:
    w = torch.from_numpy(_np(node.weight))
    if w.dim() != 2:
        raise ValueError(f"{type(node).__name__} weight must be 2-D, got shape {tuple(w.shape)}")
    bias = getattr(node, "bias", None)
    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, dtype=w.dtype)
    with torch.no_grad():
        lin.weight.copy_(w)
        if bias is not None:
            lin.bias.copy_(torch.from_numpy(_np(bias)))
    return lin


def _param(a: Any) -> float | torch.Tensor:
    """A uniform array as a Python float (exact propagator), else a tensor."""
    arr = _np(a)
    if arr.size and np.all(arr == arr.reshape(-1)[0]):
        return float(arr.reshape(-1)[0])
    return torch.from_numpy(arr.copy())


def _node_shape(node: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in np.asarray(node.output_type["output"]).reshape(-1))


def _from_metadata(nir: Any, node: Any, dt: float) -> tuple[NeuronModel, dict] | None:
    """The model and module options in the node's metadata, if they still match its fields."""
    meta = _decode(getattr(node, "metadata", None))
    if meta is None or meta.get("class") not in _MODELS:
        return None
    try:
        model = _MODELS[meta["class"]](**{k: _unjson(v) for k, v in meta["params"].items()})
        options = dict(meta.get("module", {}))
        shape = _node_shape(node)
        kind, fields = nir_fields(model, options.get("dt") or dt, shape)
    except (ValueError, TypeError, KeyError):
        return None
    if kind != type(node).__name__:
        return None
    for key, value in fields.items():
        theirs = _np(getattr(node, key)).astype(np.float64)
        if theirs.shape != value.shape or not np.allclose(theirs, value, rtol=1e-6, atol=0):
            return None
    return model, options


def _plain_model(nir: Any, name: str, node: Any, dt: float, input_mode: str | None
                 ) -> NeuronModel:
    """The neurosim model of a NIR neuron node read by NIR's definition."""
    try:
        if isinstance(node, nir.IF):
            return IF(tau_mem=1.0, r=_param(node.r), v_th=_param(node.v_threshold),
                      v_reset=_param(node.v_reset), input_mode="current")
        if isinstance(node, nir.LI | nir.LIF):
            common = dict(tau_mem=_param(node.tau), r=_param(node.r),
                          v_leak=_param(node.v_leak), input_mode="current")
        else:
            w_in = _np(node.w_in).astype(np.float64)
            tau_syn = _np(node.tau_syn).astype(np.float64)
            scale = w_in * dt / tau_syn if input_mode == "jump" else w_in
            if np.allclose(scale, 1.0, rtol=1e-6, atol=0):
                scale = np.ones_like(scale)  # keep r exact when w_in is the mode's identity
            r = _np(node.r).astype(np.float64) * scale
            common = dict(tau_mem=_param(node.tau_mem), tau_syn=_param(node.tau_syn),
                          r=_param(r.astype(_np(node.r).dtype)),
                          v_leak=_param(node.v_leak), input_mode=input_mode or "current")
        if isinstance(node, nir.LI | nir.CubaLI):
            return LI(**common)
        return LIF(**common, v_th=_param(node.v_threshold), v_reset=_param(node.v_reset))
    except ValueError as err:
        raise ValueError(f"node {name!r} ({type(node).__name__}): {err}") from None


def _neuron_layer(nir: Any, name: str, node: Any, dt: float, method: str | None,
                  input_mode: str | None, backend: str, w_rec: np.ndarray | None,
                  overrides: dict[str, Any]) -> Layer:
    shape = _node_shape(node)
    restored = _from_metadata(nir, node, dt)
    if restored is not None:
        model, options = restored
        kwargs = {k: options[k] for k in ("detach_reset", "learn", "per_neuron", "autapses",
                                          "multi_spike", "reset_delay", "v_min")
                  if options.get(k) is not None}
        if options.get("surrogate"):
            from .surrogate import get_surrogate

            kwargs["surrogate"] = get_surrogate(options["surrogate"]["name"],
                                                **options["surrogate"]["params"])
        method = method or options.get("method") or "exact"
        precise = bool(options.get("precise", False))
    else:
        model = _plain_model(nir, name, node, dt, input_mode)
        kwargs, precise = {"autapses": True}, False
        method = method or "exact"
    if method not in ("exact", "exact_exponential"):
        precise = False
    if w_rec is not None:
        if len(shape) != 1 or w_rec.shape != (shape[0], shape[0]):
            raise ValueError(f"node {name!r}: recurrent weight of shape {w_rec.shape} does not "
                             f"match {shape[0] if shape else 0} neurons")
        kwargs["recurrent"] = True
    options = {"dt": dt, "method": method, "precise": precise, "backend": backend, **kwargs,
               **model.params()}
    options.update(overrides)
    try:
        layer = LAYERS[type(model)](shape if shape else None, **options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"node {name!r} ({type(node).__name__}): {err}") from None
    if w_rec is not None:
        with torch.no_grad():
            layer.recurrent_weight.data = torch.from_numpy(_np(w_rec)).to(
                layer.recurrent_weight.dtype)
    return layer


__all__ = ["LAYERS", "Scale", "Sequential", "Shift", "export_nir", "import_nir", "nir_fields"]
