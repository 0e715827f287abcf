"""Shared fixtures: the repository's samples and the embedded Whisper model (loaded once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
import os
SAMPLES = Path(os.environ.get("STEVE_QT_TEST_SAMPLES", ROOT / "samples"))


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return SAMPLES


@pytest.fixture(scope="session")
def dark_suit() -> Path:
    p = SAMPLES / "dark_suit.wav"
    if not p.exists():
        pytest.fail(f"{p} is missing: run python samples/make_samples.py")
    return p


@pytest.fixture(scope="session")
def whisper_adapter():
    from steve_qt.core.pipeline import get_adapter

    return get_adapter("whisper")


@pytest.fixture(scope="session")
def dark_suit_extraction(whisper_adapter, dark_suit):
    from steve_qt.core.audio import load_audio

    audio = load_audio(dark_suit)
    return audio, whisper_adapter.extract(audio.samples)


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def tone(seconds: float, rate: int, freq: float = 220.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x * (1 + 0.1 * c) for c in range(channels)], axis=1) if channels > 1 else x
