"""Child process of the memory benchmarks: one extraction in a fresh process; one JSON line.

    python -m bench.memory_child --model whisper --what ours --seconds 3
    python -m bench.memory_child --model whisper --what steve --seconds 3
    python -m bench.memory_child --model whisper --what bare --seconds 3
    python -m bench.memory_child --model wav2vec2:/tmp/dir --what ours --seconds 10

The model is loaded and the input prepared first; one warm-up run (same input) is discarded so
that one-time set-up (thread pools, kernel selection) is not counted; then freed heap pages are
returned to the OS (``malloc_trim``), the kernel's peak-RSS mark is reset, RSS is read, the
extraction runs once, and VmHWM (the peak RSS) is read; that is repeated ``--repeats`` times and
the median reported. Optionally a second run under
torch.profiler gives the peak of live torch tensor bytes.
"""

from __future__ import annotations

import argparse

from .common import emit, make_audio, measure_peak, set_threads, torch_peak_mib


def whisper_job(what: str, seconds: float):
    from . import whisper_parts as wp

    adapter = wp.load_whisper()
    audio, _ = make_audio(seconds)
    mel = adapter.mel(audio)
    keep = wp.kept_frames(len(audio))
    if what == "ours":
        def job():
            return wp.our_capture(adapter, mel, keep)

        def size(out):
            return wp.stored_bytes(out)
    elif what == "bare":
        def job():
            return wp.bare_forward(adapter, mel)

        def size(out):
            return 0
    elif what == "fallback":
        def job():
            return wp.our_capture(adapter, mel, keep, use_lse=False)

        def size(out):
            return wp.stored_bytes(out)
    elif what == "steve":
        def job():
            return wp.steve_capture(adapter, mel)

        def size(out):
            return wp.steve_stored_bytes(out)
    else:
        raise SystemExit(f"unknown --what {what}")
    return job, size, keep


def wav2vec2_job(spec: str, what: str, seconds: float):
    from . import wav2vec2_parts as w2

    adapter = w2.load_adapter(spec)
    audio, _ = make_audio(seconds)

    if what == "ours":
        def job():
            return w2.extract(adapter, audio)

        size = w2.extraction_bytes
    elif what == "bare":
        def job():
            return w2.bare_forward(adapter, audio)

        def size(out):
            return 0
    else:
        raise SystemExit(f"--what {what} is only for Whisper")
    return job, size, w2.num_frames(adapter, len(audio))


def measure(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.memory_child")
    ap.add_argument("--model", default="whisper")
    ap.add_argument("--what", default="ours", choices=["ours", "bare", "steve", "fallback"])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="measured runs (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="discarded runs first")
    ap.add_argument("--torch-alloc", action="store_true")
    args = ap.parse_args(argv)
    set_threads(args.threads)

    if args.model == "whisper":
        job, size, frames = whisper_job(args.what, args.seconds)
    else:
        job, size, frames = wav2vec2_job(args.model, args.what, args.seconds)
    for _ in range(args.warmup):
        job()  # discarded
    sizes: list[int] = []
    runs = [measure_peak(job, lambda out: sizes.append(size(out)))
            for _ in range(max(1, args.repeats))]
    stored = sizes[-1]
    deltas = sorted(r["delta_mib"] for r in runs)
    result = dict(runs[0], delta_mib=deltas[len(deltas) // 2], delta_runs=deltas,
                  frames=frames, stored_mib=stored / 2**20, seconds=args.seconds)
    if args.torch_alloc:
        result["torch_peak_mib"] = torch_peak_mib(job)
    return result


def main() -> None:
    emit(measure())


if __name__ == "__main__":
    main()
