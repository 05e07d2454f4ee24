"""Ordering spike events by time in O(events + steps): a counting sort, compiled.

The events are cut into contiguous pieces; each piece's histogram over steps is taken
and its events scattered in a worker thread of its own (the compiled loops release the
GIL). Piece ``p``'s events of step ``t`` go after those of the pieces before it, so the
result is the one of a serial stable sort: by step, and within a step in array order.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: events per piece of the parallel sort (fewer: one piece, in the calling thread)
PIECE = 1 << 20


@njit(cache=True, nogil=True)
def _histogram(step, lo, hi, counts):
    for k in range(lo, hi):
        counts[step[k]] += 1


@njit(cache=True, nogil=True)
def _scatter(step, index, offset, lo, hi, dt, start, out_index, out_time):
    """Events lo..hi-1 to their places; ``start[t]``: this piece's first slot of step t."""
    for k in range(lo, hi):
        s = step[k]
        p = start[s]
        start[s] = p + 1
        out_index[p] = index[k]
        out_time[p] = s * dt + np.float64(offset[k])


@njit(cache=True, nogil=True)
def _monotonic(times, lo, hi):
    for p in range(max(lo, 1), hi):
        if times[p] < times[p - 1]:
            return False
    return True


@njit(cache=True, nogil=True)
def _starts(counts):
    """Per piece and step, the first output slot: ``counts`` [pieces, steps] in place."""
    n_pieces, n_steps = counts.shape
    total = 0
    for t in range(n_steps):
        for q in range(n_pieces):
            c = counts[q, t]
            counts[q, t] = total
            total += c


def _map(fn, n: int) -> list:
    """``fn(q)`` for q in 0..n-1, in the engine's worker threads where n > 1."""
    if n == 1:
        return [fn(0)]
    from .engine import _pool

    futures = [_pool(n - 1).submit(fn, q) for q in range(1, n)]
    first = fn(0)
    return [first] + [f.result() for f in futures]


def by_step(step: np.ndarray, index: np.ndarray, offset: np.ndarray, dt: float,
            n_steps: int, threads: int | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Stable counting sort of events by step: ``(index int64, time float64 in s, monotonic)``.

    The time of an event is ``step·dt + offset``; ``monotonic`` says whether the times
    came out non-decreasing (false only where precise offsets reorder a step).
    ``threads``: worker threads (default: the cores, one per :data:`PIECE` events).
    """
    import os

    step = np.ascontiguousarray(step)
    index = np.ascontiguousarray(index)
    offset = np.ascontiguousarray(offset)
    n = step.size
    out_index = np.empty(n, np.int64)
    out_time = np.empty(n, np.float64)
    if threads is None:
        threads = os.cpu_count() or 1
    pieces = max(1, min(int(threads), -(-n // PIECE)))
    bounds = np.linspace(0, n, pieces + 1).astype(np.int64)
    counts = np.zeros((pieces, int(n_steps)), np.int64)
    _map(lambda q: _histogram(step, bounds[q], bounds[q + 1], counts[q]), pieces)
    _starts(counts)
    _map(lambda q: _scatter(step, index, offset, bounds[q], bounds[q + 1], float(dt),
                            counts[q], out_index, out_time), pieces)
    mono = all(_map(lambda q: _monotonic(out_time, bounds[q], bounds[q + 1]), pieces))
    return out_index, out_time, bool(mono)


__all__ = ["by_step"]
