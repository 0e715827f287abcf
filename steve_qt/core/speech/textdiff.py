"""Word error rate and word-level diff between two transcripts (Qt-free, torch-free).

Words are normalised before they are compared: lower case, punctuation replaced by spaces
(an apostrophe inside a word is kept: "don't" stays one word), split on white space. The
alignment is the Levenshtein alignment of the two word lists (substitution, deletion and
insertion cost 1 each); among equal-cost alignments the backtrace prefers a match or a
substitution, then a deletion, then an insertion.

    wer(ref, hyp) = (substitutions + deletions + insertions) / len(ref words)
    cer(ref, hyp) = the same over the characters of the normalised texts

With an empty reference the WER is 0 when the hypothesis is empty too, else infinity.

:func:`token_words` says which word of a transcript's word timings each token belongs to.
"""

from __future__ import annotations

import re

EQUAL, SUBSTITUTE, DELETE, INSERT = "equal", "substitute", "delete", "insert"

_NOT_WORD = re.compile(r"[^\w']+")


def normalise_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` with punctuation stripped."""
    words = _NOT_WORD.sub(" ", (text or "").lower().replace("_", " ")).split()
    return [w for w in (w.strip("'") for w in words) if w]


def _distance_table(ref: list[str], hyp: list[str]) -> list[list[int]]:
    """(len(ref)+1, len(hyp)+1) edit distances between prefixes."""
    d = [[0] * (len(hyp) + 1) for _ in range(len(ref) + 1)]
    for i in range(len(ref) + 1):
        d[i][0] = i
    for j in range(len(hyp) + 1):
        d[0][j] = j
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            diag = d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            d[i][j] = min(diag, d[i - 1][j] + 1, d[i][j - 1] + 1)
    return d


def align_words(ref: list[str], hyp: list[str]) -> list[tuple[str, str | None, str | None]]:
    """Levenshtein alignment of two word lists as (op, ref_word, hyp_word) in order."""
    d = _distance_table(ref, hyp)
    ops = []
    i, j = len(ref), len(hyp)
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            op = EQUAL if ref[i - 1] == hyp[j - 1] else SUBSTITUTE
            ops.append((op, ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            ops.append((DELETE, ref[i - 1], None))
            i -= 1
        else:
            ops.append((INSERT, None, hyp[j - 1]))
            j -= 1
    return ops[::-1]


def word_diff(ref: str, hyp: str) -> list[tuple[str, str | None, str | None]]:
    """(op, ref_word, hyp_word) for the normalised words of two texts; op is one of
    ``equal``, ``substitute``, ``delete`` (ref word missing from hyp), ``insert`` (extra hyp
    word). The missing side is None."""
    return align_words(normalise_words(ref), normalise_words(hyp))


def errors(ops) -> int:
    return sum(op != EQUAL for op, _, _ in ops)


def wer(ref: str, hyp: str) -> float:
    """Word error rate of ``hyp`` against ``ref`` (normalised words)."""
    ops = word_diff(ref, hyp)
    n_ref = sum(r is not None for _, r, _ in ops)
    e = errors(ops)
    if n_ref == 0:
        return 0.0 if e == 0 else float("inf")
    return e / n_ref


def cer(ref: str, hyp: str) -> float:
    """Character error rate: Levenshtein distance between the normalised texts (words joined by
    one space) over the reference's characters; 0 or infinity for an empty reference, as
    :func:`wer`."""
    r, h = " ".join(normalise_words(ref)), " ".join(normalise_words(hyp))
    e = _distance_table(list(r), list(h))[len(r)][len(h)]
    if not r:
        return 0.0 if e == 0 else float("inf")
    return e / len(r)


def format_diff(ops) -> str:
    """One line: equal words plain, ``[ref->hyp]`` substituted, ``[-ref]`` deleted, ``[+hyp]``
    inserted."""
    parts = []
    for op, r, h in ops:
        if op == EQUAL:
            parts.append(r)
        elif op == SUBSTITUTE:
            parts.append(f"[{r}->{h}]")
        elif op == DELETE:
            parts.append(f"[-{r}]")
        else:
            parts.append(f"[+{h}]")
    return " ".join(parts)


def token_words(token_texts, word_texts) -> list[int]:
    """Index of the word each token belongs to (-1 for special tokens such as ``<|en|>``,
    whitespace-only tokens, or tokens whose characters match no word).

    Tokens and words are matched through their characters without whitespace (a word's text is
    the concatenation of its tokens' texts in Whisper's word timings); where the two strings
    differ, ``difflib`` matches the common blocks."""
    from difflib import SequenceMatcher

    tok_chars, tok_of = [], []
    for i, t in enumerate(token_texts):
        if t.startswith("<|") and t.endswith("|>"):
            continue
        for ch in t:
            if not ch.isspace():
                tok_chars.append(ch)
                tok_of.append(i)
    word_chars, word_of = [], []
    for j, w in enumerate(word_texts):
        for ch in w:
            if not ch.isspace():
                word_chars.append(ch)
                word_of.append(j)
    out = [-1] * len(token_texts)
    a, b = "".join(tok_chars), "".join(word_chars)
    char_word = [-1] * len(a)
    if a == b:
        char_word = list(word_of)
    else:
        for block in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
            for k in range(block.size):
                char_word[block.a + k] = word_of[block.b + k]
    for c, i in enumerate(tok_of):
        if out[i] == -1 and char_word[c] >= 0:
            out[i] = char_word[c]
    return out
