"""Display spectrograms (librosa; no Qt): the window and the figures draw the same arrays.

Two kinds:

- ``mel``: the log-mel the model hears, Whisper's recipe: 25 ms periodic Hann window
  (``n_fft`` 400 at 16 kHz), 10 ms hop, reflect padding, 80 Slaney mel bands from 0 Hz to
  Nyquist (``librosa.filters.mel``, the filters openai-whisper ships), power in dB, 80 dB
  dynamic range (Whisper clamps at the maximum - 8 in log10). Rows are mel bands.
- ``broadband``: Praat's default spectrogram: Gaussian window of 5 ms effective length (a 10 ms
  physical window, Praat's ``exp(-48 (t/T - 1/2)^2)`` shape, 0 at its ends), linear frequency 0 to 5 kHz in
  steps of at most 20 Hz, a 2 ms time step (longer for files over 40 s, at most 20000 frames),
  Praat's 6 dB/octave pre-emphasis (relative to 1 kHz) and 50 dB dynamic range. Rows are Hz.

Frame ``i`` is centred on sample ``i * hop``. Shapes: ``db`` is (rows, frames), C-contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("mel", "broadband")
TITLES = {"mel": "log-mel (what the model hears)", "broadband": "broadband (Praat)"}

# mel: Whisper's log-mel at 16 kHz (scaled with the rate)
MEL_N_FFT = 400
MEL_HOP = 160
N_MELS = 80
MEL_RANGE_DB = 80.0

# broadband: Praat's Sound: To Spectrogram defaults
BROADBAND_WINDOW_S = 0.005  # effective length; the Gaussian window is twice as long
BROADBAND_MAX_HZ = 5000.0
BROADBAND_STEP_HZ = 20.0
BROADBAND_HOP_S = 0.002
BROADBAND_MAX_FRAMES = 20000
BROADBAND_RANGE_DB = 50.0
PREEMPHASIS_DB_PER_OCTAVE = 6.0


@dataclass
class Spectrogram:
    db: np.ndarray  # (rows, frames) float32 power in dB; rows = mel bands or frequency bins
    rate: int  # sample rate of the analysed samples
    hop: int  # samples between frames
    levels: tuple[float, float]  # (floor, top) in dB: the dynamic range drawn
    kind: str  # "mel" | "broadband"
    freqs: np.ndarray  # (rows,) centre frequency of each row in Hz

    @property
    def num_frames(self) -> int:
        return self.db.shape[1]

    @property
    def y_extent(self) -> tuple[float, float]:
        """(bottom, top) of the image on the y axis: mel band index, or Hz for broadband."""
        if self.kind == "mel":
            return 0.0, float(self.db.shape[0])
        step = float(self.freqs[1] - self.freqs[0])
        return -step / 2, float(self.freqs[-1]) + step / 2

    def rect(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) of the image in (seconds, y) coordinates."""
        step = self.hop / self.rate
        y0, y1 = self.y_extent
        return -step / 2, y0, self.num_frames * step, y1 - y0

    def y_of_hz(self, f: float) -> float:
        """Position of frequency ``f`` (Hz) on the y axis (for ticks)."""
        if self.kind == "mel":  # band centres sit at rows + 1/2; 0 Hz and Nyquist are the outer
            n = len(self.freqs)  # filter edges, half a row beyond
            hz = np.concatenate([[0.0], self.freqs, [self.rate / 2]])
            return float(np.clip(np.interp(f, hz, np.arange(n + 2) - 0.5), 0.0, n))
        return float(f)

    def ticks_hz(self) -> list[float]:
        top = float(self.freqs[-1])
        if self.kind == "mel":
            return [f for f in (500.0, 1000.0, 2000.0, 4000.0, 8000.0) if f <= self.rate / 2]
        return [f for f in np.arange(0.0, BROADBAND_MAX_HZ + 1, 1000.0) if f <= top + 1]


def spectrogram(samples: np.ndarray, rate: int, kind: str = "mel") -> Spectrogram:
    if kind == "mel":
        return mel_spectrogram(samples, rate)
    if kind == "broadband":
        return broadband_spectrogram(samples, rate)
    raise ValueError(f"unknown spectrogram kind {kind!r} (use {' or '.join(KINDS)})")


