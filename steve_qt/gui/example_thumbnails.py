"""Thumbnails of a feature's examples: the mel spectrogram of +-THUMB_HALF_S around the
example's peak (a token's: its word's start), the activation over it when the file's
activations are at hand, a mark at the peak and, for a token, the token's text. Files that are
not open are read once and kept (the last AUDIO_KEEP)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PyQt6 import QtCore, QtGui

from ..core.errors import SteveError
from ..core.frames import seconds_to_samples
from ..core.speech.audio import load_audio
from ..core.speech.spectrogram import mel_spectrogram
from .colors import lut

Qt = QtCore.Qt
THUMB_W, THUMB_H = 132, 40
THUMB_HALF_S = 0.5  # seconds either side of the peak in a thumbnail
THUMB_MIN_SAMPLES = 400  # less audio than this around the peak: no thumbnail
AUDIO_KEEP = 32  # example files kept loaded


class ExampleThumbnails:
    """Draws thumbnails from ``doc.features`` (its feature, its activations) and the audio."""

    def __init__(self, doc):
        self.doc, self.fv = doc, doc.features
        self._audio: OrderedDict[Path, object] = OrderedDict()

    def draw(self, ex) -> QtGui.QIcon | None:
        """Mel spectrogram of +-THUMB_HALF_S around the peak, the activation over it (when the
        file's activations are at hand) and a mark at the peak."""
        audio = self.audio_of(ex.file)
        if audio is None or not np.isfinite(ex.time_s):
            return None
        rate = audio.rate
        s0 = max(seconds_to_samples(ex.time_s - THUMB_HALF_S, rate), 0)
        s1 = min(seconds_to_samples(ex.time_s + THUMB_HALF_S, rate), len(audio.samples))
        if s1 - s0 < THUMB_MIN_SAMPLES:
            return None
        spec = mel_spectrogram(audio.samples[s0:s1], rate)
        lo, hi = spec.levels
        idx = np.clip((spec.db - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)[::-1]
        rgb = np.ascontiguousarray(lut("gray_r")[idx])
        h, w = rgb.shape[:2]
        img = QtGui.QImage(rgb.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
        pix = QtGui.QPixmap.fromImage(img).scaled(THUMB_W, THUMB_H,
                                                  Qt.AspectRatioMode.IgnoreAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation)
        p = QtGui.QPainter(pix)
        t0, t1 = s0 / rate, s1 / rate
        x_of = lambda t: (t - t0) / (t1 - t0) * THUMB_W  # noqa: E731
        entry = self.entry_of(ex.file)
        got = self.fv.stored(entry) if entry is not None else self.fv.file_activations(ex.file)
        if got is not None and not ex.is_token and self.fv.feature < got[0].shape[1]:
            acts, grid = got
            tr = acts[:, self.fv.feature]
            top = float(max(tr.max(), 1e-9))
            centres = np.asarray(grid.center_seconds(np.arange(len(tr))))
            keep = (centres >= t0) & (centres <= t1)
            pts = [QtCore.QPointF(x_of(c), THUMB_H - 2 - max(v, 0) / top * (THUMB_H - 4))
                   for c, v in zip(centres[keep], tr[keep])]
            p.setPen(QtGui.QPen(QtGui.QColor(20, 160, 60), 1.5))
            p.drawPolyline(pts)
        p.setPen(QtGui.QPen(QtGui.QColor(220, 30, 30), 1))
        p.drawLine(QtCore.QPointF(x_of(ex.time_s), 0), QtCore.QPointF(x_of(ex.time_s), THUMB_H))
        if ex.is_token:  # the token itself, right of its word's start
            box = QtCore.QRectF(x_of(ex.time_s) + 2, 0, THUMB_W, THUMB_H)
            flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            back = p.boundingRect(box, flags, ex.token.strip())
            p.fillRect(back, QtGui.QColor(255, 255, 255, 200))
            p.setPen(QtGui.QColor(20, 20, 20))
            p.drawText(box, flags, ex.token.strip())
        p.end()
        return QtGui.QIcon(pix)

    def audio_of(self, path: Path):
        """The file's Audio (open in the window, or loaded and kept for a while); None if it
        cannot be read."""
        entry = self.entry_of(path)
        if entry is not None:
            return entry.utterance.audio
        path = Path(path)
        if path in self._audio:
            self._audio.move_to_end(path)
            return self._audio[path]
        try:
            audio = load_audio(path)
        except SteveError:
            return None
        self._audio[path] = audio
        while len(self._audio) > AUDIO_KEEP:
            self._audio.popitem(last=False)
        return audio

    def entry_of(self, path: Path):
        i = self.doc.files.index_of(path) if Path(path).exists() else None
        return self.doc.files.entries[i] if i is not None else None
