"""The features dock's rows in the time views: the chosen feature's activation track under the
spectrogram (a step line on the shared time axis, labelled with its peak) and the optional heat
strip of the file's top features x frames (each row scaled to its max)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui

from ..core.state.feature_view import top_matrix
from .colors import lut

TRACK_PEN = pg.mkPen(QtGui.QColor(20, 120, 40), width=1.5)
TRACK_MIN_PX = 50  # the track row's least height
TRACK_TEXT_MARGIN_PX = 4  # between the feature track's label and the track's edge
HEAT_N = 16  # rows of the heat strip
HEAT_PX = 96  # its height
HEAT_FONT_PT = 7  # its row labels (feature numbers)
UNLIMITED_PX = 16777215  # Qt's QWIDGETSIZE_MAX: a row's height without a limit


class QtFeatureTrack(QtCore.QObject):
    """Draws ``doc.features`` (the shown file's activations at the chosen site) into two rows
    it inserts into the time views; the features dock says when they show."""

    def __init__(self, doc, views, parent=None):
        super().__init__(parent)
        self.doc, self.fv, self.views = doc, doc.features, views
        self.track = views.insert_track("feature", after=views.spec, stretch=2)
        self.track.setMinimumHeight(TRACK_MIN_PX)
        # a step line without a fill (a fill path costs more to paint than the rest of the track)
        self.curve = pg.PlotDataItem(stepMode="center", skipFiniteCheck=True, pen=TRACK_PEN)
        self.track.addItem(self.curve)
        self.track_text = pg.TextItem("", color=(70, 70, 70), anchor=(0, 0),
                                      fill=QtGui.QColor(255, 255, 255, 190))
        self.track_text.setParentItem(self.track.vb)
        self.track_text.setPos(TRACK_TEXT_MARGIN_PX, 0)
        self._peak_s: float | None = None  # the drawn track's peak, which its label must not hide
        self.track.vb.sigXRangeChanged.connect(lambda *a: self.place_text())
        self.track.vb.sigResized.connect(lambda vb: self.place_text())
        self.track.vb.disableAutoRange()  # the document sets x; draw sets y
        self.heat = views.insert_track("top N", after=self.track, stretch=0)
        self.heat.setFixedHeight(0)
        self.heat.setVisible(False)
        self.heat_image = pg.ImageItem(axisOrder="row-major")
        self.heat_image.setLookupTable(lut("magma"))
        self.heat.addItem(self.heat_image)
        self.heat.invertY(True)
        self.heat.vb.disableAutoRange()
        self.heat_font = QtGui.QFont()
        self.heat_font.setPointSize(HEAT_FONT_PT)
        self.heat.getAxis("left").setStyle(tickFont=self.heat_font)
        self._heat_feats: list[int] = []
        self._heat_ticks: list | None = None
        self.heat.vb.sigResized.connect(lambda vb: self.label_heat())
        for plot in (self.track, self.heat):
            plot.vb.sigResized.connect(lambda vb: self.resync_x())

    def set_shown(self, on: bool) -> None:
        """The track row shows while the features dock is open."""
        self.track.setVisible(on)
        self.track.setMaximumHeight(UNLIMITED_PX if on else 0)
        QtCore.QTimer.singleShot(0, self.resync_x)

    def set_hint(self, text: str) -> None:
        self.track_text.setText(text)

    def draw(self, hint: str) -> str:
        """Draw the chosen feature's track (or, without one, ``hint``); returns what the
        dock's info line says."""
        track, edges = self.fv.track(), self.fv.track_edges()
        self.track.getAxis("left").setStyle(showValues=track is not None)  # no 0..1 over nothing
        if track is None or edges is None:
            self.curve.setData([], [])
            self._peak_s = None
            self.track_text.setText(hint)
            self.place_text()
            return hint
        self.curve.setData(edges, track)
        lo, hi = min(float(track.min()), 0.0), float(track.max())
        self.track.setYRange(lo, hi if hi > lo else lo + 1.0, padding=0.05)
        peak = int(np.argmax(track))
        self._peak_s = float(self.fv.grid.center_seconds(peak))
        text = f"feature {self.fv.feature}: max {hi:.3g} at {self._peak_s:.3f} s"
        self.track_text.setText(text)
        self.place_text()
        return f"{self.fv.site}  {text}"

    def place_text(self) -> None:
        """The label sits in the track's top-left corner, or in its top-right one when the
        peak it names lies under the left place."""
        vb = self.track.vb
        width = vb.width()
        right = False
        if self._peak_s is not None and width > 0:
            t0, t1 = vb.viewRange()[0]
            x = (self._peak_s - t0) / (t1 - t0) * width if t1 > t0 else 0.0
            label = self.track_text.boundingRect().width() + 2 * TRACK_TEXT_MARGIN_PX
            right = x <= label and x < width - label
        if right:
            self.track_text.setAnchor((1, 0))
            self.track_text.setPos(width - TRACK_TEXT_MARGIN_PX, 0)
        else:
            self.track_text.setAnchor((0, 0))
            self.track_text.setPos(TRACK_TEXT_MARGIN_PX, 0)

    def draw_heat(self, on: bool) -> None:
        """The heat strip of the file's top HEAT_N features, when ``on`` and activations are
        at hand."""
        on = on and self.fv.activations is not None
        self.heat.setVisible(on)
        self.heat.setFixedHeight(HEAT_PX if on else 0)
        if not on:
            self.heat_image.clear()
            return
        feats = [s.feature for s in self.fv.top(HEAT_N)]
        img = top_matrix(self.fv.activations, feats)
        edges = self.fv.track_edges()
        self.heat_image.setImage(img, levels=(0.0, 1.0), autoLevels=False)
        self.heat_image.setRect(QtCore.QRectF(edges[0], 0, edges[-1] - edges[0], len(feats)))
        self.heat.setYRange(0, len(feats), padding=0)
        self._heat_feats = feats
        self.label_heat()
        QtCore.QTimer.singleShot(0, self.resync_x)

    def label_heat(self) -> None:
        """The heat strip's rows labelled with their feature numbers: every row when the labels
        fit its height, else every n-th row so that none overlap."""
        feats = self._heat_feats
        if not feats or not self.heat.isVisible():
            return
        row_px = self.heat.vb.height() / len(feats)
        label_px = QtGui.QFontMetricsF(self.heat_font).height()
        step = max(1, int(np.ceil(label_px / max(row_px, 1e-9))))
        ticks = [[(i + 0.5, str(f)) for i, f in enumerate(feats) if i % step == 0], []]
        if ticks != self._heat_ticks:
            self._heat_ticks = ticks
            self.heat.getAxis("left").setTicks(ticks)

    def resync_x(self) -> None:
        """pyqtgraph links x ranges by pixel position: a row that appears (or resizes) before its
        axis has its width gets a shifted range; give it the document's view again. The waveform
        (every row links to it) is told nothing: pyqtgraph passes a range set on a linked view
        back to the view it links to, lined up by pixels, which would shift every row."""
        self.views.set_x_range_unlinked([p for p in (self.track, self.heat) if p.isVisible()],
                                        self.doc.nav.view)
