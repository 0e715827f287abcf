"""The document: what is open and what is selected, Qt-free, with events.

Every view of the GUI subscribes to ``doc.events.<name>`` and draws from the document; views
never talk to each other. Events (``Event.value`` is the new value):

=================  ============================================================================
``entries``        the list of open utterances changed (value: the list)
``entry_status``   an utterance's extraction status changed (value: its index)
``current``        another utterance is shown (value: index or None)
``extraction``     the attention of the shown utterance/model/window arrived or went (value:
                   the Extraction or None)
``model``          model spec (``whisper``, ``wav2vec2:DIR``)
``component``      ``encoder`` | ``cross`` | ``decoder``
``layer``          layer index
``rollout``        True when the map shows the attention rollout instead of one layer
``head``           head index, or None for the mean of heads
``kind``           ``weights`` (softmax) | ``scores`` (pre-softmax) | a context-mixing measure
                   (``norm``, ``value_zeroing``, ``grad``; steve_qt.core.measures)
``measure_request`` a measure the shown encoder maps lack was chosen (value: its name): the
                   window computes it and then sets the kind
``scale``          colour scale: ``global`` | ``row`` (each query row scaled to its max) | ``log``
``colormap``       colormap name
``window``         Whisper 30 s window index
``view``           visible time span (t0, t1) in seconds
``selection``      selected time span (t0, t1) or None
``cursor``         clicked time in seconds or None
``query``          query row of the shown maps or None
``hover``          point under the mouse: (t, query_row or None) or None
``playhead``       playback position in seconds or None
``message``        a one-line status text for the status bar
``alignment``      the shown utterance's alignment was replaced
=================  ============================================================================

Times are seconds on the file's timeline. Frame/time arithmetic goes through the maps' FrameGrid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .adapters import DEFAULT_SPEC, Extraction
from .attention import AttentionMaps
from .events import EmitterGroup
from .frames import FrameGrid
from .measures import KINDS as MEASURE_KINDS, MEASURES, NON_NEGATIVE
from .pipeline import Utterance, normalise_spec

SCALES = ("global", "row", "log")
KINDS = MEASURE_KINDS  # weights, scores and the context-mixing measures (core.measures)
#: components whose keys are audio frames (drawn on the shared time axis)
TIME_COMPONENTS = ("encoder", "cross")
MIN_VIEW_S = 0.005  # narrowest visible span
LOG_FLOOR = 1e-4  # weights below this are drawn as this on the log scale

EVENTS = ("entries", "entry_status", "current", "extraction", "model", "component", "layer",
          "head", "kind", "scale", "colormap", "window", "view", "selection", "cursor", "query",
          "hover", "playhead", "message", "alignment", "rollout", "measure_request")

# extraction status of one (model, window) of an utterance
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


@dataclass(eq=False)
class Entry:
    """One open utterance and what was extracted from it, per (model spec, window)."""

    utterance: Utterance
    extractions: dict[tuple[str, int], Extraction] = field(default_factory=dict)
    status: dict[tuple[str, int], str] = field(default_factory=dict)
    errors: dict[tuple[str, int], str] = field(default_factory=dict)

    @property
    def path(self) -> Path | None:
        return self.utterance.path

    @property
    def name(self) -> str:
        return self.utterance.audio.name

    def status_text(self, spec: str, window: int) -> str:
        return self.status.get((spec, window), "")


# --- pure helpers (tested without a window) ---------------------------------------------------
def clamp_view(t0: float, t1: float, duration: float) -> tuple[float, float]:
    """Keep a view inside [0, duration] without changing its width when possible."""
    width = max(min(t1 - t0, duration), min(MIN_VIEW_S, duration))
    t0 = min(max(t0, 0.0), max(duration - width, 0.0))
    return t0, t0 + width


def zoom_view(view: tuple[float, float], factor: float, centre: float | None,
              duration: float) -> tuple[float, float]:
    """Scale the view's width by ``factor`` (< 1 zooms in) keeping ``centre`` at its place."""
    t0, t1 = view
    c = (t0 + t1) / 2 if centre is None or not t0 <= centre <= t1 else centre
    width = max((t1 - t0) * factor, MIN_VIEW_S)
    frac = (c - t0) / (t1 - t0) if t1 > t0 else 0.5
    a = c - frac * width
    return clamp_view(a, a + width, duration)


def normalise_span(a: float, b: float) -> tuple[float, float]:
    return (a, b) if a <= b else (b, a)


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


