"""Interventions on openai-whisper: attention window, span removal, steering, logit lens, LM.

Each one is an edited run of the model (``edits.py`` hooks, or an instance-level
``qkv_attention`` for the attention window); the tables they produce are compared with
``steve_qt.core.speech.textdiff`` by ``steve_qt.core.interventions.tables``.

Shapes: encoder activations (1, 1500, D) over the padded 30 s window; the audio covers the first
``keep = ceil(samples / 320)`` frames; decoder activations (1, n_tokens, D).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram
from whisper.tokenizer import get_tokenizer

from steve_qt.core.errors import SteveError

from .capture import KEY_MASK_ATTR, split_heads


# ---------------------------------------------------------------------------------------------
# 1. +-k attention window on the encoder's self-attention

def band_allowed(n: int, k: int) -> Tensor:
    """(n, n) bool: True where |query - key| <= k."""
    idx = torch.arange(n)
    return (idx[:, None] - idx[None, :]).abs() <= k


def _masked_qkv_attention(mod: torch.nn.Module, allowed: Tensor):
    """whisper's qkv_attention with scores outside ``allowed`` set to -inf before the softmax."""
    def qkv_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None):
        qh, kh, vh = (split_heads(x, mod.n_head) for x in (q, k, v))
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=allowed)  # (1, M, T, d)
        return out.permute(0, 2, 1, 3).flatten(start_dim=2), None
    return qkv_attention


def check_layers(model: torch.nn.Module, layers: Sequence[int] | None) -> list[int]:
    n = len(model.encoder.blocks)
    if layers is None:
        return list(range(n))
    bad = [l for l in layers if not 0 <= l < n]
    if bad:
        raise SteveError(f"encoder layer {bad[0]} does not exist (layers 0 to {n - 1})")
    return sorted(set(layers))


@contextlib.contextmanager
def attention_window(model: torch.nn.Module, k: int | None,
                     layers: Sequence[int] | None = None,
                     always_mask: bool = False) -> Iterator[None]:
    """Encoder self-attention of ``layers`` (default all) limited to keys with |q - key| <= k.

    ``k`` None, or k >= n_ctx - 1 (every key allowed), changes nothing: the model runs as it is.
    Attention capture (``QKCapture``) inside the block honours the mask, so the maps are the
    masked ones. ``always_mask`` applies the mask even when it allows every key (tests).
    """
    if k is not None and k <= 0:
        raise SteveError(f"the attention window k must be a positive number of frames, got {k}")
    layers = check_layers(model, layers)
    n_ctx = model.dims.n_audio_ctx
    if k is None or (k >= n_ctx - 1 and not always_mask):
        yield
        return
    allowed = band_allowed(n_ctx, k)
    mods = [model.encoder.blocks[l].attn for l in layers]
    try:
        for mod in mods:
            setattr(mod, KEY_MASK_ATTR, allowed)
            mod.qkv_attention = _masked_qkv_attention(mod, allowed)
        yield
    finally:
        for mod in mods:
            mod.__dict__.pop("qkv_attention", None)
            mod.__dict__.pop(KEY_MASK_ATTR, None)


# ---------------------------------------------------------------------------------------------
# 2. span removal: encoder output frames replaced by the frames of a padding or silence input

def padding_mel(n_mels: int) -> Tensor:
    """(n_mels, 3000) what ``transcribe`` feeds the encoder where there is no audio: zeros."""
    return torch.zeros(n_mels, N_FRAMES)


def silence_mel(n_mels: int) -> Tensor:
    """(n_mels, 3000) log-mel of 30 s of digital silence (zero samples)."""
    return log_mel_spectrogram(torch.zeros(N_SAMPLES), n_mels)[:, :N_FRAMES]


def fill_frames(model: torch.nn.Module, fill: str) -> Tensor:
    """(1, 1500, D) the encoder's output for an all-padding or all-silence input."""
    makers = {"padding": padding_mel, "silence": silence_mel}
    if fill not in makers:
        raise SteveError(f"unknown fill {fill!r} (padding or silence)")
    with torch.no_grad():
        return model.encoder(makers[fill](model.dims.n_mels)[None])


def replace_frames(f0: int, f1: int, fill: Tensor) -> Callable[[Tensor], Tensor]:
    """An edit of the encoder output: frames [f0, f1) taken from ``fill`` (1, 1500, D)."""
    def edit(out: Tensor) -> Tensor:
        if f1 <= f0:
            return out
        out = out.clone()
        out[:, f0:f1] = fill[:, f0:f1].to(out.dtype)
        return out
    return edit


ENCODER_OUTPUT = "encoder.ln_post"


# ---------------------------------------------------------------------------------------------
# 3. steering a neuron (one channel of a site) or an SAE feature

def is_frames_site(site: str) -> bool:
    return site.startswith("encoder")