def mel_spectrogram(samples: np.ndarray, rate: int) -> Spectrogram:
    """Whisper's log-mel of mono ``samples`` (window and hop scaled from 16 kHz)."""
    import librosa

    n_fft = max(16, int(round(MEL_N_FFT * rate / 16000)))
    hop = max(1, int(round(MEL_HOP * rate / 16000)))
    x = _padded(samples, n_fft)
    spec = librosa.stft(x, n_fft=n_fft, hop_length=hop, window="hann", center=True,
                        pad_mode="reflect")  # (bins, frames) complex64
    power = spec.real ** 2 + spec.imag ** 2
    fb = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=N_MELS)  # (mels, bins)
    db = 10.0 * np.log10(np.maximum(fb @ power, 1e-10)).astype(np.float32)
    top = float(db.max())
    freqs = librosa.mel_frequencies(N_MELS + 2, fmin=0.0, fmax=rate / 2)[1:-1]
    return Spectrogram(np.ascontiguousarray(db), rate, hop, (top - MEL_RANGE_DB, top), "mel",
                       freqs)


def praat_gaussian(n: int) -> np.ndarray:
    """(n,) Praat's Gaussian window: exp(-48 x^2) for x from -1/2 to 1/2 over the physical window,
    shifted and scaled so that it is 0 at the ends (exp(-12)) and 1 in the middle."""
    x = (np.arange(n) + 0.5) / n - 0.5
    edge = np.exp(-12.0)
    return ((np.exp(-48.0 * x * x) - edge) / (1.0 - edge)).astype(np.float32)


def broadband_hop(num_samples: int, rate: int) -> int:
    """Samples between broadband frames: 2 ms, or longer so a file has at most 20000 frames."""
    hop = int(round(BROADBAND_HOP_S * rate))
    return max(hop, int(np.ceil(num_samples / BROADBAND_MAX_FRAMES)), 1)


def broadband_spectrogram(samples: np.ndarray, rate: int) -> Spectrogram:
    """Praat's broadband spectrogram of mono ``samples`` (see the module doc)."""
    import librosa

    win = max(4, int(round(2 * BROADBAND_WINDOW_S * rate)))  # physical window: 10 ms
    n_fft = max(win, 1 << int(np.ceil(np.log2(rate / BROADBAND_STEP_HZ))))
    hop = broadband_hop(len(samples), rate)
    x = _padded(samples, n_fft)
    spec = librosa.stft(x, n_fft=n_fft, hop_length=hop, win_length=win,
                        window=praat_gaussian(win), center=True, pad_mode="constant")
    freqs = librosa.fft_frequencies(sr=rate, n_fft=n_fft)
    keep = freqs <= min(BROADBAND_MAX_HZ, rate / 2)
    spec, freqs = spec[keep], freqs[keep]
    power = spec.real ** 2 + spec.imag ** 2  # (bins, frames)
    db = 10.0 * np.log10(np.maximum(power, 1e-20))
    db += preemphasis_db(freqs, step=freqs[1])[:, None]
    db = db.astype(np.float32)
    top = float(db.max())
    return Spectrogram(np.ascontiguousarray(db), rate, hop, (top - BROADBAND_RANGE_DB, top),
                       "broadband", freqs)


def preemphasis_db(freqs: np.ndarray, step: float) -> np.ndarray:
    """Praat's pre-emphasis: +6 dB per octave above 1 kHz, -6 below (0 Hz taken as one step)."""
    f = np.maximum(np.asarray(freqs, dtype=np.float64), step)
    return PREEMPHASIS_DB_PER_OCTAVE * np.log2(f / 1000.0)


def _padded(samples: np.ndarray, n_fft: int) -> np.ndarray:
    """float32 mono samples, zero-padded to at least one frame (librosa refuses shorter input)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"mono samples expected, got shape {x.shape}")
    return np.pad(x, (0, max(0, n_fft - len(x))))


# --- matplotlib (figures); the axes are passed in, nothing here imports matplotlib ------------
def draw_spectrogram(ax, spec: Spectrogram, t0: float = 0.0, cmap: str = "gray_r"):
    """Draw ``spec`` on a matplotlib Axes with its first frame centred at ``t0`` seconds, in its
    dynamic range (below it: white), rasterized; returns the image (for a colour bar)."""
    step = spec.hop / spec.rate
    y0, y1 = spec.y_extent
    extent = (t0 - step / 2, t0 + (spec.num_frames - 0.5) * step, y0, y1)
    return ax.imshow(spec.db, extent=extent, origin="lower", aspect="auto", cmap=cmap,
                     vmin=spec.levels[0], vmax=spec.levels[1], interpolation="nearest",
                     rasterized=True)


def label_hz_axis(ax, spec: Spectrogram) -> None:
    """Frequency ticks in kHz on the y axis of a drawn spectrogram."""
    ticks = spec.ticks_hz()
    ax.set_yticks([spec.y_of_hz(f) for f in ticks], [f"{f / 1000:g}" for f in ticks])
    ax.set_ylim(*spec.y_extent)
    ax.set_ylabel("kHz")
