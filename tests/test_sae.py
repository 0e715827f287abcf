"""Sparse autoencoders: SAELens-format files, encoding checked by hand in numpy, training
recovers planted sparse directions, resumable checkpoints, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as np_load_file
from safetensors.numpy import save_file as np_save_file

from steve_qt.core.errors import SteveError
from steve_qt.core.features.sae import SAE, load_sae, save_sae
from steve_qt.core.features.sae_train import CHECKPOINT, TrainConfig, evaluate, train_sae


def random_sae(d_in=6, d_sae=10, architecture="topk", k=3, seed=0) -> SAE:
    g = torch.Generator().manual_seed(seed)
    return SAE(W_enc=torch.randn(d_in, d_sae, generator=g), b_enc=torch.randn(d_sae, generator=g),
               W_dec=torch.randn(d_sae, d_in, generator=g), b_dec=torch.randn(d_in, generator=g),
               architecture=architecture, k=k if architecture == "topk" else None,
               hook_name="encoder.blocks.2", model_name="whisper:tiny.en")


def numpy_encode(x, W_enc, b_enc, b_dec, architecture, k, apply_b_dec=True):
    """SAELens's encoding written out row by row with plain numpy (no shared code)."""
    out = np.zeros((len(x), W_enc.shape[1]))
    for i, row in enumerate(x.astype(np.float64)):
        pre = (row - (b_dec if apply_b_dec else 0)) @ W_enc + b_enc
        if architecture == "standard":
            out[i] = np.maximum(pre, 0)
        else:
            keep = np.argsort(-pre, kind="stable")[:k]
            out[i, keep] = np.maximum(pre[keep], 0)
    return out


@pytest.mark.parametrize("architecture", ["topk", "standard"])
def test_encode_decode_match_numpy_by_hand(architecture):
    sae = random_sae(architecture=architecture)
    x = np.random.default_rng(1).normal(size=(7, 6)).astype(np.float32)
    codes = sae.encode(x)
    want = numpy_encode(x, sae.W_enc.numpy(), sae.b_enc.numpy(), sae.b_dec.numpy(),
                        architecture, 3)
    np.testing.assert_allclose(codes, want, rtol=1e-5, atol=1e-5)
    if architecture == "topk":
        assert ((codes > 0).sum(1) <= 3).all() and ((codes > 0).sum(1) > 0).any()
    np.testing.assert_allclose(sae.decode(codes), codes @ sae.W_dec.numpy() + sae.b_dec.numpy(),
                               rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_is_exact(tmp_path):
    sae = random_sae()
    save_sae(sae, tmp_path / "sae")
    back = load_sae(tmp_path / "sae")
    for n in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(back, n), getattr(sae, n)), n
    assert (back.architecture, back.k, back.hook_name, back.model_name, back.d_in, back.d_sae) \
        == ("topk", 3, "encoder.blocks.2", "whisper:tiny.en", 6, 10)
    x = np.random.default_rng(2).normal(size=(5, 6)).astype(np.float32)
    assert np.array_equal(back.encode(x), sae.encode(x))
    with pytest.raises(SteveError, match="exists"):
        save_sae(sae, tmp_path / "sae")
    save_sae(sae, tmp_path / "sae", force=True)


