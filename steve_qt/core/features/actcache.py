"""Per-file activations cached by content hash, in one chunked, compressed Zarr store.

Layout (a Zarr v3 hierarchy under the user cache, ``$STEVE_QT_CACHE`` or ``~/.cache/steve_qt``)::

    activations/                    group
      ab/                           group: first two hex digits of the key
        ab12...ef/                  array (T, D) float16, chunks of 256 frames, Blosc zstd level 1 + shuffle
                                    attrs: spec, site, window, file_sha256, num_windows,
                                    num_samples, axis (frames | tokens), grid (hop,
                                    receptive_field, sample_rate, offset; frames sites only),
                                    token_texts and words ([start_s, end_s, text]; tokens
                                    sites: the transcript the rows belong to)

The key is the SHA-256 of (the audio file's SHA-256, the normalised model spec, the site, the
30 s window, the steve_qt version, :data:`FORMAT`), so a changed file, model or version never
reads a stale entry. Rows are the frames (or tokens) of one window, exactly as
``Extraction.activations[site]`` holds them, rounded to float16.

Writes are atomic: an entry is written into ``activations.tmp/<random>/`` and renamed into place
(one ``rename`` of a folder), so a killed run leaves no half-written entry; two workers writing
the same entry (a re-scheduled task) both succeed and the second rename simply loses. Readers
treat an entry that does not open as missing.

Any Zarr reader opens the store: ``zarr.open_group(cache / "activations")``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

FORMAT = 2  # bump when the entry layout changes
CHUNK_FRAMES = 256
STORE_NAME = "activations"


# --- where ---------------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    env = os.environ.get("STEVE_QT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "steve_qt"


def store_root(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir if cache_dir is not None else default_cache_dir()) / STORE_NAME


def activation_key(file_hash: str, spec: str, site: str, window: int = 0) -> str:
    """Hex key of one entry: SHA-256 over the file's hash, spec, site, window and versions."""
    from ... import __version__
    from ..models.pipeline import normalise_spec

    text = "\0".join([file_hash, normalise_spec(spec), site.strip(), str(int(window)),
                      __version__, f"actcache{FORMAT}"])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def entry_path(root: Path, key: str) -> Path:
    return root / key[:2] / key


# --- one entry -----------------------------------------------------------------------------------
@dataclass
class Entry:
    """One cached window: activations (T, D) float16 and what is needed to place its frames."""

    acts: np.ndarray  # (T, D) float16
    attrs: dict

    @property
    def num_windows(self) -> int:
        return int(self.attrs.get("num_windows", 1))

    @property
    def is_tokens(self) -> bool:
        return self.attrs.get("axis") == "tokens"

    def grid(self):
        """The FrameGrid of the rows (None for token rows)."""
        from ..frames import FrameGrid

        g = self.attrs.get("grid")
        if not g or self.is_tokens:
            return None
        return FrameGrid(int(g["hop"]), int(g["receptive_field"]), int(g["sample_rate"]),
                         int(g["offset"]))

    def frame_times(self) -> np.ndarray:
        """(T,) float64 centre of each frame in seconds of the file (NaN for token rows)."""
        grid = self.grid()
        if grid is None:
            return np.full(self.acts.shape[0], np.nan)
        return np.asarray(grid.center_seconds(np.arange(self.acts.shape[0])), dtype=np.float64)


def site_axis_attrs(adapter, site: str, ex, rows: int) -> dict:
    """The attrs that depend on the site's axis: a tokens site's rows are the transcript's tokens
    (no frame grid; their texts and the word timings are kept with them), a frames site's rows
    sit on the extraction's frame grid."""
    axis = next((s.axis for s in getattr(adapter, "list_sites", lambda: [])() if s.name == site),
                "frames")
    if axis != "tokens":
        return {"axis": "frames"}
    tr = ex.transcript
    texts = list(tr.token_texts) if len(tr.token_texts) == rows else []
    return {"axis": "tokens", "grid": None, "token_texts": texts,
            "words": [[float(w.start_s), float(w.end_s), str(w.text)] for w in tr.words]}


