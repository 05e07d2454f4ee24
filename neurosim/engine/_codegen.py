r"""Code generation: a traced model and an integrator printed as one numba kernel.

The kernel runs the whole time loop of a population whose elements are
independent (neurons, batch entries, sweep samples). Time is the outer loop;
each step visits the elements in blocks of :data:`BLOCK`, reading the input row
as it lies in memory, updating the state in place and writing only what was
asked for (spike events in (step, element) order — adaptive kernels let elements
that wait for the lanes catch up later, and the caller sorts their events —, a
dense raster, traces). Per element and step it
does exactly what :meth:`neurosim.Step.with_events` does on tensors:

1. crossing-only models note whether the element starts below threshold;
2. the input jump :math:`x \leftarrow J(x, u)`;
3. rounds: a refractory segment :math:`h_r = \min(r, \text{left})` with the
   clamped vector field; a free segment over the time left with threshold
   detection (on the grid, or located inside it by safeguarded Newton iteration
   for exact and adaptive integration); at a spike the reset :math:`x \leftarrow
   R(x)`, ``r = t_ref``, an event (step, element, offset inside the step), and in
   precise mode the next round with the time left.

The model enters only through the printed expression graphs of
:mod:`neurosim.engine._trace` (``_f``, ``_fc``, ``_d``, ``_reset``, ``_jump``,
``_rates``); the integrators are templates over the number of state variables.
The source is written once per (model structure, integrator, dtype) under the
kernel cache directory and compiled by numba with ``cache=True``, so later
processes load machine code from disk.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
import threading
from pathlib import Path

import torch

from ._trace import BINARY, UNARY, ModelIR, Sym

#: elements per block
BLOCK = 256
assert BLOCK % 64 == 0, "the flag scan reads 64 elements per word"
#: the most spike rounds of one element within one step (precise spikes)
MAX_ROUNDS = 10_000
#: adaptive integration: elements whose sub-steps advance side by side (``_lanes``)
LANES = 8
#: adaptive integration: the most steps an element waits frozen for the lanes to fill
#: before every frozen element is made to catch up
MAXLAG = 32
#: adaptive integration: fewer elements in a call than this and the jobs run in the step
#: they come from (the lanes would rarely fill, and the wait costs more than it saves)
DEFER_MIN = 256
#: decorator of the small helpers: inlined by numba, so the kernel is one straight loop body.
#: ``error_model="numpy"`` everywhere: division by zero gives inf/NaN as in torch (caught by
#: the divergence check) instead of a per-division test that stops vectorisation
_INLINE = '@njit(inline="always", cache=True, error_model="numpy")'
#: kernel source version: bump when the templates change (new cache files)
VERSION = 9

#: constants of the flag scan (pass 2 of fixed-step kernels): the non-zero flags of 64
#: elements packed into one word (``_PACK`` gathers the low bit of each byte of a word into
#: its top byte), whose set bits are visited in order (lowest set bit ``w & -w``, its index
#: by the de Bruijn sequence ``_DEB`` and the table ``_DBT``): the branches taken per step
#: grow with the number of flagged elements, not with the block's size
_FLAG_SCAN_CONSTANTS = (
    "_U1 = np.uint64(1)",
    "_U8 = np.uint64(8)",
    "_U56 = np.uint64(56)",
    "_U58 = np.uint64(58)",
    "_L01 = np.uint64(0x0101010101010101)",
    "_PACK = np.uint64(0x0102040810204080)",
    "_DEB = np.uint64(0x03F79D71B4CB0A89)",
    "_DBT = np.array([" + ", ".join(
        str(next(i for i in range(64) if ((0x03F79D71B4CB0A89 << i) % 2**64) >> 58 == k))
        for k in range(64)) + "], np.int64)",
)

# status codes returned by the kernels (info[0])
OK, EV_FULL, DIVERGED, BAD_INPUT, TOO_SMALL, MAX_STEPS, MAX_ROUNDS_HIT, OUT_OF_RANGE = range(8)
#: the event buffer filled up inside a step (several spikes of one element in a step):
#: the caller restores the state and runs the call again with a larger buffer
EV_RESTART = 8

#: generate the per-block divergence check of the state (non-finite values and declared
#: ranges). Private: only ``benchmarks/check_cost.py`` turns it off, to measure its cost
_STATE_CHECKS = True

# Dormand-Prince 5(4), as in neurosim.integrators.adaptive
_DP_C = ("0.0", "1.0 / 5.0", "3.0 / 10.0", "4.0 / 5.0", "8.0 / 9.0", "1.0", "1.0")
_DP_A = (
    (),
    ("1.0 / 5.0",),
    ("3.0 / 40.0", "9.0 / 40.0"),
    ("44.0 / 45.0", "-56.0 / 15.0", "32.0 / 9.0"),
    ("19372.0 / 6561.0", "-25360.0 / 2187.0", "64448.0 / 6561.0", "-212.0 / 729.0"),
    ("9017.0 / 3168.0", "-355.0 / 33.0", "46732.0 / 5247.0", "49.0 / 176.0",
     "-5103.0 / 18656.0"),
    ("35.0 / 384.0", "0.0", "500.0 / 1113.0", "125.0 / 192.0", "-2187.0 / 6784.0",
     "11.0 / 84.0"),
)
_DP_E = ("71.0 / 57600.0", "0.0", "-71.0 / 16695.0", "71.0 / 1920.0", "-17253.0 / 339200.0",
         "22.0 / 525.0", "-1.0 / 40.0")


def cache_dir() -> Path:
    """Where generated kernels and numba's machine code are kept.

    ``$NEUROSIM_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/neurosim`` or
    ``~/.cache/neurosim``; a folder ``kernels`` inside it.
    """
    root = os.environ.get("NEUROSIM_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "neurosim")
    return Path(root) / "kernels"


def range_terms(k: int, value: str, stored: str,
                ranges: dict[int, tuple[float, float]] | None = None) -> str:
    """The divergence test of variable ``k`` as a branch-free boolean expression (see
    ``check`` in :func:`_kernel`); ``ranges`` by variable index (``None``: no ranges)."""
    bounds = (ranges or {}).get(k)
    if bounds is None:
        return f"(({value} - {value}) != zero)"
    lo, hi = bounds
    if math.isfinite(lo) and math.isfinite(hi):
        return f"(not (({stored} >= _F({lo!r})) & ({stored} <= _F({hi!r}))))"
    terms = [f"(({stored} - {stored}) != zero)"]
    if math.isfinite(lo):
        terms.append(f"({stored} < _F({lo!r}))")
    if math.isfinite(hi):
        terms.append(f"({stored} > _F({hi!r}))")
    return " | ".join(terms)


# -- expressions -------------------------------------------------------------------------
def _tup(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


class _Printer:
    """Prints expression graphs as straight-line scalar code."""

    def __init__(self, ir: ModelIR, var_names: dict[str, str], const: str) -> None:
        self.ir = ir
        self.vars = var_names
        self.const = const
        self.params = {p: k for k, p in enumerate(ir.params)}

    def leaf(self, n: Sym) -> str:
        if n.op == "var":
            return self.vars[n.args[0]]
        if n.op == "param":
            return f"P[{self.params[n.args[0]]}, mp]"
        if n.op == "input":
            return "u"
        if n.op == "const":
            v = n.args[0]
            if v != v:
                return f"{self.const}(math.nan)"
            if v in (float("inf"), float("-inf")):
                return f"{self.const}({'-' if v < 0 else ''}math.inf)"
            return f"{self.const}({v!r})"
        raise AssertionError(n.op)

    def block(self, roots: list[Sym], prefix: str) -> tuple[list[str], list[str]]:
        """Statements computing ``roots`` and the names holding them."""
        needed: dict[int, Sym] = {}
        stack = list(roots)
        while stack:
            n = stack.pop()
            if n.id in needed:
                continue
            needed[n.id] = n
            if n.op not in ("var", "param", "input", "const"):
                stack.extend(n.args)
        names: dict[int, str] = {}
        lines = []
        for nid in sorted(needed):
            n = needed[nid]
            if n.op in ("var", "param", "input", "const"):
                names[nid] = self.leaf(n)
                continue
            a = [names[c.id] for c in n.args]
            lines.append(f"{prefix}{nid} = {self.expr(n.op, a, n)}")
            names[nid] = f"{prefix}{nid}"
        return lines, [names[r.id] for r in roots]

    def expr(self, op: str, a: list[str], n: Sym) -> str:
        c = self.const
        if op in UNARY:
            x = a[0]
            if op == "neg":
                return f"-{x}"
            if op == "abs":
                return f"abs({x})"
            if op == "not":
                return f"not {x}"
            if op == "sigmoid":
                return f"{c}(1.0) / ({c}(1.0) + math.exp(-{x}))"
            return f"math.{op}({x})"
        if op == "where":
            return f"{a[1]} if {a[0]} else {a[2]}"
        assert op in BINARY, op
        x, y = a
        sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "gt": ">", "ge": ">=",
               "lt": "<", "le": "<=", "eq": "==", "ne": "!=", "and": "and", "or": "or"}
        if op in sym:
            return f"{x} {sym[op]} {y}"
        if op == "pow":
            e = n.args[1]
            if e.op == "const" and e.args[0] in (2.0, 3.0, 4.0):
                k = int(e.args[0])
                return {2: f"{x} * {x}", 3: f"{x} * {x} * {x}",
                        4: f"({x} * {x}) * ({x} * {x})"}[k]
            return f"{x} ** {y}"
        if op == "min":  # torch.minimum / clamp(max=): NaN propagates from x
            return f"{y} if {x} > {y} else {x}"
        if op == "max":
            return f"{y} if {x} < {y} else {x}"
        raise AssertionError(op)


# -- the generated module ----------------------------------------------------------------
class Spec:
    """What one kernel is specialised on (the model structure is in ``ir``)."""

    def __init__(self, ir: ModelIR, method: str, dtype: torch.dtype, n_lin: int = 0) -> None:
        self.ir, self.method, self.dtype = ir, method, dtype
        self.n_lin = n_lin  # exact: number of state variables of the linear system


def generate(spec: Spec) -> str:
    """The full source of the kernel module for ``spec``."""
    ir = spec.ir
    n = len(ir.states)
    xs = [f"x{k}" for k in range(n)]
    X = ", ".join(xs)
    wide = spec.method == "adaptive"
    const = "_W" if wide else "_F"
    pr = _Printer(ir, dict(zip(ir.states, xs, strict=True)), const)
    out = [
        '"""Generated by neurosim.engine: do not edit (regenerated from the model)."""',
        "import math",
        "import numpy as np",
        "from numba import njit",
        "",
        f"_F = np.{str(spec.dtype).replace('torch.', '')}",
        "_W = np.float64",
        f"NV = {n}",
        f"NP = {len(ir.params)}",
        f"BLOCK = {BLOCK}",
        f"LANES = {LANES}",
        f"MAXLAG = {MAXLAG}",
        f"DEFER_MIN = {DEFER_MIN}",
        f"SPIKING = {ir.spiking}",
        f"CROSSING_ONLY = {ir.crossing_only}",
        *_FLAG_SCAN_CONSTANTS,
        "",
    ]
    deco = _INLINE

    def fn(name: str, args: str, roots: list[Sym], single: bool = False) -> None:
        lines, names = pr.block(roots, "t")
        out.append(deco)
        out.append(f"def {name}({args}):")
        out.extend("    " + ln for ln in lines)
        out.append("    return " + (names[0] if single else _tup(names)))
        out.append("")

    fn("_f", f"{X}, u, P, mp", [ir.f[s] for s in ir.states])
    fn("_fc", f"{X}, u, P, mp", [ir.f_clamped[s] for s in ir.states])
    fn("_jump", f"{X}, u, P, mp", [ir.jump[s] for s in ir.states])
    # a model without spikes gets a threshold distance of -1 (never crossed) and no reset,
    # so the integrators' detection code is the same for every model
    fn("_d", f"{X}, P, mp", [ir.d if ir.spiking else ir.graph.const(-1.0)], single=True)
    fn("_reset", f"{X}, P, mp", [ir.reset[s] for s in ir.states])
    lin = [s for s in ir.states if s in ir.rates]
    if spec.method == "exponential_euler":
        fn("_rates", f"{X}, u, P, mp", [ir.rates[s] for s in lin])
    out.extend(_integrator(spec, xs, lin))
    out.extend(_kernel(spec, xs))
    return "\n".join(out) + "\n"


def _integrator(spec: Spec, xs: list[str], lin: list[str]) -> list[str]:
    """``_adv(x..., u, h, P, mp, clamped, dt)`` for fixed-step methods; locate helpers."""
    ir = spec.ir
    n = len(xs)
    X = ", ".join(xs)
    deco = _INLINE
    o: list[str] = []
    if spec.method in ("euler", "rk4", "exponential_euler"):
        o += [deco, "def _adv(x, u, h, P, mp, clamped, dt):", f"    {X}, = x" if n == 1
              else f"    {X} = x"]
        if spec.method == "euler":
            o += ["    f = _fc(" + X + ", u, P, mp) if clamped else _f(" + X + ", u, P, mp)",
                  "    return " + _tup([f"{x} + h * f[{k}]" for k, x in enumerate(xs)])]
        elif spec.method == "rk4":
            o += ["    F = _fc if clamped else _f",
                  "    hh = _F(0.5) * h",
                  f"    k1 = _fc({X}, u, P, mp) if clamped else _f({X}, u, P, mp)"]
            for a, b, step in (("k2", "k1", "hh"), ("k3", "k2", "hh"), ("k4", "k3", "h")):
                args = ", ".join(f"{x} + {step} * {b}[{k}]" for k, x in enumerate(xs))
                o.append(f"    {a} = _fc({args}, u, P, mp) if clamped else _f({args}, u, P, mp)")
            o.append("    return " + _tup([
                f"{x} + (h / _F(6.0)) * (k1[{k}] + _F(2.0) * k2[{k}] + _F(2.0) * k3[{k}]"
                f" + k4[{k}])" for k, x in enumerate(xs)]))
            o = [ln for ln in o if ln != "    F = _fc if clamped else _f"]
        else:  # exponential Euler
            o += [f"    f = _fc({X}, u, P, mp) if clamped else _f({X}, u, P, mp)"]
            if lin:
                o.append(f"    A = _rates({X}, u, P, mp)")
            res = []
            for k, (s, x) in enumerate(zip(ir.states, xs, strict=True)):
                if s in lin:
                    j = lin.index(s)
                    res.append(f"{x} + h * f[{k}] * _phi1(A[{j}] * h)")
                else:
                    res.append(f"{x} + h * f[{k}]")
            o.append("    return " + _tup(res))
            o = [deco, "def _phi1(z):", "    if z == 0:", "        return _F(1.0)",
                 "    return math.expm1(z) / z", ""] + o
        o.append("")
    elif spec.method == "exact":
        o += _exact_helpers(spec, xs)
    elif spec.method == "adaptive":
        o += _adaptive_helpers(spec, xs)
    # the crossing helpers (a model without spikes never calls them)
    sh = ", ".join(f"{x} + f[{k}]" for k, x in enumerate(xs))
    o += [deco, "def _slope(x, f, P, mp):", f"    {X}, = x" if n == 1 else f"    {X} = x",
          f"    return _d({sh}, P, mp) - _d({X}, P, mp)", ""]
    o += _find_crossing()
    return o


def _find_crossing() -> list[str]:
    """Safeguarded Newton on [0, h] (as :func:`neurosim.events.find_crossing`, per element)."""
    return '''
@njit(cache=True, error_model="numpy")
def _newton_init(h, d_end, d_start):
    a = h - h
    b = h
    den = d_end - d_start
    if den > 0:
        s = b - d_end * (b - a) / den
    else:
        s = (a + b) * 0.5
    return a, b, s


@njit(cache=True, error_model="numpy")
def _newton_update(s, a, b, d, slope, tol, noise, last):
    """One iteration: returns (s_new, a, b, step, done)."""
    if d <= 0:
        a = s
    else:
        b = s
    newton = s - d / slope
    ok = math.isfinite(newton) and newton >= a and newton <= b
    s_new = newton if ok else (a + b) * 0.5
    if d == 0:
        s_new = s
    step = abs(s_new - s)
    done = step <= tol or d == 0 or (ok and step <= noise and step >= last)
    return s_new, a, b, step, done
'''.splitlines()


def _exact_helpers(spec: Spec, xs: list[str]) -> list[str]:
    """Exact flow: propagator rows for a full step, a Taylor series of exp(M s) otherwise.

    Coefficient rows after the model parameters (``base``): for the free and the
    clamped flow, ``E`` (n rows of n + 2: exp(M dt)) and then ``M`` (n rows of n + 2).
    """
    n = len(xs)
    X = ", ".join(xs)
    npar = len(spec.ir.params)
    w = n + 2
    base = npar + 1  # after the parameters and t_ref
    o = []

    def row(kind: int, which: int, i: int, j: int) -> str:
        # kind: 0 free E, 1 clamped E, 2 free M, 3 clamped M
        return f"P[{base + kind * n * w + i * w + j}, mp]"

    for clamped in (0, 1):
        o += [_INLINE, f"def _full{clamped}({X}, u, P, mp):"]
        res = []
        for i in range(n):
            e = f"{row(clamped, 0, i, n)} + {row(clamped, 0, i, n + 1)} * u"
            for j, x in enumerate(xs):
                e = f"({e}) + {row(clamped, 0, i, j)} * {x}"
            res.append(e)
        o += ["    return " + _tup(res), ""]
        # exp(M s)[x; 1; u] = x + sum_k s^k/k! A^(k-1) (A x + c + g u), in float64,
        # in sub-intervals of norm <= 1/2
        o += ['@njit(cache=True, error_model="numpy")', f"def _part{clamped}({X}, u, s, P, mp):"]
        o += [f"    y{k} = _W({x})" for k, x in enumerate(xs)]
        o += ["    uu = _W(u)", "    nrm = 0.0"]
        for i in range(n):
            o.append("    nrm = max(nrm, " + " + ".join(
                f"abs(_W({row(clamped + 2, 0, i, j)}))" for j in range(n)) + ")")
        o += ["    ss = _W(s)", "    nsub = max(1, int(math.ceil(nrm * ss / 0.5)))",
              "    hs = ss / nsub", "    for _ in range(nsub):"]
        for i in range(n):
            terms = " + ".join([f"_W({row(clamped + 2, 0, i, n)})",
                                f"_W({row(clamped + 2, 0, i, n + 1)}) * uu"]
                               + [f"_W({row(clamped + 2, 0, i, j)}) * y{j}" for j in range(n)])
            o.append(f"        q{i} = hs * ({terms})")
        o += [f"        z{i} = y{i} + q{i}" for i in range(n)]
        o += ["        for k in range(2, 40):"]
        for i in range(n):
            terms = " + ".join(f"_W({row(clamped + 2, 0, i, j)}) * q{j}" for j in range(n))
            o.append(f"            r{i} = (hs / k) * ({terms})")
        o += [f"            q{i} = r{i}" for i in range(n)]
        o += [f"            z{i} = z{i} + q{i}" for i in range(n)]
        cond = " and ".join(f"abs(q{i}) <= 1e-17 * abs(z{i})" for i in range(n))
        o += [f"            if {cond}:", "                break"]
        o += [f"        y{i} = z{i}" for i in range(n)]
        o += ["    return " + _tup([f"_F(y{i})" for i in range(n)]), ""]
    o += ['@njit(cache=True, error_model="numpy")', "def _adv(x, u, h, P, mp, clamped, dt):",
          f"    {X}, = x" if n == 1 else f"    {X} = x",
          "    if clamped:",
          "        if h == dt:",
          f"            return _full1({X}, u, P, mp)",
          f"        return _part1({X}, u, h, P, mp) if h > 0 else x",
          "    if h == dt:",
          f"        return _full0({X}, u, P, mp)",
          f"    return _part0({X}, u, h, P, mp) if h > 0 else x", ""]
    return o


def _adaptive_helpers(spec: Spec, xs: list[str]) -> list[str]:
    """DoPri5 with per-element error control (:mod:`neurosim.integrators.adaptive`), float64."""
    n = len(xs)
    X = ", ".join(xs)
    o = ['@njit(cache=True, error_model="numpy")', "def _F_any(x, u, P, mp, clamped):",
         f"    {X}, = x" if n == 1 else f"    {X} = x",
         f"    return _fc({X}, u, P, mp) if clamped else _f({X}, u, P, mp)", ""]
    # each twice: called from the general path, and inlined into the vectorised first
    # trial of pass 1 (the same operations in the same order: the same results)
    for suffix, deco in (("", '@njit(cache=True, error_model="numpy")'), ("_v", _INLINE)):
        o += _dopri_lines(n, suffix, deco) + _norm_lines(n, suffix, deco)
    return o


def _dopri_lines(n: int, suffix: str, deco: str) -> list[str]:
    """One Dormand-Prince step of size k: ``(x_new, f_new, err)``, float64."""
    o = [deco, f"def _dopri{suffix}(x, f0, u, k, P, mp, clamped):",
         '    """One step of size k: (x_new, f_new, err)."""']
    stages = ["f0"]
    for i in range(1, 7):
        args = []
        for v in range(n):
            acc = " + ".join(f"_W({_DP_A[i][j]}) * {stages[j]}[{v}]"
                             for j in range(i) if _DP_A[i][j] != "0.0")
            args.append(f"x[{v}] + k * ({acc})")
        o.append(f"    xs{i} = {_tup(args)}")
        if suffix:  # inlined: the free vector field itself (pass 1 takes free elements)
            o.append(f"    f{i} = _f({', '.join(f'xs{i}[{v}]' for v in range(n))}, u, P, mp)")
        else:
            o.append(f"    f{i} = _F_any(xs{i}, u, P, mp, clamped)")
        stages.append(f"f{i}")
    err = []
    for v in range(n):
        acc = " + ".join(f"_W({_DP_E[j]}) * {stages[j]}[{v}]" for j in range(7)
                         if _DP_E[j] != "0.0")
        err.append(f"k * ({acc})")
    o += [f"    return xs6, f6, {_tup(err)}", ""]
    return o


def _norm_lines(n: int, suffix: str, deco: str) -> list[str]:
    """The RMS error norm of a Dormand-Prince step. The square is a product: numba
    compiles ``e ** 2`` as a small loop (exponentiation by squaring; the same value)."""
    o = [deco, f"def _norm{suffix}(err, x, xn, rtol, atol):", "    tot = 0.0"]
    for v in range(n):
        o.append(f"    sc = atol + rtol * max(abs(x[{v}]), abs(xn[{v}]))")
        o.append(f"    e = err[{v}] / sc")
        o.append("    tot = tot + e * e")
    o += [f"    r = math.sqrt(tot / {n})", "    return r if math.isfinite(r) else math.inf", ""]
    return o


def _kernel(spec: Spec, xs: list[str]) -> list[str]:
    """The time/block/element loop with the rounds of one step.

    Each time step takes two passes over a block: a plain, branch-free step for every
    element (which the compiler vectorises), marking in ``FL`` the elements that need
    more (0: done; 1: a grid spike, reset applied; 2: refractory, a precise spike, or
    an adaptive step whose first trial was rejected: the general rounds); then the spike
    bookkeeping and the general path for the marked ones, from their saved state.
    """
    ir = spec.ir
    n = len(xs)
    X = ", ".join(xs)
    xt = _tup(xs)
    unpack = f"{X}," if n == 1 else X
    adaptive = spec.method == "adaptive"
    # first stage of an adaptive step = last stage of the previous one (the same derivative,
    # bitwise) where the state is stored unrounded and the input moves nothing by a jump
    fsal = (adaptive and spec.dtype == torch.float64
            and all(ir.jump[x].op == "var" and ir.jump[x].args[0] == x for x in ir.states))
    o: list[str] = []
    # declared plausible ranges by variable index (finite ends only)
    ranges = {k: ir.ranges[name] for k, name in enumerate(ir.states) if name in ir.ranges}

    def emit(level: int, *lines: str) -> None:
        o.extend("    " * level + ln for ln in lines)

    def check(values: list[str], stored: list[str]) -> list[str]:
        """``bad |= ...``, bitwise, so branch-free: a variable without a declared range is
        flagged where ``values`` is not finite (``x - x`` is 0 only for finite x); one with
        a range where its ``stored`` value is not inside it (NaN fails both comparisons)."""
        if not _STATE_CHECKS:
            return []
        return ["bad |= " + " | ".join(range_terms(k, values[k], stored[k], ranges)
                                       for k in range(n))]

    def fail(level: int, status: str) -> None:
        emit(level, f"info[0] = {status}", "info[2] = t", "info[3] = m", "return")

    def adaptive_call(level: int, h: str, clamped: str, detect: str,
                      first: str | None = None) -> None:
        # the budget of sub-steps is per element and step, over its rounds
        call = (f"y, s, hit, dcr, st, nit = _adaptive({xt}, u, {h}, P, mp, {clamped}, "
                f"{detect}, rtol, atol, max_steps - used, dt, weps)")
        if first is None:
            emit(level, call)
        else:  # the free advance over the whole step, done for the queue by _lanes
            emit(level, f"if {first}:")
            emit(level + 1, f"y = {_tup([f'OY[{k}, pq]' for k in range(n)])}",
                 "s = OS[pq]", "hit = OH[pq]", "dcr = OD[pq]", "st = OT[pq]", "nit = ON[pq]")
            emit(level, "else:")
            emit(level + 1, call)
        emit(level, "used += nit", "if st != 0:")
        fail(level + 1, "st")

    def general(L: int) -> None:
        """The rounds of one step for element m, from X; stores X, R, events, nsp."""
        emit(L, *[f"{x} = X[{k}, m]" for k, x in enumerate(xs)])
        if adaptive:
            emit(L, "used = 0")
        if not ir.spiking:
            emit(L, f"{unpack} = _jump({X}, u, P, mp)")
            if adaptive:
                adaptive_call(L, "dt", "False", "False", "pq >= 0")
            else:
                emit(L, f"y = _adv({xt}, u, dt, P, mp, False, dt)")
            emit(L, *[f"{x} = _F(y[{k}])" for k, x in enumerate(xs)], "nsp = 0")
        else:
            emit(L, "r = R[m]", f"tref = P[{len(ir.params)}, mp]", "allowed = True")
            if ir.crossing_only:
                emit(L, f"allowed = _d({X}, P, mp) <= 0")
            emit(L, f"{unpack} = _jump({X}, u, P, mp)", "nsp = 0", "left = dt",
                 "elapsed = zero", "rounds = 0", "while True:")
            W = L + 1
            emit(W, "rounds += 1", f"if rounds > {MAX_ROUNDS}:")
            fail(W + 1, str(MAX_ROUNDS_HIT))
            # 1. refractory segment, clamped
            emit(W, "if r > zero:")
            emit(W + 1, "hr = min(r, left)")
            if adaptive:
                adaptive_call(W + 1, "hr", "True", "False")
            else:
                emit(W + 1, f"y = _adv({xt}, u, hr, P, mp, True, dt)")
            emit(W + 1, *[f"{x} = _F(y[{k}])" for k, x in enumerate(xs)],
                 "r = max(r - hr, zero)", "left = left - hr", "elapsed = elapsed + hr")
            emit(W, "if not left > zero:", "    break")
            # 2. free segment with threshold detection
            E = ", ".join(f"e{k}" for k in range(n))
            if adaptive:
                adaptive_call(W, "left", "False", "allowed", "rounds == 1 and pq >= 0")
                emit(W, "s = _F(s)", *[f"e{k} = _F(y[{k}])" for k in range(n)])
            else:
                emit(W, f"y = _adv({xt}, u, left, P, mp, False, dt)",
                     *[f"e{k} = y[{k}]" for k in range(n)],
                     f"dend = _d({E}, P, mp)", "hit = allowed and dend > 0", "s = left")
                if spec.method == "exact":
                    emit(W, "if hit and precise:")
                    emit(W + 1, f"d0 = _d({X}, P, mp)", "if d0 > 0:")
                    emit(W + 2, "s = zero", *[f"e{k} = {x}" for k, x in enumerate(xs)])
                    emit(W + 1, "else:")
                    emit(W + 2, f"s, y = _locate_exact({xt}, u, left, dend, d0, P, mp, eps)",
                         *[f"e{k} = y[{k}]" for k in range(n)])
            emit(W, "if not hit:")
            emit(W + 1, *[f"{x} = e{k}" for k, x in enumerate(xs)], "break")
            # 3. the spike: event, reset, refractoriness, the time left
            emit(W, "nsp += 1", "if nev >= cap:")
            emit(W + 1, f"info[0] = {EV_RESTART}", "return")
            emit(W, "EVT[nev] = t", "EVM[nev] = m", "EVS[nev] = elapsed + s", "nev += 1",
                 f"{unpack} = _reset({E}, P, mp)", "r = tref", "if not precise:", "    break",
                 "elapsed = elapsed + s", "left = left - s",
                 f"da = _d({X}, P, mp)", f"dc = _d({E}, P, mp)",
                 "if da > 0 or da >= dc:", "    allowed = False",
                 "if not left > zero:", "    break")
            emit(L, "R[m] = r")
        emit(L, *[f"X[{k}, m] = {x}" for k, x in enumerate(xs)], *check(xs, xs))
        if fsal:  # the first stage of the next step's trial (pass 1 takes the element
            # again only once it has caught up: step tc)
            emit(L, "if t >= tc:")
            emit(L + 1, f"fz = _f({X}, _W(u), P, mp)",
                 *[f"FS[{k}, e] = fz[{k}]" for k in range(n)])
        emit(L, "if dense:", "    SPK[t, m] = nsp")

    emit(0, '@njit(nogil=True, cache=True, error_model="numpy")',
         "def kernel(b0, b1, BL, T, dt, U, uo, ut, um, PG, ps, X, R, REC, recv, SPK,",
         "           EVT, EVM, EVS, info, precise, rtol, atol, max_steps):",
         '    """Run the blocks BL[b0:b1] over T steps (see the module docstring).',
         "",
         "    info: [status, n_events, step, element, variable, first step]",
         '    """')
    emit(1, "M = X.shape[1]", "zero = dt - dt", "nev = info[1]", "cap = EVT.shape[0]",
         *(["fast = ps == 0"] if spec.method == "exact" else []),
         "nrec = REC.shape[0]", "dense = SPK.shape[0] > 0", "eps = np.finfo(_F).eps",
         "weps = np.finfo(_W).eps", "FL = np.zeros(BLOCK, np.int8)",
         "FLW = FL.view(np.uint64)",
         # uniform parameters (ps == 0): one column, broadcast over a block once
         "PB = np.empty((PG.shape[0], BLOCK), PG.dtype)",
         "if ps == 0:",
         "    for k in range(PG.shape[0]):",
         "        PB[k, :] = PG[k, 0]",
         "P = PB if ps == 0 else PG",
         "grid = not precise",
         # the elements of the call (n_el), and their offsets e = (bi - b0) * BLOCK + j
         # (n_slot of them) for the block at position bi of BL
         "n_slot = (b1 - b0) * BLOCK",
         "n_el = 0",
         "for bi in range(b0, b1):",
         "    n_el += min(M, (BL[bi] + 1) * BLOCK) - BL[bi] * BLOCK",
         # refractoriness can start only where t_ref > 0 or a clock is running already
         *([f"if fast and PG[{len(ir.params)}, 0] > zero:", "    fast = False",
            "if fast:", "    for bi in range(b0, b1):",
            "        for m in range(BL[bi] * BLOCK, min(M, (BL[bi] + 1) * BLOCK)):",
            "            if R[m] > zero:", "                fast = False"]
           if ir.spiking and spec.method == "exact" else []),
         *([f"FS = np.empty(({n}, n_slot))", "tf = info[5]"] if fsal else []),
         # adaptive: the jobs of frozen elements (by element offset e):
         # input (XI, UI, MI, DI), result (OY, OS, OH, OD, OT, ON), step (JT, -1: not
         # frozen), the ring of waiting jobs (JQ; JS = head, tail, live lanes), the lanes
         *([f"XI = np.empty(({n}, n_slot))", f"OY = np.empty(({n}, n_slot))",
            "Q = np.empty(n_slot, np.int64)", "JT = np.full(n_slot, -1, np.int64)",
            "JQ = np.empty(n_slot, np.int64)", "JS = np.zeros(3, np.int64)",
            "DN = np.empty(n_slot + LANES, np.int64)",
            "UI = np.empty(n_slot)", "MI = np.empty(n_slot, np.int64)",
            "DI = np.empty(n_slot, np.bool_)", "OS = np.empty(n_slot)",
            "OH = np.empty(n_slot, np.bool_)", "OD = np.empty(n_slot)",
            "OT = np.empty(n_slot, np.int64)", "ON = np.empty(n_slot, np.int64)",
            f"LA = np.empty(({2 * n + 5}, LANES))", f"TR = np.empty(({2 * n + 2}, LANES))",
            "LM = np.empty(LANES, np.int64)", "LIT = np.empty(LANES, np.int64)",
            "LQ = np.empty(LANES, np.int64)", "LP = np.empty((P.shape[0], LANES), P.dtype)",
            "nfrozen = 0", "tfirst = 0"]
           if adaptive else []),
         # time outside, blocks inside: the input streams row by row and the events of
         # this call come out in (step, element) order (adaptive: sorted by the caller)
         "for tg in range(info[5], T):")
    emit(2, "t = tg")
    if adaptive:
        # a call that runs out of room for events stops at the start of a step, after
        # the frozen elements have caught up with the step before
        emit(2, "full = cap - nev < n_el", "nq = 0", "badall = False", "if not full:")
        B = 4
    else:
        emit(2, "if cap - nev < n_el:",
             f"    info[0] = {EV_FULL}", "    info[1] = nev", "    info[5] = t", "    return")
        B = 3
    emit(B - 1, "for bi in range(b0, b1):")
    emit(B, "blk = BL[bi]", "lo = blk * BLOCK", "hi = min(lo + BLOCK, M)", "nb = hi - lo",
         "po = lo * ps", "bad = False")
    # pass 1: the plain step, branch-free; unsigned indices: numba then adds no
    # negative-index wraparound, whose selects would turn the contiguous loads and
    # stores into gathers (the compiler versions the input's loads on um == 1)
    emit(B, "ubu = np.uint64(uo + t * ut + lo * um)", "umu = np.uint64(um)",
         "lou = np.uint64(lo)", "pou = np.uint64(po)",
         *(["ebu = np.uint64((bi - b0) * BLOCK)"] if adaptive else []))

    def pass1(B: int, fs: str | None, fast: bool = False) -> None:
        emit(B, "for j in range(np.uint64(nb)):")
        L = B + 1
        emit(L, "m = lou + j", "mp = pou" if fast else "mp = pou + j", "u = U[ubu + j * umu]",
             "bad |= (u - u) != zero", *[f"o{k} = X[{k}, m]" for k in range(n)],
             *[f"{x} = o{k}" for k, x in enumerate(xs)])
        if ir.spiking and ir.crossing_only:
            emit(L, f"below = _d({X}, P, mp) <= 0")
        emit(L, f"{unpack} = _jump({X}, u, P, mp)")
        if adaptive:
            _adaptive_trial(emit, L, ir, xs, check, fs)
            return
        pass1_fixed(L, fast)

    def pass1_fixed(L: int, fast: bool) -> None:
        full = "_full0" if spec.method == "exact" else "_adv"
        args = f"{X}, u, P, mp" if spec.method == "exact" else f"{xt}, u, dt, P, mp, False, dt"
        ys = [f"y[{k}]" for k in range(n)]
        if ir.spiking:
            emit(L, f"y = {full}({args})")
            # bitwise operators and selects only: no branch in the vectorised loop
            emit(L, f"d = _d({', '.join(ys)}, P, mp)",
                 "free = True" if fast else "free = R[m] <= zero",
                 "spk = (d > 0)" + (" & below" if ir.crossing_only else ""),
                 f"z = _reset({', '.join(ys)}, P, mp)",
                 "c0 = free & (not spk)", "c1 = free & spk & grid",
                 "FL[j] = 2 - 2 * np.int8(c0) - np.int8(c1)")
            for k in range(n):
                emit(L, f"s{k} = y[{k}] if c0 else (z[{k}] if c1 else o{k})",
                     f"X[{k}, m] = s{k}")
            emit(L, *check(ys, [f"s{k}" for k in range(n)]))
        else:
            emit(L, f"y = {full}({args})", *[f"s{k} = _F(y[{k}])" for k in range(n)],
                 *[f"X[{k}, m] = s{k}" for k in range(n)],
                 *check(ys, [f"s{k}" for k in range(n)]))

    if fsal:
        # the derivative at the end of the last step is the first stage of this one where
        # the block's input is the same (bitwise) as in the last step of this call; else
        # a small loop evaluates it first (one trial loop: it is the costly one to compile)
        emit(B, "reuse = t > tf", "if reuse and ut != 0:")
        emit(B + 1, "for j in range(nb):")
        emit(B + 2, "if U[uo + t * ut + (lo + j) * um] != U[uo + (t - 1) * ut + (lo + j) * um]:",
             "    reuse = False", "    break")
        emit(B, "if not reuse:")
        emit(B + 1, "for j in range(np.uint64(nb)):")
        emit(B + 2, "m = lou + j", "mp = pou + j", "mf = ebu + j",
             f"fz = _f({', '.join(f'_W(X[{k}, m])' for k in range(n))}, "
             "_W(U[ubu + j * umu]), P, mp)", *[f"FS[{k}, mf] = fz[{k}]" for k in range(n)])
        pass1(B, "reuse")
    elif spec.method == "exact":
        # uniform parameters and no refractoriness in this call: the parameters are
        # loop invariants (loaded once, not a row of the broadcast block per element) and
        # the refractory clock is not read (+20-25 % for LIF at N = 1e5, which is bound
        # by memory traffic; the other methods are bound by arithmetic and keep one loop)
        emit(B, "if fast:")
        pass1(B + 1, None, fast=True)
        emit(B, "else:")
        pass1(B + 1, None)
    else:
        pass1(B, None)

    def element_check(L: int) -> None:
        """Fail where element m's state (in X) is not finite or outside its declared range."""
        for k in range(n):
            # the state is written in place: the caller reads the value from X
            emit(L, f"if not math.isfinite(X[{k}, m]):")
            emit(L + 1, f"info[4] = {k}")
            fail(L + 1, str(DIVERGED))
            cond = [f"X[{k}, m] {op} _F({b!r})" for op, b in zip(("<", ">"), ranges.get(k, ()),
                                                                     strict=False)
                    if math.isfinite(b)]
            if cond:
                emit(L, f"if {' or '.join(cond)}:")
                emit(L + 1, f"info[4] = {k}")
                fail(L + 1, str(OUT_OF_RANGE))

    def checks_and_records(B: int) -> None:
        # non-finite input or state: find the first culprit
        emit(B, "if bad:")
        emit(B + 1, "for j in range(nb):")
        emit(B + 2, "m = lo + j", "u = U[uo + t * ut + m * um]", "if not math.isfinite(u):")
        fail(B + 3, str(BAD_INPUT))
        emit(B + 1, "for j in range(nb):")
        emit(B + 2, "m = lo + j")
        element_check(B + 2)
        # records
        emit(B, "for q in range(nrec):")
        emit(B + 1, "k = recv[q]")
        emit(B + 1, f"if k < {n}:")
        emit(B + 2, "for j in range(nb):", "    REC[q, t, lo + j] = X[k, lo + j]")
        if ir.spiking:
            emit(B + 1, "else:")
            emit(B + 2, "for j in range(nb):", "    REC[q, t, lo + j] = R[lo + j]")

    def flag_scan(body: list[str]) -> None:
        """Visit the flagged elements of the block in order (64 flags per word): j, fl."""
        emit(B, "for g in range((nb + 63) >> 6):")
        emit(B + 1, "mk = np.uint64(0)", "for q in range(8):",
             "    w = FLW[g * 8 + q]",
             "    mk |= ((((w | (w >> _U1)) & _L01) * _PACK) >> _U56) << (_U8 * np.uint64(q))",
             "while mk != 0:")
        emit(B + 2, "low = mk & (~mk + _U1)", "mk ^= low",
             "j = g * 64 + _DBT[(low * _DEB) >> _U58]", "if j >= nb:", "    break",
             "fl = FL[j]", "if fl == 0:", "    continue", *body)

    if adaptive:
        # the flagged elements wait until the step's pass 1 is done: a refractory one takes
        # the general path now; the others are frozen (pass 1 leaves them alone) and their
        # free advance over the step becomes a job for the lanes (_lanes), which run only
        # while all LANES of them are busy, or to the end where every frozen element must
        # catch up (the last step of the call, a full event buffer, a frozen element
        # MAXLAG steps behind). A finished job: the general path for its step, then the
        # element's next step as a job, until it is back at the current step. Each
        # element does the same operations in the same order whenever it runs: the
        # results do not depend on the schedule (the events are sorted by the caller).
        # A call with fewer than DEFER_MIN elements runs the jobs in their own step
        flag_scan(["e = (bi - b0) * BLOCK + j", "if JT[e] >= 0:", "    continue", "Q[nq] = e",
                   "nq += 1"])
        emit(B, "badall |= bad")

        def submit(L: int) -> None:
            """Element m's free advance over step t as job e (from its state in X)."""
            emit(L, *[f"{x} = X[{k}, m]" for k, x in enumerate(xs)])
            if ir.spiking:
                emit(L, f"allowed = _d({X}, P, mp) <= 0" if ir.crossing_only else "allowed = True")
            emit(L, f"{unpack} = _jump({X}, u, P, mp)",
                 *[f"XI[{k}, e] = _W({x})" for k, x in enumerate(xs)],
                 "UI[e] = _W(u)", "MI[e] = mp",
                 "DI[e] = " + ("allowed" if ir.spiking else "False"),
                 "JT[e] = t", "JQ[JS[1] % n_slot] = e", "JS[1] += 1")

        emit(2, "nd = 0", "for q in range(nq):")
        emit(3, "e = Q[q]", "m = BL[b0 + e // BLOCK] * BLOCK + e % BLOCK", "mp = m * ps",
             "u = U[uo + t * ut + m * um]")
        if ir.spiking:
            emit(3, "if R[m] > zero:", "    DN[nd] = e", "    nd += 1", "    continue")
        submit(3)
        emit(3, "if nfrozen == 0:", "    tfirst = tg", "nfrozen += 1")
        emit(2, "tc = tg - 1 if full else tg",
             "force = full or tg == T - 1 or (nfrozen > 0 and tg - tfirst >= MAXLAG)",
             "minlive = 1 if force or n_el < DEFER_MIN else LANES", "bad = badall",
             "first = True", "while True:")
        emit(3, "if first:", "    first = False", "else:")
        emit(4, "nd = _lanes(XI, UI, MI, DI, JQ, JS, P, rtol, atol, max_steps, dt, weps,",
             "            OY, OS, OH, OD, OT, ON, LA, TR, LM, LIT, LQ, LP, DN, minlive)",
             "if nd == 0:", "    break")
        emit(3, "for i in range(nd):")
        emit(4, "e = DN[i]", "m = BL[b0 + e // BLOCK] * BLOCK + e % BLOCK", "mp = m * ps",
             "pq = e",
             "t = JT[e]", "if t < 0:", "    t = tg", "    pq = -1", "while True:")
        emit(5, "u = U[uo + t * ut + m * um]")
        general(5)
        element_check(5)
        emit(5, "for q in range(nrec):", "    k = recv[q]",
             f"    REC[q, t, m] = X[k, m] if k < {n} else " + ("R[m]" if ir.spiking else "zero"),
             "if t >= tc:", "    if JT[e] >= 0:", "        JT[e] = -1", "        nfrozen -= 1",
             "    break", "t += 1", "pq = -1", "u = U[uo + t * ut + m * um]")
        if ir.spiking:
            emit(5, "if R[m] > zero:", "    continue")
        submit(5)
        emit(5, "break")
        emit(2, "t = tg", "if full:", f"    info[0] = {EV_FULL}", "    info[1] = nev",
             "    info[5] = tg", "    return")
        emit(2, "for bi in range(b0, b1):")
        emit(3, "blk = BL[bi]", "lo = blk * BLOCK", "hi = min(lo + BLOCK, M)", "nb = hi - lo")
        checks_and_records(3)
    else:
        if ir.spiking:
            # pass 2: the spikes and the general path for the flagged elements
            body = ["m = lo + j", "mp = po + j", "if fl == 1:",
                    # room for one event per element was checked at the start of the step
                    "    EVT[nev] = t", "    EVM[nev] = m", "    EVS[nev] = dt",
                    "    nev += 1", f"    R[m] = P[{len(ir.params)}, mp]", "    if dense:",
                    "        SPK[t, m] = 1", "    continue", "u = U[uo + t * ut + m * um]"]
            flag_scan(body)
            general(B + 2)
        checks_and_records(B)
    emit(1, "info[1] = nev")
    o.append("")
    if spec.method == "exact" and ir.spiking:
        o = _locate_exact_fn(xs) + o
    if adaptive:
        o = _adaptive_fn(spec, xs) + o
    return o


