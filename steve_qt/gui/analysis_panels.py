"""Analysis panels (docks): the interval x interval matrix of the shown head, the layer x head
grid of head statistics, and the Whisper DTW word tier beneath the reference words.

The numbers come from steve_qt.core.attention.analysis and the adapter's word alignment on the already extracted maps; the
panels follow the document's events and never run the model.
"""

from __future__ import annotations


import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from ..core.attention import analysis
from ..core.state.document import Document
from ..core.errors import SteveError
from ..core.speech.alignment import Interval
from ..core.attention.measures import PER_LAYER
from .coalesce import Coalesced
from .colors import colormap, lut

Qt = QtCore.Qt
MATRIX_SOURCES = {"phones": "phone \u00d7 phone", "words": "word \u00d7 word",
                  "classes": "phone class \u00d7 phone class"}
MATRIX_VALUES = {"mean": "mean weight per frame pair", "total": "total mass (query \u2192 key)"}
#: what one cell of the shown kind of map is called (the Values box's choice)
KIND_NOUNS = {"weights": "weight", "scores": "score", "norm": "attention norm",
              "value_zeroing": "value zeroing", "grad": "grad relevance"}
STAT_TITLES = {"mean_distance_ms": "mean distance (ms)", "entropy_bits": "entropy (bits)",
               "own_phone_mass": "own-phone mass", "padding_mass": "padding mass",
               "silence_share": "silence share"}
LABEL_GAP_PX = 4  # space between two axis labels
MAX_CELL_TEXT = 400  # cells beyond this count get tooltips only
VALUE_BOX_CHARS = 14  # the phone matrix's value box shows at least this many characters
SUMMARY_MAX_PX = 130  # the head statistics' summary table's greatest height


def matrix_value_title(value: str, kind: str) -> str:
    """The phone matrix's caption for ``value`` (mean | total) of a ``kind`` of map."""
    if kind == "weights":
        return MATRIX_VALUES[value]
    noun = KIND_NOUNS.get(kind, kind.replace("_", " "))
    return (f"mean {noun} per frame pair" if value == "mean"
            else f"total {noun} (query \u2192 key)")


def _combo(items: dict) -> QtWidgets.QComboBox:
    c = QtWidgets.QComboBox()
    for key, title in items.items():
        c.addItem(title, key)
    c.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    return c


def _matrix_plot() -> tuple[pg.PlotWidget, pg.ImageItem]:
    plot = pg.PlotWidget(background="w")
    plot.hideButtons()
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(False, False)
    plot.invertY(True)
    plot.setAspectLocked(False)
    for name in ("left", "bottom"):
        ax = plot.getAxis(name)
        ax.enableAutoSIPrefix(False)  # category axes: no "(x0.001)" on an empty plot
        ax.setTextPen(QtGui.QColor(40, 40, 40))
        ax.setPen(QtGui.QColor(120, 120, 120))
    image = pg.ImageItem(axisOrder="row-major")
    plot.addItem(image)
    plot.getPlotItem().vb.sigResized.connect(lambda vb: _fit_ticks(plot))
    return plot, image


def _cell_at(plot: pg.PlotWidget, scene_pos, shape: tuple[int, int]) -> tuple[int, int] | None:
    """(row, col) of the image cell under a scene position, or None."""
    pt = plot.getPlotItem().vb.mapSceneToView(scene_pos)
    r, c = int(np.floor(pt.y())), int(np.floor(pt.x()))
    return (r, c) if 0 <= r < shape[0] and 0 <= c < shape[1] else None


def _draw(plot: pg.PlotWidget, image: pg.ImageItem, values: np.ndarray, rows: list[str],
          cols: list[str], cmap: str) -> None:
    shown = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    finite = values[np.isfinite(values)]
    lo = float(min(finite.min(), 0.0)) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    image.setImage(np.ascontiguousarray(shown), levels=(lo, hi if hi > lo else lo + 1e-9),
                   lut=lut(cmap), autoLevels=False)
    image.setRect(QtCore.QRectF(0, 0, shown.shape[1], shown.shape[0]))
    plot.labels = (list(rows), list(cols))
    plot.setXRange(0, max(shown.shape[1], 1), padding=0)
    plot.setYRange(0, max(shown.shape[0], 1), padding=0)
    _fit_ticks(plot)


