r"""The fused fast path: the whole time loop of a hot model in one compiled kernel.

:func:`run` simulates ``T`` steps of an :class:`~neurosim.LI`,
:class:`~neurosim.LIF`, :class:`~neurosim.IF` or :class:`~neurosim.ALIF`
population (with or without synaptic current, current or jump input) under
forward Euler (``method="euler"``) or exact exponential integration with spikes
on the grid (``ExactExponential(precise=False)``) in one call of a numba kernel,
forward and backward. It computes what :func:`neurosim.simulate` computes
through :func:`neurosim.discretise` (the reference path): the same spikes and
the same traces to round-off, and, through a :class:`torch.autograd.Function`,
the same surrogate gradients (Heaviside forward, the surrogate derivative
backward, reset through :math:`(z - \mathrm{sg}(z))(x_\mathrm{reset} - x)` unless
``detach_reset``) with respect to the input, the initial state and every model
parameter (``tau_mem``, ``tau_syn``, ``tau_adapt``, ``v_leak``, ``r``, ``v_th``,
``v_reset``, ``beta_adapt``; ``t_ref`` is not differentiable, as in the core).

Per step of length :math:`\Delta t` (seconds), for each element:

1. jump input: :math:`i \mathrel{+}= u` (or :math:`v \mathrel{+}= u` without synapse);
2. while refractory, for :math:`h_r = \min(t_\mathrm{ref}\ \mathrm{left}, \Delta t)`:
   *v* held, *i*, *b* advanced (Euler only);
3. the free segment :math:`h = \Delta t - h_r`: Euler :math:`x \leftarrow x + h f(x, u)`,
   or exact :math:`x \leftarrow e^{A\Delta t}x + \Psi(c + g u)`;
4. spike :math:`z = H(v - v_\mathrm{th} - \beta b)` if :math:`h > 0`; reset,
   :math:`b \mathrel{+}= 1`, refractory time :math:`\leftarrow t_\mathrm{ref}`.

:func:`supports` says whether a configuration can run here; everything else
(precise spike times, adaptive or RK4 integration, other models, custom
surrogate callables, CUDA tensors, exact integration with ``t_ref > 0``) stays
on the reference path. The kernels need the optional dependency ``numba``
(``pip install "neurosim[fast]"``); without it :func:`supports` is ``False``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch

from .._checks import check_dt
from .._memory import _pool  # noqa: F401  (the pool, for tests)
from .._memory import buffer as _buffer
from ..integrators import Euler, ExactExponential, Integrator, get_integrator
from ..models.base import NeuronModel
from ..models.integrate_and_fire import ALIF, IF, LI, LIF
from ..state import State
from ..surrogate import (
    ATan,
    Exponential,
    Gaussian,
    Sigmoid,
    StraightThrough,
    SuperSpike,
    Surrogate,
    SurrogateLike,
    Triangle,
    get_surrogate,
)

try:  # numba is optional: without it everything runs on the reference path
    from . import _kernels as K
except ImportError:  # pragma: no cover - exercised only without numba
    K = None

_MODELS = (LI, LIF, IF, ALIF)


class FusedOutput(NamedTuple):
    """What :func:`run` returns.

    Attributes:
        spikes: spike output ``[T, *shape]`` (0/1, input dtype), or ``None`` for ``LI``.
        traces: the recorded state variables by name, each ``[T, *shape]``: the
            state at the end of each step, after any reset.
        final_state: the state after the last step.
    """

    spikes: torch.Tensor | None
    traces: dict[str, torch.Tensor]
    final_state: State


def _surrogate_code(s: Surrogate) -> tuple[int, float, float] | None:
    """(kernel code, scale a, width w) of a built-in surrogate, or None for a custom one."""
    if K is None:
        return None
    if type(s) is SuperSpike:
        return K.SUPERSPIKE, s.alpha, 1.0
    if type(s) is ATan:
        return K.ATAN, s.alpha, 1.0
    if type(s) is Sigmoid:
        return K.SIGMOID, s.alpha, 1.0
    if type(s) is Triangle:
        return K.TRIANGLE, s.gamma, s.width
    if type(s) is Exponential:
        return K.EXPONENTIAL, 1.0, s.width
    if type(s) is Gaussian:
        return K.GAUSSIAN, 1.0, s.sigma
    if type(s) is StraightThrough:
        return K.STRAIGHT, 1.0, 1.0
    return None


def _any_positive(value) -> bool:
    if isinstance(value, torch.Tensor):
        return bool((value.detach() > 0).any())
    return float(value) > 0


def why_not(
    model: NeuronModel,
    method: str | Integrator = "euler",
    *,
    precise: bool | None = None,
    surrogate: SurrogateLike = "superspike",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> str | None:
    """The reason the fused path cannot run this configuration, or ``None`` if it can."""
    if K is None:
        return "numba is not installed (pip install 'neurosim[fast]')"
    if type(model) not in _MODELS:
        return f"no fused kernel for {type(model).__name__} (only LI, LIF, IF, ALIF)"
    try:
        integrator = get_integrator(method, precise=precise)
    except ValueError as err:
        return str(err)
    if type(integrator) is ExactExponential:
        if integrator.precise:
            return "precise spike times (ExactExponential(precise=True)) need the reference path"
        if model.spiking and _any_positive(model.t_ref):
            return "exact integration with t_ref > 0 (partial refractory steps) is not fused"
    elif type(integrator) is not Euler:
        return f"no fused kernel for method {integrator!r} (only euler and exact on the grid)"
    try:
        code = _surrogate_code(get_surrogate(surrogate))
    except ValueError as err:
        return str(err)
    if code is None:
        return "custom surrogate callables need the reference path"
    dtype = dtype or torch.get_default_dtype()
    if dtype not in (torch.float32, torch.float64):
        return f"dtype {dtype} (only float32 and float64)"
    if device is not None and torch.device(device).type != "cpu":
        return f"device {device}: the fused kernels run on the CPU only"
    for name, value in model.params().items():
        if isinstance(value, torch.Tensor) and value.device.type != "cpu":
            return f"parameter {name} lives on {value.device}: the fused kernels run on the CPU"
    return None


def supports(model: NeuronModel, method: str | Integrator = "euler", **options) -> bool:
    """Whether :func:`run` can simulate ``model`` with ``method`` (else use the reference path).

    ``options`` are those of :func:`why_not` (``precise``, ``surrogate``, and the
    input's ``dtype`` and ``device``, default: the default dtype on the CPU),
    which also says why not.
    """
    return why_not(model, method, **options) is None


# -- coefficients ------------------------------------------------------------------------
def _row(value, shape: torch.Size, dtype: torch.dtype) -> torch.Tensor:
    t = value if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=dtype)
    return t.to(dtype).expand(shape).reshape(-1)


def _params_need_grad(model: NeuronModel) -> bool:
    return any(isinstance(v, torch.Tensor) and v.requires_grad for v in model.params().values())


#: coefficient rows of models whose parameters are all numbers, by (model, method, dt,
#: dtype, columns): a layer with fixed time constants computes its propagator once
_P_CACHE: dict[tuple, torch.Tensor] = {}
_P_CACHE_SIZE = 64


def _coefficients(model: NeuronModel, integrator: Integrator, dt: float, shape: torch.Size,
                  dtype: torch.dtype, compact: bool = False) -> torch.Tensor:
    """The per-element coefficient rows ``P`` ([N_COEF, M]) the kernels read, differentiably.

    With ``compact`` and parameters that are the same for every element, ``P`` has
    only ``min(M, BLOCK)`` columns (the kernels then read column ``m - lo`` of each
    block): at a million neurons the full rows would cost more memory traffic than
    a hundred steps of the simulation. Only where no coefficient needs a gradient.
    Compact rows of numeric (non-tensor) parameters are cached.
    """
    params = model.params()
    key = None
    if compact and not any(isinstance(v, torch.Tensor) for v in params.values()):
        key = (type(model), tuple(params.items()), type(integrator), float(dt), dtype,
               min(shape.numel(), K.BLOCK))
        hit = _P_CACHE.get(key)
        if hit is not None:
            return hit
    P = _coefficient_rows(model, integrator, dt, shape, dtype, compact)
    if key is not None:
        if len(_P_CACHE) >= _P_CACHE_SIZE:
            del _P_CACHE[next(iter(_P_CACHE))]
        _P_CACHE[key] = P
    return P


def _coefficient_rows(model: NeuronModel, integrator: Integrator, dt: float, shape: torch.Size,
                      dtype: torch.dtype, compact: bool) -> torch.Tensor:
    """:func:`_coefficients`, computed."""
    model = model.cast(dtype)
    p = model.params()
    zero = torch.zeros((), dtype=dtype)
    rows = [zero] * K.N_COEF
    if model.spiking:
        rows[K.V_TH] = p["v_th"]
        rows[K.V_RESET] = p["v_reset"]
        t_ref = p["t_ref"]
        rows[K.T_REF] = t_ref.detach() if isinstance(t_ref, torch.Tensor) else t_ref
    if isinstance(model, ALIF):
        rows[K.BETA] = p["beta_adapt"]
    if isinstance(integrator, ExactExponential):
        flow = integrator.prepare(model, dt, dtype, torch.device("cpu"))
        E = flow.E_dt[False]
        n = len(model.state_names)
        idx = {name: k for k, name in enumerate(model.state_names)}
        rows[K.E_VC], rows[K.E_VU], rows[K.E_VV] = E[..., 0, n], E[..., 0, n + 1], E[..., 0, 0]
        if "i" in idx:
            k = idx["i"]
            rows[K.E_VI] = E[..., 0, k]
            rows[K.E_IC], rows[K.E_IU], rows[K.E_II] = E[..., k, n], E[..., k, n + 1], E[..., k, k]
        if "b" in idx:
            k = idx["b"]
            rows[K.E_BB] = E[..., k, k]
    else:
        rows[K.V_LEAK] = p.get("v_leak", 0.0)
        rows[K.R] = p["r"]
        rows[K.TAU_MEM] = p["tau_mem"]
        if model.tau_syn is not None:
            rows[K.TAU_SYN] = p["tau_syn"]
        if isinstance(model, ALIF):
            rows[K.TAU_ADAPT] = p["tau_adapt"]
    if compact and all(not isinstance(r, torch.Tensor) or r.numel() == 1 for r in rows):
        cols = min(shape.numel(), K.BLOCK)
        one = [r.reshape(()) if isinstance(r, torch.Tensor) else r for r in rows]
        return torch.stack([_row(r, torch.Size([1]), dtype) for r in one]).expand(
            K.N_COEF, cols).contiguous()
    return torch.stack([_row(r, shape, dtype) for r in rows])


# -- the autograd Function -------------------------------------------------------------
def _np(t: torch.Tensor):
    return t.detach().numpy()


#: below this many neuron-steps a kernel runs on the calling thread only: waking the
#: worker threads costs more than it saves (milliseconds on a busy machine)
SERIAL_WORK = 2_000_000


def _launch(kernel, work: int, *args):
    """Call a parallel numba kernel, on one thread when ``work`` is small."""
    if work >= SERIAL_WORK:
        return kernel(*args)
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(previous)


def _empty(dtype: torch.dtype, dim: int = 2) -> torch.Tensor:
    return torch.empty((0,) * dim, dtype=dtype)


def _hot(cfg) -> bool:
    """Whether the vectorised kernels apply: LI, or spiking without adaptation or
    refractoriness (recording every state variable or none)."""
    if cfg[K.ADAPT] or cfg[K.REFRAC] or cfg[K.REC_R] or cfg[K.REC_B]:
        return False
    if not cfg[K.SPIKING]:
        return bool(cfg[K.REC_V]) and cfg[K.REC_I] == cfg[K.SYN]  # LI: v is its output
    return cfg[K.REC_I] == (cfg[K.REC_V] and cfg[K.SYN])


class _FusedLoop(torch.autograd.Function):
    """Inputs: P [N_COEF, M], u [T, M], x0 (v, i, b, refrac) [M]; outputs below."""

    @staticmethod
    def forward(ctx, P, u, x0v, x0i, x0b, x0r, cfg, dt, surr, save,  # type: ignore[override]
                spike_dtype):
        T, M = u.shape
        dtype = u.dtype
        spiking, syn, adapt = bool(cfg[K.SPIKING]), bool(cfg[K.SYN]), bool(cfg[K.ADAPT])
        xs = [x0v.detach().clone(), x0i.detach().clone(), x0b.detach().clone(),
              x0r.detach().clone()]
        spikes = _buffer((T, M), spike_dtype) if spiking else _empty(dtype)
        rec = (cfg[K.REC_V], cfg[K.REC_I], cfg[K.REC_B], cfg[K.REC_R])
        hist = [_buffer((T, M), dtype) if r else _empty(dtype) for r in rec]
        # the per-step "any element spiked" record of the kernels is not needed: the
        # reset's surrogate path is present in every step for every element (as in Step)
        anyc = np.zeros((0, 0), dtype=np.int8)
        scalar = u.detach().numpy().dtype.type
        if _hot(cfg):
            bad = _launch(K.forward_hot, T * M, cfg, _np(P), _np(u), scalar(dt), _np(xs[0]),
                          _np(xs[1]), _np(spikes), _np(hist[0]), _np(hist[1]), anyc)
        else:
            bad = _launch(K.forward, T * M, cfg, _np(P), _np(u), scalar(dt),
                          *(_np(x) for x in xs), _np(spikes), *(_np(h) for h in hist), anyc)
        if bad:
            raise ValueError(f"input must be finite, got {bad} non-finite values in a tensor "
                             f"of shape {tuple(u.shape)}")
        ctx.anyc = np.full(T, 1 if spiking else 0, dtype=np.int8)
        ctx.cfg, ctx.dt, ctx.surr = cfg, dt, surr
        ctx.set_materialize_grads(False)  # unused outputs: None, not a zero tensor
        if save:
            ctx.save_for_backward(P, u, x0v, x0i, x0b, x0r, *hist)
        ctx.mark_non_differentiable(hist[3], xs[3])
        if not spiking:
            ctx.mark_non_differentiable(spikes)
        for k, present in enumerate((True, syn, adapt)):
            if not present:
                ctx.mark_non_differentiable(hist[k], xs[k])
        return (spikes, *hist, *xs)

    @staticmethod
    def backward(ctx, gspk, ghv, ghi, ghb, ghr, gxv, gxi, gxb, gxr):  # type: ignore[override]
        P, u, x0v, x0i, x0b, x0r, hv, hi, hb, hr = ctx.saved_tensors
        cfg = ctx.cfg.copy()
        T, M = u.shape
        dtype = u.dtype
        cfg[K.NEED_GU] = int(ctx.needs_input_grad[1])
        cfg[K.NEED_GP] = int(ctx.needs_input_grad[0])

        def grad2(g):
            return _empty(dtype) if g is None else g.contiguous()

        def carry(g, present):
            if not present:
                return _empty(dtype, 1)
            return torch.zeros(M, dtype=dtype) if g is None else g.detach().clone()

        gx = [carry(gxv, True), carry(gxi, cfg[K.SYN]), carry(gxb, cfg[K.ADAPT])]
        gu = _buffer((T, M), dtype) if cfg[K.NEED_GU] else _empty(dtype)
        code, sa, sw = ctx.surr
        cfg[K.SURR] = code
        if cfg[K.SPIKING]:  # the vectorised kernel where the forward pass kept the tape
            hot, gs = bool(cfg[K.TAPE]), gspk
        else:  # LI: v is the output, its gradient drives the rest
            hot, gs = _hot(cfg) and not cfg[K.NEED_GP] and ghi is None, ghv
        # the coefficient gradients, summed over time per element; the vectorised
        # SuperSpike kernel leaves them alone where no coefficient needs a gradient
        sums = cfg[K.NEED_GP] or not hot or (cfg[K.SPIKING] and code != K.SUPERSPIKE)
        gP = torch.zeros((K.N_COEF, M if sums else 0), dtype=torch.float64)
        scalar = u.detach().numpy().dtype.type
        if hot:
            gu_all = gu if gu.numel() else _buffer((T, M), dtype)
            gi = gx[1] if gx[1].numel() else x0i.detach()
            gs = torch.zeros((T, M), dtype=dtype) if gs is None else gs.contiguous()
            _launch(K.backward_hot, T * M, cfg, _np(P), _np(u), scalar(ctx.dt), float(sa),
                    float(sw), _np(x0v), _np(x0i), _np(hv), _np(hi), ctx.anyc, _np(gs),
                    _np(gx[0]), _np(gi), _np(gu_all), _np(gP))
        else:
            if P.shape[1] < M:  # compact rows (see _coefficients): the generic kernel needs all
                P = P[:, :1].expand(K.N_COEF, M).contiguous()
            _launch(K.backward, T * M, cfg, _np(P), _np(u), scalar(ctx.dt), float(sa), float(sw),
                       _np(x0v), _np(x0i), _np(x0b), _np(x0r), _np(hv), _np(hi), _np(hb),
                       _np(hr), ctx.anyc, _np(grad2(gspk)), _np(grad2(ghv)), _np(grad2(ghi)),
                       _np(grad2(ghb)), *(_np(g) for g in gx), _np(gu), _np(gP))
        out_gP = gP.to(dtype) if cfg[K.NEED_GP] else None
        out_gx = [g if g.numel() else None for g in gx]
        return (out_gP, gu if cfg[K.NEED_GU] else None, *out_gx, None, None, None, None, None,
                None)


# -- the entry point -------------------------------------------------------------------
def run(
    model: NeuronModel,
    input: torch.Tensor,
    dt: float,
    method: str | Integrator = "euler",
    *,
    record: Iterable[str] | str | None = None,
    surrogate: SurrogateLike = "superspike",
    state: State | None = None,
    precise: bool | None = None,
    detach_reset: bool = False,
    spike_dtype: torch.dtype | None = None,
) -> FusedOutput:
    """Simulate ``T = input.shape[0]`` steps of ``model`` in one fused kernel call.

    The same computation as :func:`neurosim.simulate` with ``method="euler"`` or
    ``ExactExponential(precise=False)`` (see the module docstring for the
    equations), differentiable with respect to ``input``, ``state`` and the
    model's tensor parameters.

    Args:
        model: an ``LI``, ``LIF``, ``IF`` or ``ALIF`` (float or tensor parameters).
        input: ``[T, *shape]`` float32/float64 CPU tensor: currents held over
            each step, or jumps, per ``model.input_mode``; broadcast against the
            parameter shape.
        dt: step in seconds, > 0.
        method: ``"euler"``, ``"exact"`` with ``precise=False``, or an integrator.
        record: state variables to return as traces (``None``: none, and no trace
            buffer is allocated unless gradients need the state history).
        surrogate: a built-in surrogate (name or instance).
        state: initial state (default: the model at rest).
        precise: for ``"exact"``: must be ``False`` here.
        detach_reset: cut the surrogate gradient through the reset.
        spike_dtype: dtype of the spike output (default: the input's). ``torch.uint8``
            stores the 0/1 raster in a quarter of the memory and bandwidth; it is
            only accepted where no gradient is needed.

    Returns:
        :class:`FusedOutput` ``(spikes, traces, final_state)``.

    Raises:
        ValueError: if :func:`supports` is ``False`` for this configuration (the
            message says why), or for bad arguments.
    """
    from .._validate import as_input as _as_input
    from .._validate import check_state as _check_state
    from .._validate import element_shape as _element_shape
    from .._validate import record_names as _record_names

    dt = check_dt(dt)
    if not isinstance(model, NeuronModel):
        raise ValueError(f"model must be a neurosim model (LIF, ALIF, ...), got {model!r}")
    u = _as_input(input, check_finite=False)  # the kernel counts non-finite inputs
    reason = why_not(model, method, precise=precise, surrogate=surrogate, dtype=u.dtype,
                     device=u.device)
    if reason is not None:
        raise ValueError(f"the fused path cannot run this: {reason}")
    integrator = get_integrator(method, precise=precise)
    shape = _element_shape(u, model)
    names = _record_names(record, model)
    dtype = u.dtype
    if state is None:
        state = model.initial_state(shape, dtype=dtype)
    else:
        _check_state(state, model, shape)
    T = u.shape[0]
    M = shape.numel()
    u2 = u.expand(T, *shape).reshape(T, M)
    if not u2.is_contiguous():
        u2 = u2.contiguous()
    syn = model.tau_syn is not None
    adapt = isinstance(model, ALIF)
    spiking = model.spiking

    def flat(name, present):
        if not present:
            return _empty(dtype, 1)
        return state[name].to(dtype).reshape(M)

    x0 = [flat("v", True), flat("i", syn), flat("b", adapt), flat("refrac", spiking)]
    refrac = spiking and (_any_positive(model.t_ref) or _any_positive(x0[3]))
    needs_grad = torch.is_grad_enabled() and (
        _params_need_grad(model) or u2.requires_grad or any(x.requires_grad for x in x0))
    P = _coefficients(model, integrator, dt, shape, dtype,
                      compact=not (needs_grad and _params_need_grad(model)))
    code, sa, sw = _surrogate_code(get_surrogate(surrogate))
    cfg = [0] * K.N_CFG
    cfg[K.EXACT] = int(isinstance(integrator, ExactExponential))
    cfg[K.LEAKY] = int(type(model) is not IF)
    cfg[K.SYN], cfg[K.ADAPT], cfg[K.SPIKING] = int(syn), int(adapt), int(spiking)
    cfg[K.JUMP] = int(model.input_mode == "jump")
    cfg[K.RESET] = {"value": K.RESET_VALUE, "subtract": K.RESET_SUBTRACT,
                    "none": K.RESET_NONE}[model.reset] if spiking else K.RESET_NONE
    cfg[K.REFRAC] = int(refrac)
    cfg[K.REC_V] = int(needs_grad or "v" in names)
    cfg[K.REC_I] = int(syn and (needs_grad or "i" in names))
    cfg[K.REC_B] = int(adapt and (needs_grad or "b" in names))
    cfg[K.REC_R] = int(refrac and needs_grad or "refrac" in names)
    # training without recorded traces: the vectorised models keep the membrane before
    # each reset (the tape, see neurosim.fused._kernels) instead of the state after it
    cfg[K.TAPE] = int(needs_grad and spiking and not {"v", "i"} & set(names) and _hot(cfg))
    cfg[K.DETACH] = int(detach_reset)
    cfg_arr = np.asarray(cfg, dtype=np.int64)
    if spike_dtype is None:
        spike_dtype = dtype
    elif spike_dtype not in (dtype, torch.uint8):
        raise ValueError(f"spike_dtype must be None, the input dtype or torch.uint8, "
                         f"got {spike_dtype}")
    elif spike_dtype == torch.uint8 and needs_grad:
        raise ValueError("spike_dtype=torch.uint8 has no gradient: use it under "
                         "torch.no_grad() or with inputs and parameters that need none")
    outs = _FusedLoop.apply(P, u2, *x0, cfg_arr, dt, (code, sa, sw), needs_grad, spike_dtype)
    spikes, hv, hi, hb, hr, xv, xi, xb, xr = outs
    full = (T, *shape)
    hist = {"v": hv, "i": hi, "b": hb, "refrac": hr}
    traces = {n: hist[n].reshape(full) for n in names}
    final = State(v=xv.reshape(shape))
    if syn:
        final["i"] = xi.reshape(shape)
    if adapt:
        final["b"] = xb.reshape(shape)
    if spiking:
        final["refrac"] = xr.reshape(shape)
    return FusedOutput(spikes.reshape(full) if spiking else None, traces, final)


__all__ = ["FusedOutput", "run", "supports", "why_not"]
