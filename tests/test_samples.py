"""samples/make_samples.py: espeak-ng events -> exact alignments, and the committed sample files."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SCRIPT = SAMPLES / "make_samples.py"
SUFFIXES = (".wav", ".phn", ".wrd", ".txt", ".TextGrid")


def _load_script():
    spec = importlib.util.spec_from_file_location("make_samples", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ms = _load_script()
ESPEAK = ms.espeak_version()


# --- the event -> interval rules, on a hand-made signal (no espeak needed) ----------------------
def _signal(n: int, zeros: list[tuple[int, int]]) -> np.ndarray:
    x = np.full(n, 1000, dtype=np.int16)
    x[1::2] = -1000
    for a, z in zeros:
        x[a:z] = 0
    return x


def _ph(sample: int, name: str):
    return ms.Event("phoneme", sample, 0, name)


def _tiers(x, events, text):
    phones, words = ms.align(x, events, text)
    return ([(s.label, s.start, s.end) for s in phones], [(s.label, s.start, s.end) for s in words])


def test_closures_pauses_and_silence():
    text = "Get see."
    x = _signal(2000, [(0, 300), (900, 1000), (1200, 1300), (1900, 2000)])
    events = [ms.Event("word", 0, 1), _ph(300, "ɡ"), _ph(600, "ˈɛ"), _ph(1000, "t"),
              ms.Event("word", 1200, 5), _ph(1300, "s"), _ph(1600, "iː"), _ph(1950, "")]
    phones, words = _tiers(x, events, text)
    assert phones == [("", 0, 300), ("ɡ", 300, 600), ("ɛ", 600, 900),
                      ("t", 900, 1200),  # the zero run before a stop is its closure
                      ("", 1200, 1300),  # before a fricative it is a pause
                      ("s", 1300, 1600), ("iː", 1600, 1900), ("", 1900, 2000)]
    assert words == [("", 0, 300), ("get", 300, 1200), ("", 1200, 1300), ("see", 1300, 1900),
                     ("", 1900, 2000)]


def test_phone_without_samples_merges_and_unnamed_audio_goes_forward():
    text = "all in"
    x = _signal(1500, [(0, 100), (800, 900), (1400, 1500)])
    events = [ms.Event("word", 0, 1), _ph(100, "ɔː"), _ph(800, "l"),  # /l/ gets only silence
              _ph(900, ""), ms.Event("word", 900, 5),  # unnamed linking sound with audio
              _ph(1000, "ɪ"), _ph(1200, "n"), _ph(1450, "_")]
    phones, words = _tiers(x, events, text)
    assert phones == [("", 0, 100), ("ɔːl", 100, 800), ("", 800, 900), ("ɪ", 900, 1200),
                      ("n", 1200, 1400), ("", 1400, 1500)]
    assert words == [("", 0, 100), ("all", 100, 800), ("", 800, 900), ("in", 900, 1400),
                     ("", 1400, 1500)]


def test_missing_word_event_is_an_error():
    x = _signal(400, [(0, 100)])
    with pytest.raises(RuntimeError, match="no WORD event"):
        ms.align(x, [ms.Event("word", 0, 1), _ph(100, "ɡ")], "go now")


def test_rate_conversion_rounds_to_nearest_without_ties():
    for b in list(range(0, 3000)) + [22050, 44100, 65605, 10**7 + 3]:
        exact = Fraction(b * 16000, 22050)
        assert exact - Fraction(1, 2) != int(exact - Fraction(1, 2))  # never half-way
        assert ms.to_out_rate(b) == round(exact)


# --- one utterance through the real generator ---------------------------------------------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    if ESPEAK is None:
        pytest.skip(f"{ms.ESPEAK_LIBRARY} is not installed (apt-get install libespeak-ng1)")
    out = tmp_path_factory.mktemp("samples")
    subprocess.run([sys.executable, str(SCRIPT), "--only", "dark_suit", "--out", str(out)],
                   check=True, cwd=ROOT, capture_output=True, timeout=300)
    return out


def _read_rows(path: Path) -> list[tuple[int, int, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        a, b, label = line.split(maxsplit=2) if line.count(" ") >= 2 else (*line.split(), "")
        rows.append((int(a), int(b), label))
    return rows


def test_generated_wav_is_16k_mono_pcm16_and_not_silent(generated):
    info = sf.info(str(generated / "dark_suit.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert 1.5 < info.duration < 5.0
    x, _ = sf.read(str(generated / "dark_suit.wav"), dtype="float32")
    assert np.sqrt(np.mean(x ** 2)) > 0.02 and np.abs(x).max() < 1.0


def test_generated_phones_tile_the_file_and_words_are_unions_of_phones(generated):
    n = sf.info(str(generated / "dark_suit.wav")).frames
    phn = _read_rows(generated / "dark_suit.phn")
    assert phn[0][0] == 0 and phn[-1][1] == n
    assert all(a < b for a, b, _ in phn)
    assert all(p[1] == q[0] for p, q in zip(phn, phn[1:]))  # no gaps, no overlaps
    starts, ends = {a for a, _, _ in phn}, {b for _, b, _ in phn}
    wrd = _read_rows(generated / "dark_suit.wrd")
    assert [w for _, _, w in wrd] == "she had your dark suit in greasy wash water all year".split()
    for (a, b, w), nxt in zip(wrd, wrd[1:] + [(n, n, "")]):
        assert a in starts and b in ends and a < b <= nxt[0], w
    txt = (generated / "dark_suit.txt").read_text(encoding="utf-8").split(maxsplit=2)
    assert txt[:2] == ["0", str(n)] and txt[2].strip() == ms.UTTERANCES["dark_suit"]


def test_generated_dark_is_d_vowel_k(generated):
    phn = _read_rows(generated / "dark_suit.phn")
    (a, b, _), = [w for w in _read_rows(generated / "dark_suit.wrd") if w[2] == "dark"]
    inside = [label for s, e, label in phn if a <= s and e <= b]
    assert inside[0] == "d" and inside[-1] == "k" and any("ɑ" in p for p in inside)


def test_generated_boundaries_match_the_acoustics(generated):
    """Independent of espeak's events: fricatives are noisy, vowels are not, silence is silent."""
    x, rate = sf.read(str(generated / "dark_suit.wav"), dtype="float64")
    phn = _read_rows(generated / "dark_suit.phn")

    def zcr(a, b):  # zero crossings per second over the middle half of an interval
        q = (b - a) // 4
        seg = x[a + q:b - q]
        return np.count_nonzero(np.diff(np.signbit(seg))) * rate / len(seg)

    def rms(a, b):
        return np.sqrt(np.mean(x[a:b] ** 2))

    fricatives = [zcr(a, b) for a, b, p in phn if p in ("s", "ʃ", "z")]
    vowels = [zcr(a, b) for a, b, p in phn if p in ("iː", "æ", "uː", "ɪ", "ɑː", "ɔː")]
    assert len(fricatives) >= 4 and len(vowels) >= 6
    assert min(fricatives) > 2 * max(vowels)
    inner_silence = [rms(a, b) for a, b, p in phn[1:-1] if p in ("", "h#", "pau")]
    speech = [rms(a, b) for a, b, p in phn if p not in ("", "h#", "pau")]
    assert inner_silence and max(inner_silence) < 0.02 * np.median(speech)