def thinned(labels: list[str], cell_px: float, label_px: list[float]) -> list[tuple[float, str]]:
    """Tick (position, label) pairs keeping every step-th label so that none overlap."""
    if not labels:
        return []
    need = max(label_px) + LABEL_GAP_PX
    step = max(1, int(np.ceil(need / max(cell_px, 1e-9))))
    return [(i + 0.5, s) for i, s in enumerate(labels) if i % step == 0]


def _fit_ticks(plot: pg.PlotWidget) -> None:
    """Row/column labels, thinned to what fits the plot's current size."""
    rows, cols = getattr(plot, "labels", ([], []))
    vb = plot.getPlotItem().vb
    fm = QtGui.QFontMetricsF(plot.font())
    h_px = vb.height() / max(len(rows), 1)
    w_px = vb.width() / max(len(cols), 1)
    _set_ticks(plot.getAxis("left"), [thinned(rows, h_px, [fm.height()]), []])
    _set_ticks(plot.getAxis("bottom"),
               [thinned(cols, w_px, [fm.horizontalAdvance(c) for c in cols] or [0.0]), []])


def _set_ticks(axis: pg.AxisItem, ticks: list) -> None:
    """Set an axis's ticks only when they differ: each set redraws the axis (1-2 ms), and
    switching heads keeps the same intervals."""
    if getattr(axis, "_tickLevels", None) != ticks:
        axis.setTicks(ticks)


