"""Phone-level questions about attention: interval aggregation, phone classes, head statistics.

All functions take an :class:`AttentionMaps` and alignment tiers (``Tier`` with ``Interval``s in
seconds) and return plain numpy arrays. Frames are mapped to intervals only through
``FrameGrid.frames_in_span``: a frame belongs to an interval when the centre of its drawing span
lies inside the interval (an interval shorter than a frame gets the frame holding its midpoint).

Two numbers per (query interval, key interval) pair:

- ``mean``: the mean weight over all frame pairs (q in the query interval, k in the key interval);
  comparable between intervals of different lengths, like STEVE's map averaged per cell.
- ``total``: the mass a query interval sends to a key interval: for each query frame the sum of
  its weights over the key interval's frames, averaged over the query interval's frames. When the
  key tier tiles all frames, each row sums to ``1 - padding`` (the mass the query rows sent to the
  cropped 30 s padding keys).

Layer ``"rollout"`` is :meth:`AttentionMaps.rollout` (its rows sum to 1 over the kept frames:
rollout renormalises each layer, so it has no padding mass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .maps import AttentionMaps
from ..errors import SteveError
from ..frames import FrameGrid

DEFAULT_KS = (1, 5, 10, 25, 75)
CLASS_FEATURES = ("kind", "manner", "place", "voicing")
ROLLOUT = "rollout"


# --- frames of intervals ---------------------------------------------------------------------
def interval_frames(grid: FrameGrid, num_frames: int, tier) -> list[tuple[int, int]]:
    """Half-open frame ranges [i0, i1) of each interval of ``tier`` (see module doc).

    An interval that lies wholly outside the frames (another 30 s window of a long file) gets the
    empty range (0, 0); its rows and columns in the matrices below are NaN. The frame that
    straddles the end of the alignment (Whisper keeps ceil(samples / 320) frames, so its last
    frame starts inside the audio but is centred past it) goes to the interval that ends last.
    """
    t0, t1 = grid.extent_seconds(num_frames)
    ranges = [grid.frames_in_span(iv.start_s, iv.end_s, num_frames)
              if iv.end_s > t0 and iv.start_s < t1 else (0, 0) for iv in tier.intervals]
    if ranges:
        j = int(np.argmax([iv.end_s for iv in tier.intervals]))
        a, b = ranges[j]
        if a < b < num_frames and grid.span_seconds(b)[0] < tier.intervals[j].end_s:
            ranges[j] = (a, b + 1)
    return ranges


def frame_owner(ranges: Sequence[tuple[int, int]], num_frames: int) -> np.ndarray:
    """(num_frames,) index of the interval each frame belongs to, -1 where none does.

    Where ranges overlap (overlapping TIMIT words, sub-frame intervals) the later interval wins.
    """
    owner = np.full(num_frames, -1, dtype=np.int64)
    for i, (a, b) in enumerate(ranges):
        owner[max(a, 0):min(b, num_frames)] = i
    return owner


def frame_labels(grid: FrameGrid, num_frames: int, tier) -> list[str]:
    """(num_frames,) label of the interval of ``tier`` that owns each frame, "" where none does
    (or when ``tier`` is None)."""
    if tier is None or num_frames == 0:
        return [""] * num_frames
    owner = frame_owner(interval_frames(grid, num_frames, tier), num_frames)
    labels = tier.labels
    return [labels[i] if i >= 0 else "" for i in owner]


# --- one (Q, K) map ------------------------------------------------------------------------
def layer_map(maps: AttentionMaps, layer: int | str, head: int | None,
              kind: str = "weights") -> tuple[np.ndarray, np.ndarray]:
    """(Q, K) float32 map of one head, the head mean, or the rollout, and (Q,) padding mass.

    ``kind``: weights (the default), scores or a context-mixing measure (steve_qt.core.attention.measures);
    padding mass belongs to the softmax weights, so it is NaN for every other kind. The rollout
    is of the weights only.
    """
    if layer == ROLLOUT:
        return maps.rollout(), np.zeros(maps.num_queries, dtype=np.float32)
    if not isinstance(layer, (int, np.integer)) or not 0 <= layer < maps.num_layers:
        raise SteveError(f"layer {layer!r} does not exist: the maps have layers 0 to "
                         f"{maps.num_layers - 1} and 'rollout'")
    if head is not None and not 0 <= head < maps.num_heads:
        raise SteveError(f"head {head} does not exist: the maps have heads 0 to {maps.num_heads - 1}")
    if kind != "weights":
        if not maps.has_kind(kind):
            raise SteveError(f"{maps.title} holds no {kind.replace('_', ' ')} maps")
        return maps.head(int(layer), head, kind), np.full(maps.num_queries, np.nan, np.float32)
    return maps.head(int(layer), head), maps.head_padding(int(layer), head)


def _frame_axes(maps: AttentionMaps, what: str) -> None:
    if maps.query_grid is None or maps.key_grid is None:
        raise SteveError(f"{what} needs audio frames on both axes; {maps.title} has tokens as "
                         f"{'queries' if maps.query_grid is None else 'keys'}")


# --- interval x interval ---------------------------------------------------------------------
@dataclass
class IntervalMatrix:
    query_intervals: list  # Interval, one per row
    key_intervals: list  # Interval, one per column
    mean: np.ndarray  # (Iq, Ik) mean weight per frame pair
    total: np.ndarray  # (Iq, Ik) mass a query interval sends to a key interval (see module doc)
    padding: np.ndarray  # (Iq,) mean padding mass of the query interval's frames
    query_frames: list[tuple[int, int]] = field(default_factory=list)  # [i0, i1) per row
    key_frames: list[tuple[int, int]] = field(default_factory=list)  # [i0, i1) per column

    @property
    def query_labels(self) -> list[str]:
        return [iv.label for iv in self.query_intervals]

    @property
    def key_labels(self) -> list[str]:
        return [iv.label for iv in self.key_intervals]


def aggregate_intervals(maps: AttentionMaps, layer: int | str, head: int | None, query_tier,
                        key_tier=None, kind: str = "weights") -> IntervalMatrix:
    """Interval x interval matrices of one head (None = mean of heads) or of ``"rollout"``, of
    the weights or of another ``kind`` of map (see layer_map)."""
    _frame_axes(maps, "interval aggregation")
    key_tier = query_tier if key_tier is None else key_tier
    w, pad = layer_map(maps, layer, head, kind)  # (Q, K), (Q,)
    q_ranges = interval_frames(maps.query_grid, maps.num_queries, query_tier)
    k_ranges = interval_frames(maps.key_grid, maps.num_keys, key_tier)
    # sum over each key interval's frames first: (Q, Ik)
    to_key = np.stack([w[:, a:b].sum(axis=1) for a, b in k_ranges], axis=1) if k_ranges else \
        np.zeros((w.shape[0], 0), dtype=np.float32)
    k_len = np.array([b - a for a, b in k_ranges], dtype=np.float64)
    total = np.full((len(q_ranges), len(k_ranges)), np.nan)
    padding = np.full(len(q_ranges), np.nan)
    for i, (a, b) in enumerate(q_ranges):
        if b > a:
            total[i] = to_key[a:b].mean(axis=0)
            padding[i] = pad[a:b].mean()
    total[:, k_len == 0] = np.nan
    mean = total / np.where(k_len > 0, k_len, np.nan)[None, :]
    return IntervalMatrix(list(query_tier.intervals), list(key_tier.intervals), mean, total,
                          padding, q_ranges, k_ranges)


# --- phone class x phone class ---------------------------------------------------------------
#: Rows/columns of class matrices, in a fixed order so that utterances line up (the values of
#: steve_qt.core.speech.phones; tests/test_analysis.py checks that every class of its tables is here).
CLASS_ORDER = {
    "kind": ("silence", "vowel", "consonant", "unknown"),
    "manner": ("silence", "monophthong", "diphthong", "stop", "closure", "affricate", "fricative",
               "nasal", "flap", "trill", "liquid", "glide", "unknown"),
    "place": ("none", "front", "central", "back", "bilabial", "labiodental", "dental", "alveolar",
              "postalveolar", "retroflex", "alveolopalatal", "palatal", "labiopalatal", "velar",
              "labiovelar", "uvular", "pharyngeal", "glottal", "unknown"),
    "voicing": ("none", "voiced", "voiceless", "unknown"),
}


def _check_feature(feature: str) -> None:
    if feature not in CLASS_FEATURES:
        raise SteveError(f"unknown phone feature {feature!r}; use one of {', '.join(CLASS_FEATURES)}")


def class_of(label: str, feature: str) -> str:
    """The phone class of ``label`` for one feature (kind | manner | place | voicing), taken from
    the normalised label (:func:`steve_qt.core.speech.phone_sets.normalise_phone`) when there is
    one, so that every phone set aggregates the same way."""
    from ..speech.phone_sets import normalise_phone
    from ..speech.phones import UNKNOWN, class_label, phone_class

    _check_feature(feature)
    norm = normalise_phone(label)
    if norm is not None and phone_class(norm) is not UNKNOWN:
        return class_label(norm, feature)
    return class_label(label, feature)


def class_names(feature: str) -> list[str]:
    """Every class of ``feature`` in a fixed order (rows/columns of class matrices)."""
    _check_feature(feature)
    return list(CLASS_ORDER[feature])


@dataclass
class ClassMatrix:
    """Phone-class x phone-class matrices; rows and columns are ``labels`` (all classes of the
    feature, in a fixed order, so that matrices of different utterances line up). Classes with no
    frames have NaN rows/columns and 0 counts."""

    feature: str
    labels: list[str]
    mean: np.ndarray  # (C, C) mean weight per frame pair (q of class a, k of class b)
    total: np.ndarray  # (C, C) mean over class-a query frames of the summed weight to class-b keys
    padding: np.ndarray  # (C,) mean padding mass of class-a query frames
    query_frames: np.ndarray  # (C,) number of query frames of each class
    key_frames: np.ndarray  # (C,) number of key frames of each class

    @property
    def query_labels(self) -> list[str]:
        return self.labels

    @property
    def key_labels(self) -> list[str]:
        return self.labels


def frame_classes(grid: FrameGrid, num_frames: int, tier, feature: str,
                  labels: Sequence[str]) -> np.ndarray:
    """(num_frames,) index into ``labels`` of each frame's phone class, -1 outside the tier."""
    owner = frame_owner(interval_frames(grid, num_frames, tier), num_frames)
    index = {lab: i for i, lab in enumerate(labels)}
    unknown = index.get("unknown", -1)
    per_interval = np.array([index.get(class_of(iv.label, feature), unknown)
                             for iv in tier.intervals] + [-1])
    return per_interval[owner]  # owner -1 picks the trailing -1


