"""Executors: where the chunks of a sweep run.

Anything with ``submit(fn, *args) -> future`` (``concurrent.futures`` executors,
a ``dask.distributed.Client``) or ``map(fn, *iterables)`` works. Shipped:

* :class:`InProcess` — runs each chunk when it is submitted, in this process
  (the default; one vectorised ``simulate`` per chunk uses torch's threads);
* :func:`process_pool` — a ``ProcessPoolExecutor`` whose workers are spawned
  (not forked: forking a process whose OpenMP pool is running can deadlock) and
  set ``torch.set_num_threads(threads)`` so *w* workers × *t* threads fit the cores;
  each worker watches its parent and exits when the parent dies;
* :func:`dask_client` — a ``dask.distributed.Client`` on an embedded
  ``LocalCluster``, or connected to a scheduler address to scale out
  (optional extra ``neurosim[dask]``).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class InProcess:
    """Runs each task in the calling process when submitted; returns a completed future."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as err:  # reported by the caller through the future
            fut.set_exception(err)
        return fut

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> Iterator[Any]:
        return map(fn, *iterables)

    def __repr__(self) -> str:
        return "InProcess()"


_WATCHING: list[bool] = []  # one watcher thread per process, however often it is asked


def _exit_with_parent() -> None:
    """In a worker process: exit as soon as the parent process dies (a killed parent must
    not leave its workers running or blocked on a pipe)."""
    parent = multiprocessing.parent_process()
    if parent is None or _WATCHING:
        return
    _WATCHING.append(True)

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(70)  # the parent is gone: nobody will read the result

    threading.Thread(target=watch, name="neurosim-parent-watch", daemon=True).start()


def _init_worker(threads: int) -> None:
    _exit_with_parent()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _set_threads(threads: int) -> int:
    _init_worker(threads)
    return threads


def process_pool(workers: int | None = None, threads: int = 1) -> cf.ProcessPoolExecutor:
    """A process pool of ``workers`` spawned processes, each using ``threads`` torch threads.

    Args:
        workers: number of processes (default: ``os.cpu_count() // threads``).
        threads: torch intra-op threads per worker (default 1).
    """
    threads = _positive_int("threads", threads)
    if workers is None:
        workers = max(1, (os.cpu_count() or 1) // threads)
    workers = _positive_int("workers", workers)
    return cf.ProcessPoolExecutor(max_workers=workers,
                                  mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_init_worker, initargs=(threads,))


def dask_client(address: str | None = None, workers: int | None = None, threads: int = 1,
                processes: bool = True) -> Any:
    """A ``dask.distributed.Client``: on a new ``LocalCluster``, or at ``address``.

    Args:
        address: scheduler address (``"tcp://host:8786"``) of a running cluster;
            ``None`` starts an embedded ``LocalCluster``.
        workers: LocalCluster workers (default: ``os.cpu_count() // threads``).
        threads: threads per worker; torch is set to this many threads in each worker.
        processes: LocalCluster workers as processes (True) or threads of this process.
    Returns:
        The Client; close it (it is a context manager) to stop an embedded cluster.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("the Dask executor needs the optional extra: "
                          "pip install 'neurosim[dask]'") from None
    threads = _positive_int("threads", threads)
    if address is not None:
        client = Client(address)
    else:
        if workers is None:
            workers = max(1, (os.cpu_count() or 1) // threads)
        workers = _positive_int("workers", workers)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads,
                               processes=processes, dashboard_address=None)
        client = Client(cluster)
        client._neurosim_cluster = cluster  # closed with the client in close_executor
    if processes or address is not None:
        client.run(_set_threads, threads)
    return client


def make_executor(spec: Any = None, workers: int | None = None,
                  threads: int = 1) -> tuple[Any, bool]:
    """Resolve an executor spec; returns ``(executor, owned)`` (owned: close it after).

    ``spec``: ``None`` / ``"inprocess"``, ``"process"``, ``"dask"`` (LocalCluster),
    a scheduler address ``"tcp://..."`` (or ``"dask://host:port"``), or an object with
    ``submit`` or ``map``.
    """
    if spec is None or spec == "inprocess":
        return InProcess(), False
    if isinstance(spec, str):
        if spec == "process":
            return process_pool(workers, threads), True
        if spec == "dask":
            return dask_client(None, workers, threads), True
        if "://" in spec:
            address = "tcp://" + spec.split("://", 1)[1] if spec.startswith("dask://") else spec
            return dask_client(address, workers, threads), True
        raise ValueError(f"executor must be 'inprocess', 'process', 'dask', a scheduler "
                         f"address 'tcp://host:port' or an executor object, got {spec!r}")
    if not (hasattr(spec, "submit") or hasattr(spec, "map")):
        raise ValueError(f"executor must have a submit or map method, got {spec!r}")
    return spec, False


def close_executor(executor: Any) -> None:
    """Shut down an executor made by :func:`make_executor`."""
    if isinstance(executor, cf.Executor):
        executor.shutdown(wait=True, cancel_futures=True)
        return
    cluster = getattr(executor, "_neurosim_cluster", None)
    with contextlib.suppress(Exception):
        executor.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


def wait_first(futures: list[Any]) -> list[Any]:
    """The futures of ``futures`` that are done, blocking until at least one is."""
    if all(isinstance(f, cf.Future) for f in futures):
        done, _ = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return [f for f in futures if f in done]
    try:
        import distributed

        if all(isinstance(f, distributed.Future) for f in futures):
            distributed.wait(futures, return_when="FIRST_COMPLETED")
            return [f for f in futures if f.done()]
    except ImportError:
        pass
    delay = 1e-3
    while True:  # any other future type: poll
        done = [f for f in futures if f.done()]
        if done:
            return done
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


__all__ = ["InProcess", "close_executor", "dask_client", "make_executor", "process_pool",
           "wait_first"]