@pytest.mark.skipif(ESPEAK is not None and ESPEAK != ms.ESPEAK_VERSION, reason=(
    f"espeak-ng {ESPEAK} is installed; the committed samples were made with {ms.ESPEAK_VERSION}"))
def test_committed_files_equal_what_the_generator_writes(generated):
    for suffix in SUFFIXES:
        made, committed = generated / f"dark_suit{suffix}", SAMPLES / f"dark_suit{suffix}"
        assert made.read_bytes() == committed.read_bytes(), suffix


# --- the committed samples -----------------------------------------------------------------------
@pytest.mark.parametrize("stem", sorted(ms.UTTERANCES))
def test_committed_timit_and_textgrid_read_back_to_the_same_intervals(stem):
    from steve_qt.core.speech.alignment import read_textgrid, read_timit

    for suffix in SUFFIXES:
        assert (SAMPLES / f"{stem}{suffix}").exists(), f"{stem}{suffix} missing"
    n = sf.info(str(SAMPLES / f"{stem}.wav")).frames
    timit = read_timit(SAMPLES / stem)
    grid = read_textgrid(SAMPLES / f"{stem}.TextGrid")
    assert timit.text == ms.UTTERANCES[stem] and abs(grid.duration_s - n / 16000) < 1e-12

    def rows(tier, keep_silence):
        out = [(i.start_s * 16000, i.end_s * 16000, "" if i.label in ("h#", "pau") else i.label)
               for i in tier.intervals]
        return [r for r in out if keep_silence or r[2]]

    for name, keep_silence in (("phones", True), ("words", False)):
        t, g = rows(timit.tiers[name], keep_silence), rows(grid.tiers[name], keep_silence)
        assert t == g, name  # same sample-exact times and labels
        assert all(abs(x - round(x)) < 1e-6 for a, b, _ in g for x in (a, b))  # on samples
    phones = [(round(a), round(b), p) for a, b, p in rows(grid.tiers["phones"], True)]  # tile [0, n]
    assert phones[0][0] == 0 and phones[-1][1] == n
    assert all(p[1] == q[0] and p[0] < p[1] for p, q in zip(phones, phones[1:]))
    assert phones[0][2] == phones[-1][2] == ""
    words = [w for _, _, w in rows(grid.tiers["words"], False)]
    assert words == [w for _, _, w in ms.tokenize(ms.UTTERANCES[stem])]
