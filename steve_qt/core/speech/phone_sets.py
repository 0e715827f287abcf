"""One phone set for statistics: labels are normalised before anything is aggregated over them.

The raw label stays in the tiers; only statistics (feature index, probes, phone matrices, head
statistics, SAE erasure) see the normalised label. ``normalise_phone(label)`` returns the
normalised label, or None for a label that is left out of statistics (TIMIT's glottal stop
``q``, which Lee & Hon delete).

- TIMIT's 61 labels fold to the standard 39 of Lee & Hon (1989), "Speaker-independent phone
  recognition using hidden Markov models", IEEE Trans. ASSP 37(11), Table I: the closures
  (``bcl dcl gcl pcl tcl kcl``), pauses and silences (``h# pau epi``) fold into ``sil``;
  ``ao``→``aa``, ``ax ax-h``→``ah``, ``axr``→``er``, ``hv``→``hh``, ``ix``→``ih``, ``el``→``l``,
  ``em``→``m``, ``en nx``→``n``, ``eng``→``ng``, ``zh``→``sh``, ``ux``→``uw``; ``q`` is deleted.
- ARPAbet (CMU, L2-ARCTIC, MFA): stress digits stripped (``AA1``→``aa``), then the same fold.
- Silence labels of any set (``sil sp spn <sil>``, espeak's pauses) become ``sil``.
- IPA (espeak-ng): stress, length and diacritics stripped (:func:`phones.strip_ipa_marks`), then
  :data:`IPA_MAP` maps the remaining units onto one IPA set.
"""

from __future__ import annotations

from functools import lru_cache

from .phones import ARPABET, SILENCE_LABELS, strip_ipa_marks

SIL = "sil"

# Lee & Hon (1989), Table I: TIMIT 61 -> 39 (labels not listed map to themselves).
TIMIT_FOLD: dict[str, str | None] = {
    "ao": "aa", "ax": "ah", "ax-h": "ah", "axr": "er", "hv": "hh", "ix": "ih", "el": "l",
    "em": "m", "en": "n", "nx": "n", "eng": "ng", "zh": "sh", "ux": "uw",
    "pcl": SIL, "tcl": SIL, "kcl": SIL, "bcl": SIL, "dcl": SIL, "gcl": SIL,
    "h#": SIL, "pau": SIL, "epi": SIL, "q": None,
}

# The 39 classes the fold ends in.
TIMIT_39 = ("iy", "ih", "eh", "ae", "ah", "uw", "uh", "aa", "ey", "ay", "oy", "aw", "ow", "er",
            "l", "r", "w", "y", "m", "n", "ng", "ch", "jh", "dh", "b", "d", "dx", "g", "p", "t",
            "th", "k", "z", "v", "f", "hh", "s", "sh", SIL)

# IPA units (after strip_ipa_marks) mapped onto one set: espeak-ng's English labels of every
# voice (en-us, en-gb, en-gb-scotland, en-029, ...), folded the way Lee & Hon fold TIMIT, so that
# the classes correspond one to one to the 39 (iy ih eh ae ah uw uh aa ey ay oy aw ow er l r w y
# m n ng ch jh dh b d dx g p t th k z v f hh s sh sil):
# - vowel qualities that TIMIT does not tell apart fold together (ə ɐ -> ʌ as ax -> ah;
#   ɔ ɒ -> ɑ as ao -> aa; ʉ -> u as ux -> uw; ᵻ -> ɪ as ix -> ih; ʒ -> ʃ as zh -> sh);
# - units espeak writes as one phone but TIMIT as vowel + r or l (r-coloured vowels ɪɹ oɹ ɑɹ,
#   centring diphthongs iə eə ʊə, and vowel + dark l such as ɔːl aɪl ɛl that the synthesiser gives
#   no samples of their own) map to their vowel: the segment is mostly the vowel, coloured at its
#   end (TIMIT's "four" is f ao r, whose vowel folds to aa);
# - the GOAT variants (əʊ of en-gb, o of en-gb-scotland, ʌʉ) map to oʊ, the FACE monophthong e to
#   eɪ, and the NURSE/lettER vowels (ɜ ɚ əɹ) to ɚ (TIMIT's er, axr -> er).
_IPA_VOWELS = {
    "i": "i", "ɪ": "ɪ", "ᵻ": "ɪ", "ɛ": "ɛ", "e": "eɪ", "æ": "æ", "a": "æ",
    "ʌ": "ʌ", "ə": "ʌ", "ɐ": "ʌ", "ɑ": "ɑ", "ɒ": "ɑ", "ɔ": "ɑ", "u": "u", "ʉ": "u",
    "ʊ": "ʊ", "eɪ": "eɪ", "aɪ": "aɪ", "ɔɪ": "ɔɪ", "aʊ": "aʊ", "oʊ": "oʊ", "əʊ": "oʊ",
    "o": "oʊ", "ʌʉ": "oʊ", "ɜ": "ɚ", "ɚ": "ɚ", "ɝ": "ɚ",
    # centring diphthongs and r-coloured vowels: the vowel
    "iə": "ɪ", "ɪə": "ɪ", "eə": "ɛ", "ɛə": "ɛ", "ʊə": "ʊ", "ɔə": "ɑ", "ɑə": "ɑ", "aɪə": "aɪ",
    "aʊə": "aʊ", "a:": "ɑ",
}
_IPA_CONSONANTS = {
    "ɹ": "ɹ", "r": "ɹ", "ɾ": "ɾ", "l": "l", "ɫ": "l", "w": "w", "ʍ": "w", "j": "j", "m": "m",
    "n": "n", "ŋ": "ŋ", "tʃ": "tʃ", "dʒ": "dʒ", "ð": "ð", "b": "b", "d": "d", "ɡ": "ɡ", "g": "ɡ",
    "p": "p", "t": "t", "θ": "θ", "k": "k", "z": "z", "v": "v", "f": "f", "h": "h", "s": "s",
    "ʃ": "ʃ", "ʒ": "ʃ", "x": "k", "ʔ": "t",
}


