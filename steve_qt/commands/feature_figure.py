"""``steve-qt figure AUDIO --feature F --site SITE|--sae DIR`` and ``steve-qt figure --index IDX
--feature F``: the figures of one feature (see ``steve_qt/core/figures/features.py``).

Reached through ``steve-qt figure`` (commands/figure.py adds the arguments and hands over when
``--feature`` is given).
"""

from __future__ import annotations

import argparse
import sys

from .common import add_cache_option



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
    add_cache_option(f, " for --index")


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


def _file_figure(args):
    from ..core.figures.features import draw_feature_figure, file_feature_data
    from ..core.models.adapters import DEFAULT_SPEC
    from ..core.models.pipeline import get_adapter
    from .common import open_input

    spec = _spec(args)
    data, span = file_feature_data(lambda: get_adapter(args.model or DEFAULT_SPEC),
                                   lambda: open_input(args), args.feature,
                                   site=args.site, sae_dir=args.sae, window=args.window)
    spec.span = spec.span or span
    return lambda: draw_feature_figure(spec, data)


def _index_figure(args):
    from ..core.errors import SteveError
    from ..core.features.index import FeatureIndex
    from ..core.figures.features import EXAMPLES, draw_examples_figure, index_examples

    idx = FeatureIndex.open(args.index)
    if args.model and args.model != idx.meta["model"]:
        raise SteveError(f"the index was built with {idx.meta['model']}, not {args.model}",
                         args.index)
    examples, name = index_examples(idx, args.feature, args.examples or EXAMPLES[args.width],
                                    args.context, args.cache)
    spec = _spec(args)
    return lambda: draw_examples_figure(spec, examples, name)
