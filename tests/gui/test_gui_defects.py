"""Regressions seen on real files: what the window shows must agree with the document's state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PyQt6 import QtCore, QtGui, QtWidgets

from gui_helpers import settle

Qt = QtCore.Qt


def _choose(combo: QtWidgets.QComboBox, data) -> None:
    """Choose an item as a user does: the box shows it and emits ``activated``."""
    i = combo.findData(data)
    assert i >= 0, data
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def test_a_refused_value_kind_puts_the_box_back_on_what_the_map_shows(loaded):
    win, doc = loaded, loaded.doc
    doc.attention.set_component("cross")
    settle()
    _choose(win.controls.kind, "value_zeroing")
    settle()
    assert doc.attention.kind == "weights"
    assert win.controls.kind.currentData() == "weights"
    assert "encoder self-attention only" in win.status_bar.message_label.text()


def _screen_pixels(widget: QtWidgets.QWidget) -> QtGui.QImage:
    """What is on screen now (the backing store), not a fresh render as ``grab`` would give."""
    top = widget.window()
    img = top.screen().grabWindow(top.winId()).toImage()
    origin = widget.mapTo(top, QtCore.QPoint(0, 0))
    return img.copy(QtCore.QRect(origin, widget.size()))


def _orange_beside(img: QtGui.QImage, rect: QtCore.QRect) -> int:
    """Orange pixels in the columns just left and right of ``rect`` (where the wide frame's pen
    reaches outside its box), away from the corners a neighbour's frame may reach."""
    n = 0
    for x in (rect.left() - 1, rect.right() + 1):
        for y in range(rect.top() + 5, rect.bottom() - 4):
            c = img.pixelColor(x, y)
            if c.red() > 230 and 110 < c.green() < 170 and c.blue() < 60:
                n += 1
    return n


@pytest.fixture
def own_copy(window, dark_suit, dark_suit_extraction):
    """The window showing dark_suit with a copy of the session's extraction (free to change)."""
    import copy

    ex = copy.deepcopy(dark_suit_extraction[1])
    i = window.opener.open_audio(dark_suit)
    window.doc.set_extraction(i, window.doc.attention.model, 0, ex)
    return window


def test_stepping_layers_in_a_per_layer_measure_moves_the_frame(own_copy, qtbot):
    win, doc = own_copy, own_copy.doc
    maps = doc.attention.maps
    maps.add_measures({"value_zeroing": np.random.default_rng(0).random(
        (maps.num_layers, 1, 1, maps.num_queries, maps.num_keys)).astype(np.float32)})
    doc.attention.set_kind("value_zeroing")
    settle()
    grid = win.overview.grid
    qtbot.wait(50)
    for layer in range(1, 3):
        qtbot.keyClick(win.views, Qt.Key.Key_PageDown)
        settle()
        qtbot.wait(50)
        assert doc.attention.layer == layer
        img = _screen_pixels(grid)
        for (n, h), box in grid.boxes.items():
            rect = grid.mapFromScene(box.sceneBoundingRect()).boundingRect()
            orange = _orange_beside(img, rect)
            if n == layer:
                assert orange > 0, (n, h)
            else:
                assert orange == 0, (n, h, orange)


def test_opening_a_file_keeps_the_chosen_component(loaded, dark_suit, dark_suit_extraction,
                                                   tmp_path):
    import copy
    import shutil

    win, doc = loaded, loaded.doc
    _choose(win.controls.component, "cross")
    assert doc.attention.component == "cross"
    other = shutil.copy(dark_suit, tmp_path / "other.wav")
    i = win.opener.open_audio(other)
    settle()
    full = dark_suit_extraction[1]
    first = copy.copy(full)  # the encoder maps arrive first, the rest later
    first.maps = {"encoder": full.maps["encoder"]}
    doc.set_extraction(i, doc.attention.model, 0, first)
    settle()
    doc.set_extraction(i, doc.attention.model, 0, full)
    settle()
    assert doc.attention.component == "cross"
    assert win.controls.component.currentData() == "cross"
    assert "cross" in win.views.map_title.textItem.toPlainText().lower()


def test_an_empty_transcript_is_said_in_the_whisper_row_and_the_status_bar(
        window, tmp_path, whisper_adapter, qtbot):
    from steve_qt.core.speech.audio import load_audio
    from steve_qt.gui.worker import Job

    import soundfile as sf

    path = tmp_path / "hum.wav"
    t = np.arange(32000) / 16000
    sf.write(str(path), (0.05 * np.sin(2 * np.pi * 50 * t)).astype(np.float32), 16000)
    ex = whisper_adapter.extract(load_audio(path).samples)
    assert ex.transcript.text.strip() == ""  # what this input gives: the premise of the test
    i = window.opener.open_audio(path)
    job = Job(window.doc.files.entries[i], window.doc.attention.model, 0)
    window.queue.finished.emit(job, ex)  # the worker's signal, as when the job ends
    settle()
    views = window.views
    assert views.whisper_words.isVisible()
    labels = [iv.label for iv in views.whisper_tier.intervals]
    assert labels == ["(empty transcript: no words decoded)"]
    assert "transcript is empty" in window.status_bar.message_label.text()


