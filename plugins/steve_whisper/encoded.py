"""whisper.transcribe on a window whose encoder output is already known.

``whisper.transcribe(model, audio, word_timestamps=True)`` runs the encoder once per decode (and
per temperature of its fallback) and once more in ``whisper.timing.find_alignment``, which runs
the whole model over the final tokens for the word timings. The extraction has the encoder
output already (the pass that captured the encoder attention, on the same log-mel), so it gives
transcribe an :class:`EncodedWindow` in place of the model: transcribe's own code decides
everything (options, temperature fallback, seeking, timestamp rules, word-timing heuristics),
and only the calls that would run the encoder on the known log-mel are answered from the known
output:

- ``model.decode(mel, options)`` -> ``whisper.decode(model, audio_features, options)`` (which
  skips the encoder when given audio features, ``DecodingTask._get_audio_features``);
- ``model.detect_language(mel)`` (multilingual models) -> the same on the audio features;
- ``model(mel, tokens)`` (find_alignment's teacher-forced pass) -> ``teacher_forced(tokens)``,
  which runs the decoder on the audio features and must return the logits and let the hooks
  find_alignment puts on every ``decoder.blocks[i].cross_attn`` see whisper's pre-softmax scores
  as their second output (``QKCapture(return_qk=True)``).

Any other log-mel (transcribe seeks to a later point of the window when the first decode did
not reach its end) goes to the model itself. Every other attribute is the model's.

The decode computes each decoder block's cross-attention keys and values from the audio
features once (its kv-cache); ``cross_kv`` keeps them, and :func:`decoder_pass` gives them to
the teacher-forced pass, which then does not project the 1500 audio frames again (the same
Linear on the same input: the same numbers).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from whisper.decoding import decode, detect_language

#: the known log-mel may differ from transcribe's own (30 s of zeros appended before the STFT
#: instead of a few hundred) by float32 rounding of the FFT, at most 4 ulps (tests/test_whisper.py;
#: log-mel values lie below 4, where 4 ulps are at most 4 * 2**-22); such a log-mel counts as the
#: known one
MEL_ATOL = 4 * 2.0 ** -22


class EncodedWindow:
    def __init__(self, model, mel: Tensor, audio_features: Tensor,
                 teacher_forced: Callable[[Tensor], Tensor]):
        self._model = model
        self._mel = mel.to(audio_features.device)
        self._features = audio_features
        self._teacher_forced = teacher_forced
        self.encoder_reruns = 0  # log-mels that were not the known one
        self.cross_kv: dict = {}  # cross_attn.key / .value Linear -> its output on the features

    def __getattr__(self, name):
        return getattr(self._model, name)

    def _known(self, mel: Tensor) -> bool:
        m = self._mel
        known = mel.shape == m.shape and mel.dtype == m.dtype and mel.device == m.device and (
            torch.equal(mel, m) or torch.allclose(mel, m, rtol=0.0, atol=MEL_ATOL))
        self.encoder_reruns += not known
        return known

    def decode(self, mel: Tensor, options):
        if mel.ndim == 2 and self._known(mel):
            hooks = [] if self.cross_kv else [
                lin.register_forward_hook(self._keep_cross_kv)
                for b in self._model.decoder.blocks for lin in (b.cross_attn.key, b.cross_attn.value)]
            try:
                return decode(self._model, self._features, options)[0]
            finally:
                for h in hooks:
                    h.remove()
        return self._model.decode(mel, options)

    def _keep_cross_kv(self, module, inputs, output) -> None:
        if inputs[0] is self._features:
            self.cross_kv[module] = output

    def detect_language(self, mel: Tensor, tokenizer=None):
        if mel.ndim == 2 and self._known(mel):
            tokens, probs = detect_language(self._model, self._features, tokenizer)
            return tokens[0], probs[0]
        return self._model.detect_language(mel, tokenizer)

    def __call__(self, mel: Tensor, tokens: Tensor) -> Tensor:
        if mel.ndim == 3 and mel.shape[0] == 1 and self._known(mel[0]):
            return self._teacher_forced(tokens)
        return self._model(mel, tokens)


def decoder_pass(decoder, tokens: Tensor, audio_features: Tensor, cross_kv: dict) -> Tensor:
    """``decoder(tokens, audio_features)`` with the cross-attention keys and values given.

    whisper's ``MultiHeadAttention`` takes a cross-attention's key and value from ``kv_cache``
    when its ``key`` Linear is in it (self-attention always projects its input: no kv-cache hooks
    are installed). ``TextDecoder`` reads the position offset from the first entry's length,
    so the dict starts with an empty (1, 0) entry: offset 0, as without a cache.
    """
    if not cross_kv:
        return decoder(tokens, audio_features)
    cache = {"offset": audio_features.new_empty(1, 0), **cross_kv}
    return decoder(tokens, audio_features, kv_cache=cache)
