"""What every benchmark shares: configuration, interleaved timing, test audio, RSS, children."""

from __future__ import annotations

import ctypes
import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_WAV = ROOT / "samples" / "dark_suit.wav"
RATE = 16000


@dataclass
class Config:
    """How hard to measure. ``quick()`` is the smoke run; ``tiny()`` is for the unit test."""

    repeats: int = 12  # timed runs per variant (interleaved A/B/A/B)
    warmup: int = 2  # discarded runs per variant before timing
    threads: int = 2  # torch.set_num_threads for every measurement (and every child)
    durations: tuple[float, ...] = (3.0, 10.0)  # capture / baseline input lengths (s)
    memory_durations: tuple[float, ...] = (1.0, 3.0, 10.0, 30.0)
    memory_repeats: int = 3  # measured runs per memory cell (median)
    memory_warmup: int = 1  # discarded runs before them
    extract_repeats: int = 3  # full adapter.extract (it transcribes: slow)
    redraw_repeats: int = 60  # pyqtgraph switches
    mpl_repeats: int = 10  # matplotlib redraws (~0.4 s each)
    map_size: int = 1500  # redraw map side
    first_map_repeats: int = 5  # fresh processes; the second-file row is judged on their median
    wav2vec2_config: dict = field(default_factory=lambda: dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072))
    first_map_file: str | None = None  # default: samples/dark_suit.wav, else synthetic
    in_process: bool = False  # run memory "children" in this process (smoke test only)
    checks: bool = True  # agreement checks and torch-allocation profiling (slow extras)
    quick: bool = False

    @classmethod
    def quick_run(cls, threads: int = 2) -> "Config":
        return cls(repeats=3, warmup=1, threads=threads, memory_durations=(1.0, 10.0),
                   memory_repeats=1,
                   extract_repeats=1, redraw_repeats=15, mpl_repeats=3, first_map_repeats=1,
                   quick=True)

    @classmethod
    def tiny(cls) -> "Config":
        """Runs every code path with tiny counts and inputs (tests/test_bench_smoke.py)."""
        return cls(repeats=1, warmup=0, threads=2, durations=(1.0,), memory_durations=(1.0,),
                   memory_repeats=1, memory_warmup=0, extract_repeats=0, redraw_repeats=2,
                   mpl_repeats=1,
                   map_size=64, first_map_repeats=1, in_process=True, checks=False, quick=True,
                   wav2vec2_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=37, conv_dim=(16,) * 7, vocab_size=12,
                                        num_conv_pos_embeddings=16,
                                        num_conv_pos_embedding_groups=2))


# --- results --------------------------------------------------------------------------------

@dataclass
class Section:
    """One measurement's results: a table plus notes, rendered into RESULTS.md."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra_tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)
    measured: str = ""  # date of the run that produced it

    def to_dict(self) -> dict:
        return dict(name=self.name, title=self.title, columns=self.columns, rows=self.rows,
                    notes=self.notes, extra_tables=[list(t) for t in self.extra_tables],
                    measured=self.measured)

    @classmethod
    def from_dict(cls, d: dict) -> "Section":
        return cls(d["name"], d["title"], d["columns"], d["rows"], d["notes"],
                   [tuple(t) for t in d.get("extra_tables", [])], d.get("measured", ""))


@dataclass
class Timing:
    times: list[float]  # seconds, one per timed run

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def lo(self) -> float:
        return min(self.times)

    @property
    def hi(self) -> float:
        return max(self.times)

    def ms(self) -> str:
        """``median (min–max)`` in milliseconds."""
        return f"{self.median * 1e3:.1f} ({self.lo * 1e3:.1f}–{self.hi * 1e3:.1f})"


def verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


# --- timing ---------------------------------------------------------------------------------

def interleave(variants: dict[str, Callable[[], object]], repeats: int,
               warmup: int = 1) -> dict[str, Timing]:
    """Time each variant ``repeats`` times in the order A, B, A, B, ... after ``warmup`` rounds.

    Interleaving makes slow drifts of the machine (other processes, CPU clock) hit every variant
    alike, so their ratio is fairer than timing A's block then B's. The young garbage
    generations are collected between runs, outside the timed region (a full collection takes
    0.2 s once transformers is imported).
    """
    times: dict[str, list[float]] = {k: [] for k in variants}
    for rnd in range(warmup + repeats):
        for name, fn in variants.items():
            gc.collect(1)
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if rnd >= warmup:
                times[name].append(dt)
    return {k: Timing(v) for k, v in times.items()}


def set_threads(n: int) -> int:
    import torch

    torch.set_num_threads(n)
    return torch.get_num_threads()


# --- test audio -----------------------------------------------------------------------------

def synthetic_speechlike(num_samples: int, seed: int = 0) -> np.ndarray:
    """A voiced, vowel-like signal with a wandering pitch, syllable envelope and some noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4.0 * t)) ** 2  # ~4 syllables per second
    x = 0.1 * voiced * envelope + 0.01 * rng.standard_normal(num_samples)
    return x.astype(np.float32)


