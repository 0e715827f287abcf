"""The public Python API of steve_qt (``import steve_qt as sq``); the README's "Python API" lists it.

Every function here is a thin face over the core functions the CLI and the window use
(``core.models.pipeline``, ``npzio``, ``actnpz``, ``features.index``, ``features.sae``,
``features.audio``, ``interventions.tables``, ``figures.attention``): arrays come back as plain
numpy, tables as :class:`Table` rows with ``to_pandas()``. Bad arguments raise :class:`Error`
(``steve_qt.core.errors.SteveError``) whose message is the CLI's one-line message; files are
written atomically and never overwritten without ``force=True``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np

from .core.errors import SteveError as Error
from .core.features import index as _index
from .core.models import pipeline as _pipeline
from .core.models.adapters import DEFAULT_SPEC

__all__ = ["Error", "load_model", "Model", "load_utterance", "Utterance", "Extraction",
           "Attention", "Word", "load_extraction", "Activations", "load_activations",
           "FeatureIndex", "build_index", "corpus_stats", "CorpusStats", "probe", "window",
           "ablate", "steer", "lens", "Lens", "lm", "figure", "feature_figure", "feature_audio",
           "Sound", "Table"]

PathLike = str | os.PathLike


# --- tables ----------------------------------------------------------------------------------
class Table(list):
    """Rows (tuples, or dataclass records such as index examples) with column names.

    ``to_pandas()`` gives a DataFrame (numeric columns as numbers); ``to_csv()`` the CSV text the
    CLI writes; ``save(path)`` writes that CSV atomically.
    """

    def __init__(self, columns: Sequence[str], rows: Iterable = (), title: str = ""):
        super().__init__(rows)
        self.columns = tuple(columns)
        self.title = title

    def tuples(self) -> list[tuple]:
        return [tuple(asdict(r)[c] for c in self.columns) if is_dataclass(r) else tuple(r)
                for r in self]

    def to_pandas(self):
        import pandas as pd

        df = pd.DataFrame(self.tuples(), columns=list(self.columns))
        for c in df.columns:
            if not pd.api.types.is_numeric_dtype(df[c]) and not (df[c] == "").all():
                try:
                    df[c] = pd.to_numeric(df[c])
                except (ValueError, TypeError):
                    pass
        return df

    def to_csv(self) -> str:
        from .core.fileio import csv_text

        return csv_text(self.columns, self.tuples())

    def save(self, path: PathLike, force: bool = False) -> Path:
        from .core.fileio import write_csv

        return write_csv(path, self.columns, self.tuples(), force=force)

    def __repr__(self) -> str:
        head = f"{self.title + ': ' if self.title else ''}{len(self)} rows x {self.columns}"
        lines = [head] + [f"  {t}" for t in self.tuples()[:8]]
        return "\n".join(lines + (["  ..."] if len(self) > 8 else []))

    def _repr_html_(self) -> str:
        try:
            frame = self.to_pandas()
        except ImportError:
            return f"<pre>{html.escape(repr(self))}</pre>"
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        return title + frame._repr_html_()


# --- utterances ------------------------------------------------------------------------------
class Utterance(_pipeline.Utterance):
    """Audio (``.audio``: samples at the model rate, the original for listening) and the
    alignment found beside it (``.alignment``: tiers ``phones`` and ``words``, or None)."""

    @property
    def samples(self) -> np.ndarray:
        return self.audio.samples

    @property
    def rate(self) -> int:
        return self.audio.rate

    @property
    def duration(self) -> float:
        return self.audio.duration

    def __repr__(self) -> str:
        al = f"{self.alignment_kind} alignment" if self.alignment is not None else "no alignment"
        name = self.audio.path.name if self.audio.path else "(array)"
        return f"Utterance({name}, {self.duration:.2f} s, {al})"


def load_utterance(path: PathLike, alignment: str = "auto", alignment_file: PathLike | None = None,
                   phone_tier: str | None = None, word_tier: str | None = None) -> Utterance:
    """Audio and its alignment, found beside it as the CLI finds it (``.phn``/``.wrd`` or a
    ``.TextGrid``; ``alignment``: auto, timit, textgrid or none)."""
    if alignment not in ("auto", "timit", "textgrid", "none"):
        raise Error(f"alignment must be auto, timit, textgrid or none, not {alignment!r}")
    u = _pipeline.open_utterance(path, alignment=alignment, alignment_path=alignment_file,
                                 phone_tier=phone_tier, word_tier=word_tier)
    return Utterance(u.audio, u.alignment, u.alignment_kind)


def _utterance(utt) -> Utterance:
    if isinstance(utt, _pipeline.Utterance):
        return utt if isinstance(utt, Utterance) else Utterance(utt.audio, utt.alignment,
                                                                utt.alignment_kind)
    if isinstance(utt, (str, os.PathLike)):
        return load_utterance(utt)
    raise Error(f"expected an utterance (steve_qt.load_utterance) or an audio path, "
                f"not {type(utt).__name__}")


# --- attention -------------------------------------------------------------------------------
class Word(NamedTuple):
    """A word of the model's transcript with its time span in seconds of the file."""

    text: str
    start: float
    end: float


def _tier(alignment, name: str):
    return alignment.tiers.get(name) if alignment is not None else None


