"""Figures for papers, drawn with matplotlib (never Qt, never pyplot) from the data the GUI shows.

Four layouts, chosen by :class:`FigureSpec`:

- ``map``: waveform on top, the attention map (phone labels on the query axis, boundary lines at
  phone transitions, a colour bar), the phone and word tiers beneath it, time in seconds at the
  bottom. Token queries (Whisper cross-attention) give the tokens x time figure with the word
  tiers beneath; token keys (decoder self-attention) a tokens x tokens map.
- ``grid``: one small map per layer x head (plus the mean of heads), one shared colour scale.
- ``profile``: the attention of one query row over key time as a curve, tiers beneath.

Output: PDF and SVG keep text as text (TrueType in PDF, ``<text>`` in SVG); only the heatmaps are
rasterized. PNG at ``spec.dpi``. The same call gives the same bytes (fixed metadata, SVG hash
salt). Widths are the journal presets ``column`` (3.5 in) and ``page`` (7 in); fonts are sized in
points for print. Labels that would overlap are dropped (tick labels) or shrunk then dropped (tier
labels) after measuring them with the renderer.

Entry points: :func:`draw_figure` (a matplotlib Figure), :func:`render_figure` (a file, written
atomically, never over an existing file without ``force``), :func:`figure_bytes`; the GUI gets
the spec and data of what is on screen from :func:`from_document`.
"""

from __future__ import annotations

import io
import os
import textwrap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..attention.maps import AttentionMaps
from ..state.document import KINDS, LOG_FLOOR, SCALES, display_image
from ..attention.measures import MEASURES, NON_NEGATIVE, PER_LAYER, cli_name
from ..errors import SteveError
from ..fileio import atomic_path
from ..frames import samples_to_seconds, seconds_to_samples, window_name
from ..speech.spectrogram import KINDS as SPECTROGRAMS

WIDTHS = {"column": 3.5, "page": 7.0}  # inches
FONT_PT = {"column": 7.0, "page": 8.0}  # base font size in points
LAYOUTS = ("map", "grid", "profile")
FORMATS = ("pdf", "svg", "png")
ROLLOUT = "rollout"
SPECIAL_TOKENS = {"<|startoftranscript|>": "SOT", "<|endoftext|>": "EOT",
                  "<|notimestamps|>": "no-ts", "<|transcribe|>": "transcribe"}
BOUNDARY_LINE = {"color": "white", "linewidth": 0.25, "alpha": 0.45}
QUERY_COLOUR = "#d62728"
LAYOUT_DPI = 100
LABEL_MODES = ("fit", "all")
MIN_LABEL_PT = 4.0  # --labels all shrinks labels down to this size, then abbreviates them
CBAR_IN = {"column": 0.1, "page": 0.13}  # colour bar width in inches
Task = Callable[[object], None]  # run with the renderer once the layout is known


# --- what to draw ----------------------------------------------------------------------------
@dataclass
class FigureSpec:
    """Everything that decides a figure; the GUI fills it with what is on screen."""

    component: str = "encoder"  # encoder | cross | decoder
    layer: int | str = 0  # layer index (from 0) or "rollout"
    head: int | None = None  # head index (from 0), None = mean of heads
    kind: str = "weights"  # weights (softmax) | scores (pre-softmax) | a measure (core.measures)
    scale: str = "global"  # global | row (rows scaled to their max) | log (log10 weights)
    colormap: str = "viridis"
    span: tuple[float, float] | None = None  # visible time span in seconds (file timeline)
    query: int | None = None  # query row of the profile figure
    layout: str = "map"  # map | grid | profile
    width: str = "column"  # column (3.5 in) | page (7 in)
    dpi: int = 300
    model: str | None = None  # model name in the title (default: the maps' model id)
    special_tokens: bool = False  # keep Whisper's <|...|> rows in token figures
    model_words: bool | None = None  # the model's word timings as a tier: None = beneath token
    #                                  figures only (cross); True = also beneath time x time maps
    title: str | None = None  # replaces the generated title
    spectrogram: str | None = None  # None, "mel" or "broadband": a spectrogram under the waveform
    labels: str = "fit"  # fit: leave out labels with no room | all: shrink, then abbreviate
    acoustics: tuple = ()  # Praat's tracks over the spectrogram: pitch, formants, intensity


@dataclass
class FigureData:
    """The data behind a figure: maps per component, the waveform, alignment, model words."""

    maps: dict[str, AttentionMaps]  # component -> maps (an Extraction's ``maps``)
    samples: np.ndarray | None = None  # (n,) mono waveform on the file timeline at sample_rate
    sample_rate: int = 16000
    alignment: object | None = None  # steve_qt.core.speech.alignment.Alignment (tiers phones, words)
    words: Sequence = ()  # the model's word timings (steve_qt.core.models.adapters.Word)
    notes: list[str] = field(default_factory=list)  # shown under the figure (e.g. no waveform)

    @classmethod
    def from_extraction(cls, extraction, audio=None, alignment=None) -> "FigureData":
        """From an Extraction, the Audio it came from (or None) and an Alignment (or None)."""
        return cls(dict(extraction.maps), None if audio is None else audio.samples,
                   audio.rate if audio is not None else 16000, alignment,
                   list(extraction.transcript.words))


def from_document(doc, layout: str = "map", width: str = "column",
                  dpi: int = 300) -> tuple[FigureSpec, FigureData]:
    """What the window shows (a :class:`steve_qt.core.state.document.Document`) as a figure spec and
    its data: component, layer, head or mean, kind, scale, colormap, the visible time span and
    the query row."""
    ex, utt = doc.attention.extraction, doc.utterance
    if ex is None or utt is None:
        raise SteveError("nothing to draw: no attention has been extracted for this utterance")
    att = doc.attention
    spec = FigureSpec(component=att.component, layer=att.layer, head=att.head, kind=att.kind,
                      scale=att.scale, colormap=att.colormap, span=tuple(doc.nav.view),
                      query=att.query, layout=layout, width=width, dpi=dpi,
                      model=ex.model, model_words=True,  # as the window's tier
                      spectrogram=doc.attention.spectrogram)
    return spec, FigureData.from_extraction(ex, utt.audio, doc.alignment)


