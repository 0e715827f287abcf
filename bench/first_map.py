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


def stages(t0: float, d: dict) -> dict[str, float]:
    """Wall-clock stamps -> named durations (s)."""
    out = {"process start + imports": d["t_imports"] - t0}
    if "t_load_start" in d and d["t_load_start"] > d["t_imports"]:
        out["window up, file opened"] = d["t_load_start"] - d["t_imports"]
    out["model load"] = d["t_load"] - d.get("t_load_start", d["t_imports"])
    out["open audio + extraction" if "t_drawn" not in d else "extraction"] = (
        d["t_extract"] - d["t_load"])
    if "t_drawn" in d:
        out["drawing (to first map painted)"] = d["t_drawn"] - d["t_extract"]
        out["total"] = d["t_drawn"] - t0
    else:
        out["total (without drawing)"] = d["t_extract"] - t0
    return out


def run(cfg: Config) -> Section:
    section = Section("first_map", "5. Time to first map (`steve-qt FILE`, embedded tiny.en)",
                      ["stage", "median s", "min–max s"])
    with tempfile.TemporaryDirectory() as tmp:
        path, what = input_file(Path(tmp), cfg.first_map_file)
        use_gui = gui_available()
        if use_gui:
            from . import gui_probe

            cmd = [sys.executable, "-m", "bench.gui_probe", str(path),
                   "--threads", str(cfg.threads)]
            env = dict(QT_QPA_PLATFORM="offscreen")
        else:
            cmd = [sys.executable, "-m", "bench.first_map_child", str(path),
                   "--threads", str(cfg.threads)]
            env = {}
        launched = [launch(cmd, cfg.threads, **env) for _ in range(cfg.first_map_repeats)]
        runs = [stages(*x) for x in launched]
        info = launched[-1][1]
        seconds = sf.info(str(path)).duration
        if use_gui and "t_drawn" not in info:
            raise RuntimeError(f"the GUI never drew a map: {info}")
    for name in runs[0]:
        vals = [r[name] for r in runs]
        section.rows.append([name, f"{statistics.median(vals):.2f}",
                             f"{min(vals):.2f}–{max(vals):.2f}"])
    if not use_gui:
        section.rows.append(["drawing", GUI_MISSING, ""])
        section.notes.append(
            f"{GUI_MISSING} (steve_qt/gui/app.py absent when this ran): measured the non-GUI "
            "steps that `steve-qt FILE` takes, in a fresh process each run "
            "(`bench/first_map_child.py`): interpreter start + imports of torch, whisper and "
            "steve_qt, `pipeline.get_adapter('whisper')` (CT2 → openai-whisper conversion, "
            "SHA-256 check), `open_utterance` + `adapter.extract` with all components (encoder, "
            "transcription, cross and decoder).")
    else:
        section.notes.append(gui_probe.NOTE)
    comps = ", ".join(info.get("components", [])) or "all (encoder, cross, decoder)"
    section.notes.append(f"Input: {what} ({seconds:.2f} s), opened with "
                         f"`{info.get('opened')}`; components extracted: {comps}. "
                         f"{cfg.first_map_repeats} fresh processes; the OS file cache is warm "
                         "after the first.")
    return section
