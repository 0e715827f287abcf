"""Time-aligned labels: Interval, Tier, Alignment; TIMIT and Praat TextGrid readers and writers.

TIMIT: ``name.phn`` and ``name.wrd`` hold ``start_sample end_sample label`` lines at 16 kHz,
``name.txt`` holds ``start end sentence``. Extensions may be in any case (real TIMIT has .PHN).
Word intervals may overlap in real TIMIT files; they are kept as they are.

TextGrid: Praat's long and short text formats, in UTF-8, UTF-16 with or without a byte-order
mark, or (with a warning) Latin-1. A Praat text file is a sequence of numbers, "strings" (a
doubled "" is a quote) and <flags>; everything else (``xmin =``, ``item [1]:``, ``! comments``)
is layout, which is why one small tokenizer reads both formats. We read it ourselves rather than
through the ``textgrid`` package, because that package silently drops intervals whose end is
not after their start, rounds times to 5 decimals and only reads files it can decode itself; the
tests check this reader against it on well-formed files.

ELAN: ``.eaf`` files (read and written with pympi-ling). Every time-aligned tier with annotations
becomes a tier of intervals in ELAN's millisecond times, sorted by start; gaps and overlaps between
annotations are kept as they are. Reference (symbolic) tiers carry no times of their own and are
left out. Tiers are chosen as for TextGrids (``--phone-tier``/``--word-tier`` or the recognised
names); a file without any time-aligned tier, or without the named tier, is an error.

Recognised tiers are stored under the keys ``"phones"`` and ``"words"`` (the tier keeps its own
name in ``Tier.name``); other interval tiers are kept under their own names, in file order.

Validation (readers and :func:`check_alignment`): negative times and intervals that end before
they start are errors; zero-length intervals are kept; overlapping phone intervals are kept with
a warning; times past the end of the audio are clipped with a warning when they are at most
``tolerance_s`` (one 20 ms frame) too late, and are an error otherwise. Interval numbers in
messages count from 1, as in Praat.
"""

from __future__ import annotations

import bisect
import codecs
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import AUDIO_EXTENSIONS
from ..errors import SteveError
from ..frames import samples_to_seconds, seconds_to_samples
from ..warnings import SteveWarning

PHONE_TIER_NAMES = ("phones", "phone", "phonemes", "phoneme", "segments", "segment", "phn")
WORD_TIER_NAMES = ("words", "word", "wrd")
ALIGNMENT_KINDS = ("auto", "timit", "textgrid", "eaf", "none")
TIMIT_RATE = 16000

_OWN_SUFFIXES = (".phn", ".wrd", ".txt", ".textgrid", ".eaf")
_TIME_EPS = 1e-7  # seconds: differences below this are float noise (a sample at 16 kHz is 62.5 µs)


# --- data model -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    start_s: float
    end_s: float
    label: str

    @property
    def duration(self) -> float:
        return self.end_s - self.start_s

    @property
    def midpoint(self) -> float:
        return (self.start_s + self.end_s) / 2


@dataclass
class Tier:
    name: str
    intervals: list[Interval]
    source: Path | None = field(default=None, compare=False, repr=False)  # file it was read from

    def __len__(self) -> int:
        return len(self.intervals)

    def __iter__(self):
        return iter(self.intervals)

    @property
    def labels(self) -> list[str]:
        return [iv.label for iv in self.intervals]

    @property
    def starts(self) -> np.ndarray:  # (n,) float64 seconds
        return np.fromiter((iv.start_s for iv in self.intervals), np.float64, len(self.intervals))

    @property
    def ends(self) -> np.ndarray:  # (n,) float64 seconds
        return np.fromiter((iv.end_s for iv in self.intervals), np.float64, len(self.intervals))

    def index_at(self, t: float) -> int | None:
        """Index of the first interval with start <= t < end (None if there is none)."""
        hits = np.flatnonzero((self.starts <= t) & (t < self.ends))
        return int(hits[0]) if hits.size else None

    def at(self, t: float) -> Interval | None:
        i = self.index_at(t)
        return None if i is None else self.intervals[i]


@dataclass
class Alignment:
    tiers: dict[str, Tier]  # "phones", "words", then other tiers by name; order = display order
    text: str | None = None  # TIMIT .txt sentence
    source: Path | None = None  # file it came from (.phn for TIMIT)
    duration_s: float | None = None  # TextGrid xmax, or the audio duration once checked

    @property
    def phones(self) -> Tier | None:
        return self.tiers.get("phones")

    @property
    def words(self) -> Tier | None:
        return self.tiers.get("words")

    @property
    def end_s(self) -> float:
        """Latest interval end over all tiers (0 when there are no intervals)."""
        return max((iv.end_s for tier in self.tiers.values() for iv in tier), default=0.0)


