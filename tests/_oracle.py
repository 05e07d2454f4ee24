"""An independent reference for the biophysical-model tests: scipy's solve_ivp.

The vector fields here are written out again in plain numpy from the papers'
equations (not taken from neurosim), integrated with DOP853 at rtol 1e-10 with
a terminal event at the spike condition and a reset loop.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

RTOL = 1e-10


def adex_rhs(p: dict, current: float) -> Callable:
    """AdEx (Brette & Gerstner 2005) in mV, pA, nS, pF, s; *v* capped at ``v_peak`` = 0."""

    def rhs(t, y):
        v, w = min(y[0], 0.0), y[1]
        i = (p["g_leak"] * (p["v_leak"] - v)
             + p["g_leak"] * p["delta_t"] * np.exp((v - p["v_t"]) / p["delta_t"]) - w + current)
        return [1e3 * i / p["c_m"], (p["a"] * (v - p["v_leak"]) - w) / p["tau_w"]]

    return rhs


def izhikevich_rhs(a_per_ms: float, b: float, current: float) -> Callable:
    """Izhikevich (2003) as published (ms), rescaled to seconds; *v* capped at 30 mV."""

    def rhs(t, y):
        v, u = min(y[0], 30.0), y[1]
        return [1e3 * (0.04 * v * v + 5.0 * v + 140.0 - u + current),
                1e3 * a_per_ms * (b * v - u)]

    return rhs


def hh_rhs(current: float) -> Callable:
    """Hodgkin-Huxley (1952), mV, mS/cm², µA/cm², C = 1 µF/cm², rates per ms → per s."""

    def rhs(t, y):
        v, m, h, n = y
        am = 0.1 * (v + 40.0) / (1.0 - np.exp(-(v + 40.0) / 10.0))
        bm = 4.0 * np.exp(-(v + 65.0) / 18.0)
        ah = 0.07 * np.exp(-(v + 65.0) / 20.0)
        bh = 1.0 / (1.0 + np.exp(-(v + 35.0) / 10.0))
        an = 0.01 * (v + 55.0) / (1.0 - np.exp(-(v + 55.0) / 10.0))
        bn = 0.125 * np.exp(-(v + 65.0) / 80.0)
        i = current - 120.0 * m**3 * h * (v - 50.0) - 36.0 * n**4 * (v + 77.0) \
            - 0.3 * (v + 54.387)
        return [1e3 * i, 1e3 * (am * (1 - m) - bm * m), 1e3 * (ah * (1 - h) - bh * h),
                1e3 * (an * (1 - n) - bn * n)]

    return rhs


def trajectory(rhs: Callable, y0, t_end: float, rtol: float = 1e-12,
               atol: float = 1e-12) -> np.ndarray:
    """The state at ``t_end`` (no events), for convergence-order measurements."""
    with np.errstate(over="ignore", invalid="ignore"):
        sol = solve_ivp(rhs, (0.0, t_end), np.asarray(y0, dtype=float), method="DOP853",
                        rtol=rtol, atol=atol)
    assert sol.status == 0, sol.message
    return sol.y[:, -1]


def spike_times(rhs: Callable[[float, np.ndarray], np.ndarray], y0, t_end: float,
                distance: Callable[[np.ndarray], float],
                reset: Callable[[np.ndarray], np.ndarray] | None,
                atol: float | np.ndarray = 1e-10, max_step: float = np.inf) -> np.ndarray:
    """Times (s) where ``distance(y)`` crosses 0 upward, on [0, t_end].

    With ``reset`` the integration stops at each crossing, applies it and restarts
    (integrate-and-fire); with ``reset=None`` it runs through (Hodgkin-Huxley).
    """

    def event(t, y):
        return distance(y)

    event.direction = 1.0
    event.terminal = reset is not None
    t0, y = 0.0, np.asarray(y0, dtype=float)
    out: list[float] = []
    while t0 < t_end:
        with np.errstate(over="ignore", invalid="ignore"):  # rejected trial steps only
            sol = solve_ivp(rhs, (t0, t_end), y, method="DOP853", rtol=RTOL, atol=atol,
                            events=event, max_step=max_step)
        assert sol.status >= 0, sol.message
        hits = sol.t_events[0]
        if reset is None:
            out.extend(hits.tolist())
            break
        if hits.size == 0:
            break
        out.append(float(hits[0]))
        t0, y = float(hits[0]), reset(sol.y_events[0][0])
    return np.asarray(out)
