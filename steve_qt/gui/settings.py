"""Persistent settings (QSettings): recent files, the recordings folder. Tests point QSettings at a temporary folder."""

from __future__ import annotations

from pathlib import Path

from PyQt6 import QtCore

ORGANISATION = "steve_qt"
APPLICATION = "steve-qt"
RECENT_KEY = "recent_files"
RECORD_FOLDER_KEY = "record_folder"
MAX_RECENT = 10


def settings() -> QtCore.QSettings:
    """INI file under the user's config folder (QSettings.setPath moves it, e.g. in tests)."""
    return QtCore.QSettings(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                            ORGANISATION, APPLICATION)


def recent_files() -> list[str]:
    value = settings().value(RECENT_KEY, [])
    if isinstance(value, str):  # QSettings returns a lone string for a one-item list
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent_file(path: str | Path) -> list[str]:
    p = str(Path(path).resolve())
    files = [p] + [f for f in recent_files() if f != p]
    files = files[:MAX_RECENT]
    s = settings()
    s.setValue(RECENT_KEY, files)
    s.sync()
    return files


def clear_recent_files() -> None:
    s = settings()
    s.remove(RECENT_KEY)
    s.sync()


def record_folder() -> str | None:
    """The folder File > Record... writes takes into (chosen once), or None."""
    value = settings().value(RECORD_FOLDER_KEY, "")
    return str(value) if value else None


def set_record_folder(folder: str | Path) -> None:
    s = settings()
    s.setValue(RECORD_FOLDER_KEY, str(Path(folder).resolve()))
    s.sync()
