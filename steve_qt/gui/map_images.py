"""Display-ready images of the attention map, computed once per (kind, scale, layer, head).

Qt-free (numpy only), so that it is tested without a window. Switching head or layer is the
GUI's most frequent action; what it draws is the (Q, K) image as 256 colour indices, with the
colour levels of ``AttentionView.image``.

- ``to_float32``: float16 -> float32 through a 65,536-entry table, bit for bit what
  ``astype(np.float32)`` gives but 2-5x faster here (numpy's scalar cast is slow on the
  subnormal float16 values that small attention weights are).
- ``to_indices``: a float image as the 256 colour indices the map's ImageItem draws (Indexed8):
  pyqtgraph's own float rescale (``(x - lo) * 256 / (hi - lo)``, clipped, truncated), done once
  per image instead of on every paint.
- ``weights_indices``: the common case (one head's float16 weights, global scale) in one pass:
  the levels come from the largest bit pattern, and each float16 bit pattern maps to its colour
  index through a table (``to_indices`` of every pattern's value), so no float image is made.
- ``compute_image``: (levels, indices) of one layer/head, from the maps alone (safe in another
  thread).
- ``MapImages``: a small LRU of ``(levels, indices)`` per shown (kind, scale, layer, head) of one
  ``AttentionMaps`` object; another maps object (new extraction, utterance, component, window)
  empties it. Cached indices are read-only (the ImageItem shares them). After each image it hands
  out, it computes the two the keys step to next (``]`` next head, PgDn next layer) in one
  background thread (numpy releases the GIL), so that stepping through heads finds them ready.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from ..core.attention.maps import AttentionMaps
from ..core.state.document import Document, display_image

#: float32 value of every float16 bit pattern, indexed by the pattern as uint16: (65536,)
F16_TO_F32 = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16) \
    .astype(np.float32)
CHUNK = 2 ** 16  # elements converted at a time
DEFAULT_BUDGET_BYTES = 64 * 2 ** 20  # 29 images of 1500 x 1500 uint8 indices
F16_FINITE = 0x7C00  # bit patterns below this are the finite non-negative float16 values


def to_float32(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Any float array -> C-contiguous float32 (float16 through the table), into ``out`` (a
    C-contiguous float32 array of the same shape) when given: writing into memory that is
    already mapped saves the page faults of a fresh 9 MB array (~4 ms here)."""
    a = np.asarray(a)
    if out is None:
        out = np.empty(a.shape, np.float32)
    if a.dtype == np.float16:
        bits = np.ascontiguousarray(a).view(np.uint16).reshape(-1)  # (Q * K,)
        flat = out.reshape(-1)
        # in pieces: take() casts the indices to intp first, and 8 bytes per element of a whole
        # map would leave the cache (a piece's 512 KB stays in it): 1.5x faster here
        for i in range(0, bits.size, CHUNK):
            F16_TO_F32.take(bits[i:i + CHUNK], out=flat[i:i + CHUNK], mode="clip")
    else:
        np.copyto(out, a, casting="unsafe")
    return out


def head_float32(maps: AttentionMaps, layer: int, head: int | None, kind: str = "weights",
                 out: np.ndarray | None = None) -> np.ndarray:
    """(Q, K) float32 of one head, or the mean over heads: ``AttentionMaps.head``, faster."""
    if kind in ("weights", "scores"):
        arr = maps.weights if kind == "weights" else maps.scores
        if arr is None:
            raise ValueError("these maps hold no pre-softmax scores")
    else:  # a context-mixing measure; a per-layer one has one map whatever the head
        arr = maps.measures[kind]
        if arr.shape[2] == 1:
            head = 0
    sl = arr[layer, 0]  # (M, Q, K)
    if head is not None:
        return to_float32(sl[head], out)
    total = to_float32(sl[0], out)  # (Q, K), summed head by head as numpy's mean over axis 0
    scratch = np.empty_like(total)
    for h in range(1, sl.shape[0]):
        total += to_float32(sl[h], scratch)
    total /= np.float32(sl.shape[0])
    return total


