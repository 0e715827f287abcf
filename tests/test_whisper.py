"""Whisper adapter: conversion of the embedded model, capture checked against whisper's own path."""

from __future__ import annotations

import math
import urllib.error

import numpy as np
import pytest
import torch
import whisper
from whisper.model import disable_sdpa

from steve_qt.core.speech.audio import load_audio
from steve_qt.core.errors import Cancelled, SteveError


# --- the embedded model ----------------------------------------------------------------------
def test_ct2_conversion_matches_whisper_architecture():
    from steve_whisper import ct2, loading

    _spec, variables = ct2.read_ct2(loading.embedded_model_dir() / "model.bin")
    dims = ct2.whisper_dims(variables)
    assert dims["n_audio_layer"] == 4 and dims["n_text_layer"] == 4  # not fooled by layer_norm
    ref = whisper.model.Whisper(whisper.model.ModelDimensions(**dims)).state_dict()
    sd = ct2.whisper_state_dict(variables)
    assert set(sd) == set(ref)
    assert all(tuple(sd[k].shape) == tuple(ref[k].shape) for k in sd)
    # whisper's key projections have no bias: the dropped CT2 key-bias blocks must be zero
    for i in range(4):
        b = variables[f"encoder/layer_{i}/self_attention/linear_0/bias"]
        assert not np.any(ct2._split3(b)[1])
        b = variables[f"decoder/layer_{i}/attention/linear_1/bias"]
        assert not np.any(ct2._split2(b)[0])


def test_embedded_model_hash_is_checked(monkeypatch):
    from steve_whisper import loading

    monkeypatch.setattr(loading, "EMBEDDED_SHA256", "0" * 64)
    with pytest.raises(SteveError, match="not the expected one"):
        loading.load_embedded()


def test_embedded_transcribes_dark_suit(dark_suit_extraction):
    _audio, ex = dark_suit_extraction
    print("transcript:", ex.transcript.text)
    assert "dark suit" in ex.transcript.text.lower()
    assert ex.transcript.words and ex.transcript.words[0].text.lower().startswith("she")


# --- shapes and padding -------------------------------------------------------------------------
def test_encoder_shapes_and_padding_mass(dark_suit_extraction):
    audio, ex = dark_suit_extraction
    m = ex.maps["encoder"]
    t = math.ceil(len(audio.samples) / 320)
    assert m.weights.shape == (4, 1, 6, t, t) and m.scores.shape == m.weights.shape
    assert m.weights.dtype == np.float16 and m.scores.dtype == np.float16
    assert m.padding_mass.shape == (4, 6, t)
    rows = m.weights.astype(np.float64).sum(-1)[:, 0] + m.padding_mass
    np.testing.assert_allclose(rows, 1.0, atol=2e-3)  # float16 storage of up to 1500 terms
    assert m.padding_mass.max() > 0.05  # some heads really do look at the padding
    assert m.spf == 320 and m.sample_rate == 16000 and m.num_samples == len(audio.samples)


def test_cross_and_decoder_shapes(dark_suit_extraction):
    audio, ex = dark_suit_extraction
    t = math.ceil(len(audio.samples) / 320)
    cross, dec = ex.maps["cross"], ex.maps["decoder"]
    q = len(ex.transcript.tokens)
    assert cross.weights.shape == (4, 1, 6, q, t)
    assert dec.weights.shape == (4, 1, 6, q, q)
    assert cross.query_labels[0] == "<|startoftranscript|>" and cross.query_labels[-1] == "<|endoftext|>"
    np.testing.assert_allclose(cross.weights.astype(np.float64).sum(-1)[:, 0] + cross.padding_mass,
                               1.0, atol=2e-3)
    # causal: no weight above the diagonal, rows sum to 1
    w = dec.weights.astype(np.float32)
    assert np.all(np.triu(w[0, 0, 0], 1) == 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=2e-3)
    assert ex.meta["alignment_heads"] == [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]


