"""The dock columns at the default window size and smaller: the time views keep their share,
the Experiments and Features docks fit their column, and no tab bar is drawn twice."""

from __future__ import annotations

import pytest
from PyQt6 import QtWidgets

from gui_helpers import ARTIFACTS


def _tab_bars(win) -> list[tuple[str, ...]]:
    return [tuple(tb.tabText(i) for i in range(tb.count()))
            for tb in win.findChildren(QtWidgets.QTabBar) if tb.parent() is win and tb.isVisible()]


@pytest.mark.parametrize("size", [(1280, 900), (1024, 768)])
def test_both_docks_open_leave_the_time_views_room(app, qtbot, size):
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow(auto_extract=False)
    qtbot.addWidget(win)
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    win.experiments_dock.raise_()
    win.features.raise_()
    qtbot.wait(50)
    assert (win.width(), win.height()) == size  # the docks' minimum sizes let it be this small
    assert win.experiments_dock.isVisible() and win.features.isVisible()
    right = win.features.width()
    assert win.experiments_dock.width() == right
    assert right <= 420 and win.utterance_dock.width() <= 330
    # before: the Experiments dock's minimum width (627 px) squeezed the views to 311 px at 1280
    assert win.views.width() >= 0.35 * size[0], (win.views.width(), right)
    # every tab bar once (Qt drew a stale copy of the Phone matrix | Experiments bar)
    bars = _tab_bars(win)
    assert len(bars) == len(set(bars)) == 2, bars
    assert ("Phone matrix", "Experiments") in bars
    assert ("Head statistics", "Decoder self-attention", "Features") in bars
    ARTIFACTS.mkdir(exist_ok=True)
    win.grab().save(str(ARTIFACTS / f"layout_{size[0]}x{size[1]}.png"))
    win.close()
