"""Attention capture for openai-whisper, alongside the model's own SDPA attention.

During the capture each MultiHeadAttention's ``qkv_attention`` is wrapped (on the instance; the
class is untouched). The wrapper computes the layer's output exactly as whisper does with SDPA --
through the CPU flash-attention kernel that ``scaled_dot_product_attention`` dispatches to,
called directly because it also returns the per-row log-sum-exp ``lse`` of the scores -- and then
only the rows and columns we keep:

    scores  = q_h . k_h^T / sqrt(d_head)        (M, Q, keep)   the same as whisper's
              ``(q * d**-0.25) @ (k * d**-0.25).T``, plus the causal mask for decoder self-attention
    weights = exp(scores - lse)                 (M, Q, keep)   the model's softmax over ALL keys
    padding = 1 - sum(weights)                  (M, Q)         mass on the cropped keys

so a 10 s clip costs a (M, 500, 500) block per layer instead of (M, 500, 1500) -- the padding keys
are never multiplied out.

The kernel (``torch.ops.aten._scaled_dot_product_flash_attention_for_cpu``) is a private op of
torch. When it is missing or refuses the input (another torch, a GPU tensor, an unusual dtype),
the wrapper falls back to public ops: SDPA for the output and a full-key softmax over the kept
rows (``attention_rows``) -- the same numbers within float32 rounding, slower. ``QKCapture.path``
says which one ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from steve_qt.core.errors import Cancelled
from steve_qt.core.models.buffers import BufferPool

#: memory of the capture's result arrays and scratch: reused once nobody holds an earlier result
#: (fresh memory costs page faults and zeroing on first touch; see core.models.buffers)
RESULTS = BufferPool()


#: attribute of a MultiHeadAttention holding a (Q, K) bool mask of the keys each query may see
#: (set by ``interventions.attention_window``; honoured by the capture below)
KEY_MASK_ATTR = "steve_key_mask"


@dataclass
class LayerAttention:
    weights: Tensor  # (M, Q, keep) float16 softmax over all keys, cropped
    scores: Tensor  # (M, Q, keep) float16
    padding: Tensor  # (M, Q) float32 mass on the cropped keys


def _flash_op():
    """torch's CPU flash-attention kernel returning (output, logsumexp), or None."""
    try:
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    except (AttributeError, RuntimeError):
        return None


def split_heads(x: Tensor, n_head: int) -> Tensor:
    """(1, T, M*d) -> (1, M, T, d), a view (whisper's layout for SDPA)."""
    return x.view(*x.shape[:2], n_head, -1).permute(0, 2, 1, 3)


def head_scores(q: Tensor, k: Tensor, n_head: int) -> Tensor:
    """(Q, D) x (K, D) -> (M, Q, K) float32 scaled dot products."""
    d = q.shape[-1] // n_head
    qh = q.float().reshape(q.shape[0], n_head, d).transpose(0, 1)  # (M, Q, d)
    kh = k.float().reshape(k.shape[0], n_head, d).transpose(0, 1)  # (M, K, d)
    return torch.matmul(qh, kh.transpose(1, 2)) * d ** -0.5


def causal_mask(q_len: int, k_len: int, device=None) -> Tensor:
    """(Q, K) True where a query may not look (keys after it; queries are the last Q positions)."""
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).triu(1 + k_len - q_len)


def attention_rows(scores: Tensor, keep_keys: int, causal: bool = False,
                   allowed: Tensor | None = None) -> LayerAttention:
    """Softmax over all keys of (M, Q, K) scores; keep the first ``keep_keys`` keys.

    ``allowed`` (Q, K) bool: keys a query may look at (an attention window); the others get
    weight 0, while the stored ``scores`` stay the raw dot products.
    """
    if causal:
        scores = scores.masked_fill(causal_mask(*scores.shape[-2:], scores.device), float("-inf"))
    w = torch.softmax(scores if allowed is None else scores.masked_fill(~allowed, float("-inf")),
                      dim=-1)
    return LayerAttention(
        weights=w[..., :keep_keys].to(torch.float16),
        scores=scores[..., :keep_keys].to(torch.float16),
        padding=w[..., keep_keys:].sum(dim=-1, dtype=torch.float32),
    )


