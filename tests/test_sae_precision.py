"""SAE training precision and device: bfloat16 mixed precision on the CPU trains an SAE whose
reconstruction error is within a stated tolerance of float32's on the same rows and seed, and
the precision option is checked; CUDA (batches on the device, bfloat16 by default) where there
is one."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from steve_qt.core.errors import SteveError
from steve_qt.core.features.sae_train import (ShuffleBuffer, TrainConfig, resolve_precision,
                                              shuffled_batches, train_sae)
from tests.test_sae import numpy_encode, planted

CFG = dict(kind="topk", expansion=4, k=3, epochs=4, batch=128, lr=3e-3, shuffle_rows=1024,
           dead_after=2000)
NO_CUDA = "no CUDA device on this machine"


def numpy_mse(sae, x) -> float:
    """Mean squared reconstruction error per row, encoded and decoded in float64 numpy."""
    W_enc, b_enc, W_dec, b_dec = (getattr(sae, n).numpy().astype(np.float64)
                                  for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    codes = numpy_encode(x, W_enc, b_enc, b_dec, sae.architecture, sae.k)
    return float((((codes @ W_dec + b_dec) - x) ** 2).sum(1).mean())


def files_of(x, n=500):
    return [x[i:i + n] for i in range(0, len(x), n)]


@pytest.mark.parametrize("kind,extra", [("topk", {}), ("l1", {"l1": 3.0})])
def test_bfloat16_on_cpu_trains_within_tolerance_of_float32(tmp_path, kind, extra):
    x, _ = planted(n=6000)
    train, held = files_of(x[:5000]), x[5000:]
    cfg = {**CFG, "kind": kind, **extra}
    f32 = train_sae(lambda e: iter(train), 16, TrainConfig(**cfg, precision="float32"),
                    tmp_path / "f32")
    bf16 = train_sae(lambda e: iter(train), 16, TrainConfig(**cfg, precision="bfloat16"),
                     tmp_path / "bf16")
    assert json.loads((tmp_path / "bf16" / "training.json").read_text())["precision"] == \
        "bfloat16"
    # autocast ran: bfloat16's 8-bit significand changes the weights (this check can fail)
    assert not torch.equal(f32.W_dec, bf16.W_dec)
    mse32, mse16 = numpy_mse(f32, held), numpy_mse(bf16, held)
    total = float(((held - held.mean(0)) ** 2).sum(1).mean())
    assert mse32 < 0.5 * total  # float32 learnt something: the comparison below means something
    # bfloat16 rounds each product's inputs to 2^-9 relative and the two SAEs drift apart over
    # 160 Adam steps (decoder entries by up to 0.04 here), but the held-out error they reach
    # differs by less than 3 % of float32's (0.6 % for topk, 0.02 % for l1 here)
    assert abs(mse16 - mse32) <= 0.03 * mse32, (mse16, mse32, total)


def test_auto_is_float32_on_the_cpu_and_bit_identical_to_it(tmp_path):
    x, _ = planted(n=1500)
    files = files_of(x, 300)
    cfg = {**CFG, "epochs": 1}
    assert resolve_precision("auto", "cpu") == "float32"
    a = train_sae(lambda e: iter(files), 16, TrainConfig(**cfg, precision="auto"), tmp_path / "a")
    b = train_sae(lambda e: iter(files), 16, TrainConfig(**cfg, precision="float32"),
                  tmp_path / "b")
    for n in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(a, n), getattr(b, n)), n


@pytest.mark.parametrize("precision,device,message", [
    ("half", "cpu", "unknown --precision 'half'"),
    ("float16", "cpu", "--precision float16 needs a CUDA device"),
])
def test_bad_precision_is_one_steve_error(tmp_path, precision, device, message):
    x, _ = planted(n=300)
    with pytest.raises(SteveError, match=re.escape(message)):
        train_sae(lambda e: iter([x]), 16, TrainConfig(**CFG, precision=precision),
                  tmp_path / "o", device=device)
    assert not (tmp_path / "o").exists()


def test_shuffle_buffer_batches_equal_a_numpy_permutation():
    """The buffer's batches are the rows in the order of its generator's permutation (an
    independent numpy indexing of the concatenated rows)."""
    rng = np.random.default_rng(1)
    files = [rng.normal(size=(n, 3)).astype(np.float32) for n in (40, 30, 50)]
    got = list(shuffled_batches(files, 16, 64, seed=2, epoch=1))
    gen = np.random.default_rng([2, 1])
    first = np.concatenate(files[:2])[gen.permutation(70)]  # 70 rows >= 64: one fill of 4 batches
    rest = np.concatenate([first[64:], files[2]])[gen.permutation(56)]
    want = [first[i:i + 16] for i in range(0, 64, 16)] + [rest[i:i + 16] for i in range(0, 56, 16)]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.device.type == "cpu" and np.array_equal(g.numpy(), w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_shuffle_buffer_holds_rows_on_the_device_same_batches():
    rng = np.random.default_rng(1)
    files = [rng.normal(size=(n, 3)).astype(np.float32) for n in (40, 30, 50)]
    cpu = list(shuffled_batches(files, 16, 64, seed=2))
    buf = ShuffleBuffer(16, 64, 2, 0, device="cuda")
    gpu = [b for i, f in enumerate(files) for b in buf.add(i, f)] + list(buf.finish())
    assert all(b.device.type == "cuda" for b in gpu)
    assert buf.carry is None or buf.carry.device.type == "cuda"
    for a, b in zip(cpu, gpu, strict=True):
        assert torch.equal(a, b.cpu())  # copies and indexing only: exact


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)
def test_cuda_auto_precision_is_bfloat16_within_tolerance(tmp_path):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this CUDA device has no bfloat16")
    x, _ = planted(n=6000)
    train, held = files_of(x[:5000]), x[5000:]
    f32 = train_sae(lambda e: iter(train), 16, TrainConfig(**CFG, precision="float32"),
                    tmp_path / "f32")
    amp = train_sae(lambda e: iter(train), 16, TrainConfig(**CFG), tmp_path / "amp",
                    device="cuda")
    assert json.loads((tmp_path / "amp" / "training.json").read_text())["precision"] == \
        "bfloat16"
    mse32 = numpy_mse(f32, held)
    assert abs(numpy_mse(amp, held) - mse32) <= 0.03 * mse32
