"""``steve-qt extract AUDIO --out FILE.npz``: every layer's and head's attention, with alignment."""

from __future__ import annotations

import argparse

from .common import add_input_arguments, add_model_arguments, open_input, run_model


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("extract", help="write attention (all layers and heads) to an .npz file",
                       description=__doc__)
    add_input_arguments(p)
    add_model_arguments(p)
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output .npz file")
    p.add_argument("--csv", metavar="FILE.csv",
                   help="also write attention aggregated over phone intervals as CSV")
    p.add_argument("--textgrid", metavar="FILE.TextGrid",
                   help="also write the alignment tiers plus the model's word timings")
    p.add_argument("--eaf", metavar="FILE.eaf",
                   help="also write the alignment tiers plus the model's word timings as ELAN")
    p.add_argument("--measures", metavar="LIST", default="",
                   help="also compute context-mixing measures of the encoder, comma-separated: "
                        "norm (attention norm, per head), value-zeroing (per layer), grad "
                        "(gradient-weighted relevance of the transcript, cumulative per layer)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.errors import SteveError
    from ..core.fileio import check_writable
    from ..core.models.npzio import save_npz

    from ..core.attention.measures import parse_measures
    from ..api import Extraction
    from ..core.models.pipeline import check_measures, get_adapter

    measures = parse_measures(args.measures)
    if measures and args.component != "encoder":
        check_measures(None, measures, args.component)
    for out in (args.out, args.csv, args.textgrid, args.eaf):
        if out:
            check_writable(out, args.force)  # fail before the model runs, not after
    utt = open_input(args)
    if measures:
        check_measures(get_adapter(args.model), measures, args.component)
    adapter, ex = run_model(args, utt, [args.component], measures=measures)
    if args.component not in ex.maps:
        raise SteveError(f"{adapter.model_id} has no {args.component!r} attention")
    save_npz(args.out, ex, args.component, alignment=utt.alignment, audio_path=args.audio,
             force=args.force)
    maps = ex.maps[args.component]
    written = [args.out]
    out = Extraction(ex, utt, audio_path=args.audio)
    if args.csv:
        out.save_csv(args.csv, args.component, force=args.force)
        written.append(args.csv)
    if args.textgrid:
        out.save_textgrid(args.textgrid, force=args.force)
        written.append(args.textgrid)
    if args.eaf:
        out.save_eaf(args.eaf, force=args.force)
        written.append(args.eaf)
    from ..core.frames import window_name

    n, _, m, q, k = maps.weights.shape
    win = f", {window_name(maps.window, maps.num_windows)}" if maps.num_windows > 1 else ""
    extra = f" + {', '.join(measures)}" if measures else ""
    print(f"{maps.model} {maps.component}: {n} layers x {m} heads, {q} x {k}{win}{extra}; "
          f"wrote {', '.join(map(str, written))}")
    if ex.transcript.text:
        print(f"transcript: {ex.transcript.text}")
    return 0
