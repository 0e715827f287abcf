"""Capture wav2vec 2.0 encoder self-attention with forward hooks (no patched transformers).

Per encoder layer, hooks keep the outputs of ``attention.q_proj`` and ``attention.k_proj``
(unscaled projections, (1, T, M*D)); when the attention module has run, a hook on it hands them to
a sink. This is the same computation as transformers' eager attention without a mask (wav2vec 2.0
runs one unpadded utterance here), so it does not need ``output_attentions``.

The adapter does not use these hooks: it runs the model with its own attention function
(``ATTENTION``, registered through transformers' public ``AttentionInterface``), which for the
layers being captured computes the attention as transformers' eager attention does and keeps its
scores and weights (``attention_with_capture``), and hands every other call to transformers'
eager function: captured or not, the model computes the same numbers. The hooks below remain the
independent reference.

Two ways to turn the projections into pre-softmax scores ``q . k^T * D**-0.5`` and softmax weights:

- ``attention_with_capture`` (what the adapter uses, inside the model's attention): eager
  attention's own operations, the float32 (M, T, T) scores and weights copied into the float16
  (M, T, T) outputs as they are made.
- ``attention_from_projections``: the plain full computation in float32 (M, T, T) from the hooked
  projections, kept as the reference the adapter is checked against.

Works for both encoder variants: post-norm (``do_stable_layer_norm=False``, base models) and
pre-norm (``True``, large "lv60" models) -- in both, ``q_proj``/``k_proj`` see exactly the input of
the attention module, whichever layer norm came before it.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import torch

from steve_qt.core.errors import Cancelled

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


# --- capture inside the model's own attention (what the adapter uses) --------------------------
#: transformers attention implementation the adapter loads models with: transformers' eager
#: function, unchanged, except for layers being captured, where ``attention_with_capture`` runs
ATTENTION = "steve_qt_capture"
_ACTIVE = threading.local()  # .sinks: {attention module: sink}, set by capture_in_attention


def _dispatch(module, query, key, value, attention_mask, dropout: float = 0.0,
              scaling: float | None = None, **kwargs):
    """The registered attention function: a module with a sink (no mask, no dropout, not
    causal: wav2vec 2.0's encoder) is captured; everything else goes to transformers' eager
    attention function as it is. Both compute the same operations, so a layer's output (and every
    activation after it) is the same bit for bit whether its attention is captured or not."""
    sink = (getattr(_ACTIVE, "sinks", None) or {}).get(module)
    plain = (attention_mask is not None or dropout or getattr(module, "is_causal", False)
             or kwargs.get("head_mask") is not None)
    if sink is None or plain:
        from transformers.models.wav2vec2.modeling_wav2vec2 import eager_attention_forward

        return eager_attention_forward(module, query, key, value, attention_mask,
                                       dropout=dropout, scaling=scaling, **kwargs)
    return sink(query, key, value, query.shape[-1] ** -0.5 if scaling is None else scaling)


def register_attention() -> str:
    """Register ``ATTENTION`` with transformers (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, _dispatch)
    return ATTENTION


def _softmax_into(scores: torch.Tensor) -> torch.Tensor:
    """softmax(scores, dim=-1) written over ``scores`` on the CPU (the kernel reads each row
    whole before writing it, so the result is the same as into new memory; tested against
    transformers' eager attention), into new memory elsewhere."""
    out_op = getattr(getattr(torch.ops.aten, "_softmax", None), "out", None)
    if scores.device.type == "cpu" and out_op is not None:
        return out_op(scores, -1, False, out=scores)
    return torch.softmax(scores, dim=-1)


def attention_with_capture(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           scaling: float, scores_out: torch.Tensor, weights_out: torch.Tensor,
                           scratch: torch.Tensor | None = None) -> torch.Tensor:
    """The layer's attention, computed as transformers' eager attention computes it, keeping its
    scores and weights.

    query, key, value: (1, M, T, D) as the attention module hands them over. The same operations
    in the same order as ``eager_attention_forward`` (no mask, no dropout: wav2vec 2.0's encoder
    on one utterance), which is what ``output_attentions=True`` runs:

        scores  = (q @ k^T) * scaling      -> ``scores_out``  (M, T, T), its dtype (float16)
        weights = softmax(scores)          -> ``weights_out`` (M, T, T)
        output  = weights @ v              -> returned as (1, T, M, D)

    so the weights and the output are eager attention's, bit for bit (tested against
    transformers' own function). The layer output differs from SDPA's (transformers' default
    attention) by float32 rounding only. ``scratch``: a float32 (1, M, T, T) tensor
    the scores and then the weights are computed in (one per extraction, used by every layer),
    or None for new memory. Cheaper than SDPA's kernel plus a separate score product: 10 s of
    a base model, this takes 1.3x SDPA's time where SDPA + q k^T + exp took 2.3x.
    """
    k_t = key.transpose(2, 3)
    if scratch is None:
        scores = torch.matmul(query, k_t)
    else:
        scores = torch.matmul(query, k_t, out=scratch)
    scores.mul_(scaling)  # (1, M, T, T); eager's "* scaling", in place
    scores_out.copy_(scores[0])
    weights = _softmax_into(scores)
    weights_out.copy_(weights[0])
    return torch.matmul(weights, value).transpose(1, 2).contiguous()


def capture_in_attention(
    layers: Sequence[torch.nn.Module],
    run: Callable[[], object],
    outputs: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    on_layer: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    scratch: torch.Tensor | None = None,
):
    """Call ``run()`` with every layer's attention captured by ``attention_with_capture``.

    The model must run with ``attn_implementation=ATTENTION``. ``outputs(n)`` gives layer n's
    (scores_out, weights_out) (M, T, T); ``on_layer(n)`` is called when layer n is done;
    ``should_cancel`` is checked as each layer's attention starts; ``scratch`` (float32
    (1, M, T, T)) is where every layer computes its scores and weights.
    """
    def sink_for(n: int):
        def sink(query, key, value, scaling):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            out = attention_with_capture(query, key, value, scaling, *outputs(n), scratch)
            if on_layer is not None:
                on_layer(n)
            return out, None
        return sink

    previous = getattr(_ACTIVE, "sinks", None)
    _ACTIVE.sinks = {layer.attention: sink_for(n) for n, layer in enumerate(layers)}
    try:
        with torch.inference_mode():
            return run()
    finally:
        _ACTIVE.sinks = previous


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
