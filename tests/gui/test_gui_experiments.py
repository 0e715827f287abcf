"""The Experiments dock: span removal from the selection, the k slider, errors in the status bar."""

import html

import numpy as np

from gui_helpers import ARTIFACTS, EXTRACTION_TIMEOUT_MS


def _wait_idle(win, qtbot):
    qtbot.waitUntil(lambda: win.experiments.running is None and not win.queue.busy,
                    timeout=EXTRACTION_TIMEOUT_MS)


def test_span_removal_from_selection_shows_the_diff(loaded, qtbot, dialogs_seen):
    from steve_qt.core.speech.textdiff import word_diff

    win = loaded
    panel = win.experiments_panel
    ref = win.doc.attention.extraction.transcript.text
    win.doc.nav.set_selection((0.9, 1.6))
    assert panel.span_button.isEnabled() and "0.900" in panel.span_label.text()
    panel.setCurrentIndex(1)
    panel.span_button.click()
    qtbot.waitUntil(lambda: win.experiments.span_result is not None,
                    timeout=EXTRACTION_TIMEOUT_MS)
    _wait_idle(win, qtbot)
    rows = win.experiments.span_result
    assert [r.variant for r in rows] == ["original", "without 0.90-1.60 s (padding)"]
    table = panel.span_table
    assert table.rowCount() == 2 and table.item(0, 2).text() == ref
    assert table.item(1, 2).text() == rows[1].transcript
    ops = word_diff(ref, rows[1].transcript)
    shown = panel.span_diff.text()
    for op, r, h in ops:  # every changed word is marked in the diff shown
        r, h = html.escape(r or ""), html.escape(h or "")
        if op == "delete":
            assert f">{r}</s>" in shown
        elif op == "insert":
            assert f"<b>{h}</b></u>" in shown
        elif op == "substitute":
            assert f">{r}</s>" in shown and f"<b>{h}</b></span>" in shown
    assert any(op != "equal" for op, _, _ in ops), rows[1].transcript
    assert not dialogs_seen.errors
    win.experiments_dock.raise_()
    win.grab().save(str(ARTIFACTS / "experiments_span.png"))


def test_k_slider_shows_masked_transcript_and_maps(loaded, qtbot):
    win = loaded
    panel = win.experiments_panel
    original = win.doc.attention.extraction
    panel.k_layers.setText("all")
    panel.set_k(5)
    qtbot.waitUntil(lambda: win.experiments.window_result is not None,
                    timeout=EXTRACTION_TIMEOUT_MS)
    _wait_idle(win, qtbot)
    r = win.experiments.window_result
    assert r.k == 5 and "k = 5" in panel.k_result.text()
    assert win.doc.attention.extraction is r.extraction and win.doc.attention.extraction is not original
    m = win.doc.attention.extraction.maps["encoder"]
    assert "\u00b15 frames" in m.model
    q = np.arange(m.weights.shape[-2])[:, None]
    kk = np.arange(m.weights.shape[-1])[None]
    outside = np.abs(q - kk) > 5
    assert np.all(m.weights[:, 0][..., outside] == 0)  # every layer and head: nothing outside
    rows = m.weights[:, 0].astype(np.float64).sum(-1) + m.padding_mass  # (N, M, Q)
    np.testing.assert_allclose(rows, 1.0, atol=5e-3)
    assert r.result.transcript == win.doc.attention.extraction.transcript.text
    win.experiments_dock.raise_()
    win.grab().save(str(ARTIFACTS / "experiments_window.png"))
    panel.set_k(None)  # off: the unmasked extraction is back
    assert win.doc.attention.extraction is original


def test_errors_go_to_the_status_bar(loaded, qtbot, dialogs_seen):
    win = loaded
    panel = win.experiments_panel
    panel.lm_prompt.setText("")
    panel.run_lm()
    assert "prompt is empty" in win.status_bar.message_label.text()
    panel.steer_feature.setValue(999_999)
    panel.run_steer()
    qtbot.waitUntil(lambda: "does not exist" in win.status_bar.message_label.text(),
                    timeout=EXTRACTION_TIMEOUT_MS)
    assert "feature 999999 does not exist: there are 1536 neurons" in win.status_bar.message_label.text()
    assert not dialogs_seen.errors
    assert "Traceback" not in win.status_bar.message_label.text()
