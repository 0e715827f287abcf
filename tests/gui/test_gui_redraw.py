"""Switching layer/head: the display-ready image cache and what one switch repaints."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import assert_map_shows
from PyQt6 import QtCore, QtWidgets

from steve_qt.core.models.adapters import Extraction, Transcript
from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.speech.audio import from_array
from steve_qt.core.state.document import Document, display_image
from steve_qt.core.frames import whisper_grid
from steve_qt.core.models.pipeline import Utterance
from steve_qt.gui.map_images import (MapImages, head_float32, to_float32, to_indices,
                                     weights_indices)


def fake_extraction(frames: int, layers: int = 3, heads: int = 4, seed: int = 0) -> Extraction:
    """Encoder maps whose rows sum to 0.8 (0.2 went to padding), weights and scores, with many
    float16-subnormal weights (as real maps have)."""
    rng = np.random.default_rng(seed)
    grid = whisper_grid(0)
    w = rng.random((layers, 1, heads, frames, frames)) ** 6
    w /= w.sum(-1, keepdims=True) * 1.25
    maps = AttentionMaps(w.astype(np.float16), np.log(w).astype(np.float16),
                         np.full((layers, heads, frames), 0.2, np.float32), "encoder", "fake",
                         16000, frames * 320, query_grid=grid, key_grid=grid)
    return Extraction({"encoder": maps}, Transcript(), "fake")


def doc_with(ex: Extraction, seconds: float = 1.0) -> Document:
    doc = Document("whisper")
    doc.add(Utterance(from_array(np.zeros(int(seconds * 16000), np.float32), 16000), None))
    doc.set_extraction(0, doc.attention.model, 0, ex)
    return doc


# --- Qt-free: conversion and cache ---------------------------------------------------------------
def test_float16_table_conversion_is_bit_for_bit_numpys_cast():
    every = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)  # all patterns
    got = to_float32(every.reshape(256, 256))
    want = every.astype(np.float32).reshape(256, 256)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    # strided input and an output buffer
    a = every.reshape(256, 256)[::2, 1::3]
    out = np.full(a.shape, 7.0, np.float32)
    assert to_float32(a, out) is out
    np.testing.assert_array_equal(out.view(np.uint32), a.astype(np.float32).view(np.uint32))
    f64 = np.linspace(-1, 1, 12).reshape(3, 4)
    np.testing.assert_array_equal(to_float32(f64), f64.astype(np.float32))


def test_head_float32_equals_attention_maps_head():
    m = fake_extraction(60).maps["encoder"]
    for layer, head, kind in ((0, 0, "weights"), (2, 3, "scores"), (1, None, "weights"),
                              (2, None, "scores")):
        want = m.head(layer, head, kind)
        got = head_float32(m, layer, head, kind)
        if head is None:
            np.testing.assert_allclose(got, want, rtol=1e-6)
        else:
            np.testing.assert_array_equal(got, want)


def test_cached_images_equal_the_documents_and_are_reused():
    doc = doc_with(fake_extraction(50))
    cache = MapImages(prefetch=False)
    for kind, scale, layer, head, rollout in (("weights", "global", 0, 0, False),
                                              ("weights", "row", 2, 1, False),
                                              ("weights", "log", 1, None, False),
                                              ("scores", "global", 2, 3, False),
                                              ("scores", "row", 0, None, False),
                                              ("weights", "global", 0, 0, True)):
        doc.attention.set_kind(kind)
        doc.attention.set_scale(scale)
        doc.attention.set_layer(layer)
        doc.attention.set_head(head)
        doc.attention.set_rollout(rollout)
        want, want_levels = doc.attention.image()  # the document's own (uncached) computation
        levels, img = cache.shown(doc)
        assert levels == pytest.approx(want_levels, rel=1e-6)
        near(img, to_indices(want, want_levels))
        assert img.dtype == np.uint8 and not img.flags.writeable  # shared with the ImageItem
        misses = cache.misses
        again = cache.shown(doc)
        assert again[1] is img and cache.misses == misses  # a re-visit computes nothing
    assert cache.hits == 6 and cache.misses == 6


def test_cache_follows_a_new_extraction_utterance_and_component():
    doc = doc_with(fake_extraction(40, seed=1))
    cache = MapImages()
    first = cache.shown(doc)[1]
    np.testing.assert_array_equal(first, head_indices(doc, 0, 0))
    # the same (model, window) extracted again: other maps, other pixels
    doc.set_extraction(0, doc.attention.model, 0, fake_extraction(40, seed=2))
    second = cache.shown(doc)[1]
    np.testing.assert_array_equal(second, head_indices(doc, 0, 0))
    assert not np.array_equal(first, second)
    # another utterance (other length)
    doc.add(Utterance(from_array(np.zeros(16000 * 2, np.float32), 16000), None))
    doc.set_extraction(1, doc.attention.model, 0, fake_extraction(90, seed=3))
    third = cache.shown(doc)[1]
    assert third.shape == (90, 90)
    np.testing.assert_array_equal(third, head_indices(doc, 0, 0))
    doc.set_current(0)
    np.testing.assert_array_equal(cache.shown(doc)[1], head_indices(doc, 0, 0))
    assert cache.shown(doc_with_no_maps()) is None
    assert len(cache) == 0 and cache._maps is None  # nothing shown: nothing kept


def test_weights_indices_from_float16_bits_equal_the_float_path():
    """The one-pass float16 path gives the levels and indices of display_image + to_indices."""
    from steve_qt.gui.map_images import ready

    rng = np.random.default_rng(3)
    cases = [rng.random((70, 90)) ** 8, np.zeros((5, 7)), np.full((3, 3), 6e-8),
             rng.random((1, 1)), np.array([[0.0, 65504.0, 1e-7, 0.5]])]
    for w in cases:
        w16 = w.astype(np.float16)
        fast = weights_indices(w16)
        slow = ready(*display_image(w16.astype(np.float32), "weights", "global"))
        assert fast is not None and fast[0] == slow[0]
        np.testing.assert_array_equal(fast[1], slow[1])
        assert not fast[1].flags.writeable
    for bad in (np.array([[0.5, -0.0]]), np.array([[0.5, np.inf]]), np.array([[np.nan, 0.1]]),
                np.array([[-0.25, 0.5]])):
        assert weights_indices(bad.astype(np.float16)) is None  # the float path handles these
    assert weights_indices(np.ones((2, 2), np.float32)) is None


def head_indices(doc: Document, layer: int, head: int) -> np.ndarray:
    """Colour indices of one head's weights on the global scale, computed the plain way."""
    w = doc.attention.maps.weights[layer, 0, head].astype(np.float32)
    return to_indices(w, (0.0, float(w.max())))


