"""1. Capture overhead: all encoder attention captured / a bare forward pass, side by side."""

from __future__ import annotations

import numpy as np

from .common import Config, Section, Timing, interleave, make_audio, verdict
from . import whisper_parts as wp

TARGET = 1.15
W2V2_TARGET = 1.10  # wav2vec 2.0 capture at 10 s within 10 % of its bare forward
COLUMNS = ["model", "input", "T frames", "bare forward ms", "capture ms", "ratio", "target",
           "result"]


def ratio_row(model: str, seconds: float, frames: int, bare: Timing, cap: Timing,
              target: float = TARGET) -> list[str]:
    r = cap.median / bare.median
    return [model, f"{seconds:g} s", str(frames), bare.ms(), cap.ms(), f"{r:.3f}",
            f"≤ {target}", verdict(r, target)]


def whisper_rows(cfg: Config, section: Section, other_rows: list) -> None:
    adapter = wp.load_whisper()
    source = ""
    extract_rows = []
    diff = 0.0
    for seconds in cfg.durations:
        audio, source = make_audio(seconds)
        mel = adapter.mel(audio)  # once, outside the timed region: all variants take it
        keep = wp.kept_frames(len(audio))
        t = interleave({"bare": lambda: wp.bare_forward(adapter, mel),
                        "capture": lambda: wp.our_capture(adapter, mel, keep),
                        "fallback": lambda: wp.our_capture(adapter, mel, keep, use_lse=False)},
                       cfg.repeats, cfg.warmup)
        section.rows.append(ratio_row("Whisper tiny.en (embedded)", seconds, keep,
                                      t["bare"], t["capture"]))
        other_rows.append(ratio_row("Whisper tiny.en, public-ops fallback (full-key softmax)",
                                       seconds, keep, t["bare"], t["fallback"]))
        pairs = zip(wp.our_capture(adapter, mel, keep),
                    wp.our_capture(adapter, mel, keep, use_lse=False)) if cfg.checks else ()
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
        "`steve_whisper.capture.QKCapture` on every block. It wraps each block's `qkv_attention` "
        "and calls the CPU flash-attention kernel that SDPA dispatches to "
        "(`torch.ops.aten._scaled_dot_product_flash_attention_for_cpu`, bit-identical output), "
        "which also returns each query row's log-sum-exp over all 1500 keys; scores and weights "
        "(exp(score − lse)) are then computed for the T kept rows × T kept keys only, and the "
        "padding mass is 1 − the kept mass. Per-layer progress callback; float16 results written "
        "into preallocated (N, 1, M, T, T) tensors.",
        "Public-ops fallback (what the capture does when that private kernel is missing, e.g. "
        "another torch version): SDPA for the output, then T kept rows × all 1500 keys, softmax, "
        "crop — three (M, T, 1500) float32 temporaries per layer."
        + (" Max |capture − fallback| over weights, scores and padding mass, every input length: "
           f"{diff:.3g} (weights and scores are float16: one ulp at 0.5 is 0.00049)."
           if cfg.checks else ""),
        "`adapter.extract(..., components=['encoder'])` also transcribes the window (whisper "
        "decoding with word timestamps, which re-runs the encoder) — that is why it is several "
        "times the bare forward; the transcription is not attention capture and is excluded from "
        "the ratio.",
    ]


def run(cfg: Config) -> Section:
    section = Section("capture", "1. Capture overhead (capture ÷ bare forward, same model and "
                      "input, interleaved)", COLUMNS)
    other_rows: list[list[str]] = []
    whisper_rows(cfg, section, other_rows)
    from . import wav2vec2_capture

    wav2vec2_capture.add_rows(cfg, section, lambda *a: ratio_row(*a, target=W2V2_TARGET),
                              other_rows)
    section.extra_tables.insert(0, (
        "Not the application: other ways to compute the same capture, timed in the same interleaved rounds against the "
        "same bare forward", COLUMNS, other_rows))
    return section
