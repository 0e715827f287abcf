"""``steve-qt lens AUDIO --out DIR``: the logit lens. ``encoder_lens.csv``: block l's output,
through ln_post, fed to the decoder and transcribed (one row per encoder layer, WER against the
normal transcript). ``decoder_lens.csv``: for every decoder layer and position of the transcript's
token sequence, the top-5 next tokens and their probabilities through the final layer norm and
the token embedding (``token`` is the input token at that position; ``top_tokens``/``top_probs``
are JSON lists)."""

from __future__ import annotations

import argparse

from .common import add_input_arguments
from .common import progress_bar
from .intervcommon import add_model_argument, load_adapter


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("lens", help="encoder and decoder logit lens (CSV files in a folder)",
                       description=__doc__)
    add_input_arguments(p)
    add_model_argument(p)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the two CSV files "
                   "(created)")
    p.add_argument("--top", type=int, default=5, metavar="N", help="tokens per position (5)")
    p.add_argument("--force", action="store_true", help="overwrite existing CSV files")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from pathlib import Path

    from ..core.errors import SteveError
    from ..core.fileio import check_writable, write_csv
    from ..core.interventions.tables import (DECODER_LENS_HEADER, ENCODER_LENS_HEADER,
                                             decoder_lens_rows, decoder_lens_table, encoder_lens,
                                             encoder_lens_rows, _fmt)
    from .common import open_input

    if args.top <= 0:
        raise SteveError(f"--top must be positive, got {args.top}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise SteveError("is a file; give a folder", out)
    if not out.parent.exists():
        raise SteveError(f"folder {out.parent} does not exist", out)
    enc_path, dec_path = out / "encoder_lens.csv", out / "decoder_lens.csv"
    if out.exists():
        for p in (enc_path, dec_path):
            check_writable(p, args.force)
    utt = open_input(args)
    adapter = load_adapter(args.model)
    samples = utt.audio.samples
    progress, close = progress_bar("steve-qt lens", unit="transcript")
    try:
        t = adapter.transcribe(samples, window=args.window)
        rows = encoder_lens(adapter, samples, args.window, reference=t.text, progress=progress)
        table = decoder_lens_table(adapter, samples, t.tokens, args.window, top=args.top)
    finally:
        close()
    out.mkdir(exist_ok=True)
    write_csv(enc_path, ENCODER_LENS_HEADER, encoder_lens_rows(rows), force=args.force)
    write_csv(dec_path, DECODER_LENS_HEADER, decoder_lens_rows(table), force=args.force)
    print(f"transcript: {t.text}")
    for layer, v in rows:
        print(f"encoder layer {layer}: {v.transcript}  (WER {_fmt(v.wer)})")
    print(f"wrote {enc_path}, {dec_path}")
    return 0
