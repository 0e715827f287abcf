"""Context-mixing measures (attention norm, value zeroing, grad relevance) against independent
computations: a numpy re-implementation of a one-layer Whisper encoder looped over keys, one
layer of tiny.en run with a hook that zeroes one value row at a time, explicit-attention autograd
graphs built here (no SDPA, attention matrices as graph tensors), tiny random wav2vec 2.0 models
looped over keys, and the refusals.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
whisper = pytest.importorskip("whisper")
from scipy.special import erf  # noqa: E402

from steve_qt.core.errors import SteveError  # noqa: E402
from steve_qt.core.attention.measures import parse_measures  # noqa: E402

SR = 16000


# --- numpy reference helpers (share no code with steve_qt) --------------------------------------
def np_softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_ln(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def np_gelu(x):
    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def cos_dist(a, b):
    return 1 - (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def params(module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.state_dict().items()}


def np_whisper_block(p, x, n_head, zero_value=None):
    """One openai-whisper ResidualAttentionBlock in float64 numpy; ``zero_value`` = key whose value
    vector (after the value projection) is set to 0 in every head."""
    h = np_ln(x, p["attn_ln.weight"], p["attn_ln.bias"])
    q = h @ p["attn.query.weight"].T + p["attn.query.bias"]
    k = h @ p["attn.key.weight"].T
    v = h @ p["attn.value.weight"].T + p["attn.value.bias"]
    if zero_value is not None:
        v = v.copy()
        v[zero_value] = 0
    d = x.shape[1] // n_head
    ctx = np.zeros_like(x)
    alphas = []
    for hd in range(n_head):
        s = slice(hd * d, (hd + 1) * d)
        a = np_softmax(q[:, s] @ k[:, s].T / np.sqrt(d))
        alphas.append(a)
        ctx[:, s] = a @ v[:, s]
    r = x + ctx @ p["attn.out.weight"].T + p["attn.out.bias"]
    m = np_gelu(np_ln(r, p["mlp_ln.weight"], p["mlp_ln.bias"]) @ p["mlp.0.weight"].T + p["mlp.0.bias"])
    return r + m @ p["mlp.2.weight"].T + p["mlp.2.bias"], np.stack(alphas), v


def loop_value_zeroing(run, keep):
    """run(zero=None|k) -> (layer output (Q, D)): the per-key loop, rows normalised."""
    y = run(None)[:keep]
    dist = np.stack([cos_dist(run(k)[:keep], y) for k in range(keep)], axis=1)  # (Q, K)
    dist = np.maximum(dist, 0)
    return dist / dist.sum(-1, keepdims=True)


def loop_norm(alpha, v, w_out, n_head, keep):
    """‖α_hqk · v_hk W_O[:, h]ᵀ‖ one (h, q, k) at a time: (M, Q, K)."""
    d = v.shape[1] // n_head
    out = np.zeros((n_head, keep, keep))
    for hd in range(n_head):
        s = slice(hd * d, (hd + 1) * d)
        for qi in range(keep):
            for ki in range(keep):
                out[hd, qi, ki] = np.linalg.norm(alpha[hd, qi, ki] * (v[ki, s] @ w_out[:, s].T))
    return out


def close16(got, ref, rtol=2e-3, atol=2e-3):
    got = np.asarray(got, dtype=np.float64)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol * max(1.0, float(np.abs(ref).max())))


# --- a one-layer toy Whisper encoder --------------------------------------------------------------
N_CTX, KEEP, N_STATE, N_HEAD = 9, 6, 16, 4


def toy_whisper(n_layer=1, seed=0):
    from whisper.model import ModelDimensions, Whisper

    torch.manual_seed(seed)
    dims = ModelDimensions(n_mels=4, n_audio_ctx=N_CTX, n_audio_state=N_STATE,
                           n_audio_head=N_HEAD, n_audio_layer=n_layer, n_vocab=12, n_text_ctx=8,
                           n_text_state=N_STATE, n_text_head=N_HEAD, n_text_layer=1)
    model = Whisper(dims).eval()
    with torch.no_grad():  # zero-initialised parts would make the toy trivial
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    mel = torch.randn(4, 2 * N_CTX)
    return model, mel


def block_inputs(encoder, mel):
    """Inputs of every encoder block from a plain forward pass with pre-hooks."""
    got = {}
    hs = [b.register_forward_pre_hook(lambda m, inp, i=i: got.__setitem__(i, inp[0][0].detach()))
          for i, b in enumerate(encoder.blocks)]
    with torch.no_grad():
        encoder(mel[None])
    for h in hs:
        h.remove()
    return got


def test_toy_whisper_norm_and_value_zeroing_equal_the_per_key_loop():
    from steve_whisper.mixing import layer_measures

    model, mel = toy_whisper()
    x = block_inputs(model.encoder, mel)[0].double().numpy()
    p = {k.split("blocks.0.", 1)[1]: v for k, v in params(model.encoder).items() if "blocks.0." in k}
    got = layer_measures(model, mel, KEEP, ["norm", "value_zeroing"])
    assert got["norm"].shape == (1, 1, N_HEAD, KEEP, KEEP) and got["norm"].dtype == np.float16
    assert got["value_zeroing"].shape == (1, 1, 1, KEEP, KEEP)

    vz = loop_value_zeroing(lambda k: np_whisper_block(p, x, N_HEAD, k)[0], KEEP)
    close16(got["value_zeroing"][0, 0, 0], vz)
    _, alpha, v = np_whisper_block(p, x, N_HEAD)
    close16(got["norm"][0, 0], loop_norm(alpha, v, p["attn.out.weight"], N_HEAD, KEEP))
    assert np.allclose(got["value_zeroing"].astype(np.float64).sum(-1), 1, atol=2e-3)


def explicit_attention(block_list, store):
    """Replace qkv_attention on these instances by a hand-written explicit softmax whose weights
    stay in the autograd graph (retain_grad): an independent route to ∂L/∂A."""
    def make(i, mod):
        def qkv(q, k, v, mask=None):
            n, t, dm = q.shape
            d = dm // mod.n_head
            qh = q.view(n, t, mod.n_head, d).transpose(1, 2)
            kh = k.view(n, k.shape[1], mod.n_head, d).transpose(1, 2)
            vh = v.view(n, v.shape[1], mod.n_head, d).transpose(1, 2)
            w = torch.softmax(qh @ kh.transpose(-1, -2) / d ** 0.5, dim=-1)
            w.retain_grad()
            store[i] = w
            return (w @ vh).transpose(1, 2).reshape(n, t, dm), None
        return qkv
    for i, b in enumerate(block_list):
        b.attn.qkv_attention = make(i, b.attn)


def reference_relevance(store, keep):
    """Chefer's rule by hand in float64 numpy from explicit A and its autograd gradient."""
    n = store[0].shape[-1]
    r = np.eye(n)
    out = []
    for i in range(len(store)):
        a = store[i][0].detach().double().numpy()
        g = store[i].grad[0].double().numpy()
        abar = np.maximum(a * g, 0).mean(0)
        r = r + abar @ r
        out.append(r[:keep, :keep] - np.eye(keep))  # stored without the identity
    return np.stack(out)


