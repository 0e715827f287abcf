"""Data export beside the .npz (steve_qt.core.models.npzio): interval CSV and TextGrid.

- :func:`write_interval_csv`: attention aggregated over alignment intervals, one row per
  (layer, head, query interval, key interval), from :func:`steve_qt.core.attention.analysis.aggregate_intervals`.
- :func:`write_textgrid_export`: the alignment tiers plus the model's word timings as one more
  interval tier, in Praat's format (:func:`steve_qt.core.speech.alignment.write_textgrid`).

Both write atomically (temporary file + rename) and never replace an existing file unless
``force``; an unwritable path is a SteveError naming it.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

from .maps import AttentionMaps
from ..errors import SteveError
from ..fileio import atomic_path, check_writable, write_csv

CSV_COLUMNS = (
    "layer", "head",
    "query_index", "query_label", "query_start_s", "query_end_s",
    "key_index", "key_label", "key_start_s", "key_end_s",
    "mean_weight",  # mean weight over the interval pair's frame pairs
    "summed_mass",  # per query frame, weight summed over the key interval; mean over query frames
    "query_padding",  # mean mass the query interval's frames sent to cropped padding keys
    "query_frames", "key_frames",  # frames of each interval (0: the interval has no frame)
)
WORDS_TIER = "whisper words"


def _number(x: float) -> str:
    """Shortest text that reads back as the same float; empty for NaN (no frames)."""
    x = float(x)
    return "" if math.isnan(x) else repr(x)


def interval_rows(maps: AttentionMaps, query_tier, key_tier=None,
                  layers: Iterable[int] | None = None,
                  heads: Iterable[int] | None = None) -> Iterable[list[str]]:
    """CSV rows (as strings, in CSV_COLUMNS order) for every layer and head."""
    from .analysis import aggregate_intervals

    layers = range(maps.num_layers) if layers is None else layers
    for layer in layers:
        for head in (range(maps.num_heads) if heads is None else heads):
            im = aggregate_intervals(maps, layer, head, query_tier, key_tier)
            for i, qi in enumerate(im.query_intervals):
                nq = im.query_frames[i][1] - im.query_frames[i][0]
                for j, ki in enumerate(im.key_intervals):
                    nk = im.key_frames[j][1] - im.key_frames[j][0]
                    yield [str(layer), str(head),
                           str(i), qi.label, _number(qi.start_s), _number(qi.end_s),
                           str(j), ki.label, _number(ki.start_s), _number(ki.end_s),
                           _number(im.mean[i, j]), _number(im.total[i, j]),
                           _number(im.padding[i]), str(nq), str(nk)]


def _tier(alignment, name: str, path):
    tier = alignment.tiers.get(name) if alignment is not None else None
    if tier is None:
        have = ", ".join(alignment.tiers) if alignment is not None and alignment.tiers else "none"
        raise SteveError(f"the alignment has no {name!r} tier to aggregate over (tiers: {have})",
                         path)
    if not tier.intervals:
        raise SteveError(f"the alignment's {name!r} tier has no intervals", path)
    return tier


def write_interval_csv(path: str | os.PathLike, maps: AttentionMaps, alignment,
                       tier: str = "phones", force: bool = False) -> Path:
    """Attention of every layer and head aggregated over the intervals of one alignment tier.

    Rows are (layer, head, query interval, key interval) with the intervals' labels and times in
    seconds; layers and heads count from 0 as in the .npz. Both axes use the same tier, so the
    maps need audio frames as queries and keys (encoder self-attention).
    """
    check_writable(path, force)
    the_tier = _tier(alignment, tier, path)
    return write_csv(path, CSV_COLUMNS, interval_rows(maps, the_tier), force=force)


def words_tier(words: Sequence, duration_s: float, name: str = WORDS_TIER):
    """The model's word timings (adapters.Word) as an alignment Tier clipped to [0, duration]."""
    from ..speech.alignment import Interval, Tier

    out = []
    for w in words:
        a, b = max(0.0, float(w.start_s)), min(float(duration_s), float(w.end_s))
        if b > a:
            out.append(Interval(a, b, str(w.text).strip()))
    return Tier(name, out)


def write_eaf_export(path: str | os.PathLike, alignment, transcript_words: Sequence,
                     duration_s: float, force: bool = False, words_tier_name: str = WORDS_TIER,
                     media: str | None = None) -> Path:
    """The alignment's tiers (if any) plus the model's words as an ELAN ``.eaf``
    (:func:`steve_qt.core.speech.alignment.write_eaf`: gaps and overlaps kept, times in ms)."""
    from ..speech.alignment import write_eaf

    return write_textgrid_export(path, alignment, transcript_words, duration_s, force,
                                 words_tier_name, writer=lambda a, p, d: write_eaf(a, p, media))


def write_textgrid_export(path: str | os.PathLike, alignment, transcript_words: Sequence,
                          duration_s: float, force: bool = False,
                          words_tier_name: str = WORDS_TIER, writer=None) -> Path:
    """The alignment's tiers (if any) plus the model's words as the tier ``words_tier_name``.

    Praat needs tiers that tile the whole file: gaps become empty intervals (see
    :func:`steve_qt.core.speech.alignment.write_textgrid`). Word timings past ``duration_s`` are clipped.
    ``writer(alignment, path, duration_s)`` writes another format (ELAN) instead.
    """
    from ..speech.alignment import Alignment, write_textgrid

    writer = writer or (lambda a, p, d: write_textgrid(a, p, duration_s=d))

    check_writable(path, force)
    tiers = dict(alignment.tiers) if alignment is not None else {}
    key = words_tier_name
    while key in tiers:
        key += "'"
    tiers[key] = words_tier(transcript_words, duration_s, words_tier_name)
    if not tiers[key].intervals and len(tiers) == 1:
        raise SteveError("nothing to write: no alignment and the model gave no word timings", path)
    combined = Alignment(tiers, getattr(alignment, "text", None), None, duration_s)
    with atomic_path(path, force) as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            writer(combined, tmp, duration_s)
        except SteveError as exc:  # name the file the user asked for, not the temporary one
            raise SteveError(exc.problem, path) from exc
    for w in caught:
        warnings.warn(str(w.message).replace(str(tmp), str(path)), w.category, stacklevel=2)
    return Path(path)
