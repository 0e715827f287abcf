"""The stacked, linked time views: waveform, query profile, spectrogram, tiers, attention map.

All plots share one x axis in seconds (``setXLink`` to the waveform) and have left axes of the
same width, so that a time is at the same pixel column in every view. The document owns the
visible range, the selection, the cursor and the query; the views draw them and report what the
mouse did back to the document.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from ..core.speech.audio import to_mono
from ..core.state.document import Document
from ..core.frames import window_name
from ..core.attention.measures import PER_LAYER, TITLES
from ..core.models.previews import is_preview
from .colors import SPECTROGRAM_COLORMAP, colormap, lut
from .map_images import MapImages
from .spectrogram import QtSpectrogramJobs
from .tier_item import TierItem, phone_shade
from .viewbox import TimeViewBox

AXIS_WIDTH = 72  # px, every left axis (times line up only if these are equal)
TIER_PX = 30  # height of a tier row (words, phones, Whisper's words)
#: least heights of the waveform, the attention profile, the spectrogram and the map
WAVE_MIN_PX, PROFILE_MIN_PX, SPEC_MIN_PX, MAP_MIN_PX = 60, 50, 70, 160
SELECTION_BRUSH = QtGui.QColor(255, 200, 0, 55)
MAP_SELECTION_BRUSH = QtGui.QColor(0, 0, 0, 0)  # edges only: a tint would change the colours
CURSOR_PEN = pg.mkPen(QtGui.QColor(220, 30, 30), width=1, style=QtCore.Qt.PenStyle.DashLine)
PLAYHEAD_PEN = pg.mkPen(QtGui.QColor(0, 110, 255), width=2)
HOVER_PEN = pg.mkPen(QtGui.QColor(120, 120, 120, 150), width=1)
QUERY_PEN = pg.mkPen(QtGui.QColor(255, 60, 160), width=1)
BOUNDARY_PEN = pg.mkPen(QtGui.QColor(255, 255, 255, 60), width=1)
LABEL_SPACING_PX = 13  # closest two phone labels may sit on the map's query axis
ATTENDED_BRUSH = QtGui.QColor(255, 60, 160, 50)
SPECIAL_TOKENS = {"<|startoftranscript|>": "SOT", "<|notimestamps|>": "NT",
                  "<|endoftext|>": "EOT", "<|transcribe|>": "TR", "<|translate|>": "TL"}


def token_label(text: str) -> str:
    """Short readable label of a token for an axis."""
    if text in SPECIAL_TOKENS:
        return SPECIAL_TOKENS[text]
    if text.startswith("<|") and text.endswith("|>"):
        return text[2:-2]
    return text.replace(" ", "\u2423", 1) if text.startswith(" ") else text


NO_ATTENTION = "no attention yet"


class QtTimeViews(pg.GraphicsLayoutWidget):
    """Waveform, query profile, spectrogram, word and phone tiers, attention map."""

    playRequested = QtCore.pyqtSignal(object)  # list of (t0, t1) spans in seconds

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.setBackground("w")
        self.ci.layout.setSpacing(2)
        self.ci.setContentsMargins(4, 4, 4, 4)
        self.spectrograms = QtSpectrogramJobs(self)  # computed off the GUI thread, cached
        self.spectrograms.ready.connect(self._draw_spectrogram)
        self._map_rows: tuple[float, float] = (0.0, 1.0)
        self._map_rect = QtCore.QRectF(0, 0, 1, 1)
        self.map_images = MapImages()  # display-ready images of the shown maps (an LRU)
        # what was last handed to the map / colour bar / profile: set again only when it changes
        self._shown_rect: tuple | None = None  # (image shape, rect)
        self._shown_colormap: str | None = None
        self._shown_levels: tuple[float, float] | None = None
        self._profile_edges: tuple[object, np.ndarray] | None = None  # (maps, (K + 1,) seconds)
        self._profile_top: float | None = None

        self.wave = self._add_plot(0, "waveform")
        self.profile = self._add_plot(1, "profile")
        self.spec = self._add_plot(2, "spectrogram")
        self.words = self._add_plot(3, "words", tier=True)
        self.whisper_words = self._add_plot(4, "whisper", tier=True)  # DTW words (cross-attn)
        self.phones = self._add_plot(5, "phones", tier=True)
        self.map = self._add_plot(6, "attention")
        self.time_plots = [self.wave, self.profile, self.spec, self.words, self.whisper_words,
                           self.phones, self.map]
        for p in self.time_plots[1:]:
            p.setXLink(self.wave)
        # the document sets their ranges: no auto-range when a head switch gives them new data,
        # nor when the spectrogram arrives from its thread (x is linked: it would move every view)
        for p in (self.profile, self.map, self.spec):
            p.vb.disableAutoRange()
        self._stretch = dict(zip(self.time_plots, (3, 2, 3, 0, 0, 0, 12)))
        for row, p in enumerate(self.time_plots):
            self.ci.layout.setRowStretchFactor(row, self._stretch[p])
        for p in (self.words, self.phones, self.whisper_words):
            p.setFixedHeight(TIER_PX)
        self.wave.setMinimumHeight(WAVE_MIN_PX)
        self.profile.setMinimumHeight(PROFILE_MIN_PX)
        self.spec.setMinimumHeight(SPEC_MIN_PX)
        self.map.setMinimumHeight(MAP_MIN_PX)

        # waveform
        self.wave_curve = pg.PlotDataItem(pen=pg.mkPen(QtGui.QColor(30, 30, 30), width=1))
        self.wave_curve.setDownsampling(auto=True, method="peak")
        self.wave_curve.setClipToView(True)
        # redrawn only when the view changes, not when the map or the profile next to it does
        self.wave_curve.curve.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.wave.addItem(self.wave_curve)
        # query profile
        # a step line without a fill: pyqtgraph rebuilds a fill path in 50-point pieces on
        # every new row, which cost more than the rest of the profile; weights are finite
        self.profile_curve = pg.PlotDataItem(stepMode="center", skipFiniteCheck=True,
                                             pen=pg.mkPen(QtGui.QColor(200, 30, 120), width=1))
        self.profile.addItem(self.profile_curve)
        self.profile_text = pg.TextItem("click the map to choose a query frame",
                                        color=(70, 70, 70), anchor=(0, 0),
                                        fill=QtGui.QColor(255, 255, 255, 190))
        self.profile_text.setParentItem(self.profile.vb)
        self.profile_text.setPos(4, 0)
        # spectrogram
        self.spec_image = pg.ImageItem(axisOrder="row-major")
        self.spec_image.setLookupTable(lut(SPECTROGRAM_COLORMAP))
        self.spec_image.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.spec.addItem(self.spec_image)
        # tiers
        self.word_tier = TierItem()
        self.phone_tier = TierItem(shade=phone_shade)
        self.whisper_tier = TierItem()
        self.words.addItem(self.word_tier)
        self.whisper_words.addItem(self.whisper_tier)
        self.phones.addItem(self.phone_tier)
        self.set_whisper_words([])
        # attention map
        self.map_image = pg.ImageItem(axisOrder="row-major")  # draws uint8 colour indices
        self.map_levels: tuple[float, float] | None = None  # of the shown image
        self.map.addItem(self.map_image)
        self.map.invertY(True)
        self.map_bounds = pg.PlotDataItem(pen=BOUNDARY_PEN, connect="pairs")
        self.map.addItem(self.map_bounds)
        self.query_line = pg.InfiniteLine(angle=0, pen=QUERY_PEN, movable=False)
        self.query_line.setVisible(False)
        self.map.addItem(self.query_line)
        self.map.showAxis("bottom")
        self.map.getAxis("bottom").setLabel("time", units="s")
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("viridis"),
                                        interactive=False, width=12)
        self.addItem(self.colorbar, row=6, col=1)
        self.map_title = pg.TextItem("", color=(255, 255, 255), anchor=(0, 0),
                                     fill=QtGui.QColor(0, 0, 0, 120))
        self.map_title.setParentItem(self.map.vb)
        self.map_title.setPos(4, 2)
        self.map_title.setText(NO_ATTENTION)
        # long titles wrap inside the plot instead of running off its right edge
        self.map.vb.sigResized.connect(lambda vb: _wrap_to(self.map_title, vb))
        self.profile.vb.sigResized.connect(lambda vb: _wrap_to(self.profile_text, vb))

        # marks shared by every time view
        self.regions, self.cursors, self.playheads, self.hovers, self.query_marks = [], [], [], [], []
        self.attended: list[pg.LinearRegionItem] = []
        for p in self.time_plots:
            self._add_marks(p)

        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.map.vb.sigResized.connect(lambda vb: self._update_query_ticks())
        e = doc.events
        e.current.connect(self._on_current_change)
        e.alignment.connect(self._on_alignment_change)
        e.extraction.connect(self._on_extraction_change)
        for name in ("component", "layer", "head", "kind", "scale", "colormap", "rollout"):
            getattr(e, name).connect(self._on_map_change)
        e.view.connect(self._on_view_change)
        e.selection.connect(self._on_selection_change)
        e.cursor.connect(self._on_cursor_change)
        e.query.connect(self._on_query_change)
        e.hover.connect(self._on_hover_change)
        e.playhead.connect(self._on_playhead_change)
        e.spectrogram.connect(lambda ev: self._draw_spectrogram())
        self._on_current_change(None)

    # --- construction ----------------------------------------------------------------------------
    def _add_plot(self, row: int, name: str, tier: bool = False) -> pg.PlotItem:
        vb = TimeViewBox()
        p = self.addPlot(row=row, col=0, viewBox=vb)
        p.hideButtons()
        p.setMenuEnabled(False)
        p.hideAxis("bottom")
        left = p.getAxis("left")
        left.setWidth(AXIS_WIDTH)
        left.setStyle(autoExpandTextSpace=False, tickTextOffset=4)
        left.setTextPen(QtGui.QColor(40, 40, 40))
        left.setPen(QtGui.QColor(120, 120, 120))
        p.getAxis("bottom").setTextPen(QtGui.QColor(40, 40, 40))
        p.getAxis("bottom").setPen(QtGui.QColor(120, 120, 120))
        if tier:
            p.setYRange(0, 1, padding=0)
            left.setTicks([[(0.5, name)], []])
            left.setStyle(tickLength=0)
        p.name = name
        vb.sigSpan.connect(lambda x0, y0, x1, y1, fin, p=p: self._on_span(p, x0, y0, x1, y1, fin))
        vb.sigClick.connect(lambda x, y, dbl, p=p: self._on_click(p, x, y, dbl))
        vb.sigZoom.connect(lambda f, c: self.doc.nav.zoom(f, c))
        vb.sigScroll.connect(self._on_scroll)
        return p

    def _add_marks(self, p: pg.PlotItem) -> None:
        """Selection, cursor, playhead, hover and query marks of one time plot."""
        brush = MAP_SELECTION_BRUSH if p is self.map else SELECTION_BRUSH
        edge = QtGui.QColor(255, 210, 60, 230) if p is self.map else \
            QtGui.QColor(200, 140, 0, 160)
        region = pg.LinearRegionItem(movable=False, brush=brush, pen=pg.mkPen(edge, width=1))
        region.setZValue(5)
        region.setVisible(False)
        p.addItem(region, ignoreBounds=True)
        self.regions.append(region)
        for store, pen, z in ((self.cursors, CURSOR_PEN, 10), (self.playheads, PLAYHEAD_PEN, 12),
                              (self.hovers, HOVER_PEN, 9), (self.query_marks, QUERY_PEN, 8)):
            line = pg.InfiniteLine(angle=90, pen=pen, movable=False)
            line.setZValue(z)
            line.setVisible(False)
            p.addItem(line, ignoreBounds=True)
            store.append(line)

    def insert_track(self, name: str, after: pg.PlotItem, stretch: int = 0) -> pg.PlotItem:
        """A new time plot beneath ``after``: x linked, the same left-axis width, the shared
        marks (selection, cursor, playhead, hover); mouse clicks and drags act as on the others."""
        order = list(self.time_plots)
        for p in order:
            self.ci.removeItem(p)
        self.ci.removeItem(self.colorbar)
        p = self._add_plot(len(order), name)
        self.ci.removeItem(p)
        order.insert(order.index(after) + 1, p)
        self._stretch[p] = stretch
        for row, q in enumerate(order):
            self.ci.addItem(q, row=row, col=0)
            self.ci.layout.setRowStretchFactor(row, self._stretch[q])
        self.ci.addItem(self.colorbar, row=order.index(self.map), col=1)
        self.time_plots = order
        p.setXLink(self.wave)
        self._add_marks(p)
        self._on_selection_change(None)
        self._on_cursor_change(None)
        return p

    # --- mouse -> document -----------------------------------------------------------------------
    def _on_span(self, plot, x0, y0, x1, y1, finished) -> None:
        if abs(x1 - x0) < 1e-9:
            return
        self.doc.nav.set_selection((x0, x1))
        self.phone_tier.set_selected(None)
        self.word_tier.set_selected(None)

    def _on_click(self, plot, x: float, y: float, double: bool) -> None:
        doc = self.doc
        if plot is self.map:
            doc.attention.set_query(doc.attention.query_at(y))
            return
        if plot in (self.phones, self.words, self.whisper_words):
            item = {self.phones: self.phone_tier, self.words: self.word_tier,
                    self.whisper_words: self.whisper_tier}[plot]
            i = item.index_at(x)
            if i is not None:
                self.select_interval(item, i, play=True)
                return
        doc.nav.set_selection(None)
        doc.nav.set_cursor(x)

    def select_interval(self, item: TierItem, index: int, play: bool = True) -> tuple[float, float]:
        """Select exactly one tier interval (and play it, as Praat does on Tab)."""
        iv = item.intervals[index]
        span = (float(iv.start_s), float(iv.end_s))
        self.doc.nav.set_selection(span)
        for other in (self.phone_tier, self.word_tier, self.whisper_tier):
            other.set_selected(index if other is item else None)
        if play:
            self.playRequested.emit([span])
        return span

    def _on_scroll(self, dx: float) -> None:
        t0, t1 = self.doc.nav.view
        self.doc.nav.set_view(t0 + dx, t1 + dx)

    def _on_mouse_moved(self, pos) -> None:
        for p in self.time_plots:
            if p.vb.sceneBoundingRect().contains(pos):
                pt = p.vb.mapSceneToView(pos)
                q = self.doc.attention.query_at(pt.y()) if p is self.map else None
                self.doc.nav.set_hover((float(pt.x()), q))
                return
        self.doc.nav.set_hover(None)

    # --- document -> drawing ---------------------------------------------------------------------
    def _on_current_change(self, event) -> None:
        u = self.doc.utterance
        self.wave.getAxis("left").setStyle(showValues=u is not None)  # no 0..1 over nothing
        if u is None:
            self.wave_curve.setData([], [])
            self._draw_spectrogram()
            self.word_tier.set_intervals([])
            self.phone_tier.set_intervals([])
            self._on_extraction_change(None)
            return
        audio = u.audio
        mono = to_mono(audio.original)
        t = np.arange(len(mono), dtype=np.float64) / audio.original_rate
        self.wave_curve.setData(t, mono)
        peak = float(np.max(np.abs(mono))) or 1.0
        self.wave.setYRange(-peak, peak, padding=0.05)
        self._draw_spectrogram()
        self._on_alignment_change(None)
        self._on_view_change(None)
        self._on_extraction_change(None)

    def _draw_spectrogram(self) -> None:
        """The shown utterance's spectrogram of the document's kind, once it is computed."""
        u = self.doc.utterance
        self.spectrograms.keep([e.utterance.audio for e in self.doc.files.entries])
        spec = None if u is None else self.spectrograms.get(u.audio, self.doc.attention.spectrogram)
        if spec is None:  # nothing open, or still computing: no ticks over an empty plot
            self.spec_image.clear()
            self.spec.getAxis("left").setTicks([[], []])
            return
        self.spec_image.setImage(spec.db, levels=spec.levels, autoLevels=False)
        self.spec_image.setRect(QtCore.QRectF(*spec.rect()))
        self.spec.setYRange(*spec.y_extent, padding=0)
        ticks = [(spec.y_of_hz(f), f"{f / 1000:g}k" if f >= 1000 else f"{f:g}")
                 for f in spec.ticks_hz()]
        self.spec.getAxis("left").setTicks([ticks, []])
        # a y-range change re-syncs the x-linked plots by their screen geometry, which a hidden
        # plot (zero height, other x) gets wrong: put every plot back on the document's view
        self._on_view_change(None)

    def _on_alignment_change(self, event) -> None:
        al = self.doc.alignment
        phones = getattr(al, "phones", None) if al is not None else None
        words = getattr(al, "words", None) if al is not None else None
        self.phone_tier.set_intervals(phones.intervals if phones is not None else [])
        if words is not None:
            self.word_tier.set_intervals(words.intervals)
        else:
            self.word_tier.set_intervals(self._transcript_words())
        self._draw_map_frame()

    def _transcript_words(self) -> list:
        ex = self.doc.attention.extraction
        if ex is None:
            return []
        return [_Span(w.start_s, w.end_s, w.text) for w in ex.transcript.words]

    def _on_extraction_change(self, event) -> None:
        al = self.doc.alignment
        if al is None or getattr(al, "words", None) is None:
            self.word_tier.set_intervals(self._transcript_words())
        self._draw_map_frame()
        self._draw_map_image()
        self._draw_profile()

    def _on_map_change(self, event) -> None:
        if event is not None and event.type == "component":
            self._draw_map_frame()
        self._draw_map_image()
        self._draw_profile()

    def _draw_map_frame(self) -> None:
        """Placement, axis ticks and phone boundaries of the map (not its pixels)."""
        m = self.doc.attention.maps
        left = self.map.getAxis("left")
        empty = m is None
        self.colorbar.setVisible(not empty)
        for axis in (left, self.profile.getAxis("left")):  # no 0..1 ticks over nothing
            axis.setStyle(showValues=not empty)
        if empty:
            self.map_image.clear()
            self.map_bounds.setData([], [])
            left.setTicks(None)
            _set_text(self.map_title, NO_ATTENTION)
            return
        k0, k1 = m.key_extent_seconds()
        q0, q1 = m.query_extent_seconds()
        self._map_rows = (q0, q1)
        self._map_rect = QtCore.QRectF(k0, q0, k1 - k0, q1 - q0)
        self.map_image.setRect(self._map_rect)
        phones = getattr(self.doc.alignment, "phones", None) if self.doc.alignment else None
        if m.query_grid is None:
            labels = m.query_labels or [str(i) for i in range(m.num_queries)]
            left.setTicks([[(i + 0.5, token_label(s)) for i, s in enumerate(labels)], []])
        elif phones is not None:
            self._update_query_ticks()
        else:
            left.setTicks(None)
        xs, ys = [], []
        if phones is not None:
            for iv in phones.intervals[1:]:
                b = iv.start_s
                if k0 <= b <= k1:
                    xs += [b, b]
                    ys += [q0, q1]
                if m.query_grid is not None and q0 <= b <= q1:
                    xs += [k0, k1]
                    ys += [b, b]
        self.map_bounds.setData(xs, ys)
        self._on_view_change(None)
        self._on_query_change(None)

    def _update_query_ticks(self) -> None:
        """Phone labels along the map's query axis, dropping those that would overlap."""
        m = self.doc.attention.maps
        al = self.doc.alignment
        phones = getattr(al, "phones", None) if al is not None else None
        if m is None or m.query_grid is None or phones is None:
            return
        y0, y1 = self.map.vb.viewRange()[1]
        px_per_s = self.map.vb.height() / max(y1 - y0, 1e-9)
        ticks, last = [], -1e9
        for iv in phones.intervals:
            mid = (iv.start_s + iv.end_s) / 2
            if not iv.label or not y0 <= mid <= y1:
                continue
            if (mid - last) * px_per_s >= LABEL_SPACING_PX:
                ticks.append((mid, iv.label))
                last = mid
        self.map.getAxis("left").setTicks([ticks, []])

    def _draw_map_image(self) -> None:
        """Only the pixels: the already extracted (Q, K) slice of the shown layer and head."""
        doc = self.doc
        shown = self.map_images.shown(doc)
        if shown is None:
            self.map_image.clear()
            self.map_levels = None
            self._shown_rect = None
            return
        levels, indices = shown
        self.map_levels = levels  # the colour bar's range (doc.attention.image() has the values)
        # the colour indices (pyqtgraph's own rescale, done once per image in the cache): the
        # ImageItem draws them as Indexed8 with no per-paint float pass
        self.map_image.setImage(indices, levels=None, lut=lut(doc.attention.colormap), autoLevels=False)
        placed = (indices.shape, self._map_rect.getRect())
        if placed != self._shown_rect:  # the rect scales by the image size: set it after
            self.map_image.setRect(self._map_rect)
            self._shown_rect = placed
        if doc.attention.colormap != self._shown_colormap:
            self.colorbar.setColorMap(colormap(doc.attention.colormap))
            self._shown_colormap = doc.attention.colormap
        if levels != self._shown_levels:
            self.colorbar.setLevels(levels)
            self._shown_levels = levels
        m = doc.attention.maps
        head = "mean of heads" if doc.attention.head is None else f"head {doc.attention.head} of 0\u2013{m.num_heads - 1}"
        scale = {"global": "", "row": ", rows scaled to max", "log": ", log10"}[doc.attention.scale]
        what = TITLES.get(doc.attention.kind, doc.attention.kind)
        if doc.attention.kind in PER_LAYER:
            head = "all heads"
        win = f", {window_name(doc.attention.window, m.num_windows)}" if m.num_windows > 1 else ""
        rows = "query tokens" if m.query_grid is None else "query time"
        if doc.attention.rollout:
            title = (f"{m.title}: rollout of {m.num_layers} layers (head mean + identity){win}"
                     f"   rows: {rows} \u2193, columns: key time \u2192")
        else:
            title = (f"{m.title}: layer {doc.attention.layer} of 0\u2013{m.num_layers - 1}, {head} ({what}{scale})"
                     f"{win}   rows: {rows} \u2193, columns: key time \u2192")
        if is_preview(doc.attention.extraction):
            title = "PREVIEW (numpy) \u2014 " + title
        _set_text(self.map_title, title)

    def _draw_profile(self) -> None:
        doc = self.doc
        m = doc.attention.maps
        row = doc.attention.query_row()
        if m is None or row is None or m.key_grid is None:
            if m is None:
                self._profile_edges = None  # do not keep closed maps alive
            self.profile_curve.setData([], [])
            _set_text(self.profile_text, "click the map to choose a query frame"
                      if m is not None else "")
            return
        self.profile_curve.setData(self._key_edges(m), row)
        top = float(row.max()) if row.size else 1.0
        top = top if top > 0 else 1.0
        if top != self._profile_top:
            self.profile.setYRange(0, top, padding=0.08)
            # settle the new transform now: left to the paint, the items' updates that follow
            # it would ask for a second repaint of the profile
            self.profile.vb.updateMatrix()
            self._profile_top = top
        pad = 0.0 if doc.attention.rollout else float(m.head_padding(doc.attention.layer, doc.attention.head)[doc.attention.query])
        if m.query_grid is not None:
            who = f"query {doc.attention.query_time():.3f} s"
        else:
            labels = m.query_labels or []
            who = f"query token {token_label(labels[doc.attention.query]) if labels else doc.attention.query}"
        _set_text(self.profile_text, f"{who}: weight over key time"
                  + (f"; {100 * pad:.1f}% went to padding" if pad >= 0.001 else ""))

    def _key_edges(self, m) -> np.ndarray:
        """(K + 1,) start times (s) of the key frames and the end of the last, per maps."""
        if self._profile_edges is None or self._profile_edges[0] is not m:
            edges = m.key_grid.span_seconds(np.arange(m.num_keys + 1))[0]
            self._profile_edges = (m, np.asarray(edges, dtype=np.float64))
        return self._profile_edges[1]

    def _on_view_change(self, event) -> None:
        t0, t1 = self.doc.nav.view
        self.wave.setXRange(t0, t1, padding=0)
        m = self.doc.attention.maps
        if m is not None and m.query_grid is not None:
            q0, q1 = self._map_rows
            a, b = max(t0, q0), min(t1, q1)
            if b > a:
                self.map.setYRange(a, b, padding=0)
            else:
                self.map.setYRange(q0, q1, padding=0)
        elif m is not None:
            self.map.setYRange(0, m.num_queries, padding=0)
        self._update_query_ticks()

    def _on_selection_change(self, event) -> None:
        sel = self.doc.nav.selection
        for r in self.regions:
            r.setVisible(sel is not None)
            if sel is not None:
                r.setRegion(sel)
        if sel is None:
            self.phone_tier.set_selected(None)
            self.word_tier.set_selected(None)

    def _on_cursor_change(self, event) -> None:
        t = self.doc.nav.cursor
        for line in self.cursors:
            line.setVisible(t is not None)
            if t is not None:
                line.setValue(t)

    def _on_query_change(self, event) -> None:
        doc = self.doc
        m = doc.attention.maps
        q = doc.attention.query
        visible = m is not None and q is not None
        self.query_line.setVisible(visible)
        t = doc.attention.query_time()
        for line in self.query_marks:
            line.setVisible(t is not None)
            if t is not None:
                line.setValue(t)
        if visible:
            y = t if m.query_grid is not None else q + 0.5
            self.query_line.setValue(y)
        self.show_attended([])
        self._draw_profile()

    def _on_hover_change(self, event) -> None:
        h = self.doc.nav.hover
        for line in self.hovers:
            line.setVisible(h is not None)
            if h is not None:
                line.setValue(h[0])

    def _on_playhead_change(self, event) -> None:
        t = self.doc.nav.playhead
        for line in self.playheads:
            line.setVisible(t is not None)
            if t is not None:
                line.setValue(t)

    def show_attended(self, spans) -> None:
        """Highlight key spans (seconds) on the profile and the map."""
        for r in self.attended:
            r.getViewBox().removeItem(r) if r.getViewBox() else None
        self.attended = []
        for a, b in spans:
            for p in (self.profile, self.map, self.wave):
                r = pg.LinearRegionItem((a, b), movable=False, brush=ATTENDED_BRUSH,
                                        pen=pg.mkPen(None))
                r.setZValue(4)
                p.addItem(r, ignoreBounds=True)
                self.attended.append(r)

    def set_whisper_words(self, intervals, tip: str = "") -> None:
        """Whisper's DTW word boundaries as a tier row beneath the reference words (the row
        collapses when there are none, e.g. for wav2vec 2.0)."""
        self.whisper_tier.set_intervals(intervals)
        self.whisper_tier.note = tip
        on = bool(intervals)
        self.whisper_words.setFixedHeight(TIER_PX if on else 0)
        self.whisper_words.setVisible(on)
        self.whisper_words.setToolTip(tip)

    def set_x_range_unlinked(self, plots, view: tuple[float, float]) -> None:
        """Give ``plots`` (rows linked to the waveform) the x range ``view`` without the
        waveform hearing of it: pyqtgraph passes a range set on a linked view back to the view
        it links to, lined up by pixels, which would shift every row."""
        self.wave.vb.blockLink(True)
        try:
            for plot in plots:
                plot.setXRange(*view, padding=0)
        finally:
            self.wave.vb.blockLink(False)

    # --- for tests and screenshots ---------------------------------------------------------------
    def shown_plots(self) -> list[pg.PlotItem]:
        """The time plots on screen (a collapsed row, e.g. no Whisper words, is left out)."""
        return [p for p in self.time_plots if p.isVisible()]

    def x_ranges(self) -> list[tuple[float, float]]:
        return [tuple(p.vb.viewRange()[0]) for p in self.shown_plots()]

    def left_axis_widths(self) -> list[float]:
        return [p.getAxis("left").width() for p in self.shown_plots()]


TEXT_MARGIN_PX = 8  # between a plot's caption and the plot's right edge


def _wrap_to(item: pg.TextItem, vb) -> None:
    """Wrap ``item``'s text at the width of the view box it sits in."""
    width = vb.width() - item.pos().x() - TEXT_MARGIN_PX
    if width > 0 and abs(item.textItem.textWidth() - width) >= 1:
        item.setTextWidth(width)


def _set_text(item: pg.TextItem, text: str) -> None:
    """Set a TextItem's text only when it differs (each set re-lays out and repaints it)."""
    if item.textItem.toPlainText() != text:
        item.setText(text)


class _Span:
    """An interval-like object (start_s, end_s, label) for transcript words."""

    __slots__ = ("start_s", "end_s", "label")

    def __init__(self, start_s: float, end_s: float, label: str):
        self.start_s, self.end_s, self.label = start_s, end_s, label