def figure_spec(component: str = "encoder", layer: int | str = 0, head: int | None = None,
                kind: str = "weights", scale: str = "global", colormap: str = "viridis",
                span: Sequence[float] | None = None, grid: bool = False,
                profile_query: float | None = None, profile_token: int | None = None,
                width: str = "column", dpi: int = 300, title: str | None = None,
                model_words: bool | None = None, spectrogram: str | None = None,
                labels: str = "fit", acoustics: Sequence[str] = (),
                maps: AttentionMaps | None = None) -> FigureSpec:
    """The FigureSpec of ``steve-qt figure``'s options: the map of one layer and head, ``grid``
    (every layer x head), or a profile of the query frame at ``profile_query`` seconds or of the
    query token ``profile_token``. The profile's query row needs ``maps``. ``acoustics`` names
    Praat's tracks drawn over the spectrogram (pitch, formants, intensity)."""
    picked = [grid, profile_query is not None, profile_token is not None]
    if sum(picked) > 1:
        raise SteveError("choose one of --grid, --profile-query and --profile-token")
    layout = "grid" if grid else "profile" if any(picked[1:]) else "map"
    spec = FigureSpec(component=component, layer=layer, head=head, kind=kind, scale=scale,
                      colormap=colormap, span=tuple(span) if span else None, layout=layout,
                      width=width, dpi=dpi, title=title, model_words=model_words,
                      spectrogram=spectrogram, labels=labels, acoustics=tuple(acoustics))
    if maps is not None and layout == "profile":
        spec.query = query_row(maps, profile_query, profile_token)
    return spec


def query_row(maps: AttentionMaps, seconds: float | None, token: int | None) -> int:
    """The query row of a profile: the frame at ``seconds`` (frame queries) or token ``token``."""
    if seconds is not None:
        if maps.query_grid is None:
            raise SteveError(f"{maps.title} has tokens as queries; use --profile-token N "
                             f"(0 to {maps.num_queries - 1})")
        q0, q1 = maps.query_extent_seconds()
        if not q0 <= seconds < q1:
            raise SteveError(f"--profile-query {seconds:g} s lies outside the analysed audio "
                             f"({q0:g} to {q1:g} s)")
        return int(maps.query_grid.frame_at_seconds(seconds, maps.num_queries))
    if maps.query_grid is not None:
        raise SteveError(f"{maps.title} has audio frames as queries; use --profile-query SECONDS")
    if not 0 <= token < maps.num_queries:
        raise SteveError(f"--profile-token {token}: the maps have token rows 0 to "
                         f"{maps.num_queries - 1}")
    return token


# --- small helpers ---------------------------------------------------------------------------
def token_label(text: str) -> str:
    """Short readable label of a Whisper token (leading space shown as an open box)."""
    if text in SPECIAL_TOKENS:
        return SPECIAL_TOKENS[text]
    if is_special_token(text):
        return text[2:-2]
    return text.replace(" ", "\u2423", 1) if text.startswith(" ") else text


def is_special_token(text: str) -> bool:
    return text.startswith("<|") and text.endswith("|>")


def is_silence(label: str) -> bool:
    """Empty labels and silence labels (TIMIT h#, pau, epi; sil, sp, ...) are drawn as pauses."""
    from ..speech.phones import phone_class

    return not label.strip() or phone_class(label).kind == "silence"


def tier_intervals(alignment, name: str) -> list:
    """Intervals of the alignment tier ``name`` ([] when there is no such tier)."""
    if alignment is None:
        return []
    tier = alignment.tiers.get(name)
    return list(tier.intervals) if tier is not None else []


def head_name(spec: FigureSpec, maps: AttentionMaps) -> str:
    if spec.layer == ROLLOUT:
        return "attention rollout"
    if spec.kind in PER_LAYER:
        return f"layer {int(spec.layer)}, {MEASURE_NAMES[spec.kind]}"
    head = "mean of heads" if spec.head is None else f"head {int(spec.head)}"
    what = f", {MEASURE_NAMES[spec.kind]}" if spec.kind in MEASURE_NAMES else ""
    return f"layer {int(spec.layer)}, {head}{what}"


#: how figures name the measures (grad: layer n holds the relevance through layers 0..n)
MEASURE_NAMES = {"norm": "attention norm", "value_zeroing": "value zeroing",
                 "grad": "grad relevance (layers 0 to this)"}


def value_name(spec: FigureSpec) -> str:
    """What the colours (or the profile's y axis) show."""
    if spec.kind == "scores":
        return "pre-softmax score" + (" (row-scaled)" if spec.scale == "row" else "")
    if spec.kind in MEASURES:
        name = {"norm": "‖α·f(x)‖", "value_zeroing": "value zeroing",
                "grad": "relevance"}[spec.kind]
        return {"global": name, "row": f"{name} / row max", "log": f"log10 {name}"}[spec.scale]
    return {"global": "attention weight", "row": "weight / row max",
            "log": "log10 weight"}[spec.scale]


def figure_title(spec: FigureSpec, maps: AttentionMaps) -> list[str]:
    """Title lines: the model and component, then layer and head."""
    if spec.title is not None:
        return [spec.title]
    model = spec.model or maps.model
    first = f"{model}: {maps.title}"
    if maps.num_windows > 1:
        first += f" ({window_name(maps.window, maps.num_windows)})"
    if spec.layout == "grid":
        what = "all layers" if spec.kind in PER_LAYER else "all layers and heads"
        return [first, f"{what} ({value_name(spec)})"]
    return [first, head_name(spec, maps)]


