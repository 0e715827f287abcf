"""Synthesise the sample utterances with espeak-ng and write them with exact alignments.

    python samples/make_samples.py [--out DIR] [--only STEM ...]

For each utterance this writes, at 16 kHz: ``<stem>.wav`` (16-bit PCM mono), ``<stem>.phn``,
``<stem>.wrd``, ``<stem>.txt`` (TIMIT) and ``<stem>.TextGrid`` (tiers "phones" and "words").

Where the boundaries come from
------------------------------
libespeak-ng (Debian's ``libespeak-ng.so.1``, called through ctypes) reports, with the audio, a
PHONEME event (IPA name; ``sample`` = index of the first output sample after the event) before
every phoneme and a WORD event (``text_position``, 1-based) before every word. The events are
markers in espeak's own wave-command queue, so their sample positions are exact. Consecutive
PHONEME events give the phone intervals (as in Praat's SpeechSynthesizer), with three fixes:

1. espeak's pauses are runs of exact zero samples. A zero run of >= 2 ms that leads into a stop
   or affricate (espeak emits a phoneme's "pre-pause" just before its event) is that stop's
   closure and belongs to it; any other zero run, and the leading and trailing silence, is
   silence, label "" (TextGrid) or ``h#`` / ``pau`` (TIMIT .phn, edges / inside).
2. Events with an empty IPA name are pauses ("_", "_:") or espeak's linking glide ";" before a
   vowel-initial word; their non-silent samples (if any) go to the following phone.
3. A phone whose event gets no samples (espeak synthesises a post-vocalic /l/ as the ending of
   the vowel before it and emits the /l/ event after that audio, e.g. "all" in dark_suit) is
   merged into the neighbouring phone of its word: "ɔː" + "l" -> "ɔːl". espeak reports no
   boundary inside that vowel+l sequence, so none is invented.

espeak's own segmentation is kept where it is a choice rather than an artefact: for a vowel after
/l ɹ m n/ it emits the vowel's event after the vowel's onset, so the consonant-to-vowel
transition counts as the consonant (that is where espeak synthesises the consonant's audio).

Stress marks (newer espeak-ng versions attach "ˈ"/"ˌ" to IPA names) are removed from labels.
Words are the sentence's tokens, lowercased, punctuation stripped (TIMIT style); a phone belongs
to the word whose WORD event precedes it, and a word spans from its first phone's start to its
last phone's end.

Resampling and rounding
-----------------------
espeak speaks at 22,050 Hz. ``PAD_S`` of digital silence is added at both ends, the signal is
resampled to 16 kHz with ``steve_qt.core.speech.audio.resample`` (soxr HQ), and every boundary ``b``
(a sample index at 22,050 Hz) becomes ``round(b * 320 / 441)`` at 16 kHz. 441 is odd, so
``b * 320 / 441`` is never exactly half-way between integers: the rounding has no ties. The final
boundary is the resampled length, ``round(n * 320 / 441)``.

Reproducibility
---------------
libespeak-ng keeps waveform-generator state from one utterance to the next: the same sentence
synthesised after another one in the same process comes out different (here by up to 450
samples in length) from the same sentence synthesised first. Each utterance
is therefore synthesised in a fresh child process, where voice (en-us), rate (140 wpm), pitch,
range, volume and word gap are fixed. With that, the output is byte-identical from run to run on
the same espeak-ng build (checked on Debian bookworm, espeak-ng 1.51); another espeak-ng version
may differ. ``ESPEAK_VERSION`` below names the build the committed files were made with.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLES_DIR = Path(__file__).resolve().parent
ESPEAK_LIBRARY = "libespeak-ng.so.1"
ESPEAK_VERSION = "1.51"  # espeak_Info() of the build that made the committed files
ESPEAK_RATE = 22050
OUT_RATE = 16000
VOICE = "en-us"
WORDS_PER_MINUTE = 140  # slower than espeak's 175: tiny.en then transcribes the samples better
PITCH = 50  # espeak's default base pitch (0-100)
PAD_S = 0.1  # digital silence added before and after the speech
MIN_PAUSE = 44  # samples at 22,050 Hz (2 ms): shorter zero runs are not pauses

UTTERANCES: dict[str, str] = {
    "dark_suit": "She had your dark suit in greasy wash water all year.",
    "oily_rag": "Don't ask me to carry an oily rag like that.",
    "cats_and_dogs": "Cats and dogs each hate the other.",
    "how_much_fish": "How much fish did the boy catch?",
}

STOPS = set("pbtdkɡgʔcɟq")  # first letter of a stop or affricate (tʃ, dʒ) in IPA
STRESS_MARKS = "ˈˌ"
SILENCE = ""


# ---------------------------------------------------------------------------------------------
# espeak-ng through ctypes (speak_lib.h)
# ---------------------------------------------------------------------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_PHONEME_EVENTS = 0x1
INITIALIZE_PHONEME_IPA = 0x2
POS_CHARACTER = 1
CHARS_UTF8 = 1
EVENT_LIST_TERMINATED, EVENT_WORD, EVENT_PHONEME = 0, 1, 7
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
PARAM_PUNCTUATION, PARAM_CAPITALS, PARAM_WORDGAP = 5, 6, 7


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT: 40 bytes on x86-64 (pointer fields at offsets 24 and 32)."""

    _fields_ = [
        ("type", ctypes.c_int),  # espeak_EVENT_TYPE (enum, int-sized)
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # characters from the start of the text, 1-based
        ("length", ctypes.c_int),  # word length in characters (WORD events)
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index in the output
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class Event:
    kind: str  # "word" or "phoneme"
    sample: int  # at ESPEAK_RATE
    text_position: int = 0  # 1-based character index (word events)
    name: str = ""  # IPA name (phoneme events)


@dataclass
class Synthesis:
    samples: np.ndarray  # (n,) int16 at ESPEAK_RATE
    events: list[Event]
    version: str


def _phoneme_name(raw: bytes) -> str:
    """Up to 8 bytes of UTF-8, NUL-terminated unless all 8 are used (a cut character is dropped)."""
    raw = raw.split(b"\0", 1)[0]
    return raw.decode("utf-8", errors="ignore")


def _synthesize_here(text: str, voice: str = VOICE, wpm: int = WORDS_PER_MINUTE,
                     pitch: int = PITCH) -> Synthesis:
    """Run espeak-ng in this process. Call once per process (see Reproducibility).

    ``voice`` is an espeak-ng voice name, optionally with a variant (``en-gb-scotland+f3``),
    ``wpm`` words per minute, ``pitch`` the base pitch 0-100."""
    lib = ctypes.CDLL(ESPEAK_LIBRARY)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]

    chunks: list[bytes] = []
    events: list[Event] = []

    def on_synth(wav, num_samples, ev_array) -> int:
        if num_samples > 0:
            chunks.append(ctypes.string_at(wav, 2 * num_samples))
        i = 0
        while ev_array[i].type != EVENT_LIST_TERMINATED:
            ev = ev_array[i]
            if ev.type == EVENT_WORD:
                events.append(Event("word", ev.sample, ev.text_position))
            elif ev.type == EVENT_PHONEME:
                raw = ctypes.string_at(ctypes.addressof(ev) + _Event.id.offset, 8)
                events.append(Event("phoneme", ev.sample, ev.text_position, _phoneme_name(raw)))
            i += 1
        return 0

    callback = _SynthCallback(on_synth)
    options = INITIALIZE_PHONEME_EVENTS | INITIALIZE_PHONEME_IPA
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, options)
    if rate != ESPEAK_RATE:
        raise RuntimeError(f"espeak_Initialize returned {rate}, expected {ESPEAK_RATE} Hz")
    lib.espeak_SetSynthCallback(callback)
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise RuntimeError(f"espeak-ng has no voice {voice!r}")
    for param, value in ((PARAM_RATE, wpm), (PARAM_VOLUME, 100), (PARAM_PITCH, pitch),
                         (PARAM_RANGE, 50), (PARAM_PUNCTUATION, 0), (PARAM_CAPITALS, 0),
                         (PARAM_WORDGAP, 0)):
        lib.espeak_SetParameter(param, value, 0)
    data = text.encode("utf-8")
    status = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    if status != 0:
        raise RuntimeError(f"espeak_Synth failed with status {status}")
    lib.espeak_Synchronize()
    samples = np.frombuffer(b"".join(chunks), dtype=np.int16).copy()
    return Synthesis(samples, events, espeak_version() or "?")


