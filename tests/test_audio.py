"""Audio loading: formats, rates, channels, and clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio_helpers import tone, write_wav
from steve_qt.core.speech.audio import MODEL_RATE, load_audio
from steve_qt.core.errors import SteveError


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_bit_depths(tmp_path, subtype):
    path = write_wav(tmp_path / f"{subtype}.wav", tone(0.5, 16000), 16000, subtype)
    a = load_audio(path)
    assert a.subtype == subtype and a.original_rate == 16000
    assert a.samples.dtype == np.float32 and a.samples.shape == (8000,)
    tol = 2 / 128 if subtype == "PCM_U8" else 1e-4
    np.testing.assert_allclose(a.samples, tone(0.5, 16000), atol=tol)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000, 96000])
def test_rates_resample_to_16k_preserving_duration_and_pitch(tmp_path, rate):
    path = write_wav(tmp_path / "x.wav", tone(1.0, rate, freq=440.0), rate)
    a = load_audio(path)
    assert a.original_rate == rate and a.original.shape == (rate, 1)
    assert a.rate == MODEL_RATE and abs(len(a.samples) - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(a.samples[2000:14000] * np.hanning(12000)))
    peak_hz = np.argmax(spectrum) * MODEL_RATE / 12000
    assert abs(peak_hz - 440) < 3  # an independent check that the time base is right


def test_stereo_and_six_channels_mix_to_mono_and_keep_original(tmp_path):
    for ch in (2, 6):
        x = tone(0.25, 44100, channels=ch)
        a = load_audio(write_wav(tmp_path / f"c{ch}.wav", x, 44100))
        assert a.num_channels == ch and a.original.shape == (len(x), ch)
        np.testing.assert_allclose(a.original, x, atol=1e-4)  # playback gets the real channels
        assert len(a.samples) == round(0.25 * 16000)


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_flac_and_ogg(tmp_path, fmt):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(str(path), tone(0.5, 48000), 48000, format=fmt)
    a = load_audio(path)
    assert abs(a.duration - 0.5) < 0.01 and np.abs(a.samples).max() > 0.2


def test_bad_files_name_the_file_and_the_problem(tmp_path):
    cases = {}
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    cases[empty] = "empty"
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 20)
    cases[text] = "not a readable audio file"
    good = write_wav(tmp_path / "good.wav", tone(1.0, 16000), 16000)
    trunc = tmp_path / "truncated_header.wav"
    trunc.write_bytes(good.read_bytes()[:30])
    cases[trunc] = "not a readable audio file"
    zero = write_wav(tmp_path / "zero.wav", np.zeros(0, np.float32), 16000)
    cases[zero] = "no samples"
    cases[tmp_path / "missing.wav"] = "not found"
    cases[tmp_path] = "folder"
    for path, problem in cases.items():
        with pytest.raises(SteveError) as err:
            load_audio(path)
        assert str(path) in str(err.value) and problem in str(err.value), str(err.value)


def test_truncated_data_is_an_error(tmp_path):
    """A WAV cut mid-data: libsndfile would read it as a shorter file; we say it is truncated."""
    good = write_wav(tmp_path / "good.wav", tone(1.0, 16000), 16000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: 44 + 2 * 4000])
    with pytest.raises(SteveError, match="truncated") as err:
        load_audio(cut)
    assert str(cut) in str(err.value)
    # a streaming recorder's "unknown" data size (0xFFFFFFFF) is not an error
    raw = bytearray(good.read_bytes())
    i = raw.index(b"data")
    raw[i + 4:i + 8] = b"\xff\xff\xff\xff"
    stream = tmp_path / "stream.wav"
    stream.write_bytes(bytes(raw))
    assert len(load_audio(stream).samples) == 16000
