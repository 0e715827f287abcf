"""7. The Python API: ``import steve_qt`` in a new process, and the first ``load_model``.

``import steve_qt`` loads the public names lazily (neither torch nor the API module), so a
notebook's first cell is quick; the first ``sq.load_model("whisper")`` then costs what loading the
model costs through the core (``pipeline.get_adapter``). Each variant runs in a fresh interpreter
(``python -c ...``), interleaved; times are wall clock from launch to exit, so they include the
interpreter's start, measured alone as ``python -c pass``.
"""

from __future__ import annotations

import subprocess
import sys

from .common import ROOT, Config, Section, child_env, interleave, verdict

IMPORT_TARGET_S = 0.3
LOAD_TARGET_RATIO = 1.1
COLUMNS = ["what", "", "median s", "min–max s", "target", "result"]
LOAD_COLUMNS = ["what", "variant", "ratio", "median s", "min–max s", "target", "result"]

CODE = {
    "python -c pass": "pass",
    "import steve_qt": "import steve_qt",
    "import steve_qt as sq; sq.load_model()":
        "import steve_qt as sq; sq.load_model('whisper', device='cpu')",
    "core: pipeline.get_adapter()":
        "from steve_qt.core.models.pipeline import get_adapter; get_adapter('whisper', 'cpu')",
}


def _run(code: str, threads: int) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=600,
                   env=child_env(threads), capture_output=True)


def _timed(names, cfg: Config, repeats: int):
    return interleave({n: (lambda c=CODE[n]: _run(c, cfg.threads)) for n in names},
                      repeats=repeats, warmup=min(1, cfg.warmup))


def run(cfg: Config) -> Section:
    t = _timed(["python -c pass", "import steve_qt"], cfg, max(3, cfg.repeats))
    loads = max(1, min(cfg.extract_repeats, 3))
    tl = _timed(["import steve_qt as sq; sq.load_model()", "core: pipeline.get_adapter()"], cfg,
                loads)
    section = Section("api", "7. Python API: import and first load_model", COLUMNS)
    imp, bare = t["import steve_qt"], t["python -c pass"]
    section.rows.append(["import steve_qt (new process)", "", f"{imp.median:.3f}",
                         f"{imp.lo:.3f}–{imp.hi:.3f}", f"≤ {IMPORT_TARGET_S} s",
                         verdict(imp.median, IMPORT_TARGET_S)])
    section.rows.append(["python -c pass (the interpreter alone)", "", f"{bare.median:.3f}",
                         f"{bare.lo:.3f}–{bare.hi:.3f}", "", ""])
    api, core = tl["import steve_qt as sq; sq.load_model()"], tl["core: pipeline.get_adapter()"]
    ratio = api.median / core.median
    section.extra_tables.append(("First load_model in a new process", LOAD_COLUMNS, [
        ["first load_model", "sq.load_model ÷ get_adapter", f"{ratio:.3f}", f"{api.median:.2f}",
         f"{api.lo:.2f}–{api.hi:.2f}", f"≤ {LOAD_TARGET_RATIO}", verdict(ratio, LOAD_TARGET_RATIO)],
        ["core: pipeline.get_adapter", "", "", f"{core.median:.2f}", f"{core.lo:.2f}–{core.hi:.2f}",
         "", ""]]))
    section.notes.append(
        f"Fresh interpreters, wall clock from launch to exit, interleaved: {max(3, cfg.repeats)} "
        f"runs per import variant, {loads} per model-load variant; the embedded tiny.en comes "
        f"from the user cache (converted there once, before the timed runs).")
    return section
