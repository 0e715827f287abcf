"""Playback through sounddevice: an OutputStream at the file's own rate, fed by a callback.

``Player.play(samples, rate, spans)`` returns at once; the PortAudio thread pulls blocks from the
prepared buffer. ``Player.position()`` says which file time is at the speaker now, from the
stream's clock (the DAC time of the block being played) or, when the device gives no clock,
from the frames written minus the output latency; a GUI timer polls it to move a cursor.

With no audio device (or no PortAudio library) ``play`` raises SteveError with a message the
GUI shows in its status bar; nothing else depends on playback. ``sounddevice`` is imported on
first use, so that PortAudio reads the ALSA configuration of the moment (tests point ``HOME`` at
an ``.asoundrc`` whose default device writes to a file).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import SteveError
from .frames import samples_to_seconds, seconds_to_samples

GAP_S = 0.15  # silence between the spans of one play request


@dataclass
class Segment:
    """Buffer samples [buf0, buf0 + n) play file samples [file0, file0 + n)."""

    buf0: int
    file0: int
    n: int


def build_program(samples: np.ndarray, rate: int, spans: Sequence[tuple[float, float]],
                  gap_s: float = GAP_S) -> tuple[np.ndarray, list[Segment]]:
    """Cut ``spans`` (seconds) out of ``samples`` (frames, channels) and join them with gaps.

    Returns the (n, channels) float32 buffer to play and where each piece came from.
    """
    x = samples if samples.ndim == 2 else samples[:, None]
    pieces: list[np.ndarray] = []
    segments: list[Segment] = []
    gap = np.zeros((seconds_to_samples(gap_s, rate), x.shape[1]), np.float32)
    pos = 0
    for a, b in spans:
        s0 = int(min(max(seconds_to_samples(a, rate), 0), len(x)))
        s1 = int(min(max(seconds_to_samples(b, rate), 0), len(x)))
        if s1 <= s0:
            continue
        if pieces:
            pieces.append(gap)
            pos += len(gap)
        pieces.append(x[s0:s1])
        segments.append(Segment(pos, s0, s1 - s0))
        pos += s1 - s0
    if not pieces:
        return np.zeros((0, x.shape[1]), np.float32), []
    buf = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return np.ascontiguousarray(buf, dtype=np.float32), segments


def buffer_to_file_seconds(pos: float, segments: Sequence[Segment], rate: int) -> float | None:
    """File time of buffer position ``pos`` (in a gap: the end of the piece before it)."""
    best = None
    for s in segments:
        if pos < s.buf0:
            break
        best = s.file0 + min(pos - s.buf0, s.n)
    return None if best is None else samples_to_seconds(best, rate)


def _import_sounddevice():
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise SteveError(f"no audio playback: PortAudio is not installed ({exc}); on Debian/Ubuntu "
                         "install libportaudio2") from exc
    return sd


class Player:
    """One playback at a time; thread-safe against the PortAudio callback."""

    def __init__(self, device: int | str | None = None, blocksize: int = 0):
        self.device = device
        self.blocksize = blocksize
        self._stream = None
        self._lock = threading.Lock()
        self._buf = np.zeros((0, 1), np.float32)
        self._segments: list[Segment] = []
        self._rate = 0
        self._pos = 0  # buffer frames handed to PortAudio so far
        self._block_pos = 0  # buffer position of the block handed over last
        self._block_dac = 0.0  # stream time when that block reaches the DAC
        self.last_error: str | None = None

    # --- state -----------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        s = self._stream
        return s is not None and bool(s.active)

    def check_device(self) -> str | None:
        """None when an output device exists, else the reason there is none."""
        try:
            sd = _import_sounddevice()
            sd.query_devices(self.device, kind="output")
        except SteveError as exc:
            return str(exc)
        except Exception as exc:  # PortAudioError, ValueError: no default output device
            return f"no audio output device ({exc})"
        return None

    # --- control ---------------------------------------------------------------------------------
    def play(self, samples: np.ndarray, rate: int, spans: Sequence[tuple[float, float]]) -> float:
        """Start playing ``spans`` (seconds) of ``samples`` (frames, channels) at ``rate``.

        Returns the seconds of audio queued. Raises SteveError when there is no device.
        """
        self.stop()
        buf, segments = build_program(samples, rate, spans)
        if len(buf) == 0:
            return 0.0
        sd = _import_sounddevice()
        channels = buf.shape[1]
        try:
            info = sd.query_devices(self.device, kind="output")
        except Exception as exc:
            self.last_error = f"no audio output device ({exc})"
            raise SteveError(self.last_error) from exc
        max_ch = int(info.get("max_output_channels", channels) or channels)
        if channels > max_ch:
            buf = np.ascontiguousarray(buf.mean(axis=1, keepdims=True))
            channels = 1
        with self._lock:
            self._buf, self._segments, self._rate = buf, segments, int(rate)
            self._pos = self._block_pos = 0
            self._block_dac = 0.0
        try:
            stream = sd.OutputStream(samplerate=rate, channels=channels, dtype="float32",
                                     device=self.device, blocksize=self.blocksize,
                                     callback=self._callback)
            stream.start()
        except Exception as exc:
            self.last_error = f"audio output failed at {rate} Hz ({exc})"
            raise SteveError(self.last_error) from exc
        self._stream = stream
        self.last_error = None
        return len(buf) / rate

    def stop(self) -> None:
        s, self._stream = self._stream, None
        if s is not None:
            try:
                s.abort()
            finally:
                s.close()

    def close(self) -> None:
        self.stop()

    # --- the PortAudio thread --------------------------------------------------------------------
    def _callback(self, out: np.ndarray, frames: int, time, status) -> None:
        with self._lock:
            pos = self._pos
            n = max(0, min(frames, len(self._buf) - pos))
            out[:n] = self._buf[pos:pos + n]
            out[n:] = 0
            self._block_pos = pos
            self._block_dac = float(getattr(time, "outputBufferDacTime", 0.0) or 0.0)
            self._pos = pos + n
        if n < frames:
            import sounddevice as sd

            raise sd.CallbackStop

    # --- where are we ----------------------------------------------------------------------------
    def buffer_position(self) -> float | None:
        """Buffer frame at the speaker now, or None when nothing plays."""
        s = self._stream
        if s is None:
            return None
        with self._lock:
            pos, block_pos, dac, rate, total = (self._pos, self._block_pos, self._block_dac,
                                                self._rate, len(self._buf))
        try:
            now = float(s.time)
        except Exception:
            now = 0.0
        if dac > 0 and now > 0:
            p = block_pos + (now - dac) * rate
        else:
            latency = float(s.latency or 0.0)
            p = pos - latency * rate
        return float(min(max(p, 0.0), total))

    def position(self) -> float | None:
        """File time (seconds) at the speaker now, or None when nothing plays."""
        p = self.buffer_position()
        if p is None:
            return None
        return buffer_to_file_seconds(p, self._segments, self._rate)

    @property
    def frames_written(self) -> int:
        return self._pos

    def finished(self) -> bool:
        """True once a started stream has stopped by itself (all frames played)."""
        s = self._stream
        return s is not None and not s.active