def make_audio(seconds: float) -> tuple[np.ndarray, str]:
    """(samples at 16 kHz, description): samples/dark_suit.wav tiled to length, else synthetic."""
    n = int(round(seconds * RATE))
    if SAMPLE_WAV.exists():
        from steve_qt.core.speech.audio import load_audio

        src = load_audio(SAMPLE_WAV).samples
        return np.resize(src, n).astype(np.float32), f"{SAMPLE_WAV.name} tiled"
    return synthetic_speechlike(n), "synthetic voiced signal (samples/dark_suit.wav absent)"


# --- memory ---------------------------------------------------------------------------------

def rss_kb() -> int:
    """Current resident set size of this process in KiB."""
    return int(re.search(r"VmRSS:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def trim_heap() -> None:
    """Collect garbage and give freed heap pages back to the OS, so RSS means live memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS.

    Writing 5 to /proc/self/clear_refs does this (Linux >= 4.0). Returns False if not allowed,
    in which case VmHWM still holds the peak since the process started.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_kb() -> int:
    """Peak RSS of this process's memory map since the last reset (VmHWM), in KiB.

    Not ``getrusage().ru_maxrss``: Linux carries the *parent's* RSS at fork into the child's
    ``ru_maxrss`` across exec (signal->maxrss), which clear_refs does not reset, so a child of a
    big benchmark process would report the parent's size. VmHWM is the same counter without that
    carry-over; ``ru_maxrss`` equals it in a process started from a small parent.
    """
    text = Path("/proc/self/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+)", text)
    if m is None:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
    return int(m.group(1))


def measure_peak(fn: Callable[[], object],
                 look: Callable[[object], object] | None = None) -> dict:
    """Run ``fn`` once; RSS before, peak RSS during (VmHWM after a reset), in MiB.

    ``look(result)`` is called after the peak was read (e.g. to size the result). Memory that
    result pools keep for reuse (``steve_qt.core.models.buffers``) is given back first, as the freed
    heap is, so each run's peak includes its result's memory.
    """
    import sys

    if "steve_qt.core.models.buffers" in sys.modules:
        sys.modules["steve_qt.core.models.buffers"].clear_all()
    trim_heap()
    reset_ok = reset_peak_rss()
    before = rss_kb()
    out = fn()
    peak = peak_rss_kb()
    if look is not None:
        look(out)
    del out
    return dict(rss_before_mib=before / 1024, peak_mib=peak / 1024,
                delta_mib=(peak - before) / 1024, peak_reset=reset_ok)


def torch_peak_mib(fn: Callable[[], object]) -> float | None:
    """Peak of live torch tensor bytes above the start while ``fn`` runs (profiler timeline).

    Uses torch.profiler's memory timeline (CPU). Returns None if the profiler cannot do it.
    Internal buffers of fused kernels and numpy arrays are not tensors and are not counted.
    """
    import tempfile
    import warnings

    import torch
    from torch.profiler import ProfilerActivity, profile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with profile(activities=[ProfilerActivity.CPU], profile_memory=True,
                         record_shapes=True, with_stack=True) as prof:
                fn()
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "timeline.json")
                prof.export_memory_timeline(path, device="cpu")
                _, sizes = json.loads(Path(path).read_text())
    except Exception:  # noqa: BLE001 - an optional extra, never fatal
        return None
    total = np.asarray(sizes, dtype=np.float64).sum(axis=1)
    if total.size == 0:
        return None
    return float(total.max() - total[0]) / 2**20


# --- children -------------------------------------------------------------------------------

#: no progress bars or info chatter from transformers / huggingface_hub
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
             "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def child_env(threads: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(QUIET_ENV)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def run_child(module: str, args: list[str], threads: int, timeout: float = 900,
              **env: str) -> dict:
    """Run ``python -m <module> <args>`` in a fresh process; it prints one JSON line last."""
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=child_env(threads, **env))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def memory_probe(cfg: Config, args: list[str]) -> dict:
    """bench.memory_child with ``args``: a fresh process, or this one when ``cfg.in_process``."""
    if cfg.in_process:
        from . import memory_child

        return memory_child.measure(args)
    return run_child("bench.memory_child", args, cfg.threads)


def emit(result: dict) -> None:
    """A child's answer: one JSON line on stdout."""
    print(json.dumps(result), flush=True)
