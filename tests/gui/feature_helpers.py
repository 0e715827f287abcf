"""Feature tests' helpers: a feature index written by hand, synthetic activations.

The index is written as the brief fixes its CSV tables (``top_examples.csv``:
``feature,rank,file,frame,time_s,activation,phone,word``; ``range_examples.csv`` the same plus
``bin,lo,hi``; ``index.json``; ``files.csv``), with file paths relative to the corpus root.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

SITE = "encoder.blocks.2.mlp.1"
HOP = 320  # Whisper's encoder frame: 20 ms at 16 kHz
D = 8  # features of the synthetic site


def frames_of(num_samples: int) -> int:
    return -(-num_samples // HOP)  # ceil: the frames the maps keep


def synthetic_acts(num_samples: int, seed: int) -> np.ndarray:
    """(T, D) float32: feature f is a bump centred at a frame that depends on the file and f."""
    t = frames_of(num_samples)
    rng = np.random.default_rng(seed)
    x = np.arange(t)[:, None]
    centres = rng.integers(t // 6, t - t // 6, size=D)[None, :]
    widths = rng.uniform(3, 12, size=D)[None, :]
    acts = np.exp(-0.5 * ((x - centres) / widths) ** 2) * rng.uniform(1, 5, size=D)[None, :]
    acts += 0.05 * rng.standard_normal((t, D))
    return acts.astype(np.float32)


def make_corpus(root: Path, samples_dir: Path, names=("dark_suit", "oily_rag", "cats_and_dogs")
                ) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for n in names:
        for suffix in (".wav", ".phn", ".wrd"):
            src = samples_dir / (n + suffix)
            if src.exists():
                shutil.copy(src, root / src.name)
        out.append(root / f"{n}.wav")
    return out


def write_index(idx: Path, corpus: Path, acts_by_file: dict[Path, np.ndarray],
                model: str = "whisper", site: str = SITE, top_k: int = 3) -> Path:
    """Top examples by brute force (one per file at its argmax frame, ranked by activation) and
    one range bin per feature holding the rest."""
    idx.mkdir(parents=True, exist_ok=True)
    top, ranges = [], []
    for f in range(D):
        cand = sorted(((float(a[:, f].max()), str(p.relative_to(corpus)), int(a[:, f].argmax()))
                       for p, a in acts_by_file.items()), key=lambda c: (-c[0], c[1]))
        for rank, (v, rel, frame) in enumerate(cand[:top_k]):
            time_s = (frame * HOP + HOP / 2) / 16000
            top.append([f, rank, rel, frame, f"{time_s:.4f}", f"{v:.6f}", "", ""])
            ranges.append([f, rank, rel, frame, f"{time_s:.4f}", f"{v:.6f}", "", "", 1, 0.0,
                           f"{v:.6f}"])
    head = ["feature", "rank", "file", "frame", "time_s", "activation", "phone", "word"]
    for name, rows, cols in (("top_examples.csv", top, head),
                             ("range_examples.csv", ranges, head + ["bin", "lo", "hi"])):
        with (idx / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            w.writerows(rows)
    with (idx / "files.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file"])
        w.writerows([[str(p.relative_to(corpus))] for p in acts_by_file])
    (idx / "index.json").write_text(json.dumps({
        "version": 1, "model": model, "site": site, "sae": None, "corpus": str(corpus),
        "num_files": len(acts_by_file), "top_k": top_k, "num_features": D}))
    return idx