def near(got: np.ndarray, want: np.ndarray) -> None:
    """Indices of images computed two ways (e.g. numpy's mean vs head-by-head sums): equal but
    for a neighbouring colour where a value sits on a bin edge."""
    diff = np.abs(got.astype(int) - want)
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(1, diff.size // 1000)


def doc_with_no_maps() -> Document:
    doc = Document("whisper")
    doc.add(Utterance(from_array(np.zeros(1600, np.float32), 16000), None))
    return doc


def test_cache_stays_in_its_budget_and_never_changes_an_image_someone_holds():
    doc = doc_with(fake_extraction(40, layers=3, heads=4))
    one = 40 * 40  # uint8 indices
    cache = MapImages(budget_bytes=3 * one, prefetch=False)
    held = {}
    for layer in range(3):
        for head in range(4):
            doc.attention.set_layer(layer)
            doc.attention.set_head(head)
            _, img = cache.shown(doc)
            if (layer + head) % 3 == 0:
                held[(layer, head)] = img  # like a caller that kept ImageItem.image
            assert len(cache) <= 3 and cache.nbytes <= 3 * one
    for (layer, head), img in held.items():  # memory of evicted images was not written over
        np.testing.assert_array_equal(img, head_indices(doc, layer, head))
    doc.attention.set_layer(0)
    doc.attention.set_head(1)  # evicted long ago: computed again, right
    np.testing.assert_array_equal(cache.shown(doc)[1], head_indices(doc, 0, 1))


def test_next_head_and_next_layer_are_computed_ahead_and_right():
    doc = doc_with(fake_extraction(60, layers=3, heads=4, seed=4))
    m = doc.attention.maps
    cache = MapImages()
    doc.attention.set_layer(1)
    doc.attention.set_head(2)
    cache.shown(doc)
    assert sorted(k[2:] for k in cache._pending) == [(1, 3), (2, 2)]  # ] and PgDn
    for f in list(cache._pending.values()):
        f.result(timeout=60)
    for layer, head in ((1, 3), (2, 3)):  # PgDn from (1, 3) was computed ahead too
        doc.attention.set_layer(layer)
        doc.attention.set_head(head)
        levels, img = cache.shown(doc)
        want = m.weights[layer, 0, head].astype(np.float32)
        np.testing.assert_array_equal(img, head_indices(doc, layer, head))
        assert levels == (0.0, float(want.max()))
        assert not img.flags.writeable
        for f in list(cache._pending.values()):
            f.result(timeout=60)
    assert cache.misses == 1 and cache.prefetched >= 2 and cache.hits + cache.waited == 2
    # the mean of heads is not computed ahead (it costs every head), but it is right
    doc.attention.set_head(None)
    mean = m.weights[2, 0].astype(np.float32).mean(0)
    near(cache.shown(doc)[1], to_indices(mean, (0.0, float(mean.max()))))
    assert all(k[3] is not None for k in cache._pending)
    # new maps: what was computed ahead for the old ones is dropped
    doc.set_extraction(0, doc.attention.model, 0, fake_extraction(60, layers=3, heads=4, seed=8))
    doc.attention.set_head(0)
    np.testing.assert_array_equal(cache.shown(doc)[1], head_indices(doc, 2, 0))
    doc.attention.set_head(1)
    np.testing.assert_array_equal(cache.shown(doc)[1], head_indices(doc, 2, 1))


# --- in the window -----------------------------------------------------------------------------
class PaintCounter(QtCore.QObject):
    def __init__(self, widget):
        super().__init__()
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, ev):
        if ev.type() == QtCore.QEvent.Type.Paint:
            self.count += 1
        return False


