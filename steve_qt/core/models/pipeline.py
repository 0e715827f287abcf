"""The steps every front end shares: open an utterance, load a model once, extract attention."""

from __future__ import annotations

import inspect
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .adapters import (Adapter, CancelFn, Extraction, PartialFn, ProgressFn, load_adapter,
                       parse_spec)
from ..speech.audio import Audio, load_audio


@dataclass
class Utterance:
    audio: Audio
    alignment: object | None  # steve_qt.core.speech.alignment.Alignment
    alignment_kind: str | None = None  # "timit" | "textgrid" | None

    @property
    def path(self) -> Path | None:
        return self.audio.path


def open_utterance(audio_path: str | os.PathLike, alignment: str = "auto",
                   alignment_path: str | os.PathLike | None = None,
                   phone_tier: str | None = None, word_tier: str | None = None) -> Utterance:
    """Load audio and its alignment (found beside it for ``auto``); SteveError on bad input."""
    from ..speech.alignment import alignment_kind, find_alignment, load_alignment

    audio = load_audio(audio_path)
    if alignment == "none":
        return Utterance(audio, None, None)
    kind: str | None = alignment
    if alignment == "auto":
        if alignment_path is not None:
            kind = alignment_kind(alignment_path)
        else:
            found = find_alignment(audio_path)
            kind = found[0] if found else None
    align = load_alignment(audio_path, kind=alignment, path=alignment_path,
                           duration_s=audio.duration, phone_tier=phone_tier, word_tier=word_tier)
    return Utterance(audio, align, kind if align is not None else None)


_ADAPTERS: dict[str, Adapter] = {}  # "spec" on the CPU, "spec@cuda" elsewhere
_ADAPTERS_LOCK = threading.Lock()
_LOADS: dict[str, int] = {}  # how often each was loaded in this process (once, or after a drop)


def load_count(spec: str | None = None) -> int:
    """How many times ``get_adapter`` loaded the model of ``spec`` in this process (on any
    device): 1 in a corpus worker that keeps its model for the whole run."""
    key = normalise_spec(spec)
    return sum(n for k, n in _LOADS.items() if k == key or k.startswith(key + "@"))


def normalise_spec(spec: str | None) -> str:
    name, arg = parse_spec(spec)
    return f"{name}:{arg}" if arg else name


def get_adapter(spec: str | None = None, device: str | None = None) -> Adapter:
    """Load a model once per process and device and reuse it (thread-safe).

    ``device``: ``auto``/``cpu``/``cuda[:N]``; None = ``$STEVE_QT_DEVICE`` (``--device``) or auto.
    """
    from .devices import resolve

    where = resolve(device)
    key = normalise_spec(spec)
    cache_key = key if where == "cpu" else f"{key}@{where}"
    with _ADAPTERS_LOCK:
        if cache_key not in _ADAPTERS:
            _ADAPTERS[cache_key] = load_adapter(key, where)
            _LOADS[cache_key] = _LOADS.get(cache_key, 0) + 1
        return _ADAPTERS[cache_key]


def loaded_adapter(spec: str | None = None) -> Adapter | None:
    """The model of ``spec`` when it is loaded already, else None (never loads, never waits)."""
    key = normalise_spec(spec)  # on the CPU; elsewhere "spec@cuda" (see get_adapter)
    return _ADAPTERS.get(key) or next((a for k, a in _ADAPTERS.items()
                                       if k.startswith(key + "@")), None)


def extract(adapter: Adapter, audio: Audio, components: Sequence[str] | None = None,
            window: int = 0, progress: ProgressFn | None = None,
            should_cancel: CancelFn | None = None, sites: Sequence[str] = (),
            on_partial: PartialFn | None = None) -> Extraction:
    """``adapter.extract``. Adapters from before sites and partial results keep working:
    ``sites`` is passed only when asked for, ``on_partial`` only to adapters that accept it."""
    extra: dict = {}
    if sites:
        extra["sites"] = sites
    if on_partial is not None and accepts_partial(adapter):
        extra["on_partial"] = on_partial
    return adapter.extract(audio.samples, components=components, window=window,
                           progress=progress, should_cancel=should_cancel, **extra)


def accepts_partial(adapter: Adapter) -> bool:
    """Whether ``adapter.extract`` takes an ``on_partial`` keyword (or ``**kwargs``)."""
    try:
        params = inspect.signature(adapter.extract).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "on_partial" or p.kind is p.VAR_KEYWORD for p in params)


def check_measures(adapter: Adapter, measures: Sequence[str], component: str = "encoder") -> None:
    """SteveError (one line) when ``adapter`` cannot give one of ``measures`` for ``component``."""
    from ..errors import SteveError
    from ..attention.measures import cli_name

    if not measures:
        return
    if component != "encoder":
        raise SteveError(f"context-mixing measures are computed for encoder self-attention only, "
                         f"not {component!r}")
    why = getattr(adapter, "measure_unavailable", None)
    for m in measures:
        reason = why(m) if why is not None else "its adapter computes no context-mixing measures"
        if reason:
            raise SteveError(f"this model cannot give {cli_name(m)}: {reason}")


def compute_measures(adapter: Adapter, audio: Audio, ex: Extraction, measures: Sequence[str],
                     progress: ProgressFn | None = None,
                     should_cancel: CancelFn | None = None) -> dict:
    """Encoder context-mixing ``measures`` of the window ``ex`` came from (those it lacks):
    name -> float16 array. ``ex`` is not changed (the GUI attaches them in its own thread)."""
    check_measures(adapter, measures)
    if "encoder" not in ex.maps:
        from ..errors import SteveError

        raise SteveError("context-mixing measures need the encoder self-attention maps")
    todo = [m for m in measures if m not in ex.maps["encoder"].measures]
    if not todo:
        return {}
    return adapter.extract_measures(
        audio.samples, todo, window=ex.window, tokens=ex.transcript.tokens or None,
        text_start=ex.meta.get("text_token_start"), progress=progress,
        should_cancel=should_cancel)


def add_measures(adapter: Adapter, audio: Audio, ex: Extraction, measures: Sequence[str],
                 progress: ProgressFn | None = None,
                 should_cancel: CancelFn | None = None) -> Extraction:
    """Compute encoder context-mixing ``measures`` and store them in ``ex.maps["encoder"]``."""
    got = compute_measures(adapter, audio, ex, measures, progress, should_cancel)
    ex.maps["encoder"].add_measures(got)
    return ex
