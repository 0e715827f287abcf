"""The document: a thin composition of the window's small evented models (Qt-free).

==================  =====================================  ==================================
part                module                                  events
==================  =====================================  ==================================
``doc.files``       :mod:`~steve_qt.core.state.entries`           entries, entry_status, current
                    (open utterances, extraction jobs)
``doc.nav``         :mod:`~steve_qt.core.state.navigation`        view, selection, cursor, hover,
                    (timeline of the shown file)            playhead, message
``doc.attention``   :mod:`~steve_qt.core.state.attention_view`    extraction, model, component,
                    (what the attention views show)         layer, head, kind, scale, colormap,
                                                            spectrogram, window, query, rollout
``doc.features``    :mod:`~steve_qt.core.state.feature_view`      sites, site, feature, activations,
                    (the features dock)                     index, examples, example
``doc.cache``       :mod:`~steve_qt.core.state.analysis_cache`    (none: results keyed by their inputs)
==================  =====================================  ==================================

``doc.events`` reaches every part's emitters (the same objects), so a view subscribes with
``doc.events.<name>.connect`` or to its part directly; views never write into each other. The
Document itself emits ``alignment`` (the shown utterance's alignment was replaced) and runs the
steps that touch several parts (opening, showing and closing an utterance). The rest of the
state and its methods live in the part that owns them: callers ask that part (``doc.attention.layer``,
``doc.nav.set_view``, ``doc.files.entries``, ``doc.features.feature``).

Times are seconds on the file's timeline. Frame/time arithmetic goes through the maps' FrameGrid.
"""

from __future__ import annotations

from pathlib import Path
from ..models.adapters import DEFAULT_SPEC, Extraction
from .analysis_cache import AnalysisCache
from ..attention.maps import AttentionMaps
from .attention_view import (KINDS, LOG_FLOOR, SCALES, TIME_COMPONENTS, AttentionView,  # noqa: F401
                             attended_spans, display_image)
from .entries import CANCELLED, DONE, FAILED, QUEUED, RUNNING, Entries, Entry  # noqa: F401
from ..events import EmitterGroup
from .feature_view import FeatureView
from .navigation import MIN_VIEW_S, Navigation, clamp_view, normalise_span, zoom_view  # noqa: F401
from ..models.pipeline import Utterance


class Document:
    """State of the window: open utterances, model, selection; emits ``events``."""

    def __init__(self, model: str = DEFAULT_SPEC):
        self.files = Entries()
        self.nav = Navigation()
        self.cache = AnalysisCache()
        self.attention = AttentionView(self.files, self.nav, self.cache, model)
        self.features = FeatureView(self.files, self.attention, self.cache)
        self.events = EmitterGroup("alignment")
        for part in (self.files, self.nav, self.attention, self.features):
            self.events.include(part.events)

    # --- open utterances -------------------------------------------------------------------------
    @property
    def utterance(self) -> Utterance | None:
        e = self.files.entry
        return e.utterance if e else None

    @property
    def duration(self) -> float:
        u = self.utterance
        return u.audio.duration if u else 1.0

    @property
    def alignment(self):
        u = self.utterance
        return u.alignment if u else None

    def add(self, utterance: Utterance, show: bool = True) -> int:
        """Append an utterance (or find it when its file is open already); returns its index."""
        if utterance.path is not None:
            i = self.files.index_of(utterance.path)
            if i is not None:
                if show:
                    self.set_current(i)
                return i
        i = self.files.append(utterance)
        if show or self.files.current is None:
            self.set_current(i)
        return i

    def remove(self, index: int) -> None:
        self.files.delete(index)
        current = self.files.current
        if current is not None and current >= index:
            nxt = min(current, len(self.files.entries) - 1) if self.files.entries else None
            self.files.current = -1  # force the event
            self.set_current(nxt)

    def set_current(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self.files.entries):
            raise IndexError(index)
        if index == self.files.current:
            return
        old = self.files.current
        self.files.current = index
        # a new utterance starts unselected, fully visible, at window 0
        self.attention.reset()
        self.nav.reset(self.duration)
        self.events.current(index, old)
        self.nav.emit_reset()
        self.events.window(0)
        self.attention.emit_extraction()

    def set_alignment(self, alignment, kind: str | None) -> None:
        u = self.utterance
        if u is None:
            return
        u.alignment = alignment
        u.alignment_kind = kind
        self.events.alignment(alignment)

    def set_extraction(self, index: int, spec: str, window: int, ex: Extraction) -> None:
        self.files.store(index, spec, window, ex)
        self.attention.on_stored(index, spec, window)

    def drop_extraction(self, index: int, spec: str, window: int) -> None:
        """Forget a stored result (a preview whose job ended without the model's own);
        the status stays as the job set it."""
        self.files.entries[index].extractions.pop((spec, window), None)
        self.attention.on_stored(index, spec, window)

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
        m = self.attention.maps
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
        value = self.attention.value_at(query, k)
        kind = self.attention.kind
        what = {"weights": "weight", "scores": "score"}.get(kind, kind.replace("_", " "))
        return f"{q} -> key {float(a + b) / 2:.3f} s (frame {k}): {what} {value:.4g}"

    def transcript_word_at(self, t: float) -> str | None:
        ex = self.attention.extraction
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
