"""``steve-qt figure AUDIO|FILE.npz --out FILE.{pdf,svg,png}``: a figure for a paper.

Layouts: the attention map of one layer and head (default), ``--grid`` (every layer x head with
one colour scale), ``--profile-query SECONDS`` (one query frame's attention over key time), or
``--profile-token N`` (one token's cross-attention). With ``--component cross`` the map is
Whisper's tokens x time with the word tiers beneath.

Give an .npz written by ``steve-qt extract`` instead of audio to draw without running the model;
the waveform then comes from the audio file named in the .npz (left out if it is gone).
Layers and heads are numbered from 0, as in the .npz and ``steve-qt stats``.

Feature figures: ``--feature F`` with ``--site SITE`` (a neuron or dimension) or ``--sae DIR`` (an
SAE latent) draws AUDIO's spectrogram with the feature's activation overlaid, tiers beneath;
``--index IDX --feature F`` (no AUDIO) a grid of the feature's top examples in the corpus.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _layer(text: str):
    if text.strip().lower() == "rollout":
        return "rollout"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a layer number or 'rollout', got {text!r}") from None


def _head(text: str):
    if text.strip().lower() == "mean":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a head number or 'mean', got {text!r}") from None


def register(sub) -> argparse.ArgumentParser:
    from .common import add_alignment_options, add_model_option, add_window_option

    p = sub.add_parser("figure", help="draw a figure for a paper (PDF, SVG or PNG)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", metavar="AUDIO|NPZ", nargs="?",
                   help="audio file (WAV, FLAC, ...) or an .npz from 'steve-qt extract' "
                        "(none with --index)")
    p.add_argument("--out", required=True, metavar="FILE", help="output .pdf, .svg or .png")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    g = p.add_argument_group("what to draw")
    add_model_option(g, default=None, note=". Not used with an .npz")
    g.add_argument("--component", choices=("encoder", "cross", "decoder"), default=None,
                   help="encoder self-attention (default), decoder cross-attention (tokens x "
                        "time) or decoder self-attention; with an .npz, the one it holds")
    g.add_argument("--layer", type=_layer, default=0, metavar="N|rollout",
                   help="layer, from 0 (default 0), or 'rollout' (self-attention only)")
    g.add_argument("--head", type=_head, default=None, metavar="M|mean",
                   help="head, from 0, or 'mean' of heads (default)")
    g.add_argument("--grid", action="store_true", help="all layers x heads, one colour scale")
    g.add_argument("--profile-query", type=float, metavar="SECONDS",
                   help="profile figure: the query frame at this time (frame queries)")
    g.add_argument("--profile-token", type=int, metavar="N",
                   help="profile figure: query token row N, from 0 (cross-attention)")
    g.add_argument("--kind", type=_kind, default="weights",
                   metavar="weights|scores|norm|value-zeroing|grad",
                   help="softmax weights (default), pre-softmax scores, or a context-mixing "
                        "measure: norm (attention norm, per head), value-zeroing or grad (grad "
                        "relevance; both per layer). From an .npz the measure must be stored in "
                        "it (extract --measures); from audio it is computed")
    g.add_argument("--scale", choices=("global", "row", "log"), default="global",
                   help="colour scale: global (default), row (each query row to its max), log")
    g.add_argument("--cmap", default="viridis", metavar="NAME",
                   help="matplotlib colormap (default viridis)")
    g.add_argument("--span", type=float, nargs=2, metavar=("T0", "T1"),
                   help="time span to show, in seconds of the file")
    add_window_option(g)
    g.add_argument("--title", help="title instead of the generated one")
    g.add_argument("--spectrogram", choices=("mel", "broadband"), default=None,
                   help="a spectrogram under the waveform: mel (the log-mel the model hears) or "
                        "broadband (Praat's: 5 ms Gaussian window, 0-5 kHz, 50 dB)")
    g.add_argument("--acoustics", metavar="LIST", default="",
                   help="Praat's tracks over the spectrogram, comma-separated: pitch (blue, its "
                        "own Hz axis on the right), formants (red dots), intensity (yellow); "
                        "implies --spectrogram broadband unless one is given")
    g.add_argument("--labels", choices=("fit", "all"), default="fit",
                   help="fit (default): leave out labels with no room; all: draw every label, "
                        "shrinking the font, then abbreviating (as Praat does). The log line on "
                        "stderr says how many were left out")
    g.add_argument("--model-words", action="store_true",
                   help="also draw the model's own word timings (Whisper's) as a tier beneath "
                        "time x time maps, as the window does (always drawn under --component "
                        "cross)")
    o = p.add_argument_group("size")
    o.add_argument("--width", choices=("column", "page"), default="column",
                   help="column (3.5 in, default) or page (7 in)")
    o.add_argument("--dpi", type=int, default=300, help="PNG resolution and the heatmaps' "
                   "resolution in PDF/SVG (default 300)")
    a = p.add_argument_group("alignment")
    add_alignment_options(a, "phone/word intervals: auto (.phn/.wrd, .TextGrid or .eaf beside "
                             "the audio; with an .npz, the tiers stored in it), timit, textgrid, "
                             "eaf or none")
    from . import feature_figure

    feature_figure.add_arguments(p)
    p.set_defaults(func=run)
    return p


def _kind(text: str) -> str:
    from ..core.attention.measures import KINDS

    kind = text.strip().lower().replace("-", "_")
    if kind not in KINDS:
        raise argparse.ArgumentTypeError(
            f"invalid kind {text!r} (choose from {', '.join(k.replace('_', '-') for k in KINDS)})")
    return kind


def build_spec(args, maps=None):
    """FigureSpec from the parsed arguments (the query row needs the maps)."""
    from ..core.figures.attention import figure_spec

    return figure_spec(component=args.component or "encoder", layer=args.layer, head=args.head,
                       kind=args.kind, scale=args.scale, colormap=args.cmap, span=args.span,
                       grid=args.grid, profile_query=args.profile_query,
                       profile_token=args.profile_token, width=args.width, dpi=args.dpi,
                       title=args.title, model_words=True if args.model_words else None,
                       spectrogram=args.spectrogram, labels=args.labels,
                       acoustics=acoustic_overlays(args), maps=maps)


def acoustic_overlays(args) -> tuple:
    """The --acoustics tracks; they are drawn over a spectrogram (broadband unless chosen)."""
    from ..core.figures.acoustics import parse_overlays

    which = parse_overlays(getattr(args, "acoustics", ""))
    if which and getattr(args, "spectrogram", None) is None:
        args.spectrogram = "broadband"
    return which


def _from_npz(args):
    """FigureData from an .npz (no model run) and the component it holds."""
    import warnings

    from ..api import figure_data, load_extraction
    from ..core.errors import SteveError
    from ..core.warnings import SteveWarning

    ex = load_extraction(args.audio)
    comp = ex.components[0]
    if args.component and args.component != comp:
        raise SteveError(f"holds {comp!r} attention, not {args.component!r} (extract it with "
                         f"--component {args.component})", args.audio)
    if args.model:
        warnings.warn(f"--model {args.model} is ignored: the .npz already holds {ex.model}",
                      SteveWarning, stacklevel=2)
    if args.alignment == "none":
        ex.alignment = None
    elif args.alignment_file or args.alignment != "auto":  # another alignment file
        from ..core.speech.alignment import load_alignment

        audio = ex.utterance.audio if ex.utterance is not None else None
        ex.alignment = load_alignment(Path(ex.audio_path) if ex.audio_path else None,
                                      kind=args.alignment, path=args.alignment_file,
                                      duration_s=audio.duration if audio is not None else None,
                                      phone_tier=args.phone_tier, word_tier=args.word_tier)
    return figure_data(ex), comp


def _from_audio(args):
    from ..core.figures.attention import FigureData
    from .common import open_input, run_model

    comp = args.component or "encoder"
    if args.model is None:
        from ..core.models.adapters import DEFAULT_SPEC

        args.model = DEFAULT_SPEC
    from ..core.attention.measures import MEASURES

    measures = [args.kind] if args.kind in MEASURES else []
    if measures:
        from ..core.models.pipeline import check_measures, get_adapter

        check_measures(get_adapter(args.model), measures, comp)
    utt = open_input(args)
    _, ex = run_model(args, utt, [comp], measures=measures)
    return FigureData.from_extraction(ex, utt.audio, utt.alignment), comp


def run(args) -> int:
    from ..core.errors import SteveError
    from ..core.fileio import check_writable
    from ..core.figures.attention import format_of, render_figure
    from . import feature_figure

    if feature_figure.wanted(args):
        return feature_figure.run(args)
    if not args.audio:
        raise SteveError("give an audio file or an .npz (or --index IDX --feature F)")
    format_of(args.out)
    check_writable(args.out, args.force)  # fail before the model runs, not after
    build_spec(args)  # argument conflicts, before the model runs
    if args.audio.lower().endswith(".npz"):
        data, comp = _from_npz(args)
    else:
        data, comp = _from_audio(args)
    if comp not in data.maps:
        raise SteveError(f"the model produced no {comp!r} attention (it has: "
                         f"{', '.join(data.maps) or 'none'})")
    args.component = comp
    spec = build_spec(args, data.maps[comp])
    render_figure(spec, data, args.out, force=args.force,
                  log=lambda line: print(f"steve-qt figure: {line}", file=sys.stderr))
    print(f"wrote {args.out}")
    return 0
