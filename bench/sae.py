"""SAE training throughput: ``train_saes`` (as ``steve-qt sae train`` runs it) ÷ a bare torch
loop of the same SAE on the same rows in memory, for 1 and 4 sites at once; peak memory.

Ours: rows handed over per "file" (4096 rows) by a SiteSource, each site's own seeded shuffle
buffer, deterministic torch algorithms, checkpoints (every 30 s and at the end), the SAE and
training.json written. Bare: the rows already a float32 tensor in memory, one permutation, the
same TopK forward, AuxK and Adam step per batch (``sae_train.losses``), nothing else. The two
are interleaved (bare, ours, bare, ours ...) and the best of the repeats is kept for each.
Peak memory: the process's VmHWM (reset before each run) minus its RSS before.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from .common import Config, Section, measure_peak

QUALITY = Path(__file__).with_name("sae_quality.json")  # written by bench/sae_quality.py

D_IN = 384  # Whisper tiny.en residual stream / encoder.blocks.N
COLUMNS = ["sites", "rows per site", "ours rows/s", "bare loop rows/s", "ours ÷ bare",
           "per-site state MiB", "ours peak ΔRSS MiB"]


def _data(rows: int, d: int, sites: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal((rows, d), dtype=np.float32) * (1 + s) for s in range(sites)]


def _source(data: list[np.ndarray], chunk: int = 4096):
    names = [f"s{i}" for i in range(len(data))]

    def src(epoch, first, wanted):
        for i, start in enumerate(range(0, len(data[0]), chunk)):
            if i >= first:
                yield i, {n: data[names.index(n)][start:start + chunk] for n in wanted}
    return src, names


def _ours(data, cfg) -> float:
    from steve_qt.core.features.sae_train import SiteTarget, train_saes

    src, names = _source(data)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train_saes(src, [SiteTarget(n, data[0].shape[1], Path(tmp) / n, total_rows=len(data[0]))
                         for n in names], cfg)
        return time.perf_counter() - t0


def _bare(data, cfg) -> float:
    import torch

    from steve_qt.core.features.sae_train import init_params, losses, normalize_decoder_

    t0 = time.perf_counter()
    d = data[0].shape[1]
    for x_np in data:
        x = torch.from_numpy(x_np)
        p = {k: v.requires_grad_(True) for k, v in
             init_params(d, cfg.expansion * d, "topk", torch.Generator().manual_seed(0)).items()}
        opt = torch.optim.Adam(list(p.values()), lr=cfg.lr)
        dead = torch.zeros(cfg.expansion * d, dtype=torch.bool)
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        for i in range(0, len(x), cfg.batch):
            loss, _, _ = losses(p, x[perm[i:i + cfg.batch]], cfg, dead, 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            normalize_decoder_(p)
    return time.perf_counter() - t0


def state_mib(d: int, expansion: int, shuffle_rows: int) -> float:
    """Per site: weights, their gradients and Adam's two moments (4 copies of W_enc, W_dec and
    the biases) plus the shuffle buffer (shuffle_rows x d float32) and one batch's codes."""
    params = 2 * d * d * expansion + d * expansion + d
    return (4 * params * 4 + shuffle_rows * d * 4) / 2 ** 20


def run(cfg: Config) -> Section:
    import torch

    from steve_qt.core.features.sae_train import TrainConfig

    s = Section("sae", "SAE training throughput: ours ÷ a bare torch loop, 1 and 4 sites",
                COLUMNS)
    if cfg.map_size < 1500:  # the unit test's tiny config
        d, rows, expansion, repeats = 16, 512, 2, 1
    elif cfg.quick:
        d, rows, expansion, repeats = D_IN, 8192, 8, 1
    else:
        d, rows, expansion, repeats = D_IN, 16384, 8, 1
    torch.set_num_threads(cfg.threads)
    tcfg = TrainConfig(kind="topk", expansion=expansion, k=min(32, d * expansion), batch=1024,
                       epochs=1, shuffle_rows=65536)
    for sites in (1, 4):
        data = _data(rows, d, sites)
        ours, bare, mem = [], [], None
        for _ in range(repeats):
            bare.append(_bare(data, tcfg))
            m = measure_peak(lambda: ours.append(_ours(data, tcfg)))
            mem = m if mem is None or m["delta_mib"] > mem["delta_mib"] else mem
        n = rows * sites
        s.rows.append([str(sites), str(rows), f"{n / min(ours):,.0f}", f"{n / min(bare):,.0f}",
                       f"{min(bare) / min(ours):.2f}",
                       f"{state_mib(d, expansion, tcfg.shuffle_rows):.0f}",
                       f"{mem['delta_mib']:.0f}"])
    s.notes.append(f"Synthetic N(0, 1) rows of width {d}, TopK {d} → {d * expansion}, k = "
                   f"{tcfg.k}, batch 1024, 1 epoch, torch threads {cfg.threads}, best of "
                   f"{repeats} interleaved run(s) (bare first, then ours; ours's peak memory "
                   "measured during its timed run). rows/s counts every site's rows. Per-site state ="
                   " weights + gradients + Adam's two moments + the site's own 65 536-row "
                   "shuffle buffer (it holds at most the rows given, here all of them); nothing "
                   "else grows with the number of sites, and nothing with the corpus size.")
    s.notes.extend(quality_notes())
    table = sweep_table()
    if table:
        s.extra_tables.append(table)
    return s


