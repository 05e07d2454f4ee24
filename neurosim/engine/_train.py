r"""Generated training kernels: BPTT through the engine's time loop, from the one model definition.

When the input, the initial state or a model parameter requires a gradient,
:func:`run` simulates ``T`` steps of a :class:`~neurosim.Step` with spikes on the
grid in two generated numba kernels wrapped in one :class:`torch.autograd.Function`:

* **forward**: the step of :meth:`neurosim.Step.with_events` per element, storing the
  state at the end of every step (the traces; they are also what the backward pass
  needs) and the refractory time left;
* **backward**: the reverse time loop (backpropagation through time). From the stored
  state at the start of step *t* it recomputes the step and propagates the adjoint
  :math:`\bar x` of the state backwards through it, accumulating the gradients of the
  input :math:`\bar u_t` and of the per-element coefficient rows :math:`\bar P`.

Per step of length :math:`\Delta t` and element (what the reference computes):

.. math::

    x_1 &= J(x_0, u) && \text{(input jump)}\\
    x_2 &= x_1 + h_r\, f_c(x_1, u),\quad h_r = \min(r, \Delta t) && \text{(refractory, clamped)}\\
    x_3 &= x_2 + (\Delta t - h_r)\, f(x_2, u) \quad\text{or}\quad
           x_3 = e^{A\Delta t} x_2 + \Psi(c + g u) && \text{(Euler or exact)}\\
    z &= H(d(x_3))\cdot[\text{allowed}]\,[\Delta t - h_r > 0] && \text{(spike)}\\
    x_4 &= \mathrm{where}(z, R(x_3), x_3) + (z - \mathrm{sg}(z))\,(R(x_3) - x_3) && \text{(reset)}

so the backward step is

.. math::

    \bar z &= \bar z_\mathrm{out} + [\neg\,\mathrm{detach}]\;\bar x_4\cdot(R(x_3) - x_3),
    \qquad \bar d = \bar z\,\sigma'(d(x_3))\,[\text{allowed}]\,[\Delta t - h_r > 0]\\
    \bar x_3 &= (z\;?\;\partial R^\top \bar x_4 : \bar x_4) + \bar d\,\nabla d(x_3)\\
    \bar x_2 &= \bar x_3 + \partial_x f^\top (h\,\bar x_3)
      \quad\text{or}\quad (e^{A\Delta t})^\top \bar x_3, \qquad \text{and so on back to } \bar x_0.

Every Jacobian-vector product is printed from the symbolic derivatives
(:mod:`neurosim.engine._diff`) of the traced graphs :math:`J, f, f_c, d, R` of
:mod:`neurosim.engine._trace`, and :math:`\sigma'` is the surrogate's own
:meth:`~neurosim.surrogate.Surrogate.derivative`, traced the same way with its
parameters (``alpha``, ``width``...) read from coefficient rows at run time. There is
no hand-written copy of a model, a surrogate or a reset. Model parameters enter as
per-element coefficient rows; for exact integration the rows also hold
:math:`e^{A\Delta t}` (with its affine and input columns), computed in torch, so
:math:`\bar P` for those rows chains to the time constants through torch's autograd
of the matrix exponential. ``t_ref`` is not differentiable (as in the reference).
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
from typing import NamedTuple

import numpy as np
import torch

from .._memory import buffer
from ..errors import SimulationDiverged
from ..integrators import Euler, ExactExponential
from ..state import State
from ..step import Step
from ..surrogate import Custom, Surrogate
from . import _codegen as C
from ._diff import vjp
from ._trace import ModelIR, Sym, TraceError

#: below this many element-steps a kernel runs on the calling thread only
SERIAL_WORK = 1_000_000
#: training kernel source version (bump when the templates below change)
VERSION = 2
_SUR_PREFIX = "__surrogate."


def _any_positive(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool((value.detach() > 0).any())
    return float(value) > 0


def method_of(step: Step) -> str | None:
    """``"euler"`` or ``"exact"`` (grid spikes) where the training kernels apply, else None."""
    integ = step.integrator
    if type(integ) is Euler:
        return "euler"
    if type(integ) is ExactExponential and not integ.precise:
        return "exact"
    return None


def refractory(step: Step, state: State | None) -> bool:
    """Whether any element can be refractory in the run (``t_ref > 0`` or a refractory state)."""
    model = step.model
    if not model.spiking:
        return False
    if _any_positive(model.refractory_period):
        return True
    return state is not None and "refrac" in state and _any_positive(state["refrac"])


# -- the surrogate as a traced expression --------------------------------------------------
def surrogate_expr(surrogate: Surrogate, ir: ModelIR) -> tuple[Sym, dict[str, float]]:
    r"""The surrogate derivative :math:`\sigma'(s)` as a node of ``ir.graph``.

    ``s`` is the leaf ``var "__sd"``; each numeric field of the surrogate (``alpha``,
    ``width``...) is a parameter leaf ``"__surrogate.<name>"``, whose values are returned
    (so one kernel serves every value). Raises :class:`TraceError` if it cannot be traced.
    """
    try:
        key = (id(ir), surrogate)
        hit = _SURROGATES.get(key)
    except TypeError:  # an unhashable custom callable
        key, hit = None, None
    if hit is not None and hit[0] is ir:
        return hit[1], dict(hit[2])
    with _LOCK:
        expr, values = _trace_surrogate(surrogate, ir)
    if key is not None:
        if len(_SURROGATES) > 256:
            _SURROGATES.clear()
        _SURROGATES[key] = (ir, expr, dict(values))
    return expr, values


_SURROGATES: dict[tuple, tuple[ModelIR, Sym, dict[str, float]]] = {}


def _trace_surrogate(surrogate: Surrogate, ir: ModelIR) -> tuple[Sym, dict[str, float]]:
    g = ir.graph
    s = g.leaf("var", "__sd")
    values: dict[str, float] = {}
    try:
        if isinstance(surrogate, Custom):
            out = surrogate.fn(s)
        else:
            sym = object.__new__(type(surrogate))
            for f in dataclasses.fields(surrogate):
                value = getattr(surrogate, f.name)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    name = _SUR_PREFIX + f.name
                    values[name] = float(value)
                    value = g.leaf("param", name)
                object.__setattr__(sym, f.name, value)
            out = sym.derivative(s)
        return g.lift(out), values
    except TraceError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure means: not traceable
        raise TraceError(f"the surrogate {surrogate!r} could not be traced: "
                         f"{type(err).__name__}: {err}") from None


# -- code generation -----------------------------------------------------------------------
class TrainSpec:
    """What one pair of training kernels is specialised on."""

    def __init__(self, ir: ModelIR, method: str, dtype: torch.dtype, refractory: bool,
                 surrogate: Sym | None, surrogate_params: tuple[str, ...]) -> None:
        self.ir, self.method, self.dtype = ir, method, dtype
        self.refractory = refractory
        self.surrogate = surrogate
        self.surrogate_params = surrogate_params

    def rows(self) -> dict[str, int]:
        """Coefficient row of every parameter: model params, t_ref, surrogate params."""
        names = [*self.ir.params, "__t_ref", *self.surrogate_params]
        return {name: k for k, name in enumerate(names)}

    @property
    def e_base(self) -> int:
        """First row of the exact propagator ``e^{AΔt}`` (n rows of n + 2 columns)."""
        return len(self.rows())


def _fn(out: list[str], pr: C._Printer, name: str, args: str, roots: list[Sym | None],
        graph) -> list[bool]:
    """Emit ``name(args)`` returning the tuple of ``roots``; which of them are not zero."""
    nonzero = [r is not None and not (r.op == "const" and r.args[0] == 0.0) for r in roots]
    roots = [graph.const(0.0) if r is None else r for r in roots]
    lines, names = pr.block(roots, "t")
    out.append(C._INLINE)
    out.append(f"def {name}({args}):")
    out.extend("    " + ln for ln in lines)
    out.append("    return " + C._tup(names))
    out.append("")
    return nonzero


def generate(spec: TrainSpec) -> str:
    """The source of the forward and backward kernels for ``spec``."""
    ir = spec.ir
    g = ir.graph
    n = len(ir.states)
    xs = [f"x{k}" for k in range(n)]
    gs = [f"g{k}" for k in range(n)]
    X, G = ", ".join(xs), ", ".join(gs)
    names = dict(zip(ir.states, xs, strict=True))
    names.update({f"__g{k}": gs[k] for k in range(n)})
    names["__sd"] = "sd"
    pr = C._Printer(ir, names, "_F")
    pr.params = spec.rows()
    var = [g.leaf("var", s) for s in ir.states]
    cot = [g.leaf("var", f"__g{k}") for k in range(n)]
    u = g.leaf("input", "u")
    par = [g.leaf("param", p) for p in ir.params]
    exact = spec.method == "exact"
    out = [
        '"""Generated by neurosim.engine (training kernels): do not edit."""',
        "import math",
        "import numpy as np",
        "from numba import njit",
        "",
        f"_F = np.{str(spec.dtype).replace('torch.', '')}",
        f"NV = {n}",
        f"NPAR = {len(ir.params)}",
        f"TREF = {spec.rows()['__t_ref']}",
        f"BLOCK = {C.BLOCK}",
        f"REFRACTORY = {spec.refractory and ir.spiking}",
        "",
    ]
    A = f"{X}, u, P, mp"
    _fn(out, pr, "_f", A, [ir.f[s] for s in ir.states], g)
    _fn(out, pr, "_fc", A, [ir.f_clamped[s] for s in ir.states], g)
    _fn(out, pr, "_jump", A, [ir.jump[s] for s in ir.states], g)
    leaves = [*var, u, *par]
    nz: dict[str, list[bool]] = {}
    nz["f"] = _fn(out, pr, "_vjp_f", f"{X}, u, {G}, P, mp",
                  vjp(g, [ir.f[s] for s in ir.states], cot, leaves), g)
    nz["fc"] = _fn(out, pr, "_vjp_fc", f"{X}, u, {G}, P, mp",
                   vjp(g, [ir.f_clamped[s] for s in ir.states], cot, leaves), g)
    nz["jump"] = _fn(out, pr, "_vjp_jump", f"{X}, u, {G}, P, mp",
                     vjp(g, [ir.jump[s] for s in ir.states], cot, leaves), g)
    if ir.spiking:
        _fn(out, pr, "_d", f"{X}, P, mp", [ir.d], g)
        _fn(out, pr, "_reset", f"{X}, P, mp", [ir.reset[s] for s in ir.states], g)
        nz["reset"] = _fn(out, pr, "_vjp_reset", f"{X}, {G}, P, mp",
                          vjp(g, [ir.reset[s] for s in ir.states], cot, [*var, *par]), g)
        nz["d"] = _fn(out, pr, "_grad_d", f"{X}, P, mp",
                      vjp(g, [ir.d], [g.const(1.0)], [*var, *par]), g)
        _fn(out, pr, "_sg", "sd, P, mp", [spec.surrogate], g)
    if exact:
        w = n + 2
        base = spec.e_base
        res = []
        for i in range(n):
            e = f"P[{base + i * w + n}, mp] + P[{base + i * w + n + 1}, mp] * u"
            for j, x in enumerate(xs):
                e = f"({e}) + P[{base + i * w + j}, mp] * {x}"
            res.append(e)
        out += [C._INLINE, f"def _full({A}):", "    return " + C._tup(res), ""]
    out += _kernels(spec, xs, gs, nz)
    return "\n".join(out) + "\n"


def _kernels(spec: TrainSpec, xs: list[str], gs: list[str], nz: dict[str, list[bool]]
             ) -> list[str]:
    """The forward and backward kernels; ``nz``: the non-zero entries of each VJP."""
    ir = spec.ir
    n = len(xs)
    X, G = ", ".join(xs), ", ".join(gs)
    npar = len(ir.params)
    exact = spec.method == "exact"
    ref = spec.refractory and ir.spiking
    # declared plausible ranges by variable index (checked with finiteness every step)
    ranges = {k: ir.ranges[name] for k, name in enumerate(ir.states) if name in ir.ranges}
    w = n + 2
    base = spec.e_base
    Hs = ", ".join(f"H{k}" for k in range(n))
    GHs = ", ".join(f"GH{k}" for k in range(n))
    o: list[str] = []

    def emit(level: int, *lines: str) -> None:
        o.extend("    " * level + ln for ln in lines)

    def unpack(names: list[str], value: str) -> str:
        return f"{', '.join(names)}, = {value}" if len(names) == 1 else \
            f"{', '.join(names)} = {value}"

    def vjp_use(which: str, state: bool = True) -> list[str]:
        """Add a VJP ``q`` (state, input, parameter entries) to the adjoints, skipping zeros."""
        flags = nz[which]
        lines = [f"{gk} = {gk} + q[{k}]" for k, gk in enumerate(gs) if state and flags[k]]
        if flags[n]:
            lines.append(f"gu = gu + q[{n}]")
        acc = [f"    GPB[{p}, j] += q[{n + 1 + p}]" for p in range(npar) if flags[n + 1 + p]]
        if acc:
            lines += ["if need_gp:", *acc]
        return lines

    def step_forward(L: int, keep: bool) -> None:
        """x_k: start state -> after the step (before reset: x_k holds x3)."""
        if ir.spiking and ir.crossing_only:
            emit(L, f"allowed = _d({X}, P, mp)[0] <= zero")
        emit(L, unpack(xs, f"_jump({X}, u, P, mp)"))
        if keep:
            emit(L, *[f"a{k} = {x}" for k, x in enumerate(xs)])  # x1
        if ref:
            emit(L, "hr = min(r, dt)", f"y = _fc({X}, u, P, mp)",
                 *[f"{x} = {x} + hr * y[{k}]" for k, x in enumerate(xs)],
                 "left = dt - hr")
        else:
            emit(L, "left = dt")
        if keep:
            emit(L, *[f"b{k} = {x}" for k, x in enumerate(xs)])  # x2
        if exact:
            emit(L, unpack(xs, f"_full({X}, u, P, mp)"))
        else:
            emit(L, f"y = _f({X}, u, P, mp)",
                 *[f"{x} = {x} + left * y[{k}]" for k, x in enumerate(xs)])

    # ---------------------------------------------------------------- forward
    emit(0, '@njit(nogil=True, cache=True, error_model="numpy")',
         f"def forward(blk0, blk1, T, dt, U, PG, ps, X0, R0, {Hs}, RH, SP, XF, RF, info):",
         '    """Blocks blk0..blk1-1 over T steps; info: [status, step, block]."""')
    emit(1, "M = X0.shape[1]", "zero = dt - dt", "one = zero + 1",
         "P = np.empty((PG.shape[0], BLOCK), PG.dtype)",
         "S = np.empty((NV, BLOCK), X0.dtype)", "RR = np.empty(BLOCK, X0.dtype)",
         "for blk in range(blk0, blk1):")
    emit(2, "lo = blk * BLOCK", "hi = min(lo + BLOCK, M)", "nb = hi - lo",
         "for k in range(PG.shape[0]):", "    for j in range(nb):",
         "        P[k, j] = PG[k, (lo + j) * ps]",
         "for k in range(NV):", "    for j in range(nb):", "        S[k, j] = X0[k, lo + j]",
         "for j in range(nb):", "    RR[j] = R0[lo + j]",
         "for t in range(T):")
    emit(3, "bad = False", "for j in range(nb):")
    L = 4
    emit(L, "mp = j", "m = lo + j", "u = U[t, m]", "bad |= (u - u) != zero",
         *[f"{x} = S[{k}, j]" for k, x in enumerate(xs)])
    if ref:
        emit(L, "r = RR[j]")
    step_forward(L, keep=False)
    if ir.spiking:
        if ref:
            emit(L, "r = max(r - hr, zero)")
        cond = "d > zero"
        if ir.crossing_only:
            cond += " and allowed"
        if ref:
            cond += " and left > zero"
        emit(L, f"d = _d({X}, P, mp)[0]", f"c = {cond}", f"z = _reset({X}, P, mp)",
             *[f"{x} = z[{k}] if c else {x}" for k, x in enumerate(xs)],
             "SP[t, m] = one if c else zero")
        if ref:
            emit(L, "RR[j] = P[TREF, mp] if c else r")
    emit(L, *[f"S[{k}, j] = {x}" for k, x in enumerate(xs)],
         *[f"H{k}[t, m] = {x}" for k, x in enumerate(xs)],
         # non-finite, or outside the model's declared plausible range (as the engine)
         "bad |= " + " | ".join(C.range_terms(k, x, x, ranges) for k, x in enumerate(xs)))
    if ref:
        emit(3, "for j in range(nb):", "    RH[t, lo + j] = RR[j]")
    emit(3, "if bad:", "    info[0] = 1", "    info[1] = t", "    info[2] = blk", "    return")
    emit(2, "for k in range(NV):", "    for j in range(nb):", "        XF[k, lo + j] = S[k, j]",
         "for j in range(nb):", "    RF[lo + j] = RR[j]")
    o.append("")

    # ---------------------------------------------------------------- backward
    def emit_backward(gp: bool, gh: bool) -> None:
        """``backward_<gp><gh>``: with parameter gradients, with trace gradients (each
        variant compiles on its first call only)."""
        nrow = "PG.shape[0]"
        emit(0, '@njit(nogil=True, cache=True, error_model="numpy")',
             f"def backward_{int(gp)}{int(gh)}(blk0, blk1, T, dt, U, PG, ps, X0, R0, {Hs}, RH, SP, "
             f"GS, {GHs},",
             "             GXF, GU, GP, GX0, detach):",
             '    """The reverse time loop over blocks blk0..blk1-1 (see the module docstring)."""')
        emit(1, "M = X0.shape[1]", "zero = dt - dt", "has_gs = GS.shape[0] > 0",
             *[f"has_gh{k} = {gh}" for k in range(n)],
             "need_gu = GU.shape[0] > 0", f"need_gp = {gp}",
             f"P = np.empty(({nrow}, BLOCK), PG.dtype)",
             "GA = np.empty((NV, BLOCK), X0.dtype)",
             f"GPB = np.zeros(({nrow} if need_gp else 0, BLOCK), X0.dtype)",
             "for blk in range(blk0, blk1):")
        emit(2, "lo = blk * BLOCK", "hi = min(lo + BLOCK, M)", "nb = hi - lo",
             f"for k in range({nrow}):", "    for j in range(nb):",
             "        P[k, j] = PG[k, (lo + j) * ps]",
             "for k in range(NV):", "    for j in range(nb):", "        GA[k, j] = GXF[k, lo + j]",
             "if need_gp:", "    GPB[:, :] = zero",
             "for t in range(T - 1, -1, -1):")
        emit(3, "for j in range(nb):")
        L = 4
        emit(L, "mp = j", "m = lo + j", "u = U[t, m]")
        for k, gk in enumerate(gs):
            emit(L, f"{gk} = GA[{k}, j]", f"if has_gh{k}:", f"    {gk} = {gk} + GH{k}[t, m]")
        emit(L, "if t > 0:", *[f"    {x} = H{k}[t - 1, m]" for k, x in enumerate(xs)])
        if ref:
            emit(L + 1, "r = RH[t - 1, m]")
        emit(L, "else:", *[f"    {x} = X0[{k}, m]" for k, x in enumerate(xs)])
        if ref:
            emit(L + 1, "r = R0[m]")
        emit(L, *[f"s{k} = {x}" for k, x in enumerate(xs)])  # x0
        step_forward(L, keep=True)
        # x_k now holds x3; a_k x1, b_k x2, s_k x0
        emit(L, "gu = zero")
        if ir.spiking:
            mask = "True"
            if ir.crossing_only:
                mask = "allowed"
            if ref:
                mask = f"({mask}) and left > zero"
            emit(L, "crossed = SP[t, m] > zero", "gz = GS[t, m] if has_gs else zero",
                 f"z = _reset({X}, P, mp)", "if not detach:",
                 "    gz = gz + " + " + ".join(f"{gk} * (z[{k}] - {xs[k]})"
                                               for k, gk in enumerate(gs)),
                 f"d = _d({X}, P, mp)[0]",
                 f"gd = gz * _sg(d, P, mp)[0] if {mask} else zero",
                 f"rv = _vjp_reset({X}, {G}, P, mp)",
                 f"dd = _grad_d({X}, P, mp)",
                 *[f"{gk} = (rv[{k}] if crossed else {gk}) + gd * dd[{k}]"
                   for k, gk in enumerate(gs)],
                 "if need_gp:")
            acc = []
            for p in range(npar):
                terms = []
                if nz["reset"][n + p]:
                    terms.append(f"(rv[{n + p}] if crossed else zero)")
                if nz["d"][n + p]:
                    terms.append(f"gd * dd[{n + p}]")
                if terms:
                    acc.append(f"GPB[{p}, j] += {' + '.join(terms)}")
            emit(L + 1, *(acc or ["pass"]))
        # free segment
        if exact:
            emit(L, "if need_gp:")
            for i in range(n):
                r0 = base + i * w
                emit(L + 1, *[f"GPB[{r0 + j}, j] += {gs[i]} * b{j}" for j in range(n)],
                     f"GPB[{r0 + n}, j] += {gs[i]}", f"GPB[{r0 + n + 1}, j] += {gs[i]} * u")
            emit(L, "gu = gu + " + " + ".join(f"P[{base + i * w + n + 1}, mp] * {gs[i]}"
                                              for i in range(n)))
            new = [" + ".join(f"P[{base + i * w + j}, mp] * {gs[i]}" for i in range(n))
                   for j in range(n)]
            emit(L, unpack(gs, C._tup(new)))
        else:
            B = ", ".join(f"b{k}" for k in range(n))
            emit(L, f"q = _vjp_f({B}, u, {', '.join(f'left * {gk}' for gk in gs)}, P, mp)",
                 *vjp_use("f"))
        if ref:
            Aa = ", ".join(f"a{k}" for k in range(n))
            emit(L, f"q = _vjp_fc({Aa}, u, {', '.join(f'hr * {gk}' for gk in gs)}, P, mp)",
                 *vjp_use("fc"))
        Ss = ", ".join(f"s{k}" for k in range(n))
        emit(L, f"q = _vjp_jump({Ss}, u, {G}, P, mp)",
             *[f"GA[{k}, j] = q[{k}]" if nz["jump"][k] else f"GA[{k}, j] = zero"
               for k in range(n)],
             *vjp_use("jump", state=False), "if need_gu:", "    GU[t, m] = gu")
        emit(2, "for k in range(NV):", "    for j in range(nb):",
             "        GX0[k, lo + j] = GA[k, j]",
             "if need_gp:", f"    for k in range({nrow}):", "        for j in range(nb):",
             "            GP[k, lo + j] = GPB[k, j]")

        o.append("")

    for gp in (False, True):
        for gh in (False, True):
            emit_backward(gp, gh)
    return o


# -- compiling ------------------------------------------------------------------------------
_SOURCES: dict[tuple, tuple[object, str, str]] = {}
_LOADED: dict[str, object] = {}
#: held while nodes are added to a shared traced graph (surrogates, derivatives) and
#: while a kernel module is generated and imported
_LOCK = threading.RLock()


def load(spec: TrainSpec, announce=None):
    """The compiled training kernel module for ``spec`` (generated, written, imported once)."""
    memo = (id(spec.ir), spec.method, spec.dtype, spec.refractory,
            None if spec.surrogate is None else spec.surrogate.id, spec.surrogate_params)
    with _LOCK:
        hit = _SOURCES.get(memo)
        if hit is None or hit[0] is not spec.ir:
            src = generate(spec)
            key = C._key(f"train {VERSION}\n{src}")
            hit = (spec.ir, src, key)
            if len(_SOURCES) > 512:
                _SOURCES.clear()
            _SOURCES[memo] = hit
        _, src, key = hit
        mod = _LOADED.get(key)
        if mod is not None:
            return mod
        mod = C.import_source(src, f"nt_{key}")
        if announce is not None and not C._in_disk_cache(mod.forward):
            announce(f"neurosim: compiling the {spec.method} training kernels for "
                     f"{spec.ir.name} ({spec.dtype}); cached for later runs in {C.cache_dir()}")
        _LOADED[key] = mod
        return mod


# -- running -------------------------------------------------------------------------------
def why_not(step: Step, u: torch.Tensor, state: State | None = None) -> str | None:
    """Why the training kernels cannot run ``step`` on ``u`` (``None``: they can)."""
    return reason(step, u.dtype, u.device, refractory(step, state))


def reason(step: Step, dtype: torch.dtype, device: torch.device | str,
           refractory: bool) -> str | None:
    """:func:`why_not` for an input of ``dtype`` on ``device``; ``refractory``: whether
    any element can be refractory (``t_ref > 0`` or a refractory initial state)."""
    from . import _ir

    method = method_of(step)
    if method is None:
        return (f"no training kernel for {step.integrator!r} (euler, or exact with spikes on "
                f"the grid: precise=False)")
    if not isinstance(step, Step):  # a PeerStep (peer emulation): the reference loop's alone
        return f"{type(step).__name__} (peer emulation) runs on the reference loop"
    if dtype not in (torch.float32, torch.float64):
        return f"dtype {dtype} (the engine runs float32 and float64)"
    if torch.device(device).type != "cpu":
        return f"device {device}: the engine runs on the CPU"
    for name, value in step.model.params().items():
        if isinstance(value, torch.Tensor) and value.device.type != "cpu":
            return f"parameter {name} lives on {value.device}"
    if method == "exact":
        if step.model.linear_system() is None:
            return f"exact integration needs a linear model; {type(step.model).__name__} is not"
        if refractory:
            return "exact integration with t_ref > 0 (partial refractory steps) is not compiled"
    try:
        ir = _ir(step.model, dtype)
        if ir.spiking:
            surrogate_expr(step.surrogate, ir)
    except TraceError as err:
        return f"the model could not be compiled: {err}"
    return None


def _spec(step: Step, dtype: torch.dtype, state: State | None) -> tuple[TrainSpec,
                                                                          dict[str, float]]:
    from . import _ir

    ir = _ir(step.model, dtype)
    sur, values = (surrogate_expr(step.surrogate, ir) if ir.spiking else (None, {}))
    return TrainSpec(ir, method_of(step), dtype, refractory(step, state), sur,
                     tuple(values)), values


class TrainOutput(NamedTuple):
    """What :func:`run` returns.

    Attributes:
        spikes: ``[T, *shape]`` of the input dtype (zeros for a non-spiking model).
        traces: every state variable, and ``"refrac"``, each ``[T, *shape]``.
        final_state: the state after the last step.
    """

    spikes: torch.Tensor
    traces: dict[str, torch.Tensor]
    final_state: State


def _rows(step: Step, spec: TrainSpec, values: dict[str, float], shape: torch.Size,
          dtype: torch.dtype) -> torch.Tensor:
    """Coefficient rows [n_rows, M] (or [n_rows, 1] when uniform and without gradient).

    Rows of a model whose parameters are all numbers are cached (a layer with fixed time
    constants computes its propagator once).
    """
    key = None
    params = step.model.params()
    if not any(isinstance(v, torch.Tensor) for v in params.values()):
        key = (type(step.model), tuple(params.items()), spec.method, float(step.dt), dtype,
               tuple(values.items()), len(spec.rows()))
        hit = _ROWS.get(key)
        if hit is not None:
            return hit
    P = _compute_rows(step, spec, values, shape, dtype)
    if key is not None:
        if len(_ROWS) > 64:
            _ROWS.clear()
        _ROWS[key] = P
    return P


_ROWS: dict[tuple, torch.Tensor] = {}


def _compute_rows(step: Step, spec: TrainSpec, values: dict[str, float], shape: torch.Size,
                  dtype: torch.dtype) -> torch.Tensor:
    model = step.model.cast(dtype)
    p = model.params()
    rows: list = [p[name] for name in spec.ir.params]
    t_ref = model.refractory_period if model.spiking else 0.0
    rows.append(t_ref.detach() if isinstance(t_ref, torch.Tensor) else t_ref)
    rows += [values[name] for name in spec.surrogate_params]
    if spec.method == "exact":
        flow = step.integrator.prepare(model, step.dt, dtype, torch.device("cpu"))
        E = flow.E_dt[False]
        n = len(spec.ir.states)
        rows += [E[..., i, j] for i in range(n) for j in range(n + 2)]
    tensors = [isinstance(r, torch.Tensor) for r in rows]
    per_element = any(t and (r.numel() > 1 or r.requires_grad)
                      for t, r in zip(tensors, rows, strict=True))
    M = shape.numel()
    if not per_element:
        return torch.tensor([[float(r)] for r in rows], dtype=dtype)
    out = []
    for r, t in zip(rows, tensors, strict=True):
        r = r if t else torch.tensor(float(r), dtype=dtype)
        out.append(r.to(dtype).expand(shape).reshape(M))
    return torch.stack(out)


def _threads(T: int, M: int) -> tuple[int, np.ndarray]:
    nblk = -(-M // C.BLOCK)
    threads = 1 if T * M < SERIAL_WORK else min(os.cpu_count() or 1, nblk)
    threads = max(1, min(threads, nblk))
    return threads, np.linspace(0, nblk, threads + 1).astype(int)


def _parallel(fn, T: int, M: int) -> None:
    from . import _parallel as run_parallel

    threads, bounds = _threads(T, M)
    run_parallel(lambda k: fn(int(bounds[k]), int(bounds[k + 1])), threads)


class _TrainLoop(torch.autograd.Function):
    """Inputs P [R, M|1], u [T, M], X0 [n, M], R0 [M]; outputs spikes, final x, r, traces."""

    @staticmethod
    def forward(ctx, P, u, X0, R0, mod, step, detach):  # type: ignore[override]
        T, M = u.shape
        dtype = u.dtype
        n = X0.shape[0]
        Pd, ud = P.detach().contiguous(), u.detach().contiguous()
        X0d, R0d = X0.detach().contiguous(), R0.detach().contiguous()
        H = [buffer((T, M), dtype) for _ in range(n)]
        RH = buffer((T, M), dtype) if _mod_refractory(mod) else torch.empty((0, 0), dtype=dtype)
        SP = buffer((T, M), dtype) if step.model.spiking else torch.zeros((T, M), dtype=dtype)
        XF = torch.empty((n, M), dtype=dtype)
        RF = R0d.clone()
        info = np.zeros(3, np.int64)
        ps = 1 if Pd.shape[1] > 1 else 0
        scalar = ud.numpy().dtype.type
        arrays = [a.numpy() for a in (ud, Pd, X0d, R0d, *H, RH, SP, XF, RF)]
        Un, Pn, X0n, R0n = arrays[:4]
        rest = arrays[4:]

        def work(b0: int, b1: int) -> None:
            local = np.zeros(3, np.int64)
            mod.forward(b0, b1, T, scalar(step.dt), Un, Pn, ps, X0n, R0n, *rest, local)
            if local[0]:
                info[:] = local

        _parallel(work, T, M)
        if info[0]:
            _fail(step, u, H, int(info[1]), int(info[2]), M)
        ctx.mod, ctx.step, ctx.detach, ctx.ps = mod, step, detach, ps
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(Pd, ud, X0d, R0d, SP, RH, *H)
        ctx.mark_non_differentiable(RF, RH)
        if not step.model.spiking:
            ctx.mark_non_differentiable(SP)
        return (SP, XF, RF, RH, *H)

    @staticmethod
    def backward(ctx, gSP, gXF, gRF, gRH, *gH):  # type: ignore[override]
        P, u, X0, R0, SP, RH, *H = ctx.saved_tensors
        T, M = u.shape
        n = X0.shape[0]
        dtype = u.dtype
        need_gp, need_gu, need_gx = ctx.needs_input_grad[:3]
        empty2 = torch.empty((0, 0), dtype=dtype)
        GS = empty2 if gSP is None or not ctx.step.model.spiking else gSP.contiguous()
        gh = any(g is not None for g in gH)
        GH = [(empty2 if not gh else torch.zeros((T, M), dtype=dtype)) if g is None
              else g.contiguous() for g in gH]
        GXF = torch.zeros((n, M), dtype=dtype) if gXF is None else gXF.contiguous()
        GU = buffer((T, M), dtype) if need_gu else empty2
        GP = torch.empty((P.shape[0], M), dtype=dtype) if need_gp else empty2
        GX0 = torch.empty((n, M), dtype=dtype)
        scalar = u.numpy().dtype.type
        args = [a.numpy() for a in (u, P, X0, R0, *H, RH, SP, GS, *GH, GXF, GU, GP, GX0)]
        ps = ctx.ps
        kernel = getattr(ctx.mod, f"backward_{int(need_gp)}{int(gh)}")

        def work(b0: int, b1: int) -> None:
            kernel(b0, b1, T, scalar(ctx.step.dt), args[0], args[1], ps, *args[2:], ctx.detach)

        _parallel(work, T, M)
        return (GP if need_gp else None, GU if need_gu else None,
                GX0 if need_gx else None, None, None, None, None)


def _mod_refractory(mod) -> bool:
    """Whether a loaded kernel module tracks refractoriness."""
    return bool(getattr(mod, "REFRACTORY", False))


def _fail(step: Step, u: torch.Tensor, H: list[torch.Tensor], t: int, blk: int, M: int) -> None:
    """Raise for the first element of block ``blk`` whose state after step ``t`` is not
    finite or outside its declared range (the first such variable), as the engine does."""
    from .._validate import check_finite_input

    check_finite_input(u)
    lo, hi = blk * C.BLOCK, min(blk * C.BLOCK + C.BLOCK, M)
    names = step.model.state_names
    ranges = step.model.declared_ranges()
    bad = torch.zeros(hi - lo, dtype=torch.bool)
    per_var = []
    for name, h in zip(names, H, strict=True):
        seg = h[t, lo:hi].detach()
        out = ~torch.isfinite(seg)
        if name in ranges:
            out |= (seg < ranges[name][0]) | (seg > ranges[name][1])
        per_var.append(out)
        bad |= out
    if not bad.any():
        raise RuntimeError("training kernel failed")  # pragma: no cover
    j = int(bad.nonzero()[0])
    k = next(k for k, out in enumerate(per_var) if out[j])
    value = float(H[k][t, lo + j])
    raise SimulationDiverged.at(
        type(step.model).__name__, variable=names[k], neuron=lo + j, step=t, dt=step.dt,
        method=step.integrator.name, value=value,
        bounds=ranges.get(names[k]) if math.isfinite(value) else None)


def run(step: Step, u: torch.Tensor, state: State, announce=None) -> TrainOutput:
    """Run ``step`` over ``u`` ``[T, *shape]`` on the generated training kernels.

    :func:`why_not` must be ``None``. Gradients flow to ``u``, the initial ``state`` and
    every tensor parameter of the model that requires one, through one
    :class:`torch.autograd.Function` (forward and backward kernels).
    """
    dtype = u.dtype
    shape = u.shape[1:]
    T, M = u.shape[0], shape.numel()
    spec, values = _spec(step, dtype, state)
    mod = load(spec, announce=announce)
    P = _rows(step, spec, values, shape, dtype)
    names = spec.ir.states
    X0 = torch.stack([state[k].to(dtype).expand(shape).reshape(M) for k in names])
    if step.model.spiking:
        R0 = state["refrac"].detach().to(dtype).expand(shape).reshape(M)
    else:
        R0 = torch.zeros(M, dtype=dtype)
    u2 = u.reshape(T, M)
    SP, XF, RF, RH, *H = _TrainLoop.apply(P, u2, X0, R0, mod, step, step.detach_reset)
    traces = {k: H[q].reshape(T, *shape) for q, k in enumerate(names)}
    final = State({k: XF[q].reshape(shape) for q, k in enumerate(names)})
    if step.model.spiking:
        final["refrac"] = RF.reshape(shape)
        if RH.numel():
            traces["refrac"] = RH.reshape(T, *shape)
        else:
            traces["refrac"] = torch.zeros((T, *shape), dtype=dtype)
    return TrainOutput(SP.reshape(T, *shape), traces, final)


__all__ = ["TrainOutput", "generate", "reason", "run", "surrogate_expr", "why_not"]
