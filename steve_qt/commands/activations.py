"""``steve-qt activations AUDIO --site S [--site S2 ...] --out FILE.npz``: per-frame activations.

Writes one float16 (T, D) array per site (key ``act:<site>``) with the frame grid, the alignment
tiers and (for tokens sites) the transcript; see ``steve_qt/core/actnpz.py`` for every key.
Frames sites alone never run the transcription, only the encoder.
"""

from __future__ import annotations

import argparse

from ..core.adapters import DEFAULT_SPEC
from .common import add_input_arguments


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("activations", help="write the activations of model sites to an .npz file",
                       description=__doc__)
    add_input_arguments(p)
    p.add_argument("--site", action="append", required=True, metavar="SITE",
                   help="module path to read (repeat, or separate with commas); "
                        "steve-qt sites lists them")
    p.add_argument("--model", default=DEFAULT_SPEC, metavar="SPEC",
                   help="whisper (embedded tiny.en, default), whisper:NAME_OR_PATH, "
                        "wav2vec2:DIR_OR_ID")
    p.add_argument("--window", type=int, default=0, metavar="N",
                   help="30 s window of long audio to analyse (Whisper; 0 = first)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output .npz file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.actnpz import save_activations
    from ..core.fileio import check_writable
    from ..core.pipeline import get_adapter
    from ..core.sites import validate_sites
    from .common import open_input, run_model

    check_writable(args.out, args.force)  # fail before the model runs, not after
    adapter = get_adapter(args.model)
    sites = validate_sites(args.site, adapter.list_sites())
    utt = open_input(args)
    _, ex = run_model(args, utt, (), sites=[s.name for s in sites])
    save_activations(args.out, ex, sites, alignment=utt.alignment, audio_path=args.audio,
                     force=args.force)
    shapes = ", ".join(f"{s.name} {ex.activations[s.name].shape[0]}x{s.dim}" for s in sites)
    print(f"{ex.model}: {shapes}; wrote {args.out}")
    return 0
