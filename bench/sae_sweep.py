"""Small SAE experiments on cached activations (not a test; minutes each): what the quality target
of bench/RESULTS.md's sae section (variance explained >= 0.90, WER <= 0.10 with the
reconstruction, 100 held-out files, <= 20 min of training on 2 CPU cores) needs.

    python samples/make_corpus.py --out CORPUS --n 600
    python -m bench.sae_sweep CORPUS CACHE WORK EXPERIMENT [EXPERIMENT ...]

EXPERIMENT: ``layers`` (blocks 0-3, one multi-site run), ``k`` (k = 32 .. 256), ``width``
(expansion 4, 8, 16), ``rows`` (variance explained against rows trained, one run stopped and
resumed at its checkpoints), ``long`` (the same, 8 to 24 epochs), ``precision`` (bfloat16 autocast ÷ float32, same rows and seed),
``wer`` (transcripts with the reconstruction of the SAEs saved by the runs above, 20 held-out
files each). 100 files are held out (seeded); every run trains through ``train_sae(s)`` (the
trainer ``steve-qt sae train`` runs) on the other files' cached rows, read once into memory.
Environment (for a run that must fit the time there is): ``SWEEP_FILES`` (the first N files),
``SWEEP_HELD`` (held-out files, 100), ``SWEEP_K`` (k values), ``SWEEP_EPOCHS`` and ``SWEEP_AT``
(the ``rows`` run), ``SWEEP_LAYER_EPOCHS``, ``SWEEP_WER`` (``experiment/run`` names) and
``SWEEP_WER_FILES`` (20). Results go to WORK/sweep.json (merged, one key per experiment); ``python -m bench.sae_sweep
record WORK "note"`` copies them into bench/sae_quality.json (``sweep``), which bench/sae.py
shows.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

SITES = [f"encoder.blocks.{i}" for i in range(4)]
HELD = int(os.environ.get("SWEEP_HELD", 100))  # held-out files
BASE = dict(kind="topk", expansion=8, k=64, batch=512, lr=1e-3, epochs=2, shuffle_rows=65536)


def load(corpus: Path, cache: Path, sites=SITES) -> dict:
    from steve_qt.core.features.corpus import find_audio_files
    from steve_qt.core.features.sae_corpus import fill_cache, sites_source, split_holdout
    from steve_qt.core.models.adapters import DEFAULT_SPEC

    files = sorted(find_audio_files(corpus))
    if os.environ.get("SWEEP_FILES"):  # the first N files only (those cached in the time there was)
        files = files[:int(os.environ["SWEEP_FILES"])]
    train, held = split_holdout(files, HELD / len(files), 0)
    usable, failed = fill_cache(files, DEFAULT_SPEC, sites, cache, jobs=1)
    train = [f for f in train if f in set(usable)]
    held = [f for f in held if f in set(usable)]
    src = sites_source(train, DEFAULT_SPEC, cache)
    per_file = {s: [] for s in sites}
    for _, by_site in src(0, 0, sites):
        for s in sites:
            per_file[s].append(np.asarray(by_site[s], dtype=np.float32))
    held_rows = {s: [] for s in sites}
    for _, by_site in sites_source(held, DEFAULT_SPEC, cache)(0, 0, sites):
        for s in sites:
            held_rows[s].append(np.asarray(by_site[s], dtype=np.float32))
    return {"train": train, "held": held, "spec": DEFAULT_SPEC, "rows": per_file, "cache": cache,
            "held_rows": {s: np.concatenate(v) for s, v in held_rows.items()},
            "n_train_rows": sum(len(r) for r in per_file[sites[0]])}


def evaluate(sae, held: np.ndarray) -> dict:
    from steve_qt.core.features.sae_train import evaluate as ev

    r = ev(sae, [held])
    return {k: r[k] for k in ("fraction_variance_explained", "l0", "dead_share", "dense_share")}


def train_one(data, site, out: Path, progress=None, stop=None, **over):
    """One SAE of ``site`` with BASE's settings and ``over``; (SAE or None, seconds)."""
    from steve_qt.core.features.sae_train import TrainConfig, train_sae

    cfg = TrainConfig(**{**BASE, **over})
    files = data["rows"][site]
    t0 = time.perf_counter()
    sae = train_sae(lambda e: iter(files), files[0].shape[1], cfg, out, hook_name=site,
                    model_name=data["spec"], total_rows=data["n_train_rows"], progress=progress,
                    stop_after_steps=stop, force=stop is None and not (out / "checkpoint.pt")
                    .exists())
    return sae, time.perf_counter() - t0