def espeak_version() -> str | None:
    """Version of the installed libespeak-ng ("1.51"), or None if it is not installed."""
    try:
        lib = ctypes.CDLL(ESPEAK_LIBRARY)
    except OSError:
        return None
    lib.espeak_Info.restype = ctypes.c_char_p
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    return (lib.espeak_Info(None) or b"?").decode().split()[0]


def synthesize(text: str, voice: str = VOICE, rate: int = WORDS_PER_MINUTE,
               pitch: int = PITCH) -> Synthesis:
    """Synthesise ``text`` in a fresh child process (espeak-ng keeps state between utterances)."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--espeak-child",
                           voice, str(int(rate)), str(int(pitch))],
                          input=text, capture_output=True, text=True, encoding="utf-8",
                          timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng child failed: {proc.stderr.strip()}")
    msg = json.loads(proc.stdout)
    samples = np.frombuffer(base64.b64decode(msg["samples"]), dtype="<i2").astype(np.int16)
    events = [Event(**e) for e in msg["events"]]
    return Synthesis(samples, events, msg["version"])


def _child_main(args: list[str]) -> None:
    voice, rate, pitch = args if args else (VOICE, WORDS_PER_MINUTE, PITCH)
    syn = _synthesize_here(sys.stdin.read(), voice, int(rate), int(pitch))
    json.dump({"samples": base64.b64encode(syn.samples.astype("<i2").tobytes()).decode(),
               "events": [e.__dict__ for e in syn.events], "version": syn.version}, sys.stdout)


# ---------------------------------------------------------------------------------------------
# events -> segments (all sample indices at ESPEAK_RATE)
# ---------------------------------------------------------------------------------------------
@dataclass
class Phone:
    marker: int  # sample of its PHONEME event
    label: str  # IPA without stress marks; "" for pauses and unnamed phonemes
    word: int | None  # token index, None for pauses


@dataclass
class Segment:
    start: int
    end: int
    label: str
    word: int | None = None


def tokenize(text: str) -> list[tuple[int, int, str]]:
    """Words of ``text`` as (start, end, label): character spans, label lowercase, no punctuation."""
    return [(m.start(), m.end(), m.group().lower()) for m in re.finditer(r"[A-Za-z0-9']+", text)]


def clean_label(name: str) -> str:
    label = "".join(ch for ch in name if ch not in STRESS_MARKS).strip()
    return SILENCE if label.strip("_:!|") == "" else label


def phones_from_events(events: list[Event], tokens: list[tuple[int, int, str]]) -> list[Phone]:
    """Phones in event order, each tagged with the word whose WORD event precedes it."""
    phones: list[Phone] = []
    seen_words: set[int] = set()
    current: int | None = None
    last = 0
    for ev in events:
        if ev.sample < last:
            raise RuntimeError(f"espeak event samples go backwards ({ev.sample} < {last})")
        last = ev.sample
        if ev.kind == "word":
            pos = ev.text_position - 1
            hits = [i for i, (a, b, _) in enumerate(tokens) if a <= pos < b]
            current = hits[0] if hits else None  # e.g. a WORD event for the final "?"
            if current is not None:
                if current in seen_words:
                    raise RuntimeError(f"two WORD events for {tokens[current][2]!r}")
                seen_words.add(current)
        else:
            label = clean_label(ev.name)
            phones.append(Phone(ev.sample, label, current if label else None))
    missing = [tokens[i][2] for i in range(len(tokens)) if i not in seen_words]
    if missing:
        raise RuntimeError(f"espeak-ng reported no WORD event for {missing}")
    return phones


def zero_runs(x: np.ndarray, min_len: int = MIN_PAUSE) -> list[tuple[int, int]]:
    """Maximal runs [a, z) of exact zeros at least ``min_len`` samples long."""
    edges = np.diff(np.concatenate([[0], (x == 0).astype(np.int8), [0]]))
    a, z = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
    return [(int(s), int(e)) for s, e in zip(a, z) if e - s >= min_len]


def owner_per_sample(x: np.ndarray, phones: list[Phone]) -> np.ndarray:
    """(n,) index of the phone each sample belongs to; -1 = silence."""
    n = len(x)
    starts = [p.marker for p in phones]
    owner = np.full(n, -1, dtype=np.int64)
    bounds = starts + [n]
    for i in range(len(phones)):
        owner[bounds[i]:bounds[i + 1]] = i
    for a, z in zero_runs(x):
        pause_inside = any(not p.label and a <= p.marker <= z for p in phones)
        if a == 0 or z == n or pause_inside:
            owner[a:z] = -1
            continue
        j = int(owner[z])
        if j < 0 or z != starts[j]:
            print(f"note: zero run [{a}, {z}) does not end at a phone start; left in place",
                  file=sys.stderr)
            continue
        owner[a:z] = j if phones[j].label[:1] in STOPS else -1
    # unnamed phonemes (pauses, the linking glide) with audio: samples go to the next named phone
    for i, p in enumerate(phones):
        if p.label:
            continue
        mask = owner == i
        if mask.any():
            nxt = next((k for k in range(i + 1, len(phones)) if phones[k].label), None)
            owner[mask] = -1 if nxt is None else nxt
    return owner


def segments_from_owner(owner: np.ndarray, phones: list[Phone]) -> list[Segment]:
    """Contiguous runs of ``owner`` as segments; phones without samples merge into a neighbour."""
    change = np.nonzero(np.diff(owner))[0] + 1
    cuts = [0, *change.tolist(), len(owner)]
    segs: list[Segment] = []
    seg_of: dict[int, Segment] = {}
    for a, z in zip(cuts[:-1], cuts[1:]):
        i = int(owner[a])
        if i < 0:
            segs.append(Segment(a, z, SILENCE))
            continue
        if i in seg_of:
            raise RuntimeError(f"phone /{phones[i].label}/ split in two pieces")
        seg_of[i] = Segment(a, z, phones[i].label, phones[i].word)
        segs.append(seg_of[i])
    for i, p in enumerate(phones):
        if p.label and i not in seg_of:
            _merge_empty_phone(phones, seg_of, i)
    return segs


def _merge_empty_phone(phones: list[Phone], seg_of: dict[int, Segment], i: int) -> None:
    """Append /phones[i]/ to the previous phone of its word (else prepend it to the next one)."""
    same_word = [k for k in seg_of if phones[k].word == phones[i].word]
    before, after = [k for k in same_word if k < i], [k for k in same_word if k > i]
    if before:
        seg = seg_of[max(before)]
        seg.label = seg.label + phones[i].label
    elif after:
        seg = seg_of[min(after)]
        seg.label = phones[i].label + seg.label
    else:
        raise RuntimeError(f"phone /{phones[i].label}/ has no samples and no neighbour in its word")
    print(f"note: /{phones[i].label}/ has no samples of its own; merged into /{seg.label}/",
          file=sys.stderr)


def word_segments(phone_segs: list[Segment], tokens: list[tuple[int, int, str]],
                  n: int) -> list[Segment]:
    """Word tier: each word from its first phone's start to its last phone's end; gaps are silence."""
    words: list[Segment] = []
    for w, (_, _, label) in enumerate(tokens):
        mine = [s for s in phone_segs if s.word == w]
        if not mine:
            raise RuntimeError(f"word {label!r} has no phones")
        words.append(Segment(mine[0].start, mine[-1].end, label, w))
    tier: list[Segment] = []
    t = 0
    for wd in words:
        if wd.start < t:
            raise RuntimeError(f"word {wd.label!r} overlaps the word before it")
        if wd.start > t:
            tier.append(Segment(t, wd.start, SILENCE))
        tier.append(wd)
        t = wd.end
    if t < n:
        tier.append(Segment(t, n, SILENCE))
    return tier


def align(x: np.ndarray, events: list[Event], text: str) -> tuple[list[Segment], list[Segment]]:
    """(phone segments, word segments) at ESPEAK_RATE, each tiling [0, len(x))."""
    tokens = tokenize(text)
    phones = phones_from_events(events, tokens)
    phone_segs = segments_from_owner(owner_per_sample(x, phones), phones)
    return phone_segs, word_segments(phone_segs, tokens, len(x))


# ---------------------------------------------------------------------------------------------
# 22,050 Hz -> 16 kHz, writing
# ---------------------------------------------------------------------------------------------
def to_out_rate(b: int) -> int:
    """Sample index at 22,050 Hz -> 16 kHz: round(b * 320 / 441), never a tie (441 is odd)."""
    return (2 * b * 320 + 441) // (2 * 441)


def pad(syn: Synthesis, pad_s: float = PAD_S) -> Synthesis:
    p = int(round(pad_s * ESPEAK_RATE))
    x = np.concatenate([np.zeros(p, np.int16), syn.samples, np.zeros(p, np.int16)])
    events = [Event(e.kind, e.sample + p, e.text_position, e.name) for e in syn.events]
    return Synthesis(x, events, syn.version)


def resample_int16(x: np.ndarray) -> np.ndarray:
    """(n,) int16 at 22,050 Hz -> (round(n*320/441),) int16 at 16 kHz."""
    from steve_qt.core.speech.audio import resample

    y = resample(x.astype(np.float32) / 32768.0, ESPEAK_RATE, OUT_RATE)
    if len(y) != to_out_rate(len(x)):
        raise RuntimeError(f"resampled length {len(y)} != round({len(x)} * 320 / 441)")
    return np.clip(np.round(y * 32768.0), -32768, 32767).astype(np.int16)


def scale_segments(segs: list[Segment], n_out: int) -> list[Segment]:
    out = [Segment(to_out_rate(s.start), to_out_rate(s.end), s.label, s.word) for s in segs]
    out[-1].end = n_out
    for s in out:
        if s.end <= s.start:
            raise RuntimeError(f"/{s.label}/ vanishes at {OUT_RATE} Hz")
    return out


def timit_silence(segs: list[Segment]) -> list[Segment]:
    """TIMIT's names for silence: ``h#`` at the start and end, ``pau`` in between."""
    out = [Segment(s.start, s.end, s.label, s.word) for s in segs]
    for k, seg in enumerate(out):
        if seg.label == SILENCE:
            seg.label = "h#" if k in (0, len(out) - 1) else "pau"
    return out


