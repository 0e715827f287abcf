"""Context-mixing measures of Whisper's encoder (see steve_qt.core.attention.measures for definitions).

- ``layer_measures``: one encoder forward pass (SDPA, no grad) with hooks on every block; as each
  block finishes, its attention norm (per head) and value zeroing (per layer) are computed for the
  T kept frames from the block's own tensors (the softmax over all 1500 keys, as the model takes
  it). A block is ``x + attn(attn_ln(x))`` then ``r + mlp(mlp_ln(r))``, a pre-LN tail: value
  zeroing goes through ``mixing.value_zeroing_pre_ln`` with the block's ``mlp_ln`` and ``mlp``.
- ``grad_relevance``: the encoder and a teacher-forced decoder pass with autograd on the
  activations only (parameters frozen for the pass); the gradient of the transcript's
  log-probability (sum of log p of its text tokens and <|endoftext|>) reaches each encoder
  attention's context; ∂L/∂A = ∂L/∂context · Vᵀ per head; Chefer et al.'s rule over the full
  1500 x 1500 window, then the kept T x T block of each layer's cumulative R, less the identity.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from steve_qt.core.attention import mixing
from steve_qt.core.models import taps
from steve_qt.core.models.taps import LayerTaps, relevance_of


def block_mlp(block) -> mixing.PreLNMLP:
    """The block's MLP after ``mlp_ln`` as the pre-LN tail of the structured value zeroing."""
    return mixing.PreLNMLP(block.mlp_ln.weight, block.mlp_ln.bias, block.mlp_ln.eps,
                           block.mlp[0].weight, block.mlp[0].bias, block.mlp[2].weight,
                           block.mlp[2].bias)


class BlockTaps(LayerTaps):
    """Forward hooks on one encoder block: residual input, q/k/v projections, attention output."""

    def __init__(self, block, keep_graph: bool = False):
        a = block.attn
        super().__init__(block, a.query, a.key, a.value, a, a.out, "x", keep_graph)
        self.block = block


def layer_measures(model, mel: Tensor, keep: int, names: Sequence[str],
                   on_layer: Callable[[int], None] | None = None,
                   should_cancel: Callable[[], bool] | None = None) -> dict[str, np.ndarray]:
    """Attention norm (N, 1, M, T, T) and/or value zeroing (N, 1, 1, T, T), float16."""
    enc = model.encoder

    def value_zeroing(block, w, f, x, attn_out):
        return mixing.value_zeroing_pre_ln(w, f, x, attn_out, block_mlp(block),
                                           should_cancel=should_cancel)

    return taps.layer_measures(enc.blocks, [BlockTaps(b) for b in enc.blocks],
                               lambda: enc(mel[None]), enc.blocks[0].attn.n_head, keep, names,
                               lambda block: block.attn.out.weight, value_zeroing, on_layer,
                               should_cancel)


def transcript_log_prob(model, audio_features: Tensor, tokens: Sequence[int],
                        text_start: int) -> Tensor:
    """Σ log p(tokens[i] | tokens[:i], audio) for i >= text_start (teacher forced): a scalar."""
    tok = torch.tensor(list(tokens))[None]  # (1, L)
    logits = model.decoder(tok[:, :-1], audio_features)  # (1, L-1, V)
    logp = torch.log_softmax(logits.float(), dim=-1)[0, text_start - 1:]  # predicts tok[text_start:]
    return logp.gather(1, tok[0, text_start:, None]).sum()


def grad_relevance(model, mel: Tensor, tokens: Sequence[int], text_start: int, keep: int,
                   on_layer: Callable[[int], None] | None = None,
                   should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Chefer et al.'s relevance, cumulative per encoder layer: (N, 1, 1, T, T) float16."""
    enc = model.encoder
    n_head = enc.blocks[0].attn.n_head
    kept = [BlockTaps(b, keep_graph=True) for b in enc.blocks]

    def log_prob() -> Tensor:
        x = mel[None].clone().requires_grad_(True)
        return transcript_log_prob(model, enc(x), tokens, text_start)

    return relevance_of(model, kept, log_prob, n_head, keep, on_layer, should_cancel)
