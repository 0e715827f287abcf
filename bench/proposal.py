"""Measured proposals for the Whisper and wav2vec 2.0 captures (not used by the application).

Same hooks and the same numbers as ``steve_whisper.capture.QKCapture`` + ``adapter._stack``
(``bench.capture`` checks they are bit-identical), computed differently:

1. ``q`` is scaled by ``d**-0.5`` before the matmul (a (T, D) multiply) instead of scaling the
   (M, T, 1500) product, and the keys are laid out once per layer as (M, D, 1500);
2. the T kept query rows are processed in blocks of ``block`` rows: scores (M, block, 1500) ->
   float16 crop, softmax, float16 crop, padding sum. A block is ~2 MiB and stays in cache; the
   current code streams three (M, T, 1500) float32 tensors (18 MiB each at T = 500) through memory,
   and the fresh allocations page-fault;
3. results are written straight into preallocated (N, 1, M, T, T) float16 arrays, so there is no
   per-layer list to stack (the stack doubled the stored bytes at its peak: 2 x 206 MiB at 30 s;
   the adapter does this too since commit 2eea33b).

The wav2vec 2.0 adapter adopted 1 and 2 (``steve_wav2vec2.capture.attention_in_blocks``), so its
proposal is gone from this file; ``bench.wav2vec2_capture`` times the adapter itself.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

BLOCK = 64


def rows_in_blocks(q: Tensor, k: Tensor, n_head: int, keep: int, w_out: Tensor, s_out: Tensor,
                   p_out: Tensor, block: int = BLOCK) -> None:
    """(T, D) queries x (K, D) keys -> w_out, s_out (M, T, keep) float16, p_out (M, T) float32."""
    t_len, width = q.shape
    d = width // n_head
    qh = (q.float() * d ** -0.5).reshape(t_len, n_head, d).transpose(0, 1)  # (M, T, d)
    kt = k.float().reshape(k.shape[0], n_head, d).permute(1, 2, 0).contiguous()  # (M, d, K)
    buf = torch.empty(n_head, block, k.shape[0])  # (M, block, K)
    for r0 in range(0, t_len, block):
        r1 = min(t_len, r0 + block)
        s = torch.matmul(qh[:, r0:r1], kt, out=buf[:, : r1 - r0])  # (M, b, K)
        s_out[:, r0:r1] = s[..., :keep]
        w = torch.softmax(s, dim=-1)
        w_out[:, r0:r1] = w[..., :keep]
        torch.sum(w[..., keep:], dim=-1, out=p_out[:, r0:r1])


def block_capture(adapter, mel: Tensor, keep: int,
                  block: int = BLOCK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoder forward (SDPA) with query/key hooks -> (weights, scores, padding) like _stack."""
    enc = adapter.model.encoder
    n_head = adapter.dims.n_audio_head
    n_layer = len(enc.blocks)
    weights = torch.empty(n_layer, 1, n_head, keep, keep, dtype=torch.float16)
    scores = torch.empty(n_layer, 1, n_head, keep, keep, dtype=torch.float16)
    padding = torch.empty(n_layer, n_head, keep)
    queries: dict[int, Tensor] = {}

    def on_query(i: int):
        def hook(_m, _inp, out: Tensor) -> None:
            queries[i] = out.detach()[0, :keep]
        return hook

    def on_key(i: int):
        def hook(_m, _inp, out: Tensor) -> None:
            rows_in_blocks(queries.pop(i), out.detach()[0], n_head, keep,
                           weights[i, 0], scores[i, 0], padding[i], block)
        return hook

    handles = []
    for i, b in enumerate(enc.blocks):
        handles.append(b.attn.query.register_forward_hook(on_query(i)))
        handles.append(b.attn.key.register_forward_hook(on_key(i)))
    try:
        with torch.no_grad():
            enc(mel[None])
    finally:
        for h in handles:
            h.remove()
    return weights.numpy(), scores.numpy(), padding.numpy()
