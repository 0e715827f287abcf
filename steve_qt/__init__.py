"""steve_qt: see and hear what a speech transformer attends to."""

__version__ = "0.1.0"
