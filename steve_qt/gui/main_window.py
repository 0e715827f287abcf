"""The main window: menus, keys, docks, status bar; the views draw from the document.

Keys (Praat, ELAN, Sonic Visualiser conventions):
Tab plays/stops the selection (the visible window when nothing is selected); Shift+Space plays
the selection; Space plays/stops from the cursor; Esc stops; Ctrl+I / Ctrl+O zoom in/out around
the cursor, Ctrl+N zooms to the selection, Ctrl+A shows all; PgUp / PgDn previous/next layer;
[ / ] previous/next head (the mean of heads sits before head 1); M toggles the mean of heads;
F plays the file with its loudness following the features dock's feature (Play > Play Feature);
Ctrl+R records a take from the default input device (File > Record...).
"""

from __future__ import annotations

from pathlib import Path

from PyQt6 import QtCore, QtGui, QtWidgets

from ..core.speech.audio import AUDIO_EXTENSIONS
from ..core.speech.spectrogram import TITLES as SPECTROGRAM_TITLES
from ..core.state.document import Document
from ..core.state.experiments import Experiments
from .acoustics import QtAcoustics
from .actions import ActionRegistry
from .analysis_panels import QtHeadStats, QtPhoneMatrix, WhisperWords
from .app import ALIGNMENT_SUFFIXES
from .controls import QtControls
from .decoder_view import COMPONENT as DECODER, QtDecoderView
from .experiments_panel import QtExperimentsPanel
from .export_actions import export_data, export_figure
from .extraction import ExtractionController
from .features_dock import QtFeaturesDock
from .files import FileOpener
from .head_overview import QtHeadOverview
from .layout import (DEFAULT_HEIGHT_PX, DEFAULT_WIDTH_PX, HEADS_PX, LEFT_COLUMN_PX,
                     RIGHT_COLUMN_PX, RIGHT_UPPER_SHARE, UTTERANCES_PX)
from .playback import QtPlayback
from .status_bar import QtStatusBar
from .time_scrollbar import QtTimeScrollBar
from .time_views import QtTimeViews
from .utterance_list import QtUtteranceList

Qt = QtCore.Qt
SCROLL_STEP = 0.25  # Left / Right scroll this share of the visible span
RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
LEFT = Qt.DockWidgetArea.LeftDockWidgetArea


