"""Interval and phone-class aggregation, head statistics and rollout on hand-built maps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steve_qt.core.speech.alignment import Interval, Tier
from steve_qt.core.attention.analysis import (aggregate_classes, aggregate_intervals, class_of,
                                    head_statistics, interval_frames, pool_class_matrices,
                                    pool_head_stats)
from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.frames import FrameGrid

GRID = FrameGrid(320, 320, 16000)  # 20 ms frames; frame i spans [20 i, 20 i + 20) ms


def make_maps(weights, padding=None, component="encoder", grids=True) -> AttentionMaps:
    """(N, M, Q, K) weights -> AttentionMaps (float16 storage, as the adapters write it)."""
    w = np.asarray(weights, dtype=np.float64)
    n, m, q, k = w.shape
    pad = np.zeros((n, m, q)) if padding is None else np.asarray(padding, dtype=np.float64)
    return AttentionMaps(w[:, None].astype(np.float16), None, pad.astype(np.float32), component,
                         "test", 16000, k * 320, query_grid=GRID if grids else None,
                         key_grid=GRID, query_labels=None if grids else [f"t{i}" for i in range(q)])


# three intervals over six frames: a = frames 0-1, b = 2-4, c = 5
TIER = Tier("phones", [Interval(0.0, 0.04, "a"), Interval(0.04, 0.10, "b"),
                       Interval(0.10, 0.12, "c")])


def head0_and_uniform() -> tuple[np.ndarray, np.ndarray]:
    h0 = np.zeros((6, 6))
    pad0 = np.zeros(6)
    h0[0:2, 0] = 0.5          # a-frames: half to frame 0 (a), half to frame 2 (b)
    h0[0:2, 2] = 0.5
    h0[2:5, 5] = 0.6          # b-frames: 0.6 to c, 0.2 to frame 3 (b), 0.2 to padding
    h0[2:5, 3] = 0.2
    pad0[2:5] = 0.2
    h0[5, 1] = 1.0            # c-frame: all to frame 1 (a)
    h1 = np.full((6, 6), 1 / 6)  # uniform, no padding
    w = np.stack([h0, h1])[None]  # (1, 2, 6, 6)
    pad = np.stack([pad0, np.zeros(6)])[None]
    return w, pad


def test_interval_frames_follow_frame_centres():
    assert interval_frames(GRID, 6, TIER) == [(0, 2), (2, 5), (5, 6)]
    # an interval after the last frame (another window) gets no frames
    far = Tier("x", [Interval(0.0, 0.12, "a"), Interval(5.0, 6.0, "b")])
    assert interval_frames(GRID, 6, far) == [(0, 6), (0, 0)]
    # frame 5 spans [100, 120) ms: centred past an alignment ending at 105 ms, it still starts
    # inside the last interval and goes to it; with the alignment ending at 100 ms it does not
    short = Tier("x", [Interval(0.0, 0.04, "a"), Interval(0.04, 0.105, "b")])
    assert interval_frames(GRID, 6, short) == [(0, 2), (2, 6)]
    shorter = Tier("x", [Interval(0.0, 0.04, "a"), Interval(0.04, 0.10, "b")])
    assert interval_frames(GRID, 6, shorter) == [(0, 2), (2, 5)]


def test_interval_aggregation_hand_computed():
    w, pad = head0_and_uniform()
    maps = make_maps(w, pad)
    m0 = aggregate_intervals(maps, 0, 0, TIER)
    # total[i, j]: mean over i's frames of the weight summed over j's frames
    np.testing.assert_allclose(m0.total, [[0.5, 0.5, 0.0],
                                          [0.0, 0.2, 0.6],
                                          [1.0, 0.0, 0.0]], atol=1e-3)
    # mean[i, j] = total / frames of j (a: 2, b: 3, c: 1)
    np.testing.assert_allclose(m0.mean, [[0.25, 0.5 / 3, 0.0],
                                         [0.0, 0.2 / 3, 0.6],
                                         [0.5, 0.0, 0.0]], atol=1e-3)
    np.testing.assert_allclose(m0.padding, [0.0, 0.2, 0.0], atol=1e-3)
    np.testing.assert_allclose(m0.total.sum(1) + m0.padding, 1.0, atol=2e-3)
    assert m0.query_labels == ["a", "b", "c"] and m0.key_frames == [(0, 2), (2, 5), (5, 6)]

    # the uniform head sends each interval's share of frames; the head mean averages the two
    m1 = aggregate_intervals(maps, 0, 1, TIER)
    np.testing.assert_allclose(m1.total, np.tile([2 / 6, 3 / 6, 1 / 6], (3, 1)), atol=1e-3)
    mm = aggregate_intervals(maps, 0, None, TIER)
    np.testing.assert_allclose(mm.total, (m0.total + m1.total) / 2, atol=1e-3)
    np.testing.assert_allclose(mm.padding, [0.0, 0.1, 0.0], atol=1e-3)

    # a different key tier (one word over everything): the totals are the row sums
    words = Tier("words", [Interval(0.0, 0.12, "w")])
    mw = aggregate_intervals(maps, 0, 0, TIER, words)
    np.testing.assert_allclose(mw.total[:, 0], [1.0, 0.8, 1.0], atol=1e-3)
    np.testing.assert_allclose(mw.mean[:, 0], [1 / 6, 0.8 / 6, 1 / 6], atol=1e-3)


def test_cross_attention_is_refused_for_interval_matrices():
    from steve_qt.core.errors import SteveError

    w, pad = head0_and_uniform()
    maps = make_maps(w, pad, component="cross", grids=False)
    with pytest.raises(SteveError, match="tokens as queries"):
        aggregate_intervals(maps, 0, 0, TIER)


# --- rollout -----------------------------------------------------------------------------------
def test_rollout_of_identity_is_identity():
    maps = make_maps(np.eye(5)[None, None].repeat(3, axis=1))  # 1 layer, 3 heads, identity
    np.testing.assert_allclose(maps.rollout(), np.eye(5), atol=1e-6)


def test_rollout_two_layers_by_hand():
    # layer 0: head mean [[.5, .5], [0, 1]]; + I and renormalised -> [[.75, .25], [0, 1]]
    # layer 1: head mean [[0, 1], [1, 0]]; + I and renormalised -> [[.5, .5], [.5, .5]]
    l0 = np.stack([np.eye(2), [[0.0, 1.0], [0.0, 1.0]]])
    l1 = np.stack([[[0.0, 1.0], [1.0, 0.0]]] * 2)
    maps = AttentionMaps(np.stack([l0, l1])[:, None].astype(np.float16), None,
                         np.zeros((2, 2, 2), np.float32), "encoder", "test", 16000, 640,
                         query_grid=GRID, key_grid=GRID)
    np.testing.assert_allclose(maps.rollout(upto=0), [[0.75, 0.25], [0.0, 1.0]], atol=1e-6)
    # rollout = A1 @ A0 (later layers on the left); A0 @ A1 would give all 0.5
    np.testing.assert_allclose(maps.rollout(), [[0.375, 0.625], [0.375, 0.625]], atol=1e-6)
    np.testing.assert_allclose(maps.rollout().sum(-1), 1.0, atol=1e-6)
    m = aggregate_intervals(maps, "rollout", None,
                            Tier("p", [Interval(0.0, 0.02, "x"), Interval(0.02, 0.04, "y")]))
    np.testing.assert_allclose(m.total, [[0.375, 0.625], [0.375, 0.625]], atol=1e-6)
    np.testing.assert_allclose(m.padding, 0.0)


# --- head statistics ---------------------------------------------------------------------------
K = 50
PHONES50 = Tier("phones", [Interval(0.0, 0.2, ""), Interval(0.2, 0.5, "s"),
                           Interval(0.5, 1.0, "iy")])  # 10 + 15 + 25 frames


def test_head_statistics_identity_uniform_and_padding_heads():
    eye = np.eye(K)
    uniform = np.full((K, K), 1.0 / K)
    half = 0.5 * np.eye(K)  # half on itself, half to padding
    w = np.stack([eye, uniform, half])[None]  # (1, 3, K, K)
    pad = np.stack([np.zeros(K), np.zeros(K), np.full(K, 0.5)])[None]
    st = head_statistics(make_maps(w, pad), PHONES50)
    assert st.shape == (1, 3)

    # identity: distance 0, fully local at every k, entropy 0, all on its own phone, no silence
    # except its own frames (10 of 50 query frames are silent)
    assert st.mean_distance_ms[0, 0] == pytest.approx(0.0, abs=1e-9)
    for k in st.ks:
        assert st.local_share[k][0, 0] == pytest.approx(1.0, abs=1e-3)
    assert st.entropy_bits[0, 0] == pytest.approx(0.0, abs=1e-6)
    assert st.own_phone_mass[0, 0] == pytest.approx(1.0, abs=1e-3)
    assert st.silence_share[0, 0] == pytest.approx(10 / K, abs=1e-3)

    # uniform over K keys: entropy log2 K; mean |i - j| over all pairs is (K^2 - 1) / (3 K)
    assert st.entropy_bits[0, 1] == pytest.approx(math.log2(K), abs=2e-3)
    assert st.mean_distance_ms[0, 1] == pytest.approx(20.0 * (K * K - 1) / (3 * K), rel=1e-3)
    for k in st.ks:  # keys within +-k of q, counted directly
        within = np.mean([min(K - 1, q + k) - max(0, q - k) + 1 for q in range(K)]) / K
        assert st.local_share[k][0, 1] == pytest.approx(within, abs=1e-3)
    own = (10 * 10 + 15 * 15 + 25 * 25) / K / K  # each frame sends len(own phone) / K
    assert st.own_phone_mass[0, 1] == pytest.approx(own, abs=1e-3)
    assert st.silence_share[0, 1] == pytest.approx(10 / K, abs=1e-3)
    assert st.padding_mass[0, 1] == pytest.approx(0.0)

    # half to itself, half to padding: 1 bit, distance 0 (over the kept keys), local share 0.5
    assert st.entropy_bits[0, 2] == pytest.approx(1.0, abs=1e-3)
    assert st.padding_mass[0, 2] == pytest.approx(0.5)
    assert st.mean_distance_ms[0, 2] == pytest.approx(0.0, abs=1e-9)
    assert st.local_share[1][0, 2] == pytest.approx(0.5, abs=1e-3)

    rows = st.to_rows()
    assert len(rows) == 3 and rows[1]["layer"] == 0 and rows[1]["head"] == 1
    assert rows[1]["local_share_75"] == pytest.approx(1.0, abs=1e-3)
    assert list(rows[0]) == st.columns()


def test_head_statistics_without_alignment_and_for_cross_attention():
    w = np.full((1, 2, 4, K), 1.0 / K)
    st = head_statistics(make_maps(w, component="cross", grids=False))
    assert np.isnan(st.mean_distance_ms).all() and np.isnan(st.local_share[5]).all()
    assert np.isnan(st.own_phone_mass).all() and np.isnan(st.silence_share).all()
    np.testing.assert_allclose(st.entropy_bits, math.log2(K), atol=2e-3)
    assert "does not apply" in st.summary()


def test_summary_names_the_non_local_heads():
    eye, uniform = np.eye(K), np.full((K, K), 1.0 / K)
    # two layers of four heads: layer 0 has one global head (2), layer 1 has two (0 and 3)
    w = np.stack([np.stack([eye, eye, uniform, eye]), np.stack([uniform, eye, eye, uniform])])
    text = head_statistics(make_maps(w)).summary()
    print(text)
    assert "layer 0: 3 of 4 local; not local: head 2" in text
    assert "layer 1: 2 of 4 local; not local: head 0" in text and "head 3" in text
    assert "5 of 8 heads local" in text
    assert "most heads are local and one or two per layer are not" in text


def test_pooled_head_statistics_weight_by_frames():
    a = head_statistics(make_maps(np.eye(10)[None, None]))  # entropy 0, 10 frames
    b = head_statistics(make_maps(np.full((1, 1, 30, 30), 1 / 30)))  # entropy log2 30, 30 frames
    pooled = pool_head_stats([a, b])
    assert pooled.num_queries == 40
    assert pooled.entropy_bits[0, 0] == pytest.approx(30 * math.log2(30) / 40, abs=2e-3)


# --- phone classes -------------------------------------------------------------------------------
def test_class_matrix_hand_computed():
    # frames: 0-1 silence (h#), 2-4 vowel (iy), 5 consonant (s); the uniform head sends each
    # class its share of frames, head 0 is the hand-made one of the interval test
    tier = Tier("phones", [Interval(0.0, 0.04, "h#"), Interval(0.04, 0.10, "iy"),
                           Interval(0.10, 0.12, "s")])
    w, pad = head0_and_uniform()
    maps = make_maps(w, pad)
    cm = aggregate_classes(maps, 0, 0, tier, "kind")
    sil, vow, con = (cm.labels.index(class_of(x, "kind")) for x in ("h#", "iy", "s"))
    assert len({sil, vow, con}) == 3
    order = [sil, vow, con]
    np.testing.assert_allclose(cm.total[np.ix_(order, order)], [[0.5, 0.5, 0.0],
                                                                 [0.0, 0.2, 0.6],
                                                                 [1.0, 0.0, 0.0]], atol=1e-3)
    np.testing.assert_allclose(cm.query_frames[order], [2, 3, 1])
    np.testing.assert_allclose(cm.padding[order], [0.0, 0.2, 0.0], atol=1e-3)
    absent = [i for i in range(len(cm.labels)) if i not in order]
    assert np.isnan(cm.total[absent]).all() and np.isnan(cm.mean[:, absent]).all()

    # pooling an utterance with itself changes nothing; with the uniform head it averages
    # frame-weighted (both have the same frames here)
    cu = aggregate_classes(maps, 0, 1, tier, "kind")
    pooled = pool_class_matrices([cm, cu])
    np.testing.assert_allclose(pooled.total[np.ix_(order, order)],
                               (cm.total + cu.total)[np.ix_(order, order)] / 2, atol=1e-6)
    same = pool_class_matrices([cm, cm])
    np.testing.assert_allclose(same.mean[np.ix_(order, order)], cm.mean[np.ix_(order, order)])
    for feature in ("manner", "place", "voicing"):
        m = aggregate_classes(maps, "rollout", None, tier, feature)
        assert m.labels and m.total.shape == (len(m.labels),) * 2
        np.testing.assert_allclose(np.nansum(m.total, axis=1)[m.query_frames > 0], 1.0, atol=1e-3)


def test_class_order_covers_the_phone_table():
    from steve_qt.core.speech import phones
    from steve_qt.core.attention.analysis import CLASS_ORDER

    classes = {phones.SILENCE, phones.UNKNOWN}
    for table in (phones.ARPABET, phones.IPA_CONSONANTS):
        classes |= set(table.values())
    for feature, order in CLASS_ORDER.items():
        found = {getattr(c, feature) for c in classes}
        if feature == "place":
            found |= set(phones.IPA_VOWEL_PLACE.values())
        assert found <= set(order), (feature, found - set(order))
    # classes come from the normalised phone: espeak's r-coloured ɑːɹ is TIMIT's aa (+ r)
    assert class_of("ɑːɹ", "manner") == "monophthong" and class_of("aɪ", "manner") == "diphthong"
    assert class_of("", "kind") == "silence" and class_of("epi", "kind") == "silence"
