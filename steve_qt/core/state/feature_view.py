"""What the features dock shows: site, feature, SAE, feature index, activations of the shown file.

A small evented model, Qt-free. It reads the open utterances (:class:`Entries`) and the model and
window (:class:`AttentionView`); it writes neither. Activations of a file are stored on its
:class:`Entry` (``entry.activations[(model, window, site)] = (acts (T, D) float32, FrameGrid)``),
so they go when the file is closed and switching back to a file costs nothing. A feature of a
loaded SAE is read from the SAE's codes of its ``hook_name`` site's activations.

Events (``Event.value`` is the new value):

===============  =============================================================================
``sites``        the sources the site chooser offers changed (value: tuple of Site)
``site``         chosen source: a site name of the model, or ``sae:DIR`` of a loaded SAE
``feature``      chosen feature (neuron or SAE latent, from 0)
``activations``  the shown file's (T, D) activations at the chosen source arrived or went
``index``        the open FeatureIndex changed (value: it or None)
``examples``     the chosen feature's example rows of the index (value: list of Example)
``example``      the chosen example row (index into ``examples``) or None
``activation_status``  an activations job's status changed (value: (Entry, (spec, window, site)))
===============  =============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..models.adapters import Site
from .analysis_cache import AnalysisCache
from .entries import Entries, Entry
from ..errors import SteveError
from ..events import EmitterGroup
from ..frames import FrameGrid
from ..events import Evented

EVENTS = ("sites", "site", "feature", "activations", "index", "examples", "example",
          "activation_status")
SAE_PREFIX = "sae:"
HALF = 0.5  # an example's span: frames around the peak whose activation stays >= HALF * peak


@dataclass(frozen=True)
class Example:
    """One row of a feature index's ``top_examples.csv`` / ``range_examples.csv``."""

    feature: int
    rank: int
    file: Path  # absolute (resolved against the index's corpus root)
    frame: int
    time_s: float
    activation: float
    phone: str = ""
    word: str = ""
    bin: int | None = None  # activation range (range examples only), with its bounds
    lo: float | None = None
    hi: float | None = None
    token: str = ""  # a tokens site's example: the token's text (``frame`` is its position)

    @property
    def label(self) -> str:
        return f"range {self.bin}" if self.bin is not None else f"top {self.rank}"

    @property
    def is_token(self) -> bool:
        return bool(self.token)


def as_example(row: Any, root: Path | None) -> Example:
    """An index row (a mapping or an object with the CSV's column names) -> Example."""
    get = row.get if isinstance(row, dict) else (lambda k, d=None: getattr(row, k, d))
    f = Path(str(get("file")))
    if not f.is_absolute() and root is not None:
        f = root / f
    opt = lambda k, cast: None if get(k) in (None, "") else cast(get(k))  # noqa: E731
    b = opt("bin", int)
    frame = get("frame")
    if frame in (None, ""):  # a tokens site's row: its position in the token sequence
        frame = get("position")
    time_s = opt("time_s", float)  # empty for a token outside every timed word
    return Example(int(get("feature")), int(get("rank")), f, int(frame),
                   float("nan") if time_s is None else time_s, float(get("activation")),
                   str(get("phone", "") or ""),
                   str(get("word", "") or ""), b or None,  # bin 0: a top example
                   opt("lo", float) if b else None, opt("hi", float) if b else None,
                   str(get("token", "") or ""))


TOKEN_MARK = "**"  # around the example's token in its sentence


def marked_sentence(texts: Sequence[str], position: int, mark: str = TOKEN_MARK) -> str:
    """The tokens' texts joined as the decoder spells them (each carries its leading space),
    special tokens (``<|...|>``) left out, the token at ``position`` between ``mark``s:
    ``[" she", " had", " your", " dark", " suit"], 3 -> "she had your **dark** suit"``."""
    def shown(t: str) -> str:
        return "" if t.strip().startswith("<|") and t.strip().endswith("|>") else t

    tok = texts[position]
    lead = tok[:len(tok) - len(tok.lstrip())]
    text = ("".join(shown(t) for t in texts[:position]) + lead + mark + tok.strip() + mark
            + "".join(shown(t) for t in texts[position + 1:]))
    return " ".join(text.split())


