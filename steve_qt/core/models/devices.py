"""Where models run: ``--device auto|cpu|cuda`` (auto = CUDA when torch sees one).

The choice travels in the environment variable ``STEVE_QT_DEVICE`` (set by the command line), so
that worker processes a command starts (corpus runs) load their models on the same device.
torch is imported only to answer ``auto`` and ``cuda``.
"""

from __future__ import annotations

import os
import re

from ..errors import SteveError

DEVICE_ENV = "STEVE_QT_DEVICE"
DEFAULT = "auto"
_CUDA = re.compile(r"cuda(:\d+)?")


def requested() -> str:
    """The device asked for: ``$STEVE_QT_DEVICE`` or ``auto``."""
    return os.environ.get(DEVICE_ENV, "").strip().lower() or DEFAULT


def check_name(name: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (lower-cased); SteveError for anything else."""
    name = name.strip().lower()
    if name in ("auto", "cpu") or _CUDA.fullmatch(name):
        return name
    raise SteveError(f"unknown device {name!r}; use auto, cpu or cuda (or cuda:N)")


def resolve(name: str | None = None) -> str:
    """A device torch can use now: ``cpu`` or ``cuda[:N]``; ``None`` means ``requested()``.

    ``auto`` is CUDA when torch sees a CUDA device, else the CPU. Asking for CUDA where there is
    none is an error (one line, saying why), not a silent fall-back.
    """
    name = check_name(name or requested())
    if name == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if name == "auto":
        return "cuda" if available else "cpu"
    if not available:
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise SteveError(f"device {name!r} is not available: torch {torch.__version__} ({build}) "
                         "sees no CUDA device; use --device cpu or auto")
    index = int(name.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise SteveError(f"device {name!r} is not available: torch sees {count} CUDA device(s) "
                         f"(cuda:0 to cuda:{count - 1})")
    return name


def use(name: str) -> str:
    """Check ``name`` now (one-line SteveError) and make it the process's (and its children's)
    device; returns the resolved device."""
    device = resolve(name)
    os.environ[DEVICE_ENV] = check_name(name)
    return device
