"""Pearson's r between every feature and each acoustic measure, streamed over a corpus.

Each file gives, per measure, the centred moments of its frames where the measure is defined
(:func:`file_moments`); the client adds files up with the pairwise update of Chan, Golub &
LeVeque (1979) (:meth:`Moments.merge`), so memory holds O(features) per measure whatever the
corpus' size, and the result equals a direct correlation over all defined frames up to rounding
(float64 sums).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..speech.acoustics import MEASURES


@dataclass
class Moments:
    """n frames; means of x (F,) and y; sums of squared deviations; co-deviation (F,)."""

    n: int
    files: int
    mx: np.ndarray
    my: float
    m2x: np.ndarray
    m2y: float
    cxy: np.ndarray

    def merge(self, o: "Moments") -> "Moments":
        if o.n == 0:
            return self
        if self.n == 0:
            return o
        n = self.n + o.n
        dx = o.mx - self.mx
        dy = o.my - self.my
        w = self.n * o.n / n
        return Moments(n, self.files + o.files, self.mx + dx * (o.n / n),
                       self.my + dy * (o.n / n), self.m2x + o.m2x + dx * dx * w,
                       self.m2y + o.m2y + dy * dy * w, self.cxy + o.cxy + dx * dy * w)

    def r(self) -> np.ndarray:
        """(F,) Pearson's r; NaN where a variance is 0 or there are fewer than 2 frames."""
        with np.errstate(invalid="ignore", divide="ignore"):
            den = np.sqrt(self.m2x * self.m2y)
            return np.where((den > 0) & (self.n > 1), self.cxy / den, np.nan)


def file_moments(feats: np.ndarray, y: np.ndarray) -> Moments:
    """Moments of one file's (T, F) features against its (T,) measure (NaN frames left out)."""
    keep = np.isfinite(y)
    n = int(keep.sum())
    f = feats.shape[1]
    if n == 0:
        z = np.zeros(f)
        return Moments(0, 0, z, 0.0, z.copy(), 0.0, z.copy())
    x = feats[keep].astype(np.float64)
    yy = y[keep].astype(np.float64)
    mx, my = x.mean(axis=0), float(yy.mean())
    dx, dy = x - mx, yy - my
    return Moments(n, 1, mx, my, (dx * dx).sum(axis=0), float(dy @ dy), dy @ dx)


def correlation_csv(moments: dict[str, Moments], num_features: int) -> str:
    """feature,measure,r,n_frames,files; one row per feature and measure (r empty when
    undefined)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["feature", "measure", "r", "n_frames", "files"])
    rs = {m: moments[m].r() for m in MEASURES if m in moments}
    for f in range(num_features):
        for m, r in rs.items():
            w.writerow([f, m, "" if not np.isfinite(r[f]) else repr(float(r[f])), moments[m].n,
                        moments[m].files])
    return buf.getvalue()
