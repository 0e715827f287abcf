"""``run_gui(argv)``: the QApplication and the main window, files from the command line."""

from __future__ import annotations

import argparse
import os
import sys
import threading

from ..core.models.adapters import DEFAULT_SPEC

ALIGNMENT_SUFFIXES = (".textgrid", ".eaf", ".phn", ".wrd")  # files the window opens as alignments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="steve-qt", description="See and hear what a speech "
                                "transformer attends to. Opens the window on the given files.")
    p.add_argument("files", nargs="*", help="audio files (WAV, FLAC, OGG) to open")
    p.add_argument("--model", default=DEFAULT_SPEC, metavar="SPEC",
                   help="whisper (embedded tiny.en, default), whisper:NAME_OR_PATH, "
                        "wav2vec2:DIR_OR_ID")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where the model runs: auto (CUDA when torch sees one, else the CPU; the "
                        "default, or $STEVE_QT_DEVICE), cpu, cuda or cuda:N")
    p.add_argument("--no-extract", action="store_true",
                   help="only show audio and alignments; do not run a model")
    p.add_argument("--index", metavar="IDX",
                   help="open a feature index (steve-qt features index) in the features dock")
    return p


def set_device(name: str) -> bool:
    """Check ``--device`` before the window opens (one line on stderr when it is unusable).
    ``auto`` and ``cpu`` are checked without importing torch (the worker imports it later)."""
    from ..core.models import devices
    from ..core.errors import SteveError

    try:
        name = devices.check_name(name)
        if name.startswith("cuda"):
            devices.resolve(name)
    except SteveError as exc:
        print(f"steve-qt: error: {exc}", file=sys.stderr)
        return False
    os.environ[devices.DEVICE_ENV] = name
    return True


def preload_model(spec: str) -> threading.Thread:
    """Start loading the model (importing torch, about a second) in a background thread now, so
    that it overlaps with starting Qt and building the window. The extraction worker's
    ``pipeline.get_adapter`` then finds it loaded (or waits for it). A failure here is ignored:
    the worker loads again and reports the error in the window."""
    def load() -> None:
        from ..core.models import pipeline

        try:
            pipeline.get_adapter(spec)
        except Exception:  # noqa: BLE001 - reported by the worker's own attempt
            pass

    thread = threading.Thread(target=load, name="steve-qt model preload", daemon=True)
    thread.start()
    return thread


def start_loading(spec: str, files: list[str]) -> None:
    """What to compute while Qt starts and the window is built.

    With a file to open and a model that has a preview (``core.previews``: the embedded
    Whisper once its converted weights are in the user cache), compute the first file's
    preview, without torch; the model loads after it, in the extraction worker (importing torch
    in another thread would hold the GIL against the window build and the preview). Otherwise
    load the model now (``preload_model``)."""
    from ..core.models import previews

    audio = [f for f in files if os.path.splitext(f)[1].lower() not in ALIGNMENT_SUFFIXES]
    if audio and previews.start(spec, audio[0]):
        return
    preload_model(spec)


def configure_pyqtgraph() -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", background="w", foreground="k",
                        antialias=False)


def make_app(argv: list[str] | None = None):
    from PyQt6 import QtWidgets

    from . import settings

    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([sys.argv[0] if sys.argv else "steve-qt", *(argv or [])])
    app.setOrganizationName(settings.ORGANISATION)
    app.setApplicationName(settings.APPLICATION)
    configure_pyqtgraph()
    return app


def run_gui(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.device is not None and not set_device(args.device):
        return 2
    if not args.no_extract:
        start_loading(args.model, args.files)
    app = make_app()
    from PyQt6 import QtCore

    from .main_window import QtMainWindow

    win = QtMainWindow(model=args.model, auto_extract=not args.no_extract)
    win.show()
    if args.files:
        QtCore.QTimer.singleShot(0, lambda: win.opener.open_paths(args.files))
    if args.index:
        QtCore.QTimer.singleShot(0, lambda: win.features.open_index(args.index))
    return int(app.exec())
