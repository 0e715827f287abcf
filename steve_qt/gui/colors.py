"""Colour maps as 256-entry lookup tables for pg.ImageItem."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyqtgraph as pg

COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "turbo", "gray", "gray_r")
SPECTROGRAM_COLORMAP = "gray_r"  # Praat-like: white background, dark energy


@lru_cache(maxsize=None)
def colormap(name: str) -> pg.ColorMap:
    if name == "gray":
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
    if name == "gray_r":
        return pg.ColorMap([0.0, 1.0], [(255, 255, 255), (0, 0, 0)])
    return pg.colormap.get(name)


@lru_cache(maxsize=None)
def lut(name: str) -> np.ndarray:
    """(256, 3) uint8 lookup table."""
    table = colormap(name).getLookupTable(nPts=256, alpha=False)
    return np.ascontiguousarray(table[:, :3], dtype=np.uint8)