def mark_heldout(out: Path, data) -> None:
    from steve_qt.core.features.sae_train import write_report

    write_report(out, {"heldout_files": [str(f) for f in data["held"]]})


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def ints(env: str, default: str) -> list[int]:
    return [int(v) for v in os.environ.get(env, default).split(",")]


def floats(env: str, default: str) -> list[float]:
    return [float(v) for v in os.environ.get(env, default).split(",")]


def exp_layers(data, work: Path, epochs: int = 2) -> dict:
    from steve_qt.core.features.sae_train import SiteTarget, TrainConfig, train_saes

    cfg = TrainConfig(**{**BASE, "epochs": epochs})
    n = len(data["rows"][SITES[0]])

    def src(epoch, first, names):
        for i in range(first, n):
            yield i, {s: data["rows"][s][i] for s in names}

    t0 = time.perf_counter()
    saes = train_saes(src, [SiteTarget(s, 384, work / "layers" / s, s, data["spec"],
                                       data["n_train_rows"]) for s in SITES], cfg, force=True)
    sec = time.perf_counter() - t0
    rows = {s: {**evaluate(saes[s], data["held_rows"][s])} for s in SITES}
    for s in SITES:
        mark_heldout(work / "layers" / s, data)
    return {"settings": {**BASE, "epochs": epochs}, "sites": rows, "seconds": sec,
            "rows_per_s_all_sites": 4 * epochs * data["n_train_rows"] / sec,
            "load": load_avg()}


def exp_sweep(data, work: Path, name: str, values, key: str, site="encoder.blocks.2") -> dict:
    out = {}
    for v in values:
        d = work / name / f"{key}{v}"
        sae, sec = train_one(data, site, d, **{key: v})
        mark_heldout(d, data)
        rows = BASE["epochs"] * data["n_train_rows"]
        out[str(v)] = {**evaluate(sae, data["held_rows"][site]), "seconds": sec,
                       "rows_per_s": rows / sec, "load": load_avg()}
        print(name, v, out[str(v)], flush=True)
    return {"site": site, "settings": BASE, "varied": key, "runs": out}


