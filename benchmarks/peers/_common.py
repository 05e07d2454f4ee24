"""Helpers shared by the peer scripts (stdlib and numpy only; never imports neurosim).

The peer scripts run under the peers' own Python (a venv with Brian2 / NEST and
numpy < 2.4), so this module must stay importable there: no torch, no neurosim.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
from collections.abc import Sequence

#: the fields every case may carry, with their defaults
DEFAULTS: dict[str, object] = {
    "dt": 1e-4,          # s
    "duration": 1.0,     # s (biological)
    "repeats": 1,        # timed runs (median reported); compile/build happens once
    "seed": 0,
    "threads": 1,
}

CASES = ("adex_population", "lif_poisson", "fi_sweep", "cuba", "coba", "brunel")


def parse_case(argv: Sequence[str] | None = None, stdin=None) -> dict:
    """The case description: a JSON object given as the first argument, or on stdin.

    ``argv`` is the argument list without the program name (default ``sys.argv[1:]``);
    an argument ``-`` or no argument at all reads the JSON from ``stdin``. The
    object must have a ``"case"`` field naming one of :data:`CASES`; the fields of
    :data:`DEFAULTS` are filled in. Raises ``ValueError`` with the reason otherwise.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] == "-":
        text = (sys.stdin if stdin is None else stdin).read()
    else:
        text = argv[0]
    try:
        case = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"case is not valid JSON: {err}") from None
    if not isinstance(case, dict):
        raise ValueError(f"case must be a JSON object, got {type(case).__name__}")
    name = case.get("case")
    if name not in CASES:
        raise ValueError(f"case['case'] must be one of {list(CASES)}, got {name!r}")
    out = dict(DEFAULTS)
    out.update(case)
    for key in ("dt", "duration"):
        value = float(out[key])
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"case[{key!r}] must be a positive number, got {out[key]!r}")
        out[key] = value
    for key in ("repeats", "threads"):
        if int(out[key]) < 1:
            raise ValueError(f"case[{key!r}] must be >= 1, got {out[key]!r}")
        out[key] = int(out[key])
    if "n" in out and int(out["n"]) < 1:
        raise ValueError(f"case['n'] must be >= 1, got {out['n']!r}")
    return out


def emit(result: dict) -> None:
    """Print ``result`` as the one JSON line that :func:`peers.run_peer` parses."""
    sys.stdout.write("\nRESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def fail(reason: str) -> None:
    emit({"ok": False, "error": reason})
    raise SystemExit(1)


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process (VmHWM): ``peak_rss_mib``.

    ``children_maxrss_mib`` (the waited-for children's ``ru_maxrss``) is given for
    reference only: a child forked from this process counts this process's memory too.
    """
    out: dict[str, float] = {}
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    out["vmhwm_mib"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    out["children_maxrss_mib"] = children
    out["peak_rss_mib"] = out.get("vmhwm_mib", children)
    return out


def spike_stats(i, t, n: int, duration: float, min_spikes: int = 3) -> dict:
    """Spike count, mean rate (Hz) and mean CV of the ISIs over neurons with
    at least ``min_spikes`` spikes (numpy arrays of indices and times in s)."""
    import numpy as np

    i = np.asarray(i, dtype=np.int64)
    t = np.asarray(t, dtype=np.float64)
    count = int(i.size)
    out = {"spikes": count, "rate_hz": count / (n * duration)}
    if count == 0:
        out["cv_isi"] = None
        out["cv_neurons"] = 0
        return out
    order = np.lexsort((t, i))
    i, t = i[order], t[order]
    isi = np.diff(t)
    same = i[1:] == i[:-1]
    idx = i[1:][same]
    isi = isi[same]
    per = np.bincount(idx, minlength=n)
    s1 = np.bincount(idx, weights=isi, minlength=n)
    s2 = np.bincount(idx, weights=isi * isi, minlength=n)
    ok = per >= max(min_spikes - 1, 2)
    if not ok.any():
        out["cv_isi"] = None
        out["cv_neurons"] = 0
        return out
    mean = s1[ok] / per[ok]
    var = np.maximum(s2[ok] / per[ok] - mean * mean, 0.0)
    cv = np.sqrt(var) / mean
    out["cv_isi"] = float(np.mean(cv))
    out["cv_neurons"] = int(ok.sum())
    return out


def median(xs: Sequence[float]) -> float:
    xs = sorted(xs)
    k = len(xs)
    return xs[k // 2] if k % 2 else 0.5 * (xs[k // 2 - 1] + xs[k // 2])


def scratch_dir(name: str) -> str:
    """A per-user build directory for generated code (outside the repository)."""
    base = os.environ.get("NEUROSIM_PEERS_BUILD",
                          os.path.join(os.path.expanduser("~"), ".cache", "neurosim-peers"))
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=True)
    return path