class QtPhoneMatrix(QtWidgets.QWidget):
    """Interval x interval attention of the shown layer/head (or mean, or rollout)."""

    playRequested = QtCore.pyqtSignal(object)  # list of (t0, t1) spans in seconds

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.matrix = None  # IntervalMatrix | ClassMatrix | None
        self.values = np.zeros((0, 0))  # (rows, cols) as shown
        self._shown: tuple | None = None  # what the drawn matrix was made of (see refresh)
        self.source = _combo(MATRIX_SOURCES)
        self.value = _combo(MATRIX_VALUES)
        # its texts name the shown measure and grow with it: let it share the dock's width
        # rather than widen the right column (the full text is in the list and the caption)
        self.value.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.value.setMinimumContentsLength(VALUE_BOX_CHARS)
        self.value.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding,
                                 QtWidgets.QSizePolicy.Policy.Fixed)
        self.feature = _combo({f: f for f in analysis.CLASS_FEATURES})
        self.feature.setToolTip("phone-class feature: kind (silence/vowel/consonant), manner, "
                                "place, voicing")
        self.plot, self.image = _matrix_plot()
        self.plot.getAxis("bottom").setLabel("key")
        self.plot.getAxis("left").setLabel("query")
        self.info = QtWidgets.QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.PlainText)

        top = QtWidgets.QHBoxLayout()
        for w in (self.source, self.value, self.feature):
            top.addWidget(w)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.info)

        for c in (self.source, self.value, self.feature):
            c.activated.connect(lambda i: self.refresh())
        self.value.currentTextChanged.connect(self.value.setToolTip)
        self.plot.scene().sigMouseClicked.connect(self._on_clicked)
        self.plot.scene().sigMouseMoved.connect(self._on_moved)
        self.refresh_soon = Coalesced(self.refresh, self)
        e = doc.events
        for name in ("current", "extraction", "component", "layer", "head", "rollout",
                     "alignment", "colormap", "kind"):
            getattr(e, name).connect(self.refresh_soon.request)
        self.refresh()

    # --- numbers ---------------------------------------------------------------------------------
    def compute(self):
        """The matrix of the shown head (analysis.aggregate_*); SteveError says why not."""
        doc = self.doc
        m, al = doc.attention.maps, doc.alignment
        if m is None:
            raise SteveError("no attention yet")
        src = self.source.currentData()
        tier = getattr(al, "words" if src == "words" else "phones", None) if al else None
        if tier is None or not tier.intervals:
            raise SteveError(f"the alignment has no {'word' if src == 'words' else 'phone'} "
                             "tier (open one with File > Open Alignment)")
        kind = self.kind
        if src == "classes":
            return analysis.aggregate_classes(m, doc.attention.shown_layer, doc.attention.head, tier,
                                              self.feature.currentData(), kind=kind)
        return analysis.aggregate_intervals(m, doc.attention.shown_layer, doc.attention.head, tier, kind=kind)

    @property
    def kind(self) -> str:
        """The kind of map aggregated: the one the views show (weights under rollout)."""
        return "weights" if self.doc.attention.rollout else self.doc.attention.kind

    def value_title(self) -> str:
        return matrix_value_title(self.value.currentData(), self.kind)

    def _state(self) -> tuple:
        d = self.doc
        a = d.attention
        return (a.maps, d.alignment, a.layer, a.shown_layer, a.head, a.rollout, self.kind,
                self.source.currentData(), self.value.currentData(),
                self.feature.currentData(), d.attention.colormap)

    def refresh(self) -> None:
        state = self._state()
        if self._shown is not None and len(state) == len(self._shown) and all(
                a is b or (isinstance(a, (str, int, bool, type(None))) and a == b)
                for a, b in zip(state, self._shown)):
            return  # one extraction announces several fields: compute and draw once
        self._shown = state
        self.feature.setVisible(self.source.currentData() == "classes")
        for i in range(self.value.count()):  # the captions name the kind of map shown
            self.value.setItemText(i, matrix_value_title(self.value.itemData(i), self.kind))
        self.value.setToolTip(self.value.currentText())  # the box may be too narrow for it
        try:
            self.matrix = self.compute()
        except SteveError as exc:
            if self.matrix is None and self.image.image is None and self.info.text() == str(exc):
                return  # shown already: clearing again would repaint the panel on every switch
            self.matrix = None
            self.values = np.zeros((0, 0))
            self.image.clear()
            self.plot.labels = ([], [])
            _fit_ticks(self.plot)
            self.info.setText(str(exc))
            return
        mat = self.matrix
        self.values = np.asarray(getattr(mat, self.value.currentData()), dtype=np.float64)
        _draw(self.plot, self.image, self.values, mat.query_labels, mat.key_labels,
              self.doc.attention.colormap)
        doc = self.doc
        if doc.attention.rollout:
            who = "rollout"
        elif self.kind in PER_LAYER:  # one map per layer: no head to name
            who = f"layer {doc.attention.layer}"
        else:
            who = f"layer {doc.attention.layer}, " + ("mean of heads" if doc.attention.head is None
                                            else f"head {doc.attention.head}")
        self.info.setText(f"{who}: {self.value_title()}; rows query, columns key. "
                          "Click a cell: select the key interval, query = middle of the row's "
                          "interval, play the key.")

    # --- mouse -----------------------------------------------------------------------------------
    def cell_text(self, r: int, c: int) -> str:
        mat = self.matrix
        return (f"{mat.query_labels[r]!s} \u2192 {mat.key_labels[c]!s}: "
                f"{self.value_title()} {self.values[r, c]:.4g}")

    def _on_moved(self, pos) -> None:
        cell = _cell_at(self.plot, pos, self.values.shape) if self.matrix is not None else None
        self.plot.setToolTip(self.cell_text(*cell) if cell else "")

    def _on_clicked(self, ev) -> None:
        if self.matrix is None or ev.button() != Qt.MouseButton.LeftButton:
            return
        cell = _cell_at(self.plot, ev.scenePos(), self.values.shape)
        if cell is not None:
            self.select_cell(*cell)

    def select_cell(self, r: int, c: int, play: bool = True) -> tuple[float, float] | None:
        """Select the key interval of cell (r, c) as the time selection, put the query frame at
        the middle of the query interval, and play the key interval."""
        mat, doc = self.matrix, self.doc
        self.info.setText(self.cell_text(r, c))
        if not isinstance(mat, analysis.IntervalMatrix):
            return None  # class cells have no single interval
        q_iv, k_iv = mat.query_intervals[r], mat.key_intervals[c]
        span = (float(k_iv.start_s), float(k_iv.end_s))
        doc.nav.set_selection(span)
        m = doc.attention.maps
        if m is not None and m.query_grid is not None:
            mid = (q_iv.start_s + q_iv.end_s) / 2
            doc.attention.set_query(int(m.query_grid.frame_at_seconds(mid, m.num_queries)))
        if play:
            self.playRequested.emit([span])
        return span


