"""Attention maps and what is computed from them: phone-level analysis, head statistics,
context-mixing measures, interval export."""
