"""Phone-class table: TIMIT, ARPAbet with stress, espeak-ng IPA and mnemonics."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from steve_qt.core.speech.phones import (
    FEATURES,
    KINDS,
    TIMIT_61,
    UNKNOWN,
    PhoneClass,
    class_label,
    phone_class,
    strip_ipa_marks,
)

# The 61 TIMIT phones, typed in from the TIMIT documentation (phoncode.doc), by group.
TIMIT_BY_GROUP = {
    "stops": "b d g p t k dx q",
    "closures": "bcl dcl gcl pcl tcl kcl",
    "affricates": "jh ch",
    "fricatives": "s sh z zh f th v dh",
    "nasals": "m n ng em en eng nx",
    "semivowels": "l r w y hh hv el",
    "vowels": "iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h",
    "others": "pau epi h#",
}
CMU_39 = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
          "UH UW V W Y Z ZH").split()
CMU_VOWELS = "AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split()

# Phoneme names that espeak-ng 1.51 reported (espeakEVENT_PHONEME, IPA mode) for en-us and
# en-gb on a few hundred words: every one must get a class.
ESPEAK_IPA_EVENTS = (
    "aɪ aɪɚ aɪə aʊ b d dʒ eɪ eə f h i iə iː j k l m n n̩ oʊ oː oːɹ p s t tʃ uː v w x z æ ð ŋ ɐ "
    "ɑː ɑːɹ ɒ ɔ ɔɪ ɔː ɔːɹ ə əl əʊ ɚ ɛ ɛɹ ɜː ɡ ɪ ɪɹ ɹ ɾ ʃ ʊ ʊɹ ʊə ʌ ʒ ʔ θ ᵻ a"
).split()
ESPEAK_MNEMONIC_EVENTS = (
    "0 3 3: ; ? @ @- @2 @L A: A@ D E I I# I2 N O2 O: O@ OI S T U U@ V Z _ _: a a# aI aI3 aI@ "
    "aU aa b d dZ e@ eI f g h i i: i@ i@3 j k l m n n- o@ oU p r r- s t t# tS u: v w x z"
).split()


def test_timit_61_is_complete_and_known():
    phones = [p for group in TIMIT_BY_GROUP.values() for p in group.split()]
    assert len(phones) == len(set(phones)) == 61
    assert sorted(phones) == sorted(TIMIT_61)
    for p in phones:
        c = phone_class(p)
        assert c.kind != "unknown", p
        assert c.kind == ("silence" if p in ("pau", "epi", "h#") else
                          "vowel" if p in TIMIT_BY_GROUP["vowels"].split() else "consonant"), p


def test_spot_checks():
    assert phone_class("p") == PhoneClass("consonant", "stop", "bilabial", "voiceless")
    assert phone_class("b") == PhoneClass("consonant", "stop", "bilabial", "voiced")
    assert phone_class("zh") == PhoneClass("consonant", "fricative", "postalveolar", "voiced")
    assert phone_class("tcl") == PhoneClass("consonant", "closure", "alveolar", "voiceless")
    assert phone_class("ch").manner == "affricate"
    assert phone_class("dx").manner == "flap"
    assert phone_class("w").manner == "glide" and phone_class("r").manner == "liquid"
    for label in ("iy", "IY1", "i", "iː", "ˈiː"):
        c = phone_class(label)
        assert (c.kind, c.place, c.voicing) == ("vowel", "front", "voiced"), label
    assert phone_class("uw").place == "back" and phone_class("ax").place == "central"
    assert phone_class("ay").manner == "diphthong" and phone_class("aɪ").manner == "diphthong"
    assert phone_class("ax-h").voicing == "voiceless"


def test_silences():
    for label in ("h#", "pau", "epi", "sil", "SIL", "sp", "spn", "", "  ", "_", "_:"):
        assert phone_class(label).kind == "silence", repr(label)
        assert phone_class(label).voicing == "none"


def test_unknown_labels_never_raise():
    for label in ("xyz", "AA7", "ˈ", "🙂", "q!", "<unk>", "12"):
        assert phone_class(label) == UNKNOWN, label
        assert class_label(label, "place") == "unknown"


def test_arpabet_case_and_stress():
    for p in CMU_39:
        assert phone_class(p) == phone_class(p.lower()) != UNKNOWN, p
    for v in CMU_VOWELS:
        for digit in "012":
            assert phone_class(v + digit) == phone_class(v), v + digit
    assert phone_class("AH0") == phone_class("ah")
    assert phone_class("Sh") == phone_class("sh")


def test_espeak_ipa_phonemes_are_known():
    for label in ESPEAK_IPA_EVENTS:
        assert phone_class(label).kind in ("vowel", "consonant"), label
    assert phone_class("").kind == "silence"  # espeak names its pauses ""


def test_espeak_ipa_marks_and_r_colouring():
    assert strip_ipa_marks("ˈɑː\u200dɹ") == "ɑɹ"
    assert strip_ipa_marks("n̩") == "n"
    assert strip_ipa_marks("d͡ʒ") == "dʒ"
    assert phone_class("ˈɑːɹ") == PhoneClass("vowel", "diphthong", "back", "voiced")
    assert phone_class("ʊɹ").kind == "vowel"
    assert phone_class("ɚ") == PhoneClass("vowel", "monophthong", "central", "voiced")
    assert phone_class("ɝː").kind == "vowel"
    assert phone_class("n̩") == phone_class("n")
    assert phone_class("əl") == phone_class("el")
    assert phone_class("d\u200dʒ") == phone_class("jh") == phone_class("d͡ʒ")
    assert phone_class("ç").place == "palatal"  # a letter with a cedilla stays itself
    assert phone_class("ʔ") == phone_class("q")
    assert phone_class("ɾ") == phone_class("dx")


def test_espeak_mnemonics():
    for label in ESPEAK_MNEMONIC_EVENTS:
        assert phone_class(label) != UNKNOWN, label
    assert phone_class("aI") == phone_class("aɪ")
    assert phone_class("'i@3") == phone_class("ɪɹ")
    assert phone_class("t#") == phone_class("ɾ")
    assert phone_class("@L").manner == "liquid"
    assert phone_class("tS") == phone_class("ch")
    # single upper-case letters that are ARPAbet symbols are read as ARPAbet
    assert phone_class("S") == phone_class("s")


def test_ipa_matches_arpabet_for_english():
    pairs = {"iy": "iː", "ih": "ɪ", "eh": "ɛ", "ae": "æ", "aa": "ɑː", "ao": "ɔː", "uh": "ʊ",
             "uw": "uː", "ah": "ʌ", "er": "ɝ", "ax": "ə", "ey": "eɪ", "ay": "aɪ", "aw": "aʊ",
             "oy": "ɔɪ", "ow": "oʊ", "p": "p", "t": "t", "k": "k", "b": "b", "d": "d", "g": "ɡ",
             "ch": "tʃ", "jh": "dʒ", "f": "f", "v": "v", "th": "θ", "dh": "ð", "s": "s", "z": "z",
             "sh": "ʃ", "zh": "ʒ", "hh": "h", "m": "m", "n": "n", "ng": "ŋ", "l": "l", "r": "ɹ",
             "w": "w", "y": "j"}
    for arpa, ipa in pairs.items():
        assert phone_class(arpa) == phone_class(ipa), (arpa, ipa)


def test_class_label_and_features():
    assert FEATURES == ("kind", "manner", "place", "voicing")
    assert class_label("p") == "consonant"
    assert class_label("p", "manner") == "stop"
    assert class_label("p", "place") == "bilabial"
    assert class_label("p", "voicing") == "voiceless"
    assert class_label("h#", "manner") == "silence"
    with pytest.raises(ValueError):
        class_label("p", "height")
    assert set(KINDS) == {"silence", "vowel", "consonant", "unknown"}


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
def test_live_espeak_output_is_known(voice):
    text = ("She had your dark suit in greasy wash water all year. Don't ask me to carry an oily "
            "rag like that. Little button, fire hour, pleasure, church, thought, cure, boy.")
    for flag in ("--ipa", "-x"):
        out = subprocess.run(["espeak-ng", "-q", "-v", voice, flag, "--sep= ", text],
                             capture_output=True, text=True, check=True).stdout
        for label in out.split():
            assert phone_class(label) != UNKNOWN, (voice, flag, label)