def around_token(sentence: str, words_before: int = 2, mark: str = TOKEN_MARK) -> str:
    """A marked sentence from ``words_before`` words before its marked token on (the start
    replaced by an ellipsis), so that a narrow cell that cuts the end still shows the token:
    ``"she had your **dark** suit" -> "\u2026had your **dark** suit"`` (words_before 2)."""
    at = sentence.find(mark)
    if at < 0:
        return sentence
    before = sentence[:at].split()
    if len(before) <= words_before:
        return sentence
    head = sentence[:at]
    tail = "" if head.endswith(" ") else before.pop()  # the token's own word, up to the mark
    kept = before[-words_before:] if words_before else []
    return "\u2026" + " ".join(kept + [tail + sentence[at:]] if tail else kept + [sentence[at:]])


# --- numbers (pure) ----------------------------------------------------------------------------
def feature_track(acts: np.ndarray, feature: int) -> np.ndarray:
    """(T, D) activations -> (T,) float32 of one feature."""
    return np.ascontiguousarray(acts[:, feature], dtype=np.float32)


def peak_span(track: np.ndarray, frame: int, share: float = HALF) -> tuple[int, int]:
    """Frames [a, b] (inclusive) around ``frame`` where ``track`` stays >= share * track[frame].

    A peak that is not above zero spans only its own frame.
    """
    peak = float(track[frame])
    if not peak > 0:
        return frame, frame
    above = track >= share * peak
    a = frame
    while a > 0 and above[a - 1]:
        a -= 1
    b = frame
    while b < len(track) - 1 and above[b + 1]:
        b += 1
    return a, b


def frames_to_seconds(a: int, b: int, grid: FrameGrid) -> tuple[float, float]:
    """Drawing span in seconds of frames a..b (inclusive)."""
    return float(grid.span_seconds(a)[0]), float(grid.span_seconds(b)[1])


@dataclass(frozen=True)
class FeatureStat:
    feature: int
    max: float
    mean: float
    best_phone: str  # the phone label whose frames have the highest mean activation ("" if none)


def top_features(acts: np.ndarray, n: int, phones=None, grid: FrameGrid | None = None
                 ) -> list[FeatureStat]:
    """The ``n`` features with the highest max activation over the file's frames.

    ``best_phone``: over the phone tier's labelled intervals, the normalised phone
    (:func:`steve_qt.core.speech.phone_sets.normalise_labels`) whose frames (frame centres inside
    an interval of that phone) have the highest mean activation of the feature.
    """
    acts = np.asarray(acts, dtype=np.float32)
    if acts.size == 0:
        return []
    mx = acts.max(axis=0)  # (D,)
    mean = acts.mean(axis=0)
    order = np.argsort(-mx, kind="stable")[:n]
    labels = _frame_labels(phones, grid, len(acts))
    names = sorted({lab for lab in labels if lab})
    per_label = {lab: acts[np.array([x == lab for x in labels])][:, order].mean(axis=0)
                 for lab in names}
    out = []
    for j, f in enumerate(order):
        best = max(names, key=lambda lab: per_label[lab][j]) if names else ""
        out.append(FeatureStat(int(f), float(mx[f]), float(mean[f]), best))
    return out


def _frame_labels(phones, grid: FrameGrid | None, num_frames: int) -> list[str]:
    from ..speech.phone_sets import normalise_labels

    if phones is None or grid is None:
        return [""] * num_frames
    norm = dict(zip(map(id, phones.intervals), normalise_labels(phones.labels)))
    labels = []
    for f in range(num_frames):
        iv = phones.at(float(grid.center_seconds(f)))
        labels.append(norm[id(iv)] if iv is not None and iv.label else "")
    return labels


def top_matrix(acts: np.ndarray, features: Sequence[int]) -> np.ndarray:
    """(N, T) float32 of the given features, each row scaled to its max (for the heat strip)."""
    m = np.ascontiguousarray(np.asarray(acts, np.float32)[:, list(features)].T)
    hi = m.max(axis=1, keepdims=True) if m.size else np.ones((0, 1), np.float32)
    return m / np.where(hi > 0, hi, 1.0)


