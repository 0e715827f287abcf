"""Decoder self-attention (tokens x tokens) in its own dock: it has no time axis to share.

It shows the shown extraction's ``decoder`` maps at the document's layer and head (the same
PgUp/PgDn and [ ] keys, the same values, scale and colours as the time views), a head grid of
the decoder's layers x heads (a click selects the layer and head everywhere) and Export
Figure... for the tokens x tokens figure. Hovering a cell names both tokens and the value.
"""

from __future__ import annotations

import numpy as np
from PyQt6 import QtCore, QtWidgets

from ..core.state.document import Document, display_image
from ..core.figures.attention import token_label
from .analysis_panels import _cell_at, _draw, _matrix_plot
from .head_overview import QtHeadOverview

Qt = QtCore.Qt
COMPONENT = "decoder"
NO_DECODER = "no decoder self-attention yet"
MAP_MIN_PX, HEADS_MIN_PX = 120, 60  # least heights of the tokens x tokens map, the heads grid


class QtDecoderView(QtWidgets.QWidget):
    exportRequested = QtCore.pyqtSignal()

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.title = QtWidgets.QLabel(NO_DECODER)
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.plot, self.image = _matrix_plot()
        self.plot.getAxis("bottom").setLabel("key token")
        self.plot.getAxis("left").setLabel("query token")
        self.plot.setMinimumHeight(MAP_MIN_PX)
        self.info = QtWidgets.QLabel("")
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        self.heads = QtHeadOverview(doc, component=COMPONENT)
        self.heads.setMinimumHeight(HEADS_MIN_PX)
        self.export_button = QtWidgets.QPushButton("Export Figure...")
        self.export_button.clicked.connect(self.exportRequested)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.plot, 3)
        lay.addWidget(self.info)
        lay.addWidget(self.heads, 2)
        lay.addWidget(self.export_button)
        self.values = np.zeros((0, 0))
        self.labels: list[str] = []
        self.plot.scene().sigMouseMoved.connect(self._on_moved)
        e = doc.events
        for name in ("extraction", "current", "layer", "head", "kind", "scale", "colormap"):
            getattr(e, name).connect(self.refresh)
        self.refresh()

    # --- what is shown ---------------------------------------------------------------------------
    def maps(self):
        ex = self.doc.attention.extraction
        return ex.maps.get(COMPONENT) if ex is not None else None

    def layer_head(self) -> tuple[int, int | None]:
        """The document's layer and head, within the decoder's."""
        m = self.maps()
        layer = min(self.doc.attention.layer, m.num_layers - 1)
        head = self.doc.attention.head
        return layer, None if head is None else min(head, m.num_heads - 1)

    def kind(self) -> str:
        m = self.maps()
        return self.doc.attention.kind if m.has_kind(self.doc.attention.kind) else "weights"

    def refresh(self, event=None) -> None:
        m = self.maps()
        has = m is not None
        self.export_button.setEnabled(has)
        if not has:
            self.values = np.zeros((0, 0))
            self.labels = []
            self.image.clear()
            self.plot.labels = ([], [])
            for name in ("left", "bottom"):
                self.plot.getAxis(name).setTicks([[], []])
            self.title.setText(NO_DECODER if self.doc.utterance is not None else "")
            self.info.setText("")
            return
        for name in ("left", "bottom"):
            self.plot.getAxis(name).setTicks(None)
        layer, head = self.layer_head()
        kind = self.kind()
        raw = m.head(layer, head, kind)  # (Q, K) float32
        img, levels = display_image(raw, kind, self.doc.attention.scale)
        self.values = raw
        self.labels = [token_label(s) for s in (m.query_labels or [str(i) for i in
                                                                  range(m.num_queries)])]
        keys = [token_label(s) for s in (m.key_labels or [str(i) for i in range(m.num_keys)])]
        _draw(self.plot, self.image, img, self.labels, keys, self.doc.attention.colormap)
        who = "mean of heads" if head is None else f"head {head} of 0\u2013{m.num_heads - 1}"
        what = "weights" if kind == "weights" else "pre-softmax scores" if kind == "scores" \
            else kind
        self.title.setText(f"{m.title}: layer {layer} of 0\u2013{m.num_layers - 1}, {who} "
                           f"({what}; colours {levels[0]:.3g} to {levels[1]:.3g})   "
                           "rows: query tokens \u2193, columns: key tokens \u2192")

    # --- mouse -----------------------------------------------------------------------------------
    def cell_text(self, r: int, c: int) -> str:
        m = self.maps()
        keys = m.key_labels or [str(i) for i in range(m.num_keys)]
        what = "weight" if self.kind() == "weights" else "score" if self.kind() == "scores" \
            else self.kind()
        return (f"query token {r} {self.labels[r]!r} \u2192 key token {c} "
                f"{token_label(keys[c])!r}: {what} {float(self.values[r, c]):.4g}")

    def _on_moved(self, pos) -> None:
        cell = _cell_at(self.plot, pos, self.values.shape) if self.values.size else None
        text = self.cell_text(*cell) if cell else ""
        self.info.setText(text)
        self.plot.setToolTip(text)
