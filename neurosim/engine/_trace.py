r"""Symbolic tracing of a model's physics: the bridge from the one definition to compiled code.

A model's methods (:meth:`~neurosim.models.NeuronModel.derivatives`,
``threshold_distance``, ``on_spike``, ``apply_input``, ``linear_rates``) are
ordinary Python written with operators and ``torch`` functions. Here they are
called once with :class:`Sym` placeholders in place of the state variables, the
input and the numeric parameters. A :class:`Sym` takes part in arithmetic and,
through PyTorch's ``__torch_function__`` protocol, in ``torch.exp``,
``torch.clamp``, ``torch.where``... so the call records an expression graph of
scalar operations per element. :mod:`neurosim.engine._codegen` prints that graph
as scalar Python for numba. Nothing of the model is written twice: a model
defined by a user the documented way is traced like the built-in ones.

What cannot be traced raises :class:`TraceError` with the reason (a Python
``if`` on a state value, an operation outside :data:`SUPPORTED`, a reduction
over neurons...); such a model runs on the reference loop.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..models.base import NeuronModel


class TraceError(ValueError):
    """A model method cannot be turned into scalar code (the message says why)."""


class Sym:
    """A node of a scalar expression graph (one element of a tensor expression).

    ``op`` is ``"var"``, ``"param"``, ``"input"`` or ``"const"`` for leaves, else an
    operation name; ``args`` are child nodes (or Python values for ``"const"``,
    ``"var"``, ``"param"``). Nodes are hash-consed by the :class:`Graph` that made
    them, so equal subexpressions are one node.
    """

    __slots__ = ("op", "args", "graph", "id", "__weakref__")

    def __init__(self, op: str, args: tuple, graph: Graph, id: int) -> None:
        self.op, self.args, self.graph, self.id = op, args, graph, id

    # -- tensor-likeness ---------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.graph.dtype

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def shape(self) -> torch.Size:
        raise TraceError("a model method read .shape of a state variable; the compiled engine "
                         "traces one element at a time")

    def dim(self) -> int:
        raise TraceError("a model method called .dim() on a state variable")

    def __bool__(self) -> bool:
        raise TraceError("a model method branches on a state or parameter value "
                         "(Python `if` on a tensor); use torch.where instead")

    def _reduction(self, *args, **kwargs):
        raise TraceError("a model method reduced a state or parameter over neurons (.any(), "
                         ".sum(), ...), usually for a Python `if` on a tensor; the compiled "
                         "engine traces one element at a time: use torch.where instead")

    any = all = sum = mean = max = min = item = tolist = _reduction

    def __float__(self) -> float:
        if self.op == "const":
            return float(self.args[0])
        raise TraceError("a model method converted a state or parameter to a Python float")

    def __repr__(self) -> str:
        return f"Sym({self.op}, #{self.id})"

    __hash__ = object.__hash__

    # -- operators ---------------------------------------------------------------------
    def _b(self, op, other, reverse=False):
        g = self.graph
        o = g.lift(other)
        return g.node(op, (o, self) if reverse else (self, o))

    def __add__(self, o): return self._b("add", o)
    def __radd__(self, o): return self._b("add", o, True)
    def __sub__(self, o): return self._b("sub", o)
    def __rsub__(self, o): return self._b("sub", o, True)
    def __mul__(self, o): return self._b("mul", o)
    def __rmul__(self, o): return self._b("mul", o, True)
    def __truediv__(self, o): return self._b("div", o)
    def __rtruediv__(self, o): return self._b("div", o, True)
    def __pow__(self, o): return self._b("pow", o)
    def __rpow__(self, o): return self._b("pow", o, True)
    def __neg__(self): return self.graph.node("neg", (self,))
    def __pos__(self): return self
    def __abs__(self): return self.graph.node("abs", (self,))
    def __gt__(self, o): return self._b("gt", o)
    def __ge__(self, o): return self._b("ge", o)
    def __lt__(self, o): return self._b("lt", o)
    def __le__(self, o): return self._b("le", o)
    def __eq__(self, o): return self._b("eq", o)  # type: ignore[override]
    def __ne__(self, o): return self._b("ne", o)  # type: ignore[override]
    def __and__(self, o): return self._b("and", o)
    def __rand__(self, o): return self._b("and", o, True)
    def __or__(self, o): return self._b("or", o)
    def __ror__(self, o): return self._b("or", o, True)
    def __invert__(self): return self.graph.node("not", (self,))

    # tensor methods models commonly use
    def exp(self): return self.graph.node("exp", (self,))
    def expm1(self): return self.graph.node("expm1", (self,))
    def log(self): return self.graph.node("log", (self,))
    def log1p(self): return self.graph.node("log1p", (self,))
    def sqrt(self): return self.graph.node("sqrt", (self,))
    def tanh(self): return self.graph.node("tanh", (self,))
    def sigmoid(self): return _sigmoid(self)
    def abs(self): return self.graph.node("abs", (self,))
    def clamp(self, min=None, max=None): return _clamp(self, min, max)
    clip = clamp
    def detach(self): return self
    def clone(self): return self
    def to(self, *args, **kwargs): return self
    def square(self): return self * self
    def reciprocal(self): return 1.0 / self
    def sin(self): return self.graph.node("sin", (self,))
    def cos(self): return self.graph.node("cos", (self,))

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        handler = _TORCH.get(func)
        if handler is None:
            name = getattr(func, "__name__", repr(func))
            raise TraceError(f"torch.{name} is not supported by the compiled engine; "
                             f"supported: {sorted(SUPPORTED)}")
        return handler(*args, **kwargs)


def _graph_of(*xs) -> Graph:
    for x in xs:
        if isinstance(x, Sym):
            return x.graph
    raise TraceError("internal: no symbolic operand")


def _sigmoid(x):
    g = _graph_of(x)
    return g.node("sigmoid", (g.lift(x),))


def _clamp(x, min=None, max=None):
    g = _graph_of(x, min, max)
    out = g.lift(x)
    if min is not None:
        out = g.node("max", (out, g.lift(min)))
    if max is not None:
        out = g.node("min", (out, g.lift(max)))
    return out


def _where(cond, a, b):
    g = _graph_of(cond, a, b)
    return g.node("where", (g.lift(cond), g.lift(a), g.lift(b)))


def _like(value):
    def make(x, *args, **kwargs):
        return _graph_of(x).const(value)
    return make


def _full_like(x, fill_value, **kwargs):
    return _graph_of(x).lift(fill_value)


def _unary(op):
    def make(x, *args, **kwargs):
        if args or any(v is not None for k, v in kwargs.items() if k != "out"):
            raise TraceError(f"{op} with extra arguments is not supported by the engine")
        g = _graph_of(x)
        return g.node(op, (g.lift(x),))
    return make


def _binary(op):
    def make(a, b, **kwargs):
        g = _graph_of(a, b)
        return g.node(op, (g.lift(a), g.lift(b)))
    return make


def _elu(x, alpha=1.0, inplace=False):
    g = _graph_of(x)
    x = g.lift(x)
    return _where(x > 0, x, alpha * g.node("expm1", (x,)))


def _relu(x, inplace=False):
    g = _graph_of(x)
    return g.node("max", (g.lift(x), g.const(0.0)))


def _softplus(x, beta=1.0, threshold=20.0):
    g = _graph_of(x)
    x = g.lift(x)
    bx = x * beta
    return _where(bx > threshold, x, g.node("log1p", (g.node("exp", (bx,)),)) / beta)


def _pow(a, b, **kwargs):
    g = _graph_of(a, b)
    return g.node("pow", (g.lift(a), g.lift(b)))


_TORCH: dict[Any, Callable] = {}


def _register(funcs, handler):
    for f in funcs:
        _TORCH[f] = handler


T = torch.Tensor
_register([torch.exp, T.exp], _unary("exp"))
_register([torch.expm1, T.expm1], _unary("expm1"))
_register([torch.log, T.log], _unary("log"))
_register([torch.log1p, T.log1p], _unary("log1p"))
_register([torch.sqrt, T.sqrt], _unary("sqrt"))
_register([torch.tanh, T.tanh], _unary("tanh"))
_register([torch.sin, T.sin], _unary("sin"))
_register([torch.cos, T.cos], _unary("cos"))
_register([torch.abs, T.abs, T.__abs__], _unary("abs"))
_register([torch.neg, T.neg, T.__neg__], _unary("neg"))
_register([torch.sigmoid, T.sigmoid, torch.special.expit], _sigmoid)
_register([torch.clamp, T.clamp, torch.clip, T.clip], _clamp)
_register([torch.where], _where)
_register([torch.zeros_like], _like(0.0))
_register([torch.ones_like], _like(1.0))
_register([torch.full_like], _full_like)
_register([torch.minimum, torch.fmin], _binary("min"))
_register([torch.maximum, torch.fmax], _binary("max"))
_register([torch.pow, T.pow, T.__pow__], _pow)
_register([torch.nn.functional.elu], _elu)
_register([torch.nn.functional.relu, torch.relu], _relu)
_register([torch.nn.functional.softplus], _softplus)
_register([torch.add, T.add, T.__add__], _binary("add"))
_register([torch.sub, T.sub, T.__sub__], _binary("sub"))
_register([torch.mul, T.mul, T.__mul__], _binary("mul"))
_register([torch.div, T.div, T.__truediv__], _binary("div"))
_register([T.__radd__], lambda a, b: _binary("add")(b, a))
_register([T.__rmul__], lambda a, b: _binary("mul")(b, a))
_register([T.__rsub__], lambda a, b: _binary("sub")(b, a))
_register([T.__rtruediv__], lambda a, b: _binary("div")(b, a))
_register([T.detach, T.clone, torch.clone], lambda x, *a, **k: x)

#: the torch functions and Tensor methods a traced model may use
SUPPORTED = frozenset(getattr(f, "__name__", str(f)) for f in _TORCH)

#: the scalar operations of the graph
UNARY = {"neg", "abs", "exp", "expm1", "log", "log1p", "sqrt", "tanh", "sigmoid", "not",
         "sin", "cos"}
BINARY = {"add", "sub", "mul", "div", "pow", "min", "max", "gt", "ge", "lt", "le", "eq",
          "ne", "and", "or"}


class Graph:
    """Hash-consed expression nodes for one trace, with light constant folding."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.nodes: list[Sym] = []
        self._index: dict[tuple, Sym] = {}

    def _intern(self, op: str, args: tuple) -> Sym:
        key = (op, tuple(a.id if isinstance(a, Sym) else (type(a).__name__, a) for a in args))
        hit = self._index.get(key)
        if hit is None:
            hit = Sym(op, args, self, len(self.nodes))
            self.nodes.append(hit)
            self._index[key] = hit
        return hit

    def const(self, value: float) -> Sym:
        value = float(value)
        if value == 0.0:
            value = 0.0 if math.copysign(1.0, value) > 0 else -0.0
        return self._intern("const", (value,))

    def leaf(self, kind: str, name: str) -> Sym:
        return self._intern(kind, (name,))

    def lift(self, value: Any) -> Sym:
        if isinstance(value, Sym):
            if value.graph is not self:
                raise TraceError("internal: symbols of two traces mixed")
            return value
        if isinstance(value, bool):
            return self.const(1.0 if value else 0.0)
        if isinstance(value, (int, float)):
            return self.const(value)
        if isinstance(value, torch.Tensor):
            if value.numel() == 1:
                return self.const(float(value.detach().reshape(())))
            raise TraceError(f"a model method used a tensor of shape {tuple(value.shape)} that "
                             f"is not one of its parameters; the compiled engine needs every "
                             f"per-neuron value to be a dataclass field")
        raise TraceError(f"a model method used a value of type {type(value).__name__} "
                         f"the engine cannot compile")

    def node(self, op: str, args: tuple[Sym, ...]) -> Sym:
        if all(a.op == "const" for a in args):
            folded = _fold(op, [a.args[0] for a in args])
            if folded is not None:
                return self.const(folded)
        if op in ("add", "sub") and args[1].op == "const" and args[1].args[0] == 0.0:
            return args[0]
        if op == "add" and args[0].op == "const" and args[0].args[0] == 0.0:
            return args[1]
        if op in ("mul", "div") and args[1].op == "const" and args[1].args[0] == 1.0:
            return args[0]
        if op == "mul" and args[0].op == "const" and args[0].args[0] == 1.0:
            return args[1]
        return self._intern(op, args)


