"""What the attention views show: model, window, component, layer, head, kind, scale, query.

A small evented model, Qt-free. It reads the shown utterance and its extractions from
:class:`~steve_qt.core.state.entries.Entries` and the timeline from
:class:`~steve_qt.core.state.navigation.Navigation`; it writes neither. Events (``Event.value`` is the
new value):

==============  ============================================================================
``extraction``  the attention of the shown utterance/model/window arrived or went (value:
                the Extraction or None)
``model``       model spec (``whisper``, ``wav2vec2:DIR``)
``component``   ``encoder`` | ``cross`` | ``decoder``
``layer``       layer index (from 0)
``rollout``     True when the map shows the attention rollout instead of one layer
``head``        head index (from 0), or None for the mean of heads
``kind``        ``weights`` (softmax) | ``scores`` (pre-softmax) | a context-mixing measure
                (``norm``, ``value_zeroing``, ``grad``; :mod:`~steve_qt.core.attention.measures`)
``measure_request``  a measure the shown encoder maps lack was chosen (value: its name): the
                window computes it, adds it to the maps and sets the kind
``scale``       colour scale: ``global`` | ``row`` (each query row scaled to its max) | ``log``
``colormap``    colormap name
``spectrogram`` spectrogram kind: ``mel`` (what the model hears) | ``broadband`` (Praat's)
``window``      Whisper 30 s window index
``query``       query row of the shown maps or None
==============  ============================================================================
"""

from __future__ import annotations

import math

import numpy as np

from ..models.adapters import Extraction
from .analysis_cache import AnalysisCache
from ..attention.maps import AttentionMaps
from .entries import Entries, Entry
from ..events import EmitterGroup
from ..frames import FrameGrid
from ..attention.measures import KINDS as MEASURE_KINDS, MEASURES, NON_NEGATIVE
from ..events import Evented
from .navigation import Navigation
from ..models.pipeline import normalise_spec

SCALES = ("global", "row", "log")
KINDS = MEASURE_KINDS  # weights, scores and the context-mixing measures (core.measures)
#: components whose keys are audio frames (drawn on the shared time axis)
TIME_COMPONENTS = ("encoder", "cross")
LOG_FLOOR = 1e-4  # weights below this are drawn as this on the log scale

EVENTS = ("extraction", "model", "component", "layer", "head", "kind", "scale", "colormap",
          "window", "query", "rollout", "measure_request", "spectrogram")


def attended_spans(row: np.ndarray, grid: FrameGrid, share: float = 0.5,
                   duration: float | None = None) -> list[tuple[float, float]]:
    """Key spans (seconds) of the fewest frames that hold ``share`` of a query row's kept mass.

    ``row`` (K,) is one query's weights over key frames. Frames are taken in order of weight until
    their sum reaches ``share`` of the row's sum; consecutive frames are merged into one span.
    """
    w = np.asarray(row, dtype=np.float64)
    total = w.sum()
    if w.size == 0 or not total > 0:
        return []
    order = np.argsort(-w, kind="stable")
    n = int(np.searchsorted(np.cumsum(w[order]), share * total) + 1)
    frames = np.sort(order[:min(n, w.size)])
    spans: list[tuple[float, float]] = []
    start = prev = int(frames[0])
    for f in [*map(int, frames[1:]), None]:
        if f is not None and f == prev + 1:
            prev = f
            continue
        a, _ = grid.span_seconds(start)
        _, b = grid.span_seconds(prev)
        a, b = float(a), float(b)
        if duration is not None:
            a, b = max(a, 0.0), min(b, duration)
        spans.append((a, b))
        if f is not None:
            start = prev = f
    return spans