def make_alignment(phone_segs: list[Segment], word_segs: list[Segment], text: str, n: int,
                   source: Path | None):
    """An ``Alignment`` with tiers "phones" and "words"; times are sample / 16000 s."""
    from steve_qt.core.speech.alignment import Alignment, Interval, Tier

    def tier(name: str, segs: list[Segment]) -> Tier:
        return Tier(name, [Interval(s.start / OUT_RATE, s.end / OUT_RATE, s.label) for s in segs])

    return Alignment(tiers={"phones": tier("phones", phone_segs), "words": tier("words", word_segs)},
                     text=text, source=source, duration_s=n / OUT_RATE)


@dataclass
class Utterance:
    stem: str
    text: str
    samples: np.ndarray  # (n,) int16 at OUT_RATE
    phones: list[Segment]  # sample indices at OUT_RATE
    words: list[Segment]
    version: str


def make_utterance(stem: str, text: str, voice: str = VOICE, rate: int = WORDS_PER_MINUTE,
                   pitch: int = PITCH) -> Utterance:
    syn = pad(synthesize(text, voice, rate, pitch))
    phone_segs, word_segs = align(syn.samples, syn.events, text)
    y = resample_int16(syn.samples)
    return Utterance(stem, text, y, scale_segments(phone_segs, len(y)),
                     scale_segments(word_segs, len(y)), syn.version)


