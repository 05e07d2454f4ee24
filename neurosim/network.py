r"""Networks: populations of any model, sparse projections with delays, inputs and monitors.

>>> import neurosim as ns
>>> from neurosim.models.cuba import TwoCurrentLIF
>>> pop = ns.Population(TwoCurrentLIF(), 4000, init={"v": ("uniform", -60.0, -50.0)}, seed=1)
>>> exc, inh = pop[:3200], pop[3200:]
>>> ce = ns.Projection(exc, pop, "g_e", 1.62, p=0.02, seed=2)
>>> ci = ns.Projection(inh, pop, "g_i", -9.0, p=0.02, seed=3)
>>> spikes = ns.SpikeMonitor(pop)
>>> net = ns.Network(pop, ce, ci, spikes, dt=1e-4)
>>> net.run(1.0)                    # continues where the last run ended
>>> spikes.i, spikes.t              # neuron index, time (s)

Time runs on a grid of ``dt`` seconds. Step *k* covers :math:`[k\,dt, (k+1)\,dt]`;
a neuron that crosses threshold in step *k* spikes at time :math:`(k+1)\,dt` (the end
of the step, as :func:`neurosim.simulate` reports grid spikes). Per step, in the order
the populations were given to :class:`Network`, each population takes its step (see
:mod:`neurosim.engine._network`) and each of its spikes is propagated through the
projections leaving it into ring buffers.

**Delays.** A delay :math:`\delta \ge 0` seconds is quantised to
:math:`n_\delta = \lfloor \delta/dt + 1/2 \rfloor` steps (round to nearest) and the
spike of step *k* is added to the target variable at the *start* of step
:math:`k + 1 + n_\delta`, i.e. exactly :math:`n_\delta\,dt` after the spike time
:math:`(k+1)\,dt`. ``Projection.delay_steps`` holds :math:`1 + n_\delta \ge 1`: the
minimum is one step (delay 0: the spike acts before the next step, as a zero-delay
synapse in Brian2), so nothing acts within the step that produced it.

**Synaptic input** is a jump: at the start of a step, the sum of the weights arriving
is added to the target state variable (``"i"`` of ``LIF(tau_syn=...)``, ``"g_e"`` /
``"g_i"`` of :class:`~neurosim.CobaLIF`, ``"v"``...), before the model's own input
and integration. Projections onto one population and variable sum.

Two back ends run the same network: ``"engine"`` (one generated numba kernel for the
whole time loop, the physics of each model printed from its one definition) and
``"reference"`` (torch: each population stepped by :meth:`neurosim.Step.with_events`,
the spikes scattered through the synapses into the ring buffers), the oracle the tests
compare the engine with (identical spikes in float64). The reference path is also the
differentiable one: with weights or parameters that require grad, the spikes carry
surrogate gradients and a loss on the monitors' tensors back-propagates through the
populations, the delays and the synapses (``backend="auto"``, the default, picks it).
"""

from __future__ import annotations

import dataclasses
import math
import time as _time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .errors import SimulationDiverged
from .models.base import NeuronModel
from .state import State
from .step import Step, discretise

Dist = Any  # float | tensor | array | ("uniform", lo, hi) | ("normal", mean, std) | callable

