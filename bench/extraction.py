"""Full extraction: everything the window shows for one file ÷ the model's own minimum for it.

Full = ``adapter.extract(audio)`` (all components: encoder maps, transcript with word timings,
cross- and decoder attention). Bare = ``whisper.decode(model, mel, options)`` on the same mel:
one encoder forward and one greedy decode without timestamps (whisper's own code, no capture,
no word timings) -- what any transcription of the window has to run.
"""

from __future__ import annotations

import torch
import whisper

from .common import Config, Section, interleave, make_audio, verdict
from . import whisper_parts as wp

TARGET = 1.15
COLUMNS = ["measurement", "input", "bare ms (encoder + greedy decode)", "full extraction ms",
           "ratio", "ratio of the minima", "target", "result"]


def encoder_passes(adapter, audio) -> int:
    calls = []
    hook = adapter.model.encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        adapter.extract(audio)
    finally:
        hook.remove()
    return len(calls)


def run(cfg: Config) -> Section:
    section = Section("extraction", "Full extraction ÷ encoder forward + greedy decode "
                      "(Whisper tiny.en, interleaved)", COLUMNS)
    adapter = wp.load_whisper()
    model = adapter.model
    options = whisper.DecodingOptions(language="en", fp16=False, without_timestamps=True)
    parts_rows = []
    facts = []
    source = ""
    for seconds in cfg.durations:
        audio, source = make_audio(seconds)
        mel = adapter.mel(audio)  # the bare decode's input, outside its timed region
        with torch.no_grad():
            features = model.encoder(mel[None])

        def bare():
            with torch.no_grad():
                return whisper.decode(model, mel, options)

        def decode_only():
            with torch.no_grad():
                return whisper.decode(model, features, options)

        t = interleave({"bare": bare, "full": lambda: adapter.extract(audio),
                        "encoder": lambda: wp.bare_forward(adapter, mel),
                        "decode": decode_only},
                       max(1, cfg.extract_repeats) if cfg.quick else max(cfg.extract_repeats, 5),
                       min(cfg.warmup, 1))
        r = t["full"].median / t["bare"].median
        section.rows.append(["full extraction", f"{seconds:g} s", t["bare"].ms(), t["full"].ms(),
                             f"{r:.3f}", f"{t['full'].lo / t['bare'].lo:.3f}", f"≤ {TARGET}",
                             verdict(r, TARGET)])
        parts_rows.append([f"{seconds:g} s", t["encoder"].ms(), t["decode"].ms(),
                           f"{(t['full'].median - t['bare'].median) * 1e3:.1f}"])
        ex = adapter.extract(audio)
        greedy = bare()
        text_tokens = ex.transcript.tokens[ex.meta["text_token_start"]:-1]
        facts.append(f"{seconds:g} s: encoder forward passes in one full extraction: "
                     f"{encoder_passes(adapter, audio)}; {len(text_tokens)} text tokens "
                     f"(the bare greedy decode: {len(greedy.tokens)}, "
                     f"{'the same' if greedy.tokens == text_tokens else 'not the same'} tokens); "
                     f"{len(ex.transcript.words)} words.")
    section.extra_tables.append((
        "Parts, timed in the same rounds", ["input", "bare encoder forward ms",
                                            "greedy decode from the encoder output ms",
                                            "full − bare ms"], parts_rows))
    section.notes += [
        f"Input: {source}. Full = `WhisperAdapter.extract(audio)` with all components: the "
        "log-mel; one encoder pass that captures the encoder attention; `whisper.transcribe` "
        "(word timestamps, temperature fallback, as before) given the model with that encoder "
        "output known (`steve_whisper.encoded.EncodedWindow`), so it decodes from it and its "
        "word timing's teacher-forced pass is the pass that captures the cross- and decoder "
        "attention. transcribe also computes its own log-mel of the audio + 30 s of zeros, and "
        "decodes with timestamp tokens (its timestamp rules run at every step).",
        "Bare = `whisper.decode(model, mel, DecodingOptions(language='en', fp16=False, "
        "without_timestamps=True))` on the adapter's log-mel (computed outside the timed "
        "region): one encoder forward + one greedy decode, no capture, no word timings.",
        "The judged ratio is of the medians; the ratio of the minima (the least disturbed run "
        "of each) is beside it because other processes on a shared machine only add time.",
        *facts,
    ]
    return section