def aggregate_classes(maps: AttentionMaps, layer: int | str, head: int | None, tier,
                      feature: str = "kind", kind: str = "weights") -> ClassMatrix:
    """Phone-class x phone-class matrices of one head (None = mean of heads) or ``"rollout"``,
    of the weights or of another ``kind`` of map (see layer_map)."""
    _frame_axes(maps, "phone-class aggregation")
    w, pad = layer_map(maps, layer, head, kind)
    return classes_of_map(maps, w, pad, tier, feature)


def classes_of_map(maps: AttentionMaps, w: np.ndarray, pad: np.ndarray, tier,
                   feature: str) -> ClassMatrix:
    """Class matrices of a (Q, K) map ``w`` with (Q,) padding ``pad`` on the frames of ``maps``
    (lets a caller compute one map, e.g. the rollout, once for all features)."""
    labels = class_names(feature)
    qc = frame_classes(maps.query_grid, maps.num_queries, tier, feature, labels)  # (Q,)
    kc = frame_classes(maps.key_grid, maps.num_keys, tier, feature, labels)  # (K,)
    return class_matrix(w, pad, qc, kc, labels, feature)


def class_matrix(w: np.ndarray, pad: np.ndarray, qc: np.ndarray, kc: np.ndarray,
                 labels: Sequence[str], feature: str) -> ClassMatrix:
    """(Q, K) weights, (Q,) padding, (Q,) and (K,) class indices (-1 = none) -> ClassMatrix."""
    c = len(labels)
    k_onehot = (kc[:, None] == np.arange(c)[None, :]).astype(np.float32)  # (K, C)
    to_class = (np.asarray(w, dtype=np.float32) @ k_onehot).astype(np.float64)  # (Q, C)
    nq = np.array([(qc == i).sum() for i in range(c)], dtype=np.int64)
    nk = k_onehot.sum(axis=0).astype(np.int64)
    total = np.full((c, c), np.nan)
    padding = np.full(c, np.nan)
    for i in range(c):
        if nq[i]:
            total[i] = to_class[qc == i].mean(axis=0)
            padding[i] = pad[qc == i].mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / np.where(nk > 0, nk, np.nan)[None, :]
    total[:, nk == 0] = np.nan
    return ClassMatrix(feature, list(labels), mean, total, padding, nq, nk)