def rows_from_lse(q: Tensor, k: Tensor, lse: Tensor, n_head: int, out: LayerAttention,
                  causal: bool = False, scratch: Tensor | None = None) -> None:
    """(Q, D) queries x the first K' keys of (K, D) keys, normalised by ``lse`` (M, Q).

    ``lse`` is the log-sum-exp of each row's scores over all K keys, as the attention kernel
    computed it, so the weights are the model's softmax without touching the other keys. Writes
    ``out.scores``/``out.weights`` (M, Q, K') float16 and ``out.padding`` (M, Q) in place; one
    (M, Q, K') float32 temporary (``scratch`` when given).
    """
    keep = out.weights.shape[-1]
    d = q.shape[-1] // n_head
    qh = (q.float() * d ** -0.5).reshape(q.shape[0], n_head, d).transpose(0, 1)  # (M, Q, d)
    kh = k[:keep].float().reshape(keep, n_head, d).permute(1, 2, 0)  # (M, d, K')
    s = torch.matmul(qh, kh) if scratch is None else torch.matmul(qh, kh, out=scratch)  # (M, Q, K')
    if causal:
        s.masked_fill_(causal_mask(q.shape[0], k.shape[0])[:, :keep], float("-inf"))
    out.scores.copy_(s)
    w = s.sub_(lse[..., None]).exp_()
    out.weights.copy_(w)
    if keep == k.shape[0]:  # nothing cropped
        out.padding.zero_()
    else:
        torch.sum(w, dim=-1, out=out.padding)
        out.padding.neg_().add_(1.0).clamp_(min=0.0)


