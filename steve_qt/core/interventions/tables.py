"""Interventions as tables: attention window sweep, span removal, steering, logit lens, LM.

Qt-free and torch-free: the model side lives in the adapter (``supports_interventions``; the
Whisper adapter's ``steve_whisper.interventions``), this module turns its edited transcriptions
into rows compared word by word with ``textdiff``, and writes them as CSV.

Every ``wer``/``diff`` column compares a transcript with a reference (the unedited transcript
unless a column says otherwise); ``diff`` is ``textdiff.format_diff``: ``[ref->hyp]``
substituted, ``[-ref]`` deleted, ``[+hyp]`` inserted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..errors import Cancelled, SteveError
from ..frames import WHISPER_HOP, WHISPER_SAMPLE_RATE, WHISPER_WINDOW_SAMPLES
from ..speech.textdiff import EQUAL, format_diff, wer, word_diff

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]

WINDOW_HEADER = ("k", "layers", "transcript", "wer", "diff")
ALIGNMENT_COLUMNS = ("wer_alignment", "diff_alignment")
VARIANT_HEADER = ("variant", "transcript", "wer", "diff")
ENCODER_LENS_HEADER = ("layer", "transcript", "wer")
DECODER_LENS_HEADER = ("layer", "position", "token", "top_tokens", "top_probs")
LM_HEADER = ("kind", "rank", "token_id", "token", "score", "prob")

#: word labels that are not words (TIMIT, MFA, Praat conventions)
_NON_WORDS = {"", "h#", "sil", "sp", "spn", "pau", "<p>", "<sil>", "#"}


# --------------------------------------------------------------------------------------------
# input checks and parsing (one line of SteveError each)

def require_interventions(adapter) -> None:
    if not getattr(adapter, "supports_interventions", False):
        raise SteveError(f"{getattr(adapter, 'model_id', adapter)} does not support interventions "
                         f"(they need a Whisper model)")


def parse_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).replace(" ", "").split(",") if v != ""]
    except ValueError:
        raise SteveError(f"{what} must be whole numbers separated by commas, got {text!r}") from None
    if not values:
        raise SteveError(f"no {what} given")
    return values


def parse_ks(text: str) -> list[int]:
    ks = parse_ints(text, "k values")
    bad = [k for k in ks if k <= 0]
    if bad:
        raise SteveError(f"the attention window k must be a positive number of frames, got {bad[0]}")
    return ks


def parse_layers(text: str | None) -> list[int] | None:
    if text is None or str(text).strip().lower() in ("", "all"):
        return None
    layers = parse_ints(text, "layers")
    bad = [l for l in layers if l < 0]
    if bad:
        raise SteveError(f"layers are numbered from 0, got {bad[0]}")
    return sorted(set(layers))


def layers_label(layers: Sequence[int] | None) -> str:
    return "all" if layers is None else ",".join(map(str, layers))


def span_frames(t0: float, t1: float, num_samples: int, window: int = 0,
                sample_rate: int = WHISPER_SAMPLE_RATE) -> tuple[int, int]:
    """Encoder frames [f0, f1) that a time span [t0, t1] (seconds, file timeline) overlaps.

    ``num_samples`` is the length of the whole file; frames count from the start of ``window``
    (30 s windows) and stop at the last frame holding audio, ceil(samples_in_window / 320).
    An empty span (t0 == t1) gives no frames. A span outside the audio is a SteveError.
    """
    duration = num_samples / sample_rate
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise SteveError(f"span {t0}..{t1} s is not a pair of numbers")
    if t0 > t1:
        raise SteveError(f"span start {t0:g} s is after its end {t1:g} s")
    if t0 < 0 or t1 > duration + 1e-9:
        raise SteveError(f"span {t0:g}..{t1:g} s lies outside the audio (0..{duration:.3f} s)")
    w0 = window * WHISPER_WINDOW_SAMPLES
    n_win = min(num_samples - w0, WHISPER_WINDOW_SAMPLES)
    s0 = int(round(t0 * sample_rate)) - w0
    s1 = int(round(t1 * sample_rate)) - w0
    if t1 > t0 and (s1 <= 0 or s0 >= n_win):
        raise SteveError(f"span {t0:g}..{t1:g} s lies outside window {window} "
                         f"({w0 / sample_rate:g}..{(w0 + n_win) / sample_rate:g} s)")
    keep = -(-n_win // WHISPER_HOP)
    f0 = min(max(s0, 0) // WHISPER_HOP, keep)
    if s1 <= s0:
        return f0, f0
    f1 = min(-(-min(s1, n_win) // WHISPER_HOP), keep)
    return f0, f1


def alignment_text(alignment) -> str | None:
    """The words of an alignment's word tier as one string (silence labels left out)."""
    tier = getattr(alignment, "words", None) if alignment is not None else None
    if tier is None:
        return None
    words = [iv.label for iv in tier if iv.label.strip().lower() not in _NON_WORDS]
    return " ".join(words) if words else None