class TierNotFound(SteveError):
    """No phone or word tier could be recognised (or a named tier is missing).

    ``tier_names`` lists the interval tiers present, so that the GUI can offer a choice.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None, tier_names: list[str]):
        super().__init__(problem, path)
        self.tier_names = list(tier_names)


# --- shared helpers ---------------------------------------------------------------------------
def _fmt(t: float) -> str:
    return f"{t:.6g} s"


def _warn(message: str, path: str | os.PathLike | None) -> None:
    warnings.warn(f"{os.fspath(path)}: {message}" if path else message, SteveWarning, stacklevel=3)


def _check_interval(start: float, end: float, path, tier: str, index: int, line: int | None = None):
    """Negative times and reversed intervals are errors (index counts from 0, messages from 1)."""
    where = f"line {line}: " if line is not None else ""
    what = f"tier '{tier}' interval {index + 1}"
    if not (math.isfinite(start) and math.isfinite(end)):
        raise SteveError(f"{where}{what} has a time that is not a finite number", path)
    if start < 0 or end < 0:
        raise SteveError(f"{where}{what} has a negative time ({_fmt(start)} to {_fmt(end)})", path)
    if end < start:
        raise SteveError(f"{where}{what} ends before it starts ({_fmt(start)} to {_fmt(end)})", path)


def _warn_overlaps(tier: Tier, path) -> None:
    """Phone intervals that start before the previous one ends: kept, with one warning."""
    s, e = tier.starts, tier.ends
    bad = np.flatnonzero(s[1:] < e[:-1] - _TIME_EPS)  # interval k+1 starts before k ends
    if bad.size:
        k = int(bad[0])
        _warn(f"tier '{tier.name}': {bad.size} interval(s) overlap the interval before them "
              f"(first: interval {k + 2} starts at {_fmt(s[k + 1])}, interval {k + 1} ends at "
              f"{_fmt(e[k])}); kept as they are", path)


def _decode(data: bytes, path) -> str:
    """Bytes of a text file -> str: UTF-8 (BOM optional), UTF-16 (BOM optional), else Latin-1."""
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[3:].decode("utf-8")
        if data.startswith((codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)):
            return data.decode("utf-16")
        if len(data) >= 2 and data[0] == 0 and data[1] != 0:
            return data.decode("utf-16-be")
        if len(data) >= 2 and data[0] != 0 and data[1] == 0:
            return data.decode("utf-16-le")
    except UnicodeDecodeError as exc:
        raise SteveError(f"text is not valid {exc.encoding.upper()} ({exc.reason} at byte "
                         f"{exc.start})", path) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        _warn("not UTF-8 or UTF-16 text; read as Latin-1", path)
        return data.decode("latin-1")


def _read_text(path: Path) -> str:
    if not path.exists():
        raise SteveError("file not found", path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SteveError(f"cannot read the file ({exc.strerror or exc})", path) from exc
    return _decode(data, path)


def _write_bytes(path: Path, data: bytes) -> Path:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise SteveError(f"cannot write the file ({exc.strerror or exc})", path) from exc
    return path


def _stem_path(path: str | os.PathLike) -> Path:
    """'dir/SA1.WAV', 'dir/SA1.phn' or 'dir/SA1' -> 'dir/SA1' (the name without its extension)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix and (suffix in _OWN_SUFFIXES or suffix in AUDIO_EXTENSIONS or p.is_file()):
        return p.with_suffix("")
    return p


