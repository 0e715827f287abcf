"""AttentionMaps: every layer's and head's attention for one utterance (or one 30 s window).

Axis order of the arrays (STEVE calls its tensor N x 1 x M x K x Q; ours is, explicitly)::

    weights[n, 0, m, q, k]   layer n, head m, query q, key k    shape (N, 1, M, Q, K)

``weights`` are the softmax attention probabilities, ``scores`` the pre-softmax logits
(q . k / sqrt(d_head), plus the causal mask for decoder self-attention, which shows as -inf).
Both are stored as float16.

Queries and keys are either audio frames (described by a :class:`FrameGrid`) or text tokens
(``query_labels`` / ``key_labels``):

============  ==================  ==================
component     queries             keys
============  ==================  ==================
encoder       audio frames        audio frames
cross         decoder tokens      audio frames
decoder       decoder tokens      decoder tokens
============  ==================  ==================

Whisper always encodes a padded 30 s window. Only the frames that cover the audio are kept
(``ceil(samples / 320)``) on both axes; the softmax mass each kept query row sent to the cut
padding keys is kept in ``padding_mass[n, m, q]`` so that ``weights.sum(-1) + padding_mass == 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..frames import FrameGrid

COMPONENTS = ("encoder", "cross", "decoder")
COMPONENT_TITLES = {
    "encoder": "encoder self-attention",
    "cross": "decoder cross-attention",
    "decoder": "decoder self-attention",
}


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64 -> float32 (rows that are all -inf give 0)."""
    s = np.asarray(scores, dtype=np.float64)
    m = np.max(s, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(s - m)
    z = e.sum(axis=axis, keepdims=True)
    return (e / np.where(z > 0, z, 1.0)).astype(np.float32)


@dataclass
class AttentionMaps:
    weights: np.ndarray  # (N, 1, M, Q, K) float16 softmax weights
    scores: np.ndarray | None  # (N, 1, M, Q, K) float16 pre-softmax scores
    padding_mass: np.ndarray  # (N, M, Q) float32, mass sent to keys that were cut off
    component: str  # one of COMPONENTS
    model: str  # model id, e.g. "whisper:tiny.en (embedded)"
    sample_rate: int  # model rate (16000)
    num_samples: int  # samples (at sample_rate) of the audio these maps describe
    query_grid: FrameGrid | None = None  # audio frames on the query axis, or None for tokens
    key_grid: FrameGrid | None = None  # audio frames on the key axis, or None for tokens
    query_labels: list[str] | None = None  # token texts for token queries
    key_labels: list[str] | None = None  # token texts for token keys
    window: int = 0  # Whisper 30 s window index (0 for models without windows)
    num_windows: int = 1
    meta: dict = field(default_factory=dict)
    #: context-mixing measures (steve_qt.core.attention.measures): name -> float16 (N, 1, M or 1, Q, K)
    measures: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.component not in COMPONENTS:
            raise ValueError(f"unknown component {self.component!r}")
        w = self.weights
        if w.ndim != 5 or w.shape[1] != 1:
            raise ValueError(f"weights must be (N, 1, M, Q, K), got {w.shape}")
        if self.scores is not None and self.scores.shape != w.shape:
            raise ValueError(f"scores {self.scores.shape} != weights {w.shape}")
        if self.padding_mass.shape != (w.shape[0], w.shape[2], w.shape[3]):
            raise ValueError(f"padding_mass must be (N, M, Q), got {self.padding_mass.shape}")
        for name, arr in self.measures.items():
            self.check_measure(name, arr)

    def check_measure(self, name: str, arr: np.ndarray) -> None:
        """ValueError unless ``arr`` is shaped like the weights, with M heads or 1."""
        n, _, m, q, k = self.weights.shape
        if arr.ndim != 5 or arr.shape[:2] != (n, 1) or arr.shape[2] not in (1, m) \
                or arr.shape[3:] != (q, k):
            raise ValueError(f"measure {name!r} must be ({n}, 1, {m} or 1, {q}, {k}), "
                             f"got {arr.shape}")

    def add_measures(self, measures: dict[str, np.ndarray]) -> None:
        for name, arr in measures.items():
            self.check_measure(name, arr)
        self.measures.update(measures)

    def has_kind(self, kind: str) -> bool:
        """True when ``kind`` (weights, scores or a measure) can be shown from these maps."""
        if kind == "weights":
            return True
        if kind == "scores":
            return self.scores is not None
        return kind in self.measures

    def kind_heads(self, kind: str) -> int:
        """Head axis length of ``kind``: the model's heads, or 1 for a per-layer measure."""
        return self.measures[kind].shape[2] if kind in self.measures else self.num_heads

    # --- sizes ----------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[2]

    @property
    def num_queries(self) -> int:
        return self.weights.shape[3]

    @property
    def num_keys(self) -> int:
        return self.weights.shape[4]

    @property
    def spf(self) -> int:
        """Samples per (key) frame at the model rate."""
        grid = self.key_grid or self.query_grid
        return grid.hop if grid else 0

    @property
    def title(self) -> str:
        return COMPONENT_TITLES[self.component]

    # --- slices ---------------------------------------------------------------------------
    def head(self, layer: int, head: int | None, kind: str = "weights") -> np.ndarray:
        """(Q, K) float32 map of one head, or of the mean over heads when ``head`` is None.

        ``kind``: weights, scores or a measure; a per-layer measure (one head) gives its one map
        whatever ``head`` says.
        """
        arr, head = self._kind_array(kind, head)
        sl = arr[layer, 0]
        if head is None:
            return sl.astype(np.float32).mean(axis=0)
        return sl[head].astype(np.float32)

    def value(self, layer: int, head: int | None, query: int, key: int,
              kind: str = "weights") -> float:
        """One cell of :meth:`head` without building the (Q, K) map (for hover read-outs)."""
        arr, head = self._kind_array(kind, head)
        if head is None:
            return float(arr[layer, 0, :, query, key].astype(np.float32).mean())
        return float(arr[layer, 0, head, query, key])

    def _kind_array(self, kind: str, head: int | None) -> tuple[np.ndarray, int | None]:
        """The (N, 1, M, Q, K) array of ``kind`` and the head to read (0 for a per-layer measure)."""
        if kind in ("weights", "scores"):
            arr = self.weights if kind == "weights" else self.scores
            if arr is None:
                raise ValueError("these maps hold no pre-softmax scores")
            return arr, head
        if kind not in self.measures:
            raise ValueError(f"these maps hold no {kind!r}")
        arr = self.measures[kind]
        return arr, (0 if arr.shape[2] == 1 else head)

    def head_padding(self, layer: int, head: int | None) -> np.ndarray:
        p = self.padding_mass[layer]
        return (p.mean(axis=0) if head is None else p[head]).astype(np.float32)

    def rollout(self, upto: int | None = None) -> np.ndarray:
        """Attention rollout (Abnar & Zuidema 2020) through layers 0..upto: (Q, K) float32.

        Per layer: mean over heads, add the identity, renormalise rows; multiply through layers.
        Only defined for self-attention (Q == K).
        """
        if self.num_queries != self.num_keys:
            raise ValueError("rollout needs self-attention (as many queries as keys)")
        last = self.num_layers - 1 if upto is None else upto
        eye = np.eye(self.num_keys, dtype=np.float64)
        out = eye
        for n in range(last + 1):
            a = self.weights[n, 0].astype(np.float64).mean(axis=0) + eye
            a /= a.sum(axis=-1, keepdims=True)
            out = a @ out
        return out.astype(np.float32)

    # --- time of queries / keys ------------------------------------------------------------
    def key_extent_seconds(self) -> tuple[float, float]:
        if self.key_grid is None:
            return 0.0, float(self.num_keys)
        return self.key_grid.extent_seconds(self.num_keys)

    def query_extent_seconds(self) -> tuple[float, float]:
        if self.query_grid is None:
            return 0.0, float(self.num_queries)
        return self.query_grid.extent_seconds(self.num_queries)

    @property
    def nbytes(self) -> int:
        n = self.weights.nbytes + self.padding_mass.nbytes
        n += sum(a.nbytes for a in self.measures.values())
        return n + (self.scores.nbytes if self.scores is not None else 0)

