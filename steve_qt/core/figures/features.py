"""Figures of one feature (a neuron or an SAE latent), drawn with matplotlib like figures.py.

- :func:`draw_feature_figure` (FREUD's picture): the file's spectrogram (log-mel by default, or
  Praat's broadband; :mod:`steve_qt.core.speech.spectrogram`, as the window draws it) with the feature's
  activation overlaid as a curve (its own axis on the right), a colour bar for the spectrogram,
  the phone and word tiers beneath, time in seconds at the bottom.
- :func:`draw_examples_figure`: a grid of a feature's top examples across a corpus, each a
  thumbnail of the spectrogram around the peak with the activation overlaid, the phones beneath
  and file, time and activation above.

Same output rules as the other figures (``figures.write_figure``: PDF with TrueType text, SVG
with ``<text>``, PNG at ``spec.dpi``; ``column`` 3.5 in or ``page`` 7 in wide).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import SteveError
from .attention import (FONT_PT, FigureSpec, Task, _boundaries, _cbar_ratio, _draw_tier, _finish,
                      _new_figure, _title, _vlines, rc_params, tier_intervals)
from ..frames import FrameGrid
from ..speech.spectrogram import draw_spectrogram, label_hz_axis, mel_spectrogram

EXAMPLES = {"column": 9, "page": 15}  # top examples in the grid by default, per width
CURVE = {"color": "#ff7f0e", "linewidth": 1.0}
CURVE_EDGE = {"color": "white", "linewidth": 2.0, "alpha": 0.8}
SPEC_CMAP = "gray_r"


@dataclass
class FeatureTrack:
    """One feature's activation over a file's frames."""

    values: np.ndarray  # (T,) activation per frame
    grid: FrameGrid  # frame -> seconds
    name: str  # what the feature is, e.g. "SAE feature 17 (encoder.blocks.2)"

    def edges_seconds(self) -> np.ndarray:
        """(T + 1,) frame drawing-span edges in seconds (frames tile the time axis)."""
        starts, _ = self.grid.span_seconds(np.arange(len(self.values)))
        return np.append(np.asarray(starts, dtype=float), self.grid.extent_seconds(
            len(self.values))[1])


@dataclass
class FeatureFigureData:
    samples: np.ndarray  # (n,) mono waveform on the file timeline
    sample_rate: int
    track: FeatureTrack
    alignment: object | None = None  # Alignment with "phones", "words" tiers (or None)
    notes: list[str] = field(default_factory=list)


@dataclass
class Example:
    """One corpus example: a clip around the activation peak and the feature over its frames."""

    samples: np.ndarray  # (n,) the clip's samples
    sample_rate: int
    start_s: float  # clip start on the file's timeline
    track: FeatureTrack  # the feature over the whole file (cropped to the clip when drawn)
    peak_s: float  # time of the example's frame
    activation: float
    label: str  # e.g. the file name
    phones: list = field(default_factory=list)  # Interval-like (start_s, end_s, label), file time


# --- spectrogram ---------------------------------------------------------------------------
def _spectrogram(ax, samples, rate: int, t0: float, kind: str = "mel", labels: bool = True):
    """Draw the spectrogram (core.spectrogram, as the window draws it) with its first frame
    centred at ``t0`` seconds; returns the image (for a colour bar)."""
    from ..speech.spectrogram import draw_spectrogram, label_hz_axis, spectrogram

    spec = spectrogram(np.asarray(samples, dtype=np.float32), rate, kind)
    im = draw_spectrogram(ax, spec, t0, cmap=SPEC_CMAP)
    if labels:
        label_hz_axis(ax, spec)
    else:
        ax.set_ylim(*spec.y_extent)
    return im


def _overlay(ax, track: FeatureTrack, span, top: float | None = None):
    """The activation as a step curve on a twin axis at the right; returns that axis."""
    ax2 = ax.twinx()
    edges = track.edges_seconds()
    values = np.asarray(track.values, dtype=float)
    ax2.stairs(values, edges, baseline=None, **CURVE_EDGE)
    ax2.stairs(values, edges, baseline=None, **CURVE)
    lo = min(0.0, float(values.min())) if len(values) else 0.0
    hi = top if top is not None else (float(values.max()) if len(values) else 1.0)
    ax2.set_ylim(lo, hi * 1.1 if hi > lo else lo + 1.0)
    ax2.set_xlim(*span)
    ax2.tick_params(axis="y", colors=CURVE["color"])
    for s in ("top", "left", "bottom"):
        ax2.spines[s].set_visible(False)
    ax2.spines["right"].set_color(CURVE["color"])
    return ax2


# --- one file --------------------------------------------------------------------------------
def _file_span(data: FeatureFigureData, spec: FigureSpec) -> tuple[float, float]:
    full = (0.0, len(data.samples) / data.sample_rate)
    if spec.span is None:
        return full
    a, b = spec.span
    if not (b > a and a < full[1] and b > full[0]):
        raise SteveError(f"--span {a:g} {b:g} lies outside the audio (0 to {full[1]:.3f} s)")
    return max(a, full[0]), min(b, full[1])


def draw_feature_figure(spec: FigureSpec, data: FeatureFigureData):
    """The spectrogram with the activation overlaid, tiers beneath, a colour bar (see module)."""
    import matplotlib

    if len(data.samples) == 0:
        raise SteveError("no audio to draw")
    with matplotlib.rc_context(rc_params(spec)):
        span = _file_span(data, spec)
        tiers = [(n, tier_intervals(data.alignment, n)) for n in ("phones", "words")]
        tiers = [(n, ivs) for n, ivs in tiers if ivs]
        col = spec.width == "column"
        h_spec, h_tier = (1.9, 0.17) if col else (2.6, 0.2)
        rows = [h_spec] + [h_tier] * len(tiers)
        fig = _new_figure(spec, sum(rows) + 0.95)
        tasks: list[Task] = []
        gs = fig.add_gridspec(len(rows), 2, height_ratios=rows, width_ratios=_cbar_ratio(spec))
        ax = fig.add_subplot(gs[0, 0], label="spectrogram")
        i0, i1 = int(span[0] * data.sample_rate), int(np.ceil(span[1] * data.sample_rate))
        mel = mel_spectrogram(data.samples[i0:i1], data.sample_rate)
        im = draw_spectrogram(ax, mel, i0 / data.sample_rate, cmap=SPEC_CMAP)
        label_hz_axis(ax, mel)
        ax.set_xlim(*span)
        phones = tier_intervals(data.alignment, "phones")
        _vlines(ax, _boundaries(phones, *span), color="0.55", linewidth=0.3)
        ax2 = _overlay(ax, data.track, span)
        ax2.set_ylabel("activation", color=CURVE["color"])
        if spec.acoustics:
            from .acoustics import draw_acoustics

            notes = draw_acoustics(ax, data.samples, data.sample_rate, span, spec.acoustics,
                                   mel.y_of_hz, right_offset=30)  # right of the activation
            data.notes = list(data.notes) + notes
            ax.set_xlim(*span)
        ax.tick_params(axis="x", labelbottom=not tiers)
        if not tiers:
            ax.set_xlabel("time (s)")
        cax = fig.add_subplot(gs[0, 1], label="colorbar")
        cb = fig.colorbar(im, cax=cax)
        cb.set_label("dB", fontsize=FONT_PT[spec.width] - 1)
        cb.ax.tick_params(labelsize=FONT_PT[spec.width] - 1.5, length=2, width=0.5)
        cb.outline.set_linewidth(0.5)
        cb.ax.locator_params(nbins=4)
        for i, (name, ivs) in enumerate(tiers):
            axt = fig.add_subplot(gs[1 + i, 0], sharex=ax, label=f"tier:{name}")
            _draw_tier(axt, ivs, span, name, spec, tasks, last=i == len(tiers) - 1)
            if i == len(tiers) - 1:
                axt.set_xlabel("time (s)")
        values = np.asarray(data.track.values)
        peak = int(np.argmax(values)) if len(values) else 0
        if not len(values) or not np.any(values):
            default = [data.track.name, "zero throughout (not active here)"]
        else:
            default = [data.track.name, f"peak {values.max():.3g} at "
                       f"{float(data.track.grid.center_seconds(peak)):.3f} s"]
        _title(fig, [spec.title] if spec.title else default, spec)
        if data.notes:
            fig.supxlabel("; ".join(data.notes), fontsize=FONT_PT[spec.width] - 1.5,
                          color="0.4", ha="left", x=0.01)
        return _finish(fig, tasks)


# --- many examples ---------------------------------------------------------------------------
def grid_shape(n: int, width: str) -> tuple[int, int]:
    cols = 3 if width == "column" else 5
    cols = max(1, min(cols, n))
    return -(-n // cols), cols


def draw_examples_figure(spec: FigureSpec, examples: Sequence[Example], feature_name: str):
    """Thumbnails of the top examples, best first, one shared activation scale."""
    import matplotlib

    if not examples:
        raise SteveError(f"no examples to draw for {feature_name}")
    with matplotlib.rc_context(rc_params(spec)):
        nrows, ncols = grid_shape(len(examples), spec.width)
        col = spec.width == "column"
        h_thumb, h_tier = (0.62, 0.14) if col else (0.85, 0.16)
        fig = _new_figure(spec, nrows * (h_thumb + h_tier + 0.22) + 0.55)
        tasks: list[Task] = []
        outer = fig.add_gridspec(nrows, ncols)
        top = max(float(ex.activation) for ex in examples)
        fs = FONT_PT[spec.width] - 1.5
        for i, ex in enumerate(examples):
            cell = outer[i // ncols, i % ncols].subgridspec(2, 1, height_ratios=[h_thumb, h_tier],
                                                            hspace=0)
            ax = fig.add_subplot(cell[0], label=f"example:{i}")
            span = (ex.start_s, ex.start_s + len(ex.samples) / ex.sample_rate)
            _spectrogram(ax, ex.samples, ex.sample_rate, ex.start_s, spec.spectrogram or "mel",
                         labels=False)
            ax.set_xlim(*span)
            ax.set_yticks([])
            ax.tick_params(axis="x", bottom=False, labelbottom=False)
            ax.axvline(ex.peak_s, color="#1f77b4", linewidth=0.5, linestyle=":")
            ax2 = _overlay(ax, ex.track, span, top=top)
            ax2.set_yticks([])
            ax2.spines["right"].set_visible(False)
            ax.set_title(f"{i + 1}. {shorten(ex.label, 20 if col else 26)}", fontsize=fs,
                         pad=1.5)
            ax2.text(0.02, 0.96, f"{ex.peak_s:.2f} s, {ex.activation:.3g}", transform=ax2.transAxes,
                    ha="left", va="top", fontsize=fs - 0.5, zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.75, "pad": 0.6})
            axt = fig.add_subplot(cell[1], sharex=ax, label=f"phones:{i}")
            _draw_tier(axt, list(ex.phones), span, "", spec, tasks, last=False)
            axt.set_yticks([])
            axt.tick_params(axis="x", bottom=False, labelbottom=False)
        _title(fig, [spec.title] if spec.title else
               [feature_name, f"top {len(examples)} examples (activation scale 0 to {top:.3g})"],
               spec)
        return _finish(fig, tasks)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis in the middle (keeps the suffix)."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[:(keep + 1) // 2] + "\u2026" + text[len(text) - keep // 2:]


# --- output ----------------------------------------------------------------------------------
def render(fig_or_draw, spec: FigureSpec, path: str | os.PathLike, force: bool = False,
           log: Callable[[str], None] | None = None) -> Path:
    """Write a feature figure (or the result of a zero-argument drawing function) atomically, as
    the attention figures are written (:func:`~steve_qt.core.figures.attention.write_figure_file`)."""
    from .attention import write_figure_file

    return write_figure_file(fig_or_draw, spec, path, force, log)


def feature_name(feature: int, site: str, sae_dir: str | os.PathLike | None = None) -> str:
    """How figures name a feature: "SAE feature F (SITE, DIR)" or "SITE unit F"."""
    if sae_dir is not None:
        return f"SAE feature {feature} ({site}, {Path(sae_dir).name})"
    return f"{site} unit {feature}"


# --- the data of the two figures --------------------------------------------------------------
def feature_values(acts, feature: int, sae, where: str) -> np.ndarray:
    """(T,) the feature over the rows of ``acts`` (T, D): column F, or the SAE's latent F."""
    if sae is not None:
        if feature >= sae.d_sae:
            raise SteveError(f"feature {feature} does not exist: the SAE has latents 0 to "
                             f"{sae.d_sae - 1}")
        return sae.encode(np.asarray(acts, np.float32))[:, feature]
    if feature >= acts.shape[1]:
        raise SteveError(f"feature {feature} does not exist: {where} has dimensions 0 to "
                         f"{acts.shape[1] - 1}")
    return np.asarray(acts[:, feature], dtype=np.float32)