def check_spec(spec: FigureSpec, data: FigureData) -> AttentionMaps:
    """The maps the spec names, or SteveError saying what is wrong."""
    if spec.component not in data.maps:
        have = ", ".join(data.maps) or "none"
        raise SteveError(f"no {spec.component!r} attention to draw (have: {have})")
    maps = data.maps[spec.component]
    if spec.layout not in LAYOUTS:
        raise SteveError(f"unknown layout {spec.layout!r}; use one of {', '.join(LAYOUTS)}")
    if spec.width not in WIDTHS:
        raise SteveError(f"unknown width {spec.width!r}; use column or page")
    if spec.kind not in KINDS:
        raise SteveError(f"unknown kind {spec.kind!r}; use one of "
                         f"{', '.join(cli_name(k) for k in KINDS)}")
    if spec.kind in MEASURES and not maps.has_kind(spec.kind):
        have = ", ".join(cli_name(k) for k in maps.measures) or "none"
        raise SteveError(f"these maps hold no {cli_name(spec.kind)} (measures stored: {have}); "
                         f"extract with --measures {cli_name(spec.kind)}")
    if spec.scale not in SCALES:
        raise SteveError(f"unknown scale {spec.scale!r}; use global, row or log")
    if spec.spectrogram not in (None, *SPECTROGRAMS):
        raise SteveError(f"unknown spectrogram {spec.spectrogram!r}; use mel or broadband")
    if spec.labels not in LABEL_MODES:
        raise SteveError(f"unknown label mode {spec.labels!r}; use fit or all")
    if spec.kind == "scores" and maps.scores is None:
        raise SteveError("these maps hold no pre-softmax scores; use --kind weights")
    if spec.kind not in NON_NEGATIVE and spec.scale == "log":
        raise SteveError("the log scale is for weights; scores are already logits")
    if not 50 <= spec.dpi <= 2400:
        raise SteveError(f"dpi {spec.dpi} is out of range (50 to 2400)")
    if spec.layer == ROLLOUT:
        if maps.num_queries != maps.num_keys or spec.component == "cross":
            raise SteveError("rollout needs self-attention (encoder or decoder), not cross-attention")
        if spec.kind != "weights":
            raise SteveError("rollout is computed from weights; use --kind weights")
    elif not isinstance(spec.layer, (int, np.integer)) or not 0 <= spec.layer < maps.num_layers:
        raise SteveError(f"layer {spec.layer!r} does not exist: the maps have layers 0 to "
                         f"{maps.num_layers - 1} and 'rollout'")
    if spec.head is not None and not 0 <= spec.head < maps.num_heads:
        raise SteveError(f"head {spec.head} does not exist: the maps have heads 0 to "
                         f"{maps.num_heads - 1}")
    if spec.span is not None and not spec.span[1] > spec.span[0]:
        raise SteveError(f"empty time span {spec.span[0]:g} to {spec.span[1]:g} s")
    _colormap(spec.colormap)
    return maps


def _colormap(name: str):
    import matplotlib

    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise SteveError(f"unknown colormap {name!r} (e.g. viridis, magma, Greys)") from None


# --- the numbers of a map ------------------------------------------------------------------
def head_map(maps: AttentionMaps, spec: FigureSpec, layer=None, head="spec") -> np.ndarray:
    """(Q, K) float32 values of one head, the head mean, or the rollout (as the spec says)."""
    layer = spec.layer if layer is None else layer
    head = spec.head if head == "spec" else head
    if layer == ROLLOUT:
        return maps.rollout()
    return maps.head(int(layer), head, spec.kind)


def display_values(m: np.ndarray, kind: str, scale: str) -> tuple[np.ndarray, tuple[float, float]]:
    """(Q, K) map -> (image, colour levels), as the GUI shows it (core.document.display_image)."""
    return display_image(m, kind, scale)


def shown_rows(maps: AttentionMaps, spec: FigureSpec) -> np.ndarray:
    """Query rows drawn: all frames; for token queries, special tokens only if asked for."""
    if maps.query_grid is not None or spec.special_tokens:
        return np.arange(maps.num_queries)
    labels = maps.query_labels or []
    rows = [i for i in range(maps.num_queries) if i >= len(labels) or not is_special_token(labels[i])]
    return np.array(rows if rows else range(maps.num_queries), dtype=np.int64)


def shown_cols(maps: AttentionMaps, spec: FigureSpec) -> np.ndarray:
    """Key columns drawn: all of them (token keys too: the mass on Whisper's prompt tokens is
    part of what a decoder head does)."""
    return np.arange(maps.num_keys)


def time_span(maps: AttentionMaps, spec: FigureSpec) -> tuple[float, float] | None:
    """Seconds shown on the time axis: the spec's span inside the key frames (None for tokens)."""
    if maps.key_grid is None:
        return None
    k0, k1 = maps.key_extent_seconds()
    if spec.span is None:
        return k0, k1
    a, b = max(spec.span[0], k0), min(spec.span[1], k1)
    if not b > a:
        raise SteveError(f"time span {spec.span[0]:g} to {spec.span[1]:g} s lies outside the "
                         f"analysed audio ({k0:g} to {k1:g} s)")
    return a, b


# --- matplotlib set-up ---------------------------------------------------------------------
def rc_params(spec: FigureSpec) -> dict:
    fs = FONT_PT[spec.width]
    return {
        "font.family": "DejaVu Sans",
        "font.size": fs,
        "axes.titlesize": fs,
        "axes.labelsize": fs,
        "xtick.labelsize": fs - 1,
        "ytick.labelsize": fs - 1,
        "figure.titlesize": fs + 1,
        "axes.linewidth": 0.5,
        "xtick.major.width": 0.5,
        "ytick.major.width": 0.5,
        "xtick.major.size": 2.5,
        "ytick.major.size": 2.5,
        "xtick.major.pad": 1.5,
        "ytick.major.pad": 1.5,
        "lines.linewidth": 0.8,
        "pdf.fonttype": 42,  # TrueType, text stays text
        "ps.fonttype": 42,
        "svg.fonttype": "none",  # <text> elements
        "svg.hashsalt": "steve_qt",  # deterministic ids
        "image.interpolation": "nearest",
        "path.simplify": True,
        "figure.dpi": spec.dpi,
        "savefig.dpi": spec.dpi,
    }


def _new_figure(spec: FigureSpec, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTHS[spec.width], height_in), dpi=spec.dpi, layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(w_pad=0.02, h_pad=0.01, hspace=0.0, wspace=0.02)
    return fig


def _title(fig, lines: list[str], spec: FigureSpec) -> None:
    """Suptitle, each line wrapped to the figure width (measured with the renderer)."""
    size = FONT_PT[spec.width] + 1
    renderer = fig.canvas.get_renderer()
    limit = fig.bbox.width * 0.98
    out = []
    for line in lines:
        probe = fig.text(0, 0, line, fontsize=size)
        w = probe.get_window_extent(renderer).width
        probe.remove()
        out.extend([line] if w <= limit else textwrap.wrap(line, max(12, int(len(line) * limit / w))))
    fig.suptitle("\n".join(out), fontsize=size)


