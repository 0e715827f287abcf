"""GUI test setup: offscreen Qt, QSettings in a temporary folder, dialogs intercepted.

``QT_QPA_PLATFORM=offscreen`` is set before anything imports Qt. Every modal dialog function of
``steve_qt.gui.dialogs`` is replaced by a recorder (a real dialog would block the test); tests
read ``dialogs_seen``. The embedded Whisper model is loaded once per session (root conftest).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _settings_in_tmp(tmp_path_factory):
    from PyQt6 import QtCore

    folder = tmp_path_factory.mktemp("qsettings")
    for fmt in (QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Format.NativeFormat):
        QtCore.QSettings.setPath(fmt, QtCore.QSettings.Scope.UserScope, str(folder))
    return folder


@pytest.fixture
def app(qapp):
    from steve_qt.gui.app import make_app

    return make_app()


class DialogRecorder:
    def __init__(self):
        self.errors: list[tuple[str, str]] = []
        self.tier_answers: list = []  # what pick_tiers returns, in order
        self.tier_questions: list = []
        self.open_files: list[list[str]] = []

    def show_error(self, parent, title, text):
        self.errors.append((title, text))

    def pick_tiers(self, parent, path, tier_names, problem=""):
        self.tier_questions.append((path, list(tier_names), problem))
        return self.tier_answers.pop(0) if self.tier_answers else None

    def ask_open_files(self, parent, directory=""):
        return self.open_files.pop(0) if self.open_files else []


@pytest.fixture(autouse=True)
def dialogs_seen(monkeypatch):
    from steve_qt.gui import dialogs

    rec = DialogRecorder()
    monkeypatch.setattr(dialogs, "show_error", rec.show_error)
    monkeypatch.setattr(dialogs, "pick_tiers", rec.pick_tiers)
    monkeypatch.setattr(dialogs, "ask_open_files", rec.ask_open_files)
    monkeypatch.setattr(dialogs, "ask_alignment_file", lambda *a, **k: None)
    monkeypatch.setattr(dialogs, "ask_model_spec", lambda *a, **k: None)
    monkeypatch.setattr(dialogs, "ask_folder", lambda *a, **k: None)
    return rec


@pytest.fixture
def window(app, qtbot):
    """A main window that does not run a model by itself (tests inject extractions)."""
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow(auto_extract=False)
    qtbot.addWidget(win)
    win.resize(1400, 950)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture
def loaded(window, dark_suit, dark_suit_extraction):
    """The window showing dark_suit with the session's real Whisper extraction."""
    _, ex = dark_suit_extraction
    i = window.opener.open_audio(dark_suit)
    window.doc.set_extraction(i, window.doc.attention.model, 0, ex)
    return window
