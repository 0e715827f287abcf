"""steve_qt adapter for wav2vec 2.0 models (HF transformers): ``wav2vec2:DIR_OR_HUB_ID``."""

from .adapter import Wav2Vec2Adapter

__all__ = ["Wav2Vec2Adapter"]
