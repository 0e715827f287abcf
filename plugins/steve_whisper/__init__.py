"""steve_qt adapter for openai-whisper (entry point ``whisper`` in group ``steve_qt.adapters``)."""

from .adapter import WhisperAdapter

__all__ = ["WhisperAdapter"]