class Attention:
    """Every layer's and head's attention of one component (encoder, cross or decoder).

    ``weights`` and ``scores`` are (N layers, 1, M heads, Q, K) float16 numpy arrays (the npz
    schema's ``attention`` and ``scores``); ``padding_mass`` (N, M, Q) the softmax mass sent to
    cropped padding keys; ``measures`` name -> (N, 1, M or 1, Q, K) context-mixing measures.
    """

    def __init__(self, maps, alignment=None):
        self.maps = maps  # steve_qt.core.attention.maps.AttentionMaps
        self.alignment = alignment

    weights = property(lambda self: self.maps.weights)
    scores = property(lambda self: self.maps.scores)
    padding_mass = property(lambda self: self.maps.padding_mass)
    measures = property(lambda self: self.maps.measures)
    component = property(lambda self: self.maps.component)
    model = property(lambda self: self.maps.model)
    num_layers = property(lambda self: self.maps.num_layers)
    num_heads = property(lambda self: self.maps.num_heads)
    shape = property(lambda self: self.maps.weights.shape)

    @property
    def query_times(self) -> np.ndarray | None:
        """(Q,) centre of each query frame in seconds (None for token queries)."""
        g = self.maps.query_grid
        return None if g is None else np.asarray(g.center_seconds(np.arange(self.shape[3])), float)

    @property
    def key_times(self) -> np.ndarray | None:
        g = self.maps.key_grid
        return None if g is None else np.asarray(g.center_seconds(np.arange(self.shape[4])), float)

    def head(self, layer: int, head: int | None = None, kind: str = "weights") -> np.ndarray:
        """(Q, K) float32 map of one head (None: the mean of heads) or ``layer="rollout"``."""
        from .core.attention.analysis import layer_map

        return layer_map(self.maps, layer, head, kind)[0]

    def rollout(self, upto: int | None = None) -> np.ndarray:
        """Attention rollout through layers 0..upto, (Q, K) float32 (self-attention only)."""
        try:
            return self.maps.rollout(upto)
        except ValueError as exc:
            raise Error(str(exc)) from None

    def head_stats(self, ks: Sequence[int] | None = None):
        """Per layer x head statistics (the rows of ``steve-qt stats``'s head_stats.csv, for
        this utterance): layer, head, mean_distance_ms, entropy_bits, local_share_K, ..."""
        from .core.attention.analysis import DEFAULT_KS, head_statistics

        stats = head_statistics(self.maps, self.alignment, DEFAULT_KS if ks is None else ks)
        rows = stats.to_rows()
        columns = tuple(rows[0]) if rows else tuple(stats.columns())
        return Table(columns, [tuple(r[c] for c in columns) for r in rows], "head statistics")

    def phone_matrix(self, layer: int | str, head: int | None = None, kind: str = "weights",
                     tier: str = "phones"):
        """Interval x interval matrix of one head (None: the mean of heads) or ``"rollout"``
        over the alignment's ``tier`` (phones or words): ``.mean``, ``.total`` (Iq, Ik) and
        ``.query_labels``/``.key_labels`` (``steve-qt extract --csv`` holds the same numbers)."""
        from .core.attention.analysis import aggregate_intervals

        t = _tier(self.alignment, tier)
        if t is None:
            raise Error(f"the utterance has no {tier} alignment")
        return aggregate_intervals(self.maps, layer, head, t, kind=kind)

    def _axis_coords(self, axis: str, n: int) -> dict:
        grid = getattr(self.maps, f"{axis}_grid")
        if grid is None:
            labels = getattr(self.maps, f"{axis}_labels") or [""] * n
            return {f"{axis}_token": (axis, list(labels))}
        from .core.attention.analysis import frame_labels

        out = {f"{axis}_time": (axis, np.asarray(grid.center_seconds(np.arange(n)), float))}
        for name in ("phones", "words"):
            t = _tier(self.alignment, name)
            if t is not None:
                out[f"{axis}_{name[:-1]}"] = (axis, frame_labels(grid, n, t))
        return out

    def to_xarray(self, kind: str = "weights"):
        """``xarray.DataArray`` of ``kind`` (weights, scores or a measure) with dims layer,
        head, query, key; coords ``query_time``/``key_time`` (frame centres in seconds, from
        ``steve_qt.core.frames``) or ``query_token``/``key_token`` for token axes, and
        ``query_phone``/``key_phone`` (``..._word``) where an alignment exists."""
        import xarray as xr

        if not self.maps.has_kind(kind):
            raise Error(f"{self.maps.title} holds no {kind.replace('_', ' ')} maps")
        arr = self.maps._kind_array(kind, None)[0][:, 0]  # (N, M, Q, K)
        n, m, q, k = arr.shape
        coords = {"layer": np.arange(n), "head": np.arange(m)}
        coords |= self._axis_coords("query", q) | self._axis_coords("key", k)
        return xr.DataArray(arr, dims=("layer", "head", "query", "key"), coords=coords,
                            name=kind, attrs={"model": self.model, "component": self.component,
                                              "window": self.maps.window})

    def __repr__(self) -> str:
        n, _, m, q, k = self.shape
        return (f"Attention({self.component}, {self.model}: {n} layers x {m} heads, "
                f"{q} x {k})")


