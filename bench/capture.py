"""1. Capture overhead: all encoder attention captured / a bare forward pass, side by side."""

from __future__ import annotations

import numpy as np

from . import proposal
from .common import Config, Section, Timing, interleave, make_audio, verdict
from . import whisper_parts as wp

TARGET = 1.15
COLUMNS = ["model", "input", "T frames", "bare forward ms", "capture ms", "ratio", "target",
           "result"]


def ratio_row(model: str, seconds: float, frames: int, bare: Timing, cap: Timing) -> list[str]:
    r = cap.median / bare.median
    return [model, f"{seconds:g} s", str(frames), bare.ms(), cap.ms(), f"{r:.3f}",
            f"≤ {TARGET}", verdict(r, TARGET)]


def whisper_rows(cfg: Config, section: Section, proposed_rows: list) -> None:
    adapter = wp.load_whisper()
    source = ""
    extract_rows = []
    diff = 0.0
    for seconds in cfg.durations:
        audio, source = make_audio(seconds)
        mel = adapter.mel(audio)  # once, outside the timed region: both variants take it
        keep = wp.kept_frames(len(audio))
        t = interleave({"bare": lambda: wp.bare_forward(adapter, mel),
                        "capture": lambda: wp.our_capture(adapter, mel, keep),
                        "proposal": lambda: proposal.block_capture(adapter, mel, keep)},
                       cfg.repeats, cfg.warmup)
        section.rows.append(ratio_row("Whisper tiny.en (embedded)", seconds, keep,
                                      t["bare"], t["capture"]))
        proposed_rows.append(ratio_row("Whisper tiny.en, proposed block capture", seconds, keep,
                                       t["bare"], t["proposal"]))
        pairs = zip(wp.our_capture(adapter, mel, keep),
                    proposal.block_capture(adapter, mel, keep)) if cfg.checks else ()
        for a, b in pairs:
            diff = max(diff, float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()))
        if cfg.extract_repeats > 0:
            full = interleave({"extract": lambda: adapter.extract(audio, components=["encoder"])},
                              cfg.extract_repeats, warmup=min(cfg.warmup, 1))["extract"]
            extract_rows.append(["Whisper tiny.en", f"{seconds:g} s", full.ms(),
                                 f"{full.median / t['bare'].median:.2f}"])
    section.extra_tables.append((
        "Full `adapter.extract(audio, components=['encoder'])` (not part of the ratio)",
        ["model", "input", "extract ms", "× bare encoder forward"], extract_rows))
    section.notes += [
        f"Whisper input: {source}; mel computed once outside the timed region. "
        "Bare = `model.encoder(mel)` with openai-whisper's SDPA attention and no hooks. "
        "Capture = the encoder step of `WhisperAdapter.extract`: cancel pre-hook, "
        "`steve_whisper.capture.QKCapture` on every block (hooks on the `query`/`key` Linear "
        "outputs; T kept query rows × all 1500 keys per head, softmax, keys cropped to T, padding "
        f"mass), per-layer progress callback, {wp.capture_output_step()}. The forward pass "
        "itself still uses SDPA.",
        "`adapter.extract(..., components=['encoder'])` also transcribes the window (whisper "
        "decoding with word timestamps, which re-runs the encoder) — that is why it is several "
        "times the bare forward; the transcription is not attention capture and is excluded from "
        "the ratio.",
        "Proposed block capture (`bench/proposal.py`): scale q before the matmul, compute the T "
        "kept query rows in blocks of 64 (scores → float16 crop → softmax → float16 crop → "
        "padding sum, each block ~2 MiB and cache-resident), written into preallocated (N, 1, M, "
        "T, T) float16 arrays."
        + (" Max |proposed − adapter| over weights, scores and padding mass, every input length: "
           f"{diff:.3g}" + (" (bit-identical)." if diff == 0 else
                            " (float32 rounding of a different blocking).")
           if cfg.checks else ""),
    ]


def run(cfg: Config) -> Section:
    section = Section("capture", "1. Capture overhead (capture ÷ bare forward, same model and "
                      "input, interleaved)", COLUMNS)
    proposed_rows: list[list[str]] = []
    whisper_rows(cfg, section, proposed_rows)
    from . import wav2vec2_capture

    wav2vec2_capture.add_rows(cfg, section, ratio_row, proposed_rows)
    section.extra_tables.insert(0, (
        "Not the application: proposed changes to the captures (`bench/proposal.py`), timed in "
        "the same interleaved rounds against the same bare forward", COLUMNS, proposed_rows))
    return section