def _files_beside(path: str | os.PathLike, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Files with the same stem as ``path`` and one of ``suffixes`` (any case) -> {suffix: path}."""
    stem = _stem_path(path)
    found: dict[str, Path] = {}
    for suffix in suffixes:  # fast path: lower and upper case
        for candidate in (suffix, suffix.upper()):
            q = stem.parent / (stem.name + candidate)
            if q.is_file():
                found.setdefault(suffix, q)
    missing = [s for s in suffixes if s not in found]
    if missing and stem.parent.is_dir():  # mixed case such as .TextGrid
        # names compared as strings first: Path objects only for this stem's files
        for name in sorted(n for n in os.listdir(stem.parent) if n.startswith(stem.name)):
            q = stem.parent / name
            if q.stem == stem.name and q.suffix.lower() in missing and q.is_file():
                found.setdefault(q.suffix.lower(), q)
    return found


def _unique_key(name: str, taken: dict) -> str:
    key, n = name, 2
    while key in taken:
        key, n = f"{name} ({n})", n + 1
    return key


# --- TIMIT ------------------------------------------------------------------------------------
def _parse_sample(text: str, what: str, line: int, path) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise SteveError(f"line {line}: {what} sample {text!r} is not a number", path)
    return value


def _read_timit_tier(path: Path, name: str, sample_rate: int) -> Tier:
    rows: list[tuple[float, float, str, int]] = []  # (start sample, end sample, label, line)
    for line_no, line in enumerate(_read_text(path).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise SteveError(f"line {line_no}: expected 3 fields 'start_sample end_sample label', "
                             f"found {len(fields)}: {line.strip()!r}", path)
        a = _parse_sample(fields[0], "start", line_no, path)
        b = _parse_sample(fields[1], "end", line_no, path)
        rows.append((a, b, fields[2], line_no))
    seconds = samples_to_seconds(np.array([r[:2] for r in rows], dtype=np.float64).reshape(-1, 2),
                                 sample_rate).tolist()  # (n, 2)
    intervals: list[Interval] = []
    for (start, end), (_, _, label, line_no) in zip(seconds, rows):
        _check_interval(start, end, path, name, len(intervals), line_no)
        intervals.append(Interval(start, end, label))
    return Tier(name, intervals, path)


def _read_timit_text(path: Path) -> str | None:
    """The sentence of a TIMIT .txt (``start end sentence``); a line without the two sample
    numbers is taken whole as the sentence."""
    for line in _read_text(path).splitlines():
        parts = line.split(None, 2)
        if not parts:
            continue
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            return parts[2].strip() if len(parts) == 3 else None
        return line.strip()
    return None


def read_timit(path: str | os.PathLike, sample_rate: int = TIMIT_RATE) -> Alignment:
    """Read ``.phn``, ``.wrd`` and ``.txt`` beside ``path`` (a .wav/.phn/.wrd path or a basename)."""
    files = _files_beside(path, (".phn", ".wrd", ".txt"))
    if ".phn" not in files and ".wrd" not in files:
        raise SteveError("no TIMIT .phn or .wrd file with this name", _stem_path(path))
    tiers: dict[str, Tier] = {}
    for suffix, key in ((".phn", "phones"), (".wrd", "words")):
        if suffix in files:
            tier = _read_timit_tier(files[suffix], key, sample_rate)
            if tier.intervals:
                tiers[key] = tier
            else:
                _warn("file holds no intervals; ignored", files[suffix])
    source = files.get(".phn", files.get(".wrd"))
    if not tiers:
        raise SteveError("TIMIT files hold no intervals", source)
    text = _read_timit_text(files[".txt"]) if ".txt" in files else None
    if "phones" in tiers:
        _warn_overlaps(tiers["phones"], tiers["phones"].source)
    return Alignment(tiers, text, source, None)


def _timit_label(label: str, fixes: list[str]) -> str:
    if not label.strip():  # a label of only spaces would leave the line without its label
        fixes.append("empty labels written as h#")
        return "h#"
    if any(ch.isspace() for ch in label):
        fixes.append("spaces in labels written as _")
        return "_".join(label.split())
    return label


def _timit_lines(tier: Tier, sample_rate: int, path, silence_is_gap: bool) -> str:
    lines, fixes = [], []
    # TIMIT .wrd leaves silence (empty or blank labels) out
    kept = [iv for iv in tier if iv.label.strip() or not silence_is_gap]
    samples = seconds_to_samples([[iv.start_s, iv.end_s] for iv in kept], sample_rate)  # (n, 2)
    for iv, (a, b) in zip(kept, samples.reshape(-1, 2).tolist()):
        lines.append(f"{a} {b} {_timit_label(iv.label, fixes)}\n")
    for fix in dict.fromkeys(fixes):
        _warn(f"tier '{tier.name}': {fix}", path)
    return "".join(lines)


def write_timit(alignment: Alignment, base_path: str | os.PathLike,
                sample_rate: int = TIMIT_RATE) -> list[Path]:
    """Write ``base.phn`` / ``base.wrd`` (and ``base.txt`` when there is text); return the paths.

    Times are rounded to the nearest sample. Word intervals with an empty label are left out
    (TIMIT word files have no silence entries); empty phone labels are written as ``h#``.
    Other tiers have no place in TIMIT files and are left out with a warning.
    """
    base = _stem_path(base_path)
    if alignment.phones is None and alignment.words is None:
        raise SteveError("nothing to write as TIMIT files: no phones or words tier", base)
    written = []
    for key, suffix in (("phones", ".phn"), ("words", ".wrd")):
        tier = alignment.tiers.get(key)
        if tier is not None:
            out = base.parent / (base.name + suffix)
            text = _timit_lines(tier, sample_rate, out, silence_is_gap=key == "words")
            written.append(_write_bytes(out, text.encode("utf-8")))
    others = [k for k in alignment.tiers if k not in ("phones", "words")]
    if others:
        _warn(f"tiers {', '.join(map(repr, others))} not written: TIMIT files hold only phones "
              "and words", base)
    if alignment.text:
        end = alignment.duration_s if alignment.duration_s is not None else alignment.end_s
        out = base.parent / (base.name + ".txt")
        line = f"0 {seconds_to_samples(end, sample_rate)} {' '.join(alignment.text.split())}\n"
        written.append(_write_bytes(out, line.encode("utf-8")))
    return written


# --- TextGrid: reading ------------------------------------------------------------------------
_TOKEN = re.compile(
    r'''"(?P<string>(?:[^"]|"")*)"              # string; "" is an escaped quote
      | ![^\n]*                                   # comment to the end of the line
      | \[[^\]\n]*\]                              # array index: item [1], intervals [3]
      | <(?P<flag>[^>\s]*)>                       # <exists>, <absent>
      | (?<![^\s=])(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<open>")                               # a quote that is never closed
    ''', re.VERBOSE)  # anything else (xmin =, size =, tiers?) is layout and is skipped


class _Tokens:
    """The numbers, strings and flags of a Praat text file, read one at a time."""

    def __init__(self, text: str, path):
        self.text, self.path, self.pos = text, path, 0
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.items: list[tuple[str, object, int]] = []  # (kind, value, offset)
        for m in _TOKEN.finditer(text):
            kind = m.lastgroup
            if kind == "open":
                raise SteveError(f"line {self.line_of(m.start())}: a string is never closed", path)
            if kind is not None:  # None: a comment or an array index
                value = m.group(kind)
                value = value.replace('""', '"') if kind == "string" else value
                self.items.append((kind, value, m.start()))

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.line_starts, offset)

    def _take(self, what: str) -> tuple[str, object, int]:
        if self.pos >= len(self.items):
            raise SteveError(f"the file ends early, while reading {what}", self.path)
        item = self.items[self.pos]
        self.pos += 1
        return item

    def _fail(self, item, what: str):
        kind, value, offset = item
        shown = f'"{value}"' if kind == "string" else f"<{value}>" if kind == "flag" else value
        raise SteveError(f"line {self.line_of(offset)}: expected {what}, found {shown}", self.path)

    def string(self, what: str) -> str:
        item = self._take(what)
        if item[0] != "string":
            self._fail(item, what)
        return item[1]

    def number(self, what: str) -> tuple[float, int]:
        """(value, line number)."""
        item = self._take(what)
        if item[0] != "number":
            self._fail(item, what)
        return float(item[1]), self.line_of(item[2])

    def count(self, what: str) -> int:
        value, line = self.number(what)
        if value < 0 or value != int(value):
            raise SteveError(f"line {line}: {what} must be a whole number >= 0, found {value:g}",
                             self.path)
        return int(value)

    def peek_kind(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def flag(self) -> str:
        return self._take("a flag")[1]


def _parse_textgrid(text: str, path) -> tuple[float, float, list[Tier]]:
    """Praat text (long or short format) -> (xmin, xmax, interval tiers); point tiers warn."""
    tokens = _Tokens(text.replace("\r\n", "\n").replace("\r", "\n"), path)
    file_type = tokens.string("the header 'File type = \"ooTextFile\"'") if tokens.items else ""
    if "chronological" in file_type:
        raise SteveError("Praat's chronological TextGrid format is not supported; in Praat, use "
                         "'Save as text file...'", path)
    if not file_type.startswith("ooTextFile"):
        raise SteveError("not a Praat TextGrid text file (the first line should be "
                         "'File type = \"ooTextFile\"')", path)
    object_class = tokens.string("the object class")
    if object_class != "TextGrid":
        raise SteveError(f"holds a Praat {object_class}, not a TextGrid", path)
    xmin, _ = tokens.number("the TextGrid xmin")
    xmax, _ = tokens.number("the TextGrid xmax")
    num_tiers = 0
    if tokens.peek_kind() == "flag":
        if tokens.flag() == "exists":
            num_tiers = tokens.count("the number of tiers")
    elif tokens.peek_kind() == "number":  # some writers leave out <exists>
        num_tiers = tokens.count("the number of tiers")
    tiers: list[Tier] = []
    for k in range(num_tiers):
        tier_class = tokens.string(f"the class of tier {k + 1}")
        name = tokens.string(f"the name of tier {k + 1}")
        tokens.number(f"the xmin of tier '{name}'")
        tokens.number(f"the xmax of tier '{name}'")
        n = tokens.count(f"the number of items in tier '{name}'")
        if tier_class == "IntervalTier":
            tiers.append(_parse_interval_tier(tokens, name, n, path))
        elif tier_class == "TextTier":
            for j in range(n):
                tokens.number(f"the time of point {j + 1} in tier '{name}'")
                tokens.string(f"the mark of point {j + 1} in tier '{name}'")
            _warn(f"point tier '{name}' ignored (only interval tiers are shown)", path)
        else:
            raise SteveError(f"tier '{name}' has an unknown class '{tier_class}'", path)
    return xmin, xmax, tiers


def _parse_interval_tier(tokens: _Tokens, name: str, n: int, path) -> Tier:
    intervals = []
    for j in range(n):
        start, line = tokens.number(f"the xmin of interval {j + 1} in tier '{name}'")
        end, _ = tokens.number(f"the xmax of interval {j + 1} in tier '{name}'")
        label = tokens.string(f"the text of interval {j + 1} in tier '{name}'")
        _check_interval(start, end, path, name, j, line)
        intervals.append(Interval(start, end, label))
    return Tier(name, intervals, Path(path) if path is not None else None)


def _find_tier(tiers: list[Tier], wanted: str, role: str, path) -> Tier:
    """Tier named ``wanted`` (exact name, else the one name that matches in any case)."""
    names = [t.name for t in tiers]
    for t in tiers:
        if t.name == wanted:
            return t
    folded = [t for t in tiers if t.name.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    raise TierNotFound(f"no interval tier named '{wanted}' for the {role}; interval tiers: "
                       f"{', '.join(map(repr, names)) or 'none'}", path, names)


def _recognise(tiers: list[Tier], names: tuple[str, ...]) -> Tier | None:
    return next((t for t in tiers if t.name.strip().lower() in names), None)


def _pick_tiers(tiers: list[Tier], path, phone_tier: str | None,
                word_tier: str | None) -> dict[str, Tier]:
    """Interval tiers -> {"phones": ..., "words": ..., other names: ...} in file order."""
    names = [t.name for t in tiers]
    if not tiers:
        raise TierNotFound("holds no interval tiers", path, names)
    phones = (_find_tier(tiers, phone_tier, "phones", path) if phone_tier is not None
              else _recognise(tiers, PHONE_TIER_NAMES))
    words = (_find_tier(tiers, word_tier, "words", path) if word_tier is not None
             else _recognise(tiers, WORD_TIER_NAMES))
    if phones is not None and phones is words:
        raise SteveError(f"tier '{phones.name}' cannot be both the phone and the word tier", path)
    if phones is None and words is None:
        raise TierNotFound(f"no phone or word tier found (looked for tiers named phones or "
                           f"words); interval tiers: {', '.join(map(repr, names))}", path, names)
    out: dict[str, Tier] = {}
    for t in tiers:
        key = "phones" if t is phones else "words" if t is words else t.name
        out[_unique_key(key, out)] = t
    return out


def read_textgrid(path: str | os.PathLike, phone_tier: str | None = None,
                  word_tier: str | None = None) -> Alignment:
    """Read a Praat TextGrid (long or short text format, UTF-8/UTF-16/Latin-1).

    ``phone_tier``/``word_tier`` name the tiers to use instead of the recognised ones.
    Raises :class:`TierNotFound` when neither tier can be found.
    """
    p = Path(path)
    if not p.exists():
        raise SteveError("file not found", p)
    data = p.read_bytes() if p.is_file() else b""
    if data.startswith(b"ooBinaryFile"):
        raise SteveError("binary TextGrid files are not supported; in Praat, use 'Save as text "
                         "file...'", p)
    xmin, xmax, tiers = _parse_textgrid(_decode(data, p), p)
    picked = _pick_tiers(tiers, p, phone_tier, word_tier)
    if "phones" in picked:
        _warn_overlaps(picked["phones"], p)
    return Alignment(picked, None, p, xmax)


# --- TextGrid: writing ------------------------------------------------------------------------
def _praat_number(x: float) -> str:
    """Shortest decimal that reads back as the same float, without an exponent."""
    return np.format_float_positional(float(x) + 0.0, unique=True, trim="-")


def _praat_string(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def _tiling(tier: Tier, xmin: float, xmax: float, path) -> list[Interval]:
    """Intervals that tile [xmin, xmax] as Praat requires: gaps become "" intervals; zero-length
    intervals are left out and overlaps are cut (the later interval starts where the earlier
    one ends), each with a warning."""
    out: list[Interval] = []
    t = xmin
    dropped = cut = 0
    for iv in sorted(tier.intervals, key=lambda iv: iv.start_s):
        start, end = iv.start_s, iv.end_s
        if abs(start - t) < _TIME_EPS:
            start = t
        if start < t:
            cut += 1
            start = t
        if end - start <= _TIME_EPS:
            dropped += 1
            continue
        if start > t:
            out.append(Interval(t, start, ""))
        out.append(Interval(start, end, iv.label))
        t = end
    if xmax - t > _TIME_EPS or not out:
        out.append(Interval(t, max(xmax, t), ""))
    if dropped:
        _warn(f"tier '{tier.name}': {dropped} interval(s) of zero length left out (Praat "
              "intervals must have a duration)", path)
    if cut:
        _warn(f"tier '{tier.name}': {cut} interval(s) overlapped the one before and now start "
              "where it ends (Praat tiers cannot overlap)", path)
    return out


def _textgrid_text(xmin: float, xmax: float, tiers: list[tuple[str, list[Interval]]]) -> str:
    """Praat's long text format."""
    lines = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "",
             f"xmin = {_praat_number(xmin)} ", f"xmax = {_praat_number(xmax)} ",
             "tiers? <exists> ", f"size = {len(tiers)} ", "item []: "]
    for k, (name, intervals) in enumerate(tiers, 1):
        lines += [f"    item [{k}]:", '        class = "IntervalTier" ',
                  f"        name = {_praat_string(name)} ",
                  f"        xmin = {_praat_number(xmin)} ", f"        xmax = {_praat_number(xmax)} ",
                  f"        intervals: size = {len(intervals)} "]
        for j, iv in enumerate(intervals, 1):
            lines += [f"        intervals [{j}]:",
                      f"            xmin = {_praat_number(iv.start_s)} ",
                      f"            xmax = {_praat_number(iv.end_s)} ",
                      f"            text = {_praat_string(iv.label)} "]
    return "\n".join(lines) + "\n"