class Extraction:
    """What one model run gave for one utterance: attention per component, the transcript, the
    word timings and (when asked) activations. ``ex["encoder"]`` is an :class:`Attention`."""

    def __init__(self, core, utterance: Utterance | None = None, alignment=None,
                 audio_path: PathLike | None = None, activations: "Activations | None" = None):
        self.core = core  # steve_qt.core.models.adapters.Extraction
        self.utterance = utterance
        self.alignment = alignment if alignment is not None or utterance is None \
            else utterance.alignment
        self.audio_path = audio_path if audio_path is not None or utterance is None \
            else utterance.path
        self.activations = activations

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.core.maps)

    @property
    def model(self) -> str:
        return self.core.model

    @property
    def transcript(self) -> str:
        return self.core.transcript.text

    @property
    def words(self) -> list[Word]:
        return [Word(w.text, float(w.start_s), float(w.end_s)) for w in self.core.transcript.words]

    @property
    def tokens(self) -> list[int]:
        return list(self.core.transcript.tokens)

    def __getitem__(self, component: str) -> Attention:
        if component not in self.core.maps:
            raise Error(f"no {component!r} attention in this extraction (it has: "
                        f"{', '.join(self.core.maps) or 'none'})")
        return Attention(self.core.maps[component], self.alignment)

    def __contains__(self, component: str) -> bool:
        return component in self.core.maps

    def save(self, path: PathLike, component: str | None = None, force: bool = False) -> Path:
        """Write one component (default: the first) in ``steve-qt extract``'s npz schema
        (``steve_qt.core.models.npzio``)."""
        from .core.models.npzio import save_npz

        comp = component or next(iter(self.core.maps), "encoder")
        return save_npz(path, self.core, comp, alignment=self.alignment,
                        audio_path=self.audio_path, force=force)

    def save_csv(self, path: PathLike, component: str | None = None, force: bool = False) -> Path:
        """Attention aggregated over the alignment's phone intervals, one row per (layer, head,
        query interval, key interval): ``steve-qt extract --csv``."""
        from .core.attention.export import write_interval_csv

        comp = component or next(iter(self.core.maps), "encoder")
        if self.alignment is None or self.alignment.phones is None:
            raise Error("--csv needs a phone alignment (none found beside the audio)",
                        self.audio_path)
        return write_interval_csv(path, self[comp].maps, self.alignment, force=force)

    def save_textgrid(self, path: PathLike, force: bool = False) -> Path:
        """The alignment's tiers plus the model's words as a Praat TextGrid
        (``steve-qt extract --textgrid``)."""
        from .core.attention.export import write_textgrid_export

        return write_textgrid_export(path, self.alignment, self.core.transcript.words,
                                     self._duration(), force=force,
                                     words_tier_name=f"{self._model_name()} words")

    def save_eaf(self, path: PathLike, force: bool = False) -> Path:
        """The same tiers as an ELAN .eaf (``steve-qt extract --eaf``)."""
        from .core.attention.export import write_eaf_export

        return write_eaf_export(path, self.alignment, self.core.transcript.words,
                                self._duration(), force=force,
                                words_tier_name=f"{self._model_name()} words",
                                media=None if self.audio_path is None else str(self.audio_path))

    def _duration(self) -> float:
        m = next(iter(self.core.maps.values()), None)
        if self.utterance is not None:
            return self.utterance.audio.duration
        if m is None:
            raise Error("this extraction holds no attention and no audio: its duration is unknown")
        return m.num_samples / m.sample_rate

    def _model_name(self) -> str:
        return self.model.split(":")[0].split()[0] or "model"

    def __repr__(self) -> str:
        parts = ", ".join(f"{c} {'x'.join(map(str, m.weights.shape))}"
                          for c, m in self.core.maps.items())
        text = self.transcript
        return (f"Extraction({self.model}; {parts or 'no attention'}"
                + (f"; {text!r}" if text else "") + ")")

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>"


def load_extraction(path: PathLike) -> Extraction:
    """An npz written by ``steve-qt extract`` or :meth:`Extraction.save` (one component); the
    audio named in it is loaded when the file is still there (for figures)."""
    from .core.models.adapters import Extraction as CoreExtraction
    from .core.models.npzio import load_npz
    from .core.speech.audio import load_audio

    c = load_npz(path)
    maps = c.maps
    core = CoreExtraction({maps.component: maps}, c.transcript, maps.model, maps.window,
                          maps.num_windows, dict(maps.meta))
    utt = None
    audio_path = Path(c.audio_path) if c.audio_path else None
    if audio_path is not None and audio_path.is_file():
        utt = Utterance(load_audio(audio_path), c.alignment, None)
    return Extraction(core, utt, c.alignment, c.audio_path or None)


# --- activations -----------------------------------------------------------------------------
class Activations(Mapping):
    """Site name -> (T, D) float32 activations of one utterance (frames sites: one row per audio
    frame, cropped as the attention maps; tokens sites: one row per transcript token).
    ``frame_times`` (T,) are the frame centres in seconds of the file."""

    def __init__(self, core, sites, utterance: Utterance | None = None):
        self.core = core  # steve_qt.core.models.adapters.Extraction
        self.sites = list(sites)  # steve_qt.core.models.adapters.Site
        self.utterance = utterance
        self._arrays = {s.name: core.activations[s.name] for s in self.sites}

    def __getitem__(self, site: str) -> np.ndarray:
        if site not in self._arrays:
            raise Error(f"no activations of site {site!r} (these hold: {', '.join(self._arrays)})")
        return self._arrays[site]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    @property
    def grid(self):
        return self.core.frame_grid

    @property
    def model(self) -> str:
        return self.core.model

    @property
    def frame_times(self) -> np.ndarray:
        rows = [a.shape[0] for s, a in zip(self.sites, self._arrays.values()) if s.axis == "frames"]
        n = rows[0] if rows else 0
        if self.grid is None:
            return np.zeros(0)
        return np.asarray(self.grid.center_seconds(np.arange(n)), dtype=np.float64)

    @property
    def token_labels(self) -> list[str]:
        return list(self.core.transcript.token_texts or [])

    def save(self, path: PathLike, force: bool = False) -> Path:
        """Write ``steve-qt activations``'s npz schema (``steve_qt.core.models.actnpz``)."""
        from .core.models.actnpz import save_activations

        u = self.utterance
        return save_activations(path, self.core, self.sites,
                                alignment=u.alignment if u is not None else None,
                                audio_path=u.path if u is not None else None, force=force)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape[0]}x{v.shape[1]}" for k, v in self._arrays.items())
        return f"Activations({self.model}; {shapes})"


def load_activations(path: PathLike) -> dict[str, np.ndarray]:
    """site -> (T, D) float16 from an npz of ``steve-qt activations``."""
    from .core.models.actnpz import load_activation_file

    return dict(load_activation_file(path).activations)


