"""Load a wav2vec 2.0 model (transformers) from a local directory or a Hugging Face hub id.

What is loaded:

- ``config.json`` must have ``model_type == "wav2vec2"``.
- The model is ``Wav2Vec2ForCTC`` when the config's ``architectures`` names it (or, when
  ``architectures`` is empty, when the directory holds a ``vocab.json``); otherwise
  ``Wav2Vec2Model``. A checkpoint without a trained ``lm_head`` is used without the head.
- Attention runs in transformers' SDPA function, through steve_qt's registered attention function
  (``capture.ATTENTION``) that computes scores and weights itself for the layers being captured
  (so it needs no ``output_attentions``), float32, in eval mode.
- The tokenizer (for the greedy CTC transcript) is optional.
- Feature normalisation follows the feature extractor's ``do_normalize``. Without a feature
  extractor config we normalise (zero mean, unit variance), which is ``Wav2Vec2FeatureExtractor``'s
  default and what the published checkpoints' configs say (``facebook/wav2vec2-base-960h`` and
  ``facebook/wav2vec2-large-960h-lv60-self`` both ship ``do_normalize: true``; fairseq's base
  models were pre-trained on raw audio, but the CTC fine-tuned HF checkpoints are used with it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steve_qt.core.errors import SteveError
from steve_qt.core.warnings import SteveWarning

MODEL_TYPE = "wav2vec2"
CTC_ARCHITECTURE = "Wav2Vec2ForCTC"
# keys that may be missing from a checkpoint without making the encoder meaningless
OPTIONAL_KEYS = ("masked_spec_embed",)


@dataclass
class LoadedModel:
    model: Any  # Wav2Vec2ForCTC or Wav2Vec2Model, eval mode, SDPA attention
    base: Any  # the Wav2Vec2Model inside (model.wav2vec2 for CTC, else model itself)
    config: Any  # Wav2Vec2Config
    tokenizer: Any | None  # CTC tokenizer, or None
    has_ctc_head: bool
    normalize: bool  # zero-mean unit-variance normalisation of the waveform
    sample_rate: int
    source: str  # the directory (absolute) or the hub id
    is_local: bool

    @property
    def encoder_layers(self) -> list:
        return list(self.base.encoder.layers)


def offline_env() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE, read now (huggingface_hub reads them at import)."""
    values = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(v.strip().upper() in {"1", "ON", "YES", "TRUE"} for v in values)


def looks_like_path(arg: str) -> bool:
    """A spec argument that can only be a path (hub ids are ``name`` or ``org/name``)."""
    return arg.startswith(("/", ".", "~")) or "\\" in arg or arg.count("/") > 1


def resolve_source(arg: str | None) -> tuple[str, bool]:
    """Model spec argument -> (directory or hub id, is_local)."""
    if arg is None or not arg.strip():
        raise SteveError(
            "wav2vec2 needs a model: give a directory saved with save_pretrained or a Hugging Face "
            "hub id, e.g. wav2vec2:/path/to/model or wav2vec2:facebook/wav2vec2-base-960h "
            "(steve_qt embeds no wav2vec 2.0 weights)"
        )
    arg = arg.strip()
    p = Path(arg).expanduser()
    if p.is_dir():
        return str(p.resolve()), True
    if p.exists():
        raise SteveError("is a file; give the directory that holds config.json and the weights", p)
    if looks_like_path(arg):
        raise SteveError("model directory not found", p)
    return arg, False


def read_local_config(path: Path) -> dict:
    """Check that a directory holds a wav2vec 2.0 config; return it as a dict."""
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise SteveError("does not hold a wav2vec 2.0 model (no config.json)", path)
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SteveError(f"config.json is unreadable: {exc}", path) from exc
    if not isinstance(cfg, dict) or cfg.get("model_type") != MODEL_TYPE:
        kind = cfg.get("model_type") if isinstance(cfg, dict) else None
        raise SteveError(f"does not hold a wav2vec 2.0 model (model_type is {kind!r})", path)
    return cfg


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hub_error(hub_id: str, exc: BaseException) -> SteveError:
    """A clear message for a hub id that could not be fetched."""
    text = str(exc).lower()
    offline = offline_env() or "connect" in text or "offline" in text or "network" in text
    if offline:
        why = "no network (and not in the local Hugging Face cache)"
    elif "not a valid model identifier" in text or "repository not found" in text or "404" in text:
        why = "no such model on the Hugging Face hub"
    else:
        why = first_line(exc)
    return SteveError(
        f"cannot download {hub_id}: {why}; give a local directory saved with save_pretrained"
    )


