"""Ordering spike events by time in O(events + steps) (a counting sort, compiled)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _by_step(step, index, offset, n_steps, dt, out_index, out_time):
    counts = np.zeros(n_steps + 1, np.int64)
    for k in range(step.size):
        counts[step[k] + 1] += 1
    for t in range(n_steps):
        counts[t + 1] += counts[t]
    for k in range(step.size):
        s = step[k]
        p = counts[s]
        counts[s] = p + 1
        out_index[p] = index[k]
        out_time[p] = s * dt + np.float64(offset[k])
    monotonic = True
    for p in range(1, out_time.size):
        if out_time[p] < out_time[p - 1]:
            monotonic = False
            break
    return monotonic


def by_step(step: np.ndarray, index: np.ndarray, offset: np.ndarray, dt: float,
            n_steps: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Stable counting sort of events by step: ``(index int64, time float64 in s, monotonic)``.

    The time of an event is ``step·dt + offset``; ``monotonic`` says whether the times
    came out non-decreasing (false only where precise offsets reorder a step).
    """
    n = step.size
    out_index = np.empty(n, np.int64)
    out_time = np.empty(n, np.float64)
    mono = _by_step(np.ascontiguousarray(step), np.ascontiguousarray(index),
                    np.ascontiguousarray(offset), int(n_steps), float(dt), out_index, out_time)
    return out_index, out_time, bool(mono)


__all__ = ["by_step"]