FILE_ACTS_KEEP = 64  # files not open whose cached activations are kept (example thumbnails)


# --- the model ---------------------------------------------------------------------------------
class FeatureView(Evented):
    def __init__(self, files: Entries, attention, cache: AnalysisCache) -> None:
        self.events = EmitterGroup(*EVENTS)
        self.files = files
        self.attention = attention  # AttentionView: model and window
        self.cache = cache
        self.sites: tuple[Site, ...] = ()
        self.site: str | None = None
        self.feature = 0
        self.activations: np.ndarray | None = None  # (T, D) of the shown file at ``site``
        self.grid: FrameGrid | None = None
        self.index = None  # FeatureIndex
        self.examples: list[Example] = []
        self.example: int | None = None
        self.saes: dict[str, Any] = {}  # "sae:DIR" -> SAE
        self.actcache_dir: str | Path | None = None  # None: the user cache (actcache)
        self._file_acts: dict = {}  # file_activations' last answers, oldest first
        self.index_sites: tuple[Site, ...] = ()  # a tokens-site index's site (no time axis)
        self._token_texts: dict = {}  # token_sentence's cached token texts per file
        for name in ("current", "model", "window"):
            getattr(files.events if name == "current" else attention.events, name).connect(
                lambda ev: self.refresh())
        attention.events.model.connect(lambda ev: self._refresh_examples())

    # --- sources ---------------------------------------------------------------------------------
    def set_model_sites(self, sites: Sequence[Site]) -> None:
        """The shown model's sites (frames sites only: tokens sites have no time axis)."""
        own = tuple(s for s in sites if s.axis == "frames")
        if self._set("sites", own + self._sae_sites() + self.index_sites) and \
                self.index is not None:
            self.set_index(self.index)  # its site may be offered now
        if self.site is None or self.site_info(self.site) is None:
            mlp = [s for s in own if s.kind == "mlp"]
            if mlp or own:
                self.set_site((mlp or own)[0].name)

    def add_sae(self, sae, directory: str | Path) -> str:
        """Offer a loaded SAE as a source; returns its name (``sae:DIR``)."""
        name = SAE_PREFIX + str(Path(directory).resolve())
        self.saes[name] = sae
        model_sites = tuple(s for s in self.sites if not s.name.startswith(SAE_PREFIX)
                            and s not in self.index_sites)
        self._set("sites", model_sites + self._sae_sites() + self.index_sites)
        return name

    def _sae_sites(self) -> tuple[Site, ...]:
        return tuple(Site(name, int(sae.d_sae), "frames", None, "sae")
                     for name, sae in self.saes.items())

    def site_info(self, name: str | None) -> Site | None:
        return next((s for s in self.sites if s.name == name), None)

    def base_site(self, name: str | None = None) -> str | None:
        """The model site whose activations feed ``name`` (an SAE's ``hook_name``)."""
        name = self.site if name is None else name
        if name is not None and name.startswith(SAE_PREFIX):
            return str(self.saes[name].hook_name)
        return name

    @property
    def dim(self) -> int:
        s = self.site_info(self.site)
        if s is not None:
            return int(s.dim)
        return int(self.activations.shape[1]) if self.activations is not None else 0

    def set_site(self, name: str) -> None:
        if self._set("site", name):
            self.refresh()
            self._fit_feature()

    def set_feature(self, feature: int) -> None:
        f = max(int(feature), 0)
        if self.dim:
            f = min(f, self.dim - 1)
        if self._set("feature", f):
            self._refresh_examples()

    def _fit_feature(self) -> None:
        if self.dim and self.feature >= self.dim:
            self.set_feature(self.dim - 1)
        else:
            self._refresh_examples()

    # --- activations of the shown file -----------------------------------------------------------
    def key(self, site: str | None = None) -> tuple[str, int, str] | None:
        base = self.base_site(site)
        return None if base is None else (self.attention.model, self.attention.window, base)

    def stored(self, entry: Entry | None, site: str | None = None):
        """(acts (T, D), grid) of ``entry`` at ``site`` (SAE codes for an SAE), or None.

        Activations not read since the window opened are looked up once in the activation cache
        (core/features/actcache.py, where ``steve-qt features index`` leaves them)."""
        key = self.key(site)
        if entry is None or key is None:
            return None
        if key not in entry.activations:
            self._from_actcache(entry, key)
        if key not in entry.activations:
            return None
        acts, grid = entry.activations[key]
        name = self.site if site is None else site
        if name.startswith(SAE_PREFIX):
            sae = self.saes[name]
            acts = self.cache.get("sae_codes", (acts, sae), lambda: sae_codes(sae, acts))
        return acts, grid

    def file_activations(self, path, site: str | None = None):
        """(acts (T, D), grid) of a file that is not open (an index's example), from the
        activation cache (SAE codes for an SAE site), or None when it is not cached there.
        The last FILE_ACTS_KEEP answers are kept."""
        key = self.key(site)
        if key is None:
            return None
        name = self.site if site is None else site
        memo = (str(path), key, name)
        if memo in self._file_acts:
            return self._file_acts[memo]
        from ..features.actcache import file_entries

        try:
            cached = file_entries(path, key[0], key[2], cache_dir=self.actcache_dir)
        except Exception:  # an unreadable cache is a miss, not an error
            cached = None
        got = None
        if cached is not None and key[1] < len(cached) and cached[key[1]].grid() is not None:
            acts = cached[key[1]].acts.astype(np.float32)
            if name.startswith(SAE_PREFIX):
                acts = sae_codes(self.saes[name], acts)
            got = (acts, cached[key[1]].grid())
        self._file_acts[memo] = got
        while len(self._file_acts) > FILE_ACTS_KEEP:
            self._file_acts.pop(next(iter(self._file_acts)))
        return got

    def _from_actcache(self, entry: Entry, key: tuple[str, int, str]) -> None:
        if entry.path is None or key in entry.activation_status:
            return
        from ..features.actcache import file_entries

        try:
            cached = file_entries(entry.path, key[0], key[2], cache_dir=self.actcache_dir)
        except Exception:  # an unreadable cache is a miss, not an error
            cached = None
        w = key[1]
        if cached is None or w >= len(cached) or cached[w].grid() is None:
            entry.activation_status[key] = "not cached"
            return
        entry.activations[key] = (cached[w].acts.astype(np.float32), cached[w].grid())
        entry.activation_status[key] = "done"

    def needs_activations(self) -> tuple[int, str, int, str] | None:
        """(entry index, model spec, window, site) when the shown file lacks the activations."""
        e, key = self.files.entry, self.key()
        if e is None or key is None or key in e.activations or self.is_token_site():
            return None
        if self.stored(e) is not None or \
                e.activation_status.get(key) in ("queued", "running", "failed"):
            return None
        return self.files.current, key[0], key[1], key[2]

    def set_activation_status(self, entry: Entry, key: tuple[str, int, str], status: str) -> None:
        """The activations job of ``entry`` at ``key`` (spec, window, site) is ``status``
        (queued, running, done, failed); emits ``activation_status`` with (entry, key)."""
        entry.activation_status[key] = status
        self.events.activation_status((entry, key))

    def store(self, index: int, spec: str, window: int, site: str, acts: np.ndarray,
              grid: FrameGrid) -> None:
        e = self.files.entries[index]
        e.activations[(spec, window, site)] = (np.asarray(acts, np.float32), grid)
        self.set_activation_status(e, (spec, window, site), "done")
        if index == self.files.current:
            self.refresh()

    def refresh(self) -> None:
        got = self.stored(self.files.entry)
        acts, grid = got if got is not None else (None, None)
        self.grid = grid
        if acts is not self.activations:
            old, self.activations = self.activations, acts
            self.events.activations(acts, old)

    def track(self) -> np.ndarray | None:
        """(T,) activation of the chosen feature in the shown file."""
        if self.activations is None or self.feature >= self.activations.shape[1]:
            return None
        return feature_track(self.activations, self.feature)

    def track_edges(self) -> np.ndarray | None:
        """(T + 1,) seconds: frame edges of the track (frames drawn side by side)."""
        if self.activations is None or self.grid is None:
            return None
        t = len(self.activations)
        a, b = self.grid.extent_seconds(t)
        return np.linspace(a, b, t + 1)

    def top(self, n: int, phones=None) -> list[FeatureStat]:
        if self.activations is None:
            return []
        acts, grid = self.activations, self.grid
        return self.cache.get("top_features", (acts, phones, n),
                              lambda: top_features(acts, n, phones, grid))

    def example_span(self, entry: Entry, frame: int) -> tuple[float, float] | None:
        """Seconds around ``frame`` where the chosen feature stays >= half its value there."""
        got = self.stored(entry)
        if got is None:
            return None
        acts, grid = got
        if self.feature >= acts.shape[1] or not 0 <= frame < len(acts):
            return None
        a, b = peak_span(feature_track(acts, self.feature), frame)
        return frames_to_seconds(a, b, grid)

    # --- the index -------------------------------------------------------------------------------
    def is_token_site(self, name: str | None = None) -> bool:
        """The site's rows are tokens of the transcript (no time axis, no track)."""
        s = self.site_info(self.site if name is None else name)
        return s is not None and s.axis == "tokens"

    def set_index(self, index) -> None:
        self.index = index
        self.events.index(index)
        site = index_site(index)
        offered = tuple(s for s in self.sites if s not in self.index_sites)
        self.index_sites = ()
        if site is not None and index.meta.get("axis") == "tokens":
            # the site chooser offers frames sites; a tokens-site index brings its own
            dim = int(index.meta.get("num_features") or 0) or 1 + max(
                index.example_features() if hasattr(index, "example_features") else [0])
            self.index_sites = (Site(site, dim, "tokens", None, "index"),)
            offered = tuple(s for s in offered if s.name != site)
        self._set("sites", offered + self.index_sites)
        if site is not None and (self.site_info(site) is not None or site in self.saes):
            self.set_site(site)
        self._refresh_examples()

    def index_note(self) -> str:
        """Why no examples are listed ("" when they are)."""
        if self.index is None:
            return ("No feature index open: File > Open Feature Index... "
                    "(build one with steve-qt features index)")
        problem = index_problem(self.index, self.attention.model, self.sites)
        if problem:
            return problem
        if self.site != index_site(self.index):
            return f"the open index is of {index_site(self.index)!r}: choose it as the site"
        return ""

    def _refresh_examples(self) -> None:
        rows: list[Example] = []
        if self.index is not None and not self.index_note():
            root = index_root(self.index)
            try:
                rows = [as_example(r, root) for r in self.index.top(self.feature)]
                rows += [as_example(r, root) for r in self.index.ranges(self.feature)]
            except SteveError:  # a feature the index does not have
                rows = []
        self.example = None
        self.examples = rows
        self.events.examples(rows)
        self.events.example(None)

    def token_sentence(self, ex: Example) -> str | None:
        """A token example's window transcript with the token marked (``marked_sentence``),
        from the token texts the activation cache keeps with the file's rows (where
        ``steve-qt features index`` leaves them) or from the open file's extraction; None
        when neither has them or the token there is not the example's."""
        if not ex.is_token or self.index is None:
            return None
        spec, site = index_model(self.index) or self.attention.model, index_site(self.index)
        memo = (str(ex.file), spec, site)
        windows: list[list[str]] = self._token_texts.get(memo, [])
        if memo not in self._token_texts:
            try:
                from ..features.actcache import file_entries

                cached = file_entries(ex.file, spec, site, cache_dir=self.actcache_dir)
            except Exception:  # an unreadable cache is a miss, not an error
                cached = None
            windows = [list(e.attrs.get("token_texts") or []) for e in cached or []]
            self._token_texts[memo] = windows
            while len(self._token_texts) > FILE_ACTS_KEEP:
                self._token_texts.pop(next(iter(self._token_texts)))
        if not windows:
            i = self.files.index_of(ex.file) if Path(ex.file).exists() else None
            got = self.files.entries[i].extractions.get((spec, 0)) if i is not None else None
            texts = list(getattr(getattr(got, "transcript", None), "token_texts", None) or [])
            windows = [texts] if texts else []
        pos = ex.frame  # rows of the file's windows, one after another
        for texts in windows:
            if pos < len(texts):
                return marked_sentence(texts, pos) if texts[pos].strip() == ex.token.strip() \
                    else None
            pos -= len(texts)
        return None

    def set_example(self, i: int | None) -> None:
        if i is not None and not 0 <= i < len(self.examples):
            i = None
        self._set("example", i)


