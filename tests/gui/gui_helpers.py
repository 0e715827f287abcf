"""Helpers shared by the GUI tests (imported as a plain module: conftest.py is not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
EXTRACTION_TIMEOUT_MS = int(__import__("os").environ.get("STEVE_QT_TEST_TIMEOUT_MS", 600_000))  # a shared 2-core machine under load can be very slow


def write_tone(path: Path, seconds: float, rate: int = 16000) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    sf.write(str(path), x.astype(np.float32), rate, subtype="PCM_16")
    return path


def assert_map_shows(views, values, levels=None, approx: bool = False) -> None:
    """The map view draws exactly the colour indices of the float image ``values`` with
    ``levels`` (default: the view's own; compared with these when given). ``approx``: values
    computed another way (e.g. numpy's mean) may land in the neighbouring colour at a bin edge."""
    import pytest

    from steve_qt.gui.map_images import to_indices

    values = np.asarray(values, np.float32)
    if levels is None:
        levels = views.map_levels
    else:
        assert views.map_levels == pytest.approx(levels, rel=1e-6)
    shown = views.map_image.image
    want = to_indices(values, levels)
    assert shown.dtype == np.uint8 and shown.shape == want.shape
    if not approx:
        np.testing.assert_array_equal(shown, want)
        return
    diff = np.abs(shown.astype(int) - want)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(1, diff.size // 1000)


def settle() -> None:
    """Run what the event loop has pending now: the panels beside the map redraw once per turn
    of the loop (steve_qt.gui.coalesce), not inside the call that changed the document."""
    from PyQt6 import QtWidgets

    QtWidgets.QApplication.processEvents()


def assert_same_maps(a, b) -> None:
    """Two extractions hold the same components with identical weights, scores, padding mass."""
    assert sorted(a.maps) == sorted(b.maps)
    for c in a.maps:
        np.testing.assert_array_equal(a.maps[c].weights, b.maps[c].weights)
        np.testing.assert_array_equal(a.maps[c].scores, b.maps[c].scores)
        np.testing.assert_array_equal(a.maps[c].padding_mass, b.maps[c].padding_mass)


_STEVE_QT_PROBE = """
import json, sys
from pathlib import Path
from PyQt6 import QtCore, QtWidgets
from steve_qt.cli import main
from steve_qt.gui.main_window import QtMainWindow

seen = {{}}

def check():
    wins = [w for w in QtWidgets.QApplication.topLevelWidgets()
            if isinstance(w, QtMainWindow) and w.isVisible()]
    win = wins[-1] if wins else None
    if win is None or not ({ready}):
        QtCore.QTimer.singleShot(50, check)
        return
    seen.update({record})
    win.close()
    QtWidgets.QApplication.quit()

QtCore.QTimer.singleShot(0, check)
seen["status"] = main(sys.argv[1:])
print(json.dumps(seen))
"""


def run_steve_qt(args: list[str], ready: str, record: str, home: Path) -> dict:
    """``steve-qt ARGS`` (cli.main -> gui.app.run_gui) in a process of its own, offscreen, with
    ``home`` as HOME and config folder. Once the expression ``ready`` (on ``win``, the main
    window) is true, the dict expression ``record`` is taken, the window closed and the event
    loop quit; returns what was recorded plus ``status`` (main's return value).

    Its own process, because quitting the application's event loop inside the test session
    stalled the queued calls of every later GUI test."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen",
               XDG_CONFIG_HOME=str(home / ".config"))
    script = _STEVE_QT_PROBE.format(ready=ready, record=record)
    out = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def drag_view(win, plot, x0: float, x1: float, y: float, qtbot, steps: int = 10) -> None:
    """A real left-button drag from view coordinates (x0, y) to (x1, y) of one time plot."""
    from PyQt6 import QtCore
    from PyQt6.QtTest import QTest

    views = win.views
    a = views.mapFromScene(plot.vb.mapViewToScene(QtCore.QPointF(x0, y)))
    b = views.mapFromScene(plot.vb.mapViewToScene(QtCore.QPointF(x1, y)))
    vp = views.viewport()
    qtbot.mousePress(vp, QtCore.Qt.MouseButton.LeftButton, pos=a)
    for k in range(1, steps + 1):
        QTest.mouseMove(vp, a + (b - a) * (k / steps))
    qtbot.mouseRelease(vp, QtCore.Qt.MouseButton.LeftButton, pos=b)