def test_toy_whisper_grad_relevance_equals_explicit_autograd():
    from steve_whisper.mixing import grad_relevance

    model, mel = toy_whisper(n_layer=2, seed=3)
    tokens, text_start = [1, 2, 5, 7, 3], 2
    got = grad_relevance(model, mel, tokens, text_start, KEEP)
    assert got.shape == (2, 1, 1, KEEP, KEEP) and got.dtype == np.float16
    assert all(p.requires_grad for p in model.parameters())  # restored

    store = {}
    explicit_attention(model.encoder.blocks, store)
    x = mel[None].clone().requires_grad_(True)
    tok = torch.tensor(tokens)[None]
    logits = model.decoder(tok[:, :-1], model.encoder(x))
    logp = torch.log_softmax(logits, dim=-1)[0]
    total = sum(logp[i - 1, tokens[i]] for i in range(text_start, len(tokens)))
    total.backward()
    for b in model.encoder.blocks:
        del b.attn.qkv_attention
    ref = reference_relevance(store, KEEP)
    assert np.abs(ref).max() > 1e-3  # the toy's relevance is not trivial
    close16(got[:, 0, 0], ref)


# --- tiny.en --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def short_audio(dark_suit):
    from steve_qt.core.speech.audio import load_audio

    return load_audio(dark_suit).samples[int(0.3 * SR):int(0.7 * SR)]  # 0.4 s -> 20 frames


