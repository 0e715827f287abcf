"""steve_qt.core.models.buffers: result memory is used again only when nothing holds it."""

from __future__ import annotations

import gc
import io
import pickle

import numpy as np
import pytest

from steve_qt.core.models.buffers import BufferPool

MiB = 1024**2


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_memory_comes_back_once_every_array_and_view_is_gone():
    pool = BufferPool(64 * MiB)
    a = pool.empty((4, 1000, 1000), np.float16)  # 8 MB
    where = address(a)
    view = a[2, 10:20]
    del a
    b = pool.empty((4, 1000, 1000), np.float16)
    assert address(b) != where and pool.reused == 0  # the view still holds the first region
    b[:] = 1
    del view
    gc.collect()
    c = pool.empty((2, 1000, 2000), np.float16)  # same size, other shape
    assert address(c) == where and pool.reused == 1 and c.shape == (2, 1000, 2000)


def test_a_held_result_is_never_written_by_the_next_one():
    pool = BufferPool(64 * MiB)
    results = []
    for value in range(5):
        a = pool.empty((1000, 1000), np.float32)
        a[:] = value
        if value % 2 == 0:
            results.append(a)  # held: like a document that keeps its extraction
        del a
    assert [float(r.min()) for r in results] == [0, 2, 4]
    assert [float(r.max()) for r in results] == [0, 2, 4]
    assert pool.reused == 2  # 2 and 4 got the regions 1 and 3 had; 0 and 2 were held


def test_small_requests_do_not_take_a_big_region_and_the_cap_holds():
    pool = BufferPool(20 * MiB)
    big = pool.empty((16 * MiB,), np.uint8)
    del big
    small = pool.empty((MiB,), np.uint8)  # under MIN_FILL of the free 16 MiB region
    assert pool.reused == 0
    assert pool.kept_bytes() == 17 * MiB
    # beyond the cap: the free region is given back for a new one that fits
    large = pool.empty((18 * MiB,), np.uint8)
    assert pool.kept_bytes() == 19 * MiB and large.nbytes == 18 * MiB
    # nothing free and no room: a plain numpy array, not kept
    more = pool.empty((5 * MiB,), np.uint8)
    assert pool.kept_bytes() == 19 * MiB and more.nbytes == 5 * MiB
    more[:] = 7
    del small, large
    assert pool.free_bytes() == 19 * MiB and (more == 7).all()
    pool.clear()
    assert pool.kept_bytes() == 0


def test_pool_arrays_behave_like_arrays():
    pool = BufferPool(16 * MiB)
    a = pool.empty((3, 4), np.float16)
    assert a.flags.c_contiguous and a.flags.writeable and a.dtype == np.float16
    a[:] = np.arange(12).reshape(3, 4)
    assert np.array_equal(pickle.loads(pickle.dumps(a)), a)
    buf = io.BytesIO()
    np.savez(buf, a=a)
    buf.seek(0)
    assert np.array_equal(np.load(buf)["a"], a)
    assert pool.empty((0, 5), np.float32).shape == (0, 5)


@pytest.mark.parametrize("shape", [(10, 10), (2, 3, 4)])
def test_torch_writes_into_pool_memory(shape):
    torch = pytest.importorskip("torch")
    pool = BufferPool(16 * MiB)
    a = pool.empty(shape, np.float32)
    torch.from_numpy(a).fill_(3.0)
    assert (a == 3.0).all()


def test_clear_all_gives_back_every_pools_free_memory():
    from steve_qt.core.models.buffers import clear_all

    pools = [BufferPool(16 * MiB) for _ in range(2)]
    held = pools[0].empty((MiB,), np.uint8)
    dropped = pools[1].empty((2 * MiB,), np.uint8)
    del dropped
    clear_all()
    assert pools[0].kept_bytes() == MiB and pools[1].kept_bytes() == 0
    held[:] = 1
