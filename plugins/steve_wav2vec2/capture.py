"""Capture wav2vec 2.0 encoder self-attention with forward hooks (no patched transformers).

Per encoder layer, hooks keep the outputs of ``attention.q_proj`` and ``attention.k_proj``
(unscaled projections, (1, T, M*D)); when the attention module has run, a hook on it hands them to
a sink. This is the same computation as transformers' eager attention without a mask (wav2vec 2.0
runs one unpadded utterance here), so it does not need ``output_attentions``.

Two ways to turn the projections into pre-softmax scores ``q . k^T * D**-0.5`` and softmax weights:

- ``attention_in_blocks`` (what the adapter uses): q is scaled before the matmul, the keys are
  laid out once as (M, D, T), and the T query rows are done ``block`` rows at a time, each block
  written straight into float16 (M, T, T) outputs. A block's float32 scores (M, block, T) stay in
  cache; no full float32 (M, T, T) scores or weights are made.
- ``attention_from_projections``: the plain full computation in float32 (M, T, T), kept as the
  reference the block path is checked against.

Works for both encoder variants: post-norm (``do_stable_layer_norm=False``, base models) and
pre-norm (``True``, large "lv60" models) -- in both, ``q_proj``/``k_proj`` see exactly the input of
the attention module, whichever layer norm came before it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from steve_qt.core.errors import Cancelled

#: query rows per block in attention_in_blocks: (M, 64, T) float32 is ~1.5 MiB for base at 10 s
BLOCK_ROWS = 64

#: on_projections(layer_index, q (1, T, M*D), k (1, T, M*D), num_heads); unscaled projections
ProjectionSink = Callable[[int, torch.Tensor, torch.Tensor, int], None]
#: on_layer(layer_index, scores (M, T, T) float32, weights (M, T, T) float32)
LayerSink = Callable[[int, torch.Tensor, torch.Tensor], None]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(1, T, M*D) projection -> (M, T, D)."""
    _, t, width = x.shape
    return x[0].view(t, num_heads, width // num_heads).transpose(0, 1)


def attention_from_projections(
    q: torch.Tensor, k: torch.Tensor, num_heads: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unscaled q, k projections (1, T, M*D) -> (scores, weights), each (M, T, T) float32."""
    q_h = split_heads(q, num_heads).float()  # (M, T, D)
    k_h = split_heads(k, num_heads).float()  # (M, T, D)
    head_dim = q_h.shape[-1]
    scores = torch.matmul(q_h, k_h.transpose(-1, -2)) * head_dim**-0.5  # (M, T, T)
    weights = torch.softmax(scores, dim=-1)
    return scores, weights


def scaled_queries(q: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Unscaled (1, T, M*D) -> (M, T, D) float32 multiplied by D**-0.5."""
    q_h = split_heads(q, num_heads)  # (M, T, D)
    return q_h.float() * q_h.shape[-1] ** -0.5


def keys_by_head(k: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(1, T, M*D) -> (M, D, T) float32, contiguous (the matmul's right operand, laid out once)."""
    return split_heads(k, num_heads).float().transpose(-1, -2).contiguous()


def attention_in_blocks(
    q: torch.Tensor,
    k: torch.Tensor,
    num_heads: int,
    scores_out: torch.Tensor,
    weights_out: torch.Tensor,
    block: int = BLOCK_ROWS,
) -> None:
    """Unscaled q, k (1, T, M*D) -> fill scores_out, weights_out (M, T, T) (float16) in place.

    Same numbers as ``attention_from_projections`` rounded to the outputs' dtype (exactly the same
    float32 products when D**-0.5 is a power of two, as for D = 64 or 16).
    """
    q_h = scaled_queries(q, num_heads)  # (M, T, D)
    k_t = keys_by_head(k, num_heads)  # (M, D, T)
    num_rows = q_h.shape[1]
    s_buf = torch.empty(num_heads, min(block, num_rows), k_t.shape[-1],
                        device=k_t.device)  # (M, block, T)
    w_buf = torch.empty_like(s_buf)
    for r0 in range(0, num_rows, block):
        r1 = min(num_rows, r0 + block)
        s = torch.matmul(q_h[:, r0:r1], k_t, out=s_buf[:, : r1 - r0])  # (M, b, T) float32
        scores_out[:, r0:r1] = s
        w = torch.softmax(s, dim=-1, out=w_buf[:, : r1 - r0])  # (M, b, T) float32
        weights_out[:, r0:r1] = w


def capture_projections(
    layers: Sequence[torch.nn.Module],
    run: Callable[[], object],
    on_projections: ProjectionSink,
    should_cancel: Callable[[], bool] | None = None,
):
    """Call ``run()`` (the model's forward pass) with hooks on ``layers``; return its result.

    ``on_projections`` is called once per encoder layer, in order, as soon as that layer's
    attention has run. ``should_cancel`` is checked as each layer starts; Cancelled aborts the
    forward pass. The hooks are removed afterwards whatever happens.
    """
    stash: dict[tuple[str, int], torch.Tensor] = {}

    def keep(kind: str, n: int):
        def hook(_module, _inputs, output):
            if kind == "q" and should_cancel is not None and should_cancel():
                raise Cancelled()
            stash[kind, n] = output.detach()

        return hook

    def finish(n: int):
        def hook(module, _inputs, _output):
            q, k = stash.pop(("q", n)), stash.pop(("k", n))
            on_projections(n, q, k, module.num_heads)

        return hook

    handles = []
    try:
        for n, layer in enumerate(layers):
            att = layer.attention
            handles.append(att.q_proj.register_forward_hook(keep("q", n)))
            handles.append(att.k_proj.register_forward_hook(keep("k", n)))
            handles.append(att.register_forward_hook(finish(n)))
        with torch.inference_mode():
            return run()
    finally:
        for h in handles:
            h.remove()
        stash.clear()


def capture_attention(
    layers: Sequence[torch.nn.Module],
    run: Callable[[], object],
    on_layer: LayerSink,
    should_cancel: Callable[[], bool] | None = None,
):
    """``capture_projections`` with the full float32 reference computation per layer."""

    def full(n: int, q: torch.Tensor, k: torch.Tensor, num_heads: int) -> None:
        scores, weights = attention_from_projections(q, k, num_heads)
        on_layer(n, scores, weights)

    return capture_projections(layers, run, full, should_cancel)