def file_feature_data(adapter, utterance, feature: int, site: str | None = None,
                      sae_dir: str | os.PathLike | None = None,
                      window: int = 0) -> tuple[FeatureFigureData, tuple[float, float]]:
    """The data of :func:`draw_feature_figure` for one utterance, and the time span of its
    analysed frames (one 30 s window of long audio). ``adapter`` and ``utterance`` may be
    functions giving them (called once the SAE, then the site, are checked, so that bad
    arguments fail before the model loads); the feature is a dimension of ``site`` or, with
    ``sae_dir``, the SAE's latent (its site by default)."""
    from ..features.sae import check_site, load_sae
    from ..models.adapters import Adapter
    from ..models.pipeline import Utterance
    from ..models.sites import validate_sites

    if feature < 0:
        raise SteveError(f"--feature must be 0 or more, not {feature}")
    sae = load_sae(sae_dir) if sae_dir else None
    site_name = site or (sae.hook_name if sae is not None else None)
    if not site_name:
        raise SteveError("give --site SITE (or an --sae that names its site)")
    if sae is not None and sae.hook_name and site_name != sae.hook_name:
        raise SteveError(f"the SAE in {sae_dir} reads {sae.hook_name}, not {site_name}")
    if not isinstance(adapter, Adapter):
        adapter = adapter()
    chosen = validate_sites([site_name], adapter.list_sites())[0]
    if chosen.axis != "frames":
        raise SteveError(f"{chosen.name} has token rows; feature figures need an audio-frames site")
    if sae is not None:
        check_site(sae, chosen.name, chosen.dim, sae_dir)
    utt = utterance if isinstance(utterance, Utterance) else utterance()
    ex = adapter.extract(utt.audio.samples, components=(), window=window, sites=(chosen.name,))
    values = feature_values(ex.activations[chosen.name], feature, sae, chosen.name)
    track = FeatureTrack(values, ex.frame_grid, feature_name(feature, chosen.name, sae_dir))
    a, b = ex.frame_grid.extent_seconds(len(values))
    return (FeatureFigureData(utt.audio.samples, utt.audio.rate, track, utt.alignment),
            (max(0.0, a), min(b, utt.audio.duration)))