def _finish(fig, tasks: list[Task]):
    """Lay the figure out, run the measuring tasks, lay out again, then freeze the layout.

    The layout passes run at a low dpi (positions are in inches and points, so they don't depend
    on it; the heatmaps are resampled per draw, which costs at 300 dpi).
    """
    dpi = fig.get_dpi()
    fig.set_dpi(LAYOUT_DPI)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for task in tasks:
        task(renderer)
    # thinned labels only give the axes more room, so one more layout pass is safe
    fig.canvas.draw()
    fig.set_layout_engine("none")
    fig.set_dpi(dpi)
    return fig


# --- panels --------------------------------------------------------------------------------
def _draw_waveform(ax, data: FigureData, span: tuple[float, float]) -> bool:
    """Min/max envelope of the samples in ``span`` (one bin per ~1/200 in). False if no audio."""
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    if data.samples is None or len(data.samples) == 0:
        ax.set_axis_off()
        return False
    rate = data.sample_rate
    i0, i1 = (int(v) for v in seconds_to_samples(np.array(span), rate))
    i0, i1 = max(i0, 0), min(i1, len(data.samples))
    x = np.asarray(data.samples[i0:i1], dtype=np.float32)
    if x.size < 2:
        return False
    bins = int(min(x.size // 2, 200 * ax.figure.get_figwidth()))
    edges = np.linspace(0, x.size, bins + 1).astype(np.int64)
    lo = np.minimum.reduceat(x, edges[:-1])
    hi = np.maximum.reduceat(x, edges[:-1])
    t = samples_to_seconds(i0 + (edges[:-1] + edges[1:]) / 2, rate)
    ax.fill_between(t, lo, hi, color="0.25", linewidth=0.3, edgecolor="0.25")
    top = float(max(np.abs(x).max(), 1e-6))
    ax.set_ylim(-1.05 * top, 1.05 * top)
    ax.set_xlim(*span)
    return True


def _draw_spectrogram(ax, data: FigureData, span: tuple[float, float], kind: str) -> None:
    """The spectrogram (core.spectrogram, as the window draws it) of the samples in ``span``."""
    from ..speech.spectrogram import draw_spectrogram, label_hz_axis, spectrogram

    rate = data.sample_rate
    margin = int(0.02 * rate)  # a window's worth beyond each end: no edge effects in view
    i0, i1 = (int(v) for v in seconds_to_samples(np.array(span), rate))
    i0, i1 = max(i0 - margin, 0), min(i1 + margin, len(data.samples))
    spec = spectrogram(np.asarray(data.samples[i0:i1], dtype=np.float32), rate, kind)
    draw_spectrogram(ax, spec, i0 / rate)
    label_hz_axis(ax, spec)
    ax.set_xlim(*span)
    ax.tick_params(axis="x", which="both", bottom=False, labelbottom=False)
    return spec


def _draw_tier(ax, intervals: list, span: tuple[float, float], name: str, spec: FigureSpec,
               tasks: list[Task], last: bool) -> None:
    """One interval tier as a strip: boundaries, labels centred (shrunk or dropped if too wide)."""
    fs = FONT_PT[spec.width] - 1
    ax.set_ylim(0, 1)
    ax.set_xlim(*span)
    ax.set_yticks([0.5], [name], fontsize=fs - 0.5)
    ax.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", labelbottom=last, bottom=last)
    a, b = span
    texts = []
    for iv in intervals:
        if iv.end_s <= a or iv.start_s >= b:
            continue
        if is_silence(iv.label):
            ax.axvspan(max(iv.start_s, a), min(iv.end_s, b), color="0.93", linewidth=0)
            continue
        mid = (max(iv.start_s, a) + min(iv.end_s, b)) / 2
        txt = ax.text(mid, 0.45, iv.label, ha="center", va="center", fontsize=fs, clip_on=True)
        txt.set_in_layout(False)
        texts.append((txt, max(iv.start_s, a), min(iv.end_s, b)))

    _vlines(ax, _boundaries(intervals, a, b), color="0.35", linewidth=0.4)

    def fit(renderer) -> None:
        if spec.labels == "all":
            _fit_every_label(ax, texts, fs, renderer, f"{name} tier")
            return
        to_px = ax.transData.transform
        gap = renderer.points_to_pixels(2)
        placed: list[tuple[float, float]] = []  # pixel extents of the labels kept
        spill = []
        for txt, s, e in texts:
            x0, x1 = to_px((s, 0))[0], to_px((e, 0))[0]
            txt.set_visible(True)
            txt.set_bbox(None)
            for size in (fs, 0.85 * fs):
                txt.set_fontsize(size)
                w = txt.get_window_extent(renderer).width
                if w + gap <= x1 - x0:
                    placed.append(((x0 + x1 - w) / 2, (x0 + x1 + w) / 2))
                    break
            else:
                spill.append((x1 - x0, txt, (x0 + x1) / 2, w))
        # labels wider than their interval: kept where they overlap no other label (longest
        # intervals first), on a white ground that hides the boundary lines under them
        left, right = ax.bbox.x0, ax.bbox.x1
        for _, txt, c, w in sorted(spill, key=lambda t: -t[0]):
            lo, hi = c - w / 2 - 2 * gap, c + w / 2 + 2 * gap
            if lo >= left and hi <= right and all(hi <= a or lo >= b for a, b in placed):
                placed.append((lo, hi))
                txt.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.2})
            else:
                txt.set_visible(False)
        _count_labels(ax.figure, f"{name} tier", len(texts),
                      dropped=sum(not t.get_visible() for t, _, _ in texts))

    tasks.append(fit)


def _label_sizes(fs: float) -> list[float]:
    """Font sizes tried by --labels all: fs, then 15 % smaller each step, down to MIN_LABEL_PT."""
    sizes = [fs]
    while sizes[-1] * 0.85 > MIN_LABEL_PT:
        sizes.append(sizes[-1] * 0.85)
    return sizes + [MIN_LABEL_PT] if sizes[-1] > MIN_LABEL_PT else sizes


def _fit_every_label(ax, texts: list, fs: float, renderer, name: str) -> None:
    """--labels all (as Praat): every label is drawn; one without room in its interval shrinks
    down to MIN_LABEL_PT, then loses letters from its end (its first letter always stays)."""
    to_px = ax.transData.transform
    gap = renderer.points_to_pixels(1)
    shrunk = short = 0
    for txt, s, e in texts:
        room = to_px((e, 0))[0] - to_px((s, 0))[0] - gap
        label = txt.get_text()
        txt.set_visible(True)
        txt.set_bbox(None)
        for size in _label_sizes(fs):
            txt.set_fontsize(size)
            if txt.get_window_extent(renderer).width <= room:
                shrunk += size < fs
                break
        else:
            k = len(label)
            while k > 1 and txt.get_window_extent(renderer).width > room:
                k -= 1
                txt.set_text(label[:k])
            short += 1
    _count_labels(ax.figure, name, len(texts), shrunk=shrunk, abbreviated=short)


