"""5. Time to first map: ``steve-qt FILE`` until the first attention map is drawn."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from .common import ROOT, SAMPLE_WAV, Config, Section, child_env, make_audio

GUI_MISSING = "GUI not yet available"


def input_file(tmp: Path, override: str | None = None) -> tuple[Path, str]:
    """``override``, else samples/dark_suit.wav, else a synthetic 3 s wav written to ``tmp``."""
    if override is not None:
        return Path(override), Path(override).name
    if SAMPLE_WAV.exists():
        return SAMPLE_WAV, SAMPLE_WAV.name
    audio, what = make_audio(3.0)
    path = tmp / "synthetic.wav"
    sf.write(str(path), audio, 16000, subtype="PCM_16")
    return path, f"{what}, 3 s"


def launch(cmd: list[str], threads: int, **env: str) -> tuple[float, dict]:
    """Start a child; return (launch wall-clock stamp, its last JSON line)."""
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=child_env(threads, **env))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return t0, json.loads(lines[-1])


def gui_available() -> bool:
    return (ROOT / "steve_qt" / "gui" / "app.py").exists()


MILESTONES = [  # (stamp, what), in the order they normally happen
    ("t_imports", "steve_qt imported (interpreter started)"),
    ("t_qt", "Qt started"),
    ("t_window", "main window built"),
    ("t_preview", "encoder preview computed (numpy, no torch; starts at start-up)"),
    ("t_drawn", "first map painted"),
    ("t_load", "model loaded (torch, whisper, the converted model from the user cache)"),
    ("t_partial", "the model's encoder maps extracted (its first stage)"),
    ("t_model_drawn", "the model's encoder maps painted (replacing the preview)"),
    ("t_extract", "transcript, word tier, cross- and decoder attention arrived"),
]
FIRST_MAP_TARGET_S = 2.0
SECOND_FILE_TARGET_S = 0.5
OWN_MAPS_TARGET_S = 2.5
#: the floor beside the model's own maps: a fresh interpreter that imports torch and nothing else
TORCH_FLOOR_CMD = [sys.executable, "-c", "import time, json; t = time.time(); import torch; "
                   "print(json.dumps(dict(t_main=t, t_torch=time.time())))"]


def stages(t0: float, d: dict) -> dict[str, float]:
    """Wall-clock stamps -> seconds since the process was launched, per milestone (the GUI
    path's stages overlap: the model loads while Qt starts), plus the second file's map."""
    if "t_drawn" not in d:  # the non-GUI child: sequential stages
        return {"process start + imports": d["t_imports"] - t0,
                "model load": d["t_load"] - d["t_imports"],
                "open audio + extraction": d["t_extract"] - d["t_load"],
                "total (without drawing)": d["t_extract"] - t0}
    out = {what: d[k] - t0 for k, what in MILESTONES if k in d}
    if "t2_drawn" in d:
        out["second file: opened → its map painted"] = d["t2_drawn"] - d["t2_open"]
    return out


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"


def run(cfg: Config) -> Section:
    section = Section("first_map", "5. Time to first map (`steve-qt FILE`, embedded tiny.en)",
                      ["milestone", "median s", "min–max s"])
    with tempfile.TemporaryDirectory() as tmp:
        path, what = input_file(Path(tmp), cfg.first_map_file)
        second = SAMPLE_WAV.parent / "oily_rag.wav"
        use_gui = gui_available()
        cache = str(Path(tmp) / "user_cache")  # the converted model lives here (made by run 0)
        if use_gui:
            from . import gui_probe

            cmd = [sys.executable, "-m", "bench.gui_probe", str(path),
                   "--threads", str(cfg.threads)]
            if second.exists() and second != path:
                cmd += ["--second", str(second)]
            env = dict(QT_QPA_PLATFORM="offscreen", STEVE_QT_CACHE=cache)
        else:
            cmd = [sys.executable, "-m", "bench.first_map_child", str(path),
                   "--threads", str(cfg.threads)]
            env = dict(STEVE_QT_CACHE=cache)
        first_ever = stages(*launch(cmd, cfg.threads, **env))  # converts the model, warms caches
        launched, floors = [], []
        for _ in range(cfg.first_map_repeats):  # interleaved: the app, then torch alone
            launched.append(launch(cmd, cfg.threads, **env))
            t0, d = launch(TORCH_FLOOR_CMD, cfg.threads)
            floors.append(d["t_torch"] - t0)
        runs = [stages(*x) for x in launched]
        info = launched[-1][1]
        seconds = sf.info(str(path)).duration
        if use_gui and "t_drawn" not in info:
            raise RuntimeError(f"the GUI never drew a map: {info}")
    for name in runs[0]:
        vals = [r[name] for r in runs if name in r]
        section.rows.append([name, f"{statistics.median(vals):.2f}",
                             f"{min(vals):.2f}–{max(vals):.2f}"])
    if use_gui:
        first = statistics.median(r["first map painted"] for r in runs)
        rows = [["cold process start → first map painted", f"{first:.2f}",
                 f"≤ {FIRST_MAP_TARGET_S:g} s", verdict(first, FIRST_MAP_TARGET_S)]]
        key = "second file: opened → its map painted"
        if all(key in r for r in runs):
            sec = statistics.median(r[key] for r in runs)
            rows.append([f"second file ({second.name}) in the running window → its map painted",
                         f"{sec:.2f}", f"≤ {SECOND_FILE_TARGET_S:g} s",
                         verdict(sec, SECOND_FILE_TARGET_S)])
        floor = statistics.median(floors)
        rows.append(["torch import alone (fresh interpreter; the floor beside the next rows)",
                     f"{floor:.2f}", "", ""])
        for key, name, target in (
                ("the model's encoder maps painted (replacing the preview)",
                 "cold start → model's own maps", OWN_MAPS_TARGET_S),
                ("transcript, word tier, cross- and decoder attention arrived",
                 "cold start → everything arrived", None)):
            if all(key in r for r in runs):
                v = statistics.median(r[key] for r in runs)
                rows.append([f"{name} ({v - floor:+.2f} s over the torch floor)", f"{v:.2f}",
                             "" if target is None else f"≤ {target:g} s",
                             "reported" if target is None else verdict(v, target)])
        section.extra_tables.append(("Targets", ["measurement", "median s", "target", "result"],
                                     rows))
        section.notes.append(gui_probe.NOTE)
        infos = [x[1] for x in launched]
        section.notes.append(
            f"The first map painted was the torch-free preview in "
            f"{sum(bool(i.get('first_paint_preview')) for i in infos)} of {len(infos)} runs; "
            f"torch was already imported when the main window had been built in "
            f"{sum(bool(i.get('torch_imported_by_window')) for i in infos)} of {len(infos)}.")
        if "first map painted" in first_ever:
            section.notes.append(
                "First start ever (an empty user cache: the embedded CTranslate2 model is "
                "converted and written to the cache, not counted above): first map painted after "
                f"{first_ever['first map painted']:.2f} s.")
    else:
        section.rows.append(["drawing", GUI_MISSING, ""])
        section.notes.append(
            f"{GUI_MISSING} (steve_qt/gui/app.py absent when this ran): measured the non-GUI "
            "steps that `steve-qt FILE` takes, in a fresh process each run "
            "(`bench/first_map_child.py`).")
    comps = ", ".join(info.get("components", [])) or "all (encoder, cross, decoder)"
    section.notes.append(f"Input: {what} ({seconds:.2f} s), opened with "
                         f"`{info.get('opened')}`; components extracted: {comps}. "
                         f"{cfg.first_map_repeats} fresh processes after one untimed first start "
                         "(which fills a fresh user cache, STEVE_QT_CACHE in a temp folder, and "
                         "warms the OS file cache).")
    return section
