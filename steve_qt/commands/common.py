"""Arguments and steps shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

from ..core.models.adapters import DEFAULT_SPEC


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", help="audio file (WAV, FLAC, OGG; any rate and channel count)")
    p.add_argument("--alignment", choices=("auto", "timit", "textgrid", "eaf", "none"),
                   default="auto",
                   help="where phone/word intervals come from (auto: .phn/.wrd, .TextGrid or "
                        "ELAN .eaf beside the audio)")
    p.add_argument("--alignment-file", metavar="PATH",
                   help="alignment file to use instead of the one beside the audio")
    p.add_argument("--phone-tier", metavar="NAME", help="TextGrid/ELAN tier holding phones")
    p.add_argument("--word-tier", metavar="NAME", help="TextGrid/ELAN tier holding words")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_SPEC, metavar="SPEC",
                   help="whisper (embedded tiny.en, default), whisper:NAME_OR_PATH "
                        "(an openai-whisper name such as base.en, or a .pt checkpoint), "
                        "wav2vec2:DIR_OR_ID")
    p.add_argument("--component", choices=("encoder", "cross", "decoder"), default="encoder",
                   help="encoder self-attention (default), decoder cross-attention or decoder "
                        "self-attention (Whisper only)")
    p.add_argument("--window", type=int, default=0, metavar="N",
                   help="30 s window of long audio to analyse (Whisper; 0 = first)")
    add_device_argument(p)


def add_device_argument(p: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda[:N]``; ``cli.main`` checks it and applies it to the process."""
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where the model runs: auto (CUDA when torch sees one, else the CPU; the "
                        "default, or $STEVE_QT_DEVICE), cpu, cuda or cuda:N")


def open_input(args):
    from ..core.models.pipeline import open_utterance

    return open_utterance(args.audio, alignment=args.alignment,
                          alignment_path=args.alignment_file, phone_tier=args.phone_tier,
                          word_tier=args.word_tier)


def run_model(args, utt, components, sites=()):
    """Load the model and extract, with a progress line on stderr when it is a terminal."""
    from ..core.models.pipeline import extract, get_adapter

    adapter = get_adapter(args.model)
    try:
        return adapter, extract(adapter, utt.audio, components=components, window=args.window,
                                progress=progress_line(adapter), sites=sites)
    finally:
        clear_progress_line()


def progress_line(adapter):
    """A progress callback writing one updating line on stderr when it is a terminal."""
    tty = sys.stderr.isatty()

    def progress(done: int, total: int, what: str) -> None:
        if tty:
            print(f"\r{adapter.model_id}: {what} ({done}/{total})\033[K", end="", file=sys.stderr)
    return progress


def clear_progress_line() -> None:
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
