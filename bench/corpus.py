"""Corpus scale: `features index` throughput on the embedded Dask cluster vs bare
encoder forwards on the same cores, peak memory of an index build at 50 vs 400 files, and
`features top` on a 10 000-file index vs a full scan of cached activations (FREUD's way)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import ROOT, Config, Section, run_child, verdict

JOBS = 2
WHOLE_FILES = 100  # the whole command's corpus (samples/make_corpus.py)
WORK = ROOT / "bench" / ".work"  # corpora kept between runs (not in git)


def make_corpus_cached(n: int, seed: int = 0) -> tuple[Path, str]:
    """``samples/make_corpus.py --n N --seed S`` made once into bench/.work and reused (the
    script is deterministic); (folder, how it was made). Without espeak-ng: the repository's
    samples with seeded noise (:func:`make_speech_corpus`), said so in the second value."""
    import subprocess
    import sys

    folder = WORK / f"make_corpus-n{n}-seed{seed}"
    how = f"python samples/make_corpus.py --n {n} --seed {seed}"
    if (folder / ".complete").exists():
        return folder, how
    tmp = WORK / f".{folder.name}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, str(ROOT / "samples" / "make_corpus.py"), "--out",
                           str(tmp), "--n", str(n), "--seed", str(seed), "--quiet"],
                          capture_output=True, text=True, timeout=3600, cwd=ROOT)
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        fallback = WORK / f"samples-noise-n{n}"
        if not (fallback / ".complete").exists():
            shutil.rmtree(fallback, ignore_errors=True)
            make_speech_corpus(fallback, n)
            (fallback / ".complete").write_text("")
        return fallback, (f"make_corpus.py failed ({proc.stderr.strip().splitlines()[-1:]}); "
                          f"the samples with seeded noise instead")
    (tmp / ".complete").write_text(how + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder, how


def make_speech_corpus(folder: Path, n: int) -> None:
    """``n`` distinct utterances: the repository's samples (3-4 s of espeak-ng speech with their
    alignments), each with its own seeded low-level noise, so that every file has its own content
    hash (nothing is shared through the cache)."""
    wavs = sorted((ROOT / "samples").glob("*.wav"))
    for i in range(n):
        src = wavs[i % len(wavs)]
        x, rate = sf.read(str(src), dtype="float32")
        x = x + 0.002 * np.random.default_rng(i).standard_normal(x.shape).astype(np.float32)
        d = folder / f"DR{i % 4}" / f"SPK{i:03d}"
        d.mkdir(parents=True, exist_ok=True)
        sf.write(str(d / f"{src.stem}.wav"), x, rate, subtype="PCM_16")
        for ext in (".phn", ".wrd", ".txt"):
            if src.with_suffix(ext).exists():
                shutil.copyfile(src.with_suffix(ext), d / (src.stem + ext))


def run(cfg: Config) -> Section:
    tiny = cfg.in_process  # Config.tiny(): the smoke test
    n_files = 2 if tiny else (8 if cfg.quick else 24)
    rounds = 1 if (tiny or cfg.quick) else 2
    mem_sizes = (5, 10) if tiny else ((20, 80) if cfg.quick else (50, 400))
    top_files = 200 if tiny else (2000 if cfg.quick else 10000)
    work = Path(tempfile.mkdtemp(prefix="steve-bench-corpus-"))
    try:
        return _run(cfg, work, n_files, rounds, mem_sizes, top_files)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(cfg, work, n_files, rounds, mem_sizes, top_files) -> Section:
    corpus = work / "speech"
    make_speech_corpus(corpus, n_files)
    s = Section("corpus", "6. Corpus scale: features index on Dask, memory, features top",
                ["measurement", "input", "value", "ratio", "target", "result"])
    whole_rows(s, cfg, work, rounds)
    bare, index, mid = [], [], []

    def index_run(site: str, name: str) -> dict:
        return run_child("bench.corpus_child",
                         ["index", str(corpus), str(work / f"cache-{name}"), str(work / name),
                          "--jobs", str(JOBS), "--site", site], threads=1, timeout=3600)

    for r in range(rounds):  # interleaved: bare, index (last layer), index (layer 2), bare, ...
        bare.append(run_child("bench.corpus_child", ["bare", str(corpus), "--jobs", str(JOBS)],
                              threads=1, timeout=3600))
        index.append(index_run(SITE, f"idx{r}"))
        mid.append(index_run(MID_SITE, f"mid{r}"))
    cached = run_child("bench.corpus_child", ["index", str(corpus), str(work / "cache-idx0"),
                                              str(work / "idx_cached"), "--jobs", str(JOBS),
                                              "--site", SITE], threads=1, timeout=3600)
    b = float(np.median([x["files_per_s"] for x in bare]))
    steady = float(np.median([x["steady_files_per_s"] for x in index]))
    steady_mid = float(np.median([x["steady_files_per_s"] for x in mid]))
    ratio = steady / b
    s.rows.append([f"index throughput ÷ bare encoder forward (steady state), {SITE}, "
                   "build_index in a fresh process",
                   f"{n_files} files, {JOBS} workers × 1 thread",
                   f"{steady:.2f} vs {b:.2f} files/s", f"{ratio:.2f}", "", ""])
    task = float(np.median([x["task_s_median"] for x in index]))
    s.rows.append(["per-file task time on a worker (median; read, hash, mel, forward, cache "
                   "write, summary)", f"{n_files} files", f"{task * 1e3:.0f} ms (bare: "
                   f"{JOBS / b * 1e3:.0f} ms per file and process)", "", "", ""])
    s.rows.append([f"index throughput (steady state), {MID_SITE}: the encoder stops after "
                   "block 2", f"{n_files} files", f"{steady_mid:.2f} files/s",
                   f"{steady_mid / b:.2f}", "", ""])
    s.rows.append(["index throughput from the cache (no model run)", f"{n_files} files",
                   f"{cached['files_per_s']:.2f} files/s (steady "
                   f"{cached['steady_files_per_s']:.1f})", "", "", ""])
    mem = [run_child("bench.corpus_child", ["memory", str(n), str(work)], threads=1,
                     timeout=3600) for n in mem_sizes]
    for m in mem:
        s.rows.append([f"peak RSS of an index build ({m['files']} files)",
                       f"{m['files']} files, cached activations (T=150, D=1536)",
                       f"{m['peak_mib']:.0f} MiB (before the build {m['rss_before_mib']:.0f} MiB;"
                       f" {m['seconds']:.1f} s)", "", "", ""])
    grow = mem[1]["peak_mib"] / mem[0]["peak_mib"]
    s.rows.append([f"peak RSS {mem_sizes[1]} files ÷ {mem_sizes[0]} files", "", "",
                   f"{grow:.2f}", "≤ 1.1", verdict(grow, 1.1)])
    n_big = mem_sizes[1]
    top = run_child("bench.corpus_child",
                    ["top", str(work), "--files", str(top_files), "--scan-cache",
                     str(work / f"cache{n_big}"), "--scan-corpus", str(work / f"corpus{n_big}")],
                    threads=1, timeout=3600)
    s.rows.append([f"FeatureIndex.open(IDX).top(F), {top_files}-file index", "200 random features",
                   f"{top['open_top_ms']:.2f} ms median (max {top['open_top_max_ms']:.1f})", "",
                   "≪ 100 ms", verdict(top["open_top_ms"], 100)])
    s.rows.append([f"`steve-qt features top IDX F` command, {top_files}-file index",
                   "new process each", f"{top['cli_ms']:.0f} ms (of which `import steve_qt.cli`"
                   f" in a new Python: {top['python_import_ms']:.0f} ms)", "", "", ""])
    scan_ratio = top["scan_10k_s"] * 1e3 / top["open_top_ms"]
    s.rows.append([f"full scan of cached activations for one feature (FREUD's way)",
                   f"{top['scan_files']} files measured, ×{top_files / top['scan_files']:.0f} "
                   f"for {top_files}", f"{top['scan_s']:.1f} s → {top['scan_10k_s']:.0f} s",
                   f"{scan_ratio:.0f}× the index query", "", ""])
    s.notes += [
        f"Corpus for throughput: {n_files} utterances made from the repository's samples "
        "(espeak-ng speech, 3–4 s each) with per-file seeded noise (distinct content hashes). "
        f"Index = `build_index(..., site={SITE}, jobs={JOBS})` in a fresh process on a cold "
        "cache: embedded LocalCluster of 2 worker processes × 1 thread (torch "
        "OMP_NUM_THREADS=1 each); each file: read audio and alignment, SHA-256, encoder-only "
        "forward through the adapter (no transcription), float16 Zarr cache write, per-file "
        "max/argmax/min/argmin and phone sums, merge on the client. Steady state = files/s "
        f"from the {JOBS}th finished file (by then every worker has loaded the model and "
        "finished a file) to the last one. Mel spectrogram, audio and alignment reading, "
        "hashing and the cache write (behind, in each worker's writer thread) are inside the "
        "index's time, outside the bare forward's. The judged rows use the last block's "
        f"neurons ({SITE}), so the whole encoder runs as in the "
        f"bare pass; for a site in an earlier block ({MID_SITE}) the adapter stops the encoder "
        "after that block (the values are those of a whole pass, bit for bit; tested), which "
        "is why that row can beat the bare forward.",
        f"Bare = {JOBS} spawned processes × 1 torch thread, each `model.encoder(mel)` on its "
        "half of the same files, mel computed before the timed region, all started at one "
        f"barrier; files/s = files ÷ (last end − first start). Rounds interleaved bare, index "
        f"(last block), index (block 2) ({rounds} round(s)); medians.",
        "Memory: `build_index(..., jobs=1)` in a fresh process (client and worker are one "
        "process, so its peak RSS holds everything) over N files whose activations "
        "(150 × 1536 float16, synthetic) are already in the cache; the model is loaded before "
        "the peak mark is reset (the build asks it for its sites). Peak = VmHWM.",
        f"`features top`: an index of {top_files} files × 1536 features (top 20, 5 bins) built "
        "by the real IndexBuilder from synthetic per-file summaries; each query opens the index "
        "(index.json + memory-mapped .npy) and reads one feature's rows. The full scan reads "
        "each file's cached (150 × 1536) activations from the Zarr store and takes one "
        "feature's max, timed over the memory benchmark's cache and scaled linearly.",
    ]
    return s


def whole_rows(s: Section, cfg: Config, work: Path, rounds: int) -> None:
    """`steve-qt features index` timed end to end in fresh processes against the bare encoder
    forward of the same files, side by side (interleaved rounds); the steady state of the same
    runs; the overhead by part from the command's timings record."""
    n = 4 if cfg.in_process else (20 if cfg.quick else WHOLE_FILES)
    if cfg.in_process:
        corpus, how = work / "whole", "the repository's samples with seeded noise"
        make_speech_corpus(corpus, n)
    else:
        corpus, how = make_corpus_cached(n)
    one, two, runs = [], [], []
    for r in range(rounds):
        one.append(run_child("bench.corpus_child", ["bare1", str(corpus)], threads=cfg.threads,
                             timeout=3600))
        two.append(run_child("bench.corpus_child", ["bare", str(corpus), "--jobs", str(JOBS)],
                             threads=1, timeout=3600))
        runs.append(run_child("bench.corpus_child",
                              ["whole", str(corpus), str(work / f"wcache{r}"),
                               str(work / f"widx{r}"), "--jobs", str(JOBS), "--site", SITE],
                              threads=1, timeout=3600))
    med = lambda xs: float(np.median(xs))  # noqa: E731
    ratio = med([w["files_per_s"] / b["files_per_s"] for w, b in zip(runs, one)])
    ratio2 = med([w["files_per_s"] / b["files_per_s"] for w, b in zip(runs, two)])
    steady = med([w["steady_files_per_s"] / b["files_per_s"] for w, b in zip(runs, two)])
    whole_s, one_s, two_s = (med([x["seconds"] for x in xs]) for xs in (runs, one, two))
    s.rows.append([f"whole command ÷ bare forward, {n} files, {JOBS} workers", "",
                   f"{whole_s:.1f} s vs {one_s:.1f} s (bare: one process, "
                   f"{one[0]['threads']} torch threads; ÷ {JOBS} processes × 1 thread, "
                   f"{two_s:.1f} s: {ratio2:.2f})", f"{ratio:.2f}", "≥ 0.6",
                   verdict(ratio, 0.6, higher_is_better=True)])
    s.rows.append([f"index throughput ÷ bare encoder forward (steady state), {SITE}",
                   f"{n} files, {JOBS} workers × 1 thread",
                   f"{med([w['steady_files_per_s'] for w in runs]):.2f} vs "
                   f"{med([b['files_per_s'] for b in two]):.2f} files/s", f"{steady:.2f}",
                   "≥ 0.95", verdict(steady, 0.95, higher_is_better=True)])
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    parts = [(name, mean([w["path"][i][1] for w in runs]))
             for i, (name, _) in enumerate(runs[0]["path"])]
    files_phase = dict(parts)["files (first start to last end)"]
    rows = [[name, f"{sec:.2f}", f"{100 * sec / whole_s:.0f} %"] for name, sec in parts]
    rows.append(["whole command (spawn to exit)", f"{mean([w['seconds'] for w in runs]):.2f}",
                 "100 %"])
    rows.append([f"bare forward of the same files, {JOBS} processes × 1 thread (the files "
                 "phase's floor)", f"{mean([b['seconds'] for b in two]):.2f}", ""])
    rows.append([f"bare forward of the same files, one process × {one[0]['threads']} threads "
                 "(the judged ratio's divisor)", f"{mean([b['seconds'] for b in one]):.2f}", ""])
    s.extra_tables.append((f"Whole command by part: consecutive parts of the wall time (they add "
                           f"up to it), mean of {rounds} round(s)", ["part", "s", "share"], rows))
    keys = [k for k in runs[0]["per_worker"] if k != "task (whole)"]
    pw = {k: mean([w["per_worker"].get(k, 0.0) for w in runs]) for k in keys}
    task = mean([w["per_worker"]["task (whole)"] for w in runs])
    rows = [[k, f"{v:.2f}", f"{1e3 * v * JOBS / n:.1f}"] for k, v in pw.items()]
    rows.append(["task, other (Dask's call, the result's pickling on the worker)",
                 f"{task - sum(pw.values()):.2f}",
                 f"{1e3 * (task - sum(pw.values())) * JOBS / n:.1f}"])
    idle = mean([w["idle_per_worker"] for w in runs])
    rows.append(["waiting between tasks (inside the files phase)", f"{idle:.2f}",
                 f"{1e3 * idle * JOBS / n:.1f}"])
    bg = mean([w["cache_write_behind_s"] for w in runs])
    rows.append(["cache write, behind (the worker's writer thread, beside the next forward; "
                 "CPU on the same cores)", f"{bg:.2f}", f"{1e3 * bg * JOBS / n:.1f}"])
    merge = mean([w["client_merge_s"] for w in runs])
    rows.append(["merge on the client as results arrive (IndexBuilder.add; client process, "
                 "same cores)", f"{merge / JOBS:.2f}", f"{1e3 * merge / n:.1f}"])
    rows.append(["files phase (first start to last end)", f"{files_phase:.2f}", ""])
    s.extra_tables.append((f"Inside the files phase, per worker: seconds summed over its files "
                           f"(÷ {JOBS} workers), mean of {rounds} round(s)",
                           ["part", "s per worker", "ms per file"], rows))
    loads = [x for w in runs for x in w["model_load_s"]]
    s.notes.append(
        f"Whole command: `{runs[0]['command']}` in a fresh process on a cold cache, timed from "
        f"its spawn to its exit, on {n} files made by {how} (kept in bench/.work between runs). "
        f"Bare: `model.encoder(mel)` of the same files in one process ({one[0]['threads']} torch "
        f"threads; mels computed before the timed region, one untimed warm-up forward), and in "
        f"{JOBS} processes × 1 thread as in the steady-state row. Rounds interleaved (bare one "
        f"process, bare {JOBS} processes, whole command), {rounds} round(s); ratios per round, "
        f"medians. The parts come from the command's own timings record (`--timings`, "
        f"wall-clock stamps taken by the client and the workers): cluster start "
        f"{mean([w['cluster_start_s'] for w in runs]):.2f} s, model load per worker "
        f"{min(loads):.2f}–{max(loads):.2f} s (import torch and whisper, load tiny.en; once per "
        f"worker for the whole run), finish {mean([w['finish_s'] for w in runs]):.2f} s, write "
        f"{mean([w['write_s'] for w in runs]):.2f} s, cluster stop "
        f"{mean([w['cluster_stop_s'] for w in runs]):.2f} s (beside finish and write). The steady "
        f"state is files/s from the {JOBS}th result to the last one, by the times the client "
        f"received them. On a loaded machine the one-process bare forward (2 OpenMP threads "
        f"that wait for each other) slows down more than {JOBS} one-thread processes do, so the "
        f"judged ratio is flattered there; the ratio to {JOBS} processes stands beside it.")


SITE = "encoder.blocks.3.mlp.1"  # the last block: the whole encoder runs, as in the bare pass
MID_SITE = "encoder.blocks.2.mlp.1"
