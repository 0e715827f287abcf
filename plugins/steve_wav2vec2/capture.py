"""Capture wav2vec 2.0 encoder self-attention with forward hooks (no patched transformers).

Per encoder layer, hooks keep the outputs of ``attention.q_proj`` and ``attention.k_proj``
(unscaled projections, (1, T, M*D)); when the attention module has run, a hook on it hands them to
a sink. This is the same computation as transformers' eager attention without a mask (wav2vec 2.0
runs one unpadded utterance here), so it does not need ``output_attentions``.

The adapter does not use these hooks: it runs the model with its own attention function
(``ATTENTION``, registered through transformers' public ``AttentionInterface``), which for the
layers being captured calls the flash-attention kernel SDPA uses (same output, bit for bit) for
its output and per-row log-sum-exp, and turns the scores into weights with exp(s - lse), without
a separate softmax (``attention_with_capture``). The hooks below remain the independent reference.

Two ways to turn the projections into pre-softmax scores ``q . k^T * D**-0.5`` and softmax weights:

- ``attention_with_capture`` (what the adapter uses, inside the model's attention): q is scaled
  before the matmul and the T query rows are done ``block`` rows at a time, each block's scores
  and exp(scores - lse) written straight into float16 (M, T, T) outputs. A block's float32
  scores (M, block, T) stay in cache; no full float32 (M, T, T) scores or weights are made.
- ``attention_from_projections``: the plain full computation in float32 (M, T, T), kept as the
  reference the block path is checked against.

Works for both encoder variants: post-norm (``do_stable_layer_norm=False``, base models) and
pre-norm (``True``, large "lv60" models) -- in both, ``q_proj``/``k_proj`` see exactly the input of
the attention module, whichever layer norm came before it.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

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


# --- capture inside the model's own attention (what the adapter uses) --------------------------
#: transformers attention implementation the adapter loads models with: SDPA (transformers' own
#: function, unchanged) except for layers being captured, where ``attention_with_capture`` runs
ATTENTION = "steve_qt_capture"
_ACTIVE = threading.local()  # .sinks: {attention module: sink}, set by capture_in_attention


def _dispatch(module, query, key, value, attention_mask, dropout: float = 0.0,
              scaling: float | None = None, **kwargs):
    """The registered attention function: a module with a sink (no mask, no dropout, not
    causal: wav2vec 2.0's encoder) is captured, everything else goes to transformers' SDPA
    function as it is."""
    sink = (getattr(_ACTIVE, "sinks", None) or {}).get(module)
    plain = attention_mask is not None or dropout or getattr(module, "is_causal", False)
    if sink is None or plain:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    return sink(query, key, value, query.shape[-1] ** -0.5 if scaling is None else scaling)


def register_attention() -> str:
    """Register ``ATTENTION`` with transformers (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, _dispatch)
    return ATTENTION


def _flash_op():
    """torch's CPU flash-attention kernel returning (output, logsumexp), or None."""
    try:
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    except (AttributeError, RuntimeError):
        return None


def attention_with_capture(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                           scaling: float, scores_out: torch.Tensor, weights_out: torch.Tensor,
                           block: int = BLOCK_ROWS) -> torch.Tensor:
    """The layer's attention output, as SDPA computes it, plus its scores and weights.

    query, key, value: (1, M, T, D) as the attention module hands them over. The output comes
    from the CPU flash-attention kernel that ``scaled_dot_product_attention`` dispatches to
    (bit for bit what the model computes without capture), called directly because it also
    returns each row's log-sum-exp ``lse`` over the keys. Then, ``block`` query rows at a time:

        scores  = q . k^T * scaling        -> ``scores_out``  (M, T, T), its dtype (float16)
        weights = exp(scores - lse)        -> ``weights_out`` (M, T, T): the softmax, without
                                              its own max and sum passes

    Where that kernel is missing or refuses the input (another torch, a GPU), the output comes
    from ``scaled_dot_product_attention`` and the weights from ``torch.softmax``: the same
    numbers within float32 rounding. Returns the output as (1, T, M, D), what transformers'
    attention functions return.
    """
    flash = _flash_op() if query.device.type == "cpu" else None
    lse = None
    if flash is not None:
        try:
            out, lse = flash(query, key, value, scale=scaling)[:2]  # (1, M, T, D), (1, M, T)
        except RuntimeError:
            lse = None
    if lse is None:
        out = F.scaled_dot_product_attention(query, key, value, scale=scaling)
    q = query[0] * scaling  # (M, T, D) float32
    k_t = key[0].transpose(-1, -2)  # (M, D, T)
    m, t, _ = q.shape
    s_buf = torch.empty(m, min(block, t), t, dtype=q.dtype, device=q.device)  # (M, b, T)
    for r0 in range(0, t, block):
        r1 = min(t, r0 + block)
        s = torch.matmul(q[:, r0:r1], k_t, out=s_buf[:, : r1 - r0])  # (M, b, T)
        scores_out[:, r0:r1] = s
        if lse is not None:
            w = s.sub_(lse[0, :, r0:r1, None]).exp_()  # in place: (M, b, T)
        else:
            w = torch.softmax(s, dim=-1)
        weights_out[:, r0:r1] = w
    return out.transpose(1, 2).contiguous()


def capture_in_attention(
    layers: Sequence[torch.nn.Module],
    run: Callable[[], object],
    outputs: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    on_layer: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
):
    """Call ``run()`` with every layer's attention captured by ``attention_with_capture``.

    The model must run with ``attn_implementation=ATTENTION``. ``outputs(n)`` gives layer n's
    (scores_out, weights_out) (M, T, T); ``on_layer(n)`` is called when layer n is done;
    ``should_cancel`` is checked as each layer's attention starts.
    """
    def sink_for(n: int):
        def sink(query, key, value, scaling):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            out = attention_with_capture(query, key, value, scaling, *outputs(n))
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
