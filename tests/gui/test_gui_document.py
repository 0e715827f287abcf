"""The Qt-free document, events and playback program (no window needed)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from steve_qt.core.models.adapters import Extraction, Transcript
from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.speech.audio import from_array
from steve_qt.core.state.document import (Document, attended_spans, clamp_view, display_image,
                                    zoom_view)
from steve_qt.core.events import EmitterGroup
from steve_qt.core.frames import FrameGrid, whisper_grid
from steve_qt.core.models.pipeline import Utterance
from steve_qt.core.speech.playback import buffer_to_file_seconds, build_program


def fake_extraction(num_samples: int, layers=3, heads=4, seed=0) -> Extraction:
    rng = np.random.default_rng(seed)
    grid = whisper_grid(0)
    t = grid.frames_covering(num_samples)
    w = rng.random((layers, 1, heads, t, t)).astype(np.float32)
    w /= w.sum(-1, keepdims=True) * 1.25  # 20 % of each row "went to padding"
    maps = AttentionMaps(w.astype(np.float16), np.log(w).astype(np.float16),
                         np.full((layers, heads, t), 0.2, np.float32), "encoder", "fake", 16000,
                         num_samples, query_grid=grid, key_grid=grid)
    return Extraction({"encoder": maps}, Transcript(), "fake")


def doc_with_audio(seconds=1.0) -> Document:
    doc = Document("whisper")
    x = np.zeros(int(seconds * 16000), np.float32)
    doc.add(Utterance(from_array(x, 16000), None))
    return doc


# --- events ------------------------------------------------------------------------------------
def test_emitter_group_calls_listeners_in_order_and_survives_a_broken_one(listener_errors):
    g = EmitterGroup("layer")
    seen = []
    g.layer.connect(lambda e: seen.append(("a", e.value, e.old)))
    g.layer.connect(lambda e: 1 / 0)
    g.layer.connect(lambda e: seen.append(("c", e.value, e.old)))
    g.layer(3, 2)
    assert seen == [("a", 3, 2), ("c", 3, 2)]
    (record,) = listener_errors  # logged once, with the event's name and the traceback
    assert record.name == "steve_qt.core.events" and record.levelno == logging.ERROR
    assert "'layer'" in record.getMessage() and record.exc_info[0] is ZeroDivisionError
    listener_errors.clear()  # provoked on purpose: the conftest would fail the test otherwise
    with g.layer.blocked():
        g.layer(4)
    assert len(seen) == 2
    with pytest.raises(AttributeError):
        g.nonexistent


def test_setting_a_field_emits_once_with_the_old_value():
    doc = doc_with_audio()
    doc.set_extraction(0, "whisper", 0, fake_extraction(16000))
    seen = []
    doc.events.layer.connect(lambda e: seen.append((e.value, e.old)))
    doc.attention.set_layer(2)
    doc.attention.set_layer(2)  # no change, no event
    doc.attention.set_layer(99)  # clamped to the last layer: still 2
    doc.attention.step_layer(-1)
    assert seen == [(2, 0), (1, 2)]


# --- zoom and selection ------------------------------------------------------------------------
def test_zoom_keeps_the_centre_in_place_and_stays_inside_the_audio():
    assert zoom_view((0.0, 2.0), 0.5, 0.5, 2.0) == pytest.approx((0.25, 1.25))
    assert zoom_view((0.0, 2.0), 0.5, None, 2.0) == pytest.approx((0.5, 1.5))
    assert zoom_view((0.5, 1.5), 4.0, 1.0, 2.0) == pytest.approx((0.0, 2.0))
    assert clamp_view(1.8, 2.3, 2.0) == pytest.approx((1.5, 2.0))


def test_praat_zoom_commands():
    doc = doc_with_audio(2.0)
    assert doc.nav.view == (0.0, 2.0)
    doc.nav.set_cursor(0.5)
    doc.nav.zoom_in()
    assert doc.nav.view == pytest.approx((0.25, 1.25))
    doc.nav.zoom_out()
    assert doc.nav.view == pytest.approx((0.0, 2.0))
    doc.nav.set_selection((1.6, 1.2))
    assert doc.nav.selection == (1.2, 1.6)
    doc.nav.zoom_to_selection()
    assert doc.nav.view == pytest.approx((1.2, 1.6))
    assert doc.nav.play_span() == (1.2, 1.6)
    doc.nav.set_selection(None)
    assert doc.nav.play_span() == pytest.approx((1.2, 1.6))  # the visible window
    doc.nav.show_all()
    assert doc.nav.view == (0.0, 2.0)


def test_step_head_passes_through_the_mean_before_head_zero():
    doc = doc_with_audio()
    doc.set_extraction(0, "whisper", 0, fake_extraction(16000, heads=2))
    assert doc.attention.head == 0
    doc.attention.step_head(-1)
    assert doc.attention.head is None
    doc.attention.step_head(-1)
    assert doc.attention.head is None
    doc.attention.step_head(1)
    doc.attention.step_head(1)
    doc.attention.step_head(1)
    assert doc.attention.head == 1
    np.testing.assert_allclose(doc.attention.head_map(),
                               doc.attention.maps.weights[0, 0, 1].astype(np.float32))


# --- images ------------------------------------------------------------------------------------
def test_display_image_scales():
    m = np.array([[0.1, 0.3], [0.0, 0.05]], np.float32)
    img, levels = display_image(m, "weights", "global")
    np.testing.assert_array_equal(img, m)
    assert levels == pytest.approx((0.0, 0.3)) and img.flags.c_contiguous
    img, levels = display_image(m, "weights", "row")
    np.testing.assert_allclose(img, [[1 / 3, 1.0], [0.0, 1.0]], rtol=1e-6)
    assert levels == (0.0, 1.0)
    img, levels = display_image(m, "weights", "log")
    np.testing.assert_allclose(img, np.log10(np.maximum(m, 1e-4)), rtol=1e-6)
    assert levels == pytest.approx((-4.0, math.log10(0.3)))
    s = np.array([[1.0, -np.inf], [2.0, 3.0]], np.float32)  # causal mask
    img, levels = display_image(s, "scores", "global")
    assert np.isfinite(img).all() and levels == (1.0, 3.0)


# --- attended audio ----------------------------------------------------------------------------
def test_attended_spans_are_the_fewest_frames_holding_the_share():
    grid = FrameGrid(320, 320, 16000)
    row = np.zeros(20)
    row[[3, 4, 5]] = [0.2, 0.3, 0.1]
    row[12] = 0.25
    row[15] = 0.05
    row[0] = 0.1
    # by weight: 4 (0.3), 12 (0.25), 3 (0.2): 0.75 >= 0.7 of 1.0
    spans = attended_spans(row, grid, 0.7)
    np.testing.assert_allclose(spans, [(3 * 0.02, 5 * 0.02), (12 * 0.02, 13 * 0.02)])
    # an independent brute force: the smallest set of frames reaching the share
    assert sum(row[[3, 4, 12]]) >= 0.7 > sum(sorted(row)[-2:])
    assert attended_spans(np.zeros(5), grid) == []


def test_describe_names_time_phone_word_and_map_cell():
    from steve_qt.core.speech.alignment import Alignment, Interval, Tier

    doc = doc_with_audio(1.0)
    al = Alignment({"phones": Tier("phones", [Interval(0.0, 0.4, "s"), Interval(0.4, 1.0, "iy")]),
                    "words": Tier("words", [Interval(0.0, 1.0, "see")])})
    doc.set_alignment(al, "timit")
    doc.set_extraction(0, "whisper", 0, fake_extraction(16000))
    text = doc.describe(0.5, 10)
    w = float(doc.attention.maps.weights[0, 0, 0, 10, 25])  # key frame 25 spans 0.50-0.52 s
    assert text.startswith("0.500 s")
    assert "phone iy" in text and "word see" in text
    assert "query 0.210 s (frame 10)" in text and "key 0.510 s (frame 25)" in text
    assert f"weight {w:.4g}" in text
    assert doc.attention.default_query() == int(0.2 / 0.02)  # middle of the first phone


def test_hover_reads_one_value_without_building_the_map(monkeypatch):
    doc = doc_with_audio(1.0)
    doc.set_extraction(0, "whisper", 0, fake_extraction(16000))
    w16 = doc.attention.maps.weights  # (3, 1, 4, Q, K) float16
    s16 = doc.attention.maps.scores
    monkeypatch.setattr(AttentionMaps, "head", lambda *a, **k: pytest.fail("built the map"))
    doc.attention.set_layer(2)
    doc.attention.set_head(1)
    assert doc.attention.value_at(10, 25) == float(w16[2, 0, 1, 10, 25])
    assert f"weight {float(w16[2, 0, 1, 10, 25]):.4g}" in doc.describe(0.5, 10)
    doc.attention.set_head(None)  # the mean of the four heads, by hand
    want = sum(float(w16[2, 0, h, 10, 25]) for h in range(4)) / 4
    assert doc.attention.value_at(10, 25) == pytest.approx(want, rel=1e-6)
    doc.attention.set_kind("scores")
    want = sum(float(s16[2, 0, h, 10, 25]) for h in range(4)) / 4
    assert doc.attention.value_at(10, 25) == pytest.approx(want, rel=1e-6)
    assert "score" in doc.describe(0.5, 10)
    doc.attention.set_kind("weights")
    doc.attention.set_rollout(True)
    assert doc.attention.value_at(10, 25) == float(doc.attention.rollout_map()[10, 25])


# --- playback program --------------------------------------------------------------------------
def test_build_program_cuts_spans_and_maps_positions_back():
    x = np.arange(1000, dtype=np.float32)[:, None]
    buf, segs = build_program(x, 100, [(1.0, 2.0), (5.0, 5.5)], gap_s=0.1)
    assert buf.shape == (100 + 10 + 50, 1)
    np.testing.assert_array_equal(buf[:100, 0], np.arange(100, 200))
    np.testing.assert_array_equal(buf[100:110, 0], 0)
    np.testing.assert_array_equal(buf[110:, 0], np.arange(500, 550))
    assert buffer_to_file_seconds(50, segs, 100) == pytest.approx(1.5)
    assert buffer_to_file_seconds(105, segs, 100) == pytest.approx(2.0)
    assert buffer_to_file_seconds(130, segs, 100) == pytest.approx(5.2)


def test_player_position_follows_the_stream_clock():
    """Position = buffer position of the block at the DAC + time since, mapped to file time."""
    from steve_qt.core.speech.playback import Player, Segment

    class FakeStream:
        active = True
        latency = 0.05
        time = 10.25

    p = Player()
    p._stream = FakeStream()
    p._rate = 1000
    p._buf = np.zeros((2000, 1), np.float32)
    p._segments = [Segment(0, 500, 1000), Segment(1100, 3000, 900)]
    p._block_pos, p._block_dac, p._pos = 400, 10.0, 600
    assert p.buffer_position() == pytest.approx(650)  # 400 + 0.25 s * 1000
    assert p.position() == pytest.approx((500 + 650) / 1000)
    p._block_dac = 0.0  # no clock from the device: frames written minus the latency
    assert p.buffer_position() == pytest.approx(550)
    p._block_pos, p._block_dac, p._pos = 1150, 10.2, 1250
    assert p.position() == pytest.approx((3000 + 100) / 1000)  # second piece
    p._stream = None
    assert p.position() is None