# --- models ----------------------------------------------------------------------------------
class Model:
    """A loaded speech transformer (``load_model``): extract attention and activations."""

    def __init__(self, adapter, spec: str):
        self.adapter = adapter  # the adapter plugin's object (steve_qt.core.models.adapters)
        self.spec = spec

    @property
    def name(self) -> str:
        return self.adapter.model_id

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(self.adapter.components)

    @property
    def sites(self) -> list:
        """The sites ``activations`` reads (``Site``: name, dim, axis, layer, kind)."""
        return list(self.adapter.list_sites())

    def sites_table(self) -> Table:
        return Table(("name", "dim", "axis", "layer", "kind"),
                     [(s.name, s.dim, s.axis, s.layer, s.kind) for s in self.sites], "sites")

    def extract(self, utt, components: Sequence[str] | str | None = None,
                measures: Sequence[str] | str = (), sites: Sequence[str] = (),
                window: int = 0) -> Extraction:
        """Attention of ``components`` (default: all the model has) for one utterance (or audio
        path), with encoder context-mixing ``measures`` (norm, value-zeroing, grad) and the
        activations of ``sites`` from the same run."""
        from .core.attention.measures import parse_measures
        from .core.models.sites import validate_sites

        comps = [components] if isinstance(components, str) else \
            list(components) if components is not None else list(self.components)
        for c in comps:
            if c not in self.components:
                raise Error(f"{self.name} has no {c!r} attention (it has: "
                            f"{', '.join(self.components)})")
        measures = parse_measures(measures)
        if measures:
            _pipeline.check_measures(self.adapter, measures,
                                     "encoder" if "encoder" in comps else comps[0])
        chosen = validate_sites(sites, self.sites) if sites else []
        u = _utterance(utt)
        ex = _pipeline.extract(self.adapter, u.audio, components=comps, window=window,
                               sites=[s.name for s in chosen])
        if measures:
            _pipeline.add_measures(self.adapter, u.audio, ex, measures)
        return Extraction(ex, u, activations=Activations(ex, chosen, u) if chosen else None)

    def activations(self, utt, sites: Sequence[str] | str, window: int = 0) -> Activations:
        """The (T, D) activations of ``sites`` (module paths, e.g. ``encoder.blocks.2.mlp.1``;
        ``Model.sites`` lists them). Frames sites alone run the encoder only."""
        from .core.models.sites import validate_sites

        chosen = validate_sites(sites, self.sites)
        u = _utterance(utt)
        ex = _pipeline.extract(self.adapter, u.audio, components=(), window=window,
                               sites=[s.name for s in chosen])
        return Activations(ex, chosen, u)

    def transcribe(self, utt, window: int = 0) -> str:
        """The model's transcript of one utterance (interventions' greedy decoding)."""
        from .core.interventions.tables import reference_transcript, require_interventions

        require_interventions(self.adapter)
        return reference_transcript(self.adapter, _utterance(utt).samples, window)

    def __repr__(self) -> str:
        return f"Model({self.name}; components {', '.join(self.components)})"


def load_model(spec: str | None = None, device: str | None = None) -> Model:
    """A model by the CLI's spec: ``whisper`` (embedded tiny.en, the default),
    ``whisper:NAME_OR_PATH``, ``wav2vec2:DIR_OR_ID``; ``device`` auto, cpu, cuda or cuda:N.
    Loaded once per process and device."""
    from .core.models.devices import resolve

    resolve(device)  # a bad device name fails with the CLI's message
    spec = _pipeline.normalise_spec(spec or DEFAULT_SPEC)
    return Model(_pipeline.get_adapter(spec, device), spec)


def _model(model) -> Model:
    if isinstance(model, Model):
        return model
    if isinstance(model, str) or model is None:
        return load_model(model)
    raise Error(f"expected a model (steve_qt.load_model) or a model spec, "
                f"not {type(model).__name__}")


# --- feature index ---------------------------------------------------------------------------
class FeatureIndex(_index.FeatureIndex):
    """A feature index (``steve-qt features index`` or :func:`build_index`), memory-mapped.

    ``top(f)``, ``ranges(f)`` and ``selectivity(f)`` return :class:`Table` rows (``Example``:
    feature, rank, file, frame, time_s, activation, phone, word, ...), as ``steve-qt features
    top`` prints them.
    """

    EXAMPLE_COLUMNS = ("rank", "file", "frame", "time_s", "activation", "phone", "word")
    RANGE_COLUMNS = ("bin", "lo", "hi") + EXAMPLE_COLUMNS
    PHONE_COLUMNS = ("phone", "frames", "n_files", "mean", "std", "rest_mean", "rest_std",
                     "selectivity", "auroc", "supported", "best")

    def top(self, feature: int) -> Table:
        return Table(self.EXAMPLE_COLUMNS, super().top(feature), f"feature {feature}: top")

    def ranges(self, feature: int) -> Table:
        return Table(self.RANGE_COLUMNS, super().ranges(feature), f"feature {feature}: ranges")

    def selectivity(self, feature: int) -> Table:
        return Table(self.PHONE_COLUMNS, super().selectivity(feature),
                     f"feature {feature}: phones")

    def examples_audio(self, feature: int, pad_s: float | None = None,
                       gap_s: float | None = None) -> "Sound":
        """The feature's top examples one after another (peak +- ``pad_s``, ``gap_s`` of
        silence between), as the window's Play Examples plays them."""
        from .core.features import audio as fa
        from .core.speech.audio import load_audio

        def samples_of(rel):
            p = self.corpus / rel
            return load_audio(p).samples if p.is_file() else None

        buf, pieces = fa.montage(self.top(feature), samples_of, 16000,
                                 fa.PAD_S if pad_s is None else pad_s,
                                 fa.GAP_S if gap_s is None else gap_s)
        return Sound(buf, 16000, f"top examples of feature {feature} of {self.meta['site']}")

    def __repr__(self) -> str:
        m = self.meta
        return (f"FeatureIndex({self.path}: {m['num_features']} features of {m['site']} "
                f"({m['model']}), {m['files_used']} files)")


