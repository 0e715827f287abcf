"""The feature index: for every feature of a site (a neuron, a residual dimension, or an SAE
latent), its maximally activating files over a corpus, examples at every range of activation, and
its selectivity for phones. Built once (``steve-qt features index``), queried in milliseconds.

How it is built
---------------
One task per audio file (on the corpus runner, :mod:`steve_qt.core.features.runner`) reads the file's
activations (T, D) from the activation cache or the model (:mod:`steve_qt.core.features.actcache`; every
30 s window, frames concatenated), optionally encodes them with an SAE, and returns a small
:class:`FileSummary`: per feature the file's maximum and its frame, its minimum and its frame,
and per phone the sum of activations and the frame count. The client merges summaries as they
arrive:

- top examples: per feature the ``top_k`` files with the highest maximum, one example per file
  at its argmax frame (FREUD's activation search);
- the per-file maxima/minima are appended to a spill file on disk; after the last file a second
  pass over that file (in chunks) fills the range bins, which depend on the feature's final
  maximum;
- phone sums and counts are added up.

Memory therefore holds O(D * top_k * bins) examples plus one chunk of the spill, never the
corpus' activations; only the spill file on disk grows (16 bytes per file and feature).

Rules (the tests compute the same by brute force)
-------------------------------------------------
- A file's example for a feature is its argmax frame; equal values within a file: the lower frame
  (the first maximum). Negative side: the argmin frame, the lower frame on ties.
- Top examples are files where the feature fires: maximum > 0 (a feature that never fires has
  none; a maximum of 0 or below is not a "top" example).
- Ranking: higher activation first; equal activations: the lower file path (relative to the
  corpus, compared as strings of '/'-separated parts, i.e. the sorted file order), then the lower
  frame. Ranks count from 0.
- Range bins (``bins`` = 5 by default) of a feature whose corpus maximum M > 0: bin b = 1..bins
  holds the files whose maximum v satisfies (b-1)/bins*M < v <= b/bins*M (edges computed in
  float64), ranked as above, top_k per bin; bin ``bins`` is the top range. When the corpus
  minimum m < 0, bins -1..-bins hold the files whose minimum u satisfies
  (b-1)/bins*|m| < |u| <= b/bins*|m|, most negative first (bin -bins is the most negative range).
  ``lo``/``hi`` are the bin's edges in activation units (lo < v <= hi; for negative bins
  lo <= u < hi with lo = -b/bins*|m|, hi = -(b-1)/bins*|m|).
- A frame's phone and word are those of the alignment interval that owns the frame (its drawing
  span's centre lies in the interval, :func:`steve_qt.core.attention.analysis.interval_frames`); empty when
  the file has no alignment, or for token rows.
- Phone statistics use normalised phones (:func:`steve_qt.core.speech.phone_sets.normalise_labels`:
  TIMIT 61 -> 39, ARPAbet stress stripped, espeak's IPA mapped onto one set; ``steve-qt phones``
  shows the table); the examples keep the tier's raw label.
- Phone selectivity of feature f for phone p: mean and standard deviation (population) of the
  activation over the frames labelled p (``mean``, ``std``) and over all other phone-labelled
  frames of the corpus (``rest_mean``, ``rest_std``), and the standardised difference (Cohen's d)
  ``selectivity = (mean - rest_mean) / sqrt((std**2 + rest_std**2) / 2)`` (empty when that
  pooled deviation is 0 or p is the only phone). Unlike (a - b) / (a + b) it means the same for
  features that go negative. Beside it ``auroc``: the feature as a detector of p against all other
  phone-labelled frames, exact (tie-averaged ranks over every frame, equal to sklearn's
  ``roc_auc_score``), from a second pass over the activations spilled to disk one block of
  features at a time. Every row carries its support (``n_frames``, ``n_files``); a phone is
  ``supported`` when it meets the support rule (default at least 20 frames from at least 3 files,
  ``--min-frames``/``--min-files``). The feature's best phone is the supported phone with the
  highest mean (ties: the lower label); a feature has none when no phone is supported. Only
  supported phones enter rankings ("most phone-selective"). Silence counts as a phone; frames
  without a phone do not count.
- With ``--acoustics``: ``acoustic_correlation.csv`` (feature, measure, r, n_frames, files),
  Pearson's r of each feature with Praat's f0, f1, f2, f3 and intensity
  (:mod:`steve_qt.core.speech.acoustics`) read at the model's frame centres; frames where the
  measure is undefined are left out; streamed (:mod:`steve_qt.core.features.acoustic_corr`).

On disk (directory IDX)
-----------------------
People read the CSVs (``top_examples.csv``, ``range_examples.csv``, ``phone_selectivity.csv``,
``files.csv``, ``index.json``, ``summary.txt``); programs read the same rows from NumPy files
sorted by feature, with an offsets array (D+1,) per table, memory-mapped, so that a query reads
a few hundred bytes: ``top.npy``/``top_offsets.npy``, ``ranges.npy``/``ranges_offsets.npy``,
``selectivity.npy``/``selectivity_offsets.npy``, ``files.npy`` (relative paths) and
``labels.npy`` (phone and word labels; rows hold indices, -1 for none).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import SteveError
from ..fileio import atomic_folder, check_folder_writable, csv_text, csv_text_columns
from .runner import FILES_COLUMNS, never_raising

INDEX_VERSION = 2
EXAMPLE_DTYPE = np.dtype([("feature", "<i4"), ("rank", "<i4"), ("bin", "<i2"), ("file", "<i4"),
                          ("frame", "<i4"), ("time_s", "<f8"), ("activation", "<f4"),
                          ("lo", "<f8"), ("hi", "<f8"), ("phone", "<i4"), ("word", "<i4"),
                          ("token", "<i4")])
SELECTIVITY_DTYPE = np.dtype([("feature", "<i4"), ("phone", "<i4"), ("frames", "<i8"),
                              ("n_files", "<i8"), ("mean", "<f8"), ("std", "<f8"),
                              ("rest_mean", "<f8"), ("rest_std", "<f8"), ("selectivity", "<f8"),
                              ("auroc", "<f8"), ("supported", "<i1"), ("best", "<i1")])
AUROC_BLOCK = 128  # features per block file of the activation spill (AUROC's second pass)


# --- one file (runs on a worker) -------------------------------------------------------------
@dataclass
class FileSummary:
    path: str
    ok: bool = False
    reason: str = ""
    rows: int = 0  # frames (or tokens) of all windows
    windows: int = 0
    extracted: int = 0
    cached: int = 0
    seconds: float = 0.0
    vmax: np.ndarray | None = None  # (D,) float32 maximum over rows
    amax: np.ndarray | None = None  # (D,) int32 its row (first on ties)
    vmin: np.ndarray | None = None  # (D,) float32
    amin: np.ndarray | None = None  # (D,) int32
    times: np.ndarray | None = None  # (T,) float64 frame centres, NaN for token rows
    phones: list = field(default_factory=list)  # (T,) label of each row, "" for none
    words: list = field(default_factory=list)  # (T,)
    norm_phones: list = field(default_factory=list)  # (T,) normalised phone, "" for none
    phone_sums: dict = field(default_factory=dict)  # phone -> (D,) float64 sum over its rows
    phone_sq: dict = field(default_factory=dict)  # phone -> (D,) float64 sum of squares
    phone_counts: dict = field(default_factory=dict)  # phone -> rows
    feats: np.ndarray | None = None  # (T, F) float32, for the AUROC pass (spilled to disk)
    acoustic: dict = field(default_factory=dict)  # measure -> acoustic_corr.Moments
    acoustic_note: str = ""  # why a file has no acoustic frames
    tokens: list = field(default_factory=list)  # (T,) token text of each row (tokens sites)
    #: ``seconds`` per part on the worker (read, hash, mel, forward, summary, ...), the task's
    #: wall-clock ``start`` and ``end``, the worker's ``pid`` and how often it has loaded the
    #: model (``model_loads``): the file's record in ``runner.Timings``
    parts: dict = field(default_factory=dict)


_SAES: dict = {}


def load_sae_cached(sae_dir: str):
    """The SAE of ``sae_dir``, loaded once per process."""
    if sae_dir not in _SAES:
        from .sae import load_sae

        _SAES[sae_dir] = load_sae(sae_dir)
    return _SAES[sae_dir]


def encode_features(acts: np.ndarray, sae_dir: str | None) -> np.ndarray:
    """(T, D_site) float32 activations -> (T, F) float32 features (the activations themselves, or
    the SAE's codes)."""
    if sae_dir is None:
        return acts
    codes = load_sae_cached(sae_dir).encode(np.ascontiguousarray(acts, dtype=np.float32))
    return np.asarray(codes, dtype=np.float32)


def row_labels(entries, alignment) -> tuple[list[str], list[str]]:
    """Phone and word label of every row of a file's windows ("" where there is none)."""
    from ..attention.analysis import frame_labels

    phones: list[str] = []
    words: list[str] = []
    tiers = (alignment.phones, alignment.words) if alignment is not None else (None, None)
    for e in entries:
        t = e.acts.shape[0]
        grid = e.grid()
        for tier, out in zip(tiers, (phones, words)):
            out.extend(frame_labels(grid, t, tier) if grid is not None else [""] * t)
    return phones, words


def summarise(path: str, feats: np.ndarray, times: np.ndarray, phones: list[str],
              words: list[str], norm_phones: list[str] | None = None) -> FileSummary:
    """FileSummary of one file's (T, F) features. Phone statistics use ``norm_phones`` (the
    normalised labels, :func:`steve_qt.core.speech.phone_sets.normalise_labels`; default: the
    normalisation of ``phones``); examples keep the raw ``phones``."""
    from ..speech.phone_sets import normalise_labels

    s = FileSummary(path, ok=True, rows=int(feats.shape[0]))
    s.vmax = feats.max(axis=0).astype(np.float32)
    s.amax = feats.argmax(axis=0).astype(np.int32)
    s.vmin = feats.min(axis=0).astype(np.float32)
    s.amin = feats.argmin(axis=0).astype(np.int32)
    s.times, s.phones, s.words = times, phones, words
    s.norm_phones = list(norm_phones) if norm_phones is not None else normalise_labels(phones)
    s.feats = np.ascontiguousarray(feats, dtype=np.float32)
    labelled = sorted({p for p in s.norm_phones if p})
    if labelled:
        idx = {p: i for i, p in enumerate(labelled)}
        rows = np.array([idx.get(p, -1) for p in s.norm_phones], dtype=np.int64)
        kept = np.flatnonzero(rows >= 0)
        order = kept[np.argsort(rows[kept], kind="stable")]  # the rows of each phone together
        counts = np.bincount(rows[kept], minlength=len(labelled))  # every one at least 1
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        f64 = feats[order].astype(np.float64)
        sums = np.add.reduceat(f64, starts, axis=0)  # (P, F)
        sq = np.add.reduceat(f64 * f64, starts, axis=0)
        for p, i in idx.items():
            s.phone_sums[p] = sums[i]
            s.phone_sq[p] = sq[i]
            s.phone_counts[p] = int(counts[i])
    return s


@dataclass(frozen=True)
class IndexTask:
    """task(path) -> FileSummary; picklable, runs on a corpus-runner worker."""

    spec: str
    site: str
    cache_dir: str | None = None  # None: the default user cache
    sae_dir: str | None = None
    phone_tier: str | None = None
    word_tier: str | None = None
    acoustics: bool = False  # also Pearson moments against Praat's tracks at the frame centres
    #: cache entries written by the worker's background writer (the caller flushes it:
    #: ``actcache.flush_writes``)
    write_behind: bool = False

    def __call__(self, path: str) -> FileSummary:
        from ..models.pipeline import load_count

        start = time.time()
        s = never_raising(self._run, path, lambda p, why: FileSummary(p, reason=why))
        s.parts.setdefault("seconds", {})  # none for a file that failed
        s.parts.update(start=start, end=time.time(), pid=os.getpid(),
                       model_loads=load_count(self.spec))
        return s

    def _run(self, path: str) -> FileSummary:
        from .actcache import file_activations
        from ..models.pipeline import open_utterance

        t0 = time.perf_counter()
        utt = open_utterance(path, phone_tier=self.phone_tier, word_tier=self.word_tier)
        read = time.perf_counter() - t0
        fa = file_activations(path, self.spec, self.site, self.cache_dir, audio=utt.audio,
                              write_behind=self.write_behind)
        t0 = time.perf_counter()
        acts = fa.concatenated()
        if acts.shape[0] == 0:
            raise SteveError("no frames (the audio is empty)")
        feats = encode_features(acts, self.sae_dir)
        if fa.entries[0].is_tokens:
            s = summarise_tokens(path, feats, fa.entries)
        else:
            phones, words = row_labels(fa.entries, utt.alignment)
            s = summarise(path, feats, fa.times(), phones, words)
            if self.acoustics:
                add_acoustic_moments(s, feats, utt.audio)
        s.windows, s.extracted, s.cached = len(fa.entries), fa.extracted, fa.cached
        s.parts = {"seconds": {"read": read, **fa.seconds,
                               "summary": time.perf_counter() - t0}}
        return s


def word_label(text: str) -> str:
    """A word as word statistics count it: lower case, without surrounding punctuation."""
    return text.strip().strip(".,;:!?\"'()[]-").lower()


def summarise_tokens(path: str, feats: np.ndarray, entries) -> FileSummary:
    """FileSummary of a tokens site: each row is a token of the window's transcript, with its
    text, its position in the window's token sequence, and the word it belongs to (Whisper's
    word timings): the example's time is the word's start, and word statistics replace phone
    statistics (:func:`steve_qt.core.speech.textdiff.token_words` matches tokens to words)."""
    from ..speech.textdiff import token_words

    tokens, words, norm, times = [], [], [], []
    for e in entries:
        t = e.acts.shape[0]
        texts = list(e.attrs.get("token_texts") or [""] * t)
        wl = e.attrs.get("words") or []
        owner = token_words(texts, [w[2] for w in wl])
        for i in range(t):
            j = owner[i]
            tokens.append(texts[i])
            words.append(wl[j][2].strip() if j >= 0 else "")
            norm.append(word_label(wl[j][2]) if j >= 0 else "")
            times.append(float(wl[j][0]) if j >= 0 else np.nan)
    s = summarise(path, feats, np.array(times, dtype=np.float64), [""] * len(tokens), words,
                  norm_phones=norm)
    s.tokens = tokens
    return s


def add_acoustic_moments(s: FileSummary, feats: np.ndarray, audio) -> None:
    """Per measure the moments of the file's features against Praat's track sampled at the
    frame centres (undefined frames, and token rows, left out). A sound too short for Praat gives
    no frames (and a note), not a failed file."""
    from ..speech.acoustics import MEASURES, audio_tracks, sample_tracks
    from .acoustic_corr import file_moments

    times = np.asarray(s.times, dtype=np.float64)
    try:
        sampled = sample_tracks(audio_tracks(audio), times)
    except SteveError as exc:
        s.acoustic_note = str(exc)
        sampled = {m: np.full(times.shape, np.nan) for m in MEASURES}
    for m in MEASURES:
        s.acoustic[m] = file_moments(feats, sampled[m])


def model_sites(spec: str) -> list:
    """The model's sites (runs where the model is: in a worker, or in this process)."""
    from ..models.pipeline import get_adapter

    adapter = get_adapter(spec)
    if not hasattr(adapter, "list_sites"):
        raise SteveError(f"{adapter.model_id} does not list activation sites")
    return list(adapter.list_sites())


def load_model(spec: str) -> dict:
    """Load the model where this runs (a worker keeps it for the whole run:
    ``pipeline.get_adapter``); ``{"sites": model_sites(spec), "start", "end", "pid"}`` with
    the wall-clock times of the load (0 s when it was loaded already)."""
    start = time.time()
    sites = model_sites(spec)
    return {"sites": sites, "start": start, "end": time.time(), "pid": os.getpid()}


# --- merging (runs on the client) ------------------------------------------------------------
class TopK:
    """Per feature the K best (value, file, frame) by value desc, file asc, frame asc.

    State arrays are (F, K); ``merge`` takes a batch of candidates (F, B)."""

    def __init__(self, num_features: int, k: int):
        self.k = k
        self.val = np.full((num_features, k), -np.inf, dtype=np.float32)
        self.file = np.full((num_features, k), np.iinfo(np.int32).max, dtype=np.int32)
        self.frame = np.full((num_features, k), np.iinfo(np.int32).max, dtype=np.int32)

    def merge(self, val: np.ndarray, file: np.ndarray, frame: np.ndarray) -> None:
        """val, file, frame: (F, B); candidates with val = -inf are ignored."""
        v = np.concatenate([self.val, val.astype(np.float32)], axis=1)
        f = np.concatenate([self.file, file.astype(np.int32)], axis=1)
        r = np.concatenate([self.frame, frame.astype(np.int32)], axis=1)
        order = np.lexsort((r, f, -v), axis=-1)[:, :self.k]  # last key is the primary one
        self.val = np.take_along_axis(v, order, axis=1)
        self.file = np.take_along_axis(f, order, axis=1)
        self.frame = np.take_along_axis(r, order, axis=1)


class IndexBuilder:
    """Merges FileSummaries (any order) into the index tables; see the module doc."""

    def __init__(self, files: Sequence[str], top_k: int, bins: int, spill_dir: Path,
                 batch: int = 64, chunk: int = 256, support=None):
        from .phone_stats import SupportRule

        self.support = support or SupportRule()
        self.phone_files: dict[str, int] = {}
        self.acoustic: dict = {}  # measure -> acoustic_corr.Moments
        self._feat_fh: list = []
        self.token_site = False
        self.files = list(files)  # relative paths, sorted: file index order = path order
        self.top_k, self.bins, self.batch, self.chunk = top_k, bins, batch, chunk
        self.spill_dir = spill_dir
        spill_dir.mkdir(parents=True, exist_ok=True)
        self.num_features: int | None = None
        self.top: TopK | None = None
        self.pending: list[tuple[int, FileSummary]] = []
        self.labels: dict[str, int] = {}
        self.phone_sums: dict[str, np.ndarray] = {}
        self.phone_sq: dict[str, np.ndarray] = {}
        self.phone_counts: dict[str, int] = {}
        self.row_offsets = np.full(len(self.files) + 1, -1, dtype=np.int64)  # per file, into rows spill
        self.rows_written = 0
        self.spilled = 0
        self.cmax: np.ndarray | None = None
        self.cmin: np.ndarray | None = None
        self._fh = {name: open(spill_dir / f"{name}.bin", "wb")
                    for name in ("fid", "vmax", "amax", "vmin", "amin", "phone", "word", "time",
                                 "nphone", "token")}

    def label_id(self, text: str) -> int:
        if not text:
            return -1
        if text not in self.labels:
            self.labels[text] = len(self.labels)
        return self.labels[text]

    def add(self, file_index: int, s: FileSummary) -> None:
        d = int(s.vmax.shape[0])
        if self.num_features is None:
            self.num_features = d
            self.top = TopK(d, self.top_k)
            self.cmax = np.full(d, -np.inf, dtype=np.float32)
            self.cmin = np.full(d, np.inf, dtype=np.float32)
        elif d != self.num_features:
            raise SteveError(f"{s.path}: {d} features, but earlier files had {self.num_features}")
        np.maximum(self.cmax, s.vmax, out=self.cmax)
        np.minimum(self.cmin, s.vmin, out=self.cmin)
        for p, v in s.phone_sums.items():
            if p in self.phone_sums:
                self.phone_sums[p] += v
                self.phone_sq[p] += s.phone_sq[p]
            else:
                self.phone_sums[p] = np.array(v, dtype=np.float64)
                self.phone_sq[p] = np.array(s.phone_sq[p], dtype=np.float64)
            self.phone_counts[p] = self.phone_counts.get(p, 0) + s.phone_counts[p]
            self.phone_files[p] = self.phone_files.get(p, 0) + 1
        for m, mom in s.acoustic.items():
            self.acoustic[m] = self.acoustic[m].merge(mom) if m in self.acoustic else mom
        # the file's activations, one file per block of features (read back by the AUROC pass)
        if s.feats is not None:
            if not self._feat_fh:
                self._feat_fh = [open(self.spill_dir / f"feat{k}.bin", "wb")
                                 for k in range(-(-d // AUROC_BLOCK))]
            for k, fh in enumerate(self._feat_fh):
                fh.write(np.ascontiguousarray(
                    s.feats[:, k * AUROC_BLOCK:(k + 1) * AUROC_BLOCK], "<f4").tobytes())
            s.feats = None
        if not s.norm_phones and s.phones:
            from ..speech.phone_sets import normalise_labels

            s.norm_phones = normalise_labels(s.phones)
        self._fh["nphone"].write(np.array([self.label_id(p) for p in s.norm_phones], "<i4")
                                 .tobytes())
        self.token_site |= bool(s.tokens)
        tok = s.tokens if s.tokens else [""] * s.rows
        self._fh["token"].write(np.array([self.label_id(t) for t in tok], "<i4").tobytes())
        # per-row spill: labels and times (read back only for the chosen examples)
        self.row_offsets[file_index] = self.rows_written
        self.rows_written += s.rows
        self._fh["phone"].write(np.array([self.label_id(p) for p in s.phones], "<i4").tobytes())
        self._fh["word"].write(np.array([self.label_id(w) for w in s.words], "<i4").tobytes())
        self._fh["time"].write(np.asarray(s.times, "<f8").tobytes())
        # per-file spill: maxima and minima for the range pass
        self._fh["fid"].write(np.array([file_index], "<i4").tobytes())
        for name in ("vmax", "amax", "vmin", "amin"):
            self._fh[name].write(np.asarray(getattr(s, name), "<f4" if name[0] == "v" else "<i4")
                                 .tobytes())
        self.spilled += 1
        self.pending.append((file_index, s))
        if len(self.pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        fids = np.array([i for i, _ in self.pending], dtype=np.int32)
        val = np.stack([s.vmax for _, s in self.pending], axis=1)  # (F, B)
        val = np.where(val > 0, val, -np.inf)  # a file where the feature never fires is no example
        frame = np.stack([s.amax for _, s in self.pending], axis=1)
        self.top.merge(val, np.broadcast_to(fids, val.shape), frame)
        self.pending.clear()

    # --- the end --------------------------------------------------------------------------
    def finish(self) -> dict:
        """Close the spill, run the range pass, and return the tables as arrays."""
        self._flush()
        for fh in [*self._fh.values(), *self._feat_fh]:
            fh.close()
        if self.num_features is None:
            raise SteveError("no file gave activations")
        ranges = self._range_pass()
        top = self._examples([(0, self.top)])
        rng = self._examples(ranges)
        sel = self._selectivity()
        # label ids in sorted label order, whatever order the files arrived in
        label_list = sorted(self.labels)
        remap = np.zeros(len(self.labels) + 1, dtype=np.int32)  # old id -> new id; [-1] = -1
        remap[-1] = -1
        for new, text in enumerate(label_list):
            remap[self.labels[text]] = new
        for table, cols in ((top, ("phone", "word", "token")), (rng, ("phone", "word", "token")),
                            (sel, ("phone",))):
            for c in cols:
                table[c] = remap[table[c]]
        return {"top": top, "ranges": rng, "selectivity": sel, "labels": label_list,
                "cmax": self.cmax, "cmin": self.cmin, "acoustic": self.acoustic,
                "axis": "tokens" if self.token_site else "frames"}

    def _read(self, name: str, dtype: str, start: int, count: int, width: int = 1) -> np.ndarray:
        size = np.dtype(dtype).itemsize * width
        with open(self.spill_dir / f"{name}.bin", "rb") as fh:
            fh.seek(start * size)
            out = np.frombuffer(fh.read(count * size), dtype=dtype)
        return out.reshape(count, width) if width > 1 else out

    def bin_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(F, bins+1) float64 edges of the positive and negative (absolute) ranges."""
        steps = np.arange(self.bins + 1, dtype=np.float64) / self.bins
        pos = np.where(self.cmax > 0, self.cmax, 0).astype(np.float64)[:, None] * steps
        neg = np.where(self.cmin < 0, -self.cmin.astype(np.float64), 0)[:, None] * steps
        return pos, neg

    def _range_pass(self) -> list[tuple[int, TopK]]:
        f = self.num_features
        pos_edges, neg_edges = self.bin_edges()
        heaps = {b: TopK(f, self.top_k) for b in [*range(1, self.bins + 1),
                                                   *range(-1, -self.bins - 1, -1)]}
        for start in range(0, self.spilled, self.chunk):
            n = min(self.chunk, self.spilled - start)
            fid = self._read("fid", "<i4", start, n)
            vmax = self._read("vmax", "<f4", start, n, f).T  # (F, n)
            amax = self._read("amax", "<i4", start, n, f).T
            vmin = self._read("vmin", "<f4", start, n, f).T
            amin = self._read("amin", "<i4", start, n, f).T
            files = np.broadcast_to(fid, vmax.shape)
            v64, u64 = vmax.astype(np.float64), -vmin.astype(np.float64)
            for b in range(1, self.bins + 1):
                lo, hi = pos_edges[:, b - 1:b], pos_edges[:, b:b + 1]
                inside = (v64 > lo) & (v64 <= hi) & (hi > 0)
                heaps[b].merge(np.where(inside, vmax, -np.inf), files, amax)
                lo, hi = neg_edges[:, b - 1:b], neg_edges[:, b:b + 1]
                inside = (u64 > lo) & (u64 <= hi) & (hi > 0)
                heaps[-b].merge(np.where(inside, -vmin, -np.inf), files, amin)
        return list(heaps.items())

    def _examples(self, heaps: list[tuple[int, TopK]]) -> np.ndarray:
        """Structured EXAMPLE_DTYPE rows sorted by feature, then bin order, then rank."""
        pos_edges, neg_edges = self.bin_edges()
        parts = []
        for b, heap in heaps:
            feat, rank = np.nonzero(np.isfinite(heap.val))
            rows = np.zeros(feat.size, dtype=EXAMPLE_DTYPE)
            rows["feature"], rows["rank"], rows["bin"] = feat, rank, b
            rows["file"] = heap.file[feat, rank]
            rows["frame"] = heap.frame[feat, rank]
            val = heap.val[feat, rank]
            if b < 0:
                rows["activation"] = -val
                rows["lo"] = -neg_edges[feat, -b]
                rows["hi"] = -neg_edges[feat, -b - 1]
            else:
                rows["activation"] = val
                if b > 0:
                    rows["lo"], rows["hi"] = pos_edges[feat, b - 1], pos_edges[feat, b]
                else:
                    rows["lo"] = rows["hi"] = np.nan
            parts.append(rows)
        rows = np.concatenate(parts) if parts else np.zeros(0, EXAMPLE_DTYPE)
        # labels and times of the chosen rows, from the row spill
        if rows.size:
            at = self.row_offsets[rows["file"]] + rows["frame"]
            for name, dtype, col in (("phone", "<i4", "phone"), ("word", "<i4", "word"),
                                     ("time", "<f8", "time_s"), ("token", "<i4", "token")):
                mm = np.memmap(self.spill_dir / f"{name}.bin", dtype=dtype, mode="r",
                               shape=(max(self.rows_written, 1),))
                rows[col] = mm[at]
                del mm
        # bins in reading order: top ranges first (5..1), then the negative side (-1..-5 is
        # "least" to "most" negative; most negative first: -5..-1)
        bin_order = np.where(rows["bin"] > 0, self.bins - rows["bin"],
                             np.where(rows["bin"] < 0, self.bins + self.bins + rows["bin"], 0))
        order = np.lexsort((rows["rank"], bin_order, rows["feature"]))
        return rows[order]

    def _selectivity(self) -> np.ndarray:
        phones = sorted(self.phone_sums)
        f = self.num_features
        if not phones:
            return np.zeros(0, SELECTIVITY_DTYPE)
        sums = np.stack([self.phone_sums[p] for p in phones])  # (P, F)
        counts = np.array([self.phone_counts[p] for p in phones], dtype=np.int64)  # (P,)
        sq = np.stack([self.phone_sq[p] for p in phones])  # (P, F)
        mean = sums / counts[:, None]
        var = np.maximum(sq / counts[:, None] - mean * mean, 0)
        rest_n = counts.sum() - counts
        with np.errstate(invalid="ignore", divide="ignore"):
            rest = (sums.sum(axis=0)[None, :] - sums) / rest_n[:, None]
            rest_var = np.maximum((sq.sum(axis=0)[None, :] - sq) / rest_n[:, None] - rest * rest, 0)
            pooled = np.sqrt((var + rest_var) / 2)
            sel = np.where(pooled > 1e-12 * (np.abs(mean) + np.abs(rest) + 1), (mean - rest) / pooled,
                           np.nan)
        for a in (sel, rest, rest_var):
            a[rest_n == 0] = np.nan
        ids = np.array([self.labels[p] for p in phones], dtype=np.int32)
        n_files = np.array([self.phone_files[p] for p in phones], dtype=np.int64)
        supported = self.support.ok(counts, n_files)
        rows = np.zeros(len(phones) * f, SELECTIVITY_DTYPE)
        rows["feature"] = np.repeat(np.arange(f), len(phones))
        rows["phone"] = np.tile(ids, f)
        rows["frames"] = np.tile(counts, f)
        rows["n_files"] = np.tile(n_files, f)
        rows["supported"] = np.tile(supported, f)
        rows["auroc"] = self._auroc(phones).T.ravel()
        rows["mean"] = mean.T.ravel()
        rows["std"] = np.sqrt(var).T.ravel()
        rows["rest_mean"] = rest.T.ravel()
        rows["rest_std"] = np.sqrt(rest_var).T.ravel()
        rows["selectivity"] = sel.T.ravel()
        # per feature: supported labels first, then mean desc, then label asc (phones are
        # sorted, so position breaks ties); the best is the first row if it is supported
        pos = np.tile(np.arange(len(phones)), f)
        order = np.lexsort((pos, -rows["mean"], -rows["supported"], rows["feature"]))
        rows = rows[order]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = rows["feature"][1:] != rows["feature"][:-1]
        rows["best"] = first & (rows["supported"] == 1)
        return rows

    def _auroc(self, phones: list[str]) -> np.ndarray:
        """(P, F) exact AUROC of each feature as a detector of each (normalised) phone over all
        phone-labelled frames: a second pass over the activation spill, one block of features
        at a time (:func:`phone_stats.auroc_by_label`, tie-averaged ranks)."""
        from .phone_stats import auroc_by_label

        f, n = self.num_features, self.rows_written
        out = np.full((len(phones), f), np.nan)
        if n == 0 or not phones:
            return out
        lut = np.full(len(self.labels) + 1, -1, dtype=np.int64)  # label id -> phone position
        for i, p in enumerate(phones):
            lut[self.labels[p]] = i
        ids = np.fromfile(self.spill_dir / "nphone.bin", dtype="<i4")
        spilled = [self.spill_dir / f"feat{k}.bin" for k in range(-(-f // AUROC_BLOCK))]
        if len(ids) != n or not all(p.exists() for p in spilled) or \
                sum(p.stat().st_size for p in spilled) != n * f * 4:
            return out  # summaries without activations (made by hand): no AUROC
        dense = lut[ids]
        keep = dense >= 0
        dense = dense[keep]
        cols = max(1, (1 << 21) // max(int(keep.sum()), 1))  # about 16 MB of float64 ranks

        def one_block(k: int) -> None:
            b0 = k * AUROC_BLOCK
            w = min(AUROC_BLOCK, f - b0)
            # one block (N x 128 float32: 150 MB for 300 000 frames) read once, ranked a few
            # columns at a time
            block = np.fromfile(self.spill_dir / f"feat{k}.bin", dtype="<f4").reshape(n, w)[keep]
            for c0 in range(0, w, cols):
                part = block[:, c0:c0 + cols]
                out[:, b0 + c0:b0 + c0 + part.shape[1]] = auroc_by_label(part, dense,
                                                                         len(phones))

        # blocks in parallel, one per core (NumPy's sorts and arithmetic run without the GIL)
        from concurrent.futures import ThreadPoolExecutor

        blocks = range(len(spilled))
        threads = min(len(spilled), max(1, os.cpu_count() or 1), 4)
        if threads == 1:
            for k in blocks:
                one_block(k)
        else:
            with ThreadPoolExecutor(threads, thread_name_prefix="steve-qt-auroc") as pool:
                list(pool.map(one_block, blocks))
        return out


# --- writing ---------------------------------------------------------------------------------
def offsets(features: np.ndarray, num_features: int) -> np.ndarray:
    """(F+1,) int64 start of each feature's rows in a table sorted by feature."""
    return np.searchsorted(features, np.arange(num_features + 1), side="left").astype(np.int64)


def _texts(values: np.ndarray, fmt: str = "") -> list[str]:
    """The cells of a column of numbers: float32 as their shortest float32 text (NumPy's
    ``astype(str)``: the text ``str(np.float32(v))`` gives, which reads back as the same
    float32), others as ``repr(float(v))``, or ``format(v, fmt)``; "" for NaN and infinities."""
    values = np.asarray(values)
    finite = np.isfinite(values)
    if values.dtype == np.float32 and not fmt:
        out = values.astype(str).tolist()
    else:  # each distinct value written once (bin edges repeat along their feature's rows)
        distinct, at = np.unique(values.astype(np.float64), return_inverse=True)
        text = [format(v, fmt) for v in distinct.tolist()] if fmt else \
            [repr(v) for v in distinct.tolist()]
        out = np.array(text, dtype=object)[at.ravel()].tolist() if text else []
    if not finite.all():
        for i in np.flatnonzero(~finite).tolist():
            out[i] = ""
    return out


def _lookup(names: Sequence[str], ids: np.ndarray) -> list[str]:
    """``names[i]`` for each id, "" for -1."""
    table = np.array(list(names) + [""], dtype=object)
    return table[np.asarray(ids, dtype=np.int64)].tolist()  # -1 picks the final ""


def examples_csv(rows: np.ndarray, files: list[str], labels: list[str], ranges: bool,
                 tokens: bool = False) -> str:
    """The examples as CSV. A tokens site's rows are tokens, not frames: ``position`` (the
    token's place in its window's token sequence) and ``token`` (its text) replace ``frame`` and
    ``phone``, and ``time_s`` is the start of the token's word (empty when it has none)."""
    cols = (["feature", "rank", "file", "position", "token", "time_s", "activation", "word"]
            if tokens else
            ["feature", "rank", "file", "frame", "time_s", "activation", "phone", "word"])
    head = [rows["feature"], rows["rank"], _lookup(files, rows["file"]), rows["frame"]]
    time_s = _texts(rows["time_s"], ".3f")
    activation = _texts(rows["activation"].astype(np.float32))
    word = _lookup(labels, rows["word"])
    if tokens:
        columns = head + [_lookup(labels, rows["token"]), time_s, activation, word]
    else:
        columns = head + [time_s, activation, _lookup(labels, rows["phone"]), word]
    if ranges:
        columns += [rows["bin"], _texts(rows["lo"]), _texts(rows["hi"])]
    return csv_text_columns(cols + (["bin", "lo", "hi"] if ranges else []), columns)


def selectivity_csv(rows: np.ndarray, labels: list[str], unit: str = "phone") -> str:
    columns = [rows["feature"], _lookup(labels, rows["phone"]), rows["frames"], rows["n_files"],
               _texts(rows["mean"]), _texts(rows["std"]), _texts(rows["rest_mean"]),
               _texts(rows["rest_std"]), _texts(rows["selectivity"], ".6g"),
               _texts(rows["auroc"]), rows["supported"], rows["best"]]
    return csv_text_columns(["feature", unit, "n_frames", "n_files", "mean", "std",
                             "rest_mean", "rest_std", "selectivity", "auroc", "supported",
                             "best"], columns)


def files_csv(files: list[str], summaries: dict[int, dict]) -> str:
    rows = []
    for i, f in enumerate(files):
        s = summaries.get(i, {"ok": False, "reason": "not run"})
        rows.append([f, "ok" if s["ok"] else "failed", s.get("reason", ""), s.get("rows", 0),
                     s.get("windows", 0), s.get("extracted", 0), s.get("cached", 0),
                     f"{s.get('seconds', 0.0):.3f}"])
    return csv_text(FILES_COLUMNS, rows)


def write_index(out: Path, tables: dict, files: list[str], file_info: dict[int, dict],
                meta: dict, summary: str, force: bool = False) -> None:
    """Write every file of the index into ``out.part-*`` and move it into place."""
    with atomic_folder(out, force, "the index") as tmp:
        nf = meta["num_features"]
        labels = tables["labels"]
        for name in ("top", "ranges", "selectivity"):
            np.save(tmp / f"{name}.npy", tables[name])
            np.save(tmp / f"{name}_offsets.npy", offsets(tables[name]["feature"], nf))
        np.save(tmp / "files.npy", np.array(files, dtype=str) if files else np.zeros(0, "<U1"))
        np.save(tmp / "labels.npy", np.array(labels, dtype=str) if labels else np.zeros(0, "<U1"))
        np.save(tmp / "feature_max.npy", tables["cmax"])
        np.save(tmp / "feature_min.npy", tables["cmin"])
        tokens = tables.get("axis") == "tokens"
        (tmp / "top_examples.csv").write_text(examples_csv(tables["top"], files, labels, False,
                                                           tokens))
        (tmp / "range_examples.csv").write_text(examples_csv(tables["ranges"], files, labels,
                                                             True, tokens))
        if tokens:  # rows are tokens: statistics by word, not by phone
            (tmp / "word_selectivity.csv").write_text(selectivity_csv(tables["selectivity"],
                                                                      labels, "word"))
        else:
            (tmp / "phone_selectivity.csv").write_text(selectivity_csv(tables["selectivity"],
                                                                       labels))
        (tmp / "files.csv").write_text(files_csv(files, file_info))
        if tables.get("acoustic"):
            from ..speech.acoustics import MEASURES
            from .acoustic_corr import correlation_csv

            mom = tables["acoustic"]
            (tmp / "acoustic_correlation.csv").write_text(correlation_csv(mom, nf))
            np.save(tmp / "acoustic_r.npy", np.stack([mom[m].r() for m in MEASURES], axis=1))
            np.save(tmp / "acoustic_n.npy", np.array([[mom[m].n, mom[m].files]
                                                      for m in MEASURES], dtype=np.int64))
        (tmp / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "summary.txt").write_text(summary)


# --- building (the whole job) ----------------------------------------------------------------
def check_output(out: Path, force: bool) -> None:
    check_folder_writable(out, force, "the index")


def build_index(corpus: str | os.PathLike, site: str, out: str | os.PathLike, spec: str = "whisper",
                sae_dir: str | None = None, top_k: int = 20, bins: int = 5,
                jobs: int | None = None, scheduler: str | None = None,
                cache_dir: str | os.PathLike | None = None, force: bool = False,
                phone_tier: str | None = None, word_tier: str | None = None,
                timeout: float = 10.0, progress=None, acoustics: bool = False,
                min_frames: int | None = None, min_files: int | None = None,
                timings=None) -> dict:
    """Build the index of ``site`` (or of an SAE's features) over every audio file under
    ``corpus`` into the folder ``out``; returns index.json's content.

    ``acoustics``: also acoustic_correlation.csv (Pearson's r of each feature with Praat's f0,
    f1, f2, f3 and intensity at the model's frame centres). ``min_frames``/``min_files``: the
    support a phone needs to enter rankings (default :class:`phone_stats.SupportRule`).
    ``timings``: a :class:`runner.Timings` that gets when each part of the run started and
    ended (for benchmarks).

    The order of the run: the cluster starts, and every worker loads the model, while this
    process lists the files and checks the site; the files' tasks follow (each worker keeps its
    model for the whole run and writes its cache entries in the background); summaries are
    merged as they arrive; after the last one the cluster stops while the tables are finished
    and written."""
    from .phone_stats import MIN_FILES, MIN_FRAMES, SupportRule

    support = SupportRule(MIN_FRAMES if min_frames is None else int(min_frames),
                          MIN_FILES if min_files is None else int(min_files))
    if support.min_frames < 1 or support.min_files < 1:
        raise SteveError("--min-frames and --min-files must be at least 1")
    from ... import __version__
    from .actcache import flush_writes
    from .corpus import find_audio_files
    from ..models.pipeline import normalise_spec
    from .runner import Runner, span

    if top_k < 1:
        raise SteveError(f"--top-k must be at least 1, got {top_k}")
    if bins < 1:
        raise SteveError(f"--bins must be at least 1, got {bins}")
    root = Path(corpus).resolve()
    out = Path(out)
    check_output(out, force)
    if not root.is_dir():
        find_audio_files(root)  # its one-line error: not found, or a file
    if not site and sae_dir is None:
        raise SteveError("give --site (or an --sae that names its site)")
    t0 = time.perf_counter()
    with Runner(jobs, scheduler, timeout, timings=timings) as runner:
        from ..models.sites import validate_sites

        runner.warm(load_model, spec)  # every worker loads the model as soon as it is up
        if sae_dir is not None:
            sae_dir = str(Path(sae_dir).resolve())
            sae_hook = getattr(load_sae_cached(sae_dir), "hook_name", None)
            if site is None:
                site = sae_hook
            elif sae_hook and site != sae_hook:
                raise SteveError(f"the SAE in {sae_dir} reads {sae_hook}, not {site}")
            if not site:
                raise SteveError("give --site (or an --sae that names its site)")
        task = IndexTask(spec, site, None if cache_dir is None else str(cache_dir), sae_dir,
                         phone_tier, word_tier, bool(acoustics),  # tokens sites ignore acoustics
                         write_behind=True)
        with span(timings, "list files"):
            paths = find_audio_files(root)
            if not paths:
                raise SteveError("no audio files (WAV, FLAC, OGG, ...) in this folder tree",
                                 corpus)
            files = [p.relative_to(root).as_posix() for p in paths]
            order = sorted(range(len(files)), key=lambda i: files[i])
            paths, files = [paths[i] for i in order], [files[i] for i in order]
        with span(timings, "check site"):  # waits for the first worker's model
            loaded = runner.warmed(load_model, spec)
            (chosen,) = validate_sites([site], loaded["sites"])
            if sae_dir is not None:
                from .sae import check_site

                check_site(load_sae_cached(sae_dir), site, chosen.dim, sae_dir)
        if timings is not None and runner.client is None:
            timings.add("model load", loaded["start"], loaded["end"], where="local")
        spill = out.with_name(f".{out.name}.spill-{uuid.uuid4().hex[:8]}")
        try:
            builder = IndexBuilder(files, top_k, bins, spill, support=support)
            info: dict[int, dict] = {}
            for i, s in runner.map(list(map(str, paths)), task, progress):
                received = time.time()
                info[i] = {"ok": s.ok, "reason": s.reason, "rows": s.rows, "windows": s.windows,
                           "extracted": s.extracted, "cached": s.cached, "seconds": s.seconds,
                           "acoustic_note": s.acoustic_note}
                if s.ok:
                    builder.add(i, s)
                if timings is not None:
                    timings.files.append({"file": i, **s.parts, "extracted": s.extracted,
                                          "cached": s.cached, "received": received,
                                          "merged": time.time()})
            if timings is not None:
                for w in runner.warm_results():
                    timings.add("model load", w["start"], w["end"], where=f"worker {w['pid']}")
            writes = runner.close_soon(flush_writes)  # the workers' last cache writes, then stop
            used = sum(1 for v in info.values() if v["ok"])
            if not used:
                first = next(iter(sorted(info.items())))[1]["reason"]
                raise SteveError(f"none of the {len(files)} audio files gave activations "
                                 f"(first: {files[0]}: {first})", corpus)
            with span(timings, "finish"):
                tables = builder.finish()
        finally:
            shutil.rmtree(spill, ignore_errors=True)
        try:
            flushed = list(writes.result().values())
        except Exception:  # the workers are gone: their entries are written or not, atomically
            flushed = []
        if timings is not None:
            timings.workers += flushed
        seconds = time.perf_counter() - t0
        meta = {"format": "steve_qt feature index", "version": INDEX_VERSION,
                "model": normalise_spec(spec), "site": site, "sae": sae_dir,
                "corpus": str(root), "num_files": len(files), "files_used": used,
                "files_failed": len(files) - used, "num_features": builder.num_features,
                "top_k": top_k, "bins": bins, "rank_from": 0,
                "tie_rule": "activation desc, then file path asc, then frame asc; a file's "
                            "example is its first argmax (argmin) frame",
                "selectivity": "(mean - rest_mean) / sqrt((std**2 + rest_std**2) / 2)",
                "auroc": "the feature as a detector of the phone against all other "
                         "phone-labelled frames (Mann-Whitney, tie-averaged ranks; = sklearn "
                         "roc_auc_score)",
                "phones": "normalised (steve_qt.core.speech.phone_sets; `steve-qt phones`)",
                "support": {"min_frames": support.min_frames, "min_files": support.min_files},
                "acoustics": bool(acoustics) and chosen.axis == "frames",
                "axis": chosen.axis, "acoustics_asked": bool(acoustics),
                "versions": _versions(__version__)}
        summary = summary_text(meta, tables, files, info, seconds)
        errors = [e for w in flushed for e in w.get("errors", [])]
        if errors:
            summary += (f"cache: {len(errors)} activation entries could not be written (first: "
                        f"{errors[0]}); a later run computes them again\n")
        with span(timings, "write"):  # while the cluster stops
            write_index(out, tables, files, info, meta, summary, force)
    return meta


def _versions(steve_version: str) -> dict:
    import importlib.metadata as md

    out = {"steve_qt": steve_version, "index": INDEX_VERSION}
    for pkg in ("numpy", "torch", "openai-whisper", "transformers", "zarr", "distributed"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def summary_text(meta: dict, tables: dict, files: list[str], info: dict, seconds: float) -> str:
    lines = [f"feature index of {meta['site']} ({meta['model']}"
             + (f", SAE {meta['sae']}" if meta["sae"] else "") + f") over {meta['corpus']}",
             f"used {meta['files_used']} of {meta['num_files']} files; "
             f"{meta['files_failed']} failed ({sum(v['extracted'] for v in info.values())} "
             f"windows extracted, {sum(v['cached'] for v in info.values())} from cache) "
             f"in {seconds:.1f} s",
             f"{meta['num_features']} features, top {meta['top_k']} files each, "
             f"{meta['bins']} range bins"]
    cmax = tables["cmax"]
    best = np.argsort(-cmax, kind="stable")[:5]
    lines.append("highest maxima: " + ", ".join(f"{int(f)} ({cmax[f]:.3g})" for f in best))
    sel = tables["selectivity"]
    sup = meta["support"]
    unit = "word" if meta.get("axis") == "tokens" else "phone"
    rows_name = "tokens" if unit == "word" else "frames"
    rule = (f"{unit}s with at least {sup['min_frames']} {rows_name} from at least "
            f"{sup['min_files']} files")
    if unit == "word":
        lines.append("a tokens site: examples are tokens of the transcript (time = the start of "
                     "the token's word); word statistics instead of phone statistics")
        if meta.get("acoustics_asked"):
            lines.append("acoustic correlations need a frames site: not computed")
    if sel.size:
        labels = tables["labels"]
        ok = sel[sel["supported"] == 1]
        phones_ok = sorted({labels[p] for p in ok["phone"]})
        phones_all = sorted({labels[p] for p in sel["phone"]})
        lines.append(f"{len(phones_ok)} of {len(phones_all)} normalised {unit}s have the support "
                     f"to be ranked ({rule})")
        b = sel[sel["best"] == 1]
        b = b[np.argsort(-np.nan_to_num(b["selectivity"], nan=-2), kind="stable")][:5]
        if b.size:
            lines.append(f"most {unit}-selective: " + ", ".join(
                f"{int(r['feature'])} ({labels[r['phone']]} d {r['selectivity']:.2f}, AUROC "
                f"{r['auroc']:.3f}, {int(r['frames'])} {rows_name} / {int(r['n_files'])} files)"
                for r in b))
        else:
            lines.append(f"most {unit}-selective: none ({rule} needed)")
    mom = tables.get("acoustic") or {}
    for m, mo in mom.items():
        r = mo.r()
        if np.isfinite(r).any():
            f = int(np.nanargmax(np.abs(r)))
            lines.append(f"{m}: {mo.n} defined frames from {mo.files} files; most correlated "
                         f"feature {f} (r {r[f]:+.3f})")
        else:
            lines.append(f"{m}: no defined frames")
    for i, v in sorted(info.items()):
        if not v["ok"]:
            lines.append(f"failed: {files[i]}: {v['reason']}")
    return "\n".join(lines) + "\n"


# --- reading ---------------------------------------------------------------------------------
@dataclass
class Example:
    feature: int
    rank: int
    file: str  # relative to the corpus root
    frame: int
    time_s: float
    activation: float
    phone: str
    word: str
    bin: int = 0  # 0 for top examples; 1..bins / -1..-bins for range examples
    lo: float = float("nan")
    hi: float = float("nan")
    token: str = ""  # tokens sites: the token's text (``frame`` is then its position)


@dataclass
class PhoneStat:
    phone: str  # normalised label
    frames: int
    mean: float
    std: float
    rest_mean: float
    rest_std: float
    selectivity: float  # Cohen's d of this phone's frames against all other phones' frames
    best: bool
    n_files: int = 0
    auroc: float = float("nan")
    supported: bool = False  # meets the index's support rule (only such phones are ranked)


class FeatureIndex:
    """A built index, memory-mapped: ``FeatureIndex.open(dir).top(17)``."""

    def __init__(self, path: Path, meta: dict, arrays: dict):
        self.path, self.meta, self._a = path, meta, arrays
        self._labels = None

    @classmethod
    def open(cls, path: str | os.PathLike) -> "FeatureIndex":
        p = Path(path)
        try:
            meta = json.loads((p / "index.json").read_text())
        except FileNotFoundError as exc:
            raise SteveError("not a feature index (no index.json)", p) from exc
        except (OSError, ValueError) as exc:
            raise SteveError(f"unreadable index.json: {exc}", p) from exc
        if meta.get("version") != INDEX_VERSION:
            raise SteveError(f"index version {meta.get('version')} (this steve_qt reads "
                             f"{INDEX_VERSION}); rebuild it", p)
        arrays = {}
        try:
            for name in ("top", "top_offsets", "ranges", "ranges_offsets", "selectivity",
                         "selectivity_offsets", "files", "labels", "feature_max", "feature_min"):
                arrays[name] = np.load(p / f"{name}.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise SteveError(f"the index is incomplete or damaged ({exc})", p) from exc
        return cls(p, meta, arrays)

    @property
    def num_features(self) -> int:
        return int(self.meta["num_features"])

    @property
    def corpus(self) -> Path:
        return Path(self.meta["corpus"])

    def audio_path(self, example: Example) -> Path:
        return self.corpus / example.file

    def _check(self, feature: int) -> int:
        f = int(feature)
        if not 0 <= f < self.num_features:
            raise SteveError(f"feature {feature} does not exist: the index has features 0 to "
                             f"{self.num_features - 1}", self.path)
        return f

    def _label(self, i: int) -> str:
        return str(self._a["labels"][i]) if i >= 0 else ""

    def _rows(self, table: str, feature: int) -> np.ndarray:
        f = self._check(feature)
        off = self._a[f"{table}_offsets"]
        return np.asarray(self._a[table][int(off[f]):int(off[f + 1])])

    def _example(self, r) -> Example:
        return Example(int(r["feature"]), int(r["rank"]), str(self._a["files"][r["file"]]),
                       int(r["frame"]), float(r["time_s"]), float(r["activation"]),
                       self._label(int(r["phone"])), self._label(int(r["word"])),
                       int(r["bin"]), float(r["lo"]), float(r["hi"]),
                       self._label(int(r["token"])))

    def top(self, feature: int) -> list[Example]:
        """The feature's top examples, rank 0 first."""
        return [self._example(r) for r in self._rows("top", feature)]

    def ranges(self, feature: int) -> list[Example]:
        """Range examples: bins from the top range down, then the negative side from the most
        negative range; each bin ranked from 0."""
        return [self._example(r) for r in self._rows("ranges", feature)]

    def selectivity(self, feature: int) -> list[PhoneStat]:
        """Per phone, best (highest mean) first."""
        return [PhoneStat(self._label(int(r["phone"])), int(r["frames"]), float(r["mean"]),
                          float(r["std"]), float(r["rest_mean"]), float(r["rest_std"]),
                          float(r["selectivity"]), bool(r["best"]), int(r["n_files"]),
                          float(r["auroc"]), bool(r["supported"]))
                for r in self._rows("selectivity", feature)]

    @property
    def has_acoustics(self) -> bool:
        return (self.path / "acoustic_r.npy").exists()

    def acoustic_top(self, measure: str, k: int = 20) -> list[tuple[int, float]]:
        """The ``k`` features most correlated (largest |r|) with ``measure`` (f0, f1, f2, f3,
        intensity), as (feature, r); ties: the lower feature."""
        from ..speech.acoustics import MEASURES

        if measure not in MEASURES:
            raise SteveError(f"unknown acoustic measure {measure!r}; expected one of "
                             f"{', '.join(MEASURES)}")
        if not self.has_acoustics:
            raise SteveError("the index has no acoustic correlations (build it with "
                             "--acoustics)", self.path)
        r = np.load(self.path / "acoustic_r.npy")[:, MEASURES.index(measure)]
        order = np.lexsort((np.arange(r.size), -np.nan_to_num(np.abs(r), nan=-1)))
        return [(int(f), float(r[f])) for f in order[:k] if np.isfinite(r[f])]

    def acoustic_support(self, measure: str) -> tuple[int, int]:
        """(defined frames, files) the correlations with ``measure`` rest on."""
        from ..speech.acoustics import MEASURES

        n = np.load(self.path / "acoustic_n.npy")[MEASURES.index(measure)]
        return int(n[0]), int(n[1])

    def feature_max(self, feature: int) -> float:
        return float(self._a["feature_max"][self._check(feature)])

    def feature_min(self, feature: int) -> float:
        return float(self._a["feature_min"][self._check(feature)])
