"""``steve-qt steer AUDIO --site S --feature F --scale X [--sae DIR]``: multiply one neuron of a
site (a module path such as encoder.blocks.2.mlp.1), or one feature of a sparse autoencoder
trained on a site, by X over a span or every audio frame, substitute the activation back and
decode; rows ``original``, (``reconstruction``: the SAE's reconstruction substituted, with
--sae), ``steered``, each with word error rate and word diff against the original. An SAE
feature is steered by adding the change of its contribution, x + (X - 1) f_F(x) W_dec[F], keeping
the SAE's reconstruction error, so scale 1 reproduces the original exactly.

``steve-qt steer CORPUS --sae DIR --feature F --scale X [--out table.csv]``: the same on every
audio file of a folder tree (all audio frames of the first 30 s window): per file and in total
(the last row) the WER of the steered transcript against the unedited one, against the words of
the alignment beside the file when there is one (wer_change: steered minus unedited), and the
words that changed."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_input_arguments
from .intervcommon import (add_model_argument, add_out_argument, load_adapter, open_for_edit,
                           run_variants)


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("steer", help="scale one neuron or SAE feature and compare transcripts",
                       description=__doc__)
    add_input_arguments(p)
    p.add_argument("--site", metavar="S",
                   help="module path, e.g. encoder.blocks.2.mlp.1 (neurons), encoder.blocks.2 "
                        "(residual stream), decoder.blocks.0.mlp.1 (default with --sae: the "
                        "SAE's site)")
    p.add_argument("--feature", type=int, required=True, metavar="F",
                   help="neuron index, or SAE feature with --sae (0-based)")
    p.add_argument("--sae", metavar="DIR", help="steer a feature of this SAE (SAELens format)")
    p.add_argument("--scale", type=float, required=True, metavar="X",
                   help="factor (0 switches the neuron off, 1 changes nothing)")
    p.add_argument("--span", nargs=2, type=float, metavar=("T0", "T1"),
                   help="only frames of this span (seconds; encoder sites); default all audio "
                        "frames")
    add_model_argument(p)
    add_out_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from pathlib import Path

    from ..core.interventions.tables import steer

    if Path(args.audio).is_dir():
        return run_corpus(args)
    utt = open_for_edit(args, args.span)
    sae, adapter = _sae_and_adapter(args)
    return run_variants(args, lambda progress: steer(
        adapter, utt.audio.samples, args.site, args.feature, args.scale,
        span=tuple(args.span) if args.span else None, sae=sae, window=args.window,
        progress=progress))


def _sae_and_adapter(args):
    """(the SAE of --sae or None, the adapter), --site defaulting to the SAE's, every one of
    them checked against the others."""
    from ..core.errors import SteveError
    from ..core.interventions.tables import check_feature

    sae = None
    if args.sae:
        from ..core.features.sae import check_site, load_sae

        sae = load_sae(args.sae)
        args.site = args.site or sae.hook_name
    if not args.site:
        raise SteveError("give --site S (a module path such as encoder.blocks.2.mlp.1)")
    adapter = load_adapter(args.model)
    if sae is not None:
        check_site(sae, args.site, adapter.site_dim(args.site), args.sae)
    check_feature(adapter, args.site, args.feature, sae)
    return sae, adapter


def run_corpus(args) -> int:
    """steer over every audio file of a folder tree (see the module doc)."""
    from ..core.errors import SteveError
    from ..core.features.corpus import find_audio_files
    from ..core.interventions.tables import STEER_CORPUS_HEADER, steer_corpus, steer_corpus_rows
    from .common import progress_bar
    from .intervcommon import check_out, emit_table

    if args.span:
        raise SteveError("--span applies to one file; over a corpus every audio frame is steered")
    check_out(args)
    root = Path(args.audio)
    files = sorted(find_audio_files(root), key=lambda f: Path(f).relative_to(root).as_posix())
    if not files:
        raise SteveError("no audio files (WAV, FLAC, OGG, ...) in this folder tree", root)
    sae, adapter = _sae_and_adapter(args)
    progress, close = progress_bar("steve-qt steer: files", unit="file", tty_only=False)
    try:
        rows, total = steer_corpus(adapter, files, args.site, args.feature, args.scale, sae=sae,
                                   progress=progress)
    finally:
        close()
    emit_table(args, STEER_CORPUS_HEADER, steer_corpus_rows(rows, total))
    import sys

    print(f"{total['files']} files: WER steered vs unedited {total['wer_steered']:.4f}, change "
          f"against the alignment words {total['wer_change']:+.4f} "
          f"({total['files_with_words']} files with words); {total['words_changed']} words "
          f"changed in {total['files_changed']} files", file=sys.stderr)
    return 0