def build_index(corpus: PathLike, out: PathLike, site: str | None = None, model=DEFAULT_SPEC,
                sae: PathLike | None = None, top_k: int = 20, bins: int = 5,
                jobs: int | None = None, scheduler: str | None = None, timeout: float = 10.0,
                cache: PathLike | None = None, phone_tier: str | None = None,
                word_tier: str | None = None, force: bool = False,
                progress: bool = False) -> FeatureIndex:
    """Build a feature index of ``site`` (or of the SAE in folder ``sae``) over every audio file
    under ``corpus`` into the new folder ``out`` (``steve-qt features index``). ``jobs=1`` runs
    in this process, reusing a loaded model; ``progress=True`` shows a tqdm bar."""
    from .core.features.runner import tqdm_progress

    spec = model.spec if isinstance(model, Model) else _pipeline.normalise_spec(model)
    bar, close = tqdm_progress("steve_qt.build_index") if progress else (None, lambda: None)
    try:
        _index.build_index(corpus, site, out, spec=spec, sae_dir=None if sae is None else str(sae),
                           top_k=top_k, bins=bins, jobs=jobs, scheduler=scheduler,
                           cache_dir=cache, force=force, phone_tier=phone_tier,
                           word_tier=word_tier, timeout=timeout, progress=bar)
    finally:
        close()
    return FeatureIndex.open(out)


# --- corpus statistics and probes ------------------------------------------------------------
def _csv_table(text: str, title: str) -> Table:
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    return Table(rows[0] if rows else (), rows[1:], title)


@dataclass
class CorpusStats:
    """``steve-qt stats``'s outputs: ``summary`` text and one :class:`Table` per CSV file
    (``head_stats.csv``, ``class_manner.csv``, ...), plus the run's ``files`` used and failed."""

    summary: str
    tables: dict
    used: int
    failed: int

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    def __repr__(self) -> str:
        return f"CorpusStats({self.used} files used, {self.failed} failed; {', '.join(self.tables)})"


def corpus_stats(folder: PathLike, model=DEFAULT_SPEC, component: str = "encoder",
                 jobs: int | None = None, scheduler: str | None = None, timeout: float = 10.0,
                 cache: PathLike | None | bool = True, phone_tier: str | None = None,
                 word_tier: str | None = None, local_k: int = 5, local_share: float = 0.5,
                 progress: bool = False) -> CorpusStats:
    """Head statistics and phone-class matrices over every aligned audio file under ``folder``
    (``steve-qt stats``; ``cache=False`` neither reads nor writes the extraction cache)."""
    from .core.features.corpus import corpus_tables, default_cache_dir, run_corpus
    from .core.features.runner import tqdm_progress

    if jobs is not None and jobs < 1:
        raise Error(f"--jobs must be at least 1, got {jobs}")
    if not 0.0 < local_share <= 1.0:
        raise Error(f"--local-share must be in (0, 1], got {local_share}")
    if not Path(folder).is_dir():
        raise Error("is a file, not a folder" if Path(folder).exists() else "folder not found",
                    folder)
    spec = model.spec if isinstance(model, Model) else _pipeline.normalise_spec(model)
    cache_dir = None if cache is False else default_cache_dir() if cache in (True, None) else \
        Path(cache)
    bar, close = tqdm_progress("steve_qt.corpus_stats") if progress else (None, lambda: None)
    try:
        result = run_corpus(folder, spec, component, jobs=jobs, cache_dir=cache_dir,
                            phone_tier=phone_tier, word_tier=word_tier, progress=bar,
                            scheduler=scheduler, timeout=timeout)
    finally:
        close()
    texts = corpus_tables(result, local_k, local_share)
    tables = {name: _csv_table(text, name) for name, text in texts.items()
              if name.endswith(".csv")}
    return CorpusStats(texts.get("summary.txt", ""), tables, len(result.used),
                       len(result.failed))


def probe(corpus: PathLike, out: PathLike, model=DEFAULT_SPEC, sites: Sequence[str] | None = None,
          folds: int = 5, c: float = 1.0, jobs: int | None = None, scheduler: str | None = None,
          timeout: float = 10.0, cache: PathLike | None = None, phone_tier: str | None = None,
          force: bool = False, **options) -> Table:
    """Layer-wise linear probes of phone, phone class, manner and voicing (``steve-qt probe``):
    writes the folder ``out`` and returns probe.csv's rows."""
    from .core.features.probes import probe_csv, run_probes

    spec = model.spec if isinstance(model, Model) else _pipeline.normalise_spec(model)
    rows = run_probes(corpus, out, spec=spec, sites=sites, folds=folds, c=c, jobs=jobs,
                      scheduler=scheduler, cache_dir=cache, force=force, phone_tier=phone_tier,
                      timeout=timeout, **options)
    return _csv_table(probe_csv(rows), "probes")


def phones(corpus: PathLike | None = None, phone_tier: str | None = None) -> Table:
    """The phone normalisation every statistic uses (``steve-qt phones``): without ``corpus``
    the mapping tables (kind, label, normalised); with it every raw label of the corpus'
    alignments with its normalised label, intervals and files."""
    from .core.features.corpus import phone_inventory
    from .core.speech.phone_sets import phone_table

    if corpus is None:
        return Table(("kind", "label", "normalised"), phone_table(), "phone normalisation")
    rows, aligned, total = phone_inventory(corpus, phone_tier)
    return Table(("label", "normalised", "intervals", "files"), rows,
                 f"{len(rows)} raw labels in {aligned} aligned files of {total}")


