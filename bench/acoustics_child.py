"""Child processes of bench/acoustics.py; each prints one JSON line last.

    python -m bench.acoustics_child tracks [--repeats 15]   # tracks vs encoder forward, 3 s
    python -m bench.acoustics_child auroc WORKDIR [--files 400]  # the index's AUROC pass
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from .common import ROOT, emit, interleave


def tracks(repeats: int) -> dict:
    import parselmouth
    import torch

    from steve_qt.core.models.pipeline import get_adapter
    from steve_qt.core.speech.acoustics import compute_tracks, sample_tracks
    from steve_qt.core.speech.audio import load_audio

    torch.set_num_threads(1)
    audio = load_audio(ROOT / "samples" / "dark_suit.wav")
    x = audio.samples[:48000]
    adapter = get_adapter("whisper")
    mel = adapter.mel(x)[None]
    times = (np.arange(150) * 320 + 160) / 16000

    def forward():
        with torch.no_grad():
            adapter.model.encoder(mel)

    t = interleave({"tracks": lambda: compute_tracks(x, 16000), "forward": forward}, repeats, 2)
    snd = parselmouth.Sound(x.astype(np.float64), 16000)
    parts = interleave({"pitch": snd.to_pitch, "formant": snd.to_formant_burg,
                        "intensity": snd.to_intensity}, repeats, 1)
    tr = compute_tracks(x, 16000)
    samp = interleave({"sample": lambda: sample_tracks(tr, times)}, repeats, 1)
    return {"tracks_s": t["tracks"].median, "forward_s": t["forward"].median,
            "pitch_s": parts["pitch"].median, "formant_s": parts["formant"].median,
            "intensity_s": parts["intensity"].median, "sample_s": samp["sample"].median}


def auroc(workdir: str, n_files: int) -> dict:
    from steve_qt.core.features import index as fi

    rng = np.random.default_rng(0)
    rows, d = 150, 1536
    phones = ["h#", "s", "iy", "t", "aa", "n", "ah", "k", "r", "l"]
    files = [f"u{i:05d}.wav" for i in range(n_files)]
    spill = Path(workdir) / "auroc-spill"
    b = fi.IndexBuilder(files, 20, 5, spill)
    spent = {}
    real = fi.IndexBuilder._auroc

    def timed(self, labels):
        t0 = time.perf_counter()
        out = real(self, labels)
        spent["auroc"] = time.perf_counter() - t0
        return out

    fi.IndexBuilder._auroc = timed
    t0 = time.perf_counter()
    for i in range(n_files):
        feats = np.maximum(rng.standard_normal((rows, d)), -0.17).astype(np.float16) \
            .astype(np.float32)
        labels = [phones[j] for j in rng.integers(0, len(phones), rows)]
        s = fi.summarise(files[i], feats, (np.arange(rows) * 320 + 160) / 16000, labels,
                         [""] * rows)
        b.add(i, s)
    b.finish()
    merge = time.perf_counter() - t0
    return {"files": n_files, "merge_s": merge, "auroc_s": spent["auroc"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("tracks")
    t.add_argument("--repeats", type=int, default=15)
    a = sub.add_parser("auroc")
    a.add_argument("workdir")
    a.add_argument("--files", type=int, default=400)
    args = ap.parse_args()
    if args.what == "tracks":
        emit(tracks(args.repeats))
    else:
        emit(auroc(args.workdir, args.files))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
