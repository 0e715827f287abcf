"""Results computed from the shown data and kept while that data is shown (Qt-free).

Each result is keyed by the identity of what it was computed from (an AttentionMaps, an
Alignment, an activation array): a new object means a new result; the last few are kept, so
switching back and forth between two files or layers does not recompute.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

import numpy as np

KEEP = 8  # results kept per kind


class AnalysisCache:
    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._store: dict[str, OrderedDict] = {}

    def get(self, kind: str, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """``compute()`` once per (kind, identities of ``key``'s objects and values)."""
        k = tuple(_ident(x) for x in key)
        store = self._store.setdefault(kind, OrderedDict())
        if k in store:
            store.move_to_end(k)
            return store[k][1]
        value = compute()
        store[k] = (key, value)  # holding ``key`` keeps its ids from being reused
        while len(store) > self.keep:
            store.popitem(last=False)
        return value

    def clear(self) -> None:
        self._store.clear()

    # --- the results the views ask for -----------------------------------------------------------
    def rollout(self, maps) -> np.ndarray:
        """(Q, K) float32 attention rollout of ``maps`` (AttentionMaps.rollout)."""
        return self.get("rollout", (maps,), maps.rollout)

    def head_statistics(self, maps, alignment):
        from ..attention.analysis import head_statistics

        return self.get("head_statistics", (maps, alignment),
                        lambda: head_statistics(maps, alignment))


def _ident(x: Any) -> Hashable:
    if x is None or isinstance(x, (str, int, float, bool)):
        return x
    return ("id", id(x))
