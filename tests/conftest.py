"""Shared fixtures: the repository's samples and the embedded Whisper model (loaded once)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = Path(os.environ.get("STEVE_QT_TEST_SAMPLES", ROOT / "samples"))


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def listener_errors():
    """Every test fails when an event listener raised (steve_qt.core.events logs and goes on).

    A test that provokes such an error on purpose reads and clears the returned list."""
    handler = _Records()
    logger = logging.getLogger("steve_qt.core.events")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
    if handler.records:
        text = "\n".join(handler.format(r) + "\n" + logging.Formatter().formatException(r.exc_info)
                         for r in handler.records if r.exc_info)
        pytest.fail(f"{len(handler.records)} event listener(s) raised:\n{text}")


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
