"""Statistics of a feature (or any per-frame score) against frame labels, with their support.

Every statistic here comes with the data it rests on: the number of frames and of files of each
label. A label takes part in rankings only when its support meets a :class:`SupportRule`
(default: at least 20 frames from at least 3 files); a Cohen's d on one or two frames says
nothing, and AUROC (the score as a detector of the label, frame level) is given beside it
because it stays in [0, 1] on small groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

MIN_FRAMES = 20
MIN_FILES = 3


@dataclass(frozen=True)
class SupportRule:
    min_frames: int = MIN_FRAMES
    min_files: int = MIN_FILES

    def ok(self, n_frames, n_files):
        """Whether a label with this support may enter a ranking (arrays broadcast)."""
        return (np.asarray(n_frames) >= self.min_frames) & (np.asarray(n_files) >= self.min_files)

    def describe(self) -> str:
        return f"at least {self.min_frames} frames from at least {self.min_files} files"


def label_support(label_ids: np.ndarray, file_ids: np.ndarray, num_labels: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Frames and distinct files per label id (ids < 0 are frames left out)."""
    label_ids = np.asarray(label_ids)
    file_ids = np.asarray(file_ids)
    keep = label_ids >= 0
    n_frames = np.bincount(label_ids[keep], minlength=num_labels)[:num_labels]
    pairs = np.unique(np.stack([label_ids[keep], file_ids[keep]]), axis=1)
    n_files = np.bincount(pairs[0], minlength=num_labels)[:num_labels] if pairs.size else \
        np.zeros(num_labels, dtype=np.int64)
    return n_frames, n_files


def auroc_by_label(scores: np.ndarray, label_ids: np.ndarray, num_labels: int) -> np.ndarray:
    """AUROC of ``scores`` as a detector of each label against all other frames, (num_labels,).

    Mann-Whitney with tie-averaged ranks, equal to ``sklearn.metrics.roc_auc_score(label == l,
    scores)``. Frames with a negative label id are left out; NaN where a label has no frames or
    every frame has it. ``scores`` (N,) or (N, F) gives (num_labels,) or (num_labels, F).
    """
    scores = np.asarray(scores, dtype=np.float64)
    label_ids = np.asarray(label_ids)
    keep = label_ids >= 0
    s, y = scores[keep], label_ids[keep]
    ranks = rankdata(s, axis=0)  # average ranks for ties
    n = len(y)
    out = np.full((num_labels,) + s.shape[1:], np.nan)
    pos = np.bincount(y, minlength=num_labels)[:num_labels]
    for lab in np.flatnonzero((pos > 0) & (pos < n)):
        r = ranks[y == lab].sum(axis=0)
        n_pos = pos[lab]
        out[lab] = (r - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
    return out


def cohens_d(mean: np.ndarray, std: np.ndarray, rest_mean: np.ndarray, rest_std: np.ndarray
             ) -> np.ndarray:
    """``(mean - rest_mean) / sqrt((std**2 + rest_std**2) / 2)``; NaN where that is 0/0."""
    pooled = np.sqrt((np.asarray(std) ** 2 + np.asarray(rest_std) ** 2) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (np.asarray(mean) - np.asarray(rest_mean)) / pooled
    return np.where(pooled > 0, d, np.nan)
