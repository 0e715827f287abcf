"""Display spectrograms against computations that do not share their code."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from steve_qt.core.speech.spectrogram import (BROADBAND_MAX_HZ, Spectrogram, broadband_spectrogram,
                                       mel_spectrogram, spectrogram)

RATE = 16000


def tones(freqs, seconds=0.5, rate=RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return sum(0.3 * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32)


def test_mel_is_what_whisper_hears():
    """Our dB / 10 is whisper.audio.log_mel_spectrogram before its (x + 4) / 4 scaling."""
    import torch
    from whisper.audio import log_mel_spectrogram

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(RATE)).astype(np.float32) + tones([440, 2500], 1.0)
    ours = mel_spectrogram(x, RATE)
    theirs = log_mel_spectrogram(torch.from_numpy(x), 80).numpy() * 4.0 - 4.0  # (80, frames)
    assert ours.db.shape[0] == 80 and theirs.shape[1] == ours.num_frames - 1  # whisper drops one
    log10 = np.maximum(ours.db[:, :-1] / 10.0, ours.db.max() / 10.0 - 8.0)
    np.testing.assert_allclose(log10, theirs, atol=2e-4)
    assert ours.levels == pytest.approx((ours.db.max() - 80.0, ours.db.max()))
    assert ours.hop == 160 and ours.rect()[0] == pytest.approx(-0.005)


def test_broadband_equals_scipy_stft_with_praats_gaussian_window():
    rng = np.random.default_rng(1)
    x = (0.05 * rng.standard_normal(RATE // 2)).astype(np.float32) + tones([700, 3100])
    ours = broadband_spectrogram(x, RATE)
    m = 160  # physical window: twice the 5 ms effective length
    window = scipy.signal.windows.gaussian(m, std=m / np.sqrt(96.0), sym=True)  # exp(-48 x^2)
    f, t, z = scipy.signal.stft(x.astype(np.float64), RATE, window=window, nperseg=m,
                                noverlap=m - 32, nfft=1024, boundary="zeros", padded=True)
    keep = f <= 5000
    db = 10 * np.log10(np.abs(z[keep]) ** 2)
    db += 6.0 * np.log2(np.maximum(f[keep], f[1]) / 1000.0)[:, None]  # Praat's pre-emphasis
    n = min(db.shape[1], ours.num_frames)
    np.testing.assert_allclose(ours.freqs, f[keep])
    assert ours.hop == 32 and ours.db.shape[0] == keep.sum()
    a = ours.db[:, :n] - ours.db.max()
    b = db[:, :n] - db.max()
    shown = a > -50  # what is drawn (50 dB dynamic range)
    np.testing.assert_allclose(a[shown], b[shown], atol=0.02)
    assert ours.levels == pytest.approx((ours.db.max() - 50.0, ours.db.max()))


def test_broadband_tone_energy_sits_at_its_frequency():
    x = tones([1000.0, 3000.0, 6500.0])  # 6.5 kHz lies above Praat's 5 kHz view
    s = spectrogram(x, RATE, "broadband")
    assert s.freqs[-1] <= BROADBAND_MAX_HZ and s.y_extent[1] <= BROADBAND_MAX_HZ + 20
    mid = s.db[:, s.num_frames // 2]
    idx = scipy.signal.find_peaks(mid, prominence=20)[0]
    peaks = s.freqs[idx[mid[idx] > s.levels[0]]]  # peaks inside the drawn 50 dB
    assert len(peaks) == 2
    assert peaks == pytest.approx([1000.0, 3000.0], abs=2 * 15.625)  # the 6 dB/oct tilt
    flat = mid - 6.0 * np.log2(np.maximum(s.freqs, s.freqs[1]) / 1000.0)  # pre-emphasis undone
    idx = scipy.signal.find_peaks(flat, prominence=20)[0]
    assert list(s.freqs[idx[flat[idx] > flat.max() - 50]]) == [1000.0, 3000.0]  # bins 64, 192
    assert s.y_of_hz(3000.0) == 3000.0


def test_mel_tone_lands_in_its_band_and_ticks_map_there():
    s = spectrogram(tones([1000.0]), RATE, "mel")
    band = int(np.argmax(s.db[:, s.num_frames // 2]))
    assert abs(s.freqs[band] - 1000.0) < 60  # band centres ~ 30 to 60 Hz apart near 1 kHz
    assert abs(s.y_of_hz(1000.0) - (band + 0.5)) < 1.0
    assert s.ticks_hz()[-1] == 8000.0


def test_short_and_bad_input():
    for kind in ("mel", "broadband"):
        s = spectrogram(np.zeros(10, np.float32), RATE, kind)
        assert isinstance(s, Spectrogram) and s.num_frames >= 1 and np.isfinite(s.db).all()
    with pytest.raises(ValueError, match="unknown spectrogram kind"):
        spectrogram(np.zeros(100), RATE, "narrow")