def grid_attrs(grid) -> dict | None:
    if grid is None:
        return None
    return {"hop": int(grid.hop), "receptive_field": int(grid.receptive_field),
            "sample_rate": int(grid.sample_rate), "offset": int(grid.offset)}


def _ensure_group(path: Path, tmp_root: Path) -> None:
    """Create the Zarr group ``path`` if missing (atomically: made aside, then renamed)."""
    if (path / "zarr.json").exists():
        return
    import zarr

    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = tmp_root / f"g-{uuid.uuid4().hex}"
    zarr.create_group(store=str(tmp))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, path)
    except OSError:  # someone else made it first
        shutil.rmtree(tmp, ignore_errors=True)


def save_entry(root: Path, key: str, acts: np.ndarray, attrs: dict) -> Path:
    """Write one entry atomically; returns its path. ``acts`` (T, D) is stored as float16."""
    import zarr
    from zarr.codecs import BloscCodec

    acts = np.ascontiguousarray(acts, dtype=np.float16)
    if acts.ndim != 2:
        raise ValueError(f"activations must be (T, D), got shape {acts.shape}")
    final = entry_path(root, key)
    tmp_root = root.with_name(root.name + ".tmp")
    _ensure_group(root, tmp_root)
    _ensure_group(final.parent, tmp_root)
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp = tmp_root / f"a-{uuid.uuid4().hex}"
    try:
        arr = zarr.create_array(store=str(tmp), shape=acts.shape, dtype="float16",
                                chunks=(max(1, min(CHUNK_FRAMES, acts.shape[0])), max(1, acts.shape[1])),
                                compressors=BloscCodec(cname="zstd", clevel=1, shuffle="shuffle"),
                                attributes=dict(attrs, format=FORMAT))
        if acts.size:
            arr[:] = acts
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "zarr.json").exists():
                raise
            # an identical entry is already there (written by a re-scheduled task): keep it
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_entry(root: Path, key: str) -> Entry | None:
    """The entry, or None when it is missing or does not open (it is then recomputed)."""
    path = entry_path(root, key)
    if not (path / "zarr.json").exists():
        return None
    try:
        import zarr

        arr = zarr.open_array(store=str(path), mode="r")
        attrs = dict(arr.attrs)
        if attrs.get("format") != FORMAT:
            return None
        return Entry(np.asarray(arr[...], dtype=np.float16), attrs)
    except Exception:  # unreadable (disk trouble, foreign file): treat as missing
        return None


# --- writing behind -------------------------------------------------------------------------------
class _Writer:
    """One background thread of this process that writes entries (:func:`save_entry`) while
    the caller goes on with the next file; at most ``MAX_PENDING`` wait, so that a slow disk
    holds back the caller rather than filling memory."""

    MAX_PENDING = 4

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(1, thread_name_prefix="steve-qt-cache-write")
        self.pending: list = []
        self.entries = 0
        self.seconds = 0.0
        self.errors: list[str] = []

    def _write(self, root: Path, key: str, acts: np.ndarray, attrs: dict) -> None:
        import time

        t0 = time.perf_counter()
        try:
            save_entry(root, key, acts, attrs)
            self.entries += 1
        except Exception as exc:  # the entry is missing: a later run computes it again
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.seconds += time.perf_counter() - t0

    def submit(self, root: Path, key: str, acts: np.ndarray, attrs: dict) -> None:
        self.pending = [f for f in self.pending if not f.done()]
        while len(self.pending) >= self.MAX_PENDING:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(self._write, root, key, acts, attrs))

    def flush(self) -> dict:
        for f in self.pending:
            f.result()
        self.pending = []
        out = {"pid": os.getpid(), "entries": self.entries, "seconds": self.seconds,
               "errors": list(self.errors)}
        self.entries, self.seconds, self.errors = 0, 0.0, []
        return out


