"""The counting sort of spike events (neurosim._sort): the order of a stable sort by step."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim import _sort


def _events(n: int, n_steps: int, seed: int, precise: bool):
    rng = np.random.default_rng(seed)
    step = rng.integers(0, n_steps, n).astype(np.int32)
    index = rng.integers(0, 10_000, n).astype(np.int32)
    offset = (rng.random(n) * 1e-3 if precise else np.full(n, 1e-3)).astype(np.float32)
    return step, index, offset


@pytest.mark.parametrize("pieces", [1, 2, 3, 7])
@pytest.mark.parametrize("precise", [False, True])
def test_pieces_give_the_stable_sort_by_step(monkeypatch, pieces, precise):
    """Any cut into pieces (threads) gives exactly the serial stable sort: by step, and
    within a step in the events' order; times step*dt + offset in float64."""
    monkeypatch.setattr(_sort, "PIECE", 1000)  # several pieces for a small array
    step, index, offset = _events(5000, 37, seed=pieces, precise=precise)
    got_index, got_time, mono = _sort.by_step(step, index, offset, 1e-3, 37, threads=pieces)
    order = np.argsort(step, kind="stable")
    np.testing.assert_array_equal(got_index, index[order].astype(np.int64))
    want = step[order] * 1e-3 + offset[order].astype(np.float64)
    np.testing.assert_array_equal(got_time, want)
    assert mono == bool(np.all(np.diff(want) >= 0))
    assert mono != precise  # grid offsets keep the order; random offsets break it


def test_an_unordered_pair_at_a_piece_boundary_is_seen(monkeypatch):
    monkeypatch.setattr(_sort, "PIECE", 2)
    step = np.array([0, 0, 1, 1], np.int32)
    # output slots 1 (end of the first piece) and 2 (start of the second) out of order
    offset = np.array([1e-4, 1.5e-3, 1e-4, 2e-4], np.float32)
    _, _, mono = _sort.by_step(step, np.arange(4, dtype=np.int32), offset, 1e-3, 2,
                               threads=2)
    assert not mono


def test_no_events():
    index, time, mono = _sort.by_step(np.zeros(0, np.int32), np.zeros(0, np.int32),
                                      np.zeros(0, np.float32), 1e-3, 10)
    assert index.size == time.size == 0 and mono


@pytest.mark.parametrize("sizes", [(0,), (5000,), (2000, 3000), (1000, 0, 2500, 1500)])
@pytest.mark.parametrize("precise", [False, True])
def test_merged_runs_convert_to_the_stable_sort(monkeypatch, sizes, precise):
    """Runs each sorted by step (the engine's worker threads) merge into the stable sort by
    step of their concatenation; converted as ``ordered`` (nothing moves, in any number of
    pieces) they give what the counting sort gives."""
    monkeypatch.setattr(_sort, "PIECE", 700)
    parts = [_events(n, 37, seed=k, precise=precise) for k, n in enumerate(sizes)]
    parts = [tuple(a[np.argsort(p[0], kind="stable")] for a in p) for p in parts]
    step, index, offset = (np.concatenate([p[q] for p in parts]) for q in range(3))
    order = np.argsort(step, kind="stable")
    merged = _sort.merge_runs(parts, 37)
    for got, want in zip(merged, (step, index, offset), strict=True):
        np.testing.assert_array_equal(got, want[order])
        assert got.dtype == want.dtype
    got_index, got_time, mono = _sort.by_step(*merged, 1e-3, 37, ordered=True)
    want_index, want_time, want_mono = _sort.by_step(step, index, offset, 1e-3, 37)
    np.testing.assert_array_equal(got_index, want_index)
    np.testing.assert_array_equal(got_time, want_time)
    assert mono == want_mono == bool(np.all(np.diff(want_time) >= 0))