def _adaptive_trial(emit, L: int, ir: ModelIR, xs: list[str], check,
                    fs: str | None = None) -> None:
    """Pass 1 of adaptive integration: the first trial of the general path (one
    Dormand-Prince step over dt from the free state), vectorised. An element whose trial
    is accepted, with no threshold crossing at either end, is done: the general path would
    compute the same operations and stop there. The others (refractory, rejected, a
    crossing) take the general path from their saved state (flag 2).

    ``fs="reuse"``: the first stage is read from ``FS`` (the derivative at the element's
    state and input, left there by the last step's trial, the general path, or the small
    loop that evaluates it afresh) and the trial's last stage is stored there for the next
    step (first same as last)."""
    n = len(xs)
    w = [f"w{k}" for k in range(n)]
    W = ", ".join(w)
    emit(L, *[f"{wk} = _W({x})" for wk, x in zip(w, xs, strict=True)], "uu = _W(u)",
         "mf = ebu + j")
    emit(L, "f0 = " + (_tup([f"FS[{k}, mf]" for k in range(n)]) if fs == "reuse"
                       else f"_f({W}, uu, P, mp)"),
         f"yn, fn, err = _dopri_v({_tup(w)}, f0, uu, _W(dt), P, mp, False)",
         f"nrm = _norm_v(err, {_tup(w)}, yn, rtol, atol)", "ok = nrm <= 1.0")
    if fs is not None:  # flagged elements: the general path stores its own
        emit(L, *[f"FS[{k}, mf] = fn[{k}]" for k in range(n)])
    if ir.spiking:
        yn = ", ".join(f"yn[{k}]" for k in range(n))
        emit(L, f"ok = ok & (R[m] <= zero) & (_d({W}, P, mp) <= 0) & (_d({yn}, P, mp) <= 0)")
    # a frozen element (JT >= 0: its job waits for the lanes) keeps its state
    emit(L, "ok = ok & (JT[mf] < 0)", "FL[j] = 2 - 2 * np.int8(ok)")
    for k in range(n):
        emit(L, f"s{k} = _F(yn[{k}]) if ok else o{k}", f"X[{k}, m] = s{k}")
    stored = [f"s{k}" for k in range(n)]
    emit(L, *check(stored, stored))


