"""Cold start: the torch-free encoder preview is shown first, then replaced by the model's own
numbers (the document ends with exactly what the adapter computes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from gui_helpers import ARTIFACTS, EXTRACTION_TIMEOUT_MS, assert_same_maps


@pytest.fixture
def cold_window(app, qtbot, whisper_adapter, monkeypatch):
    """A window whose worker believes the model is not loaded yet (a cold start), so that it
    shows the preview first; loading then finds the session's model at once."""
    from steve_qt.core.models import pipeline
    from steve_qt.gui.main_window import QtMainWindow

    monkeypatch.setattr(pipeline, "loaded_adapter", lambda spec=None: None)
    win = QtMainWindow()
    qtbot.addWidget(win)
    win.resize(1400, 950)
    win.show()
    yield win
    win.close()


def test_preview_first_then_the_models_numbers(cold_window, qtbot, dark_suit,
                                               dark_suit_extraction, monkeypatch):
    from steve_qt.core.models import pipeline
    from steve_qt.core.models.previews import is_preview

    win, doc = cold_window, cold_window.doc
    seen, labels = [], []
    doc.events.extraction.connect(lambda ev: seen.append(ev.value))
    win.queue.partial.connect(lambda job, ex: labels.append(win.status_bar.progress_label.text()))
    real_get = pipeline.get_adapter
    shot = []

    def get_adapter(*a, **k):  # runs in the worker thread, once the preview is shown
        if not shot:
            shot.append(doc.attention.extraction)
        return real_get(*a, **k)

    looked = []

    def look(job, ex):  # in the GUI thread (a widget is painted there only): as a user sees it
        if not looked:
            looked.append(True)
            ARTIFACTS.mkdir(exist_ok=True)
            win.grab().save(str(ARTIFACTS / "preview_first_map.png"))

    win.queue.partial.connect(look)

    monkeypatch.setattr(pipeline, "get_adapter", get_adapter)
    win.opener.open_paths([str(dark_suit)])
    qtbot.waitUntil(lambda: doc.files.entry is not None and doc.files.entry.status_text(*doc.attention.job_key())
                    == "done", timeout=EXTRACTION_TIMEOUT_MS)
    win.grab().save(str(ARTIFACTS / "preview_full_extraction.png"))
    seen = [s for s in seen if s is not None]
    assert is_preview(seen[0]) and seen[0].pending == ("model", "transcript", "cross", "decoder")
    assert shot and is_preview(shot[0])  # the preview was shown before the model loaded
    assert "encoder preview shown" in labels[0] and "the model's own numbers" in labels[0]
    assert not any(is_preview(s) for s in seen[1:])
    # the preview is close to the model's encoder maps, and the document ends with the latter
    _, one_shot = dark_suit_extraction
    prev = seen[0].maps["encoder"].weights.astype(np.float32)
    assert np.abs(prev - one_shot.maps["encoder"].weights.astype(np.float32)).max() <= 1e-3
    final = doc.attention.extraction
    assert not is_preview(final)
    assert_same_maps(final, one_shot)
    assert final.transcript == one_shot.transcript and final.meta == one_shot.meta


