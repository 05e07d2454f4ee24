r"""numba kernels: the whole time loop of the integrate-and-fire family in one call.

One generic forward kernel and one generic backward kernel cover LI, LIF, IF and
ALIF, with or without the synaptic current, in current or jump input mode, under
forward Euler or exact exponential integration with spikes on the grid. The
configuration is passed as loop-invariant integer flags, so only two
specialisations exist per dtype (float32, float64), cached on disk by numba.

The arithmetic repeats, operation by operation and in the state's dtype, what the
reference step (:mod:`neurosim.step` with :mod:`neurosim.integrators`) does, so
spikes are identical and traces agree to round-off. The elements (batch x
neurons, flattened) are processed in blocks; each block runs the whole time loop
with its state in L1 cache, reading the input and writing spikes once per
neuron-step. The generic backward kernel runs the time loop in reverse, recomputing
each step from the saved state at its start; the vectorised one (``LI``, LIF/IF
without adaptation or refractoriness) reads the membrane before each reset, kept by
the forward pass as a tape (see the hot-path section below).

Coefficient rows of ``P`` (per element, state dtype); see :mod:`neurosim.fused`:
rows 0-3 are ``v_th, v_reset, beta_adapt, t_ref``; rows 4-8 are Euler's
``v_leak, r, tau_mem, tau_syn, tau_adapt``; rows 4-11 are the exact propagator's
``E_vc, E_vu, E_vv, E_vi, E_ic, E_iu, E_ii, E_bb``.
"""

from __future__ import annotations

import math

from llvmlite import ir
from numba import njit, prange, uint64
from numba.core import cgutils, types
from numba.extending import intrinsic

# flag indices into the ``cfg`` integer array
EXACT, LEAKY, SYN, ADAPT, SPIKING, JUMP, RESET, REFRAC, REC_V, REC_I, REC_B, REC_R, \
    SURR, DETACH, NEED_GU, NEED_GP, TAPE = range(17)
N_CFG = 17
RESET_VALUE, RESET_SUBTRACT, RESET_NONE = 0, 1, 2
# coefficient rows
V_TH, V_RESET, BETA, T_REF = 0, 1, 2, 3
V_LEAK, R, TAU_MEM, TAU_SYN, TAU_ADAPT = 4, 5, 6, 7, 8
E_VC, E_VU, E_VV, E_VI, E_IC, E_IU, E_II, E_BB = 4, 5, 6, 7, 8, 9, 10, 11
N_COEF = 12
# surrogate codes
SUPERSPIKE, ATAN, SIGMOID, TRIANGLE, EXPONENTIAL, GAUSSIAN, STRAIGHT = range(7)

BLOCK = 512
#: rows (time steps) ahead that the kernels prefetch their streamed [T, M] arrays
PREFETCH = 8


@intrinsic
def _prefetch(typingctx, arr, t, m):
    """Hint the CPU to load the cache line of ``arr[t, m]`` (``llvm.prefetch``, read)."""
    sig = types.void(arr, t, m)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1], args[2]],
                                       wraparound=False)
        i8p = ir.PointerType(ir.IntType(8))
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # rw = 0 (read), locality = 2 (into L2, not L1: more lines in flight than L1's
        # miss buffers allow), cache type = 1 (data)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(2), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, inline="always")
