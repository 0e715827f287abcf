"""The status bar: what the pointer is over (left), the document's messages, and the
extraction's progress with its Cancel button (right)."""

from __future__ import annotations

from PyQt6 import QtCore, QtWidgets

from ..core.state.document import Document
from .elided_label import QtElidedLabel

Qt = QtCore.Qt
PROGRESS_PX = 180  # the progress bar's widest
FIRST_MESSAGE = "Open an audio file (File > Open, or drop it here)"


class QtStatusBar(QtWidgets.QStatusBar):
    """Subscribes to the document's hover and message events and to the extraction
    controller's ``busy`` / ``progressed`` signals; Cancel cancels the controller's jobs."""

    def __init__(self, doc: Document, extraction, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.hover_label = QtWidgets.QLabel("")
        self.hover_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label = QtElidedLabel(FIRST_MESSAGE)
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(PROGRESS_PX)
        self.progress.setTextVisible(True)
        self.progress_label = QtWidgets.QLabel("")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(extraction.cancel)
        self.addWidget(self.hover_label, 1)
        self.addPermanentWidget(self.message_label, 1)
        self.addPermanentWidget(self.progress_label)
        self.addPermanentWidget(self.progress)
        self.addPermanentWidget(self.cancel_button)
        self.show_progress(False)
        doc.events.hover.connect(self._on_hover_change)
        doc.events.message.connect(lambda ev: self.message_label.setText(ev.value))
        extraction.busy.connect(self.show_progress)
        extraction.progressed.connect(self.set_progress)

    def show_progress(self, on: bool) -> None:
        for w in (self.progress, self.progress_label, self.cancel_button):
            w.setVisible(on)

    def set_progress(self, done: int, total: int, what: str) -> None:
        """``done`` of ``total`` steps (total 0: busy, length unknown; negative: the text
        only)."""
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        elif total == 0:
            self.progress.setRange(0, 0)
        self.progress_label.setText(what)

    def _on_hover_change(self, event) -> None:
        h = self.doc.nav.hover
        self.hover_label.setText(self.doc.describe(*h) if h is not None else "")
