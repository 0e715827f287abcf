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
    r.add_argument("--precision", default=d.precision, metavar="P",
                   help="auto (default: bfloat16 mixed precision on a CUDA device that has it, "
                        "float32 on the CPU), float32, bfloat16 or float16 (CUDA only)")
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
    from ..core.features.sae_jobs import compare_sae_dirs

    res = compare_sae_dirs(args.sae_a, args.sae_b, args.out, seed=args.seed, force=args.force)
    fl = res["random_floor"]
    print(f"{res['n_features']} latents matched one to one by decoder cosine: "
          f"{100 * res['share_above_0.7']:.1f}% above 0.7, "
          f"{100 * res['share_above_0.9']:.1f}% above 0.9 (mean {res['mean_cosine']:.3f}); "
          f"random floor {100 * fl['share_above_0.7']:.1f}% / {100 * fl['share_above_0.9']:.1f}%")
    if args.out:
        print(f"wrote {args.out}/compare.json and compare_hist.png")
    return 0





def _warn(text: str) -> None:
    print(f"steve-qt: warning: {text}", file=sys.stderr)


def _say(text: str) -> None:
    print(f"steve-qt: {text}", file=sys.stderr)


def run_train(args) -> int:
    from ..core.features.runner import tqdm_progress
    from ..core.features.sae_jobs import train_on_corpus
    from ..core.features.sae_train import TrainingInterrupted

    bar = None

    def step(done: int, total_rows, loss: float) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total_rows, unit="row", unit_scale=True, desc="steve-qt sae: train",
                       file=sys.stderr, dynamic_ncols=True, initial=0)
        bar.set_postfix_str(f"loss {loss:.4g}", refresh=False)
        bar.update(done - bar.n)

    progress, close = tqdm_progress("steve-qt sae: activations")

    def filled(done: int, total: int, what: str = "") -> None:
        progress(done, total, what)
        if done >= total:
            close()

    try:
        reports = train_on_corpus(
            args.corpus, args.out, sites=args.site, model=args.model, kind=args.kind,
            expansion=args.expansion, k=args.k, l1=args.l1, epochs=args.epochs, lr=args.lr,
            batch=args.batch, seed=args.seed, shuffle_rows=args.shuffle_rows,
            checkpoint_seconds=args.checkpoint_seconds, holdout=args.holdout,
            wer_files=args.wer_files, device=args.device, precision=args.precision,
            jobs=args.jobs,
            scheduler=args.scheduler, timeout=args.timeout, cache=args.cache, force=args.force,
            progress=filled, step=step, warn=_warn, say=_say)
    except (TrainingInterrupted, KeyboardInterrupt) as exc:
        if bar is not None:
            bar.close()
        where = ", ".join(f"{d}/checkpoint.pt" for d in getattr(exc, "folders", ()) or
                          [args.out])
        print(f"steve-qt: interrupted; the same command continues from {where}",
              file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)
    finally:
        close()
        if bar is not None:
            bar.close()
    for name, report in reports.items():
        sae, h = report["sae"], report["heldout"]
        print(f"wrote {report['out']}: {sae.architecture} SAE, {sae.d_in} -> {sae.d_sae}"
              + (f", k={sae.k}" if sae.k else "") + f", site {name}")
        print(f"{h['on']}: {h['rows']} frames, variance explained "
              f"{h['fraction_variance_explained']:.3f}, L0 {h['l0']:.1f}, dead latents "
              f"{100 * h['dead_share']:.1f}%")
        if "transcript" in report:
            print(f"transcript with the reconstruction: mean WER "
                  f"{report['transcript']['mean_wer']:.3f} over "
                  f"{len(report['transcript']['files'])} files")
    return 0





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


def run_eval(args) -> int:
    from ..core.features.runner import tqdm_progress
    from ..core.features.sae_jobs import evaluate_sae

    progress, close = tqdm_progress("steve-qt sae eval: activations")
    try:
        report = evaluate_sae(args.sae, args.out, args.corpus, model=args.model,
                              wer_files=args.wer_files, jobs=args.jobs, scheduler=args.scheduler,
                              timeout=args.timeout, cache=args.cache, force=args.force,
                              progress=progress, warn=_warn)
    finally:
        close()
    stats = report["rows"]
    print(f"{report['site']}: {report['files']} files, {stats['rows']} rows: variance explained "
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
    from ..core.features.runner import tqdm_progress
    from ..core.features.sae_jobs import erase_concept

    progress, close = tqdm_progress("steve-qt sae erase: activations")
    try:
        res = erase_concept(args.sae, args.corpus, args.concept, args.out, heldout=args.heldout,
                            seed=args.seed, wer_files=args.wer_files, model=args.model,
                            jobs=args.jobs, scheduler=args.scheduler, timeout=args.timeout,
                            cache=args.cache, force=args.force, progress=progress)
    finally:
        close()
    p = res["probe"]
    print(f"{res['concept']}: {res['frames']} frames in {res['files']} files; probe on "
          f"{p['test_frames']} held-out frames, majority baseline {p['majority_baseline']:.3f}")
    for s in res["steps"]:
        print(f"  {s['removed']:>6} features removed ({100 * s['share']:5.1f}%): probe accuracy "
              f"{s['probe_accuracy']:.3f}")
    print(f"{res['features_needed']} features ({100 * res['share_needed']:.1f}% of "
          f"{res['d_sae']}) bring the probe to its baseline")
    if "wer_cost" in res:
        w = res["wer_cost"]
        print(f"WER vs unedited ({len(w['files'])} files): reconstruction "
              f"{w['mean_wer_reconstruction']:.3f}, erased {w['mean_wer_erased']:.3f}")
    print(f"wrote {args.out}/erase.json, erase.md, erase.png")
    return 0


