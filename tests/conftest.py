"""Shared fixtures: the repository's samples and the embedded Whisper model (loaded once)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
import os
SAMPLES = Path(os.environ.get("STEVE_QT_TEST_SAMPLES", ROOT / "samples"))


@pytest.fixture(scope="session", autouse=True)
def _user_cache_in_tmp(tmp_path_factory):
    """The user cache (converted model, corpus cache) lives in a temporary folder during tests;
    child processes inherit it."""
    old = os.environ.get("STEVE_QT_CACHE")
    os.environ["STEVE_QT_CACHE"] = str(tmp_path_factory.mktemp("user_cache"))
    yield
    if old is None:
        os.environ.pop("STEVE_QT_CACHE", None)
    else:
        os.environ["STEVE_QT_CACHE"] = old


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