def scale_neuron(feature: int, scale: float, f0: int | None = None,
                 f1: int | None = None) -> Callable[[Tensor], Tensor]:
    """Multiply channel ``feature`` by ``scale`` over positions [f0, f1) (None: all)."""
    def edit(out: Tensor) -> Tensor:
        out = out.clone()
        out[:, f0:f1, feature] *= scale
        return out
    return edit


def sae_edit(sae, feature: int | None, scale: float, f0: int | None = None,
             f1: int | None = None) -> Callable[[Tensor], Tensor]:
    """An SAE edit over positions [f0, f1) (``steve_qt.core.features.sae.SAE``).

    ``feature`` None: substitute the SAE's reconstruction decode(encode(x)) (FREUD's baseline).
    Otherwise keep x and add only the change that scaling feature F's code makes:
    x' = x + decode(c') - decode(c), c = encode(x), c' = c with c_F * scale; for an SAE without
    input normalisation that is x + (scale - 1) * f_F(x) * W_dec[F]. The SAE's reconstruction
    error is kept, so scale 1 gives x back exactly and the steered run differs from the
    original by the feature alone. (FREUD substitutes decode(c') itself; its effect is the
    ``reconstruction`` row's change plus the feature's.)
    """
    def edit(out: Tensor) -> Tensor:
        out = out.clone()
        x = out[0, f0:f1].float()  # (T', d_in)
        with torch.no_grad():
            codes = sae.encode(x)  # (T', d_sae)
            if feature is None:
                new = sae.decode(codes, like=x)
            else:
                edited = codes.clone()
                edited[:, feature] *= scale
                new = x + (sae.decode(edited, like=x) - sae.decode(codes, like=x))
        out[0, f0:f1] = new.to(out.dtype)
        return out
    return edit


# ---------------------------------------------------------------------------------------------
# 4. logit lens

def encoder_lens_edits(model: torch.nn.Module, layer: int) -> dict[str, Callable]:
    """Edits that feed block ``layer``'s output, through ``ln_post``, to the decoder."""
    saved: dict[str, Tensor] = {}
    ln_post = model.encoder.ln_post

    def keep(out: Tensor) -> None:
        saved["x"] = out

    def through_ln_post(out: Tensor) -> Tensor:
        return ln_post.forward(saved["x"])  # .forward: this module's hooks do not fire again

    return {f"encoder.blocks.{layer}": keep, ENCODER_OUTPUT: through_ln_post}


@dataclass
class DecoderLens:
    tokens: list[int]  # (n,) the teacher-forced sequence
    probs: np.ndarray  # (L, n, V) float32 next-token probabilities per decoder layer


def decoder_lens(model: torch.nn.Module, mel: Tensor, tokens: Sequence[int]) -> DecoderLens:
    """Per decoder layer l: softmax(ln(h_l) @ E^T) at every position of ``tokens``."""
    dec = model.decoder
    hidden: dict[int, Tensor] = {}
    handles = [b.register_forward_hook(lambda m, i, o, l=l: hidden.__setitem__(l, o))
               for l, b in enumerate(dec.blocks)]
    try:
        with torch.no_grad():
            feats = model.encoder(mel[None])
            dec(torch.tensor(list(tokens))[None], feats)
            probs = [torch.softmax(dec.ln(hidden[l])[0] @ dec.token_embedding.weight.T, -1)
                     for l in range(len(dec.blocks))]
    finally:
        for h in handles:
            h.remove()
    return DecoderLens(list(tokens), torch.stack(probs).float().numpy())


# ---------------------------------------------------------------------------------------------
# 5. the decoder as a language model

def tokenizer_of(model: torch.nn.Module):
    return get_tokenizer(model.is_multilingual, num_languages=model.num_languages,
                         language="en", task="transcribe")


def token_text(tokenizer, token: int) -> str:
    return tokenizer.encoding.decode_single_token_bytes(token).decode("utf-8", errors="replace")


@dataclass
class NextTokens:
    prompt_tokens: list[int]  # the whole sequence fed to the decoder
    tokens: list[int]  # top-N next tokens, best first
    texts: list[str]
    logits: list[float]
    probs: list[float]


def lm_next_tokens(model: torch.nn.Module, prompt: str, top: int = 20) -> NextTokens:
    """Top-``top`` next tokens after the start sequence and ``prompt``, with padding-only audio."""
    if not prompt:
        raise SteveError("the prompt is empty: give some text, e.g. --prompt ' rug'")
    if top <= 0:
        raise SteveError(f"--top must be positive, got {top}")
    tok = tokenizer_of(model)
    seq = list(tok.sot_sequence_including_notimestamps) + tok.encode(prompt)
    with torch.no_grad():
        feats = model.encoder(padding_mel(model.dims.n_mels)[None])
        logits = model.decoder(torch.tensor(seq)[None], feats)[0, -1]  # (V,)
    probs = torch.softmax(logits, -1)
    vals, idx = logits.topk(min(top, logits.shape[0]))
    ids = idx.tolist()
    return NextTokens(seq, ids, [token_text(tok, t) for t in ids], vals.tolist(),
                      probs[idx].tolist())


