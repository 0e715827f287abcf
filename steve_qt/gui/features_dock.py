"""The features dock: choose a site and a feature, see and hear where it fires, browse its corpus
examples from a feature index.

- Site chooser (frames sites of the shown model, plus loaded SAEs), feature number, and a find
  box (a number jumps to that feature; text keeps the rows of "in this file" whose best phone
  starts with it; f0, f1, f2, f3 or intensity jumps to the open index's feature most correlated
  with that measure, for an index built with --acoustics).
- The activation track sits in the stacked time views, under the spectrogram, on the shared
  time axis; an optional heat strip shows the file's top N features x frames (each row scaled to
  its max).
- "In this file": the top features by max activation (max, mean, best phone); a click chooses.
- "Examples" of an open index: top-k, then each activation range; each row has a mel thumbnail
  (+-0.5 s around the peak) with the activation drawn over it when the file's activations are at
  hand, and a mark at the peak. A click opens the file at the example (loading it if needed) and
  selects the frames around the peak where the activation stays >= half the peak.
- Play Feature (F), Play Examples, Export Examples Audio... (gui/feature_listening.py; the gain
  envelope formula and the montage are core/features/audio.py's).

Activations of the shown file are read in the extraction worker (a Job with ``sites``; encoder
sites only: Whisper does not transcribe). Views draw from ``doc.features`` and write only
through its setters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6 import QtCore, QtGui, QtWidgets

from ..core.features import audio as feature_audio
from ..core.errors import SteveError
from ..core.state.feature_view import (SAE_PREFIX, around_token, index_root, missing_files,
                                       open_index)
from . import dialogs
from .example_thumbnails import THUMB_H, THUMB_W, ExampleThumbnails
from .feature_listening import FeatureListening
from .feature_track import HEAT_N, QtFeatureTrack

Qt = QtCore.Qt
#: the widest number a table cell shows ('.3g' of a small negative activation), and the room a
#: cell needs beside its text
NUMBER_SAMPLE, CELL_PAD_PX = "-1.23e-05", 14
#: the examples table: the thumbnail; the example's kind over its activation; its phone (or
#: token) over its word; its time (or, for a token, its sentence) over its file, which takes
#: the rest of the dock's width (each of the two lines elided, the whole text on hover)
EXAMPLE_HEADERS = ["", "example", "label", "where"]
EXAMPLE_HEADER_TIPS = ["mel spectrogram around the example's peak",
                       "top k or activation range, over the activation",
                       "phone (a token, for a tokens site) over word",
                       "time (a token's sentence, for a tokens site) over file"]
EXAMPLE_SAMPLES = ("", ("range -5", NUMBER_SAMPLE), ("phone", "greasy"), ())
THUMB_COL, KIND_COL, LABEL_COL, WHERE_COL = range(4)
WHERE_MIN_SAMPLE = "00.00 s"  # the last column is never narrower than a time
THUMB_BATCH = 4  # thumbnails drawn per event-loop turn (switching feature stays fast)
THUMB_DELAY_MS = 60  # after a switch, before the first thumbnail
TOP_N = 30  # rows of "in this file"
SITE_BOX_CHARS = 18  # the site chooser shows at least this many characters


def _table(headers: list[str]) -> QtWidgets.QTableWidget:
    t = QtWidgets.QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.verticalHeader().setVisible(False)
    t.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
    t.horizontalHeader().setStretchLastSection(True)
    t.setWordWrap(False)
    return t


def _item(text: str, value=None) -> QtWidgets.QTableWidgetItem:
    it = QtWidgets.QTableWidgetItem(text)
    if value is not None:
        it.setData(Qt.ItemDataRole.UserRole, value)
    return it


class QtFeaturesPanel(QtWidgets.QWidget):
    """The dock's body: its controls and tables, laid out (QtFeaturesDock wires them)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.site = QtWidgets.QComboBox()
        self.site.setSizeAdjustPolicy(
            QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.site.setMinimumContentsLength(SITE_BOX_CHARS)
        self.feature = QtWidgets.QSpinBox()
        self.feature.setRange(0, 0)
        self.feature.setKeyboardTracking(False)
        self.find = QtWidgets.QLineEdit()
        self.find.setPlaceholderText("feature #, phone or f0/f1/f2")
        self.find.setClearButtonEnabled(True)
        self.heat = QtWidgets.QCheckBox("heat strip")
        self.heat.setToolTip(f"the file's top {HEAT_N} features x frames, each row scaled to its max")
        self.floor = QtWidgets.QSpinBox()
        self.floor.setRange(-60, 0)
        self.floor.setValue(int(feature_audio.FLOOR_DB))
        self.floor.setPrefix("floor ")
        self.floor.setSuffix(" dB")
        self.floor.setToolTip("Play Feature: gain where the feature does not fire")
        self.pad = QtWidgets.QSpinBox()
        self.pad.setRange(50, 2000)
        self.pad.setSingleStep(50)
        self.pad.setValue(int(feature_audio.PAD_S * 1000))
        self.pad.setPrefix("\u00b1 ")
        self.pad.setSuffix(" ms")
        self.pad.setToolTip("Play Examples: audio either side of each example's peak")
        self.play_feature = QtWidgets.QPushButton("Play Feature (F)")
        self.play_examples = QtWidgets.QPushButton("Play Examples")
        self.info = QtWidgets.QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.PlainText)

        self.top = _table(["feature", "max", "mean", "best phone"])
        self.examples = _table(EXAMPLE_HEADERS)
        self.examples.setIconSize(QtCore.QSize(THUMB_W, THUMB_H))
        self.examples.verticalHeader().setDefaultSectionSize(THUMB_H + 4)
        self.examples.setColumnWidth(THUMB_COL, THUMB_W + 6)
        self.examples.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for c, tip in enumerate(EXAMPLE_HEADER_TIPS):
            self.examples.horizontalHeaderItem(c).setToolTip(tip)
        self.examples.setTextElideMode(Qt.TextElideMode.ElideRight)
        # fixed widths from the font (ResizeToContents measures every cell on every setItem:
        # a millisecond each, which made switching feature slow)
        fm = self.fontMetrics()
        for c, samples in enumerate(EXAMPLE_SAMPLES):
            if samples:
                widest = max(fm.horizontalAdvance(t) for t in (*samples, EXAMPLE_HEADERS[c]))
                self.examples.setColumnWidth(c, widest + CELL_PAD_PX)
        self.examples.horizontalHeader().setMinimumSectionSize(
            fm.horizontalAdvance(WHERE_MIN_SAMPLE) + CELL_PAD_PX)
        for c, sample in enumerate(("feature", NUMBER_SAMPLE, NUMBER_SAMPLE, "best phone")):
            self.top.setColumnWidth(c, fm.horizontalAdvance(sample) + CELL_PAD_PX)
        self.examples_note = QtWidgets.QLabel("")
        self.examples_note.setWordWrap(True)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(self.top, "In this file")
        ex = QtWidgets.QWidget()
        exl = QtWidgets.QVBoxLayout(ex)
        exl.setContentsMargins(0, 0, 0, 0)
        note_row = QtWidgets.QHBoxLayout()  # the examples' own controls, above their table
        note_row.addWidget(self.examples_note, 1)
        note_row.addWidget(self.play_examples)
        note_row.addWidget(self.pad)
        exl.addLayout(note_row)
        exl.addWidget(self.examples, 1)
        self.tabs.addTab(ex, "Examples")

        row1 = QtWidgets.QHBoxLayout()
        row1.addWidget(QtWidgets.QLabel("site"))
        row1.addWidget(self.site, 1)
        row2 = QtWidgets.QHBoxLayout()
        row2.addWidget(QtWidgets.QLabel("feature"))
        row2.addWidget(self.feature)
        row2.addWidget(self.find, 1)
        row2.addWidget(self.heat)
        row3 = QtWidgets.QHBoxLayout()
        row3.addWidget(self.play_feature)
        row3.addWidget(self.floor)
        row3.addStretch(1)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        for r in (row1, row2, row3):
            lay.addLayout(r)
        lay.addWidget(self.info)
        lay.addWidget(self.tabs, 1)


