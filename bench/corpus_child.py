"""Child processes of the corpus benchmark (bench/corpus.py); each prints one JSON line last.

    python -m bench.corpus_child bare DIR --jobs 2          # bare encoder forwards, jobs processes
    python -m bench.corpus_child bare1 DIR                  # bare encoder forwards, this process
    python -m bench.corpus_child whole DIR CACHE OUT --jobs 2   # `steve-qt features index`, timed
    python -m bench.corpus_child index DIR CACHE OUT --jobs 2   # features index on the local cluster
    python -m bench.corpus_child memory N WORKDIR           # peak RSS of an index build, N files
    python -m bench.corpus_child top WORKDIR [--files 10000] # features top vs a full scan
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from .common import emit

SITE = "encoder.blocks.2.mlp.1"
D = 1536


# --- bare forwards ------------------------------------------------------------------------------
def _bare_worker(files, barrier, queue):
    import torch

    torch.set_num_threads(1)
    from steve_qt.core.speech.audio import load_audio
    from steve_qt.core.models.pipeline import get_adapter

    adapter = get_adapter("whisper")
    mels = [adapter.mel(load_audio(f).samples[:480000]) for f in files]
    barrier.wait()
    t0 = time.perf_counter_ns()
    with torch.no_grad():
        for mel in mels:
            adapter.model.encoder(mel[None].to(next(adapter.model.parameters()).dtype))
    queue.put((t0, time.perf_counter_ns()))


def bare(folder: str, jobs: int) -> dict:
    """Files per second of ``jobs`` processes x 1 torch thread running model.encoder(mel) only
    (audio loading and mel outside the timed region), all started at one barrier."""
    import multiprocessing as mp

    files = sorted(str(p) for p in Path(folder).rglob("*.wav"))
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(jobs), ctx.Queue()
    procs = [ctx.Process(target=_bare_worker, args=(files[i::jobs], barrier, queue))
             for i in range(jobs)]
    for p in procs:
        p.start()
    spans = [queue.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    wall = (max(b for _, b in spans) - min(a for a, _ in spans)) / 1e9
    return {"files": len(files), "seconds": wall, "files_per_s": len(files) / wall}


def bare_one(folder: str) -> dict:
    """Seconds of ``model.encoder(mel)`` over every file in this one process (torch's threads
    as the environment gives them), mels computed before the timed region."""
    import torch

    from steve_qt.core.models.pipeline import get_adapter
    from steve_qt.core.speech.audio import load_audio

    files = sorted(str(p) for p in Path(folder).rglob("*.wav"))
    adapter = get_adapter("whisper")
    dtype = next(adapter.model.parameters()).dtype
    mels = [adapter.mel(load_audio(f).samples[:480000])[None].to(dtype) for f in files]
    with torch.no_grad():
        adapter.model.encoder(mels[0])  # warm-up, not timed
        t0 = time.perf_counter()
        for mel in mels:
            adapter.model.encoder(mel)
        wall = time.perf_counter() - t0
    return {"files": len(files), "seconds": wall, "files_per_s": len(files) / wall,
            "threads": torch.get_num_threads()}


# --- the whole command, in a fresh process --------------------------------------------------------
def whole(folder: str, cache: str, out: str, jobs: int, site: str) -> dict:
    """``steve-qt features index FOLDER --site S --out OUT --cache CACHE --jobs J --timings T``
    timed from the spawn of its process to its exit; its timings record split by part."""
    import json
    import subprocess
    import sys

    script = Path(sys.executable).with_name("steve-qt")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "steve_qt.cli"]
    tpath = Path(out).with_name(Path(out).name + ".timings.json")
    cmd += ["features", "index", folder, "--site", site, "--out", out, "--cache", cache,
            "--jobs", str(jobs), "--timings", str(tpath), "--force"]
    spawn = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    end = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    res = whole_parts(json.loads(tpath.read_text()), spawn, end, jobs)
    res["command"] = (f"steve-qt features index CORPUS --site {site} --out IDX --cache CACHE "
                      f"--jobs {jobs} --timings T.json")
    return res


def whole_parts(t: dict, spawn: float, end: float, jobs: int) -> dict:
    """The whole command's wall time cut into consecutive parts (they add up to it), and what
    the workers spent per part (seconds summed over files, divided by the workers)."""
    spans = {}
    for s in t["spans"]:
        spans.setdefault(s["part"], []).append(s)
    files = t["files"]
    start = [f["start"] for f in files]
    stop = [f["end"] for f in files]
    first, last = min(start), max(stop)
    command = spans["command"][0]
    cluster = spans["cluster start"][0]
    finish = spans["finish"][0]
    write = spans["write"][0]
    path = [("python start, imports, arguments", spawn, command["start"]),
            ("cluster start (workers up; files listed meanwhile)", command["start"],
             cluster["end"]),
            ("model load on the workers (to the first file's start)", cluster["end"], first),
            ("files (first start to last end)", first, last),
            ("merge: last result in, range pass, selectivity, AUROC", last, finish["end"]),
            ("write the index (cluster stops meanwhile)", finish["end"], write["end"]),
            ("wait for the cluster to stop, exit", write["end"], end)]
    per_worker: dict[str, float] = {}
    for f in files:
        for k, v in f["seconds"].items():
            per_worker[k] = per_worker.get(k, 0.0) + v / jobs
        per_worker["task (whole)"] = per_worker.get("task (whole)", 0.0) + \
            (f["end"] - f["start"]) / jobs
    by_pid: dict = {}
    for f in files:
        by_pid.setdefault(f["pid"], []).append(f)
    idle = 0.0
    for fs in by_pid.values():
        busy = sum(f["end"] - f["start"] for f in fs)
        idle += ((last - first) - busy) / jobs  # waiting inside the files' phase
    received = sorted(f["received"] for f in files)
    k = min(jobs, len(received)) - 1
    steady = (len(received) - 1 - k) / (received[-1] - received[k]) \
        if received[-1] > received[k] else float("nan")
    loads = [s["end"] - s["start"] for s in spans.get("model load", [])]
    writes = t.get("workers", [])
    return {"files": len(files), "seconds": end - spawn, "files_per_s": len(files) / (end - spawn),
            "steady_files_per_s": steady,
            "path": [[name, b - a] for name, a, b in path],
            "per_worker": per_worker, "idle_per_worker": idle,
            "model_load_s": loads, "cluster_start_s": cluster["end"] - cluster["start"],
            "cluster_stop_s": sum(s["end"] - s["start"] for s in spans.get("cluster stop", [])),
            "finish_s": finish["end"] - finish["start"], "write_s": write["end"] - write["start"],
            "client_merge_s": sum(f["merged"] - f["received"] for f in files),
            "cache_write_behind_s": sum(w.get("seconds", 0.0) for w in writes) / jobs,
            "workers": len(by_pid)}


# --- the index on the local cluster ------------------------------------------------------------
def index(folder: str, cache: str, out: str, jobs: int, site: str = SITE,
          acoustics: bool = False) -> dict:
    from steve_qt.core.features.index import build_index

    stamps: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    build_index(folder, site, out, jobs=jobs, cache_dir=cache, top_k=20, acoustics=acoustics,
                progress=lambda done, total, what: stamps.append((done, time.perf_counter())))
    wall = time.perf_counter() - t0
    done = [(d, t) for d, t in stamps if d > 0]
    # steady state: from the jobs-th finished file (by then every worker has loaded the model
    # and finished its first file) to the last one
    (d0, t_first), (d1, t_last) = done[min(jobs, len(done)) - 1], done[-1]
    steady = (d1 - d0) / (t_last - t_first) if t_last > t_first else float("nan")
    import csv

    with open(Path(out) / "files.csv", newline="") as f:  # each file's task time on its worker
        task_s = [float(r["seconds"]) for r in csv.DictReader(f) if r["status"] == "ok"]
    return {"files": d1, "seconds": wall, "files_per_s": d1 / wall, "steady_files_per_s": steady,
            "first_file_s": t_first - t0, "task_s_median": float(np.median(task_s))}


# --- memory: an index build over N files whose activations are in the cache ----------------------
def make_files(folder: Path, n: int, seconds: float = 3.0, cache: Path | None = None) -> list[Path]:
    """``n`` distinct WAVs (noise; 3 s) and, with ``cache``, synthetic (T, 1536) activations for
    each in the activation cache (so that no model runs)."""
    import soundfile as sf

    from steve_qt.core.features import actcache
    from steve_qt.core.frames import whisper_grid

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    samples = int(seconds * 16000)
    t = -(-samples // 320)
    for i in range(n):
        p = folder / f"S{i // 100:02d}" / f"u{i:05d}.wav"
        p.parent.mkdir(exist_ok=True)
        rng = np.random.default_rng(i)
        if not p.exists():
            sf.write(str(p), (0.05 * rng.standard_normal(samples)).astype(np.float32), 16000,
                     subtype="PCM_16")
        if cache is not None:
            acts = np.maximum(rng.standard_normal((t, D)), -0.17).astype(np.float16)
            actcache.store_activations(p, "whisper", SITE, 0, acts, cache_dir=cache, attrs={
                "grid": actcache.grid_attrs(whisper_grid(0)), "num_samples": samples})
        out.append(p)
    return out


def memory(n: int, workdir: str) -> dict:
    from steve_qt.core.features.index import build_index
    from steve_qt.core.models.pipeline import get_adapter

    from .common import peak_rss_kb, reset_peak_rss, rss_kb, trim_heap

    work = Path(workdir)
    folder, cache = work / f"corpus{n}", work / f"cache{n}"
    make_files(folder, n, cache=cache)
    get_adapter("whisper")  # loaded once (the build asks it for its sites)
    trim_heap()
    reset = reset_peak_rss()
    before = rss_kb()
    t0 = time.perf_counter()
    build_index(folder, SITE, work / f"idx{n}", jobs=1, cache_dir=cache, force=True)
    seconds = time.perf_counter() - t0
    return {"files": n, "rss_before_mib": before / 1024, "peak_mib": peak_rss_kb() / 1024,
            "peak_reset": reset, "seconds": seconds}


# --- features top on a synthesized 10 000-file index, and FREUD's full scan ----------------------
def synth_index(out: Path, n_files: int, rows: int = 150, seed: int = 0) -> float:
    """An index of ``n_files`` files built from synthetic per-file summaries by the real builder
    (merge, range pass, tables); returns the build seconds."""
    from steve_qt.core.features import index as fi

    rng = np.random.default_rng(seed)
    files = [f"DR{i % 8}/S{i // 10:04d}/u{i:05d}.wav" for i in range(n_files)]
    phones = ["h#", "s", "iy", "t", "aa", "n", "ah", "k", "r", "l"]
    spill = out.with_name(out.name + ".spill")
    t0 = time.perf_counter()
    b = fi.IndexBuilder(files, 20, 5, spill)
    for i in range(n_files):
        s = fi.FileSummary(files[i], ok=True, rows=rows)
        s.vmax = rng.gamma(2.0, 1.0, D).astype(np.float32)
        s.amax = rng.integers(0, rows, D).astype(np.int32)
        s.vmin = -rng.random(D).astype(np.float32) * 0.17
        s.amin = rng.integers(0, rows, D).astype(np.int32)
        s.times = (np.arange(rows) * 320 + 160) / 16000
        s.phones = [phones[j] for j in rng.integers(0, len(phones), rows)]
        s.words = [f"w{j}" for j in rng.integers(0, 500, rows)]
        for p in phones[:4]:
            s.phone_sums[p] = rng.random(D)
            s.phone_sq[p] = rng.random(D) + 1
            s.phone_counts[p] = 10
        b.add(i, s)
    tables = b.finish()
    import shutil

    shutil.rmtree(spill, ignore_errors=True)
    meta = {"format": "steve_qt feature index", "version": fi.INDEX_VERSION, "model": "whisper",
            "site": SITE, "sae": None, "corpus": "/synthetic", "num_files": n_files,
            "files_used": n_files, "files_failed": 0, "num_features": D, "top_k": 20, "bins": 5}
    fi.write_index(out, tables, files, {i: {"ok": True} for i in range(n_files)}, meta,
                   "synthetic\n", force=True)
    return time.perf_counter() - t0


def top(workdir: str, n_files: int, scan_cache: str | None, scan_corpus: str | None) -> dict:
    import subprocess
    import sys

    from steve_qt.core.features.index import FeatureIndex

    work = Path(workdir)
    idx = work / f"idx_synth{n_files}"
    build_s = synth_index(idx, n_files)
    rng = np.random.default_rng(1)
    times = []
    for f in rng.integers(0, D, 200):
        t0 = time.perf_counter()
        ex = FeatureIndex.open(idx).top(int(f))
        times.append(time.perf_counter() - t0)
        assert len(ex) == 20
    cli = []
    for f in (17, 300, 1200):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "steve_qt.cli", "features", "top", str(idx),
                        str(f)], check=True, capture_output=True)
        cli.append(time.perf_counter() - t0)
    startup = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import steve_qt.cli"], check=True)
        startup.append(time.perf_counter() - t0)
    res = {"files": n_files, "build_s": build_s, "open_top_ms": 1e3 * float(np.median(times)),
           "open_top_max_ms": 1e3 * float(np.max(times)),
           "cli_ms": 1e3 * float(np.median(cli)), "python_import_ms": 1e3 * float(np.median(startup)),
           "index_mib": sum(p.stat().st_size for p in idx.iterdir()) / 2**20}
    if scan_cache and scan_corpus:
        from steve_qt.core.features import actcache

        files = sorted(Path(scan_corpus).rglob("*.wav"))
        t0 = time.perf_counter()
        best = []
        for p in files:  # FREUD's way: every file's activations, for one feature
            a = actcache.load_activations(p, "whisper", SITE, cache_dir=scan_cache)
            best.append(float(a[:, 17].max()))
        scan = time.perf_counter() - t0
        res.update(scan_files=len(files), scan_s=scan,
                   scan_10k_s=scan / len(files) * n_files)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    b = sub.add_parser("bare")
    b.add_argument("folder")
    b.add_argument("--jobs", type=int, default=2)
    i = sub.add_parser("index")
    i.add_argument("folder")
    i.add_argument("cache")
    i.add_argument("out")
    i.add_argument("--jobs", type=int, default=2)
    i.add_argument("--site", default=SITE)
    i.add_argument("--acoustics", action="store_true")
    b1 = sub.add_parser("bare1")
    b1.add_argument("folder")
    w = sub.add_parser("whole")
    w.add_argument("folder")
    w.add_argument("cache")
    w.add_argument("out")
    w.add_argument("--jobs", type=int, default=2)
    w.add_argument("--site", default=SITE)
    m = sub.add_parser("memory")
    m.add_argument("n", type=int)
    m.add_argument("workdir")
    t = sub.add_parser("top")
    t.add_argument("workdir")
    t.add_argument("--files", type=int, default=10000)
    t.add_argument("--scan-cache")
    t.add_argument("--scan-corpus")
    a = ap.parse_args()
    if a.what == "bare":
        emit(bare(a.folder, a.jobs))
    elif a.what == "bare1":
        emit(bare_one(a.folder))
    elif a.what == "whole":
        emit(whole(a.folder, a.cache, a.out, a.jobs, a.site))
    elif a.what == "index":
        emit(index(a.folder, a.cache, a.out, a.jobs, a.site, a.acoustics))
    elif a.what == "memory":
        emit(memory(a.n, a.workdir))
    else:
        emit(top(a.workdir, a.files, a.scan_cache, a.scan_corpus))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
