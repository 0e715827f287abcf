"""Helpers shared by the GUI tests (imported as a plain module: conftest.py is not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
EXTRACTION_TIMEOUT_MS = 600_000  # a shared 2-core machine under load can be very slow


def write_tone(path: Path, seconds: float, rate: int = 16000) -> Path:
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    sf.write(str(path), x.astype(np.float32), rate, subtype="PCM_16")
    return path
