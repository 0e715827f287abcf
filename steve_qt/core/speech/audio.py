"""Audio loading: any soundfile format, rate, bit depth and channel count.

``load_audio`` returns an :class:`Audio` holding the original samples (for playback at the file's
own rate) and a mono float32 16 kHz version for the models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SteveError

MODEL_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".snd")


@dataclass
class Audio:
    path: Path | None
    original: np.ndarray  # (frames, channels) float32 in [-1, 1], at original_rate
    original_rate: int
    samples: np.ndarray  # (n,) float32 mono at rate
    rate: int = MODEL_RATE
    subtype: str = ""  # soundfile subtype of the file, e.g. PCM_16

    @property
    def duration(self) -> float:
        return self.original.shape[0] / self.original_rate

    @property
    def num_channels(self) -> int:
        return self.original.shape[1]

    @property
    def name(self) -> str:
        return self.path.name if self.path else "<array>"


def to_mono(x: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,) by averaging the channels."""
    return x.mean(axis=1, dtype=np.float64).astype(np.float32) if x.ndim == 2 else x


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling (soxr, high quality); identity when the rates agree."""
    if rate_in == rate_out:
        return np.ascontiguousarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float32), rate_in, rate_out, quality="HQ").astype(
        np.float32
    )


def from_array(samples: np.ndarray, rate: int, path: str | os.PathLike | None = None) -> Audio:
    """Wrap samples (frames,) or (frames, channels) at ``rate`` as an Audio."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise SteveError("no audio samples", path)
    if not np.all(np.isfinite(x)):
        raise SteveError("audio contains NaN or infinite samples", path)
    mono = resample(to_mono(x), rate, MODEL_RATE)
    return Audio(Path(path) if path else None, x, int(rate), mono)


def load_audio(path: str | os.PathLike) -> Audio:
    """Read an audio file; raise SteveError naming the file for anything unreadable."""
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise SteveError("file not found", p)
    if p.is_dir():
        raise SteveError("is a folder, not an audio file", p)
    if p.stat().st_size == 0:
        raise SteveError("file is empty (0 bytes)", p)
    try:
        info = sf.info(str(p))
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise SteveError(f"not a readable audio file ({_sf_reason(exc)})", p) from exc
    if info.frames == 0:
        raise SteveError("audio file holds no samples", p)
    if info.format == "WAV":
        _check_wav_data_size(p, info.frames)
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:
        raise SteveError(f"audio data is truncated or corrupt ({_sf_reason(exc)})", p) from exc
    if data.shape[0] == 0:
        raise SteveError("audio file holds no samples", p)
    if data.shape[0] < info.frames:
        raise SteveError(f"audio data is truncated: header says {info.frames} frames, "
                         f"file holds {data.shape[0]}", p)
    audio = from_array(data, int(rate), p)
    audio.subtype = info.subtype or ""
    return audio


def _check_wav_data_size(p: Path, frames: int) -> None:
    """libsndfile reads a WAV cut short as a shorter file; compare with the declared data size.

    A declared size of 0 or 0xFFFFFFFF (streaming recorders) means "unknown" and is accepted.
    """
    import struct

    with open(p, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        size = p.stat().st_size
        while True:
            hdr = fh.read(8)
            if len(hdr) < 8:
                return
            cid, n = hdr[:4], struct.unpack("<I", hdr[4:])[0]
            if cid == b"data":
                have = size - fh.tell()
                if n not in (0, 0xFFFFFFFF) and n > have:
                    raise SteveError(f"audio data is truncated: the header declares {n} bytes of "
                                     f"samples, the file holds {have} ({frames} frames readable)", p)
                return
            fh.seek(n + (n & 1), 1)


def _sf_reason(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    # libsndfile messages start with "Error opening '<path>': "; the path is already named
    if ": " in msg and msg.startswith("Error opening"):
        msg = msg.split(": ", 1)[1]
    return msg.rstrip(".")