def _prefetch_row(arr, t, lo, top):
    """Prefetch ``arr[t, lo:top]``, one hint per 64-byte cache line, if ``0 <= t < T``.

    Each block of elements walks down the time axis of the row-major [T, M]
    arrays, touching ``BLOCK`` elements per row: too short a run for the hardware
    prefetchers to follow. Hinting the rows :data:`PREFETCH` steps ahead keeps
    enough loads in flight to stream at the memory bandwidth (about 1.5x the
    throughput of the LIF forward kernel at 1e5 neurons on a 2-core AMD EPYC).
    """
    if arr.shape[0] > 0 and 0 <= t < arr.shape[0]:
        step = max(64 // arr.itemsize, 1)
        for m in range(lo, top, step):
            _prefetch(arr, t, m)


@njit(cache=True, inline="always")
def _surrogate(x, code, a, w):
    """The surrogate derivative sigma'(x) (see :mod:`neurosim.surrogate`)."""
    if code == SUPERSPIKE:
        q = a * abs(x) + 1.0
        return 1.0 / (q * q)
    if code == ATAN:
        q = math.pi * a * x / 2.0
        return (a / 2.0) / (1.0 + q * q)
    if code == SIGMOID:
        e = math.exp(-abs(a * x))
        return a * e / ((1.0 + e) * (1.0 + e))
    if code == TRIANGLE:
        return a * max(0.0, 1.0 - abs(x) / w)
    if code == EXPONENTIAL:
        return math.exp(-abs(x) / w) / w
    if code == GAUSSIAN:
        return math.exp(-0.5 * (x / w) ** 2) / (w * math.sqrt(2.0 * math.pi))
    return 1.0


@njit(cache=True, inline="always")
def _euler_free(cfg, P, m, v, i, b, u, h):
    """Forward Euler over ``h`` with v free: the reference ``x + h * f(x, u)``."""
    if cfg[LEAKY]:
        drive = P[V_LEAK, m] - v
    else:
        drive = v - v  # zeros_like(v)
    if cfg[SYN]:
        drive = drive + P[R, m] * i
    elif not cfg[JUMP]:
        drive = drive + P[R, m] * u
    v1 = v + h * (drive / P[TAU_MEM, m])
    i1 = i
    if cfg[SYN]:
        di = -i + u if not cfg[JUMP] else -i
        i1 = i + h * (di / P[TAU_SYN, m])
    b1 = b
    if cfg[ADAPT]:
        b1 = b + h * (-b / P[TAU_ADAPT, m])
    return v1, i1, b1


@njit(cache=True, inline="always")
def _euler_clamped(cfg, P, m, v, i, b, u, h):
    """Forward Euler over ``h`` while refractory: v held (``v + h * 0``), i and b decay."""
    i1 = i
    if cfg[SYN]:
        di = -i + u if not cfg[JUMP] else -i
        i1 = i + h * (di / P[TAU_SYN, m])
    b1 = b
    if cfg[ADAPT]:
        b1 = b + h * (-b / P[TAU_ADAPT, m])
    return v, i1, b1


@njit(cache=True, inline="always")
def _exact_full(cfg, P, m, v, i, b, u):
    """The exact propagator over one full dt, summed in the reference order."""
    v1 = P[E_VC, m] + P[E_VU, m] * u
    v1 = v1 + P[E_VV, m] * v
    i1 = i
    if cfg[SYN]:
        v1 = v1 + P[E_VI, m] * i
        i1 = P[E_IC, m] + P[E_IU, m] * u
        i1 = i1 + P[E_II, m] * i
    b1 = b
    if cfg[ADAPT]:
        b1 = P[E_BB, m] * b
    return v1, i1, b1


@njit(cache=True, inline="always")
def _threshold(cfg, P, m, b):
    if cfg[ADAPT]:
        return P[V_TH, m] + P[BETA, m] * b
    return P[V_TH, m]


@njit(cache=True, inline="always")
def _advance(cfg, P, m, v, i, b, r, u, dt):
    """One step up to the threshold test: jump, refractory segment, free segment.

    Returns the pre-reset state, the refractory time left, the free duration and
    the refractory duration (seconds, state dtype).
    """
    zero = dt - dt
    if cfg[JUMP]:
        if cfg[SYN]:
            i = i + u
        else:
            v = v + u
    left = dt
    hr = zero
    if cfg[REFRAC] and r > zero:
        hr = min(r, dt)
        v, i, b = _euler_clamped(cfg, P, m, v, i, b, u, hr)
        r = max(r - hr, zero)
        left = dt - hr
    if left > zero:
        if cfg[EXACT]:
            v, i, b = _exact_full(cfg, P, m, v, i, b, u)
        else:
            v, i, b = _euler_free(cfg, P, m, v, i, b, u, left)
    return v, i, b, r, left, hr


@njit(cache=True, parallel=True)
def forward(flags, P, u, dt, xv, xi, xb, xr, spikes, hv, hi, hb, hr_, anyc):
    """Run ``T = u.shape[0]`` steps for the ``M = u.shape[1]`` elements.

    The state arrays ``xv, xi, xb, xr`` ([M]) hold the initial state and are
    overwritten with the final state. ``spikes`` ([T, M]) receives the spike
    output of spiking models; ``hv, hi, hb, hr_`` ([T, M] or empty) the state at
    the end of each step, where the matching ``REC_*`` flag is set. ``anyc``
    ([n_blocks, T] or empty) records whether any element of a block spiked at a
    step; the caller passes it empty (no record), since the reset's gradient path
    is present in every step (see ``backward``).
    """
    T, M = u.shape
    cfg = (flags[0], flags[1], flags[2], flags[3], flags[4], flags[5], flags[6], flags[7],
           flags[8], flags[9], flags[10], flags[11], flags[12], flags[13], flags[14])
    zero = dt - dt
    one = dt / dt
    nblk = (M + BLOCK - 1) // BLOCK
    track = anyc.shape[0] > 0
    bad = 0
    compact = P.shape[1] < M
    for blk in prange(nblk):
        lo = blk * BLOCK
        top = min(lo + BLOCK, M)
        po = uint64(lo if compact else 0)  # P holds one block's columns when compact
        for t in range(T):
            _prefetch_row(u, t + PREFETCH, lo, top)
            fired = False
            for m in range(uint64(lo), uint64(top)):
                if not (u[t, m] - u[t, m] == zero):
                    bad += 1
                q = m - po
                v, i, b, r, left, _ = _advance(cfg, P, q, xv[m], xi[m] if cfg[SYN] else zero,
                                               xb[m] if cfg[ADAPT] else zero,
                                               xr[m] if cfg[REFRAC] else zero, u[t, m], dt)
                if cfg[SPIKING]:
                    d = v - _threshold(cfg, P, q, b)
                    crossed = d > zero and left > zero
                    if crossed:
                        fired = True
                        spikes[t, m] = one
                        if cfg[RESET] == RESET_VALUE:
                            v = zero + P[V_RESET, q]
                        elif cfg[RESET] == RESET_SUBTRACT:
                            v = v - (_threshold(cfg, P, q, b) - P[V_RESET, q])
                        if cfg[ADAPT]:
                            b = b + one
                        if cfg[REFRAC]:
                            r = P[T_REF, q]
                    else:
                        spikes[t, m] = zero
                xv[m] = v
                if cfg[SYN]:
                    xi[m] = i
                if cfg[ADAPT]:
                    xb[m] = b
                if cfg[REFRAC]:
                    xr[m] = r
                if cfg[REC_V]:
                    hv[t, m] = v
                if cfg[REC_I]:
                    hi[t, m] = i
                if cfg[REC_B]:
                    hb[t, m] = b
                if cfg[REC_R]:
                    hr_[t, m] = r
            if track and fired:
                anyc[blk, t] = 1
    return bad


@njit(cache=True, parallel=True)
def backward(flags, P, u, dt, sa, sw, x0v, x0i, x0b, x0r, hv, hi, hb, hr_, anyc,
             gspk, gtv, gti, gtb, gxv, gxi, gxb, gu, gP):
    """Surrogate BPTT through :func:`forward`, in reverse time.

    ``x0*`` are the initial state, ``h*`` the saved state at the end of every step
    (all variables of the model); ``anyc`` ([T]) whether the reset's surrogate
    gradient path is present at each step (the caller passes ones for spiking
    models: as in :class:`neurosim.step.Step`, it is present for every element in
    every step, so no element's gradient depends on the rest of the batch).
    ``gspk`` and ``gt*`` are the gradients of the spike output and of the
    recorded traces ([T, M] or empty). ``gx*`` ([M]) hold the gradient of the
    final state on entry and of the initial state on exit.
    ``gu`` ([T, M] or empty) receives the input gradient and ``gP`` ([N_COEF, M],
    float64) the gradients of the coefficients, summed over time. ``sa, sw`` are
    the surrogate's scale parameters.
    """
    T, M = u.shape
    cfg = (flags[0], flags[1], flags[2], flags[3], flags[4], flags[5], flags[6], flags[7],
           flags[8], flags[9], flags[10], flags[11], flags[12], flags[13], flags[14])
    zero = dt - dt
    one = dt / dt
    has_gs = gspk.shape[0] > 0
    has_gtv = gtv.shape[0] > 0
    has_gti = gti.shape[0] > 0
    has_gtb = gtb.shape[0] > 0
    nblk = (M + BLOCK - 1) // BLOCK
    for blk in prange(nblk):
        lo = blk * BLOCK
        top = min(lo + BLOCK, M)
        for t in range(T - 1, -1, -1):
            _prefetch_row(u, t - PREFETCH, lo, top)
            _prefetch_row(hv, t - 1 - PREFETCH, lo, top)
            if has_gs:
                _prefetch_row(gspk, t - PREFETCH, lo, top)
            for m in range(uint64(lo), uint64(top)):
                # -- the state at the start of step t
                if t == 0:
                    v0 = x0v[m]
                    i0 = x0i[m] if cfg[SYN] else zero
                    b0 = x0b[m] if cfg[ADAPT] else zero
                    r0 = x0r[m] if cfg[REFRAC] else zero
                else:
                    v0 = hv[t - 1, m]
                    i0 = hi[t - 1, m] if cfg[SYN] else zero
                    b0 = hb[t - 1, m] if cfg[ADAPT] else zero
                    r0 = hr_[t - 1, m] if cfg[REFRAC] else zero
                ut = u[t, m]
                # -- recompute the forward step, keeping the intermediate states
                vj, ij = v0, i0
                if cfg[JUMP]:
                    if cfg[SYN]:
                        ij = i0 + ut
                    else:
                        vj = v0 + ut
                vc, ic, bc = vj, ij, b0
                left = dt
                hr = zero
                if cfg[REFRAC] and r0 > zero:
                    hr = min(r0, dt)
                    vc, ic, bc = _euler_clamped(cfg, P, m, vj, ij, b0, ut, hr)
                    left = dt - hr
                v1, i1, b1 = vc, ic, bc
                if left > zero:
                    if cfg[EXACT]:
                        v1, i1, b1 = _exact_full(cfg, P, m, vc, ic, bc, ut)
                    else:
                        v1, i1, b1 = _euler_free(cfg, P, m, vc, ic, bc, ut, left)
                # -- gradients arriving at the end of step t
                gv = gxv[m]
                gi = gxi[m] if cfg[SYN] else zero
                gb = gxb[m] if cfg[ADAPT] else zero
                if has_gtv:
                    gv = gv + gtv[t, m]
                if has_gti:
                    gi = gi + gti[t, m]
                if has_gtb:
                    gb = gb + gtb[t, m]
                gu_t = zero
                g_v1, g_i1, g_b1 = gv, gi, gb
                if cfg[SPIKING]:
                    thr = _threshold(cfg, P, m, b1)
                    d = v1 - thr
                    active = left > zero
                    c = d > zero and active
                    gz = gspk[t, m] if has_gs else zero
                    reset_grad = anyc[t] != 0 and not cfg[DETACH]
                    g_thr = zero
                    # reset: where(c, rk, x1) + (z - z.detach()) * (rk - x1)
                    if cfg[RESET] != RESET_NONE:
                        if cfg[RESET] == RESET_VALUE:
                            rk = zero + P[V_RESET, m]
                        else:
                            rk = v1 - (thr - P[V_RESET, m])
                        if c:
                            g_v1 = zero
                            gP[V_RESET, m] += gv
                            if cfg[RESET] == RESET_SUBTRACT:
                                g_v1 = gv
                                g_thr = g_thr - gv
                        if reset_grad:
                            gz = gz + gv * (rk - v1)
                    if cfg[ADAPT] and reset_grad:
                        gz = gz + gb * ((b1 + one) - b1)
                    # spike z = H(d) * active, surrogate derivative backward
                    if active:
                        gd = gz * _surrogate(d, cfg[SURR], sa, sw)
                        g_v1 = g_v1 + gd
                        g_thr = g_thr - gd
                    gP[V_TH, m] += g_thr
                    if cfg[ADAPT]:
                        gP[BETA, m] += g_thr * b1
                        g_b1 = g_b1 + g_thr * P[BETA, m]
                # -- free segment
                g_vc, g_ic, g_bc = g_v1, g_i1, g_b1
                if left > zero:
                    if cfg[EXACT]:
                        g_vc = P[E_VV, m] * g_v1
                        gu_t = gu_t + P[E_VU, m] * g_v1
                        gP[E_VC, m] += g_v1
                        gP[E_VU, m] += g_v1 * ut
                        gP[E_VV, m] += g_v1 * vc
                        if cfg[SYN]:
                            g_ic = P[E_VI, m] * g_v1 + P[E_II, m] * g_i1
                            gu_t = gu_t + P[E_IU, m] * g_i1
                            gP[E_VI, m] += g_v1 * ic
                            gP[E_IC, m] += g_i1
                            gP[E_IU, m] += g_i1 * ut
                            gP[E_II, m] += g_i1 * ic
                        if cfg[ADAPT]:
                            g_bc = P[E_BB, m] * g_b1
                            gP[E_BB, m] += g_b1 * bc
                    else:
                        g_vc, g_ic, g_bc, gu_t = _euler_back(cfg, P, gP, m, vc, ic, bc, ut, left,
                                                            g_v1, g_i1, g_b1, gu_t, True)
                # -- refractory segment
                g_vj, g_ij, g_b0 = g_vc, g_ic, g_bc
                if cfg[REFRAC] and r0 > zero:
                    g_vj, g_ij, g_b0, gu_t = _euler_back(cfg, P, gP, m, vj, ij, b0, ut, hr,
                                                        g_vc, g_ic, g_bc, gu_t, False)
                # -- input jump
                if cfg[JUMP]:
                    if cfg[SYN]:
                        gu_t = gu_t + g_ij
                    else:
                        gu_t = gu_t + g_vj
                if cfg[NEED_GU]:
                    gu[t, m] = gu_t
                gxv[m] = g_vj
                if cfg[SYN]:
                    gxi[m] = g_ij
                if cfg[ADAPT]:
                    gxb[m] = g_b0


@njit(cache=True, inline="always")
def _euler_back(cfg, P, gP, m, v, i, b, u, h, g_v1, g_i1, g_b1, gu, free):
    """Gradients through ``x1 = x + h * f(x, u)`` (v free or, if not ``free``, held)."""
    g_v, g_i, g_b = g_v1, g_i1, g_b1
    if free:
        tau = P[TAU_MEM, m]
        drive = P[V_LEAK, m] - v if cfg[LEAKY] else v - v
        if cfg[SYN]:
            drive = drive + P[R, m] * i
        elif not cfg[JUMP]:
            drive = drive + P[R, m] * u
        g_f = h * g_v1
        g_drive = g_f / tau
        gP[TAU_MEM, m] += -g_f * drive / (tau * tau)
        if cfg[LEAKY]:
            gP[V_LEAK, m] += g_drive
            g_v = g_v - g_drive
        if cfg[SYN]:
            gP[R, m] += g_drive * i
            g_i = g_i + g_drive * P[R, m]
        elif not cfg[JUMP]:
            gP[R, m] += g_drive * u
            gu = gu + g_drive * P[R, m]
    if cfg[SYN]:
        tau = P[TAU_SYN, m]
        di = -i + u if not cfg[JUMP] else -i
        g_f = h * g_i1
        g_di = g_f / tau
        gP[TAU_SYN, m] += -g_f * di / (tau * tau)
        g_i = g_i - g_di
        if not cfg[JUMP]:
            gu = gu + g_di
    if cfg[ADAPT]:
        tau = P[TAU_ADAPT, m]
        g_f = h * g_b1
        gP[TAU_ADAPT, m] += g_f * b / (tau * tau)
        g_b = g_b - g_f / tau
    return g_v, g_i, g_b, gu





# -- the hot path: LI, LIF and IF without adaptation or refractoriness, vectorised -------
# The configuration flags that change the loop body are passed as literal constants
# to the inlined row functions, so LLVM folds them and vectorises the row (SIMD
# over neurons); the remaining options (reset mode, input mode, leak) are
# branch-free selects. The dispatch ladders below look repetitive on purpose: each
# call site must see its flags as literals for the folding to happen. Every literal
# variant costs seconds of compilation (once; numba caches it on disk), so there are
# few: 12 forward, 12 backward.
#
# The tape (``flags[TAPE]``): in training, a spiking model records the membrane
# *before* each reset instead of after it. The surrogate, the reset and the
# propagator's Jacobian depend on the state only through it, so without coefficient
# gradients the backward pass reads two [T, M] arrays (tape, spike gradient) instead
# of four (input, state, synaptic current, spike gradient); the state after a reset
# is recomputed from the tape where coefficient gradients need it.


@njit(cache=True, inline="always")
def _hot_row(EX, SY, SP, RC, P, po, u, t, lo, top, dt, xv, xi, spk, hv, hi_, reset, jump,
             leaky, tape):
    zero = dt - dt
    one = dt / dt
    nf = 0
    nb = 0
    for m in range(uint64(lo), uint64(top)):
        q = m - po  # the column of P
        ut = u[t, m]
        nb += not (ut - ut == zero)
        v = xv[m]
        i = xi[m] if SY else zero
        if SY:
            i = i + (ut if jump else zero)
        else:
            v = v + (ut if jump else zero)
        if EX:
            v1 = P[E_VC, q] + P[E_VU, q] * ut
            v1 = v1 + P[E_VV, q] * v
            if SY:
                v1 = v1 + P[E_VI, q] * i
                i1 = P[E_IC, q] + P[E_IU, q] * ut
                i = i1 + P[E_II, q] * i
            v = v1
        else:
            drive = P[V_LEAK, q] - v if leaky else v - v
            if SY:
                drive = drive + P[R, q] * i
            else:
                drive = drive if jump else drive + P[R, q] * ut
            v1 = v + dt * (drive / P[TAU_MEM, q])
            if SY:
                di = -i if jump else -i + ut
                i = i + dt * (di / P[TAU_SYN, q])
            v = v1
        if SP:
            th = P[V_TH, q]
            c = v - th > zero
            nf += c
            spk[t, m] = one if c else zero
            rk = zero + P[V_RESET, q] if reset == RESET_VALUE else v - (th - P[V_RESET, q])
            v = rk if (c and reset != RESET_NONE) else v
        xv[m] = v
        if SY:
            xi[m] = i
        if RC:
            hv[t, m] = v1 if tape else v
            if SY:
                hi_[t, m] = i
    return nf, nb


@njit(cache=True, parallel=True)
def forward_hot(flags, P, u, dt, xv, xi, spikes, hv, hi_, anyc):
    """:func:`forward` for LI, and for LIF/IF without adaptation or refractoriness.

    With ``flags[REC_V]`` it records every state variable (``hv``, ``hi_``): after
    the reset, or, with ``flags[TAPE]``, ``v`` before the reset (the tape).
    """
    T, M = u.shape
    exact, syn, sp = flags[EXACT] != 0, flags[SYN] != 0, flags[SPIKING] != 0
    rec, tape = flags[REC_V] != 0, flags[TAPE] != 0
    reset, jump, leaky = flags[RESET], flags[JUMP] != 0, flags[LEAKY] != 0
    track = anyc.shape[0] > 0
    nblk = (M + BLOCK - 1) // BLOCK
    bad = 0
    compact = P.shape[1] < M
    for blk in prange(nblk):
        lo = blk * BLOCK
        top = min(lo + BLOCK, M)
        po = uint64(lo if compact else 0)  # P holds one block's columns when compact
        for t in range(T):
            _prefetch_row(u, t + PREFETCH, lo, top)
            if not sp:  # LI: always recorded (v is its output)
                if exact:
                    if syn:
                        nf, nb = _hot_row(True, True, False, True, P, po, u, t, lo, top, dt,
                                          xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
                    else:
                        nf, nb = _hot_row(True, False, False, True, P, po, u, t, lo, top, dt,
                                          xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
                elif syn:
                    nf, nb = _hot_row(False, True, False, True, P, po, u, t, lo, top, dt,
                                      xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
                else:
                    nf, nb = _hot_row(False, False, False, True, P, po, u, t, lo, top, dt,
                                      xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
            elif exact:
                if syn:
                    if rec:
                        nf, nb = _hot_row(True, True, True, True, P, po, u, t, lo, top, dt,
                                          xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
                    else:
                        nf, nb = _hot_row(True, True, True, False, P, po, u, t, lo, top, dt,
                                          xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
                elif rec:
                    nf, nb = _hot_row(True, False, True, True, P, po, u, t, lo, top, dt,
                                      xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
                else:
                    nf, nb = _hot_row(True, False, True, False, P, po, u, t, lo, top, dt,
                                      xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
            elif syn:
                if rec:
                    nf, nb = _hot_row(False, True, True, True, P, po, u, t, lo, top, dt,
                                      xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
                else:
                    nf, nb = _hot_row(False, True, True, False, P, po, u, t, lo, top, dt,
                                      xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
            elif rec:
                nf, nb = _hot_row(False, False, True, True, P, po, u, t, lo, top, dt,
                                  xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
            else:
                nf, nb = _hot_row(False, False, True, False, P, po, u, t, lo, top, dt,
                                  xv, xi, spikes, hv, hi_, reset, jump, leaky, tape)
            bad += nb
            if track and nf > 0:
                anyc[blk, t] = 1
    return bad


@njit(cache=True, inline="always")
def _hot_back_row(EX, SY, SP, SS, GP, P, po, ur, tv, pv, pi, gs, gur, gxv, gxi, gP, lo, top,
                  dt, reset, jump, leaky, reset_grad, first, code, sa, sw):
    """One step of :func:`backward_hot` for the elements ``lo:top``.

    ``tv`` is this step's tape (the membrane before the reset; spiking models);
    with ``GP`` (coefficient gradients), ``ur`` is the input, ``pv`` the previous
    step's tape (the initial ``v`` if ``first``) and ``pi`` the synaptic current
    after the previous step. ``gs`` is the spike gradient (``SP``) or the gradient
    of the recorded ``v`` (``LI``). ``SS``: the SuperSpike surrogate, inlined.
    """
    zero = dt - dt
    for m in range(uint64(lo), uint64(top)):
        q = m - po  # the column of P
        v1 = tv[m] if SP else zero
        ut = vj = ij = drive = zero  # only the coefficient gradients need them
        if GP:
            # the state after the previous step's reset, as the forward pass made it
            ut = ur[m]
            vj = pv[m]
            if SP and not first:
                thp = P[V_TH, q]
                rkp = zero + P[V_RESET, q] if reset == RESET_VALUE else vj - (thp - P[V_RESET, q])
                vj = rkp if (vj - thp > zero and reset != RESET_NONE) else vj
            ij = pi[m] if SY else zero
            if SY:
                ij = ij + (ut if jump else zero)
            else:
                vj = vj + (ut if jump else zero)
            if not EX:
                drive = P[V_LEAK, q] - vj if leaky else vj - vj
                if SY:
                    drive = drive + P[R, q] * ij
                else:
                    drive = drive if jump else drive + P[R, q] * ut
        gv = gxv[m]
        gi = gxi[m] if SY else zero
        if SP:
            th = P[V_TH, q]
            d = v1 - th
            c = d > zero
            # reset: where(c, rk, v1) + (z - sg(z)) (rk - v1)
            rk = zero + P[V_RESET, q] if reset == RESET_VALUE else v1 - (th - P[V_RESET, q])
            resets = c and reset != RESET_NONE
            g_v1 = zero if (resets and reset == RESET_VALUE) else gv
            g_thr = -gv if (resets and reset == RESET_SUBTRACT) else zero
            if GP:
                gP[V_RESET, m] += gv if resets else zero
            gz = gs[m] + (gv * (rk - v1) if (reset_grad and reset != RESET_NONE) else zero)
            if SS:
                qs = sa * abs(d) + 1.0
                gd = gz * (1.0 / (qs * qs))
            else:
                gd = gz * _surrogate(d, code, sa, sw)
            g_v1 = g_v1 + gd
            g_thr = g_thr - gd
            if GP:
                gP[V_TH, m] += g_thr
        else:
            g_v1 = gv + gs[m]
        # free segment over dt
        if EX:
            g_vj = P[E_VV, q] * g_v1
            gu_t = P[E_VU, q] * g_v1
            if GP:
                gP[E_VC, m] += g_v1
                gP[E_VU, m] += g_v1 * ut
                gP[E_VV, m] += g_v1 * vj
            g_ij = gi
            if SY:
                g_ij = P[E_VI, q] * g_v1 + P[E_II, q] * gi
                gu_t = gu_t + P[E_IU, q] * gi
                if GP:
                    gP[E_VI, m] += g_v1 * ij
                    gP[E_IC, m] += gi
                    gP[E_IU, m] += gi * ut
                    gP[E_II, m] += gi * ij
        else:
            tau = P[TAU_MEM, q]
            g_f = dt * g_v1
            g_drive = g_f / tau
            if GP:
                gP[TAU_MEM, m] += -g_f * drive / (tau * tau)
                gP[V_LEAK, m] += g_drive if leaky else zero
            g_vj = g_v1 - g_drive if leaky else g_v1
            g_ij = gi
            gu_t = zero
            if SY:
                if GP:
                    gP[R, m] += g_drive * ij
                g_ij = g_ij + g_drive * P[R, q]
                tau_s = P[TAU_SYN, q]
                g_fi = dt * gi
                g_di = g_fi / tau_s
                if GP:
                    di = -ij if jump else -ij + ut
                    gP[TAU_SYN, m] += -g_fi * di / (tau_s * tau_s)
                g_ij = g_ij - g_di
                gu_t = zero if jump else g_di
            else:
                if GP:
                    gP[R, m] += zero if jump else g_drive * ut
                gu_t = zero if jump else g_drive * P[R, q]
        if SY:
            gu_t = gu_t + (g_ij if jump else zero)
            gxi[m] = g_ij
        else:
            gu_t = gu_t + (g_vj if jump else zero)
        gxv[m] = g_vj
        gur[m] = gu_t


@njit(cache=True, parallel=True)
def backward_hot(flags, P, u, dt, sa, sw, x0v, x0i, hv, hi_, anyc, gs, gxv, gxi, gu, gP):
    """Surrogate BPTT through :func:`forward_hot`, vectorised.

    Spiking models: ``hv`` is the tape (``flags[TAPE]``), ``gs`` the spike
    gradient; ``u``, ``x0*`` and ``hi_`` are read only for the coefficient
    gradients ``gP`` (``flags[NEED_GP]``), also summed with a surrogate other than
    SuperSpike. ``LI``: ``gs`` is the gradient of the recorded ``v``; no
    coefficient gradients. ``gx*`` ([M]) hold the gradient of the final state on
    entry and of the initial state on exit; ``gu`` ([T, M]) receives the input
    gradient. ``P`` may be compact (one block of columns) where ``gP`` is not needed.
    """
    T, M = gs.shape
    exact, syn, sp = flags[EXACT] != 0, flags[SYN] != 0, flags[SPIKING] != 0
    reset, jump, leaky = flags[RESET], flags[JUMP] != 0, flags[LEAKY] != 0
    code, detach = flags[SURR], flags[DETACH] != 0
    fast = flags[NEED_GP] == 0 and code == SUPERSPIKE
    nblk = (M + BLOCK - 1) // BLOCK
    compact = P.shape[1] < M
    for blk in prange(nblk):
        lo = blk * BLOCK
        top = min(lo + BLOCK, M)
        po = uint64(lo if compact else 0)  # P holds one block's columns when compact
        for t in range(T - 1, -1, -1):
            _prefetch_row(gs, t - PREFETCH, lo, top)
            rg = anyc[t] != 0 and not detach
            first = t == 0
            g, gur = gs[t], gu[t]
            if not sp:
                if exact:
                    if syn:
                        _hot_back_row(True, True, False, True, False, P, po, g, g, g, g, g,
                                      gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                      rg, first, code, sa, sw)
                    else:
                        _hot_back_row(True, False, False, True, False, P, po, g, g, g, g, g,
                                      gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                      rg, first, code, sa, sw)
                elif syn:
                    _hot_back_row(False, True, False, True, False, P, po, g, g, g, g, g,
                                  gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                  rg, first, code, sa, sw)
                else:
                    _hot_back_row(False, False, False, True, False, P, po, g, g, g, g, g,
                                  gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                  rg, first, code, sa, sw)
                continue
            _prefetch_row(hv, t - PREFETCH, lo, top)
            tv = hv[t]
            if fast:  # the usual training case: weights trained, not the taus
                if exact:
                    if syn:
                        _hot_back_row(True, True, True, True, False, P, po, tv, tv, tv, tv, g,
                                      gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                      rg, first, code, sa, sw)
                    else:
                        _hot_back_row(True, False, True, True, False, P, po, tv, tv, tv, tv, g,
                                      gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                      rg, first, code, sa, sw)
                elif syn:
                    _hot_back_row(False, True, True, True, False, P, po, tv, tv, tv, tv, g,
                                  gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                  rg, first, code, sa, sw)
                else:
                    _hot_back_row(False, False, True, True, False, P, po, tv, tv, tv, tv, g,
                                  gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                  rg, first, code, sa, sw)
                continue
            ur = u[t]
            pv = x0v if first else hv[t - 1]
            pi = x0i if first or not syn else hi_[t - 1]
            if exact:
                if syn:
                    _hot_back_row(True, True, True, False, True, P, po, ur, tv, pv, pi, g,
                                  gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                  rg, first, code, sa, sw)
                else:
                    _hot_back_row(True, False, True, False, True, P, po, ur, tv, pv, pi, g,
                                  gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                                  rg, first, code, sa, sw)
            elif syn:
                _hot_back_row(False, True, True, False, True, P, po, ur, tv, pv, pi, g,
                              gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                              rg, first, code, sa, sw)
            else:
                _hot_back_row(False, False, True, False, True, P, po, ur, tv, pv, pi, g,
                              gur, gxv, gxi, gP, lo, top, dt, reset, jump, leaky,
                              rg, first, code, sa, sw)


__all__ = ["BLOCK", "N_CFG", "N_COEF", "PREFETCH", "backward", "backward_hot", "forward",
           "forward_hot"]
