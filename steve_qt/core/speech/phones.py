"""Phone classes: kind, manner, place and voicing of a phone label.

``phone_class(label)`` understands three label sets and never raises:

- TIMIT's 61 phones and ARPAbet (CMU, L2-ARCTIC, MFA), case-insensitive, with the stress digits
  0/1/2 of ARPAbet vowels stripped (``AA1``, ``iy0``). Silence: ``h#``, ``pau``, ``epi``, ``sil``,
  ``sp``, ``spn`` and the empty label.
- IPA as espeak-ng emits it for English (``--ipa`` and its phoneme events): stress marks, length
  marks, tie bars and joiners, syllabic and other diacritics are stripped before the look-up
  (``ˈɑːɹ`` -> ``ɑɹ``, ``n̩`` -> ``n``). Vowel sequences are diphthongs (``eɪ``, ``aɪə``), a vowel
  followed by ``ɹ`` is an r-coloured diphthong (espeak's ``ɑːɹ``, ``ʊɹ``).
- espeak-ng's ``-x`` mnemonics where they do not clash with ARPAbet (``aI``, ``i@3``, ``@L``,
  ``t#``, ``3:``, ``_:``). ``S T D Z N`` are read as ARPAbet s t d z n, because ARPAbet labels
  are far more common and the look-up is case-insensitive for them.

Rules of the table:

- kind: ``silence``, ``vowel``, ``consonant`` or ``unknown``.
- manner of vowels: ``monophthong`` or ``diphthong`` (r-coloured vowels ``er``/``ɚ`` are
  monophthongs). Consonants: ``stop``, ``closure`` (TIMIT's ``bcl`` ...), ``affricate``,
  ``fricative``, ``nasal``, ``flap``, ``trill``, ``liquid`` (l, r and syllabic l) and ``glide``
  (w, y/j). Silence has manner ``silence``; unknown labels have ``unknown`` everywhere.
- place of vowels: ``front``, ``central`` or ``back``; a diphthong takes the place of its onset
  (ARPAbet ``ay``/``aw`` start at [a]: front). English ``ʌ``/``ah`` is counted central.
  Consonants: ``bilabial``, ``labiodental``, ``dental``, ``alveolar``, ``postalveolar``,
  ``retroflex``, ``alveolopalatal``, ``palatal``, ``labiopalatal``, ``velar``, ``labiovelar``,
  ``uvular``, ``pharyngeal``, ``glottal``. Silence: ``none``.
- voicing: ``voiced``, ``voiceless`` or ``none`` (silence). ``ax-h`` is voiceless; the glottal stop
  (``q``, ``ʔ``) is voiceless; IPA devoicing diacritics are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

FEATURES = ("kind", "manner", "place", "voicing")
KINDS = ("silence", "vowel", "consonant", "unknown")


@dataclass(frozen=True)
class PhoneClass:
    kind: str  # one of KINDS
    manner: str
    place: str
    voicing: str  # voiced | voiceless | none


SILENCE = PhoneClass("silence", "silence", "none", "none")
UNKNOWN = PhoneClass("unknown", "unknown", "unknown", "unknown")


def _c(manner: str, place: str, voicing: str) -> PhoneClass:
    return PhoneClass("consonant", manner, place, voicing)


def _v(place: str, manner: str = "monophthong", voicing: str = "voiced") -> PhoneClass:
    return PhoneClass("vowel", manner, place, voicing)


VOICED, VOICELESS = "voiced", "voiceless"

SILENCE_LABELS = frozenset(
    ["", "h#", "pau", "epi", "sil", "sp", "spn", "#", "_", "_:", "_!", "|", "||", "<sil>", "<p:>", "<p>"]
)

# TIMIT 61 + ARPAbet (CMU 39 and the extra TIMIT/Buckeye symbols), lower case, no stress digits.
ARPABET: dict[str, PhoneClass] = {
    # vowels
    "iy": _v("front"), "ih": _v("front"), "eh": _v("front"), "ae": _v("front"),
    "ey": _v("front", "diphthong"), "ay": _v("front", "diphthong"), "aw": _v("front", "diphthong"),
    "aa": _v("back"), "ao": _v("back"), "uh": _v("back"), "uw": _v("back"),
    "oy": _v("back", "diphthong"), "ow": _v("back", "diphthong"),
    "ah": _v("central"), "ux": _v("central"), "er": _v("central"), "ax": _v("central"),
    "ix": _v("central"), "axr": _v("central"), "ax-h": _v("central", voicing=VOICELESS),
    # stops and the flap
    "b": _c("stop", "bilabial", VOICED), "p": _c("stop", "bilabial", VOICELESS),
    "d": _c("stop", "alveolar", VOICED), "t": _c("stop", "alveolar", VOICELESS),
    "g": _c("stop", "velar", VOICED), "k": _c("stop", "velar", VOICELESS),
    "q": _c("stop", "glottal", VOICELESS), "tq": _c("stop", "glottal", VOICELESS),
    "dx": _c("flap", "alveolar", VOICED),
    # TIMIT closures
    "bcl": _c("closure", "bilabial", VOICED), "pcl": _c("closure", "bilabial", VOICELESS),
    "dcl": _c("closure", "alveolar", VOICED), "tcl": _c("closure", "alveolar", VOICELESS),
    "gcl": _c("closure", "velar", VOICED), "kcl": _c("closure", "velar", VOICELESS),
    # affricates
    "jh": _c("affricate", "postalveolar", VOICED), "ch": _c("affricate", "postalveolar", VOICELESS),
    # fricatives
    "s": _c("fricative", "alveolar", VOICELESS), "z": _c("fricative", "alveolar", VOICED),
    "sh": _c("fricative", "postalveolar", VOICELESS), "zh": _c("fricative", "postalveolar", VOICED),
    "f": _c("fricative", "labiodental", VOICELESS), "v": _c("fricative", "labiodental", VOICED),
    "th": _c("fricative", "dental", VOICELESS), "dh": _c("fricative", "dental", VOICED),
    "hh": _c("fricative", "glottal", VOICELESS), "hv": _c("fricative", "glottal", VOICED),
    # nasals (em en eng are syllabic, nx is TIMIT's nasal flap)
    "m": _c("nasal", "bilabial", VOICED), "em": _c("nasal", "bilabial", VOICED),
    "n": _c("nasal", "alveolar", VOICED), "en": _c("nasal", "alveolar", VOICED),
    "nx": _c("nasal", "alveolar", VOICED),
    "ng": _c("nasal", "velar", VOICED), "eng": _c("nasal", "velar", VOICED),
    # liquids and glides
    "l": _c("liquid", "alveolar", VOICED), "el": _c("liquid", "alveolar", VOICED),
    "r": _c("liquid", "alveolar", VOICED),
    "w": _c("glide", "labiovelar", VOICED), "wh": _c("glide", "labiovelar", VOICELESS),
    "y": _c("glide", "palatal", VOICED),
}

TIMIT_61 = (
    "b d g p t k dx q bcl dcl gcl pcl tcl kcl jh ch s sh z zh f th v dh m n ng em en eng nx "
    "l r w y hh hv el iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h pau epi h#"
).split()

# IPA vowels by place (single code points after diacritics are stripped).
IPA_VOWEL_PLACE = {
    **dict.fromkeys("iyɪʏeøɛœæaɶ", "front"),
    **dict.fromkeys("ɨʉᵻᵿɘɵəɜɞɐɚɝʌ", "central"),
    **dict.fromkeys("ɯuʊɤoɔɑɒ", "back"),
}

IPA_CONSONANTS: dict[str, PhoneClass] = {
    # stops
    "p": _c("stop", "bilabial", VOICELESS), "b": _c("stop", "bilabial", VOICED),
    "t": _c("stop", "alveolar", VOICELESS), "d": _c("stop", "alveolar", VOICED),
    "ʈ": _c("stop", "retroflex", VOICELESS), "ɖ": _c("stop", "retroflex", VOICED),
    "c": _c("stop", "palatal", VOICELESS), "ɟ": _c("stop", "palatal", VOICED),
    "k": _c("stop", "velar", VOICELESS), "g": _c("stop", "velar", VOICED),
    "ɡ": _c("stop", "velar", VOICED),
    "q": _c("stop", "uvular", VOICELESS), "ɢ": _c("stop", "uvular", VOICED),
    "ʔ": _c("stop", "glottal", VOICELESS),
    # nasals
    "m": _c("nasal", "bilabial", VOICED), "ɱ": _c("nasal", "labiodental", VOICED),
    "n": _c("nasal", "alveolar", VOICED), "ɳ": _c("nasal", "retroflex", VOICED),
    "ɲ": _c("nasal", "palatal", VOICED), "ŋ": _c("nasal", "velar", VOICED),
    "ɴ": _c("nasal", "uvular", VOICED),
    # flaps and trills
    "ɾ": _c("flap", "alveolar", VOICED), "ɽ": _c("flap", "retroflex", VOICED),
    "r": _c("trill", "alveolar", VOICED), "ʀ": _c("trill", "uvular", VOICED),
    "ʙ": _c("trill", "bilabial", VOICED),
    # fricatives
    "ɸ": _c("fricative", "bilabial", VOICELESS), "β": _c("fricative", "bilabial", VOICED),
    "f": _c("fricative", "labiodental", VOICELESS), "v": _c("fricative", "labiodental", VOICED),
    "θ": _c("fricative", "dental", VOICELESS), "ð": _c("fricative", "dental", VOICED),
    "s": _c("fricative", "alveolar", VOICELESS), "z": _c("fricative", "alveolar", VOICED),
    "ɬ": _c("fricative", "alveolar", VOICELESS), "ɮ": _c("fricative", "alveolar", VOICED),
    "ʃ": _c("fricative", "postalveolar", VOICELESS), "ʒ": _c("fricative", "postalveolar", VOICED),
    "ʂ": _c("fricative", "retroflex", VOICELESS), "ʐ": _c("fricative", "retroflex", VOICED),
    "ɕ": _c("fricative", "alveolopalatal", VOICELESS),
    "ʑ": _c("fricative", "alveolopalatal", VOICED),
    "ç": _c("fricative", "palatal", VOICELESS), "ʝ": _c("fricative", "palatal", VOICED),
    "x": _c("fricative", "velar", VOICELESS), "ɣ": _c("fricative", "velar", VOICED),
    "χ": _c("fricative", "uvular", VOICELESS), "ʁ": _c("fricative", "uvular", VOICED),
    "ħ": _c("fricative", "pharyngeal", VOICELESS), "ʕ": _c("fricative", "pharyngeal", VOICED),
    "h": _c("fricative", "glottal", VOICELESS), "ɦ": _c("fricative", "glottal", VOICED),
    # affricates
    "ts": _c("affricate", "alveolar", VOICELESS), "dz": _c("affricate", "alveolar", VOICED),
    "tʃ": _c("affricate", "postalveolar", VOICELESS), "dʒ": _c("affricate", "postalveolar", VOICED),
    "ʧ": _c("affricate", "postalveolar", VOICELESS), "ʤ": _c("affricate", "postalveolar", VOICED),
    "tɕ": _c("affricate", "alveolopalatal", VOICELESS),
    "dʑ": _c("affricate", "alveolopalatal", VOICED),
    "ʈʂ": _c("affricate", "retroflex", VOICELESS), "ɖʐ": _c("affricate", "retroflex", VOICED),
    "pf": _c("affricate", "labiodental", VOICELESS),
    # liquids and glides (espeak's "əl" is a syllabic l)
    "l": _c("liquid", "alveolar", VOICED), "ɫ": _c("liquid", "alveolar", VOICED),
    "əl": _c("liquid", "alveolar", VOICED), "ɭ": _c("liquid", "retroflex", VOICED),
    "ʎ": _c("liquid", "palatal", VOICED), "ʟ": _c("liquid", "velar", VOICED),
    "ɹ": _c("liquid", "alveolar", VOICED), "ɻ": _c("liquid", "retroflex", VOICED),
    "j": _c("glide", "palatal", VOICED), "ɥ": _c("glide", "labiopalatal", VOICED),
    "w": _c("glide", "labiovelar", VOICED), "ʍ": _c("glide", "labiovelar", VOICELESS),
    "ɰ": _c("glide", "velar", VOICED),
}

# espeak-ng -x mnemonics (en, en-us) -> IPA; stress marks ' and , are stripped before the look-up.
ESPEAK_MNEMONICS = {
    "@": "ə", "@2": "ə", "@-": "ə", "@L": "əl", "3": "ɚ", "3:": "ɜː", "0": "ɒ",
    "a": "æ", "a#": "ɐ", "A:": "ɑː", "A@": "ɑːɹ", "E": "ɛ", "e@": "ɛɹ", "I": "ɪ", "I#": "ᵻ",
    "I2": "ɪ", "i": "i", "i:": "iː", "i@": "iə", "i@3": "ɪɹ", "O": "ɔ", "O2": "ɔ", "O:": "ɔː",
    "O@": "ɔːɹ", "o@": "oːɹ", "U": "ʊ", "U@": "ʊɹ", "u:": "uː", "V": "ʌ",
    "aI": "aɪ", "aI3": "aɪɚ", "aI@": "aɪə", "aU": "aʊ", "eI": "eɪ", "oU": "oʊ", "OI": "ɔɪ",
    "tS": "tʃ", "dZ": "dʒ", "t#": "ɾ", "r-": "ɹ", "n-": "n", "m-": "m", "l-": "l", "?": "ʔ",
    "aa": "æ",  # only reached with a stress mark ('aa): plain "aa" is ARPAbet
    ";": "",  # palatalisation event: espeak's IPA output names it "" (a pause)
}

IPA_SILENCE = frozenset(["", "_", "|", "‖"])  # pauses and prosodic group boundaries
_STRESS_DIGIT = re.compile(r"^(.+?)[012]$")
_IPA_MARK_CATEGORIES = ("Mn", "Lm", "Sk", "Cf")  # combining marks, ˈ ˌ ː ʰ, ˞, zero-width joiner


def strip_ipa_marks(label: str) -> str:
    """Remove stress, length, tie bars, joiners and diacritics: 'ˈɑː‍ɹ' -> 'ɑɹ', 'n̩' -> 'n', 'ã' -> 'a'.

    Letters of the tables (such as 'ç') are kept whole; other precomposed letters lose their marks.
    """
    out = []
    for ch in unicodedata.normalize("NFC", label):
        if ch not in IPA_VOWEL_PLACE and ch not in IPA_CONSONANTS:
            ch = unicodedata.normalize("NFD", ch)
        out.extend(c for c in ch if unicodedata.category(c) not in _IPA_MARK_CATEGORIES)
    return "".join(out)


def _arpabet_class(key: str) -> PhoneClass | None:
    if key in ARPABET:
        return ARPABET[key]
    m = _STRESS_DIGIT.match(key)
    if m and m.group(1) in ARPABET:
        return ARPABET[m.group(1)]
    return None


def _ipa_class(ipa: str) -> PhoneClass | None:
    if ipa in IPA_SILENCE:
        return SILENCE
    if ipa in IPA_CONSONANTS:
        return IPA_CONSONANTS[ipa]
    if ipa and all(ch in IPA_VOWEL_PLACE for ch in ipa):
        return _v(IPA_VOWEL_PLACE[ipa[0]], "monophthong" if len(ipa) == 1 else "diphthong")
    vowels = ipa[:-1]
    if ipa.endswith(("ɹ", "r")) and vowels and all(ch in IPA_VOWEL_PLACE for ch in vowels):
        return _v(IPA_VOWEL_PLACE[vowels[0]], "diphthong")  # r-coloured: espeak's ɑːɹ, ʊɹ
    if ipa.endswith(("l", "ɫ")) and vowels and all(ch in IPA_VOWEL_PLACE for ch in vowels):
        # vowel + dark l that the synthesiser gave no samples of its own (espeak's "all": ɔːl):
        # the segment is mostly the vowel, l-coloured at its end
        return _v(IPA_VOWEL_PLACE[vowels[0]], "diphthong")
    return None



@lru_cache(maxsize=4096)
def phone_class(label: str) -> PhoneClass:
    """Class of one phone label (TIMIT, ARPAbet, IPA or espeak mnemonic); UNKNOWN if unknown."""
    s = label.strip()
    key = s.lower()
    if key in SILENCE_LABELS:
        return SILENCE
    found = _arpabet_class(key)
    if found is None:
        ipa = strip_ipa_marks(s)
        found = _ipa_class(ipa) if ipa or not s else None
    if found is None:
        mnemonic = s.replace("'", "").replace(",", "")
        if mnemonic in ESPEAK_MNEMONICS:
            found = _ipa_class(strip_ipa_marks(ESPEAK_MNEMONICS[mnemonic]))
    return found or UNKNOWN


def class_label(label: str, feature: str = "kind") -> str:
    """One feature of ``phone_class(label)``: feature in FEATURES (kind, manner, place, voicing)."""
    if feature not in FEATURES:
        raise ValueError(f"unknown phone feature {feature!r}; expected one of {FEATURES}")
    return getattr(phone_class(label), feature)
