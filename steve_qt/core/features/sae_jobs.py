"""SAE jobs over a corpus, as ``steve-qt sae train/eval/compare/erase`` run them and the Python
API offers them: each takes plain arguments, checks every one before any work, writes its
folder atomically and returns its report (a dict) for the caller to print or use.

``warn(text)`` receives one line per skipped file; ``progress`` is the corpus runner's progress
callback (files done); ``say(text)`` receives what training says (resuming, interrupted).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import SteveError

Say = Callable[[str], None]


def _quiet(text: str) -> None:
    pass


def check_sae_out(out: Path, force: bool) -> None:
    """An SAE folder may be written at ``out`` (nothing replaced without ``force``)."""
    from .sae import CFG_FILENAME

    if out.exists() and not out.is_dir():
        raise SteveError("is a file, not a folder for an SAE", out)
    if (out / CFG_FILENAME).exists() and not force:
        raise SteveError("holds an SAE already; not overwritten (use --force to replace it)", out)
    parent = out.parent if str(out.parent) else Path(".")
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # OUT/<site>: OUT itself may be made
    if not parent.is_dir():
        raise SteveError(f"folder {parent} does not exist", out)


def sae_and_site(sae_dir, model: str | None = None):
    """(the SAE at ``sae_dir``, the model spec (``model``, else the SAE's), its Site), checked."""
    from ..models.adapters import DEFAULT_SPEC
    from ..models.pipeline import normalise_spec
    from .sae import check_site, load_sae
    from .sae_corpus import sites_info

    sae = load_sae(sae_dir)
    if not sae.hook_name:
        raise SteveError("the SAE names no site (metadata hook_name)", sae_dir)
    spec = normalise_spec(model or sae.model_name or DEFAULT_SPEC)
    site = sites_info(spec, [sae.hook_name])[0]
    check_site(sae, site.name, site.dim, sae_dir)
    return sae, spec, site


def count_site_rows(files, spec: str, site: str, cache) -> int:
    from .actcache import count_rows

    return count_rows([str(f) for f in files], spec, site, cache)[1]


def train_on_corpus(corpus, out, sites: Sequence[str] | None = None, model: str | None = None,
                    kind: str | None = None, expansion: int | None = None, k: int | None = None,
                    l1: float | None = None, epochs: int | None = None, lr: float | None = None,
                    batch: int | None = None, seed: int | None = None,
                    shuffle_rows: int | None = None, checkpoint_seconds: float | None = None,
                    holdout: float = 0.1, wer_files: int = 5, device: str | None = None,
                    precision: str | None = None,
                    jobs: int | None = None, scheduler: str | None = None,
                    timeout: float = 10.0, cache=None, force: bool = False, progress=None,
                    step=None, warn: Say = _quiet, say: Say = _quiet) -> dict:
    """Train one SAE per site in one pass over the corpus per epoch (``steve-qt sae train``).

    ``corpus``: a folder tree of audio, or a feature index (its corpus, model and site). One site
    is written to ``out`` itself, several to ``out/<site>/``. ``step(rows_done, total_rows,
    loss)`` follows training. Returns ``{site: report}`` (the training.json report, with the
    SAE under ``"sae"`` and its folder under ``"out"``). Raises ``TrainingInterrupted`` when
    stopped by a signal (the checkpoint is written; the same call resumes).
    """
    from ..models.adapters import DEFAULT_SPEC
    from .sae_corpus import (data_id, fill_cache, reconstruction_wer, resolve_corpus,
                             rows_source, sites_info, sites_source, split_holdout)
    from .sae_train import (SiteTarget, TrainConfig, TrainingInterrupted, evaluate,
                            resolve_device, resolve_precision, train_saes, write_report)

    d = TrainConfig()
    given_cfg = dict(kind=kind, expansion=expansion, k=k, l1=l1, epochs=epochs, lr=lr,
                     batch=batch, seed=seed, shuffle_rows=shuffle_rows,
                     checkpoint_seconds=checkpoint_seconds, precision=precision)
    cfg = TrainConfig(**{n: (getattr(d, n) if v is None else v) for n, v in given_cfg.items()})
    cfg.check()
    if wer_files < 0:
        raise SteveError(f"--wer-files must be 0 or more, not {wer_files}")
    if jobs is not None and jobs < 1:
        raise SteveError(f"--jobs must be at least 1, not {jobs}")
    if not 0 <= holdout < 1:
        raise SteveError(f"--holdout must be at least 0 and below 1, not {holdout}")
    device = resolve_device(device)
    resolve_precision(cfg.precision, device)
    given = [sites] if isinstance(sites, str) else list(sites or [])
    twice = sorted({s for s in given if given.count(s) > 1})
    if twice:
        raise SteveError(f"site {twice[0]} is given twice")
    corp = resolve_corpus(corpus, given[0] if len(given) == 1 else None, model or None,
                          need_site=not given)
    if model is None and corp.index is None:
        corp.spec = DEFAULT_SPEC
    infos = sites_info(corp.spec, given or [corp.site])
    for site in infos:
        cfg.check(site.dim)
    out = Path(out)
    outs = {s.name: out if len(infos) == 1 else out / s.name for s in infos}
    if len(infos) > 1 and out.exists() and not out.is_dir():
        raise SteveError("is a file, not a folder for the SAEs", out)
    for o in outs.values():
        check_sae_out(o, force)
    train, held = split_holdout(corp.files, holdout, cfg.seed)

    usable, failed = fill_cache(corp.files, corp.spec, [s.name for s in infos], cache, jobs,
                                scheduler, timeout, progress=progress)
    for f, why in failed.items():
        warn(f"{f}: skipped ({why})")
    train = [f for f in train if f in set(usable)]
    held = [f for f in held if f in set(usable)]
    if not train:
        raise SteveError("no file gave activations to train on", corpus)
    targets = [SiteTarget(s.name, s.dim, outs[s.name], s.name, corp.spec,
                          count_site_rows(train, corp.spec, s.name, cache)) for s in infos]
    try:
        saes = train_saes(sites_source(train, corp.spec, cache), targets, cfg, progress=step,
                          force=force, device=device, data_id=data_id(train, corp.root), say=say)
    except (TrainingInterrupted, KeyboardInterrupt) as exc:
        exc.folders = list(outs.values())  # where the checkpoints are
        raise
    evaluated_on = held or train
    reports = {}
    for site in infos:
        sae, o = saes[site.name], outs[site.name]
        report: dict = {"site": site.name, "model": corp.spec, "corpus": str(corp.root),
                        "train_files": len(train), "heldout_files": [str(f) for f in held]}
        report["heldout"] = evaluate(sae, rows_source(evaluated_on, corp.spec, site.name,
                                                      cache)(0))
        report["heldout"]["on"] = "held-out files" if held else \
            "the training files (no file held out)"
        if wer_files > 0 and corp.spec.startswith("whisper"):
            report["transcript"] = reconstruction_wer(sae, evaluated_on[:wer_files], corp.spec,
                                                      site.axis, site.name)
        write_report(o, report)
        reports[site.name] = {**report, "sae": sae, "out": o}
    return reports


def evaluate_sae(sae_dir, out, corpus=None, model: str | None = None, wer_files: int = 20,
                 jobs: int | None = None, scheduler: str | None = None, timeout: float = 10.0,
                 cache=None, force: bool = False, progress=None, warn: Say = _quiet) -> dict:
    """``steve-qt sae eval``: the SAE on held-out files (``corpus``, else the files its training
    run held out); writes eval.json, eval.md and the plots to ``out``; returns the report."""
    from ..fileio import atomic_folder, check_folder_writable
    from .sae_corpus import fill_cache, resolve_corpus, rows_source
    from .sae_eval import frequency_png, markdown, row_stats, transcript_eval, wer_png

    if wer_files < 0:
        raise SteveError(f"--wer-files must be 0 or more, not {wer_files}")
    check_folder_writable(out, force, "the evaluation")
    sae, spec, site = sae_and_site(sae_dir, model)
    if corpus:
        files = resolve_corpus(corpus, site.name, spec).files
        where = str(corpus)
    else:
        tj = Path(sae_dir) / "training.json"
        try:
            held = json.loads(tj.read_text())["heldout_files"]
        except (OSError, ValueError, KeyError, TypeError):
            raise SteveError("give a held-out CORPUS (no training.json with held-out files "
                             "here)", sae_dir) from None
        files = [Path(f) for f in held if Path(f).is_file()]
        where = f"the held-out files of {tj}"
    if not files:
        raise SteveError(f"no usable held-out file in {where}")
    usable, failed = fill_cache(files, spec, [site.name], cache, jobs, scheduler, timeout,
                                progress=progress)
    for f, why in failed.items():
        warn(f"{f}: skipped ({why})")
    if not usable:
        raise SteveError(f"no usable held-out file in {where} (none gave activations)")
    stats = row_stats(sae, rows_source(usable, spec, site.name, cache)(0))
    freq = stats.pop("frequency")
    report = {"sae": str(sae_dir), "site": site.name, "model": spec, "held_out": where,
              "files": len(usable), "rows": stats, "activation_frequency": freq.tolist()}
    if wer_files and spec.startswith("whisper"):
        report["transcript"] = transcript_eval(sae, usable[:wer_files], spec, site.axis,
                                               site.name)
    with atomic_folder(out, force, "the evaluation") as tmp:
        (tmp / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
        (tmp / "eval.md").write_text(markdown(report))
        frequency_png(freq, tmp / "frequency_hist.png")
        if report.get("transcript", {}).get("files"):
            wer_png(report["transcript"]["files"], tmp / "wer_per_file.png")
    return report


def compare_sae_dirs(sae_a, sae_b, out=None, seed: int = 0, force: bool = False) -> dict:
    """``steve-qt sae compare``: latents of two SAEs matched one to one by decoder cosine
    (Hungarian assignment), with a random SAE of the same shape as the floor; ``out`` gets
    compare.json and compare_hist.png. Returns compare.json's content."""
    from ..fileio import atomic_folder, check_folder_writable
    from .sae import load_sae
    from .sae_compare import compare_saes, histogram_png

    if out:
        check_folder_writable(out, force, "the comparison")
    res = compare_saes(load_sae(sae_a), load_sae(sae_b), seed=seed)
    res = {**res, "sae_a": str(sae_a), "sae_b": str(sae_b)}
    if out:
        with atomic_folder(out, force, "the comparison") as tmp:
            (tmp / "compare.json").write_text(json.dumps(res) + "\n")
            histogram_png(res, tmp / "compare_hist.png")
    return res


def erase_concept(sae_dir, corpus, concept: str, out, heldout: float = 0.25, seed: int = 0,
                  wer_files: int = 3, model: str | None = None, jobs: int | None = None,
                  scheduler: str | None = None, timeout: float = 10.0, cache=None,
                  force: bool = False, progress=None) -> dict:
    """``steve-qt sae erase``: features ranked as detectors of ``concept`` (``phone=s``,
    ``class=vowel``, ...), zeroed in growing numbers; a probe's accuracy after each step and the
    share of features that brings it to its majority baseline; for Whisper the WER cost.
    ``out`` gets erase.json, erase.md and erase.png; returns erase.json's content."""
    from ..fileio import atomic_folder, check_folder_writable
    from ..speech.alignment import load_alignment
    from ..speech.audio import load_audio
    from .actcache import file_entries
    from .sae_corpus import fill_cache, resolve_corpus
    from .sae_erase import erase, erased_edit, erasure_png, frame_labels, markdown, parse_concept

    parsed = parse_concept(concept)
    if not 0 < heldout < 1:
        raise SteveError(f"--heldout must be above 0 and below 1, not {heldout}")
    if wer_files < 0:
        raise SteveError(f"--wer-files must be 0 or more, not {wer_files}")
    check_folder_writable(out, force, "the erasure report")
    sae, spec, site = sae_and_site(sae_dir, model)
    if site.axis != "frames":
        raise SteveError(f"erasure needs a frames site; {site.name} has one row per token")
    files = resolve_corpus(corpus, site.name, spec).files
    aligned = []
    for f in files:
        try:
            al = load_alignment(f)
        except SteveError:
            al = None
        if al is not None and al.phones is not None and len(al.phones.intervals):
            aligned.append((f, al.phones.intervals))
    if not aligned:
        raise SteveError("no file of this corpus has a phone alignment beside it", corpus)
    usable, _ = fill_cache([f for f, _ in aligned], spec, [site.name], cache, jobs, scheduler,
                           timeout, progress=progress)
    rows, labels, fids, names = [], [], [], []
    cd = None if cache is None else str(cache)
    for f, phones in aligned:
        if f not in set(usable):
            continue
        entries = file_entries(f, spec, site.name, cd)
        times = np.concatenate([e.frame_times() for e in entries])
        rows.append(np.concatenate([e.acts for e in entries]).astype(np.float32))
        labels.append(frame_labels(times, phones, parsed))
        fids.append(np.full(len(times), len(names)))
        names.append(str(f))
    if not rows:
        raise SteveError("no file of this corpus gave activations", corpus)
    res = erase(sae, np.concatenate(rows), np.concatenate(labels), np.concatenate(fids),
                str(parsed), heldout, seed)
    res.update({"sae": str(sae_dir), "site": site.name, "model": spec,
                "corpus_files": len(names), "d_sae": int(sae.d_sae)})
    if wer_files and spec.startswith("whisper"):
        from ..models.pipeline import get_adapter
        from ..speech.textdiff import wer

        adapter = get_adapter(spec)
        removed = np.asarray(res["order"][:res["features_needed"]], dtype=np.int64)
        test = [n for i, n in enumerate(names) if i in set(res["probe_test_file_ids"])]
        per = []
        for f in test[:wer_files]:
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
    with atomic_folder(out, force, "the erasure report") as tmp:
        (tmp / "erase.json").write_text(json.dumps(res) + "\n")
        (tmp / "erase.md").write_text(markdown(res))
        erasure_png(res, tmp / "erase.png")
    return res
