"""Large output buffers without page-fault storms: pooled anonymous mappings.

A fresh multi-GB tensor costs one page fault per 4 KiB page on first touch, which on
virtual machines can take longer than the simulation that fills it. Buffers from
64 KiB up are therefore anonymous mappings with ``MADV_HUGEPAGE``, and freed ones are
kept (up to :data:`BUFFER_POOL_BYTES`) and reused by later calls of the same size class
(:func:`size_class`), as torch's CUDA caching allocator does for GPU memory. Used by the
compiled engine (spike events and their sorted form) and the training kernels (traces,
rasters, gradients).
"""

from __future__ import annotations

import math
import mmap
import os
import weakref

import numpy as np
import torch

_HUGE = 1 << 16  # buffers from 64 KiB up are pooled mappings (transparent huge pages)


def _pool_cap() -> int:
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return int(min(4 << 30, max(1 << 30, ram // 4)))


#: freed large output buffers kept for reuse (bytes; 0 turns the pool off): a reused
#: buffer has its pages mapped already, so it costs no page faults (torch's CUDA
#: caching allocator does the same for GPU memory). A quarter of the RAM, 1-4 GiB.
BUFFER_POOL_BYTES = _pool_cap()
_pool: list[mmap.mmap] = []


def size_class(nbytes: int) -> int:
    """``nbytes`` rounded up to one of 8 sizes per power of two (at most 12.5 % more), so
    that buffers of nearly the same size (spike events of similar runs) share mappings."""
    step = max(1 << 12, 1 << max(0, nbytes.bit_length() - 4))
    return -(-nbytes // step) * step


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
    (up to :data:`BUFFER_POOL_BYTES`) and reused by later calls of the same size class.
    """
    nbytes = dtype.itemsize * math.prod(shape)
    if nbytes < _HUGE or not hasattr(mmap, "MADV_HUGEPAGE"):
        return torch.empty(shape, dtype=dtype)
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    mapped = size_class(nbytes)
    for k, mm in enumerate(_pool):
        if len(mm) == mapped:
            del _pool[k]
            break
    else:
        mm = mmap.mmap(-1, mapped, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        mm.madvise(mmap.MADV_HUGEPAGE)
    base = np.frombuffer(mm, dtype=np_dtype, count=math.prod(shape))
    weakref.finalize(base, recycle, mm)
    return torch.from_numpy(base.reshape(shape))


__all__ = ["BUFFER_POOL_BYTES", "buffer"]
