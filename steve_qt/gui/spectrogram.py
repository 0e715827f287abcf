"""Display spectrograms computed off the GUI thread (steve_qt.core.speech.spectrogram does the maths).

The first spectrogram of a session imports librosa (a second or two): the window shows its maps
meanwhile and paints the spectrogram when it arrives. Results are kept per (audio, kind) while
the audio is open.

While the model computes a file's first maps, the window holds new spectrogram jobs back
(``hold``, at most ``HOLD_MAX_MS``): on two cores a spectrogram thread beside the model's two
threads made the second file's map come 0.05-0.4 s later (bench/RESULTS.md, first_map).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from PyQt6 import QtCore

from ..core.speech.spectrogram import Spectrogram, spectrogram


#: the longest a hold keeps spectrogram jobs back (the encoder of tiny.en takes about 0.25 s)
HOLD_MAX_MS = 600


class QtSpectrogramJobs(QtCore.QObject):
    ready = QtCore.pyqtSignal()  # a spectrogram arrived (or failed): ask get() again

    def __init__(self, parent=None):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="steve-qt-spectrogram")
        self._done: dict[tuple[int, str], tuple[object, Spectrogram | None]] = {}
        self._pending: set[tuple[int, str]] = set()
        self._held: list[tuple] = []  # (audio, key, kind) waiting for release()
        self._holding = False
        self._hold_timer = QtCore.QTimer(self)
        self._hold_timer.setSingleShot(True)
        self._hold_timer.timeout.connect(self.release)
        self.errors: list[str] = []

    def hold(self, max_ms: int | None = None) -> None:
        """Keep new jobs back until ``release()``, or ``max_ms`` (``HOLD_MAX_MS`` by default) from
        now at the latest."""
        self._holding = True
        self._hold_timer.start(HOLD_MAX_MS if max_ms is None else max_ms)

    def release_soon(self) -> None:
        """``release()`` in the next turn of the event loop (after what is being drawn now)."""
        if self._holding:
            self._hold_timer.start(0)

    def release(self) -> None:
        """Start the jobs held back (in the order asked)."""
        self._hold_timer.stop()
        self._holding = False
        held, self._held = self._held, []
        for audio, key, kind in held:
            self._submit(audio, key, kind)

    @property
    def holding(self) -> bool:
        return self._holding

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def get(self, audio, kind: str) -> Spectrogram | None:
        """The spectrogram of ``audio`` (an Audio) of ``kind``, or None while it is computed."""
        key = (id(audio), kind)
        done = self._done.get(key)
        if done is not None and done[0] is audio:
            return done[1]
        if key not in self._pending:
            self._pending.add(key)
            if self._holding:
                self._held.append((audio, key, kind))
            else:
                self._submit(audio, key, kind)
        return None

    def _submit(self, audio, key, kind: str) -> None:
        fut = self._pool.submit(spectrogram, audio.samples, audio.rate, kind)
        fut.add_done_callback(lambda f, a=audio, k=key: self._finished(a, k, f))

    def keep(self, audios) -> None:
        """Forget the spectrograms of audio that is no longer open."""
        ids = {id(a) for a in audios}
        self._done = {k: v for k, v in self._done.items() if k[0] in ids}

    def _finished(self, audio, key, fut) -> None:  # in the worker thread
        try:
            QtCore.QMetaObject.invokeMethod(self, "_store",
                                            QtCore.Qt.ConnectionType.QueuedConnection,
                                            QtCore.Q_ARG(object, (audio, key, fut)))
        except RuntimeError:  # the window is gone
            pass

    @QtCore.pyqtSlot(object)
    def _store(self, item) -> None:  # in the GUI thread
        audio, key, fut = item
        self._pending.discard(key)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self.errors.append(f"spectrogram: {exc}")
        self._done[key] = (audio, None if exc is not None else fut.result())
        self.ready.emit()

    def shutdown(self) -> None:
        self._hold_timer.stop()
        self._held = []
        self._pool.shutdown(wait=False, cancel_futures=True)
