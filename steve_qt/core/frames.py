"""Frame <-> sample <-> seconds: the only place in steve_qt that does this arithmetic.

A model turns a waveform at ``sample_rate`` into frames. Frame ``i`` starts at sample
``offset + hop * i`` and its receptive field spans ``receptive_field`` samples.

- Whisper: hop 320, field 320 (two mel hops of 160 after the stride-2 conv), 1500 frames per
  30 s window; a window ``w`` has ``offset = w * 480000``.
- wav2vec 2.0: hop = product of conv strides (320), field from the conv kernels (400);
  ``T = floor((n - field) / hop) + 1``.

For drawing, frame ``i`` owns the ``hop``-long span centred on its receptive field:
``[start + (field - hop) / 2, start + (field + hop) / 2)``. Spans of consecutive frames tile the
time axis without gaps or overlaps, so an image of frames can be placed in seconds with one rect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameGrid:
    hop: int  # samples between consecutive frame starts ("samples per frame", STEVE's spf)
    receptive_field: int  # samples that one frame sees
    sample_rate: int = 16000
    offset: int = 0  # sample index (in the model-rate signal) of frame 0's start

    # --- counting ----------------------------------------------------------------------
    def frames_covering(self, num_samples: int) -> int:
        """Frames whose hop spans cover ``num_samples`` samples: ceil(n / hop) (Whisper's crop)."""
        return max(0, math.ceil(num_samples / self.hop))

    def frames_valid(self, num_samples: int) -> int:
        """Frames whose whole receptive field lies inside ``num_samples`` (wav2vec 2.0's count)."""
        if num_samples < self.receptive_field:
            return 0
        return (num_samples - self.receptive_field) // self.hop + 1

    # --- frame -> sample / seconds -------------------------------------------------------
    def start_sample(self, frame):
        return self.offset + self.hop * np.asarray(frame)

    def span_samples(self, frame):
        """Drawing span [a, b) in samples of ``frame`` (see module doc)."""
        a = self.start_sample(frame) + (self.receptive_field - self.hop) / 2
        return a, a + self.hop

    def span_seconds(self, frame):
        a, b = self.span_samples(frame)
        return a / self.sample_rate, b / self.sample_rate

    def center_seconds(self, frame):
        return (self.start_sample(frame) + self.receptive_field / 2) / self.sample_rate

    def extent_seconds(self, num_frames: int) -> tuple[float, float]:
        """Time span [t0, t1) covered by frames 0..num_frames-1 drawn side by side."""
        a, _ = self.span_seconds(0)
        return float(a), float(a + num_frames * self.hop / self.sample_rate)

    # --- seconds / samples -> frame ------------------------------------------------------
    def frame_at_seconds(self, t, num_frames: int | None = None):
        """Frame whose drawing span contains time ``t`` (clipped to [0, num_frames-1])."""
        t0 = self.offset / self.sample_rate + (self.receptive_field - self.hop) / 2 / self.sample_rate
        f = np.floor((np.asarray(t, dtype=float) - t0) * self.sample_rate / self.hop).astype(int)
        if num_frames is not None:
            f = np.clip(f, 0, max(num_frames - 1, 0))
        return f if f.ndim else int(f)

    def frames_in_span(self, t0: float, t1: float, num_frames: int) -> tuple[int, int]:
        """Half-open frame range [i0, i1) of frames whose drawing-span centre lies in [t0, t1).

        An interval shorter than one frame still gets the one frame that contains its midpoint.
        """
        a, b = self.span_seconds(np.arange(num_frames))
        mid = (np.asarray(a) + np.asarray(b)) / 2
        idx = np.nonzero((mid >= t0) & (mid < t1))[0]
        if idx.size == 0:
            f = self.frame_at_seconds((t0 + t1) / 2, num_frames)
            return f, f + 1
        return int(idx[0]), int(idx[-1]) + 1


def seconds_to_samples(t, rate: int):
    """Seconds -> nearest sample index at ``rate`` (for audio at its own rate, e.g. playback)."""
    out = np.rint(np.asarray(t, dtype=float) * rate).astype(np.int64)
    return out if out.ndim else int(out)


def samples_to_seconds(n, rate: int):
    out = np.asarray(n, dtype=float) / rate
    return out if out.ndim else float(out)


WHISPER_SAMPLE_RATE = 16000
WHISPER_HOP = 320
WHISPER_WINDOW_SAMPLES = 480000


def window_name(window: int, num_windows: int) -> str:
    """'window 1 of 2 (30-60 s)': Whisper windows are indexed from 0, as ``--window``."""
    s = WHISPER_WINDOW_SAMPLES // WHISPER_SAMPLE_RATE
    return f"window {window} of {num_windows} ({window * s}\u2013{(window + 1) * s} s)"


def whisper_grid(window: int = 0) -> FrameGrid:
    return FrameGrid(WHISPER_HOP, WHISPER_HOP, WHISPER_SAMPLE_RATE, window * WHISPER_WINDOW_SAMPLES)


def conv_grid(kernels, strides, sample_rate: int = 16000, offset: int = 0) -> FrameGrid:
    """Grid of a stack of 1-D convolutions without padding (wav2vec 2.0's feature encoder)."""
    hop, field = 1, 1
    for k, s in zip(kernels, strides):
        field += (k - 1) * hop
        hop *= s
    return FrameGrid(hop, field, sample_rate, offset)