def index_site(index) -> str | None:
    """The source an index describes: ``sae:DIR`` for an SAE index, else its site."""
    if index is None:
        return None
    meta = index.meta
    if meta.get("sae"):
        return SAE_PREFIX + str(Path(meta["sae"]).resolve())
    return meta.get("site")


def index_root(index) -> Path | None:
    root = index.meta.get("corpus") or index.meta.get("corpus_root")
    return Path(root) if root else None


def sae_codes(sae, acts: np.ndarray) -> np.ndarray:
    """(T, d_in) -> (T, d_sae) float32 codes through ``sae.encode``."""
    import torch

    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(np.ascontiguousarray(acts, np.float32)))
    return codes.detach().cpu().numpy().astype(np.float32)


# --- opening an index --------------------------------------------------------------------------
def index_model(index) -> str | None:
    meta = index.meta
    spec = meta.get("model") or meta.get("model_spec") or meta.get("spec")
    if isinstance(spec, dict):
        spec = spec.get("spec") or spec.get("name")
    return str(spec) if spec else None


def index_problem(index, model: str, sites: Sequence) -> str | None:
    """Why the index cannot give examples for the window's model, or None when it can."""
    from ..models.pipeline import normalise_spec

    spec = index_model(index)
    if spec is not None and normalise_spec(spec) != normalise_spec(model):
        return (f"this feature index was built with model {spec!r}; the window shows {model!r}: "
                f"choose {spec!r} in the model chooser to use it")
    site = index_site(index)
    names = {s.name for s in sites}
    if site is not None and names and site not in names:
        return f"this feature index is of site {site!r}, which the model does not offer"
    return None


