"""The features dock's Examples table in the window's right column: every column inside the dock
(no horizontal scrolling) with its whole text shown or on hover; a tokens site's examples show
the token in its sentence.

The token index is written by hand with the columns ``steve-qt features index`` writes for a
tokens site (``feature,rank,file,position,token,time_s,activation,word``); the file's token
texts sit in the activation cache as the index leaves them. The expected sentence is typed out
here.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from feature_helpers import D, make_corpus, synthetic_acts, write_index

TOKEN_SITE = "decoder.blocks.0.mlp.1"
DARK_SUIT_TOKENS = ["<|startoftranscript|>", "<|notimestamps|>", " She", " had", " your",
                    " dark", " suit", " in", " gre", "asy", " wash", " water", " all", " year",
                    ".", "<|endoftext|>"]


@pytest.fixture(autouse=True)
def _activation_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("STEVE_QT_CACHE", str(tmp_path / "actcache"))


def settle(qtbot, ms: int = 50) -> None:
    qtbot.wait(ms)


def show_examples(win, qtbot, size) -> None:
    win.resize(*size)
    win.show()
    qtbot.waitExposed(win)
    win.features.raise_()
    qtbot.waitUntil(win.features.isVisible, timeout=5000)
    win.features.panel.tabs.setCurrentIndex(1)
    settle(qtbot, 200)


def lines_fit_or_tip(text: str, width: int, fm, tip: str, pad: int) -> list[str]:
    """The lines of a cell that neither fit its column nor stand whole in its tooltip (a
    line that starts with an ellipsis: the rest of it)."""
    return [line for line in text.split("\n")
            if fm.horizontalAdvance(line) + pad > width and line.lstrip("\u2026") not in tip]


def check_table(t) -> None:
    fm = t.fontMetrics()
    view_w = t.viewport().width()
    assert t.rowCount() > 0
    for c in range(t.columnCount()):
        # the whole column inside the dock: nothing to scroll to
        assert t.columnViewportPosition(c) + t.columnWidth(c) <= view_w, \
            (c, t.columnViewportPosition(c), t.columnWidth(c), view_w)
        head = t.horizontalHeaderItem(c).text()
        assert fm.horizontalAdvance(head) + 8 <= t.columnWidth(c), (c, head)
    assert t.horizontalScrollBar().maximum() == 0
    # the time (the shortest text of the last column) is never elided
    where = t.columnCount() - 1
    assert fm.horizontalAdvance("00.00 s") + 8 <= t.columnWidth(where)
    for r in range(t.rowCount()):
        for c in range(1, t.columnCount()):
            it = t.item(r, c)
            bad = lines_fit_or_tip(it.text(), t.columnWidth(c), fm, it.toolTip(), pad=8)
            assert not bad, (r, c, bad)


@pytest.mark.parametrize("size", [(1600, 1000), (1280, 900)])
def test_examples_columns_fit_the_dock_or_say_themselves_on_hover(window, qtbot, tmp_path,
                                                                  samples_dir, size):
    files = make_corpus(tmp_path / "corpus", samples_dir)
    acts = {f: synthetic_acts(sf.info(str(f)).frames, seed) for seed, f in enumerate(files)}
    idx = write_index(tmp_path / "idx", tmp_path / "corpus", acts)
    win = window
    win.doc.features.set_site("encoder.blocks.2.mlp.1")
    assert win.features.open_index(idx)
    show_examples(win, qtbot, size)
    t = win.features.panel.examples
    check_table(t)
    # each row names its time and its file; the full path is on hover
    for r, ex in enumerate(win.doc.features.examples):
        where = t.item(r, t.columnCount() - 1)
        assert where.text() == f"{ex.time_s:.2f} s\n{ex.file.name}"
        assert str(ex.file) in where.toolTip()


def write_token_index(idx, corpus, wav, feature_rows):
    """A tokens-site index of one file: ``feature_rows`` [(feature, position, activation)]."""
    idx.mkdir(parents=True, exist_ok=True)
    words = {5: ("dark", 0.86), 8: ("greasy", 1.55), 2: ("She", 0.12)}
    rows = []
    for f, pos, act in feature_rows:
        word, t = words.get(pos, ("", None))
        rows.append([f, 0, wav.name, pos, DARK_SUIT_TOKENS[pos],
                     "" if t is None else f"{t:.3f}", f"{act:.6f}", word])
    with (idx / "top_examples.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["feature", "rank", "file", "position", "token", "time_s", "activation",
                    "word"])
        w.writerows(rows)
    (idx / "index.json").write_text(json.dumps({
        "version": 1, "model": "whisper", "site": TOKEN_SITE, "sae": None,
        "corpus": str(corpus), "num_files": 1, "num_features": D, "axis": "tokens"}))
    return idx


def test_a_token_sites_examples_show_the_token_in_its_sentence(window, qtbot, tmp_path,
                                                               samples_dir):
    from steve_qt.core.features import actcache

    corpus = tmp_path / "corpus"
    (wav,) = make_corpus(corpus, samples_dir, names=("dark_suit",))
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((len(DARK_SUIT_TOKENS), D)).astype(np.float32)
    actcache.store_activations(wav, "whisper", TOKEN_SITE, 0, acts, attrs={
        "axis": "tokens", "grid": None, "token_texts": DARK_SUIT_TOKENS,
        "words": [[0.86, 1.2, " dark"]]})
    idx = write_token_index(tmp_path / "idx", corpus, wav, [(3, 5, 2.5), (3, 8, 1.5)])
    win = window
    assert win.features.open_index(idx)
    fv = win.doc.features
    assert fv.site == TOKEN_SITE and fv.index_note() == ""
    fv.set_feature(3)
    show_examples(win, qtbot, (1600, 1000))
    t = win.features.panel.examples
    assert t.rowCount() == 2
    sentences = ["She had your **dark** suit in greasy wash water all year.",
                 "She had your dark suit in **gre**asy wash water all year."]
    # the cell starts two words before the token, so that the token shows in the dock
    shown = ["\u2026had your **dark** suit in greasy wash water all year.",
             "\u2026suit in **gre**asy wash water all year."]
    for r, sentence in enumerate(sentences):
        where = t.item(r, t.columnCount() - 1)
        assert where.text().split("\n") == [shown[r], "dark_suit.wav"]
        assert sentence in where.toolTip()
        assert sentence in t.item(r, 0).toolTip()  # the thumbnail's
        token = shown[r][:shown[r].index("**", shown[r].index("**") + 2) + 2]
        assert t.fontMetrics().horizontalAdvance(token) + 8 <= t.columnWidth(3), token
    assert t.item(0, 2).text().split("\n") == ["dark", "dark"]  # the token, its word
    assert "s\n" not in t.item(0, t.columnCount() - 1).text()  # no frame time
    check_table(t)
    # the thumbnail: the token's word start, under its mark
    qtbot.waitUntil(lambda: not win.features.thumbnails_pending(), timeout=10000)
    assert not t.item(0, 0).icon().isNull()
    # clicking opens the file with the cursor at the word's start
    assert win.features.open_example(0)
    assert win.doc.nav.cursor == pytest.approx(0.86)
    assert "tokens site" in win.features.timeline.track_text.toPlainText()


def test_without_the_files_tokens_the_row_names_the_tokens_position(window, qtbot, tmp_path,
                                                                     samples_dir):

    corpus = tmp_path / "corpus"
    (wav,) = make_corpus(corpus, samples_dir, names=("dark_suit",))
    idx = write_token_index(tmp_path / "idx", corpus, wav, [(1, 5, 2.0)])
    win = window
    assert win.features.open_index(idx)
    win.doc.features.set_feature(1)
    t = win.features.panel.examples
    assert t.item(0, t.columnCount() - 1).text() == "token 5 at 0.86 s\ndark_suit.wav"
