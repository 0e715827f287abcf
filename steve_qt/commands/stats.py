"""``steve-qt stats DIR --out OUTDIR``: head statistics and phone-class matrices over a corpus.

Walks DIR for audio files with an alignment beside them (TIMIT ``DR1/FCJF0/SA1.WAV`` with
``.PHN``/``.WRD`` in either case, or a ``.TextGrid``), extracts each once (cached), and writes to
OUTDIR:

  summary.txt               which heads are local, failures, "used X of Y files; Z failed"
  files.csv                 one row per audio file: ok / failed / skipped, the reason, frames
  head_stats.csv            per layer x head, averaged over all query frames of the corpus
  head_stats_per_file.csv   the same per file
  class_<feature>.csv       phone-class x phone-class matrices (kind, manner, place, voicing) per
                            layer (and rollout) and head ("mean" = mean of heads), pooled
  word_errors.csv           (--component cross) Whisper DTW word boundaries vs the reference

Head statistics (per layer x head, averaged over query frames): mean_distance_ms (attention-
weighted distance between query and key frame centres, over the kept keys), entropy_bits (the
padding mass counted as one bin), local_share_K (mass within +-K frames of the diagonal),
own_phone_mass (mass on the query's own phone), padding_mass (mass sent to Whisper's cropped 30 s
padding), silence_share (mass on silence intervals). Layers and heads are numbered from 0, as in
the .npz arrays. Cached extractions live in ~/.cache/steve_qt (about 1 MB per 3 s of audio).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.attention.analysis import DEFAULT_KS
from .common import add_cluster_options, add_model_option, add_tier_options


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("stats", help="head statistics and phone-class matrices over a folder tree",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", metavar="DIR", help="folder tree of audio files with alignments")
    add_model_option(p)
    p.add_argument("--component", choices=("encoder", "cross", "decoder"), default="encoder",
                   help="encoder self-attention (default), decoder cross-attention or decoder "
                        "self-attention (Whisper only)")
    p.add_argument("--out", required=True, metavar="OUTDIR", help="folder for the results "
                   "(created if missing)")
    add_cluster_options(p)
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    add_tier_options(p)
    p.add_argument("--local-k", type=int, default=5, choices=DEFAULT_KS, metavar="K",
                   help="summary: a head is local when --local-share of its attention stays "
                        f"within +-K frames of the diagonal (K in {', '.join(map(str, DEFAULT_KS))}; "
                        "default 5)")
    p.add_argument("--local-share", type=float, default=0.5, metavar="SHARE",
                   help="summary: see --local-k (default 0.5)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.features.corpus import OUTPUT_NAMES, corpus_tables, default_cache_dir, run_corpus
    from ..core.errors import SteveError
    from ..core.fileio import check_writable, write_text_atomic

    if args.jobs is not None and args.jobs < 1:
        raise SteveError(f"--jobs must be at least 1, got {args.jobs}")
    if not 0.0 < args.local_share <= 1.0:
        raise SteveError(f"--local-share must be in (0, 1], got {args.local_share}")
    folder = Path(args.folder)
    if not folder.is_dir():
        raise SteveError("is a file, not a folder" if folder.exists() else "folder not found",
                         folder)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SteveError("is a file; --out needs a folder", out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SteveError(f"cannot create the output folder: {exc.strerror or exc}", out) from exc
    for name in OUTPUT_NAMES:  # fail before the model runs, not after
        check_writable(out / name, args.force)
    cache = None if args.no_cache else (Path(args.cache) if args.cache else default_cache_dir())

    from ..core.features.runner import tqdm_progress

    progress, close = tqdm_progress("steve-qt stats")
    try:
        result = run_corpus(args.folder, args.model, args.component, jobs=args.jobs,
                            cache_dir=cache, phone_tier=args.phone_tier,
                            word_tier=args.word_tier, progress=progress,
                            scheduler=args.scheduler, timeout=args.timeout)
    finally:
        close()
    tables = corpus_tables(result, args.local_k, args.local_share)
    for name, text in tables.items():
        write_text_atomic(out / name, text, force=args.force)
    print(tables["summary.txt"], end="")
    print(f"wrote {', '.join(sorted(tables))} to {out}")
    return 0 if result.used else 1
