"""``steve-qt``: the GUI with no sub-command, else one of ``COMMANDS``.

Each sub-command lives in ``steve_qt/commands/<name>.py`` with ``register(subparsers)`` that adds
its parser and sets ``func=run``. Any SteveError becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .core.errors import SteveError

COMMANDS = ("extract", "info", "figure", "stats", "sites", "activations", "acoustics", "features",
            "probe", "sae", "phones",
            "window", "ablate", "steer", "lens", "lm")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command ``only`` (so that running one command does
    not import the others' modules: some of them import torch)."""
    parser = argparse.ArgumentParser(
        prog="steve-qt",
        description="See and hear what a speech transformer attends to. With no command (or with "
                    "audio files) opens the window.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"steve-qt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(f"steve_qt.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"steve_qt.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    _add_device_options(parser)
    return parser


def _add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--device`` for every (sub-)command that runs a model (has ``--model``) and lacks it."""
    from .commands.common import add_device_argument

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                _add_device_options(child)
    opts = parser._option_string_actions
    if "--model" in opts and "--device" not in opts:
        add_device_argument(parser)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Input fix-ups (SteveWarning) as one readable line; anything else as Python prints it."""
    from .core.warnings import SteveWarning

    if issubclass(category, SteveWarning):
        print(f"steve-qt: warning: {message}", file=file or sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.showwarning = _show_warning
    if not argv or argv[0] not in COMMANDS + ("-h", "--help", "--version"):
        return _gui(argv)
    parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:
            from .core.models import devices

            devices.use(args.device)  # checked now; worker processes inherit it
        return int(args.func(args) or 0)
    except SteveError as exc:
        print(f"steve-qt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("steve-qt: interrupted", file=sys.stderr)
        return 130


def _gui(argv: list[str]) -> int:
    try:
        from .gui.app import run_gui
    except ImportError as exc:
        print(f"steve-qt: error: the window cannot start ({exc})", file=sys.stderr)
        return 2
    return run_gui(argv)


if __name__ == "__main__":
    sys.exit(main())
