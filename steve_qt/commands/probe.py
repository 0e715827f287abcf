"""``steve-qt probe CORPUS --out PROBE``: layer-wise linear probes for phone, class, manner, voicing.

For every audio file under CORPUS that has a phone alignment beside it, the activations of each
site (default: the residual stream after every encoder layer) are read per frame (from the
activation cache, else from the model, on an embedded Dask cluster of --jobs workers or on an
existing one with --scheduler); each frame is labelled with its phone, the phone's class
(vowel/consonant), manner and voicing; silence is left out. Per site and target a logistic
regression on the standardised activations is cross-validated with folds grouped by file, so no
file is in both training and test. PROBE gets probe.csv (site, layer, target, accuracy,
majority_baseline, n, classes, files, folds), files.csv, summary.txt and probe.pdf/png
(accuracy by layer, one line per target, majority baselines dashed). Layers count from 0.

--targets f0,f1,f2,intensity adds ridge regressions onto Praat's pitch, formants and intensity
read at the frame centres (frames where the measure is undefined left out), with the same folds;
probe.csv gives their cross-validated R² in the r2 column and the figure a second panel. A target
that is undefined in every frame is a one-line error, and nothing is written.
"""

from __future__ import annotations

import argparse

from .common import add_cluster_options, add_model_option, add_tier_options


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("probe", help="layer-wise linear probes (phone, class, manner, voicing) "
                       "over a corpus", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", metavar="CORPUS", help="folder tree of audio files with phone "
                   "alignments beside them (TIMIT .phn or TextGrid)")
    p.add_argument("--out", required=True, metavar="PROBE", help="folder to create for the results")
    p.add_argument("--sites", nargs="+", metavar="SITE",
                   help="frames sites to probe (default: every layer's residual stream; "
                        "see `steve-qt sites`)")
    add_model_option(p)
    p.add_argument("--folds", type=int, default=5, metavar="K",
                   help="cross-validation folds, grouped by file (default 5)")
    p.add_argument("--C", dest="c", type=float, default=1.0, metavar="C",
                   help="inverse L2 regularisation strength of the logistic regression (default 1)")
    add_cluster_options(p)
    p.add_argument("--targets", default="phone,class,manner,voicing", metavar="LIST",
                   help="comma-separated targets: phone, class, manner, voicing (logistic "
                        "regression; accuracy) and f0, f1, f2, f3, intensity (Praat's tracks at "
                        "the frame centres; ridge regression; R²). Default: "
                        "phone,class,manner,voicing")
    p.add_argument("--alpha", type=float, default=1.0, metavar="A",
                   help="L2 strength of the ridge regressions (default 1)")
    add_tier_options(p, words=False)
    p.add_argument("--force", action="store_true", help="replace an existing PROBE folder")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from pathlib import Path

    from ..core.features.probes import run_probes
    from ..core.features.runner import tqdm_progress

    progress, close = tqdm_progress("steve-qt probe: files")
    fits = FitBar(before=close)
    try:
        run_probes(args.corpus, args.out, spec=args.model, sites=args.sites, folds=args.folds,
                   c=args.c, jobs=args.jobs, scheduler=args.scheduler, cache_dir=args.cache,
                   force=args.force, phone_tier=args.phone_tier, timeout=args.timeout,
                   progress=progress, fit_progress=fits,
                   targets=[t.strip() for t in args.targets.split(",") if t.strip()],
                   alpha=args.alpha)
    finally:
        close()
        fits.close()
    print((Path(args.out) / "summary.txt").read_text(), end="")
    print(f"wrote probe.csv, files.csv, summary.txt, probe.pdf, probe.png to {args.out}")
    return 0


class FitBar:
    """A tqdm bar on stderr counting the fitted probes (site x target)."""

    def __init__(self, before=None):
        self.bar = None
        self.before = before  # called once before the bar appears (closes the files bar)

    def __call__(self, done: int, total: int, what: str) -> None:
        import sys

        if self.bar is None:
            from tqdm import tqdm

            if self.before is not None:
                self.before()
            self.bar = tqdm(total=total, unit="probe", desc="steve-qt probe: fits",
                            file=sys.stderr, dynamic_ncols=True)
        self.bar.set_postfix_str(what, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
