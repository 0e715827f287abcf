"""The extraction controller: which model runs the window queues, and what their results do.

``ExtractionController`` owns the worker queue (:class:`~steve_qt.gui.worker.ExtractionQueue`,
one model user at a time) and is the only writer of what jobs produce: an utterance's
extraction and status through ``doc.files`` / ``doc.set_extraction``, a feature site's
activations through ``doc.features`` (``store``, ``set_activation_status``), experiments through
their own callbacks. Every change goes through the owning model, which emits its event; views
redraw from those events. The status bar follows the controller's own signals (``busy``,
``progressed``); a failed feature job is also told through ``featureFailed`` (the features dock
shows why).

It is not a widget: the window gives it a parent for its error dialogs and the spectrogram
cache whose work waits while a file's first maps are computed.
"""

from __future__ import annotations

from PyQt6 import QtCore

from ..core.attention.measures import TITLES
from ..core.models.pipeline import loaded_adapter
from ..core.models.previews import PREVIEW_NOTE, is_preview
from ..core.state.document import CANCELLED, FAILED, QUEUED, RUNNING, Document
from . import dialogs
from .analysis_panels import transcript_is_empty
from .worker import ExtractionQueue, Job

PENDING_NAMES = {"model": "the model's own numbers (loading it)",
                 "transcript": "transcript and word tier", "cross": "cross-attention",
                 "decoder": "decoder attention"}


def still_coming(pending) -> str:
    """Status-bar suffix naming what a partial extraction still lacks."""
    names = [PENDING_NAMES.get(p, p) for p in pending]
    return f" \u2014 still coming: {', '.join(names)}" if names else ""


