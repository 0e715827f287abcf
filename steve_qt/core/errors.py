"""The one error type that user-facing code catches and shows."""

from __future__ import annotations

import os


class SteveError(Exception):
    """A problem the user can act on: names the file (when there is one) and the problem.

    The CLI prints ``str(err)`` on one line and exits with status 2; the GUI shows it in a dialog.
    """

    def __init__(self, problem: str, path: str | os.PathLike | None = None):
        self.problem = problem
        self.path = os.fspath(path) if path is not None else None
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class Cancelled(SteveError):
    """Raised inside a long computation when the user asked to cancel it."""

    def __init__(self) -> None:
        super().__init__("cancelled")