_POOL: ThreadPoolExecutor | None = None  # one prefetch thread for the process


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="steve-map-prefetch")
    return _POOL


def compute_image(maps: AttentionMaps, kind: str, scale: str, layer: int, head: int | None,
                  out: np.ndarray | None = None) -> tuple[tuple[float, float], np.ndarray]:
    """(levels, read-only (Q, K) uint8 colour indices) of one layer/head: the levels
    ``AttentionView.image`` gives and the indices of its image. ``out``: float32 scratch (Q, K)."""
    if kind == "weights" and scale == "global" and head is not None:
        fast = weights_indices(maps.weights[layer, 0, head])
        if fast is not None:
            return fast
    raw = head_float32(maps, layer, head, kind, out)
    return ready(*display_image(raw, kind, scale, copy=False))


def weights_indices(w: np.ndarray) -> tuple[tuple[float, float], np.ndarray] | None:
    """(Q, K) float16 weights -> (levels (0, max), indices) as ``ready(*display_image(w))``
    gives them on the global scale, or None when ``w`` is not float16 or holds a negative or
    non-finite value (then the float path handles it)."""
    if w.dtype != np.float16:
        return None
    bits = np.ascontiguousarray(w).view(np.uint16)  # (Q, K)
    top = int(bits.max()) if bits.size else 0
    if top >= F16_FINITE:  # a sign bit, an inf or a NaN somewhere
        return None
    # non-negative float16 values order like their bit patterns: the largest pattern is the max
    hi = float(F16_TO_F32[top])
    levels = (0.0, hi if hi > 0.0 else 1e-6)  # as display_image
    table = to_indices(F16_TO_F32[:F16_FINITE], levels)  # colour index of every pattern
    flat_bits, idx = bits.reshape(-1), np.empty(bits.size, np.uint8)
    for i in range(0, bits.size, CHUNK):
        table.take(flat_bits[i:i + CHUNK], out=idx[i:i + CHUNK], mode="clip")
    idx = idx.reshape(bits.shape)
    idx.flags.writeable = False
    return levels, idx


def to_indices(img: np.ndarray, levels: tuple[float, float], n: int = 256) -> np.ndarray:
    """(Q, K) float image -> (Q, K) uint8 indices into an ``n``-entry colour table.

    The same arithmetic as pyqtgraph's ImageItem for a float image with levels and an n-entry
    lookup table (float32 ``(x - lo) * (n / (hi - lo))``, clipped to [0, n - 1], truncated), so
    the ImageItem given these indices and no levels paints the same pixels (tested).
    """
    lo, hi = levels
    rng = hi - lo if hi != lo else 1.0
    work = np.subtract(img, np.float32(lo), dtype=np.float32)
    work *= np.float32(n / rng)
    np.clip(work, 0, n - 1, out=work)
    idx = work.astype(np.uint8)
    idx.flags.writeable = False
    return idx


def ready(img: np.ndarray, levels) -> tuple[tuple[float, float], np.ndarray]:
    """A float display image and its levels -> the cache entry (levels, read-only indices)."""
    levels = (float(levels[0]), float(levels[1]))
    return levels, to_indices(img, levels)


