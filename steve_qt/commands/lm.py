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
    from ..core.errors import SteveError
    from .intervcommon import check_out

    if args.prompt is None and args.neighbours is None:
        raise SteveError("give --prompt TEXT and/or --neighbours WORD")
    if args.prompt is not None and args.prompt == "":
        raise SteveError("the prompt is empty: give some text, e.g. --prompt ' rug'")
    if args.neighbours is not None and args.neighbours.strip() == "":
        raise SteveError("the word is empty: give some text, e.g. --neighbours ' rug'")
    if args.top <= 0:
        raise SteveError(f"--top must be positive, got {args.top}")
    check_out(args)
    adapter = load_adapter(args.model)
    rows = []
    if args.prompt is not None:
        nt = adapter.lm_next_tokens(args.prompt, args.top)
        rows += [("next", i, t, txt, f"{lg:.4f}", f"{p:.6f}")
                 for i, (t, txt, lg, p) in enumerate(zip(nt.tokens, nt.texts, nt.logits,
                                                         nt.probs))]
    if args.neighbours is not None:
        rows += [("neighbour", i, t, txt, f"{c:.4f}", "")
                 for i, (t, txt, c) in enumerate(adapter.nearest_tokens(args.neighbours,
                                                                       args.top))]
    emit_table(args, ("kind", "rank", "token_id", "token", "score", "prob"), rows)
    return 0