def _fold(op: str, v: list[float]) -> float | None:
    try:
        a = v[0]
        if op == "neg":
            return -a
        if op == "abs":
            return abs(a)
        if op in ("exp", "expm1", "log", "log1p", "sqrt", "tanh", "sin", "cos"):
            return getattr(math, op)(a)
        if op == "sigmoid":
            return 1.0 / (1.0 + math.exp(-a))
        if op == "not":
            return float(not a)
        b = v[1]
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b,
                "div": lambda: a / b, "pow": lambda: a ** b, "min": lambda: min(a, b),
                "max": lambda: max(a, b), "gt": lambda: float(a > b),
                "ge": lambda: float(a >= b), "lt": lambda: float(a < b),
                "le": lambda: float(a <= b), "eq": lambda: float(a == b),
                "ne": lambda: float(a != b), "and": lambda: float(bool(a) and bool(b)),
                "or": lambda: float(bool(a) or bool(b))}[op]()
    except (ArithmeticError, ValueError, KeyError):
        return None


@dataclass
class ModelIR:
    """A model's physics as scalar expression graphs (what the code generator prints).

    Attributes:
        graph: the node store.
        states: state variable names, in integration order.
        params: numeric parameter names (each read per element from a coefficient row).
        f: the vector field ``{name: expr}`` (per second), in free flow.
        f_clamped: the vector field while refractory (clamped variables held).
        d: the threshold distance, or ``None`` for a non-spiking model.
        reset: the state after a spike ``{name: expr}`` (in terms of the pre-reset state).
        jump: the state after the input jump at the start of a step.
        rates: the rates A_i of the conditionally linear variables (exponential Euler).
        spiking, crossing_only, membrane: as on the model.
        name: the model's class name (for messages).
        ranges: the declared plausible ``(low, high)`` of state variables
            (:meth:`~neurosim.models.NeuronModel.declared_ranges`).
    """

    graph: Graph
    states: tuple[str, ...]
    params: tuple[str, ...]
    f: dict[str, Sym]
    f_clamped: dict[str, Sym]
    d: Sym | None
    reset: dict[str, Sym]
    jump: dict[str, Sym]
    rates: dict[str, Sym]
    spiking: bool
    crossing_only: bool
    membrane: str
    name: str = ""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def numeric_fields(model: NeuronModel) -> tuple[str, ...]:
    """The dataclass fields of ``model`` that hold numbers or tensors (not options, not None)."""
    out = []
    for f in dataclasses.fields(model):
        if f.name in model._option_fields:
            continue
        value = getattr(model, f.name)
        if isinstance(value, (int, float, torch.Tensor)) and not isinstance(value, bool):
            out.append(f.name)
    return tuple(out)