# --- independent checks -----------------------------------------------------------------------
def _whisper_qks(model, mel, tokens):
    """whisper's own explicit attention path (SDPA off): pre-softmax qk of every block."""
    qks = {"encoder": [], "cross": [], "decoder": []}
    hooks = []
    for b in model.encoder.blocks:
        hooks.append(b.attn.register_forward_hook(lambda _m, _i, o: qks["encoder"].append(o[1][0])))
    for b in model.decoder.blocks:
        hooks.append(b.attn.register_forward_hook(lambda _m, _i, o: qks["decoder"].append(o[1][0])))
        hooks.append(b.cross_attn.register_forward_hook(lambda _m, _i, o: qks["cross"].append(o[1][0])))
    try:
        with torch.no_grad(), disable_sdpa():
            model(mel[None], torch.tensor(tokens)[None])
    finally:
        for h in hooks:
            h.remove()
    return qks


def test_scores_match_whispers_own_attention(whisper_adapter, dark_suit_extraction):
    audio, ex = dark_suit_extraction
    mel = whisper_adapter.mel(audio.samples)
    qks = _whisper_qks(whisper_adapter.model, mel, ex.transcript.tokens)
    t = ex.maps["encoder"].num_keys
    for comp in ("encoder", "cross", "decoder"):
        m = ex.maps[comp]
        for layer in range(4):
            ref = qks[comp][layer].float()  # (M, Q, 1500) or (M, Q, Q) with the causal mask
            ref_w = torch.softmax(ref, dim=-1).numpy()
            nq = m.num_queries
            ref_s = ref[:, :nq, :m.num_keys].numpy()
            ours_s = m.scores[layer, 0].astype(np.float32)
            finite = np.isfinite(ref_s)
            assert np.array_equal(finite, np.isfinite(ours_s))
            np.testing.assert_allclose(ours_s[finite], ref_s[finite], atol=0.02, rtol=2e-3)
            np.testing.assert_allclose(m.weights[layer, 0].astype(np.float32),
                                       ref_w[:, :nq, :m.num_keys], atol=1e-3)
            if comp != "decoder":
                np.testing.assert_allclose(m.padding_mass[layer],
                                           ref_w[:, :nq, m.num_keys:].sum(-1), atol=1e-4)
    assert ex.maps["cross"].num_keys == t


def test_one_head_by_hand_from_captured_query_and_key(whisper_adapter, dark_suit):
    """Recompute layer 2, head 3 from the captured q/k projections with plain numpy."""
    from steve_whisper.capture import QKCapture

    audio = load_audio(dark_suit)
    t = math.ceil(len(audio.samples) / 320)
    mel = whisper_adapter.mel(audio.samples)
    enc = whisper_adapter.model.encoder
    with torch.no_grad(), QKCapture([b.attn for b in enc.blocks], 6, keep_queries=t,
                                    keep_keys=t, raw={}) as cap:
        enc(mel[None])
    q, k = (x.numpy().astype(np.float64) for x in cap.raw[2])  # (1500, 384) each
    d = 64
    qh, kh = q[:t, 3 * d:4 * d], k[:, 3 * d:4 * d]
    scores = qh @ kh.T / math.sqrt(d)
    e = np.exp(scores - scores.max(1, keepdims=True))
    w = e / e.sum(1, keepdims=True)
    layer = cap.layers[2]
    np.testing.assert_allclose(layer.scores[3].float().numpy(), scores[:, :t], atol=0.02, rtol=2e-3)
    np.testing.assert_allclose(layer.weights[3].float().numpy(), w[:, :t], atol=1e-3)
    np.testing.assert_allclose(layer.padding[3].numpy(), w[:, t:].sum(1), atol=1e-5)


def _capture_all(adapter, mel, tokens, keep, use_lse=True):
    """Encoder, cross and decoder capture of one teacher-forced pass; also the model's outputs."""
    from steve_whisper.capture import QKCapture

    model, n = adapter.model, adapter.dims.n_audio_head
    with torch.no_grad(), \
            QKCapture([b.attn for b in model.encoder.blocks], n, keep_queries=keep,
                      keep_keys=keep, use_lse=use_lse) as enc, \
            QKCapture([b.cross_attn for b in model.decoder.blocks], n, keep_keys=keep,
                      use_lse=use_lse) as cross, \
            QKCapture([b.attn for b in model.decoder.blocks], n, causal=True,
                      use_lse=use_lse) as dec:
        logits = model(mel[None], torch.tensor(tokens)[None])
    return (enc, cross, dec), logits


