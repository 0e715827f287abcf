"""``steve-qt ablate AUDIO --span T0 T1``: replace the encoder output frames of a time span by
the frames the encoder gives for padding (or for silence) and decode; rows ``original`` and the
edited transcript with its word error rate and word diff (removed words appear as ``[-word]``)."""

from __future__ import annotations

import argparse

from .common import add_input_arguments
from .intervcommon import (add_model_argument, add_out_argument, load_adapter, open_for_edit,
                           run_variants)


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("ablate", help="transcribe without a time span (encoder frames replaced)",
                       description=__doc__)
    add_input_arguments(p)
    p.add_argument("--span", nargs=2, type=float, required=True, metavar=("T0", "T1"),
                   help="time span in seconds")
    p.add_argument("--fill", choices=("padding", "silence"), default="padding",
                   help="frames put in: the encoder's output for padding (default; what it sees "
                        "after the audio ends) or for 30 s of digital silence")
    add_model_argument(p)
    add_out_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.interventions.tables import span_removal

    utt = open_for_edit(args, args.span)  # a bad span fails before the model loads
    adapter = load_adapter(args.model)
    return run_variants(args, lambda progress: span_removal(
        adapter, utt.audio.samples, *args.span, fill=args.fill, window=args.window,
        progress=progress))
