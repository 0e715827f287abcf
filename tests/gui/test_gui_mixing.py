"""Context-mixing measures in the window: chosen in the Values box, computed on request in the
worker, shown in the map and the head grid (one column for a per-layer measure); a measure the
model cannot give is a dialog and the window keeps its attention."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gui_helpers import ARTIFACTS, EXTRACTION_TIMEOUT_MS, assert_map_shows, settle


@pytest.fixture
def fresh(window, dark_suit, dark_suit_extraction):
    """The window showing dark_suit with a copy of the session's extraction (measures are added
    to the copy's encoder maps, not to the shared one)."""
    _, ex = dark_suit_extraction
    maps = dict(ex.maps)
    maps["encoder"] = dataclasses.replace(ex.maps["encoder"], measures={})
    ex = dataclasses.replace(ex, maps=maps)
    i = window.opener.open_audio(dark_suit)
    window.doc.set_extraction(i, window.doc.attention.model, 0, ex)
    return window


def choose(win, kind: str) -> None:
    combo = win.controls.kind
    combo.activated.emit(combo.findData(kind))
    settle()


def test_measures_computed_on_request_and_shown(fresh, qtbot, whisper_adapter, monkeypatch,
                                                 dialogs_seen):
    win = fresh
    m = win.doc.attention.maps
    calls = []
    monkeypatch.setattr(whisper_adapter, "extract", lambda *a, **k: calls.append(a))
    win.doc.attention.set_layer(2)
    win.doc.attention.set_head(1)
    choose(win, "norm")
    qtbot.waitUntil(lambda: win.doc.attention.kind == "norm", timeout=EXTRACTION_TIMEOUT_MS)
    settle()
    assert set(m.measures) == {"norm"} and m.measures["norm"].shape == (4, 1, 6, m.num_queries,
                                                                         m.num_keys)
    assert_map_shows(win.views, m.measures["norm"][2, 0, 1].astype(np.float32))
    assert len(win.overview.boxes) == 4 * 7  # heads + mean

    choose(win, "value_zeroing")
    qtbot.waitUntil(lambda: win.doc.attention.kind == "value_zeroing", timeout=EXTRACTION_TIMEOUT_MS)
    settle()
    vz = m.measures["value_zeroing"]
    assert vz.shape == (4, 1, 1, m.num_queries, m.num_keys)
    assert_map_shows(win.views, vz[2, 0, 0].astype(np.float32))
    boxes = win.overview.boxes
    assert sorted(boxes) == [(n, "layer") for n in range(4)]  # one column: one map per layer
    assert boxes[(2, "layer")].current
    assert not win.controls.head.isEnabled() and not win.controls.mean.isEnabled()
    assert "value zeroing" in win.views.map_title.toPlainText()
    win.doc.attention.set_query(win.doc.attention.default_query())
    ARTIFACTS.mkdir(exist_ok=True)
    assert win.grab().save(str(ARTIFACTS / "main_window_value_zeroing.png"))
    from steve_qt.core.figures.attention import from_document, render_figure

    spec, data = from_document(win.doc, dpi=80)  # File > Export Figure draws what is shown
    assert spec.kind == "value_zeroing" and spec.layer == 2
    render_figure(spec, data, ARTIFACTS / "window_value_zeroing_figure.png", force=True)

    choose(win, "weights")  # back: nothing recomputed, the heads' grid again
    assert win.doc.attention.kind == "weights" and len(win.overview.boxes) == 4 * 7
    choose(win, "norm")  # already there: shown at once
    assert win.doc.attention.kind == "norm" and not win.queue.busy
    assert calls == [] and dialogs_seen.errors == []


def test_a_measure_the_model_cannot_give_is_a_dialog(fresh, qtbot, whisper_adapter, monkeypatch,
                                                     dialogs_seen):
    win = fresh
    monkeypatch.setattr(whisper_adapter, "measure_unavailable",
                        lambda m: "it has no CTC head (test)" if m == "grad" else None)
    choose(win, "grad")
    qtbot.waitUntil(lambda: bool(dialogs_seen.errors), timeout=EXTRACTION_TIMEOUT_MS)
    title, text = dialogs_seen.errors[0]
    assert "this model cannot give grad: it has no CTC head (test)" in text
    assert win.doc.attention.kind == "weights" and win.doc.attention.maps is not None and "grad" not in \
        win.doc.attention.maps.measures
    # cross-attention has no measures: a status message, nothing queued
    win.doc.attention.set_component("cross")
    choose(win, "norm")
    assert win.doc.attention.kind == "weights" and not win.queue.busy
    assert "encoder self-attention only" in win.doc.nav.message


def test_phone_matrix_aggregates_and_names_the_measure_shown(fresh):
    """The phone matrix follows the Values box: with a measure shown it averages that measure
    (checked by hand from the raw array) and its caption names it, not "weight"."""
    win = fresh
    doc, panel = win.doc, win.phone_matrix
    m = doc.attention.maps
    rng = np.random.default_rng(5)
    n, _, heads, q, k = m.weights.shape
    m.measures["norm"] = rng.uniform(0, 3, (n, 1, heads, q, k)).astype(np.float16)
    m.measures["value_zeroing"] = rng.uniform(0, 1, (n, 1, 1, q, k)).astype(np.float16)
    doc.attention.set_layer(1)
    doc.attention.set_head(3)
    settle()
    assert "mean weight per frame pair" in panel.info.text()
    for kind, head, noun in (("norm", 3, "attention norm"), ("value_zeroing", 0, "value zeroing")):
        choose(win, kind)
        assert doc.attention.kind == kind
        arr = m.measures[kind][1, 0, head].astype(np.float64)
        (qa, qb), (ka, kb) = panel.matrix.query_frames[2], panel.matrix.key_frames[4]
        assert panel.values[2, 4] == pytest.approx(arr[qa:qb, ka:kb].mean(), rel=1e-5)
        assert f"mean {noun} per frame pair" in panel.info.text()
        assert "weight" not in panel.info.text()
        assert panel.value.currentText() == f"mean {noun} per frame pair"
        assert f"{noun} " in panel.cell_text(2, 4)
    assert panel.info.text().startswith("layer 1:")  # value zeroing: one map per layer, no head
    panel.value.setCurrentIndex(panel.value.findData("total"))
    panel.refresh()
    arr = m.measures["value_zeroing"][1, 0, 0].astype(np.float64)
    (qa, qb), (ka, kb) = panel.matrix.query_frames[2], panel.matrix.key_frames[4]
    assert panel.values[2, 4] == pytest.approx(arr[qa:qb, ka:kb].sum(axis=1).mean(), rel=1e-5)
    assert "total value zeroing (query \u2192 key)" in panel.info.text()
    choose(win, "weights")
    assert panel.value.currentText() == "total mass (query \u2192 key)"
    w = m.weights[1, 0, 3].astype(np.float64)
    assert panel.values[2, 4] == pytest.approx(w[qa:qb, ka:kb].sum(axis=1).mean(), rel=1e-5)
