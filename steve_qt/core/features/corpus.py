"""Corpus runs: head statistics and phone-class matrices over a folder tree of aligned audio.

``run_corpus(root, spec)`` finds every audio file that has an alignment beside it (TIMIT layout
``DR1/FCJF0/SA1.WAV`` + ``SA1.PHN``/``.WRD`` in either case, or a ``.TextGrid``), extracts its
attention once (cached, see below), computes per-file :func:`head_statistics` and phone-class
matrices, and pools them over the corpus. A file that fails is reported with its reason and
skipped; it never stops the run.

Cache: one ``.npz`` per (audio file, model, component, 30 s window) in ``~/.cache/steve_qt``
(or ``$STEVE_QT_CACHE``, or the ``cache_dir`` argument), named by the SHA-256 of the audio
file's bytes + the model spec + the component + the window + the steve_qt version. Entries hold
the softmax weights and padding mass (float16/float32, compressed; no pre-softmax scores) and are
written atomically, so a run killed midway leaves no broken entry. A rerun reads them instead of
running the model (and does not even load the model when every file is cached).

Workers: files run on the corpus runner (:mod:`steve_qt.core.features.runner`): ``jobs`` worker
processes of an embedded Dask cluster (default: the number of cores; ``jobs=1`` runs in this
process), or an existing cluster with ``scheduler``. Each worker loads the model once, on its
first file that is not cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..attention.analysis import (CLASS_FEATURES, DEFAULT_KS, ROLLOUT, ClassMatrix, HeadStats,
                       class_matrix, class_names, frame_classes, head_statistics, layer_map,
                       pool_class_matrices, pool_head_stats)
from ..fileio import sha256_file
from ..attention.maps import AttentionMaps
from ..speech.audio import AUDIO_EXTENSIONS
from ..errors import SteveError

#: progress(done, total, what) after each file.
ProgressFn = Callable[[int, int, str], None]

# --- finding the files -----------------------------------------------------------------------
def find_audio_files(root: str | os.PathLike) -> list[Path]:
    """Audio files under ``root`` (any case of the extension), sorted."""
    root = Path(root)
    if not root.exists():
        raise SteveError("folder not found", root)
    if not root.is_dir():
        raise SteveError("is a file, not a folder", root)
    out = [p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
           and not p.name.startswith(".")]
    return sorted(out)


def phone_inventory(root: str | os.PathLike, phone_tier: str | None = None
                   ) -> tuple[list[tuple[str, str, int, int]], int, int]:
    """Every raw phone label of the alignments beside the audio files under ``root``:
    rows (raw, normalised or "(left out)", intervals, files), most frequent first; the number of
    aligned files and of audio files."""
    from collections import Counter, defaultdict

    from ..speech.alignment import load_alignment
    from ..speech.phone_sets import normalise_labels

    paths = find_audio_files(root)
    if not paths:
        raise SteveError("no audio files (WAV, FLAC, OGG, ...) in this folder tree", root)
    intervals: Counter = Counter()
    files: dict[str, set] = defaultdict(set)
    norm_of: dict[str, str] = {}
    aligned = 0
    for p in paths:
        al = load_alignment(p, phone_tier=phone_tier)
        if al is None or al.phones is None:
            continue
        aligned += 1
        labels = al.phones.labels
        for raw, norm in zip(labels, normalise_labels(labels)):
            intervals[raw] += 1
            files[raw].add(p)
            norm_of[raw] = norm or "(left out)"
    if not aligned:
        raise SteveError("no phone alignment beside any audio file", root)
    rows = [(raw, norm_of[raw], n, len(files[raw]))
            for raw, n in sorted(intervals.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rows, aligned, len(paths)


def has_alignment(audio_path: Path) -> bool:
    from ..speech.alignment import find_alignment

    return find_alignment(audio_path) is not None


# --- the cache -------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    env = os.environ.get("STEVE_QT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "steve_qt"


def file_sha256(path: Path) -> str:
    return sha256_file(path)


def cache_key(file_hash: str, spec: str, component: str, window: int = 0) -> str:
    from ... import __version__
    from ..models.pipeline import normalise_spec

    text = "\0".join([file_hash, normalise_spec(spec), component, str(window), __version__])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.npz"


def save_cached(path: Path, maps: AttentionMaps, tokens: Sequence[int]) -> None:
    """Write one cache entry atomically (weights + padding, no scores)."""
    from ..fileio import atomic_path
    from ..models.npzio import maps_to_arrays

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = maps_to_arrays(replace(maps, scores=None))
    arrays["scores"] = np.zeros(0, dtype=np.float16)  # not kept in the cache
    arrays["tokens"] = np.asarray(list(tokens), dtype=np.int64)
    arrays["meta_json"] = np.array(json.dumps(maps.meta))
    with atomic_path(path, force=True) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_cached(path: Path) -> tuple[AttentionMaps, list[int]] | None:
    """The cached maps and tokens, or None when there is no (readable) entry."""
    from ..frames import FrameGrid

    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
        rate = int(raw["sample_rate"])
        grid = FrameGrid(int(raw["spf"]), int(raw["receptive_field"]), rate,
                         int(raw["frame_offset"]))
        q_frames = str(raw["query_axis"]) == "frames"
        k_frames = str(raw["key_axis"]) == "frames"
        maps = AttentionMaps(
            weights=raw["attention"], scores=None, padding_mass=raw["padding_mass"],
            component=str(raw["component"]), model=str(raw["model"]), sample_rate=rate,
            num_samples=int(raw["num_samples"]),
            query_grid=grid if q_frames else None, key_grid=grid if k_frames else None,
            query_labels=None if q_frames else [str(s) for s in raw["query_labels"]],
            key_labels=None if k_frames else [str(s) for s in raw["key_labels"]],
            window=int(raw["window"]), num_windows=int(raw["num_windows"]),
            meta=json.loads(str(raw["meta_json"])))
        return maps, [int(t) for t in raw["tokens"]]
    except Exception:  # unreadable entry (other version, disk trouble): recompute it
        return None


# --- one file --------------------------------------------------------------------------------
@dataclass
class Job:
    path: str
    spec: str
    component: str
    cache_dir: str | None  # None: no cache
    phone_tier: str | None = None
    word_tier: str | None = None
    ks: tuple[int, ...] = DEFAULT_KS


@dataclass
class FileResult:
    path: str
    ok: bool
    reason: str = ""
    windows: int = 0
    frames: int = 0  # query rows analysed (summed over windows)
    cached: int = 0  # windows read from the cache
    extracted: int = 0  # windows the model ran on
    seconds: float = 0.0
    stats: HeadStats | None = None
    classes: dict = field(default_factory=dict)  # (feature, layer, head|None) -> ClassMatrix
    word_errors: list = field(default_factory=list)  # word_errors.WordError (cross only)


def class_layers(maps: AttentionMaps) -> list[int | str]:
    """Layers the class matrices are made for: each layer, plus rollout for self-attention."""
    layers: list[int | str] = list(range(maps.num_layers))
    if maps.num_queries == maps.num_keys:
        layers.append(ROLLOUT)
    return layers


def file_classes(maps: AttentionMaps, phone_tier) -> dict:
    """(feature, layer, head) -> ClassMatrix for every feature, layer (+ rollout) and head
    (None = mean of heads; rollout has only the head mean)."""
    frames = {}  # feature -> (labels, query classes (Q,), key classes (K,)), computed once
    for feature in CLASS_FEATURES:
        labels = class_names(feature)
        frames[feature] = (labels,
                           frame_classes(maps.query_grid, maps.num_queries, phone_tier, feature,
                                         labels),
                           frame_classes(maps.key_grid, maps.num_keys, phone_tier, feature, labels))
    out = {}
    for layer in class_layers(maps):
        heads = [None] if layer == ROLLOUT else [None, *range(maps.num_heads)]
        for head in heads:
            w, pad = layer_map(maps, layer, head)  # once for all features
            for feature, (labels, qc, kc) in frames.items():
                out[(feature, layer, head)] = class_matrix(w, pad, qc, kc, labels, feature)
    return out


def window_maps(job: Job, utt, window: int, file_hash: str) -> tuple[AttentionMaps, list[int], bool]:
    """The maps of one window, from the cache or from the model: (maps, tokens, from_cache)."""
    from ..models.pipeline import extract, get_adapter

    path = None
    if job.cache_dir is not None:
        path = cache_path(Path(job.cache_dir), cache_key(file_hash, job.spec, job.component, window))
        hit = load_cached(path)
        if hit is not None:
            return hit[0], hit[1], True
    adapter = get_adapter(job.spec)
    if job.component not in adapter.components:
        raise SteveError(f"{adapter.model_id} has no {job.component!r} attention "
                         f"(it has {', '.join(adapter.components)})")
    ex = extract(adapter, utt.audio, components=[job.component], window=window)
    maps = ex.maps[job.component]
    if path is not None:
        save_cached(path, maps, ex.transcript.tokens)
    return maps, list(ex.transcript.tokens), False


def analyse_file(job: Job) -> FileResult:
    """Everything for one audio file; any failure comes back as ``ok=False`` with its reason."""
    t_start = time.perf_counter()
    res = FileResult(job.path, ok=False)
    try:
        _analyse(job, res)
        res.ok = True
    except SteveError as exc:
        res.reason = exc.problem
    except Exception as exc:  # a bug or a model failure on this file: report, go on
        res.reason = f"{type(exc).__name__}: {exc}"
    res.seconds = time.perf_counter() - t_start
    return res


def _analyse(job: Job, res: FileResult) -> None:
    from ..models.pipeline import open_utterance

    utt = open_utterance(job.path, phone_tier=job.phone_tier, word_tier=job.word_tier)
    if utt.alignment is None:
        raise SteveError("no alignment (.phn/.wrd or .TextGrid) beside the audio")
    phones = utt.alignment.phones
    if phones is None:
        raise SteveError("the alignment has no phone tier")
    file_hash = file_sha256(Path(job.path))
    n_windows = _num_windows(job, utt, file_hash)
    stats: list[HeadStats] = []
    classes: dict[tuple, list[ClassMatrix]] = {}
    for window in range(n_windows):
        maps, tokens, cached = window_maps(job, utt, window, file_hash)
        res.cached += cached
        res.extracted += not cached
        stats.append(head_statistics(maps, phones, job.ks))
        res.frames += maps.num_queries
        if maps.query_grid is not None and maps.key_grid is not None:
            for key, m in file_classes(maps, phones).items():
                classes.setdefault(key, []).append(m)
        if maps.component == "cross" and utt.alignment.words is not None:
            res.word_errors += _word_errors(maps, tokens, utt.alignment.words)
    res.windows = n_windows
    res.stats = pool_head_stats(stats)
    res.classes = {k: pool_class_matrices(v) for k, v in classes.items()}


def _num_windows(job: Job, utt, file_hash: str) -> int:
    """Windows of this file: from the cached first window when there is one (no model load)."""
    if job.cache_dir is not None:
        hit = load_cached(cache_path(Path(job.cache_dir),
                                     cache_key(file_hash, job.spec, job.component, 0)))
        if hit is not None:
            return hit[0].num_windows
    from ..models.pipeline import get_adapter

    return get_adapter(job.spec).num_windows(len(utt.audio.samples))


def _word_errors(maps: AttentionMaps, tokens: list[int], ref_words) -> list:
    from ..models.adapters import word_alignment
    from ..speech.word_errors import boundary_errors

    words = word_alignment(maps, tokens)
    if words is None:
        return []
    return boundary_errors(words.tier(), ref_words)


# --- the corpus --------------------------------------------------------------------------------
@dataclass
class CorpusResult:
    root: str
    spec: str
    component: str
    files: list[FileResult]  # every audio file with an alignment, sorted by path
    without_alignment: list[str]  # audio files skipped because no alignment lies beside them
    stats: HeadStats | None  # pooled over the files that worked
    classes: dict  # (feature, layer, head) -> pooled ClassMatrix

    @property
    def used(self) -> list[FileResult]:
        return [f for f in self.files if f.ok]

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if not f.ok]

    def summary_line(self) -> str:
        total = len(self.files) + len(self.without_alignment)
        cached = sum(f.cached for f in self.used)
        extracted = sum(f.extracted for f in self.used)
        line = (f"used {len(self.used)} of {total} files; {len(self.failed)} failed")
        if self.without_alignment:
            line += f"; {len(self.without_alignment)} without alignment"
        return line + f" ({extracted} extracted, {cached} from cache)"


@dataclass(frozen=True)
class StatsTask:
    """task(path) -> FileResult for the corpus runner (picklable; runs on a worker)."""

    spec: str
    component: str
    cache_dir: str | None
    phone_tier: str | None = None
    word_tier: str | None = None
    ks: tuple[int, ...] = DEFAULT_KS

    def __call__(self, path: str) -> FileResult:
        return analyse_file(Job(path, self.spec, self.component, self.cache_dir, self.phone_tier,
                                self.word_tier, self.ks))


def run_corpus(root: str | os.PathLike, spec: str, component: str = "encoder",
               jobs: int | None = 1, cache_dir: str | os.PathLike | None = "default",
               phone_tier: str | None = None, word_tier: str | None = None,
               ks: Sequence[int] = DEFAULT_KS, progress: ProgressFn | None = None,
               scheduler: str | None = None, timeout: float = 10.0) -> CorpusResult:
    """Analyse every aligned audio file under ``root``; ``cache_dir=None`` turns the cache off.

    ``jobs``/``scheduler``: where the files run (see :mod:`steve_qt.core.features.runner`)."""
    audio = find_audio_files(root)
    aligned = {p: has_alignment(p) for p in audio}
    with_align = [p for p in audio if aligned[p]]
    without = [str(p) for p in audio if not aligned[p]]
    if cache_dir == "default":
        cache_dir = default_cache_dir()
    from .runner import run_files

    task = StatsTask(spec, component, None if cache_dir is None else str(cache_dir), phone_tier,
                     word_tier, tuple(ks))
    results = run_files([str(p) for p in with_align], task, jobs=jobs, scheduler=scheduler,
                        progress=progress, timeout=timeout)
    results.sort(key=lambda r: r.path)
    used = [r for r in results if r.ok]
    stats = pool_head_stats([r.stats for r in used]) if used else None
    keys = sorted({k for r in used for k in r.classes}, key=str)
    classes = {k: pool_class_matrices([r.classes[k] for r in used if k in r.classes]) for k in keys}
    return CorpusResult(str(root), spec, component, results, without, stats, classes)


# --- tables ----------------------------------------------------------------------------------
OUTPUT_NAMES = ("summary.txt", "files.csv", "head_stats.csv", "head_stats_per_file.csv",
                *(f"class_{f}.csv" for f in CLASS_FEATURES), "word_errors.csv")


def _cell(x) -> str:
    """CSV cell: floats with 6 significant digits, NaN as an empty cell (missing in R and pandas)."""
    if isinstance(x, (float, np.floating)):
        return "" if not np.isfinite(x) else f"{float(x):.6g}"
    return "" if x is None else str(x)


def csv_text(columns: Sequence[str], rows: Sequence[dict]) -> str:
    """CSV of dict rows, cells as :func:`_cell` writes them (``fileio.csv_text``)."""
    from ..fileio import csv_text as text

    return text(columns, [[_cell(row.get(c)) for c in columns] for row in rows])


def _rel(result: CorpusResult, path: str) -> str:
    try:
        return str(Path(path).relative_to(result.root))
    except ValueError:
        return path


def corpus_tables(result: CorpusResult, local_k: int = 5,
                  local_threshold: float = 0.5) -> dict[str, str]:
    """File name -> text of every output of a corpus run (see ``steve-qt stats --help``).

    ``local_k`` / ``local_threshold``: a head counts as local in the summary when at least that
    share of its attention stays within +-local_k frames of the diagonal."""
    out: dict[str, str] = {}
    out["files.csv"] = csv_text(
        ["file", "status", "reason", "windows", "frames", "extracted", "cached", "seconds"],
        [{"file": _rel(result, f.path), "status": "ok" if f.ok else "failed", "reason": f.reason,
          "windows": f.windows, "frames": f.frames, "extracted": f.extracted, "cached": f.cached,
          "seconds": round(f.seconds, 3)} for f in result.files]
        + [{"file": _rel(result, p), "status": "skipped",
            "reason": "no alignment (.phn/.wrd or .TextGrid) beside the audio"}
           for p in result.without_alignment])
    summary: list[str] = []
    if result.stats is not None:
        cols = ["files", "frames", *result.stats.columns()]
        out["head_stats.csv"] = csv_text(cols, [{"files": len(result.used),
                                                 "frames": result.stats.num_queries, **row}
                                                for row in result.stats.to_rows()])
        out["head_stats_per_file.csv"] = csv_text(
            ["file", "frames", *result.stats.columns()],
            [{"file": _rel(result, f.path), "frames": f.frames, **row}
             for f in result.used for row in f.stats.to_rows()])
        summary.append(result.stats.summary(local_k, local_threshold))
    for feature in CLASS_FEATURES:
        rows = []
        for (feat, layer, head), m in result.classes.items():
            if feat != feature:
                continue
            for i, a in enumerate(m.labels):
                for j, b in enumerate(m.labels):
                    if m.query_frames[i] and m.key_frames[j]:
                        rows.append({"layer": layer, "head": "mean" if head is None else head,
                                     "query_class": a, "key_class": b,
                                     "mean_weight": m.mean[i, j], "total_mass": m.total[i, j],
                                     "query_padding": m.padding[i],
                                     "query_frames": int(m.query_frames[i]),
                                     "key_frames": int(m.key_frames[j])})
        if rows:
            rows.sort(key=lambda r: (str(r["layer"]).zfill(3), str(r["head"]).zfill(3)))
            out[f"class_{feature}.csv"] = csv_text(list(rows[0]), rows)
    errors = [(f, e) for f in result.used for e in f.word_errors]
    if result.component == "cross":
        out["word_errors.csv"] = csv_text(
            ["file", "ref", "whisper", "same_text", "ref_start_s", "ref_end_s", "whisper_start_s",
             "whisper_end_s", "start_error_ms", "end_error_ms"],
            [{"file": _rel(result, f.path), "ref": e.ref, "whisper": e.hyp,
              "same_text": int(e.same_text), "ref_start_s": e.ref_start_s,
              "ref_end_s": e.ref_end_s, "whisper_start_s": e.hyp_start_s,
              "whisper_end_s": e.hyp_end_s, "start_error_ms": e.start_error_ms,
              "end_error_ms": e.end_error_ms} for f, e in errors])
        if errors:
            ms = np.abs([[e.start_error_ms, e.end_error_ms] for _, e in errors if e.same_text])
            if ms.size:
                summary.append(f"whisper DTW word boundaries vs reference: median |error| "
                               f"{np.median(ms):.0f} ms, {np.mean(ms <= 100):.0%} within 100 ms "
                               f"({ms.shape[0]} words with the same text)")
    for f in result.failed:
        summary.append(f"failed: {_rel(result, f.path)}: {f.reason}")
    summary.append(result.summary_line())
    out["summary.txt"] = "\n".join(summary) + "\n"
    return out