def display_image(m: np.ndarray, kind: str, scale: str,
                  copy: bool = True) -> tuple[np.ndarray, tuple[float, float]]:
    """(Q, K) map -> (C-contiguous float32 image, colour levels) for a colour scale.

    ``global``: the values as they are, levels (min, max) of the map (min 0 for weights);
    ``row``: each row scaled to [0, 1] between its min (0 for weights) and max;
    ``log`` (weights only): log10 of the weights floored at LOG_FLOOR.
    Non-finite scores (the decoder's causal mask) are drawn as the lowest finite value.
    With ``copy=False`` a float32 C-contiguous ``m`` is scaled in place (it must be a scratch
    array, as ``AttentionMaps.head`` returns).
    """
    img = np.array(m, dtype=np.float32, order="C", copy=True if copy else None)
    finite = np.isfinite(img)
    if not finite.all():
        low = float(img[finite].min()) if finite.any() else 0.0
        img[~finite] = low
    if scale == "log" and kind in NON_NEGATIVE:
        np.log10(np.maximum(img, LOG_FLOOR), out=img)
        hi = float(img.max()) if img.size else 0.0
        return img, (math.log10(LOG_FLOOR), max(hi, math.log10(LOG_FLOOR) + 1e-6))
    if scale == "row":
        lo = np.zeros((img.shape[0], 1), np.float32) if kind in NON_NEGATIVE else \
            img.min(axis=1, keepdims=True)
        rng = img.max(axis=1, keepdims=True) - lo
        img -= lo
        img /= np.where(rng > 0, rng, 1.0)
        return img, (0.0, 1.0)
    lo = 0.0 if kind in NON_NEGATIVE else (float(img.min()) if img.size else 0.0)
    hi = float(img.max()) if img.size else 1.0
    return img, (lo, hi if hi > lo else lo + 1e-6)



