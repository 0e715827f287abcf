"""wav2vec 2.0 runs: a base-sized random model saved to a temp dir, loaded through the adapter.

The model is ``Wav2Vec2ForCTC(Wav2Vec2Config(**cfg.wav2vec2_config))`` with seed 0, written with
``save_pretrained`` once per benchmark process and removed at exit; the adapter loads it the way a
user's local checkpoint is loaded (``get_adapter("wav2vec2:" + dir)``).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile

import numpy as np
import torch

MISSING = ("wav2vec 2.0: not measured — the adapter (plugins/steve_wav2vec2) was not available "
           "when this ran.")

_DIRS: dict[str, str] = {}


def available() -> bool:
    try:
        import steve_wav2vec2
    except ImportError:
        return False
    return hasattr(steve_wav2vec2, "Wav2Vec2Adapter")


def label(cfg) -> str:
    c = cfg.wav2vec2_config
    return (f"wav2vec 2.0 random ({c['num_hidden_layers']} layers × {c['num_attention_heads']} "
            f"heads × {c['hidden_size']})")


def model_dir(cfg) -> str:
    """Directory holding the random model for this config (made once per process)."""
    key = json.dumps(cfg.wav2vec2_config, sort_keys=True)
    if key not in _DIRS:
        from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

        torch.manual_seed(0)
        model = Wav2Vec2ForCTC(Wav2Vec2Config(**cfg.wav2vec2_config)).eval()
        path = tempfile.mkdtemp(prefix="steve_bench_w2v2_")
        atexit.register(shutil.rmtree, path, True)
        model.save_pretrained(path)
        _DIRS[key] = path
    return _DIRS[key]


def model_spec(cfg) -> str | None:
    return f"wav2vec2:{model_dir(cfg)}" if available() else None


def load_adapter(spec: str):
    from steve_qt.core.models.pipeline import get_adapter

    return get_adapter(spec)


def hf_model(adapter) -> torch.nn.Module:
    """The transformers model inside the adapter (``adapter.loaded.model``)."""
    loaded = getattr(adapter, "loaded", None)
    return loaded.model if loaded is not None else adapter.model


def model_input(adapter, audio: np.ndarray) -> torch.Tensor:
    """(1, n) float32 input_values exactly as the adapter prepares them."""
    return adapter.input_values(np.ascontiguousarray(audio, dtype=np.float32))


def bare_forward(adapter, audio: np.ndarray, model: torch.nn.Module | None = None):
    m = model if model is not None else hf_model(adapter)
    x = model_input(adapter, audio)
    with torch.no_grad():
        return m(x)


def extract(adapter, audio: np.ndarray):
    return adapter.extract(audio, components=["encoder"])


def full_reference(adapter, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights, scores) (N, 1, M, T, T) float16 by the plain computation: the adapter's hooks and
    forward pass, full float32 (M, T, T) scores and softmax per layer, then float16."""
    from steve_wav2vec2.capture import capture_attention

    layers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def keep(n: int, s: torch.Tensor, w: torch.Tensor) -> None:
        layers[n] = (w.half().numpy(), s.half().numpy())

    x = model_input(adapter, audio)
    capture_attention(adapter.loaded.encoder_layers, lambda: hf_model(adapter)(x), keep)
    order = sorted(layers)
    return (np.stack([layers[n][0] for n in order])[:, None],
            np.stack([layers[n][1] for n in order])[:, None])


def extraction_bytes(ex) -> int:
    return int(sum(m.nbytes for m in ex.maps.values()))


def num_frames(adapter, num_samples: int) -> int:
    grid = getattr(adapter, "grid", None)
    if grid is not None:
        return grid.frames_valid(num_samples)
    from steve_qt.core.frames import conv_grid

    cfg = hf_model(adapter).config
    return conv_grid(cfg.conv_kernel, cfg.conv_stride).frames_valid(num_samples)


def attn_implementation(model: torch.nn.Module) -> str:
    return str(getattr(model.config, "_attn_implementation", "unknown"))
