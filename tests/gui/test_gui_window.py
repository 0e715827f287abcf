"""The main window with the real embedded Whisper tiny.en on the bundled samples."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PyQt6 import QtCore, QtGui, QtWidgets
from PyQt6.QtTest import QTest

from gui_helpers import (ARTIFACTS, EXTRACTION_TIMEOUT_MS, assert_map_shows, drag_view,
                         run_steve_qt, write_tone)

Qt = QtCore.Qt


def key(win, k, mod=Qt.KeyboardModifier.NoModifier):
    QTest.keyClick(win.views, k, mod)
    QtWidgets.QApplication.processEvents()


def click_view(win, plot, x: float, y: float, qtbot):
    """A real left click at view coordinates (x, y) of one of the time plots."""
    scene_pt = plot.vb.mapViewToScene(QtCore.QPointF(x, y))
    pt = win.views.mapFromScene(scene_pt)
    qtbot.mouseClick(win.views.viewport(), Qt.MouseButton.LeftButton, pos=pt)
    QtWidgets.QApplication.processEvents()


def shown_rect(item) -> QtCore.QRectF:
    return item.mapRectToParent(item.boundingRect())


# --- end to end: open, extract, switch, zoom ----------------------------------------------------
def test_open_sample_extract_switch_heads_and_zoom(app, qtbot, dark_suit, whisper_adapter,
                                                   monkeypatch, dialogs_seen):
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow()  # runs the embedded model by itself
    qtbot.addWidget(win)
    win.resize(1400, 950)
    win.show()
    win.opener.open_paths([str(dark_suit)])
    # the encoder maps come first (progressive extraction); wait for the whole extraction
    qtbot.waitUntil(lambda: win.doc.attention.maps is not None and not win.doc.attention.extraction.pending
                    and not win.queue.busy, timeout=EXTRACTION_TIMEOUT_MS)
    assert dialogs_seen.errors == []
    maps = win.doc.attention.maps
    assert maps.component == "encoder" and maps.model.startswith("whisper:tiny.en")
    n_frames = maps.num_keys
    assert n_frames == int(np.ceil(win.doc.utterance.audio.samples.size / 320))

    # from now on nothing may run the model again
    calls = []
    monkeypatch.setattr(whisper_adapter, "extract", lambda *a, **k: calls.append(a))
    views = win.views
    for layer_keys, head_keys in ((0, 0), (2, 3), (1, 1)):
        for _ in range(layer_keys):
            key(win, Qt.Key.Key_PageDown)
        for _ in range(head_keys):
            key(win, Qt.Key.Key_BracketRight)
        layer, head = win.doc.attention.layer, win.doc.attention.head
        expect = maps.weights[layer, 0, head].astype(np.float32)
        # rows = queries, columns = keys
        assert_map_shows(views, expect, (0.0, float(expect.max())))
        assert views.map_image.lut.shape == (256, 3)
        assert win.controls.layer.value() == layer and win.controls.head.value() == head
    assert (win.doc.attention.layer, win.doc.attention.head) == (3, 4)  # 0+2+1 PgDn, 0+3+1 ]
    key(win, Qt.Key.Key_PageUp)
    key(win, Qt.Key.Key_BracketLeft)
    assert (win.doc.attention.layer, win.doc.attention.head) == (2, 3)
    key(win, Qt.Key.Key_M)
    assert win.doc.attention.head is None
    mean = maps.weights[2, 0].astype(np.float32).mean(axis=0)
    assert views.map_levels == pytest.approx((0.0, float(mean.max())), rel=1e-6)
    assert_map_shows(views, mean, approx=True)
    assert win.controls.mean.isChecked()
    assert calls == [] and not win.queue.busy

    # the map sits in seconds: key frame i spans [0.02 i, 0.02 (i + 1))
    r = shown_rect(views.map_image)
    assert (r.left(), r.width()) == pytest.approx((0.0, 0.02 * n_frames))
    assert (r.top(), r.height()) == pytest.approx((0.0, 0.02 * n_frames))

    # zoom with keys and the wheel: every time view keeps the same x range
    full = views.x_ranges()[0]
    win.doc.nav.set_cursor(1.0)
    key(win, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    ranges = views.x_ranges()
    assert ranges[0][1] - ranges[0][0] == pytest.approx((full[1] - full[0]) / 2, rel=1e-6)
    assert all(r == pytest.approx(ranges[0], abs=1e-9) for r in ranges)
    assert len(set(views.left_axis_widths())) == 1
    pos = views.mapFromScene(views.wave.vb.mapViewToScene(QtCore.QPointF(1.0, 0.0)))
    wheel = QtGui.QWheelEvent(QtCore.QPointF(pos), QtCore.QPointF(views.mapToGlobal(pos)),
                              QtCore.QPoint(0, 0), QtCore.QPoint(0, 120), Qt.MouseButton.NoButton,
                              Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(views.viewport(), wheel)
    zoomed = views.x_ranges()
    assert zoomed[0][1] - zoomed[0][0] == pytest.approx(0.8 * (ranges[0][1] - ranges[0][0]),
                                                        rel=1e-6)
    assert all(r == pytest.approx(zoomed[0], abs=1e-9) for r in zoomed)
    key(win, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert views.x_ranges()[0] == pytest.approx(full)

    # decoder cross-attention: tokens x time, the transcript's tokens as row labels
    i = win.controls.component.findData("cross")
    win.controls.component.activated.emit(i)
    cross = win.doc.attention.maps
    assert cross.component == "cross" and win.doc.attention.query is not None
    assert views.map_image.image.shape == (cross.num_queries, cross.num_keys)
    ticks = views.map.getAxis("left")._tickLevels[0]
    from steve_qt.gui.time_views import token_label

    assert [t[1] for t in ticks] == [token_label(s) for s in cross.query_labels]
    assert "EOT" in [t[1] for t in ticks]
    r = shown_rect(views.map_image)
    assert (r.top(), r.height()) == pytest.approx((0.0, cross.num_queries))
    win.close()


# --- selection, clicks and the status bar --------------------------------------------------------
def test_click_phone_interval_selects_exactly_it(loaded, qtbot):
    win = loaded
    phones = win.doc.alignment.phones
    iv = [p for p in phones.intervals if p.label][5]
    played = []
    win.views.playRequested.connect(played.append)
    click_view(win, win.views.phones, (iv.start_s + iv.end_s) / 2, 0.5, qtbot)
    assert win.doc.nav.selection == (iv.start_s, iv.end_s)
    assert played == [[(iv.start_s, iv.end_s)]]
    shown = [p.vb for p in win.views.shown_plots()]
    for region in [r for r in win.views.regions if r.getViewBox() in shown]:  # in every view
        assert region.isVisible() and region.getRegion() == pytest.approx((iv.start_s, iv.end_s))
    assert win.views.phone_tier.selected == phones.intervals.index(iv)
    # Ctrl+N zooms to it
    key(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert win.views.x_ranges()[0] == pytest.approx((iv.start_s, iv.end_s))
    # no audio device in this process: the status bar says so, nothing else breaks
    if win.playback.player.check_device() is not None:
        assert "Playback unavailable" in win.status_bar.message_label.text()
        assert win.doc.nav.playhead is None


def test_drag_selects_a_span_and_click_sets_cursor_and_query(loaded, qtbot):
    win = loaded
    views = win.views
    drag_view(win, views.spec, 0.5, 1.25, 40, qtbot)
    sel = win.doc.nav.selection
    assert sel is not None and sel == pytest.approx((0.5, 1.25), abs=0.01)
    click_view(win, views.wave, 2.0, 0.0, qtbot)
    assert win.doc.nav.cursor == pytest.approx(2.0, abs=0.01) and win.doc.nav.selection is None
    # clicking the map chooses the query frame; the profile shows its row
    click_view(win, views.map, 1.0, 0.71, qtbot)
    q = win.doc.attention.query
    assert q == int(0.7 / 0.02)
    x, y = views.profile_curve.getData()
    np.testing.assert_allclose(y, win.doc.attention.maps.weights[0, 0, 0, q].astype(np.float32))
    assert len(x) == len(y) + 1 and x[0] == 0.0 and x[-1] == pytest.approx(0.02 * len(y))


def test_hover_on_the_map_shows_query_key_and_value(loaded, qtbot):
    win = loaded
    views = win.views
    pt = views.mapFromScene(views.map.vb.mapViewToScene(QtCore.QPointF(1.01, 0.81)))
    QTest.mouseMove(views.viewport(), pt)
    qtbot.waitUntil(lambda: "query" in win.status_bar.hover_label.text(), timeout=5000)
    text = win.status_bar.hover_label.text()
    w = float(win.doc.attention.maps.weights[0, 0, 0, 40, 50])
    assert "query 0.810 s (frame 40)" in text and "key 1.010 s (frame 50)" in text
    assert f"weight {w:.4g}" in text
    ph = win.doc.alignment.phones.at(1.01).label
    assert f"phone {ph}" in text


def test_head_overview_click_selects_that_head(loaded, qtbot):
    win = loaded
    grid = win.overview.grid
    box = grid.boxes[(2, 3)]
    win.overview_dock.show()
    pt = grid.mapFromScene(box.mapToScene(box.boundingRect().center()))
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=pt)
    assert (win.doc.attention.layer, win.doc.attention.head) == (2, 3)
    img = box.image.image
    t = win.doc.attention.maps.num_keys
    step = -(-t // 64)  # frames block-averaged to at most 64 a side
    assert img.shape == (-(-t // step),) * 2
    full = win.doc.attention.maps.weights[2, 0, 3].astype(np.float64)
    assert img[0, 0] == pytest.approx(full[:step, :step].mean(), rel=1e-5)
    mean_box = grid.boxes[(1, None)]
    pt = grid.mapFromScene(mean_box.mapToScene(mean_box.boundingRect().center()))
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=pt)
    assert (win.doc.attention.layer, win.doc.attention.head) == (1, None)


def test_play_attended_plays_the_spans_holding_half_the_mass(loaded, monkeypatch):
    win = loaded
    got = []
    monkeypatch.setattr(win.playback.player, "play",
                        lambda samples, rate, spans: got.append((rate, spans)) or 0.1)
    win.doc.attention.set_query(40)
    win.playback.play_attended()
    row = win.doc.attention.maps.weights[0, 0, 0, 40].astype(np.float64)
    (rate, spans), = got
    assert rate == win.doc.utterance.audio.original_rate
    frames = [f for a, b in spans for f in range(int(round(a / 0.02)), int(round(b / 0.02)))]
    # independent check: the chosen frames are the heaviest ones and hold >= half the mass
    assert row[frames].sum() >= 0.5 * row.sum()
    lightest_chosen = row[frames].min()
    others = np.delete(row, frames)
    assert others.max() <= lightest_chosen
    assert len(win.views.attended) == 3 * len(spans)


def test_keys_play_stop_and_zoom_without_a_device(loaded, monkeypatch):
    win = loaded
    got = []
    monkeypatch.setattr(win.playback.player, "play",
                        lambda samples, rate, spans: got.append(spans) or 0.1)
    key(win, Qt.Key.Key_Tab)  # nothing selected: the visible window
    assert got[-1] == [pytest.approx(win.doc.nav.view)]
    win.doc.nav.set_selection((0.3, 0.6))
    key(win, Qt.Key.Key_Tab)
    assert got[-1] == [(0.3, 0.6)]
    key(win, Qt.Key.Key_Space, Qt.KeyboardModifier.ShiftModifier)
    assert got[-1] == [(0.3, 0.6)]
    key(win, Qt.Key.Key_Escape)
    assert win.doc.nav.playhead is None
    key(win, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)  # already all: stays
    assert win.doc.nav.view == pytest.approx((0.0, win.doc.duration))


# --- errors --------------------------------------------------------------------------------------
def test_bad_files_give_a_dialog_and_the_window_keeps_working(window, tmp_path, dialogs_seen,
                                                              dark_suit):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage")
    assert window.opener.open_paths([str(bad)]) == []
    (title, text), = dialogs_seen.errors
    assert str(bad) in text and "not a readable audio file" in text
    assert window.doc.files.entries == []

    # an unreadable alignment beside good audio: dialog, the audio opens without it
    good = write_tone(tmp_path / "tone.wav", 1.0)
    (tmp_path / "tone.phn").write_text("0 800 h#\n800 banana aa\n")
    i = window.opener.open_audio(good)
    assert i == 0 and window.doc.alignment is None
    title, text = dialogs_seen.errors[-1]
    assert str(tmp_path / "tone.phn") in text and "banana" in text

    # the window still opens good files
    j = window.opener.open_audio(dark_suit)
    assert j == 1 and window.doc.alignment.phones is not None
    assert len(dialogs_seen.errors) == 2
    window.doc.set_current(0)
    assert window.doc.utterance.audio.name == "tone.wav"


def test_a_model_that_cannot_load_gives_a_dialog_and_other_files_are_untouched(
        loaded, qtbot, dialogs_seen):
    win = loaded
    win.extraction.auto_extract = True
    whisper_maps = win.doc.attention.maps
    win.doc.attention.set_model("nosuchmodel:x")
    qtbot.waitUntil(lambda: bool(dialogs_seen.errors), timeout=60000)
    title, text = dialogs_seen.errors[0]
    assert "unknown model 'nosuchmodel'" in text and "dark_suit.wav" in text
    assert win.doc.attention.maps is None
    win.doc.attention.set_model("whisper")
    assert win.doc.attention.maps is whisper_maps and not win.queue.busy


def test_unrecognised_textgrid_tiers_ask_which_to_use(window, tmp_path, dialogs_seen):
    wav = write_tone(tmp_path / "u.wav", 1.0)
    (tmp_path / "u.TextGrid").write_text(
        'File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 1\n'
        'tiers? <exists>\nsize = 2\nitem []:\n'
        '    item [1]:\n        class = "IntervalTier"\n        name = "segs"\n'
        '        xmin = 0\n        xmax = 1\n        intervals: size = 2\n'
        '        intervals [1]:\n            xmin = 0\n            xmax = 0.4\n'
        '            text = "a"\n        intervals [2]:\n            xmin = 0.4\n'
        '            xmax = 1\n            text = "b"\n'
        '    item [2]:\n        class = "IntervalTier"\n        name = "lex"\n'
        '        xmin = 0\n        xmax = 1\n        intervals: size = 1\n'
        '        intervals [1]:\n            xmin = 0\n            xmax = 1\n'
        '            text = "ab"\n')
    dialogs_seen.tier_answers.append(("segs", "lex"))
    window.opener.open_audio(wav)
    (path, names, problem), = dialogs_seen.tier_questions
    assert names == ["segs", "lex"] and path.endswith("u.TextGrid")
    al = window.doc.alignment
    assert [iv.label for iv in al.phones.intervals] == ["a", "b"]
    assert [iv.label for iv in al.words.intervals] == ["ab"]
    assert [iv.label for iv in window.views.phone_tier.intervals] == ["a", "b"]


# --- files: recent, drop, list -------------------------------------------------------------------
def test_recent_files_survive_a_restart_and_drop_opens_files(window, app, qtbot, tmp_path,
                                                             dark_suit, _settings_in_tmp):
    from steve_qt.gui import settings
    from steve_qt.gui.main_window import QtMainWindow

    assert settings.settings().fileName().startswith(str(_settings_in_tmp))  # not ~/.config

    a = write_tone(tmp_path / "a.wav", 0.5)
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(a)), QtCore.QUrl.fromLocalFile(str(dark_suit))])
    drop = QtGui.QDropEvent(QtCore.QPointF(100, 100), Qt.DropAction.CopyAction, mime,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert [e.name for e in window.doc.files.entries] == ["a.wav", "dark_suit.wav"]
    assert window.doc.files.current == 0
    assert window.utterances.count() == 2
    window.utterances.setCurrentRow(1)
    assert window.doc.utterance.audio.name == "dark_suit.wav"
    assert window.windowTitle().endswith("dark_suit.wav")

    again = QtMainWindow(auto_extract=False)  # a new window reads the same QSettings
    qtbot.addWidget(again)
    again.recent_menu.aboutToShow.emit()  # as when the menu opens
    names = [act.text() for act in again.recent_menu.actions()]
    assert names[:2] == [str(dark_suit.resolve()), str(a.resolve())]
    again.recent_menu.actions()[1].trigger()
    assert again.doc.utterance.audio.name == "a.wav"
    again.close()


# --- responsiveness ------------------------------------------------------------------------------
def test_closing_during_extraction_ends_cleanly(app, qtbot, tmp_path):
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow()
    qtbot.addWidget(win)
    win.show()
    win.opener.open_paths([str(write_tone(tmp_path / "t.wav", 2.0))])
    qtbot.waitUntil(lambda: win.queue.busy, timeout=10000)
    assert win.status_bar.cancel_button.isVisible()
    win.close()
    assert win.queue._thread.isFinished()


def test_long_audio_offers_30_second_windows(window, tmp_path, qtbot):
    """A 65 s file has three Whisper windows; choosing one shows its maps where they belong."""
    from steve_qt.core.models import pipeline
    from test_gui_document import fake_extraction

    class WindowedFake:
        name, model_id, components, sample_rate = "fakewin", "fakewin", ("encoder",), 16000

        def num_windows(self, n):
            return int(np.ceil(n / 480000))

        def extract(self, audio, components=None, window=0, progress=None, should_cancel=None):
            from steve_qt.core.frames import whisper_grid

            seg = audio[window * 480000:(window + 1) * 480000]
            ex = fake_extraction(len(seg), layers=1, heads=2, seed=window)
            m = ex.maps["encoder"]
            m.query_grid = m.key_grid = whisper_grid(window)
            m.window, m.num_windows = window, self.num_windows(len(audio))
            ex.window, ex.num_windows = m.window, m.num_windows
            return ex

    pipeline._ADAPTERS["fakewin"] = WindowedFake()
    try:
        window.extraction.auto_extract = True
        window.doc.attention.set_model("fakewin")
        window.opener.open_audio(write_tone(tmp_path / "long.wav", 65.0, rate=8000))
        qtbot.waitUntil(lambda: window.doc.attention.maps is not None, timeout=60000)
        assert window.doc.attention.num_windows() == 3
        assert window.isVisible() and window.controls.window_action.isVisible()
        assert window.controls.window.maximum() == 2  # windows 0, 1, 2
        window.controls.window.setValue(2)
        qtbot.waitUntil(lambda: window.doc.attention.maps is not None, timeout=60000)
        m = window.doc.attention.maps
        assert m.window == 2 and window.doc.attention.window == 2
        r = shown_rect(window.views.map_image)
        assert r.left() == pytest.approx(60.0) and r.width() == pytest.approx(0.02 * 250)
        assert window.doc.nav.view[0] >= 60.0 - 1e-9  # the view moved to the window
    finally:
        del pipeline._ADAPTERS["fakewin"]


# --- the screenshot ------------------------------------------------------------------------------
def test_screenshot_of_the_main_window(loaded, qtbot):
    win = loaded
    win.doc.attention.set_query(win.doc.attention.default_query())
    win.resize(1400, 950)
    QtWidgets.QApplication.processEvents()
    pt = win.views.mapFromScene(win.views.map.vb.mapViewToScene(QtCore.QPointF(1.2, 0.9)))
    QTest.mouseMove(win.views.viewport(), pt)
    QtWidgets.QApplication.processEvents()
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / "main_window.png"
    pix = win.grab()
    assert pix.save(str(out))
    img = pix.toImage()
    assert img.width() >= 1000 and img.height() >= 700
    colours = {img.pixel(x, y) for x in range(0, img.width(), 37) for y in range(0, img.height(), 29)}
    assert len(colours) > 50  # not blank


def test_values_scale_and_colours_change_only_the_map(loaded):
    from steve_qt.core.state.document import display_image
    from steve_qt.gui.colors import lut

    win = loaded
    m = win.doc.attention.maps
    views = win.views
    win.doc.attention.set_layer(3)
    win.doc.attention.set_head(2)
    win.doc.attention.set_kind("scores")
    s = m.scores[3, 0, 2].astype(np.float32)
    assert_map_shows(views, s, (float(s.min()), float(s.max())))
    win.doc.attention.set_kind("weights")
    w = m.weights[3, 0, 2].astype(np.float32)
    for scale in ("row", "log"):
        win.doc.attention.set_scale(scale)
        expect, levels = display_image(w, "weights", scale)
        assert_map_shows(views, expect, levels, approx=True)
    assert views.map_levels[1] == pytest.approx(np.log10(w.max()), rel=1e-6)
    win.doc.attention.set_colormap("magma")
    np.testing.assert_array_equal(views.map_image.lut, lut("magma"))
    assert win.controls.cmap.currentText() == "magma"


def test_dropping_a_textgrid_replaces_the_alignment_of_the_shown_file(window, tmp_path,
                                                                     dark_suit):
    import shutil

    wav = tmp_path / "x.wav"
    shutil.copy(dark_suit, wav)  # no alignment beside this copy
    window.opener.open_audio(wav)
    assert window.doc.alignment is None and window.views.phone_tier.intervals == []
    window.opener.open_paths([dark_suit.with_suffix(".TextGrid")])
    al = window.doc.alignment
    assert al is not None and len(al.phones.intervals) > 10
    assert [iv.label for iv in window.views.phone_tier.intervals] == \
        [iv.label for iv in al.phones.intervals]


def test_steve_qt_command_line_opens_the_files_in_the_window(dark_suit, tmp_path):
    """``steve-qt A.wav B.wav`` (cli.main -> gui.app.run_gui) shows both files. It runs and quits
    the application's event loop, so it runs in its own process: after a quit event loop in this
    session, queued calls from worker threads stopped arriving (test_gui_empty then waited for
    its spectrogram forever)."""
    other = write_tone(tmp_path / "b.wav", 0.5)
    seen = run_steve_qt(["--no-extract", str(dark_suit), str(other)],
                        ready="len(win.doc.files.entries) >= 2",
                        record='{"names": [e.name for e in win.doc.files.entries], '
                               '"shown": win.doc.utterance.audio.name, '
                               '"auto_extract": win.auto_extract}', home=tmp_path)
    assert seen == {"names": ["dark_suit.wav", "b.wav"], "shown": "dark_suit.wav",
                    "auto_extract": False, "status": 0}
