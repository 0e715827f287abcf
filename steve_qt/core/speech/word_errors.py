"""Word boundaries of a hypothesis tier against a reference word tier (model-agnostic).

Words are paired by normalised text in order (a difflib alignment of the two word sequences);
silence labels of either tier are left out. The model side (Whisper's cross-attention DTW) lives
in its adapter (``steve_whisper.align``); :func:`steve_qt.core.models.adapters.word_alignment`
reaches it by the maps' model name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

SILENCE_WORDS = {"", "sil", "sp", "pau", "h#", "<sil>", "<s>", "</s>", "#"}


def normalise_word(text: str) -> str:
    """Lower case, letters and digits only ("Don't," -> "dont")."""
    return re.sub(r"[^\w]|_", "", text.lower())


def is_silence(label: str) -> bool:
    return label.strip().lower() in SILENCE_WORDS or not normalise_word(label)


@dataclass
class WordError:
    ref: str
    hyp: str
    ref_start_s: float
    ref_end_s: float
    hyp_start_s: float
    hyp_end_s: float
    same_text: bool  # False when paired as a substitution (e.g. "dark" heard as "dog")

    @property
    def start_error_ms(self) -> float:
        return 1000.0 * (self.hyp_start_s - self.ref_start_s)

    @property
    def end_error_ms(self) -> float:
        return 1000.0 * (self.hyp_end_s - self.ref_end_s)


def boundary_errors(hyp_tier, ref_tier, substitutions: bool = True) -> list[WordError]:
    """Pair hypothesis and reference words by normalised text in order (difflib alignment of the
    two word sequences); with ``substitutions`` also pair equal-length runs of differing words
    between matches. Silence intervals of the reference are left out."""
    ref = [iv for iv in ref_tier.intervals if not is_silence(iv.label)]
    hyp = [iv for iv in hyp_tier.intervals if not is_silence(iv.label)]
    a = [normalise_word(iv.label) for iv in ref]
    b = [normalise_word(iv.label) for iv in hyp]
    pairs: list[tuple[int, int, bool]] = []
    for op, i0, i1, j0, j1 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal" or (op == "replace" and substitutions and i1 - i0 == j1 - j0):
            pairs += [(i, j, op == "equal") for i, j in zip(range(i0, i1), range(j0, j1))]
    return [WordError(ref[i].label, hyp[j].label, ref[i].start_s, ref[i].end_s, hyp[j].start_s,
                      hyp[j].end_s, same) for i, j, same in pairs]


def format_errors(errors: Sequence[WordError]) -> str:
    """A table of per-word boundary errors in ms plus the median absolute error."""
    lines = [f"{'reference':>12} {'whisper':>12} {'start ms':>9} {'end ms':>9}"]
    for e in errors:
        mark = "" if e.same_text else "  (substitution)"
        lines.append(f"{e.ref:>12} {e.hyp:>12} {e.start_error_ms:+9.0f} {e.end_error_ms:+9.0f}{mark}")
    if errors:
        signed = np.array([[e.start_error_ms, e.end_error_ms] for e in errors])
        all_ms = np.abs(signed).ravel()
        words_ok = np.mean(np.abs(signed).max(axis=1) <= 100)
        lines.append(f"median |error| {np.median(all_ms):.0f} ms, max {all_ms.max():.0f} ms, "
                     f"mean {signed.mean():+.0f} ms (+ = whisper later); "
                     f"{np.mean(all_ms <= 100):.0%} of boundaries and {words_ok:.0%} of words "
                     f"(both ends) within 100 ms")
    return "\n".join(lines)
