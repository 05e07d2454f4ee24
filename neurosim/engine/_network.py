r"""Code generation for networks: one numba kernel runs the whole time loop of a network.

A network kernel is generated per network *structure* (which populations, which
model structure and integrator each has, which projections connect which
populations onto which state variable, what is recorded); sizes, parameters,
weights and delays are run-time arrays. The physics of each neuron population
is not printed here: it is imported from the population's own kernel module
(:func:`neurosim.engine._codegen.load`), generated from the model's one
definition (``_jump``, ``_d``, ``_reset``, ``_adv`` and, for exact
integration, ``_full0``). numba inlines these helpers into the network kernel.

Per time step *t* (global step index), in the order the populations were given:

* a source population (Poisson or spike times) emits its spikes of step *t*;
* a neuron population, per neuron: adds the ring-buffer slot ``t mod D`` of
  each synaptic target variable to that variable (and clears the slot), then
  takes the step exactly as :meth:`neurosim.Step.with_events` does with grid
  spikes (the model's input jump, a refractory segment with the clamped flow,
  the free segment, threshold, reset, ``t_ref``); a branch-free pass over all
  neurons first, then the spikes and refractory neurons;
* each spike is recorded (if monitored) and propagated through the CSR row of
  the spiking neuron in every projection leaving its population: the weight is
  added to ring slot ``(t + delay_steps) mod D`` of the post-synaptic neuron;
* state monitors sample after the step when ``(t + 1)`` is a multiple of their
  interval (in steps).

Poisson sources draw from a counter-based generator (SplitMix64 of the seed and
``t * n + j``), so their spikes do not depend on how a run is split into calls and
are reproduced bit for bit by the reference path (:func:`poisson_uniform`).

The kernel stops at the start of a step if a spike buffer might overflow
(``info[0] = 1``, ``info[1]`` the step); the caller grows it and calls again.
It also stops right after the step of population *p* in which a state variable
became non-finite or left the model's declared range (``info[0] = 2 + p``,
``info[1]`` the step; the population's state holds that step's values), checked
per population and step with one flag OR-ed over the neurons, as in the
population kernels.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

import numpy as np

from . import _codegen as C

#: network kernel source version (bump when the template changes)
VERSION = 6

_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


@dataclass
class PopLayout:
    """The structure of one population as the kernel sees it.

    ``kind``: ``"neuron"``, ``"poisson"`` or ``"times"``. For neurons: ``module``
    (the key of the population's kernel module), ``method``, ``n_vars``,
    ``n_params`` (the row of ``t_ref`` in the coefficient rows), ``spiking``,
    ``crossing_only`` and ``rings`` (state-variable indices with a ring buffer).
    """

    kind: str
    module: str = ""
    method: str = ""
    n_vars: int = 0
    n_params: int = 0
    spiking: bool = True
    crossing_only: bool = False
    rings: tuple[int, ...] = ()
    record_spikes: bool = False
    record_rate: bool = False
    #: parameters differ between neurons (else the coefficient rows are read at column 0)
    hetero: bool = True
    #: the population has an input (else u = 0, folded into the generated code)
    has_input: bool = True
    #: a Poisson source with Poisson counts per step (``PoissonInput(multiple=True)``)
    multiple: bool = False
    #: ring indices whose jumps are discarded while the neuron is refractory
    #: (``Population(refractory_input=False)``, the clamped variables)
    gated: tuple[int, ...] = ()
    #: declared plausible ``(low, high)`` by state-variable index (checked with finiteness)
    ranges: dict[int, tuple[float, float]] = field(default_factory=dict)


@dataclass
class ProjLayout:
    """A projection: source and target population, ring index in the target, delays."""

    pre: int
    post: int
    ring: int
    hetero: bool
    #: added straight to the state variable ``var`` of the target (one-step delay onto a
    #: population already stepped): no ring buffer
    direct: bool = False
    var: int = -1
    #: a direct jump discarded while the target neuron is refractory
    gated: bool = False


@dataclass
class MonLayout:
    """A state monitor: population and variable index (``n_vars``: ``refrac``)."""

    pop: int
    var: int


@dataclass
class Layout:
    dtype: str
    pops: list[PopLayout] = field(default_factory=list)
    projs: list[ProjLayout] = field(default_factory=list)
    mons: list[MonLayout] = field(default_factory=list)


def splitmix64(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser on uint64 values (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(_GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z


def mixed_seed(seed: int) -> np.uint64:
    """The seed word a Poisson source hashes with."""
    return np.uint64(int(splitmix64(np.uint64(int(seed) & _MASK))))


def poisson_uniform(seed: np.uint64, t: int, n: int) -> np.ndarray:
    """The uniform numbers in [0, 1) of the ``n`` neurons of a Poisson source in step ``t``.

    The same numbers as the compiled kernel draws (bit for bit).
    """
    with np.errstate(over="ignore"):
        key = np.uint64(t) * np.uint64(n) + np.arange(n, dtype=np.uint64)
        z = splitmix64(seed + key)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def poisson_counts(u: np.ndarray, lam: np.ndarray, e: np.ndarray, k_max: int) -> np.ndarray:
    """Poisson counts of mean ``lam`` from uniforms ``u`` by inversion (``e = exp(-lam)``),
    capped at ``k_max``: the same float64 operations as the compiled kernel."""
    u, lam = np.asarray(u, np.float64), np.asarray(lam, np.float64)
    pk = np.array(np.broadcast_to(e, u.shape), np.float64)
    cdf = pk.copy()
    cnt = np.zeros(u.shape, np.int64)
    active = (lam > 0) & (u > cdf)
    while active.any():
        a = np.nonzero(active)[0]
        cnt[a] += 1
        pk[a] = pk[a] * (lam[a] / cnt[a])
        cdf[a] = cdf[a] + pk[a]
        active[a] = (u[a] > cdf[a]) & (cnt[a] < k_max)
    return cnt


def arg_names(layout: Layout) -> list[str]:
    """The kernel's array arguments after ``(t0, t1, run0, dt, info)``, in order."""
    names: list[str] = []
    for p, pop in enumerate(layout.pops):
        if pop.kind == "neuron":
            names += [f"S{p}", f"R{p}", f"P{p}", f"ps{p}", f"U{p}", f"uo{p}", f"ut{p}", f"um{p}",
                      f"FL{p}", f"SPL{p}"]
            names += [f"RB{p}_{q}" for q in range(len(pop.rings))]
        elif pop.kind == "poisson":
            names += [f"PR{p}", f"po{p}", f"pt{p}", f"pm{p}", f"seed{p}", f"n{p}"]
            if pop.multiple:
                names += [f"PE{p}", f"KM{p}"]
        else:
            names += [f"ST{p}", f"SI{p}", f"PTR{p}"]
        if pop.record_spikes:
            names += [f"EVT{p}", f"EVI{p}"]
        if pop.record_rate:
            names += [f"RATE{p}"]
    for r, _ in enumerate(layout.projs):
        names += [f"IP{r}", f"PI{r}", f"W{r}", f"DL{r}"]
    for q, _ in enumerate(layout.mons):
        names += [f"MI{q}", f"ME{q}", f"MB{q}", f"MO{q}"]
    return names


def generate(layout: Layout) -> str:
    """The source of the network kernel module for ``layout``."""
    o = [
        '"""Generated by neurosim.engine._network: do not edit (regenerated from the models)."""',
        "import importlib.util",
        "import math",
        "import os",
        "import sys",
        "import numpy as np",
        "from numba import njit",
        "",
        f"_F = np.{layout.dtype}",
        "",
        "",
        "def _mod(key):",
        "    name = 'neurosim_kernels.' + key",
        "    m = sys.modules.get(name)",
        "    if m is None:",
        "        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), key + '.py')",
        "        spec = importlib.util.spec_from_file_location(name, path)",
        "        m = importlib.util.module_from_spec(spec)",
        "        sys.modules[name] = m",
        "        spec.loader.exec_module(m)",
        "    return m",
        "",
    ]
    for p, pop in enumerate(layout.pops):
        if pop.kind != "neuron":
            continue
        o.append(f"_m{p} = _mod({pop.module!r})")
        helpers = ["_jump", "_adv"]
        if pop.spiking:
            helpers += ["_d", "_reset"]
        if pop.method == "exact":
            helpers += ["_full0", "_full1"]
        o += [f"{h}_{p} = _m{p}.{h}" for h in helpers]
    o += [
        "",
        "",
        '@njit(inline="always", cache=True)',
        "def _uniform(seed, key):",
        f"    z = seed + key + np.uint64({_GOLDEN})",
        "    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)",
        "    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)",
        "    z = z ^ (z >> np.uint64(31))",
        "    return np.float64(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)",
        "",
        "",
        '@njit(nogil=True, cache=True, error_model="numpy")',
        "def kernel(t0, t1, run0, dt, info, " + ", ".join(arg_names(layout)) + "):",
        '    """Run global steps t0..t1-1 (see the module docstring)."""',
        "    zero = dt - dt",
        "    for t in range(t0, t1):",
        "        tt = t - run0",
    ]
    body: list[str] = []

    def emit(level: int, *lines: str) -> None:
        body.extend("    " * level + ln for ln in lines)

    # capacity of the spike buffers for this step
    for p, pop in enumerate(layout.pops):
        if not pop.record_spikes:
            continue
        need = {"neuron": f"S{p}.shape[1]", "poisson": f"n{p}", "times": "0"}[pop.kind]
        if pop.multiple:
            need = f"n{p} * KM{p}"
        emit(2, f"if info[{2 + p}] + {need} > EVT{p}.shape[0]:",
             "    info[0] = 1", "    info[1] = t", "    return")
    # ring slots of this step and propagation slots
    for r, pr in enumerate(layout.projs):
        ring = f"RB{pr.post}_{pr.ring}"
        if pr.direct:
            continue
        if pr.hetero:
            emit(2, f"b{r} = t % {ring}.shape[0]")
        else:
            emit(2, f"q{r} = (t + DL{r}[0]) % {ring}.shape[0]")

    def spike(level: int, p: int, m: str, mode: str = "all", count: str = "") -> None:
        """A spike of neuron ``m`` of population ``p``: record it (modes "all", "record")
        and propagate it (modes "all", "propagate"); "record" also lists it in SPL for
        the propagation after the population's step. ``count``: the name of an int
        variable holding a number of spikes (recorded that many times, weights times it)."""
        pop = layout.pops[p]
        start = len(body)
        if mode != "propagate":
            if pop.record_spikes:
                if count:
                    emit(level, f"for c_ in range({count}):")
                    level += 1
                emit(level, f"k_ = info[{2 + p}]", f"EVT{p}[k_] = t", f"EVI{p}[k_] = {m}",
                     f"info[{2 + p}] = k_ + 1")
                if count:
                    level -= 1
            if pop.record_rate:
                emit(level, f"RATE{p}[tt] += {count or 1}")
        if mode == "record":
            emit(level, f"SPL{p}[nsp] = {m}", "nsp += 1")
        for r, pr in enumerate(layout.projs):
            if pr.pre != p or mode == "record":
                continue
            ring = f"RB{pr.post}_{pr.ring}"
            emit(level, f"for s_ in range(IP{r}[{m}], IP{r}[{m} + 1]):")
            w = f"W{r}[s_] * {count}" if count else f"W{r}[s_]"
            if pr.direct and pr.gated:
                emit(level + 1, f"if R{pr.post}[PI{r}[s_]] <= zero:",
                     f"    S{pr.post}[{pr.var}, PI{r}[s_]] += {w}")
            elif pr.direct:
                emit(level + 1, f"S{pr.post}[{pr.var}, PI{r}[s_]] += {w}")
            elif pr.hetero:
                emit(level + 1, f"q_ = b{r} + DL{r}[s_]", f"if q_ >= {ring}.shape[0]:",
                     f"    q_ -= {ring}.shape[0]", f"{ring}[q_, PI{r}[s_]] += {w}")
            else:
                emit(level + 1, f"{ring}[q{r}, PI{r}[s_]] += {w}")
        if len(body) == start:
            emit(level, "pass")

    for p, pop in enumerate(layout.pops):
        emit(2, f"# population {p}: {pop.kind}")
        if pop.kind == "poisson" and pop.multiple:
            # Poisson counts by inversion of one uniform (as poisson_counts)
            emit(2, f"key0 = np.uint64(t) * np.uint64(n{p})", f"for j in range(n{p}):")
            emit(3, f"ix_ = po{p} + tt * pt{p} + j * pm{p}", f"lam = PR{p}[ix_]", "if lam > 0:")
            emit(4, f"uu_ = _uniform(seed{p}, key0 + np.uint64(j))", f"pk_ = PE{p}[ix_]",
                 "cdf_ = pk_", "cnt = 0", f"while uu_ > cdf_ and cnt < KM{p}:",
                 "    cnt += 1", "    pk_ = pk_ * (lam / cnt)", "    cdf_ = cdf_ + pk_",
                 "if cnt > 0:")
            spike(5, p, "j", count="cnt")
            continue
        if pop.kind == "poisson":
            emit(2, f"key0 = np.uint64(t) * np.uint64(n{p})", f"for j in range(n{p}):")
            emit(3, f"pr = PR{p}[po{p} + tt * pt{p} + j * pm{p}]", "if pr > 0:")
            emit(4, f"if _uniform(seed{p}, key0 + np.uint64(j)) < pr:")
            spike(5, p, "j")
            continue
        if pop.kind == "times":
            emit(2, f"k = PTR{p}[0]", f"while k < ST{p}.shape[0] and ST{p}[k] <= t:")
            emit(3, f"if ST{p}[k] == t:")
            emit(4, f"j = SI{p}[k]")
            spike(4, p, "j")
            emit(3, "k += 1")
            emit(2, f"PTR{p}[0] = k")
            continue
        _neuron(layout, p, pop, emit, spike)
    for q, mon in enumerate(layout.mons):
        emit(2, f"if (t + 1) % ME{q} == 0:")
        src = f"S{mon.pop}[{mon.var}, MI{q}[a_]]" if mon.var < layout.pops[mon.pop].n_vars \
            else f"R{mon.pop}[MI{q}[a_]]"
        emit(3, f"k_ = MO{q}[0]", f"for a_ in range(MI{q}.shape[0]):",
             f"    MB{q}[k_, a_] = {src}", f"MO{q}[0] = k_ + 1")
    o += body
    o += ["    info[0] = 0", "    info[1] = t1", ""]
    return "\n".join(o) + "\n"


def _neuron(layout: Layout, p: int, pop: PopLayout, emit, spike) -> None:
    """One step of a neuron population: pass 1 (branch-free), pass 2 (spikes, refractory)."""
    n = pop.n_vars
    xs = [f"x{k}" for k in range(n)]
    X = ", ".join(xs)
    A = ", ".join(f"a{k}" for k in range(n))
    unpack_a = f"{A}," if n == 1 else A
    unpack_x = f"{X}," if n == 1 else X
    tup = C._tup
    emit(2, f"nb = S{p}.shape[1]", "bad = False")

    def check(values: list[str]) -> str:
        """``bad |= ...`` for the stored values: not finite, or outside the declared range
        (:func:`neurosim.engine._codegen.range_terms`)."""
        return "bad |= " + " | ".join(C.range_terms(k, x, x, pop.ranges)
                                      for k, x in enumerate(values))

    for q, _ in enumerate(pop.rings):
        emit(2, f"sl{q} = t % RB{p}_{q}.shape[0]")
    emit(2, "for j in range(nb):")
    L = 3
    mp = f"j * ps{p}" if pop.hetero else "0"
    uu = f"U{p}[uo{p} + tt * ut{p} + j * um{p}]" if pop.has_input else "zero"
    emit(L, f"mp = {mp}", f"u = {uu}", *[f"x{k} = S{p}[{k}, j]" for k in range(n)])
    for q, k in enumerate(pop.rings):
        if q in pop.gated:  # discarded while refractory
            emit(L, f"x{k} = x{k} + (RB{p}_{q}[sl{q}, j] if R{p}[j] <= zero else zero)")
        else:
            emit(L, f"x{k} = x{k} + RB{p}_{q}[sl{q}, j]")
        emit(L, f"RB{p}_{q}[sl{q}, j] = zero")
    if pop.spiking and pop.crossing_only:
        emit(L, f"below = _d_{p}({X}, P{p}, mp) <= 0")
    emit(L, f"{unpack_a} = _jump_{p}({X}, u, P{p}, mp)")
    if pop.method == "exact":
        emit(L, f"y = _full0_{p}({A}, u, P{p}, mp)")
    else:
        emit(L, f"y = _adv_{p}({tup([f'a{k}' for k in range(n)])}, u, dt, P{p}, mp, False, dt)")
    ys = ", ".join(f"y[{k}]" for k in range(n))
    if not pop.spiking:
        emit(L, *[f"v{k} = _F(y[{k}])" for k in range(n)],
             *[f"S{p}[{k}, j] = v{k}" for k in range(n)], check([f"v{k}" for k in range(n)]))
        stop(p, emit)
        return
    # flags: 0 free, no spike (keep y); 1 free spike (keep the reset z); 2 refractory
    # (keep x, the general path in pass 2). Flat selects, which LLVM turns into
    # branch-free code (nested conditional expressions are about 2x slower)
    emit(L, f"d = _d_{p}({ys}, P{p}, mp)", f"ref = R{p}[j] > zero",
         "spk = d > 0" + (" and below" if pop.crossing_only else ""),
         f"z = _reset_{p}({ys}, P{p}, mp)",
         "keep_y = (not ref) & (not spk)", "keep_z = (not ref) & spk",
         f"FL{p}[j] = np.int8(keep_z) + np.int8(2) * np.int8(ref)")
    for k in range(n):
        emit(L, f"v{k} = x{k}", f"v{k} = z[{k}] if keep_z else v{k}",
             f"v{k} = y[{k}] if keep_y else v{k}", f"S{p}[{k}, j] = v{k}")
    emit(L, check([f"v{k}" for k in range(n)]))
    # pass 2
    emit(2, "nsp = 0", "for j in range(nb):")
    emit(3, f"fl = FL{p}[j]", "if fl == 0:", "    continue", f"mp = {mp}")
    emit(3, "if fl == 1:")
    emit(4, f"R{p}[j] = P{p}[{pop.n_params}, mp]")
    spike(4, p, "j", "record")
    emit(4, "continue")
    # the general path of a refractory neuron (grid spikes), from its saved state
    emit(3, f"u = {uu}", *[f"x{k} = S{p}[{k}, j]" for k in range(n)],
         f"r = R{p}[j]", f"tref = P{p}[{pop.n_params}, mp]", "allowed = True")
    if pop.crossing_only:
        emit(3, f"allowed = _d_{p}({X}, P{p}, mp) <= 0")
    emit(3, f"{unpack_x} = _jump_{p}({X}, u, P{p}, mp)")
    # refractory over the whole step: the clamped flow over dt (what the rounds below
    # take for hr = dt, with no time left)
    emit(3, "if r >= dt:")
    full1 = (f"_full1_{p}({X}, u, P{p}, mp)" if pop.method == "exact"
             else f"_adv_{p}({tup(xs)}, u, dt, P{p}, mp, True, dt)")
    emit(4, f"c = {full1}", *[f"x{k} = _F(c[{k}])" for k in range(n)],
         *[f"S{p}[{k}, j] = x{k}" for k in range(n)], check(xs), f"R{p}[j] = r - dt",
         "continue")
    emit(3, "left = dt",
         "hr = min(r, left)", f"y = _adv_{p}({tup(xs)}, u, hr, P{p}, mp, True, dt)",
         *[f"x{k} = _F(y[{k}])" for k in range(n)],
         "r = max(r - hr, zero)", "left = left - hr", "spk = False", "if left > zero:")
    emit(4, f"y = _adv_{p}({tup(xs)}, u, left, P{p}, mp, False, dt)",
         f"spk = allowed and _d_{p}({ys}, P{p}, mp) > 0", "if spk:")
    emit(5, f"{unpack_x} = _reset_{p}({ys}, P{p}, mp)", "r = tref")
    emit(4, "else:")
    emit(5, *[f"x{k} = _F(y[{k}])" for k in range(n)])
    emit(3, *[f"S{p}[{k}, j] = x{k}" for k in range(n)], check(xs), f"R{p}[j] = r", "if spk:")
    spike(4, p, "j", "record")
    stop(p, emit)
    # propagation once the whole population has taken its step (a one-step projection
    # onto this population adds to its state directly)
    emit(2, "for a_ in range(nsp):")
    emit(3, f"j = SPL{p}[a_]")
    spike(3, p, "j", "propagate")


def stop(p: int, emit) -> None:
    """Leave the kernel after population ``p``'s step if its flag is raised (``2 + p``)."""
    emit(2, "if bad:", f"    info[0] = {2 + p}", "    info[1] = t", "    return")


_LOADED: dict[str, object] = {}
_LOCK = threading.Lock()


def load(layout: Layout, announce=None):
    """The compiled network kernel module for ``layout`` (written and imported once)."""
    src = generate(layout)
    key = hashlib.sha256(f"{VERSION}\n{src}".encode()).hexdigest()[:20]
    with _LOCK:
        mod = _LOADED.get(key)
        if mod is not None:
            return mod
        mod = C.import_source(src, f"nn_{key}")
        if announce is not None and not C._in_disk_cache(mod.kernel):
            announce(f"neurosim: compiling the network kernel ({len(layout.pops)} populations, "
                     f"{len(layout.projs)} projections); cached for later runs in "
                     f"{C.cache_dir()}")
        _LOADED[key] = mod
        return mod


__all__ = ["Layout", "MonLayout", "PopLayout", "ProjLayout", "generate", "load",
           "mixed_seed", "poisson_counts", "poisson_uniform", "splitmix64"]
