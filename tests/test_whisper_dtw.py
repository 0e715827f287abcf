"""``steve_whisper.dtw.dtw_cpu`` gives openai-whisper's (numba) DTW path element for element."""

from __future__ import annotations

import numpy as np
import pytest

import whisper.timing

from steve_whisper import dtw


@pytest.fixture(scope="module")
def whispers():
    dtw.install()
    assert whisper.timing.dtw_cpu is dtw.dtw_cpu
    assert dtw.whispers_dtw_cpu is not None and dtw.whispers_dtw_cpu is not dtw.dtw_cpu
    return dtw.whispers_dtw_cpu


SHAPES = [(1, 1), (1, 7), (7, 1), (3, 4), (12, 184), (40, 300), (150, 1500)]


@pytest.mark.parametrize("shape", SHAPES)
def test_same_path_on_random_matrices(whispers, shape):
    rng = np.random.default_rng(sum(shape))
    x = -np.abs(rng.standard_normal(shape))
    ours, theirs = dtw.dtw_cpu(x), whispers(x)
    assert ours.dtype == theirs.dtype == np.int64
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("shape", SHAPES[1:])
def test_same_path_with_ties_and_sums_float32_would_round(whispers, shape):
    rng = np.random.default_rng(7)
    ties = rng.integers(-2, 2, size=shape).astype(np.float64)  # many equal costs
    np.testing.assert_array_equal(dtw.dtw_cpu(ties), whispers(ties))
    # sums that float32 costs would round (whisper's costs are float64 under numba)
    fine = rng.integers(0, 3, size=shape) * (1 + 2.0 ** -30) + 1e8
    np.testing.assert_array_equal(dtw.dtw_cpu(fine), whispers(fine))


def test_hand_worked_path():
    """A 2 x 3 matrix whose cheapest path is right along row 0, then down-right."""
    x = np.array([[0.0, 0.0, 5.0], [5.0, 5.0, 0.0]])
    np.testing.assert_array_equal(dtw.dtw_cpu(x), [[0, 0, 1], [0, 1, 2]])


def test_whisper_timing_dtw_uses_it(whispers, monkeypatch):
    import torch

    calls = []
    real = dtw.dtw_cpu
    monkeypatch.setattr(whisper.timing, "dtw_cpu", lambda x: calls.append(x.shape) or real(x))
    x = -torch.rand(5, 9, dtype=torch.float64)
    np.testing.assert_array_equal(whisper.timing.dtw(x), whispers(x.numpy()))
    assert calls == [(5, 9)]