class QtHeadStats(QtWidgets.QWidget):
    """Layer x head grid of one statistic of analysis.head_statistics, values in the cells."""

    def __init__(self, doc: Document, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.stats: analysis.HeadStats | None = None
        self.values = np.zeros((0, 0))
        names = dict(STAT_TITLES)
        for k in analysis.DEFAULT_KS:
            names[f"local_share_{k}"] = f"local share \u00b1{k} frames"
        self.stat = _combo(names)
        self.stat.setCurrentIndex(self.stat.findData("local_share_5"))
        self.plot, self.image = _matrix_plot()
        self.plot.getAxis("bottom").setLabel("head")
        self.plot.getAxis("left").setLabel("layer")
        self.texts: list[pg.TextItem] = []
        self.summary = QtWidgets.QPlainTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setMaximumHeight(SUMMARY_MAX_PX)
        self.summary.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.stat)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.summary)
        self._shown: tuple | None = None  # (maps, alignment, statistic, colormap) drawn
        self.stat.activated.connect(lambda i: self.refresh())
        self.plot.scene().sigMouseClicked.connect(self._on_clicked)
        self.plot.scene().sigMouseMoved.connect(self._on_moved)
        self.refresh_soon = Coalesced(self.refresh, self)
        e = doc.events
        for name in ("current", "extraction", "component", "alignment", "colormap"):
            getattr(e, name).connect(self.refresh_soon.request)
        for name in ("layer", "head", "rollout"):
            getattr(e, name).connect(lambda ev: self._mark_current())
        self.frame = pg.QtWidgets.QGraphicsRectItem(0, 0, 1, 1)
        self.frame.setPen(pg.mkPen(QtGui.QColor(255, 40, 40), width=2))
        self.frame.setZValue(10)
        self.plot.addItem(self.frame)
        self.refresh()

    def compute(self) -> analysis.HeadStats | None:
        """Head statistics of the shown maps (cached per maps and alignment)."""
        m, al = self.doc.attention.maps, self.doc.alignment
        if m is None:
            return None
        self.stats = self.doc.cache.head_statistics(m, al)
        return self.stats

    def shown_stat(self) -> str:
        """The chosen statistic, or entropy when the chosen one does not apply (all NaN: e.g.
        locality for cross-attention, whose queries are tokens)."""
        name = self.stat.currentData()
        return name if np.isfinite(self.stat_values(name)).any() else "entropy_bits"

    def stat_values(self, name: str | None = None) -> np.ndarray:
        s, name = self.stats, name or self.stat.currentData()
        if name.startswith("local_share_"):
            return s.local_share[int(name.rsplit("_", 1)[1])]
        return getattr(s, name)

    def refresh(self) -> None:
        shown = (self.doc.attention.maps, self.doc.alignment, self.stat.currentData(), self.doc.attention.colormap)
        if self._shown is not None and all(
                a == b if isinstance(a, str) else a is b for a, b in zip(shown, self._shown)):
            return  # one extraction announces several fields: draw once
        self._shown = shown
        for t in self.texts:
            self.plot.removeItem(t)
        self.texts = []
        if self.compute() is None:
            self.stats, self.values = None, np.zeros((0, 0))
            self.image.clear()
            self.summary.setPlainText("")
            self.frame.setVisible(False)
            return
        shown = self.shown_stat()
        self.values = np.asarray(self.stat_values(shown), dtype=np.float64)
        n, h = self.values.shape
        _draw(self.plot, self.image, self.values, [str(i) for i in range(n)],
              [str(j) for j in range(h)], self.doc.attention.colormap)
        if self.values.size <= MAX_CELL_TEXT:
            finite = self.values[np.isfinite(self.values)]
            mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
            for (i, j), v in np.ndenumerate(self.values):
                dark = not np.isfinite(v) or v < mid  # viridis-like maps are dark when low
                t = pg.TextItem(self.format(v, shown), anchor=(0.5, 0.5),
                                color=(255, 255, 255) if dark else (0, 0, 0))
                t.setPos(j + 0.5, i + 0.5)
                self.plot.addItem(t)
                self.texts.append(t)
        k = 5 if 5 in self.stats.ks else self.stats.ks[0]
        note = "" if shown == self.stat.currentData() else (
            f"({self.stat.currentText()} does not apply to {self.stats.component}: the grid "
            "shows entropy in bits)\n")
        self.summary.setPlainText(note + self.stats.summary(k))
        self._mark_current()

    def format(self, v: float, stat: str | None = None) -> str:
        if not np.isfinite(v):
            return "\u2013"
        stat = stat or self.stat.currentData()
        return f"{v:.0f}" if stat == "mean_distance_ms" else f"{v:.2f}"

    def _mark_current(self) -> None:
        doc = self.doc
        ok = self.stats is not None and not doc.attention.rollout and self.values.size
        self.frame.setVisible(bool(ok))
        if ok:
            h = doc.attention.head
            x, w = (0, self.values.shape[1]) if h is None else (h, 1)
            self.frame.setRect(QtCore.QRectF(x, doc.attention.layer, w, 1))

    def _on_moved(self, pos) -> None:
        cell = _cell_at(self.plot, pos, self.values.shape) if self.stats is not None else None
        if cell:
            i, j = cell
            what = STAT_TITLES.get(self.shown_stat(), self.stat.currentText())
            self.plot.setToolTip(f"layer {i}, head {j}: {what} "
                                 f"{self.values[i, j]:.4g}")
        else:
            self.plot.setToolTip("")

    def _on_clicked(self, ev) -> None:
        if self.stats is None or ev.button() != Qt.MouseButton.LeftButton:
            return
        cell = _cell_at(self.plot, ev.scenePos(), self.values.shape)
        if cell is not None:
            self.select_cell(*cell)

    def select_cell(self, layer: int, head: int) -> None:
        self.doc.attention.set_layer(layer)  # leaves the rollout
        self.doc.attention.set_head(head)


