"""The Whisper encoder runs being compared: bare forward, our capture, and the STEVE recipe.

All three take the adapter's model and one (n_mels, 3000) log-mel window (computed once, outside
the timed region, by ``adapter.mel``).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def load_whisper():
    """The embedded tiny.en adapter, the way the application loads it."""
    from steve_qt.core.models.pipeline import get_adapter

    return get_adapter("whisper")


def kept_frames(num_samples: int) -> int:
    from steve_qt.core.frames import whisper_grid

    return whisper_grid(0).frames_covering(num_samples)


def bare_forward(adapter, mel: Tensor) -> Tensor:
    """The encoder alone (SDPA attention, no hooks): the limit a capture is measured against."""
    with torch.no_grad():
        return adapter.model.encoder(mel[None])


def our_capture(adapter, mel: Tensor, keep: int,
                use_lse: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The encoder part of ``WhisperAdapter.extract``, step for step.

    Cancel pre-hook, QKCapture on every block's ``attn`` (SDPA's flash kernel for the output and
    its log-sum-exp; scores and weights for the T kept rows and keys only, padding mass = 1 - the
    kept mass), per-layer progress callback, float16 results written into preallocated
    (N, 1, M, T, T) tensors and returned as numpy. ``use_lse=False``: the public-ops fallback
    (SDPA output; T kept rows x all 1500 keys, softmax, crop).
    Returns (weights (N,1,M,T,T), scores (N,1,M,T,T), padding_mass (N,M,T)).
    """
    from steve_whisper.capture import QKCapture, cancel_hook

    enc = adapter.model.encoder
    never = lambda: False  # noqa: E731 - the GUI's should_cancel when nobody cancels
    progress = lambda i: never()  # noqa: E731 - extract's step(): a cancel check per layer
    pre = enc.register_forward_pre_hook(cancel_hook(never))
    try:
        with torch.no_grad(), QKCapture([b.attn for b in enc.blocks], adapter.dims.n_audio_head,
                                        keep_queries=keep, keep_keys=keep, on_layer=progress,
                                        use_lse=use_lse) as cap:
            enc(mel[None])
    finally:
        pre.remove()
    assert cap.path == ("lse" if use_lse else "softmax"), cap.path
    return cap.arrays()


def stored_bytes(arrays) -> int:
    return int(sum(a.nbytes for a in arrays))


# --- the STEVE recipe, written from its description ------------------------------------------

def steve_capture(adapter, mel: Tensor) -> list[Tensor]:
    """STEVE's Whisper recipe for openai-whisper >= 20240930 (SDPA), from its description.

    1. forward hooks on every encoder block's ``attn.query`` and ``attn.key`` Linear layers keep
       their full outputs (1500 x d_model each);
    2. after the forward pass, for every layer and, in a Python loop, every head: slice that
       head's columns and compute ``Q_h @ K_h.T / sqrt(d_head)`` -- the full-window 1500 x 1500
       float32 pre-softmax scores (whisper's own ``qk``);
    3. stack the heads of a layer into STEVE's per-layer ``(1, M, 1500, 1500)`` tensor; the list
       over layers is STEVE's ``N x 1 x M x K x Q`` input.

    No softmax here: STEVE keeps the scores and applies a softmax (over all 1500 keys, padding
    included) only when its "Softmax" box is ticked, at display time, to the shown head.
    """
    enc = adapter.model.encoder
    n_head = adapter.dims.n_audio_head
    queries: dict[int, Tensor] = {}
    keys: dict[int, Tensor] = {}
    handles = []
    for i, block in enumerate(enc.blocks):
        handles.append(block.attn.query.register_forward_hook(
            lambda _m, _inp, out, i=i: queries.__setitem__(i, out)))
        handles.append(block.attn.key.register_forward_hook(
            lambda _m, _inp, out, i=i: keys.__setitem__(i, out)))
    try:
        with torch.no_grad():
            enc(mel[None])
    finally:
        for h in handles:
            h.remove()

    layers = []
    with torch.no_grad():
        for i in range(len(enc.blocks)):
            q, k = queries[i][0], keys[i][0]  # (1500, D)
            d = q.shape[-1] // n_head
            heads = []
            for m in range(n_head):
                qh = q[:, m * d:(m + 1) * d]
                kh = k[:, m * d:(m + 1) * d]
                heads.append((qh @ kh.T) / math.sqrt(d))  # (1500, 1500) float32
            layers.append(torch.stack(heads)[None])  # (1, M, 1500, 1500)
    return layers


def steve_stored_bytes(layers: list[Tensor]) -> int:
    return int(sum(t.numel() * t.element_size() for t in layers))
