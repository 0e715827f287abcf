"""Value zeroing of a pre-LN block by ``steve_qt.core.attention.mixing.value_zeroing_pre_ln`` (first MLP
layer through the sum over heads, LayerNorm's σ from Gram terms, cosine distance from the change)
against float64 brute force written here with plain torch ops: one tiny.en encoder block with one
value row zeroed per run (softmax over all 1500 keys), and synthetic blocks whose distances are
tiny (where ``1 - cos`` in float32 is noise) or whose LayerNorm scale moves a lot.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("whisper")

from steve_qt.core.attention import mixing  # noqa: E402

SR = 16000


def ln64(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).square().mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu64(x):
    return 0.5 * x * (1 + torch.erf(x / 2 ** 0.5))


def block64(p, x, n_head, keep, zero_value=None):
    """A Whisper ResidualAttentionBlock in float64 on x (T, D); output rows [:keep]; ``zero_value``:
    the key whose value vector (after the value projection, every head) is set to 0."""
    h = ln64(x, p["attn_ln.weight"], p["attn_ln.bias"])
    q = h[:keep] @ p["attn.query.weight"].T + p["attn.query.bias"]
    k = h @ p["attn.key.weight"].T
    v = h @ p["attn.value.weight"].T + p["attn.value.bias"]
    if zero_value is not None:
        v[zero_value] = 0
    d = x.shape[1] // n_head
    ctx = torch.zeros(keep, x.shape[1], dtype=torch.float64)
    for hd in range(n_head):
        s = slice(hd * d, (hd + 1) * d)
        ctx[:, s] = torch.softmax(q[:, s] @ k[:, s].T / d ** 0.5, dim=-1) @ v[:, s]
    r = x[:keep] + ctx @ p["attn.out.weight"].T + p["attn.out.bias"]
    h = ln64(r, p["mlp_ln.weight"], p["mlp_ln.bias"])
    m = gelu64(h @ p["mlp.0.weight"].T + p["mlp.0.bias"])
    return r + m @ p["mlp.2.weight"].T + p["mlp.2.bias"]


def cos_dist64(a, b):
    return 1 - (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))


def normalised(dist):
    dist = dist.clamp(min=0)
    return dist / dist.sum(-1, keepdim=True)


@pytest.mark.parametrize("layer", [0, 3])
def test_tiny_en_block_equals_float64_per_key_zeroing(whisper_adapter, dark_suit, layer):
    from steve_qt.core.speech.audio import load_audio
    from steve_whisper.mixing import BlockTaps, block_mlp

    a = whisper_adapter
    audio = load_audio(dark_suit).samples[int(0.3 * SR):int(0.9 * SR)]  # 0.6 s -> 30 frames
    keep = 30
    enc = a.model.encoder
    block = enc.blocks[layer]
    taps = BlockTaps(block)
    try:
        with torch.no_grad():
            enc(a.mel(audio)[None])
    finally:
        taps.remove()
    t = taps.t
    n_head = block.attn.n_head
    w = mixing.attention_weights(t["q"], t["k"], n_head, keep, keep)
    f = mixing.head_value_outputs(t["v"][:keep], block.attn.out.weight, n_head)
    with torch.no_grad():
        got = mixing.value_zeroing_pre_ln(w, f, t["x"][:keep], t["attn_out"][:keep],
                                          block_mlp(block))
    p = {k: v.detach().double() for k, v in block.state_dict().items()}
    x = t["x"].double()  # (1500, D): every key of the softmax
    y = block64(p, x, n_head, keep)
    ref = normalised(torch.stack([cos_dist64(block64(p, x, n_head, keep, k), y)
                                  for k in range(keep)], dim=1))  # (Q, K)
    assert got.shape == (keep, keep) and got.dtype == torch.float32
    # measured: max |error| 2.8e-6 (layer 0) and 9.7e-7 (layer 3) at values up to 0.87, a tenth
    # of the tolerance; at values below 0.01 at most 1.4e-7
    torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=2e-6)


def synthetic_block(scale_f, seed=0, n_head=3, n_q=5, d=8, width=32):
    """A random pre-LN block's pieces: softmax weights, value outputs scaled by ``scale_f``."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64)  # noqa: E731
    weights = torch.softmax(rnd(n_head, n_q, n_q) * 2, dim=-1)
    f = rnd(n_head, n_q, d) * scale_f
    x, attn_out = rnd(n_q, d), rnd(n_q, d) * 0.3
    mlp = dict(ln_weight=1 + 0.2 * rnd(d), ln_bias=0.1 * rnd(d), w1=rnd(width, d) / d ** 0.5,
               b1=0.1 * rnd(width), w2=rnd(d, width) / width ** 0.5, b2=0.1 * rnd(d))
    return weights, f, x, attn_out, mlp


