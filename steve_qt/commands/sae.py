"""``steve-qt sae train CORPUS_OR_IDX --site SITE [--site SITE2 ...] --out OUT``: train sparse
autoencoders.

Trains one SAE per site on the sites' activations over a corpus (a folder tree of audio, or a
feature index whose index.json names corpus, model and site), in one pass over the files per
epoch: each file's activations are read once from the activation cache and feed every SAE (files
not cached yet are run through the model first, one forward pass for all the sites, as
`steve-qt features index` does). One site is written to OUT itself, several to OUT/<site>/.

  --kind topk   TopK (k active latents per frame) with the AuxK loss against dead latents
                (Gao et al. 2024); saved as SAELens architecture "topk"
  --kind l1     ReLU + L1 penalty weighted by decoder norms (as FREUD); architecture "standard"

Each SAE folder gets cfg.json and sae_weights.safetensors in SAELens's format (loadable by
`sae_lens.SAE.load_from_disk`), and training.json (settings, losses, held-out report).

Reproducible: the same command with the same seed on the same machine (and torch thread count)
gives the same SAE bit for bit (files are read in sorted order, every random choice is seeded,
torch runs its deterministic algorithms). Resumable: a checkpoint.pt is written every
--checkpoint-seconds (30), on Ctrl+C / SIGTERM and at the end; the same command says what it
resumes from (step, epoch) and gives the SAE an uninterrupted run gives. An existing SAE is
replaced only with --force (which also discards a checkpoint). Options are checked against each
other and the sites before any work; a run that fails before its first checkpoint leaves nothing.

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
    ssub = p.add_subparsers(dest="sae_command", metavar="{train,eval,compare,erase}", required=True)
    t = ssub.add_parser("train", help="train an SAE on a site's activations over a corpus",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("corpus", metavar="CORPUS_OR_IDX",
                   help="folder tree of audio files, or a feature index folder")
    t.add_argument("--site", metavar="SITE", action="append", help="module path, e.g. "
                   "encoder.blocks.2 (see `steve-qt sites`); repeat for several SAEs in one pass;"
                   " taken from the index when CORPUS_OR_IDX is one")
    t.add_argument("--out", required=True, metavar="OUT",
                   help="folder for the SAE (several sites: OUT/<site>/)")
    add_model_option(t, default=None, note="; taken from the index when given one",
                     device=False)
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
    g.add_argument("--shuffle-rows", type=int, default=d.shuffle_rows, metavar="ROWS",
                   help=f"rows mixed in the shuffle buffer (default {d.shuffle_rows})")
    g.add_argument("--checkpoint-seconds", type=float, default=d.checkpoint_seconds,
                   metavar="S", help=f"write a checkpoint at least this often (default "
                   f"{d.checkpoint_seconds:g})")
    r = t.add_argument_group("where it runs")
    r.add_argument("--device", default=None, metavar="DEV",
                   help="auto (default: CUDA when torch sees one), cpu or cuda[:N]: where the "
                        "model runs and the SAEs train")
    add_cluster_options(r)
    t.add_argument("--force", action="store_true",
                   help="replace an existing SAE (and discard a checkpoint)")
    t.set_defaults(func=run_train)
    c = ssub.add_parser("compare", help="match two SAEs' features one to one by decoder cosine",
                        description=COMPARE_DOC,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("sae_a", metavar="SAE_A", help="an SAE folder (SAELens format)")
    c.add_argument("sae_b", metavar="SAE_B", help="an SAE of the same shape")
    c.add_argument("--out", metavar="DIR", help="write compare.json and compare_hist.png here")
    c.add_argument("--seed", type=int, default=0, help="seed of the random SAE (the floor)")
    c.add_argument("--force", action="store_true", help="replace an existing --out folder")
    c.set_defaults(func=run_compare)
    _register_eval(ssub)
    register_erase(ssub)
    return p


COMPARE_DOC = """``steve-qt sae compare SAE_A SAE_B [--out DIR]``: are the features of two SAEs (two seeds,
two corpora) the same? Each latent of A is matched to one latent of B by the cosine similarity
of their decoder rows (Hungarian assignment, scipy.optimize.linear_sum_assignment, maximising
the summed cosine). Printed and written to DIR/compare.json: n_features, share_above_0.7,
share_above_0.9, mean and median cosine, the same shares for A against a random SAE of the
same shape (random_floor: what matching alone reaches), the match and every cosine;
DIR/compare_hist.png is the histogram. SAEs of different shapes are refused."""


def run_compare(args) -> int:
    import json

    from ..core.features.sae import load_sae
    from ..core.features.sae_compare import compare_saes, histogram_png
    from ..core.fileio import atomic_folder, check_folder_writable

    if args.out:
        check_folder_writable(args.out, args.force, "the comparison")
    a, b = load_sae(args.sae_a), load_sae(args.sae_b)
    res = compare_saes(a, b, seed=args.seed)
    fl = res["random_floor"]
    print(f"{res['n_features']} latents matched one to one by decoder cosine: "
          f"{100 * res['share_above_0.7']:.1f}% above 0.7, "
          f"{100 * res['share_above_0.9']:.1f}% above 0.9 (mean {res['mean_cosine']:.3f}); "
          f"random floor {100 * fl['share_above_0.7']:.1f}% / {100 * fl['share_above_0.9']:.1f}%")
    if args.out:
        with atomic_folder(args.out, args.force, "the comparison") as tmp:
            (tmp / "compare.json").write_text(json.dumps(
                {**res, "sae_a": str(args.sae_a), "sae_b": str(args.sae_b)}) + "\n")
            histogram_png(res, tmp / "compare_hist.png")
        print(f"wrote {args.out}/compare.json and compare_hist.png")
    return 0


def _check_out(out: Path, force: bool) -> None:
    from ..core.errors import SteveError
    from ..core.features.sae import CFG_FILENAME

    if out.exists() and not out.is_dir():
        raise SteveError("is a file, not a folder for an SAE", out)
    if (out / CFG_FILENAME).exists() and not force:
        raise SteveError("holds an SAE already; not overwritten (use --force to replace it)", out)
    parent = out.parent if str(out.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # OUT/<site>: OUT itself may be made
    if not parent.is_dir():
        raise SteveError(f"folder {parent} does not exist", out)


def run_train(args) -> int:
    from ..core.models.adapters import DEFAULT_SPEC
    from ..core.errors import SteveError
    from ..core.features.runner import tqdm_progress
    from ..core.features.sae_corpus import (data_id, fill_cache, reconstruction_wer,
                                            resolve_corpus, rows_source, sites_info,
                                            sites_source, split_holdout)
    from ..core.features.sae_train import (SiteTarget, TrainConfig, TrainingInterrupted,
                                           evaluate, resolve_device, train_saes, write_report)

    # every option, alone and with the others, before any work
    cfg = TrainConfig(kind=args.kind, expansion=args.expansion, k=args.k, l1=args.l1,
                      epochs=args.epochs, lr=args.lr, batch=args.batch, seed=args.seed,
                      shuffle_rows=args.shuffle_rows,
                      checkpoint_seconds=args.checkpoint_seconds)
    cfg.check()
    if args.wer_files < 0:
        raise SteveError(f"--wer-files must be 0 or more, not {args.wer_files}")
    if args.jobs is not None and args.jobs < 1:
        raise SteveError(f"--jobs must be at least 1, not {args.jobs}")
    if not 0 <= args.holdout < 1:
        raise SteveError(f"--holdout must be at least 0 and below 1, not {args.holdout}")
    device = resolve_device(args.device)
    given = list(args.site or [])
    twice = sorted({s for s in given if given.count(s) > 1})
    if twice:
        raise SteveError(f"site {twice[0]} is given twice")
    corpus = resolve_corpus(args.corpus, given[0] if len(given) == 1 else None,
                            args.model or None, need_site=not given)
    if args.model is None and corpus.index is None:
        corpus.spec = DEFAULT_SPEC
    names = given or [corpus.site]
    sites = sites_info(corpus.spec, names)
    for site in sites:
        cfg.check(site.dim)
    out = Path(args.out)
    outs = {s.name: out if len(sites) == 1 else out / s.name for s in sites}
    if len(sites) > 1 and out.exists() and not out.is_dir():
        raise SteveError("is a file, not a folder for the SAEs", out)
    for o in outs.values():
        _check_out(o, args.force)
    train, held = split_holdout(corpus.files, args.holdout, args.seed)

    site_names = [s.name for s in sites]
    progress, close = tqdm_progress("steve-qt sae: activations")
    try:
        usable, failed = fill_cache(corpus.files, corpus.spec, site_names, args.cache,
                                    args.jobs, args.scheduler, args.timeout, progress=progress)
    finally:
        close()
    for f, why in failed.items():
        print(f"steve-qt: warning: {f}: skipped ({why})", file=sys.stderr)
    train = [f for f in train if f in set(usable)]
    held = [f for f in held if f in set(usable)]
    if not train:
        raise SteveError("no file gave activations to train on", args.corpus)
    targets = [SiteTarget(s.name, s.dim, outs[s.name], s.name, corpus.spec,
                          _count(train, corpus.spec, s.name, args.cache)) for s in sites]
    bar = None

    def step(done: int, total_rows, loss: float) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total_rows, unit="row", unit_scale=True, desc="steve-qt sae: train",
                       file=sys.stderr, dynamic_ncols=True, initial=0)
        bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)
        bar.update(done - bar.n)

    def say(text: str) -> None:
        print(f"steve-qt: {text}", file=sys.stderr)

    try:
        saes = train_saes(sites_source(train, corpus.spec, args.cache), targets, cfg,
                          progress=step, force=args.force, device=device,
                          data_id=data_id(train, corpus.root), say=say)
    except (TrainingInterrupted, KeyboardInterrupt) as exc:
        if bar is not None:
            bar.close()
        where = ", ".join(f"{o}/checkpoint.pt" for o in outs.values())
        print(f"steve-qt: interrupted; the same command continues from {where}",
              file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)
    finally:
        if bar is not None:
            bar.close()
    evaluated_on = held or train
    for site in sites:
        sae, o = saes[site.name], outs[site.name]
        report: dict = {"site": site.name, "model": corpus.spec, "corpus": str(corpus.root),
                        "train_files": len(train), "heldout_files": [str(f) for f in held]}
        report["heldout"] = evaluate(sae, rows_source(evaluated_on, corpus.spec, site.name,
                                                      args.cache)(0))
        report["heldout"]["on"] = "held-out files" if held else \
            "the training files (no file held out)"
        if args.wer_files > 0 and corpus.spec.startswith("whisper"):
            report["transcript"] = reconstruction_wer(sae, evaluated_on[:args.wer_files],
                                                      corpus.spec, site.axis, site.name)
        write_report(o, report)
        h = report["heldout"]
        print(f"wrote {o}: {sae.architecture} SAE, {sae.d_in} -> {sae.d_sae}"
              + (f", k={sae.k}" if sae.k else "") + f", site {site.name}")
        print(f"{h['on']}: {h['rows']} frames, variance explained "
              f"{h['fraction_variance_explained']:.3f}, L0 {h['l0']:.1f}, dead latents "
              f"{100 * h['dead_share']:.1f}%")
        if "transcript" in report:
            print(f"transcript with the reconstruction: mean WER "
                  f"{report['transcript']['mean_wer']:.3f} over "
                  f"{len(report['transcript']['files'])} files")
    return 0


def _count(files, spec: str, site: str, cache) -> int:
    from ..core.features.actcache import count_rows

    return count_rows([str(f) for f in files], spec, site, cache)[1]



EVAL_DOC = """``steve-qt sae eval SAE_DIR [CORPUS] --out DIR``: judge an SAE on held-out files.