def _locate_exact_fn(xs: list[str]) -> list[str]:
    n = len(xs)
    X = ", ".join(xs)
    return [
        '@njit(cache=True, error_model="numpy")',
        "def _locate_exact(x, u, h, d_end, d_start, P, mp, eps):",
        f"    {X}, = x" if n == 1 else f"    {X} = x",
        "    a, b, s = _newton_init(h, d_end, min(d_start, d_start - d_start))",
        "    tol = 4.0 * eps * h",
        "    noise = math.sqrt(eps) * h",
        "    last = h",
        "    for _ in range(60):",
        f"        y = _part0({X}, u, s, P, mp)",
        f"        d = _d({', '.join(f'y[{k}]' for k in range(n))}, P, mp)",
        f"        f = _f({', '.join(f'y[{k}]' for k in range(n))}, u, P, mp)",
        "        slope = _slope(y, f, P, mp)",
        "        s, a, b, last, done = _newton_update(s, a, b, d, slope, tol, noise, last)",
        "        if done:",
        "            break",
        f"    return s, _part0({X}, u, s, P, mp)",
        "",
    ]


def _adaptive_fn(spec: Spec, xs: list[str]) -> list[str]:
    """The adaptive advance over h with detection (per element), in float64."""
    n = len(xs)
    W = [f"_W(x[{k}])" for k in range(n)]
    Y = ", ".join(f"y[{k}]" for k in range(n))
    return [
        '@njit(cache=True, error_model="numpy")',
        "def _adaptive(x, u, h, P, mp, clamped, detect, rtol, atol, max_steps, dt, weps):",
        '    """-> (x_stop, s_stop, crossed, d_cross, status, sub-steps attempted); float64."""',
        f"    y = {_tup(W)}",
        "    uu = _W(u)",
        "    h = _W(h)",
        "    s = 0.0",
        "    k = h",
        "    tiny = 16.0 * weps * dt",
        "    if not h > 0:",
        "        return y, h, False, 0.0, 0, 0",
        "    if detect:",
        f"        d = _d({Y}, P, mp)",
        "        if d > 0:",
        "            return y, 0.0, True, d, 0, 0",
        "    f = _F_any(y, uu, P, mp, clamped)",
        "    ka = 0.0",
        "    qa = 1.0",
        "    for it in range(max_steps):",
        "        remaining = h - s",
        "        last = k >= remaining",
        "        kk = remaining if last else k",
        "        yn, fn, err = _dopri(y, f, uu, kk, P, mp, clamped)",
        "        nrm = _norm(err, y, yn, rtol, atol)",
        "        accept = nrm <= 1.0",
        "        if accept and detect:",
        f"            dn = _d({', '.join(f'yn[{k}]' for k in range(n))}, P, mp)",
        "            if dn > 0:",
        "                sh, yh = _locate_adaptive(y, f, uu, kk, dn, P, mp, clamped, weps)",
        "                return yh, s + sh, True, dn, 0, it + 1",
        # the step is done: no next sub-step size (the same results, one pow less)
        "        if accept and last:",
        "            return yn, h, False, 0.0, 0, it + 1",
        "        q = max(nrm, 1e-10) ** -0.2",
        "        fac = min(max(0.9 * q, 0.2), 5.0)",
        "        if accept:",
        "            y = yn",
        "            f = fn",
        "            s = h if last else s + kk",
        "            if ka > 0:",
        "                fac = min(fac, min(max(0.9 * (kk / ka) * (q * q / qa), 0.2), 5.0))",
        "            ka = kk",
        "            qa = q",
        "        k = kk * fac",
        "        if not s < h:",
        "            return y, h, False, 0.0, 0, it + 1",
        "        if k < tiny:",
        f"            return y, s, False, 0.0, {TOO_SMALL}, it + 1",
        f"    return y, s, False, 0.0, {MAX_STEPS}, max(max_steps, 0)",
        "",
        '@njit(cache=True, error_model="numpy")',
        "def _locate_adaptive(y0, f0, u, k, d_end, P, mp, clamped, weps):",
        f"    d_start = _d({', '.join(f'y0[{j}]' for j in range(n))}, P, mp)",
        "    a, b, s = _newton_init(k, d_end, d_start)",
        "    tol = 4.0 * weps * k",
        "    noise = math.sqrt(weps) * k",
        "    last = k",
        "    for _ in range(60):",
        "        ys, fs, _e = _dopri(y0, f0, u, s, P, mp, clamped)",
        f"        d = _d({', '.join(f'ys[{j}]' for j in range(n))}, P, mp)",
        "        slope = _slope(ys, fs, P, mp)",
        "        s, a, b, last, done = _newton_update(s, a, b, d, slope, tol, noise, last)",
        "        if done:",
        "            break",
        "    ys, fs, _e = _dopri(y0, f0, u, s, P, mp, clamped)",
        "    return s, ys",
        "",
    ] + _lanes_fn(xs)