def brute64(weights, f, x, attn_out, mlp):
    """Per key k: the block's output with attention output a_q - Σ_h α_hqk f_hk, float64."""
    def tail(r):
        h = ln64(r, mlp["ln_weight"], mlp["ln_bias"])
        return r + gelu64(h @ mlp["w1"].T + mlp["b1"]) @ mlp["w2"].T + mlp["b2"]
    r = x + attn_out
    y = tail(r)
    dist = torch.stack([cos_dist64(tail(r - (weights[:, :, k, None] * f[:, None, k]).sum(0)), y)
                        for k in range(weights.shape[2])], dim=1)
    return dist


def without_onednn(monkeypatch):
    """``mixing.linear_plus`` then takes its ``torch.addmm`` path."""
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)


@pytest.mark.parametrize("onednn", [True, False])
def test_linear_plus_is_c_plus_x_w_transposed(monkeypatch, onednn):
    if not onednn:
        without_onednn(monkeypatch)
    g = torch.Generator().manual_seed(1)
    w, x, c = (torch.randn(*s, generator=g) for s in ((24, 300), (50, 300), (50, 24)))
    second = mixing.linear_plus(w)
    assert second.path == ("onednn" if onednn and torch.backends.mkldnn.is_available()
                           else "addmm")
    got = second(x, c)
    ref = c.double() + x.double() @ w.double().T
    # float32 sums of 300 products of N(0, 1) values (|sums| up to 58): measured at most 2.9e-5
    # (oneDNN) and 2.2e-5 (addmm); a missing or wrong term would be off by ~1
    assert got.dtype == torch.float32 and got.shape == (50, 24)
    torch.testing.assert_close(got.double(), ref, rtol=0, atol=1e-4)


# measured (float32 path vs float64): scale 1e-3 (distances up to 1.5e-6, the size of tiny.en's
# median) max |error| 2.1e-5 (oneDNN) and 2.5e-5 (addmm), 0.3 % and 0.5 % of the value; scale 3
# (LayerNorm's σ moves a lot) 4.0e-8 and 8.2e-8
@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.parametrize("scale_f, rtol, atol", [(1e-3, 2e-2, 5e-5), (3.0, 1e-4, 1e-6)])
def test_synthetic_block_small_changes_and_large_layer_norm_moves(monkeypatch, scale_f, rtol,
                                                                  atol, onednn):
    if not onednn:
        without_onednn(monkeypatch)
    weights, f, x, attn_out, mlp = synthetic_block(scale_f)
    raw = brute64(weights, f, x, attn_out, mlp)
    ref = normalised(raw)
    mlp32 = mixing.PreLNMLP(mlp["ln_weight"].float(), mlp["ln_bias"].float(), 1e-5,
                            mlp["w1"].float(), mlp["b1"].float(), mlp["w2"].float(),
                            mlp["b2"].float())
    got = mixing.value_zeroing_pre_ln(weights.float(), f.float(), x.float(), attn_out.float(),
                                      mlp32)
    torch.testing.assert_close(got.double(), ref, rtol=rtol, atol=atol)
    if scale_f < 1:
        # the case is hard: distances near 1e-6, where 1 - cos in float32 is rounding noise
        assert raw.max() < 1e-5
        naive = normalised(brute_naive32(weights, f, x, attn_out, mlp))
        assert (naive - ref).abs().max() > 0.05


def brute_naive32(weights, f, x, attn_out, mlp):
    """The same distances as ``brute64`` in float32 with 1 - cos: noise for tiny changes."""
    return brute64(*(v.float() for v in (weights, f, x, attn_out)),
                   {k: v.float() for k, v in mlp.items()}).double()
