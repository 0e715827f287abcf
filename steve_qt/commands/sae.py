"""``steve-qt sae train CORPUS_OR_IDX --site SITE --out SAE_DIR``: train a sparse autoencoder.

Trains on the site's activations over a corpus (a folder tree of audio, or a feature index whose
index.json names corpus, model and site), streamed from the activation cache (files not cached
yet are run through the model first, as `steve-qt features index` does), on the CPU:

  --kind topk   TopK (k active latents per frame) with the AuxK loss against dead latents
                (Gao et al. 2024); saved as SAELens architecture "topk"
  --kind l1     ReLU + L1 penalty weighted by decoder norms (as FREUD); architecture "standard"

SAE_DIR gets cfg.json and sae_weights.safetensors in SAELens's format (loadable by
`sae_lens.SAE.load_from_disk`), and training.json (settings, losses, held-out report). A run that
is interrupted (Ctrl+C, kill) leaves SAE_DIR/checkpoint.pt; the same command continues it.
An existing SAE is replaced only with --force (which also discards a checkpoint).

The report on held-out files (--holdout, a seeded random share of the files): fraction of
variance explained, L0 (active latents per frame), the share of latents that never fire, and for
Whisper the WER of the transcript with the site's activations replaced by the SAE's
reconstruction against the unedited transcript (--wer-files of the held-out files; 0 skips it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_cluster_options, add_model_option


def register(sub) -> argparse.ArgumentParser:
    from ..core.features.sae_train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("sae", help="sparse autoencoders: train one on a corpus (sae train)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ssub = p.add_subparsers(dest="sae_command", metavar="{train}", required=True)
    t = ssub.add_parser("train", help="train an SAE on a site's activations over a corpus",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("corpus", metavar="CORPUS_OR_IDX",
                   help="folder tree of audio files, or a feature index folder")
    t.add_argument("--site", metavar="SITE", help="module path, e.g. encoder.blocks.2 (see "
                   "`steve-qt sites`); taken from the index when CORPUS_OR_IDX is one")
    t.add_argument("--out", required=True, metavar="SAE_DIR", help="folder for the SAE")
    add_model_option(t, default=None, note="; taken from the index when given one")
    g = t.add_argument_group("the SAE and its training")
    g.add_argument("--kind", choices=("topk", "l1"), default=d.kind,
                   help="topk (default) or l1")
    g.add_argument("--expansion", type=int, default=d.expansion, metavar="N",
                   help=f"latents per input dimension (default {d.expansion})")
    g.add_argument("--k", type=int, default=d.k, metavar="K",
                   help=f"TopK: active latents per frame (default {d.k})")
    g.add_argument("--l1", type=float, default=d.l1, metavar="LAMBDA",
                   help=f"L1: sparsity coefficient (default {d.l1:g}; activations are scaled "
                        "to mean norm sqrt(d_in))")
    g.add_argument("--epochs", type=int, default=d.epochs, metavar="N",
                   help=f"passes over the training rows (default {d.epochs})")
    g.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    g.add_argument("--batch", type=int, default=d.batch, metavar="ROWS",
                   help=f"frames per step (default {d.batch})")
    g.add_argument("--seed", type=int, default=d.seed, help="seed of initialisation, shuffling "
                   f"and the held-out split (default {d.seed})")
    g.add_argument("--holdout", type=float, default=0.1, metavar="FRACTION",
                   help="share of the files held out for the report (default 0.1)")
    g.add_argument("--wer-files", type=int, default=5, metavar="N",
                   help="held-out files transcribed with the reconstruction (Whisper; default 5;"
                        " 0: none)")
    r = t.add_argument_group("where it runs")
    add_cluster_options(r)
    t.add_argument("--force", action="store_true",
                   help="replace an existing SAE (and discard a checkpoint)")
    t.set_defaults(func=run_train)
    return p


def _check_out(out: Path, force: bool) -> None:
    from ..core.errors import SteveError
    from ..core.features.sae import CFG_FILENAME

    if out.exists() and not out.is_dir():
        raise SteveError("is a file, not a folder for an SAE", out)
    if (out / CFG_FILENAME).exists() and not force:
        raise SteveError("holds an SAE already; not overwritten (use --force to replace it)", out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise SteveError(f"folder {parent} does not exist", out)


def run_train(args) -> int:
    from ..core.models.adapters import DEFAULT_SPEC
    from ..core.errors import SteveError
    from ..core.features.runner import tqdm_progress
    from ..core.features.sae_corpus import (fill_cache, reconstruction_wer, resolve_corpus, rows_source,
                                   site_info, split_holdout)
    from ..core.features.sae_train import TrainConfig, evaluate, train_sae, write_report

    out = Path(args.out)
    _check_out(out, args.force)
    cfg = TrainConfig(kind=args.kind, expansion=args.expansion, k=args.k, l1=args.l1,
                      epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed)
    cfg.check()
    corpus = resolve_corpus(args.corpus, args.site, args.model or None)
    if args.model is None and corpus.index is None:
        corpus.spec = DEFAULT_SPEC
    site = site_info(corpus.spec, corpus.site)
    train, held = split_holdout(corpus.files, args.holdout, args.seed)
    progress, close = tqdm_progress("steve-qt sae: activations")
    try:
        usable, failed = fill_cache(corpus.files, corpus.spec, site.name, args.cache, args.jobs,
                                    args.scheduler, args.timeout, progress=progress)
    finally:
        close()
    for f, why in failed.items():
        print(f"steve-qt: warning: {f}: skipped ({why})", file=sys.stderr)
    train = [f for f in train if f in set(usable)]
    held = [f for f in held if f in set(usable)]
    if not train:
        raise SteveError("no file gave activations to train on", args.corpus)
    total = _count(train, corpus.spec, site.name, args.cache)
    bar = None

    def step(done: int, total_rows, loss: float) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total_rows, unit="row", unit_scale=True, desc="steve-qt sae: train",
                       file=sys.stderr, dynamic_ncols=True, initial=0)
        bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)
        bar.update(done - bar.n)

    try:
        sae = train_sae(rows_source(train, corpus.spec, site.name, args.cache), site.dim, cfg,
                        out, hook_name=site.name, model_name=corpus.spec, total_rows=total,
                        progress=step, force=args.force)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"steve-qt: interrupted; the same command continues from {out}/checkpoint.pt",
              file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    report: dict = {"site": site.name, "model": corpus.spec, "corpus": str(corpus.root),
                    "train_files": len(train), "heldout_files": [str(f) for f in held]}
    evaluated_on = held or train
    report["heldout"] = evaluate(sae, rows_source(evaluated_on, corpus.spec, site.name,
                                                  args.cache)(0))
    report["heldout"]["on"] = "held-out files" if held else \
        "the training files (no file held out)"
    if args.wer_files > 0 and corpus.spec.startswith("whisper"):
        report["transcript"] = reconstruction_wer(sae, evaluated_on[:args.wer_files], corpus.spec,
                                                  site.axis, site.name)
    write_report(out, report)
    h = report["heldout"]
    print(f"wrote {out}: {sae.architecture} SAE, {sae.d_in} -> {sae.d_sae}"
          + (f", k={sae.k}" if sae.k else "") + f", site {site.name}")
    print(f"{h['on']}: {h['rows']} frames, variance explained {h['fraction_variance_explained']:.3f},"
          f" L0 {h['l0']:.1f}, dead latents {100 * h['dead_share']:.1f}%")
    if "transcript" in report:
        print(f"transcript with the reconstruction: mean WER {report['transcript']['mean_wer']:.3f}"
              f" over {len(report['transcript']['files'])} files")
    return 0


def _count(files, spec: str, site: str, cache) -> int:
    from ..core.features.actcache import count_rows

    return count_rows([str(f) for f in files], spec, site, cache)[1]

