"""Persistent settings (QSettings): recent files. Tests point QSettings at a temporary folder."""

from __future__ import annotations

from pathlib import Path

from PyQt6 import QtCore

ORGANISATION = "steve_qt"
APPLICATION = "steve-qt"
RECENT_KEY = "recent_files"
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