def _count_labels(fig, name: str, total: int, dropped: int = 0, shrunk: int = 0,
                  abbreviated: int = 0) -> None:
    """Record what became of a set of labels, for :func:`label_log`."""
    counts = fig.__dict__.setdefault("steve_labels", {})
    counts[name] = {"total": total, "dropped": dropped, "shrunk": shrunk,
                    "abbreviated": abbreviated}


def label_log(fig) -> str | None:
    """One line for the figure's log: how many labels each tier and axis drew and left out."""
    counts = getattr(fig, "steve_labels", {})
    if not counts:
        return None
    parts = [f"{name} {c['total'] - c['dropped']} of {c['total']}" for name, c in counts.items()]
    dropped = sum(c["dropped"] for c in counts.values())
    shrunk = sum(c["shrunk"] for c in counts.values())
    short = sum(c["abbreviated"] for c in counts.values())
    line = "labels drawn: " + ", ".join(parts)
    if dropped:
        line += f"; {dropped} left out for lack of room (--labels all draws every label)"
    elif shrunk or short:
        line += f"; {shrunk} in a smaller font, {short} abbreviated"
    return line


def _thin_ticks(ax, axis: str, positions: Sequence[float], labels: Sequence[str],
                priority: Sequence[float], tasks: list[Task], rotation: float = 0,
                spec: FigureSpec | None = None, name: str | None = None) -> None:
    """Tick labels at ``positions``; after layout keep only those that don't overlap, the
    highest ``priority`` (e.g. interval duration) first. Labels of x are rotated by
    ``rotation`` degrees (0 or 90). With ``spec.labels == "all"`` every label stays: the font
    shrinks (down to MIN_LABEL_PT) until they do not overlap, or as far as it goes. ``name``
    counts them for the figure's log."""
    positions = list(positions)
    labels = list(labels)
    order = np.argsort(-np.asarray(priority, dtype=float), kind="stable")
    every = spec is not None and spec.labels == "all"

    def kept_at(renderer, fs: float) -> list[int]:
        idx = 1 if axis == "y" else 0
        kept: list[tuple[float, float]] = []
        keep = []
        box = ax.bbox
        inside = (box.y0, box.y1) if axis == "y" else (box.x0, box.x1)
        for i in order:
            probe = ax.figure.text(0, 0, labels[i], fontsize=fs, rotation=rotation)
            ext = probe.get_window_extent(renderer)
            probe.remove()
            size = ext.height if axis == "y" else ext.width
            c = ax.transData.transform((positions[i], positions[i]))[idx]
            lo, hi = c - 0.55 * size, c + 0.55 * size
            in_axes = inside[0] - 0.5 <= c - 0.5 * size and c + 0.5 * size <= inside[1] + 0.5
            if in_axes and all(hi <= a or lo >= b for a, b in kept):
                kept.append((lo, hi))
                keep.append(i)
        return sorted(keep)

    def fit(renderer) -> None:
        getattr(ax, f"set_{axis}ticks")(positions, labels, rotation=rotation)
        tick_labels = getattr(ax, f"get_{axis}ticklabels")()
        fs = tick_labels[0].get_fontsize() if tick_labels else 6
        if every:
            sizes = _label_sizes(fs)
            size = next((s for s in sizes if len(kept_at(renderer, s)) == len(labels)), sizes[-1])
            ax.tick_params(axis=axis, labelsize=size)
            if name:
                _count_labels(ax.figure, name, len(labels), shrunk=len(labels) * (size < fs))
            return
        keep = kept_at(renderer, fs)
        getattr(ax, f"set_{axis}ticks")([positions[i] for i in keep], [labels[i] for i in keep],
                                        rotation=rotation)
        if name:
            _count_labels(ax.figure, name, len(labels), dropped=len(labels) - len(keep))

    getattr(ax, f"set_{axis}ticks")(positions, labels, rotation=rotation)
    tasks.append(fit)


def _phone_ticks(ax, axis: str, phones: list, lo: float, hi: float, tasks: list[Task],
                 spec: FigureSpec | None = None) -> None:
    inside = [iv for iv in phones if not is_silence(iv.label) and iv.end_s > lo and iv.start_s < hi]
    mids = [(max(iv.start_s, lo) + min(iv.end_s, hi)) / 2 for iv in inside]
    _thin_ticks(ax, axis, mids, [iv.label for iv in inside],
                [min(iv.end_s, hi) - max(iv.start_s, lo) for iv in inside], tasks, spec=spec,
                name=f"phones on the {'query' if axis == 'y' else 'key'} axis")


def _vlines(ax, xs: Sequence[float], **style) -> None:
    """Full-height vertical lines at data x positions, as one collection."""
    if len(xs):
        ax.vlines(xs, 0, 1, transform=ax.get_xaxis_transform(), **style)


def _hlines(ax, ys: Sequence[float], **style) -> None:
    if len(ys):
        ax.hlines(ys, 0, 1, transform=ax.get_yaxis_transform(), **style)


def _boundaries(phones: list, lo: float, hi: float) -> list[float]:
    return sorted({t for iv in phones for t in (iv.start_s, iv.end_s) if lo < t < hi})


def _token_ticks(ax, axis: str, labels: Sequence[str], tasks: list[Task],
                 rotation: float = 0, spec: FigureSpec | None = None) -> None:
    names = [token_label(s) for s in labels]
    _thin_ticks(ax, axis, [i + 0.5 for i in range(len(names))], names,
                [1.0 / (1 + i) for i in range(len(names))], tasks, rotation, spec=spec,
                name=f"tokens on the {'query' if axis == 'y' else 'key'} axis")


def _cbar_ratio(spec: FigureSpec) -> list[float]:
    """Width ratios [map, colour bar] giving a colour bar of CBAR_IN inches."""
    main = WIDTHS[spec.width] - 1.1  # minus the label margins, roughly
    return [1.0, CBAR_IN[spec.width] / main]


