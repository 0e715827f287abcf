"""An audio device that goes away mid-play: the player stops with a message, nothing hangs.

The unit tests drive ``Player`` with a fake stream (the ``stream_factory`` seam) whose callback
the test calls by hand; the window test feeds the same fake to the window's player; the last
test plays through the real ALSA file device with a file-size limit, so that the device's
writes fail part-way through the interval.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time

import numpy as np
import pytest

from steve_qt.core.speech import playback
from steve_qt.core.errors import SteveError
from steve_qt.core.speech.playback import LOST, Player

from test_gui_playback import alsa_home, run_probe

RATE = 16000


class DeviceGone(Exception):
    """Stands in for sounddevice.PortAudioError."""


class FakeStream:
    """The parts of sounddevice.OutputStream the player uses; the test drives the callback."""

    def __init__(self, *, samplerate, channels, dtype, device, blocksize, callback,
                 finished_callback):
        self.channels = channels
        self.callback = callback
        self.finished_callback = finished_callback
        self._active = False
        self.active_raises = False
        self.abort_blocks = threading.Event()  # set: abort() hangs until released
        self.release = threading.Event()
        self.closed = False
        self.latency = 0.0
        self.time = 0.0

    @property
    def active(self) -> bool:
        if self.active_raises:
            raise DeviceGone("Unanticipated host error")
        return self._active

    def start(self) -> None:
        self._active = True

    def abort(self) -> None:
        if self.abort_blocks.is_set():
            self.release.wait(30)
        self._active = False

    def close(self) -> None:
        self.closed = True

    def pull(self, frames: int = 256) -> np.ndarray:
        """One PortAudio callback; at the end of the buffer the stream ends as PortAudio would."""
        import sounddevice as sd

        out = np.full((frames, self.channels), np.nan, np.float32)
        try:
            self.callback(out, frames, None, None)
        except sd.CallbackStop:
            self._active = False
            self.finished_callback()
        return out

    def vanish(self) -> None:
        """The device is unplugged: PortAudio ends the stream early."""
        self._active = False
        self.finished_callback()


class Factory:
    def __init__(self, fail: Exception | None = None):
        self.fail = fail
        self.streams: list[FakeStream] = []

    def __call__(self, **kw) -> FakeStream:
        if self.fail is not None:
            raise self.fail
        self.streams.append(FakeStream(**kw))
        return self.streams[-1]


def tone(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[:, None]


def test_stream_ending_early_stops_the_player_with_a_message():
    f = Factory()
    p = Player(stream_factory=f)
    x = tone(1.0)
    assert p.play(x, RATE, [(0.0, 1.0)]) == pytest.approx(1.0)
    s = f.streams[0]
    got = np.concatenate([s.pull() for _ in range(4)])
    np.testing.assert_array_equal(got[:, 0], x[:1024, 0])
    assert p.playing and p.poll() is None and p.position() is not None
    s.vanish()
    msg = p.poll()
    assert msg is not None and msg.startswith(LOST + " ("), msg
    assert "0.06 of 1.00 s" in msg  # 1024 of 16000 frames handed over
    assert p.last_error == msg
    assert s.closed and not p.playing and not p.finished()
    assert p.position() is None and p.buffer_position() is None
    assert p.poll() is None  # reported once
    p.stop()  # harmless afterwards


def test_inactive_stream_without_finished_callback_is_noticed():
    f = Factory()
    p = Player(stream_factory=f)
    p.play(tone(), RATE, [(0.0, 1.0)])
    f.streams[0].pull()
    f.streams[0]._active = False  # no finished_callback at all
    msg = p.poll()
    assert msg is not None and msg.startswith(LOST) and "s left" in msg


def test_portaudio_error_from_the_stream_is_caught():
    f = Factory()
    p = Player(stream_factory=f)
    p.play(tone(), RATE, [(0.0, 1.0)])
    s = f.streams[0]
    s.active_raises = True
    assert not p.playing  # no exception escapes
    assert not p.finished()
    msg = p.poll()
    assert msg is not None and "DeviceGone" in msg and "host error" in msg
    assert s.closed


def test_callbacks_stop_coming(monkeypatch):
    monkeypatch.setattr(playback, "STALL_S", 0.1)
    f = Factory()
    p = Player(stream_factory=f)
    p.play(tone(), RATE, [(0.0, 1.0)])
    f.streams[0].pull()
    assert p.poll() is None
    time.sleep(0.2)
    msg = p.poll()
    assert msg is not None and "no audio callback" in msg


def test_a_stuck_abort_does_not_block_the_caller(monkeypatch):
    monkeypatch.setattr(playback, "RELEASE_TIMEOUT_S", 0.2)
    f = Factory()
    p = Player(stream_factory=f)
    p.play(tone(), RATE, [(0.0, 1.0)])
    s = f.streams[0]
    s.abort_blocks.set()
    s.active_raises = True
    t0 = time.monotonic()
    assert p.poll() is not None
    assert time.monotonic() - t0 < 1.0
    s.release.set()


def test_start_failure_and_missing_device_raise_steve_error():
    class BadStart(Factory):
        def __call__(self, **kw):
            s = super().__call__(**kw)
            s.start = lambda: (_ for _ in ()).throw(DeviceGone("device unavailable"))
            return s

    f = BadStart()
    p = Player(stream_factory=f)
    with pytest.raises(SteveError, match="audio output failed at 16000 Hz"):
        p.play(tone(), RATE, [(0.0, 1.0)])
    assert f.streams[0].closed and not p.playing
    p = Player(stream_factory=Factory(fail=DeviceGone("no default output device")))
    with pytest.raises(SteveError, match="no audio output device"):
        p.play(tone(), RATE, [(0.0, 1.0)])


def test_after_the_device_vanished_play_opens_a_new_stream_and_plays_to_the_end():
    f = Factory()
    p = Player(stream_factory=f)
    x = tone(0.5)
    p.play(x, RATE, [(0.0, 0.5)])
    f.streams[0].pull()
    f.streams[0].vanish()
    assert p.poll().startswith(LOST)
    f.fail = DeviceGone("no default output device")  # still unplugged
    with pytest.raises(SteveError, match="no audio output device"):
        p.play(x, RATE, [(0.0, 0.5)])
    f.fail = None  # plugged back in
    p.play(x, RATE, [(0.1, 0.3)])
    s = f.streams[-1]
    assert len(f.streams) == 2 and s is not f.streams[0]
    got = []
    while s.active:
        got.append(s.pull())
        assert p.poll() is None
    played = np.concatenate(got)[:, 0]
    n = int(0.2 * RATE)
    np.testing.assert_array_equal(played[:n], x[int(0.1 * RATE):int(0.3 * RATE), 0])
    assert not played[n:].any()
    assert p.finished() and p.last_error is None


def test_window_shows_the_message_and_tab_tries_again(window, dark_suit, qtbot):
    from PyQt6 import QtCore

    f = Factory()
    window.playback.player = Player(stream_factory=f)
    window.opener.open_audio(dark_suit)
    heads = []
    window.doc.events.playhead.connect(lambda e: heads.append(e.value))
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Tab)
    assert window.playback.timer.isActive() and len(f.streams) == 1
    f.streams[0].pull(1024)
    qtbot.waitUntil(lambda: any(h is not None for h in heads), timeout=2000)
    f.streams[0].vanish()
    qtbot.waitUntil(lambda: not window.playback.timer.isActive(), timeout=2000)
    assert window.status_bar.message_label.text().startswith(LOST), window.status_bar.message_label.text()
    assert window.doc.nav.playhead is None, "the playback cursor is gone"
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Tab)  # tries again
    assert len(f.streams) == 2 and window.playback.timer.isActive()
    assert window.status_bar.message_label.text().startswith("Playing")
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Escape)
    assert not window.playback.timer.isActive()


def _limit_file_size(limit: int):
    def setup() -> None:  # in the child: writes past `limit` bytes fail with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return setup


def test_real_device_failing_mid_play(tmp_path, dark_suit, monkeypatch):
    """The ALSA file device's writes fail after 2 KiB (512 float32 frames) of the vowel."""
    import subprocess

    home, raw = alsa_home(tmp_path)
    real_run = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **kw: real_run(
        *a, preexec_fn=_limit_file_size(2048), **kw))
    t0 = time.monotonic()
    got = run_probe(home, dark_suit, nth_vowel=2)  # asserts exit status 0 within its timeout
    assert got["started"]
    assert got["message_after"].startswith(LOST + " ("), got["message_after"]
    a, b, _ = got["interval"]
    assert 0 < got["frames_written"] < round((b - a) * got["rate"])
    assert raw.stat().st_size <= 2048
    assert time.monotonic() - t0 < 120
    assert os.path.exists(raw)