# --------------------------------------------------------------------------------------------
# comparisons

@dataclass
class Variant:
    """One transcript of an experiment, compared with the reference."""

    variant: str
    transcript: str
    wer: float
    diff: str
    ops: list = field(default_factory=list)  # word_diff(reference, transcript)

    @classmethod
    def of(cls, name: str, reference: str, text: str) -> "Variant":
        ops = word_diff(reference, text)
        return cls(name, text, wer(reference, text), format_diff(ops), ops)

    def row(self) -> tuple:
        return (self.variant, self.transcript, _fmt(self.wer), self.diff)


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4f}"


class _Steps:
    """progress + cancel between transcriptions."""

    def __init__(self, total: int, progress: ProgressFn | None, should_cancel: CancelFn | None):
        self.total, self.done = total, 0
        self.progress, self.should_cancel = progress, should_cancel

    def __call__(self, what: str) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled()
        if self.progress is not None:
            self.progress(self.done, self.total, what)
        self.done += 1


def reference_transcript(adapter, samples: np.ndarray, window: int = 0,
                         should_cancel: CancelFn | None = None) -> str:
    return adapter.transcribe(samples, window=window, should_cancel=should_cancel).text


# --------------------------------------------------------------------------------------------
# 1. +-k attention window

@dataclass
class WindowRow:
    k: int
    layers: str
    result: Variant
    alignment: Variant | None = None

    def row(self) -> tuple:
        r = (self.k, self.layers, self.result.transcript, _fmt(self.result.wer), self.result.diff)
        if self.alignment is not None:
            r += (_fmt(self.alignment.wer), self.alignment.diff)
        return r


def window_run(adapter, samples: np.ndarray, k: int, layers: Sequence[int] | None, reference: str,
               window: int = 0, alignment_words: str | None = None,
               should_cancel: CancelFn | None = None) -> WindowRow:
    with adapter.attention_window(k, layers):
        text = adapter.transcribe(samples, window=window, should_cancel=should_cancel).text
    return WindowRow(k, layers_label(layers), Variant.of(f"k={k}", reference, text),
                     Variant.of("alignment", alignment_words, text) if alignment_words else None)


def window_sweep(adapter, samples: np.ndarray, ks: Sequence[int],
                 layers: Sequence[int] | None = None, window: int = 0,
                 reference: str | None = None, alignment_words: str | None = None,
                 progress: ProgressFn | None = None,
                 should_cancel: CancelFn | None = None) -> tuple[str, list[WindowRow]]:
    """(reference transcript, one row per k). ``reference`` None: transcribe unmasked first."""
    require_interventions(adapter)
    for k in ks:
        if k <= 0:
            raise SteveError(f"the attention window k must be a positive number of frames, got {k}")
    step = _Steps(len(ks) + (reference is None), progress, should_cancel)
    if reference is None:
        step("unmasked transcript")
        reference = reference_transcript(adapter, samples, window, should_cancel)
    rows = []
    for k in ks:
        step(f"k = {k}")
        rows.append(window_run(adapter, samples, k, layers, reference, window, alignment_words,
                               should_cancel))
    return reference, rows