def _ipa_units() -> dict[str, str]:
    out = dict(_IPA_VOWELS)
    out.update(_IPA_CONSONANTS)
    nuclei = [v for v in _IPA_VOWELS if ":" not in v and "ə" not in v[1:]]
    for v in nuclei:  # vowel + r and vowel + dark l: the vowel (ɪɹ, ɔːl -> ɔl, aɪl, ...)
        for coda in ("ɹ", "r", "l", "ɫ"):
            out.setdefault(v + coda, _IPA_VOWELS[v])
    out["əɹ"] = out["ɜɹ"] = out["ɜr"] = out["ɜl"] = "ɚ"
    out["er"] = out["eɹ"] = "ɛ"  # SQUARE of rhotic voices (e before r is not the FACE vowel)
    out["ar"] = out["aɹ"] = "ɑ"  # START of rhotic voices
    return out


IPA_MAP: dict[str, str] = _ipa_units()

# The normalised IPA set (what IPA_MAP maps onto).
IPA_SET = tuple(sorted(set(IPA_MAP.values()))) + (SIL,)


def _arpabet_key(key: str) -> str | None:
    if key in ARPABET or key in TIMIT_FOLD:
        return key
    if key[-1:] in "012" and key[:-1] in ARPABET:
        return key[:-1]
    return None


@lru_cache(maxsize=8192)
def normalise_phone(label: str) -> str | None:
    """The label statistics use for ``label``; None when statistics leave it out."""
    s = label.strip()
    key = s.lower()
    if key in SILENCE_LABELS:
        return SIL
    arpa = _arpabet_key(key)
    if arpa is not None:
        return TIMIT_FOLD.get(arpa, arpa)
    ipa = strip_ipa_marks(s)
    if not ipa:
        return SIL
    return IPA_MAP.get(ipa, ipa)


def _is_ipa_tier(labels) -> bool:
    return any(not ch.isascii() for lab in labels for ch in lab)


def normalise_labels(labels) -> list[str]:
    """Normalised labels of one tier's (or one file's frames') labels; "" where a label is left
    out or empty.

    A tier with any non-ASCII label is IPA (espeak-ng, MFA's IPA dictionaries): its ASCII labels
    are read as IPA too, so that espeak's ``r`` joins ``ɹ`` instead of being taken for ARPAbet."""
    labels = list(labels)
    ipa = _is_ipa_tier(labels)
    out = []
    for lab in labels:
        if not lab:
            out.append("")
            continue
        if ipa:
            key = lab.strip().lower()
            if key in SILENCE_LABELS:
                out.append(SIL)
                continue
            u = strip_ipa_marks(lab.strip())
            out.append(IPA_MAP.get(u, u) if u else SIL)
        else:
            out.append(normalise_phone(lab) or "")
    return out


def phone_table() -> list[tuple[str, str, str]]:
    """(set, label, normalised) rows of every mapping in the code: TIMIT's fold, then IPA_MAP."""
    rows = [("TIMIT 61 -> 39", k, v if v is not None else "(left out)")
            for k, v in sorted(TIMIT_FOLD.items())]
    rows += [("IPA (espeak-ng)", k, v) for k, v in sorted(IPA_MAP.items()) if k != v]
    return rows