# --- sparse autoencoders over a corpus -------------------------------------------------------
def _spec_or_none(model) -> str | None:
    if model is None:
        return None
    return model.spec if isinstance(model, Model) else _pipeline.normalise_spec(model)


def train_saes(corpus: PathLike, out: PathLike, sites: Sequence[str] | str | None = None,
               model=None, **options) -> dict:
    """``steve-qt sae train``: one SAE per site, trained in one pass over the corpus per epoch,
    written in SAELens's format (one site to ``out``, several to ``out/<site>/``); reproducible
    and resumable (the same call continues from the checkpoint). ``options``: the command's
    (``kind``, ``expansion``, ``k``, ``l1``, ``epochs``, ``lr``, ``batch``, ``seed``,
    ``shuffle_rows``, ``checkpoint_seconds``, ``holdout``, ``wer_files``, ``device``,
    ``precision`` (``auto``, ``float32``, ``bfloat16``, ``float16``), ``jobs``,
    ``scheduler``, ``timeout``, ``cache``, ``force``). Returns site -> report (``"sae"``: the
    :class:`SAE`, ``"heldout"``: variance explained, L0, dead latents, ...)."""
    from .core.features.sae_jobs import train_on_corpus

    return train_on_corpus(corpus, out, sites=sites, model=_spec_or_none(model), **options)


def evaluate_sae(sae_dir: PathLike, out: PathLike, corpus: PathLike | None = None, model=None,
                 **options) -> dict:
    """``steve-qt sae eval``: variance explained, L0, dead and dense latents, WER/CER with the
    reconstruction spliced in and loss recovered, on held-out files; returns eval.json."""
    from .core.features.sae_jobs import evaluate_sae as run

    return run(sae_dir, out, corpus, model=_spec_or_none(model), **options)


def compare_saes(sae_a: PathLike, sae_b: PathLike, out: PathLike | None = None, seed: int = 0,
                 force: bool = False) -> dict:
    """``steve-qt sae compare``: latents matched one to one by decoder cosine (Hungarian), the
    shares above 0.7 and 0.9 and a random SAE's as the floor; returns compare.json."""
    from .core.features.sae_jobs import compare_sae_dirs

    return compare_sae_dirs(sae_a, sae_b, out, seed=seed, force=force)


def erase_concept(sae_dir: PathLike, corpus: PathLike, concept: str, out: PathLike, model=None,
                  **options) -> dict:
    """``steve-qt sae erase``: how many features must be zeroed to erase ``concept``
    (``class=vowel``, ``phone=s``, ...) from the reconstruction; returns erase.json."""
    from .core.features.sae_jobs import erase_concept as run

    return run(sae_dir, corpus, concept, out, model=_spec_or_none(model), **options)


# --- interventions ---------------------------------------------------------------------------
def _intervention_model(model) -> Model:
    from .core.interventions.tables import require_interventions

    m = _model(model)
    require_interventions(m.adapter)
    return m


def window(model, utt, k: Sequence[int] | int | str, layers: Sequence[int] | None = None,
           window: int = 0) -> Table:
    """Transcripts with encoder self-attention limited to +-k frames (``steve-qt window``): one
    row per k (k, layers, transcript, wer, diff [, wer_alignment, diff_alignment]) against the
    unmasked transcript (``Table.title``) and the alignment's words."""
    from .core.interventions.tables import (alignment_text, parse_ks, parse_layers, window_sweep,
                                            window_table)

    ks = parse_ks(k if isinstance(k, str) else ",".join(map(str, np.atleast_1d(k))))
    layer_list = parse_layers(None if layers is None else ",".join(map(str, layers)))
    m = _intervention_model(model)
    u = _utterance(utt)
    if layer_list is not None and max(layer_list) >= m.adapter.num_layers("encoder"):
        raise Error(f"encoder layer {max(layer_list)} does not exist "
                    f"(layers 0 to {m.adapter.num_layers('encoder') - 1})")
    reference, rows = window_sweep(m.adapter, u.samples, ks, layer_list, window,
                                   alignment_words=alignment_text(u.alignment))
    header, table = window_table(rows)
    return Table(header, table, f"unmasked: {reference}")


def _variants(variants, title: str) -> Table:
    from .core.interventions.tables import VARIANT_HEADER

    return Table(VARIANT_HEADER, [v.row() for v in variants], title)


def ablate(model, utt, span: tuple[float, float], fill: str = "padding",
           window: int = 0) -> Table:
    """Transcribe with the encoder frames of ``span`` (seconds) replaced by padding (or
    silence) frames (``steve-qt ablate``): rows original and the edited transcript."""
    from .core.interventions.tables import span_frames, span_removal

    u = _utterance(utt)
    span_frames(*span, len(u.samples), window)
    m = _intervention_model(model)
    return _variants(span_removal(m.adapter, u.samples, *span, fill=fill, window=window),
                     f"ablate {span[0]:g}-{span[1]:g} s")


def _steer_sae(m: Model, site: str | None, feature: int, sae):
    """(the SAE or None, the site), checked against the model: ``sae`` may be an SAE or its
    folder; the site defaults to the SAE's ``hook_name``."""
    from .core.features.sae import SAE, check_site, load_sae
    from .core.interventions.tables import check_feature

    if sae is not None and not isinstance(sae, SAE):
        sae_dir, sae = sae, load_sae(sae)
    else:
        sae_dir = None
    site = site or (sae.hook_name if sae is not None else None)
    if not site:
        raise Error("give site (a module path such as encoder.blocks.2.mlp.1)")
    if sae is not None:
        check_site(sae, site, m.adapter.site_dim(site), sae_dir)
    check_feature(m.adapter, site, feature, sae)
    return sae, site


