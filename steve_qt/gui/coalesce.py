"""One call in the next turn of the event loop for many requests in this one.

An extraction arriving announces several document fields (current, extraction, component, ...).
Panels beside the map (phone matrix, head statistics, head grid) redraw once for all of them,
after the event that brought them in has been handled -- so the map paints first (second file
to its map: 0.37 s instead of 0.45 s, median of 6, bench/RESULTS.md first_map).
"""

from __future__ import annotations

import logging
from typing import Callable

from PyQt6 import QtCore

#: a coalesced call is a document listener run later: its errors are reported where the other
#: listeners' are (steve_qt.core.events logs them and goes on; the tests fail on them), never
#: raised into Qt's event loop, which would end the application
log = logging.getLogger("steve_qt.core.events")


class Coalesced(QtCore.QObject):
    """``request()`` (any number of times) -> ``fn()`` once, when the event loop next runs;
    ``flush()`` runs a pending call now."""

    def __init__(self, fn: Callable[[], object], parent: QtCore.QObject) -> None:
        super().__init__(parent)
        self._fn = fn
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run)

    def _run(self) -> None:
        try:
            self._fn()
        except Exception:
            log.exception("error in a deferred listener (%s)",
                          getattr(self._fn, "__qualname__", repr(self._fn)))

    def request(self, *_args) -> None:
        if not self._timer.isActive():
            self._timer.start()

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def flush(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self._run()
