"""Ordering spike events by time in O(events + steps): a counting sort, compiled.

The events are cut into contiguous pieces; each piece's histogram over steps is taken
and its events scattered in a worker thread of its own (the compiled loops release the
GIL). Piece ``p``'s events of step ``t`` go after those of the pieces before it, so the
result is the one of a serial stable sort: by step, and within a step in array order.

Events already in (step, index) order need no reordering: their times are computed
in place order (:func:`by_step` with ``ordered=True``). The engine's worker threads each
produce such a run, over increasing ranges of elements; :func:`merge_runs` interleaves
the runs by step (each run's slice of a step found by binary search and copied whole).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from numba import njit

from ._memory import buffer

_CORES = os.cpu_count() or 1

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


@njit(cache=True, nogil=True)
def _convert(step, index, offset, lo, hi, dt, out_index, out_time):
    """Events lo..hi-1, already in order: index widened, time ``step·dt + offset`` (s);
    returns whether the times are non-decreasing."""
    mono = True
    prev = -np.inf
    for k in range(np.uint64(lo), np.uint64(hi)):
        out_index[k] = index[k]
        tk = step[k] * dt + np.float64(offset[k])
        out_time[k] = tk
        mono &= tk >= prev
        prev = tk
    return mono


@njit(cache=True, nogil=True)
def _copy_segments(step, index, offset, seg, dest, out_step, out_index, out_offset):
    """One run's steps to their places: ``seg[t]..seg[t+1]`` of the run to ``dest[t]``."""
    for t in range(seg.shape[0] - 1):
        # unsigned: no negative-index wraparound, so the copies vectorise
        a = np.uint64(seg[t])
        d = np.uint64(dest[t])
        for k in range(np.uint64(seg[t + 1] - seg[t])):
            out_step[d + k] = step[a + k]
            out_index[d + k] = index[a + k]
            out_offset[d + k] = offset[a + k]


def _map(fn, n: int) -> list:
    """``fn(q)`` for q in 0..n-1, in the engine's worker threads where n > 1."""
    if n == 1:
        return [fn(0)]
    from .engine import _pool

    futures = [_pool(n - 1).submit(fn, q) for q in range(1, n)]
    first = fn(0)
    return [first] + [f.result() for f in futures]


def by_step(step: np.ndarray, index: np.ndarray, offset: np.ndarray, dt: float,
            n_steps: int, threads: int | None = None,
            ordered: bool = False) -> tuple[np.ndarray, np.ndarray, bool]:
    """Stable counting sort of events by step: ``(index int64, time float64 in s, monotonic)``.

    The time of an event is ``step·dt + offset``; ``monotonic`` says whether the times
    came out non-decreasing (false only where precise offsets reorder a step).
    ``threads``: worker threads (default: the cores, one per :data:`PIECE` events).
    ``ordered``: the events are in (step, index) order already (nothing moves).
    """
    step = np.ascontiguousarray(step)
    index = np.ascontiguousarray(index)
    offset = np.ascontiguousarray(offset)
    n = step.size
    # pooled mappings: no page-fault storm for millions of events (see neurosim._memory)
    out_index = buffer((n,), torch.int64).numpy()
    out_time = buffer((n,), torch.float64).numpy()
    if threads is None:
        threads = _CORES
    pieces = max(1, min(int(threads), -(-n // PIECE)))
    bounds = [n * k // pieces for k in range(pieces + 1)]
    if ordered:
        flags = _map(lambda q: _convert(step, index, offset, bounds[q], bounds[q + 1],
                                        float(dt), out_index, out_time), pieces)
        # the pieces' seams
        mono = all(flags) and all(out_time[b - 1] <= out_time[b] for b in bounds[1:-1])
        return out_index, out_time, bool(mono)
    counts = np.zeros((pieces, int(n_steps)), np.int64)
    _map(lambda q: _histogram(step, bounds[q], bounds[q + 1], counts[q]), pieces)
    _starts(counts)
    _map(lambda q: _scatter(step, index, offset, bounds[q], bounds[q + 1], float(dt),
                            counts[q], out_index, out_time), pieces)
    mono = all(_map(lambda q: _monotonic(out_time, bounds[q], bounds[q + 1]), pieces))
    return out_index, out_time, bool(mono)


def merge_runs(runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_steps: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interleave event runs, each in (step, index) order, into one such run.

    ``runs``: ``(step, index, offset)`` arrays with steps in ``0 .. n_steps - 1``;
    within a step the events of earlier runs go first (the engine's threads hold
    increasing ranges of elements, so this is index order). Each run's slice of a
    step is found by binary search and copied whole; the runs are copied in parallel
    in the engine's worker threads.
    """
    nonempty = [r for r in runs if r[0].size]
    if len(nonempty) <= 1:
        return nonempty[0] if nonempty else runs[0]
    runs = nonempty
    n = sum(r[0].size for r in runs)
    out = tuple(buffer((n,), torch.from_numpy(a[:0]).dtype).numpy() for a in runs[0])
    grid = np.arange(int(n_steps) + 1, dtype=runs[0][0].dtype)
    seg = np.stack([np.searchsorted(r[0], grid) for r in runs])  # [runs, steps + 1]
    sizes = np.diff(seg, axis=1)
    # a run's slice of step t goes after every slice of earlier steps and earlier runs
    dest = (np.cumsum(sizes.T.reshape(-1)) - sizes.T.reshape(-1)).reshape(sizes.T.shape).T
    dest = np.ascontiguousarray(dest)
    _map(lambda q: _copy_segments(*runs[q], seg[q], dest[q], *out), len(runs))
    return out


__all__ = ["by_step", "merge_runs"]
