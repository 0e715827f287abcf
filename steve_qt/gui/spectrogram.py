"""Log-mel spectrogram for display (numpy only; what Whisper-like models hear, in dB).

25 ms Hann window, 10 ms hop, 80 mel bands from 0 Hz to Nyquist (HTK mel formula).
Frame ``i`` is centred on sample ``i * hop`` (the signal is padded by half a window at both ends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_FFT = 512
WIN = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms at 16 kHz
N_MELS = 80
DYNAMIC_RANGE_DB = 70.0


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filters(rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the mel scale."""
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(rate / 2), n_mels + 2))
    freqs = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs[None]) / np.maximum(hi - mid, 1e-9)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


@dataclass
class Spectrogram:
    db: np.ndarray  # (n_mels, frames) float32, C-contiguous: image rows = mel bands
    rate: int
    hop: int
    levels: tuple[float, float]

    @property
    def num_frames(self) -> int:
        return self.db.shape[1]

    def rect(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) of the image in (seconds, mel band) coordinates."""
        step = self.hop / self.rate
        return -step / 2, 0.0, self.num_frames * step, float(self.db.shape[0])

    def band_of_hz(self, f: float) -> float:
        """Band coordinate (0..n_mels) of frequency ``f`` in Hz, for axis ticks."""
        n = self.db.shape[0]
        return float(hz_to_mel(f) / hz_to_mel(self.rate / 2) * n)


def log_mel(samples: np.ndarray, rate: int, chunk: int = 4096) -> Spectrogram:
    """Log-mel spectrogram of mono ``samples`` at ``rate`` (window/hop scaled from 16 kHz)."""
    win = max(16, int(round(WIN * rate / 16000)))
    hop = max(1, int(round(HOP * rate / 16000)))
    n_fft = 1 << int(np.ceil(np.log2(win)))
    x = np.asarray(samples, dtype=np.float32)
    x = np.pad(x, (n_fft // 2, n_fft // 2))
    n_frames = max(1, 1 + (len(x) - n_fft) // hop)
    window = np.zeros(n_fft, np.float32)
    off = (n_fft - win) // 2
    window[off:off + win] = np.hanning(win + 2)[1:-1]
    fb = mel_filters(rate, n_fft).T  # (bins, mels)
    out = np.empty((n_frames, fb.shape[1]), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n_frames]
    for i in range(0, n_frames, chunk):
        spec = np.fft.rfft(frames[i:i + chunk] * window, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        out[i:i + chunk] = 10.0 * np.log10(np.maximum(power @ fb, 1e-10))
    hi = float(out.max())
    return Spectrogram(np.ascontiguousarray(out.T), rate, hop, (hi - DYNAMIC_RANGE_DB, hi))
