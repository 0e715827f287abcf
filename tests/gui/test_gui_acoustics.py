"""View > Acoustics: Praat's pitch, formants and intensity over the spectrogram, computed off the
GUI thread; hover gives the values; silence says so in the status bar."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6 import QtWidgets

from gui_helpers import ARTIFACTS, drag_view, write_tone
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
    acts = {n: win.registry.get(f"acoustics:{n}") for n in ("pitch", "formants", "intensity")}
    assert all(a.isCheckable() for a in acts.values())
    assert not any(a.isChecked() for a in acts.values())  # off until asked for
    assert win.acoustics.pitch_curve.getData()[0] is None or \
        len(win.acoustics.pitch_curve.getData()[0]) == 0
    win.doc.attention.set_spectrogram("broadband")
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
    win.doc.nav.set_hover((t, None))
    v = sample_tracks(tracks, np.array([t]))
    text = win.acoustics.hover_text.textItem.toPlainText()
    assert f"F0 {v['f0'][0]:.0f} Hz" in text and f"F2 {v['f2'][0]:.0f} F3" in text
    assert "dB" in text
    ARTIFACTS.mkdir(exist_ok=True)
    win.grab().save(str(ARTIFACTS / "window_acoustics_1280x900.png"))
    win.resize(1600, 1000)
    win.fit_docks()
    QtWidgets.QApplication.processEvents()
    win.acoustics.redraw()
    win.grab().save(str(ARTIFACTS / "window_acoustics_1600x1000.png"))
    acts["pitch"].setChecked(False)
    assert len(win.acoustics.pitch_curve.getData()[0] or []) == 0
    assert not win.views.spec.getAxis("right").isVisible()


def test_silence_says_so(window, qtbot, tmp_path):
    path = tmp_path / "silence.wav"
    import soundfile as sf

    sf.write(path, np.zeros(16000, np.float32), 16000)
    window.opener.open_audio(path)
    window.registry.get("acoustics:pitch").setChecked(True)
    qtbot.waitUntil(lambda: window.acoustics.current() is not None, timeout=60000)
    assert "undefined throughout: f0" in window.doc.nav.message
    short = write_tone(tmp_path / "short.wav", 0.02)
    window.opener.open_audio(short)
    qtbot.waitUntil(lambda: "Acoustics: no tracks" in (window.doc.nav.message or ""), timeout=60000)
    assert "shorter than Praat's analysis window" in window.doc.nav.message
    assert window.acoustics.current() is None


def test_find_box_jumps_to_the_feature_most_correlated(window, fake_acoustic_index):
    box = window.features.panel.find
    box.setText("f2")
    box.returnPressed.emit()
    assert "open a feature index built with --acoustics" in window.doc.nav.message
    window.doc.features.index = fake_acoustic_index
    box.setText("f2")
    box.returnPressed.emit()
    top = fake_acoustic_index.acoustic_top("f2", 5)
    assert window.doc.features.feature == top[0][0]
    assert window.doc.nav.message.startswith("most correlated with f2 (")
    assert f"{top[0][0]} (r {top[0][1]:+.2f})" in window.doc.nav.message


@pytest.fixture
def fake_acoustic_index(tmp_path, monkeypatch):
    """A real index built with --acoustics over synthetic vowels by the stand-in model."""
    import soundfile as sf

    from steve_qt.cli import main
    from steve_qt.core.features.index import FeatureIndex
    from steve_qt.core.models import pipeline
    from test_feature_index import SITE, FakeAdapter
    from test_index_acoustics import glide

    monkeypatch.setitem(pipeline._ADAPTERS, "fake", FakeAdapter())
    root = tmp_path / "c"
    root.mkdir()
    for i in range(3):
        sf.write(root / f"v{i}.wav", glide(100 + 30 * i, 160, 600, 1400 + 200 * i, 1.0, i),
                 16000, subtype="FLOAT")
    out = tmp_path / "idx"
    assert main(["features", "index", str(root), "--site", SITE, "--model", "fake", "--out",
                 str(out), "--jobs", "1", "--cache", str(tmp_path / "cache"), "--acoustics"]) == 0
    return FeatureIndex.open(out)


def test_a_drag_over_the_tracks_still_selects_a_span(loaded, qtbot):
    """The overlay's boxes lie over the spectrogram: drags and clicks must reach the
    spectrogram's own box (a pyqtgraph ViewBox accepts every drag it is offered)."""
    win = loaded
    for name in ("pitch", "formants", "intensity"):
        win.registry.get(f"acoustics:{name}").setChecked(True)
    tracks_shown(win, qtbot)
    drag_view(win, win.views.spec, 0.5, 1.25, 40, qtbot)
    sel = win.doc.nav.selection
    assert sel is not None and sel == pytest.approx((0.5, 1.25), abs=0.01)
    for name in ("pitch", "formants", "intensity"):
        win.registry.get(f"acoustics:{name}").setChecked(False)