def pool_class_matrices(matrices: Sequence[ClassMatrix]) -> ClassMatrix:
    """Average class matrices of several utterances, pooling their frames.

    ``total`` is weighted by query frames, ``mean`` by frame pairs, so the result equals the
    matrix of all utterances' frames taken together (attention never crosses utterances).
    """
    if not matrices:
        raise ValueError("no class matrices to pool")
    first = matrices[0]
    c = len(first.labels)
    tot_sum, pair_sum = np.zeros((c, c)), np.zeros((c, c))
    pad_sum = np.zeros(c)
    nq, pairs = np.zeros(c), np.zeros((c, c))
    nk = np.zeros(c)
    for m in matrices:
        if m.labels != first.labels:
            raise ValueError("class matrices of different features cannot be pooled")
        q = m.query_frames.astype(np.float64)
        p = q[:, None] * m.key_frames.astype(np.float64)[None, :]
        tot_sum += np.nan_to_num(m.total) * q[:, None]
        pair_sum += np.nan_to_num(m.mean) * p
        pad_sum += np.nan_to_num(m.padding) * q
        nq += q
        nk += m.key_frames
        pairs += p
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.where(pairs > 0, tot_sum / nq[:, None], np.nan)
        mean = np.where(pairs > 0, pair_sum / pairs, np.nan)
        padding = np.where(nq > 0, pad_sum / nq, np.nan)
    return ClassMatrix(first.feature, list(first.labels), mean, total, padding,
                       nq.astype(np.int64), nk.astype(np.int64))


