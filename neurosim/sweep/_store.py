"""Results as an ``xarray.Dataset``, and their persistence in an output directory.

Layout of a sweep's output directory::

    sweep.json                      the description (what determines the results)
    chunks/rows-<start>-<stop>.npz  one file per finished chunk, written atomically
    chunks/manifest.jsonl           one line per saved chunk: its file name and SHA-256
    results.nc                      the assembled Dataset (NetCDF3, written by scipy)

Every file is written to a temporary name in the same directory, flushed to
disk and renamed, so a crash leaves either the whole file or none. On resume a chunk
file whose checksum is missing from the manifest or differs from it (changed, truncated)
or that cannot be read is named in a :class:`ChunkFileWarning`, renamed to ``*.bad``
and computed again.

Output-folder rule: ``out`` must be a new or empty folder, or a neurosim sweep folder
(one holding the ``sweep.json`` neurosim writes). Any other folder is refused, with or
without ``resume=False`` (``--fresh``), so a sweep never overwrites or deletes files
it did not write.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._core import Chunk, Sweep
from ._measures import UNITS

RESULTS = "results.nc"
DESCRIPTION = "sweep.json"
MANIFEST = "manifest.jsonl"
FORMAT = "neurosim.sweep/"
_CHUNK = re.compile(r"^rows-(\d+)-(\d+)\.npz$")


class ChunkFileWarning(UserWarning):
    """A chunk file of an output folder is corrupt, truncated or changed; it is recomputed."""


def is_sweep_folder(path: Path) -> bool:
    """Whether ``path`` holds a ``sweep.json`` written by neurosim (a sweep output folder)."""
    try:
        desc = json.loads((path / DESCRIPTION).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(desc, dict) and str(desc.get("format", "")).startswith(FORMAT)


def check_out_dir(path: Path) -> None:
    """Refuse an output path that is a file, or a non-empty folder that is not a sweep's."""
    if not path.exists():
        return
    if not path.is_dir():
        raise ValueError(f"out={str(path)!r} exists and is not a folder")
    # a crash during the first atomic write of sweep.json leaves only its temporary file
    leftovers = [p for p in path.iterdir()
                 if not (p.name.startswith(f".{DESCRIPTION}.") and p.name.endswith(".tmp"))]
    if leftovers and not is_sweep_folder(path):
        raise ValueError(f"out={str(path)!r} is a non-empty folder that is not a neurosim "
                         f"sweep folder (it has no sweep.json written by neurosim); a sweep "
                         f"writes only into a new or empty folder or its own earlier output, "
                         f"so choose another folder")


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through a temporary file in its directory and an atomic rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Store:
    """An output directory for one sweep: its description and finished chunks.

    Args:
        path: the directory (created if needed).
        sweep: the sweep; if the directory already holds a description it must match.
        resume: keep the finished chunks found there (default); ``False`` deletes them.
    """

    def __init__(self, path: str | os.PathLike, sweep: Sweep, resume: bool = True) -> None:
        self.dir = Path(path)
        check_out_dir(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.chunk_dir = self.dir / "chunks"
        self.manifest = self.chunk_dir / MANIFEST
        self.n = len(sweep)
        desc = json.loads(sweep.to_json())
        file = self.dir / DESCRIPTION
        if file.exists():
            old = json.loads(file.read_text())
            if json.dumps(old) != json.dumps(desc) and resume:
                diff = sorted(k for k in set(old) | set(desc) if old.get(k) != desc.get(k))
                raise ValueError(f"out={str(path)!r} holds the results of a different sweep "
                                 f"(differs in {diff}); use another directory, or "
                                 f"resume=False to discard them")
        if not resume:
            for pattern in ("rows-*.npz", "rows-*.npz.bad", MANIFEST):
                for f in self.chunk_dir.glob(pattern):
                    f.unlink()
            (self.dir / RESULTS).unlink(missing_ok=True)
        if not file.exists() or not resume:
            text = json.dumps(desc, indent=2).encode()
            atomic_write(file, lambda fh: fh.write(text))
        self.chunk_dir.mkdir(exist_ok=True)  # after sweep.json: the folder is marked first

    def chunk_path(self, start: int, stop: int) -> Path:
        return self.chunk_dir / f"rows-{start:09d}-{stop:09d}.npz"

    def save_chunk(self, chunk: Chunk) -> None:
        """Persist a finished chunk atomically and record its SHA-256 in the manifest."""
        arrays = {f"m_{k}": v for k, v in chunk.data.items()}
        arrays["error"] = np.asarray([str(e) for e in chunk.error], dtype=str)
        arrays["seconds"] = np.asarray(chunk.seconds)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        payload = buf.getvalue()
        path = self.chunk_path(chunk.start, chunk.stop)
        atomic_write(path, lambda fh: fh.write(payload))
        line = json.dumps({"file": path.name, "sha256": hashlib.sha256(payload).hexdigest(),
                           "bytes": len(payload)}) + "\n"
        with self.manifest.open("a") as fh:  # a torn last line only loses that chunk
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def _checksums(self) -> dict[str, str]:
        out: dict[str, str] = {}
        try:
            text = self.manifest.read_text()
        except OSError:
            return out
        for line in text.splitlines():
            try:
                entry = json.loads(line)
                out[str(entry["file"])] = str(entry["sha256"])
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash: its chunk is recomputed
        return out

    def _read_chunk(self, f: Path, start: int, stop: int, checksum: str | None) -> Chunk:
        """One chunk file, verified; raises ValueError saying what is wrong with it."""
        payload = f.read_bytes()
        if checksum is None:
            raise ValueError("it has no checksum in the manifest")
        if hashlib.sha256(payload).hexdigest() != checksum:
            raise ValueError("its SHA-256 differs from the manifest (changed or truncated "
                             "after it was written)")
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as z:
                data = {k[2:]: z[k] for k in z.files if k.startswith("m_")}
                error = z["error"].astype(object)
                seconds = float(z["seconds"])
        except Exception as err:  # noqa: BLE001 - any failure to parse means unreadable
            raise ValueError(f"it cannot be read ({type(err).__name__}: {err})") from None
        n = stop - start
        if error.shape != (n,) or any(v.shape[:1] != (n,) for v in data.values()):
            raise ValueError(f"its arrays do not have {n} rows")
        return Chunk(start, stop, data, error, seconds)

    def load_chunks(self) -> list[Chunk]:
        """The finished chunks on disk (non-overlapping, within the sweep).

        A file that fails verification is named in a :class:`ChunkFileWarning`, renamed
        to ``*.bad`` and left out, so its rows are computed again.
        """
        found = []
        for f in sorted(self.chunk_dir.glob("rows-*.npz")):
            m = _CHUNK.match(f.name)
            if m is None:
                continue
            start, stop = int(m.group(1)), int(m.group(2))
            if not 0 <= start < stop <= self.n:
                raise ValueError(f"{f} lies outside the sweep's {self.n} parameter sets")
            found.append((start, stop, f))
        sums = self._checksums()
        chunks, covered, bad = [], np.zeros(self.n, dtype=bool), []
        for start, stop, f in found:
            if covered[start:stop].any():
                continue  # overlaps a chunk already loaded (left by another chunk size)
            try:
                chunk = self._read_chunk(f, start, stop, sums.get(f.name))
            except ValueError as err:
                bad.append(f"chunk file {str(f)!r} is discarded and its rows {start}:{stop} "
                           f"are computed again: {err}")
                f.replace(f.with_name(f.name + ".bad"))
                continue
            chunks.append(chunk)
            covered[start:stop] = True
        if bad:  # one warning, however many files
            more = f"\n... and {len(bad) - 10} more" if len(bad) > 10 else ""
            warnings.warn("\n".join(bad[:10]) + more, ChunkFileWarning, stacklevel=3)
        return chunks

    def save_dataset(self, ds: Any) -> Path:
        """Write the assembled results to ``results.nc`` (atomically)."""
        path = self.dir / RESULTS
        payload = ds.to_netcdf(engine="scipy")
        atomic_write(path, lambda fh: fh.write(bytes(payload)))
        return path


def missing_ranges(n: int, chunks: Iterable[Chunk], chunk_size: int) -> list[tuple[int, int]]:
    """Row ranges ``(start, stop)`` of at most ``chunk_size`` rows not covered by ``chunks``."""
    covered = np.zeros(n, dtype=bool)
    for c in chunks:
        covered[c.start:c.stop] = True
    out = []
    edges = np.flatnonzero(np.diff(np.concatenate([[1], covered.astype(np.int8), [1]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        for s in range(int(start), int(stop), chunk_size):
            out.append((s, min(s + chunk_size, int(stop))))
    return out


def _pad_to(x: np.ndarray, width: int) -> np.ndarray:
    if x.shape[1] == width:
        return x
    return np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=np.nan)


def assemble(sweep: Sweep, chunks: Iterable[Chunk]) -> Any:
    """One ``xarray.Dataset`` with a ``point`` dimension (one entry per parameter set).

    Coordinates: ``point`` and every swept parameter. Variables: each measure
    (``spike_times`` over ``(point, spike)``, user measures over ``(point, <name>_dim1, ...)``),
    each recorded trace over ``(point, time)``, and ``error`` (empty where the set
    succeeded). ``attrs["sweep"]`` holds the JSON description.
    """
    import xarray as xr

    chunks = sorted(chunks, key=lambda c: c.start)
    n = len(sweep)
    stops = [c.start for c in chunks[1:]] + [n]
    if (chunks[0].start if chunks else n) != 0 or any(
            c.stop != s for c, s in zip(chunks, stops, strict=True)):
        raise ValueError("chunks do not cover the sweep exactly")
    names = list(sweep.measures) + list(sweep.record)
    # trailing shape of each variable, from any chunk that has it
    trailing: dict[str, tuple[int, ...]] = {}
    for c in chunks:
        for k, v in c.data.items():
            if k == "spike_times":
                trailing[k] = (max(trailing.get(k, (0,))[0], v.shape[1]),)
            else:
                trailing.setdefault(k, v.shape[1:])
    trailing.setdefault("spike_times", (0,))
    for k in sweep.record:
        trailing.setdefault(k, (sweep.n_steps,))
    data_vars: dict[str, Any] = {}
    coords: dict[str, Any] = {"point": np.arange(n, dtype=np.int32)}
    for k, v in sweep.columns().items():
        coords[k] = ("point", v)
    if sweep.record:
        coords["time"] = ("time", (np.arange(sweep.n_steps) + 1) * sweep.dt, {"units": "s"})
    for k in names:
        shape = trailing.get(k, ())
        parts = []
        for c in chunks:
            v = c.data.get(k)
            if v is None:
                v = np.full((c.stop - c.start,) + shape, np.nan)
            elif k == "spike_times":
                v = _pad_to(v, shape[0])
            parts.append(v)
        arr = np.concatenate(parts) if parts else np.zeros((0,) + shape)
        if k == "spike_times":
            dims = ("point", "spike")
        elif k in sweep.record:
            dims = ("point", "time")
        else:
            dims = ("point",) + tuple(f"{k}_dim{i + 1}" for i in range(len(shape)))
        attrs = {}
        if k in UNITS and sweep.measures.get(k, 0) is None:
            attrs["units"] = UNITS[k]
        data_vars[k] = (dims, arr, attrs)
    error = np.concatenate([np.asarray([str(e) for e in c.error], dtype=object)
                            for c in chunks]) if chunks else np.zeros(0, dtype=object)
    data_vars["error"] = ("point", error.astype(str))
    attrs = {"sweep": sweep.to_json(), "model": sweep.model.__name__,
             "failed": int((error != "").sum())}
    if hasattr(sweep.space, "axes"):
        attrs["grid"] = json.dumps(list(sweep.space.names))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def load_results(path: str | os.PathLike) -> Any:
    """Load a sweep's results: ``results.nc`` or the output directory holding it.

    Returns the ``xarray.Dataset``; :func:`sweep_of` rebuilds its :class:`Sweep`.
    """
    import xarray as xr

    path = Path(path)
    if path.is_dir():
        path = path / RESULTS
    if not path.exists():
        raise ValueError(f"path: no sweep results at {str(path)!r}")
    ds = xr.load_dataset(path, engine="scipy")
    if "error" in ds:
        ds["error"] = ds["error"].astype(str)
    return ds


def sweep_of(ds: Any, allow_modules: Sequence[str] | str = ()) -> Sweep:
    """The :class:`Sweep` that produced a results Dataset.

    User functions it names are re-imported only from ``allow_modules`` (a results file
    is data: it never chooses what code runs).
    """
    try:
        desc = json.loads(ds.attrs["sweep"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("the dataset carries no sweep description (attrs['sweep'])") from None
    return Sweep.from_dict(desc, allow_modules)


def to_grid(ds: Any) -> Any:
    """A grid sweep's results with one dimension per grid axis (for heatmaps, f-I curves)."""
    if "grid" not in ds.attrs:
        raise ValueError("to_grid needs the results of a Grid sweep")
    dims = json.loads(ds.attrs["grid"])
    return ds.set_index(point=dims).unstack("point")


__all__ = ["ChunkFileWarning", "Store", "assemble", "atomic_write", "check_out_dir",
           "is_sweep_folder", "load_results", "missing_ranges", "sweep_of", "to_grid"]
