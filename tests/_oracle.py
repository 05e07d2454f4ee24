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
