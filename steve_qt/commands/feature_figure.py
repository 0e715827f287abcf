"""``steve-qt figure AUDIO --feature F --site SITE|--sae DIR`` and ``steve-qt figure --index IDX
--feature F``: the figures of one feature (see ``steve_qt/core/figures/features.py``).

Reached through ``steve-qt figure`` (commands/figure.py adds the arguments and hands over when
``--feature`` is given).
"""

from __future__ import annotations

import argparse
import sys

EXAMPLES = {"column": 9, "page": 15}


def add_arguments(p: argparse.ArgumentParser) -> None:
    f = p.add_argument_group("feature figures")
    f.add_argument("--feature", type=int, metavar="F",
                   help="draw feature F (from 0) instead of attention: a neuron / dimension of "
                        "--site, or a latent of --sae, over AUDIO's spectrogram; or with "
                        "--index, a grid of its top examples in the corpus")
    f.add_argument("--site", metavar="SITE", help="module path whose activations to draw "
                   "(see `steve-qt sites`); with --sae, the SAE's own site is the default")
    f.add_argument("--sae", metavar="DIR", help="a sparse autoencoder (SAELens format): draw its "
                   "latent F")
    f.add_argument("--index", metavar="IDX", help="a feature index (`steve-qt features index`): "
                   "draw F's top examples (no AUDIO)")
    f.add_argument("--examples", type=int, default=None, metavar="N",
                   help="examples in the --index grid (default 9 at column width, 15 at page)")
    f.add_argument("--context", type=float, default=0.4, metavar="SECONDS",
                   help="audio shown each side of an example's peak (default 0.4)")
    f.add_argument("--cache", metavar="DIR",
                   help="activation cache folder for --index (default $STEVE_QT_CACHE or "
                        "~/.cache/steve_qt)")


def wanted(args) -> bool:
    return getattr(args, "feature", None) is not None or bool(getattr(args, "index", None))


def _spec(args):
    from ..core.figures.attention import FigureSpec

    from .figure import acoustic_overlays

    which = acoustic_overlays(args)
    return FigureSpec(width=args.width, dpi=args.dpi, title=args.title,
                      span=tuple(args.span) if args.span else None,
                      spectrogram=getattr(args, "spectrogram", None), acoustics=which,
                      labels=getattr(args, "labels", "fit"))


def run(args) -> int:
    from ..core.errors import SteveError
    from ..core.figures.features import render
    from ..core.figures.attention import format_of
    from ..core.fileio import check_writable

    format_of(args.out)
    check_writable(args.out, args.force)
    if args.feature is None:
        raise SteveError("--index needs --feature F")
    if args.feature < 0:
        raise SteveError(f"--feature must be 0 or more, not {args.feature}")
    if args.index:
        if args.audio:
            raise SteveError("give AUDIO or --index, not both")
        draw = _index_figure(args)
    else:
        if not args.audio:
            raise SteveError("give an audio file (or --index IDX)")
        draw = _file_figure(args)
    render(draw, _spec(args), args.out, force=args.force,
           log=lambda line: print(f"steve-qt figure: {line}", file=sys.stderr))
    print(f"wrote {args.out}")
    return 0


def feature_values(acts, feature: int, sae, where: str):
    """(T,) the feature over the rows of ``acts`` (T, D): column F, or the SAE's latent F."""
    import numpy as np

    from ..core.errors import SteveError

    if sae is not None:
        if feature >= sae.d_sae:
            raise SteveError(f"feature {feature} does not exist: the SAE has latents 0 to "
                             f"{sae.d_sae - 1}")
        return sae.encode(np.asarray(acts, np.float32))[:, feature]
    if feature >= acts.shape[1]:
        raise SteveError(f"feature {feature} does not exist: {where} has dimensions 0 to "
                         f"{acts.shape[1] - 1}")
    return np.asarray(acts[:, feature], dtype=np.float32)