def test_flash_lse_capture_equals_full_softmax_and_leaves_the_model_alone(
        whisper_adapter, dark_suit_extraction):
    """The fast path (the flash kernel's log-sum-exp normalises only the kept T x T block) and the
    public-ops path (softmax over all 1500 keys, then crop) give the same numbers, and neither
    changes what the model computes."""
    audio, ex = dark_suit_extraction
    mel = whisper_adapter.mel(audio.samples)
    tokens, keep = ex.transcript.tokens, ex.maps["encoder"].num_keys
    fast, logits = _capture_all(whisper_adapter, mel, tokens, keep)
    slow, logits_slow = _capture_all(whisper_adapter, mel, tokens, keep, use_lse=False)
    with torch.no_grad():
        bare = whisper_adapter.model(mel[None], torch.tensor(tokens)[None])
    assert torch.equal(logits, bare) and torch.equal(logits_slow, bare)
    for f, s in zip(fast, slow):
        assert (f.path, s.path) == ("lse", "softmax")  # the pinned torch has the kernel
        (fw, fs, fp), (sw, ss, sp) = f.arrays(), s.arrays()
        np.testing.assert_allclose(fw.astype(np.float32), sw.astype(np.float32), rtol=2e-3,
                                   atol=1e-6)  # one float16 ulp
        np.testing.assert_allclose(fs.astype(np.float32), ss.astype(np.float32), rtol=2e-3,
                                   atol=1e-3)
        np.testing.assert_allclose(fp, sp, atol=1e-5)
        assert np.array_equal(np.isinf(fs), np.isinf(ss))  # the same causal mask
    assert fast[0].arrays()[2].max() > 0.05 and not fast[2].arrays()[2].any()
    for b in whisper_adapter.model.decoder.blocks:  # the wrappers are gone
        assert "qkv_attention" not in b.attn.__dict__ and "qkv_attention" not in vars(b.cross_attn)


def test_capture_falls_back_when_the_kernel_refuses(whisper_adapter, monkeypatch):
    import steve_whisper.capture as capture

    def refuse(*_a, **_k):
        raise RuntimeError("no flash kernel for this input")

    monkeypatch.setattr(capture, "_flash_op", lambda: refuse)
    mel = whisper_adapter.mel(np.zeros(16000, np.float32))
    enc = whisper_adapter.model.encoder
    with torch.no_grad():
        bare = enc(mel[None])
        with capture.QKCapture([b.attn for b in enc.blocks], 6, keep_queries=50,
                               keep_keys=50) as cap:
            assert torch.equal(enc(mel[None]), bare)
    assert cap.path == "softmax" and cap.weights.shape == (4, 1, 6, 50, 50)
    rows = cap.weights.float().sum(-1)[:, 0] + cap.padding
    np.testing.assert_allclose(rows.numpy(), 1.0, atol=2e-3)


# --- windows, cancellation, errors ---------------------------------------------------------------
def test_long_audio_is_split_into_30s_windows(whisper_adapter):
    rng = np.random.default_rng(0)
    audio = (0.01 * rng.standard_normal(16000 * 31)).astype(np.float32)
    assert whisper_adapter.num_windows(len(audio)) == 2
    ex = whisper_adapter.extract(audio, components=["encoder"], window=1)
    m = ex.maps["encoder"]
    assert (m.window, m.num_windows) == (1, 2)
    assert m.num_keys == math.ceil(16000 / 320) == 50
    assert m.key_grid.offset == 480000
    assert m.key_extent_seconds() == pytest.approx((30.0, 31.0))
    with pytest.raises(SteveError, match="window 2 does not exist"):
        whisper_adapter.extract(audio, window=2)


def test_cancel_stops_extraction(whisper_adapter):
    audio = np.zeros(16000, dtype=np.float32)
    with pytest.raises(Cancelled):
        whisper_adapter.extract(audio, should_cancel=lambda: True)


def test_encoder_progress_names_layers_from_0(whisper_adapter):
    seen = []
    whisper_adapter.extract(np.zeros(8000, dtype=np.float32), components=("encoder",),
                            progress=lambda done, total, what: seen.append(what))
    assert seen[:4] == [f"encoder layer {i}" for i in range(4)]  # tiny.en: layers 0-3