def test_tiny_en_layer_equals_plain_forward_with_a_value_row_zeroed(whisper_adapter, short_audio):
    from whisper.model import disable_sdpa

    a = whisper_adapter
    keep = 20
    got = a.extract_measures(short_audio, ["norm", "value_zeroing"])
    assert got["norm"].shape == (4, 1, 6, keep, keep)
    assert got["value_zeroing"].shape == (4, 1, 1, keep, keep)
    mel = a.mel(short_audio)
    layer = 1
    block = a.model.encoder.blocks[layer]
    x = block_inputs(a.model.encoder, mel)[layer][None]  # (1, 1500, D)

    def run(zero):
        def hook(_m, _i, out):
            out = out.clone()
            out[:, zero] = 0
            return out
        h = block.attn.value.register_forward_hook(hook) if zero is not None else None
        with torch.no_grad():
            y = block(x)[0]
        if h is not None:
            h.remove()
        return y.double().numpy()

    close16(got["value_zeroing"][layer, 0, 0], loop_value_zeroing(run, keep), atol=3e-3)
    # attention norm: whisper's own explicit path (disable_sdpa) gives the scores
    kept = {}
    hv = block.attn.value.register_forward_hook(lambda m, i, o: kept.__setitem__("v", o[0]))
    ha = block.attn.register_forward_hook(lambda m, i, o: kept.__setitem__("qk", o[1][0]))
    with torch.no_grad(), disable_sdpa():
        block(x)
    hv.remove(), ha.remove()
    alpha = torch.softmax(kept["qk"].double(), dim=-1)[:, :keep, :keep].numpy()
    ref = loop_norm(alpha, kept["v"].double().numpy(), params(block)["attn.out.weight"], 6, keep)
    close16(got["norm"][layer, 0], ref)
    assert np.allclose(got["value_zeroing"].astype(np.float64).sum(-1), 1, atol=3e-3)


def test_tiny_en_grad_equals_explicit_autograd(whisper_adapter, short_audio):
    a = whisper_adapter
    ex = a.extract(short_audio, components=["encoder"])
    start = ex.meta["text_token_start"]
    got = a.extract_measures(short_audio, ["grad"], tokens=ex.transcript.tokens, text_start=start)
    assert got["grad"].shape == (4, 1, 1, 20, 20)
    model = a.model
    store = {}
    explicit_attention(model.encoder.blocks, store)
    try:
        x = a.mel(short_audio)[None].clone().requires_grad_(True)
        tok = torch.tensor(ex.transcript.tokens)[None]
        logits = model.decoder(tok[:, :-1], model.encoder(x))
        logp = torch.log_softmax(logits.float(), dim=-1)[0]
        total = sum(logp[i - 1, int(tok[0, i])] for i in range(start, tok.shape[1]))
        total.backward()
    finally:
        for b in model.encoder.blocks:
            b.attn.__dict__.pop("qkv_attention", None)
        model.zero_grad(set_to_none=True)
    close16(got["grad"][:, 0, 0], reference_relevance(store, 20), atol=3e-3)


# --- wav2vec 2.0 -----------------------------------------------------------------------------------
transformers = pytest.importorskip("transformers")


def w2v_config(stable: bool):
    return transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16,) * 7, vocab_size=8, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, do_stable_layer_norm=stable,
        feat_extract_norm="layer" if stable else "group", architectures=None)


@pytest.fixture(scope="module")
def w2v_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2v_mixing")
    dirs = {}
    for name, stable, ctc in (("post", False, True), ("stable", True, True), ("bare", False, False)):
        torch.manual_seed(len(dirs))
        cls = transformers.Wav2Vec2ForCTC if ctc else transformers.Wav2Vec2Model
        cls(w2v_config(stable)).save_pretrained(root / name)
        dirs[name] = root / name
    return dirs


def speechy(n, seed=1):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    return (0.1 * rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 3 * t))
            + 0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("which", ["post", "stable"])