def test_one_file_is_one_row_and_same_named_files_are_told_apart(window, dark_suit, tmp_path):
    import os
    import shutil

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Path(shutil.copy(dark_suit, tmp_path / "a" / "LDC93S1.wav"))
    b = Path(shutil.copy(dark_suit, tmp_path / "b" / "LDC93S1.wav"))
    os.link(a, tmp_path / "same.wav")
    window.opener.open_paths([a])
    window.opener.open_paths([tmp_path / "a" / ".." / "a" / "LDC93S1.wav", tmp_path / "same.wav"])
    settle()
    rows = window.utterances
    assert rows.count() == 1 and rows.item(0).text().startswith("LDC93S1.wav")
    window.opener.open_paths([b])
    settle()
    texts = [rows.item(i).text() for i in range(rows.count())]
    assert len(texts) == 2 and texts[0] != texts[1]
    assert "a/" in texts[0] and "b/" in texts[1]


def test_the_hover_text_is_the_shown_files(loaded, tmp_path, dark_suit):
    import shutil

    win, doc = loaded, loaded.doc
    phone = doc.alignment.phones.intervals[3]
    doc.nav.set_hover(((phone.start_s + phone.end_s) / 2, None))
    assert f"phone {phone.label}" in win.status_bar.hover_label.text()
    bare = shutil.copy(dark_suit, tmp_path / "bare.wav")  # no alignment beside it
    win.opener.open_audio(bare)
    settle()
    assert doc.alignment is None
    assert "phone" not in win.status_bar.hover_label.text() and "word" not in win.status_bar.hover_label.text()


def _fits_or_tip(text: str, width: int, font_metrics, tip: str, pad: int = 0) -> bool:
    return font_metrics.horizontalAdvance(text) + pad <= width or text in tip


def test_every_text_fits_or_has_a_tooltip_at_1280_by_900(loaded, qtbot):
    win, doc = loaded, loaded.doc
    win.resize(1280, 900)
    doc.attention.set_component("cross")
    doc.attention.set_query(doc.attention.default_query())
    from steve_qt.core.frames import whisper_grid

    fv = doc.features
    fv.set_site("encoder.blocks.2.mlp.1")
    rng = np.random.default_rng(0)  # small activations whose means print long ('-1.23e-05')
    acts = (rng.standard_normal((doc.attention.maps.num_keys, 1536)) * 1e-5 - 2e-5).astype(np.float32)
    fv.store(doc.files.current, doc.attention.model, 0, fv.site, acts, whisper_grid(0))
    win.features.raise_()
    qtbot.wait(100)
    settle()
    views = win.views
    # the map title and the profile caption: whole, inside their plots
    for item, plot in ((views.map_title, views.map), (views.profile_text, views.profile)):
        text = item.textItem.toPlainText()
        assert text and item.textItem.boundingRect().width() <= plot.vb.width(), text
    assert views.map_title.textItem.toPlainText().rstrip().endswith("key time \u2192")
    # tier labels: each interval's whole label on hover
    for tier in (views.word_tier, views.phone_tier, views.whisper_tier):
        for iv in tier.intervals:
            if iv.label:
                assert iv.label in tier.tooltip_at((iv.start_s + iv.end_s) / 2)
    # the status message beside the progress bar
    win.status_bar.show_progress(True)
    long = "dark_suit.wav: 3.68 s at 16000 Hz, alignment dark_suit.phn \u2014 " * 3
    doc.nav.message_(long)
    settle()
    lab = win.status_bar.message_label
    assert lab.isVisible() and lab.width() > 0
    assert _fits_or_tip(long, lab.contentsRect().width(), lab.fontMetrics(), lab.toolTip())
    # the features dock's table cells, the phone-matrix box
    top = win.features.panel.top
    assert top.rowCount() > 0
    fm = top.fontMetrics()
    for r in range(top.rowCount()):
        for c in range(top.columnCount()):
            it = top.item(r, c)
            assert _fits_or_tip(it.text(), top.columnWidth(c), fm, it.toolTip(), pad=8), \
                (r, c, it.text())
    box = win.phone_matrix.value
    assert _fits_or_tip(box.currentText(), box.width() - 30, box.fontMetrics(), box.toolTip())


def test_a_refused_window_k_puts_the_slider_back_on_the_models_k(loaded):
    from steve_qt.core.state.experiments import K_STOPS

    win = loaded
    panel, model = win.experiments_panel, win.experiments
    assert model.k is None
    panel.k_layers.setText("nine")  # not a layer list: the run is refused
    panel.k_slider.setValue(K_STOPS.index(5))  # as when the user lets go of the slider
    settle()
    assert "attention window" in win.status_bar.message_label.text()
    assert model.k is None and model.running is None
    assert K_STOPS[panel.k_slider.value()] is None
    assert panel.k_label.text() == "k: off (no window)"
