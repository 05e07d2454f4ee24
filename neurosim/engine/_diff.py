r"""Symbolic differentiation of traced expression graphs (for the generated backward pass).

:func:`diff` returns :math:`\partial e/\partial \ell` of an expression ``e`` of a
:class:`~neurosim.engine._trace.Graph` with respect to one of its leaves ``ℓ`` (a state
variable, the input or a parameter) as a new node of the same graph, or ``None`` where
the derivative is identically zero. Zeros and ones are simplified away as the result
is built, and equal subexpressions share one node (the graph hash-conses), so the
printed Jacobian-vector products stay short.

The rules follow PyTorch's autograd wherever a function is not differentiable, so the
generated gradients equal the reference loop's to round-off:

* :math:`|a|' = \operatorname{sign}(a)` with :math:`\operatorname{sign}(0) = 0`;
* ``min(a, b)`` (``torch.clamp(max=)``, ``torch.minimum``) passes the gradient to ``a``
  unless ``a > b``; ``max(a, b)`` to ``a`` unless ``a < b`` (the ``clamp`` rule: the
  bound is inclusive);
* ``where(c, a, b)`` passes it to the selected branch; comparisons and logic have none.

:func:`vjp` builds the vector-Jacobian product :math:`\sum_i g_i\,\partial
\mathrm{out}_i/\partial \ell` of a map given as a dict of expressions.
"""

from __future__ import annotations

from ._trace import Graph, Sym

_LEAVES = ("var", "param", "input", "const")
_NO_GRAD = {"gt", "ge", "lt", "le", "eq", "ne", "and", "or", "not"}


def _is_zero(x: Sym | None) -> bool:
    return x is None or (x.op == "const" and x.args[0] == 0.0)


def add(g: Graph, a: Sym | None, b: Sym | None) -> Sym | None:
    """``a + b`` where ``None`` is zero."""
    if _is_zero(a):
        return None if _is_zero(b) else b
    if _is_zero(b):
        return a
    return g.node("add", (a, b))


def sub(g: Graph, a: Sym | None, b: Sym | None) -> Sym | None:
    """``a - b`` where ``None`` is zero."""
    if _is_zero(b):
        return None if _is_zero(a) else a
    if _is_zero(a):
        return g.node("neg", (b,))
    return g.node("sub", (a, b))


def mul(g: Graph, a: Sym | None, b: Sym | None) -> Sym | None:
    """``a * b`` where ``None`` is zero (a zero factor gives ``None``)."""
    if _is_zero(a) or _is_zero(b):
        return None
    return g.node("mul", (a, b))


def _where(g: Graph, c: Sym, a: Sym | None, b: Sym | None) -> Sym | None:
    if _is_zero(a) and _is_zero(b):
        return None
    zero = g.const(0.0)
    return g.node("where", (c, zero if a is None else a, zero if b is None else b))


def diff(g: Graph, e: Sym, leaf: Sym, memo: dict[int, Sym | None] | None = None) -> Sym | None:
    r""":math:`\partial e/\partial\,\mathrm{leaf}` as a node of ``g`` (``None``: zero).

    ``memo`` caches the derivatives of subexpressions for one ``leaf``.
    """
    if memo is None:
        memo = {}
    if e.id in memo:
        return memo[e.id]
    out = _diff(g, e, leaf, memo)
    memo[e.id] = out
    return out


def _diff(g: Graph, e: Sym, leaf: Sym, memo: dict[int, Sym | None]) -> Sym | None:
    op = e.op
    if op in _LEAVES:
        return g.const(1.0) if e is leaf else None
    if op in _NO_GRAD:
        return None
    a = e.args
    da = diff(g, a[0], leaf, memo)
    if op == "where":
        return _where(g, a[0], diff(g, a[1], leaf, memo), diff(g, a[2], leaf, memo))
    if len(a) == 1:
        if da is None:
            return None
        x = a[0]
        one = g.const(1.0)
        if op == "neg":
            return g.node("neg", (da,))
        if op == "abs":  # sign(x), 0 at 0 (torch)
            sign = g.node("where", (g.node("gt", (x, g.const(0.0))), one,
                                    g.node("where", (g.node("lt", (x, g.const(0.0))),
                                                     g.const(-1.0), g.const(0.0)))))
            return mul(g, sign, da)
        if op == "exp":
            return mul(g, e, da)
        if op == "expm1":
            return mul(g, g.node("add", (e, one)), da)
        if op == "log":
            return mul(g, da, g.node("div", (one, x)))
        if op == "log1p":
            return g.node("div", (da, g.node("add", (x, one))))
        if op == "sqrt":
            return g.node("div", (da, g.node("mul", (g.const(2.0), e))))
        if op == "tanh":
            return mul(g, g.node("sub", (one, g.node("mul", (e, e)))), da)
        if op == "sigmoid":
            return mul(g, g.node("mul", (e, g.node("sub", (one, e)))), da)
        if op == "sin":
            return mul(g, g.node("cos", (x,)), da)
        if op == "cos":
            return mul(g, g.node("neg", (g.node("sin", (x,)),)), da)
        raise AssertionError(f"no derivative rule for {op}")
    x, y = a[0], a[1]
    db = diff(g, y, leaf, memo)
    if op == "add":
        return add(g, da, db)
    if op == "sub":
        return sub(g, da, db)
    if op == "mul":
        return add(g, mul(g, da, y), mul(g, x, db))
    if op == "div":  # (da - (x/y) db) * (1/y): one division per denominator, shared
        num = sub(g, da, mul(g, e, db))
        return mul(g, num, g.node("div", (g.const(1.0), y)))
    if op == "pow":
        out = None
        if da is not None:
            if y.op == "const":
                c = y.args[0]
                factor = (g.const(c) if c == 1.0 else
                          g.node("mul", (g.const(c), g.node("pow", (x, g.const(c - 1.0))))))
            else:
                factor = g.node("mul", (y, g.node("pow", (x, g.node("sub", (y, g.const(1.0)))))))
            out = mul(g, factor, da)
        if db is not None:
            out = add(g, out, mul(g, g.node("mul", (e, g.node("log", (x,)))), db))
        return out
    if op == "min":  # y if x > y else x
        return _where(g, g.node("gt", (x, y)), db, da)
    if op == "max":  # y if x < y else x
        return _where(g, g.node("lt", (x, y)), db, da)
    raise AssertionError(f"no derivative rule for {op}")


def vjp(g: Graph, out: list[Sym], cot: list[Sym], leaves: list[Sym]) -> list[Sym | None]:
    r"""``[Σ_i cot_i ∂out_i/∂leaf for leaf in leaves]`` (``None`` where identically zero)."""
    result = []
    for leaf in leaves:
        memo: dict[int, Sym | None] = {}
        acc = None
        for o, c in zip(out, cot, strict=True):
            acc = add(g, acc, mul(g, c, diff(g, o, leaf, memo)))
        result.append(acc)
    return result


__all__ = ["add", "diff", "mul", "sub", "vjp"]
