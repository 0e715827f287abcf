"""Qt-free core of steve_qt: audio, alignments, attention maps, adapters, analysis, export.

Nothing in this package may import Qt (enforced by tests/test_architecture.py).
"""
