"""The decoder's self-attention (tokens x tokens) in its own dock: map, head grid, hover, export."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt6 import QtWidgets

from gui_helpers import ARTIFACTS
from steve_qt.gui import export_actions


def test_decoder_view_follows_layer_and_head_and_exports(loaded, qtbot, tmp_path, monkeypatch):
    win = loaded
    view = win.decoder_view
    m = win.doc.attention.extraction.maps["decoder"]
    assert view.maps() is m and m.key_grid is None and m.num_queries == m.num_keys
    win.doc.attention.set_layer(2)
    win.doc.attention.set_head(3)
    # the values drawn are that head's weights; the causal mask leaves the upper triangle empty
    want = m.weights[2, 0, 3].astype(np.float32)
    np.testing.assert_array_equal(view.values, want)
    np.testing.assert_array_equal(view.image.image, want)
    assert not np.triu(view.values, 1).any()
    np.testing.assert_allclose(view.values.sum(-1), 1.0, atol=2e-3)  # no padding for tokens
    title = view.title.text()
    assert title.startswith("decoder self-attention: layer 2 of 0\u20133, head 3 of 0\u20135")
    # token labels on the axes, and the hover read-out names both tokens
    left = [t for t, _ in view.plot.getAxis("left")._tickLevels[0]]
    assert left and all(float(t) % 1 == 0.5 for t in left)
    r, c = m.num_queries - 1, 1
    text = view.cell_text(r, c)
    assert text.startswith(f"query token {r} ") and f"key token {c} " in text
    assert f"weight {float(want[r, c]):.4g}" in text

    # the dock's head grid is the decoder's; a click selects layer and head everywhere
    grid = view.heads.grid
    assert set(grid.boxes) == {(n, h) for n in range(m.num_layers)
                               for h in [*range(m.num_heads), None]}
    assert [k for k, b in grid.boxes.items() if b.current] == [(2, 3)]
    grid.boxes[(1, None)].clicked.emit(1, None)
    assert (win.doc.attention.layer, win.doc.attention.head) == (1, None)
    np.testing.assert_allclose(view.values, m.weights[1, 0].astype(np.float32).mean(0),
                               rtol=1e-6)
    assert "mean of heads" in view.title.text()
    win.doc.attention.set_head(3)

    # export: the button asks for a path and writes the tokens x tokens figure
    out = tmp_path / "decoder.png"
    monkeypatch.setattr(export_actions, "ask_figure_path", lambda parent, start: (str(out), "page"))
    view.export_button.click()
    assert out.exists() and out.stat().st_size > 10000
    spec, _ = export_actions.on_screen_figure(win.doc, component="decoder")
    assert (spec.component, spec.layer, spec.head) == ("decoder", 1, 3)
    ARTIFACTS.mkdir(exist_ok=True)
    out.replace(ARTIFACTS / "figure_decoder_L1H3.png")
    win.decoder_dock.raise_()
    QtWidgets.QApplication.processEvents()
    win.grab().save(str(ARTIFACTS / "window_decoder_view.png"))


def test_decoder_view_without_decoder_maps(window, dark_suit):
    window.opener.open_audio(dark_suit)
    view = window.decoder_view
    assert view.maps() is None and view.title.text() == "no decoder self-attention yet"
    assert not view.export_button.isEnabled()
    assert view.plot.getAxis("left")._tickLevels == [[], []]
    with pytest.raises(Exception, match="no attention"):
        export_actions.on_screen_figure(window.doc, component="decoder")
