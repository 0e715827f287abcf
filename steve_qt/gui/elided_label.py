"""A one-line label that shows as much of its text as fits, with an ellipsis, and the whole
text as its tooltip when it is cut."""

from __future__ import annotations

from PyQt6 import QtCore, QtGui, QtWidgets

Qt = QtCore.Qt


class QtElidedLabel(QtWidgets.QLabel):
    """``text()`` is the whole text; what is painted is elided to the label's width."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                           QtWidgets.QSizePolicy.Policy.Preferred)
        self._update_tip()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._update_tip()

    def shown_text(self) -> str:
        """What is painted: the text elided to the label's width."""
        width = self.contentsRect().width()
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, width)

    def fits(self) -> bool:
        return self.shown_text() == self.text()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802
        hint = super().sizeHint()
        return QtCore.QSize(min(hint.width(), self.maximumWidth()), hint.height())

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self._update_tip()

    def _update_tip(self) -> None:
        self.setToolTip("" if self.fits() else self.text())

    def paintEvent(self, ev: QtGui.QPaintEvent) -> None:  # noqa: N802
        p = QtGui.QPainter(self)
        p.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
        p.drawText(self.contentsRect(), int(self.alignment() | Qt.AlignmentFlag.AlignVCenter),
                   self.shown_text())
        p.end()