def steer(model, utt, feature: int, scale: float, site: str | None = None, sae=None,
          span: tuple[float, float] | None = None, window: int = 0) -> Table:
    """Scale one neuron of ``site`` (or one feature of ``sae``: an SAE or its folder) by
    ``scale`` and decode (``steve-qt steer``): rows original, (reconstruction), steered."""
    from .core.interventions.tables import span_frames
    from .core.interventions.tables import steer as steer_rows

    u = _utterance(utt)
    if span is not None:
        span_frames(*span, len(u.samples), window)
    m = _intervention_model(model)
    sae, site = _steer_sae(m, site, feature, sae)
    return _variants(steer_rows(m.adapter, u.samples, site, feature, scale,
                                span=tuple(span) if span else None, sae=sae, window=window),
                     f"feature {feature} of {site} x {scale:g}")


def steer_corpus(model, corpus: PathLike, feature: int, scale: float, site: str | None = None,
                 sae=None) -> Table:
    """``steve-qt steer CORPUS``: :func:`steer` on every audio file of a folder tree; per file
    and in total (last row) the WER change and the words that changed."""
    from .core.features.corpus import find_audio_files
    from .core.interventions.tables import STEER_CORPUS_HEADER, steer_corpus as run
    from .core.interventions.tables import steer_corpus_rows

    m = _intervention_model(model)
    sae_obj, site = _steer_sae(m, site, feature, sae)
    root = Path(corpus)
    files = sorted(find_audio_files(root), key=lambda f: Path(f).relative_to(root).as_posix())
    if not files:
        raise Error("no audio files (WAV, FLAC, OGG, ...) in this folder tree", root)
    rows, total = run(m.adapter, files, site, feature, scale, sae=sae_obj)
    return Table(STEER_CORPUS_HEADER, steer_corpus_rows(rows, total), "steering over a corpus")


@dataclass
class Lens:
    """``steve-qt lens``'s two tables and the transcript they start from."""

    transcript: str
    encoder: Table  # layer, transcript, wer
    decoder: Table  # layer, position, token, top_tokens, top_probs


def lens(model, utt, top: int = 5, window: int = 0) -> Lens:
    """Encoder logit lens (each layer's output through ln_post, decoded) and decoder logit lens
    (each layer's top next tokens at every position)."""
    from .core.interventions.tables import (DECODER_LENS_HEADER, ENCODER_LENS_HEADER,
                                            decoder_lens_rows, decoder_lens_table, encoder_lens,
                                            encoder_lens_rows)

    if top <= 0:
        raise Error(f"--top must be positive, got {top}")
    u = _utterance(utt)
    m = _intervention_model(model)
    t = m.adapter.transcribe(u.samples, window=window)
    rows = encoder_lens(m.adapter, u.samples, window, reference=t.text)
    table = decoder_lens_table(m.adapter, u.samples, t.tokens, window, top=top)
    return Lens(t.text, Table(ENCODER_LENS_HEADER, encoder_lens_rows(rows), "encoder lens"),
                Table(DECODER_LENS_HEADER, decoder_lens_rows(table), "decoder lens"))


def lm(model, prompt: str | None = None, neighbours: str | None = None, top: int = 20) -> Table:
    """The decoder with padding-only audio as a language model (``steve-qt lm``): the next
    tokens after ``prompt`` and the embedding neighbours of ``neighbours``."""
    from .core.interventions.tables import LM_HEADER, check_lm_args, lm_rows

    check_lm_args(prompt, neighbours, top)
    m = _intervention_model(model)
    return Table(LM_HEADER, lm_rows(m.adapter, prompt, neighbours, top), "decoder as an LM")


# --- figures ---------------------------------------------------------------------------------
def figure_data(ex: Extraction):
    """The FigureData ``steve-qt figure`` draws from: maps, waveform (when the audio is there),
    alignment and the model's words."""
    from .core.figures.attention import FigureData

    u = ex.utterance
    data = FigureData(dict(ex.core.maps), alignment=ex.alignment,
                      words=list(ex.core.transcript.words),
                      sample_rate=next(iter(ex.core.maps.values())).sample_rate
                      if ex.core.maps else 16000)
    if u is not None:
        data.samples, data.sample_rate = u.audio.samples, u.audio.rate
    else:
        where = f"{ex.audio_path} not found" if ex.audio_path else "the .npz names no audio file"
        data.notes.append(f"waveform omitted: {where}")
    return data


def figure(ex: Extraction, layer: int | str = 0, head: int | None = None,
           component: str | None = None, kind: str = "weights", out: PathLike | None = None,
           force: bool = False, **options):
    """The matplotlib Figure ``steve-qt figure`` draws (same options: ``grid=True``,
    ``profile_query=SECONDS``, ``profile_token=N``, ``scale``, ``colormap``, ``span``, ``width``,
    ``dpi``, ``title``, ``spectrogram``, ``labels``, ``model_words``); ``out`` also writes it
    (.pdf, .svg, .png) byte for byte as the CLI does."""
    from .core.figures.attention import draw_figure, figure_spec, format_of, write_figure
    from .core.fileio import atomic_path, check_writable

    if not isinstance(ex, Extraction):
        raise Error(f"expected an Extraction (Model.extract, load_extraction), "
                    f"not {type(ex).__name__}")
    if out is not None:
        format_of(out)
        check_writable(out, force)
    comp = component or next(iter(ex.core.maps), "encoder")
    if comp not in ex.core.maps:
        raise Error(f"the model produced no {comp!r} attention (it has: "
                    f"{', '.join(ex.core.maps) or 'none'})")
    try:
        spec = figure_spec(component=comp, layer=layer, head=head, kind=kind,
                           maps=ex.core.maps[comp], **options)
    except TypeError as exc:
        raise Error(f"figure: {exc}") from None
    fig = draw_figure(spec, figure_data(ex))
    _show_figures_in_jupyter()
    if out is not None:
        with atomic_path(out, force) as tmp:
            with open(tmp, "wb") as fh:
                write_figure(fig, fh, format_of(out), spec)
    return fig


