"""RESULTS.md: machine, versions, date and every section of the last measured run."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .common import Section

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_JSON = HERE / "results.json"
#: sections in report order; a section is a module bench/<name>.py
ORDER = [n for n in ("capture", "extraction", "baseline", "memory", "redraw", "first_map", "features",
                     "corpus", "sae", "mixing", "ksweep", "acoustics", "api")
         if (HERE / f"{n}.py").exists()]


def now() -> str:
    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    ram = "unknown"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        ram = f"{kb / 2**20:.1f} GiB"
    except (OSError, AttributeError):
        pass
    return {"nproc": str(os.cpu_count()), "CPU": cpu, "RAM": ram,
            "OS": f"{platform.system()} {platform.release()}"}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for label, dist in [("torch", "torch"), ("openai-whisper", "openai-whisper"),
                        ("transformers", "transformers"), ("pyqtgraph", "pyqtgraph"),
                        ("PyQt6", "PyQt6"), ("Qt", "PyQt6-Qt6"), ("numpy", "numpy"),
                        ("matplotlib", "matplotlib")]:
        try:
            out[label] = version(dist)
        except PackageNotFoundError:
            out[label] = "not installed"
    return out


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in [columns, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return lines


def render(sections: list[Section], header: dict) -> str:
    out = ["# steve_qt benchmark results", "",
           "Written by `python -m bench` (do not edit by hand). Every ratio is measured side by "
           "side in one run, variants interleaved A/B/A/B after discarded warm-up runs; times are "
           "median (min–max) over the repeats. No test asserts on these numbers.", ""]
    out += [f"- **Run**: {header['date']} — `{header['command']}` ({header['mode']})"
            + (f"; the other sections were kept from the run(s) of {header['kept_from']} "
               "(each section says when it was measured)" if header.get("kept_from") else ""),
            f"- **Threads**: torch.set_num_threads({header['threads']}) in every process "
            f"(OMP_NUM_THREADS={header['threads']} for children)",
            "- **Machine**: " + ", ".join(f"{k} {v}" for k, v in header["machine"].items()),
            "- **Versions**: " + ", ".join(f"{k} {v}" for k, v in header["versions"].items()),
            ""]
    summary = header.get("summary")
    if summary:
        out += ["## Summary", "", *table(["measurement", "value", "target", "result"], summary), ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.measured and s.measured != header["date"]:
            out += [f"_Measured {s.measured} (an earlier run than the header's)._", ""]
        else:
            out += [f"_Measured {s.measured or header['date']}._", ""]
        out += table(s.columns, s.rows) + [""]
        for title, cols, rows in s.extra_tables:
            out += [f"**{title}**", "", *table(cols, rows), ""]
        out += [f"- {n}" for n in s.notes if n] + [""]
    return "\n".join(out)


def summarize(sections: list[Section]) -> list[list[str]]:
    """Every row that has a PASS/MISS verdict (or "reported": a number asked for without a
    target), one line each."""
    rows = []
    for s in sections:
        for cols, body, label in [(s.columns, s.rows, "")] + [
                (c, r, t) for t, c, r in s.extra_tables]:
            if "result" not in cols or label.startswith("Not the application"):
                continue
            i = cols.index("result")
            for r in body:
                if r[i] in ("PASS", "MISS", "reported"):
                    name = " · ".join(x for x in r[:2] if x)
                    value = next((r[j] for j in range(len(cols))
                                  if cols[j] in ("ratio", "STEVE ÷ ours", "median ms",
                                                 "median s")), "")
                    target = r[cols.index("target")] if "target" in cols else (
                        r[cols.index("target (median)")] if "target (median)" in cols else "")
                    rows.append([f"{s.name}: {name}", value, target, r[i]])
    return rows


def load_previous(path: Path = RESULTS_JSON) -> dict[str, Section]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {d["name"]: Section.from_dict(d) for d in data.get("sections", [])}


def write(sections: list[Section], header: dict, md: Path = RESULTS_MD,
          js: Path | None = RESULTS_JSON, merge: bool = False) -> Path:
    """Write RESULTS.md (and results.json). ``merge`` keeps earlier sections not re-measured."""
    by_name = load_previous(js) if (merge and js is not None) else {}
    kept = sorted({s.measured for n, s in by_name.items()
                   if s.measured and n not in {x.name for x in sections}})
    if kept:
        header = dict(header, kept_from=", ".join(kept))
    for s in sections:
        by_name[s.name] = s
    ordered = [by_name[n] for n in ORDER if n in by_name]
    ordered += [s for n, s in by_name.items() if n not in ORDER]
    header = dict(header, summary=summarize(ordered))
    md.write_text(render(ordered, header))
    if js is not None:
        js.write_text(json.dumps({"header": header, "sections": [s.to_dict() for s in ordered]},
                                 indent=1, ensure_ascii=False))
    return md
