"""A tier drawn as labelled intervals, labels elided when the interval is too narrow."""

from __future__ import annotations

from typing import Sequence

import pyqtgraph as pg
from PyQt6 import QtCore, QtGui

Qt = QtCore.Qt

SELECTED_BRUSH = QtGui.QColor(255, 200, 0, 110)
BOUNDARY_PEN = QtGui.QColor(40, 40, 40)
SILENCE_BRUSH = QtGui.QColor(0, 0, 0, 18)
VOWEL_BRUSH = QtGui.QColor(60, 120, 230, 30)


def phone_shade(label: str) -> QtGui.QColor | None:
    """Vowels light blue, silence grey, consonants plain (so the eye finds the syllables)."""
    from ..core.speech.phones import phone_class

    kind = phone_class(label).kind
    if kind == "vowel":
        return VOWEL_BRUSH
    if kind == "silence":
        return SILENCE_BRUSH
    return None


class TierItem(pg.GraphicsObject):
    """Intervals (start_s, end_s, label) over y in [0, 1], painted in device pixels."""

    def __init__(self, font_size: int = 10, shade=None):
        """``shade(label) -> QColor | None`` tints an interval's background (phone classes)."""
        super().__init__()
        self.shade = shade
        self.intervals: list = []
        self.selected: int | None = None
        self.font = QtGui.QFont()
        self.font.setPointSize(font_size)
        self._bounds = QtCore.QRectF(0, 0, 1, 1)
        self.setAcceptHoverEvents(True)
        self.note = ""  # said under the hovered label's tooltip (what the tier is)

    def hoverMoveEvent(self, ev) -> None:
        """The label under the mouse as the tooltip (a narrow interval elides it)."""
        self.setToolTip(self.tooltip_at(ev.pos().x()))

    def tooltip_at(self, t: float) -> str:
        i = self.index_at(t)
        label = self.intervals[i].label if i is not None else ""
        return f"{label}\n\n{self.note}" if label and self.note else label or self.note

    def set_intervals(self, intervals: Sequence) -> None:
        self.prepareGeometryChange()
        self.intervals = list(intervals)
        self.selected = None
        if self.intervals:
            t0 = min(iv.start_s for iv in self.intervals)
            t1 = max(iv.end_s for iv in self.intervals)
            self._bounds = QtCore.QRectF(t0, 0, max(t1 - t0, 1e-9), 1)
        else:
            self._bounds = QtCore.QRectF(0, 0, 1, 1)
        self.update()

    def set_selected(self, index: int | None) -> None:
        if index != self.selected:
            self.selected = index
            self.update()

    def index_at(self, t: float) -> int | None:
        for i, iv in enumerate(self.intervals):
            if iv.start_s <= t < iv.end_s:
                return i
        return None

    def boundingRect(self) -> QtCore.QRectF:
        return self._bounds

    def paint(self, p: QtGui.QPainter, *args) -> None:
        if not self.intervals:
            return
        tr = p.transform()
        p.resetTransform()
        vb = self.getViewBox()
        x0, x1 = vb.viewRange()[0] if vb is not None else (-1e30, 1e30)
        p.setFont(self.font)
        fm = QtGui.QFontMetrics(self.font)
        pen = QtGui.QPen(BOUNDARY_PEN)
        pen.setCosmetic(True)
        for i, iv in enumerate(self.intervals):
            if iv.end_s < x0 or iv.start_s > x1:
                continue
            a = tr.map(QtCore.QPointF(iv.start_s, 0.0))
            b = tr.map(QtCore.QPointF(iv.end_s, 1.0))
            rect = QtCore.QRectF(a, b).normalized()
            tint = self.shade(iv.label) if self.shade is not None else None
            if i == self.selected:
                p.fillRect(rect, SELECTED_BRUSH)
            elif not iv.label:
                p.fillRect(rect, SILENCE_BRUSH)
            elif tint is not None:
                p.fillRect(rect, tint)
            p.setPen(pen)
            p.drawLine(QtCore.QPointF(rect.left(), rect.top()),
                       QtCore.QPointF(rect.left(), rect.bottom()))
            p.drawLine(QtCore.QPointF(rect.right(), rect.top()),
                       QtCore.QPointF(rect.right(), rect.bottom()))
            width = int(rect.width()) - 4
            if iv.label and width > 4:
                text = fm.elidedText(iv.label, Qt.TextElideMode.ElideRight, width)
                p.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
