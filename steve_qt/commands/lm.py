"""``steve-qt lm --prompt " rug"``: the Whisper decoder as a language model. The encoder sees
padding only (no audio); the prompt's tokens follow the start sequence; prints the top-N next
tokens with their logits and probabilities. ``--neighbours WORD``: the tokens nearest to WORD in
the token embedding, by cosine similarity (of mean-centred embedding rows)."""

from __future__ import annotations

import argparse

from .intervcommon import add_model_argument, add_out_argument, emit_table, load_adapter


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("lm", help="the decoder with no audio: next tokens, embedding neighbours",
                       description=__doc__)
    p.add_argument("--prompt", metavar="TEXT", help="text after the start sequence, e.g. ' rug'")
    p.add_argument("--neighbours", metavar="WORD", help="nearest tokens of WORD by cosine")
    p.add_argument("--top", type=int, default=20, metavar="N", help="how many (20)")
    add_model_argument(p, window=False)
    add_out_argument(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.interventions.tables import LM_HEADER, check_lm_args, lm_rows
    from .intervcommon import check_out

    check_lm_args(args.prompt, args.neighbours, args.top)
    check_out(args)
    adapter = load_adapter(args.model)
    emit_table(args, LM_HEADER, lm_rows(adapter, args.prompt, args.neighbours, args.top))
    return 0
