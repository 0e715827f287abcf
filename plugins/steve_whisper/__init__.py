"""steve_qt adapter for openai-whisper (entry point ``whisper`` in group ``steve_qt.adapters``).

``WhisperAdapter`` is imported on first use, so that the torch-free parts of this package (the
encoder preview, ``steve_whisper.preview``) load without torch and whisper.
"""

__all__ = ["WhisperAdapter"]


def __getattr__(name: str):
    if name == "WhisperAdapter":
        from .adapter import WhisperAdapter

        return WhisperAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
