"""Modal dialogs, each behind a module-level function so that tests can replace it.

Callers use ``dialogs.show_error(...)`` (attribute lookup at call time), so
``monkeypatch.setattr(steve_qt.gui.dialogs, "show_error", fake)`` intercepts every dialog.
"""

from __future__ import annotations

from typing import Sequence

from PyQt6 import QtWidgets

AUDIO_FILTER = "Audio (*.wav *.WAV *.flac *.FLAC *.ogg *.OGG *.aif *.aiff *.au *.snd);;All files (*)"
ALIGNMENT_FILTER = ("Alignments (*.TextGrid *.textgrid *.eaf *.EAF *.phn *.PHN *.wrd *.WRD);;"
                    "All files (*)")


def show_error(parent: QtWidgets.QWidget | None, title: str, text: str) -> None:
    """An error dialog: ``text`` names the file and the reason (str of a SteveError)."""
    QtWidgets.QMessageBox.critical(parent, title, text)


def ask_open_files(parent: QtWidgets.QWidget | None, directory: str = "") -> list[str]:
    paths, _ = QtWidgets.QFileDialog.getOpenFileNames(parent, "Open audio", directory,
                                                      AUDIO_FILTER)
    return list(paths)


def ask_alignment_file(parent: QtWidgets.QWidget | None, directory: str = "") -> str | None:
    path, _ = QtWidgets.QFileDialog.getOpenFileName(parent, "Open alignment", directory,
                                                    ALIGNMENT_FILTER)
    return path or None


def ask_model_spec(parent: QtWidgets.QWidget | None, current: str = "") -> str | None:
    text, ok = QtWidgets.QInputDialog.getText(
        parent, "Other model",
        "Model spec (whisper, whisper:base.en, whisper:/path/model.pt, wav2vec2:DIR_OR_ID):",
        text=current)
    return text.strip() if ok and text.strip() else None


def ask_folder(parent: QtWidgets.QWidget | None, title: str, directory: str = "") -> str | None:
    path = QtWidgets.QFileDialog.getExistingDirectory(parent, title, directory)
    return path or None


class TierPicker(QtWidgets.QDialog):
    """Choose which TextGrid tiers hold phones and words."""

    def __init__(self, parent, path: str, tier_names: Sequence[str], problem: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Choose tiers")
        form = QtWidgets.QFormLayout(self)
        intro = QtWidgets.QLabel(f"{path}\n{problem or 'The tier names were not recognised.'}\n"
                                 "Which tiers hold the phones and the words?")
        intro.setWordWrap(True)
        form.addRow(intro)
        self.phones = QtWidgets.QComboBox()
        self.words = QtWidgets.QComboBox()
        self.phones.addItems(list(tier_names))
        self.words.addItems(["(none)", *tier_names])
        if len(tier_names) > 1:
            self.words.setCurrentIndex(2)
        form.addRow("Phone tier:", self.phones)
        form.addRow("Word tier:", self.words)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Ok |
                                             QtWidgets.QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def choice(self) -> tuple[str, str | None]:
        w = self.words.currentText()
        return self.phones.currentText(), (None if w == "(none)" else w)


def pick_tiers(parent, path: str, tier_names: Sequence[str],
               problem: str = "") -> tuple[str, str | None] | None:
    """(phone tier, word tier or None), or None when the user cancels."""
    dlg = TierPicker(parent, path, tier_names, problem)
    if dlg.exec() == QtWidgets.QDialog.DialogCode.Accepted:
        return dlg.choice()
    return None


def record_take(parent: QtWidgets.QWidget | None, recorder):
    """Run the Record dialog on a started Recorder; the take's samples, or None (Cancel)."""
    from .record_dialog import QtRecordDialog

    dlg = QtRecordDialog(recorder, parent)
    dlg.exec()
    return dlg.take
