"""``python -m bench [--quick] [--only NAME[,NAME]] [--threads N] [--out PATH]``.

A full run (re)writes bench/RESULTS.md and bench/results.json. ``--only`` re-measures some
sections and keeps the others from the previous full run (their date is shown). ``--quick`` is a
smoke run with few repeats: it prints the markdown and writes a file only when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from .common import QUIET_ENV, Config, Section, set_threads
from .report import ORDER, machine, now, render, summarize, versions, write


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    ap.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    ap.add_argument("--only", action="append", default=[],
                    help=f"run only these sections ({', '.join(ORDER)}); repeatable or comma list")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--out", type=Path, help="markdown file to write")
    return ap.parse_args(argv)


def load_average() -> str:
    """1-minute load average (other processes share the machine)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def run_section(name: str, cfg: Config) -> Section:
    module = importlib.import_module(f"bench.{name}")
    load0 = load_average()
    t0 = time.perf_counter()
    try:
        section = module.run(cfg)
    except Exception:  # noqa: BLE001 - record the failure, keep measuring the rest
        tb = traceback.format_exc()
        print(tb, file=sys.stderr)
        section = Section(name, f"{name} (FAILED)", ["error"], [[tb.strip().splitlines()[-1]]])
    section.notes.append(f"Section wall time: {time.perf_counter() - t0:.0f} s; 1-minute load "
                         f"average before / after: {load0} / {load_average()} "
                         f"(nproc {os.cpu_count()}; the machine is shared).")
    return section


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    only = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in only if n not in ORDER]
    if unknown:
        print(f"unknown section(s) {unknown}; known: {ORDER}", file=sys.stderr)
        return 2
    cfg = Config.quick_run(args.threads) if args.quick else Config(threads=args.threads)
    threads = set_threads(cfg.threads)
    date = now()
    sections = []
    for name in only or ORDER:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        s = run_section(name, cfg)
        s.measured = date
        sections.append(s)
    header = dict(date=date, command="python -m bench " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv),
                  mode="quick" if args.quick else "full", threads=threads, machine=machine(),
                  versions=versions())
    if args.quick and args.out is None:
        print(render(sections, dict(header, summary=summarize(sections))))
    elif args.out is not None:
        write(sections, header, md=args.out, js=None)
        print(f"[bench] wrote {args.out}", file=sys.stderr)
    else:
        print(f"[bench] wrote {write(sections, header, merge=bool(only))}", file=sys.stderr)
    failed = [s.name for s in sections if s.title.endswith("(FAILED)")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
