"""Model loading and extraction off the GUI thread, one job at a time, with progress and Cancel.

``ExtractionQueue`` lives in the GUI thread; its ``_Worker`` lives in a QThread. The model is
loaded once per spec and reused (``pipeline.get_adapter``). Cancel sets an event that the
adapter polls through ``should_cancel`` (it raises Cancelled within one layer). Results come
back as Qt signals, so the document is only ever changed in the GUI thread: ``partial`` for each
early, incomplete result (the encoder maps before the transcript; ``Extraction.pending`` says
what is still coming), then one of ``finished``/``failed``/``cancelled``. While the model is
not loaded yet, a job first hands over the model's preview (``core.previews``: computed without
torch, marked in ``meta``) as a partial result; the model's own results replace it.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from typing import Callable

from PyQt6 import QtCore

from ..core.state.document import Entry
from ..core.errors import Cancelled, SteveError
from ..core.models.previews import is_preview

#: after handing a preview to the window, the worker waits this long (ms) for the event loop to
#: paint it before it loads the model (importing torch holds the GIL) ...
PREVIEW_PAINT_MS = 60
#: ... and never longer than this (s)
PREVIEW_WAIT_S = 2.0


@dataclass(eq=False)
class Job:
    entry: Entry
    spec: str
    window: int
    #: sites to read (the features dock): then no attention is captured, and Whisper runs the
    #: encoder only when they are all frames sites
    sites: tuple[str, ...] = ()
    #: context-mixing measures to add to ``extraction`` (then the job computes only those)
    measures: tuple[str, ...] = ()
    extraction: object | None = None
    #: an experiment instead of an extraction: task(adapter, progress, should_cancel) -> result,
    #: handed to on_done(result) / on_error(reason) in the GUI thread (the entry's status is
    #: not touched). Running it in this queue keeps one model user at a time.
    task: Callable | None = None
    on_done: Callable | None = None
    on_error: Callable | None = None
    title: str = ""

    @property
    def name(self) -> str:
        return self.entry.name


class _Worker(QtCore.QObject):
    progress = QtCore.pyqtSignal(object, int, int, str)  # job, done, total, what
    partial = QtCore.pyqtSignal(object, object)  # job, incomplete Extraction
    finished = QtCore.pyqtSignal(object, object)  # job, Extraction
    failed = QtCore.pyqtSignal(object, str)  # job, reason
    cancelled = QtCore.pyqtSignal(object)  # job

    def __init__(self, cancel: threading.Event):
        super().__init__()
        self.cancel = cancel
        #: set by the GUI thread once a preview has had time to paint (``ExtractionQueue``)
        self.shown = threading.Event()

    def _wait_until_shown(self, should_cancel) -> None:
        """Loading the model next imports torch, which holds the GIL for a second or more and
        would hold back the GUI thread painting the preview: wait for that paint first."""
        deadline = time.monotonic() + PREVIEW_WAIT_S
        while not self.shown.wait(0.02) and time.monotonic() < deadline:
            if should_cancel():
                raise Cancelled()

    @QtCore.pyqtSlot(object)
    def run(self, job: Job) -> None:
        from ..core.models import previews
        from ..core.models.pipeline import extract, get_adapter, loaded_adapter

        def should_cancel() -> bool:
            return self.cancel.is_set()

        def progress(done: int, total: int, what: str) -> None:
            self.progress.emit(job, done, total, what)

        try:
            if job.task is None and not job.measures and not job.sites \
                    and loaded_adapter(job.spec) is None:
                # the model is not loaded yet (a cold start): show a preview computed without
                # torch first, when the model has one; the model's own result replaces it
                progress(0, 0, "encoder preview")
                ex = previews.take(job.spec, job.entry.utterance.audio, job.window, should_cancel)
                if ex is not None:
                    self.shown.clear()
                    self.partial.emit(job, ex)
                    self._wait_until_shown(should_cancel)
            progress(0, 0, f"loading model {job.spec}")
            adapter = get_adapter(job.spec)
            if should_cancel():
                raise Cancelled()
            progress(0, 0, f"{adapter.model_id}: starting")
            if job.task is not None:
                ex = job.task(adapter, progress, should_cancel)
            elif job.measures:  # the result is {name: array}, attached in the GUI thread
                from ..core.models.pipeline import compute_measures

                ex = compute_measures(adapter, job.entry.utterance.audio, job.extraction,
                                      job.measures, progress=progress,
                                      should_cancel=should_cancel)
            else:
                ex = extract(adapter, job.entry.utterance.audio, window=job.window,
                             progress=progress, should_cancel=should_cancel,
                             components=() if job.sites else None, sites=job.sites,
                             on_partial=None if job.sites else
                             (lambda part: self.partial.emit(job, part)))
        except Cancelled:
            self.cancelled.emit(job)
        except SteveError as exc:
            self.failed.emit(job, str(exc))
        except Exception as exc:  # a model bug must not take the window down
            traceback.print_exc()
            self.failed.emit(job, f"{type(exc).__name__}: {exc}")
        else:
            self.finished.emit(job, ex)


class ExtractionQueue(QtCore.QObject):
    """Jobs in order; ``started``/``progress``/``finished``/``failed``/``cancelled``/``idle``."""

    started = QtCore.pyqtSignal(object)
    progress = QtCore.pyqtSignal(object, int, int, str)
    partial = QtCore.pyqtSignal(object, object)
    finished = QtCore.pyqtSignal(object, object)
    failed = QtCore.pyqtSignal(object, str)
    cancelled = QtCore.pyqtSignal(object)
    idle = QtCore.pyqtSignal()
    _run = QtCore.pyqtSignal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cancel = threading.Event()
        self._thread = QtCore.QThread()
        self._thread.setObjectName("steve-qt extraction")
        self._worker = _Worker(self._cancel)
        self._worker.moveToThread(self._thread)
        self._run.connect(self._worker.run)
        self._worker.progress.connect(self.progress)
        self._worker.partial.connect(self._on_partial)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.start()
        self.pending: list[Job] = []
        self.running: Job | None = None
        self._closed = False

    # --- requests --------------------------------------------------------------------------------
    def submit(self, job: Job, front: bool = False) -> None:
        if self._closed or self._has(job):
            return
        if front:
            self.pending.insert(0, job)
        else:
            self.pending.append(job)
        self._next()

    def _has(self, job: Job) -> bool:
        return any(j.entry is job.entry and j.spec == job.spec and j.window == job.window
                   and j.sites == job.sites and j.measures == job.measures
                   and j.task is None and job.task is None
                   for j in ([self.running] if self.running else []) + self.pending)

    def drop(self, entry: Entry) -> None:
        """Forget queued jobs of a closed utterance (and cancel its running one)."""
        self.pending = [j for j in self.pending if j.entry is not entry]
        if self.running is not None and self.running.entry is entry:
            self._cancel.set()

    def cancel(self) -> list[Job]:
        """Cancel the running job and drop the queue; returns the dropped jobs."""
        dropped, self.pending = self.pending, []
        if self.running is not None:
            self._cancel.set()
        return dropped

    @property
    def busy(self) -> bool:
        return self.running is not None

    def shutdown(self, timeout_ms: int = 60000) -> bool:
        """Cancel everything and stop the thread; True when it ended in time."""
        self._closed = True
        self.cancel()
        self._thread.quit()
        ok = self._thread.wait(QtCore.QDeadlineTimer(timeout_ms))
        return bool(ok)

    # --- worker results --------------------------------------------------------------------------
    def _next(self) -> None:
        if self.running is not None or not self.pending or self._closed:
            if self.running is None and not self.pending:
                self.idle.emit()
            return
        self.running = self.pending.pop(0)
        self._cancel.clear()
        self.started.emit(self.running)
        self._run.emit(self.running)

    def _done(self) -> Job:
        job, self.running = self.running, None
        return job

    def _on_partial(self, job: Job, ex) -> None:
        if job is self.running:  # a late signal of a finished job is dropped
            self.partial.emit(job, ex)
        if is_preview(ex):  # the window has taken it; let the event loop paint, then go on
            QtCore.QTimer.singleShot(PREVIEW_PAINT_MS, self._worker.shown.set)

    def _on_finished(self, job: Job, ex) -> None:
        self._done()
        self.finished.emit(job, ex)
        self._next()

    def _on_failed(self, job: Job, reason: str) -> None:
        self._done()
        self.failed.emit(job, reason)
        self._next()

    def _on_cancelled(self, job: Job) -> None:
        self._done()
        self.cancelled.emit(job)
        self._next()