def hub_errors() -> tuple[type[BaseException], ...]:
    """The exception family from_pretrained raises for missing files, network and bad ids."""
    errors: list[type[BaseException]] = [OSError, ValueError]
    try:
        from huggingface_hub.errors import HfHubHTTPError

        errors.append(HfHubHTTPError)
    except ImportError:  # pragma: no cover - older huggingface_hub
        pass
    return tuple(errors)


def load_config(source: str, is_local: bool):
    from transformers import Wav2Vec2Config

    if is_local:
        read_local_config(Path(source))
    local_only = is_local or offline_env()
    try:
        # the raw dict first: Wav2Vec2Config's own model_type is always "wav2vec2"
        raw, _ = Wav2Vec2Config.get_config_dict(source, local_files_only=local_only)
        config = Wav2Vec2Config.from_pretrained(source, local_files_only=local_only)
    except hub_errors() as exc:
        if is_local:
            problem = f"cannot read the wav2vec 2.0 config: {first_line(exc)}"
            raise SteveError(problem, source) from exc
        raise hub_error(source, exc) from exc
    if raw.get("model_type") != MODEL_TYPE:
        raise SteveError(f"is not a wav2vec 2.0 model (model_type {raw.get('model_type')!r})", source)
    return config


def wants_ctc_head(config, source: str, is_local: bool) -> bool:
    arch = list(getattr(config, "architectures", None) or [])
    if arch:
        return CTC_ARCHITECTURE in arch
    return is_local and (Path(source) / "vocab.json").is_file()


def load_model(source: str, is_local: bool, config, ctc: bool):
    """(model, has_ctc_head) in eval mode, float32, attention ``capture.ATTENTION`` (SDPA)."""
    import torch
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Model

    from .capture import register_attention

    cls = Wav2Vec2ForCTC if ctc else Wav2Vec2Model
    try:
        model, info = cls.from_pretrained(
            source,
            config=config,
            attn_implementation=register_attention(),  # SDPA, capturing when asked
            dtype=torch.float32,
            local_files_only=is_local or offline_env(),
            output_loading_info=True,
        )
    except hub_errors() as exc:
        if is_local:
            problem = f"cannot load the wav2vec 2.0 weights: {first_line(exc)}"
            raise SteveError(problem, source) from exc
        raise hub_error(source, exc) from exc
    missing = sorted(info.get("missing_keys", ()))
    head_missing = [k for k in missing if k.startswith("lm_head.")]
    fatal = [k for k in missing if k not in head_missing and not k.endswith(OPTIONAL_KEYS)]
    if fatal:
        raise SteveError(
            f"holds incomplete wav2vec 2.0 weights: {len(fatal)} tensors missing "
            f"(e.g. {fatal[0]})",
            source,
        )
    model.eval()
    if ctc and head_missing:
        import warnings

        warnings.warn(
            SteveWarning(f"{source}: no trained CTC head in the checkpoint; no transcript"),
            stacklevel=3,
        )
        return model, False
    return model, ctc


def load_tokenizer(source: str, is_local: bool):
    """The CTC tokenizer, or None when the model has no vocabulary files."""
    if is_local and not (Path(source) / "vocab.json").is_file():
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=is_local or offline_env())
    except (TypeError, *hub_errors()):
        return None


def load_feature_settings(source: str, is_local: bool) -> tuple[bool, int]:
    """(do_normalize, sampling_rate) from the feature extractor config; defaults (True, 16000)."""
    from transformers import Wav2Vec2FeatureExtractor

    try:
        fe = Wav2Vec2FeatureExtractor.from_pretrained(
            source, local_files_only=is_local or offline_env()
        )
    except (TypeError, *hub_errors()):
        return True, 16000
    return bool(getattr(fe, "do_normalize", True)), int(getattr(fe, "sampling_rate", 16000))


def load(arg: str | None) -> LoadedModel:
    """Everything the adapter needs from the model spec argument."""
    from transformers.utils import logging as hf_logging

    # transformers draws tqdm bars on stderr while loading; steve_qt reports progress itself
    hf_logging.disable_progress_bar()
    source, is_local = resolve_source(arg)
    config = load_config(source, is_local)
    model, has_ctc = load_model(source, is_local, config, wants_ctc_head(config, source, is_local))
    tokenizer = load_tokenizer(source, is_local) if has_ctc else None
    normalize, rate = load_feature_settings(source, is_local)
    base = model.wav2vec2 if hasattr(model, "wav2vec2") else model
    return LoadedModel(model, base, config, tokenizer, has_ctc, normalize, rate, source, is_local)