def test_cancel_while_the_model_loads_keeps_the_preview_marked(cold_window, qtbot, dark_suit,
                                                               monkeypatch, tmp_path,
                                                               dialogs_seen):
    """Cancel keeps what arrived: the preview stays, its title says it is a preview, exports
    refuse it in one line (they hold only the model's own numbers), and Extract Again replaces
    it with the model's."""
    from steve_qt.core.models import pipeline
    from steve_qt.core.models.previews import is_preview
    from steve_qt.gui.export_actions import export_data, export_figure

    real_get = pipeline.get_adapter
    cancel = {}

    def slow_get_adapter(*a, **k):  # a model that loads until Cancel is pressed
        deadline = time.monotonic() + 60
        while not cancel.get("pressed") and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_get(*a, **k)

    monkeypatch.setattr(pipeline, "get_adapter", slow_get_adapter)
    win, doc = cold_window, cold_window.doc
    shown = []
    win.queue.partial.connect(lambda job, ex: shown.append(doc.attention.extraction))
    cancelled = []
    win.queue.cancelled.connect(cancelled.append)
    win.opener.open_paths([str(dark_suit)])
    qtbot.waitUntil(lambda: bool(shown), timeout=EXTRACTION_TIMEOUT_MS)
    win.extraction.cancel()
    cancel["pressed"] = True
    qtbot.waitUntil(lambda: bool(cancelled), timeout=EXTRACTION_TIMEOUT_MS)
    assert is_preview(shown[0])
    assert doc.attention.extraction is shown[0] and doc.attention.maps is not None  # kept
    assert doc.files.entry.status_text(*doc.attention.job_key()) == "cancelled"
    assert win.views.map_title.textItem.toPlainText().startswith("PREVIEW")
    assert "kept the encoder preview" in win.status_bar.message_label.text()
    ARTIFACTS.mkdir(exist_ok=True)
    win.grab().save(str(ARTIFACTS / "preview_kept_after_cancel.png"))

    assert export_data(win, tmp_path / "a.npz", with_csv=False) == []
    assert export_figure(win, tmp_path / "a.png") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert [t for t, _ in dialogs_seen.errors] == ["Cannot export data", "Cannot export figure"]
    assert all("preview" in text and "\n" not in text for _, text in dialogs_seen.errors)

    win.extraction.extract_again()  # the model's own numbers replace the preview
    qtbot.waitUntil(lambda: doc.attention.extraction is not None and not is_preview(doc.attention.extraction)
                    and not doc.attention.extraction.pending, timeout=EXTRACTION_TIMEOUT_MS)
    assert not win.views.map_title.textItem.toPlainText().startswith("PREVIEW")
    assert export_data(win, tmp_path / "b.npz", with_csv=False) == [tmp_path / "b.npz"]


def test_a_failing_preview_falls_back_to_the_model(cold_window, qtbot, dark_suit,
                                                   dark_suit_extraction, monkeypatch,
                                                   dialogs_seen, caplog):
    from steve_whisper import preview

    def broken(*a, **k):
        raise RuntimeError("preview broke")

    monkeypatch.setattr(preview, "preview_extraction", broken)
    win, doc = cold_window, cold_window.doc
    win.opener.open_paths([str(dark_suit)])
    qtbot.waitUntil(lambda: doc.files.entry is not None and doc.files.entry.status_text(*doc.attention.job_key())
                    == "done", timeout=EXTRACTION_TIMEOUT_MS)
    assert_same_maps(doc.attention.extraction, dark_suit_extraction[1])
    assert not dialogs_seen.errors
    assert any("preview failed" in r.getMessage() for r in caplog.records)


def test_building_the_window_and_the_preview_import_no_torch(whisper_adapter, dark_suit):
    """In a fresh process: start the preview of a file (as ``steve-qt FILE`` does), build the
    main window, take the preview: torch and whisper are still not imported."""
    code = f"""
import json, sys
from steve_qt.core.models import previews
from steve_qt.core.speech.audio import load_audio
from steve_qt.gui.app import make_app
started = previews.start("whisper", {str(dark_suit)!r})
app = make_app()
from steve_qt.gui.main_window import QtMainWindow
win = QtMainWindow(auto_extract=False)
win.show()
app.processEvents()
after_window = [m for m in ("torch", "whisper") if m in sys.modules]
ex = previews.take("whisper", load_audio({str(dark_suit)!r}))
print(json.dumps([started, after_window, ex is not None and previews.is_preview(ex),
                  [m for m in ("torch", "whisper") if m in sys.modules]]))
win.close()
del win  # before the application: a window outliving it crashed the interpreter at exit
import gc; gc.collect()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, [], True, []]
