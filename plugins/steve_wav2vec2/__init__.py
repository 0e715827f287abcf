"""steve_qt adapter for wav2vec 2.0 models (HF transformers): ``wav2vec2:DIR_OR_HUB_ID``.

``Wav2Vec2Adapter`` is imported on first use, so that importing the package stays light.
"""

__all__ = ["Wav2Vec2Adapter"]


def __getattr__(name: str):
    if name == "Wav2Vec2Adapter":
        from .adapter import Wav2Vec2Adapter

        return Wav2Vec2Adapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