# --- head statistics -------------------------------------------------------------------------
@dataclass
class HeadStats:
    """Statistics of every layer x head, each an (N, M) float64 array averaged over query rows.

    - ``mean_distance_ms``: attention-weighted |t_q - t_k| in ms between frame centres, over the
      kept keys, normalised by the kept mass (the distance to padding keys is not known per key).
    - ``entropy_bits``: entropy of each query row's softmax distribution, with the padding mass as
      one extra bin (so a row that sends everything to padding has entropy 0; a uniform row over K
      kept keys and no padding has log2 K).
    - ``local_share[k]``: mass within +-k frames of the diagonal (share of the whole softmax row,
      padding included in the denominator).
    - ``own_phone_mass``: mass on the key frames of the query frame's own phone interval (query
      frames outside every phone interval are left out).
    - ``padding_mass``: mass sent to the cropped padding keys.
    - ``silence_share``: mass sent to key frames in silence intervals (phone class ``silence``).

    Statistics that need a diagonal or a time axis on both sides (distance, local share, own
    phone) are NaN for cross-attention (tokens x frames); for decoder self-attention (tokens x
    tokens) ``local_share`` counts token positions and the time-based ones are NaN.
    """

    model: str
    component: str
    num_queries: int  # query rows the averages are over (weights when pooling utterances)
    ks: tuple[int, ...]
    mean_distance_ms: np.ndarray
    entropy_bits: np.ndarray
    local_share: dict[int, np.ndarray]
    own_phone_mass: np.ndarray
    padding_mass: np.ndarray
    silence_share: np.ndarray
    frame_ms: float = float("nan")  # duration of one frame (hop) in ms, for "+-k frames" labels

    METRICS = ("mean_distance_ms", "entropy_bits", "own_phone_mass", "padding_mass",
               "silence_share")

    @property
    def shape(self) -> tuple[int, int]:
        return self.entropy_bits.shape

    def columns(self) -> list[str]:
        return (["layer", "head", "mean_distance_ms", "entropy_bits"]
                + [f"local_share_{k}" for k in self.ks]
                + ["own_phone_mass", "padding_mass", "silence_share"])

    def to_rows(self) -> list[dict]:
        """One dict per layer x head (0-based indices, as in the npz arrays), for CSV."""
        rows = []
        n_layers, n_heads = self.shape
        for n in range(n_layers):
            for m in range(n_heads):
                row = {"layer": n, "head": m,
                       "mean_distance_ms": float(self.mean_distance_ms[n, m]),
                       "entropy_bits": float(self.entropy_bits[n, m])}
                for k in self.ks:
                    row[f"local_share_{k}"] = float(self.local_share[k][n, m])
                for name in ("own_phone_mass", "padding_mass", "silence_share"):
                    row[name] = float(getattr(self, name)[n, m])
                rows.append(row)
        return rows

    def local_heads(self, k: int = 5, threshold: float = 0.5) -> np.ndarray:
        """(N, M) bool: heads that keep at least ``threshold`` of their mass within +-k frames."""
        if k not in self.local_share:
            raise ValueError(f"local share for k={k} was not computed (have {self.ks})")
        return self.local_share[k] >= threshold

    def summary(self, k: int = 5, threshold: float = 0.5) -> str:
        """A few lines that answer: are most heads local, and one or two per layer not?"""
        if np.all(np.isnan(self.local_share[k])):
            return (f"{self.component}: locality does not apply (queries are tokens, keys are "
                    f"frames); mean entropy {np.nanmean(self.entropy_bits):.2f} bits")
        local = self.local_heads(k, threshold)
        n_layers, n_heads = self.shape
        span = f"+-{k} frames" + (f" (+-{k * self.frame_ms:g} ms)" if math.isfinite(self.frame_ms)
                                  else "")
        lines = [f"{self.model} {self.component}: a head is local when >= {threshold:.0%} of its "
                 f"attention stays within {span} of the diagonal"]
        for n in range(n_layers):
            far = [m for m in range(n_heads) if not local[n, m]]
            desc = ", ".join(f"head {m} ({self.local_share[k][n, m]:.0%} local, "
                             f"{self.mean_distance_ms[n, m]:.0f} ms)" for m in far) or "none"
            lines.append(f"  layer {n}: {n_heads - len(far)} of {n_heads} local; not local: {desc}")
        n_local = int(local.sum())
        few = sum(1 for n in range(n_layers) if (~local[n]).sum() <= 2)
        lines.append(f"  {n_local} of {local.size} heads local; {few} of {n_layers} layers have at "
                     f"most two non-local heads -> "
                     + ("most heads are local and one or two per layer are not"
                        if n_local > local.size / 2 and few == n_layers
                        else "the 'mostly local, one or two per layer not' pattern does not hold"))
        return "\n".join(lines)


