"""The Experiments panel's state as a small evented model, and the tasks it runs (Qt-free).

The panel (``steve_qt.gui.experiments_panel``) subscribes to ``Experiments.events``; tasks run
in the worker thread as ``task(adapter, progress, should_cancel) -> result`` and their results
are handed back to the GUI thread, which sets them here.

Events: ``k`` (the window slider's value, None = off), ``window_result`` (WindowResult),
``span_result`` / ``steer_result`` (list[Variant]), ``lens_result`` (LensResult),
``lm_result`` (LmResult), ``running`` (name of the running experiment or None), ``error`` (str).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..interventions import tables as iv
from ..errors import SteveError
from ..events import EmitterGroup, Evented

#: the k slider's stops; None = no window (the model as it is)
K_STOPS: tuple[int | None, ...] = (1, 2, 5, 10, 25, 75, 750, None)
EVENTS = ("k", "window_result", "span_result", "steer_result", "lens_result", "lm_result",
          "running", "error")


@dataclass
class WindowResult:
    k: int
    layers: list[int] | None
    result: iv.Variant  # masked transcript vs the unmasked one
    extraction: Any = None  # Extraction with the masked maps (or None)


@dataclass
class LensResult:
    encoder: list  # [(layer, Variant)]
    decoder: iv.DecoderLensTable


@dataclass
class LmResult:
    prompt: str
    next_tokens: Any = None  # NextTokens
    neighbours: list = field(default_factory=list)  # [(token, text, cosine)]
    word: str = ""


class Experiments(Evented):
    def __init__(self):
        self.events = EmitterGroup(*EVENTS)
        self.k: int | None = None
        self.window_result: WindowResult | None = None
        self.span_result: list | None = None
        self.steer_result: list | None = None
        self.lens_result: LensResult | None = None
        self.lm_result: LmResult | None = None
        self.running: str | None = None
        self.error: str | None = None

    def set_k(self, k: int | None) -> None:
        """The window slider's value (one of K_STOPS); emits ``k`` when it changes."""
        if k not in K_STOPS:
            raise ValueError(f"k must be one of {K_STOPS}, got {k!r}")
        self._set("k", k)

    def set(self, name: str, value: Any) -> None:
        """Store a result, ``running`` or ``error`` and emit its event (even when equal: the
        same error said again is news)."""
        if name not in EVENTS:
            raise AttributeError(name)
        setattr(self, name, value)
        getattr(self.events, name)(value)

    def clear(self) -> None:
        """Forget every result (another utterance is shown)."""
        for name in ("window_result", "span_result", "steer_result", "lens_result"):
            if getattr(self, name) is not None:
                self.set(name, None)


# --------------------------------------------------------------------------------------------
# tasks: task(adapter, progress, should_cancel) -> result

def window_task(samples: np.ndarray, k: int, layers: Sequence[int] | None, window: int,
                reference: str | None):
    """Extraction inside the attention window: the masked maps and the masked transcript."""
    def task(adapter, progress, should_cancel) -> WindowResult:
        iv.require_interventions(adapter)
        ref = reference
        if ref is None:
            ref = iv.reference_transcript(adapter, samples, window, should_cancel)
        with adapter.attention_window(k, layers):
            ex = adapter.extract(samples, window=window, progress=progress,
                                 should_cancel=should_cancel)
        ex.meta = dict(ex.meta, attention_window={"k": k, "layers": layers})
        for m in ex.maps.values():
            m.model = f"{m.model}, attention \u00b1{k} frames"
            m.meta = dict(m.meta, attention_window={"k": k, "layers": layers})
        return WindowResult(k, layers, iv.Variant.of(f"k={k}", ref, ex.transcript.text), ex)
    return task


def span_task(samples, t0: float, t1: float, fill: str, window: int, reference: str | None):
    def task(adapter, progress, should_cancel):
        return iv.span_removal(adapter, samples, t0, t1, fill, window, reference, progress,
                               should_cancel)
    return task


def steer_task(samples, site: str, feature: int, scale: float, span, sae_dir: str | None,
               window: int, reference: str | None):
    def task(adapter, progress, should_cancel):
        sae = None
        if sae_dir:
            from ..features.sae import check_site, load_sae

            sae = load_sae(sae_dir)
            check_site(sae, site, adapter.site_dim(site), sae_dir)
        return iv.steer(adapter, samples, site, feature, scale, span, sae, window, reference,
                        progress, should_cancel)
    return task


def lens_task(samples, window: int, reference=None):
    """``reference``: the shown Transcript (text and tokens), or None to transcribe first."""
    def task(adapter, progress, should_cancel) -> LensResult:
        iv.require_interventions(adapter)
        t = reference if reference is not None and reference.tokens else \
            adapter.transcribe(samples, window=window, should_cancel=should_cancel)
        enc = iv.encoder_lens(adapter, samples, window, t.text, progress, should_cancel)
        return LensResult(enc, iv.decoder_lens_table(adapter, samples, t.tokens, window))
    return task


def lm_task(prompt: str, word: str, top: int = 20):
    def task(adapter, progress, should_cancel) -> LmResult:
        iv.require_interventions(adapter)
        if not prompt and not word.strip():
            raise SteveError("the prompt is empty: type some text, e.g. ' rug'")
        out = LmResult(prompt, word=word)
        if prompt:
            out.next_tokens = adapter.lm_next_tokens(prompt, top)
        if word.strip():
            out.neighbours = adapter.nearest_tokens(word, top)
        return out
    return task