def _lanes_fn(xs: list[str]) -> list[str]:
    """``_lanes``: :func:`_adaptive` over dt (free, with detection where asked) for many
    elements at once. Up to ``LANES`` of them take their sub-steps side by side: the
    Dormand-Prince trials of all live lanes are one loop without dependences between its
    iterations, which the compiler vectorises (one element's sub-step alone is a chain of
    dependent ``exp`` calls and divisions, ~200 ns for AdEx); then each lane's controller
    runs as in ``_adaptive``, with the same operations in the same order: the same
    results. A lane whose element is done takes the next job; the live lanes stay packed
    at the front.

    The jobs wait in a ring (``JQ``; ``JS`` holds its head and tail and the number of live
    lanes), and the lanes keep their state between calls: the kernel adds the jobs of each
    step and calls ``_lanes``, which runs rounds while at least ``minlive`` lanes are live
    and returns as soon as jobs are finished (their indices in ``DN``), so the kernel can
    take them on (and add the next step of a frozen element as a new job).

    The lanes' state is one array ``LA`` (rows: state, derivative, s, k, last accepted
    k and its ``err^-1/5``, input) and the trials write only ``TR`` (rows: new state, new
    derivative, k, error norm): two arrays, so the vectoriser's overlap checks are few.
    Each lane has its element's parameters in a column of ``LP``: a gather from ``P`` in
    the trial loop would keep it from being vectorised.
    """
    n = len(xs)
    iy, i_f = 0, n
    iS, iK, iKA, iEA, iU = 2 * n, 2 * n + 1, 2 * n + 2, 2 * n + 3, 2 * n + 4
    rn, rf, rk, rnrm = 0, n, 2 * n, 2 * n + 1

    def tup(arr: str, row: int, col: str) -> str:
        return _tup([f"{arr}[{row + v}, {col}]" for v in range(n)])

    def args(arr: str, row: int, col: str) -> str:
        return ", ".join(f"{arr}[{row + v}, {col}]" for v in range(n))

    def out(y: str, s_: str, hit: str, d: str, st: str, nit: str, ind: str) -> list[str]:
        return [ind + ln for ln in [f"OY[{v}, q] = {y}[{v}]" for v in range(n)] + [
            f"OS[q] = {s_}", f"OH[q] = {hit}", f"OD[q] = {d}", f"OT[q] = {st}",
            f"ON[q] = {nit}"]]

    I4, I5 = " " * 16, " " * 20
    o = ['@njit(cache=True, error_model="numpy")',
         "def _lanes(XI, UI, MI, DI, JQ, JS, P, rtol, atol, max_steps, dt, weps,",
         "           OY, OS, OH, OD, OT, ON, LA, TR, LM, LIT, LQ, LP, DN, minlive):",
         '    """Jobs q (waiting in the ring JQ[JS[0]:JS[1]], or in one of the JS[2] live lanes):',
         "    _adaptive(XI[:, q], UI[q], dt, P, MI[q], False, DI[q], ...) into OY[:, q], OS[q],",
         "    OH[q], OD[q], OT[q], ON[q] (float64 inputs). Fills the free lanes, then runs rounds",
         "    while at least ``minlive`` lanes are live; returns the number of jobs finished (in",
         '    DN) as soon as there are any, 0 when fewer than ``minlive`` lanes are live."""',
         "    nj = JQ.shape[0]",
         "    head = JS[0]",
         "    tail = JS[1]",
         "    live = JS[2]",
         "    nd = 0",
         "    h = _W(dt)",
         "    tiny = 16.0 * weps * dt",
         "    while True:",
         # fill the free lanes (an element above threshold at the start is done at once)
         "        while live < LANES and head < tail:",
         "            q = JQ[head % nj]",
         "            head += 1",
         f"            y = {_tup([f'XI[{v}, q]' for v in range(n)])}",
         "            mp = MI[q]",
         "            if DI[q]:",
         f"                d = _d({', '.join(f'y[{v}]' for v in range(n))}, P, mp)",
         "                if d > 0:",
         *out("y", "0.0", "True", "d", "0", "0", I5),
         "                    DN[nd] = q",
         "                    nd += 1",
         "                    continue",
         "            if max_steps <= 0:",
         *out("y", "0.0", "False", "0.0", str(MAX_STEPS), "0", I4),
         "                DN[nd] = q",
         "                nd += 1",
         "                continue",
         "            l = live",
         "            live += 1",
         f"            f = _f({', '.join(f'y[{v}]' for v in range(n))}, UI[q], P, mp)",
         *[f"            LA[{iy + v}, l] = y[{v}]" for v in range(n)],
         *[f"            LA[{i_f + v}, l] = f[{v}]" for v in range(n)],
         f"            LA[{iS}, l] = 0.0", f"            LA[{iK}, l] = h",
         f"            LA[{iKA}, l] = 0.0", f"            LA[{iEA}, l] = 1.0",
         f"            LA[{iU}, l] = UI[q]", "            LM[l] = mp",
         "            LIT[l] = 0", "            LQ[l] = q",
         "            for r in range(P.shape[0]):",
         "                LP[r, l] = P[r, mp]",
         "        if nd > 0 or live == 0 or live < minlive:",
         "            JS[0] = head",
         "            JS[1] = tail",
         "            JS[2] = live",
         "            return nd",
         # the trials of all live lanes: no dependence between iterations; unsigned
         # indices (no negative-index selects in the way of the vectoriser)
         "        for l in range(np.uint64(live)):",
         f"            rem = h - LA[{iS}, l]",
         f"            kk = rem if LA[{iK}, l] >= rem else LA[{iK}, l]",
         f"            x = {tup('LA', iy, 'l')}",
         f"            yn, fn, err = _dopri_v(x, {tup('LA', i_f, 'l')}, LA[{iU}, l], kk, LP,"
         " l, False)",
         f"            TR[{rnrm}, l] = _norm_v(err, x, yn, rtol, atol)",
         *[f"            TR[{rn + v}, l] = yn[{v}]" for v in range(n)],
         *[f"            TR[{rf + v}, l] = fn[{v}]" for v in range(n)],
         f"            TR[{rk}, l] = kk",
         # each lane's controller, as in _adaptive
         "        l = 0",
         "        while l < live:",
         "            q = LQ[l]",
         f"            kk = TR[{rk}, l]",
         f"            nrm = TR[{rnrm}, l]",
         f"            last = LA[{iK}, l] >= h - LA[{iS}, l]",
         "            it = LIT[l]",
         "            LIT[l] = it + 1",
         "            accept = nrm <= 1.0",
         "            done = False",
         "            if accept and DI[q]:",
         f"                dn = _d({args('TR', rn, 'l')}, P, LM[l])",
         "                if dn > 0:",
         f"                    sh, yh = _locate_adaptive({tup('LA', iy, 'l')}, "
         f"{tup('LA', i_f, 'l')}, LA[{iU}, l], kk, dn, P, LM[l], False, weps)",
         *out("yh", f"LA[{iS}, l] + sh", "True", "dn", "0", "it + 1", I5),
         "                    done = True",
         "            if accept and last and not done:",
         *out(tup("TR", rn, "l"), "h", "False", "0.0", "0", "it + 1", I4),
         "                done = True",
         "            if not done:",
         "                qn = max(nrm, 1e-10) ** -0.2",
         "                fac = min(max(0.9 * qn, 0.2), 5.0)",
         "                if accept:",
         *[f"                    LA[{iy + v}, l] = TR[{rn + v}, l]" for v in range(n)],
         *[f"                    LA[{i_f + v}, l] = TR[{rf + v}, l]" for v in range(n)],
         f"                    LA[{iS}, l] = h if last else LA[{iS}, l] + kk",
         f"                    if LA[{iKA}, l] > 0:",
         f"                        fac = min(fac, min(max(0.9 * (kk / LA[{iKA}, l]) * "
         f"(qn * qn / LA[{iEA}, l]), 0.2), 5.0))",
         f"                    LA[{iKA}, l] = kk",
         f"                    LA[{iEA}, l] = qn",
         f"                LA[{iK}, l] = kk * fac",
         f"                if not LA[{iS}, l] < h:",
         *out(tup("LA", iy, "l"), "h", "False", "0.0", "0", "it + 1", I5),
         "                    done = True",
         f"                elif LA[{iK}, l] < tiny:",
         *out(tup("LA", iy, "l"), f"LA[{iS}, l]", "False", "0.0", str(TOO_SMALL), "it + 1",
              I5),
         "                    done = True",
         "                elif it + 1 >= max_steps:",
         *out(tup("LA", iy, "l"), f"LA[{iS}, l]", "False", "0.0", str(MAX_STEPS),
              "max(max_steps, 0)", I5),
         "                    done = True",
         "            if not done:",
         "                l += 1",
         "                continue",
         # the last live lane moves here (its controller has not run yet in this round)
         "            DN[nd] = q",
         "            nd += 1",
         "            live -= 1",
         "            if l < live:",
         f"                for r in range({2 * n + 5}):",
         "                    LA[r, l] = LA[r, live]",
         f"                for r in range({2 * n + 2}):",
         "                    TR[r, l] = TR[r, live]",
         "                LM[l] = LM[live]",
         "                LIT[l] = LIT[live]",
         "                LQ[l] = LQ[live]",
         "                for r in range(P.shape[0]):",
         "                    LP[r, l] = LP[r, live]",
         "",
         ""]
    return o


