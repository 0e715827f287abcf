"""Opening files into the document: audio (with the alignment found beside it), alignments,
recordings, File > Open Recent; closing the shown utterance.

``FileOpener`` is not a widget: the window gives it a parent for its dialogs; the extraction
controller starts the model on a file as it is added, and playback stops when the shown file
closes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

from PyQt6 import QtCore, QtWidgets

from ..core.errors import SteveError
from ..core.models.pipeline import Utterance
from ..core.speech.alignment import TierNotFound, find_alignment, load_alignment
from ..core.speech.audio import load_audio
from ..core.speech.recording import Recorder, write_take
from ..core.state.document import Document
from . import dialogs, settings
from .app import ALIGNMENT_SUFFIXES


class FileOpener(QtCore.QObject):
    """File > Open..., Open Alignment..., Record..., Open Recent and Close Utterance."""

    def __init__(self, doc: Document, extraction, playback, parent_widget=None, parent=None):
        super().__init__(parent)
        self.doc, self.extraction, self.playback = doc, extraction, playback
        self.parent_widget = parent_widget

    def ask_open(self) -> None:
        start = str(Path(settings.recent_files()[0]).parent) if settings.recent_files() else ""
        self.open_paths(dialogs.ask_open_files(self.parent_widget, start))

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
            dialogs.show_error(self.parent_widget, "Cannot open audio", str(exc))
            return None
        alignment, kind = self._load_alignment_beside(path, audio.duration)
        if show:
            self.extraction.hold_spectrograms()  # the first file is shown as it is added
        index = self.doc.add(Utterance(audio, alignment, kind), show=False)
        # the model starts on the file while the views take it in
        self.extraction.queue_extraction(index, front=show)
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
                choice = dialogs.pick_tiers(self.parent_widget, str(apath), exc.tier_names, exc.problem)
                if choice is None:
                    return None
                phone_tier, word_tier = choice
            except SteveError as exc:
                dialogs.show_error(self.parent_widget, "Cannot read alignment",
                                   f"{exc}\n\nThe audio is shown without this alignment.")
                return None
        return None

    def record(self) -> int | None:
        """File > Record...: record a take, write it as a 16-bit WAV with a timestamped name in
        the recordings folder (asked for once, then kept in the settings) and open it."""
        folder = settings.record_folder()
        if folder is None:
            folder = dialogs.ask_folder(self.parent_widget, "Folder for recordings", str(Path.home()))
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
        take = dialogs.record_take(self.parent_widget, recorder)
        if take is None or not take.size:
            self.doc.nav.message_("Recording cancelled")
            return None
        try:
            path = write_take(take, recorder.rate, folder)
        except SteveError as exc:
            dialogs.show_error(self.parent_widget, "Cannot save the recording", str(exc))
            return None
        opened = self.open_paths([path])
        return opened[0] if opened else None

    def ask_open_alignment(self) -> None:
        u = self.doc.utterance
        if u is None:
            dialogs.show_error(self.parent_widget, "No audio", "Open an audio file first, then its alignment.")
            return
        start = str(u.path.parent) if u.path else ""
        path = dialogs.ask_alignment_file(self.parent_widget, start)
        if path:
            self.open_alignment(path)

    def open_alignment(self, path: str | Path) -> bool:
        u = self.doc.utterance
        path = Path(path)
        if u is None:
            dialogs.show_error(self.parent_widget, "No audio", f"{path}: open the audio before its alignment.")
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
        self.extraction.drop(self.doc.files.entries[i])
        self.doc.remove(i)

    def fill_recent_menu(self, menu: QtWidgets.QMenu) -> None:
        """File > Open Recent, filled as it is about to show."""
        menu.clear()
        files = settings.recent_files()
        for f in files:
            act = menu.addAction(f)
            act.triggered.connect(lambda checked=False, f=f: self.open_paths([f]))
        if files:
            menu.addSeparator()
            menu.addAction("Clear", settings.clear_recent_files)
        else:
            menu.addAction("(none)").setEnabled(False)
