"""The ``.npz`` file written by ``steve-qt extract`` (schema version 1); read with allow_pickle=False.

=====================  ===============  ==================================================
key                    dtype            meaning
=====================  ===============  ==================================================
format                 str              "steve_qt.attention"
format_version         int64            1
attention              float16          softmax weights, (N layers, 1, M heads, Q, K)
scores                 float16          pre-softmax scores, same shape
padding_mass           float32          (N, M, Q) softmax mass sent to cropped padding keys
norm                   float16          (optional) attention norm, (N, 1, M, Q, K)
value_zeroing          float16          (optional) value zeroing, (N, 1, 1, Q, K), rows sum to 1
grad                   float16          (optional) grad relevance, (N, 1, 1, Q, K), cumulative R
spf                    int64            samples per frame (hop) at sample_rate
receptive_field        int64            samples one frame sees
frame_offset           int64            sample (at sample_rate) where frame 0 of the window starts
sample_rate            int64            16000 (the model rate)
num_samples            int64            samples of the analysed audio (the window) at sample_rate
model                  str              model id
component              str              encoder | cross | decoder
window, num_windows    int64            Whisper 30 s window index and count
query_axis, key_axis   str              "frames" or "tokens"
query_labels           str[Q]           token texts when the query axis is tokens (else empty)
alignment_heads        int64[H, 2]      Whisper (decoder layer, head) pairs used for word timing
text_token_range       int64[2]         query rows [start, end) of the transcript's text tokens
key_labels             str[K]           token texts when the key axis is tokens (else empty)
transcript             str              the model's transcript ("" when none)
tokens                 int64[T]         token ids of the teacher-forced sequence (Whisper)
word_start/end/label   float64/str      the model's word timings (seconds, file timeline)
<tier>_start/_end      float64          alignment intervals in seconds, tiers ``phones``, ``words``
<tier>_label           str              alignment labels ("" = silence)
audio_path             str              the audio file the maps were computed from
=====================  ===============  ==================================================
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .adapters import Extraction, Transcript, Word
from ..attention.maps import AttentionMaps
from ..errors import SteveError
from ..fileio import atomic_path, read_npz
from ..frames import FrameGrid
from ..attention.measures import MEASURES

FORMAT = "steve_qt.attention"
FORMAT_VERSION = 1
TIER_KEYS = ("phones", "words")


def _str_array(items) -> np.ndarray:
    items = [str(s) for s in items]
    return np.array(items, dtype=f"<U{max([1] + [len(s) for s in items])}")


def maps_to_arrays(maps: AttentionMaps) -> dict[str, np.ndarray]:
    grid = maps.key_grid or maps.query_grid or FrameGrid(0, 0, maps.sample_rate)
    measures = {name: maps.measures[name].astype(np.float16) for name in MEASURES
                if name in maps.measures}
    return measures | {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION),
        "attention": maps.weights.astype(np.float16),
        "scores": (maps.scores if maps.scores is not None else np.full_like(maps.weights, np.nan)
                   ).astype(np.float16),
        "padding_mass": maps.padding_mass.astype(np.float32),
        "spf": np.array(grid.hop),
        "receptive_field": np.array(grid.receptive_field),
        "frame_offset": np.array(grid.offset),
        "sample_rate": np.array(maps.sample_rate),
        "num_samples": np.array(maps.num_samples),
        "model": np.array(maps.model),
        "component": np.array(maps.component),
        "window": np.array(maps.window),
        "num_windows": np.array(maps.num_windows),
        "query_axis": np.array("frames" if maps.query_grid else "tokens"),
        "key_axis": np.array("frames" if maps.key_grid else "tokens"),
        "query_labels": _str_array(maps.query_labels or []),
        "key_labels": _str_array(maps.key_labels or []),
        "alignment_heads": np.array(maps.meta.get("alignment_heads", []),
                                    dtype=np.int64).reshape(-1, 2),
        "text_token_range": np.array([maps.meta.get("text_token_start", -1),
                                      maps.meta.get("text_token_end", -1)], dtype=np.int64),
    }


def alignment_to_arrays(alignment) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    if alignment is None:
        return out
    for key in TIER_KEYS:
        tier = alignment.tiers.get(key)
        if tier is None:
            continue
        out[f"{key}_start"] = np.array([iv.start_s for iv in tier.intervals], dtype=np.float64)
        out[f"{key}_end"] = np.array([iv.end_s for iv in tier.intervals], dtype=np.float64)
        out[f"{key}_label"] = _str_array(iv.label for iv in tier.intervals)
    return out


def transcript_to_arrays(tr: Transcript) -> dict[str, np.ndarray]:
    return {
        "transcript": np.array(tr.text or ""),
        "tokens": np.array(tr.tokens, dtype=np.int64),
        "word_start": np.array([w.start_s for w in tr.words], dtype=np.float64),
        "word_end": np.array([w.end_s for w in tr.words], dtype=np.float64),
        "word_label": _str_array(w.text for w in tr.words),
    }


def save_npz(path: str | os.PathLike, extraction: Extraction, component: str,
             alignment=None, audio_path: str | os.PathLike | None = None,
             force: bool = False) -> Path:
    """Write one component of an extraction (plus alignment and transcript) atomically."""
    if component not in extraction.maps:
        raise SteveError(f"model {extraction.model} produced no {component!r} attention "
                         f"(it has: {', '.join(extraction.maps)})")
    return write_npz(path, maps_to_arrays(extraction.maps[component]), extraction.transcript,
                     alignment, audio_path, force)


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], transcript: Transcript,
              alignment=None, audio_path: str | os.PathLike | None = None,
              force: bool = False) -> Path:
    """``arrays`` plus the transcript, alignment and audio path keys, compressed, atomically."""
    arrays = dict(arrays)
    arrays.update(transcript_to_arrays(transcript))
    arrays.update(alignment_to_arrays(alignment))
    arrays["audio_path"] = np.array(str(audio_path) if audio_path else "")
    with atomic_path(path, force) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)


class NpzContents:
    """What :func:`load_npz` returns: the maps, the transcript and the alignment tiers."""

    def __init__(self, maps: AttentionMaps, transcript: Transcript, alignment, audio_path: str,
                 raw: dict[str, np.ndarray]):
        self.maps = maps
        self.transcript = transcript
        self.alignment = alignment
        self.audio_path = audio_path
        self.raw = raw


def load_npz(path: str | os.PathLike) -> NpzContents:
    p = Path(path)
    raw = read_npz(p)
    if str(raw.get("format", "")) != FORMAT:
        raise SteveError("not a steve_qt attention file (no 'format' key)", p)
    try:
        return _contents(raw, p)
    except (KeyError, ValueError) as exc:
        raise SteveError(f"steve_qt attention file is incomplete or inconsistent ({exc})", p) from exc


def _meta(raw: dict[str, np.ndarray]) -> dict:
    meta: dict = {}
    if "alignment_heads" in raw and raw["alignment_heads"].size:
        meta["alignment_heads"] = [[int(a), int(b)] for a, b in raw["alignment_heads"]]
    if "text_token_range" in raw and int(raw["text_token_range"][0]) >= 0:
        meta["text_token_start"], meta["text_token_end"] = map(int, raw["text_token_range"])
    return meta


def _contents(raw: dict[str, np.ndarray], p: Path) -> NpzContents:
    from ..speech.alignment import Alignment, Interval, Tier

    rate = int(raw["sample_rate"])
    grid = FrameGrid(int(raw["spf"]), int(raw["receptive_field"]), rate, int(raw["frame_offset"]))
    q_frames = str(raw["query_axis"]) == "frames"
    k_frames = str(raw["key_axis"]) == "frames"
    scores = raw["scores"]
    maps = AttentionMaps(
        weights=raw["attention"], scores=None if np.isnan(scores).all() else scores,
        padding_mass=raw["padding_mass"], component=str(raw["component"]), model=str(raw["model"]),
        sample_rate=rate, num_samples=int(raw["num_samples"]),
        query_grid=grid if q_frames else None, key_grid=grid if k_frames else None,
        query_labels=None if q_frames else [str(s) for s in raw["query_labels"]],
        key_labels=None if k_frames else [str(s) for s in raw["key_labels"]],
        window=int(raw["window"]), num_windows=int(raw["num_windows"]),
        meta=_meta(raw),
        measures={name: raw[name] for name in MEASURES if name in raw},
    )
    words = [Word(float(a), float(b), str(t)) for a, b, t in
             zip(raw["word_start"], raw["word_end"], raw["word_label"])]
    transcript = Transcript(text=str(raw["transcript"]), tokens=[int(t) for t in raw["tokens"]],
                            token_texts=maps.query_labels or [], words=words)
    tiers = {}
    for key in TIER_KEYS:
        if f"{key}_start" in raw:
            tiers[key] = Tier(key, [Interval(float(a), float(b), str(lab)) for a, b, lab in
                                    zip(raw[f"{key}_start"], raw[f"{key}_end"], raw[f"{key}_label"])])
    alignment = Alignment(tiers=tiers, source=None) if tiers else None
    return NpzContents(maps, transcript, alignment, str(raw["audio_path"]), raw)
