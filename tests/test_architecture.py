"""The core never imports Qt or a model library; its subpackages form no import cycle; adapters
are found through entry points."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "steve_qt" / "core"


def test_core_sources_do_not_import_qt():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] in ("PyQt6", "PyQt5", "PySide6", "pyqtgraph")
                          or n.startswith("steve_qt.gui") or n.startswith("..gui")]
    assert not offenders


def core_modules() -> list[str]:
    mods = []
    for p in sorted(CORE.rglob("*.py")):
        parts = ("steve_qt",) + p.relative_to(CORE.parent).with_suffix("").parts
        mods.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return mods


def imported_modules(path: Path, module: str) -> list[str]:
    """Absolute names of what a source file imports (relative imports resolved; all levels)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            out.append(stem)
            out += [f"{stem}.{a.name}" for a in node.names]
    return out


def test_core_imports_no_model_library():
    """Model libraries' code lives in plugins/ (torch itself is allowed: mixing measures)."""
    offenders = []
    for path, mod in zip(sorted(CORE.rglob("*.py")), core_modules()):
        offenders += [f"{mod}: {n}" for n in imported_modules(path, mod)
                      if n.split(".")[0] in ("whisper", "transformers", "steve_whisper",
                                             "steve_wav2vec2")]
    assert not offenders


def test_core_subpackages_form_no_import_cycle():
    def domain(mod: str) -> str | None:
        parts = mod.split(".")
        if parts[:2] != ["steve_qt", "core"] or len(parts) < 3:
            return None
        return parts[2] if (CORE / parts[2]).is_dir() else None

    edges: dict[str, set[str]] = {}
    for path, mod in zip(sorted(CORE.rglob("*.py")), core_modules()):
        src = domain(mod)
        if src is None:  # core's shared modules (errors, events, ...) import no subpackage
            targets = {domain(n) for n in imported_modules(path, mod)} - {None}
            assert not targets, f"{mod} imports {targets}"
            continue
        for n in imported_modules(path, mod):
            dst = domain(n)
            if dst and dst != src:
                edges.setdefault(src, set()).add(dst)
    assert len(edges) >= 5  # the test sees the real graph

    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_cycle_check_sees_a_cycle(tmp_path):
    """The resolver above turns relative imports into the names the cycle check compares."""
    f = tmp_path / "x.py"
    f.write_text("from ..speech.audio import load_audio\nfrom . import maps\n")
    names = imported_modules(f, "steve_qt.core.attention.x")
    assert "steve_qt.core.speech.audio" in names and "steve_qt.core.attention.maps" in names


def test_importing_every_core_module_loads_no_qt():
    mods = core_modules()
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods) +
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PyQt6', 'pyqtgraph')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_adapters_are_registered_entry_points():
    from steve_qt.core.models.adapters import available_adapters

    eps = available_adapters()
    assert {"whisper", "wav2vec2"} <= set(eps)
    assert eps["whisper"].value == "steve_whisper:WhisperAdapter"


def test_unknown_adapter_is_a_clear_error():
    import pytest

    from steve_qt.core.models.adapters import load_adapter
    from steve_qt.core.errors import SteveError

    with pytest.raises(SteveError, match="unknown model 'hubert'; installed adapters: .*whisper"):
        load_adapter("hubert:facebook/hubert-base")


# --- the window's rooms ---------------------------------------------------------------------------
GUI = Path(__file__).resolve().parents[1] / "steve_qt" / "gui"


def private_reads(source: str) -> list[str]:
    """``x._name`` where ``x`` is not ``self`` or ``cls``: another object's private attribute."""
    import ast

    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            out.append(f"{node.lineno}: {ast.unparse(node)}")
    return out


