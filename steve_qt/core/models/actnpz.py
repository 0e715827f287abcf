"""The ``.npz`` file written by ``steve-qt activations`` (schema version 1); read with allow_pickle=False.

One (T, D) float16 array per site, beside the same grid, transcript and alignment keys as the
attention files of ``steve-qt extract`` (``steve_qt.core.models.npzio``):

=====================  ===============  ==================================================
key                    dtype            meaning
=====================  ===============  ==================================================
format                 str              "steve_qt.activations"
format_version         int64            1
sites                  str[S]           site names (module paths), in request order
site_dim               int64[S]         width D of each site
site_axis              str[S]           "frames" (rows = audio frames) or "tokens"
site_layer             int64[S]         block of each site (from 0; -1 for a final norm)
site_kind              str[S]           residual | mlp | ln_post
act:<site>             float16 (T, D)   the activations of site <site> (e.g. act:encoder.blocks.2.mlp.1)
num_frames             int64            rows of every frames site
frame_time_s           float64[T]       centre of each frame in seconds (file timeline)
spf, receptive_field   int64            frame grid: hop and receptive field in samples
frame_offset           int64            sample where frame 0 starts (Whisper: window * 480000)
sample_rate            int64            16000 (the model rate)
num_samples            int64            samples of the analysed audio (the window)
model                  str              model id
window, num_windows    int64            Whisper 30 s window index and count
token_labels           str[Q]           token texts, the rows of tokens sites (else empty)
transcript, tokens,    as in npzio      the model's transcript (only when it ran: tokens sites)
word_start/end/label
<tier>_start/_end      float64          alignment tiers ``phones``, ``words`` (as in npzio)
<tier>_label           str
audio_path             str              the audio file
sae_dir                str              only with ``--sae``: the SAE whose codes ``act:<site>``
                                        holds (its latents, site_dim = d_sae, site_kind "sae")
=====================  ===============  ==================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .adapters import Extraction, Site
from ..errors import SteveError
from ..fileio import read_npz
from ..frames import FrameGrid
from .npzio import _str_array, write_npz

FORMAT = "steve_qt.activations"
FORMAT_VERSION = 1
PREFIX = "act:"


def activation_key(site: str) -> str:
    return PREFIX + site


def activations_to_arrays(extraction: Extraction, sites: Sequence[Site]) -> dict[str, np.ndarray]:
    grid = extraction.frame_grid or FrameGrid(0, 0)
    frame_rows = {extraction.activations[s.name].shape[0] for s in sites if s.axis == "frames"}
    if len(frame_rows) > 1:
        raise SteveError(f"frames sites disagree on the number of frames: {sorted(frame_rows)}")
    num_frames = frame_rows.pop() if frame_rows else 0
    num_samples = extraction.meta.get("num_samples", -1)
    arrays = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "sites": _str_array(s.name for s in sites),
        "site_dim": np.array([s.dim for s in sites], dtype=np.int64),
        "site_axis": _str_array(s.axis for s in sites),
        "site_layer": np.array([-1 if s.layer is None else s.layer for s in sites], dtype=np.int64),
        "site_kind": _str_array(s.kind for s in sites),
        "num_frames": np.array(num_frames),
        "frame_time_s": np.asarray(grid.center_seconds(np.arange(num_frames)), dtype=np.float64)
        if grid.hop else np.zeros(0),
        "spf": np.array(grid.hop),
        "receptive_field": np.array(grid.receptive_field),
        "frame_offset": np.array(grid.offset),
        "sample_rate": np.array(grid.sample_rate),
        "num_samples": np.array(num_samples),
        "model": np.array(extraction.model),
        "window": np.array(extraction.window),
        "num_windows": np.array(extraction.num_windows),
        "token_labels": _str_array(extraction.transcript.token_texts or []),
    }
    for s in sites:
        arrays[activation_key(s.name)] = extraction.activations[s.name].astype(np.float16)
    return arrays


def save_activations(path: str | os.PathLike, extraction: Extraction, sites: Sequence[Site],
                     alignment=None, audio_path: str | os.PathLike | None = None,
                     force: bool = False, extra: dict | None = None) -> Path:
    """Write the activations of ``sites`` (plus grid, transcript, alignment and the ``extra``
    arrays) atomically."""
    arrays = activations_to_arrays(extraction, sites)
    arrays.update(extra or {})
    return write_npz(path, arrays, extraction.transcript, alignment, audio_path, force)


@dataclass
class ActivationFile:
    """What :func:`load_activation_file` returns."""

    sites: list[Site]
    activations: dict[str, np.ndarray]  # site -> float16 (T, D)
    grid: FrameGrid
    raw: dict[str, np.ndarray]


def is_activation_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a readable .npz whose ``format`` says activations."""
    try:
        with np.load(Path(path), allow_pickle=False) as z:
            return "format" in z.files and str(z["format"]) == FORMAT
    except Exception:
        return False


def load_activation_file(path: str | os.PathLike) -> ActivationFile:
    p = Path(path)
    raw = read_npz(p)
    if str(raw.get("format", "")) != FORMAT:
        raise SteveError("not a steve_qt activations file", p)
    sites = [Site(str(n), int(d), str(a), None if int(l) < 0 else int(l), str(k))
             for n, d, a, l, k in zip(raw["sites"], raw["site_dim"], raw["site_axis"],
                                      raw["site_layer"], raw["site_kind"])]
    grid = FrameGrid(int(raw["spf"]), int(raw["receptive_field"]), int(raw["sample_rate"]),
                     int(raw["frame_offset"]))
    acts = {s.name: raw[activation_key(s.name)] for s in sites}
    return ActivationFile(sites, acts, grid, raw)