def write_utterance(utt: Utterance, out_dir: Path) -> None:
    import soundfile as sf
    from steve_qt.core.speech.alignment import write_textgrid, write_timit

    out_dir.mkdir(parents=True, exist_ok=True)
    wav = out_dir / f"{utt.stem}.wav"
    sf.write(str(wav), utt.samples, OUT_RATE, subtype="PCM_16", format="WAV")
    n = len(utt.samples)
    # TIMIT: silence is h#/pau in .phn and left out of .wrd; TextGrid: silence is ""
    write_timit(make_alignment(timit_silence(utt.phones), utt.words, utt.text, n, wav),
                out_dir / utt.stem)
    write_textgrid(make_alignment(utt.phones, utt.words, utt.text, n, wav),
                   out_dir / f"{utt.stem}.TextGrid")


def format_table(utt: Utterance) -> str:
    rows = [f"{utt.stem}: {utt.text!r}  ({len(utt.samples)} samples at {OUT_RATE} Hz)",
            f"{'start':>7} {'end':>7} {'ms':>6}  phone  word"]
    for s in utt.phones:
        word = next((w.label for w in utt.words if w.word == s.word), "") if s.word is not None else ""
        rows.append(f"{s.start:7d} {s.end:7d} {1000 * (s.end - s.start) / OUT_RATE:6.1f}  "
                    f"{s.label or '(sil)':6s} {word}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--espeak-child"]:
        _child_main(argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR, help="output folder")
    parser.add_argument("--only", nargs="+", metavar="STEM", choices=sorted(UTTERANCES),
                        help="make only these utterances")
    parser.add_argument("--table", action="store_true", help="print each alignment table")
    args = parser.parse_args(argv)
    if espeak_version() is None:
        print(f"error: {ESPEAK_LIBRARY} not found (Debian: apt-get install libespeak-ng1)",
              file=sys.stderr)
        return 1
    for stem in args.only or list(UTTERANCES):
        utt = make_utterance(stem, UTTERANCES[stem])
        if utt.version != ESPEAK_VERSION:
            print(f"note: espeak-ng {utt.version}, committed samples were made with "
                  f"{ESPEAK_VERSION}", file=sys.stderr)
        write_utterance(utt, args.out)
        if args.table:
            print(format_table(utt))
        print(f"wrote {args.out / stem}.{{wav,phn,wrd,txt,TextGrid}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