def index_examples(idx, feature: int, n: int, context_s: float = 0.4,
                   cache_dir: str | os.PathLike | None = None) -> tuple[list[Example], str]:
    """The ``n`` top examples of ``feature`` in a FeatureIndex as :func:`draw_examples_figure`
    draws them (each its file's audio ``context_s`` either side of the peak, the feature over
    the file's frames from the activation cache), and the feature's name."""
    from ..features.actcache import file_activations
    from ..features.sae import load_sae
    from ..models.pipeline import open_utterance

    if feature < 0:
        raise SteveError(f"--feature must be 0 or more, not {feature}")
    if n < 1:
        raise SteveError(f"--examples must be at least 1, not {n}")
    meta = idx.meta
    sae = load_sae(meta["sae"]) if meta.get("sae") else None
    name = feature_name(feature, meta["site"], meta.get("sae"))
    examples = []
    for e in list(idx.top(feature))[:n]:
        path = idx.audio_path(e)
        if not path.is_file():
            raise SteveError(f"the index's file {e.file} is gone from {idx.corpus} (moved? "
                             "rebuild the index)", idx.path)
        utt = open_utterance(path)
        fa = file_activations(path, meta["model"], meta["site"], cache_dir, audio=utt.audio)
        entry = _entry_of(fa.entries, e.frame)
        values = feature_values(entry.acts.astype(np.float32), feature, sae, meta["site"])
        track = FeatureTrack(values, entry.grid(), name)
        rate = utt.audio.rate
        a = max(0.0, e.time_s - context_s)
        b = min(utt.audio.duration, e.time_s + context_s)
        clip = utt.audio.samples[int(a * rate):int(np.ceil(b * rate))]
        phones = list(utt.alignment.tiers["phones"].intervals) \
            if utt.alignment is not None and "phones" in utt.alignment.tiers else []
        examples.append(Example(clip, rate, a, track, e.time_s, e.activation, path.name, phones))
    return examples, name


def _entry_of(entries, frame: int):
    """The window entry holding concatenated row ``frame``."""
    first = 0
    for entry in entries:
        if frame < first + entry.acts.shape[0]:
            return entry
        first += entry.acts.shape[0]
    raise SteveError(f"frame {frame} lies beyond the file's activations (the audio changed? "
                     "rebuild the index)")