def menus_found_by_place_or_text(source: str) -> list[str]:
    """``….actions()[i]`` (a menu or action found by its position) and comparisons of an action's
    ``text()`` or ``title()`` (found by its text): docks ask the action registry by name."""
    import ast

    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) and \
                isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "actions":
            out.append(f"{node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Call) and isinstance(side.func, ast.Attribute) and \
                        side.func.attr in ("text", "title") and \
                        isinstance(side.func.value, ast.Name) and side.func.value.id in \
                        ("a", "act", "action", "m", "menu"):
                    out.append(f"{node.lineno}: {ast.unparse(node)}")
    return out


def test_the_checks_can_fail():
    bad = ("class A:\n    def f(self, win, mb):\n        win._action(1)\n        self._ok = 1\n"
           "        m = mb.actions()[0].menu()\n"
           "        p = next(a.menu() for a in mb.actions() if a.text() == '&Play')\n")
    assert private_reads(bad) == ["3: win._action"]
    assert len(menus_found_by_place_or_text(bad)) == 2


def test_gui_reads_no_private_attribute_of_another_object_and_finds_no_menu_by_place():
    found = {}
    for f in sorted(GUI.glob("*.py")):
        src = f.read_text(encoding="utf-8")
        bad = private_reads(src) + menus_found_by_place_or_text(src)
        if bad:
            found[f.name] = bad
    assert not found, found


def test_the_document_forwards_nothing():
    from steve_qt.core.state.document import Document

    text = (Path(__file__).resolve().parents[1] / "steve_qt" / "core" / "state" /
            "document.py").read_text(encoding="utf-8")
    assert "setattr(" not in text and "_forward" not in text
    for name in ("layer", "set_view", "entries", "current", "maps", "message_"):
        assert not hasattr(Document, name), name


WINDOW_NAMES = ("window", "win", "main_window", "mw", "parent")
#: what the main window hands to the rooms it builds: the document, the time views, playback,
#: the extraction controller, the file opener, the action registry
SHARED = ("doc", "views", "playback", "extraction", "opener", "actions", "registry", "queue",
          "status_bar") + WINDOW_NAMES


def into_a_shared_room(node) -> bool:
    """``node`` (what an attribute is set on) is the window or an object the rooms share:
    ``window``, ``window.views``, ``self.views``, ``self.doc.features`` ..."""
    import ast

    chain = []
    while isinstance(node, ast.Attribute):
        chain.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return False
    if node.id in WINDOW_NAMES:
        return True
    return node.id in ("self", "cls") and bool(chain) and chain[-1] in SHARED


def attribute_writes_on_others(source: str) -> list[str]:
    """Writes into another room: ``window.name = ...`` (a function giving the main window its
    docks), ``self.views.name = ...`` (an attribute of an object the rooms share, SHARED),
    ``setattr(x, ...)`` where ``x`` is not ``self`` or ``cls``, and module-level ``install_*``
    functions (the pattern that did it). Each room sets only its own attributes and the main
    window assembles the rooms it constructs; a plot item or value object a function builds
    and fills itself (``p.name = ...``) is its own business."""
    import ast

    tree = ast.parse(source)
    out = [f"{node.lineno}: def {node.name}" for node in tree.body
           if isinstance(node, ast.FunctionDef) and node.name.startswith("install_")]
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        while targets:  # the names bound (a tuple's items; not what a subscript indexes)
            t = targets.pop()
            if isinstance(t, (ast.Tuple, ast.List)):
                targets += t.elts
            elif isinstance(t, ast.Starred):
                targets.append(t.value)
            elif isinstance(t, ast.Attribute) and into_a_shared_room(t.value):
                out.append(f"{node.lineno}: {ast.unparse(t)} =")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "setattr" and node.args and not (
                    isinstance(node.args[0], ast.Name) and node.args[0].id in ("self", "cls")):
            out.append(f"{node.lineno}: {ast.unparse(node)}")
    return sorted(out, key=lambda s: int(s.split(":")[0]))


def test_the_attribute_write_check_can_fail():
    bad = ("def install_panel(window):\n    window.panel = Panel(window.doc)\n"
           "    setattr(window, 'dock', window.add_dock(window.panel))\n"
           "    window.docks += [1]\n"
           "class Panel:\n    def __init__(self, doc, views):\n        self.doc = doc\n"
           "        a, self.b = 1, 2\n        self.views = views\n"
           "        self.views.track, p = 3, Plot()\n        p.name = 'mine'\n")
    assert attribute_writes_on_others(bad) == [
        "1: def install_panel", "2: window.panel =",
        "3: setattr(window, 'dock', window.add_dock(window.panel))", "4: window.docks =",
        "10: self.views.track ="]


def test_no_gui_module_sets_another_objects_attributes():
    found = {}
    for f in sorted(GUI.glob("*.py")):
        bad = attribute_writes_on_others(f.read_text(encoding="utf-8"))
        if bad:
            found[f.name] = bad
    assert not found, found
