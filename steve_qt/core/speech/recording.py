"""Recording from the default input device through sounddevice (Qt-free).

``Recorder.start()`` opens an InputStream (mono, float32, ``RECORD_RATE``) whose callback keeps
every block; ``level()`` is the peak of the latest block (for a meter), ``elapsed()`` the seconds
recorded so far; ``stop()`` closes the stream and returns the take as (n,) float32 samples.
``write_take`` writes a take as a 16-bit PCM WAV named by the time it was made
(``take-YYYYmmdd-HHMMSS.wav``; ``-2``, ``-3``, ... when that name is taken), atomically.

With no input device (or no PortAudio library) ``start`` raises SteveError with a one-line
message the GUI shows in its status bar; nothing else depends on recording. ``sounddevice`` is
imported on first use, so PortAudio reads the ALSA configuration of the moment (tests point
``HOME`` at an ``.asoundrc`` whose default device reads a raw file).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from ..errors import SteveError
from ..fileio import atomic_path
from .playback import import_sounddevice

RECORD_RATE = 16000  # Hz: what the models read, so a take needs no resampling
MAX_RECORD_S = 600.0  # a take stops by itself after this long
TAKE_PREFIX = "take-"


class Recorder:
    """One take at a time; the PortAudio thread appends blocks under a lock."""

    def __init__(self, rate: int = RECORD_RATE, device: int | str | None = None,
                 max_seconds: float = MAX_RECORD_S):
        self.rate = int(rate)
        self.device = device
        self.max_frames = int(max_seconds * self.rate)
        self._stream = None
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._level = 0.0
        self._lock = threading.Lock()
        self._started = 0.0

    @property
    def recording(self) -> bool:
        return self._stream is not None

    def start(self) -> None:
        """Open the default input device and start recording; SteveError if there is none."""
        if self._stream is not None:
            return
        sd = import_sounddevice("recording")
        try:
            sd.query_devices(self.device, kind="input")
            stream = sd.InputStream(samplerate=self.rate, channels=1, dtype="float32",
                                    device=self.device, callback=self._callback)
            stream.start()
        except Exception as exc:  # PortAudioError, ValueError: no default input device
            raise SteveError(f"no audio input device ({exc})") from exc
        with self._lock:
            self._blocks, self._frames, self._level = [], 0, 0.0
        self._started = time.monotonic()
        self._stream = stream

    def _callback(self, indata, frames, time_info, status) -> None:
        block = np.array(indata[:, 0], dtype=np.float32)
        with self._lock:
            room = self.max_frames - self._frames
            if room <= 0:
                return
            block = block[:room]
            self._blocks.append(block)
            self._frames += block.size
            self._level = float(np.abs(block).max()) if block.size else 0.0

    def level(self) -> float:
        """Peak absolute sample of the latest block (0 to 1 for a clean signal)."""
        with self._lock:
            return self._level

    def elapsed(self) -> float:
        """Seconds of audio recorded so far."""
        with self._lock:
            return self._frames / self.rate

    def full(self) -> bool:
        with self._lock:
            return self._frames >= self.max_frames

    def stop(self) -> np.ndarray:
        """Close the stream; the take as (n,) float32 samples at ``rate``."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # a device gone mid-take: keep what arrived
                pass
        with self._lock:
            take = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
            self._blocks = []
        return take


def take_name(when: datetime) -> str:
    return f"{TAKE_PREFIX}{when:%Y%m%d-%H%M%S}.wav"


def write_take(samples: np.ndarray, rate: int, folder: str | Path,
               when: datetime | None = None) -> Path:
    """Write a take as a 16-bit PCM WAV in ``folder`` (made if missing) under a timestamped name
    that no file there has; returns its path."""
    import soundfile as sf

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SteveError(f"cannot make the recordings folder {folder}: {exc}") from exc
    name = take_name(when or datetime.now())
    path, n = folder / name, 1
    while path.exists():
        n += 1
        path = folder / name.replace(".wav", f"-{n}.wav")
    x = np.clip(np.asarray(samples, np.float32), -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), x, int(rate), subtype="PCM_16", format="WAV")
    return path