def _image(ax, img: np.ndarray, extent, levels, spec: FigureSpec):
    return ax.imshow(img, extent=extent, origin="upper", aspect="auto", cmap=_colormap(spec.colormap),
                     vmin=levels[0], vmax=levels[1], interpolation="nearest", rasterized=True)


def _colourbar(fig, im, cax, spec: FigureSpec) -> None:
    cb = fig.colorbar(im, cax=cax)
    cb.set_label(value_name(spec), fontsize=FONT_PT[spec.width] - 1)
    cb.ax.tick_params(labelsize=FONT_PT[spec.width] - 1.5, length=2, width=0.5)
    cb.outline.set_linewidth(0.5)
    cb.ax.locator_params(nbins=5)


def _notes(fig, data: FigureData, spec: FigureSpec) -> None:
    if data.notes:
        fig.supxlabel("; ".join(data.notes), fontsize=FONT_PT[spec.width] - 1.5, color="0.4",
                      ha="left", x=0.01)


def _tiers_for(spec: FigureSpec, data: FigureData, maps: AttentionMaps) -> list[tuple[str, list]]:
    """(name, intervals) of the tiers drawn beneath a time axis."""
    out = [(name, tier_intervals(data.alignment, name)) for name in ("phones", "words")]
    out = [(n, ivs) for n, ivs in out if ivs]
    wanted = spec.component != "encoder" if spec.model_words is None else spec.model_words
    if wanted and data.words:
        name = (spec.model or maps.model).split(":")[0].split()[0] or "model"
        out.append((name, [_Word(w.start_s, w.end_s, w.text) for w in data.words]))
    return out


@dataclass
class _Word:
    start_s: float
    end_s: float
    label: str


# --- layouts -------------------------------------------------------------------------------
def _heights(spec: FigureSpec, wave: bool) -> tuple[float, float, float]:
    """(waveform, map, tier) heights in inches."""
    col = spec.width == "column"
    return (0.45 if col else 0.6) if wave else 0.0, 2.45 if col else 3.4, 0.17 if col else 0.2


def _spectrogram_height(spec: FigureSpec) -> float:
    return 0.6 if spec.width == "column" else 0.85


def _draw_top(fig, gs, ax_main, data: FigureData, span, spec: FigureSpec, has_wave: bool,
              has_spec: bool) -> None:
    """The waveform and the spectrogram above the main axes (rows 0 and 1 of ``gs``)."""
    if has_wave:
        _draw_waveform(fig.add_subplot(gs[0, 0], sharex=ax_main, label="waveform"), data, span)
    if has_spec:
        ax = fig.add_subplot(gs[int(has_wave), 0], sharex=ax_main, label="spectrogram")
        drawn = _draw_spectrogram(ax, data, span, spec.spectrogram)
        if spec.acoustics:
            from .acoustics import draw_acoustics

            data.notes += draw_acoustics(ax, data.samples, data.sample_rate, span,
                                         spec.acoustics, drawn.y_of_hz)
            ax.set_xlim(*span)


def draw_map_figure(spec: FigureSpec, data: FigureData):
    maps = check_spec(spec, data)
    if maps.key_grid is None:
        return _draw_token_token(spec, data, maps)
    span = time_span(maps, spec)
    tiers = _tiers_for(spec, data, maps)
    has_wave = data.samples is not None and len(data.samples) > 0
    has_spec = has_wave and spec.spectrogram is not None
    h_wave, h_map, h_tier = _heights(spec, has_wave)
    top = [h_wave] * has_wave + [_spectrogram_height(spec)] * has_spec
    rows = top + [h_map] + [h_tier] * len(tiers)
    fig = _new_figure(spec, sum(rows) + 0.95)
    tasks: list[Task] = []
    gs = fig.add_gridspec(len(rows), 2, height_ratios=rows, width_ratios=_cbar_ratio(spec))
    r = len(top)  # row of the map
    ax_map = fig.add_subplot(gs[r, 0], label="map")
    _draw_top(fig, gs, ax_map, data, span, spec, has_wave, has_spec)
    phones = tier_intervals(data.alignment, "phones")
    k0, k1 = maps.key_extent_seconds()
    if maps.query_grid is not None:  # audio frames x audio frames
        img, levels = display_values(head_map(maps, spec), spec.kind, spec.scale)
        q0, q1 = maps.query_extent_seconds()
        im = _image(ax_map, img, (k0, k1, q1, q0), levels, spec)
        ax_map.set_ylim(span[1], span[0])
        if phones:
            ax_map.set_ylabel("query")
            _phone_ticks(ax_map, "y", phones, *span, tasks, spec)
            _hlines(ax_map, _boundaries(phones, *span), **BOUNDARY_LINE)
        else:
            ax_map.set_ylabel("query time (s)")
        marks = phones
    else:  # tokens x audio frames
        rows_shown = shown_rows(maps, spec)
        img, levels = display_values(head_map(maps, spec)[rows_shown], spec.kind, spec.scale)
        im = _image(ax_map, img, (k0, k1, len(rows_shown), 0), levels, spec)
        ax_map.set_ylim(len(rows_shown), 0)
        labels = maps.query_labels or [str(i) for i in range(maps.num_queries)]
        _token_ticks(ax_map, "y", [labels[i] for i in rows_shown], tasks, spec=spec)
        ax_map.set_ylabel("token")
        # token rows: word boundaries say more than phone boundaries
        marks = tier_intervals(data.alignment, "words") or \
            [_Word(w.start_s, w.end_s, w.text) for w in data.words]
    _vlines(ax_map, _boundaries(marks, *span), **BOUNDARY_LINE)
    ax_map.set_xlim(*span)
    ax_map.tick_params(axis="x", labelbottom=not tiers)
    if not tiers:
        ax_map.set_xlabel("key time (s)")
    _colourbar(fig, im, fig.add_subplot(gs[r, 1], label="colorbar"), spec)
    for i, (name, ivs) in enumerate(tiers):
        ax = fig.add_subplot(gs[r + 1 + i, 0], sharex=ax_map, label=f"tier:{name}")
        _draw_tier(ax, ivs, span, name, spec, tasks, last=i == len(tiers) - 1)
        if i == len(tiers) - 1:
            ax.set_xlabel("time (s)")
    _title(fig, figure_title(spec, maps), spec)
    _notes(fig, data, spec)
    return _finish(fig, tasks)