def _show_figures_in_jupyter() -> None:
    """In an IPython kernel, let matplotlib Figures (drawn without pyplot) display as PNG."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and getattr(shell, "display_formatter", None) is not None:
        select_figure_formats(shell, {"png"})


def feature_figure(source, feature: int, model=None, site: str | None = None,
                   sae: PathLike | None = None, window: int = 0, examples: int | None = None,
                   context: float = 0.4, cache: PathLike | None = None,
                   out: PathLike | None = None, force: bool = False, width: str = "column",
                   dpi: int = 300, title: str | None = None,
                   span: tuple[float, float] | None = None, spectrogram: str | None = None):
    """``steve-qt figure --feature``: for an utterance (or audio path), its spectrogram with
    feature ``feature`` of ``site`` (or of the SAE in folder ``sae``) overlaid; for a
    :class:`FeatureIndex`, a grid of the feature's top ``examples``. A matplotlib Figure; ``out``
    also writes it (.pdf, .svg, .png)."""
    from .core.figures.attention import FigureSpec, format_of
    from .core.figures.features import (EXAMPLES, draw_examples_figure, draw_feature_figure,
                                        file_feature_data, index_examples, render)
    from .core.fileio import check_writable

    if out is not None:
        format_of(out)
        check_writable(out, force)
    spec = FigureSpec(width=width, dpi=dpi, title=title, span=tuple(span) if span else None,
                      spectrogram=spectrogram)
    if isinstance(source, _index.FeatureIndex):
        n = examples or EXAMPLES.get(width, EXAMPLES["column"])
        shown, name = index_examples(source, feature, n, context, cache)
        fig = draw_examples_figure(spec, shown, name)
    else:
        data, shown_span = file_feature_data(lambda: _model(model).adapter,
                                             lambda: _utterance(source), feature, site=site,
                                             sae_dir=None if sae is None else str(sae),
                                             window=window)
        spec.span = spec.span or shown_span
        fig = draw_feature_figure(spec, data)
    _show_figures_in_jupyter()
    if out is not None:
        render(fig, spec, out, force=force)
    return fig


# --- listening -------------------------------------------------------------------------------
class Sound:
    """Samples to listen to: ``samples`` (n,) or (n, channels) float32 at ``rate``. In Jupyter
    it shows an audio player (IPython's ``Audio``, also ``.player`` when IPython is present)."""

    def __init__(self, samples: np.ndarray, rate: int, title: str = ""):
        self.samples, self.rate, self.title = samples, int(rate), title

    @property
    def player(self):
        try:
            from IPython.display import Audio
        except ImportError:
            return None
        x = self.samples.T if self.samples.ndim == 2 else self.samples
        return Audio(x, rate=self.rate, normalize=False)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate

    def save(self, path: PathLike, force: bool = False) -> Path:
        """Write a WAV file (float32 samples as 16-bit PCM)."""
        import soundfile as sf

        from .core.fileio import atomic_path

        with atomic_path(path, force) as tmp:
            sf.write(str(tmp), self.samples, self.rate, subtype="PCM_16", format="WAV")
        return Path(path)

    def __repr__(self) -> str:
        return f"Sound({self.title + ', ' if self.title else ''}{self.duration:.2f} s at {self.rate} Hz)"

    def _repr_html_(self) -> str:
        p = self.player
        title = f"<div>{html.escape(self.title)}</div>" if self.title else ""
        return title + (p._repr_html_() if p is not None else f"<pre>{html.escape(repr(self))}</pre>")


def feature_audio(utt, acts: Activations, site: str, feature: int,
                  floor_db: float | None = None) -> Sound:
    """The utterance under the feature's gain envelope, as the window's Play Feature plays it:
    full level where the feature fires hardest, ``floor_db`` (-20 dB) where it does not."""
    from .core.features import audio as fa

    u = _utterance(utt)
    if not isinstance(acts, Activations):
        raise Error("acts must be the Activations of Model.activations")
    site_info = next((s for s in acts.sites if s.name == site), None)
    track = acts[site]
    if site_info is not None and site_info.axis != "frames":
        raise Error(f"site {site!r} has token rows; Play Feature needs an audio-frames site")
    if not 0 <= int(feature) < track.shape[1]:
        raise Error(f"feature {feature} does not exist: {site} has {track.shape[1]} "
                    f"(0 to {track.shape[1] - 1})")
    x = fa.enveloped(u.audio.original, u.audio.original_rate, track[:, int(feature)], acts.grid,
                     fa.FLOOR_DB if floor_db is None else floor_db)
    return Sound(x, u.audio.original_rate, f"feature {feature} of {site}")


def acoustics(utt, **params):
    """Praat's pitch, formants (f1-f3) and intensity of an utterance, computed by Praat itself
    (parselmouth) with Praat's defaults: ``steve-qt acoustics``. ``params`` are
    :class:`steve_qt.core.speech.acoustics.AcousticParams` fields (``pitch_floor``,
    ``maximum_formant``, ...). Each track keeps its own frame times, NaN where undefined;
    ``tracks.sample(times)`` reads them at any times (e.g. ``acts.frame_times``)."""
    from .core.speech.acoustics import AcousticParams, audio_tracks

    try:
        p = AcousticParams(**params)
    except TypeError as exc:
        raise Error(f"acoustics: {exc}") from None
    p.check()
    return audio_tracks(_utterance(utt).audio, p)