def missing_files(examples_files: Sequence[Path]) -> list[Path]:
    """The files of an index that are not where it says (moved or deleted since)."""
    return [f for f in dict.fromkeys(examples_files) if not Path(f).exists()]


def open_index(directory: str | Path):
    """A FeatureIndex (steve_qt.core.features.index); SteveError says what is wrong."""
    from ..errors import SteveError

    d = Path(directory)
    if not (d / "index.json").is_file():
        raise SteveError("not a feature index (no index.json in it; build one with "
                         "steve-qt features index)", d)
    try:
        if not (d / "top.npy").is_file() and (d / "top_examples.csv").is_file():
            return CsvIndex.open(d)
        from ..features.index import FeatureIndex

        return FeatureIndex.open(d)
    except SteveError:
        raise
    except Exception as exc:  # a broken or foreign file: say so, no traceback
        raise SteveError(f"cannot read this feature index ({type(exc).__name__}: {exc})", d) from exc


class CsvIndex:
    """A feature index read from its CSV tables alone (``top_examples.csv``,
    ``range_examples.csv``, ``index.json``): for indexes written by other tools or by hand.
    ``top``/``ranges`` give dict rows with the CSV's columns."""

    def __init__(self, path: Path, meta: dict, top: dict, ranges: dict):
        self.path, self.meta, self._top, self._ranges = path, meta, top, ranges

    @classmethod
    def open(cls, path: str | Path) -> "CsvIndex":
        import csv
        import json

        p = Path(path)
        meta = json.loads((p / "index.json").read_text(encoding="utf-8"))
        tables = []
        for name in ("top_examples.csv", "range_examples.csv"):
            rows: dict[int, list[dict]] = {}
            f = p / name
            if f.is_file():
                with f.open(newline="", encoding="utf-8") as fh:
                    for r in csv.DictReader(fh):
                        rows.setdefault(int(r["feature"]), []).append(r)
            tables.append(rows)
        return cls(p, meta, *tables)

    def top(self, feature: int) -> list[dict]:
        return self._top.get(int(feature), [])

    def ranges(self, feature: int) -> list[dict]:
        return self._ranges.get(int(feature), [])

    def example_features(self) -> list[int]:
        """The features with at least one example row (top or range)."""
        return sorted(set(self._top) | set(self._ranges))
