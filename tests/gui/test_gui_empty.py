"""Before the first extraction the attention plots show a plain "no attention yet", no ticks."""

from __future__ import annotations

from gui_helpers import ARTIFACTS, settle


def test_no_tick_junk_before_the_first_extraction(window, dark_suit, dark_suit_extraction, qtbot):
    views = window.views
    assert views.map_title.textItem.toPlainText() == "no attention yet"  # as the README says
    assert views.map_title.isVisible()
    assert views.spec.getAxis("left")._tickLevels == [[], []]
    assert views.wave.getAxis("left").style["showValues"] is False  # no 0..1 over no audio
    i = window.opener.open_audio(dark_suit)
    assert views.wave.getAxis("left").style["showValues"] is True
    assert views.map_title.textItem.toPlainText() == "no attention yet"
    for plot in (views.map, views.profile):
        assert plot.getAxis("left").style["showValues"] is False
    assert not views.colorbar.isVisible()
    matrix = window.phone_matrix
    for name in ("left", "bottom"):
        label = matrix.plot.getAxis(name).labelString()
        assert "x0.001" not in label and "(" not in label, label
    assert matrix.info.text() == "no attention yet"
    qtbot.waitUntil(lambda: not views.spectrograms.busy, timeout=120000)  # painted meanwhile
    ARTIFACTS.mkdir(exist_ok=True)
    window.grab().save(str(ARTIFACTS / "window_no_attention_yet.png"))

    window.doc.set_extraction(i, window.doc.attention.model, 0, dark_suit_extraction[1])
    settle()
    assert "layer 0" in views.map_title.textItem.toPlainText()
    for plot in (views.map, views.profile):
        assert plot.getAxis("left").style["showValues"] is True
    assert views.colorbar.isVisible()
    assert matrix.info.text().startswith("layer 0, head 0")
