"""One numbering: the window, its figures and its CSV export name the same head the same way."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from steve_qt.core.figures.attention import draw_figure
from steve_qt.gui import export_actions

LAYER, HEAD = 2, 3  # 0-based, as the module path encoder.blocks.2 counts


def numbers(text: str) -> tuple[int, int]:
    m = re.search(r"layer (\d+)\D.*?head (\d+)", text)
    assert m, text
    return int(m[1]), int(m[2])


def test_window_title_figure_title_and_csv_row_agree(loaded, tmp_path):
    win = loaded
    doc = win.doc
    maps = doc.attention.maps
    doc.attention.set_layer(LAYER)
    doc.attention.set_head(HEAD)

    # the window: map title, spin boxes and the framed cell of the head grid
    title = win.views.map_title.textItem.toPlainText()
    assert numbers(title) == (LAYER, HEAD)
    assert (win.controls.layer.value(), win.controls.head.value()) == (LAYER, HEAD)
    assert win.controls.layer.minimum() == 0 and win.controls.head.minimum() == 0
    assert win.controls.layer.maximum() == maps.num_layers - 1
    grid = win.overview.grid
    framed = [key for key, box in grid.boxes.items() if box.current]
    assert framed == [(LAYER, HEAD)]
    assert grid.ci.getItem(0, HEAD + 1).text == f"h{HEAD}"  # the column header of that cell
    assert grid.ci.getItem(LAYER + 1, 0).text == f"L{LAYER}"

    # the figure File > Export Figure... draws
    spec, data = export_actions.on_screen_figure(doc)
    fig = draw_figure(spec, data)
    assert numbers(fig.get_suptitle()) == (LAYER, HEAD)

    # the CSV File > Export Data... writes: its (LAYER, HEAD) rows hold the head the window shows
    written = export_actions.export_data(win, tmp_path / "d.npz", with_csv=True)
    rows = list(csv.DictReader(open(tmp_path / "d.csv", encoding="utf-8")))
    assert written[-1].name == "d.csv"
    shown = doc.attention.head_map().astype(np.float64)  # (Q, K) the values the window shows
    np.testing.assert_array_equal(shown, maps.weights[LAYER, 0, HEAD].astype(np.float64))
    # frames by hand: Whisper frame i covers samples [320 i, 320 (i + 1)) of 16 kHz audio
    centres = (np.arange(maps.num_keys) * 320 + 160) / 16000
    longest = max(doc.alignment.phones.intervals, key=lambda iv: iv.end_s - iv.start_s)
    inside = np.nonzero((centres >= longest.start_s) & (centres < longest.end_s))[0]
    want = shown[np.ix_(inside, inside)].mean()

    def row_value(layer: int, head: int) -> float:
        (row,) = [r for r in rows if (int(r["layer"]), int(r["head"])) == (layer, head)
                  and r["query_label"] == r["key_label"] == longest.label
                  and float(r["query_start_s"]) == pytest.approx(longest.start_s)
                  and float(r["key_start_s"]) == pytest.approx(longest.start_s)]
        return float(row["mean_weight"])

    assert row_value(LAYER, HEAD) == pytest.approx(want, rel=1e-6)
    # an off-by-one anywhere would have named a neighbour, which holds other numbers
    for other in ((LAYER + 1, HEAD + 1), (LAYER - 1, HEAD - 1)):
        assert row_value(*other) != pytest.approx(want, rel=1e-3)
