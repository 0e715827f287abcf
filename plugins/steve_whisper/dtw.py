"""``whisper.timing.dtw_cpu`` in numpy: the same path, without numba's compilation.

openai-whisper's DTW (word timings: ``whisper.transcribe(word_timestamps=True)`` and
``align.dtw_path``) is a numba function compiled at its first call in every process, which
costs seconds of CPU; the matrices it gets are small (tokens x audio frames). ``dtw_cpu`` here
does the same arithmetic: costs in float64 (numba types whisper's ``np.ones(..., float32) *
np.inf`` as float64, unlike numpy), each new cost the matrix entry plus the chosen predecessor's
cost; the predecessor chosen by the same strict comparisons (ties go to the left neighbour, as
there); the path traced back the same way. Cells
on one anti-diagonal depend only on the two before it, so each anti-diagonal is one vector step.
The result is identical to whisper's, element for element (tests compare them, ties included).

``install()`` makes ``whisper.timing.dtw`` use it on the CPU (``dtw`` looks ``dtw_cpu`` up in
its module at every call); the CUDA path is not touched.
"""

from __future__ import annotations

import numpy as np


def dtw_cpu(x: np.ndarray) -> np.ndarray:
    """(2, K) int64: row and column indices of the path through ``x`` (N, M) float64 that
    minimises the summed entries, from (0, 0) to (N - 1, M - 1)."""
    x = np.asarray(x, dtype=np.float64)
    n, m = x.shape
    cost = np.full((n + 1, m + 1), np.inf, dtype=np.float64)
    trace = np.full((n + 1, m + 1), -1, dtype=np.int8)
    cost[0, 0] = 0
    for k in range(2, n + m + 1):  # the anti-diagonal i + j = k
        i = np.arange(max(1, k - m), min(n, k - 1) + 1)
        j = k - i
        c0, c1, c2 = cost[i - 1, j - 1], cost[i - 1, j], cost[i, j - 1]
        pick0 = (c0 < c1) & (c0 < c2)
        pick1 = ~pick0 & (c1 < c0) & (c1 < c2)
        c = np.where(pick0, c0, np.where(pick1, c1, c2))
        cost[i, j] = x[i - 1, j - 1] + c
        trace[i, j] = np.where(pick0, 0, np.where(pick1, 1, 2))
    return backtrace(trace)


def backtrace(trace: np.ndarray) -> np.ndarray:
    """``whisper.timing.backtrace``: from the last cell back to (0, 0); (2, K) int64."""
    trace = np.array(trace, dtype=np.int8)
    trace[0, :] = 2
    trace[:, 0] = 1
    steps = trace.tolist()
    i, j = trace.shape[0] - 1, trace.shape[1] - 1
    result = []
    while i > 0 or j > 0:
        result.append((i - 1, j - 1))
        t = steps[i][j]
        if t == 0:
            i, j = i - 1, j - 1
        elif t == 1:
            i -= 1
        elif t == 2:
            j -= 1
        else:
            raise ValueError("Unexpected trace[i, j]")
    if not result:
        return np.empty((2, 0), dtype=np.int64)
    return np.array(result, dtype=np.int64)[::-1, :].T


#: whisper's own (numba) ``dtw_cpu``, once ``install`` has replaced it
whispers_dtw_cpu = None


def install() -> None:
    """Make ``whisper.timing`` use ``dtw_cpu`` (idempotent)."""
    global whispers_dtw_cpu
    import whisper.timing

    if whisper.timing.dtw_cpu is not dtw_cpu:
        whispers_dtw_cpu = whisper.timing.dtw_cpu
        whisper.timing.dtw_cpu = dtw_cpu
