"""Takes written by File > Record...: 16-bit WAV, timestamped names that never overwrite."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import soundfile as sf

from steve_qt.core.speech.recording import take_name, write_take


def test_takes_are_16_bit_wavs_with_timestamped_names_that_never_overwrite(tmp_path):
    when = datetime(2026, 12, 7, 9, 5, 3)
    x = np.random.default_rng(1).uniform(-0.9, 0.9, 1234).astype(np.float32)
    a = write_take(x, 16000, tmp_path / "takes", when)
    b = write_take(x[:100], 16000, tmp_path / "takes", when)
    assert a.name == take_name(when) == "take-20261207-090503.wav"
    assert b.name == "take-20261207-090503-2.wav"
    info = sf.info(str(a))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16",
                                                                           1234)
    y, _ = sf.read(str(a), dtype="float32")
    np.testing.assert_allclose(y, x, atol=1 / 32768)  # one 16-bit step
    assert sf.info(str(b)).frames == 100
    assert {p.name for p in (tmp_path / "takes").iterdir()} == {a.name, b.name}  # no .part
