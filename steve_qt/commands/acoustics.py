"""``steve-qt acoustics AUDIO --out tracks.csv``: pitch, formants and intensity with Praat's own
algorithms (praat-parselmouth), one CSV row per pitch analysis frame.

Columns: time_s,f0_hz,f1_hz,f2_hz,f3_hz,intensity_db. A cell is empty where Praat leaves the value
undefined (unvoiced frames, frames without that formant). Formants and intensity are read at the
pitch frames' times with Praat's ``Get value at time`` (linear interpolation). The parameters
carry Praat's names and defaults (To Pitch: 75-600 Hz; To Formant (burg): 5 formants up to
5500 Hz, window 0.025 s, pre-emphasis from 50 Hz; To Intensity: minimum pitch 100 Hz).
"""

from __future__ import annotations

import argparse
import sys


#: (option, AcousticParams field, metavar, help): Praat's parameters, named as in its dialogs
PRAAT_OPTIONS = (
    ("--time-step", "time_step", "S",
     "time step of every analysis (default: each analysis's automatic step)"),
    ("--pitch-floor", "pitch_floor", "HZ", "To Pitch: pitch floor (default 75)"),
    ("--pitch-ceiling", "pitch_ceiling", "HZ", "To Pitch: pitch ceiling (default 600)"),
    ("--max-number-of-formants", "max_number_of_formants", "N",
     "To Formant (burg): maximum number of formants (default 5)"),
    ("--maximum-formant", "maximum_formant", "HZ",
     "To Formant (burg): formant ceiling (default 5500)"),
    ("--window-length", "window_length", "S", "To Formant (burg): window length (default 0.025)"),
    ("--pre-emphasis-from", "pre_emphasis_from", "HZ",
     "To Formant (burg): pre-emphasis from (default 50)"),
    ("--minimum-pitch", "minimum_pitch", "HZ", "To Intensity: minimum pitch (default 100)"),
)


def add_praat_arguments(p: argparse.ArgumentParser) -> None:
    """Praat's analysis parameters, with Praat's names and defaults."""
    from ..core.speech.acoustics import AcousticParams

    defaults = AcousticParams()
    g = p.add_argument_group("Praat's parameters (defaults are Praat's)")
    for option, name, metavar, text in PRAAT_OPTIONS:
        g.add_argument(option, dest=f"praat_{name}", type=float,
                       default=getattr(defaults, name), metavar=metavar, help=text)


def praat_params(args):
    from ..core.speech.acoustics import AcousticParams

    return AcousticParams(**{name: getattr(args, f"praat_{name}")
                             for _, name, _, _ in PRAAT_OPTIONS})


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("acoustics", help="pitch, formants and intensity (Praat's algorithms) as CSV",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", metavar="AUDIO", help="audio file (WAV, FLAC, OGG; any rate)")
    p.add_argument("--out", required=True, metavar="CSV", help="CSV file to write")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    add_praat_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.fileio import check_writable, write_text_atomic
    from ..core.speech.acoustics import audio_tracks, describe_undefined, tracks_csv
    from ..core.speech.audio import load_audio

    params = praat_params(args)
    params.check()
    check_writable(args.out, args.force)
    tracks = audio_tracks(load_audio(args.audio), params)
    note = describe_undefined(tracks)
    if note:
        print(f"steve-qt: {args.audio}: {note}", file=sys.stderr)
    write_text_atomic(args.out, tracks_csv(tracks), args.force)
    f0 = tracks["f0"]
    print(f"wrote {len(f0.times)} frames ({f0.defined} voiced) of {tracks.duration:.3f} s to "
          f"{args.out}")
    return 0
