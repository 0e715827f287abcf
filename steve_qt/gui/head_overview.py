"""Head overview: one thumbnail per layer x head (BertViz's model view); a click selects it.

Rows are layers, columns heads, plus a last column with the mean of heads; a measure defined per
layer (value zeroing, grad relevance) has one column. Thumbnails are the maps block-averaged to at
most THUMB pixels a side, on the document's colour scale.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from ..core.state.document import Document, display_image
from ..core.attention.measures import PER_LAYER, TITLES
from .coalesce import Coalesced
from .colors import lut

THUMB = 64  # data pixels a side at most
CELL_PX = 38  # screen pixels a side of one thumbnail
PER_LAYER_KEY = "layer"  # the head key of a per-layer measure's boxes
CURRENT_PEN = pg.mkPen(QtGui.QColor(255, 140, 0), width=3)
OTHER_PEN = pg.mkPen(QtGui.QColor(200, 200, 200), width=1)


def block_mean(m: np.ndarray, size: int = THUMB) -> np.ndarray:
    """(Q, K) -> at most (size, size) by averaging blocks of rows and columns."""
    out = np.asarray(m, dtype=np.float32)
    for axis in (0, 1):
        n = out.shape[axis]
        step = int(np.ceil(n / size))
        if step > 1:
            pad = (-n) % step
            if pad:
                edge = np.take(out, [-1], axis=axis)
                out = np.concatenate([out, np.repeat(edge, pad, axis=axis)], axis=axis)
            shape = list(out.shape)
            shape[axis: axis + 1] = [shape[axis] // step, step]
            out = out.reshape(shape).mean(axis=axis + 1)
    return np.ascontiguousarray(out, dtype=np.float32)


class _ThumbBox(pg.ViewBox):
    clicked = QtCore.pyqtSignal(int, object)  # layer, head (None = mean)

    def __init__(self, layer: int, head: int | None):
        super().__init__(enableMenu=False, lockAspect=False, invertY=True)
        self.setMouseEnabled(False, False)
        self.setMinimumSize(CELL_PX, CELL_PX)
        self.setMaximumSize(CELL_PX, CELL_PX)
        self.layer, self.head = layer, head
        self.image = pg.ImageItem(axisOrder="row-major")
        self.addItem(self.image)
        self.setBorder(OTHER_PEN)
        self.current = False  # framed as the shown (layer, head)

    def mouseClickEvent(self, ev):
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            self.clicked.emit(self.layer, self.head)

    def mouseDragEvent(self, ev, axis=None):
        ev.ignore()

    def wheelEvent(self, ev, axis=None):
        ev.ignore()


class QtHeadOverview(QtWidgets.QScrollArea):
    """The grid in a scroll area (12 x 12 heads of a base model do not fit a dock)."""

    def __init__(self, doc: Document, parent=None, component: str | None = None):
        super().__init__(parent)
        self.grid = QtHeadGrid(doc, component=component)
        self.setWidget(self.grid)
        self.setWidgetResizable(False)
        self.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)

    @property
    def boxes(self):
        return self.grid.boxes


class QtHeadGrid(pg.GraphicsLayoutWidget):
    """Thumbnails of the shown maps, or of one ``component`` of the shown extraction (the
    decoder view's grid); a click selects the layer and head the document shows."""

    def __init__(self, doc: Document, parent=None, component: str | None = None):
        super().__init__(parent)
        self.doc = doc
        self.component = component
        self.setBackground("w")
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred,
                           QtWidgets.QSizePolicy.Policy.Preferred)
        self.boxes: dict[tuple[int, int | None], _ThumbBox] = {}
        self._shape: tuple[int, int, str | None] | None = None
        self._drawn = None  # what the thumbnails show now: (maps, kind, scale, colormap)
        self.maps_soon = Coalesced(lambda: self._on_maps_change(None), self)
        e = doc.events
        for name in ("extraction", "component", "kind", "scale", "colormap", "current"):
            getattr(e, name).connect(self.maps_soon.request)
        e.layer.connect(self._on_selection_change)
        e.head.connect(self._on_selection_change)
        self._on_maps_change(None)

    def _build(self, layers: int, heads: int, per_layer: str | None = None) -> None:
        """A layers x (heads + mean) grid, or one column for the per-layer measure ``per_layer``
        (its boxes are keyed (layer, PER_LAYER_KEY))."""
        self.clear()
        self.boxes = {}
        self.ci.layout.setSpacing(3)
        label_colour = "#333"
        columns = [PER_LAYER_KEY] if per_layer else [*range(heads), None]
        for c, h in enumerate(columns):
            text = TITLES[per_layer] if per_layer else "mean" if h is None else f"h{h}"
            self.addLabel(text, row=0, col=c + 1, color=label_colour, size="8pt")
        for n in range(layers):
            self.addLabel(f"L{n}", row=n + 1, col=0, color=label_colour, size="8pt")
            for c, h in enumerate(columns):
                box = _ThumbBox(n, h)
                box.clicked.connect(self._on_thumb_clicked)
                self.addItem(box, row=n + 1, col=c + 1)
                self.boxes[(n, h)] = box
        self._shape = (layers, heads, per_layer)
        label_w, label_h = 28, 18
        width = max(len(columns) * (CELL_PX + 3), 90 if per_layer else 0)
        self.setFixedSize(label_w + width + 12, label_h + layers * (CELL_PX + 3) + 12)

    def _maps(self):
        if self.component is None:
            return self.doc.attention.maps
        ex = self.doc.attention.extraction
        return ex.maps.get(self.component) if ex is not None else None

    def _on_maps_change(self, event) -> None:
        m = self._maps()
        if m is None:  # the boxes stay (hidden, blank) for the next maps of the same shape
            for box in self.boxes.values():
                box.image.clear()
            self._drawn = None
            self.setVisible(False)
            return
        self.setVisible(True)
        kind = self.doc.attention.kind if m.has_kind(self.doc.attention.kind) else "weights"
        per_layer = kind if kind in PER_LAYER else None
        if self._shape != (m.num_layers, m.num_heads, per_layer):
            self._build(m.num_layers, m.num_heads, per_layer)
            self._drawn = None
        shown = (m, self.doc.attention.kind, self.doc.attention.scale, self.doc.attention.colormap)
        if self._drawn is not None and all(a is b for a, b in zip(shown, self._drawn)):
            self._on_selection_change(None)  # one extraction announces several fields: draw once
            return
        self._drawn = shown
        table = lut(self.doc.attention.colormap)
        for (n, h), box in self.boxes.items():
            head = 0 if h == PER_LAYER_KEY else h
            img, levels = display_image(block_mean(m.head(n, head, kind)), kind, self.doc.attention.scale)
            box.image.setImage(img, levels=levels, lut=table, autoLevels=False)
            box.autoRange(padding=0)
        self._on_selection_change(None)

    def _on_selection_change(self, event) -> None:
        """Frame the shown (layer, head); only the boxes whose frame changes are redrawn."""
        cur = (self.doc.attention.layer, self.doc.attention.head)
        changed = False
        for key, box in self.boxes.items():
            now = key == cur or (key[1] == PER_LAYER_KEY and key[0] == cur[0])
            if box.current != now:
                box.current = now
                box.setBorder(CURRENT_PEN if box.current else OTHER_PEN)
                changed = True
        if changed:  # the wide frame reaches outside its box, where the box's own update misses it
            self.viewport().update()

    def _on_thumb_clicked(self, layer: int, head) -> None:
        self.doc.attention.set_layer(layer)
        if head != PER_LAYER_KEY:
            self.doc.attention.set_head(head)