def quality_notes() -> list[str]:
    """The recorded quality run (bench/sae_quality.json), as notes: what was reached."""
    import json

    if not QUALITY.is_file():
        return ["Quality target (TopK SAE on a synthetic corpus, 100 held-out files): not "
                "recorded (run bench/sae_quality.py)."]
    q = json.loads(QUALITY.read_text())
    return [q["summary"]] + q.get("notes", []) + q.get("sweep", {}).get("notes", [])


SWEEP_COLUMNS = ["measurement", "settings", "value", "target", "result"]


def sweep_table():
    """The recorded experiments on cached activations (bench/sae_sweep.py, kept in
    bench/sae_quality.json under ``sweep``) as a table, or None."""
    import json

    if not QUALITY.is_file():
        return None
    sw = json.loads(QUALITY.read_text()).get("sweep")
    if not sw:
        return None
    d, rows = sw["data"], []

    def cfg(c: dict, **over) -> str:
        c = {**c, **over}
        return (f"TopK 384 → {384 * c['expansion']}, k {c['k']}, batch {c['batch']}, lr "
                f"{c['lr']:g}, {c['epochs']} epoch{'' if c['epochs'] == 1 else 's'}")

    if "precision" in sw:
        p = sw["precision"]
        r = p["ratio_final_loss"]
        rows.append(["mixed precision bfloat16 ÷ float32 final loss (mean of the last 50 steps' "
                     "loss, CPU autocast, same rows and seed)", f"`{p['site']}`, "
                     + cfg(p["settings"]), f"{r:.4f} ({p['bfloat16']['final_loss_last50']:.3f} ÷ "
                     f"{p['float32']['final_loss_last50']:.3f})", "within 1 %",
                     "PASS" if abs(r - 1) <= 0.01 else "MISS"])
        rows.append(["held-out variance explained, bfloat16 / float32", f"`{p['site']}`",
                     f"{p['bfloat16']['fraction_variance_explained']:.4f} / "
                     f"{p['float32']['fraction_variance_explained']:.4f}", "", ""])
        rows.append(["training rows/s, bfloat16 / float32 (one after the other)", "2 threads",
                     f"{p['bfloat16']['rows_per_s']:,.0f} / {p['float32']['rows_per_s']:,.0f} "
                     f"(load {p['float32']['load'].split()[0]})", "", ""])
    if "layers" in sw:
        lay = sw["layers"]
        for site, r in lay["sites"].items():
            rows.append([f"held-out variance explained, `{site}`", cfg(lay["settings"]) +
                         " (4 sites in one pass)", f"{r['fraction_variance_explained']:.3f}",
                         "", ""])
    if "k" in sw:
        for k, r in sw["k"]["runs"].items():
            rows.append([f"held-out variance explained, k = {k}", f"`{sw['k']['site']}`, " +
                         cfg(sw["k"]["settings"], k=k), f"{r['fraction_variance_explained']:.3f}"
                         f" ({r['rows_per_s']:,.0f} rows/s, load {r['load'].split()[0]})",
                         "", ""])
    if "width" in sw:
        for e, r in sw["width"]["runs"].items():
            rows.append([f"held-out variance explained, expansion {e}", f"`{sw['width']['site']}`"
                         ", " + cfg(sw["width"]["settings"], expansion=int(e)),
                         f"{r['fraction_variance_explained']:.3f} ({r['rows_per_s']:,.0f} rows/s)",
                         "", ""])
    for rr in (sw[n] for n in ("rows", "long") if n in sw):
        for pt in rr["points"]:
            rows.append([f"held-out variance explained after {pt['epochs']:g} epoch"
                         f"{'' if pt['epochs'] == 1 else 's'} "
                         f"({pt['rows']:,} rows)", f"`{rr['site']}`, " + cfg(rr["settings"]),
                         f"{pt['fraction_variance_explained']:.3f}", "", ""])
    for name, r in sw.get("wer", {}).items():
        if r.get("wer") is not None:
            rows.append([f"WER with the reconstruction spliced in, SAE `{name}` (variance "
                         f"explained {r['fraction_variance_explained']:.3f})",
                         f"{r['wer_files']} held-out files", f"{r['wer']:.3f} (CER {r['cer']:.3f}"
                         f", loss recovered {r['loss_recovered']:.3f})", "≤ 0.10",
                         "PASS" if r["wer"] <= 0.10 else "MISS"])
    title = (f"SAE quality experiments on cached activations ({d['train_files']} training files, "
             f"{d['train_rows']:,} rows; {d['heldout_files']} held-out files, "
             f"{d['heldout_rows']:,} rows; bench/sae_sweep.py)")
    return title, SWEEP_COLUMNS, rows
