"""Progressive extraction in the window: encoder maps first, then transcript, then the rest."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gui_helpers import EXTRACTION_TIMEOUT_MS, assert_same_maps


@pytest.fixture
def auto_window(app, qtbot, whisper_adapter):
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow()  # runs the (session-cached) embedded Whisper by itself
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def test_encoder_maps_arrive_before_the_transcript_and_the_end_equals_one_shot(
        auto_window, qtbot, dark_suit, dark_suit_extraction):
    win, doc = auto_window, auto_window.doc
    seen = []  # (components, transcript text, pending, status text) at every extraction event
    labels = []
    doc.events.extraction.connect(lambda ev: seen.append(
        (tuple(sorted(ev.value.maps)), ev.value.transcript.text, ev.value.pending)
        if ev.value is not None else None))
    win.queue.partial.connect(lambda job, ex: labels.append(win.status_bar.progress_label.text()))
    win.opener.open_paths([str(dark_suit)])
    qtbot.waitUntil(lambda: doc.files.entry is not None and doc.files.entry.status_text(*doc.attention.job_key())
                    == "done", timeout=EXTRACTION_TIMEOUT_MS)
    seen = [s for s in seen if s is not None]
    assert seen[0] == (("encoder",), "", ("transcript", "cross", "decoder"))
    assert seen[1][0] == ("encoder",) and seen[1][1] and seen[1][2] == ("cross", "decoder")
    assert seen[-1][0] == ("cross", "decoder", "encoder") and seen[-1][2] == ()
    # the status bar named what was still coming while the partial result was shown
    assert "still coming: transcript and word tier, cross-attention, decoder attention" in labels[0]
    assert "still coming: cross-attention, decoder attention" in labels[1]
    _, one_shot = dark_suit_extraction  # adapter.extract(audio) without on_partial
    final = doc.attention.extraction
    assert_same_maps(final, one_shot)
    assert final.transcript == one_shot.transcript and final.meta == one_shot.meta


@pytest.mark.parametrize("stage", [0, 1])
def test_cancel_after_a_stage_keeps_what_arrived(auto_window, qtbot, dark_suit, monkeypatch,
                                                 dark_suit_extraction, stage):
    """Cancel while the worker waits right after stage ``stage`` (0: encoder maps shown, 1: also
    the transcript): the window keeps exactly what arrived, marked cancelled."""
    from steve_qt.core.models import pipeline

    real = pipeline.extract
    partials = []

    def gated(adapter, audio, *a, on_partial=None, should_cancel=None, **k):
        def on_part(ex):
            partials.append(ex)  # before the signal: the GUI thread may handle it at once
            on_partial(ex)
            if len(partials) == stage + 1:  # hold the worker here until Cancel is pressed
                deadline = time.monotonic() + 60
                while not should_cancel() and time.monotonic() < deadline:
                    time.sleep(0.01)

        return real(adapter, audio, *a, on_partial=on_part, should_cancel=should_cancel, **k)

    monkeypatch.setattr(pipeline, "extract", gated)
    win, doc = auto_window, auto_window.doc
    win.queue.partial.connect(lambda job, ex: (len(partials) == stage + 1 and win.queue.running
                                               and win.extraction.cancel()))
    cancelled = []
    win.queue.cancelled.connect(cancelled.append)
    win.opener.open_paths([str(dark_suit)])
    qtbot.waitUntil(lambda: bool(cancelled), timeout=EXTRACTION_TIMEOUT_MS)
    assert doc.files.entry.status_text(*doc.attention.job_key()) == "cancelled"
    kept = doc.attention.extraction
    _, one_shot = dark_suit_extraction
    assert sorted(kept.maps) == ["encoder"]
    np.testing.assert_array_equal(kept.maps["encoder"].weights, one_shot.maps["encoder"].weights)
    if stage == 0:
        assert kept.transcript.text == "" and kept.pending[0] == "transcript"
    else:
        assert kept.transcript.text == one_shot.transcript.text
        assert kept.transcript.words == one_shot.transcript.words
        assert kept.pending == ("cross", "decoder")
    assert doc.attention.maps is kept.maps["encoder"]  # still shown
    assert "kept the encoder maps" in win.status_bar.message_label.text()
    qtbot.wait(50)
    assert not win.queue.busy and doc.attention.extraction is kept  # nothing re-queued by itself
