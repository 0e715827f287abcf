"""``steve-qt phones [CORPUS]``: the phone normalisation every statistic uses.

Without CORPUS: the mapping tables in the code (TIMIT's 61 labels folded to the 39 of Lee & Hon
1989, and espeak-ng's IPA units mapped onto one IPA set; ARPAbet stress digits are stripped, and
IPA stress, length and diacritics removed before the map). With CORPUS: every phone label found in
the alignments beside its audio files, with its normalised label, intervals and files, so that a
corpus' long tail (one-off labels) is visible before any statistic is computed.
"""

from __future__ import annotations

import argparse
import sys


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("phones", help="the phone normalisation (tables, or a corpus' labels)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", nargs="?", metavar="CORPUS",
                   help="folder tree of audio files with alignments beside them")
    p.add_argument("--phone-tier", metavar="NAME", help="TextGrid/ELAN tier holding phones")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.speech.phone_sets import phone_table

    if args.corpus is None:
        rows = phone_table()
        width = max(len(r[1]) for r in rows)
        current = None
        for kind, label, norm in rows:
            if kind != current:
                print(f"{kind}:")
                current = kind
            print(f"  {label:<{width}}  -> {norm}")
        return 0
    return run_corpus(args)


def run_corpus(args) -> int:
    from collections import Counter, defaultdict
    from pathlib import Path

    from ..core.errors import SteveError
    from ..core.features.corpus import find_audio_files
    from ..core.speech.alignment import load_alignment
    from ..core.speech.phone_sets import normalise_labels

    root = Path(args.corpus)
    paths = find_audio_files(root)
    if not paths:
        raise SteveError("no audio files (WAV, FLAC, OGG, ...) in this folder tree", root)
    intervals: Counter = Counter()
    files: dict[str, set] = defaultdict(set)
    norm_of: dict[str, str] = {}
    aligned = 0
    for p in paths:
        al = load_alignment(p, phone_tier=args.phone_tier)
        if al is None or al.phones is None:
            continue
        aligned += 1
        labels = al.phones.labels
        for raw, norm in zip(labels, normalise_labels(labels)):
            intervals[raw] += 1
            files[raw].add(p)
            norm_of[raw] = norm or "(left out)"
    if not aligned:
        raise SteveError("no phone alignment beside any audio file", root)
    norm_n: Counter = Counter()
    for raw, n in intervals.items():
        norm_n[norm_of[raw]] += n
    out = [f"{len(intervals)} raw phone labels in {aligned} aligned files of {len(paths)}, "
           f"{len(norm_n)} after normalisation", "raw label, normalised, intervals, files:"]
    for raw, n in sorted(intervals.items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"  {raw:<8} -> {norm_of[raw]:<10} {n:>7} {len(files[raw]):>6}")
    sys.stdout.write("\n".join(out) + "\n")
    return 0
