"""The list of open utterances; selecting one shows it."""

from __future__ import annotations

from PyQt6 import QtCore, QtWidgets

from ..core.state.document import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Document

STATUS_TEXT = {QUEUED: "queued", RUNNING: "extracting...", DONE: "", FAILED: "failed",
               CANCELLED: "cancelled"}


class QtUtteranceList(QtWidgets.QListWidget):
    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.currentRowChanged.connect(self._on_row_changed)
        doc.events.entries.connect(self._on_entries_change)
        doc.events.entry_status.connect(self._on_status_change)
        doc.events.current.connect(self._on_current_change)
        doc.events.model.connect(self._on_entries_change)
        doc.events.window.connect(self._on_entries_change)

    def _text(self, i: int) -> str:
        e = self.doc.files.entries[i]
        status = STATUS_TEXT.get(e.status_text(self.doc.attention.model, self.doc.attention.window if
                                               i == self.doc.files.current else 0), "")
        name = self.doc.files.display_name(i)
        return f"{name}  ({status})" if status else name

    def _on_entries_change(self, event) -> None:
        self.blockSignals(True)
        self.clear()
        for i, e in enumerate(self.doc.files.entries):
            item = QtWidgets.QListWidgetItem(self._text(i))
            item.setToolTip(str(e.path) if e.path else e.name)
            self.addItem(item)
        if self.doc.files.current is not None:
            self.setCurrentRow(self.doc.files.current)
        self.blockSignals(False)

    def _on_status_change(self, event) -> None:
        i = event.value
        if 0 <= i < self.count():
            self.item(i).setText(self._text(i))

    def _on_current_change(self, event) -> None:
        self.blockSignals(True)
        self.setCurrentRow(-1 if self.doc.files.current is None else self.doc.files.current)
        self.blockSignals(False)

    def _on_row_changed(self, row: int) -> None:
        if 0 <= row < len(self.doc.files.entries):
            self.doc.set_current(row)
