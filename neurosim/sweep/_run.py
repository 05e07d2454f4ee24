"""Running a sweep: chunking, executors, streaming, persistence, failure reports."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ._core import Chunk, Sweep, run_chunk
from ._executors import InProcess, close_executor, make_executor, wait_first
from ._store import Store, assemble, missing_ranges

DEFAULT_MEMORY = 512 * 2**20
#: default bound on the estimated size of a sweep's results (``Sweep.result_bytes``)
DEFAULT_RESULT_MEMORY = 4 * 2**30


class SweepWarning(UserWarning):
    """Some parameter sets of a sweep failed (their parameters and errors are listed)."""


def _lost(start: int, stop: int, err: BaseException) -> Chunk:
    msg = (f"chunk lost: {type(err).__name__}: {err} (not saved: a resumed run computes it "
           f"again)")
    chunk = Chunk(start, stop, {}, np.full(stop - start, msg, dtype=object))
    chunk.meta["transient"] = True  # not persisted: a resumed run computes it again
    return chunk


def _stream(executor: Any, sweep: Sweep, tasks: list[tuple[int, int]],
            window: int) -> Iterator[Chunk]:
    """Yield the chunks of ``tasks`` as they finish, keeping at most ``window`` in flight."""
    if not hasattr(executor, "submit"):
        starts, stops = zip(*tasks, strict=True) if tasks else ((), ())
        yield from executor.map(run_chunk, [sweep] * len(tasks), starts, stops)
        return
    todo = iter(tasks)
    pending: dict[Any, tuple[int, int]] = {}
    broken: list[tuple[tuple[int, int], Exception]] = []

    def fill() -> None:
        while len(pending) < window and not broken:
            task = next(todo, None)
            if task is None:
                return
            try:
                pending[executor.submit(run_chunk, sweep, *task)] = task
            except Exception as err:  # a broken pool (a worker was killed), a closed client
                broken.append((task, err))

    fill()
    while pending:
        for fut in wait_first(list(pending)):
            start, stop = pending.pop(fut)
            try:
                yield fut.result()
            except Exception as err:  # the worker died, the task was cancelled...
                yield _lost(start, stop, err)
        fill()
    if broken:  # the executor takes no more work: report the rest as lost, not computed
        task, err = broken[0]
        for start, stop in [task, *todo]:
            yield _lost(start, stop, err)


def balanced_chunk_size(n: int, largest: int, workers: int) -> int:
    """Parameter sets per chunk: at most ``largest`` (the memory budget), at least two chunks
    per worker when there are several, and chunks of equal size (within one set).

    2840 sets on 2 workers with room for 2234 per chunk gave chunks of 2234 and 606, mostly
    serial; now they are 4 chunks of 710.
    """
    n = max(int(n), 1)
    size = max(1, min(n, int(largest)))
    if workers > 1:
        size = min(size, max(1, n // (2 * workers)))
    chunks = -(-n // size)
    return -(-n // chunks)


def _report(sweep: Sweep, chunks: list[Chunk]) -> list[dict[str, Any]]:
    cols = sweep.columns()
    failures = []
    for c in chunks:
        for k in np.flatnonzero(c.failed):
            row = c.start + int(k)
            failures.append({"point": row, **{n: float(v[row]) for n, v in cols.items()},
                             "error": str(c.error[k])})
    return failures


def run_sweep(
    sweep: Sweep,
    *,
    out: str | os.PathLike | None = None,
    executor: Any = None,
    workers: int | None = None,
    threads: int = 1,
    chunk_size: int | None = None,
    max_memory: int = DEFAULT_MEMORY,
    max_in_flight: int | None = None,
    resume: bool = True,
    progress: bool = True,
    max_result_memory: int = DEFAULT_RESULT_MEMORY,
) -> Any:
    """Run ``sweep`` in chunks and return its results as an ``xarray.Dataset``.

    Each chunk of parameter sets is ONE vectorised ``neurosim.simulate`` call
    (the sets along the batch dimension). Chunks are independent tasks; they are
    submitted to ``executor`` and collected as they finish.

    Args:
        sweep: what to run.
        out: output directory. Each chunk is written there as soon as it finishes
            (atomically), and the assembled results go to ``out/results.nc``. If the
            directory holds a matching sweep, only the missing chunks are computed.
            It must be new, empty, or a neurosim sweep folder (one with the
            ``sweep.json`` neurosim writes); any other folder is refused.
        executor: ``None``/``"inprocess"`` (default), ``"process"`` (a spawned process
            pool), ``"dask"`` (a LocalCluster), a scheduler address ``"tcp://host:port"``,
            or any object with ``submit`` (e.g. a ``concurrent.futures`` executor or a
            ``dask.distributed.Client``) or ``map``. Objects passed in are not closed.
        workers, threads: processes and torch threads per process for the
            executors created here.
        chunk_size: parameter sets per chunk (default: as many as fit ``max_memory``).
        max_memory: memory budget of one chunk in bytes (default 512 MiB), from
            ``Sweep.bytes_per_set()``.
        max_in_flight: chunks submitted but not finished at once (default: 1 in
            process, else 2 × workers or 2 × CPU count).
        resume: reuse finished chunks in ``out`` (default); ``False`` discards them.
        progress: show a tqdm bar counting chunks.
        max_result_memory: refuse (``ValueError``) a sweep whose results are estimated
            (``Sweep.result_bytes()``) above this many bytes, before allocating
            anything; default 4 GiB.

    Returns:
        The Dataset (see ``neurosim.sweep.assemble``). ``attrs`` records
        ``chunks_computed`` and ``chunks_loaded``. Failed parameter sets have a
        non-empty ``error`` and NaN measures; a :class:`SweepWarning` lists them.
        Chunks lost with their worker (or with a broken executor) are reported the
        same way, are not saved, and are computed again by a resumed run.
    """
    if not isinstance(sweep, Sweep):
        raise ValueError(f"sweep must be a Sweep, got {sweep!r}")
    if isinstance(max_result_memory, bool) or not isinstance(max_result_memory, int) or \
            max_result_memory < 1:
        raise ValueError(f"max_result_memory must be a number of bytes >= 1, got "
                         f"{max_result_memory!r}")
    need = sweep.result_bytes()
    if need > max_result_memory:
        raise ValueError(f"the results of this sweep ({len(sweep)} parameter sets) need about "
                         f"{need / 2**30:.3g} GiB, above max_result_memory = "
                         f"{max_result_memory / 2**30:.3g} GiB; split the sweep or raise the "
                         f"limit (max_result_memory=..., --max-result-memory)")
    n = len(sweep)
    automatic = chunk_size is None
    if automatic:
        if isinstance(max_memory, bool) or not isinstance(max_memory, int) or max_memory < 1:
            raise ValueError(f"max_memory must be a number of bytes >= 1, got {max_memory!r}")
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    ex, owned = make_executor(executor, workers, threads)
    if automatic:
        parallel = 1 if isinstance(ex, InProcess) else (workers or os.cpu_count() or 1)
        chunk_size = balanced_chunk_size(n, max(1, max_memory // sweep.bytes_per_set()),
                                         parallel)
    store = Store(out, sweep, resume=resume) if out is not None else None
    done = store.load_chunks() if store is not None else []
    tasks = missing_ranges(n, done, chunk_size)
    if max_in_flight is None:
        max_in_flight = 1 if isinstance(ex, InProcess) else 2 * (workers or os.cpu_count() or 1)
    chunks = list(done)
    bar = tqdm(total=len(done) + len(tasks), initial=len(done), unit="chunk", desc="sweep",
               disable=not progress)
    try:
        for chunk in _stream(ex, sweep, tasks, max(1, int(max_in_flight))):
            if store is not None and not chunk.meta.get("transient"):
                store.save_chunk(chunk)
            chunks.append(chunk)
            bar.update(1)
    finally:
        bar.close()
        if owned:
            close_executor(ex)
    ds = assemble(sweep, chunks)
    ds.attrs["chunks_computed"] = len(tasks)
    ds.attrs["chunks_loaded"] = len(done)
    failures = _report(sweep, chunks)
    if failures:
        shown = "\n".join(f"  {f}" for f in failures[:10])
        more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
        warnings.warn(f"{len(failures)} of {n} parameter sets failed (see the 'error' "
                      f"variable):\n{shown}{more}", SweepWarning, stacklevel=2)
    if store is not None:
        store.save_dataset(ds)
    return ds


__all__ = ["DEFAULT_RESULT_MEMORY", "SweepWarning", "run_sweep"]