class Document:
    """State of the window: open utterances, model, selection; emits ``events``."""

    def __init__(self, model: str = DEFAULT_SPEC):
        self.events = EmitterGroup(*EVENTS)
        self.entries: list[Entry] = []
        self.current: int | None = None
        self.model = normalise_spec(model)
        self.component = "encoder"
        self.layer = 0
        self.rollout = False  # show AttentionMaps.rollout() instead of layer ``layer``
        self._rollout_cache: tuple[AttentionMaps, np.ndarray] | None = None
        self.head: int | None = 0
        self.kind = "weights"
        self.scale = "global"
        self.colormap = "viridis"
        self.window = 0
        self.view: tuple[float, float] = (0.0, 1.0)
        self.selection: tuple[float, float] | None = None
        self.cursor: float | None = None
        self.query: int | None = None
        self.hover: tuple[float, int | None] | None = None
        self.playhead: float | None = None
        self.message = ""

    # --- generic field setter ------------------------------------------------------------------
    def _set(self, name: str, value: Any) -> bool:
        old = getattr(self, name)
        if _same(old, value):
            return False
        setattr(self, name, value)
        getattr(self.events, name)(value, old)
        return True

    # --- open utterances -------------------------------------------------------------------------
    @property
    def entry(self) -> Entry | None:
        return self.entries[self.current] if self.current is not None else None

    @property
    def utterance(self) -> Utterance | None:
        e = self.entry
        return e.utterance if e else None

    @property
    def duration(self) -> float:
        u = self.utterance
        return u.audio.duration if u else 1.0

    @property
    def alignment(self):
        u = self.utterance
        return u.alignment if u else None

    def index_of(self, path: str | Path) -> int | None:
        p = Path(path).resolve()
        for i, e in enumerate(self.entries):
            if e.path is not None and e.path.resolve() == p:
                return i
        return None

    def add(self, utterance: Utterance, show: bool = True) -> int:
        """Append an utterance (or find it when its file is open already); returns its index."""
        if utterance.path is not None:
            i = self.index_of(utterance.path)
            if i is not None:
                if show:
                    self.set_current(i)
                return i
        self.entries.append(Entry(utterance))
        self.events.entries(self.entries)
        i = len(self.entries) - 1
        if show or self.current is None:
            self.set_current(i)
        return i

    def remove(self, index: int) -> None:
        del self.entries[index]
        self.events.entries(self.entries)
        if self.current is not None and self.current >= index:
            nxt = min(self.current, len(self.entries) - 1) if self.entries else None
            self.current = -1  # force the event
            self.set_current(nxt)

    def set_current(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self.entries):
            raise IndexError(index)
        if index == self.current:
            return
        old = self.current
        self.current = index
        # a new utterance starts unselected, fully visible, at window 0
        self.window = 0
        self.selection = None
        self.cursor = None
        self.query = None
        self.playhead = None
        self.view = (0.0, self.duration)
        self.events.current(index, old)
        self.events.view(self.view)
        self.events.selection(None)
        self.events.cursor(None)
        self.events.window(0)
        self._emit_extraction()

    def set_alignment(self, alignment, kind: str | None) -> None:
        u = self.utterance
        if u is None:
            return
        u.alignment = alignment
        u.alignment_kind = kind
        self.events.alignment(alignment)

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

    def set_status(self, index: int, spec: str, window: int, status: str,
                   error: str | None = None) -> None:
        e = self.entries[index]
        e.status[(spec, window)] = status
        if error is not None:
            e.errors[(spec, window)] = error
        self.events.entry_status(index)

    def set_extraction(self, index: int, spec: str, window: int, ex: Extraction) -> None:
        e = self.entries[index]
        e.extractions[(spec, window)] = ex
        e.status[(spec, window)] = DONE
        self.events.entry_status(index)
        if index == self.current and (spec, window) == self.job_key():
            self._emit_extraction()

    def _emit_extraction(self) -> None:
        """Fit component/layer/head/query to the shown extraction, then announce it."""
        ex = self.extraction
        if ex is not None:
            comps = self.components()
            if comps and self.component not in comps:
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
            self._emit_extraction()

    def set_window(self, window: int) -> None:
        ex_windows = self.num_windows()
        window = int(min(max(window, 0), ex_windows - 1))
        if self._set("window", window):
            self.query = None
            self._emit_extraction()

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
        if component == self.component or (ex is not None and component not in ex.maps):
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
        if self._rollout_cache is None or self._rollout_cache[0] is not m:
            self._rollout_cache = (m, m.rollout())
        return self._rollout_cache[1]

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

    # --- time: view, selection, cursor, query --------------------------------------------------
    def set_view(self, t0: float, t1: float) -> None:
        self._set("view", clamp_view(float(t0), float(t1), self.duration))

    def zoom(self, factor: float, centre: float | None = None) -> None:
        if centre is None:
            centre = self.cursor if self.cursor is not None else (
                sum(self.selection) / 2 if self.selection else None)
        self._set("view", zoom_view(self.view, factor, centre, self.duration))

    def zoom_in(self) -> None:
        self.zoom(0.5)

    def zoom_out(self) -> None:
        self.zoom(2.0)

    def zoom_to_selection(self) -> None:
        if self.selection is not None and self.selection[1] > self.selection[0]:
            self.set_view(*self.selection)

    def show_all(self) -> None:
        self.set_view(0.0, self.duration)

    def scroll(self, fraction: float) -> None:
        t0, t1 = self.view
        d = (t1 - t0) * fraction
        self.set_view(t0 + d, t1 + d)

    def set_selection(self, span: tuple[float, float] | None) -> None:
        if span is not None:
            a, b = normalise_span(*span)
            a, b = max(a, 0.0), min(b, self.duration)
            span = (a, b) if b > a else None
        self._set("selection", span)

    def set_cursor(self, t: float | None) -> None:
        self._set("cursor", None if t is None else min(max(float(t), 0.0), self.duration))

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
        from .phones import phone_class

        phones = _tier(self.alignment, "phones")
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

    def set_hover(self, point: tuple[float, int | None] | None) -> None:
        self._set("hover", point)

    def set_playhead(self, t: float | None) -> None:
        self._set("playhead", t)

    def message_(self, text: str) -> None:
        self.message = text
        self.events.message(text)

    # --- playback ranges -------------------------------------------------------------------------
    def play_span(self) -> tuple[float, float]:
        """What Tab plays: the selection, else the visible window."""
        if self.selection is not None:
            return self.selection
        return self.view

    def attended(self, share: float = 0.5) -> list[tuple[float, float]]:
        """Key spans holding ``share`` of the current query's attention (see attended_spans)."""
        m = self.maps
        row = self.query_row()
        if m is None or row is None or m.key_grid is None:
            return []
        return attended_spans(row, m.key_grid, share, self.duration)

    # --- words for the status bar ----------------------------------------------------------------
    def describe(self, t: float | None, query: int | None = None) -> str:
        """Status-bar text for a point: time, phone, word; on the map also query, key and value."""
        if t is None or self.utterance is None:
            return ""
        parts = [f"{t:.3f} s"]
        al = self.alignment
        for name, tier in (("phone", _tier(al, "phones")), ("word", _tier(al, "words"))):
            iv = tier.at(t) if tier is not None else None
            if iv is not None and iv.label:
                parts.append(f"{name} {iv.label}")
        if al is None or _tier(al, "words") is None:
            w = self.transcript_word_at(t)
            if w is not None:
                parts.append(f"word {w} (whisper)")
        m = self.maps
        if query is not None and m is not None and 0 <= query < m.num_queries:
            parts.append(self._describe_cell(m, t, query))
        return "   ".join(parts)

    def _describe_cell(self, m: AttentionMaps, t: float, query: int) -> str:
        if m.query_grid is not None:
            a, b = m.query_grid.span_seconds(query)
            q = f"query {float(a + b) / 2:.3f} s (frame {query})"
        else:
            label = m.query_labels[query] if m.query_labels else str(query)
            q = f"query token {query} {label!r}"
        if m.key_grid is None:
            return q
        k = int(m.key_grid.frame_at_seconds(t, m.num_keys))
        a, b = m.key_grid.span_seconds(k)
        value = self.value_at(query, k)
        what = {"weights": "weight", "scores": "score"}.get(self.kind, self.kind.replace("_", " "))
        return f"{q} -> key {float(a + b) / 2:.3f} s (frame {k}): {what} {value:.4g}"

    def transcript_word_at(self, t: float) -> str | None:
        ex = self.extraction
        if ex is None:
            return None
        for w in ex.transcript.words:
            if w.start_s <= t < w.end_s:
                return w.text
        return None


def _tier(alignment, name: str):
    if alignment is None:
        return None
    return getattr(alignment, name, None)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except Exception:  # numpy arrays and the like
        return False