_WRITER: _Writer | None = None


def save_entry_behind(root: Path, key: str, acts: np.ndarray, attrs: dict) -> None:
    """:func:`save_entry` in this process's background writer thread (returns at once; the
    entry appears when the write is done, atomically as ever). :func:`flush_writes` waits."""
    global _WRITER
    if _WRITER is None:
        _WRITER = _Writer()
    _WRITER.submit(root, key, np.ascontiguousarray(acts, dtype=np.float16), attrs)


def flush_writes() -> dict:
    """Wait for this process's writes behind; what they were since the last flush:
    ``{"pid", "entries", "seconds", "errors"}`` (an entry that failed is simply not there)."""
    if _WRITER is None:
        return {"pid": os.getpid(), "entries": 0, "seconds": 0.0, "errors": []}
    return _WRITER.flush()


# --- by audio file ------------------------------------------------------------------------------
def file_key(path: str | os.PathLike, spec: str, site: str, window: int = 0,
             file_hash: str | None = None) -> str:
    from ..fileio import sha256_file

    return activation_key(file_hash or sha256_file(path), spec, site, window)


def load_activations(path: str | os.PathLike, spec: str, site: str, window: int = 0,
                     cache_dir: str | os.PathLike | None = None) -> np.ndarray | None:
    """Cached (T, D) float32 activations of ``site`` for one window of an audio file, or None."""
    entry = load_entry(store_root(cache_dir), file_key(path, spec, site, window))
    return None if entry is None else entry.acts.astype(np.float32)


def store_activations(path: str | os.PathLike, spec: str, site: str, window: int,
                      acts: np.ndarray, attrs: dict | None = None,
                      cache_dir: str | os.PathLike | None = None,
                      file_hash: str | None = None) -> Path:
    """Cache (T, D) activations of one window of an audio file (stored as float16)."""
    from ..models.pipeline import normalise_spec
    from ..fileio import sha256_file

    file_hash = file_hash or sha256_file(path)
    meta = {"spec": normalise_spec(spec), "site": site, "window": int(window),
            "file_sha256": file_hash, "num_windows": 1}
    meta.update(attrs or {})
    return save_entry(store_root(cache_dir), activation_key(file_hash, spec, site, window),
                      acts, meta)


def file_entries(path: str | os.PathLike, spec: str, site: str,
                 cache_dir: str | os.PathLike | None = None) -> list[Entry] | None:
    """Every window of one file, in order, or None when any window is not cached."""
    from ..fileio import sha256_file

    root = store_root(cache_dir)
    file_hash = sha256_file(path)
    first = load_entry(root, activation_key(file_hash, spec, site, 0))
    if first is None:
        return None
    out = [first]
    for w in range(1, first.num_windows):
        e = load_entry(root, activation_key(file_hash, spec, site, w))
        if e is None:
            return None
        out.append(e)
    return out


@dataclass
class FileActs:
    """Every window of one file's activations at one site."""

    entries: list[Entry]
    extracted: int = 0  # windows the model ran on
    cached: int = 0  # windows read from the cache
    #: seconds spent per part: ``hash``, ``cache read``, the adapter's own parts (``mel``,
    #: ``forward``; else ``extract``), ``cache write`` (without ``write_behind``)
    seconds: dict = field(default_factory=dict)

    def _add(self, part: str, seconds: float) -> None:
        self.seconds[part] = self.seconds.get(part, 0.0) + seconds

    def concatenated(self) -> np.ndarray:
        """(T, D) float32, the windows' rows one after the other."""
        return np.concatenate([e.acts for e in self.entries]).astype(np.float32)

    def times(self) -> np.ndarray:
        return np.concatenate([e.frame_times() for e in self.entries])


