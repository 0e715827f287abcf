"""View > Acoustics: Praat's pitch, formants and intensity over the spectrogram, computed off the
GUI thread; hover gives the values; silence says so in the status bar."""

from __future__ import annotations

import numpy as np
import pytest

from gui_helpers import ARTIFACTS, write_tone
from steve_qt.core.speech.acoustics import audio_tracks, sample_tracks


def tracks_shown(win, qtbot):
    qtbot.waitUntil(lambda: win.acoustics.current() is not None, timeout=60000)
    qtbot.waitUntil(lambda: win.views.spec_image.image is not None, timeout=120000)
    win.acoustics.redraw()
    return win.acoustics.current()


def test_tracks_drawn_over_the_spectrogram(loaded, qtbot):
    win = loaded
    win.resize(1280, 900)
    win.show()
    acts = win.acoustics_actions
    assert set(acts) == {"pitch", "formants", "intensity"}
    assert not any(a.isChecked() for a in acts.values())  # off until asked for
    assert win.acoustics.pitch_curve.getData()[0] is None or \
        len(win.acoustics.pitch_curve.getData()[0]) == 0
    win.doc.set_spectrogram("broadband")
    for name in ("pitch", "formants", "intensity"):
        acts[name].setChecked(True)
    tracks = tracks_shown(win, qtbot)
    want = audio_tracks(win.doc.utterance.audio)
    x, y = win.acoustics.pitch_curve.getData()
    np.testing.assert_array_equal(x, want["f0"].times)
    np.testing.assert_array_equal(y, want["f0"].values)  # NaN: gaps, drawn as breaks
    assert win.views.spec.getAxis("right").isVisible()
    fx, fy = win.acoustics.formants.getData()
    n_defined = sum(int(np.isfinite(want[f"f{k}"].values).sum()) for k in (1, 2, 3))
    assert len(fx) == n_defined
    # broadband spectrogram: the y axis is in Hz
    f1 = want["f1"].values[np.isfinite(want["f1"].values)]
    np.testing.assert_allclose(np.sort(fy)[:5], np.sort(np.concatenate(
        [want[f"f{k}"].values[np.isfinite(want[f"f{k}"].values)] for k in (1, 2, 3)]))[:5])
    assert len(f1)
    # hover: the values at that time
    t = float(want["f0"].times[np.flatnonzero(np.isfinite(want["f0"].values))[10]])
    win.doc.set_hover((t, None))
    v = sample_tracks(tracks, np.array([t]))
    text = win.acoustics.hover_text.textItem.toPlainText()
    assert f"F0 {v['f0'][0]:.0f} Hz" in text and f"F2 {v['f2'][0]:.0f} F3" in text
    assert "dB" in text
    ARTIFACTS.mkdir(exist_ok=True)
    win.grab().save(str(ARTIFACTS / "window_acoustics_1280x900.png"))
    acts["pitch"].setChecked(False)
    assert len(win.acoustics.pitch_curve.getData()[0] or []) == 0
    assert not win.views.spec.getAxis("right").isVisible()


def test_silence_says_so(window, qtbot, tmp_path):
    path = tmp_path / "silence.wav"
    import soundfile as sf

    sf.write(path, np.zeros(16000, np.float32), 16000)
    window.open_audio(path)
    window.acoustics_actions["pitch"].setChecked(True)
    qtbot.waitUntil(lambda: window.acoustics.current() is not None, timeout=60000)
    assert "undefined throughout: f0" in window.doc.message
    short = write_tone(tmp_path / "short.wav", 0.02)
    window.open_audio(short)
    qtbot.waitUntil(lambda: "Acoustics: no tracks" in (window.doc.message or ""), timeout=60000)
    assert "shorter than Praat's analysis window" in window.doc.message
    assert window.acoustics.current() is None
