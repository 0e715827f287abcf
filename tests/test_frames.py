"""The one time base: frames <-> samples <-> seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steve_qt.core.frames import FrameGrid, conv_grid, whisper_grid

W2V_KERNELS = (10, 3, 3, 3, 3, 2, 2)
W2V_STRIDES = (5, 2, 2, 2, 2, 2, 2)


def test_wav2vec2_grid_from_conv_stack():
    g = conv_grid(W2V_KERNELS, W2V_STRIDES)
    assert (g.hop, g.receptive_field) == (320, 400)
    for n in (400, 401, 719, 720, 48000, 160000):
        # independent: apply the conv length formula layer by layer
        t = n
        for k, s in zip(W2V_KERNELS, W2V_STRIDES):
            t = (t - k) // s + 1
        assert g.frames_valid(n) == t
    assert g.frames_valid(48000) == 149 and g.frames_valid(399) == 0


def test_whisper_grid():
    g = whisper_grid()
    assert g.frames_covering(480000) == 1500
    assert g.frames_covering(46400) == math.ceil(46400 / 320) == 145
    assert g.frames_covering(46401) == 146
    assert g.span_seconds(0) == (0.0, 0.02)
    assert g.extent_seconds(150) == (0.0, 3.0)
    g1 = whisper_grid(1)
    assert g1.span_seconds(0)[0] == pytest.approx(30.0)
    assert g1.frame_at_seconds(30.5) == 25


def test_spans_tile_the_axis_and_round_trip():
    for g in (whisper_grid(), conv_grid(W2V_KERNELS, W2V_STRIDES), FrameGrid(160, 400, 8000, 800)):
        f = np.arange(200)
        a, b = g.span_seconds(f)
        np.testing.assert_allclose(a[1:], b[:-1])  # no gaps, no overlaps
        mid = (a + b) / 2
        assert np.array_equal(g.frame_at_seconds(mid), f)
        assert np.array_equal(g.frame_at_seconds(a + 1e-9), f)


def test_wav2vec2_frame_is_centred_on_its_receptive_field():
    g = conv_grid(W2V_KERNELS, W2V_STRIDES)
    # frame 0 sees samples [0, 400): centre 200 -> drawn over [40, 360)
    assert g.center_seconds(0) == pytest.approx(200 / 16000)
    assert g.span_samples(0) == (40.0, 360.0)
    # STEVE's spf = len/T drifts: at 3 s, 48000/149 = 322.1 vs the true hop 320
    assert abs(48000 / 149 * 148 - 320 * 148) / 16000 > 0.004


def test_frames_in_span():
    g = whisper_grid()
    assert g.frames_in_span(0.1, 0.2, 150) == (5, 10)
    assert g.frames_in_span(0.105, 0.11, 150) == (5, 6)  # shorter than a frame: the frame holding it
    assert g.frames_in_span(0.0, 10.0, 150) == (0, 150)
