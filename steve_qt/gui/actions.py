"""One registry of the window's named actions (napari's action manager pattern).

An action is registered once under a unique ``menu:name`` with its text, description and keys;
menus, buttons and shortcuts bind to the name. Docks ask the registry for the actions and menus
they need (``actions.menu("play")``, ``actions.get("file:export_figure")``) instead of finding a
menu by its position or text or reaching into the main window.
"""

from __future__ import annotations

from typing import Callable, Iterable

from PyQt6 import QtCore, QtGui, QtWidgets

Qt = QtCore.Qt


class ActionRegistry:
    def __init__(self, window: QtWidgets.QWidget):
        self.window = window  # owns the actions; their shortcuts work with the menu bar hidden
        self._actions: dict[str, QtGui.QAction] = {}
        self._menus: dict[str, QtWidgets.QMenu] = {}

    # --- menus -----------------------------------------------------------------------------------
    def add_menu(self, name: str, menu: QtWidgets.QMenu) -> QtWidgets.QMenu:
        if name in self._menus:
            raise ValueError(f"menu {name!r} is registered already")
        self._menus[name] = menu
        return menu

    def has_menu(self, name: str) -> bool:
        return name in self._menus

    def menu(self, name: str) -> QtWidgets.QMenu:
        return self._menus[name]

    # --- actions ---------------------------------------------------------------------------------
    def register(self, name: str, text: str, slot: Callable[[], object],
                 keys: str | Iterable[str] | None = None, description: str = "",
                 menu: str | None = None, before: str | None = None,
                 checkable: bool = False) -> QtGui.QAction:
        """Make the action ``name`` (unique); put it in the menu ``menu`` (before the action
        ``before``, else at the end). A checkable action calls ``slot(checked)`` when toggled."""
        if name in self._actions:
            raise ValueError(f"action {name!r} is registered already")
        act = QtGui.QAction(text, self.window)
        act.setObjectName(name)
        if keys:
            keys = [keys] if isinstance(keys, str) else list(keys)
            act.setShortcuts([QtGui.QKeySequence(k) for k in keys])
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if description:
            act.setStatusTip(description)
            act.setToolTip(description)
        if checkable:
            act.setCheckable(True)
            act.toggled.connect(slot)
        else:
            act.triggered.connect(lambda checked=False: slot())
        if menu is not None:
            m = self.menu(menu)
            if before is not None:
                m.insertAction(self.get(before), act)
            else:
                m.addAction(act)
        self.window.addAction(act)
        self._actions[name] = act
        return act

    def get(self, name: str) -> QtGui.QAction:
        return self._actions[name]

    def names(self) -> list[str]:
        return list(self._actions)
