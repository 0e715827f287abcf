"""The embedded model converted once: an openai-whisper state dict in the user cache.

Converting the CTranslate2 ``model.bin`` (float16, fused q/k/v) to an openai-whisper state dict
takes about a second at every start; the result is stored once as
``<cache>/models/whisper-<SHA-256 of model.bin>.safetensors`` (float32, written atomically) and
memory-mapped on later starts. The file's metadata holds the model dimensions and a checksum of
the tensor bytes; a file that cannot be read, is cut short, or whose bytes do not add up to the
checksum counts as missing and is written again.

The SHA-256 of ``model.bin`` is remembered in ``<cache>/models/sha256.json`` (``modelfiles``,
which the torch-free encoder preview shares).
"""

from __future__ import annotations

import json
import threading
import warnings
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from whisper.model import ModelDimensions, Whisper

from steve_qt.core.fileio import atomic_path

from .modelfiles import FORMAT, cache_root, file_sha256, state_path  # noqa: F401 (re-exported)


# --- the state dict -------------------------------------------------------------------------------
def checksum(state: dict[str, torch.Tensor]) -> int:
    """Sum of every tensor's bytes read as little-endian uint32 words, modulo 2**64 (float32
    tensors only). Cheap (one pass over memory) and changes with any single damaged word."""
    total = 0
    for name in sorted(state):
        words = state[name].detach().contiguous().numpy().reshape(-1).view(np.uint32)
        total = (total + int(np.add.reduce(words, dtype=np.uint64))) % 2**64
    return total


def write_state(path: Path, dims: ModelDimensions, state: dict[str, torch.Tensor]) -> bool:
    """Store ``state`` (float32 tensors) atomically; False (and a warning) when it cannot."""
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in state.items()}
    meta = {"format": FORMAT, "dims": json.dumps(asdict(dims)), "checksum": str(checksum(state))}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, force=True) as tmp:
            save_file(state, str(tmp), metadata=meta)
        return True
    except Exception as exc:  # noqa: BLE001 - no cache (read-only home, full disk): go on
        warnings.warn(f"steve_qt: cannot write the converted model to {path}: {exc}",
                      stacklevel=2)
        return False


def read_state(path: Path) -> tuple[ModelDimensions, dict[str, torch.Tensor]] | None:
    """(dims, state) from a cache file; None when it is missing or damaged."""
    if not path.exists():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("format") != FORMAT:
            return None
        dims = ModelDimensions(**json.loads(meta["dims"]))
        state = load_file(str(path))
        if any(v.dtype != torch.float32 for v in state.values()):
            return None
        if checksum(state) != int(meta["checksum"]):
            return None
        return dims, state
    except (SafetensorError, OSError, ValueError, KeyError, TypeError):
        return None


#: the layer types whose ``reset_parameters`` (random initialisation) Whisper's constructor runs
_INITIALISED = (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.Embedding,
                torch.nn.LayerNorm)
_NO_INIT_LOCK = threading.Lock()
_NO_INIT = threading.local()


@contextmanager
def _without_random_init():
    """While this thread builds a model, the layers' ``reset_parameters`` do nothing in it
    (other threads building layers meanwhile initialise them as ever). The tensors keep
    whatever memory they were allocated with: every one of them must be replaced afterwards."""
    with _NO_INIT_LOCK:
        originals = {cls: cls.__dict__["reset_parameters"] for cls in _INITIALISED}

        def skipping(original):
            def reset_parameters(self, *a, **k):
                if getattr(_NO_INIT, "active", False):
                    return None
                return original(self, *a, **k)
            return reset_parameters

        for cls, original in originals.items():
            cls.reset_parameters = skipping(original)
        _NO_INIT.active = True
        try:
            yield
        finally:
            _NO_INIT.active = False
            for cls, original in originals.items():
                cls.reset_parameters = original


def build_model(dims: ModelDimensions, state: dict[str, torch.Tensor]) -> Whisper:
    """openai-whisper's Whisper holding the tensors of ``state`` as they are (``assign=True``:
    no copy; tensors read from the cache stay memory-mapped). The random initialisation of the
    layers (about 0.25 s) is skipped: ``strict=True`` replaces every parameter and persistent
    buffer by the state's, and the constructor computes the non-persistent buffer (the
    decoder's causal mask) itself, not by a ``reset_parameters``."""
    with _without_random_init():
        model = Whisper(dims)
    model.load_state_dict(state, strict=True, assign=True)
    return model
