"""Safe output files: atomic replace, no silent overwrite, clear errors for unwritable paths."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
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
    check_parent(p)
    return p


def check_parent(p: Path) -> None:
    """Raise SteveError if the folder ``p`` would be written into is missing or read-only."""
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise SteveError(f"folder {parent} does not exist", p)
    if not os.access(parent, os.W_OK):
        raise SteveError(f"folder {parent} is not writable", p)


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


def check_folder_writable(out: str | os.PathLike, force: bool, what: str) -> Path:
    """Raise SteveError if output folder ``out`` is a file, exists (and not ``force``), or its
    parent folder is missing or not writable. ``what``: what the folder is for ("the index")."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SteveError(f"is a file; --out needs a folder for {what}", out)
    if out.exists() and not force:
        raise SteveError("folder exists; not overwritten (use --force to replace it)", out)
    check_parent(out)
    return out


@contextlib.contextmanager
def atomic_folder(out: str | os.PathLike, force: bool, what: str) -> Iterator[Path]:
    """Yield a new folder beside ``out`` to write into; when the block ends it becomes ``out``
    by a rename (an existing ``out``, replaced only with ``force``, is moved aside first and
    removed after). On any error the new folder is removed and ``out`` is untouched; an OSError
    becomes SteveError "cannot write ``what``"."""
    out = Path(out)
    tmp = out.with_name(f".{out.name}.part-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        yield tmp
        old = None
        if out.exists():
            if not force:
                raise SteveError("folder exists; not overwritten (use --force to replace it)", out)
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise SteveError(f"cannot write {what}: {exc.strerror or exc}", out) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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


def csv_text(header, rows) -> str:
    """The one CSV dialect steve_qt writes: a header row, then ``rows`` (sequences of cells,
    written as ``str`` does), comma-separated, ``\\n`` line ends, quoted only where needed."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def csv_text_columns(header, columns) -> str:
    """``csv_text(header, zip(*columns))``, the same text, made a column at a time (several
    times sooner for large tables): each column is a NumPy integer array (written as ``str``
    writes its values) or a list of ``str`` cells (quoted as ``csv_text`` quotes them)."""
    import csv
    import io

    import numpy as np

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")

    def quoted(cell: str) -> str:
        buf.seek(0)
        buf.truncate()
        w.writerow([cell, ""])
        return buf.getvalue()[:-2]  # without the empty second cell and the line end

    cells = []
    for col in columns:
        if isinstance(col, np.ndarray):
            if col.dtype.kind not in "iub":
                raise TypeError(f"a number column must hold integers, not {col.dtype}")
            cells.append(list(map(str, col.astype(np.int64).tolist())))
            continue
        joined = "".join(col)
        if any(c in joined for c in (",", '"', "\n")):
            done: dict[str, str] = {}
            col = [done[c] if c in done else done.setdefault(c, quoted(c)) for c in col]
        cells.append(col)
    text = csv_text(header, [])
    if cells and cells[0]:
        text += "\n".join(map(",".join, zip(*cells))) + "\n"
    return text


def write_csv(path: str | os.PathLike, header, rows, force: bool = False) -> Path:
    """:func:`csv_text` written atomically (nothing overwritten without ``force``)."""
    return write_text_atomic(path, csv_text(header, rows), force=force)


def read_npz(path: str | os.PathLike) -> dict:
    """Every array of an .npz file, read without pickle; a missing, unreadable or pickled file is
    one :class:`SteveError` naming it."""
    import numpy as np

    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError as exc:
        raise SteveError("file not found", p) from exc
    except ValueError as exc:  # object arrays need pickle: refused
        raise SteveError(f"refused: holds Python objects (pickle), not plain arrays ({exc})",
                         p) from exc
    except Exception as exc:
        raise SteveError(f"not a readable .npz file ({exc})", p) from exc
