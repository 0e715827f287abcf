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
    from collections import Counter

    from ..core.features.corpus import phone_inventory

    rows, aligned, total = phone_inventory(args.corpus, args.phone_tier)
    norm_n: Counter = Counter()
    for _, norm, n, _ in rows:
        norm_n[norm] += n
    out = [f"{len(rows)} raw phone labels in {aligned} aligned files of {total}, "
           f"{len(norm_n)} after normalisation", "raw label, normalised, intervals, files:"]
    out += [f"  {raw:<8} -> {norm:<10} {n:>7} {nf:>6}" for raw, norm, n, nf in rows]
    sys.stdout.write("\n".join(out) + "\n")
    return 0
