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

# IPA units (after strip_ipa_marks) mapped onto one set: espeak-ng's English labels.
IPA_MAP: dict[str, str] = {}


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
