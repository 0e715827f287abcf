"""Arguments and steps shared by the sub-commands."""

from __future__ import annotations

import argparse

from ..core.models.adapters import DEFAULT_SPEC


MODEL_HELP = ("whisper (embedded tiny.en, default), whisper:NAME_OR_PATH (an openai-whisper "
              "name such as base.en, or a .pt checkpoint), wav2vec2:DIR_OR_ID")


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """AUDIO and the alignment options."""
    p.add_argument("audio", help="audio file (WAV, FLAC, OGG; any rate and channel count)")
    add_alignment_options(p)


def add_alignment_options(p, alignment_help: str = "") -> None:
    """``--alignment``, ``--alignment-file``, ``--phone-tier``, ``--word-tier`` (``p`` may be an
    argument group)."""
    p.add_argument("--alignment", choices=("auto", "timit", "textgrid", "eaf", "none"),
                   default="auto",
                   help=alignment_help or "where phone/word intervals come from (auto: .phn/.wrd, "
                                          ".TextGrid or ELAN .eaf beside the audio)")
    p.add_argument("--alignment-file", metavar="PATH",
                   help="alignment file to use instead of the one beside the audio")
    add_tier_options(p)


def add_tier_options(p, words: bool = True) -> None:
    """``--phone-tier`` (and ``--word-tier``): TextGrid/ELAN tier names."""
    p.add_argument("--phone-tier", metavar="NAME", help="TextGrid/ELAN tier holding phones")
    if words:
        p.add_argument("--word-tier", metavar="NAME", help="TextGrid/ELAN tier holding words")


def add_model_option(p, default: str | None = DEFAULT_SPEC, note: str = "",
                     device: bool = True) -> None:
    """``--model SPEC`` (``note`` is appended to the help) and ``--device``."""
    p.add_argument("--model", default=default, metavar="SPEC", help=MODEL_HELP + note)
    if device:
        add_device_argument(p)


def add_window_option(p) -> None:
    p.add_argument("--window", type=int, default=0, metavar="N",
                   help="30 s window of long audio to analyse (Whisper; 0 = first)")


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """``--model``, ``--device``, ``--component``, ``--window``."""
    add_model_option(p)
    p.add_argument("--component", choices=("encoder", "cross", "decoder"), default="encoder",
                   help="encoder self-attention (default), decoder cross-attention or decoder "
                        "self-attention (Whisper only)")
    add_window_option(p)


def add_device_argument(p) -> None:
    """``--device auto|cpu|cuda[:N]``; ``cli.main`` checks it and applies it to the process."""
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where the model runs: auto (CUDA when torch sees one, else the CPU; the "
                        "default, or $STEVE_QT_DEVICE), cpu, cuda or cuda:N")


def add_cluster_options(p, cache: bool = True) -> None:
    """``--jobs``, ``--scheduler``, ``--timeout`` and ``--cache`` of the corpus commands (they run
    on the corpus runner, ``steve_qt.core.features.runner``)."""
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes of the embedded Dask cluster, each loads the model "
                        "once (default: the number of cores; 1 runs in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster, e.g. tcp://127.0.0.1:8786")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for --scheduler to answer (default 10)")
    if cache:
        add_cache_option(p)


def add_cache_option(p, note: str = "") -> None:
    p.add_argument("--cache", metavar="DIR",
                   help=f"cache folder{note} (default $STEVE_QT_CACHE or ~/.cache/steve_qt)")


def open_input(args):
    from ..core.models.pipeline import open_utterance

    return open_utterance(args.audio, alignment=args.alignment,
                          alignment_path=args.alignment_file, phone_tier=args.phone_tier,
                          word_tier=args.word_tier)


def run_model(args, utt, components, sites=(), measures=()):
    """Load the model and extract (then the encoder context-mixing ``measures``), with a
    progress bar on stderr when it is a terminal."""
    from ..core.models.pipeline import add_measures, extract, get_adapter

    adapter = get_adapter(args.model)
    progress, close = progress_bar(adapter.model_id)
    try:
        ex = extract(adapter, utt.audio, components=components, window=args.window,
                     progress=progress, sites=sites)
    finally:
        close()
    if measures and "encoder" in ex.maps:
        progress, close = progress_bar(f"{adapter.model_id}: measures")
        try:
            add_measures(adapter, utt.audio, ex, measures, progress=progress)
        finally:
            close()
    return adapter, ex


def progress_bar(desc: str, unit: str = "step", tty_only: bool = True):
    """(progress(done, total, what), close()): the one progress style of every command, a tqdm
    bar on stderr (by default only when stderr is a terminal; corpus commands always draw)."""
    from ..core.features.runner import tqdm_progress

    return tqdm_progress(desc, unit=unit, tty_only=tty_only)