def _entropy_bits(w: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """(..., K) weights + (...,) padding mass -> (...,) entropy in bits (padding as one bin)."""
    def plogp(p):
        p = np.clip(p, 0.0, None)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    return -(plogp(w).sum(axis=-1) + plogp(pad))


def _phone_masks(maps: AttentionMaps, phone_tier) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(Q, K) bool 'key in the query's own phone' and (K,) bool 'key in a silence interval'."""
    if phone_tier is None or maps.key_grid is None:
        return None, None
    k_ranges = interval_frames(maps.key_grid, maps.num_keys, phone_tier)
    k_owner = frame_owner(k_ranges, maps.num_keys)
    silent = np.array([class_of(iv.label, "kind") == "silence" for iv in phone_tier.intervals]
                      + [False])
    silence_keys = silent[k_owner]
    if maps.query_grid is None:
        return None, silence_keys
    q_owner = frame_owner(interval_frames(maps.query_grid, maps.num_queries, phone_tier),
                          maps.num_queries)
    own = (q_owner[:, None] == k_owner[None, :]) & (q_owner[:, None] >= 0)
    return own, silence_keys


def head_statistics(maps: AttentionMaps, alignment=None,
                    ks: Sequence[int] = DEFAULT_KS) -> HeadStats:
    """Per layer x head statistics (see :class:`HeadStats`), averaged over the query rows.

    ``alignment`` (an Alignment, or a phone Tier) gives own-phone mass and silence share; without
    it those are NaN.
    """
    ks = tuple(int(k) for k in ks)
    n_layers, n_heads, q, k = maps.num_layers, maps.num_heads, maps.num_queries, maps.num_keys
    phone_tier = getattr(alignment, "phones", alignment)
    frames = maps.query_grid is not None and maps.key_grid is not None
    diagonal = q == k and (maps.query_grid is None) == (maps.key_grid is None)
    if frames:
        tq = maps.query_grid.center_seconds(np.arange(q))
        tk = maps.key_grid.center_seconds(np.arange(k))
        dist_ms = np.abs(tq[:, None] - tk[None, :]) * 1000.0  # (Q, K)
    if diagonal:
        offset = np.abs(np.arange(q)[:, None] - np.arange(k)[None, :])  # (Q, K)
        bands = {kk: (offset <= kk).astype(np.float32) for kk in ks}
    own, silence_keys = _phone_masks(maps, phone_tier)
    own_rows = own.any(axis=1) if own is not None else None

    nan = np.full((n_layers, n_heads), np.nan)
    dist, ent, own_mass, pad_mass, sil = (nan.copy() for _ in range(5))
    local = {kk: nan.copy() for kk in ks}
    for n in range(n_layers):
        w = maps.weights[n, 0].astype(np.float32)  # (M, Q, K)
        pad = maps.padding_mass[n].astype(np.float32)  # (M, Q)
        kept = w.sum(axis=-1)  # (M, Q)
        ent[n] = _entropy_bits(w, pad).mean(axis=-1)
        pad_mass[n] = pad.mean(axis=-1)
        if frames:
            d = (w * dist_ms[None]).sum(axis=-1) / np.where(kept > 0, kept, np.nan)
            dist[n] = np.nanmean(d, axis=-1) if np.isfinite(d).any() else np.nan
        if diagonal:
            for kk in ks:
                local[kk][n] = (w * bands[kk][None]).sum(axis=-1).mean(axis=-1)
        if own is not None and own_rows.any():
            own_mass[n] = (w * own[None]).sum(axis=-1)[:, own_rows].mean(axis=-1)
        if silence_keys is not None:
            sil[n] = w[..., silence_keys].sum(axis=-1).mean(axis=-1)
    grid = maps.key_grid or maps.query_grid
    frame_ms = 1000.0 * grid.hop / grid.sample_rate if grid is not None else float("nan")
    return HeadStats(maps.model, maps.component, q, ks, dist, ent, local, own_mass, pad_mass, sil,
                     frame_ms)


def pool_head_stats(stats: Sequence[HeadStats]) -> HeadStats:
    """Average head statistics of several utterances, weighting each by its query rows (so the
    result is the average over all query rows of the corpus). NaNs are left out."""
    if not stats:
        raise ValueError("no head statistics to pool")
    first = stats[0]
    weights = np.array([s.num_queries for s in stats], dtype=np.float64)

    def pool(arrays: list[np.ndarray]) -> np.ndarray:
        a = np.stack(arrays)  # (F, N, M)
        ok = np.isfinite(a)
        wsum = (ok * weights[:, None, None]).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(wsum > 0, (np.where(ok, a, 0) * weights[:, None, None]).sum(axis=0)
                            / wsum, np.nan)

    for s in stats:
        if s.shape != first.shape or s.ks != first.ks:
            raise ValueError("head statistics of different models cannot be pooled")
    return HeadStats(
        first.model, first.component, int(weights.sum()), first.ks,
        pool([s.mean_distance_ms for s in stats]), pool([s.entropy_bits for s in stats]),
        {k: pool([s.local_share[k] for s in stats]) for k in first.ks},
        pool([s.own_phone_mass for s in stats]), pool([s.padding_mass for s in stats]),
        pool([s.silence_share for s in stats]), first.frame_ms)
