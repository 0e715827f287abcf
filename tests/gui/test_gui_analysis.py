"""Analysis panels on the real tiny.en extraction of dark_suit: phone matrix, head statistics,
rollout in the map view, Whisper DTW word tier. Numbers are checked against steve_qt.core
computed independently of the drawing."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6 import QtCore

from gui_helpers import ARTIFACTS, assert_map_shows, settle
from steve_qt.core.attention import analysis
from steve_qt.core.state.document import display_image
from steve_qt.gui.analysis_panels import thinned


def click_cell(qtbot, plot, row: int, col: int) -> None:
    vb = plot.getPlotItem().vb
    scene = vb.mapViewToScene(QtCore.QPointF(col + 0.5, row + 0.5))
    pos = plot.mapFromScene(scene)
    qtbot.mouseClick(plot.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)


def test_phone_matrix_equals_aggregation_and_follows_head(loaded):
    win = loaded
    doc, panel = win.doc, win.phone_matrix
    assert doc.attention.component == "encoder"
    doc.attention.set_layer(1)
    doc.attention.set_head(2)
    settle()
    maps, phones = doc.attention.maps, doc.alignment.phones
    want = analysis.aggregate_intervals(maps, 1, 2, phones)
    np.testing.assert_array_equal(panel.values, want.mean)
    assert panel.matrix.query_labels == phones.labels
    # by hand for one cell, from the raw weights (no analysis code)
    w = maps.weights[1, 0, 2].astype(np.float64)
    (qa, qb), (ka, kb) = want.query_frames[3], want.key_frames[5]
    assert panel.values[3, 5] == pytest.approx(w[qa:qb, ka:kb].mean(), rel=1e-5)

    before = panel.values.copy()
    doc.attention.set_head(4)
    settle()
    np.testing.assert_array_equal(panel.values, analysis.aggregate_intervals(maps, 1, 4, phones).mean)
    assert not np.allclose(np.nan_to_num(before), np.nan_to_num(panel.values))

    panel.value.setCurrentIndex(panel.value.findData("total"))
    panel.refresh()
    tot = analysis.aggregate_intervals(maps, 1, 4, phones).total
    np.testing.assert_array_equal(panel.values, tot)
    panel.source.setCurrentIndex(panel.source.findData("words"))
    panel.refresh()
    assert panel.matrix.query_labels == doc.alignment.words.labels
    panel.source.setCurrentIndex(panel.source.findData("classes"))
    panel.feature.setCurrentIndex(panel.feature.findData("manner"))
    panel.refresh()
    cm = analysis.aggregate_classes(maps, 1, 4, phones, "manner")
    np.testing.assert_array_equal(panel.values, cm.total)
    assert panel.matrix.labels == cm.labels


def test_click_cell_selects_key_interval_sets_query_and_plays(loaded, qtbot):
    win = loaded
    doc, panel = win.doc, win.phone_matrix
    played = []
    win.playback.play = lambda spans: played.append(list(spans))
    panel.playRequested.disconnect()
    panel.playRequested.connect(win.playback.play)
    win.phone_matrix_dock.show()
    panel.resize(500, 500)
    qtbot.wait(50)
    phones = doc.alignment.phones
    r, c = 4, 7
    click_cell(qtbot, panel.plot, r, c)
    k_iv, q_iv = phones.intervals[c], phones.intervals[r]
    assert doc.nav.selection == pytest.approx((k_iv.start_s, k_iv.end_s))
    q0, q1 = doc.attention.maps.query_grid.span_seconds(doc.attention.query)
    assert q0 <= (q_iv.start_s + q_iv.end_s) / 2 <= q1
    assert played == [[(k_iv.start_s, k_iv.end_s)]]


def test_head_stats_grid_shows_head_statistics(loaded, qtbot):
    win = loaded
    doc, panel = win.doc, win.head_stats
    want = analysis.head_statistics(doc.attention.maps, doc.alignment)
    np.testing.assert_array_equal(panel.values, want.local_share[5])
    for name in ("mean_distance_ms", "entropy_bits", "silence_share"):
        panel.stat.setCurrentIndex(panel.stat.findData(name))
        panel.refresh()
        np.testing.assert_array_equal(panel.values, getattr(want, name))
        texts = [t.textItem.toPlainText() for t in panel.texts]
        assert texts[0] == panel.format(getattr(want, name)[0, 0])
        assert len(texts) == want.entropy_bits.size
    text = panel.summary.toPlainText()
    assert text == want.summary(5)
    assert "layer 0:" in text  # numbered from 0, as in the grid and the CSV
    win.head_stats_dock.show()
    panel.resize(400, 500)
    qtbot.wait(50)
    click_cell(qtbot, panel.plot, 2, 3)
    assert (doc.attention.layer, doc.attention.head) == (2, 3)


def test_thinned_labels_do_not_overlap():
    labels = [str(i) for i in range(40)]
    ticks = thinned(labels, cell_px=5.0, label_px=[12.0])
    assert [p for p, _ in ticks][:3] == [0.5, 4.5, 8.5]  # step ceil(16 / 5) = 4
    assert thinned(labels, 20.0, [12.0]) == [(i + 0.5, s) for i, s in enumerate(labels)]


def test_rollout_in_map_view(loaded):
    win = loaded
    doc = win.doc
    maps = doc.attention.maps
    win.controls.rollout.setChecked(True)
    assert doc.attention.rollout and doc.attention.shown_layer == "rollout"
    want = maps.rollout()
    np.testing.assert_allclose(doc.attention.head_map(), want)
    img, levels = display_image(want, "weights", doc.attention.scale)
    assert_map_shows(win.views, img, levels, approx=True)
    assert "rollout" in win.views.map_title.textItem.toPlainText()
    # the phone matrix follows
    settle()
    np.testing.assert_allclose(win.phone_matrix.values, analysis.aggregate_intervals(
        maps, "rollout", doc.attention.head, doc.alignment.phones).mean)
    # a cross-attention component drops the rollout; a layer choice leaves it
    doc.attention.set_component("cross")
    assert not doc.attention.rollout and not win.controls.rollout.isEnabled()
    doc.attention.set_component("encoder")
    doc.attention.set_rollout(True)
    doc.attention.set_layer(2)
    assert not doc.attention.rollout and not win.controls.rollout.isChecked()


def test_whisper_words_tier(loaded):
    from steve_qt.core.speech.word_errors import boundary_errors
    from steve_whisper.align import align_words

    win = loaded
    ww, doc = win.whisper_words, win.doc
    tier = win.views.whisper_tier
    assert win.views.whisper_words.isVisible()
    ex = doc.attention.extraction
    want = align_words(ex.maps["cross"], ex.transcript.tokens).tier()
    assert [(iv.start_s, iv.end_s, iv.label) for iv in tier.intervals] == \
        [(iv.start_s, iv.end_s, iv.label) for iv in want.intervals]
    assert len(want.intervals) >= 8
    errs = boundary_errors(want, doc.alignment.words)
    assert [(e.ref, e.start_error_ms, e.end_error_ms) for e in ww.errors] == \
        [(e.ref, e.start_error_ms, e.end_error_ms) for e in errs] and errs
    tip = win.views.whisper_words.toolTip()
    assert "boundary error" in tip and errs[0].ref in tip
    print("\nwhisper words vs reference (ms):\n" + "\n".join(
        f"{e.ref:>8} {e.hyp:>8} {e.start_error_ms:+5.0f} {e.end_error_ms:+5.0f}" for e in errs))
    assert ww.word_error_text(0).startswith(want.intervals[0].label)


def test_whisper_tier_collapses_without_cross(loaded):
    win = loaded
    views = win.views
    assert views.whisper_words.isVisible()
    views.set_whisper_words([])
    assert not views.whisper_words.isVisible()
    assert len(set(views.left_axis_widths())) == 1


def test_screenshot_with_panels(loaded, qtbot):
    win = loaded
    win.resize(1600, 1000)
    win.doc.attention.set_layer(1)
    win.doc.attention.set_head(2)
    win.doc.attention.set_query(60)
    qtbot.wait(200)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "main_window_panels.png"
    assert win.grab().save(str(path))
    assert path.stat().st_size > 20_000


def test_panels_on_cross_attention(loaded):
    win = loaded
    doc = win.doc
    doc.attention.set_component("cross")
    settle()
    pm, hs = win.phone_matrix, win.head_stats
    assert pm.matrix is None and "tokens" in pm.info.text()
    assert pm.plot.labels == ([], [])  # no stale phone labels on the axes
    # locality does not apply to tokens x frames: the grid falls back to entropy, and says so
    want = analysis.head_statistics(doc.attention.maps, doc.alignment)
    assert hs.stat.currentData() == "local_share_5"
    np.testing.assert_array_equal(hs.values, want.entropy_bits)
    assert "does not apply" in hs.summary.toPlainText()


def test_rollout_and_scores_exclude_each_other(loaded):
    doc = loaded.doc
    doc.attention.set_kind("scores")
    doc.attention.set_rollout(True)
    assert doc.attention.rollout and doc.attention.kind == "weights"
    doc.attention.set_kind("scores")
    assert not doc.attention.rollout and doc.attention.kind == "scores"


def test_hover_whisper_word_shows_its_error(loaded, qtbot):
    win = loaded
    views, ww = win.views, win.whisper_words
    e = ww.errors[1]
    i = next(k for k, w in enumerate(ww.alignment.words) if abs(w.start_s - e.hyp_start_s) < 1e-9)
    iv = views.whisper_tier.intervals[i]
    scene = views.whisper_words.vb.mapViewToScene(QtCore.QPointF((iv.start_s + iv.end_s) / 2, 0.5))
    qtbot.mouseMove(views.viewport(), views.mapFromScene(scene))
    qtbot.waitUntil(lambda: "vs reference" in win.status_bar.message_label.text(), timeout=2000)
    assert f"start {e.start_error_ms:+.0f} ms" in win.status_bar.message_label.text()
