"""Where the user is on the shown file's timeline: view, selection, cursor, hover, playhead.

A small evented model (``nav.events.<name>``), Qt-free. Times are seconds on the file's
timeline, kept inside [0, duration]. Events (``Event.value`` is the new value):

=============  ==================================================================
``view``       visible time span (t0, t1)
``selection``  selected time span (t0, t1) or None
``cursor``     clicked time or None
``hover``      point under the mouse: (t, query_row or None) or None
``playhead``   playback position or None
``message``    a one-line status text for the status bar
=============  ==================================================================
"""

from __future__ import annotations

from ..events import EmitterGroup, Evented

MIN_VIEW_S = 0.005  # narrowest visible span
EVENTS = ("view", "selection", "cursor", "hover", "playhead", "message")


def clamp_view(t0: float, t1: float, duration: float) -> tuple[float, float]:
    """Keep a view inside [0, duration] without changing its width when possible."""
    width = max(min(t1 - t0, duration), min(MIN_VIEW_S, duration))
    t0 = min(max(t0, 0.0), max(duration - width, 0.0))
    return t0, t0 + width


def zoom_view(view: tuple[float, float], factor: float, centre: float | None,
              duration: float) -> tuple[float, float]:
    """Scale the view's width by ``factor`` (< 1 zooms in) keeping ``centre`` at its place."""
    t0, t1 = view
    c = (t0 + t1) / 2 if centre is None or not t0 <= centre <= t1 else centre
    width = max((t1 - t0) * factor, MIN_VIEW_S)
    frac = (c - t0) / (t1 - t0) if t1 > t0 else 0.5
    a = c - frac * width
    return clamp_view(a, a + width, duration)


def normalise_span(a: float, b: float) -> tuple[float, float]:
    return (a, b) if a <= b else (b, a)


class Navigation(Evented):
    def __init__(self) -> None:
        self.events = EmitterGroup(*EVENTS)
        self.duration = 1.0
        self.view: tuple[float, float] = (0.0, 1.0)
        self.selection: tuple[float, float] | None = None
        self.cursor: float | None = None
        self.hover: tuple[float, int | None] | None = None
        self.playhead: float | None = None
        self.message = ""

    def reset(self, duration: float) -> None:
        """A new file: everything visible, nothing selected; no events (the caller emits)."""
        self.duration = duration
        self.selection = None
        self.cursor = None
        self.hover = None  # what it described belongs to the file shown before
        self.playhead = None
        self.view = (0.0, duration)

    def emit_reset(self) -> None:
        self.events.view(self.view)
        self.events.selection(None)
        self.events.cursor(None)
        self.events.hover(None)

    # --- view ------------------------------------------------------------------------------------
    def set_view(self, t0: float, t1: float) -> None:
        self._set("view", clamp_view(float(t0), float(t1), self.duration))

    def zoom(self, factor: float, centre: float | None = None) -> None:
        if centre is None:
            centre = self.cursor if self.cursor is not None else (
                sum(self.selection) / 2 if self.selection else None)
        self._set("view", zoom_view(self.view, factor, centre, self.duration))

    def zoom_in(self) -> None:
        self.zoom(0.5)

    def zoom_out(self) -> None:
        self.zoom(2.0)

    def zoom_to_selection(self) -> None:
        if self.selection is not None and self.selection[1] > self.selection[0]:
            self.set_view(*self.selection)

    def show_all(self) -> None:
        self.set_view(0.0, self.duration)

    def scroll(self, fraction: float) -> None:
        t0, t1 = self.view
        d = (t1 - t0) * fraction
        self.set_view(t0 + d, t1 + d)

    # --- marks -----------------------------------------------------------------------------------
    def set_selection(self, span: tuple[float, float] | None) -> None:
        if span is not None:
            a, b = normalise_span(*span)
            a, b = max(a, 0.0), min(b, self.duration)
            span = (a, b) if b > a else None
        self._set("selection", span)

    def set_cursor(self, t: float | None) -> None:
        self._set("cursor", None if t is None else min(max(float(t), 0.0), self.duration))

    def set_hover(self, point: tuple[float, int | None] | None) -> None:
        self._set("hover", point)

    def set_playhead(self, t: float | None) -> None:
        self._set("playhead", t)

    def message_(self, text: str) -> None:
        self.message = text
        self.events.message(text)

    def play_span(self) -> tuple[float, float]:
        """What Tab plays: the selection, else the visible window."""
        if self.selection is not None:
            return self.selection
        return self.view
