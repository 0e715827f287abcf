"""Context-mixing measures of a wav2vec 2.0 encoder (see steve_qt.core.attention.measures for definitions).

Hooks on each encoder layer keep its input (the residual), the q/k/v projections and the attention
module's output; the measures come from those (steve_qt.core.attention.mixing). The rest of a layer after
attention (the value-zeroing tail) depends on the variant:

- post-norm (base models): ``r = layer_norm(x + a)``; ``final_layer_norm(r + feed_forward(r))``
- pre-norm (``do_stable_layer_norm``, large models): ``r = x + a``;
  ``r + feed_forward(final_layer_norm(r))``: with the exact GELU, the structured
  ``mixing.value_zeroing_pre_ln`` (no tail per pair); otherwise the generic ``tail`` path

``grad`` differentiates the CTC log-probability of the model's own greedy labels
(``log p(labels | audio)``, all alignments, blank = the pad token) and needs a CTC head.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from steve_qt.core.attention import mixing
from steve_qt.core.errors import SteveError
from steve_qt.core.models import taps
from steve_qt.core.models.taps import LayerTaps, relevance_of


def pre_ln_mlp(layer, config) -> mixing.PreLNMLP | None:
    """A stable-layer-norm layer's feed-forward as the structured pre-LN tail (exact GELU only)."""
    if not config.do_stable_layer_norm or config.hidden_act != "gelu":
        return None
    ln, ff = layer.final_layer_norm, layer.feed_forward
    return mixing.PreLNMLP(ln.weight, ln.bias, ln.eps, ff.intermediate_dense.weight,
                           ff.intermediate_dense.bias, ff.output_dense.weight,
                           ff.output_dense.bias)


def layer_tail(layer, stable: bool) -> mixing.Tail:
    if getattr(layer, "adapter_layer", None) is not None:
        raise SteveError("value zeroing does not support wav2vec 2.0 layers with adapter modules")
    if stable:
        def tail(x: Tensor, a: Tensor) -> Tensor:
            r = x + a
            return r + layer.feed_forward(layer.final_layer_norm(r))
    else:
        def tail(x: Tensor, a: Tensor) -> Tensor:
            r = layer.layer_norm(x + a)
            return layer.final_layer_norm(r + layer.feed_forward(r))
    return tail


def layer_taps(layer, keep_graph: bool = False) -> LayerTaps:
    """Forward hooks on one encoder layer: input, q/k/v projections, attention output/context."""
    a = layer.attention
    return LayerTaps(layer, a.q_proj, a.k_proj, a.v_proj, a, a.out_proj, "hidden_states",
                     keep_graph)


def layer_measures(loaded, inputs: Tensor, num_frames: int, names: Sequence[str],
                   on_layer: Callable[[int], None] | None = None,
                   should_cancel: Callable[[], bool] | None = None) -> dict[str, np.ndarray]:
    """Attention norm (N, 1, M, T, T) and/or value zeroing (N, 1, 1, T, T), float16."""
    layers = loaded.encoder_layers
    stable = bool(loaded.config.do_stable_layer_norm)

    def value_zeroing(layer, w, f, x, attn_out):
        mlp = pre_ln_mlp(layer, loaded.config)
        if mlp is not None:
            return mixing.value_zeroing_pre_ln(w, f, x, attn_out, mlp, should_cancel=should_cancel)
        width = layer.feed_forward.intermediate_dense.out_features
        return mixing.value_zeroing(w, f, x, attn_out, layer_tail(layer, stable), width=width,
                                    should_cancel=should_cancel)

    return taps.layer_measures(layers, [layer_taps(layer) for layer in layers],
                               lambda: loaded.base(inputs), int(loaded.config.num_attention_heads),
                               num_frames, names, lambda layer: layer.attention.out_proj.weight,
                               value_zeroing, on_layer, should_cancel)


def greedy_labels(logits: Tensor, blank: int) -> Tensor:
    """(T, V) logits -> the greedy CTC label sequence (repeats merged, blanks dropped), (L,)."""
    best = logits.argmax(dim=-1)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[1:] = best[1:] != best[:-1]
    best = best[keep]
    return best[best != blank]


def ctc_log_prob(logits: Tensor, labels: Tensor, blank: int) -> Tensor:
    """log p(labels | audio) under CTC (all alignments): (T, V) logits -> a scalar."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)[:, None]  # (T, 1, V)
    loss = torch.nn.functional.ctc_loss(log_probs, labels[None], [logits.shape[0]],
                                        [labels.shape[0]], blank=blank, reduction="sum")
    return -loss


def grad_relevance(loaded, inputs: Tensor, num_frames: int, blank: int,
                   on_layer: Callable[[int], None] | None = None,
                   should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Chefer et al.'s relevance of the CTC log-probability, cumulative per layer: (N, 1, 1, T, T)."""
    model = loaded.model
    layers = loaded.encoder_layers
    n_head = int(loaded.config.num_attention_heads)
    kept = [layer_taps(layer, keep_graph=True) for layer in layers]

    def log_prob() -> Tensor:
        logits = model(inputs.clone().requires_grad_(True)).logits[0]  # (T, V)
        return ctc_log_prob(logits, greedy_labels(logits.detach(), blank), blank)

    return relevance_of(model, kept, log_prob, n_head, num_frames, on_layer, should_cancel)
