"""The open utterances and their extraction jobs: results and status per (model, window).

A small evented model, Qt-free. Events (``Event.value`` is the new value):

================  ===============================================================
``entries``       the list of open utterances changed (value: the list)
``entry_status``  an utterance's extraction status changed (value: its index)
``current``       another utterance is shown (value: index or None); emitted by the
                  Document, which first resets what belongs to the shown file
================  ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path

from ..models.adapters import Extraction
from ..events import EmitterGroup
from ..models.pipeline import Utterance

EVENTS = ("entries", "entry_status", "current")

# extraction status of one (model, window) of an utterance
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


@dataclass(eq=False)
class Entry:
    """One open utterance and what was extracted from it, per (model spec, window)."""

    utterance: Utterance
    extractions: dict[tuple[str, int], Extraction] = field(default_factory=dict)
    status: dict[tuple[str, int], str] = field(default_factory=dict)
    errors: dict[tuple[str, int], str] = field(default_factory=dict)
    #: (model spec, window, site) -> (activations (T, D) float32, FrameGrid); see feature_view
    activations: dict[tuple[str, int, str], tuple] = field(default_factory=dict)
    activation_status: dict[tuple[str, int, str], str] = field(default_factory=dict)

    @property
    def path(self) -> Path | None:
        return self.utterance.path

    @property
    def name(self) -> str:
        return self.utterance.audio.name

    def status_text(self, spec: str, window: int) -> str:
        return self.status.get((spec, window), "")


class Entries:
    def __init__(self) -> None:
        self.events = EmitterGroup(*EVENTS)
        self.entries: list[Entry] = []
        self.current: int | None = None

    @property
    def entry(self) -> Entry | None:
        return self.entries[self.current] if self.current is not None else None

    def index_of(self, path: str | Path) -> int | None:
        """The open entry of this file (the same file by any path: symlink, hard link)."""
        p = Path(path).resolve()
        for i, e in enumerate(self.entries):
            if e.path is not None and (e.path.resolve() == p or _same_file(e.path, p)):
                return i
        return None

    def display_name(self, index: int) -> str:
        """The entry's file name; with its folder when another open file has the same name."""
        e = self.entries[index]
        if e.path is None or not any(o.name == e.name for o in self.entries if o is not e):
            return e.name
        return f"{e.name} \u2014 {e.path.parent.name or e.path.parent}/"

    def append(self, utterance: Utterance) -> int:
        self.entries.append(Entry(utterance))
        self.events.entries(self.entries)
        return len(self.entries) - 1

    def delete(self, index: int) -> None:
        del self.entries[index]
        self.events.entries(self.entries)

    # --- jobs ------------------------------------------------------------------------------------
    def set_status(self, index: int, spec: str, window: int, status: str,
                   error: str | None = None) -> None:
        e = self.entries[index]
        e.status[(spec, window)] = status
        if error is not None:
            e.errors[(spec, window)] = error
        self.events.entry_status(index)

    def store(self, index: int, spec: str, window: int, ex: Extraction) -> None:
        e = self.entries[index]
        e.extractions[(spec, window)] = ex
        e.status[(spec, window)] = RUNNING if ex.pending else DONE  # partial: more is coming
        self.events.entry_status(index)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
