"""Synthesise a small TIMIT-layout corpus with espeak-ng: many "speakers", exact alignments.

    python samples/make_corpus.py --out DIR --n N [--seed S] [--speakers K] [--force]

Writes ``DIR/DR1/<SPEAKER>/<UTT>.wav`` (16 kHz, 16-bit PCM mono) with ``.phn``, ``.wrd`` and
``.txt`` beside it (TIMIT format, boundaries from espeak-ng's own phoneme and word events, made by
``make_samples.py``'s synthesis and alignment code), plus ``DIR/speakers.csv`` (each speaker's
voice, rate and pitch) and ``DIR/utterances.csv`` (each file's speaker and sentence).

Speakers: ``K`` (default 8, or N/30 rounded up when larger) combinations of an espeak-ng English
voice (en-us, en (British), en-gb-scotland, en-029, en-gb-x-rp) with a voice variant (default male, ``+f3``, ``+m3``, ``+f2``,
...), a rate of 130-150 words per minute (tiny.en transcribes espeak speech well there, badly at
espeak's default 175) and a base pitch of 35-65, drawn from ``--seed``. Speaker ids follow TIMIT:
``M``/``F`` (the variant's voice), three letters of the accent, the speaker's number
(``MUSA0``, ``FSCO3``).
Utterance ``i`` goes to speaker ``i mod K`` and reads the next sentence of a seeded order of the
Harvard sentences below, so speakers share sentences as TIMIT's SX sentences are shared; the
file is named ``SX<nnn>`` after the sentence's number in the list. A sentence that espeak-ng
cannot align word by word for a voice (it sometimes runs "in the" into one word event) is
skipped for that speaker, with a note on stderr.

The Harvard sentences ("IEEE Recommended Practice for Speech Quality Measurements", IEEE
Transactions on Audio and Electroacoustics 17(3), 1969) are in the public domain. The 80 below
are lists 1-4 in order, then 40 sentences from the later lists (compared with a public copy of
the lists: every sentence is a Harvard sentence, but lists 5-6 are not among them and the later
lists are incomplete).

Deterministic: the same ``--n``, ``--seed`` and ``--speakers`` on the same espeak-ng build give
byte-identical files (each utterance is synthesised in a fresh espeak-ng process, see
make_samples.py).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _load_make_samples():
    """samples/make_samples.py as a module (samples/ is not a package)."""
    if "make_samples" in sys.modules:
        return sys.modules["make_samples"]
    spec = importlib.util.spec_from_file_location("make_samples", HERE / "make_samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_samples"] = module
    spec.loader.exec_module(module)
    return module


ms = _load_make_samples()

HARVARD = (
    # lists 1-4
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.",
    "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.",
    "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.",
    "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.",
    "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.",
    "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.",
    "What joy there is in living.",
    # from the later lists
    "The clock struck to mark the third period.",
    "A small creek cut across the field.",
    "Cars and busses stalled in snow drifts.",
    "The set of china hit the floor with a crash.",
    "This is a grand season for hikes on the road.",
    "The dune rose from the edge of the water.",
    "Those words were the cue for the actor to leave.",
    "A yacht slid around the point into the bay.",
    "The two met while playing on the sand.",
    "The ink stain dried on the finished page.",
    "The walled town was seized without a fight.",
    "The lease ran out in sixteen weeks.",
    "A tame squirrel makes a nice pet.",
    "The horn of the car woke the sleeping cop.",
    "The heart beat strongly and with firm strokes.",
    "The pearl was worn in a thin silver ring.",
    "The fruit peel was cut in thick slices.",
    "The Navy attacked the big task force.",
    "See the cat glaring at the scared mouse.",
    "There are more than two factors here.",
    "The hat brim was wide and too droopy.",
    "The lawyer tried to lose his case.",
    "The grass curled around the fence post.",
    "Cut the pie into large parts.",
    "Men strive but seldom get rich.",
    "Always close the barn door tight.",
    "He lay prone and hardly moved a limb.",
    "The slush lay deep along the street.",
    "A wisp of cloud hung in the blue air.",
    "A pound of sugar costs more than eggs.",
    "The fin was sharp and cut the clear water.",
    "The play seems dull and quite stupid.",
    "Bail the boat to stop it from sinking.",
    "The term ended in late June that year.",
    "A tusk is used to make costly gifts.",
    "Ten pins were set in order.",
    "The bill was paid every third week.",
    "Oak is strong and also gives shade.",
    "Cats and dogs each hate the other.",
    "The pipe began to rust while new.",
)

#: espeak-ng voice -> three letters for the speaker id. British English is the voice file "en"
#: (language en-gb): espeak_SetVoiceByName finds voices by file name, and "en-gb" is none.
ACCENTS = {"en-us": "USA", "en": "GBR", "en-gb-scotland": "SCO", "en-029": "CAR",
           "en-gb-x-rp": "RPE"}
#: variant suffix -> sex letter of the speaker id ("" = the voice's own male default)
VARIANTS = {"": "M", "+f3": "F", "+m3": "M", "+f2": "F", "+m7": "M", "+f4": "F"}
RATES = (130, 150)  # words per minute, inclusive
PITCHES = (35, 65)  # espeak base pitch, inclusive
REGION = "DR1"


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str  # espeak-ng voice with variant, e.g. "en-gb-scotland+f3"
    rate: int
    pitch: int


@dataclass(frozen=True)
class Item:
    speaker: Speaker
    sentence: int  # index into HARVARD
    stem: str  # "SX007"

    @property
    def rel(self) -> str:
        return f"{REGION}/{self.speaker.id}/{self.stem}"


def make_speakers(k: int, rng: np.random.Generator) -> list[Speaker]:
    """``k`` speakers: accents in turn, variants in turn (offset so the pairs differ), seeded
    rate and pitch."""
    accents, variants = list(ACCENTS), list(VARIANTS)
    out = []
    for i in range(k):
        voice = accents[i % len(accents)]
        variant = variants[(i + i // len(accents)) % len(variants)]
        rate = int(rng.integers(RATES[0], RATES[1] + 1))
        pitch = int(rng.integers(PITCHES[0], PITCHES[1] + 1))
        sid = f"{VARIANTS[variant]}{ACCENTS[voice]}{i}"
        out.append(Speaker(sid, voice + variant, rate, pitch))
    return out


#: files per speaker the default number of speakers plans for: about a third of the sentences
#: do not align for a given voice (see synthesize_items), so a speaker has ~50 usable of 80
FILES_PER_SPEAKER = 30


def default_speakers(n: int) -> int:
    """8, or enough speakers for ``FILES_PER_SPEAKER`` files each."""
    return max(8, -(-n // FILES_PER_SPEAKER))


@dataclass
class Plan:
    speakers: list[Speaker]
    orders: list[list[int]]  # per speaker: sentence indices in the order they are tried


def plan(n: int, seed: int = 0, speakers: int | None = None) -> Plan:
    """Speakers and, per speaker, a seeded order of the sentences. File ``i`` is read by speaker
    ``i mod K``, the next sentence of its order (no speaker reads a sentence twice)."""
    speakers = default_speakers(n) if speakers is None else speakers
    if n > speakers * len(HARVARD):
        raise ValueError(f"{speakers} speakers read at most {speakers * len(HARVARD)} different "
                         f"files ({len(HARVARD)} sentences each); use more --speakers")
    rng = np.random.default_rng(seed)
    spk = make_speakers(speakers, rng)
    return Plan(spk, [[int(j) for j in rng.permutation(len(HARVARD))] for _ in spk])


def synthesize_items(n: int, p: Plan, log=print):
    """Yield (Item, make_samples.Utterance) for ``n`` files.

    A sentence whose alignment cannot be made exact for a speaker -- espeak-ng sometimes runs two
    words into one WORD event ("in the" in British voices), so one word has no boundary of its
    own -- is skipped for that speaker, who reads their next sentence instead (noted on stderr).
    """
    nexts = [0] * len(p.speakers)
    for i in range(n):
        s = i % len(p.speakers)
        sp = p.speakers[s]
        while True:
            if nexts[s] >= len(p.orders[s]):
                raise RuntimeError(f"speaker {sp.id} ({sp.voice}) has no sentence left that "
                                   "aligns; use more --speakers")
            sentence = p.orders[s][nexts[s]]
            nexts[s] += 1
            item = Item(sp, sentence, f"SX{sentence + 1:03d}")
            try:
                utt = ms.make_utterance(item.stem, HARVARD[sentence], sp.voice, sp.rate, sp.pitch)
            except RuntimeError as exc:
                print(f"note: {item.rel} skipped ({sp.voice}: {exc})", file=sys.stderr)
                continue
            yield item, utt
            break


def csv_text(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_corpus(out: Path, n: int, p: Plan, log=print) -> list[Item]:
    import soundfile as sf
    from steve_qt.core.speech.alignment import write_timit

    items = []
    for item, utt in synthesize_items(n, p, log):
        folder = out / REGION / item.speaker.id
        folder.mkdir(parents=True, exist_ok=True)
        wav = folder / f"{item.stem}.wav"
        sf.write(str(wav), utt.samples, ms.OUT_RATE, subtype="PCM_16", format="WAV")
        write_timit(ms.make_alignment(ms.timit_silence(utt.phones), utt.words, utt.text,
                                      len(utt.samples), wav), folder / item.stem)
        items.append(item)
        sp = item.speaker
        log(f"[{len(items)}/{n}] {item.rel}.wav  {sp.voice} {sp.rate} wpm pitch {sp.pitch}: "
            f"{utt.text}")
    speakers = list(dict.fromkeys(i.speaker for i in items))
    (out / "speakers.csv").write_text(csv_text(
        ["speaker", "voice", "words_per_minute", "pitch"],
        [[s.id, s.voice, s.rate, s.pitch] for s in speakers]), encoding="utf-8")
    (out / "utterances.csv").write_text(csv_text(
        ["file", "speaker", "sentence", "text"],
        [[f"{i.rel}.wav", i.speaker.id, i.sentence + 1, HARVARD[i.sentence]] for i in items]),
        encoding="utf-8")
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="corpus folder to create")
    parser.add_argument("--n", type=int, required=True, help="number of utterances")
    parser.add_argument("--seed", type=int, default=0, help="seed for speakers and sentences")
    parser.add_argument("--speakers", type=int, default=None,
                        help="number of speakers (default 8, more when N > 8 x 30)")
    parser.add_argument("--force", action="store_true", help="write into an existing folder")
    parser.add_argument("--quiet", action="store_true", help="no line per file")
    args = parser.parse_args(argv)
    if args.n < 1 or (args.speakers is not None and args.speakers < 1):
        parser.error("--n and --speakers must be at least 1")
    try:
        p = plan(args.n, args.seed, args.speakers)
    except ValueError as exc:
        parser.error(str(exc))
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        print(f"error: {args.out} exists and is not empty (use --force)", file=sys.stderr)
        return 2
    if ms.espeak_version() is None:
        print(f"error: {ms.ESPEAK_LIBRARY} not found (Debian: apt-get install libespeak-ng1)",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    items = write_corpus(args.out, args.n, p, log=(lambda *_: None) if args.quiet else print)
    print(f"wrote {len(items)} utterances of {len(set(i.speaker for i in items))} speakers "
          f"to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