# --- Whisper words beneath the reference words -------------------------------------------------
EMPTY_TRANSCRIPT = "(empty transcript: no words decoded)"


def transcript_is_empty(ex) -> bool:
    """The extraction's transcript is complete and holds no words (noise, music, overlapping
    talkers): a result to show, not a missing one."""
    return (ex is not None and "cross" in ex.maps and "transcript" not in ex.pending
            and not ex.transcript.text.strip())


class WhisperWords:
    """Keeps views.set_whisper_words in step with the shown extraction's cross-attention."""

    def __init__(self, doc: Document, views):
        self.doc, self.views = doc, views
        self.alignment = None  # the adapter's WordAlignment of the shown extraction
        self.errors: list = []  # word_errors.WordError against the reference word tier
        self._key = None
        for name in ("current", "extraction", "alignment"):
            getattr(doc.events, name).connect(lambda ev: self.refresh())
        views.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.refresh()

    def _on_mouse_moved(self, pos) -> None:
        """Over a whisper word: its boundary errors in the status bar."""
        plot = self.views.whisper_words
        if not plot.isVisible() or not plot.vb.sceneBoundingRect().contains(pos):
            return
        i = self.views.whisper_tier.index_at(plot.vb.mapSceneToView(pos).x())
        text = self.word_error_text(i) if i is not None else ""
        if text:
            self.doc.nav.message_(text)

    def compute(self):
        ex = self.doc.attention.extraction
        cross = ex.maps.get("cross") if ex is not None else None
        tokens = list(getattr(ex.transcript, "tokens", []) or []) if ex is not None else []
        if cross is None or not tokens:
            return None
        from ..core.models.adapters import word_alignment

        return word_alignment(cross, tokens)

    def refresh(self) -> None:
        from ..core.speech.word_errors import boundary_errors, format_errors

        ex, al = self.doc.attention.extraction, self.doc.alignment
        key = (id(ex), id(al))
        if key == self._key:
            return
        self._key = key
        try:
            self.alignment = self.compute()
        except (SteveError, ValueError) as exc:
            self.alignment, self.errors = None, []
            self.views.set_whisper_words([])
            self.doc.nav.message_(f"Whisper word alignment failed: {exc}")
            return
        if self.alignment is None or not self.alignment.words:
            self.errors = []
            if transcript_is_empty(ex):  # the row says so instead of vanishing
                self.views.set_whisper_words(
                    [Interval(0.0, self.doc.duration, EMPTY_TRANSCRIPT)],
                    f"{ex.model} decoded no words from this audio")
            else:
                self.views.set_whisper_words([])
            return
        tier = self.alignment.tier()
        ref = getattr(al, "words", None) if al is not None else None
        self.errors = boundary_errors(tier, ref) if ref is not None else []
        tip = ("Whisper's word boundaries from its cross-attention (DTW, as whisper.timing)")
        if self.errors:
            tip += "\nboundary error vs the reference words (+ = whisper later):\n" + \
                format_errors(self.errors)
        self.views.set_whisper_words(tier.intervals, tip)

    def word_error_text(self, index: int) -> str:
        """'word: start +x ms, end +y ms' for the whisper word at ``index`` (or '')."""
        w = self.alignment.words[index] if self.alignment else None
        for e in self.errors:
            if w is not None and abs(e.hyp_start_s - w.start_s) < 1e-9:
                return (f"{w.text.strip()}: start {e.start_error_ms:+.0f} ms, end "
                        f"{e.end_error_ms:+.0f} ms vs reference {e.ref!r}")
        return ""
