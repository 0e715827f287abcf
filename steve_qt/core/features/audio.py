"""Listening to a feature (Qt-free): the file under a gain envelope, and a montage of examples.

Gain envelope ("amplify where the feature is active"). With a(f) the feature's activation at
frame f of the file, A = max_f a(f) and the floor g0 = 10^(floor_db / 20) (floor_db = -20 dB by
default, so g0 = 0.1):

    g(f) = g0 + (1 - g0) * clip(a(f) / A, 0, 1)

per frame, then linearly interpolated from the frame centres to every sample time (held
constant before the first and after the last centre). Samples are multiplied by g: full level
where the feature fires hardest, g0 where it does not fire (a <= 0); when A <= 0 everything is at
g0.

Example montage: for each example, the 16 kHz mono audio of its file from ``time_s - pad_s`` to
``time_s + pad_s`` (clipped to the file), one after another with ``gap_s`` of silence between.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..fileio import atomic_path, check_writable, write_csv
from ..frames import FrameGrid, seconds_to_samples

FLOOR_DB = -20.0
PAD_S = 0.25  # Play Examples: each example +- this around its peak
GAP_S = 0.15  # silence between examples


def frame_gains(track: np.ndarray, floor_db: float = FLOOR_DB) -> np.ndarray:
    """(T,) activations -> (T,) gains g0 + (1 - g0) * clip(a / max a, 0, 1)."""
    g0 = 10.0 ** (floor_db / 20.0)
    a = np.asarray(track, dtype=np.float64)
    top = a.max() if a.size else 0.0
    if not top > 0:
        return np.full(a.shape, g0)
    return g0 + (1.0 - g0) * np.clip(a / top, 0.0, 1.0)


def gain_envelope(track: np.ndarray, grid: FrameGrid, num_samples: int, rate: int,
                  floor_db: float = FLOOR_DB) -> np.ndarray:
    """(num_samples,) float32 gain at ``rate`` for a file whose frames are on ``grid``."""
    g = frame_gains(track, floor_db)
    centres = np.asarray(grid.center_seconds(np.arange(len(g))), dtype=np.float64)
    t = np.arange(num_samples, dtype=np.float64) / rate
    return np.interp(t, centres, g).astype(np.float32)


def enveloped(samples: np.ndarray, rate: int, track: np.ndarray, grid: FrameGrid,
              floor_db: float = FLOOR_DB) -> np.ndarray:
    """``samples`` (n,) or (n, channels) times the feature's gain envelope, float32."""
    g = gain_envelope(track, grid, len(samples), rate, floor_db)
    x = np.asarray(samples, dtype=np.float32)
    return (x * (g[:, None] if x.ndim == 2 else g)).astype(np.float32)


@dataclass(frozen=True)
class Piece:
    """Montage samples [buf0, buf0 + n) are file samples from ``t0`` to ``t1`` of example ``row``."""

    row: int
    buf0: int
    n: int
    t0: float
    t1: float


def montage(examples: Sequence, samples_of: Callable[[Path], np.ndarray], rate: int,
            pad_s: float = PAD_S, gap_s: float = GAP_S) -> tuple[np.ndarray, list[Piece]]:
    """Examples' spans (peak +- pad_s) of their files' mono ``rate`` audio, joined with gaps.

    ``samples_of(path)`` returns a file's (n,) float32 samples at ``rate``, or None when it
    cannot be read (that example is left out). Returns the (N,) float32 buffer and its pieces.
    """
    gap = np.zeros(seconds_to_samples(gap_s, rate), np.float32)
    parts: list[np.ndarray] = []
    pieces: list[Piece] = []
    pos = 0
    for row, ex in enumerate(examples):
        x = samples_of(ex.file)
        if x is None:
            continue
        s0 = int(min(max(seconds_to_samples(ex.time_s - pad_s, rate), 0), len(x)))
        s1 = int(min(max(seconds_to_samples(ex.time_s + pad_s, rate), 0), len(x)))
        if s1 <= s0:
            continue
        if parts:
            parts.append(gap)
            pos += len(gap)
        parts.append(np.asarray(x[s0:s1], np.float32))
        pieces.append(Piece(row, pos, s1 - s0, s0 / rate, s1 / rate))
        pos += s1 - s0
    buf = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return buf, pieces


def piece_at(pieces: Sequence[Piece], pos: float) -> Piece | None:
    """The piece playing at buffer sample ``pos`` (in a gap: the one before it)."""
    best = None
    for p in pieces:
        if pos < p.buf0:
            break
        best = p
    return best


def write_montage(wav_path: str | Path, buf: np.ndarray, rate: int, pieces: Sequence[Piece],
                  examples: Sequence, force: bool = False) -> tuple[Path, Path]:
    """The montage as a WAV and, beside it (same stem, .csv), what is where in it."""
    import soundfile as sf

    wav_path = Path(wav_path)
    csv_path = wav_path.with_suffix(".csv")
    check_writable(wav_path, force)
    check_writable(csv_path, force)
    rows = []
    for p in pieces:
        ex = examples[p.row]
        ranged = ex.bin not in (None, 0)  # the index's own rows give top examples bin 0
        rows.append([f"{p.buf0 / rate:.4f}", f"{(p.buf0 + p.n) / rate:.4f}", ex.feature,
                     "range" if ranged else "top", ex.rank, ex.bin if ranged else "", str(ex.file), f"{p.t0:.4f}", f"{p.t1:.4f}",
                     f"{ex.time_s:.4f}", f"{ex.activation:.6g}", ex.phone, ex.word])
    with atomic_path(wav_path, force) as tmp:
        sf.write(str(tmp), buf, rate, subtype="FLOAT", format="WAV")
    write_csv(csv_path, ["start_s", "end_s", "feature", "kind", "rank", "bin", "file",
                         "file_start_s", "file_end_s", "peak_s", "activation", "phone", "word"],
              rows, force=force)
    return wav_path, csv_path
