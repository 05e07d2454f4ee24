r"""What a sweep measures, computed for all parameter sets of a chunk at once.

Built-in measures (one value per set, from the precise spike times of the
:class:`~neurosim.Result`; no loop over sets):

============  =====  ==============================================================
name          unit   definition
============  =====  ==============================================================
``rate``      Hz     spike count / duration
``count``     1      number of spikes
``latency``   s      time of the first spike (NaN without spikes)
``isi``       s      mean interspike interval (NaN with fewer than 2 spikes)
``cv``        1      :math:`\mathrm{std}(\mathrm{ISI})/\mathrm{mean}(\mathrm{ISI})`,
                     population std (ddof = 0); NaN with fewer than 3 spikes
``spike_times`` s    all spike times, one row per set, NaN-padded
============  =====  ==============================================================

User measures are functions ``fn(result) -> array`` whose leading dimension is
the number of sets in the chunk (a tensor or array ``[n]`` or ``[n, ...]``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from .. import analysis
from ..result import Result

UNITS = {"rate": "Hz", "count": "1", "latency": "s", "isi": "s", "cv": "1",
         "spike_times": "s"}
BUILTIN = tuple(UNITS)


def builtin_measures(result: Result, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The built-in measures ``names`` for a result of shape ``[n]``.

    Each is computed by :mod:`neurosim.analysis` from the spike events, the same
    functions that :mod:`neurosim.plot` draws.
    """
    ev = analysis.events(result)  # sorted once, shared by every measure
    out: dict[str, np.ndarray] = {}
    if "count" in names:
        out["count"] = analysis.spike_counts(ev).astype(np.float64)
    if "rate" in names:
        out["rate"] = analysis.firing_rate(ev)
    if "latency" in names:
        out["latency"] = analysis.first_spike_latency(ev)
    if "isi" in names:
        out["isi"] = analysis.isi_stats(ev)[0]
    if "cv" in names:
        out["cv"] = analysis.cv_isi(ev)
    if "spike_times" in names:
        out["spike_times"] = analysis.padded_spike_times(ev)
    return out


class UserCodeError(RuntimeError):
    """User code (a measure, an input function) raised a ``BaseException`` such as
    ``SystemExit``; turned into an ordinary failure of its parameter sets."""


@contextmanager
def _sigint_watch() -> Iterator[list[int]]:
    """Count the real SIGINTs (Ctrl-C) delivered while the block runs.

    Yields a one-element list holding the count, or ``[-1]`` where it cannot be told
    (not the main thread: signal handlers can only be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield [-1]
        return
    seen = [0]
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if previous is signal.SIG_IGN:
            return
        seen[0] += 1
        if callable(previous):
            previous(signum, frame)  # Python's default handler raises KeyboardInterrupt
            return
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # pragma: no cover - an embedding that forbids it
        yield [-1]
        return
    try:
        yield seen
    finally:
        signal.signal(signal.SIGINT, previous)


def call_user(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call user code so that nothing it raises escapes the failure isolation of a sweep.

    ``Exception`` passes through unchanged (the chunk is bisected as usual). Any other
    ``BaseException`` (``SystemExit``, ``GeneratorExit``, a ``KeyboardInterrupt`` raised by
    the code itself) becomes a :class:`UserCodeError`, except a ``KeyboardInterrupt``
    caused by a real Ctrl-C (a SIGINT), which stops the sweep.
    """
    with _sigint_watch() as seen:
        try:
            return fn(*args)
        except Exception:
            raise
        except BaseException as err:
            if isinstance(err, KeyboardInterrupt) and seen[0] != 0:
                raise
            raise UserCodeError(f"{what} raised {type(err).__name__}: {err}") from None


def user_measure(name: str, fn: Callable[[Result], Any], result: Result) -> np.ndarray:
    """Evaluate a user measure and check that it has one leading entry per set."""
    n = int(np.prod(tuple(result.shape)))
    value = call_user(f"measure {name!r}", fn, result)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"measure {name!r} returned shape {arr.shape}; expected a leading "
                         f"dimension of {n} (one entry per parameter set)")
    return arr


__all__ = ["BUILTIN", "UNITS", "UserCodeError", "builtin_measures", "call_user",
           "user_measure"]
