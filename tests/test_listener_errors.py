"""The conftest fails a test in which an event listener raised (events.py logs it and goes on)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

BROKEN = '''
from steve_qt.core.events import EmitterGroup


def test_a_view_breaks_silently():
    g = EmitterGroup("layer")
    g.layer.connect(lambda e: 1 / 0)
    g.layer(1)  # swallowed and logged: the test body itself passes


def test_nothing_breaks():
    g = EmitterGroup("layer")
    g.layer.connect(lambda e: None)
    g.layer(1)
'''


def test_a_listener_error_fails_the_test_it_happened_in(tmp_path):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_broken.py").write_text(BROKEN, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "no:randomly", str(tmp_path)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    # the body passed; the teardown of the broken test errs, the other test stays clean
    assert "2 passed, 1 error" in out, out
    assert "ERROR test_broken.py::test_a_view_breaks_silently" in out, out
    assert "ZeroDivisionError" in out and "1 event listener(s) raised" in out, out
