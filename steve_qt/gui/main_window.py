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

import warnings
from pathlib import Path
from typing import Callable, Iterable

from PyQt6 import QtCore, QtGui, QtWidgets

from ..core.speech.alignment import TierNotFound, find_alignment, load_alignment
from ..core.speech.audio import AUDIO_EXTENSIONS, load_audio
from ..core.speech.recording import Recorder, write_take
from ..core.state.document import CANCELLED, FAILED, QUEUED, RUNNING, Document
from ..core.errors import SteveError
from ..core.attention.measures import TITLES
from ..core.models.pipeline import Utterance, loaded_adapter
from ..core.models.previews import PREVIEW_NOTE, is_preview
from ..core.speech.spectrogram import TITLES as SPECTROGRAM_TITLES
from . import dialogs, settings
from .actions import ActionRegistry
from .app import ALIGNMENT_SUFFIXES
from .analysis_panels import install_panels, transcript_is_empty
from .controls import OTHER_MODEL, QtControls
from .decoder_view import install_decoder_view
from .elided_label import QtElidedLabel
from .export_actions import export_data, export_figure
from .features_dock import install_features
from .head_overview import QtHeadOverview
from .layout import (DEFAULT_HEIGHT_PX, DEFAULT_WIDTH_PX, HEADS_PX, LEFT_COLUMN_PX,  # noqa: F401
                     RIGHT_COLUMN_PX, RIGHT_UPPER_SHARE, UTTERANCES_PX)
from .playback import QtPlayback
from .time_views import QtTimeViews
from .utterance_list import QtUtteranceList
from .worker import ExtractionQueue, Job

Qt = QtCore.Qt
ATTENDED_SHARE = 0.5
PENDING_NAMES = {"model": "the model's own numbers (loading it)",
                 "transcript": "transcript and word tier", "cross": "cross-attention",
                 "decoder": "decoder attention"}


SCROLL_STEP = 0.25  # Left / Right scroll this share of the visible span


def still_coming(pending) -> str:
    """Status-bar suffix naming what a partial extraction still lacks."""
    names = [PENDING_NAMES.get(p, p) for p in pending]
    return f" \u2014 still coming: {', '.join(names)}" if names else ""


