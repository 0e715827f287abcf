"""``steve-qt activations AUDIO --site S [--site S2 ...] --out FILE.npz``: per-frame activations.

With ``--sae DIR`` (a sparse autoencoder in SAELens's format) the file holds the SAE's codes
(T, d_sae) instead of the raw activations, under ``act:<site>`` of the SAE's site (its
``hook_name``; ``--site`` may be left out).

Writes one float16 (T, D) array per site (key ``act:<site>``) with the frame grid, the alignment
tiers and (for tokens sites) the transcript; see ``steve_qt/core/models/actnpz.py`` for every key.
Frames sites alone never run the transcription, only the encoder.
"""

from __future__ import annotations

import argparse

from .common import add_input_arguments, add_model_option, add_window_option


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("activations", help="write the activations of model sites to an .npz file",
                       description=__doc__)
    add_input_arguments(p)
    p.add_argument("--site", action="append", metavar="SITE",
                   help="module path to read (repeat, or separate with commas); "
                        "steve-qt sites lists them")
    p.add_argument("--sae", metavar="DIR", help="write this sparse autoencoder's codes of its "
                   "site instead of the raw activations (SAELens format)")
    add_model_option(p)
    add_window_option(p)
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output .npz file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from dataclasses import replace
    from pathlib import Path

    import numpy as np

    from ..core.models.actnpz import save_activations
    from ..core.errors import SteveError
    from ..core.features.sae import check_site
    from ..core.fileio import check_writable
    from ..core.models.pipeline import get_adapter
    from ..core.models.sites import validate_sites
    from .common import open_input, run_model

    check_writable(args.out, args.force)  # fail before the model runs, not after
    sae = sae_site(args) if args.sae else None
    if not args.site:
        raise SteveError("give --site (steve-qt sites lists them)")
    adapter = get_adapter(args.model)
    sites = validate_sites(args.site, adapter.list_sites())
    extra = None
    if sae is not None:
        check_site(sae, sites[0].name, sites[0].dim, args.sae)
    utt = open_input(args)
    _, ex = run_model(args, utt, (), sites=[s.name for s in sites])
    if sae is not None:
        site = sites[0]
        ex.activations[site.name] = sae.encode(np.asarray(ex.activations[site.name], np.float32))
        sites = [replace(site, dim=sae.d_sae, kind="sae")]
        extra = {"sae_dir": np.array(str(Path(args.sae).resolve()))}
    save_activations(args.out, ex, sites, alignment=utt.alignment, audio_path=args.audio,
                     force=args.force, extra=extra)
    shapes = ", ".join(f"{s.name} {ex.activations[s.name].shape[0]}x{s.dim}" for s in sites)
    print(f"{ex.model}: {shapes}; wrote {args.out}")
    return 0


def sae_site(args):
    """Load ``--sae``; its hook_name is the site (``--site`` may repeat it, not contradict it)."""
    from ..core.errors import SteveError
    from ..core.features.sae import load_sae
    from ..core.models.sites import parse_sites

    sae = load_sae(args.sae)
    asked = parse_sites(args.site) if args.site else []
    if len(asked) > 1:
        raise SteveError("--sae reads one site; give at most one --site")
    if sae.hook_name and asked and asked[0] != sae.hook_name:
        raise SteveError(f"the SAE in {args.sae} reads {sae.hook_name}, not {asked[0]}")
    if not asked and not sae.hook_name:
        raise SteveError(f"the SAE in {args.sae} names no site (hook_name); give --site")
    args.site = asked or [sae.hook_name]
    return sae
