"""The core never imports Qt; adapters are found through entry points."""

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


def test_importing_every_core_module_loads_no_qt():
    mods = [f"steve_qt.core.{p.stem}" for p in CORE.glob("*.py") if p.stem != "__init__"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods) +
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PyQt6', 'pyqtgraph')]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_adapters_are_registered_entry_points():
    from steve_qt.core.adapters import available_adapters

    eps = available_adapters()
    assert {"whisper", "wav2vec2"} <= set(eps)
    assert eps["whisper"].value == "steve_whisper:WhisperAdapter"


def test_unknown_adapter_is_a_clear_error():
    import pytest

    from steve_qt.core.adapters import load_adapter
    from steve_qt.core.errors import SteveError

    with pytest.raises(SteveError, match="unknown model 'hubert'; installed adapters: .*whisper"):
        load_adapter("hubert:facebook/hubert-base")
