"""Listening to a feature: Play Feature (the shown file with its loudness following the chosen
feature's activation), Play Examples (the open index's examples one after another, the example
row and the cursor following) and Export Examples Audio... (see core/features/audio.py for the
gain envelope formula and the montage)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PyQt6 import QtCore, QtWidgets

from ..core.errors import SteveError
from ..core.features import audio as feature_audio
from . import dialogs

MONTAGE_RATE = 16000  # the example montage's sample rate (the model's)


class FeatureListening(QtCore.QObject):
    """Plays through the window's playback; reads ``doc.features``; ``floor_db()`` and
    ``pad_ms()`` are the features dock's settings, ``activate()`` asks for the shown file's
    activations, ``audio_of(path)`` reads an example's audio."""

    def __init__(self, doc, playback, audio_of: Callable, floor_db: Callable[[], int],
                 pad_ms: Callable[[], int], activate: Callable[[], None], dialog_parent=None,
                 parent=None):
        super().__init__(parent)
        self.doc, self.fv, self.playback = doc, doc.features, playback
        self.audio_of, self.floor_db, self.pad_ms = audio_of, floor_db, pad_ms
        self.activate, self.dialog_parent = activate, dialog_parent
        self.montage_pieces: list = []  # pieces of the playing example montage
        self.montage_rate = MONTAGE_RATE
        playback.timer.timeout.connect(self.follow_montage)

    def play_feature(self) -> bool:
        """The shown file (its selection when there is one) with the gain envelope."""
        u, track, grid = self.doc.utterance, self.fv.track(), self.fv.grid
        if u is None:
            self.doc.nav.message_("Open an audio file first")
            return False
        if track is None:
            self.activate()
            self.doc.nav.message_(f"No activations of {self.fv.site or 'a site'} for this file yet"
                                  + (" (reading them)" if self.fv.needs_activations() is None
                                     and self.fv.site else ""))
            return False
        audio = u.audio
        x = feature_audio.enveloped(audio.original, audio.original_rate, track, grid,
                                    float(self.floor_db()))
        span = self.doc.nav.selection or (0.0, audio.duration)
        ok = self.playback.play_samples(
            x, audio.original_rate, [span],
            f"feature {self.fv.feature} of {self.fv.site} (floor {self.floor_db()} dB)")
        self.montage_pieces = []
        return ok

    def montage(self):
        pad = self.pad_ms() / 1000.0
        rate = MONTAGE_RATE
        return feature_audio.montage(self.fv.examples, self._samples_16k, rate, pad), rate

    def _samples_16k(self, path: Path):
        a = self.audio_of(path) if Path(path).exists() else None
        return None if a is None else a.samples

    def play_examples(self) -> bool:
        if self.fv.index is None or not self.fv.examples:
            self.doc.nav.message_("No examples: " + (self.fv.index_note() or
                                                     f"feature {self.fv.feature} has none"))
            return False
        (buf, pieces), rate = self.montage()
        if not pieces:
            self.doc.nav.message_("None of the examples' files can be read (stale feature index?)")
            return False
        ok = self.playback.play_samples(
            buf, rate, [(0.0, len(buf) / rate)],
            f"{len(pieces)} examples of feature {self.fv.feature}", playhead=False)
        self.montage_pieces = pieces if ok else []
        self.montage_rate = rate
        return ok

    def follow_montage(self) -> None:
        """While Play Examples plays: the example row follows, and the cursor of the shown file
        when the example is in it."""
        if not self.montage_pieces or not self.playback.playing:
            return
        pos = self.playback.buffer_position()
        if pos is None:
            return
        piece = feature_audio.piece_at(self.montage_pieces, pos)
        if piece is None:
            return
        if self.fv.example != piece.row:
            self.fv.set_example(piece.row)
        ex = self.fv.examples[piece.row]
        here = self.doc.utterance is not None and self.doc.utterance.path is not None and \
            Path(self.doc.utterance.path).resolve() == Path(ex.file).resolve()
        off = min(max(pos - piece.buf0, 0), piece.n) / self.montage_rate
        self.doc.nav.set_playhead(piece.t0 + off if here else None)

    def ask_export(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self.dialog_parent, "Export examples audio",
                                                        f"feature_{self.fv.feature}.wav",
                                                        "WAV (*.wav)")
        if path:
            self.export_examples(path, force=True)  # the dialog asked about overwriting

    def export_examples(self, path: str | Path, force: bool = False) -> tuple[Path, Path] | None:
        if not self.fv.examples:
            self.doc.nav.message_("No examples to export: " + (self.fv.index_note() or "none"))
            return None
        (buf, pieces), rate = self.montage()
        try:
            out = feature_audio.write_montage(path, buf, rate, pieces, self.fv.examples, force)
        except SteveError as exc:
            dialogs.show_error(self.dialog_parent, "Cannot export examples", str(exc))
            return None
        self.doc.nav.message_(f"Wrote {out[0].name} ({len(buf) / rate:.2f} s, {len(pieces)} "
                              f"examples) and {out[1].name}")
        return out