class QtFeaturesDock(QtWidgets.QDockWidget):
    """The Features dock: draws from ``doc.features`` and writes through its setters; the
    shown file's activations are asked of the extraction controller; examples open through the
    file opener; Play Feature / Play Examples play through the window's playback; its menu
    entries go into the action registry."""

    TITLE = "Features"

    def __init__(self, doc, actions, views, playback, extraction, opener, parent=None):
        super().__init__(self.TITLE, parent)
        self.setObjectName(self.TITLE)
        self.doc, self.fv = doc, doc.features
        self.actions, self.views, self.playback = actions, views, playback
        self.extraction, self.opener = extraction, opener
        self.panel = QtFeaturesPanel()
        self.setWidget(self.panel)
        self.thumbnails = ExampleThumbnails(doc)
        self.listening = FeatureListening(
            doc, playback, self.thumbnails.audio_of, self.panel.floor.value,
            self.panel.pad.value, self.activate, dialog_parent=self, parent=self)
        self._thumbs: dict[tuple, QtGui.QIcon] = {}
        self._thumb_todo: list[int] = []
        # thumbnails are drawn a few at a time once the switch has been painted (and not at all
        # while the user runs through features faster than THUMB_DELAY_MS)
        self._thumb_timer = QtCore.QTimer(self)
        self._thumb_timer.setInterval(THUMB_DELAY_MS)
        self._thumb_timer.timeout.connect(self._draw_some_thumbs)
        self._pending_example: tuple | None = None  # (entry, frame) awaiting activations
        self.active = False  # see activate()
        self._top_rows: list = []
        self.timeline = QtFeatureTrack(doc, views, parent=self)
        self._build_actions()
        self._connect()
        self._on_sites(None)
        self._on_activations(None)
        self._on_examples(None)

    # --- construction ----------------------------------------------------------------------------
    def _build_actions(self) -> None:
        reg = self.actions
        before = "file:export_figure"
        self.open_index_action = reg.register(
            "features:open_index", "Open Feature &Index...", self.ask_open_index, menu="file",
            before=before)
        self.open_sae_action = reg.register(
            "features:open_sae", "Open &SAE...", self.ask_open_sae, menu="file", before=before,
            description="A sparse autoencoder (SAELens format) as a site of the features dock")
        self.export_examples_action = reg.register(
            "features:export_examples", "Export E&xamples Audio...", self.listening.ask_export,
            menu="file", before=before)
        reg.menu("play").addSeparator()
        self.play_feature_action = reg.register(
            "play:feature", "Play &Feature", self.listening.play_feature, "F", menu="play",
            description="The file with its loudness following the chosen feature's activation")
        self.play_examples_action = reg.register(
            "play:examples", "Play &Examples", self.listening.play_examples, menu="play",
            description="Each example of the feature, one after another")

    def _connect(self) -> None:
        d, e = self.panel, self.doc.events
        d.site.activated.connect(lambda i: (self.fv.set_site(d.site.itemData(i)), self.activate()))
        d.feature.valueChanged.connect(lambda f: (self.fv.set_feature(f), self.activate()))
        d.find.returnPressed.connect(self._on_find)
        d.find.textChanged.connect(lambda text: self._fill_top())
        d.heat.toggled.connect(lambda on: self._draw_heat())
        d.play_feature.clicked.connect(self.listening.play_feature)
        d.play_examples.clicked.connect(self.listening.play_examples)
        d.top.cellClicked.connect(self._on_top_clicked)
        d.examples.cellClicked.connect(lambda r, c: self.open_example(r))
        e.sites.connect(self._on_sites)
        e.site.connect(self._on_site)
        e.feature.connect(self._on_feature)
        e.activations.connect(self._on_activations)
        e.examples.connect(self._on_examples)
        e.example.connect(self._on_example)
        e.alignment.connect(lambda ev: self._fill_top())
        for name in ("current", "model", "window", "site"):
            getattr(e, name).connect(lambda ev: (self.request(), self._draw_track()))
        e.model.connect(lambda ev: self._offer_sites())
        self.extraction.queue.finished.connect(lambda job, ex: self._offer_sites())
        self.extraction.featureFailed.connect(self._on_feature_failed)
        e.extraction.connect(lambda ev: self._offer_sites())  # the model is loaded by then
        self.toggleViewAction().toggled.connect(self._on_dock_toggled)

    # --- sites -----------------------------------------------------------------------------------
    def _offer_sites(self) -> None:
        """Fill the site chooser once the shown model is loaded (it knows its sites)."""
        from ..core.models.pipeline import loaded_adapter

        adapter = loaded_adapter(self.doc.attention.model)
        lister = getattr(adapter, "list_sites", None)
        if lister is not None:
            self.fv.set_model_sites(lister())

    def _on_sites(self, event) -> None:
        d = self.panel
        d.site.blockSignals(True)
        d.site.clear()
        for s in self.fv.sites:
            if s.name.startswith(SAE_PREFIX):
                text = f"SAE {Path(s.name[len(SAE_PREFIX):]).name} ({s.dim})"
            else:
                text = f"{s.name} ({s.dim})"
            d.site.addItem(text, s.name)
        d.site.setCurrentIndex(max(d.site.findData(self.fv.site), 0))
        d.site.blockSignals(False)
        if not self.fv.sites:
            if self.fv.site:
                d.site.addItem(self.fv.site, self.fv.site)
            else:
                d.site.addItem("(no sites: the model is not loaded yet)", None)
        self._on_site(None)

    def _on_site(self, event) -> None:
        d = self.panel
        if not self.fv.sites and event is not None:
            self._on_sites(None)
            return
        i = d.site.findData(self.fv.site)
        if i >= 0:
            d.site.setCurrentIndex(i)
        d.feature.blockSignals(True)
        d.feature.setRange(0, max(self.fv.dim - 1, 0))
        d.feature.setValue(self.fv.feature)
        d.feature.blockSignals(False)

    # --- activations of the shown file -----------------------------------------------------------
    def request(self) -> None:
        """Queue the shown file's activations at the chosen site when they are missing."""
        need = self.fv.needs_activations()
        if need is None or not self.extraction.auto_extract or not self.active or \
                not self.shown:
            return
        self.extraction.request_activations(*need)
        self._draw_track()

    def _on_feature_failed(self, entry, site: str, error: str) -> None:
        """The worker could not read a site's activations: the track and the info line say so
        (the status bar says why)."""
        if entry is self.doc.files.entry:
            self.timeline.set_hint(self.track_hint())
        self.panel.info.setText(f"{site}: {error}")

    @property
    def shown(self) -> bool:
        """The dock is open (maybe behind another tab): the track row shows."""
        return self.toggleViewAction().isChecked()

    def activate(self) -> None:
        """The user asked for features (chose a site or a feature, opened an index or an SAE,
        pressed F): from now on the shown file's activations are read (a model run per file,
        so nothing is read for someone who never uses the dock)."""
        if not self.active:
            self.active = True
            self.request()
            self._draw_track()

    def _on_dock_toggled(self, on: bool) -> None:
        self.timeline.set_shown(on)
        self._draw_heat()
        if on:
            self.request()

    def _on_activations(self, event) -> None:
        self._on_site(None)
        self._draw_track()
        self._fill_top()
        self._draw_heat()
        if self._pending_example is not None:
            entry, frame = self._pending_example
            if entry is self.doc.files.entry and self.fv.activations is not None:
                self._pending_example = None
                self._select_example_span(entry, frame)

    def _on_feature(self, event) -> None:
        d = self.panel
        if d.feature.value() != self.fv.feature:
            d.feature.blockSignals(True)
            d.feature.setValue(self.fv.feature)
            d.feature.blockSignals(False)
        self._draw_track()
        self._mark_top_row()

    # --- drawing ---------------------------------------------------------------------------------
    def _draw_track(self) -> None:
        self.panel.info.setText(self.timeline.draw(self.track_hint()))

    def _draw_heat(self) -> None:
        self.timeline.draw_heat(self.panel.heat.isChecked() and self.shown)

    def track_hint(self) -> str:
        """What the empty track row says (no file: nothing)."""
        if self.doc.utterance is None:
            return ""
        if not self.active or not self.fv.site:
            return "choose a site and a feature in the Features dock"
        if self.fv.is_token_site():
            return "a tokens site (no time axis): see its Examples"
        key = self.fv.key()
        status = self.doc.files.entry.activation_status.get(key) if key is not None else None
        if status in ("queued", "running"):
            return f"reading {self.fv.site} ..."
        if status == "failed":
            return f"cannot read {self.fv.site} for this file (the status bar says why)"
        return f"no activations of {self.fv.site} for this file yet"

    def _fill_top(self) -> None:
        t = self.panel.top
        phones = getattr(self.doc.alignment, "phones", None)
        self._top_rows = self.fv.top(TOP_N, phones)
        flt = self.panel.find.text().strip()
        rows = [s for s in self._top_rows
                if not flt or flt.isdigit() or s.best_phone.startswith(flt)]
        t.setRowCount(len(rows))
        for r, s in enumerate(rows):
            t.setItem(r, 0, _item(str(s.feature), s.feature))
            t.setItem(r, 1, _item(f"{s.max:.3g}"))
            t.setItem(r, 2, _item(f"{s.mean:.3g}"))
            t.setItem(r, 3, _item(s.best_phone))
            t.item(r, 3).setToolTip(s.best_phone)
        self._mark_top_row()

    def _mark_top_row(self) -> None:
        t = self.panel.top
        t.blockSignals(True)
        t.clearSelection()
        for r in range(t.rowCount()):
            if t.item(r, 0).data(Qt.ItemDataRole.UserRole) == self.fv.feature:
                t.selectRow(r)
        t.blockSignals(False)

    def _on_top_clicked(self, row: int, col: int) -> None:
        it = self.panel.top.item(row, 0)
        if it is not None:
            self.fv.set_feature(int(it.data(Qt.ItemDataRole.UserRole)))

    def _on_find(self) -> None:
        text = self.panel.find.text().strip()
        if text.isdigit():
            if self.fv.dim and int(text) >= self.fv.dim:
                self.doc.nav.message_(f"{self.fv.site} has features 0-{self.fv.dim - 1}")
                return
            self.fv.set_feature(int(text))
        elif text.lower() in ("f0", "f1", "f2", "f3", "intensity"):
            self._find_acoustic(text.lower())
        elif self._top_rows and text:
            hits = [s for s in self._top_rows if s.best_phone.startswith(text)]
            if hits:
                self.fv.set_feature(hits[0].feature)
            else:
                self.doc.nav.message_(f"no feature in this file's top {TOP_N} has best phone {text!r}")

    def _find_acoustic(self, measure: str) -> None:
        """The open index's feature most correlated with ``measure`` (built with --acoustics)."""
        idx = self.fv.index
        if idx is None or not getattr(idx, "has_acoustics", False):
            self.doc.nav.message_(f"{measure}: open a feature index built with --acoustics")
            return
        top = idx.acoustic_top(measure, 5)
        if not top:
            self.doc.nav.message_(f"{measure}: undefined in every frame of the index's corpus")
            return
        self.fv.set_feature(top[0][0])
        n, files = idx.acoustic_support(measure)
        self.doc.nav.message_(f"most correlated with {measure} ({n} frames, {files} files): "
                          + ", ".join(f"{f} (r {r:+.2f})" for f, r in top))

    # --- examples --------------------------------------------------------------------------------
    def _on_examples(self, event) -> None:
        d = self.panel
        rows = self.fv.examples
        note = self.fv.index_note()
        if self.fv.index is not None and not note:
            note = f"feature {self.fv.feature}: {len(rows)} examples from {self.fv.index.path.name}"
        d.examples_note.setText(note)
        t = d.examples
        t.setUpdatesEnabled(False)
        old_rows = t.rowCount()
        t.setRowCount(len(rows))
        no_icon = QtGui.QIcon()
        for r, ex in enumerate(rows):
            if r >= old_rows:  # items are made once per row, then only their texts change
                for c in range(len(EXAMPLE_HEADERS)):
                    t.setItem(r, c, _item(""))
            icon = self._thumbs.get(self._thumb_key(ex))
            t.item(r, THUMB_COL).setIcon(icon if icon is not None else no_icon)
            where = self.example_where(ex)
            shown = around_token(where) if ex.is_token else where
            label = f"token {ex.token.strip()!r}" if ex.is_token else \
                (f"phone {ex.phone}" if ex.phone else "")
            texts = {KIND_COL: (f"{ex.label}\n{ex.activation:.3g}",
                                f"{ex.label}, activation {ex.activation:.6g}"),
                     LABEL_COL: (f"{ex.token.strip() if ex.is_token else ex.phone}\n{ex.word}",
                                 ", ".join(x for x in (label, ex.word and f"word {ex.word}")
                                           if x)),
                     WHERE_COL: (f"{shown}\n{ex.file.name}", f"{where}\n{ex.file}")}
            for c, (text, tip) in texts.items():  # the whole text on hover
                t.item(r, c).setText(text)
                t.item(r, c).setToolTip(tip)
            t.item(r, THUMB_COL).setToolTip(  # the whole row
                f"{ex.label}: {ex.file.name} " + (f"\u2014 {where}" if ex.is_token else
                                                   f"at {where}")
                + f", activation {ex.activation:.3g}"
                + (f", phone {ex.phone}" if ex.phone else "")
                + (f", word {ex.word}" if ex.word else ""))
        t.setUpdatesEnabled(True)
        self._thumb_todo = [r for r, ex in enumerate(rows) if self._thumb_key(ex) not in self._thumbs]
        if self._thumb_todo:
            self._thumb_timer.start(THUMB_DELAY_MS)

    def example_where(self, ex) -> str:
        """Where the example is in its file: its time, or a token's sentence with the token
        marked (its position when the file's tokens are not at hand)."""
        if not ex.is_token:
            return f"{ex.time_s:.2f} s"
        sentence = self.fv.token_sentence(ex)
        if sentence is not None:
            return sentence
        return f"token {ex.frame}" + (f" at {ex.time_s:.2f} s" if np.isfinite(ex.time_s) else "")

    def _on_example(self, event) -> None:
        t = self.panel.examples
        t.blockSignals(True)
        if self.fv.example is None:
            t.clearSelection()
        else:
            t.selectRow(self.fv.example)
            t.scrollToItem(t.item(self.fv.example, 0))
        t.blockSignals(False)

    def thumbnails_pending(self) -> bool:
        """Thumbnails of the shown examples are still being drawn."""
        return self._thumb_timer.isActive()

    def stop_thumbnails(self) -> None:
        """Draw no more thumbnails for the shown examples (those drawn stay)."""
        self._thumb_timer.stop()

    def _thumb_key(self, ex) -> tuple:
        return (str(ex.file), round(ex.time_s, 4), self.fv.site, self.fv.feature)

    def _draw_some_thumbs(self) -> None:
        rows = self.fv.examples
        self._thumb_timer.setInterval(0)  # the rest right after
        for _ in range(THUMB_BATCH):
            if not self._thumb_todo:
                self._thumb_timer.stop()
                return
            r = self._thumb_todo.pop(0)
            if r >= len(rows):
                continue
            ex = rows[r]
            icon = self.thumbnails.draw(ex)
            self._thumbs[self._thumb_key(ex)] = icon
            item = self.panel.examples.item(r, 0)
            if item is not None and icon is not None:
                item.setIcon(icon)

    def open_example(self, row: int) -> bool:
        """Open the example's file at its frame and select the span around its peak."""
        rows = self.fv.examples
        if not 0 <= row < len(rows):
            return False
        ex = rows[row]
        if not ex.file.exists():
            root = index_root(self.fv.index)
            self.doc.nav.message_(f"Stale feature index: {ex.file} is missing (the index was built "
                              f"over {root}; were the files moved?)")
            return False
        i = self.opener.open_audio(ex.file)
        if i is None:
            return False
        self.fv.set_example(row)
        entry = self.doc.files.entries[i]
        if ex.is_token:  # a token has no frames: the cursor goes to its word's start
            if np.isfinite(ex.time_s):
                self.doc.nav.set_cursor(ex.time_s)
            return True
        self.doc.nav.set_cursor(ex.time_s)
        if not self._select_example_span(entry, ex.frame):
            self._pending_example = (entry, ex.frame)
            self.request()
        return True

    def _select_example_span(self, entry, frame: int) -> bool:
        span = self.fv.example_span(entry, frame)
        if span is None:
            return False
        self.doc.nav.set_selection(span)
        return True

    # --- SAEs ------------------------------------------------------------------------------------
    def ask_open_sae(self) -> None:
        folder = dialogs.ask_folder(self, "SAE folder (cfg.json, sae_weights.safetensors)")
        if folder:
            self.open_sae(folder)

    def open_sae(self, folder: str | Path) -> str | None:
        """Load an SAE and offer it as a site (its features are the codes of its hook_name
        site's activations); returns its site name, or None (a dialog says why)."""
        from ..core.features.sae import load_sae

        try:
            sae = load_sae(folder)
        except SteveError as exc:
            dialogs.show_error(self, "Cannot open SAE", str(exc))
            return None
        own = [s for s in self.fv.sites if not s.name.startswith(SAE_PREFIX)]
        base = next((s for s in own if s.name == sae.hook_name), None)
        if own and (base is None or base.dim != sae.d_in):
            dialogs.show_error(self, "Cannot open SAE",
                               f"{folder}: its site {sae.hook_name!r} ({sae.d_in} wide) is not a "
                               f"site of {self.doc.attention.model}")
            return None
        name = self.fv.add_sae(sae, folder)
        self.fv.set_site(name)
        self.activate()
        self.setVisible(True)
        self.raise_()
        self.doc.nav.message_(f"SAE {Path(folder).name}: {sae.d_sae} features of {sae.hook_name}")
        return name

    # --- the index -------------------------------------------------------------------------------
    def ask_open_index(self) -> None:
        folder = dialogs.ask_folder(self, "Feature index folder")
        if folder:
            self.open_index(folder)

    def open_index(self, folder: str | Path) -> bool:
        try:
            index = open_index(folder)
        except SteveError as exc:
            dialogs.show_error(self, "Cannot open feature index", str(exc))
            return False
        sae_dir = index.meta.get("sae")
        if sae_dir and SAE_PREFIX + str(Path(sae_dir).resolve()) not in self.fv.saes:
            if self.open_sae(sae_dir) is None:
                return False
        self.fv.set_index(index)
        self.activate()
        self.setVisible(True)
        self.raise_()
        self._on_dock_toggled(True)
        self.panel.tabs.setCurrentIndex(1)
        root = index_root(index)
        files = self._index_files(index, root)
        gone = missing_files(files)
        note = self.fv.index_note()
        if gone:
            msg = (f"Feature index {Path(folder).name}: {len(gone)} of {len(files)} files are "
                   f"missing (moved since the index was built over {root}?); their examples "
                   "cannot be opened")
        elif note:
            msg = f"Feature index {Path(folder).name}: {note}"
        else:
            msg = f"Feature index {Path(folder).name}: {len(files)} files"
        self.doc.nav.message_(msg)
        return True

    @staticmethod
    def _index_files(index, root) -> list[Path]:
        import csv

        rows = []
        f = Path(index.path) / "files.csv"
        if f.is_file():
            with f.open(newline="", encoding="utf-8") as fh:
                for r in csv.DictReader(fh):
                    name = r.get("file") or r.get("path") or ""
                    if name:
                        p = Path(name)
                        rows.append(p if p.is_absolute() or root is None else root / p)
        if not rows:
            rows = [ex.file for ex in index_examples_any(index, root)]
        return rows


def index_examples_any(index, root) -> list:
    """Examples of every feature of the index that a CSV-only index holds (for its file list)."""
    from ..core.state.feature_view import as_example

    rows = []
    for f in index.example_features() if hasattr(index, "example_features") else []:
        rows += [as_example(r, root) for r in (*index.top(f), *index.ranges(f))]
    return rows
