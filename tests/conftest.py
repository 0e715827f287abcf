"""Shared fixtures: the repository's samples and the embedded Whisper model (loaded once)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
def copy_samples():
    """``copy(dest, stems=None) -> dest``: the samples' WAVs (every one, or the named stems) with
    the TIMIT alignment files beside them, copied into ``dest`` (made if missing)."""

    def copy(dest, stems=None) -> Path:
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        names = stems if stems is not None else [w.stem for w in sorted(SAMPLES.glob("*.wav"))]
        for stem in names:
            for ext in (".wav", ".phn", ".wrd", ".txt"):
                if (SAMPLES / f"{stem}{ext}").exists():
                    shutil.copyfile(SAMPLES / f"{stem}{ext}", dest / f"{stem}{ext}")
        return dest

    return copy


@pytest.fixture(scope="session")
def dark_suit() -> Path:
    p = SAMPLES / "dark_suit.wav"
    if not p.exists():
        pytest.fail(f"{p} is missing: run python samples/make_samples.py")
    return p


@pytest.fixture(scope="session")
def whisper_adapter():
    from steve_qt.core.models.pipeline import get_adapter

    return get_adapter("whisper")


@pytest.fixture(scope="session")
def dark_suit_extraction(whisper_adapter, dark_suit):
    from steve_qt.core.speech.audio import load_audio

    audio = load_audio(dark_suit)
    return audio, whisper_adapter.extract(audio.samples)


@pytest.fixture(scope="session")
def synthetic_corpus(tmp_path_factory) -> Path:
    """8 utterances of 8 espeak-ng speakers (samples/make_corpus.py --n 8 --seed 0), TIMIT layout."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("corpus") / "c8"
    proc = subprocess.run([sys.executable, str(ROOT / "samples" / "make_corpus.py"), "--out",
                           str(out), "--n", "8", "--seed", "0", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"make_corpus.py failed: {proc.stderr[-2000:]}")
    return out
