"""Large output buffers without page-fault storms: pooled anonymous mappings.

A fresh multi-GB tensor costs one page fault per 4 KiB page on first touch, which on
virtual machines can take longer than the simulation that fills it. Buffers from
1 MiB up are therefore anonymous mappings with ``MADV_HUGEPAGE``, and freed ones are
kept (up to :data:`BUFFER_POOL_BYTES`) and reused by later calls of the same size, as
torch's CUDA caching allocator does for GPU memory. Used by the compiled engine (spike
events) and the training kernels (traces, rasters, gradients).
"""

from __future__ import annotations

import math
import mmap
import weakref

import numpy as np
import torch

_HUGE = 1 << 20  # buffers from 1 MiB up are pooled mappings with transparent huge pages
#: freed large output buffers kept for reuse (bytes; 0 turns the pool off): a reused
#: buffer has its pages mapped already, so it costs no page faults (torch's CUDA
#: caching allocator does the same for GPU memory)
BUFFER_POOL_BYTES = 1 << 31
_pool: list[mmap.mmap] = []


def recycle(mm: mmap.mmap) -> None:
    """Finaliser of a buffer's array: keep its mapping for reuse, within the pool cap."""
    held = sum(len(m) for m in _pool)
    if held + len(mm) <= BUFFER_POOL_BYTES:
        _pool.append(mm)
    # else: dropped; the mapping goes when the array's buffer export is released


def buffer(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised output buffer (every element is written by the kernels).

    A fresh multi-GB tensor costs one page fault per 4 KiB page on first touch,
    which can take longer than the simulation that fills it. Large buffers are
    therefore anonymous mappings with ``MADV_HUGEPAGE``, and freed ones are kept
    (up to :data:`BUFFER_POOL_BYTES`) and reused by later calls of the same size.
    """
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    nbytes = np_dtype.itemsize * math.prod(shape)
    if nbytes < _HUGE or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=dtype)
    for k, mm in enumerate(_pool):
        if len(mm) == nbytes:
            del _pool[k]
            break
    else:
        mm = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        mm.madvise(mmap.MADV_HUGEPAGE)
    base = np.frombuffer(mm, dtype=np_dtype)
    weakref.finalize(base, recycle, mm)
    return torch.from_numpy(base.reshape(shape))


__all__ = ["BUFFER_POOL_BYTES", "buffer"]