def test_wav2vec2_norm_and_value_zeroing_equal_the_per_key_loop(w2v_dirs, which):
    from steve_qt.core.models.adapters import load_adapter

    adapter = load_adapter(f"wav2vec2:{w2v_dirs[which]}")
    audio = speechy(SR // 2)
    got = adapter.extract_measures(audio, ["norm", "value_zeroing"])
    t = got["norm"].shape[-1]
    assert got["norm"].shape == (2, 1, 2, t, t) and got["value_zeroing"].shape == (2, 1, 1, t, t)
    # plain transformers model, eager attention: weights from output_attentions
    model = transformers.Wav2Vec2Model.from_pretrained(w2v_dirs[which],
                                                       attn_implementation="eager").eval()
    inputs = adapter.input_values(audio)
    for n, layer in enumerate(model.encoder.layers):
        kept = {}
        hv = layer.attention.v_proj.register_forward_hook(
            lambda m, i, o: kept.__setitem__("v", o[0].detach().double().numpy()))
        hy = layer.register_forward_hook(lambda m, i, o: kept.__setitem__(
            "y", (o[0] if isinstance(o, tuple) else o)[0].double().numpy()))
        with torch.no_grad():
            out = model(inputs, output_attentions=True)
        hv.remove()
        alpha = out.attentions[n][0].double().numpy()
        w_out = layer.attention.out_proj.weight.detach().double().numpy()
        close16(got["norm"][n, 0], loop_norm(alpha, kept["v"], w_out, 2, t))

        def run(zero):
            if zero is None:
                return kept["y"]
            def hook(_m, _i, o):
                o = o.clone()
                o[:, zero] = 0
                return o
            h = layer.attention.v_proj.register_forward_hook(hook)
            with torch.no_grad():
                model(inputs)
            h.remove()
            return kept["y"]

        y0 = kept["y"].copy()
        vz = loop_value_zeroing(lambda z: y0 if z is None else run(z).copy(), t)
        hy.remove()
        close16(got["value_zeroing"][n, 0, 0], vz, atol=3e-3)


def test_measures_progress_counts_layers_from_0_over_both_passes(w2v_dirs):
    from steve_qt.core.models.adapters import load_adapter

    adapter = load_adapter(f"wav2vec2:{w2v_dirs['post']}")
    seen = []
    adapter.extract_measures(speechy(SR // 4, seed=2), ["norm", "grad"],
                             progress=lambda done, total, what: seen.append((done, total, what)))
    one, grad = "attention norm / value zeroing", "grad relevance"
    assert seen == [(1, 4, f"{one}, layer 0"), (2, 4, f"{one}, layer 1"),
                    (3, 4, f"{grad}, layer 0"), (4, 4, f"{grad}, layer 1")]


def test_wav2vec2_grad_equals_eager_attention_autograd(w2v_dirs):
    from steve_qt.core.models.adapters import load_adapter

    adapter = load_adapter(f"wav2vec2:{w2v_dirs['post']}")
    audio = speechy(SR // 2, seed=4)
    got = adapter.extract_measures(audio, ["grad"])["grad"]
    model = transformers.Wav2Vec2ForCTC.from_pretrained(w2v_dirs["post"],
                                                        attn_implementation="eager").eval()
    out = model(adapter.input_values(audio), output_attentions=True)
    for a in out.attentions:
        a.retain_grad()
    logits = out.logits[0]
    best = logits.argmax(-1).tolist()
    labels = [c for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1])]
    lp = torch.log_softmax(logits, -1)[:, None]
    loss = torch.nn.functional.ctc_loss(lp, torch.tensor([labels]), [len(best)], [len(labels)],
                                        blank=0, reduction="sum")
    (-loss).backward()
    store = {i: a for i, a in enumerate(out.attentions)}
    ref = reference_relevance(store, logits.shape[0])
    assert got.shape == (2, 1, 1, *ref.shape[1:])
    close16(got[:, 0, 0], ref, atol=3e-3)


# --- refusals -----------------------------------------------------------------------------------
def test_wav2vec2_without_ctc_head_cannot_give_grad(w2v_dirs, tmp_path, capsys):
    from steve_qt.cli import main
    from steve_qt.core.models.adapters import load_adapter

    adapter = load_adapter(f"wav2vec2:{w2v_dirs['bare']}")
    with pytest.raises(SteveError, match="this model cannot give grad: it has no CTC head"):
        adapter.extract_measures(speechy(SR // 2), ["grad"])
    wav = tmp_path / "a.wav"
    import soundfile

    soundfile.write(wav, speechy(SR // 2), SR)
    out = tmp_path / "x.npz"
    rc = main(["extract", str(wav), "--model", f"wav2vec2:{w2v_dirs['bare']}",
               "--measures", "norm,grad", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "this model cannot give grad" in err[0]
    assert not out.exists()


def test_bad_measure_names_and_components(dark_suit, tmp_path, capsys):
    from steve_qt.cli import main

    assert parse_measures("norm, value-zeroing,grad,norm") == ("norm", "value_zeroing", "grad")
    with pytest.raises(SteveError, match="unknown measure 'attention'; valid measures: norm, "
                                         "value-zeroing, grad"):
        parse_measures("norm,attention")
    for extra, msg in ((["--measures", "rollout"], "unknown measure 'rollout'"),
                       (["--measures", "norm", "--component", "cross"],
                        "encoder self-attention only")):
        rc = main(["extract", str(dark_suit), "--out", str(tmp_path / "x.npz"), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and msg in err[0]


def test_measures_round_trip_through_npz(tmp_path, capsys):
    from steve_qt.core.models.adapters import Extraction, Transcript
    from steve_qt.core.attention.maps import AttentionMaps
    from steve_qt.core.frames import whisper_grid
    from steve_qt.core.models.npzio import load_npz, save_npz

    rng = np.random.default_rng(0)
    w = rng.random((2, 1, 3, 5, 5)).astype(np.float16)
    meas = {"norm": rng.random((2, 1, 3, 5, 5)).astype(np.float16),
            "value_zeroing": rng.random((2, 1, 1, 5, 5)).astype(np.float16)}
    maps = AttentionMaps(w, w, np.zeros((2, 3, 5), np.float32), "encoder", "toy", SR, 1600,
                         query_grid=whisper_grid(0), key_grid=whisper_grid(0), measures=meas)
    assert np.array_equal(maps.head(1, 2, "value_zeroing"), meas["value_zeroing"][1, 0, 0])
    assert np.array_equal(maps.head(1, None, "norm"),
                          meas["norm"][1, 0].astype(np.float32).mean(0))
    path = tmp_path / "m.npz"
    save_npz(path, Extraction({"encoder": maps}, Transcript(), "toy"), "encoder")
    back = load_npz(path).maps
    assert set(back.measures) == {"norm", "value_zeroing"}
    from steve_qt.cli import main

    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "measure:     norm (2, 1, 3, 5, 5) (per head)" in out
    assert "measure:     value_zeroing (2, 1, 1, 5, 5) (per layer)" in out
    for k, v in meas.items():
        assert back.measures[k].dtype == np.float16 and np.array_equal(back.measures[k], v)
    with pytest.raises(ValueError, match="measure 'grad' must be"):
        maps.add_measures({"grad": np.zeros((2, 1, 2, 5, 5), np.float16)})
    raw = dict(np.load(path))
    raw["grad"] = np.zeros((2, 1, 1, 4, 5), np.float16)
    np.savez(tmp_path / "bad.npz", **raw)
    with pytest.raises(SteveError, match="inconsistent"):
        load_npz(tmp_path / "bad.npz")


def test_figures_of_measures(tmp_path, capsys):
    """figure --kind reads a measure from the npz; a per-layer measure's grid is one map per
    layer; a measure the npz lacks is one line, exit 2."""
    from steve_qt.cli import main
    from steve_qt.core.models.adapters import Extraction, Transcript
    from steve_qt.core.attention.maps import AttentionMaps
    from steve_qt.core.figures.attention import FigureData, FigureSpec, draw_grid_figure
    from steve_qt.core.frames import whisper_grid
    from steve_qt.core.models.npzio import save_npz

    rng = np.random.default_rng(1)
    n, m, t = 3, 2, 40
    w = rng.random((n, 1, m, t, t)).astype(np.float16)
    vz = rng.random((n, 1, 1, t, t)).astype(np.float16)
    maps = AttentionMaps(w, w, np.zeros((n, m, t), np.float32), "encoder", "toy", SR, t * 320,
                         query_grid=whisper_grid(0), key_grid=whisper_grid(0),
                         measures={"value_zeroing": vz, "norm": w})
    fig = draw_grid_figure(FigureSpec(kind="value_zeroing", layout="grid"),
                           FigureData({"encoder": maps}))
    labels = sorted(ax.get_label() for ax in fig.axes if ax.get_label().startswith("map:"))
    assert labels == [f"map:{i}:mean" for i in range(n)]
    fig = draw_grid_figure(FigureSpec(kind="norm", layout="grid"), FigureData({"encoder": maps}))
    assert sum(ax.get_label().startswith("map:") for ax in fig.axes) == n * (m + 1)
    npz = tmp_path / "m.npz"
    save_npz(npz, Extraction({"encoder": maps}, Transcript(), "toy"), "encoder")
    out = tmp_path / "vz.png"
    assert main(["figure", str(npz), "--kind", "value-zeroing", "--layer", "1", "--dpi", "60",
                 "--out", str(out)]) == 0 and out.stat().st_size > 0
    capsys.readouterr()
    assert main(["figure", str(npz), "--kind", "grad", "--out", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hold no grad (measures stored: norm, value-zeroing)" in err[0]


def test_cancel_stops_the_measures():
    from steve_qt.core.errors import Cancelled
    from steve_whisper.mixing import grad_relevance, layer_measures

    model, mel = toy_whisper()
    with pytest.raises(Cancelled):
        layer_measures(model, mel, KEEP, ["value_zeroing"], should_cancel=lambda: True)
    with pytest.raises(Cancelled):
        grad_relevance(model, mel, [1, 2, 5, 3], 2, KEEP, should_cancel=lambda: True)
    assert all(p.requires_grad for p in model.parameters())  # restored after the cancel
    assert not any(b._forward_hooks or b._forward_pre_hooks for b in model.encoder.blocks)
