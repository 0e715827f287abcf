"""A corpus run killed mid-way (SIGKILL) leaves a usable cache; the rerun finishes and reuses it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

STEVE = str(Path(sys.executable).with_name("steve-qt"))


def test_killed_run_then_rerun(tmp_path, copy_samples):
    if not Path(STEVE).exists():
        pytest.skip("console script not installed in this environment")
    corpus = copy_samples(tmp_path / "corpus")
    cache = tmp_path / "cache"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([STEVE, "stats", str(corpus), "--out", str(tmp_path / "out1"),
                             "--cache", str(cache)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while not entries(cache):  # wait for the first finished cache entry
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no cache entry after 10 minutes"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    kept = entries(cache)
    assert 1 <= len(kept) < 4, kept  # killed mid-run, not after it
    r = subprocess.run([STEVE, "stats", str(corpus), "--out", str(tmp_path / "out2"),
                        "--cache", str(cache)], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    summary = (r.stdout + r.stderr)
    m = re.search(r"used (\d+) of (\d+) files.*?(\d+) extracted, (\d+) from cache", summary, re.S)
    assert m, summary
    used, total, extracted, cached = map(int, m.groups())
    assert used == total == 4 and cached >= len(kept) and extracted + cached == 4
    # every entry the rerun finds loads; a temporary file the kill left is never taken for one
    assert len(entries(cache)) == 4


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*.npz") if not p.name.startswith("."))
