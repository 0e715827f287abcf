"""Word boundaries from Whisper's cross-attention, computed as ``whisper.timing.find_alignment`` does.

Input: the ``cross`` AttentionMaps of one teacher-forced decoder pass (query rows = the whole token
sequence ``[*sot_sequence, <|notimestamps|>, *text_tokens, <|endoftext|>]``, keys = audio
frames) and the token ids of that sequence. Steps, as in openai-whisper 20250625:

1. the weights of the alignment heads, with the softmax taken over the audio frames only
   (``num_samples // 320`` frames; whisper crops the pre-softmax scores to them, here the stored
   weights -- a softmax over all 1500 keys -- are renormalised over those frames, which is the same
   thing);
2. z-scored per head and per frame over the token axis (``std_mean(dim=-2)``, all rows);
3. median filter of width 7 along the frames (``whisper.timing.median_filter``);
4. mean over heads; rows ``len(sot_sequence) .. -1`` (the rows that *predict* the text tokens
   and ``<|endoftext|>``: the query of position i attends to the audio of token i + 1);
5. DTW on the negative matrix (``whisper.timing.dtw``); where the token index jumps the token
   starts; words from ``tokenizer.split_to_word_tokens``, punctuation merged with
   ``whisper.timing.merge_punctuations``.

Not reproduced: the heuristics of ``whisper.timing.add_word_timestamps`` that shorten words
longer than twice the median word duration at sentence or segment boundaries, and the rounding
to 10 ms; so a word here can differ from whisper's own ``word_timestamps`` at the first and the
last word of a segment. Times are on the file timeline (the window offset is added).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.errors import SteveError
from steve_qt.core.frames import samples_to_seconds

TIER_NAME = "whisper words"
MEDFILT_WIDTH = 7
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
ENGLISH_SOT = 50257  # <|startoftranscript|> of the English-only vocabulary (50258 multilingual)


@dataclass
class AlignedWord:
    text: str  # as whisper writes it, with its leading space and merged punctuation
    start_s: float
    end_s: float
    tokens: list[int] = field(default_factory=list)


@dataclass
class WordAlignment:
    words: list[AlignedWord]
    matrix: np.ndarray  # (R, F) filtered, head-averaged rows that predict text tokens + eot
    text_indices: np.ndarray  # DTW path, row index per step
    time_indices: np.ndarray  # DTW path, frame index per step
    token_start_frames: np.ndarray  # (R,) frame where each row's token starts
    heads: list[tuple[int, int]]
    num_frames: int  # F: audio frames the softmax and DTW ran over

    def tier(self):
        """The words as a Tier named "whisper words" (labels without the leading space)."""
        from steve_qt.core.speech.alignment import Interval, Tier

        return Tier(TIER_NAME, [Interval(w.start_s, w.end_s, w.text.strip()) for w in self.words])


# --- tokenizer -------------------------------------------------------------------------------
def tokenizer_for(tokens: Sequence[int], language: str | None = None):
    """The openai-whisper tokenizer of a token sequence (English-only or multilingual vocabulary,
    told apart by the <|startoftranscript|> id)."""
    from whisper.tokenizer import get_tokenizer

    if not tokens:
        raise SteveError("no tokens to align")
    if tokens[0] == ENGLISH_SOT:
        return get_tokenizer(False)
    return get_tokenizer(True, num_languages=100, language=language or "en", task="transcribe")


def text_span(tokens: Sequence[int], eot: int) -> tuple[int, int]:
    """[start, end) of the text tokens: after the special-token prompt, before <|endoftext|>."""
    start = 0
    while start < len(tokens) and tokens[start] >= eot:
        start += 1
    end = start
    while end < len(tokens) and tokens[end] < eot:
        end += 1
    if start == 0:
        raise SteveError("token sequence has no <|startoftranscript|> prompt")
    return start, end


# --- the steps ---------------------------------------------------------------------------------
def default_heads(maps: AttentionMaps) -> list[tuple[int, int]]:
    """maps.meta["alignment_heads"], else whisper's fallback: every head of the upper half."""
    heads = maps.meta.get("alignment_heads")
    if heads:
        return [(int(a), int(b)) for a, b in heads]
    return [(n, m) for n in range(maps.num_layers // 2, maps.num_layers)
            for m in range(maps.num_heads)]


def dtw_frames(maps: AttentionMaps) -> int:
    """Audio frames whisper's word timing uses: num_frames // 2 mel frames = samples // hop."""
    if maps.key_grid is None:
        raise SteveError("word alignment needs audio frames as keys (the 'cross' component)")
    return max(1, min(maps.num_keys, maps.key_grid.frames_valid(maps.num_samples)))


def head_weights(maps: AttentionMaps, heads: Sequence[tuple[int, int]], num_frames: int) -> np.ndarray:
    """(H, Q, F) weights of ``heads`` with the softmax over the first F frames only."""
    w = np.stack([maps.weights[n, 0, m, :, :num_frames].astype(np.float64) for n, m in heads])
    z = w.sum(axis=-1, keepdims=True)
    return w / np.where(z > 0, z, 1.0)


def filtered_matrix(weights: np.ndarray, medfilt_width: int = MEDFILT_WIDTH) -> np.ndarray:
    """(H, Q, F) -> (Q, F): z-score per head and frame over the tokens, median filter, head mean."""
    import torch
    from whisper.timing import median_filter

    x = torch.from_numpy(weights.astype(np.float32))
    std, mean = torch.std_mean(x, dim=-2, keepdim=True, unbiased=False)
    x = median_filter((x - mean) / std, medfilt_width)
    return x.mean(dim=0).numpy()


def dtw_path(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monotone path through (R, F) maximising the summed matrix: (row indices, frame indices)."""
    import torch
    from whisper.timing import dtw

    from . import dtw as numpy_dtw

    numpy_dtw.install()
    text_indices, time_indices = dtw(torch.from_numpy(-np.asarray(matrix, dtype=np.float64)))
    return np.asarray(text_indices), np.asarray(time_indices)


def token_starts(text_indices: np.ndarray, time_indices: np.ndarray) -> np.ndarray:
    """(R,) frame where the path first enters each row."""
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    return time_indices[jumps]


def align_words(maps: AttentionMaps, tokens: Sequence[int], heads=None,
                medfilt_width: int = MEDFILT_WIDTH, language: str | None = None) -> WordAlignment:
    """Word boundaries of ``tokens`` (the full sequence the cross maps were computed on)."""
    from whisper.timing import WordTiming, merge_punctuations

    tokens = [int(t) for t in tokens]
    if maps.component != "cross":
        raise SteveError(f"word alignment needs the 'cross' attention, not {maps.component!r}")
    if len(tokens) != maps.num_queries:
        raise SteveError(f"{len(tokens)} tokens but the cross-attention has {maps.num_queries} "
                         "query rows")
    tokenizer = tokenizer_for(tokens, language or maps.meta.get("language"))
    start, end = text_span(tokens, tokenizer.eot)
    heads = list(heads) if heads is not None else default_heads(maps)
    f = dtw_frames(maps)
    matrix = filtered_matrix(head_weights(maps, heads, f), medfilt_width)[start - 1:end]  # (R, F)
    empty = WordAlignment([], matrix, np.zeros(0, int), np.zeros(0, int), np.zeros(0, int),
                          heads, f)
    text_tokens = tokens[start:end]
    if not text_tokens:
        return empty
    text_idx, time_idx = dtw_path(matrix)
    starts = token_starts(text_idx, time_idx)  # (R,)
    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot])
    if len(word_tokens) <= 1:
        return empty
    bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    seconds = samples_to_seconds(maps.key_grid.start_sample(starts), maps.key_grid.sample_rate)
    timings = [WordTiming(w, t, float(seconds[a]), float(seconds[b]), float("nan"))
               for w, t, a, b in zip(words, word_tokens, bounds[:-1], bounds[1:])]
    merge_punctuations(timings, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
    out = [AlignedWord(t.word, t.start, t.end, list(t.tokens)) for t in timings if t.word]
    return WordAlignment(out, matrix, text_idx, time_idx, starts, heads, f)
