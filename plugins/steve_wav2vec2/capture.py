"""Capture wav2vec 2.0 encoder self-attention with forward hooks (no patched transformers).

Per encoder layer, hooks keep the outputs of ``attention.q_proj`` and ``attention.k_proj``
(unscaled projections, (1, T, M*D)); when the attention module has run, a hook on it turns them
into per-head pre-softmax scores ``q . k^T * D**-0.5`` (M, T, T) and softmax weights, all heads in
one batched matmul. This is the same computation as transformers' eager attention without a mask
(wav2vec 2.0 runs one unpadded utterance here), so it does not need ``output_attentions``.

Works for both encoder variants: post-norm (``do_stable_layer_norm=False``, base models) and
pre-norm (``True``, large "lv60" models) -- in both, ``q_proj``/``k_proj`` see exactly the input of
the attention module, whichever layer norm came before it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from steve_qt.core.errors import Cancelled

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


def capture_attention(
    layers: Sequence[torch.nn.Module],
    run: Callable[[], object],
    on_layer: LayerSink,
    should_cancel: Callable[[], bool] | None = None,
):
    """Call ``run()`` (the model's forward pass) with hooks on ``layers``; return its result.

    ``on_layer`` is called once per encoder layer, in order, as soon as that layer's attention has
    run. ``should_cancel`` is checked as each layer starts; Cancelled aborts the forward pass.
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
            scores, weights = attention_from_projections(q, k, module.num_heads)
            on_layer(n, scores, weights)

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