@dataclass
class QKCapture:
    """Captures the attention of a list of MultiHeadAttention modules (one per layer).

    ``keep_queries``/``keep_keys``: rows and columns kept (None = all). ``on_layer(i)`` is called
    after layer ``i`` is captured (progress / cancellation). ``use_lse=False`` forces the
    public-ops path (tests, benchmarks). ``return_qk=True``: each module also returns the
    pre-softmax scores over all keys as whisper's explicit attention path computes them
    (``(q * d**-0.25) @ (k * d**-0.25)^T``, float32, (1, M, Q, K)) in place of ``None``, for
    forward hooks that read them (``whisper.timing.find_alignment``); the layer's output stays
    the SDPA one.
    """

    modules: list[torch.nn.Module]
    n_head: int
    keep_queries: int | None = None
    keep_keys: int | None = None
    causal: bool = False
    on_layer: Callable[[int], None] | None = None
    use_lse: bool = True
    return_qk: bool = False
    layers: list[LayerAttention | None] = field(default_factory=list)
    raw: dict[int, tuple[Tensor, Tensor]] | None = None  # set to {} to also keep q/k (tests)
    path: str = ""  # "lse" or "softmax": which computation ran (last layer)

    def __post_init__(self) -> None:
        self.layers = [None] * len(self.modules)
        # (N, 1, M, Q, K) float16 weights and scores, (N, M, Q) padding, allocated at layer 0
        self.weights: Tensor | None = None
        self.scores: Tensor | None = None
        self.padding: Tensor | None = None
        self._scratch: Tensor | None = None

    def _outputs(self, nq: int, nk: int) -> None:
        shape = (len(self.modules), 1, self.n_head, nq, nk)
        if self.weights is None or tuple(self.weights.shape) != shape:
            self.weights = torch.from_numpy(RESULTS.empty(shape, np.float16))
            self.scores = torch.from_numpy(RESULTS.empty(shape, np.float16))
            self.padding = torch.empty(shape[0], self.n_head, nq)
            self._scratch = torch.from_numpy(RESULTS.empty(shape[2:], np.float32))

    def arrays(self):
        """(weights, scores, padding) as numpy arrays (N, 1, M, Q, K), (N, M, Q); no copy."""
        return self.weights.numpy(), self.scores.numpy(), self.padding.numpy()

    def __enter__(self) -> "QKCapture":
        # an instance-level qkv_attention already there (an attention window) is put back on exit
        self._previous = [mod.__dict__.get("qkv_attention") for mod in self.modules]
        for i, mod in enumerate(self.modules):
            mod.qkv_attention = self._wrapped(i, mod)
        return self

    def __exit__(self, *exc) -> None:
        self._scratch = None  # its memory goes back to the pool; the results stay
        for mod, prev in zip(self.modules, self._previous):
            mod.__dict__.pop("qkv_attention", None)
            if prev is not None:
                mod.qkv_attention = prev

    def _wrapped(self, i: int, mod: torch.nn.Module):
        flash = _flash_op() if self.use_lse else None

        def qkv_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None):
            n_ctx = q.shape[1]
            is_causal = mask is not None and n_ctx > 1  # whisper's own SDPA call
            qh, kh, vh = (split_heads(x, mod.n_head) for x in (q, k, v))
            allowed = getattr(mod, KEY_MASK_ATTR, None)  # (Q, K) bool: an attention window
            if allowed is not None:
                out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=allowed)
                self._layer(i, q.detach()[0], k.detach()[0], None, allowed)
                return out.permute(0, 2, 1, 3).flatten(start_dim=2), None
            lse = None
            if flash is not None and q.device.type == "cpu":  # a CPU kernel
                try:
                    out, lse = flash(qh, kh, vh, is_causal=is_causal)
                except RuntimeError:
                    lse = None
            if lse is None:
                out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=is_causal)
            self._layer(i, q.detach()[0], k.detach()[0], None if lse is None else lse[0])
            return out.permute(0, 2, 1, 3).flatten(start_dim=2), (
                explicit_qk(qh, kh, mask) if self.return_qk else None)
        return qkv_attention

    def _layer(self, i: int, q: Tensor, k: Tensor, lse: Tensor | None,
               allowed: Tensor | None = None) -> None:
        if self.raw is not None:
            self.raw[i] = (q.clone(), k.clone())
        nq = q.shape[0] if self.keep_queries is None else self.keep_queries
        nk = k.shape[0] if self.keep_keys is None else self.keep_keys
        self._outputs(nq, nk)
        layer = LayerAttention(self.weights[i, 0], self.scores[i, 0], self.padding[i])
        if allowed is not None:
            la = attention_rows(head_scores(q[:nq], k, self.n_head), nk, causal=self.causal,
                                allowed=allowed[:nq])
            layer.weights.copy_(la.weights), layer.scores.copy_(la.scores)
            layer.padding.copy_(la.padding)
            self.path = "masked"
        elif lse is not None:
            rows_from_lse(q[:nq], k, lse[:, :nq].float(), self.n_head, layer, self.causal,
                          self._scratch if q.device.type == "cpu" else None)
            self.path = "lse"
        else:
            la = attention_rows(head_scores(q[:nq], k, self.n_head), nk, causal=self.causal)
            layer.weights.copy_(la.weights), layer.scores.copy_(la.scores)
            layer.padding.copy_(la.padding)
            self.path = "softmax"
        self.layers[i] = layer
        if self.on_layer is not None:
            self.on_layer(i)


def explicit_qk(qh: Tensor, kh: Tensor, mask: Tensor | None) -> Tensor:
    """(1, M, Q, K) float32 pre-softmax scores, with the operations of whisper's explicit attention
    path (``MultiHeadAttention.qkv_attention`` under ``disable_sdpa``)."""
    scale = qh.shape[-1] ** -0.25
    qk = (qh * scale) @ (kh * scale).transpose(-1, -2)
    if mask is not None:
        n_ctx = qh.shape[2]
        qk = qk + mask[:n_ctx, :n_ctx]
    return qk.float().detach()


def cancel_hook(should_cancel: Callable[[], bool] | None):
    """A forward pre-hook that raises Cancelled when the user asked for it."""
    def hook(_mod, _inp) -> None:
        if should_cancel is not None and should_cancel():
            raise Cancelled()
    return hook
