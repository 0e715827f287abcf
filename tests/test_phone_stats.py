"""Phone statistics with support: AUROC against sklearn, support counts by brute force, the
TIMIT 61 -> 39 fold against Lee & Hon's table."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from steve_qt.core.features.phone_stats import SupportRule, auroc_by_label, label_support
from steve_qt.core.speech.phone_sets import TIMIT_39, normalise_phone

TIMIT_61 = ("iy ih eh ey ae aa aw ay ah ao oy ow uh uw ux er ax ix axr ax-h jh ch b d g p t k dx "
            "s sh z zh f th v dh m n ng em nx en eng l r w y hh hv el bcl dcl gcl pcl tcl kcl q "
            "pau epi h#").split()


def test_auroc_equals_sklearn_with_ties_and_left_out_frames():
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal((500, 3)), 1)  # many ties
    labels = rng.integers(-1, 4, 500)
    got = auroc_by_label(scores, labels, 5)
    keep = labels >= 0
    for lab in range(4):
        for f in range(3):
            want = roc_auc_score(labels[keep] == lab, scores[keep, f])
            assert abs(got[lab, f] - want) < 1e-12
    assert np.isnan(got[4]).all()  # no frames


def test_support_counts_frames_and_files():
    labels = np.array([0, 0, 1, 1, 1, -1, 0])
    files = np.array([0, 1, 1, 1, 2, 2, 1])
    frames, nfiles = label_support(labels, files, 3)
    assert list(frames) == [3, 3, 0] and list(nfiles) == [2, 2, 0]
    rule = SupportRule(min_frames=3, min_files=2)
    assert list(rule.ok(frames, nfiles)) == [True, True, False]
    assert not SupportRule().ok(1, 1)


def test_timit_61_fold_to_lee_hon_39():
    assert len(TIMIT_61) == 61 and len(set(TIMIT_61)) == 61
    folded = {normalise_phone(p) for p in TIMIT_61} - {None}
    assert folded == set(TIMIT_39) and len(TIMIT_39) == 39
    assert normalise_phone("q") is None
    # Lee & Hon's merged groups
    groups = [("aa", "ao"), ("ah", "ax", "ax-h"), ("er", "axr"), ("hh", "hv"), ("ih", "ix"),
              ("l", "el"), ("m", "em"), ("n", "en", "nx"), ("ng", "eng"), ("sh", "zh"),
              ("uw", "ux"), ("sil", "pcl", "tcl", "kcl", "bcl", "dcl", "gcl", "h#", "pau", "epi")]
    for g in groups:
        assert {normalise_phone(p) for p in g} == {g[0]}, g
    assert normalise_phone("AA1") == "aa" and normalise_phone("ZH0") == "sh"
    assert normalise_phone("EPI") == "sil" and normalise_phone("") == "sil"


def brute_ranks(column) -> list[float]:
    """Average ranks from 1 by their definition: 1 + the number of smaller values + half the
    number of other equal ones."""
    return [1 + sum(w < v for w in column) + (sum(w == v for w in column) - 1) / 2
            for v in column]


def test_average_ranks_equal_their_definition_and_scipy():
    from scipy.stats import rankdata

    from steve_qt.core.features.phone_stats import average_ranks

    rng = np.random.default_rng(3)
    # float16 values (the radix path): ties, both zeros, infinities, the extremes
    x = (rng.integers(-12, 13, size=(300, 4)) / 8).astype(np.float16).astype(np.float64)
    x[::5, 0] = -0.0
    x[1::5, 0] = 0.0
    x[3, 1], x[4, 1], x[5, 2], x[6, 2] = np.inf, -np.inf, 65504.0, float(np.float16(-6e-8))
    # other float64 values (the sorting path)
    y = np.round(rng.standard_normal((300, 3)), 2) + 1e-9
    assert np.array_equal(x.astype(np.float16), x)  # all float16 values
    for a in (x, y, x[:1], x[:0], y[:2]):
        got = average_ranks(a)
        assert got.shape == a.shape and got.dtype == np.float64
        for f in range(a.shape[1]):
            assert got[:, f].tolist() == brute_ranks(a[:, f].tolist())
        np.testing.assert_array_equal(got, rankdata(a, axis=0))
    z = y.copy()
    z[7, 1] = np.nan
    got = average_ranks(z)
    assert np.isnan(got[:, 1]).all()
    assert got[:, [0, 2]].tolist() == average_ranks(y[:, [0, 2]]).tolist()


def test_auroc_of_float16_scores_equals_sklearn():
    """The activation cache's values (float16, many ties, signed zeros) take the radix path."""
    rng = np.random.default_rng(4)
    scores = np.maximum(rng.standard_normal((2000, 5)), -0.17).astype(np.float16).astype(np.float32)
    scores[::3, 2] = -0.0
    labels = rng.integers(-1, 7, 2000)
    labels[labels == 5] = 6  # a label without frames
    got = auroc_by_label(scores, labels, 8)
    keep = labels >= 0
    for lab in range(8):
        for f in range(5):
            y = labels[keep] == lab
            if 0 < y.sum() < y.size:
                assert abs(got[lab, f] - roc_auc_score(y, scores[keep, f])) < 1e-12
            else:
                assert np.isnan(got[lab, f])
    one = auroc_by_label(scores[:, 3], labels, 8)
    np.testing.assert_array_equal(one, got[:, 3])
