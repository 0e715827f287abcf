"""Greedy CTC decoding of wav2vec 2.0 logits into a Transcript with per-frame labels and words.

Frame ``t`` gets the argmax token; the blank is the pad token. The text is the tokenizer's own
CTC decoding of the frame ids (collapse repeats, drop blanks, word delimiter ``|`` -> space).
A word is a run of non-blank, non-delimiter tokens between delimiters; it spans from the
drawing span of its first token frame to that of its last (times from the FrameGrid), and its
probability is the mean over those token frames of the argmax softmax probability.
"""

from __future__ import annotations

import numpy as np

from steve_qt.core.models.adapters import Transcript, Word
from steve_qt.core.frames import FrameGrid


def frame_probabilities(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """logits (T, V) -> (argmax ids (T,) int64, their softmax probabilities (T,) float32)."""
    ids = logits.argmax(axis=-1)
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    return ids.astype(np.int64), probs[np.arange(len(ids)), ids].astype(np.float32)


def token_runs(ids: np.ndarray, blank: int) -> list[tuple[int, int, int]]:
    """Collapse repeated frame ids: [(token id, first frame, last frame)] without blanks."""
    runs: list[tuple[int, int, int]] = []
    prev = None
    for t, i in enumerate(ids.tolist()):
        if i != prev and i != blank:
            runs.append((i, t, t))
        elif i == prev and i != blank:
            runs[-1] = (i, runs[-1][1], t)
        prev = i
    return runs


def words_from_runs(
    runs: list[tuple[int, int, int]],
    texts: list[str],
    delimiter: int,
    probs: np.ndarray,
    grid: FrameGrid,
) -> list[Word]:
    """Group token runs between word delimiters into timed words."""
    words: list[Word] = []
    current: list[int] = []  # indices into runs

    def close() -> None:
        if not current:
            return
        first, last = runs[current[0]], runs[current[-1]]
        frames = np.concatenate([np.arange(runs[j][1], runs[j][2] + 1) for j in current])
        start, _ = grid.span_seconds(first[1])
        _, end = grid.span_seconds(last[2])
        text = "".join(texts[j] for j in current)
        words.append(Word(float(start), float(end), text, float(probs[frames].mean())))
        current.clear()

    for j, (token, _, _) in enumerate(runs):
        if token == delimiter:
            close()
        else:
            current.append(j)
    close()
    return words


def greedy_transcript(logits: np.ndarray, tokenizer, blank: int, grid: FrameGrid) -> Transcript:
    """logits (T, V) float -> Transcript with frame_labels (T,) and timed words.

    Without a tokenizer the labels are token ids as strings and there is no text or words.
    """
    ids, probs = frame_probabilities(logits)
    if tokenizer is not None:
        blank = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else blank
        names = tokenizer.convert_ids_to_tokens(ids.tolist())
    else:
        names = [str(i) for i in ids.tolist()]
    frame_labels = ["" if i == blank else str(name) for i, name in zip(ids.tolist(), names)]
    runs = token_runs(ids, blank)
    tokens = [r[0] for r in runs]
    token_texts = [frame_labels[r[1]] for r in runs]
    if tokenizer is None:
        return Transcript("", tokens, token_texts, [], frame_labels)
    text = tokenizer.decode(ids.tolist()).strip()
    delim_token = getattr(tokenizer, "word_delimiter_token", None)
    delimiter = tokenizer.get_vocab().get(delim_token) if delim_token else None
    words = [] if delimiter is None else words_from_runs(runs, token_texts, delimiter, probs, grid)
    return Transcript(text, tokens, token_texts, words, frame_labels)