def test_written_files_have_saelens_6_layout(tmp_path):
    """The documented layout (SAELens 6: sae_lens/saes/sae.py SAEConfig.to_dict, topk_sae.py)."""
    sae = random_sae()
    save_sae(sae, tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert {"d_in": 6, "d_sae": 10, "dtype": "float32", "device": "cpu",
            "apply_b_dec_to_input": True, "normalize_activations": "none",
            "reshape_activations": "none", "architecture": "topk", "k": 3}.items() <= cfg.items()
    assert cfg["metadata"]["hook_name"] == "encoder.blocks.2"
    assert cfg["metadata"]["model_name"] == "whisper:tiny.en"
    w = np_load_file(str(tmp_path / "sae_weights.safetensors"))
    assert {n: w[n].shape for n in w} == {"W_enc": (6, 10), "b_enc": (10,), "W_dec": (10, 6),
                                          "b_dec": (6,)}
    assert all(a.dtype == np.float32 for a in w.values())


def _write_foreign(tmp_path, cfg: dict, d_in=4, d_sae=8, seed=3):
    """An SAE directory written without our code: numpy safetensors + a hand-made cfg.json."""
    rng = np.random.default_rng(seed)
    w = {"W_enc": rng.normal(size=(d_in, d_sae)), "b_enc": rng.normal(size=d_sae),
         "W_dec": rng.normal(size=(d_sae, d_in)), "b_dec": rng.normal(size=d_in)}
    w = {n: a.astype(np.float32) for n, a in w.items()}
    tmp_path.mkdir(parents=True, exist_ok=True)
    np_save_file(w, str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text(json.dumps({"d_in": d_in, "d_sae": d_sae, **cfg}))
    return w


# cfg.json variants SAELens releases have written (see steve_qt/core/features/sae.py)
VARIANTS = {
    "6.x metadata": ({"dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
                      "normalize_activations": "none", "reshape_activations": "none",
                      "architecture": "topk", "k": 2,
                      "metadata": {"hook_name": "encoder.blocks.1", "model_name": "m",
                                   "sae_lens_version": "6.5.0"}},
                     ("topk", 2, "encoder.blocks.1", True)),
    "6.0 meta": ({"dtype": "float32", "device": "cpu", "apply_b_dec_to_input": False,
                  "normalize_activations": "none", "reshape_activations": "none",
                  "architecture": "standard",
                  "meta": {"hook_name": "blocks.3.hook_resid_post", "model_name": "gpt2"}},
                 ("standard", None, "blocks.3.hook_resid_post", False)),
    "5.x flat": ({"architecture": "standard", "hook_name": "blocks.0.hook_resid_pre",
                  "hook_layer": 0, "model_name": "gpt2-small", "activation_fn_str": "relu",
                  "apply_b_dec_to_input": True, "normalize_activations": "none",
                  "dtype": "torch.float32", "sae_lens_training_version": "3.5.0"},
                 ("standard", None, "blocks.0.hook_resid_pre", True)),
    "4.x topk fn": ({"architecture": "standard", "hook_name": "h", "activation_fn_str": "topk",
                     "activation_fn_kwargs": {"k": 3}, "normalize_activations": False},
                    ("topk", 3, "h", True)),
    "old hook_point": ({"hook_point": "blocks.8.hook_resid_pre", "dtype": "float32",
                        "model_name": "gpt2-small"},
                       ("standard", None, "blocks.8.hook_resid_pre", True)),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reads_each_known_cfg_variant(tmp_path, variant):
    cfg, (arch, k, hook, apply_b_dec) = VARIANTS[variant]
    w = _write_foreign(tmp_path, cfg)
    sae = load_sae(tmp_path)
    assert (sae.architecture, sae.k, sae.hook_name, sae.apply_b_dec_to_input) == \
        (arch, k, hook, apply_b_dec)
    x = np.random.default_rng(4).normal(size=(9, 4)).astype(np.float32)
    want = numpy_encode(x, w["W_enc"], w["b_enc"], w["b_dec"], arch, k, apply_b_dec)
    np.testing.assert_allclose(sae.encode(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cfg,message", [
    ({"architecture": "jumprelu"}, "architecture 'jumprelu' is not supported"),
    ({"architecture": "gated"}, "not supported"),
    ({"normalize_activations": "expected_average_only_in"}, "dataset average"),
    ({"normalize_activations": True}, "dataset average"),
    ({"architecture": "topk"}, "needs k"),
    ({"architecture": "topk", "k": 2, "rescale_acts_by_decoder_norm": True}, "decoder norms"),
])
def test_refuses_what_it_cannot_read_faithfully(tmp_path, cfg, message):
    _write_foreign(tmp_path, cfg)
    with pytest.raises(SteveError, match=message):
        load_sae(tmp_path)


def test_bad_folders(tmp_path):
    with pytest.raises(SteveError, match="no such SAE folder"):
        load_sae(tmp_path / "nope")
    (tmp_path / "a").mkdir()
    with pytest.raises(SteveError, match="cfg.json is missing"):
        load_sae(tmp_path / "a")
    _write_foreign(tmp_path / "b", {})
    (tmp_path / "b" / "cfg.json").write_text("{not json")
    with pytest.raises(SteveError, match="cannot read the SAE config"):
        load_sae(tmp_path / "b")
    _write_foreign(tmp_path / "c", {})
    (tmp_path / "c" / "cfg.json").write_text(json.dumps({"d_in": 5, "d_sae": 8}))
    with pytest.raises(SteveError, match="d_in=5"):
        load_sae(tmp_path / "c")
    _write_foreign(tmp_path / "d", {})
    (tmp_path / "d" / "sae_weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(SteveError, match="cannot read the SAE weights"):
        load_sae(tmp_path / "d")


@pytest.mark.parametrize("kind", ["constant_norm_rescale", "layer_norm"])
def test_runtime_normalisations_by_hand(tmp_path, kind):
    w = _write_foreign(tmp_path, {"architecture": "standard", "normalize_activations": kind})
    sae = load_sae(tmp_path)
    x = np.random.default_rng(5).normal(size=(6, 4)) * 7 + 2
    if kind == "constant_norm_rescale":
        xn = x * (2.0 / np.linalg.norm(x, axis=1, keepdims=True))
    else:
        mu, sd = x.mean(1, keepdims=True), x.std(1, ddof=1, keepdims=True)
        xn = (x - mu) / (sd + 1e-5)
    codes = numpy_encode(xn, w["W_enc"], w["b_enc"], w["b_dec"], "standard", None)
    np.testing.assert_allclose(sae.encode(x.astype(np.float32)), codes, rtol=1e-4, atol=1e-4)
    recon = codes @ w["W_dec"] + w["b_dec"]
    recon = recon * np.linalg.norm(x, axis=1, keepdims=True) / 2.0 \
        if kind == "constant_norm_rescale" else recon * sd + mu
    np.testing.assert_allclose(sae.reconstruct(x.astype(np.float32)), recon, rtol=1e-4, atol=1e-3)


# --- training --------------------------------------------------------------------------------
def planted(n=12000, d=16, m=32, active=3, seed=0):
    """Rows that are sparse positive combinations of m planted unit directions (+ small noise)."""
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(m, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    coef = np.zeros((n, m))
    for i in range(n):
        idx = rng.choice(m, active, replace=False)
        coef[i, idx] = rng.exponential(1.0, active) + 0.5
    x = coef @ dirs + 0.01 * rng.normal(size=(n, d))
    return x.astype(np.float32), dirs


def source_of(x, chunk=1000):
    return lambda epoch: (x[i:i + chunk] for i in range(0, len(x), chunk))


@pytest.mark.parametrize("kind,extra", [("topk", {"k": 3}), ("l1", {"l1": 3.0})])
def test_training_lowers_loss_and_recovers_planted_directions(tmp_path, kind, extra):
    x, dirs = planted(n=20000)
    cfg = TrainConfig(kind=kind, expansion=4, epochs=10, batch=256, lr=3e-3, shuffle_rows=4000,
                      dead_after=4000, **extra)
    seen = []
    sae = train_sae(source_of(x), 16, cfg, tmp_path / "sae", hook_name="site",
                    total_rows=len(x), progress=lambda done, total, loss: seen.append(loss))
    assert len(seen) == 10 * int(np.ceil(len(x) / 256))
    warm = int(0.05 * len(seen)) if kind == "l1" else 0  # lambda warms up over 5 % of steps
    assert np.mean(seen[-20:]) < 0.75 * np.mean(seen[warm:warm + 20])
    W = sae.W_dec.numpy()
    W = W / np.linalg.norm(W, axis=1, keepdims=True)
    best = (dirs @ W.T).max(axis=1)  # each planted direction's closest decoder row
    assert best.min() > 0.9, np.sort(best)[:5]
    back = load_sae(tmp_path / "sae")
    assert back.architecture == ("topk" if kind == "topk" else "standard")
    assert not (tmp_path / "sae" / CHECKPOINT).exists()
    report = evaluate(back, [x[:3000]])
    assert report["fraction_variance_explained"] > 0.6
    if kind == "topk":
        assert report["l0"] <= 3


def test_training_forward_equals_the_saved_sae():
    """The trainer's sparse TopK decode is SAE.encode/decode of the same weights."""
    from steve_qt.core.features.sae_train import forward, init_params, to_sae

    p = init_params(8, 24, "topk", torch.Generator().manual_seed(1))
    p["b_enc"] = torch.randn(24)
    p["b_dec"] = torch.randn(8)
    x = torch.randn(11, 8)
    _, codes, x_hat = forward(p, x, "topk", 5)
    sae = to_sae(p, 1.0, TrainConfig(kind="topk", k=5), None, None)
    assert torch.allclose(codes, sae.encode(x), atol=1e-6)
    assert torch.allclose(x_hat, sae.decode(sae.encode(x)), atol=1e-5)


def test_evaluate_against_brute_force():
    sae = random_sae(d_in=5, d_sae=9, k=2)
    x = np.random.default_rng(6).normal(size=(50, 5)).astype(np.float32)
    got = evaluate(sae, [x[:20], x[20:]])
    codes = numpy_encode(x, sae.W_enc.numpy(), sae.b_enc.numpy(), sae.b_dec.numpy(), "topk", 2)
    recon = codes @ sae.W_dec.numpy().astype(np.float64) + sae.b_dec.numpy()
    fve = 1 - ((recon - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert got["fraction_variance_explained"] == pytest.approx(fve, rel=1e-5)
    assert got["l0"] == pytest.approx((codes > 0).sum(1).mean())
    assert got["dead_share"] == pytest.approx((~(codes > 0).any(0)).mean())
    assert got["rows"] == 50


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    x, _ = planted(n=3000)
    cfg = TrainConfig(kind="topk", expansion=2, k=3, epochs=2, batch=128, lr=1e-3,
                      shuffle_rows=1000, checkpoint_every=5)
    straight = train_sae(source_of(x), 16, cfg, tmp_path / "a", total_rows=len(x))
    assert train_sae(source_of(x), 16, cfg, tmp_path / "b", total_rows=len(x),
                     stop_after_steps=30) is None  # stops mid-epoch 2 (24 steps per epoch)
    assert (tmp_path / "b" / CHECKPOINT).exists() and not (tmp_path / "b" / "cfg.json").exists()
    other = TrainConfig(**{**cfg.__dict__, "k": 4})
    with pytest.raises(SteveError, match="other settings"):
        train_sae(source_of(x), 16, other, tmp_path / "b", total_rows=len(x))
    resumed = train_sae(source_of(x), 16, cfg, tmp_path / "b", total_rows=len(x))
    for n in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.allclose(getattr(resumed, n), getattr(straight, n), atol=1e-6), n


def test_bad_training_settings(tmp_path):
    x, _ = planted(n=500)
    with pytest.raises(SteveError, match="unknown SAE kind 'relu'"):
        train_sae(source_of(x), 16, TrainConfig(kind="relu"), tmp_path / "s")
    with pytest.raises(SteveError, match="expects d_in=8"):
        train_sae(source_of(x), 8, TrainConfig(), tmp_path / "t")
    with pytest.raises(SteveError, match="no activation rows"):
        train_sae(lambda e: iter(()), 16, TrainConfig(), tmp_path / "u")


def test_bench_section_runs_tiny():
    """bench/sae.py's code path with tiny counts (the numbers go to bench/RESULTS.md)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench import sae as bench_sae
    from bench.common import Config

    s = bench_sae.run(Config.tiny())
    assert len(s.rows) == 2 and all(len(r) == len(s.columns) for r in s.rows)
    assert [r[0] for r in s.rows] == ["1", "4"]
    assert all(float(r[4]) > 0 and float(r[5]) > 0 for r in s.rows)