def _draw_token_token(spec: FigureSpec, data: FigureData, maps: AttentionMaps):
    """Decoder self-attention: tokens x tokens (no time axis)."""
    rows, cols = shown_rows(maps, spec), shown_cols(maps, spec)
    side = 2.45 if spec.width == "column" else 3.4
    fig = _new_figure(spec, side + 1.1)
    tasks: list[Task] = []
    gs = fig.add_gridspec(1, 2, width_ratios=_cbar_ratio(spec))
    ax = fig.add_subplot(gs[0, 0], label="map")
    full = head_map(maps, spec)[np.ix_(rows, cols)]
    img, levels = display_values(full, spec.kind, spec.scale)
    im = _image(ax, img, (0, len(cols), len(rows), 0), levels, spec)
    qlab = maps.query_labels or [str(i) for i in range(maps.num_queries)]
    klab = maps.key_labels or [str(i) for i in range(maps.num_keys)]
    _token_ticks(ax, "y", [qlab[i] for i in rows], tasks, spec=spec)
    _token_ticks(ax, "x", [klab[i] for i in cols], tasks, rotation=90, spec=spec)
    ax.set_ylabel("query token")
    ax.set_xlabel("key token")
    _colourbar(fig, im, fig.add_subplot(gs[0, 1], label="colorbar"), spec)
    _title(fig, figure_title(spec, maps), spec)
    _notes(fig, data, spec)
    return _finish(fig, tasks)


def draw_grid_figure(spec: FigureSpec, data: FigureData):
    """Layers x heads (and the mean of heads) as small maps with one colour scale; a per-layer
    measure (one map per layer) as one row of layers."""
    maps = check_spec(replace(spec, layer=0, head=None), data)
    n, m = maps.num_layers, maps.kind_heads(spec.kind)
    per_layer = spec.kind in PER_LAYER
    # grid cells: (row, column, layer, head or None for the mean)
    if per_layer:
        nrows, cols = 1, n
        cells = [(0, layer, layer, 0) for layer in range(n)]
    else:
        nrows, cols = n, m + 1
        cells = [(layer, c, layer, None if c == m else c) for layer in range(n)
                 for c in range(m + 1)]
    span = time_span(maps, spec)
    rows_shown, cols_shown = shown_rows(maps, spec), shown_cols(maps, spec)
    images = []
    for _, _, layer, head in cells:
        full = head_map(maps, spec, layer, head)[np.ix_(rows_shown, cols_shown)]
        images.append(display_values(full, spec.kind, spec.scale))
    lo = min(lv[0] for _, lv in images)
    hi = max(lv[1] for _, lv in images)
    width = WIDTHS[spec.width]
    cell = (width - 0.75) / cols
    fig = _new_figure(spec, nrows * cell * 0.9 + 1.0)
    tasks: list[Task] = []
    gs = fig.add_gridspec(nrows, cols + 1, width_ratios=[1] * cols + [CBAR_IN[spec.width] / cell])
    if maps.key_grid is not None:
        xext = maps.key_extent_seconds()
    else:
        xext = (0, len(cols_shown))
    if maps.query_grid is not None:
        q0, q1 = maps.query_extent_seconds()
        yext = (q1, q0)
    else:
        yext = (len(rows_shown), 0)
    axes = np.empty((nrows, cols), dtype=object)
    fs = FONT_PT[spec.width] - 1
    im = None
    for (r, c, layer, head), (img, _) in zip(cells, images):
        ax = fig.add_subplot(gs[r, c], sharex=axes[0, 0], sharey=axes[0, 0],
                             label=f"map:{layer}:{'mean' if head is None or per_layer else head}")
        axes[r, c] = ax
        im = _image(ax, img, (*xext, *yext), (lo, hi), spec)
        ax.tick_params(labelbottom=False, labelleft=False, length=0)
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_linewidth(0.3)
        if r == 0:
            ax.set_title(f"L{layer}" if per_layer else "mean" if head is None else f"h{head}",
                         fontsize=fs, pad=2)
        if c == 0 and not per_layer:
            ax.set_ylabel(f"L{r}", fontsize=fs, rotation=0, ha="right",
                          va="center", labelpad=2)
    ax0 = axes[0, 0]
    if span is not None:
        ax0.set_xlim(*span)
        if maps.query_grid is not None:
            ax0.set_ylim(span[1], span[0])
    else:
        ax0.set_xlim(*xext)
    if maps.key_grid is not None:  # a time scale under the bottom-left map
        ax = axes[nrows - 1, 0]
        a, b = ax0.get_xlim()
        ax.set_xticks([a, b], [f"{a:.1f}", f"{b:.1f} s"], fontsize=fs - 1)
        ax.tick_params(axis="x", labelbottom=True, length=1.5)
        ax.get_xticklabels()[0].set_horizontalalignment("left")
        ax.get_xticklabels()[-1].set_horizontalalignment("right")
    cax = fig.add_subplot(gs[:, cols], label="colorbar")
    _colourbar(fig, im, cax, spec)
    _title(fig, figure_title(spec, maps), spec)
    _notes(fig, data, spec)
    return _finish(fig, tasks)


