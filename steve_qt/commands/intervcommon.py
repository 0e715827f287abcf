"""Arguments and steps shared by the intervention commands (window, ablate, steer, lens, lm)."""

from __future__ import annotations

import argparse


def add_model_argument(p: argparse.ArgumentParser, window: bool = True) -> None:
    from .common import add_model_option, add_window_option

    add_model_option(p, note="; interventions need a Whisper model")
    if window:
        add_window_option(p)


def add_out_argument(p: argparse.ArgumentParser, what: str = "FILE.csv") -> None:
    p.add_argument("--out", metavar=what, help="write the table here (CSV); else print it")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def load_adapter(spec: str):
    from ..core.interventions.tables import require_interventions
    from ..core.models.pipeline import get_adapter

    adapter = get_adapter(spec)
    require_interventions(adapter)
    return adapter


def emit_table(args, header, rows) -> None:
    """Write the CSV to --out, or print it."""
    from ..core.fileio import csv_text, write_csv

    if getattr(args, "out", None):
        write_csv(args.out, header, rows, force=args.force)
        print(f"wrote {args.out}")
    else:
        print(csv_text(header, rows), end="")


def check_out(args) -> None:
    from ..core.fileio import check_writable

    if getattr(args, "out", None):
        check_writable(args.out, args.force)  # fail before the model runs


def open_for_edit(args, span=None):
    """Check --out, open the input and check a time span against it: all before the model
    loads. Returns the Utterance."""
    from ..core.interventions.tables import span_frames
    from .common import open_input

    check_out(args)
    utt = open_input(args)
    if span is not None:
        span_frames(*span, len(utt.audio.samples), args.window)
    return utt


def run_variants(args, transcribe) -> int:
    """``transcribe(progress)`` -> the transcript variants (original first), progress on stderr;
    then their table (variant, transcript, WER, word diff) to --out or stdout."""
    from ..core.interventions.tables import VARIANT_HEADER
    from .common import progress_bar

    progress, close = progress_bar(f"steve-qt {args.command}", unit="transcript")
    try:
        variants = transcribe(progress)
    finally:
        close()
    emit_table(args, VARIANT_HEADER, [v.row() for v in variants])
    return 0