class AttentionView(Evented):
    """The attention views' state; reads ``entries`` and ``nav``, never writes them."""

    def __init__(self, entries: Entries, nav: Navigation, cache: AnalysisCache, model: str):
        self.events = EmitterGroup(*EVENTS)
        self.entries = entries
        self.nav = nav
        self.cache = cache
        self.model = normalise_spec(model)
        self.component = "encoder"
        self.chosen_component = "encoder"  # the user's choice, shown again once a result has it
        self.layer = 0
        self.rollout = False  # show AttentionMaps.rollout() instead of layer ``layer``
        self.head: int | None = 0
        self.kind = "weights"
        self.scale = "global"
        self.colormap = "viridis"
        self.spectrogram = "mel"
        self.window = 0
        self.query: int | None = None

    # --- what it reads ---------------------------------------------------------------------------
    @property
    def entry(self) -> Entry | None:
        return self.entries.entry

    @property
    def current(self) -> int | None:
        return self.entries.current

    @property
    def duration(self) -> float:
        return self.nav.duration

    @property
    def alignment(self):
        e = self.entry
        return e.utterance.alignment if e else None

    def message_(self, text: str) -> None:
        self.nav.message_(text)

    def reset(self) -> None:
        """A new file: window 0, no query; no events (the Document emits)."""
        self.window = 0
        self.query = None

    # --- extraction results --------------------------------------------------------------------
    def job_key(self) -> tuple[str, int]:
        return self.model, self.window

    @property
    def extraction(self) -> Extraction | None:
        e = self.entry
        return e.extractions.get(self.job_key()) if e else None

    @property
    def maps(self) -> AttentionMaps | None:
        ex = self.extraction
        return ex.maps.get(self.component) if ex else None

    def components(self) -> tuple[str, ...]:
        """Components of the shown extraction that are drawn on the time axis."""
        ex = self.extraction
        return tuple(c for c in TIME_COMPONENTS if ex and c in ex.maps)

    def on_stored(self, index: int, spec: str, window: int) -> None:
        """An extraction was stored: announce it when it is the shown one."""
        if index == self.current and (spec, window) == self.job_key():
            self.emit_extraction()

    def emit_extraction(self) -> None:
        """Fit component/layer/head/query to the shown extraction, then announce it."""
        ex = self.extraction
        if ex is not None:
            comps = self.components()
            if self.chosen_component in comps:
                self.component = self.chosen_component
            elif comps and self.component not in comps:
                self.component = comps[0]
            m = self.maps
            if m is not None:
                self.layer = min(self.layer, m.num_layers - 1)
                if self.head is not None:
                    self.head = min(self.head, m.num_heads - 1)
                if not m.has_kind(self.kind):
                    self.kind = "weights"
                if self.query is not None and self.query >= m.num_queries:
                    self.query = None
        self._fit_rollout()
        self.events.extraction(ex)
        for name in ("component", "layer", "head", "kind", "query"):
            getattr(self.events, name)(getattr(self, name))

    # --- what is shown ---------------------------------------------------------------------------
    def set_model(self, spec: str) -> None:
        if self._set("model", normalise_spec(spec)):
            self.emit_extraction()

    def set_window(self, window: int) -> None:
        ex_windows = self.num_windows()
        window = int(min(max(window, 0), ex_windows - 1))
        if self._set("window", window):
            self.query = None
            self.emit_extraction()

    def num_windows(self) -> int:
        e = self.entry
        if e is None:
            return 1
        ex = [x for (spec, _), x in e.extractions.items() if spec == self.model]
        return max((x.num_windows for x in ex), default=1)

    def window_span(self) -> tuple[float, float] | None:
        """Time span (seconds) covered by the shown maps' key frames."""
        m = self.maps
        if m is None or m.key_grid is None:
            return None
        a, b = m.key_extent_seconds()
        return max(a, 0.0), min(b, self.duration)

    def set_component(self, component: str) -> None:
        """Show another component; layer, head and query are fitted to it before any event."""
        ex = self.extraction
        if ex is not None and component not in ex.maps:
            return
        self.chosen_component = component
        if component == self.component:
            return
        old_rows = self.maps.num_queries if self.maps is not None else None
        old = self.component
        self.component = component
        m = self.maps
        if m is not None:
            self.layer = min(self.layer, m.num_layers - 1)
            if self.head is not None:
                self.head = min(self.head, m.num_heads - 1)
            if self.query is not None and (m.num_queries != old_rows or
                                           self.query >= m.num_queries):
                self.query = None
        self._fit_rollout()
        self.events.component(component, old)
        for name in ("layer", "head", "query"):
            getattr(self.events, name)(getattr(self, name))

    def can_rollout(self) -> bool:
        """Rollout is defined for audio self-attention (as many query frames as key frames)."""
        m = self.maps
        return m is not None and m.component != "cross" and m.num_queries == m.num_keys

    def set_rollout(self, on: bool) -> None:
        """Show the attention rollout (Abnar & Zuidema 2020) in place of one layer."""
        if on and not self.can_rollout():
            self.message_("Rollout needs self-attention (the encoder), not cross-attention")
            on = False
        if on and self.kind != "weights":
            self._set("kind", "weights")  # rollout is computed from the softmax weights
        self._set("rollout", bool(on))

    def _fit_rollout(self) -> None:
        if self.rollout and not self.can_rollout():
            self._set("rollout", False)

    @property
    def shown_layer(self) -> int | str:
        """The layer index, or ``"rollout"`` (as analysis and figures name it)."""
        return "rollout" if self.rollout else self.layer

    def rollout_map(self) -> np.ndarray | None:
        """(Q, K) float32 rollout of the shown maps (computed once per maps object)."""
        m = self.maps
        if m is None or not self.can_rollout():
            return None
        return self.cache.rollout(m)

    def set_layer(self, layer: int) -> None:
        if self.rollout:
            self._set("rollout", False)
        m = self.maps
        if m is not None:
            layer = min(max(int(layer), 0), m.num_layers - 1)
        self._set("layer", max(int(layer), 0))

    def step_layer(self, delta: int) -> None:
        self.set_layer(self.layer + delta)

    def set_head(self, head: int | None) -> None:
        """Head index, or None for the mean of heads."""
        m = self.maps
        if head is not None:
            head = max(int(head), 0)
            if m is not None:
                head = min(head, m.num_heads - 1)
        self._set("head", head)

    def step_head(self, delta: int) -> None:
        """Step through mean, 0, 1, ..., M-1 (mean sits before head 0)."""
        m = self.maps
        last = m.num_heads - 1 if m is not None else 0
        pos = -1 if self.head is None else self.head
        pos = min(max(pos + delta, -1), last)
        self.set_head(None if pos < 0 else pos)

    def set_kind(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(kind)
        m = self.maps
        if kind == "scores" and m is not None and m.scores is None:
            self.message_(f"{m.model} stored no pre-softmax scores")
            return
        if kind in MEASURES and m is not None and not m.has_kind(kind):
            if self.component != "encoder":
                self.message_("context-mixing measures are computed for encoder "
                              "self-attention only")
            else:
                self.events.measure_request(kind)  # the window computes it, then sets the kind
            return
        if kind != "weights" and self.rollout:
            self._set("rollout", False)  # rollout has no pre-softmax scores
        self._set("kind", kind)

    def set_scale(self, scale: str) -> None:
        if scale not in SCALES:
            raise ValueError(scale)
        self._set("scale", scale)

    def set_colormap(self, name: str) -> None:
        self._set("colormap", name)

    def set_spectrogram(self, kind: str) -> None:
        from ..speech.spectrogram import KINDS as SPECTROGRAMS

        if kind not in SPECTROGRAMS:
            raise ValueError(f"unknown spectrogram kind {kind!r}")
        self._set("spectrogram", kind)

    def head_map(self) -> np.ndarray | None:
        """(Q, K) float32 of the shown layer/head (or head mean) and kind, or None."""
        m = self.maps
        if m is None:
            return None
        if self.rollout and self.can_rollout():
            return self.rollout_map().copy()  # a scratch copy: display_image scales in place
        return m.head(self.layer, self.head, self.kind)

    def value_at(self, query: int, key: int) -> float:
        """The shown map's value at one (query, key) cell, read without building the map."""
        if self.rollout and self.can_rollout():
            return float(self.rollout_map()[query, key])
        return self.maps.value(self.layer, self.head, query, key, self.kind)

    def image(self) -> tuple[np.ndarray, tuple[float, float]] | None:
        hm = self.head_map()
        return None if hm is None else display_image(hm, self.kind, self.scale, copy=False)

    def query_row(self) -> np.ndarray | None:
        """(K,) softmax weights of the current query over the keys (always weights)."""
        m = self.maps
        if m is None or self.query is None:
            return None
        if self.rollout and self.can_rollout():
            return self.rollout_map()[self.query].copy()
        rows = m.weights[self.layer, 0, :, self.query]  # (M, K)
        if self.head is None:
            return rows.astype(np.float32).mean(axis=0)
        return rows[self.head].astype(np.float32)


    def set_query(self, row: int | None) -> None:
        m = self.maps
        if row is not None:
            if m is None:
                return
            row = min(max(int(row), 0), m.num_queries - 1)
        self._set("query", row)

    def default_query(self) -> int | None:
        """A query worth showing first: the middle of the first labelled phone (or of the audio)
        for audio queries, the first text token for token queries."""
        m = self.maps
        if m is None:
            return None
        if m.query_grid is None:
            start = int(m.meta.get("text_token_start", 0)) if m.meta else 0
            return min(start, m.num_queries - 1)
        from ..speech.phones import phone_class

        phones = getattr(self.alignment, "phones", None)
        labelled = [iv for iv in phones.intervals
                    if iv.label and phone_class(iv.label).kind != "silence"] if phones else []
        q0, q1 = m.query_extent_seconds()
        t = (labelled[0].start_s + labelled[0].end_s) / 2 if labelled else (q0 + min(q1, self.duration)) / 2
        return int(m.query_grid.frame_at_seconds(t, m.num_queries))

    def query_at(self, y: float) -> int | None:
        """Query row at map coordinate ``y`` (seconds for audio queries, row index for tokens)."""
        m = self.maps
        if m is None:
            return None
        if m.query_grid is None:
            return min(max(int(math.floor(y)), 0), m.num_queries - 1)
        return int(m.query_grid.frame_at_seconds(y, m.num_queries))

    def query_time(self) -> float | None:
        """Centre (seconds) of the current query frame when queries are audio frames."""
        m = self.maps
        if m is None or self.query is None or m.query_grid is None:
            return None
        a, b = m.query_grid.span_seconds(self.query)
        return float((a + b) / 2)


    def attended(self, share: float = 0.5) -> list[tuple[float, float]]:
        """Key spans holding ``share`` of the current query's attention (see attended_spans)."""
        m = self.maps
        row = self.query_row()
        if m is None or row is None or m.key_grid is None:
            return []
        return attended_spans(row, m.key_grid, share, self.duration)

