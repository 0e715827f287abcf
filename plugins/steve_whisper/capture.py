"""Attention capture for openai-whisper: forward hooks on the ``query``/``key`` Linear outputs.

The forward pass keeps SDPA (fast). Each MultiHeadAttention computes ``q = query(x)`` before
``k = key(x or xa)``, so when the key hook fires the query of the same call is known and the
scores for the rows we keep are computed right there (queries x all keys, per head), then the
projections are dropped. Scores are q.k / sqrt(d_head) -- the same as whisper's
``(q * d**-0.25) @ (k * d**-0.25).T`` -- plus the causal mask for decoder self-attention.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from steve_qt.core.errors import Cancelled


@dataclass
class LayerAttention:
    weights: Tensor  # (M, Q, keep) float16 softmax over all keys, cropped
    scores: Tensor  # (M, Q, keep) float16
    padding: Tensor  # (M, Q) float32 mass on the cropped keys


def head_scores(q: Tensor, k: Tensor, n_head: int) -> Tensor:
    """(Q, D) x (K, D) -> (M, Q, K) float32 scaled dot products."""
    d = q.shape[-1] // n_head
    qh = q.float().reshape(q.shape[0], n_head, d).transpose(0, 1)  # (M, Q, d)
    kh = k.float().reshape(k.shape[0], n_head, d).transpose(0, 1)  # (M, K, d)
    return torch.matmul(qh, kh.transpose(1, 2)) * d ** -0.5


def attention_rows(scores: Tensor, keep_keys: int, causal: bool = False) -> LayerAttention:
    """Softmax over all keys of (M, Q, K) scores; keep the first ``keep_keys`` keys."""
    if causal:
        q_len, k_len = scores.shape[-2:]
        mask = torch.ones(q_len, k_len, dtype=torch.bool).triu(1 + k_len - q_len)
        scores = scores.masked_fill(mask, float("-inf"))
    w = torch.softmax(scores, dim=-1)
    return LayerAttention(
        weights=w[..., :keep_keys].to(torch.float16),
        scores=scores[..., :keep_keys].to(torch.float16),
        padding=w[..., keep_keys:].sum(dim=-1, dtype=torch.float32),
    )


@dataclass
class QKCapture:
    """Hooks on a list of MultiHeadAttention modules (one per layer).

    ``keep_queries``/``keep_keys``: rows and columns kept (None = all). ``on_layer(i)`` is called
    after layer ``i`` is captured (progress / cancellation).
    """

    modules: list[torch.nn.Module]
    n_head: int
    keep_queries: int | None = None
    keep_keys: int | None = None
    causal: bool = False
    on_layer: Callable[[int], None] | None = None
    layers: list[LayerAttention | None] = field(default_factory=list)
    raw: dict[int, tuple[Tensor, Tensor]] | None = None  # set to {} to also keep q/k (tests)

    def __post_init__(self) -> None:
        self.layers = [None] * len(self.modules)
        self._q: dict[int, Tensor] = {}
        self._handles = []
        # (N, 1, M, Q, K) float16 weights and scores, (N, M, Q) padding, allocated at layer 0
        self.weights: Tensor | None = None
        self.scores: Tensor | None = None
        self.padding: Tensor | None = None

    def _outputs(self, nq: int, nk: int) -> None:
        shape = (len(self.modules), 1, self.n_head, nq, nk)
        if self.weights is None or tuple(self.weights.shape) != shape:
            self.weights = torch.empty(shape, dtype=torch.float16)
            self.scores = torch.empty(shape, dtype=torch.float16)
            self.padding = torch.empty(shape[0], self.n_head, nq)

    def arrays(self):
        """(weights, scores, padding) as numpy arrays (N, 1, M, Q, K), (N, M, Q); no copy."""
        return self.weights.numpy(), self.scores.numpy(), self.padding.numpy()

    def __enter__(self) -> "QKCapture":
        for i, mod in enumerate(self.modules):
            self._handles.append(mod.query.register_forward_hook(self._query_hook(i)))
            self._handles.append(mod.key.register_forward_hook(self._key_hook(i)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._q.clear()

    def _query_hook(self, i: int):
        def hook(_mod, _inp, out: Tensor) -> None:
            self._q[i] = out.detach()[0]
        return hook

    def _key_hook(self, i: int):
        def hook(_mod, _inp, out: Tensor) -> None:
            q, k = self._q.pop(i), out.detach()[0]
            if self.raw is not None:
                self.raw[i] = (q.clone(), k.clone())
            nq = q.shape[0] if self.keep_queries is None else self.keep_queries
            nk = k.shape[0] if self.keep_keys is None else self.keep_keys
            self._outputs(nq, nk)
            w, s, p = self.weights[i, 0], self.scores[i, 0], self.padding[i]
            la = attention_rows(head_scores(q[:nq], k, self.n_head), nk, causal=self.causal)
            w.copy_(la.weights), s.copy_(la.scores), p.copy_(la.padding)
            self.layers[i] = LayerAttention(w, s, p)
            if self.on_layer is not None:
                self.on_layer(i)
        return hook


def cancel_hook(should_cancel: Callable[[], bool] | None):
    """A forward pre-hook that raises Cancelled when the user asked for it."""
    def hook(_mod, _inp) -> None:
        if should_cancel is not None and should_cancel():
            raise Cancelled()
    return hook
