"""The horizontal scroll bar under the time views: its handle is the document's view."""

from __future__ import annotations

from PyQt6 import QtCore, QtWidgets

from ..core.state.document import Document

Qt = QtCore.Qt
STEPS_PER_PAGE = 10  # an arrow click scrolls this share of the visible span


def ms(t: float) -> int:
    return int(round(t * 1000))


class QtTimeScrollBar(QtWidgets.QScrollBar):
    """Milliseconds of the file; follows ``doc.nav.view`` and sets it when dragged."""

    def __init__(self, doc: Document, parent=None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.doc = doc
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        doc.events.view.connect(self.follow_view)
        doc.events.current.connect(self.follow_view)
        self.valueChanged.connect(self._on_moved)

    def follow_view(self, event=None) -> None:
        t0, t1 = self.doc.nav.view
        dur = self.doc.duration
        self.blockSignals(True)
        self.setRange(0, max(ms(dur - (t1 - t0)), 0))
        self.setPageStep(max(ms(t1 - t0), 1))
        self.setSingleStep(max(ms(t1 - t0) // STEPS_PER_PAGE, 1))
        self.setValue(ms(t0))
        self.blockSignals(False)

    def _on_moved(self, value: int) -> None:
        t0, t1 = self.doc.nav.view
        start = value / 1000
        self.doc.nav.set_view(start, start + (t1 - t0))
