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


def average_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks (from 1) of each column of ``scores`` (N, F), ties given their average rank:
    ``scipy.stats.rankdata(scores, axis=0)``, as float64 (every rank is a multiple of 1/2,
    exact). A column holding NaN is all NaN.

    Scores that are all float16 values (the activation cache's) are sorted as 16-bit keys in
    the order of the values (a radix sort, several times sooner than sorting float64)."""
    return _row_ranks(np.ascontiguousarray(np.asarray(scores, dtype=np.float64).T)).T


def _row_ranks(s: np.ndarray) -> np.ndarray:
    """:func:`average_ranks` along the rows of ``s`` (F, N) float64, C-contiguous."""
    f, n = s.shape
    out = np.empty((f, n))
    if not n:
        return out
    with np.errstate(over="ignore"):
        half = s.astype(np.float16)
    if np.array_equal(half, s):  # no NaN, nothing beyond float16's range or precision
        bits = (half + np.float16(0)).view(np.int16)  # + 0: -0 becomes +0
        keys = bits ^ ((bits >> 15) & np.int16(0x7FFF))  # negative values: magnitude reversed
        order = np.argsort(keys, axis=1, kind="stable")
    else:
        keys = s
        order = np.argsort(s, axis=1)
    ordered = np.take_along_axis(keys, order, axis=1)
    new = np.ones((f, n), dtype=bool)  # a value unlike the one before it in its row
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    starts = np.flatnonzero(new)  # tie groups, row after row
    sizes = np.diff(np.append(starts, f * n))
    mean_rank = starts % n + (sizes + 1) / 2  # ranks start..start+size-1 from 1
    np.put_along_axis(out, order, np.repeat(mean_rank, sizes).reshape(f, n), axis=1)
    out[np.isnan(s).any(axis=1)] = np.nan
    return out


def auroc_by_label(scores: np.ndarray, label_ids: np.ndarray, num_labels: int) -> np.ndarray:
    """AUROC of ``scores`` as a detector of each label against all other frames, (num_labels,).

    Mann-Whitney with tie-averaged ranks, equal to ``sklearn.metrics.roc_auc_score(label == l,
    scores)``. Frames with a negative label id are left out; NaN where a label has no frames or
    every frame has it. ``scores`` (N,) or (N, F) gives (num_labels,) or (num_labels, F).

    The rank sums are exact whatever the order of the additions (multiples of 1/2 far below
    2**52)."""
    scores = np.asarray(scores, dtype=np.float64)
    label_ids = np.asarray(label_ids)
    keep = label_ids >= 0
    s, y = scores[keep], label_ids[keep]
    flat = s.ndim == 1
    ranks = _row_ranks(np.ascontiguousarray((s[:, None] if flat else s).T))  # (F, n)
    n = len(y)
    out = np.full((num_labels, ranks.shape[0]), np.nan)
    pos = np.bincount(y, minlength=num_labels)[:num_labels]
    labs = np.flatnonzero((pos > 0) & (pos < n))
    if labs.size:
        present = np.flatnonzero(pos > 0)
        by_label = np.argsort(y, kind="stable")  # the frames of each label together
        starts = np.concatenate([[0], np.cumsum(pos[present])[:-1]])
        sums = np.zeros((num_labels, ranks.shape[0]))
        sums[present] = np.add.reduceat(ranks[:, by_label], starts, axis=1).T  # rank sums
        n_pos = pos[labs].astype(np.float64)[:, None]
        out[labs] = (sums[labs] - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos))
    return out[:, 0] if flat else out


def cohens_d(mean: np.ndarray, std: np.ndarray, rest_mean: np.ndarray, rest_std: np.ndarray
             ) -> np.ndarray:
    """``(mean - rest_mean) / sqrt((std**2 + rest_std**2) / 2)``; NaN where that is 0/0."""
    pooled = np.sqrt((np.asarray(std) ** 2 + np.asarray(rest_std) ** 2) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (np.asarray(mean) - np.asarray(rest_mean)) / pooled
    return np.where(pooled > 0, d, np.nan)