def exp_rows(data, work: Path, site="encoder.blocks.2", k=128, epochs=8,
             at=(0.25, 0.5, 1, 2, 4, 8), name="rows") -> dict:
    """Variance explained after 1/4 .. ``epochs`` epochs of one run (stopped and resumed at its
    checkpoints: the same SAE an uninterrupted run has at those steps)."""
    import torch

    from steve_qt.core.features.sae_train import TrainConfig, load_checkpoint, to_sae

    d = work / name / f"k{k}"
    n = data["n_train_rows"]
    steps_epoch = -(-n // BASE["batch"])
    done, sec, points = 0, 0.0, []
    over = dict(k=k, epochs=epochs)
    for a in at:
        target = min(round(a * steps_epoch), epochs * steps_epoch)
        final = a == at[-1]
        sae, s = train_one(data, site, d, stop=None if final else target - done, **over)
        sec += s
        if sae is None:
            st = load_checkpoint(d)
            sae = to_sae({k_: torch.as_tensor(v) for k_, v in st.params.items()}, st.scale,
                         TrainConfig(**{**BASE, **over}), site, data["spec"])
            rows = st.rows
        else:
            rows = epochs * n
        done = target
        points.append({"epochs": a, "rows": rows, **evaluate(sae, data["held_rows"][site]),
                       "seconds": sec, "load": load_avg()})
        print(name, points[-1], flush=True)
    mark_heldout(d, data)
    return {"site": site, "settings": {**BASE, **over}, "points": points}


def exp_precision(data, work: Path, site="encoder.blocks.2") -> dict:
    out = {}
    for p in ("float32", "bfloat16"):
        seen: list = []
        d = work / "precision" / p
        sae, sec = train_one(data, site, d, precision=p,
                             progress=lambda done, tot, loss: seen.append(loss))
        mark_heldout(d, data)
        out[p] = {"final_loss_last50": float(np.mean(seen[-50:])), "steps": len(seen),
                  **evaluate(sae, data["held_rows"][site]), "seconds": sec,
                  "rows_per_s": BASE["epochs"] * data["n_train_rows"] / sec, "load": load_avg()}
        print(p, out[p], flush=True)
    out["ratio_final_loss"] = out["bfloat16"]["final_loss_last50"] / \
        out["float32"]["final_loss_last50"]
    out["ratio_heldout_unexplained"] = ((1 - out["bfloat16"]["fraction_variance_explained"]) /
                                        (1 - out["float32"]["fraction_variance_explained"]))
    return {"site": site, "settings": BASE, **out}


def exp_wer(data, work: Path, wer_files: int = int(os.environ.get("SWEEP_WER_FILES", 20))) -> dict:
    """WER, CER and loss recovered of the SAEs named in $SWEEP_WER (comma-separated
    ``experiment/run``; default every SAE saved in WORK)."""
    from steve_qt.core.features.sae_jobs import evaluate_sae

    names = os.environ.get("SWEEP_WER")
    dirs = ([work / n for n in names.split(",")] if names else
            [d.parent for d in sorted(work.glob("*/*/cfg.json"))])
    res_path = work / "sweep.json"
    out = (json.loads(res_path.read_text()) if res_path.is_file() else {}).get("wer", {})
    for sae_dir in dirs:
        name = f"{sae_dir.parent.name}/{sae_dir.name}"
        ev_dir = work / "eval" / name.replace("/", "_")
        if (ev_dir / "eval.json").is_file():
            ev = json.loads((ev_dir / "eval.json").read_text())
        else:
            t0 = time.perf_counter()
            ev_dir.parent.mkdir(parents=True, exist_ok=True)
            ev = evaluate_sae(sae_dir, ev_dir, wer_files=wer_files, cache=data["cache"],
                              jobs=1, force=True)
            print(name, f"{time.perf_counter() - t0:.0f} s", flush=True)
        t = ev.get("transcript", {})
        out[name] = {"fraction_variance_explained": ev["rows"]["fraction_variance_explained"],
                     "wer": t.get("wer", {}).get("mean"), "cer": t.get("cer", {}).get("mean"),
                     "loss_recovered": t.get("loss_recovered"), "files": ev["files"],
                     "wer_files": len(t.get("files", [])), "load": load_avg()}
        print(name, out[name], flush=True)
    return out


def record(work: Path, notes: list[str]) -> None:
    from .sae_quality import OUT

    q = json.loads(OUT.read_text()) if OUT.is_file() else {}
    q["sweep"] = {**json.loads((work / "sweep.json").read_text()), "notes": notes}
    OUT.write_text(json.dumps(q, indent=1) + "\n")


def main(argv: list[str]) -> int:
    if argv[0] == "record":
        record(Path(argv[1]), argv[2:])
        return 0
    import torch

    corpus, cache, work, *exps = argv
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    data = load(Path(corpus), Path(cache))
    if exps == ["cache"]:
        return 0
    res_path = work / "sweep.json"
    res = json.loads(res_path.read_text()) if res_path.is_file() else {}
    res["data"] = {"train_files": len(data["train"]), "heldout_files": len(data["held"]),
                   "train_rows": data["n_train_rows"],
                   "heldout_rows": len(data["held_rows"][SITES[0]]),
                   "torch_threads": torch.get_num_threads()}
    print(res["data"], f"loaded in {time.perf_counter() - t0:.0f} s", flush=True)
    runs = {"layers": lambda: exp_layers(data, work, ints("SWEEP_LAYER_EPOCHS", "2")[0]),
            "k": lambda: exp_sweep(data, work, "k", ints("SWEEP_K", "32,64,128,256"), "k"),
            "width": lambda: exp_sweep(data, work, "width", (4, 16), "expansion"),
            "rows": lambda: exp_rows(data, work, epochs=ints("SWEEP_EPOCHS", "8")[0],
                                     at=floats("SWEEP_AT", "0.25,0.5,1,2,4,8")),
            "precision": lambda: exp_precision(data, work),
            "long": lambda: exp_rows(data, work, epochs=ints("SWEEP_EPOCHS", "24")[0],
                                     at=floats("SWEEP_AT", "8,16,24"), name="long"),
            "wer": lambda: exp_wer(data, work)}
    for e in exps:
        res[e] = runs[e]()
        res_path.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
