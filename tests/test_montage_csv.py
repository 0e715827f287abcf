"""The montage's CSV says which example is where: top examples (bin None from the window, bin 0
from the index's own rows) are "top", range examples "range" with their bin."""

from __future__ import annotations

import csv
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from steve_qt.core.features.audio import Piece, write_montage


def test_montage_csv_kinds(tmp_path):
    ex = lambda rank, b: SimpleNamespace(feature=7, rank=rank, bin=b, file=Path("a.wav"),  # noqa: E731
                                         time_s=0.5, activation=1.0, phone="s", word="she")
    examples = [ex(0, None), ex(1, 0), ex(0, 2), ex(0, -1)]
    pieces = [Piece(i, 100 * i, 100, 0.25, 0.75) for i in range(4)]
    wav, table = write_montage(tmp_path / "m.wav", np.zeros(400, np.float32), 16000, pieces,
                               examples)
    rows = list(csv.DictReader(table.open()))
    assert [(r["kind"], r["bin"]) for r in rows] == [("top", ""), ("top", ""), ("range", "2"),
                                                    ("range", "-1")]
    assert wav.exists()
