"""The model adapter Protocol and the entry-point registry.

An adapter wraps one speech transformer. Third parties add a model by shipping a package with an
entry point in the group ``steve_qt.adapters``; the entry point's object is a factory called as
``factory(arg)`` where ``arg`` is the part of the model spec after the colon (or None):

    [project.entry-points."steve_qt.adapters"]
    hubert = "my_pkg:HubertAdapter"        # steve-qt extract x.wav --model hubert:facebook/hubert-base

Model specs: ``whisper`` (embedded tiny.en), ``whisper:NAME_OR_PATH``, ``wav2vec2:DIR_OR_ID``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from ..attention.maps import AttentionMaps
from ..errors import SteveError
from ..frames import FrameGrid

ENTRY_POINT_GROUP = "steve_qt.adapters"
DEFAULT_SPEC = "whisper"

#: progress(done, total, what) -- called from the worker thread; must be cheap.
ProgressFn = Callable[[int, int, str], None]
#: should_cancel() -> True to stop as soon as possible (the adapter raises Cancelled).
CancelFn = Callable[[], bool]
#: on_partial(extraction) -- an early, incomplete result (``extraction.pending`` names what is
#: still coming); called from the worker thread, at most once per stage, never with the final one.
PartialFn = Callable[["Extraction"], None]


@dataclass
class Word:
    start_s: float
    end_s: float
    text: str
    probability: float = float("nan")


@dataclass
class Transcript:
    text: str = ""
    tokens: list[int] = field(default_factory=list)  # token ids of the teacher-forced sequence
    token_texts: list[str] = field(default_factory=list)  # one readable label per token
    words: list[Word] = field(default_factory=list)  # word timings in seconds (file timeline)
    frame_labels: list[str] | None = None  # per-frame CTC labels (wav2vec 2.0), "" for blank


@dataclass(frozen=True)
class Site:
    """A place in the model whose output can be read per frame or per token.

    ``name`` is the module path in the loaded model's own code (``encoder.blocks.2.mlp.1`` for
    openai-whisper, ``wav2vec2.encoder.layers.3`` for a transformers wav2vec 2.0 with a CTC head);
    ``dim`` the width D of its (T, D) output; ``axis`` ``"frames"`` (the audio frame grid, cropped
    as the attention maps are) or ``"tokens"`` (rows of the teacher-forced transcript); ``layer``
    the block it belongs to (from 0; None for a final layer norm); ``kind`` ``"residual"`` (the
    residual stream after a block), ``"mlp"`` (the feed-forward activation: the neurons) or
    ``"ln_post"`` (the final layer norm).
    """

    name: str
    dim: int
    axis: str
    layer: int | None
    kind: str


@dataclass
class Extraction:
    """What one adapter run produced for one audio (one window of it, for Whisper)."""

    maps: dict[str, AttentionMaps]  # component -> maps
    transcript: Transcript
    model: str
    window: int = 0
    num_windows: int = 1
    meta: dict = field(default_factory=dict)
    #: what a partial result still lacks, in the order it comes: "transcript" (text and word
    #: timings), "cross", "decoder". Empty for a complete extraction.
    pending: tuple[str, ...] = ()
    #: site name -> float32 (T, D): frames sites on ``frame_grid`` cropped exactly as the
    #: attention maps' frames, tokens sites one row per teacher-forced token
    activations: dict[str, np.ndarray] = field(default_factory=dict)
    #: the grid of the frames axis (frames sites and encoder maps); None when not known
    frame_grid: FrameGrid | None = None
    #: seconds the adapter spent on parts of this run where it measured them (Whisper: ``mel``,
    #: ``forward`` of the encoder); for benchmarks, may be empty
    timings: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """A loaded model that can extract attention.

    Attributes:
        name: entry-point name (``whisper``, ``wav2vec2``).
        model_id: human-readable id of the loaded weights (shown in titles and stored in npz).
        components: components this model can produce, a subset of ``("encoder", "cross",
            "decoder")``; the first is the default.
        sample_rate: rate the model expects (16000).
    """

    name: str
    model_id: str
    components: tuple[str, ...]
    sample_rate: int

    def num_windows(self, num_samples: int) -> int:
        """How many windows audio of ``num_samples`` (at ``sample_rate``) is split into."""
        ...

    def list_sites(self) -> list[Site]:
        """The sites ``extract(..., sites=...)`` can read, in model order."""
        ...

    def extract(
        self,
        audio: np.ndarray,
        components: Sequence[str] | None = None,
        window: int = 0,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        sites: Sequence[str] = (),
    ) -> Extraction:
        """Run the model on ``audio`` (mono float32 at ``sample_rate``) and capture attention.

        ``components`` defaults to all of ``self.components``; ``()`` captures no attention.
        ``sites`` (names from ``list_sites()``) fill ``Extraction.activations`` from the same
        forward pass. Raises SteveError on bad input (an unknown site names the valid ones)
        and Cancelled when ``should_cancel()`` turned True.

        Optional, for adapters that compute in stages: an ``on_partial: PartialFn | None = None``
        keyword. When given, the adapter calls it with each earlier, incomplete Extraction (the
        encoder maps first, then the transcript, ...); the return value is always complete.
        ``pipeline.extract`` passes it only to adapters whose ``extract`` accepts it, so adapters
        without it keep working unchanged.
        """
        ...


def available_adapters() -> dict[str, object]:
    """Entry points registered under ``steve_qt.adapters``: name -> EntryPoint."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def word_alignment(maps, tokens: Sequence[int]):
    """Word timings from a model's cross-attention maps, computed by the adapter that made them.

    The adapter is found by the model name at the start of ``maps.model`` (``whisper:…``) without
    loading its weights; its factory's ``align_words(maps, tokens)`` answers. None when that
    adapter has no word alignment (wav2vec 2.0, an unknown plugin).
    """
    name, _ = parse_spec(maps.model.split()[0] if maps.model else None)
    ep = available_adapters().get(name)
    if ep is None:
        return None
    try:
        align = getattr(ep.load(), "align_words", None)
    except Exception as exc:  # a broken plugin must not take the app down
        raise SteveError(f"adapter {name!r} failed to import: {exc}") from exc
    return align(maps, tokens) if align is not None else None