def symbolic_model(model: NeuronModel, graph: Graph) -> NeuronModel:
    """A copy of ``model`` whose numeric fields are parameter symbols (no validation)."""
    new = object.__new__(type(model))
    for k, v in model.params().items():
        object.__setattr__(new, k, v)
    for name in numeric_fields(model):
        object.__setattr__(new, name, graph.leaf("param", name))
    return new


def _as_sym_dict(graph: Graph, out: Any, what: str, names: tuple[str, ...]) -> dict[str, Sym]:
    if not isinstance(out, dict):
        raise TraceError(f"{what} must return a dict of state variables, got {type(out).__name__}")
    result = {}
    for k in names:
        if k not in out:
            raise TraceError(f"{what} did not return the state variable {k!r}")
        result[k] = graph.lift(out[k])
    return result


def trace(model: NeuronModel, dtype: torch.dtype = torch.float64) -> ModelIR:
    """Trace ``model``'s physics into a :class:`ModelIR` (raises :class:`TraceError`)."""
    g = Graph(dtype)
    sm = symbolic_model(model, g)
    names = tuple(model.state_names)
    x = {k: g.leaf("var", k) for k in names}
    u = g.leaf("input", "u")
    try:
        f = _as_sym_dict(g, sm.derivatives(dict(x), u), "derivatives", names)
        f_cl = {k: (g.const(0.0) if k in model.clamped else v) for k, v in f.items()}
        jump = _as_sym_dict(g, sm.apply_input(dict(x), u), "apply_input", names)
        rates: dict[str, Sym] = {}
        cl = tuple(model.conditionally_linear)
        if cl:
            if type(model).linear_rates is NeuronModel.linear_rates:
                # the generic default: two evaluations of f, as the reference computes it
                for k in cl:
                    shifted = dict(x)
                    shifted[k] = x[k] + 1.0
                    rates[k] = g.lift(sm.derivatives(shifted, u)[k]) - f[k]
            else:
                r = sm.linear_rates(dict(x), u, dict(f))
                rates = {k: g.lift(r[k]) for k in cl}
        d = None
        reset: dict[str, Sym] = dict(x)
        if model.spiking:
            d = g.lift(sm.threshold_distance(dict(x)))
            reset = _as_sym_dict(g, sm.on_spike(dict(x)), "on_spike", names)
    except TraceError:
        raise
    except (TypeError, AttributeError, RuntimeError, NotImplementedError) as err:
        raise TraceError(f"{type(model).__name__} could not be traced: "
                         f"{type(err).__name__}: {err}") from None
    used = _used_leaves(g, [*f.values(), *jump.values(), *rates.values(), *reset.values()]
                        + ([d] if d is not None else []), "param")
    params = tuple(n for n in numeric_fields(model) if n in used)
    return ModelIR(g, names, params, f, f_cl, d, reset, jump, rates, model.spiking,
                   bool(model.crossing_only), model.membrane, type(model).__name__,
                   model.declared_ranges())


def _used_leaves(graph: Graph, roots: list[Sym], kind: str) -> set[str]:
    seen: set[int] = set()
    out: set[str] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n.id in seen:
            continue
        seen.add(n.id)
        if n.op == kind:
            out.add(n.args[0])
        elif n.op not in ("var", "param", "input", "const"):
            stack.extend(n.args)
    return out


__all__ = ["Graph", "ModelIR", "SUPPORTED", "Sym", "TraceError", "numeric_fields", "trace"]
