"""6. Interventions: a k-sweep of the attention window against single transcriptions.

``steve-qt window AUDIO --k 1,2,5,10,25,75,750`` transcribes once per k (plus once unmasked for
the reference, which the GUI already has from its extraction and which is not counted here).
Target: the 7 masked transcriptions cost at most 7 x one plain transcription of the same audio.
"""

from __future__ import annotations

import sys
import time

from .common import Config, Section, interleave, verdict

KS = (1, 2, 5, 10, 25, 75, 750)
COLUMNS = ["input", "one transcription s", "sweep of 7 s", "sweep ÷ one", "target", "result"]


def run(cfg: Config) -> Section:
    from steve_qt.core.speech.audio import load_audio
    from steve_qt.core.interventions.tables import window_sweep

    from .common import SAMPLE_WAV
    from .whisper_parts import load_whisper

    adapter = load_whisper()
    audio = load_audio(SAMPLE_WAV).samples
    ks = KS if not cfg.quick or cfg.extract_repeats else (5,)
    reference = adapter.transcribe(audio).text  # warm-up and the reference, untimed
    stamps: list[float] = []
    out: dict = {}

    def sweep():
        def progress(done, total, what):
            stamps.append(time.perf_counter())
            print(f"[bench] ksweep: {what}", file=sys.stderr, flush=True)
        stamps.append(time.perf_counter())
        out["rows"] = window_sweep(adapter, audio, ks, reference=reference, progress=progress)[1]
        stamps.append(time.perf_counter())

    repeats = max(1, min(cfg.extract_repeats, 1))  # the machine is shared: one round
    t = interleave({"one": lambda: adapter.transcribe(audio), "sweep": sweep},
                   repeats=repeats, warmup=0)
    ratio = t["sweep"].median / t["one"].median
    section = Section("ksweep", "6. Interventions: ±k attention window sweep", COLUMNS)
    section.rows.append([f"{SAMPLE_WAV.name} ({len(audio) / 16000:.2f} s)",
                         f"{t['one'].median:.2f}", f"{t['sweep'].median:.2f}",
                         f"{ratio:.2f}", f"≤ {len(ks)}", verdict(ratio, len(ks))])
    per_k = [b - a for a, b in zip(stamps[-len(ks) - 2:], stamps[-len(ks) - 1:])][1:]
    section.notes.append(
        f"k = {', '.join(map(str, ks))}, all encoder layers masked; each masked run is one "
        f"greedy whisper.transcribe pass without timestamps (the adapter's transcribe) with "
        f"the encoder's attention through SDPA with a band mask. {repeats} interleaved "
        f"round(s) (one, sweep) after an untimed transcription that gives the reference.")
    section.notes.append("Per k: " + "; ".join(
        f"k={r.k}: {dt:.1f} s, {r.result.transcript!r} (WER {r.result.wer:.2f})"
        for r, dt in zip(out["rows"], per_k)) + f"; unmasked: {reference!r}.")
    return section
