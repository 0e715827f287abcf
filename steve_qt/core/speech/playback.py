"""Playback through sounddevice: an OutputStream at the file's own rate, fed by a callback.

``Player.play(samples, rate, spans)`` returns at once; the PortAudio thread pulls blocks from the
prepared buffer. ``Player.position()`` says which file time is at the speaker now, from the
stream's clock (the DAC time of the block being played) or, when the device gives no clock,
from the frames written minus the output latency; a GUI timer polls it to move a cursor.

With no audio device (or no PortAudio library) ``play`` raises SteveError with a message the
GUI shows in its status bar; nothing else depends on playback. ``sounddevice`` is imported on
first use, so that PortAudio reads the ALSA configuration of the moment (tests point ``HOME`` at
an ``.asoundrc`` whose default device writes to a file).

A device that goes away mid-play (the stream ends before all frames were handed over, a
PortAudioError from the stream, or no callback for ``STALL_S``) is noticed by ``poll()``, which
the GUI timer calls: the player releases the stream without blocking the caller for more than
``RELEASE_TIMEOUT_S`` and reports "Playback stopped: the audio device went away (...)"; the next
``play`` opens a device afresh. Output underflows alone are counted, not fatal (a busy machine
causes them with the device still there).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import SteveError
from ..frames import samples_to_seconds, seconds_to_samples

GAP_S = 0.15  # silence between the spans of one play request
STALL_S = 2.0  # no callback for this long while playing: the device is gone
RELEASE_TIMEOUT_S = 1.0  # longest the caller waits for abort()+close() of a stream
LOST = "Playback stopped: the audio device went away"

StreamFactory = Callable[..., Any]  # sounddevice.OutputStream's keywords -> a stream-like object


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


def import_sounddevice(what: str = "playback"):
    """The sounddevice module; SteveError naming ``what`` needs it when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library missing
        raise SteveError(f"no audio {what}: PortAudio is not installed ({exc}); on Debian/Ubuntu "
                         "install libportaudio2") from exc
    return sd


class Player:
    """One playback at a time; thread-safe against the PortAudio callback."""

    def __init__(self, device: int | str | None = None, blocksize: int = 0,
                 stream_factory: StreamFactory | None = None):
        """``stream_factory`` replaces ``sounddevice.OutputStream`` (tests inject fakes); with it,
        the device query is skipped and any exception it raises means "no audio output device".
        """
        self.device = device
        self.blocksize = blocksize
        self.stream_factory = stream_factory
        self._stream = None
        self._lost: str | None = None  # set by the PortAudio thread when the stream died early
        self._last_callback = 0.0  # time.monotonic() of the last callback (or of the start)
        self.underflows = 0
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
        if s is None:
            return False
        try:
            return bool(s.active)
        except Exception:  # PortAudioError: the device went away
            return False

    def check_device(self) -> str | None:
        """None when an output device exists, else the reason there is none."""
        try:
            sd = import_sounddevice()
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
        buf = self._fit_channels(buf)
        with self._lock:
            self._buf, self._segments, self._rate = buf, segments, int(rate)
            self._pos = self._block_pos = 0
            self._block_dac = 0.0
            self._lost = None
        stream = self._open_stream(int(rate), buf.shape[1])
        try:
            stream.start()
        except Exception as exc:
            _release(stream)
            self.last_error = f"audio output failed at {rate} Hz ({exc})"
            raise SteveError(self.last_error) from exc
        self._last_callback = time.monotonic()  # the stall clock starts now
        self._stream = stream
        self.last_error = None
        return len(buf) / rate

    def _fit_channels(self, buf: np.ndarray) -> np.ndarray:
        """Mix (n, channels) down to mono when the output device has fewer channels."""
        if self.stream_factory is not None:
            return buf
        sd = import_sounddevice()
        try:
            info = sd.query_devices(self.device, kind="output")
        except Exception as exc:
            self.last_error = f"no audio output device ({exc})"
            raise SteveError(self.last_error) from exc
        max_ch = int(info.get("max_output_channels", buf.shape[1]) or buf.shape[1])
        if buf.shape[1] > max_ch:
            return np.ascontiguousarray(buf.mean(axis=1, keepdims=True))
        return buf

    def _open_stream(self, rate: int, channels: int):
        factory = self.stream_factory or import_sounddevice().OutputStream
        holder: list = []

        def finished() -> None:  # PortAudio thread, after the stream ended for any reason
            with self._lock:
                early = self._pos < len(self._buf)
                if early and holder and self._stream is holder[0] and self._lost is None:
                    self._lost = (f"the stream ended after {self._pos / self._rate:.2f} of "
                                  f"{len(self._buf) / self._rate:.2f} s")

        try:
            stream = factory(samplerate=rate, channels=channels, dtype="float32",
                             device=self.device, blocksize=self.blocksize,
                             callback=self._callback, finished_callback=finished)
        except SteveError as exc:
            self.last_error = exc.problem
            raise
        except Exception as exc:
            self.last_error = (f"no audio output device ({exc})" if self.stream_factory else
                               f"audio output failed at {rate} Hz ({exc})")
            raise SteveError(self.last_error) from exc
        holder.append(stream)
        return stream

    def stop(self) -> None:
        """Stop at once; waits at most RELEASE_TIMEOUT_S for PortAudio."""
        s, self._stream = self._stream, None
        if s is not None:
            _release(s)

    def poll(self) -> str | None:
        """Check a playing stream (GUI thread); on device loss release it and return the message.

        None while playing fine, after the end, or when nothing plays.
        """
        s = self._stream
        if s is None:
            return None
        reason = self._lost
        if reason is None:
            try:
                active = bool(s.active)
            except Exception as exc:  # PortAudioError
                reason = f"{type(exc).__name__}: {exc}"
            else:
                with self._lock:
                    left = len(self._buf) - self._pos
                if not active and left > 0:
                    reason = f"the stream stopped with {left / self._rate:.2f} s left"
                elif active and time.monotonic() - self._last_callback > STALL_S:
                    reason = f"no audio callback for {STALL_S:.0f} s"
        if reason is None:
            return None
        self.stop()
        self.last_error = f"{LOST} ({reason})"
        return self.last_error

    def close(self) -> None:
        self.stop()

    # --- the PortAudio thread --------------------------------------------------------------------
    def _callback(self, out: np.ndarray, frames: int, time_info, status) -> None:
        self._last_callback = time.monotonic()
        if status and getattr(status, "output_underflow", False):
            self.underflows += 1
        with self._lock:
            pos = self._pos
            n = max(0, min(frames, len(self._buf) - pos))
            out[:n] = self._buf[pos:pos + n]
            out[n:] = 0
            self._block_pos = pos
            self._block_dac = float(getattr(time_info, "outputBufferDacTime", 0.0) or 0.0)
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
        if s is None or self._lost is not None:
            return False
        try:
            active = bool(s.active)
        except Exception:
            return False
        return not active and self._pos >= len(self._buf)


def _release(stream) -> None:
    """abort() and close() ``stream`` in a helper thread; wait at most RELEASE_TIMEOUT_S.

    PortAudio's close can block when the device hangs; then the helper thread is left behind
    (a daemon) rather than the caller.
    """
    def work() -> None:
        for name in ("abort", "close"):
            try:
                getattr(stream, name)()
            except Exception:  # PortAudioError from a vanished device: nothing left to free
                pass

    t = threading.Thread(target=work, name="steve-audio-release", daemon=True)
    t.start()
    t.join(RELEASE_TIMEOUT_S)
