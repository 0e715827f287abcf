"""View > Spectrogram: the model's log-mel or Praat's broadband, computed off the GUI thread."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6 import QtWidgets

from gui_helpers import ARTIFACTS
from steve_qt.core.speech.spectrogram import broadband_spectrogram, mel_spectrogram


def shown_spectrogram(win, qtbot):
    qtbot.waitUntil(lambda: not win.views.spectrograms.busy, timeout=120000)
    qtbot.waitUntil(lambda: win.views.spec_image.image is not None, timeout=10000)
    return win.views.spec_image


def test_menu_switches_between_log_mel_and_broadband(loaded, qtbot):
    win = loaded
    audio = win.doc.utterance.audio
    assert win.doc.attention.spectrogram == "mel" and win.spectrogram_actions["mel"].isChecked()
    image = shown_spectrogram(win, qtbot)
    want = mel_spectrogram(audio.samples, audio.rate)
    np.testing.assert_array_equal(image.image, want.db)
    assert image.levels == pytest.approx(want.levels)
    assert win.views.spec.vb.viewRange()[1] == pytest.approx([0, 80])
    ARTIFACTS.mkdir(exist_ok=True)
    win.grab().save(str(ARTIFACTS / "window_spectrogram_mel.png"))

    win.spectrogram_actions["broadband"].trigger()
    assert win.doc.attention.spectrogram == "broadband"
    image = shown_spectrogram(win, qtbot)
    want = broadband_spectrogram(audio.samples, audio.rate)
    np.testing.assert_array_equal(image.image, want.db)
    assert image.levels == pytest.approx((want.db.max() - 50, want.db.max()))
    y0, y1 = win.views.spec.vb.viewRange()[1]
    assert y0 < 0 < 5000 < y1 < 5020  # 0 to 5 kHz in Hz (half a bin beyond each end)
    ticks = [t for t, _ in win.views.spec.getAxis("left")._tickLevels[0]]
    assert ticks == [0, 1000, 2000, 3000, 4000, 5000]
    win.grab().save(str(ARTIFACTS / "window_spectrogram_broadband.png"))

    win.doc.attention.set_spectrogram("mel")  # the cached one comes back at once, the menu follows
    assert not win.views.spectrograms.busy
    np.testing.assert_array_equal(win.views.spec_image.image, mel_spectrogram(
        audio.samples, audio.rate).db)
    assert win.spectrogram_actions["mel"].isChecked()


def test_a_late_spectrogram_leaves_the_view_alone(loaded, qtbot):
    """The spectrogram arrives from its thread after the view was set: no plot may move."""
    win = loaded
    qtbot.waitUntil(lambda: win.views.spec_image.image is not None, timeout=120000)
    QtWidgets.QApplication.processEvents()
    shown = [p for p in win.views.time_plots if p.isVisible() and p.vb.height() > 1]
    assert win.views.spec in shown and win.views.map in shown
    for plot in shown:
        assert plot.vb.viewRange()[0] == pytest.approx(list(win.doc.nav.view)), plot.name
    win.doc.nav.set_view(0.5, 1.5)
    win.doc.attention.set_spectrogram("broadband")  # arrives later still
    qtbot.waitUntil(lambda: not win.views.spectrograms.busy, timeout=120000)
    QtWidgets.QApplication.processEvents()
    for plot in shown:
        assert plot.vb.viewRange()[0] == pytest.approx([0.5, 1.5]), plot.name