def _file_figure(args):
    from ..core.models.adapters import DEFAULT_SPEC
    from ..core.errors import SteveError
    from ..core.figures.features import (FeatureFigureData, FeatureTrack, draw_feature_figure,
                                        feature_name)
    from ..core.models.pipeline import get_adapter
    from ..core.features.sae import check_site, load_sae
    from ..core.models.sites import validate_sites
    from .common import open_input

    sae = load_sae(args.sae) if args.sae else None
    site_name = args.site or (sae.hook_name if sae is not None else None)
    if not site_name:
        raise SteveError("give --site SITE (or an --sae that names its site)")
    if sae is not None and sae.hook_name and site_name != sae.hook_name:
        raise SteveError(f"the SAE in {args.sae} reads {sae.hook_name}, not {site_name}")
    adapter = get_adapter(args.model or DEFAULT_SPEC)
    site = validate_sites([site_name], adapter.list_sites())[0]
    if site.axis != "frames":
        raise SteveError(f"{site.name} has token rows; feature figures need an audio-frames site")
    if sae is not None:
        check_site(sae, site.name, site.dim, args.sae)
    utt = open_input(args)
    ex = adapter.extract(utt.audio.samples, components=(), window=args.window,
                         sites=(site.name,))
    values = feature_values(ex.activations[site.name], args.feature, sae, site.name)
    track = FeatureTrack(values, ex.frame_grid, feature_name(args.feature, site.name, args.sae))
    data = FeatureFigureData(utt.audio.samples, utt.audio.rate, track, utt.alignment)
    spec = _spec(args)
    if spec.span is None:  # the analysed frames (one 30 s window of long audio)
        a, b = ex.frame_grid.extent_seconds(len(values))
        spec.span = (max(0.0, a), min(b, utt.audio.duration))
    return lambda: draw_feature_figure(spec, data)


def _index_figure(args):
    import numpy as np

    from ..core.features.actcache import file_activations
    from ..core.errors import SteveError
    from ..core.figures.features import (Example, FeatureTrack, draw_examples_figure,
                                        feature_name)
    from ..core.features.index import FeatureIndex
    from ..core.models.pipeline import open_utterance
    from ..core.features.sae import load_sae

    idx = FeatureIndex.open(args.index)
    meta = idx.meta
    if args.model and args.model != meta["model"]:
        raise SteveError(f"the index was built with {meta['model']}, not {args.model}",
                         args.index)
    sae = load_sae(meta["sae"]) if meta.get("sae") else None
    n = args.examples or EXAMPLES[args.width]
    if n < 1:
        raise SteveError(f"--examples must be at least 1, not {n}")
    top = idx.top(args.feature)[:n]
    name = feature_name(args.feature, meta["site"], meta.get("sae"))
    examples = []
    for e in top:
        path = idx.audio_path(e)
        if not path.is_file():
            raise SteveError(f"the index's file {e.file} is gone from {idx.corpus} (moved? "
                             "rebuild the index)", args.index)
        utt = open_utterance(path)
        fa = file_activations(path, meta["model"], meta["site"], args.cache, audio=utt.audio)
        entry, first = _entry_of(fa.entries, e.frame)
        values = feature_values(entry.acts.astype(np.float32), args.feature, sae, meta["site"])
        track = FeatureTrack(values, entry.grid(), name)
        rate = utt.audio.rate
        a = max(0.0, e.time_s - args.context)
        b = min(utt.audio.duration, e.time_s + args.context)
        clip = utt.audio.samples[int(a * rate):int(np.ceil(b * rate))]
        phones = list(utt.alignment.tiers["phones"].intervals) \
            if utt.alignment is not None and "phones" in utt.alignment.tiers else []
        examples.append(Example(clip, rate, a, track, e.time_s, e.activation,
                                path.name, phones))
    spec = _spec(args)
    return lambda: draw_examples_figure(spec, examples, name)


def _entry_of(entries, frame: int):
    """(the window entry holding concatenated row ``frame``, its first row)."""
    from ..core.errors import SteveError

    first = 0
    for entry in entries:
        if frame < first + entry.acts.shape[0]:
            return entry, first
        first += entry.acts.shape[0]
    raise SteveError(f"frame {frame} lies beyond the file's activations (the audio changed? "
                     "rebuild the index)")
