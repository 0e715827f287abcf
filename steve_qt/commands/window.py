"""``steve-qt window AUDIO --k 1,2,5,...``: transcribe with encoder self-attention limited to
keys within +-k frames of each query (in all or some layers); one row per k with the word error
rate and word diff against the unmasked transcript (and the alignment's words, when there are)."""

from __future__ import annotations

import argparse

from .common import add_input_arguments
from .common import progress_bar
from .intervcommon import add_model_argument, add_out_argument, check_out, emit_table, load_adapter


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("window", help="transcribe with a +-k frame attention window (encoder)",
                       description=__doc__)
    add_input_arguments(p)
    p.add_argument("--k", required=True, metavar="K,K,...",
                   help="window half-widths in encoder frames (20 ms), e.g. 1,2,5,10,25,75,750")
    p.add_argument("--layers", metavar="L,L,...", help="encoder layers to mask (0-based; "
                   "default all)")
    add_model_argument(p)
    add_out_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.interventions.tables import alignment_text, parse_ks, parse_layers, window_sweep, \
        window_table
    from .common import open_input

    ks = parse_ks(args.k)
    layers = parse_layers(args.layers)
    check_out(args)
    utt = open_input(args)
    adapter = load_adapter(args.model)
    if layers is not None and max(layers) >= adapter.num_layers("encoder"):
        from ..core.errors import SteveError

        raise SteveError(f"encoder layer {max(layers)} does not exist "
                         f"(layers 0 to {adapter.num_layers('encoder') - 1})")
    progress, close = progress_bar("steve-qt window", unit="transcript")
    try:
        reference, rows = window_sweep(adapter, utt.audio.samples, ks, layers, args.window,
                                       alignment_words=alignment_text(utt.alignment),
                                       progress=progress)
    finally:
        close()
    print(f"unmasked: {reference}")
    emit_table(args, *window_table(rows))
    return 0
