"""Playback in the window: the core Player plus a timer that moves the playback cursor."""

from __future__ import annotations

from PyQt6 import QtCore

from ..core.state.document import Document
from ..core.errors import SteveError
from ..core.speech.playback import Player

CURSOR_INTERVAL_MS = 25
ATTENDED_SHARE = 0.5  # Play Attended Audio: the key frames holding this share of the attention


class QtPlayback(QtCore.QObject):
    stateChanged = QtCore.pyqtSignal(bool)  # playing
    attendedPlaying = QtCore.pyqtSignal(object)  # the spans Play Attended Audio plays

    def __init__(self, doc: Document, player: Player | None = None, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.player = player or Player()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(CURSOR_INTERVAL_MS)
        self.timer.timeout.connect(self._on_tick)
        self.last_spans: list[tuple[float, float]] = []
        self._moves_playhead = True
        self._said = None  # the "Playing ..." message while it is the status bar's
        doc.events.current.connect(lambda e: self.stop())

    @property
    def playing(self) -> bool:
        return self.player.playing

    def play(self, spans) -> bool:
        """Play spans (seconds) of the shown utterance; False (and a status message) if not."""
        u = self.doc.utterance
        spans = [(float(a), float(b)) for a, b in spans if b > a]
        if u is None or not spans:
            return False
        self.stop()
        try:
            seconds = self.player.play(u.audio.original, u.audio.original_rate, spans)
        except SteveError as exc:
            self.doc.nav.message_(f"Playback unavailable: {exc.problem}")
            return False
        self.last_spans = spans
        self._moves_playhead = True
        what = ", ".join(f"{a:.3f}-{b:.3f} s" for a, b in spans[:4]) + (" ..." if len(spans) > 4 else "")
        self._say(f"Playing {what} ({seconds:.2f} s)")
        self.timer.start()
        self.stateChanged.emit(True)
        return True

    # --- the Play menu ---------------------------------------------------------------------------
    def toggle_play(self) -> None:
        """Play/stop the selection, or the visible window when nothing is selected."""
        if self.playing:
            self.stop()
        else:
            self.play([self.doc.nav.play_span()])

    def play_selection(self) -> None:
        if self.doc.nav.selection is not None:
            self.play([self.doc.nav.selection])
        else:
            self.doc.nav.message_("Nothing selected: drag in a view or click a tier interval")

    def play_from_cursor(self) -> None:
        if self.playing:
            self.stop()
            return
        t0, t1 = self.doc.nav.view
        start = self.doc.nav.cursor if self.doc.nav.cursor is not None else t0
        self.play([(start, t1 if start < t1 else self.doc.duration)])

    def play_attended(self) -> None:
        """The key frames holding ATTENDED_SHARE of the current query's attention."""
        spans = self.doc.attention.attended(ATTENDED_SHARE)
        if not spans:
            self.doc.nav.message_("Choose a query first: click the attention map")
            return
        self.attendedPlaying.emit(spans)
        self.play(spans)

    def play_samples(self, samples, rate: int, spans, what: str, playhead: bool = True) -> bool:
        """Play spans (seconds) of prepared ``samples`` (frames[, channels]) at ``rate``: the
        features dock's enveloped file or example montage. ``playhead``: the buffer's times are
        the shown file's (the playback cursor moves), else the caller follows along."""
        spans = [(float(a), float(b)) for a, b in spans if b > a]
        if not spans:
            return False
        self.stop()
        try:
            seconds = self.player.play(samples, rate, spans)
        except SteveError as exc:
            self.doc.nav.message_(f"Playback unavailable: {exc.problem}")
            return False
        self.last_spans = spans
        self._moves_playhead = playhead
        self._say(f"Playing {what} ({seconds:.2f} s)")
        self.timer.start()
        self.stateChanged.emit(True)
        return True

    def buffer_position(self) -> float | None:
        """Frame of the playing buffer at the speaker now (None when nothing plays)."""
        return self.player.buffer_position()

    def toggle(self, spans) -> None:
        if self.player.playing:
            self.stop()
        else:
            self.play(spans)

    def stop(self) -> None:
        was = self.timer.isActive()
        self.timer.stop()
        self.player.stop()
        self.doc.nav.set_playhead(None)
        if self._said is not None and self.doc.nav.message == self._said:
            self.doc.nav.message_("")  # the status bar no longer says what is playing
        self._said = None
        if was:
            self.stateChanged.emit(False)

    def _say(self, text: str) -> None:
        self._said = text
        self.doc.nav.message_(text)

    def _on_tick(self) -> None:
        lost = self.player.poll()  # the device went away: the player has released the stream
        if lost is not None:
            self.stop()
            self.doc.nav.message_(lost)
            return
        if self.player.finished() or not self.player.playing:
            self.stop()
            return
        if self._moves_playhead:
            self.doc.nav.set_playhead(self.player.position())

    def close(self) -> None:
        self.stop()
        self.player.close()