class MapImages:
    """LRU of ``(levels, indices (Q, K) uint8)`` for the shown map."""

    def __init__(self, budget_bytes: int = DEFAULT_BUDGET_BYTES, prefetch: bool = True):
        self.budget_bytes = budget_bytes
        self.prefetch = prefetch
        self._pending: dict[tuple, Future] = {}  # key -> image being computed in the background
        self._maps: AttentionMaps | None = None
        self._items: OrderedDict[tuple, tuple] = OrderedDict()  # key -> (levels, indices)
        self._scratch: np.ndarray | None = None  # float32 (Q, K) for the caller's thread
        # every call that shows an image counts once in hits, waited or misses
        self.hits = 0  # found ready in the cache (computed before, here or in the background)
        self.waited = 0  # the background thread was computing it: waited for the rest
        self.misses = 0  # computed in the caller's thread
        self.prefetched = 0  # images the background thread delivered

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return sum(idx.nbytes for _, idx in self._items.values())

    def clear(self) -> None:
        for f in self._pending.values():
            f.cancel()  # a running one finishes; its result is dropped with the dict
        self._pending = {}
        self._items.clear()
        self._scratch = None
        self._maps = None

    def shown(self, doc: Document) -> tuple[tuple[float, float], np.ndarray] | None:
        """The levels ``doc.attention.image()`` returns and its image's colour indices (``to_indices``),
        from the cache when they were computed before."""
        m = doc.attention.maps
        if m is None:
            self.clear()  # nothing shown: keep neither the images nor the maps alive
            return None
        rollout = doc.attention.rollout and doc.attention.can_rollout()
        if m is not self._maps:
            self.clear()
            self._maps = m
        # the rollout depends on the maps only (the document computes it once per maps)
        key = (doc.attention.kind, doc.attention.scale, "rollout", None) if rollout else \
            (doc.attention.kind, doc.attention.scale, doc.attention.layer, doc.attention.head)
        self._harvest()
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            self.hits += 1
        else:
            found = self._from_background(key)
            if found is None:
                self.misses += 1
                out = self._buffer((m.num_queries, m.num_keys))  # reused scratch
                if rollout:
                    raw = to_float32(doc.attention.rollout_map(), out)
                    found = ready(*display_image(raw, doc.attention.kind, doc.attention.scale, copy=False))
                else:
                    found = compute_image(m, doc.attention.kind, doc.attention.scale, doc.attention.layer, doc.attention.head, out)
            self._items[key] = found
            self._evict()
        if not rollout:
            self._prefetch(m, key)
        return found

    def _from_background(self, key: tuple) -> tuple | None:
        """The image when the background thread has it or is computing it (then wait)."""
        fut = self._pending.pop(key, None)
        if fut is None or fut.cancel():  # cancelled: it had not started, compute it here
            return None
        try:
            found = fut.result()
        except Exception:  # computed again in the caller's thread, where errors are seen
            return None
        self.prefetched += 1
        self.waited += 1
        return found

    def _harvest(self) -> None:
        """Move finished background images into the cache."""
        for key in [k for k, f in self._pending.items() if f.done()]:
            fut = self._pending.pop(key)
            if not fut.cancelled() and fut.exception() is None and key not in self._items:
                self._items[key] = fut.result()  # (newest: it is likely to be shown next)
                self.prefetched += 1

    def _prefetch(self, m: AttentionMaps, key: tuple) -> None:
        """Start computing the next head and the next layer (what ] and PgDn show)."""
        if not self.prefetch:
            return
        kind, scale, layer, head = key
        nxt = []
        if head is None or head + 1 < m.num_heads:
            nxt.append((kind, scale, layer, 0 if head is None else head + 1))
        if head is not None and layer + 1 < m.num_layers:  # (the mean costs M heads: not ahead)
            nxt.append((kind, scale, layer + 1, head))
        for k in list(self._pending):  # stale guesses that have not started: drop them
            if k not in nxt and self._pending[k].cancel():
                del self._pending[k]
        for k in nxt:
            if k not in self._items and k not in self._pending:
                self._pending[k] = _pool().submit(compute_image, m, k[0], k[1], k[2], k[3])

    def _buffer(self, shape: tuple[int, int]) -> np.ndarray:
        """The caller thread's float32 scratch of this shape (the float image is only a step
        towards the indices; reusing mapped memory saves the page faults of a fresh array)."""
        if self._scratch is None or self._scratch.shape != shape:
            self._scratch = np.empty(shape, np.float32)
        return self._scratch

    def _evict(self) -> None:
        """Drop the least recently shown images beyond the budget (the newest always stays)."""
        total = self.nbytes
        while len(self._items) > 1 and total > self.budget_bytes:
            _, (_, idx) = self._items.popitem(last=False)
            total -= idx.nbytes