# -- compiling and caching -----------------------------------------------------------------
_LOADED: dict[str, object] = {}
_LOCK = threading.Lock()


def _key(src: str) -> str:
    return hashlib.sha256(f"{VERSION}\n{src}".encode()).hexdigest()[:20]


#: generated source and its key per (traced model, method, dtype): the IR objects are
#: cached and reused by the engine, so a repeated run generates nothing
_SOURCES: dict[tuple, tuple[ModelIR, str, str]] = {}


def _source(spec: Spec) -> tuple[str, str]:
    memo = (id(spec.ir), spec.method, spec.dtype, _STATE_CHECKS)
    hit = _SOURCES.get(memo)
    if hit is None or hit[0] is not spec.ir:
        src = generate(spec)
        hit = (spec.ir, src, _key(src))
        if len(_SOURCES) > 512:
            _SOURCES.clear()
        _SOURCES[memo] = hit
    return hit[1], hit[2]


def source_key(spec: Spec) -> str:
    """The cache key of ``spec``'s kernel (a hash of its generated source)."""
    return _source(spec)[1]


def is_compiled(spec: Spec) -> bool:
    """Whether ``spec``'s kernel is loaded in this process or has machine code on disk."""
    key = source_key(spec)
    if key in _LOADED:
        return True
    pycache = cache_dir() / "__pycache__"
    return pycache.is_dir() and any(pycache.glob(f"nk_{key}.kernel-*.nbi"))


