"""WhisperAdapter.transcribe(edits=...): forward hooks on module paths, always removed."""

import math

import numpy as np
import pytest
import torch
import whisper

from steve_qt.core.errors import SteveError


@pytest.fixture(scope="module")
def audio(dark_suit_extraction):
    return dark_suit_extraction[0].samples


def _plain_transcribe(model, audio):
    """whisper.transcribe as a user calls it for one greedy pass without timestamps (as the
    adapter's transcribe decodes)."""
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        return whisper.transcribe(model, audio, language="en", fp16=False, verbose=None,
                                  temperature=0.0, without_timestamps=True,
                                  sample_len=10 + math.ceil(10 * len(audio) / 16000),
                                  word_timestamps=False,
                                  condition_on_previous_text=False)["text"].strip()


def test_no_edits_equals_extract(whisper_adapter, dark_suit_extraction, audio):
    t = whisper_adapter.transcribe(audio)
    assert t.text == dark_suit_extraction[1].transcript.text
    assert t.tokens == dark_suit_extraction[1].transcript.tokens
    assert len(t.token_texts) == len(t.tokens)


def test_edit_equals_plain_forward_hook(whisper_adapter, audio):
    model = whisper_adapter.model

    def scale_half(out):  # a strong edit: halve block 1's residual stream
        return out * 0.5

    handle = model.encoder.blocks[1].register_forward_hook(lambda m, i, o: o * 0.5)
    try:
        expected = _plain_transcribe(model, audio)
    finally:
        handle.remove()
    got = whisper_adapter.transcribe(audio, edits={"encoder.blocks.1": scale_half}).text
    assert got == expected
    assert got != whisper_adapter.transcribe(audio).text  # the edit did something
    assert not model.encoder.blocks[1]._forward_hooks


def test_hooks_removed_when_edit_raises(whisper_adapter, audio):
    def boom(out):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        whisper_adapter.transcribe(audio, edits={"encoder.ln_post": boom})
    assert not whisper_adapter.model.encoder.ln_post._forward_hooks


def test_unknown_module_path(whisper_adapter, audio):
    with pytest.raises(SteveError, match="no module 'encoder.blocks.99'"):
        whisper_adapter.transcribe(audio, edits={"encoder.blocks.99": lambda o: o})
    with pytest.raises(SteveError):
        whisper_adapter.transcribe(np.zeros(0, np.float32))


def test_greedy_pass_stops_runaway_output(whisper_adapter, audio):
    """A broken input (attention limited to +-5 frames) makes tiny.en repeat ". . ." up to
    whisper's 224 tokens; the adapter's pass stops at 10 tokens per second of audio + 10."""
    limit = 10 + math.ceil(10 * len(audio) / 16000)
    with whisper_adapter.attention_window(5, None):
        t = whisper_adapter.transcribe(audio)
    text = [tok for tok, label in zip(t.tokens, t.token_texts) if not label.startswith("<|")]
    assert 0 < len(text) <= limit