def window_table(rows: Sequence[WindowRow]) -> tuple[tuple, list[tuple]]:
    header = WINDOW_HEADER + (ALIGNMENT_COLUMNS if rows and rows[0].alignment else ())
    return header, [r.row() for r in rows]


# --------------------------------------------------------------------------------------------
# 2. span removal

def span_removal(adapter, samples: np.ndarray, t0: float, t1: float, fill: str = "padding",
                 window: int = 0, reference: str | None = None,
                 progress: ProgressFn | None = None,
                 should_cancel: CancelFn | None = None) -> list[Variant]:
    """Variants ``original`` and ``without T0-T1`` (encoder output frames replaced)."""
    require_interventions(adapter)
    if fill not in ("padding", "silence"):
        raise SteveError(f"unknown fill {fill!r} (padding or silence)")
    f0, f1 = span_frames(t0, t1, len(samples), window)
    step = _Steps(1 + (reference is None), progress, should_cancel)
    if reference is None:
        step("original transcript")
        reference = reference_transcript(adapter, samples, window, should_cancel)
    step(span_name(t0, t1))
    text = adapter.transcribe(samples, window=window, should_cancel=should_cancel,
                              edits=adapter.span_removal_edits(f0, f1, fill)).text
    return [Variant.of("original", reference, reference),
            Variant.of(f"{span_name(t0, t1)} ({fill})", reference, text)]


def span_name(t0: float, t1: float) -> str:
    """``without 0.72-1.02 s``: the span to 10 ms, as the window's selection shows it."""
    return f"without {t0:.2f}-{t1:.2f} s"


# --------------------------------------------------------------------------------------------
# 3. steering

def check_feature(adapter, site: str, feature: int, sae=None) -> None:
    if sae is not None:
        hook = getattr(sae, "hook_name", None)
        if hook and hook != site:
            raise SteveError(f"the SAE was trained on site {hook!r}, not {site!r}")
        n = int(sae.d_sae)
        what = "SAE features"
    else:
        n = adapter.site_dim(site)
        what = f"neurons of {site}"
    if not 0 <= feature < n:
        raise SteveError(f"feature {feature} does not exist: there are {n} {what} (0 to {n - 1})")