def file_activations(path: str | os.PathLike, spec: str, site: str,
                     cache_dir: str | os.PathLike | None = None, audio=None,
                     use_cache: bool = True, write_behind: bool = False) -> FileActs:
    """Every window of ``site``'s activations for one audio file: from the cache, else from the
    model (loaded once per process, ``pipeline.get_adapter``), caching what was computed.

    Only ``site`` is asked of the adapter, with no attention (``components=()``), so Whisper runs
    its encoder only for encoder sites. ``write_behind``: the cache entries are written by this
    process's background writer (:func:`save_entry_behind`; the caller flushes it at the end)."""
    import time

    from ..fileio import sha256_file
    from ..models.pipeline import get_adapter, normalise_spec

    root = store_root(cache_dir)
    out = FileActs([])
    t0 = time.perf_counter()
    file_hash = sha256_file(path)
    out._add("hash", time.perf_counter() - t0)
    window, num_windows = 0, 1
    while window < num_windows:
        key = activation_key(file_hash, spec, site, window)
        t0 = time.perf_counter()
        entry = load_entry(root, key) if use_cache else None
        out._add("cache read", time.perf_counter() - t0)
        if entry is None:
            if audio is None:
                from ..speech.audio import load_audio

                audio = load_audio(path)
            adapter = get_adapter(spec)
            t0 = time.perf_counter()
            ex = adapter.extract(audio.samples, components=(), window=window, sites=(site,))
            took = time.perf_counter() - t0
            parts = dict(getattr(ex, "timings", None) or {})
            for part, seconds in parts.items():
                out._add(part, seconds)
            out._add("extract other", took - sum(parts.values()))
            attrs = {"spec": normalise_spec(spec), "site": site, "window": window,
                     "file_sha256": file_hash, "num_windows": int(ex.num_windows),
                     "num_samples": int(len(audio.samples)),
                     "grid": grid_attrs(getattr(ex, "frame_grid", None)), "format": FORMAT}
            acts = np.asarray(ex.activations[site])
            attrs.update(site_axis_attrs(adapter, site, ex, acts.shape[0]))
            entry = Entry(acts.astype(np.float16), attrs)
            if use_cache:
                t0 = time.perf_counter()
                if write_behind:
                    save_entry_behind(root, key, entry.acts, attrs)
                else:
                    save_entry(root, key, entry.acts, attrs)
                out._add("cache write", time.perf_counter() - t0)
            out.extracted += 1
        else:
            out.cached += 1
        out.entries.append(entry)
        num_windows = entry.num_windows
        window += 1
    return out


def file_activations_sites(path: str | os.PathLike, spec: str, sites: Sequence[str],
                           cache_dir: str | os.PathLike | None = None, audio=None
                           ) -> dict[str, FileActs]:
    """:func:`file_activations` for several sites of one file: the windows missing for any
    site are computed by one forward pass per window that captures all of them."""
    from ..fileio import sha256_file
    from ..models.pipeline import get_adapter, normalise_spec

    root = store_root(cache_dir)
    file_hash = sha256_file(path)
    out = {s: FileActs([]) for s in sites}
    window, num_windows = 0, 1
    while window < num_windows:
        got = {s: load_entry(root, activation_key(file_hash, spec, s, window)) for s in sites}
        missing = [s for s, e in got.items() if e is None]
        if missing:
            if audio is None:
                from ..speech.audio import load_audio

                audio = load_audio(path)
            ex = get_adapter(spec).extract(audio.samples, components=(), window=window,
                                           sites=tuple(missing))
            for s in missing:
                attrs = {"spec": normalise_spec(spec), "site": s, "window": window,
                         "file_sha256": file_hash, "num_windows": int(ex.num_windows),
                         "num_samples": int(len(audio.samples)),
                         "grid": grid_attrs(getattr(ex, "frame_grid", None)), "format": FORMAT}
                acts = np.asarray(ex.activations[s])
                save_entry(root, activation_key(file_hash, spec, s, window), acts, attrs)
                got[s] = Entry(acts.astype(np.float16), attrs)
                out[s].extracted += 1
        for s, e in got.items():
            if s not in missing:
                out[s].cached += 1
            out[s].entries.append(e)
        num_windows = got[sites[0]].num_windows
        window += 1
    return out


