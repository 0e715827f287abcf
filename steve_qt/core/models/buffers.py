"""Large result arrays whose memory is used again once nobody holds them.

An attention capture writes its (N, 1, M, T, T) float16 weights and scores into fresh arrays:
143 MB for wav2vec 2.0 base at 10 s. Fresh memory costs the kernel's page faults and zeroing on
first touch (about 70 ms for those 143 MB on the 2-core machine of bench/RESULTS.md, 6-8% of the
forward pass), so a capture into memory already touched is measurably faster.

``BufferPool.empty`` hands out arrays backed by anonymous ``mmap`` regions it keeps. When every
array (and every view of one) made from a region is gone, the next request of a size that fits
gets that region again instead of new memory. A region still referenced anywhere -- by a
document, a view, a cache -- is never handed out twice. Contents are not cleared: the caller
overwrites every element.

At most ``max_bytes`` are kept; a request beyond that gets new memory that is not kept. Either
way the memory is anonymous ``mmap`` without numpy's request for transparent huge pages: on the
bench machine, fresh huge pages made a 10 s wav2vec 2.0 capture 1.38-1.45x its bare forward
where 4 KiB pages gave 1.11-1.12x and reused memory 1.07-1.10x. The memory the pool
keeps while nobody uses it is at most the regions of the results that were let go since, and
``clear()`` gives it back. No Qt, no torch.
"""

from __future__ import annotations

import mmap
import sys
import threading
import weakref

import numpy as np

#: what a pool keeps at most (free and lent regions together)
DEFAULT_MAX_BYTES = 512 * 1024**2
#: a free region is used for a request of at least this fraction of its size (no 1 GB region for
#: a 1 MB request: the result would hold all of it)
MIN_FILL = 0.5


_POOLS: "weakref.WeakSet[BufferPool]" = weakref.WeakSet()


def clear_all() -> None:
    """Give back the unused memory of every pool (a memory benchmark does this before it
    reads the RSS, as it returns the freed heap with malloc_trim)."""
    for pool in list(_POOLS):
        pool.clear()


class BufferPool:
    """Reusable memory for large result arrays (see the module docstring)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._regions: list[mmap.mmap] = []
        self._lock = threading.Lock()
        self.reused = 0  # how many requests got a region back (for tests and benches)
        _POOLS.add(self)

    def _unused(self, i: int) -> bool:
        """No array or view uses region ``i``: the only references to it are the pool's list
        and ``getrefcount``'s own argument (callers index, never hold a region in a name)."""
        return sys.getrefcount(self._regions[i]) == 2

    def empty(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised C-contiguous array, from a free region when one fits."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes == 0:
            return np.empty(shape, dtype)
        with self._lock:
            i = self._take(nbytes)
            if i is not None:
                return np.frombuffer(self._regions[i], dtype=dtype,
                                     count=nbytes // dtype.itemsize).reshape(shape)
        # not kept; anonymous memory all the same (numpy's own would ask for huge pages)
        region = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        return np.frombuffer(region, dtype=dtype).reshape(shape)

    def _take(self, nbytes: int) -> int | None:
        sizes = [len(r) for r in self._regions]
        fits = [i for i, size in enumerate(sizes)
                if MIN_FILL * size <= nbytes <= size and self._unused(i)]
        if fits:
            self.reused += 1
            return min(fits, key=sizes.__getitem__)
        # no free region fits: drop free regions, oldest first, until a new one fits the cap
        i = 0
        while i < len(self._regions) and self.kept_bytes() + nbytes > self.max_bytes:
            if self._unused(i):
                self._regions.pop(i).close()
            else:
                i += 1
        if self.kept_bytes() + nbytes > self.max_bytes:
            return None
        self._regions.append(mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS))
        return len(self._regions) - 1

    def kept_bytes(self) -> int:
        return sum(len(r) for r in self._regions)

    def free_bytes(self) -> int:
        """Bytes kept that no array uses."""
        with self._lock:
            return sum(len(self._regions[i]) for i in range(len(self._regions))
                       if self._unused(i))

    def clear(self) -> None:
        """Give back every region no array uses."""
        with self._lock:
            i = 0
            while i < len(self._regions):
                if self._unused(i):
                    self._regions.pop(i).close()
                else:
                    i += 1
