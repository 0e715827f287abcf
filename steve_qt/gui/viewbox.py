"""A ViewBox for time views: the document, not the mouse, owns the visible range.

Left drag selects a span, left click places the cursor (or selects a tier interval, or sets the
query), the wheel zooms the time axis of every view (through the document), right or middle
drag scrolls. The box only reports what the mouse did, in view coordinates; the owner decides.
"""

from __future__ import annotations

import pyqtgraph as pg
from PyQt6 import QtCore

Qt = QtCore.Qt


class TimeViewBox(pg.ViewBox):
    sigSpan = QtCore.pyqtSignal(float, float, float, float, bool)  # x0, y0, x1, y1, finished
    sigClick = QtCore.pyqtSignal(float, float, bool)  # x, y, double-click
    sigZoom = QtCore.pyqtSignal(float, float)  # factor (< 1 zooms in), centre x
    sigScroll = QtCore.pyqtSignal(float)  # shift of the time axis in view units (seconds)

    def __init__(self, **kwargs):
        super().__init__(enableMenu=False, **kwargs)
        self.setMouseEnabled(x=False, y=False)

    def mouseDragEvent(self, ev, axis=None):
        b = ev.button()
        if b == Qt.MouseButton.LeftButton:
            ev.accept()
            p0 = self.mapSceneToView(ev.buttonDownScenePos())
            p1 = self.mapSceneToView(ev.scenePos())
            self.sigSpan.emit(p0.x(), p0.y(), p1.x(), p1.y(), bool(ev.isFinish()))
        elif b in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton):
            ev.accept()
            last = self.mapSceneToView(ev.lastScenePos())
            now = self.mapSceneToView(ev.scenePos())
            self.sigScroll.emit(last.x() - now.x())
        else:
            ev.ignore()

    def mouseClickEvent(self, ev):
        if ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            self.sigClick.emit(p.x(), p.y(), bool(ev.double()))
        else:
            ev.ignore()

    def wheelEvent(self, ev, axis=None):
        ev.accept()
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if delta == 0:
            return
        centre = self.mapSceneToView(ev.scenePos()).x()
        self.sigZoom.emit(0.8 ** (delta / 120.0), centre)
