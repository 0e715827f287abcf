"""steve_qt adapter for openai-whisper (entry point ``whisper`` in group ``steve_qt.adapters``).

``WhisperAdapter`` is imported on first use, so that the torch-free parts of this package (the
encoder preview, ``steve_whisper.preview``) load without torch and whisper.
"""

__all__ = ["WhisperAdapter", "preview_for"]


def preview_for(arg: str | None):
    """The torch-free encoder preview of the model ``arg`` names, or None (see
    ``steve_qt.core.models.previews``)."""
    from .preview import preview_for as offer

    return offer(arg)


def __getattr__(name: str):
    if name == "WhisperAdapter":
        from .adapter import WhisperAdapter

        return WhisperAdapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