def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        QtWidgets.QApplication.processEvents()


@pytest.fixture
def shown(window):
    """The window (no model) showing 2 s of silence with fake maps of 100 frames."""
    doc = window.doc
    i = doc.add(Utterance(from_array(np.zeros(32000, np.float32), 16000), None))
    doc.set_extraction(i, doc.attention.model, 0, fake_extraction(100, layers=3, heads=4, seed=5))
    settle()
    return window


def test_head_switch_shows_that_head_with_its_levels_in_one_repaint(shown):
    win, doc, views = shown, shown.doc, shown.views
    m = doc.attention.maps
    assert doc.attention.query is not None  # the window chose a default query: the profile is drawn
    viewport = PaintCounter(views.viewport())
    for layer, head in ((0, 1), (0, 2), (2, 2), (2, 0), (0, 1)):  # the last one is a re-visit
        before = viewport.count
        doc.attention.set_layer(layer)
        doc.attention.set_head(head)
        settle()
        want = m.weights[layer, 0, head].astype(np.float32)
        levels = (0.0, float(want.max()))
        assert_map_shows(views, want, levels)
        assert tuple(views.colorbar.levels()) == pytest.approx(levels)  # colour bar follows
        _, y = views.profile_curve.getData()
        np.testing.assert_array_equal(y, want[doc.attention.query])
        top = views.profile.vb.viewRange()[1][1]
        assert top == pytest.approx(float(want[doc.attention.query].max()) * 1.08, rel=0.05)
        assert f"layer {layer} of 0\u20132, head {head} of 0\u20133" in views.map_title.textItem.toPlainText()
        assert 1 <= viewport.count - before <= 2  # set_layer + set_head: at most one each
    before = viewport.count
    doc.attention.set_head(3)
    settle()
    assert viewport.count - before == 1  # one head switch, one repaint of the time views
    np.testing.assert_array_equal(views.map_image.image, head_indices(doc, 0, 3))
    for p in (views.map, views.profile):  # ranges come from the document, not auto-range
        assert p.vb.state["autoRange"] == [False, False]
    assert views.map_images.hits >= 1


def test_window_shows_a_new_extraction_of_the_same_utterance(shown):
    doc, views = shown.doc, shown.views
    doc.attention.set_layer(1)
    doc.attention.set_head(2)
    settle()
    old = views.map_image.image
    doc.set_extraction(doc.files.current, doc.attention.model, 0, fake_extraction(100, layers=3, heads=4,
                                                                  seed=9))
    settle()
    want = doc.attention.maps.weights[1, 0, 2].astype(np.float32)
    assert_map_shows(views, want, (0.0, float(want.max())))
    assert not np.array_equal(old, views.map_image.image)
    # scale and colour map still switch the image and the colour bar
    doc.attention.set_scale("log")
    settle()
    img, levels = display_image(want, "weights", "log")
    assert_map_shows(views, img, levels, approx=True)
    assert tuple(views.colorbar.levels()) == pytest.approx(levels)


def _painted(item) -> bytes:
    """The ARGB32 pixels an ImageItem renders (before Qt scales them onto the view)."""
    from PyQt6 import QtGui

    item.render()
    q = item.qimage.convertToFormat(QtGui.QImage.Format.Format_ARGB32)
    return bytes(q.constBits().asarray(q.sizeInBytes()))


def test_map_paints_what_pyqtgraph_paints_for_the_float_image(shown):
    """The map's ImageItem draws cached uint8 colour indices; its pixels must be exactly those
    pyqtgraph renders from the float image with its levels, for every kind and scale."""
    import pyqtgraph as pg

    from steve_qt.gui.colors import lut

    doc, views = shown.doc, shown.views
    for kind, scale, cmap in (("weights", "global", "viridis"), ("weights", "row", "magma"),
                              ("weights", "log", "viridis"), ("scores", "global", "viridis"),
                              ("scores", "row", "viridis")):
        doc.attention.set_kind(kind)
        doc.attention.set_scale(scale)
        doc.attention.set_colormap(cmap)
        doc.attention.set_layer(2)
        doc.attention.set_head(1)
        settle()
        want, levels = doc.attention.image()  # the document's own float image and levels
        assert views.map_levels == pytest.approx(levels)
        assert views.map_image.image.dtype == np.uint8 and views.map_image.levels is None
        ref = pg.ImageItem(axisOrder="row-major")
        ref.setImage(want, levels=levels, lut=lut(cmap), autoLevels=False)
        assert _painted(views.map_image) == _painted(ref), (kind, scale)
        assert views.map_image.qimage.format().name == "Format_Indexed8"
