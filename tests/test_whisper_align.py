"""Word boundaries from Whisper cross-attention (whisper.timing's recipe) and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.errors import SteveError
from steve_qt.core.frames import whisper_grid
from steve_qt.core.speech.word_errors import boundary_errors, format_errors, normalise_word
from steve_whisper.align import TIER_NAME, align_words, dtw_path, text_span, token_starts

SENTENCE = " She had your dark suit."


def english_tokens(text: str) -> list[int]:
    from whisper.tokenizer import get_tokenizer

    tok = get_tokenizer(False)
    return [tok.sot, tok.no_timestamps, *tok.encode(text), tok.eot]


def synthetic_cross(tokens: list[int], starts: list[int], num_frames: int,
                    heads=((1, 0), (1, 2)), window: int = 0) -> AttentionMaps:
    """Cross maps whose alignment heads attend, in the row that predicts text token i, to frames
    starts[i]..starts[i+1] (the last span predicts <|endoftext|>); other heads are uniform."""
    q, n_layers, n_heads = len(tokens), 2, 3
    w = np.full((n_layers, 1, n_heads, q, num_frames), 1.0 / num_frames, dtype=np.float64)
    bounds = [*starts, num_frames]
    first_row = 1  # <|notimestamps|> predicts the first text token
    for n, m in heads:
        w[n, 0, m] = 0.2 / num_frames  # 20 % spread everywhere ...
        for i in range(len(starts)):
            a, b = bounds[i], bounds[i + 1]
            w[n, 0, m, first_row + i, a:b] += 0.8 / (b - a)  # ... 80 % on the token's frames
    pad = np.zeros((n_layers, n_heads, q), dtype=np.float32)
    grid = whisper_grid(window)
    return AttentionMaps(w.astype(np.float16), None, pad, "cross", "synthetic", 16000,
                         num_frames * 320, key_grid=grid, query_labels=[str(t) for t in tokens],
                         window=window, num_windows=window + 1,
                         meta={"alignment_heads": [list(h) for h in heads]})


def test_dtw_follows_a_known_monotone_path():
    # a clear staircase: row r owns frames 10r .. 10r+9 (+1 there, -1 elsewhere; with 0 elsewhere
    # a free vertical step would tie with the diagonal one and whisper's DTW takes the vertical)
    matrix = -np.ones((4, 40))
    for r in range(4):
        matrix[r, 10 * r:10 * r + 10] = 1.0
    rows, frames = dtw_path(matrix)
    assert rows[0] == 0 and frames[0] == 0 and rows[-1] == 3 and frames[-1] == 39
    assert np.all(np.diff(rows) >= 0) and np.all(np.diff(frames) >= 0)
    assert list(token_starts(rows, frames)) == [0, 10, 20, 30]


def test_words_from_a_synthetic_cross_attention():
    tokens = english_tokens(SENTENCE)  # She had your dark suit . <eot>
    text = tokens[2:-1]
    assert len(text) == 6
    # token i starts at frame starts[i]; the last span is <|endoftext|>
    starts = [0, 12, 25, 33, 50, 70, 74]
    maps = synthetic_cross(tokens, starts, num_frames=90)
    res = align_words(maps, tokens)
    got = [(w.text, round(w.start_s, 3), round(w.end_s, 3)) for w in res.words]
    print(got)
    # frame f starts at f * 20 ms; "." is merged into "suit." keeping suit's end (as whisper's
    # merge_punctuations does)
    assert got == [(" She", 0.0, 0.24), (" had", 0.24, 0.5), (" your", 0.5, 0.66),
                   (" dark", 0.66, 1.0), (" suit.", 1.0, 1.4)]
    assert res.num_frames == 90 and res.matrix.shape == (len(text) + 1, 90)
    assert list(res.token_start_frames) == starts
    assert res.heads == [(1, 0), (1, 2)]


def test_window_offset_and_padding_frames():
    tokens = english_tokens(SENTENCE)
    starts = [0, 12, 25, 33, 50, 70, 74]
    maps = synthetic_cross(tokens, starts, num_frames=90, window=2)
    # keys beyond num_samples // 320 are padding-covering frames: whisper leaves them out
    maps.num_samples = 90 * 320 - 1  # 89 whole frames
    res = align_words(maps, tokens)
    assert res.num_frames == 89
    assert res.words[0].start_s == pytest.approx(60.0)  # window 2 starts at 60 s
    assert res.words[1].start_s == pytest.approx(60.24)


def test_tokens_must_match_rows():
    tokens = english_tokens(SENTENCE)
    maps = synthetic_cross(tokens, [0, 12, 25, 33, 50, 70, 74], num_frames=90)
    with pytest.raises(SteveError, match="query rows"):
        align_words(maps, tokens[:-1])
    assert text_span(tokens, 50256) == (2, len(tokens) - 1)


class _Iv:
    def __init__(self, a, b, label):
        self.start_s, self.end_s, self.label = a, b, label


class _Tier:
    def __init__(self, intervals):
        self.intervals = [_Iv(*iv) for iv in intervals]


def test_boundary_errors_pair_words_by_text_in_order():
    ref = _Tier([(0.0, 0.1, ""), (0.1, 0.3, "she"), (0.3, 0.5, "had"), (0.5, 0.7, "your"),
                 (0.7, 1.0, "dark"), (1.0, 1.4, "suit"), (1.4, 1.5, "")])
    hyp = _Tier([(0.0, 0.32, "She"), (0.32, 0.48, "had"), (0.48, 0.7, "your"),
                 (0.7, 0.9, "dog"), (0.9, 1.0, "uh"), (1.0, 1.5, "suit.")])
    errs = boundary_errors(hyp, ref)
    pairs = [(e.ref, e.hyp, round(e.start_error_ms), round(e.end_error_ms), e.same_text)
             for e in errs]
    print(format_errors(errs))
    # "dark"/"dog uh" is not an equal-length substitution: left unpaired
    assert pairs == [("she", "She", -100, 20, True), ("had", "had", 20, -20, True),
                     ("your", "your", -20, 0, True), ("suit", "suit.", 0, 100, True)]
    hyp2 = _Tier([(0.1, 0.3, "she"), (0.3, 0.5, "had"), (0.5, 0.7, "your"), (0.7, 0.95, "dog"),
                  (0.95, 1.4, "suit")])
    subs = [(e.ref, e.hyp, round(e.end_error_ms)) for e in boundary_errors(hyp2, ref)
            if not e.same_text]
    assert subs == [("dark", "dog", -50)]
    assert normalise_word("Don't,") == "dont" and normalise_word("<sil>") == "sil"


# --- the real model on the "dark suit" sample ---------------------------------------------------
@pytest.fixture(scope="module")
def dark_suit_words(dark_suit_extraction, dark_suit):
    from steve_qt.core.models.pipeline import open_utterance

    _audio, ex = dark_suit_extraction
    res = align_words(ex.maps["cross"], ex.transcript.tokens)
    utt = open_utterance(dark_suit)
    return ex, res, utt.alignment.words


def test_dark_suit_agrees_with_whisper_find_alignment(dark_suit_words, whisper_adapter, dark_suit):
    """Our recomputation from the stored float16 maps vs whisper.timing.find_alignment run on the
    same model input (the adapter's mel) and the same tokens."""
    from whisper.timing import find_alignment, merge_punctuations
    from whisper.tokenizer import get_tokenizer

    from steve_qt.core.speech.audio import load_audio
    from steve_whisper.align import APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS

    ex, res, _ref = dark_suit_words
    samples = load_audio(dark_suit).samples
    tokens = ex.transcript.tokens
    tok = get_tokenizer(False)
    timings = find_alignment(whisper_adapter.model, tok, tokens[2:-1],
                             whisper_adapter.mel(samples), len(samples) // 160)
    merge_punctuations(timings, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
    theirs = [(t.word, t.start, t.end) for t in timings if t.word]
    ours = [(w.text, w.start_s, w.end_s) for w in res.words]
    print("ours:  ", [(t, round(a, 2), round(b, 2)) for t, a, b in ours])
    print("whisper:", [(t, round(a, 2), round(b, 2)) for t, a, b in theirs])
    assert [t for t, _, _ in ours] == [t for t, _, _ in theirs]
    diffs = np.abs([[a - c, b - d] for (_, a, b), (_, c, d) in zip(ours, theirs)])
    # float16 storage of the weights may move a DTW step by one 20 ms frame
    assert diffs.max() <= 0.0201 and np.mean(diffs < 1e-6) >= 0.8, diffs


def test_dark_suit_near_whisper_word_timestamps(dark_suit_words):
    """vs whisper's own word_timestamps from transcribe(). Both encode the same input (the log-mel
    of the audio, zero-padded in the mel domain: test_whisper's
    test_maps_come_from_the_input_transcribe_uses); the timings still differ because transcribe
    shortens over-long first/last words and rounds to 10 ms, and because our weights are stored as
    float16, which may move a DTW step by one 20 ms frame."""
    ex, res, _ref = dark_suit_words
    ours = [(w.text.strip(), w.start_s, w.end_s) for w in res.words]
    theirs = [(w.text, w.start_s, w.end_s) for w in ex.transcript.words]
    assert [t for t, _, _ in ours] == [t for t, _, _ in theirs]
    inner = np.abs([a - b for (_, a, _), (_, b, _) in zip(ours[1:], theirs[1:])]
                   + [a - b for (_, _, a), (_, _, b) in zip(ours[:-1], theirs[:-1])])
    print("boundary differences to transcribe() (ms):", np.round(1000 * inner).astype(int))
    assert inner.max() <= 0.0401 and np.mean(inner <= 0.0201) >= 0.8


def test_dark_suit_boundaries_near_espeak(dark_suit_words):
    """The model's own transcript: only words it heard right can be compared."""
    ex, res, ref = dark_suit_words
    tier = res.tier()
    assert tier.name == TIER_NAME
    errs = [e for e in boundary_errors(tier, ref) if e.same_text]
    print(f"\ntranscript: {ex.transcript.text}\n" + format_errors(errs))
    # tiny.en mishears part of this synthetic voice (measured: 8 of 11 words right, boundaries
    # 49-138 ms off, 44 % within 100 ms, whisper +85 ms late on average); the 100 ms criterion
    # is checked on every word with the reference text below
    assert len(errs) >= 4, "too few words heard right to compare"
    ms = np.abs([[e.start_error_ms, e.end_error_ms] for e in errs])
    assert np.median(ms) <= 150 and ms.max() <= 250


def forced_cross_maps(adapter, samples: np.ndarray, text: str) -> tuple[AttentionMaps, list[int]]:
    """Cross-attention of a teacher-forced pass over a given text (the reference sentence), as
    whisper.timing does over its own transcript; uses the Whisper plugin's capture hooks."""
    import torch
    from steve_whisper.capture import QKCapture
    from whisper.tokenizer import get_tokenizer

    tok = get_tokenizer(False)
    tokens = [tok.sot, tok.no_timestamps, *tok.encode(" " + text.strip()), tok.eot]
    grid = whisper_grid()
    keep = grid.frames_covering(len(samples))
    model = adapter.model
    with torch.no_grad():
        features = model.encoder(adapter.mel(samples)[None])
        with QKCapture([b.cross_attn for b in model.decoder.blocks], adapter.dims.n_text_head,
                       keep_keys=keep) as cap:
            model.decoder(torch.tensor(tokens)[None], features)
    w = torch.stack([la.weights for la in cap.layers])[:, None].numpy()
    pad = torch.stack([la.padding for la in cap.layers]).numpy()
    maps = AttentionMaps(w, None, pad, "cross", adapter.model_id, 16000, len(samples),
                         key_grid=grid, query_labels=[str(t) for t in tokens],
                         meta={"alignment_heads": [list(h) for h in adapter.alignment_heads]})
    return maps, tokens


def test_dark_suit_reference_text_boundaries_near_espeak(whisper_adapter, dark_suit):
    """Every word: the reference sentence teacher-forced, then the same DTW."""
    from steve_qt.core.models.pipeline import open_utterance

    utt = open_utterance(dark_suit)
    maps, tokens = forced_cross_maps(whisper_adapter, utt.audio.samples, utt.alignment.text)
    errs = boundary_errors(align_words(maps, tokens).tier(), utt.alignment.words)
    print(f"\nreference text forced: {utt.alignment.text}\n" + format_errors(errs))
    assert len(errs) == 11 and all(e.same_text for e in errs)
    ms = np.abs([[e.start_error_ms, e.end_error_ms] for e in errs])
    # measured: 59 % of the 22 boundaries within 100 ms, median 93 ms, max 133 ms, whisper late
    # by +68 ms on average (whisper.timing.find_alignment itself gives the same, see above)
    assert np.mean(ms <= 100) > 0.5, "most boundaries should be within 100 ms"
    assert np.median(ms) <= 100 and ms.max() <= 200


def test_core_reaches_the_alignment_through_the_adapter_by_model_name():
    """core.models.adapters.word_alignment finds Whisper's aligner by the maps' model name and
    gives what steve_whisper.align gives; a model without one (wav2vec 2.0) gives None."""
    from steve_qt.core.models.adapters import word_alignment

    import dataclasses

    tokens = english_tokens(SENTENCE)
    synthetic = synthetic_cross(tokens, [0, 12, 25, 33, 50, 70, 74], num_frames=90)
    maps = dataclasses.replace(synthetic, model="whisper:tiny.en (embedded)")
    direct = align_words(maps, tokens)
    via = word_alignment(maps, tokens)
    assert len(direct.words) == 5
    assert [(w.text, w.start_s, w.end_s) for w in via.words] == \
        [(w.text, w.start_s, w.end_s) for w in direct.words]
    assert word_alignment(dataclasses.replace(maps, model="wav2vec2:/some/dir"), tokens) is None
    assert word_alignment(synthetic, tokens) is None  # no adapter is named "synthetic"