def test_named_model_offline_names_the_embedded_alternative(monkeypatch, tmp_path):
    from steve_whisper import loading

    def no_network(*_a, **_k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(SteveError, match="embedded model works offline"):
        loading.load("base")


def test_unknown_model_name():
    from steve_whisper import loading

    with pytest.raises(SteveError, match="unknown Whisper model 'huge'"):
        loading.load("huge")


def test_checkpoint_errors(tmp_path):
    from steve_whisper import loading

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(SteveError, match="not a PyTorch checkpoint") as err:
        loading.load(str(text))
    assert str(text) in str(err.value)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    evil = tmp_path / "evil.pt"
    torch.save({"dims": {}, "model_state_dict": {}, "x": Evil()}, evil)
    with pytest.raises(SteveError, match="refused"):
        loading.load(str(evil))

    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(SteveError, match="not an openai-whisper checkpoint"):
        loading.load(str(plain))


def test_local_checkpoint_round_trip(whisper_adapter, tmp_path):
    """A .pt saved in openai-whisper's format loads through the adapter (weights_only)."""
    from steve_whisper import WhisperAdapter

    model = whisper_adapter.model
    path = tmp_path / "tiny_en.pt"
    torch.save({"dims": model.dims.__dict__, "model_state_dict": model.state_dict()}, path)
    ad = WhisperAdapter(str(path))
    assert ad.model_id == "whisper:tiny_en.pt"
    p = next(iter(ad.model.state_dict().values()))
    assert torch.equal(p, next(iter(model.state_dict().values())))


def test_maps_come_from_the_input_transcribe_uses(whisper_adapter, dark_suit):
    """whisper.transcribe zero-pads the log-mel after normalisation; so must the adapter."""
    from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram

    audio = load_audio(dark_suit).samples
    full = log_mel_spectrogram(audio, 80, padding=N_SAMPLES)
    n = full.shape[-1] - N_FRAMES
    mel = whisper_adapter.mel(audio)
    assert mel.shape == (80, 3000)
    assert torch.equal(mel[:, :n], full[:, :n]) and not mel[:, n:].any()


MEL_ULPS = 4  # allowed float32 rounding of the log-mel where the two STFTs differ in length


@pytest.mark.parametrize("n", [0, 1, 159, 160, 401, 48123, 160000, 479999, 480000])
@pytest.mark.parametrize("kind", ["noise", "loud end", "silence"])
def test_short_padded_mel_equals_30s_padding_within_float32_rounding(whisper_adapter, n, kind):
    """The adapter appends a few hundred zeros, transcribe 30 s: the same mel within 4 ulps,
    also when the loudest frame is the one that reaches past the end (it sets the normalisation).

    Not bit for bit: the two STFTs run over inputs of different lengths, and the FFT library's
    rounding depends on the length and the CPU's kernels (on an AMD EPYC inputs under 1000
    samples differed by 1 ulp, 6e-8 to 1.2e-7; elsewhere they were equal). The padding frames
    are exactly zero in both: that part is the same operation."""
    from whisper.audio import N_FRAMES, N_SAMPLES, log_mel_spectrogram

    x = (np.random.default_rng(n).standard_normal(n) * 0.05).astype(np.float32)
    if kind == "loud end":
        x[-60:] *= 200.0
    elif kind == "silence":
        x[:] = 0.0
    full = log_mel_spectrogram(torch.from_numpy(x), 80, padding=N_SAMPLES)
    content = full.shape[-1] - N_FRAMES
    got = whisper_adapter.mel(x).numpy()
    want = full[:, :content].numpy()
    assert got.shape == (80, N_FRAMES) and not got[:, content:].any()
    ulps = np.abs(got[:, :content] - want) / np.spacing(np.maximum(np.abs(got[:, :content]),
                                                                    np.abs(want)))
    assert ulps.size == 0 or ulps.max() <= MEL_ULPS, f"{ulps.max():.1f} ulps"


def test_mel_tolerance_sees_a_real_difference(whisper_adapter):
    """The ulp check above fails for a mel that is off by far more than rounding."""
    x = (np.random.default_rng(1).standard_normal(16000) * 0.05).astype(np.float32)
    a = whisper_adapter.mel(x).numpy()[:, :50]
    b = whisper_adapter.mel(x * 1.001).numpy()[:, :50]
    ulps = np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))
    assert ulps.max() > MEL_ULPS