def write_textgrid(alignment: Alignment, path: str | os.PathLike,
                   duration_s: float | None = None) -> Path:
    """Write every tier as an interval tier in Praat's long text format.

    The TextGrid spans 0 to ``duration_s`` (default: the alignment's duration, else its last
    interval end). ASCII text is written as UTF-8, anything else as UTF-16 with a byte-order mark,
    as Praat does. Times are written with enough digits to read back exactly.
    """
    p = Path(path)
    xmin = 0.0
    xmax = duration_s if duration_s is not None else alignment.duration_s
    xmax = alignment.end_s if xmax is None else xmax
    tiers = []
    for tier in alignment.tiers.values():
        for i, iv in enumerate(tier.intervals):
            _check_interval(iv.start_s, iv.end_s, p, tier.name, i)
            if iv.end_s > xmax + _TIME_EPS:
                raise SteveError(f"tier '{tier.name}' interval {i + 1} ends at {_fmt(iv.end_s)}, "
                                 f"after the end of the TextGrid ({_fmt(xmax)})", p)
        tiers.append((tier.name, _tiling(tier, xmin, xmax, p)))
    text = _textgrid_text(xmin, xmax, tiers)
    data = text.encode("ascii") if text.isascii() else codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    return _write_bytes(p, data)


# --- ELAN --------------------------------------------------------------------------------------
def read_eaf(path: str | os.PathLike, phone_tier: str | None = None,
             word_tier: str | None = None) -> Alignment:
    """Read an ELAN ``.eaf``: every time-aligned tier with annotations, times in seconds.

    Raises :class:`TierNotFound` when the file has no time-aligned tier, or no tier of the given
    name."""
    import pympi

    p = Path(path)
    if not p.is_file():
        raise SteveError("file not found", p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eaf = pympi.Elan.Eaf(str(p))
    except Exception as exc:  # pympi raises whatever its XML parser raises
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SteveError(f"not a readable ELAN file ({first})", p) from exc
    tiers: list[Tier] = []
    for name, (aligned, refs, attrs, _) in eaf.tiers.items():
        if not aligned or attrs.get("PARENT_REF") and refs:
            continue  # empty, or a reference tier (its times are its parent's)
        rows = []
        for i, (a, b, value, *_rest) in enumerate(aligned.values()):
            start, end = eaf.timeslots.get(a), eaf.timeslots.get(b)
            if start is None or end is None:
                raise SteveError(f"tier '{name}' annotation {i + 1} has an unaligned time slot "
                                 "(ELAN's unaligned annotations are not supported)", p)
            rows.append((start / 1000.0, end / 1000.0, value or ""))
        rows.sort(key=lambda r: (r[0], r[1]))
        for i, (start, end, _) in enumerate(rows):
            _check_interval(start, end, p, name, i)
        tiers.append(Tier(name, [Interval(a, b, v) for a, b, v in rows], p))
    if not tiers:
        names = list(eaf.tiers)
        raise TierNotFound("holds no time-aligned tier with annotations (tiers: "
                           f"{', '.join(map(repr, names)) or 'none'})", p, names)
    picked = _pick_tiers(tiers, p, phone_tier, word_tier)
    if "phones" in picked:
        _warn_overlaps(picked["phones"], p)
    return Alignment(picked, None, p, None)


def write_eaf(alignment: Alignment, path: str | os.PathLike, media: str | None = None) -> Path:
    """Write every tier as a time-aligned ELAN tier (times in whole milliseconds, rounded; gaps
    and overlaps kept). ELAN has no zero-length annotations: such intervals are left out with a
    warning."""
    import pympi

    p = Path(path)
    eaf = pympi.Elan.Eaf(author="steve_qt")
    eaf.remove_tier("default")
    if media:
        eaf.add_linked_file(str(media))
    dropped = 0
    for tier in alignment.tiers.values():
        eaf.add_tier(tier.name)
        for i, iv in enumerate(tier.intervals):
            _check_interval(iv.start_s, iv.end_s, p, tier.name, i)
            a, b = int(round(iv.start_s * 1000)), int(round(iv.end_s * 1000))
            if b <= a:
                dropped += 1
                continue
            eaf.add_annotation(tier.name, a, b, iv.label)
    if dropped:
        _warn(f"{dropped} interval(s) shorter than 1 ms left out (ELAN has no zero-length "
              "annotations)", p)
    import io
    import contextlib

    tmp = p.with_name(f".{p.name}.part")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            eaf.to_file(str(tmp))
        return _write_bytes(p, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)


# --- finding, loading and checking ------------------------------------------------------------
def find_alignment(audio_path: str | os.PathLike) -> tuple[str, Path] | None:
    """Alignment file beside ``audio_path`` (same name, extension in any case).

    Preference: TIMIT ``.phn``, then ``.TextGrid``, then ELAN ``.eaf``, then a lone TIMIT
    ``.wrd``. A .phn is preferred because beside TIMIT-style audio it is the hand-made original
    and a TextGrid is usually derived from it.
    """
    found = _files_beside(audio_path, (".phn", ".textgrid", ".eaf", ".wrd"))
    if ".phn" in found:
        return "timit", found[".phn"]
    if ".textgrid" in found:
        return "textgrid", found[".textgrid"]
    if ".eaf" in found:
        return "eaf", found[".eaf"]
    if ".wrd" in found:
        return "timit", found[".wrd"]
    return None


def alignment_kind(path: str | os.PathLike) -> str:
    """timit, textgrid or eaf, from the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix in (".phn", ".wrd"):
        return "timit"
    if suffix == ".textgrid":
        return "textgrid"
    if suffix == ".eaf":
        return "eaf"
    raise SteveError("unknown alignment format; expected a .TextGrid, .eaf, .phn or .wrd file",
                     path)


_kind_of_file = alignment_kind


def load_alignment(audio_path: str | os.PathLike | None, kind: str = "auto",
                   path: str | os.PathLike | None = None, duration_s: float | None = None,
                   phone_tier: str | None = None, word_tier: str | None = None) -> Alignment | None:
    """Load the alignment for ``audio_path``; None when ``kind`` is "none" or, with "auto" and no
    ``path``, when no alignment file lies beside the audio. Checked against ``duration_s``."""
    if kind not in ALIGNMENT_KINDS:
        raise SteveError(f"unknown alignment kind '{kind}'; use one of {', '.join(ALIGNMENT_KINDS)}")
    if kind == "none":
        return None
    if path is not None:
        path = Path(path)
        kind = _kind_of_file(path) if kind == "auto" else kind
    elif audio_path is None:
        raise SteveError("no audio file or alignment file given")
    elif kind == "auto":
        found = find_alignment(audio_path)
        if found is None:
            return None
        kind, path = found
    elif kind == "timit":
        path = Path(audio_path)
    elif kind == "eaf":
        path = _files_beside(audio_path, (".eaf",)).get(".eaf")
        if path is None:
            raise SteveError("no ELAN .eaf file with this name", _stem_path(audio_path))
    else:
        path = _files_beside(audio_path, (".textgrid",)).get(".textgrid")
        if path is None:
            raise SteveError("no TextGrid file with this name", _stem_path(audio_path))
    if kind == "timit":
        alignment = read_timit(path)
    elif kind == "eaf":
        alignment = read_eaf(path, phone_tier, word_tier)
    else:
        alignment = read_textgrid(path, phone_tier, word_tier)
    return alignment if duration_s is None else check_alignment(alignment, duration_s)


def alignment_words(audio_path: str | os.PathLike, duration_s: float | None = None) -> str | None:
    """The words of the alignment beside ``audio_path`` as one text (non-empty labels joined by
    spaces), or None when there is no alignment, it does not read, or it has no words."""
    try:
        al = load_alignment(audio_path, duration_s=duration_s)
    except SteveError:
        return None
    if al is None or al.words is None:
        return None
    text = " ".join(iv.label for iv in al.words.intervals if iv.label.strip())
    return text or None


def _clip_tier(tier: Tier, duration_s: float, tolerance_s: float, path) -> Tier:
    late = [(i, iv) for i, iv in enumerate(tier.intervals) if iv.end_s > duration_s]
    if not late:
        return tier
    too_late = [(i, iv) for i, iv in late if iv.end_s - duration_s > tolerance_s + 1e-9]
    if too_late:
        i, iv = too_late[0]
        more = f" (and {len(too_late) - 1} more)" if len(too_late) > 1 else ""
        raise SteveError(f"tier '{tier.name}' interval {i + 1} ends at {_fmt(iv.end_s)}, audio is "
                         f"{_fmt(duration_s)} long{more}", path)
    worst = max(iv.end_s - duration_s for _, iv in late)
    if worst > 1e-6:  # below a microsecond it is float noise
        i, iv = late[0]
        _warn(f"tier '{tier.name}': {len(late)} interval(s) end up to {worst * 1000:.1f} ms after "
              f"the end of the audio ({_fmt(duration_s)}), clipped to it (first: interval {i + 1} "
              f"ends at {_fmt(iv.end_s)})", path)
    clipped = [Interval(min(iv.start_s, duration_s), min(iv.end_s, duration_s), iv.label)
               for iv in tier.intervals]
    return Tier(tier.name, clipped, tier.source)


def check_alignment(alignment: Alignment, duration_s: float, tolerance_s: float = 0.02) -> Alignment:
    """Validate against an audio of ``duration_s`` seconds; return the alignment (a new one when
    something was clipped) with ``duration_s`` set to the audio duration.

    Errors: negative times, intervals that end before they start, intervals that end more than
    ``tolerance_s`` after the audio. Intervals that end at most ``tolerance_s`` late are clipped
    with a SteveWarning.
    """
    if not (np.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration_s must be a finite number >= 0, got {duration_s!r}")
    tiers = {}
    for key, tier in alignment.tiers.items():
        path = tier.source or alignment.source
        for i, iv in enumerate(tier.intervals):
            _check_interval(iv.start_s, iv.end_s, path, tier.name, i)
        tiers[key] = _clip_tier(tier, duration_s, tolerance_s, path)
    return Alignment(tiers, alignment.text, alignment.source, float(duration_s))
