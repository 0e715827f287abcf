"""SAE training throughput on this CPU: activation rows per second and peak memory.

``steve_qt.core.features.sae_train.train_sae`` as ``steve-qt sae train`` runs it (shuffle buffer,
checkpoints, AuxK / L1, Adam), on synthetic rows of tiny.en's residual width (384) streamed in
chunks of 4096 as the activation cache yields them; one epoch per measurement, the SAE written
at the end. Peak memory: the process's VmHWM (reset before each run) minus its RSS before.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np

from .common import Config, Section, measure_peak

D_IN = 384  # Whisper tiny.en residual stream / encoder.blocks.N
COLUMNS = ["kind", "d_in → d_sae", "batch", "rows", "seconds", "rows/s", "peak ΔRSS MiB"]


def _source(rows: int, d: int, seed: int = 0):
    data = np.random.default_rng(seed).standard_normal((rows, d), dtype=np.float32)
    return lambda epoch: (data[i:i + 4096] for i in range(0, rows, 4096))


def _one(kind: str, d: int, expansion: int, batch: int, rows: int, threads: int) -> list[str]:
    import torch

    from steve_qt.core.features.sae_train import TrainConfig, train_sae

    torch.set_num_threads(threads)
    cfg = TrainConfig(kind=kind, expansion=expansion, k=32, batch=batch, epochs=1,
                      checkpoint_every=10_000)
    source = _source(rows, d)
    with tempfile.TemporaryDirectory() as tmp:
        t = {}

        def run():
            t0 = time.perf_counter()
            train_sae(source, d, cfg, tmp, total_rows=rows, force=True)
            t["s"] = time.perf_counter() - t0

        mem = measure_peak(run)
    return [kind, f"{d} → {d * expansion}", str(batch), str(rows), f"{t['s']:.1f}",
            f"{rows / t['s']:,.0f}", f"{mem['delta_mib']:.0f}"]


def run(cfg: Config) -> Section:
    s = Section("sae", "SAE training throughput (rows per second, peak memory)", COLUMNS)
    if cfg.map_size < 1500:  # the unit test's tiny config
        d, rows, expansions = 16, 512, (2,)
    elif cfg.quick:
        d, rows, expansions = D_IN, 8192, (8,)
    else:
        d, rows, expansions = D_IN, 65536, (4, 8)
    for expansion in expansions:
        for kind in ("topk", "l1"):
            s.rows.append(_one(kind, d, expansion, 1024, rows, cfg.threads))
    s.notes.append(f"Synthetic N(0, 1) rows of width {d}, 1 epoch, batch 1024, TopK k = 32, "
                   f"torch threads {cfg.threads}; rows/s includes the scale estimate, the "
                   "shuffle buffer and writing the SAE. The memory is the SAE, Adam's two "
                   "moments, one batch's activations and the 65 536-row shuffle buffer "
                   "(65 536 x d_in x 4 bytes = 96 MiB at d_in 384), independent of the corpus "
                   "size (the rows are streamed).")
    return s
