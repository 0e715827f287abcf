"""The embedded model is converted once into the user cache and loaded from there."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from steve_whisper import loading, statecache


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STEVE_QT_CACHE", str(tmp_path))
    return tmp_path / "models"


def _converted(monkeypatch) -> list:
    """Record every CTranslate2 conversion."""
    calls = []
    real = loading.convert_ct2

    def spy(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(loading, "convert_ct2", spy)
    return calls


def _state(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype == torch.float32, k
        assert torch.equal(a[k], b[k]), k


def test_second_load_uses_the_cache_and_equals_the_first(cache, monkeypatch):
    calls = _converted(monkeypatch)
    first = loading.load_embedded()
    assert len(calls) == 1
    path = statecache.state_path(loading.EMBEDDED_SHA256)
    assert path.parent == cache and path.exists()
    assert path.name == f"whisper-{loading.EMBEDDED_SHA256}.safetensors"
    second = loading.load_embedded()
    assert len(calls) == 1  # read from the cache, not converted again
    _assert_same_state(_state(first.model), _state(second.model))
    # independent of the cache code: the CT2 conversion straight from model.bin, and the
    # buffers openai-whisper's own constructor makes
    dims, state = loading.convert_ct2(loading.embedded_model_dir() / "model.bin")
    _assert_same_state(state, _state(second.model))
    plain = loading.Whisper(dims)
    assert torch.equal(plain.decoder.mask, second.model.decoder.mask)
    assert second.alignment_heads == first.alignment_heads
    assert not any(t.is_meta for t in (*second.model.parameters(), *second.model.buffers()))
    # the hash of model.bin is remembered by size and time: not recomputed on the second load
    memo = json.loads((cache / "sha256.json").read_text())
    assert [v[2] for v in memo.values()] == [loading.EMBEDDED_SHA256]


@pytest.mark.parametrize("damage", ["truncated", "flipped byte", "garbage", "empty"])
def test_a_damaged_cache_file_is_recreated(cache, monkeypatch, damage):
    first = loading.load_embedded()
    path = statecache.state_path(loading.EMBEDDED_SHA256)
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:len(data) // 2]
    elif damage == "flipped byte":  # in the tensor bytes, far from the header
        data[len(data) * 2 // 3] ^= 0x10
    elif damage == "garbage":
        data[:64] = b"\xff" * 64
    else:
        data = b""
    path.write_bytes(bytes(data))
    assert statecache.read_state(path) is None
    calls = _converted(monkeypatch)
    again = loading.load_embedded()
    assert len(calls) == 1  # converted again
    assert statecache.read_state(path) is not None  # and written again
    _assert_same_state(_state(first.model), _state(again.model))


def test_a_changed_model_bin_is_hashed_again(cache, tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes(b"one")
    import hashlib

    assert statecache.file_sha256(f) == hashlib.sha256(b"one").hexdigest()
    f.write_bytes(b"three")  # another size
    assert statecache.file_sha256(f) == hashlib.sha256(b"three").hexdigest()


def test_an_unwritable_cache_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STEVE_QT_CACHE", str(blocker))
    with pytest.warns(UserWarning, match="cannot"):
        loaded = loading.load_embedded()
    assert loaded.model.dims.n_audio_layer == 4


def test_checksum_matches_a_plain_sum_of_words():
    state = {"b": torch.tensor([1.0, -2.0]), "a": torch.tensor([[0.5]])}
    words = np.concatenate([np.frombuffer(t.numpy().tobytes(), "<u4") for t in state.values()])
    assert statecache.checksum(state) == int(sum(int(w) for w in words)) % 2**64


def test_building_without_random_initialisation_gives_the_initialised_models_tensors():
    """``build_model`` skips the layers' random initialisation (it draws no random numbers)
    and ends with every parameter and buffer, persistent or not, equal to openai-whisper's own
    constructor followed by a plain ``load_state_dict``."""
    import threading

    dims, state = loading.convert_ct2(loading.embedded_model_dir() / "model.bin")
    torch.manual_seed(0)
    built = statecache.build_model(dims, state)
    after_build = torch.rand(4)
    torch.manual_seed(0)
    assert torch.equal(after_build, torch.rand(4))  # no random number was drawn
    plain = loading.Whisper(dims)
    plain.load_state_dict(state)
    ours = dict(built.named_parameters()) | dict(built.named_buffers())
    theirs = dict(plain.named_parameters()) | dict(plain.named_buffers())
    assert ours.keys() == theirs.keys() and "decoder.mask" in ours
    for k in ours:
        a, b = ours[k], theirs[k]
        if a.is_sparse:
            a, b = a.to_dense(), b.to_dense()
        assert a.dtype == b.dtype and torch.equal(a, b), k

    # meanwhile other threads initialise their layers as ever, and afterwards this one does
    originals = {c: c.__dict__["reset_parameters"] for c in statecache._INITIALISED}
    torch.manual_seed(1)
    expected = torch.nn.Linear(3, 3).weight.detach().clone()
    other = []

    def build_elsewhere():
        torch.manual_seed(1)
        other.append(torch.nn.Linear(3, 3).weight.detach().clone())

    with statecache._without_random_init():
        t = threading.Thread(target=build_elsewhere)
        t.start()
        t.join()
    assert torch.equal(other[0], expected)
    assert {c: c.__dict__["reset_parameters"] for c in statecache._INITIALISED} == originals
    torch.manual_seed(1)
    assert torch.equal(torch.nn.Linear(3, 3).weight, expected)
