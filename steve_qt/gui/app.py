"""``run_gui(argv)``: the QApplication and the main window, files from the command line."""

from __future__ import annotations

import argparse
import sys

from ..core.adapters import DEFAULT_SPEC


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="steve-qt", description="See and hear what a speech "
                                "transformer attends to. Opens the window on the given files.")
    p.add_argument("files", nargs="*", help="audio files (WAV, FLAC, OGG) to open")
    p.add_argument("--model", default=DEFAULT_SPEC, metavar="SPEC",
                   help="whisper (embedded tiny.en, default), whisper:NAME_OR_PATH, "
                        "wav2vec2:DIR_OR_ID")
    p.add_argument("--no-extract", action="store_true",
                   help="only show audio and alignments; do not run a model")
    p.add_argument("--index", metavar="IDX",
                   help="open a feature index (steve-qt features index) in the features dock")
    return p


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
    app = make_app()
    from PyQt6 import QtCore

    from .main_window import QtMainWindow

    win = QtMainWindow(model=args.model, auto_extract=not args.no_extract)
    win.show()
    if args.files:
        QtCore.QTimer.singleShot(0, lambda: win.open_paths(args.files))
    if args.index:
        QtCore.QTimer.singleShot(0, lambda: win.features.open_index(args.index))
    return int(app.exec())