class QtMainWindow(QtWidgets.QMainWindow):
    def __init__(self, model: str = "whisper", auto_extract: bool = True, parent=None):
        super().__init__(parent)
        self.doc = Document(model)
        self.auto_extract = auto_extract
        self.setWindowTitle("steve-qt")
        self.setAcceptDrops(True)
        self.resize(DEFAULT_WIDTH_PX, DEFAULT_HEIGHT_PX)

        self.views = QtTimeViews(self.doc)
        self.scrollbar = QtWidgets.QScrollBar(Qt.Orientation.Horizontal)
        self.scrollbar.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        central = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.views, 1)
        lay.addWidget(self.scrollbar)
        self.setCentralWidget(central)
        self.views.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.controls = QtControls(self.doc)
        self.addToolBar(self.controls)
        self.utterances = QtUtteranceList(self.doc)
        self.utterance_dock = self.add_dock(self.utterances, "Utterances",
                                            Qt.DockWidgetArea.LeftDockWidgetArea)
        self.overview = QtHeadOverview(self.doc)
        self.overview_dock = self.add_dock(self.overview, "Heads (layer x head)",
                                           Qt.DockWidgetArea.LeftDockWidgetArea)
        self.resizeDocks([self.utterance_dock], [LEFT_COLUMN_PX], Qt.Orientation.Horizontal)
        self.resizeDocks([self.utterance_dock, self.overview_dock], [UTTERANCES_PX, HEADS_PX],
                         Qt.Orientation.Vertical)

        self.playback = QtPlayback(self.doc, parent=self)
        self.queue = ExtractionQueue(self)
        self._build_status_bar()
        self.registry = ActionRegistry(self)
        self._build_menus()
        self._connect()
        install_panels(self)  # phone matrix, head statistics, Whisper word tier
        install_decoder_view(self)  # decoder self-attention, tokens x tokens
        self.features = install_features(self)  # features dock, Play Feature
        from .experiments_panel import install_experiments

        install_experiments(self)  # window, span removal, steering, logit lens, LM
        # the right column: phone matrix | experiments above, head statistics | decoder |
        # features below (tabs keep the column's room)
        self.tabify_docks(self.head_stats_dock, self.decoder_dock)
        self.tabify_docks(self.head_stats_dock, self.features.dock)
        self.tabify_docks(self.phone_matrix_dock, self.experiments_dock)
        self.phone_matrix_dock.raise_()
        from .acoustics import install_acoustics

        self.acoustics = install_acoustics(self)  # View > Acoustics: Praat's tracks
        self._closing = False
        self._still_coming = ""  # status-bar suffix while a partial result is shown

    # --- layout ----------------------------------------------------------------------------------
    def add_dock(self, widget: QtWidgets.QWidget, title: str,
                 area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea,
                 visible: bool = True) -> QtWidgets.QDockWidget:
        """Add a panel (utterances, heads, later: phone matrix, head statistics) as a dock; its
        toggle goes into the View menu."""
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        dock.setVisible(visible)
        if hasattr(self, "panels_menu"):
            self.panels_menu.addAction(dock.toggleViewAction())
        else:
            self._pending_docks = getattr(self, "_pending_docks", []) + [dock]
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.hover_label = QtWidgets.QLabel("")
        self.hover_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label = QtElidedLabel("Open an audio file (File > Open, or drop it here)")
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.progress_label = QtWidgets.QLabel("")
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.cancel_button.clicked.connect(self.cancel_extraction)
        sb.addWidget(self.hover_label, 1)
        sb.addPermanentWidget(self.message_label, 1)
        sb.addPermanentWidget(self.progress_label)
        sb.addPermanentWidget(self.progress)
        sb.addPermanentWidget(self.cancel_button)
        self._show_progress(False)

    def _build_menus(self) -> None:
        """The menus from the registry of named actions (docks add theirs by name later)."""
        mb, reg = self.menuBar(), self.registry
        f = reg.add_menu("file", mb.addMenu("&File"))
        # Ctrl+O is Praat's zoom out, so opening is Ctrl+Shift+O
        self.open_action = reg.register("file:open", "&Open...", self.ask_open, "Ctrl+Shift+O",
                                        menu="file")
        reg.register("file:open_alignment", "Open &Alignment...", self.ask_open_alignment,
                     menu="file")
        self.record_action = reg.register(
            "file:record", "&Record...", self.record, "Ctrl+R", menu="file",
            description="Record from the default input device; the take opens like a file")
        self.recent_menu = f.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        f.addSeparator()
        self.export_figure_action = reg.register("file:export_figure", "Export &Figure...",
                                                 lambda: export_figure(self), menu="file")
        self.export_data_action = reg.register("file:export_data", "Export &Data...",
                                               lambda: export_data(self), menu="file")
        f.addSeparator()
        reg.register("file:close", "&Close Utterance", self.close_current, "Ctrl+W", menu="file")
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
        for dock in getattr(self, "_pending_docks", []):
            self.panels_menu.addAction(dock.toggleViewAction())
        self._pending_docks = []

        reg.add_menu("play", mb.addMenu("&Play"))
        reg.register("play:toggle", "Play/Stop Selection or Window", self.toggle_play, "Tab",
                     menu="play")
        reg.register("play:selection", "Play Selection", self.play_selection, "Shift+Space",
                     menu="play")
        reg.register("play:from_cursor", "Play/Stop from Cursor", self.play_from_cursor, "Space",
                     menu="play")
        reg.register("play:attended", "Play &Attended Audio", self.play_attended, "Ctrl+Shift+A",
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
                ("mean_of_heads", "Mean of Heads", self.toggle_mean, "M")):
            reg.register(f"attention:{name}", text, slot, keys, menu="attention")
        a.addSeparator()
        reg.register("attention:extract_again", "Extract &Again", self.extract_again,
                     menu="attention",
                     description="Run the model again on the shown utterance (after a failure)")
        reg.register("attention:cancel", "&Cancel Extraction", self.cancel_extraction,
                     menu="attention")

        reg.add_menu("help", mb.addMenu("&Help"))
        reg.register("help:keys", "&Keys", self.show_keys, menu="help")

    def _connect(self) -> None:
        e = self.doc.events
        e.hover.connect(self._on_hover_change)
        e.message.connect(lambda ev: self.message_label.setText(ev.value))
        e.current.connect(self._on_current_change)
        e.model.connect(self._on_model_change)
        e.window.connect(self._on_window_change)
        e.extraction.connect(self._on_extraction_change)
        e.component.connect(self._on_component_change)
        e.view.connect(self._on_view_change)
        e.entry_status.connect(self._on_entry_status_change)
        self.views.playRequested.connect(self.playback.play)
        self.scrollbar.valueChanged.connect(self._on_scrollbar_moved)
        self.controls.modelChosen.connect(self.choose_model)
        self.queue.started.connect(self._on_job_started)
        self.queue.progress.connect(self._on_job_progress)
        self.queue.partial.connect(self._on_job_partial)
        self.queue.finished.connect(self._on_job_finished)
        self.queue.failed.connect(self._on_job_failed)
        self.queue.cancelled.connect(self._on_job_cancelled)
        self.queue.idle.connect(lambda: self._show_progress(False))
        self.doc.events.measure_request.connect(self._request_measure)

    # --- opening files ---------------------------------------------------------------------------
    def ask_open(self) -> None:
        start = str(Path(settings.recent_files()[0]).parent) if settings.recent_files() else ""
        self.open_paths(dialogs.ask_open_files(self, start))

    def open_paths(self, paths: Iterable[str | Path]) -> list[int]:
        """Open audio files (and alignment files for the shown utterance); returns indices."""
        opened = []
        for p in paths:
            path = Path(p)
            if path.suffix.lower() in ALIGNMENT_SUFFIXES:
                self.open_alignment(path)
                continue
            i = self.open_audio(path, show=not opened)
            if i is not None:
                opened.append(i)
        return opened

    def open_audio(self, path: str | Path, show: bool = True) -> int | None:
        path = Path(path)
        known = self.doc.files.index_of(path) if path.exists() else None
        if known is not None:
            self.doc.set_current(known)
            return known
        try:
            audio = load_audio(path)
        except SteveError as exc:
            dialogs.show_error(self, "Cannot open audio", str(exc))
            return None
        alignment, kind = self._load_alignment_beside(path, audio.duration)
        if show:
            self._hold_spectrograms()  # the first file is shown as it is added
        index = self.doc.add(Utterance(audio, alignment, kind), show=False)
        # the model starts on the file while the views take it in
        self._queue_extraction(index, front=show)
        settings.add_recent_file(path)
        if show:
            self.doc.set_current(index)
            what = f"alignment {alignment.source.name}" if alignment is not None and \
                alignment.source else "no alignment found beside it"
            self.doc.nav.message_(f"{audio.name}: {audio.duration:.2f} s at {audio.original_rate} Hz"
                              f", {what}")
        return index

    def _load_alignment_beside(self, path: Path, duration: float):
        found = find_alignment(path)
        if found is None:
            return None, None
        kind, apath = found
        alignment = self._read_alignment(path, kind, apath, duration)
        return (alignment, kind) if alignment is not None else (None, None)

    def _read_alignment(self, audio_path, kind: str, apath: Path, duration: float):
        """Read an alignment; a tier picker when its tiers are not recognised; errors -> dialog."""
        phone_tier = word_tier = None
        for _ in range(3):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    alignment = load_alignment(audio_path, kind, apath, duration,
                                               phone_tier, word_tier)
                if caught:
                    self.doc.nav.message_(str(caught[0].message))
                return alignment
            except TierNotFound as exc:
                choice = dialogs.pick_tiers(self, str(apath), exc.tier_names, exc.problem)
                if choice is None:
                    return None
                phone_tier, word_tier = choice
            except SteveError as exc:
                dialogs.show_error(self, "Cannot read alignment",
                                   f"{exc}\n\nThe audio is shown without this alignment.")
                return None
        return None

    def record(self) -> int | None:
        """File > Record...: record a take, write it as a 16-bit WAV with a timestamped name in
        the recordings folder (asked for once, then kept in the settings) and open it."""
        folder = settings.record_folder()
        if folder is None:
            folder = dialogs.ask_folder(self, "Folder for recordings", str(Path.home()))
            if not folder:
                self.doc.nav.message_("Recording: no folder chosen for the takes")
                return None
            settings.set_record_folder(folder)
        recorder = Recorder()
        try:
            recorder.start()
        except SteveError as exc:
            self.doc.nav.message_(f"Recording unavailable: {exc.problem}")
            return None
        take = dialogs.record_take(self, recorder)
        if take is None or not take.size:
            self.doc.nav.message_("Recording cancelled")
            return None
        try:
            path = write_take(take, recorder.rate, folder)
        except SteveError as exc:
            dialogs.show_error(self, "Cannot save the recording", str(exc))
            return None
        opened = self.open_paths([path])
        return opened[0] if opened else None

    def ask_open_alignment(self) -> None:
        u = self.doc.utterance
        if u is None:
            dialogs.show_error(self, "No audio", "Open an audio file first, then its alignment.")
            return
        start = str(u.path.parent) if u.path else ""
        path = dialogs.ask_alignment_file(self, start)
        if path:
            self.open_alignment(path)

    def open_alignment(self, path: str | Path) -> bool:
        u = self.doc.utterance
        path = Path(path)
        if u is None:
            dialogs.show_error(self, "No audio", f"{path}: open the audio before its alignment.")
            return False
        from ..core.speech.alignment import alignment_kind

        kind = alignment_kind(path) if path.suffix.lower() in (".textgrid", ".eaf") else "timit"
        alignment = self._read_alignment(u.path, kind, path, u.audio.duration)
        if alignment is None:
            return False
        self.doc.set_alignment(alignment, kind)
        self.doc.nav.message_(f"Alignment {path.name}")
        return True

    def close_current(self) -> None:
        i = self.doc.files.current
        if i is None:
            return
        self.playback.stop()
        self.queue.drop(self.doc.files.entries[i])
        self.doc.remove(i)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = settings.recent_files()
        for f in files:
            act = self.recent_menu.addAction(f)
            act.triggered.connect(lambda checked=False, f=f: self.open_paths([f]))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", settings.clear_recent_files)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

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
            self.open_paths(paths)

    # --- models and extraction -------------------------------------------------------------------
    def choose_model(self, spec: str) -> None:
        if spec == OTHER_MODEL:
            spec = dialogs.ask_model_spec(self, self.doc.attention.model)
        elif spec.endswith(":?"):
            folder = dialogs.ask_folder(self, f"{spec[:-2]} model folder")
            spec = f"{spec[:-2]}:{folder}" if folder else None
        if spec:
            self.doc.attention.set_model(spec)

    def _queue_extraction(self, index: int, front: bool = False) -> None:
        if not self.auto_extract:
            return
        e = self.doc.files.entries[index]
        window = self.doc.attention.window if index == self.doc.files.current else 0
        key = (self.doc.attention.model, window)
        if key in e.extractions or e.status.get(key) in (QUEUED, RUNNING, FAILED):
            return
        self.doc.files.set_status(index, key[0], key[1], QUEUED)
        self.queue.submit(Job(e, key[0], key[1]), front=front)
        if front:
            self._hold_spectrograms()

    def _hold_spectrograms(self) -> None:
        """With the model ready and a file's extraction next, its maps come first and then the
        spectrogram (a spectrogram thread beside the model's slowed the map on two cores); the
        hold ends when the job's first maps come (or it ends), at most HOLD_MAX_MS later."""
        if self.auto_extract and loaded_adapter(self.doc.attention.model) is not None:
            self.views.spectrograms.hold()

    def extract_again(self) -> None:
        i = self.doc.files.current
        if i is None:
            return
        e = self.doc.files.entries[i]
        key = self.doc.attention.job_key()
        e.status.pop(key, None)
        e.extractions.pop(key, None)
        self.doc.files.set_status(i, key[0], key[1], QUEUED)
        self.queue.submit(Job(e, key[0], key[1]), front=True)

    def cancel_extraction(self) -> None:
        for job in self.queue.cancel():
            if not job.measures:
                self._set_job_status(job, CANCELLED)

    def _index_of_entry(self, entry) -> int | None:
        return next((i for i, e in enumerate(self.doc.files.entries) if e is entry), None)

    def _set_job_status(self, job: Job, status: str, error: str | None = None) -> None:
        if job.task is not None:
            return  # an experiment: the entry's extraction status stays as it is
        i = self._index_of_entry(job.entry)
        if job.sites:  # the features dock's activations (gui/features_dock.py)
            self.features.set_job_status(job, status, error)
        elif i is not None:
            self.doc.files.set_status(i, job.spec, job.window, status, error)

    def _request_measure(self, event) -> None:
        """The kind chooser asked for a measure the shown maps lack: compute it in the worker."""
        i, ex = self.doc.files.current, self.doc.attention.extraction
        if i is None or ex is None:
            return
        spec, window = self.doc.attention.job_key()
        self.doc.nav.message_(f"computing {TITLES[event.value]} ...")
        self.queue.submit(Job(self.doc.files.entries[i], spec, window, measures=(event.value,),
                             extraction=ex), front=True)

    def _on_measure_finished(self, job: Job, measures: dict) -> None:
        job.extraction.maps["encoder"].add_measures(measures)
        self.doc.nav.message_(f"{job.name}: {TITLES[job.measures[0]]} computed")
        if self.doc.attention.extraction is job.extraction:
            self.doc.attention.set_kind(job.measures[0])

    def _on_job_started(self, job: Job) -> None:
        self._still_coming = ""
        if job.measures:  # the extraction itself is done
            self._show_progress(True)
            self.progress.setRange(0, 0)
            self.progress_label.setText(f"{job.name}: {TITLES[job.measures[0]]}")
            return
        self._set_job_status(job, RUNNING)
        self._show_progress(True)
        self.progress.setRange(0, 0)
        self.progress_label.setText(f"{job.name}: starting")

    def _on_job_progress(self, job: Job, done: int, total: int, what: str) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        else:
            self.progress.setRange(0, 0)
        self.progress_label.setText(f"{job.name}: {what}{self._still_coming}")

    def _release_spectrograms(self, job: Job) -> None:
        if job.task is None and not job.sites and not job.measures:
            self.views.spectrograms.release_soon()  # after the map's paint

    def _on_job_partial(self, job: Job, ex) -> None:
        """Show what arrived (the encoder maps first); the status bar names what is to come."""
        self._release_spectrograms(job)
        i = self._index_of_entry(job.entry)
        if i is None:
            return
        self._still_coming = still_coming(ex.pending)
        what = ', '.join(ex.maps) or 'first results'
        if is_preview(ex):
            what += " preview"
        self.progress_label.setText(f"{job.name}: {what} shown{self._still_coming}")
        self.doc.set_extraction(i, job.spec, job.window, ex)

    def _withdraw_preview(self, job: Job) -> None:
        """A job that failed leaves no preview behind (Cancel keeps it, marked as a preview)."""
        i = self._index_of_entry(job.entry)
        if i is not None and is_preview(job.entry.extractions.get((job.spec, job.window))):
            self.doc.drop_extraction(i, job.spec, job.window)

    def _on_job_finished(self, job: Job, ex) -> None:
        self._release_spectrograms(job)
        if job.task is not None:
            if job.on_done is not None:
                job.on_done(ex)
            return
        i = self._index_of_entry(job.entry)
        if i is None:
            return
        if job.measures:
            self._on_measure_finished(job, ex)
            return
        if job.sites:
            self.features.on_activations(i, job, ex)
            return
        self.doc.set_extraction(i, job.spec, job.window, ex)
        if transcript_is_empty(ex):
            said = ": the transcript is empty (no words decoded)"
        else:
            said = f": \u201c{ex.transcript.text}\u201d" if ex.transcript.text else ""
        self.doc.nav.message_(f"{job.name}: {ex.model}{said}")

    def _on_job_failed(self, job: Job, reason: str) -> None:
        self._release_spectrograms(job)
        if job.task is not None:  # experiments say why in the status bar, no dialog
            if job.on_error is not None:
                job.on_error(reason)
            return
        if job.measures:  # the attention stays; say why the measure is missing
            if not self._closing:
                dialogs.show_error(self, f"{TITLES[job.measures[0]]} failed", reason)
            return
        self._withdraw_preview(job)
        self._set_job_status(job, FAILED, reason)
        if self._closing or job.sites:  # the features dock says why in the status bar
            return
        where = str(job.entry.path) if job.entry.path else job.name
        text = reason if where in reason else f"{where}: {reason}"
        dialogs.show_error(self, "Extraction failed",
                           f"{text}\n\nModel: {job.spec}. The audio stays open; "
                           "Attention > Extract Again retries.")

    def _on_job_cancelled(self, job: Job) -> None:
        self._release_spectrograms(job)
        if job.task is not None:
            if job.on_error is not None:
                job.on_error(f"{job.title or 'experiment'} cancelled")
            return
        if job.measures:
            self.doc.nav.message_(f"{job.name}: {TITLES[job.measures[0]]} cancelled")
            return
        self._set_job_status(job, CANCELLED)
        kept = job.entry.extractions.get((job.spec, job.window))
        if is_preview(kept):  # Cancel keeps what arrived; the title and exports say what it is
            self.doc.nav.message_(f"{job.name}: extraction cancelled; kept the encoder preview "
                              f"({PREVIEW_NOTE}; Attention > Extract Again for the model's own "
                              "numbers)")
        elif kept is not None and kept.pending:
            self.doc.nav.message_(f"{job.name}: extraction cancelled; kept the {', '.join(kept.maps)} "
                              f"maps (Attention > Extract Again for the rest)")
        else:
            self.doc.nav.message_(f"{job.name}: extraction cancelled")

    def _show_progress(self, on: bool) -> None:
        for w in (self.progress, self.progress_label, self.cancel_button):
            w.setVisible(on)

    # --- document -> window ----------------------------------------------------------------------
    def _on_current_change(self, event) -> None:
        u = self.doc.utterance
        self.setWindowTitle(f"steve-qt \u2014 {u.audio.name}" if u else "steve-qt")
        if self.doc.files.current is not None:
            self._queue_extraction(self.doc.files.current, front=True)
        self._on_view_change(None)

    def _on_model_change(self, event) -> None:
        if self.doc.files.current is not None:
            self._queue_extraction(self.doc.files.current, front=True)
        for i in range(len(self.doc.files.entries)):
            self._queue_extraction(i)

    def _on_window_change(self, event) -> None:
        if self.doc.files.current is not None:
            self._queue_extraction(self.doc.files.current, front=True)

    def _on_extraction_change(self, event) -> None:
        doc = self.doc
        span = doc.attention.window_span()
        if span is not None:
            t0, t1 = doc.nav.view
            if t0 < span[0] - 1e-9 or t1 > span[1] + 1e-9:  # show this 30 s window
                doc.nav.set_view(*span)
        if doc.attention.maps is not None and doc.attention.query is None:
            doc.attention.set_query(doc.attention.default_query())

    def _on_component_change(self, event) -> None:
        if self.doc.attention.maps is not None and self.doc.attention.query is None:
            self.doc.attention.set_query(self.doc.attention.default_query())

    def _on_entry_status_change(self, event) -> None:
        i = event.value
        if i != self.doc.files.current:
            return
        status = self.doc.files.entries[i].status_text(*self.doc.attention.job_key())
        if status == FAILED:
            err = self.doc.files.entries[i].errors.get(self.doc.attention.job_key(), "")
            self.doc.nav.message_(f"Extraction failed: {err.splitlines()[0] if err else ''}")

    def _on_hover_change(self, event) -> None:
        h = self.doc.nav.hover
        self.hover_label.setText(self.doc.describe(*h) if h is not None else "")

    def _on_view_change(self, event) -> None:
        t0, t1 = self.doc.nav.view
        dur = self.doc.duration
        ms = lambda t: int(round(t * 1000))  # noqa: E731
        self.scrollbar.blockSignals(True)
        self.scrollbar.setRange(0, max(ms(dur - (t1 - t0)), 0))
        self.scrollbar.setPageStep(max(ms(t1 - t0), 1))
        self.scrollbar.setSingleStep(max(ms(t1 - t0) // 10, 1))
        self.scrollbar.setValue(ms(t0))
        self.scrollbar.blockSignals(False)

    def _on_scrollbar_moved(self, value: int) -> None:
        t0, t1 = self.doc.nav.view
        start = value / 1000
        self.doc.nav.set_view(start, start + (t1 - t0))

    # --- playback --------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.playback.playing:
            self.playback.stop()
        else:
            self.playback.play([self.doc.nav.play_span()])

    def play_selection(self) -> None:
        if self.doc.nav.selection is not None:
            self.playback.play([self.doc.nav.selection])
        else:
            self.doc.nav.message_("Nothing selected: drag in a view or click a tier interval")

    def play_from_cursor(self) -> None:
        if self.playback.playing:
            self.playback.stop()
            return
        t0, t1 = self.doc.nav.view
        start = self.doc.nav.cursor if self.doc.nav.cursor is not None else t0
        self.playback.play([(start, t1 if start < t1 else self.doc.duration)])

    def play_attended(self) -> None:
        spans = self.doc.attention.attended(ATTENDED_SHARE)
        if not spans:
            self.doc.nav.message_("Choose a query first: click the attention map")
            return
        self.views.show_attended(spans)
        self.playback.play(spans)

    def toggle_mean(self) -> None:
        self.doc.attention.set_head(0 if self.doc.attention.head is None else None)

    # --- help ------------------------------------------------------------------------------------
    def show_keys(self) -> None:
        QtWidgets.QMessageBox.information(self, "Keys", __doc__.split("\n\n", 1)[1])

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
            self._deferred_tabs = getattr(self, "_deferred_tabs", []) + [(first, second)]

    def showEvent(self, ev: QtGui.QShowEvent) -> None:
        super().showEvent(ev)
        if not getattr(self, "_docks_fitted", False):
            self._docks_fitted = True
            for first, second in getattr(self, "_deferred_tabs", []):
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
        upper = getattr(self, "phone_matrix_dock", None)
        lower = getattr(self, "head_stats_dock", None)
        if upper is not None:
            self.resizeDocks([upper], [round(RIGHT_COLUMN_PX * scale)], h)
        if upper is not None and lower is not None:
            column = upper.height() + lower.height()
            share = round(column * RIGHT_UPPER_SHARE)
            self.resizeDocks([upper, lower], [share, column - share], Qt.Orientation.Vertical)

    # --- closing ---------------------------------------------------------------------------------
    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        self._closing = True
        self.views.spectrograms.shutdown()
        self.playback.close()
        if self.queue.busy:
            self.progress_label.setText("stopping the model...")
            QtWidgets.QApplication.processEvents()
        self.queue.shutdown()
        super().closeEvent(ev)
