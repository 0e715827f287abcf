"""Praat's tracks drawn over a spectrogram as Praat draws them: pitch as a blue line with its own
Hz axis on the right, formants as red dots on the spectrogram's frequency axis, intensity as a
yellow line with its own dB axis (further right when pitch is drawn too). The tracks come from
:mod:`steve_qt.core.speech.acoustics` (parselmouth, Praat's defaults)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import SteveError

OVERLAYS = ("pitch", "formants", "intensity")
PITCH_COLOUR = "#0000ff"  # Praat's pitch: blue
FORMANT_COLOUR = "#ff0000"  # Praat's formants: red dots
INTENSITY_COLOUR = "#e6c200"  # Praat's intensity: yellow (darkened a little to read on white)
PITCH_VIEW_HZ = (75.0, 500.0)  # Praat's default pitch view range
INTENSITY_VIEW_DB = (50.0, 100.0)  # Praat's default intensity view range


def parse_overlays(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """"pitch,formants" -> ("pitch", "formants"); SteveError for an unknown name."""
    if not text:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(i.strip().lower() for i in items if i.strip()))
    bad = [o for o in out if o not in OVERLAYS]
    if bad:
        raise SteveError(f"unknown acoustic track {', '.join(bad)}; choose from "
                         f"{', '.join(OVERLAYS)}")
    return out


def draw_acoustics(ax, samples: np.ndarray, rate: int, span: tuple[float, float],
                   which: Sequence[str], y_of_hz: Callable[[float], float],
                   t0: float = 0.0, params=None, right_offset: float = 0.0) -> list[str]:
    """Draw ``which`` tracks of ``samples`` (starting at ``t0`` s of the file) over the
    spectrogram on ``ax`` (whose y axis maps Hz through ``y_of_hz``). Returns notes for the
    figure (tracks undefined throughout, or a sound too short for Praat). ``right_offset``
    (points) moves the tracks' own axes outward, past an axis already on the right."""
    from ..speech.acoustics import compute_tracks

    if not which:
        return []
    try:
        tracks = compute_tracks(np.asarray(samples, dtype=np.float64), rate, params)
    except SteveError as exc:
        return [f"acoustic tracks omitted: {exc.problem if hasattr(exc, 'problem') else exc}"]
    notes = []
    lo, hi = span
    if "formants" in which:
        yv = np.vectorize(y_of_hz, otypes=[float])
        for k in (1, 2, 3):
            tr = tracks[f"f{k}"]
            t = tr.times + t0
            ok = np.isfinite(tr.values) & (t >= lo) & (t <= hi)
            if ok.any():
                ax.scatter(t[ok], yv(tr.values[ok]), s=1.2, color=FORMANT_COLOUR, linewidths=0,
                           zorder=3, rasterized=True)
        if tracks["f1"].defined == 0:
            notes.append("no formants found")
    twins = 0
    if "pitch" in which:
        tr = tracks["f0"]
        axp = ax.twinx()
        if right_offset:
            axp.spines["right"].set_position(("outward", right_offset))
        axp.plot(tr.times + t0, tr.values, color=PITCH_COLOUR, linewidth=1.0, zorder=4)
        vmax = max(PITCH_VIEW_HZ[1], float(np.nanmax(tr.values)) * 1.05) \
            if tr.defined else PITCH_VIEW_HZ[1]
        axp.set_ylim(0, vmax)
        axp.set_xlim(lo, hi)
        axp.set_ylabel("pitch (Hz)", color=PITCH_COLOUR)
        axp.tick_params(axis="y", colors=PITCH_COLOUR)
        axp.spines["right"].set_color(PITCH_COLOUR)
        twins += 1
        if tr.defined == 0:
            notes.append("no pitch found (unvoiced, silence or noise)")
    if "intensity" in which:
        tr = tracks["intensity"]
        axi = ax.twinx()
        if twins or right_offset:
            axi.spines["right"].set_position(("outward", right_offset + 30 * twins))
        axi.plot(tr.times + t0, tr.values, color=INTENSITY_COLOUR, linewidth=1.0, zorder=4)
        axi.set_ylim(*INTENSITY_VIEW_DB)
        axi.set_xlim(lo, hi)
        axi.set_ylabel("intensity (dB)", color=INTENSITY_COLOUR)
        axi.tick_params(axis="y", colors=INTENSITY_COLOUR)
        axi.spines["right"].set_color(INTENSITY_COLOUR)
        if tr.defined == 0:
            notes.append("intensity undefined (digital silence)")
    return notes
