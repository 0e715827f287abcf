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