def nearest_tokens(model: torch.nn.Module, word: str, top: int = 20):
    """Text tokens nearest to ``word`` in the token embedding by cosine similarity.

    The embedding rows of the text tokens are centred first (their mean subtracted): raw rows
    share one large common direction (every cosine is about 0.9 for tiny.en), which hides the
    neighbours. The word's own tokens are averaged (a word of several tokens) and left out of
    the answer. Returns [(token, text, cosine)], best first.
    """
    if not word:
        raise SteveError("the word is empty: give some text, e.g. --neighbours ' rug'")
    tok = tokenizer_of(model)
    ids = tok.encode(word)
    emb = model.decoder.token_embedding.weight.detach().float()[:tok.eot]  # (V_text, D)
    emb = emb - emb.mean(0)
    v = emb[ids].mean(0)
    cos = F.cosine_similarity(emb, v[None], dim=-1)
    cos[ids] = -2.0
    vals, idx = cos.topk(min(top, emb.shape[0] - len(ids)))
    return [(t, token_text(tok, t), float(c)) for t, c in zip(idx.tolist(), vals.tolist())]


# ---------------------------------------------------------------------------------------------
# the adapter's side: what steve_qt.core.interventions.tables calls

class InterventionsMixin:
    """Interventions of WhisperAdapter (needs ``self.model`` and ``self.mel``)."""

    supports_interventions = True

    def attention_window(self, k: int | None, layers: Sequence[int] | None = None,
                         always_mask: bool = False):
        """Context manager: encoder self-attention limited to |q - key| <= k (see above)."""
        return attention_window(self.model, k, layers, always_mask)

    def num_layers(self, part: str = "encoder") -> int:
        return len(getattr(self.model, part).blocks)

    def span_removal_edits(self, f0: int, f1: int, fill: str = "padding") -> dict:
        """Edits replacing encoder output frames [f0, f1) by the padding/silence frames."""
        return {ENCODER_OUTPUT: replace_frames(f0, f1, fill_frames(self.model, fill))}

    def site_dim(self, site: str) -> int:
        """Width of a site (``list_sites``); SteveError listing the sites for an unknown one."""
        from steve_qt.core.models.sites import validate_sites

        return validate_sites([site], self.list_sites())[0].dim

    def steering_edits(self, site: str, feature: int | None, scale: float,
                       frames: tuple[int, int] | None = None, sae=None) -> dict:
        """Edits scaling neuron/SAE feature ``feature`` of ``site`` by ``scale`` over encoder
        frames [f0, f1) (None: every position). With ``sae`` and ``feature`` None: substitute
        the SAE's reconstruction."""
        f0, f1 = frames if frames is not None else (None, None)
        if not is_frames_site(site):
            f0 = f1 = None  # token sites: every position
        if sae is not None:
            return {site: sae_edit(sae, feature, scale, f0, f1)}
        return {site: scale_neuron(feature, scale, f0, f1)}

    def teacher_forced_ce(self, audio: np.ndarray, tokens: Sequence[int],
                          edits: dict | None = None, window: int = 0) -> tuple[float, int]:
        """(summed cross-entropy in nats, tokens scored) of a teacher-forced pass over
        ``tokens`` (a transcript's sequence: prompt, text, end) with ``edits`` applied: every
        token after the prompt (up to ``<|notimestamps|>``) is scored, the end token included."""
        from .edits import edit_hooks

        tok = tokenizer_of(self.model)
        tokens = list(tokens)
        start = tokens.index(tok.no_timestamps) + 1 if tok.no_timestamps in tokens else \
            len(tok.sot_sequence)
        if start >= len(tokens):
            raise SteveError("the token sequence has no text or end token to score")
        mel = self.mel(self.window_audio(audio, window))
        seq = torch.tensor(tokens, device=mel.device)[None]
        with edit_hooks(self.model, edits), torch.no_grad():
            logits = self.model(mel[None], seq)[0].float()  # (n, V)
        targets = seq[0, start:]
        ce = F.cross_entropy(logits[start - 1:-1], targets, reduction="sum")
        return float(ce), int(targets.numel())

    def encoder_lens_edits(self, layer: int) -> dict:
        check_layers(self.model, [layer])
        return encoder_lens_edits(self.model, layer)

    def decoder_lens(self, audio: np.ndarray, tokens: Sequence[int],
                     window: int = 0) -> DecoderLens:
        """Per-layer next-token probabilities (L, n, V) of a teacher-forced pass."""
        return decoder_lens(self.model, self.mel(self.window_audio(audio, window)), tokens)

    def token_texts(self, tokens: Sequence[int]) -> list[str]:
        tok = tokenizer_of(self.model)
        return [token_text(tok, int(t)) for t in tokens]

    def lm_next_tokens(self, prompt: str, top: int = 20) -> NextTokens:
        return lm_next_tokens(self.model, prompt, top)

    def nearest_tokens(self, word: str, top: int = 20):
        return nearest_tokens(self.model, word, top)