def import_source(src: str, stem: str):
    """Write generated ``src`` as ``<cache>/<stem>.py`` (atomically, once) and import it.

    The module is registered as ``neurosim_kernels.<stem>``: numba's disk cache finds its
    machine code by that file, and rebuilds its environment by that name.
    """
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    if not path.exists() or path.read_text() != src:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(src)
        os.replace(tmp, path)
    name = f"neurosim_kernels.{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    mod.source_path = path
    return mod


def load(spec: Spec, announce=None):
    """The compiled kernel module for ``spec`` (generated, written and imported once).

    ``announce(message)`` is called before a compilation that is not in numba's
    disk cache (first use of a model structure and method).
    """
    src, key = _source(spec)
    with _LOCK:
        mod = _LOADED.get(key)
        if mod is not None:
            return mod
        mod = import_source(src, f"nk_{key}")
        if announce is not None and not _in_disk_cache(mod.kernel):
            announce(f"neurosim: compiling the {spec.method} kernel for "
                     f"{spec.ir.name} ({spec.dtype}); cached for later runs in {cache_dir()}")
        _LOADED[key] = mod
        return mod


def _in_disk_cache(dispatcher) -> bool:
    """Whether numba has machine code for ``dispatcher`` on disk (no compile needed)."""
    try:
        impl = dispatcher._cache._impl
        index = dispatcher._cache._cache_file._load_index()
        return bool(index) and impl is not None
    except Exception:  # noqa: BLE001 - a private numba API; a wrong guess only affects a message
        return False


__all__ = ["BLOCK", "Spec", "cache_dir", "generate", "load"]