def draw_profile_figure(spec: FigureSpec, data: FigureData):
    """One query row's attention over key time as a curve, waveform above, tiers beneath."""
    maps = check_spec(spec, data)
    if maps.key_grid is None:
        raise SteveError("the profile figure needs audio frames as keys (encoder or cross)")
    if spec.query is None or not 0 <= spec.query < maps.num_queries:
        raise SteveError(f"query row {spec.query} does not exist (0 to {maps.num_queries - 1})")
    span = time_span(maps, spec)
    tiers = _tiers_for(spec, data, maps)
    has_wave = data.samples is not None and len(data.samples) > 0
    has_spec = has_wave and spec.spectrogram is not None
    h_wave, _, h_tier = _heights(spec, has_wave)
    h_curve = 1.4 if spec.width == "column" else 1.9
    top = [h_wave] * has_wave + [_spectrogram_height(spec)] * has_spec
    rows = top + [h_curve] + [h_tier] * len(tiers)
    fig = _new_figure(spec, sum(rows) + 0.95)
    tasks: list[Task] = []
    gs = fig.add_gridspec(len(rows), 1, height_ratios=rows)
    r = len(top)
    ax = fig.add_subplot(gs[r, 0], label="profile")
    _draw_top(fig, gs, ax, data, span, spec, has_wave, has_spec)

    row = head_map(maps, spec)[spec.query].astype(np.float64)  # (K,)
    ylabel = value_name(spec)
    if spec.scale == "row":
        lo = 0.0 if spec.kind in NON_NEGATIVE else row.min()
        rng = row.max() - lo
        row = (row - lo) / (rng if rng > 0 else 1.0)
    elif spec.scale == "log":
        row = np.maximum(row, LOG_FLOOR)
        ax.set_yscale("log")
        ylabel = f"{value_name(replace(spec, scale='global'))} (log)"
    starts, _ = maps.key_grid.span_seconds(np.arange(maps.num_keys))
    edges = np.append(np.asarray(starts, dtype=float), maps.key_extent_seconds()[1])
    ax.stairs(row, edges, color="#1f4e79", linewidth=0.9, baseline=None)
    if spec.kind in NON_NEGATIVE and spec.scale != "log":
        ax.set_ylim(0, float(row.max()) * 1.08 if row.max() > 0 else 1.0)
    ax.set_ylabel(ylabel)
    ax.set_xlim(*span)
    phones = tier_intervals(data.alignment, "phones")
    _vlines(ax, _boundaries(phones, *span), color="0.8", linewidth=0.4, zorder=0)
    who = _query_name(maps, spec, data)
    if maps.query_grid is not None:
        tq = float(maps.query_grid.center_seconds(spec.query))
        if span[0] <= tq <= span[1]:
            ax.axvline(tq, color=QUERY_COLOUR, linewidth=0.8, linestyle="--")
    pad = float(maps.head_padding(spec.layer, spec.head)[spec.query]) \
        if spec.layer != ROLLOUT else 0.0
    if pad >= 0.001:  # the mass this row sent to Whisper's cropped padding keys
        who += f", {100 * pad:.1f}% to padding"
    ax.tick_params(axis="x", labelbottom=not tiers)
    if not tiers:
        ax.set_xlabel("key time (s)")
    for s in ("top", "right"):
        ax.spines[s].set_visible(False)
    for i, (name, ivs) in enumerate(tiers):
        axt = fig.add_subplot(gs[r + 1 + i, 0], sharex=ax, label=f"tier:{name}")
        _draw_tier(axt, ivs, span, name, spec, tasks, last=i == len(tiers) - 1)
        if i == len(tiers) - 1:
            axt.set_xlabel("key time (s)")
    lines = figure_title(spec, maps)
    if spec.title is None:
        lines[-1] += f"; {who}"
    _title(fig, lines, spec)
    _notes(fig, data, spec)
    return _finish(fig, tasks)


def _query_name(maps: AttentionMaps, spec: FigureSpec, data: FigureData) -> str:
    if maps.query_grid is None:
        labels = maps.query_labels or []
        tok = token_label(labels[spec.query]) if spec.query < len(labels) else str(spec.query)
        return f"query token \u201c{tok}\u201d (row {spec.query})"
    t = float(maps.query_grid.center_seconds(spec.query))
    phone = next((iv.label for iv in tier_intervals(data.alignment, "phones")
                  if iv.start_s <= t < iv.end_s and not is_silence(iv.label)), None)
    return f"query {t:.3f} s" + (f" ({phone})" if phone else "")


def draw_figure(spec: FigureSpec, data: FigureData):
    """The matplotlib Figure for ``spec`` (no pyplot; an Agg canvas is attached)."""
    import matplotlib

    check_spec(spec, data)
    with matplotlib.rc_context(rc_params(spec)):
        if spec.layout == "grid":
            return draw_grid_figure(spec, data)
        if spec.layout == "profile":
            return draw_profile_figure(spec, data)
        return draw_map_figure(spec, data)


# --- output --------------------------------------------------------------------------------
def format_of(path: str | os.PathLike) -> str:
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise SteveError(f"unknown figure format {Path(path).suffix or '(none)'!r}; "
                         f"use .pdf, .svg or .png", path)
    return fmt


def _metadata(fmt: str) -> dict:
    """Fixed metadata so that the same figure gives the same bytes."""
    if fmt == "png":
        return {"Software": None}
    if fmt == "pdf":
        return {"Creator": "steve_qt", "Producer": None, "CreationDate": None, "ModDate": None}
    return {"Creator": "steve_qt", "Date": None}


def write_figure(fig, fh, fmt: str, spec: FigureSpec) -> None:
    """Write ``fig`` to a binary file object with the backend of ``fmt`` chosen explicitly."""
    import matplotlib

    if fmt == "pdf":
        from matplotlib.backends.backend_pdf import FigureCanvasPdf as Canvas
    elif fmt == "svg":
        from matplotlib.backends.backend_svg import FigureCanvasSVG as Canvas
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg as Canvas
    with matplotlib.rc_context(rc_params(spec)):
        canvas = Canvas(fig)
        canvas.print_figure(fh, format=fmt, dpi=spec.dpi, metadata=_metadata(fmt),
                            facecolor="white")


def figure_bytes(spec: FigureSpec, data: FigureData, fmt: str = "png") -> bytes:
    fig = draw_figure(spec, data)
    buf = io.BytesIO()
    write_figure(fig, buf, fmt, spec)
    return buf.getvalue()


def write_figure_file(fig_or_draw, spec: FigureSpec, path: str | os.PathLike,
                      force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Write a figure (or the result of a zero-argument drawing function, called only once the
    path is known to be writable) to ``path`` (.pdf, .svg, .png) atomically; SteveError if
    ``path`` exists (unless ``force``) or can't be written. ``log`` receives one line saying how
    many labels were drawn and left out (:func:`label_log`)."""
    from ..fileio import check_writable

    fmt = format_of(path)
    check_writable(path, force)  # before the drawing work
    fig = fig_or_draw() if callable(fig_or_draw) else fig_or_draw
    line = label_log(fig)
    if log is not None and line:
        log(line)
    with atomic_path(path, force) as tmp:
        with open(tmp, "wb") as fh:
            write_figure(fig, fh, fmt, spec)
    return Path(path)


def render_figure(spec: FigureSpec, data: FigureData, path: str | os.PathLike,
                  force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Draw the figure of ``data`` and write it with :func:`write_figure_file`."""
    return write_figure_file(lambda: draw_figure(spec, data), spec, path, force, log)