class QtMainWindow(QtWidgets.QMainWindow):
    """Assembles the rooms: the time views and their scroll bar, the toolbar, the docks, the
    status bar and the menus (from the action registry). The rooms talk only through the
    document's events; jobs run in the extraction controller, files open through the file
    opener."""

    def __init__(self, model: str = "whisper", auto_extract: bool = True, parent=None):
        super().__init__(parent)
        self.doc = doc = Document(model)
        self.setWindowTitle("steve-qt")
        self.setAcceptDrops(True)
        self.resize(DEFAULT_WIDTH_PX, DEFAULT_HEIGHT_PX)
        self._docks_fitted = False
        self._deferred_tabs: list[tuple[QtWidgets.QDockWidget, QtWidgets.QDockWidget]] = []
        self._pending_docks: list[QtWidgets.QDockWidget] = []
        self.registry: ActionRegistry | None = None

        # the time views, the toolbar, the left column
        self.views = QtTimeViews(doc)
        self.scrollbar = QtTimeScrollBar(doc)
        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.views, 1)
        lay.addWidget(self.scrollbar)
        self.setCentralWidget(central)
        self.views.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.controls = QtControls(doc)
        self.addToolBar(self.controls)
        self.utterances = QtUtteranceList(doc)
        self.utterance_dock = self.add_dock(self.utterances, "Utterances", LEFT)
        self.overview = QtHeadOverview(doc)
        self.overview_dock = self.add_dock(self.overview, "Heads (layer x head)", LEFT)
        self.resizeDocks([self.utterance_dock], [LEFT_COLUMN_PX], Qt.Orientation.Horizontal)
        self.resizeDocks([self.utterance_dock, self.overview_dock], [UTTERANCES_PX, HEADS_PX],
                         Qt.Orientation.Vertical)

        # what is not a widget: playback, the extraction controller, the file opener
        self.playback = QtPlayback(doc, parent=self)
        self.extraction = ExtractionController(doc, self.views.spectrograms, auto_extract,
                                               dialog_parent=self, parent=self)
        self.queue = self.extraction.queue
        self.opener = FileOpener(doc, self.extraction, self.playback, parent_widget=self,
                                 parent=self)
        self.status_bar = QtStatusBar(doc, self.extraction)
        self.setStatusBar(self.status_bar)
        self.registry = ActionRegistry(self)
        self._build_menus()
        self.views.playRequested.connect(self.playback.play)
        self.playback.attendedPlaying.connect(self.views.show_attended)
        doc.events.current.connect(self._on_current_change)

        # the right column: phone matrix | experiments above, head statistics | decoder |
        # features below (tabs keep the column's room)
        self.phone_matrix = QtPhoneMatrix(doc)
        self.phone_matrix.playRequested.connect(self.playback.play)
        self.phone_matrix_dock = self.add_dock(self.phone_matrix, "Phone matrix", RIGHT)
        self.head_stats = QtHeadStats(doc)
        self.head_stats_dock = self.add_dock(self.head_stats, "Head statistics", RIGHT)
        self.resizeDocks([self.phone_matrix_dock], [RIGHT_COLUMN_PX], Qt.Orientation.Horizontal)
        self.whisper_words = WhisperWords(doc, self.views)
        self.decoder_view = QtDecoderView(doc)
        self.decoder_view.exportRequested.connect(
            lambda: export_figure(self, component=DECODER))
        self.decoder_dock = self.add_dock(self.decoder_view, "Decoder self-attention", RIGHT)
        self.features = self.add_dock(
            QtFeaturesDock(doc, self.registry, self.views, self.playback, self.extraction,
                           self.opener, parent=self), QtFeaturesDock.TITLE, RIGHT)
        self.experiments = Experiments()
        self.experiments_panel = QtExperimentsPanel(doc, self.experiments, self.extraction)
        self.experiments_dock = self.add_dock(self.experiments_panel, "Experiments", RIGHT)
        self.tabify_docks(self.head_stats_dock, self.decoder_dock)
        self.tabify_docks(self.head_stats_dock, self.features)
        self.tabify_docks(self.phone_matrix_dock, self.experiments_dock)
        self.phone_matrix_dock.raise_()
        # View > Acoustics: Praat's tracks over the spectrogram
        self.acoustics = QtAcoustics(doc, self.views, self.registry, parent=self)

    @property
    def auto_extract(self) -> bool:
        return self.extraction.auto_extract

    # --- layout ----------------------------------------------------------------------------------
    def add_dock(self, widget: QtWidgets.QWidget, title: str, area: Qt.DockWidgetArea = RIGHT,
                 visible: bool = True) -> QtWidgets.QDockWidget:
        """Add a panel as a dock (``widget`` in a new dock, or ``widget`` itself when it is one);
        its toggle goes into View > Panels."""
        if isinstance(widget, QtWidgets.QDockWidget):
            dock = widget
        else:
            dock = QtWidgets.QDockWidget(title, self)
            dock.setWidget(widget)
        dock.setObjectName(title)
        self.addDockWidget(area, dock)
        dock.setVisible(visible)
        if self.registry is not None and self.registry.has_menu("panels"):
            self.registry.menu("panels").addAction(dock.toggleViewAction())
        else:  # the left column's docks come before the menus
            self._pending_docks.append(dock)
        return dock

    def _build_menus(self) -> None:
        """The menus from the registry of named actions (docks add theirs by name later)."""
        mb, reg, opener = self.menuBar(), self.registry, self.opener
        f = reg.add_menu("file", mb.addMenu("&File"))
        # Ctrl+O is Praat's zoom out, so opening is Ctrl+Shift+O
        self.open_action = reg.register("file:open", "&Open...", opener.ask_open, "Ctrl+Shift+O",
                                        menu="file")
        reg.register("file:open_alignment", "Open &Alignment...", opener.ask_open_alignment,
                     menu="file")
        self.record_action = reg.register(
            "file:record", "&Record...", opener.record, "Ctrl+R", menu="file",
            description="Record from the default input device; the take opens like a file")
        self.recent_menu = f.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(lambda: opener.fill_recent_menu(self.recent_menu))
        f.addSeparator()
        self.export_figure_action = reg.register("file:export_figure", "Export &Figure...",
                                                 lambda: export_figure(self), menu="file")
        self.export_data_action = reg.register("file:export_data", "Export &Data...",
                                               lambda: export_data(self), menu="file")
        f.addSeparator()
        reg.register("file:close", "&Close Utterance", opener.close_current, "Ctrl+W",
                     menu="file")
        reg.register("file:quit", "&Quit", self.close, "Ctrl+Q", menu="file")

        doc = self.doc
        v = reg.add_menu("view", mb.addMenu("&View"))
        for name, text, slot, keys in (
                ("zoom_in", "Zoom &In", doc.nav.zoom_in, "Ctrl+I"),
                ("zoom_out", "Zoom &Out", doc.nav.zoom_out, "Ctrl+O"),
                ("zoom_to_selection", "Zoom to &Selection", doc.nav.zoom_to_selection, "Ctrl+N"),
                ("show_all", "Show &All", doc.nav.show_all, "Ctrl+A"),
                ("scroll_left", "Scroll Left", lambda: doc.nav.scroll(-SCROLL_STEP), "Left"),
                ("scroll_right", "Scroll Right", lambda: doc.nav.scroll(SCROLL_STEP), "Right")):
            reg.register(f"view:{name}", text, slot, keys, menu="view")
        v.addSeparator()
        self._build_spectrogram_menu(v.addMenu("Spectro&gram"))
        self.panels_menu = reg.add_menu("panels", v.addMenu("&Panels"))
        for dock in self._pending_docks:
            self.panels_menu.addAction(dock.toggleViewAction())
        self._pending_docks = []

        reg.add_menu("play", mb.addMenu("&Play"))
        pb = self.playback
        reg.register("play:toggle", "Play/Stop Selection or Window", pb.toggle_play, "Tab",
                     menu="play")
        reg.register("play:selection", "Play Selection", pb.play_selection, "Shift+Space",
                     menu="play")
        reg.register("play:from_cursor", "Play/Stop from Cursor", pb.play_from_cursor, "Space",
                     menu="play")
        reg.register("play:attended", "Play &Attended Audio", pb.play_attended, "Ctrl+Shift+A",
                     menu="play",
                     description="Play the key frames holding half of the current query's attention")
        reg.register("play:stop", "&Stop", self.playback.stop, "Esc", menu="play")

        a = reg.add_menu("attention", mb.addMenu("&Attention"))
        att = doc.attention
        for name, text, slot, keys in (
                ("previous_layer", "Previous Layer", lambda: att.step_layer(-1), "PgUp"),
                ("next_layer", "Next Layer", lambda: att.step_layer(1), "PgDown"),
                ("previous_head", "Previous Head", lambda: att.step_head(-1), "["),
                ("next_head", "Next Head", lambda: att.step_head(1), "]"),
                ("mean_of_heads", "Mean of Heads",
                 lambda: att.set_head(0 if att.head is None else None), "M")):
            reg.register(f"attention:{name}", text, slot, keys, menu="attention")
        a.addSeparator()
        reg.register("attention:extract_again", "Extract &Again", self.extraction.extract_again,
                     menu="attention",
                     description="Run the model again on the shown utterance (after a failure)")
        reg.register("attention:cancel", "&Cancel Extraction", self.extraction.cancel,
                     menu="attention")

        reg.add_menu("help", mb.addMenu("&Help"))
        reg.register("help:keys", "&Keys", self.show_keys, menu="help")

    # --- drag and drop ---------------------------------------------------------------------------
    @staticmethod
    def _dropped_paths(mime: QtCore.QMimeData) -> list[Path]:
        ok = AUDIO_EXTENSIONS + ALIGNMENT_SUFFIXES
        return [Path(u.toLocalFile()) for u in mime.urls()
                if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in ok]

    def dragEnterEvent(self, ev: QtGui.QDragEnterEvent) -> None:
        if ev.mimeData().hasUrls() and self._dropped_paths(ev.mimeData()):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dropEvent(self, ev: QtGui.QDropEvent) -> None:
        paths = self._dropped_paths(ev.mimeData())
        if paths:
            ev.acceptProposedAction()
            self.opener.open_paths(paths)

    # --- help ------------------------------------------------------------------------------------
    def show_keys(self) -> None:
        QtWidgets.QMessageBox.information(self, "Keys", __doc__.split("\n\n", 1)[1])

    def _on_current_change(self, event) -> None:
        u = self.doc.utterance
        self.setWindowTitle(f"steve-qt \u2014 {u.audio.name}" if u else "steve-qt")

    def _build_spectrogram_menu(self, menu: QtWidgets.QMenu) -> None:
        """View > Spectrogram: the model's log-mel or Praat's broadband (one is checked)."""
        group = QtGui.QActionGroup(self)
        self.spectrogram_actions = {}
        for kind, title in SPECTROGRAM_TITLES.items():
            act = QtGui.QAction(title[0].upper() + title[1:], self, checkable=True)
            act.setChecked(kind == self.doc.attention.spectrogram)
            act.triggered.connect(lambda checked=False, k=kind: self.doc.attention.set_spectrogram(k))
            group.addAction(act)
            menu.addAction(act)
            self.spectrogram_actions[kind] = act
        self.doc.events.spectrogram.connect(
            lambda ev: self.spectrogram_actions[ev.value].setChecked(True))

    # --- dock sizes ------------------------------------------------------------------------------
    def tabify_docks(self, first: QtWidgets.QDockWidget, second: QtWidgets.QDockWidget) -> None:
        """Put ``second`` as a tab beside ``first``. Before the window is shown, a tab group made
        while another one exists leaves a stale copy of its tab bar on screen (Qt 6.11; it stays
        at its first place, over the docks, when the window is resized): such a group is made
        when the window is first shown, with ``first`` in front."""
        grouped = [d for d in self.findChildren(QtWidgets.QDockWidget)
                   if self.tabifiedDockWidgets(d)]
        if self.isVisible() or not grouped or first in grouped:
            self.tabifyDockWidget(first, second)
        else:
            self._deferred_tabs.append((first, second))

    def showEvent(self, ev: QtGui.QShowEvent) -> None:
        super().showEvent(ev)
        if not self._docks_fitted:
            self._docks_fitted = True
            for first, second in self._deferred_tabs:
                self.tabifyDockWidget(first, second)
                first.raise_()
            self._deferred_tabs = []
            self.fit_docks()

    def fit_docks(self) -> None:
        """Size the dock columns for the window's width: in a window narrower than 1280 px the
        side columns shrink in proportion (never below what their panels need), so that the time
        views keep their share; the right column's upper stack gets RIGHT_UPPER_SHARE of its
        height (the lower one holds the features dock's example table)."""
        scale = min(self.width() / DEFAULT_WIDTH_PX, 1.0)
        h = Qt.Orientation.Horizontal
        self.resizeDocks([self.utterance_dock], [round(LEFT_COLUMN_PX * scale)], h)
        upper, lower = self.phone_matrix_dock, self.head_stats_dock
        self.resizeDocks([upper], [round(RIGHT_COLUMN_PX * scale)], h)
        column = upper.height() + lower.height()
        if column > 0:
            share = round(column * RIGHT_UPPER_SHARE)
            self.resizeDocks([upper, lower], [share, column - share], Qt.Orientation.Vertical)

    # --- closing ---------------------------------------------------------------------------------
    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        self.extraction.begin_closing()
        self.views.spectrograms.shutdown()
        self.playback.close()
        if self.extraction.queue.busy:
            self.status_bar.set_progress(-1, -1, "stopping the model...")
            QtWidgets.QApplication.processEvents()
        self.extraction.shutdown()
        super().closeEvent(ev)