def parse_spec(spec: str | None) -> tuple[str, str | None]:
    spec = (spec or DEFAULT_SPEC).strip()
    name, sep, arg = spec.partition(":")
    return name.strip().lower(), (arg.strip() or None) if sep else None


def load_adapter(spec: str | None = None, device: str | None = None) -> Adapter:
    """Load the adapter named by a model spec (``whisper``, ``whisper:base``, ``wav2vec2:DIR``).

    ``device`` (``auto``/``cpu``/``cuda[:N]``; None = ``$STEVE_QT_DEVICE`` or auto) is passed as
    ``factory(arg, device=...)`` to factories that take a ``device`` keyword; an adapter without
    one runs on the CPU (asking it for CUDA explicitly is an error).
    """
    from .devices import requested, resolve

    name, arg = parse_spec(spec)
    eps = available_adapters()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none (is steve_qt installed with pip install -e .?)"
        raise SteveError(f"unknown model {name!r}; installed adapters: {known}")
    wanted = device or requested()
    resolved = resolve(wanted)
    try:
        factory = eps[name].load()
    except Exception as exc:  # a broken plugin must not take the app down
        raise SteveError(f"adapter {name!r} failed to import: {exc}") from exc
    if _takes_device(factory):
        adapter = factory(arg, device=resolved)
    elif resolved != "cpu" and wanted != "auto":
        raise SteveError(f"adapter {name!r} runs on the CPU only; it cannot use device {wanted!r}")
    else:
        adapter = factory(arg)
    if not isinstance(adapter, Adapter):
        raise SteveError(f"adapter {name!r} does not implement the steve_qt Adapter protocol")
    return adapter


def _takes_device(factory) -> bool:
    import inspect

    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "device" in params