def file_rows(path: str | os.PathLike, spec: str, sites: Sequence[str],
              cache_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """{site: (T, D) float32} every window's cached rows of one file (the file hashed once);
    FileNotFoundError when a site is not cached completely."""
    from ..fileio import sha256_file

    root = store_root(cache_dir)
    file_hash = sha256_file(path)
    out = {}
    for site in sites:
        first = load_entry(root, activation_key(file_hash, spec, site, 0))
        entries = [first]
        for w in range(1, first.num_windows if first is not None else 0):
            entries.append(load_entry(root, activation_key(file_hash, spec, site, w)))
        if any(e is None for e in entries):
            raise FileNotFoundError(f"{path}: no cached activations of {site} for {spec}")
        out[site] = np.concatenate([e.acts for e in entries]).astype(np.float32)
    return out


def iter_rows(files: Iterable[str | os.PathLike], spec: str, site: str, batch: int = 4096,
              cache_dir: str | os.PathLike | None = None, seed: int | None = None,
              shuffle_batches: int = 16, drop_last: bool = False,
              missing: str = "skip") -> Iterator[np.ndarray]:
    """Stream the cached rows of a corpus as float32 batches (B, D), B = ``batch`` (the last one
    may be shorter unless ``drop_last``).

    Memory holds at most ``shuffle_batches + 1`` batches (one without ``seed``), never the corpus.
    Files are read in the given order, every window of each; with ``seed`` the file order is
    shuffled and rows are drawn at random from a buffer of ``shuffle_batches`` batches
    (deterministic for a seed). Files without a complete cache entry are skipped
    (``missing="skip"``) or raise FileNotFoundError (``missing="error"``).
    """
    files = list(files)
    rng = None
    if seed is not None:
        rng = np.random.default_rng(seed)
        files = [files[i] for i in rng.permutation(len(files))]
    cap = batch * (max(1, shuffle_batches) if rng is not None else 1)
    buf: list[np.ndarray] = []
    held = 0

    def take(n: int) -> np.ndarray:
        nonlocal buf, held
        rows = np.concatenate(buf) if len(buf) > 1 else buf[0]
        if rng is not None:
            rows = rows[rng.permutation(rows.shape[0])]
        out, rest = rows[:n], rows[n:]
        buf = [rest] if rest.shape[0] else []
        held = rest.shape[0]
        return np.ascontiguousarray(out, dtype=np.float32)

    for f in files:
        entries = file_entries(f, spec, site, cache_dir)
        if entries is None:
            if missing == "error":
                raise FileNotFoundError(f"{f}: no cached activations of {site} for {spec}")
            continue
        for e in entries:
            if e.acts.shape[0]:
                buf.append(e.acts)
                held += e.acts.shape[0]
            while held >= cap:
                yield take(batch)
    while held >= batch:
        yield take(batch)
    if held and not drop_last:
        yield take(held)


def count_rows(files: Sequence[str | os.PathLike], spec: str, site: str,
               cache_dir: str | os.PathLike | None = None) -> tuple[int, int, int]:
    """(files cached, rows, D) of a corpus's cache (reads only the entries' metadata)."""
    import zarr

    root = store_root(cache_dir)
    n_files = rows = dim = 0
    for f in files:
        from ..fileio import sha256_file

        h = sha256_file(f)
        first = entry_path(root, activation_key(h, spec, site, 0))
        if not (first / "zarr.json").exists():
            continue
        try:
            a = zarr.open_array(store=str(first), mode="r")
            shapes = [a.shape]
            for w in range(1, int(a.attrs.get("num_windows", 1))):
                shapes.append(zarr.open_array(
                    store=str(entry_path(root, activation_key(h, spec, site, w))), mode="r").shape)
        except Exception:
            continue
        n_files += 1
        rows += sum(s[0] for s in shapes)
        dim = shapes[0][1]
    return n_files, rows, dim