class ExtractionController(QtCore.QObject):
    """Queues the document's extractions and writes their results into the document."""

    busy = QtCore.pyqtSignal(bool)  # the status bar's progress shows / hides
    progressed = QtCore.pyqtSignal(int, int, str)  # done, total (0: unknown), what
    featureFailed = QtCore.pyqtSignal(object, str, str)  # entry, site, why

    def __init__(self, doc: Document, spectrograms, auto_extract: bool = True,
                 dialog_parent=None, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.spectrograms = spectrograms
        self.auto_extract = auto_extract
        self.dialog_parent = dialog_parent
        self.queue = ExtractionQueue(self)
        self.closing = False  # the window is closing: failures show no dialog
        self._still_coming = ""  # status-bar suffix while a partial result is shown
        q = self.queue
        q.started.connect(self._on_job_started)
        q.progress.connect(self._on_job_progress)
        q.partial.connect(self._on_job_partial)
        q.finished.connect(self._on_job_finished)
        q.failed.connect(self._on_job_failed)
        q.cancelled.connect(self._on_job_cancelled)
        q.idle.connect(lambda: self.busy.emit(False))
        e = doc.events
        e.current.connect(lambda ev: self.queue_current())
        e.model.connect(self._on_model_change)
        e.window.connect(lambda ev: self.queue_current())
        e.extraction.connect(self._on_extraction_change)
        e.component.connect(lambda ev: self._default_query())
        e.entry_status.connect(self._on_entry_status_change)
        e.measure_request.connect(self._request_measure)

    # --- queueing --------------------------------------------------------------------------------
    def queue_extraction(self, index: int, front: bool = False) -> None:
        """Queue the entry's extraction for the shown model (and window, for the shown entry)
        unless it is done, queued, running or failed."""
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
            self.hold_spectrograms()

    def queue_current(self) -> None:
        if self.doc.files.current is not None:
            self.queue_extraction(self.doc.files.current, front=True)

    def hold_spectrograms(self) -> None:
        """With the model ready and a file's extraction next, its maps come first and then the
        spectrogram (a spectrogram thread beside the model's slowed the map on two cores); the
        hold ends when the job's first maps come (or it ends), at most HOLD_MAX_MS later."""
        if self.auto_extract and loaded_adapter(self.doc.attention.model) is not None:
            self.spectrograms.hold()

    def submit(self, job: Job, front: bool = True) -> None:
        """Queue a job made elsewhere (feature activations, an experiment's task)."""
        self.queue.submit(job, front=front)

    def request_activations(self, index: int, spec: str, window: int, site: str) -> None:
        """Queue the entry's activations at ``site`` (the features dock asks)."""
        e = self.doc.files.entries[index]
        self.doc.features.set_activation_status(e, (spec, window, site), "queued")
        self.queue.submit(Job(e, spec, window, sites=(site,)), front=True)

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

    def cancel(self) -> None:
        for job in self.queue.cancel():
            if not job.measures:
                self._set_job_status(job, CANCELLED)

    def drop(self, entry) -> None:
        self.queue.drop(entry)

    def begin_closing(self) -> None:
        """The window is closing: failures from now on show no dialog."""
        self.closing = True

    def shutdown(self) -> None:
        self.closing = True
        self.queue.shutdown()

    # --- job status ------------------------------------------------------------------------------
    def _index_of_entry(self, entry) -> int | None:
        return next((i for i, e in enumerate(self.doc.files.entries) if e is entry), None)

    def _set_job_status(self, job: Job, status: str, error: str | None = None) -> None:
        if job.task is not None:
            return  # an experiment: the entry's extraction status stays as it is
        if job.sites:  # feature activations
            site = job.sites[0]
            self.doc.features.set_activation_status(job.entry, (job.spec, job.window, site),
                                                    status)
            if status == FAILED:
                self.doc.nav.message_(f"Features: {job.name}: {error}")
                self.featureFailed.emit(job.entry, site, str(error))
            return
        i = self._index_of_entry(job.entry)
        if i is not None:
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

    def _on_activations(self, index: int, job: Job, ex) -> None:
        site = job.sites[0]
        acts = getattr(ex, "activations", {}).get(site)
        grid = getattr(ex, "frame_grid", None)
        if acts is None or grid is None:
            self._set_job_status(job, FAILED, f"the model returned no activations of {site}")
            return
        self.doc.features.store(index, job.spec, job.window, site, acts, grid)
        self.doc.nav.message_(f"{job.name}: {site} ({acts.shape[0]} frames x {acts.shape[1]})")

    # --- the worker's signals --------------------------------------------------------------------
    def _on_job_started(self, job: Job) -> None:
        self._still_coming = ""
        self.busy.emit(True)
        if job.measures:  # the extraction itself is done
            self.progressed.emit(0, 0, f"{job.name}: {TITLES[job.measures[0]]}")
            return
        self._set_job_status(job, RUNNING)
        self.progressed.emit(0, 0, f"{job.name}: starting")

    def _on_job_progress(self, job: Job, done: int, total: int, what: str) -> None:
        self.progressed.emit(done, max(total, 0), f"{job.name}: {what}{self._still_coming}")

    def _release_spectrograms(self, job: Job) -> None:
        if job.task is None and not job.sites and not job.measures:
            self.spectrograms.release_soon()  # after the map's paint

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
        self.progressed.emit(-1, -1, f"{job.name}: {what} shown{self._still_coming}")
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
            self._on_activations(i, job, ex)
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
            if not self.closing:
                dialogs.show_error(self.dialog_parent, f"{TITLES[job.measures[0]]} failed",
                                   reason)
            return
        self._withdraw_preview(job)
        self._set_job_status(job, FAILED, reason)
        if self.closing or job.sites:  # the features dock says why in the status bar
            return
        where = str(job.entry.path) if job.entry.path else job.name
        text = reason if where in reason else f"{where}: {reason}"
        dialogs.show_error(self.dialog_parent, "Extraction failed",
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
                                  f"({PREVIEW_NOTE}; Attention > Extract Again for the model's "
                                  "own numbers)")
        elif kept is not None and kept.pending:
            self.doc.nav.message_(f"{job.name}: extraction cancelled; kept the "
                                  f"{', '.join(kept.maps)} maps (Attention > Extract Again for "
                                  "the rest)")
        else:
            self.doc.nav.message_(f"{job.name}: extraction cancelled")

    # --- document follow-ups ---------------------------------------------------------------------
    def _on_model_change(self, event) -> None:
        self.queue_current()
        for i in range(len(self.doc.files.entries)):
            self.queue_extraction(i)

    def _default_query(self) -> None:
        att = self.doc.attention
        if att.maps is not None and att.query is None:
            att.set_query(att.default_query())

    def _on_extraction_change(self, event) -> None:
        doc = self.doc
        span = doc.attention.window_span()
        if span is not None:
            t0, t1 = doc.nav.view
            if t0 < span[0] - 1e-9 or t1 > span[1] + 1e-9:  # show this 30 s window
                doc.nav.set_view(*span)
        self._default_query()

    def _on_entry_status_change(self, event) -> None:
        i = event.value
        if i != self.doc.files.current:
            return
        key = self.doc.attention.job_key()
        entry = self.doc.files.entries[i]
        if entry.status_text(*key) == FAILED:
            err = entry.errors.get(key, "")
            self.doc.nav.message_(f"Extraction failed: {err.splitlines()[0] if err else ''}")