RULES = ("all_to_all", "dense", "one_to_one", "fixed_probability", "fixed_indegree",
         "fixed_total_number", "arrays", "matrix")


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _draw(name: str, value: Dist, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values from a number, an array of length n, a distribution tuple or callable."""
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        kind, *args = value
        if kind == "uniform" and len(args) == 2:
            lo, hi = (float(a) for a in args)
            if not hi >= lo:
                raise ValueError(f"{name}: ('uniform', lo, hi) needs hi >= lo, got {value!r}")
            return rng.uniform(lo, hi, n)
        if kind == "normal" and len(args) == 2:
            mean, std = (float(a) for a in args)
            if not std >= 0:
                raise ValueError(f"{name}: ('normal', mean, std) needs std >= 0, got {value!r}")
            return rng.normal(mean, std, n)
        raise ValueError(f"{name} must be a number, an array, ('uniform', lo, hi), "
                         f"('normal', mean, std) or a callable, got {value!r}")
    if callable(value):
        out = np.asarray(value(rng, n), dtype=np.float64).reshape(-1)
    elif isinstance(value, torch.Tensor):
        out = value.detach().cpu().double().numpy().reshape(-1)
    else:
        out = np.asarray(value, dtype=np.float64).reshape(-1)
    if out.size == 1:
        out = np.full(n, float(out[0]))
    if out.size != n:
        raise ValueError(f"{name} must have {n} values (one per element), got {out.size}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite, got non-finite values")
    return out


def _check_int(name: str, value: Any, lo: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _np_dtype(dtype: torch.dtype) -> np.dtype:
    return np.dtype(str(dtype).replace("torch.", ""))


# ---------------------------------------------------------------------------------------
# populations and sources
# ---------------------------------------------------------------------------------------
class _Group:
    """Something that spikes: a population, a source, or a slice of one."""

    n: int
    name: str

    def _root(self) -> tuple[_Group, int]:
        return self, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: slice) -> _Slice:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise ValueError(f"a population is sliced with a contiguous slice, got {index!r}")
        start, stop, _ = index.indices(self.n)
        if stop <= start:
            raise ValueError(f"slice {index!r} of {self.name} ({self.n} neurons) is empty")
        root, off = self._root()
        return _Slice(root, off + start, stop - start)


class _Slice(_Group):
    """Neurons ``start .. start + n - 1`` of a population (as a projection's pre or post)."""

    def __init__(self, root: _Group, start: int, n: int) -> None:
        self.root, self.start, self.n = root, start, n
        self.name = f"{root.name}[{start}:{start + n}]"

    def _root(self) -> tuple[_Group, int]:
        return self.root, self.start


class Population(_Group):
    """``n`` neurons of one model.

    Args:
        model: any neuron model (``LIF(...)``, ``CobaLIF()``, a user model); tensor
            parameters of shape ``[n]`` make it heterogeneous.
        n: number of neurons, >= 1.
        init: initial state values by variable name: a number, a tensor/array of
            ``n`` values, ``("uniform", lo, hi)``, ``("normal", mean, std)`` or a
            callable ``f(rng, n) -> array`` (drawn with ``seed``); the others start
            at the model's rest.
        input: the model's own input *u* (in its input mode and unit, e.g. a current):
            a number, a tensor of ``n`` values, or a callable ``f(t) -> tensor`` of the
            step start times ``t`` (s, shape ``[T]``) returning ``[T]`` or ``[T, n]``.
            Default 0.
        method: integrator name (``"exact"`` where the model is linear between
            spikes, else ``"exponential_euler"`` if it declares conditionally linear
            variables, else ``"rk4"``); spikes are on the grid.
        seed: seed of the initial-state draws.
        name: a label for messages.
        refractory_input: whether jumps from projections onto a variable the model
            clamps during the refractory period (the membrane ``v``) still act while a
            neuron is refractory. ``True`` (default): they shift the held value (as a
            Brian2 ``on_pre`` with ``(unless refractory)``). ``False``: a jump arriving
            at the start of a step in which the neuron is refractory is discarded (NEST's
            ``iaf_psc_delta``; Brunel 2000: "insensitive to stimulation").
        surrogate: the surrogate gradient of the spikes in differentiable runs (a name,
            object or callable, see :mod:`neurosim.surrogate`; forward: the Heaviside
            step).
    """

    def __init__(self, model: NeuronModel, n: int, *, init: dict[str, Dist] | None = None,
                 input: Any = None, method: str | None = None, seed: int = 0,
                 name: str | None = None, refractory_input: bool = True,
                 surrogate: Any = "superspike") -> None:
        if not isinstance(model, NeuronModel):
            raise ValueError(f"model must be a neurosim model, got {model!r}")
        self.model = model
        self.n = _check_int("n", n, 1)
        self.name = name or f"{type(model).__name__}({self.n})"
        shape = model.param_shape()
        try:
            full = torch.broadcast_shapes(shape, (self.n,))
        except RuntimeError:
            full = None
        if full != torch.Size([self.n]):
            raise ValueError(f"parameters of {type(model).__name__} have shape {tuple(shape)}; "
                             f"a population of n={self.n} needs scalars or shape ({self.n},)")
        if method is None:
            if model.linear_system() is not None:
                method = "exact"
            elif model.conditionally_linear:
                method = "exponential_euler"
            else:
                method = "rk4"
        self.method = method
        self.seed = seed
        init = dict(init or {})
        for k in init:
            if k not in model.state_names:
                raise ValueError(f"init: {k!r} is not a state variable of {type(model).__name__} "
                                 f"(state variables: {list(model.state_names)})")
        self.init = init
        self.input = input
        self.refractory_input = bool(refractory_input)
        self.surrogate = surrogate
        #: the current state (``pop.state.v``...), views of the network's arrays once a
        #: network holding the population has been built (``None`` before)
        self.state: State | None = None

    def _gated(self, var: str) -> bool:
        """Whether jumps onto ``var`` are discarded while a neuron is refractory."""
        return (not self.refractory_input and self.model.spiking
                and var in self.model.clamped)

    def _initial_state(self, dtype: torch.dtype) -> State:
        # the initial state is data (no graph to the parameters it may depend on)
        state = State({k: x.detach() for k, x in
                       self.model.initial_state((self.n,), dtype=dtype).items()})
        rng = np.random.default_rng(self.seed)
        for k in self.model.state_names:
            if k in self.init:
                state[k] = torch.as_tensor(_draw(f"init[{k!r}]", self.init[k], self.n, rng),
                                           dtype=dtype)
        return state

    def _input(self, t: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        """The input of the steps starting at ``t`` as ``[T, n]`` (a broadcast view)."""
        T = t.size
        u = self.input
        if u is None:
            u = 0.0
        if callable(u):
            u = u(torch.as_tensor(t, dtype=dtype))
        u = torch.as_tensor(u, dtype=dtype)
        if u.dim() == 0:
            return u.expand(T, self.n)
        if u.dim() == 1 and u.shape[0] == self.n and not callable(self.input):
            return u.expand(T, self.n)
        if u.dim() == 1 and u.shape[0] == T:
            return u[:, None].expand(T, self.n)
        if u.dim() == 2 and u.shape == (T, self.n):
            return u
        raise ValueError(f"input of {self.name} must be a number, {self.n} values, or a "
                         f"callable returning [T] or [T, {self.n}]; got shape {tuple(u.shape)}")

    def __repr__(self) -> str:
        return f"Population({type(self.model).__name__}, n={self.n}, method={self.method!r})"


class PoissonInput(_Group):
    r"""``n`` independent Poisson spike sources (a source population).

    In each step of ``dt`` a source spikes with probability ``rate * dt`` (at most one
    spike per step; ``rate * dt`` must be <= 1), from a counter-based generator seeded
    by ``seed``: the spikes do not depend on how a simulation is split into runs, and
    the engine and the reference path draw the same ones.

    With ``multiple=True`` the number of spikes of a source in a step is instead
    Poisson distributed with mean :math:`\lambda = \mathrm{rate}\cdot dt` (any rate),
    the exact count of a Poisson process over the step: by superposition, one such
    source of rate :math:`C\nu` stands for :math:`C` independent sources of rate
    :math:`\nu` onto one target (NEST's ``poisson_generator``, Brian2's
    ``PoissonInput``). The count is drawn by inversion of one uniform number
    :math:`u`: the least *k* with :math:`u \le \sum_{m \le k} e^{-\lambda}
    \lambda^m/m!`, capped at :math:`k_\max = \lceil \lambda_\max +
    12\sqrt{\lambda_\max} + 12\rceil` (a count above it has probability below
    1e-20). A projection from the source adds ``weight * k``.

    Args:
        n: number of sources, >= 1.
        rate: rate in Hz: a number, ``n`` values, or a callable ``f(t) -> tensor`` of the
            step start times (s, ``[T]``) returning ``[T]`` or ``[T, n]``.
        seed: the seed.
        name: a label.
        multiple: allow several spikes per step (Poisson counts; see above).
    """

    def __init__(self, n: int, rate: Any, seed: int = 0, name: str | None = None, *,
                 multiple: bool = False) -> None:
        self.n = _check_int("n", n, 1)
        self.multiple = bool(multiple)
        if not callable(rate):
            r = np.asarray(rate.detach().cpu() if isinstance(rate, torch.Tensor) else rate,
                           dtype=np.float64)
            if r.size not in (1, self.n) or not np.all(np.isfinite(r)) or np.any(r < 0):
                raise ValueError(f"rate must be a finite rate >= 0 in Hz, one or {self.n} "
                                 f"values, got {rate!r}")
        self.rate = rate
        self.seed = _check_int("seed", seed)
        self.name = name or f"PoissonInput({self.n})"

    def _prob(self, t: np.ndarray, dt: float, dtype: Any = np.float64) -> np.ndarray:
        """Spike probability per step ``[T, n]`` (a broadcast view)."""
        T = t.size
        r = self.rate(torch.as_tensor(t)) if callable(self.rate) else self.rate
        r = np.asarray(r.detach().cpu() if isinstance(r, torch.Tensor) else r, dtype=np.float64)
        if r.ndim == 0 or (r.ndim == 1 and r.size == self.n and not callable(self.rate)):
            shape = r.reshape(1, -1) if r.ndim else r.reshape(1, 1)
        elif r.ndim == 1 and r.size == T:
            shape = r[:, None]
        elif r.shape == (T, self.n):
            shape = r
        else:
            raise ValueError(f"rate of {self.name} must give [T] or [T, {self.n}] values, "
                             f"got shape {r.shape}")
        p = shape * dt
        if not (np.all(np.isfinite(p)) and np.all(p >= 0)
                and (self.multiple or np.all(p <= 1))):
            raise ValueError(f"rate of {self.name} must be finite, >= 0 and <= 1/dt = "
                             f"{1 / dt:g} Hz (or use multiple=True), got values in "
                             f"[{r.min():g}, {r.max():g}] Hz")
        # cast before broadcasting: no [T, n] copy for constant rates
        return np.broadcast_to(p.astype(dtype, copy=False), (T, self.n))

    def _counts_data(self, t: np.ndarray, dt: float
                     ) -> tuple[np.ndarray, np.ndarray, int]:
        """``multiple=True``: the means ``lam = rate * dt`` and ``exp(-lam)`` per step
        (``[T, n]`` float64 broadcast views) and the cap ``k_max`` of the counts."""
        lam = self._prob(t, dt)
        lam_max = float(lam.max()) if lam.size else 0.0
        k_max = int(math.ceil(lam_max + 12.0 * math.sqrt(lam_max) + 12.0))
        base = lam[:1] if lam.strides[0] == 0 else lam
        base = base[:, :1] if base.strides[1] == 0 else base
        e = np.broadcast_to(np.exp(-base), lam.shape)
        return lam, e, k_max


class SpikeTimesInput(_Group):
    """Sources that spike at given times (a source population).

    A spike at time *t* is put on the grid at :math:`\\mathrm{round}(t/dt)\\,dt` (emitted in
    the step that ends there), so times must be >= dt/2.

    Args:
        indices: source index of each spike (ints >= 0).
        times: time of each spike in seconds (same length).
        n: number of sources (default ``max(indices) + 1``).
        name: a label.
    """

    def __init__(self, indices: Sequence[int] | np.ndarray | torch.Tensor,
                 times: Sequence[float] | np.ndarray | torch.Tensor, n: int | None = None,
                 name: str | None = None) -> None:
        idx = np.asarray(indices.cpu() if isinstance(indices, torch.Tensor) else indices)
        tms = np.asarray(times.cpu() if isinstance(times, torch.Tensor) else times,
                         dtype=np.float64)
        idx, tms = idx.reshape(-1), tms.reshape(-1)
        if idx.size != tms.size:
            raise ValueError(f"indices and times must have the same length, got {idx.size} "
                             f"and {tms.size}")
        if idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0):
            raise ValueError("indices must be integers >= 0")
        if not np.all(np.isfinite(tms)) or (tms.size and tms.min() < 0):
            raise ValueError("times must be finite and >= 0 (seconds)")
        self.n = _check_int("n", int(n) if n is not None else int(idx.max(initial=-1)) + 1, 1)
        if idx.size and idx.max() >= self.n:
            raise ValueError(f"indices must be < n={self.n}, got {idx.max()}")
        self.indices, self.times = idx.astype(np.int64), tms
        self.name = name or f"SpikeTimesInput({self.n})"

    def _steps(self, dt: float) -> tuple[np.ndarray, np.ndarray]:
        steps = np.floor(self.times / dt + 0.5).astype(np.int64) - 1
        if steps.size and steps.min() < 0:
            raise ValueError(f"{self.name}: spike times must be >= dt/2 = {dt / 2:g} s, got "
                             f"{self.times.min():g} s")
        order = np.lexsort((self.indices, steps))
        return steps[order], self.indices[order]


# ---------------------------------------------------------------------------------------
# projections
# ---------------------------------------------------------------------------------------
def _bernoulli_pairs(total: int, p: float, rng: np.random.Generator) -> np.ndarray:
    """The indices in ``[0, total)`` kept by independent Bernoulli(p) trials (sorted)."""
    if p == 0 or total == 0:
        return np.zeros(0, np.int64)
    if p == 1:
        return np.arange(total, dtype=np.int64)
    parts, pos = [], -1
    while True:
        m = int(max(1024, (total - pos) * p * 1.05 + 10 * math.sqrt(total * p + 1)))
        idx = pos + np.cumsum(rng.geometric(p, m), dtype=np.int64)
        parts.append(idx[idx < total])
        if idx[-1] >= total:
            break
        pos = int(idx[-1])
    return np.concatenate(parts)


def _connect(rule: str, n_pre: int, n_post: int, rng: np.random.Generator, *, p, k, n,
             i, j, matrix, autapses: bool, shift: int = 0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pairs (pre, post) of a rule, and the matrix values for ``"matrix"``.

    Without ``autapses``, post neuron *j* is the same neuron as pre neuron ``j + shift``
    (pre and post slices of one population) and that pair is left out.
    """
    values = None
    if rule in ("all_to_all", "dense"):
        pre = np.repeat(np.arange(n_pre), n_post)
        post = np.tile(np.arange(n_post), n_pre)
    elif rule == "one_to_one":
        if n_pre != n_post:
            raise ValueError(f"rule='one_to_one' needs equal sizes, got {n_pre} and {n_post}")
        pre = post = np.arange(n_pre)
    elif rule == "fixed_probability":
        if p is None or not 0 <= float(p) <= 1:
            raise ValueError(f"rule='fixed_probability' needs 0 <= p <= 1, got p={p!r}")
        p = float(p)
        # Bernoulli(p) for every pair, by geometric skips (cost per synapse, not per pair),
        # in blocks of pre-synaptic neurons (about 4e6 synapses each) to bound the memory
        rows = max(1, int(4e6 / max(1.0, n_post * p)))
        pres, posts = [], []
        for r0 in range(0, n_pre, rows):
            r1 = min(n_pre, r0 + rows)
            flat = _bernoulli_pairs((r1 - r0) * n_post, p, rng)
            q, r = np.divmod(flat, n_post)
            pres.append((q + r0).astype(np.int32))
            posts.append(r.astype(np.int32))
        pre = np.concatenate(pres) if pres else np.zeros(0, np.int32)
        post = np.concatenate(posts) if posts else np.zeros(0, np.int32)
        del pres, posts
    elif rule == "fixed_indegree":
        k = _check_int("k", k, 0)
        own = np.arange(n_post)[:, None] + shift
        overlap = not autapses and bool(np.any((own >= 0) & (own < n_pre)))
        avail = n_pre - (1 if overlap else 0)
        if k > avail:
            raise ValueError(f"rule='fixed_indegree' needs k <= {avail} available sources, "
                             f"got k={k}")
        src = rng.integers(0, n_pre, (n_post, k))
        for _ in range(1000):
            src.sort(axis=1)
            bad = np.zeros_like(src, dtype=bool)
            bad[:, 1:] = src[:, 1:] == src[:, :-1]
            if not autapses:
                bad |= src == own
            nbad = int(bad.sum())
            if nbad == 0:
                break
            src[bad] = rng.integers(0, n_pre, nbad)
        else:
            raise RuntimeError("fixed_indegree: could not draw distinct sources")
        pre, post = src.reshape(-1), np.repeat(np.arange(n_post), k)
        autapses = True  # already excluded
    elif rule == "fixed_total_number":
        n = _check_int("n", n, 0)
        if n > n_pre * n_post:
            raise ValueError(f"rule='fixed_total_number' needs n <= {n_pre * n_post}, got n={n}")
        flat = rng.choice(n_pre * n_post, size=n, replace=False)
        pre, post = np.divmod(flat.astype(np.int64), n_post)
    elif rule == "arrays":
        if i is None or j is None:
            raise ValueError("rule='arrays' needs i= (pre indices) and j= (post indices)")
        pre = np.asarray(i, dtype=np.int64).reshape(-1)
        post = np.asarray(j, dtype=np.int64).reshape(-1)
        if pre.size != post.size:
            raise ValueError(f"i and j must have the same length, got {pre.size} and {post.size}")
    elif rule == "matrix":
        if matrix is None:
            raise ValueError("rule='matrix' needs matrix= ([n_pre, n_post], dense or scipy.sparse)")
        if hasattr(matrix, "tocoo"):
            coo = matrix.tocoo()
            pre, post, values = (np.asarray(coo.row, np.int64), np.asarray(coo.col, np.int64),
                                 np.asarray(coo.data, np.float64))
            shape = coo.shape
        else:
            dense = np.asarray(matrix.detach().cpu() if isinstance(matrix, torch.Tensor)
                               else matrix, dtype=np.float64)
            shape = dense.shape
            pre, post = np.nonzero(dense)
            values = dense[pre, post]
        if tuple(shape) != (n_pre, n_post):
            raise ValueError(f"matrix must have shape ({n_pre}, {n_post}), got {tuple(shape)}")
    else:
        raise ValueError(f"rule must be one of {list(RULES)}, got {rule!r}")
    if pre.size and (pre.min() < 0 or pre.max() >= n_pre or post.min() < 0
                     or post.max() >= n_post):
        raise ValueError(f"connection indices out of range for {n_pre} -> {n_post} neurons")
    if not autapses:
        keep = pre != post + shift
        pre, post = pre[keep], post[keep]
        values = values[keep] if values is not None else None
    return pre, post, values


class Projection:
    """Synapses from ``pre`` to a state variable of ``post``, stored as CSR by pre neuron.

    A spike of pre-synaptic neuron *i* adds the weight to the ``target`` variable of
    each of its post-synaptic neurons at the start of the step ``delay_steps`` after
    the spike's step (see the module docstring for the delay rule).

    Args:
        pre: source: a :class:`Population`, :class:`PoissonInput`,
            :class:`SpikeTimesInput` or a contiguous slice of one (``pop[:3200]``).
        post: target :class:`Population` or a slice of one.
        target: the state variable of the post model the weights jump (``"i"``,
            ``"g_e"``, ``"v"``...).
        weight: in the unit of ``target``: a number, one value per synapse (in the
            order of the pairs for ``"arrays"``/``"matrix"``, else in the CSR order of
            :attr:`i`, :attr:`j`), ``("uniform", lo, hi)``, ``("normal", mean, std)``,
            or a callable ``f(rng, n)``. ``None`` with ``rule="matrix"``: the matrix values.
            A tensor that requires grad (here, or as ``matrix``) is trained: see
            :attr:`weight`.
        rule: ``"fixed_probability"`` (default; ``p``), ``"all_to_all"`` (alias
            ``"dense"``), ``"one_to_one"``, ``"fixed_indegree"`` (``k`` sources per
            target), ``"fixed_total_number"`` (``n`` synapses), ``"arrays"`` (``i``,
            ``j``) or ``"matrix"`` (``matrix``, ``[n_pre, n_post]`` dense or scipy.sparse).
        delay: seconds, >= 0: a number, one per synapse, or a distribution as ``weight``.
        autapses: allow a neuron to connect to itself when ``pre`` and ``post`` overlap.
        seed: seed of the connectivity, weight and delay draws.
    """

    def __init__(self, pre: _Group, post: _Group, target: str, weight: Dist = 1.0, *,
                 rule: str = "fixed_probability", p: float | None = None,
                 k: int | None = None, n: int | None = None, i: Any = None, j: Any = None,
                 matrix: Any = None, delay: Dist = 0.0, autapses: bool = True,
                 seed: int = 0) -> None:
        if not isinstance(pre, _Group):
            raise ValueError(f"pre must be a population, input or slice, got {pre!r}")
        post_root, post_off = post._root() if isinstance(post, _Group) else (None, 0)
        if not isinstance(post_root, Population):
            raise ValueError(f"post must be a Population or a slice of one, got {post!r}")
        if target not in post_root.model.state_names:
            raise ValueError(f"target {target!r} is not a state variable of "
                             f"{type(post_root.model).__name__} (state variables: "
                             f"{list(post_root.model.state_names)})")
        self.pre, self.post, self.target = pre, post, target
        self.rule = rule
        rng = np.random.default_rng(seed)
        pre_root, pre_off = pre._root()
        same = pre_root is post_root
        a, b, values = _connect(rule, pre.n, post.n, rng, p=p, k=k, n=n, i=i, j=j,
                                matrix=matrix, autapses=autapses or not same,
                                shift=post_off - pre_off)
        nsyn = a.size
        if weight is None:
            if values is None:
                raise ValueError("weight=None needs rule='matrix' (weights from the matrix)")
            w = values
        else:
            w = _draw("weight", weight, nsyn, rng)
        # trainable weights given by the user: a tensor that requires grad, one value per
        # synapse, or the dense matrix of rule="matrix"; the synapses read it (in CSR order)
        # at every run, so that gradients reach it
        src: torch.Tensor | None = None
        src_index = None
        if isinstance(weight, torch.Tensor) and weight.requires_grad:
            src, src_index = weight, np.arange(nsyn)
        elif (weight is None and isinstance(matrix, torch.Tensor) and matrix.requires_grad):
            src, src_index = matrix, a.astype(np.int64) * post.n + b
        if isinstance(delay, (int, float)) and not isinstance(delay, bool):
            d = np.full(1, float(delay))  # uniform: one number, not one per synapse
        else:
            d = _draw("delay", delay, nsyn, rng)
        if not np.all(np.isfinite(d)) or np.any(d < 0):
            raise ValueError(f"delay must be finite and >= 0 seconds, got a minimum of "
                             f"{d.min():g}")
        # CSR by (root) pre neuron, stable within a row
        if pre_off:
            a = a + pre_off
        if post_off:
            b = b + post_off
        self._pre_root, self._post_root = pre_root, post_root
        if a.size > 1 and not np.all(a[1:] >= a[:-1]):
            order = np.argsort(a, kind="stable")
            a, b, w = a[order], b[order], w[order]
            d = d[order] if d.size > 1 else d
            src_index = src_index[order] if src_index is not None else None
        self.j = b.astype(np.int32, copy=False)
        self._weight = torch.from_numpy(np.ascontiguousarray(w, np.float64))
        self._src = (None if src is None else
                     (src, torch.from_numpy(np.ascontiguousarray(src_index))))
        self.indptr = np.zeros(pre_root.n + 1, np.int64)
        np.cumsum(np.bincount(a, minlength=pre_root.n), out=self.indptr[1:])
        # a uniform delay is kept as one number (no memory per synapse)
        self._delay: float | np.ndarray = (float(d[0]) if d.size and np.all(d == d[0])
                                           else d)
        del a
        self._steps: int | np.ndarray | None = None  # set by the network (needs dt)

    @property
    def n_synapses(self) -> int:
        """Number of synapses."""
        return int(self.j.size)

    @property
    def weight(self) -> torch.Tensor:
        """The weight of each synapse in CSR order (:attr:`i`, :attr:`j`), a float64
        tensor in the unit of the target variable.

        To train it, call ``proj.weight.requires_grad_()`` (a leaf tensor; in-place
        changes, such as an optimiser's, are seen by the next run), or pass a tensor that
        requires grad as ``weight`` (one value per synapse, in the order of the pairs) or,
        with ``rule="matrix"``, as ``matrix`` (the synapses are its nonzero entries at
        construction; the weights are read from it at every run). Assigning a tensor of
        :attr:`n_synapses` values replaces the weights.
        """
        if self._src is not None:
            src, index = self._src
            return src.reshape(-1)[index].to(torch.float64)
        return self._weight

    @weight.setter
    def weight(self, value: torch.Tensor) -> None:
        value = torch.as_tensor(value)
        if value.shape != (self.n_synapses,):
            raise ValueError(f"weight must have {self.n_synapses} values (one per synapse), "
                             f"got shape {tuple(value.shape)}")
        self._weight, self._src = value, None

    @property
    def trainable(self) -> torch.Tensor | None:
        """The tensor gradients reach: the user's weight or matrix tensor that requires
        grad, else :attr:`weight` if it requires grad, else ``None``."""
        if self._src is not None:
            return self._src[0]
        return self._weight if self._weight.requires_grad else None

    @property
    def i(self) -> np.ndarray:
        """Pre-synaptic neuron of each synapse (int64, computed from :attr:`indptr`)."""
        return np.repeat(np.arange(self.indptr.size - 1), np.diff(self.indptr))

    @property
    def delay(self) -> np.ndarray:
        """Delay of each synapse in seconds (a read-only view when uniform)."""
        if isinstance(self._delay, float):
            return np.broadcast_to(np.float64(self._delay), (self.n_synapses,))
        return self._delay

    @property
    def delay_steps(self) -> np.ndarray | None:
        """Steps from the spike's step to the step at whose start it lands, per synapse:
        ``1 + round(delay / dt)`` (``None`` before the network is built)."""
        if self._steps is None:
            return None
        if isinstance(self._steps, int):
            return np.broadcast_to(np.int64(self._steps), (self.n_synapses,))
        return self._steps

    def _quantise(self, dt: float) -> np.ndarray:
        d = self._delay
        steps = np.floor(np.asarray(d) / dt + 0.5).astype(np.int64) + 1
        self._steps = int(steps) if isinstance(d, float) else steps
        return self.delay_steps

    def __repr__(self) -> str:
        return (f"Projection({self.pre.name} -> {self.post.name}.{self.target}, "
                f"{self.n_synapses} synapses)")


# ---------------------------------------------------------------------------------------
# monitors
# ---------------------------------------------------------------------------------------
class SpikeMonitor:
    """Records the spikes of a population or source as neuron index and time.

    Attributes (after a run): :attr:`i` (int64 neuron indices), :attr:`t` (float64
    times in s, non-decreasing), :attr:`count` (spikes per neuron), :attr:`num_spikes`,
    :attr:`count_tensor` (the counts as a tensor, differentiable after a differentiable
    run). Memory: 12 bytes per spike recorded (kernel buffers: 12 bytes per spike too).
    """

    def __init__(self, source: _Group) -> None:
        if not isinstance(source, (Population, PoissonInput, SpikeTimesInput)):
            raise ValueError(f"source must be a Population or an input, got {source!r}")
        self.source = source
        self._steps: list[np.ndarray] = []
        self._idx: list[np.ndarray] = []
        self._tcount: torch.Tensor | None = None
        self._dt = 0.0

    def _add(self, steps: np.ndarray, idx: np.ndarray,
             count: torch.Tensor | None = None) -> None:
        self._steps.append(np.asarray(steps, np.int64))
        self._idx.append(np.asarray(idx, np.int64))
        if count is None:
            count = torch.from_numpy(np.bincount(self._idx[-1], minlength=self.source.n)
                                     .astype(np.float64))
        self._tcount = count if self._tcount is None else self._tcount + count

    def _clear(self) -> None:
        self._steps, self._idx, self._tcount = [], [], None

    @property
    def count_tensor(self) -> torch.Tensor:
        """Spikes per neuron (length n) as a tensor. After a differentiable run it is the
        sum over the steps of the spikes with their surrogate gradients (forward: the
        same numbers as :attr:`count`), so a loss on it can be back-propagated."""
        if self._tcount is None:
            return torch.zeros(self.source.n, dtype=torch.float64)
        return self._tcount

    def _cat(self) -> tuple[np.ndarray, np.ndarray]:
        if len(self._steps) > 1:
            self._steps = [np.concatenate(self._steps)]
            self._idx = [np.concatenate(self._idx)]
        if not self._steps:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return self._steps[0], self._idx[0]

    @property
    def i(self) -> np.ndarray:
        """Neuron index of each spike (int64)."""
        return self._cat()[1]

    @property
    def t(self) -> np.ndarray:
        """Time of each spike in seconds (the end of its step)."""
        return (self._cat()[0] + 1) * self._dt

    @property
    def num_spikes(self) -> int:
        """Total number of spikes recorded."""
        return int(self._cat()[1].size)

    @property
    def count(self) -> np.ndarray:
        """Spikes per neuron (int64, length n)."""
        return np.bincount(self.i, minlength=self.source.n)

    def spike_trains(self) -> list[np.ndarray]:
        """Per-neuron arrays of spike times (s)."""
        i, t = self.i, self.t
        order = np.argsort(i, kind="stable")
        bounds = np.searchsorted(i[order], np.arange(self.source.n + 1))
        ts = t[order]
        return [ts[bounds[k]:bounds[k + 1]] for k in range(self.source.n)]

    def save(self, path: Any) -> None:
        """Save to ``path`` (``.npz`` with a JSON header; :func:`neurosim.io.save_monitor`)."""
        from .io import save_monitor

        save_monitor(self, path)

    def to_neo(self, t_stop: float | None = None) -> Any:
        """A ``neo.Segment`` of SpikeTrains (:func:`neurosim.io.monitor_to_neo`)."""
        from .io import monitor_to_neo

        return monitor_to_neo(self, t_stop)

    def plot(self, ax=None, **kwargs: Any):
        """A raster plot (:func:`neurosim.plot.plot_raster`); returns the figure."""
        from .plot import plot_raster

        return plot_raster(self.spike_trains(), ax=ax, **kwargs)


class StateMonitor:
    """Records state variables of chosen neurons every ``dt`` seconds (its own interval).

    The samples are taken after the steps that end at multiples of ``dt`` (rounded to
    whole simulation steps, at least one). Memory: one value per sample, neuron and
    variable.

    Args:
        population: the :class:`Population`.
        variables: a state variable name (or several; ``"refrac"`` too).
        neurons: neuron indices (default all).
        dt: sampling interval in seconds (default: every step).

    Attributes (after a run): :attr:`t` (sample times, s) and, per variable,
    ``monitor.v`` (``[n_samples, n_neurons]``, time-major like the rest of neurosim).
    """

    def __init__(self, population: Population, variables: str | Sequence[str],
                 neurons: Sequence[int] | np.ndarray | None = None,
                 dt: float | None = None) -> None:
        if not isinstance(population, Population):
            raise ValueError(f"population must be a Population, got {population!r}")
        self.population = population
        names = (variables,) if isinstance(variables, str) else tuple(variables)
        allowed = tuple(population.model.state_names) + (
            ("refrac",) if population.model.spiking else ())
        for v in names:
            if v not in allowed:
                raise ValueError(f"variables: {v!r} is not a state variable of "
                                 f"{type(population.model).__name__} (choose from {list(allowed)})")
        self.variables = names
        idx = np.arange(population.n) if neurons is None else np.asarray(neurons, np.int64)
        idx = idx.reshape(-1)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= population.n:
            raise ValueError(f"neurons must be indices in [0, {population.n}), got {neurons!r}")
        self.neurons = idx
        if dt is not None and not (isinstance(dt, (int, float)) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        self.dt = dt
        self.every = 1
        self._t: list[np.ndarray] = []
        self._v: dict[str, list[np.ndarray]] = {v: [] for v in names}
        self._tv: dict[str, list[torch.Tensor]] = {v: [] for v in names}

    def _clear(self) -> None:
        self._t = []
        self._v = {v: [] for v in self.variables}
        self._tv = {v: [] for v in self.variables}

    def tensor(self, variable: str | None = None) -> torch.Tensor:
        """The samples of ``variable`` (default the first recorded) as a tensor
        ``[n_samples, n_neurons]``; after a differentiable run it carries the graph
        (gradients flow from a loss on it to weights, inputs and parameters)."""
        variable = variable or self.variables[0]
        if variable not in self._tv:
            raise ValueError(f"{variable!r} is not recorded (recorded: {self.variables})")
        parts = self._tv[variable]
        if not parts:
            return torch.zeros((0, self.neurons.size), dtype=torch.float64)
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    @property
    def t(self) -> np.ndarray:
        """Sample times (s)."""
        return np.concatenate(self._t) if self._t else np.zeros(0)

    def __getattr__(self, name: str) -> np.ndarray:
        values = self.__dict__.get("_v", {})
        if name in values:
            parts = values[name]
            return np.concatenate(parts) if parts else np.zeros((0, self.neurons.size))
        raise AttributeError(f"StateMonitor has no attribute {name!r} (recorded: "
                             f"{list(values)})")

    def save(self, path: Any) -> None:
        """Save to ``path`` (``.npz`` with a JSON header; :func:`neurosim.io.save_monitor`)."""
        from .io import save_monitor

        save_monitor(self, path)

    def to_neo(self) -> Any:
        """A ``neo.Segment`` of AnalogSignals (:func:`neurosim.io.monitor_to_neo`)."""
        from .io import monitor_to_neo

        return monitor_to_neo(self)

    def plot(self, variable: str | None = None, ax=None):
        """The recorded traces of one variable; returns the figure."""
        import matplotlib.pyplot as plt

        variable = variable or self.variables[0]
        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 3))
        else:
            fig = ax.figure
        ax.plot(self.t, getattr(self, variable))
        ax.set_xlabel("time (s)")
        ax.set_ylabel(variable)
        return fig


class RateMonitor:
    """The population rate (Hz) in bins of ``bin`` seconds.

    Counts the spikes of each step (4 bytes per step); :attr:`rate` bins them.

    Args:
        source: a population or input.
        bin: bin width in seconds (rounded to whole steps, at least one).
    """

    def __init__(self, source: _Group, bin: float = 1e-3) -> None:
        if not isinstance(source, (Population, PoissonInput, SpikeTimesInput)):
            raise ValueError(f"source must be a Population or an input, got {source!r}")
        if not (isinstance(bin, (int, float)) and bin > 0):
            raise ValueError(f"bin must be a positive number of seconds, got {bin!r}")
        self.source = source
        self.bin = float(bin)
        self._counts: list[np.ndarray] = []
        self._tcounts: list[torch.Tensor] = []
        self._dt = 0.0

    def _add(self, counts: np.ndarray, tcounts: torch.Tensor | None = None) -> None:
        self._counts.append(counts)
        self._tcounts.append(torch.from_numpy(counts.astype(np.float64)) if tcounts is None
                             else tcounts)

    def _clear(self) -> None:
        self._counts, self._tcounts = [], []

    @property
    def rate_tensor(self) -> torch.Tensor:
        """:attr:`rate` as a tensor, differentiable after a differentiable run."""
        c = torch.cat(self._tcounts) if self._tcounts else torch.zeros(0, dtype=torch.float64)
        k = max(1, int(round(self.bin / self._dt))) if self._dt else 1
        m = c.shape[0] // k
        return c[:m * k].reshape(m, k).sum(1) / (k * self._dt * self.source.n)

    @property
    def counts(self) -> np.ndarray:
        """Spikes of the population in each step."""
        return np.concatenate(self._counts) if self._counts else np.zeros(0, np.int32)

    @property
    def t(self) -> np.ndarray:
        """Bin start times (s)."""
        k = max(1, int(round(self.bin / self._dt))) if self._dt else 1
        return np.arange(self.counts.size // k) * k * self._dt

    @property
    def rate(self) -> np.ndarray:
        """Population rate in each whole bin (Hz per neuron)."""
        c = self.counts
        k = max(1, int(round(self.bin / self._dt))) if self._dt else 1
        m = c.size // k
        return c[:m * k].reshape(m, k).sum(1) / (k * self._dt * self.source.n)

    def plot(self, ax=None):
        """The binned rate; returns the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(8, 2.5))
        else:
            fig = ax.figure
        ax.step(self.t, self.rate, where="post")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("rate (Hz)")
        return fig


# ---------------------------------------------------------------------------------------
# the network
# ---------------------------------------------------------------------------------------
class Network:
    """Populations, inputs, projections and monitors, run together on one time grid.

    Args:
        *objects: :class:`Population`, :class:`PoissonInput`, :class:`SpikeTimesInput`,
            :class:`Projection`, :class:`SpikeMonitor`, :class:`StateMonitor`,
            :class:`RateMonitor` (populations referenced by projections and monitors
            are added automatically, in the order met).
        dt: the time step in seconds.
        dtype: ``torch.float64`` (default) or ``torch.float32``.
        backend: ``"auto"`` (default: the compiled engine, or the reference path when
            the network is differentiable), ``"engine"`` (the compiled kernel, no
            autograd) or ``"reference"`` (torch; the oracle, and the differentiable path).

    The structure is fixed by the first :meth:`run`; later runs continue from the
    state, ring buffers and time where the previous one ended (:meth:`reset` goes back
    to time 0).

    **Gradients.** A run is *differentiable* when autograd is enabled and a tensor of
    :meth:`parameters` requires grad: projection weights (``proj.weight.requires_grad_()``),
    tensor parameters of a population's model, or a population's tensor ``input``. It
    runs on the reference path (``backend="auto"`` chooses it at the first run; set
    ``requires_grad`` before it): spikes are the Heaviside step forward and the
    population's surrogate derivative backward (:mod:`neurosim.surrogate`), and the
    graph runs through the reset, the ring buffers of the delays and the synaptic
    jumps into the weights. Monitors then give differentiable tensors
    (:attr:`SpikeMonitor.count_tensor`, :meth:`StateMonitor.tensor`,
    :attr:`RateMonitor.rate_tensor`) to build a loss from.
    """

    def __init__(self, *objects: Any, dt: float = 1e-4, dtype: torch.dtype = torch.float64,
                 backend: str = "auto") -> None:
        if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
            raise ValueError(f"dt must be a positive number of seconds, got {dt!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        if backend not in ("auto", "engine", "reference"):
            raise ValueError(f"backend must be 'auto', 'engine' or 'reference', got {backend!r}")
        self.dt, self.dtype, self.backend = float(dt), dtype, backend
        self._engine = False
        self._tstate: dict[int, State] | None = None
        self._tring: dict[int, list[list[torch.Tensor]]] | None = None
        self.groups: list[_Group] = []
        self.projections: list[Projection] = []
        self.monitors: list[Any] = []

        def add_group(g: _Group) -> None:
            root, _ = g._root()
            if not any(root is x for x in self.groups):
                self.groups.append(root)

        for obj in objects:
            if isinstance(obj, _Group):
                add_group(obj)
            elif isinstance(obj, Projection):
                add_group(obj.pre)
                add_group(obj.post)
                self.projections.append(obj)
            elif isinstance(obj, (SpikeMonitor, RateMonitor)):
                add_group(obj.source)
                self.monitors.append(obj)
            elif isinstance(obj, StateMonitor):
                add_group(obj.population)
                self.monitors.append(obj)
            else:
                raise ValueError(f"a Network holds populations, inputs, projections and "
                                 f"monitors, got {obj!r}")
        self.step_count = 0
        self._built = False
        #: seconds spent building the network (connectivity, kernel generation, loading or
        #: compiling it), measured by the first run
        self.setup_s = 0.0
        #: seconds of the last run (simulation only)
        self.last_run_s = 0.0

    @property
    def t(self) -> float:
        """The simulated time so far (s)."""
        return self.step_count * self.dt

    def parameters(self) -> list[torch.Tensor]:
        """The tensors of the network that require grad: projection weights, tensor
        parameters of the populations' models and tensor population inputs (each once),
        e.g. for ``torch.optim.Adam(net.parameters())``."""
        out: list[torch.Tensor] = []

        def add(x: Any) -> None:
            if (isinstance(x, torch.Tensor) and x.requires_grad
                    and not any(x is y for y in out)):
                out.append(x)

        for pr in self.projections:
            add(pr.trainable)
        for g in self.groups:
            if isinstance(g, Population):
                if dataclasses.is_dataclass(g.model):
                    for f in dataclasses.fields(g.model):
                        add(getattr(g.model, f.name))
                add(g.input)
        return out

    def _differentiable(self) -> bool:
        return torch.is_grad_enabled() and bool(self.parameters())

    def reset(self) -> Network:
        """Go back to time 0: the initial states drawn again (same seeds), empty ring
        buffers, spike-time inputs rewound, monitors cleared. Weights and parameters are
        kept (a training loop calls ``reset()`` before each run). Returns the network."""
        if self._built:
            for q, (S, R) in self._states.items():
                g = self.groups[q]
                state = g._initial_state(self.dtype)
                for i, k in enumerate(g.model.state_names):
                    S[i] = state[k].numpy()
                R[:] = state["refrac"].numpy() if g.model.spiking else 0
            for rs in self._rings.values():
                for rb in rs:
                    rb[:] = 0
            for ptr in self._ptr.values():
                ptr[:] = 0
        self._tstate = self._tring = None
        self.step_count = 0
        for m in self.monitors:
            m._clear()
        return self

    def memory(self) -> dict[str, int]:
        """Bytes held by the connectivity (CSR arrays), ring buffers and states."""
        self._build()
        syn = sum(a.nbytes for pr in self._proj_arrays for a in pr)
        rings = sum(rb.nbytes for rs in self._rings.values() for rb in rs)
        states = sum(s.nbytes + r.nbytes for s, r in self._states.values())
        return {"synapses": syn, "rings": rings, "states": states,
                "n_synapses": sum(p.n_synapses for p in self.projections)}

    # -- building ------------------------------------------------------------------------
    def _index(self, g: _Group) -> int:
        root, _ = g._root()
        return next(k for k, x in enumerate(self.groups) if x is root)

    def _build(self) -> None:
        if self._built:
            return
        t0 = _time.perf_counter()
        dt, dtype = self.dt, self.dtype
        self._engine = self.backend == "engine" or (self.backend == "auto"
                                                    and not self._differentiable())
        npd = _np_dtype(dtype)
        # ring buffers: one per (population, target variable), D = max delay + 1 slots
        targets: dict[int, list[str]] = {}
        depth: dict[tuple[int, str], int] = {}
        self._proj_arrays = []
        self._direct = []
        for pr in self.projections:
            steps = pr._quantise(dt)
            q = self._index(pr.post)
            dmax = int(steps.max()) if steps.size else 1
            hetero = bool(steps.size and steps.min() != steps.max())
            # engine: a one-step delay onto a population taken before (or with) the source
            # in the step order is added to the state right after the source's step, which
            # is the start of the next step for the target: no ring buffer needed (not
            # where a state monitor records the target, which samples before the jumps)
            watched = any(isinstance(m, StateMonitor) and m.population is pr._post_root
                          and pr.target in m.variables for m in self.monitors)
            direct = (self._engine and not hetero and dmax == 1
                      and q <= self._index(pr.pre) and not watched)
            self._direct.append(direct)
            if not direct:
                targets.setdefault(q, [])
                if pr.target not in targets[q]:
                    targets[q].append(pr.target)
                depth[(q, pr.target)] = max(depth.get((q, pr.target), 1), dmax)
            dl_dtype = np.int16 if dmax < 2 ** 15 else np.int32
            dl = steps.astype(dl_dtype) if hetero else np.array([dmax if steps.size else 1],
                                                                 dl_dtype)
            self._proj_arrays.append((pr.indptr, pr.j,
                                      pr.weight.detach().numpy().astype(npd, copy=False), dl))
        self._targets = targets
        self._rings: dict[int, list[np.ndarray]] = {}
        self._states: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._steps: dict[int, Step] = {}
        for q, g in enumerate(self.groups):
            if isinstance(g, Population):
                step = discretise(g.model, dt, g.method, g.surrogate, precise=False)
                self._steps[q] = step
                state = g._initial_state(dtype)
                names = g.model.state_names
                S = np.ascontiguousarray(np.stack([state[k].numpy() for k in names]))
                R = (state["refrac"].numpy().copy() if g.model.spiking
                     else np.zeros(g.n, npd))
                S, R = S.astype(npd), R.astype(npd)
                self._states[q] = (S, R)
                # the population's state: views of the arrays the runs update in place
                g.state = State({k: torch.from_numpy(S[i]) for i, k in enumerate(names)})
                if g.model.spiking:
                    g.state["refrac"] = torch.from_numpy(R)
                self._rings[q] = [np.zeros((depth[(q, v)] + 1, g.n), npd)
                                  for v in targets.get(q, [])]
        self._ptr = {q: np.zeros(1, np.int64) for q, g in enumerate(self.groups)
                     if isinstance(g, SpikeTimesInput)}
        self._times = {q: g._steps(dt) for q, g in enumerate(self.groups)
                       if isinstance(g, SpikeTimesInput)}
        for m in self.monitors:
            if isinstance(m, StateMonitor):
                m.every = max(1, int(math.floor((m.dt or dt) / dt + 0.5)))
            else:
                m._dt = dt
        self._built = True
        self.setup_s += _time.perf_counter() - t0
        if self._engine:
            self._build_engine()

    def _build_engine(self) -> None:
        from .engine import _codegen as C
        from .engine import _ir, _rows, method_name
        from .engine import _network as NW

        t0 = _time.perf_counter()
        dtype = self.dtype
        layout = NW.Layout(dtype=str(dtype).replace("torch.", ""))
        self._P: dict[int, np.ndarray] = {}
        for q, g in enumerate(self.groups):
            rec_sp = any(isinstance(m, SpikeMonitor) and m.source is g for m in self.monitors)
            rec_rt = any(isinstance(m, RateMonitor) and m.source is g for m in self.monitors)
            if isinstance(g, Population):
                step = self._steps[q]
                method = method_name(step)
                if method not in ("euler", "rk4", "exponential_euler", "exact"):
                    raise ValueError(f"{g.name}: method {g.method!r} has no network kernel; "
                                     f"use 'exact', 'euler', 'rk4' or 'exponential_euler', "
                                     f"or backend='reference'")
                ir = _ir(g.model, dtype)
                mod = C.load(C.Spec(ir, method, dtype))  # only its helpers are used
                flow = step.integrator.prepare(g.model.cast(dtype), self.dt, dtype,
                                               torch.device("cpu"))
                P = _rows(g.model, ir, method, flow, self.dt, torch.Size([g.n]), dtype)
                self._P[q] = np.ascontiguousarray(P.numpy())
                names = g.model.state_names
                layout.pops.append(NW.PopLayout(
                    "neuron", mod.source_path.stem, method, len(names), len(ir.params),
                    g.model.spiking, bool(g.model.crossing_only),
                    tuple(names.index(v) for v in self._targets.get(q, [])), rec_sp, rec_rt,
                    hetero=P.shape[1] > 1, has_input=g.input is not None,
                    gated=tuple(r for r, v in enumerate(self._targets.get(q, []))
                                if g._gated(v)),
                    ranges={names.index(k): r for k, r in g.model.declared_ranges().items()}))
            elif isinstance(g, PoissonInput):
                layout.pops.append(NW.PopLayout("poisson", record_spikes=rec_sp,
                                                record_rate=rec_rt, multiple=g.multiple))
            else:
                layout.pops.append(NW.PopLayout("times", record_spikes=rec_sp,
                                                record_rate=rec_rt))
        for pr, arrs, direct in zip(self.projections, self._proj_arrays, self._direct,
                                    strict=True):
            q = self._index(pr.post)
            names = pr._post_root.model.state_names
            layout.projs.append(NW.ProjLayout(
                self._index(pr.pre), q, -1 if direct else self._targets[q].index(pr.target),
                arrs[3].size > 1, direct=direct, var=names.index(pr.target),
                gated=pr._post_root._gated(pr.target)))
        for m in self.monitors:
            if isinstance(m, StateMonitor):
                q = self._index(m.population)
                names = m.population.model.state_names
                for v in m.variables:
                    layout.mons.append(NW.MonLayout(q, names.index(v) if v in names
                                                    else len(names)))
        self._layout = layout
        self._kernel = NW.load(layout, announce=_announce)
        self._NW = NW
        self.setup_s += _time.perf_counter() - t0

    # -- running -------------------------------------------------------------------------
    def run(self, duration: float, progress: bool | None = None) -> Network:
        """Simulate ``duration`` seconds more (rounded to whole steps of ``dt``).

        Args:
            duration: seconds, > 0.
            progress: show a progress bar over the run (``None``, the default: only for
                long runs, more than 5e9 neuron-steps).

        Returns:
            the network (monitors hold the recordings; :attr:`t` advanced).
        """
        if not (isinstance(duration, (int, float)) and math.isfinite(duration)
                and duration > 0):
            raise ValueError(f"duration must be a positive number of seconds, got {duration!r}")
        T = int(math.floor(duration / self.dt + 0.5))
        if T < 1:
            raise ValueError(f"duration={duration!r} s is shorter than half a step "
                             f"dt={self.dt!r} s")
        self._build()
        if self._engine and self._differentiable():
            raise ValueError("tensors of this network require grad, but it runs on the "
                             "compiled engine (no autograd): use backend='reference' (or "
                             "'auto', with requires_grad set before the first run), or run "
                             "under torch.no_grad()")
        run0 = self.step_count
        n_neuron_steps = T * sum(g.n for g in self.groups)
        if progress is None:
            progress = n_neuron_steps > 5e9
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=T, desc="network", unit="step")
        t_start = _time.perf_counter()
        try:
            if self._engine:
                self._run_engine(run0, T, bar)
            else:
                self._run_reference(run0, T, bar)
        finally:
            if bar is not None:
                bar.close()
        self.last_run_s = _time.perf_counter() - t_start
        self.step_count = run0 + T
        return self

    def _chunks(self, T: int, bar) -> list[tuple[int, int]]:
        n = 100 if bar is not None else 1
        b = np.linspace(0, T, min(n, T) + 1).astype(int)
        return [(int(b[k]), int(b[k + 1])) for k in range(len(b) - 1) if b[k + 1] > b[k]]

    def _step_times(self, run0: int, T: int) -> np.ndarray:
        return (run0 + np.arange(T)) * self.dt

    def _mon_samples(self, m: StateMonitor, run0: int, T: int) -> np.ndarray:
        steps = np.arange(run0, run0 + T)
        return steps[(steps + 1) % m.every == 0]

    def _run_engine(self, run0: int, T: int, bar) -> None:
        from .engine import _flat_input

        NW = self._NW
        tsec = self._step_times(run0, T)
        dt = _np_dtype(self.dtype).type(self.dt)
        args: list[Any] = []
        ev_bufs: dict[int, list[np.ndarray]] = {}
        rate_bufs: dict[int, np.ndarray] = {}
        need = {q: g.n for q, g in enumerate(self.groups)}  # spikes per step, at most
        for q, g in enumerate(self.groups):
            lay = self._layout.pops[q]
            if isinstance(g, Population):
                S, R = self._states[q]
                P = self._P[q]
                u = g._input(tsec, self.dtype)
                U, uo, ut, um = _flat_input(u, torch.Size([g.n]))
                args += [S, R, P, 1 if P.shape[1] > 1 else 0, U, uo, ut, um,
                         np.zeros(g.n, np.int8), np.zeros(g.n, np.int32), *self._rings[q]]
            elif isinstance(g, PoissonInput):
                if g.multiple:
                    prob, ex, k_max = g._counts_data(tsec, self.dt)
                    if ex.strides != prob.strides:
                        prob, ex = np.ascontiguousarray(prob), np.ascontiguousarray(ex)
                else:
                    prob = g._prob(tsec, self.dt, _np_dtype(self.dtype))

                def flat(a: np.ndarray, n: int = g.n) -> np.ndarray:
                    st = [s // a.itemsize for s in a.strides]
                    return np.lib.stride_tricks.as_strided(
                        a, ((T - 1) * st[0] + (n - 1) * st[1] + 1,), (a.itemsize,))

                st = [s // prob.itemsize for s in prob.strides]
                args += [flat(prob), 0, st[0], st[1], NW.mixed_seed(g.seed), g.n]
                if g.multiple:
                    args += [flat(ex), k_max]
                    need[q] = g.n * k_max
            else:
                steps, idx = self._times[q]
                args += [steps, idx, self._ptr[q]]
            if lay.record_spikes:
                cap = max(4096, 4 * need[q])
                ev_bufs[q] = [np.empty(cap, np.int64), np.empty(cap, np.int32)]
                if isinstance(g, SpikeTimesInput):
                    ev_bufs[q] = [np.empty(max(1, steps.size), np.int64),
                                  np.empty(max(1, steps.size), np.int32)]
                args += ev_bufs[q]
            if lay.record_rate:
                rate_bufs[q] = np.zeros(T, np.int32)
                args.append(rate_bufs[q])
        for pr, arrs in zip(self.projections, self._proj_arrays, strict=True):
            w = pr.weight.detach().numpy()
            if not np.shares_memory(w, arrs[2]):  # the weights as they are now
                np.copyto(arrs[2], w, casting="same_kind")
            args += list(arrs)
        mon_bufs = []
        for m in self.monitors:
            if isinstance(m, StateMonitor):
                ns = self._mon_samples(m, run0, T).size
                for _ in m.variables:
                    buf = np.empty((ns, m.neurons.size), _np_dtype(self.dtype))
                    mon_bufs.append(buf)
                    args += [m.neurons, m.every, buf, np.zeros(1, np.int64)]
        info = np.zeros(2 + len(self.groups), np.int64)
        names = self._NW.arg_names(self._layout)
        where = {q: names.index(f"EVT{q}") for q in ev_bufs}
        for c0, c1 in self._chunks(T, bar):
            t = run0 + c0
            while t < run0 + c1:
                self._kernel.kernel(t, run0 + c1, run0, dt, info, *args)
                if info[0] == 0:
                    break
                if info[0] >= 2:  # population info[0] - 2 diverged in step info[1]
                    q = int(info[0]) - 2
                    self._check_step(q, self._states[q][0], int(info[1]))
                    raise AssertionError("the network kernel flagged a state that is fine")
                t = int(info[1])
                for q in ev_bufs:  # grow the spike buffers and go on
                    used = int(info[2 + q])
                    evt, evi = ev_bufs[q]
                    if used + need[q] > evt.size:
                        cap = 2 * evt.size + need[q]
                        ev_bufs[q] = [np.concatenate([evt[:used], np.empty(cap - used,
                                                                           np.int64)]),
                                      np.concatenate([evi[:used], np.empty(cap - used,
                                                                           np.int32)])]
                        args[where[q]] = ev_bufs[q][0]
                        args[where[q] + 1] = ev_bufs[q][1]
            if bar is not None:
                bar.update(c1 - c0)
        self._check_finite(run0, T)
        # hand the recordings to the monitors
        k = 0
        for m in self.monitors:
            q = self._index(m.source if not isinstance(m, StateMonitor) else m.population)
            if isinstance(m, SpikeMonitor):
                used = int(info[2 + q])
                m._add(ev_bufs[q][0][:used].copy(), ev_bufs[q][1][:used].astype(np.int64))
            elif isinstance(m, RateMonitor):
                m._add(rate_bufs[q].copy())
            else:
                m._t.append((self._mon_samples(m, run0, T) + 1) * self.dt)
                for v in m.variables:
                    m._v[v].append(mon_bufs[k])
                    m._tv[v].append(torch.from_numpy(mon_bufs[k]))
                    k += 1

    def _check_step(self, q: int, S: np.ndarray, t: int) -> None:
        """Raise :class:`SimulationDiverged` if population ``q``'s state ``S`` [n_vars, n]
        after global step ``t`` holds a non-finite value or one outside the model's declared
        range: the first neuron with an offending variable, and its first such variable
        (what the network kernel and the population kernels report)."""
        model = self.groups[q].model
        names = model.state_names
        ranges = model.declared_ranges()
        bad = ~np.isfinite(S)
        for k, name in enumerate(names):
            if name in ranges:
                lo, hi = ranges[name]
                bad[k] |= (S[k] < lo) | (S[k] > hi)
        if not bad.any():
            return
        neuron = int(np.nonzero(bad.any(axis=0))[0][0])
        k = int(np.nonzero(bad[:, neuron])[0][0])
        value = float(S[k, neuron])
        raise SimulationDiverged.at(
            f"{self.groups[q].name} ({type(model).__name__})", variable=names[k],
            neuron=neuron, step=t, dt=self.dt, method=self._steps[q].integrator.name,
            value=value, bounds=ranges.get(names[k]) if math.isfinite(value) else None)

    def _check_finite(self, run0: int, T: int) -> None:
        for q, (S, _) in self._states.items():
            bad = ~np.isfinite(S)
            if bad.any():
                var_k, neuron = (int(a[0]) for a in np.nonzero(bad))
                g = self.groups[q]
                name = g.model.state_names[var_k]
                raise SimulationDiverged(
                    f"{g.name}: state variable {name!r} of neuron {neuron} became non-finite "
                    f"during the run of steps {run0}..{run0 + T - 1}; try a smaller dt or "
                    f"another method", step=run0 + T - 1, time=(run0 + T) * self.dt,
                    neuron=neuron, variable=name, value=float(S[var_k, neuron]))

    # -- the reference path (torch) ------------------------------------------------------
    def _run_reference(self, run0: int, T: int, bar) -> None:
        """The torch path: each population stepped by :meth:`Step.with_events`, the spikes
        scattered through the projections into ring slots (tensors replaced, never written
        in place, so that autograd follows them in a differentiable run)."""
        from .engine import _network as NW

        dtype, dt = self.dtype, self.dt
        grad = self._differentiable()
        tsec = self._step_times(run0, T)
        inputs, probs, steps = {}, {}, {}
        for q, g in enumerate(self.groups):
            if isinstance(g, Population):
                inputs[q] = g._input(tsec, dtype)
                # a fresh step per differentiable run: its propagators carry this run's graph
                steps[q] = (discretise(g.model, dt, g.method, g.surrogate, precise=False)
                            if grad else self._steps[q])
            elif isinstance(g, PoissonInput):
                probs[q] = (g._counts_data(tsec, dt) if g.multiple
                            else g._prob(tsec, dt, _np_dtype(dtype)))
        if not hasattr(self, "_ref_syn"):  # synapses grouped by delay: (d, pre, post, which)
            self._ref_syn = []
            for pr in self.projections:
                dsteps, pre_idx = pr.delay_steps, pr.i
                groups = []
                for d in np.unique(dsteps):
                    sel = np.nonzero(dsteps == d)[0]
                    groups.append((int(d), torch.from_numpy(pre_idx[sel]),
                                   torch.from_numpy(pr.j[sel].astype(np.int64)),
                                   torch.from_numpy(sel)))
                self._ref_syn.append(groups)
        # this run's weights, gathered per delay (a gather keeps the graph to pr.weight)
        syn = []
        for pr, groups in zip(self.projections, self._ref_syn, strict=True):
            w = pr.weight.to(dtype)
            syn.append([(d, a, b, w[which]) for d, a, b, which in groups])
        # state and ring slots: continued from a differentiable run, else from the arrays
        if self._tstate is not None:
            st, rings = dict(self._tstate), {q: [list(r) for r in rs]
                                              for q, rs in self._tring.items()}
        else:
            st = {}
            for q, (S, R) in self._states.items():
                model = self.groups[q].model
                st[q] = State({k: torch.from_numpy(S[i].copy())
                               for i, k in enumerate(model.state_names)})
                if model.spiking:
                    st[q]["refrac"] = torch.from_numpy(R.copy())
            rings = {q: [[torch.from_numpy(rb[k].copy()) for k in range(rb.shape[0])]
                         for rb in rs] for q, rs in self._rings.items()}
        spk_rec: dict[int, list] = {q: [] for q in range(len(self.groups))}
        counts = {q: np.zeros(T, np.int32) for q in range(len(self.groups))}
        watched = {self._index(m.source) for m in self.monitors
                   if isinstance(m, (SpikeMonitor, RateMonitor))}
        tcount: dict[int, Any] = {q: 0.0 for q in watched}
        tsum: dict[int, list] = {q: [] for q in watched}
        samples: dict[int, list] = {}
        for tt in range(T):
            t = run0 + tt
            for q, g in enumerate(self.groups):
                if isinstance(g, Population):
                    state = st[q]
                    for v, ring in zip(self._targets.get(q, []), rings[q], strict=True):
                        sl = t % len(ring)
                        jump = ring[sl]
                        if g._gated(v):  # discarded while refractory
                            jump = torch.where(state["refrac"] > 0, 0.0, jump)
                        state[v] = state[v] + jump
                        ring[sl] = torch.zeros(g.n, dtype=dtype)
                    if g.model.spiking:
                        spikes, new, _ = steps[q].with_events(state, inputs[q][tt])
                    else:
                        new = steps[q](state, inputs[q][tt])[1]
                        spikes = torch.zeros(g.n, dtype=dtype)
                    st[q] = new
                    self._check_step(q, np.stack([new[k].detach().numpy()
                                                  for k in g.model.state_names]), t)
                    s = spikes.to(dtype) if grad else spikes.detach().to(dtype)
                elif isinstance(g, PoissonInput):
                    uni = NW.poisson_uniform(NW.mixed_seed(g.seed), t, g.n)
                    if g.multiple:
                        lam, ex, k_max = probs[q]
                        cnt = NW.poisson_counts(uni, lam[tt], ex[tt], k_max)
                    else:
                        pr_t = probs[q][tt]
                        cnt = (pr_t > 0) & (uni < pr_t)
                    s = torch.as_tensor(cnt.astype(np.float64), dtype=dtype)
                else:
                    sts, idx = self._times[q]
                    sel = idx[sts == t]
                    s = torch.as_tensor(np.bincount(sel, minlength=g.n), dtype=dtype)
                sd = s.detach()
                nz = torch.nonzero(sd).reshape(-1).numpy()
                reps = sd[nz].to(torch.int64).numpy()
                spk_rec[q].append(np.repeat(nz, reps))
                counts[q][tt] = int(reps.sum())
                if q in tcount and grad:
                    tcount[q] = tcount[q] + s
                    tsum[q].append(s.sum())
                if not nz.size and not s.requires_grad:
                    continue
                for pr, groups in zip(self.projections, syn, strict=True):
                    if self._index(pr.pre) != q:
                        continue
                    p = self._index(pr.post)
                    ring = rings[p][self._targets[p].index(pr.target)]
                    for d, a, b, w in groups:
                        add = torch.zeros(pr._post_root.n, dtype=dtype).index_add(0, b, w * s[a])
                        k = (t + d) % len(ring)
                        ring[k] = ring[k] + add
            for m in self.monitors:
                if isinstance(m, StateMonitor) and (t + 1) % m.every == 0:
                    q = self._index(m.population)
                    idx_t = torch.from_numpy(m.neurons)
                    samples.setdefault(id(m), []).append(
                        {v: st[q][v][idx_t] for v in m.variables})
            if bar is not None:
                bar.update(1)
        # keep the graph for a continuation; write the values into the shared arrays
        self._tstate, self._tring = (st, rings) if grad else (None, None)
        for q, g in enumerate(self.groups):
            if isinstance(g, Population):
                S, R = self._states[q]
                for i, k in enumerate(g.model.state_names):
                    S[i] = st[q][k].detach().numpy()
                if g.model.spiking:
                    R[:] = st[q]["refrac"].detach().numpy()
                for rb, ring in zip(self._rings[q], rings[q], strict=True):
                    for k, slot in enumerate(ring):
                        rb[k] = slot.detach().numpy()
        self._check_finite(run0, T)
        for m in self.monitors:
            if isinstance(m, StateMonitor):
                rows = samples.get(id(m), [])
                m._t.append((self._mon_samples(m, run0, T) + 1) * self.dt)
                for v in m.variables:
                    tv = (torch.stack([r[v] for r in rows]) if rows
                          else torch.zeros((0, m.neurons.size), dtype=dtype))
                    m._tv[v].append(tv if grad else tv.detach())
                    m._v[v].append(tv.detach().numpy().copy())
                continue
            q = self._index(m.source)
            if isinstance(m, SpikeMonitor):
                sts = np.concatenate([np.full(len(a), run0 + k, np.int64)
                                      for k, a in enumerate(spk_rec[q])] or [np.zeros(0)])
                idx = np.concatenate(spk_rec[q] or [np.zeros(0, np.int64)])
                tc = tcount[q] if grad and isinstance(tcount[q], torch.Tensor) else None
                m._add(sts.astype(np.int64), idx.astype(np.int64),
                       None if tc is None else tc.to(torch.float64))
            else:
                m._add(counts[q], torch.stack(tsum[q]).to(torch.float64)
                       if grad and tsum[q] else None)


def _announce(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def cv_isi(monitor: SpikeMonitor, min_spikes: int = 3, t_start: float = 0.0) -> float:
    """Mean coefficient of variation of the interspike intervals over neurons with at
    least ``min_spikes`` spikes (``nan`` if none), counting only spikes after ``t_start``
    seconds (to leave out a transient)."""
    cvs = []
    for train in monitor.spike_trains():
        if t_start > 0:
            train = train[train > t_start]
        if train.size >= min_spikes:
            isi = np.diff(train)
            if isi.mean() > 0:
                cvs.append(isi.std() / isi.mean())
    return float(np.mean(cvs)) if cvs else math.nan


def run_networks(fn: Callable[..., Any], points: Sequence[dict[str, Any]],
                 executor: Any = None, workers: int | None = None,
                 threads: int = 1) -> list[Any]:
    """Run ``fn(**point)`` for every point (seeds, parameters) on a :mod:`neurosim.sweep` executor.

    Each call builds and runs one network and returns what it measured (a small dict of
    numbers is best: results travel back to this process). The network kernel is compiled
    once per worker process and then loaded from the disk cache.

    Args:
        fn: a function of keyword arguments; module-level (picklable) for process or
            Dask workers.
        points: one dict of keyword arguments per network.
        executor: ``None`` (in this process), ``"process"``, ``"dask"`` (a local Dask
            cluster), a scheduler address ``"tcp://host:8786"``, or an executor object
            (``concurrent.futures`` or ``dask.distributed.Client``), as for
            :func:`neurosim.sweep.run_sweep`.
        workers: workers of a pool or local cluster made here.
        threads: threads per worker.

    Returns:
        ``fn``'s results, in the order of ``points``.
    """
    from .sweep._executors import close_executor, make_executor

    points = [dict(pt) for pt in points]
    ex, owned = make_executor(executor, workers, threads)
    try:
        futures = [ex.submit(fn, **pt) for pt in points]
        return [f.result() for f in futures]
    finally:
        if owned:
            close_executor(ex)


__all__ = ["Network", "PoissonInput", "Population", "Projection", "RateMonitor",
           "SpikeMonitor", "SpikeTimesInput", "StateMonitor", "cv_isi", "run_networks"]
