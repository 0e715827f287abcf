"""``steve-qt features index|top``: a feature index over a corpus, and queries of it.

  steve-qt features index CORPUS --site encoder.blocks.2.mlp.1 --out IDX [--top-k 20]
  steve-qt features index CORPUS --sae SAE_DIR --out IDX      # an SAE's latents
  steve-qt features top IDX 17 [--ranges] [--phones]

``index`` runs the model over every audio file under CORPUS (activations are cached in the user
cache, so a second index of the same site, or a rerun after a kill, does not run the model
again), on an embedded Dask cluster of --jobs worker processes, or on an existing cluster with
--scheduler tcp://HOST:PORT. IDX gets top_examples.csv (per feature its top-k files by the file's
maximum, one example per file at its argmax frame), range_examples.csv (the same per range bin:
fifths of the feature's maximum, and of its minimum when it goes negative), phone_selectivity.csv,
files.csv, index.json and summary.txt, plus NumPy tables that ``top`` reads in milliseconds.

Ranks, features, frames, layers count from 0. Ties: higher activation first, then the lower file
path, then the lower frame. Selectivity of a phone: Cohen's d of its frames against all other phones' frames,
(mean - rest_mean) / sqrt((std**2 + rest_std**2) / 2), and the AUROC of the feature as a detector
of the phone; phones are normalised (`steve-qt phones`) and ranked only with at least --min-frames
frames from at least --min-files files (default 20 and 3). With --acoustics the index also holds
acoustic_correlation.csv; `features top IDX --acoustics f2` lists the features most correlated
with F2.
"""

from __future__ import annotations

import argparse
import math
import sys

