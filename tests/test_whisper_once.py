"""One Whisper extraction runs the encoder once, and gives what separate whisper runs give.

The reference below is the extraction done the plain way, independent of the adapter's
``extract``: ``whisper.transcribe(..., word_timestamps=True)`` on the window (its own log-mel, its
own encoder passes, and ``find_alignment``'s own pass of the whole model with explicit attention),
then the encoder capture and one teacher-forced decoder pass over transcribe's tokens.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import whisper

from steve_qt.core.speech.audio import load_audio
from steve_whisper.capture import QKCapture

SAMPLES = ["dark_suit", "oily_rag", "cats_and_dogs", "how_much_fish"]
#: find_alignment's own pass runs the encoder and decoder with explicit attention (softmax, then
#: weights @ v), the extraction's with SDPA's kernel: the logits, and so the word probabilities
#: (softmax of the logits, mean over a word's tokens), differ by float32 rounding (measured on an
#: AMD EPYC: at most 3.2e-6 over the 36 words of the four samples)
PROBABILITY_ATOL = 1e-5


def reference(adapter, samples: np.ndarray):
    model = adapter.model
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        result = whisper.transcribe(model, samples, language="en", fp16=False, verbose=None,
                                    condition_on_previous_text=False, word_timestamps=True)
    tok = whisper.tokenizer.get_tokenizer(False)
    text_tokens = [t for s in result["segments"] for t in s["tokens"] if t < tok.eot]
    tokens = [*tok.sot_sequence, tok.no_timestamps, *text_tokens, tok.eot]
    words = [(w["word"].strip(), float(w["start"]), float(w["end"]), float(w["probability"]))
             for s in result["segments"] for w in s["words"]]
    keep = -(-len(samples) // 320)
    mel = adapter.mel(samples)
    with torch.no_grad():
        with QKCapture([b.attn for b in model.encoder.blocks], 6, keep_queries=keep,
                       keep_keys=keep) as enc:
            features = model.encoder(mel[None])
        with QKCapture([b.cross_attn for b in model.decoder.blocks], 6, keep_keys=keep) as x, \
                QKCapture([b.attn for b in model.decoder.blocks], 6, causal=True) as d:
            model.decoder(torch.tensor(tokens)[None], features)
    return result["text"].strip(), tokens, words, {"encoder": enc.arrays(), "cross": x.arrays(),
                                                    "decoder": d.arrays()}


@pytest.fixture(scope="module")
def pairs(whisper_adapter, samples_dir):
    out = {}
    for name in SAMPLES:
        samples = load_audio(samples_dir / f"{name}.wav").samples
        out[name] = (reference(whisper_adapter, samples), whisper_adapter.extract(samples))
    return out


@pytest.mark.parametrize("name", SAMPLES)
def test_extraction_equals_transcribe_and_a_separate_teacher_forced_pass(pairs, name):
    (text, tokens, words, arrays), ex = pairs[name]
    assert ex.transcript.text == text
    assert ex.transcript.tokens == tokens
    got = [(w.text, w.start_s, w.end_s) for w in ex.transcript.words]
    assert got == [w[:3] for w in words]  # the times bit for bit
    assert len(words) >= 3
    np.testing.assert_allclose([w.probability for w in ex.transcript.words],
                               [w[3] for w in words], rtol=0, atol=PROBABILITY_ATOL)
    for comp, (w, s, p) in arrays.items():
        m = ex.maps[comp]
        assert np.array_equal(m.weights, w) and np.array_equal(m.scores, s)
        assert np.array_equal(m.padding_mass, p)


def test_one_encoder_pass_per_extraction(whisper_adapter, dark_suit):
    """Also: the audio frames are projected to cross-attention keys once per decoder block (the
    teacher-forced pass takes them from the decode)."""
    samples = load_audio(dark_suit).samples
    model = whisper_adapter.model
    calls, keys = [], []
    hooks = [model.encoder.register_forward_hook(lambda *a: calls.append(1))]
    hooks += [b.cross_attn.key.register_forward_hook(lambda *a: keys.append(1))
              for b in model.decoder.blocks]
    try:
        ex = whisper_adapter.extract(samples)
    finally:
        for h in hooks:
            h.remove()
    assert set(ex.maps) == {"encoder", "cross", "decoder"} and ex.transcript.words
    assert len(calls) == 1
    assert len(keys) == len(model.decoder.blocks)


def test_the_counter_sees_whispers_own_encoder_passes(whisper_adapter, dark_suit):
    """transcribe with word timestamps runs the encoder for the decode and again for the word
    timings: the hook used above counts them."""
    samples = load_audio(dark_suit).samples
    calls = []
    hook = whisper_adapter.model.encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            whisper.transcribe(whisper_adapter.model, samples, language="en", fp16=False,
                               verbose=None, word_timestamps=True)
    finally:
        hook.remove()
    assert len(calls) == 2


def test_another_log_mel_runs_the_model(whisper_adapter, dark_suit):
    """A log-mel other than the known one (a later seek of transcribe) is encoded by the model."""
    from steve_whisper.encoded import EncodedWindow

    samples = load_audio(dark_suit).samples
    mel = whisper_adapter.mel(samples)
    model = whisper_adapter.model
    with torch.no_grad():
        features = model.encoder(mel[None])
    enc = EncodedWindow(model, mel, features, lambda tok: pytest.fail("not the known mel"))
    options = whisper.DecodingOptions(language="en", fp16=False, without_timestamps=True)
    other = mel.clone()
    other[:, :50] += 0.01
    calls = []
    hook = model.encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        same = enc.decode(mel, options)
        enc.decode(other, options)
    finally:
        hook.remove()
    assert len(calls) == 1 and enc.encoder_reruns == 1
    assert same.tokens == whisper.decode(model, mel, options).tokens
