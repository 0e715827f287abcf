"""Safe output files: atomic replace, no silent overwrite, clear errors for unwritable paths."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import SteveError


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Raise SteveError if ``path`` exists (and not ``force``) or its folder can't be written."""
    p = Path(path)
    if p.exists() and p.is_dir():
        raise SteveError("is a folder; give a file name", p)
    if p.exists() and not force:
        raise SteveError("file exists; not overwritten (use --force to replace it)", p)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise SteveError(f"folder {parent} does not exist", p)
    if not os.access(parent, os.W_OK):
        raise SteveError(f"folder {parent} is not writable", p)
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path`` atomically.

    The temporary file keeps ``path``'s suffix so that writers that look at it (numpy, matplotlib)
    choose the right format. On any error the temporary file is removed and ``path`` is untouched.
    """
    p = check_writable(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".part{p.suffix}", dir=p.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the mode a plain open() would (or keep the
        # mode of the file being replaced)
        mode = p.stat().st_mode & 0o777 if p.exists() else 0o666 & ~_umask()
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, p)
    except OSError as exc:
        raise SteveError(f"cannot write: {exc.strerror or exc}", p) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    with atomic_path(path, force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path, text: str, force: bool = False, encoding: str = "utf-8") -> Path:
    return write_bytes_atomic(path, text.encode(encoding), force)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
