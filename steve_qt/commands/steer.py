"""``steve-qt steer AUDIO --site S --feature F --scale X``: multiply one neuron of a site (a
module path such as encoder.blocks.2.mlp.1) by X over a span or every audio frame, substitute it
back and decode; rows ``original`` and ``steered`` with word error rate and word diff. Scale 1
reproduces the original exactly."""

from __future__ import annotations

import argparse

from .common import add_input_arguments
from .intervcommon import (add_model_argument, add_out_argument, check_out, clear_progress,
                           emit_table, load_adapter, progress_printer)


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("steer", help="scale one neuron and compare transcripts",
                       description=__doc__)
    add_input_arguments(p)
    p.add_argument("--site", required=True, metavar="S",
                   help="module path, e.g. encoder.blocks.2.mlp.1 (neurons), encoder.blocks.2 "
                        "(residual stream), decoder.blocks.0.mlp.1")
    p.add_argument("--feature", type=int, required=True, metavar="F", help="neuron index (0-based)")
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
    from ..core.interventions import VARIANT_HEADER, check_feature, span_frames, steer
    from .common import open_input

    check_out(args)
    utt = open_input(args)
    if args.span is not None:
        span_frames(*args.span, len(utt.audio.samples), args.window)
    adapter = load_adapter(args.model)
    sae = None
    check_feature(adapter, args.site, args.feature, sae)
    try:
        variants = steer(adapter, utt.audio.samples, args.site, args.feature, args.scale,
                         span=tuple(args.span) if args.span else None, sae=sae,
                         window=args.window, progress=progress_printer())
    finally:
        clear_progress()
    emit_table(args, VARIANT_HEADER, [v.row() for v in variants])
    return 0