from .common import add_cluster_options, add_model_option, add_tier_options


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("features", help="feature index over a corpus (index) and queries (top)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    fsub = p.add_subparsers(dest="features_command", metavar="{index,top}", required=True)

    ix = fsub.add_parser("index", help="build a feature index over a folder tree of audio",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ix.add_argument("corpus", metavar="CORPUS", help="folder tree of audio files (alignments "
                    "beside them are used for phone/word labels when present)")
    ix.add_argument("--site", metavar="S", help="module path of the model, e.g. "
                    "encoder.blocks.2.mlp.1 (see `steve-qt sites`)")
    ix.add_argument("--sae", metavar="DIR", help="index the features (latents) of this sparse "
                    "autoencoder (SAELens format, `steve-qt sae train`) instead of the site's "
                    "dimensions; --site defaults to the SAE's hook_name")
    ix.add_argument("--out", required=True, metavar="IDX", help="folder to create for the index")
    add_model_option(ix)
    ix.add_argument("--top-k", type=int, default=20, metavar="K",
                    help="examples per feature (and per range bin); default 20")
    ix.add_argument("--bins", type=int, default=5, metavar="N",
                    help="range bins: Nths of the feature's maximum (and minimum); default 5")
    add_cluster_options(ix)
    add_tier_options(ix)
    ix.add_argument("--acoustics", action=argparse.BooleanOptionalAction, default=False,
                    help="also acoustic_correlation.csv: Pearson's r of every feature with "
                         "Praat's f0, f1, f2, f3 and intensity at the model's frame centres")
    ix.add_argument("--min-frames", type=int, default=None, metavar="N",
                    help="frames a phone needs to be ranked (default 20)")
    ix.add_argument("--min-files", type=int, default=None, metavar="N",
                    help="files a phone needs to be ranked (default 3)")
    ix.add_argument("--force", action="store_true", help="replace an existing index folder")
    ix.add_argument("--timings", metavar="JSON", help="also write when each part of the run "
                    "started and ended (cluster start, model load, each file's parts on its "
                    "worker, merge, write) to this JSON file, for benchmarks")
    ix.set_defaults(func=run_index)

    tp = fsub.add_parser("top", help="a feature's top examples from an index")
    tp.add_argument("index", metavar="IDX", help="index folder (from `features index`)")
    tp.add_argument("feature", metavar="F", nargs="?", type=int,
                    help="feature number (from 0)")
    tp.add_argument("--acoustics", nargs="?", const="all", metavar="MEASURE",
                    help="the features most correlated with MEASURE (f0, f1, f2, f3, intensity;"
                         " all of them when no MEASURE is given); needs an index built with "
                         "--acoustics")
    tp.add_argument("-k", type=int, default=10, metavar="K",
                    help="how many features --acoustics lists (default 10)")
    tp.add_argument("--ranges", action="store_true",
                    help="also the examples of each activation range")
    tp.add_argument("--phones", action="store_true", help="also the phone selectivity table")
    tp.set_defaults(func=run_top)
    return p


def run_index(args) -> int:
    import time
    from pathlib import Path

    from ..core.features.index import build_index
    from ..core.features.runner import Timings, tqdm_progress

    start = time.time()
    timings = Timings() if args.timings else None
    if args.timings and not Path(args.timings).resolve().parent.is_dir():
        from ..core.errors import SteveError

        raise SteveError("the folder for the timings does not exist", args.timings)
    progress, close = tqdm_progress("steve-qt features index")
    try:
        meta = build_index(args.corpus, args.site, args.out, spec=args.model,
                           sae_dir=args.sae, top_k=args.top_k, bins=args.bins,
                           jobs=args.jobs, scheduler=args.scheduler, cache_dir=args.cache,
                           force=args.force, phone_tier=args.phone_tier,
                           word_tier=args.word_tier, timeout=args.timeout, progress=progress,
                           acoustics=args.acoustics, min_frames=args.min_frames,
                           min_files=args.min_files, timings=timings)
    finally:
        close()
    print((Path(args.out) / "summary.txt").read_text(), end="")
    print(f"wrote the index of {meta['num_features']} features to {args.out}")
    if timings is not None:
        timings.add("command", start, time.time())
        from ..core.errors import SteveError

        try:
            timings.save(args.timings)
        except OSError as exc:
            raise SteveError(f"cannot write the timings: {exc.strerror or exc}",
                             args.timings) from exc
    return 0


def _fmt(x: float) -> str:
    return "" if not math.isfinite(x) else f"{x:.4g}"


def _table(examples, ranges: bool) -> list[str]:
    out = []
    for e in examples:
        line = f"  {e.rank:>3}  {_fmt(e.activation):>9}  {e.time_s:8.2f} s  frame {e.frame:<5} " \
               f"{e.phone or '-':<5} {e.word or '-':<12} {e.file}"
        out.append(line)
    return out


def run_acoustic_top(idx, measure: str, k: int) -> int:
    from ..core.speech.acoustics import MEASURES

    measures = MEASURES if measure == "all" else (measure,)
    lines = []
    for m in measures:
        top = idx.acoustic_top(m, k)
        n, files = idx.acoustic_support(m)
        lines.append(f"{m}: features most correlated (Pearson's r over {n} frames with a "
                     f"defined {m}, {files} files):")
        lines += [f"  {f:>6}  r {r:+.4f}" for f, r in top] or ["  (no defined frames)"]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run_top(args) -> int:
    from ..core.errors import SteveError
    from ..core.features.index import FeatureIndex

    idx = FeatureIndex.open(args.index)
    if args.acoustics:
        return run_acoustic_top(idx, args.acoustics, args.k)
    if args.feature is None:
        raise SteveError("give a feature number (or --acoustics MEASURE)")
    f = args.feature
    ex = idx.top(f)
    m = idx.meta
    lines = [f"feature {f} of {m['site']} ({m['model']}" + (f", SAE {m['sae']}" if m.get("sae")
                                                             else "")
             + f"): max {_fmt(idx.feature_max(f))}, min {_fmt(idx.feature_min(f))}; "
             f"corpus {m['corpus']}",
             f"top {len(ex)} files (rank, activation, time, frame, phone, word, file):"]
    lines += _table(ex, False)
    if args.ranges:
        current = None
        for e in idx.ranges(f):
            if e.bin != current:
                current = e.bin
                lines.append(f"range bin {e.bin} ({_fmt(e.lo)} .. {_fmt(e.hi)}]"
                             if e.bin > 0 else f"range bin {e.bin} [{_fmt(e.lo)} .. {_fmt(e.hi)})")
            lines += _table([e], True)
    if args.phones:
        lines.append("normalised phones (frames, files, mean, rest mean, selectivity d, AUROC;"
                     " * = too little support to be ranked):")
        for s in idx.selectivity(f):
            lines.append(f" {' ' if s.supported else '*'}{s.phone:<6} {s.frames:>7} {s.n_files:>5}"
                         f"  {_fmt(s.mean):>9}  {_fmt(s.rest_mean):>9}"
                         f"  {_fmt(s.selectivity):>6}  {_fmt(s.auroc):>6}"
                         f"{'  best' if s.best else ''}")
    else:
        best = [s for s in idx.selectivity(f) if s.best]
        if best:
            lines.append(f"best phone: {best[0].phone} (mean {_fmt(best[0].mean)}, selectivity "
                         f"{_fmt(best[0].selectivity)}, AUROC {_fmt(best[0].auroc)}; "
                         f"{best[0].frames} frames from {best[0].n_files} files)")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