def steer(adapter, samples: np.ndarray, site: str, feature: int, scale: float,
          span: tuple[float, float] | None = None, sae=None, window: int = 0,
          reference: str | None = None, progress: ProgressFn | None = None,
          should_cancel: CancelFn | None = None) -> list[Variant]:
    """Variants ``original``, (``reconstruction`` with an SAE), ``steered``.

    Encoder sites are edited over the span's frames (default: every frame holding audio);
    decoder sites at every token position.
    """
    require_interventions(adapter)
    if not math.isfinite(scale):
        raise SteveError(f"--scale must be a finite number, got {scale}")
    if span is not None and not site.startswith("encoder"):
        raise SteveError(f"a span applies to encoder (audio frame) sites only, not {site!r} "
                         f"(decoder sites are steered at every token)")
    check_feature(adapter, site, feature, sae)
    n_win = min(len(samples) - window * WHISPER_WINDOW_SAMPLES, WHISPER_WINDOW_SAMPLES)
    frames = (span_frames(*span, len(samples), window) if span is not None
              else (0, -(-n_win // WHISPER_HOP)))
    step = _Steps(1 + (reference is None) + (sae is not None), progress, should_cancel)
    if reference is None:
        step("original transcript")
        reference = reference_transcript(adapter, samples, window, should_cancel)
    out = [Variant.of("original", reference, reference)]
    if sae is not None:
        step("SAE reconstruction")
        text = adapter.transcribe(samples, window=window, should_cancel=should_cancel,
                                  edits=adapter.steering_edits(site, None, 1.0, frames, sae)).text
        out.append(Variant.of("reconstruction", reference, text))
    step(f"feature {feature} x {scale:g}")
    text = adapter.transcribe(samples, window=window, should_cancel=should_cancel,
                              edits=adapter.steering_edits(site, feature, scale, frames, sae)).text
    out.append(Variant.of("steered", reference, text))
    return out


# --------------------------------------------------------------------------------------------
# 4. logit lens

def encoder_lens(adapter, samples: np.ndarray, window: int = 0, reference: str | None = None,
                 progress: ProgressFn | None = None,
                 should_cancel: CancelFn | None = None) -> list[tuple[int, Variant]]:
    """(layer, transcript of block ``layer``'s output through ln_post) for every encoder layer."""
    require_interventions(adapter)
    n = adapter.num_layers("encoder")
    step = _Steps(n + (reference is None), progress, should_cancel)
    if reference is None:
        step("normal transcript")
        reference = reference_transcript(adapter, samples, window, should_cancel)
    rows = []
    for layer in range(n):
        step(f"encoder layer {layer}")
        text = adapter.transcribe(samples, window=window, should_cancel=should_cancel,
                                  edits=adapter.encoder_lens_edits(layer)).text
        rows.append((layer, Variant.of(f"layer {layer}", reference, text)))
    return rows


def encoder_lens_rows(rows: Sequence[tuple[int, Variant]]) -> list[tuple]:
    """Rows of ENCODER_LENS_HEADER from :func:`encoder_lens`."""
    return [(layer, v.transcript, _fmt(v.wer)) for layer, v in rows]


@dataclass
class DecoderLensTable:
    token_texts: list[str]  # (n,) the input token at each position
    top_tokens: np.ndarray  # (L, n, top) int token ids, best first
    top_texts: list  # [L][n][top] str
    top_probs: np.ndarray  # (L, n, top) float32


def decoder_lens_table(adapter, samples: np.ndarray, tokens: Sequence[int], window: int = 0,
                       top: int = 5) -> DecoderLensTable:
    """Each decoder layer's top-``top`` next tokens at every position of ``tokens``."""
    require_interventions(adapter)
    lens = adapter.decoder_lens(samples, tokens, window)
    probs = lens.probs  # (L, n, V)
    idx = np.argsort(-probs, axis=-1, kind="stable")[..., :top]  # (L, n, top)
    p = np.take_along_axis(probs, idx, axis=-1)
    vocab = {t: s for t, s in zip(np.unique(idx).tolist(),
                                  adapter.token_texts(np.unique(idx).tolist()))}
    texts = [[[vocab[t] for t in pos] for pos in layer] for layer in idx.tolist()]
    return DecoderLensTable(adapter.token_texts(tokens), idx, texts, p.astype(np.float32))


def decoder_lens_rows(t: DecoderLensTable) -> list[tuple]:
    rows = []
    for layer, per_pos in enumerate(t.top_texts):
        for pos, texts in enumerate(per_pos):
            rows.append((layer, pos, t.token_texts[pos], json.dumps(texts, ensure_ascii=False),
                         json.dumps([round(float(x), 6) for x in t.top_probs[layer, pos]])))
    return rows


# --------------------------------------------------------------------------------------------
# 5. the decoder as a language model

def check_lm_args(prompt: str | None, neighbours: str | None, top: int) -> None:
    """SteveError (one line) for arguments :func:`lm_rows` refuses; checked before the model
    loads."""
    if prompt is None and neighbours is None:
        raise SteveError("give --prompt TEXT and/or --neighbours WORD")
    if prompt is not None and prompt == "":
        raise SteveError("the prompt is empty: give some text, e.g. --prompt ' rug'")
    if neighbours is not None and neighbours.strip() == "":
        raise SteveError("the word is empty: give some text, e.g. --neighbours ' rug'")
    if top <= 0:
        raise SteveError(f"--top must be positive, got {top}")


def lm_rows(adapter, prompt: str | None = None, neighbours: str | None = None,
            top: int = 20) -> list[tuple]:
    """Rows of LM_HEADER: the top-``top`` next tokens after ``prompt`` with padding-only audio
    (kind ``next``, score = logit), then the tokens nearest to ``neighbours`` in the token
    embedding (kind ``neighbour``, score = cosine)."""
    require_interventions(adapter)
    check_lm_args(prompt, neighbours, top)
    rows = []
    if prompt is not None:
        nt = adapter.lm_next_tokens(prompt, top)
        rows += [("next", i, t, txt, f"{lg:.4f}", f"{p:.6f}")
                 for i, (t, txt, lg, p) in enumerate(zip(nt.tokens, nt.texts, nt.logits,
                                                         nt.probs))]
    if neighbours is not None:
        rows += [("neighbour", i, t, txt, f"{c:.4f}", "")
                 for i, (t, txt, c) in enumerate(adapter.nearest_tokens(neighbours, top))]
    return rows


# --------------------------------------------------------------------------------------------
# steering over a corpus

STEER_CORPUS_HEADER = ("file", "wer_reconstruction", "wer_steered", "wer_ref_original",
                       "wer_ref_steered", "wer_change", "words_changed", "original", "steered")


def steer_corpus(adapter, files, site: str, feature: int, scale: float, sae=None,
                 progress: ProgressFn | None = None) -> tuple[list[dict], dict]:
    """:func:`steer` on every file (all its audio frames, first 30 s window): per file the WER
    of the steered (and reconstructed) transcript against the unedited one, against the
    alignment's words when a .wrd/.TextGrid lies beside the file (``wer_change`` = steered
    minus unedited against those words; without words, the WER against the unedited transcript),
    and the words that changed (``[old->new]``, ``[-old]``, ``[+new]``). Totals: means over the
    files and the count of changed words."""
    from pathlib import Path

    from ..speech.alignment import alignment_words
    from ..speech.audio import load_audio

    rows = []
    for i, f in enumerate(files):
        audio = load_audio(f)
        variants = {v.variant: v for v in steer(adapter, audio.samples, site, feature, scale,
                                                 sae=sae)}
        orig, st = variants["original"], variants["steered"]
        row = {"file": str(f), "wer_reconstruction": variants["reconstruction"].wer
               if "reconstruction" in variants else float("nan"),
               "wer_steered": st.wer, "wer_ref_original": float("nan"),
               "wer_ref_steered": float("nan"), "wer_change": st.wer,
               "words_changed": format_diff([o for o in st.ops if o[0] != EQUAL]),
               "n_changed": sum(o[0] != EQUAL for o in st.ops),
               "original": orig.transcript, "steered": st.transcript}
        ref = alignment_words(f, len(audio.samples) / audio.rate)
        if ref is not None:
            row["wer_ref_original"] = wer(ref, orig.transcript)
            row["wer_ref_steered"] = wer(ref, st.transcript)
            row["wer_change"] = row["wer_ref_steered"] - row["wer_ref_original"]
        rows.append(row)
        if progress:
            progress(i, len(files), f"{Path(f).name}")

    def mean(key):
        vals = [r[key] for r in rows if not math.isnan(r[key])]
        return float(np.mean(vals)) if vals else float("nan")

    total = {k: mean(k) for k in ("wer_reconstruction", "wer_steered", "wer_ref_original",
                                  "wer_ref_steered", "wer_change")}
    total.update({"files": len(rows), "files_changed": sum(r["n_changed"] > 0 for r in rows),
                  "words_changed": sum(r["n_changed"] for r in rows),
                  "files_with_words": sum(not math.isnan(r["wer_ref_original"]) for r in rows)})
    return rows, total


def steer_corpus_rows(rows: list[dict], total: dict) -> list[tuple]:
    """CSV rows (STEER_CORPUS_HEADER), the totals last (file "TOTAL (mean)")."""
    out = [(r["file"], _fmt(r["wer_reconstruction"]), _fmt(r["wer_steered"]),
            _fmt(r["wer_ref_original"]), _fmt(r["wer_ref_steered"]), _fmt(r["wer_change"]),
            r["words_changed"], r["original"], r["steered"]) for r in rows]
    out.append((f"TOTAL (mean over {total['files']} files)", _fmt(total["wer_reconstruction"]),
                _fmt(total["wer_steered"]), _fmt(total["wer_ref_original"]),
                _fmt(total["wer_ref_steered"]), _fmt(total["wer_change"]),
                f"{total['words_changed']} words changed in {total['files_changed']} files", "",
                ""))
    return out