CORPUS is a folder tree of audio files (their activations of the SAE's site are cached first,
as `sae train` does); without it, the files the training run held out (training.json). Written
to DIR: eval.json (every number, per file and in total, with the rows and files it rests on),
eval.md (the same, readable), frequency_hist.png (log10 activation frequency of the latents) and
wer_per_file.png. Measured: fraction of variance explained, L0, dead latents (never fire) and
dense ones (fire on more than 10 % of rows), on the cached float16 rows; for Whisper, on the
first --wer-files files: WER and CER of the transcript with the reconstruction spliced in
against the unedited transcript and against the alignment's words when a .wrd/.TextGrid lies
beside the file, and loss recovered as SAELens reports it, (CE_zero - CE_rec) / (CE_zero -
CE_orig) on the teacher-forced unedited transcript (CE_zero: the site's audio frames set to 0)."""


def _register_eval(ssub) -> None:
    e = ssub.add_parser("eval", help="variance explained, L0, dead/dense latents, WER and loss "
                        "recovered on held-out files", description=EVAL_DOC,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("sae", metavar="SAE_DIR", help="an SAE folder (SAELens format)")
    e.add_argument("corpus", metavar="CORPUS", nargs="?",
                   help="held-out audio folder (default: the training run's held-out files)")
    e.add_argument("--out", required=True, metavar="DIR", help="folder for the report")
    add_model_option(e, default=None, note="; default: the SAE's model_name")
    e.add_argument("--wer-files", type=int, default=20, metavar="N",
                   help="files transcribed with the reconstruction (Whisper; default 20; 0: none)")
    add_cluster_options(e)
    e.add_argument("--force", action="store_true", help="replace an existing --out folder")
    e.set_defaults(func=run_eval)


def _sae_site(args):
    """(the SAE of args.sae, the model spec (--model, else the SAE's), its Site), checked."""
    from ..core.errors import SteveError
    from ..core.features.sae import check_site, load_sae
    from ..core.features.sae_corpus import sites_info
    from ..core.models.adapters import DEFAULT_SPEC
    from ..core.models.pipeline import normalise_spec

    sae = load_sae(args.sae)
    if not sae.hook_name:
        raise SteveError("the SAE names no site (metadata hook_name)", args.sae)
    spec = normalise_spec(args.model or sae.model_name or DEFAULT_SPEC)
    site = sites_info(spec, [sae.hook_name])[0]
    check_site(sae, site.name, site.dim, args.sae)
    return sae, spec, site


def run_eval(args) -> int:
    import json

    from ..core.errors import SteveError
    from ..core.features.runner import tqdm_progress
    from ..core.features.sae_corpus import fill_cache, resolve_corpus, rows_source
    from ..core.features.sae_eval import (frequency_png, markdown, row_stats, transcript_eval,
                                          wer_png)
    from ..core.fileio import atomic_folder, check_folder_writable

    if args.wer_files < 0:
        raise SteveError(f"--wer-files must be 0 or more, not {args.wer_files}")
    check_folder_writable(args.out, args.force, "the evaluation")
    sae, spec, site = _sae_site(args)
    if args.corpus:
        files = resolve_corpus(args.corpus, site.name, spec).files
        where = str(args.corpus)
    else:
        tj = Path(args.sae) / "training.json"
        try:
            held = json.loads(tj.read_text())["heldout_files"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SteveError("give a held-out CORPUS (no training.json with held-out files "
                             "here)", args.sae) from None
        files = [Path(f) for f in held if Path(f).is_file()]
        where = f"the held-out files of {tj}"
    if not files:
        raise SteveError(f"no usable held-out file in {where}")
    progress, close = tqdm_progress("steve-qt sae eval: activations")
    try:
        usable, failed = fill_cache(files, spec, [site.name], args.cache, args.jobs,
                                    args.scheduler, args.timeout, progress=progress)
    finally:
        close()
    for f, why in failed.items():
        print(f"steve-qt: warning: {f}: skipped ({why})", file=sys.stderr)
    if not usable:
        raise SteveError(f"no usable held-out file in {where} (none gave activations)")
    stats = row_stats(sae, rows_source(usable, spec, site.name, args.cache)(0))
    freq = stats.pop("frequency")
    report = {"sae": str(args.sae), "site": site.name, "model": spec, "held_out": where,
              "files": len(usable), "rows": stats,
              "activation_frequency": freq.tolist()}
    if args.wer_files and spec.startswith("whisper"):
        report["transcript"] = transcript_eval(sae, usable[:args.wer_files], spec, site.axis,
                                               site.name)
    with atomic_folder(args.out, args.force, "the evaluation") as tmp:
        (tmp / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
        (tmp / "eval.md").write_text(markdown(report))
        frequency_png(freq, tmp / "frequency_hist.png")
        if report.get("transcript", {}).get("files"):
            wer_png(report["transcript"]["files"], tmp / "wer_per_file.png")
    print(f"{site.name}: {len(usable)} files, {stats['rows']} rows: variance explained "
          f"{stats['fraction_variance_explained']:.3f}, L0 {stats['l0']:.1f}, dead "
          f"{100 * stats['dead_share']:.1f}%, dense {100 * stats['dense_share']:.1f}%")
    t = report.get("transcript")
    if t and t.get("files"):
        print(f"with the reconstruction ({len(t['files'])} files): WER {t['wer']['mean']:.3f}, "
              f"CER {t['cer']['mean']:.3f}, loss recovered {t['loss_recovered']:.3f}")
    print(f"wrote {args.out}/eval.json, eval.md and plots")
    return 0


ERASE_DOC = """``steve-qt sae erase SAE_DIR CORPUS --concept KIND=VALUE --out DIR``: how many of the SAE's
features must be removed to erase a concept from its reconstruction?

The concept is a phone (phone=s; TIMIT labels fold 61 -> 39), a class (class=vowel), a manner,
voicing or place (manner=fricative, voicing=voiced), read from the alignments beside the audio
(frames take the phone under their centre). Features are ranked by |AUROC - 0.5| of their codes
as detectors of the concept (the concept must have at least 20 frames from 3 files); the top m
are zeroed, m = 0, 1, 2, 4, ... all, and a logistic-regression probe for the concept is trained
on the erased reconstruction of training files and scored on held-out files (--heldout share).
Headline: the share of features needed to bring the probe within two standard errors of its
majority baseline. For Whisper, the WER cost: the first --wer-files held-out files transcribed
with the reconstruction, and with the erased reconstruction, against the unedited transcript.
DIR gets erase.json, erase.md and erase.png."""


def register_erase(ssub) -> None:
    e = ssub.add_parser("erase", help="features to remove to erase a phone concept",
                        description=ERASE_DOC,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("sae", metavar="SAE_DIR")
    e.add_argument("corpus", metavar="CORPUS", help="folder tree of audio with alignments")
    e.add_argument("--concept", required=True, metavar="KIND=VALUE",
                   help="phone=X, class=vowel|consonant|silence, manner=..., voicing=..., "
                        "place=...")
    e.add_argument("--out", required=True, metavar="DIR")
    e.add_argument("--heldout", type=float, default=0.25, metavar="FRACTION",
                   help="share of the files the probe is scored on (default 0.25)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--wer-files", type=int, default=3, metavar="N",
                   help="held-out files transcribed for the WER cost (Whisper; default 3)")
    add_model_option(e, default=None, note="; default: the SAE's model_name")
    add_cluster_options(e)
    e.add_argument("--force", action="store_true", help="replace an existing --out folder")
    e.set_defaults(func=run_erase)


def run_erase(args) -> int:
    import json
    import math

    import numpy as np

    from ..core.errors import SteveError
    from ..core.features.actcache import file_entries
    from ..core.features.sae_corpus import fill_cache, resolve_corpus
    from ..core.features.sae_erase import erase, erasure_png, frame_labels, parse_concept
    from ..core.fileio import atomic_folder, check_folder_writable
    from ..core.speech.alignment import load_alignment
    from ..core.speech.audio import load_audio

    concept = parse_concept(args.concept)
    if not 0 < args.heldout < 1:
        raise SteveError(f"--heldout must be above 0 and below 1, not {args.heldout}")
    if args.wer_files < 0:
        raise SteveError(f"--wer-files must be 0 or more, not {args.wer_files}")
    check_folder_writable(args.out, args.force, "the erasure report")
    sae, spec, site = _sae_site(args)
    if site.axis != "frames":
        raise SteveError(f"erasure needs a frames site; {site.name} has one row per token")
    files = resolve_corpus(args.corpus, site.name, spec).files
    aligned = []
    for f in files:
        try:
            al = load_alignment(f)
        except SteveError:
            al = None
        if al is not None and al.phones is not None and len(al.phones.intervals):
            aligned.append((f, al.phones.intervals))
    if not aligned:
        raise SteveError("no file of this corpus has a phone alignment beside it", args.corpus)
    from ..core.features.runner import tqdm_progress

    progress, close = tqdm_progress("steve-qt sae erase: activations")
    try:
        usable, failed = fill_cache([f for f, _ in aligned], spec, [site.name], args.cache,
                                    args.jobs, args.scheduler, args.timeout, progress=progress)
    finally:
        close()
    rows, labels, fids, names = [], [], [], []
    cd = None if args.cache is None else str(args.cache)
    for f, phones in aligned:
        if f not in set(usable):
            continue
        entries = file_entries(f, spec, site.name, cd)
        times = np.concatenate([e.frame_times() for e in entries])
        rows.append(np.concatenate([e.acts for e in entries]).astype(np.float32))
        labels.append(frame_labels(times, phones, concept))
        fids.append(np.full(len(times), len(names)))
        names.append(str(f))
    res = erase(sae, np.concatenate(rows), np.concatenate(labels), np.concatenate(fids),
                str(concept), args.heldout, args.seed)
    res.update({"sae": str(args.sae), "site": site.name, "model": spec,
                "corpus_files": len(names)})
    if args.wer_files and spec.startswith("whisper"):
        from ..core.features.sae_erase import erased_edit
        from ..core.models.pipeline import get_adapter
        from ..core.speech.textdiff import wer

        adapter = get_adapter(spec)
        removed = np.asarray(res["order"][:res["features_needed"]], dtype=np.int64)
        test = [n for i, n in enumerate(names) if i in set(res["probe_test_file_ids"])]
        test = test[:args.wer_files]
        per = []
        for f in test:
            samples = load_audio(f).samples[:480000]
            keep = math.ceil(len(samples) / 320)
            plain = adapter.transcribe(samples).text
            rec = adapter.transcribe(samples, edits={site.name: erased_edit(sae, [], keep)}).text
            gone = adapter.transcribe(samples,
                                      edits={site.name: erased_edit(sae, removed, keep)}).text
            per.append({"file": f, "original": plain, "reconstruction": rec, "erased": gone,
                        "wer_reconstruction": wer(plain, rec), "wer_erased": wer(plain, gone)})
        res["wer_cost"] = {"files": per,
                           "mean_wer_reconstruction": float(np.mean(
                               [p["wer_reconstruction"] for p in per])),
                           "mean_wer_erased": float(np.mean([p["wer_erased"] for p in per]))}
    with atomic_folder(args.out, args.force, "the erasure report") as tmp:
        (tmp / "erase.json").write_text(json.dumps(res) + "\n")
        (tmp / "erase.md").write_text(_erase_md(res))
        erasure_png(res, tmp / "erase.png")
    p = res["probe"]
    print(f"{concept}: {res['frames']} frames in {res['files']} files; probe on "
          f"{p['test_frames']} held-out frames, majority baseline {p['majority_baseline']:.3f}")
    for s in res["steps"]:
        print(f"  {s['removed']:>6} features removed ({100 * s['share']:5.1f}%): probe accuracy "
              f"{s['probe_accuracy']:.3f}")
    print(f"{res['features_needed']} features ({100 * res['share_needed']:.1f}% of "
          f"{sae.d_sae}) bring the probe to its baseline")
    if "wer_cost" in res:
        w = res["wer_cost"]
        print(f"WER vs unedited ({len(w['files'])} files): reconstruction "
              f"{w['mean_wer_reconstruction']:.3f}, erased {w['mean_wer_erased']:.3f}")
    print(f"wrote {args.out}/erase.json, erase.md, erase.png")
    return 0


def _erase_md(res: dict) -> str:
    p = res["probe"]
    lines = [f"# Erasing {res['concept']} from {res['sae']}", "",
             f"{res['frames']} concept frames in {res['files']} files, {res['other_frames']} "
             f"other frames ({res['support_rule']}). Probe: logistic regression on "
             f"{p['train_frames']} training frames, scored on {p['test_frames']} frames of "
             f"{p['test_files']} held-out files; majority baseline "
             f"{p['majority_baseline']:.3f} (reached: within {p['margin']:.3f}).", "",
             "| features removed | share | probe accuracy |", "|---|---|---|"]
    lines += [f"| {s['removed']} | {100 * s['share']:.1f} % | {s['probe_accuracy']:.3f} |"
              for s in res["steps"]]
    lines += ["", f"**{res['features_needed']} features ({100 * res['share_needed']:.1f} %) "
              "bring the probe to its baseline.**", "", "Top features by |AUROC - 0.5|:", ""]
    lines += [f"- {r['feature']}: AUROC {r['auroc']:.3f}" for r in res["ranking"][:10]]
    if "wer_cost" in res:
        w = res["wer_cost"]
        lines += ["", f"WER against the unedited transcript ({len(w['files'])} files): "
                  f"reconstruction {w['mean_wer_reconstruction']:.3f}, erased "
                  f"{w['mean_wer_erased']:.3f}."]
    return "\n".join(lines) + "\n"
