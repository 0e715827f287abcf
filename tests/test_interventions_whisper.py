"""Interventions on the embedded tiny.en, each checked against an independent computation."""

import math

import numpy as np
import pytest
import torch

from steve_qt.core.interventions import tables as iv
from steve_qt.core.speech.textdiff import normalise_words


@pytest.fixture(scope="module")
def audio(dark_suit_extraction):
    return dark_suit_extraction[0].samples


@pytest.fixture(scope="module")
def reference(dark_suit_extraction):
    return dark_suit_extraction[1].transcript


def _capture_encoder(adapter, audio, raw=None):
    """Encoder self-attention maps of the kept frames, encoder only (no transcription)."""
    from steve_whisper.capture import QKCapture

    keep = math.ceil(len(audio) / 320)
    enc = adapter.model.encoder
    outs = {}
    hook = enc.blocks[0].attn.register_forward_hook(lambda m, i, o: outs.setdefault("attn0", o[0]))
    try:
        with torch.no_grad(), QKCapture([b.attn for b in enc.blocks], adapter.dims.n_audio_head,
                                        keep_queries=keep, keep_keys=keep) as cap:
            if raw is not None:
                cap.raw = raw
            enc(adapter.mel(audio)[None])
    finally:
        hook.remove()
    w, s, p = cap.arrays()
    return w.copy(), s.copy(), p.copy(), outs["attn0"]


def test_window_maps_equal_brute_force_masked_softmax(whisper_adapter, audio):
    k = 5
    raw = {}
    with whisper_adapter.attention_window(k, layers=[0, 2]):
        w, s, pad, attn0 = _capture_encoder(whisper_adapter, audio, raw)
    keep, n_head = w.shape[-1], w.shape[2]
    for layer in (0, 1, 2):
        q, kk = (x.double().numpy() for x in raw[layer])  # (1500, D)
        d = q.shape[1] // n_head
        for h in range(n_head):
            for i in range(keep):  # brute force, one query row at a time
                sc = kk[:, h * d:(h + 1) * d] @ q[i, h * d:(h + 1) * d] / math.sqrt(d)
                if layer in (0, 2):
                    allowed = [j for j in range(len(sc)) if abs(i - j) <= k]
                else:
                    allowed = list(range(len(sc)))
                e = np.zeros_like(sc)
                m = max(sc[j] for j in allowed)
                for j in allowed:
                    e[j] = math.exp(sc[j] - m)
                row = e / e.sum()
                np.testing.assert_allclose(w[layer, 0, h, i], row[:keep], atol=2e-3)
                assert abs(pad[layer, h, i] - row[keep:].sum()) < 1e-4
        if layer in (0, 2):  # outside the band: exactly zero weight
            i, j = np.nonzero(np.abs(np.arange(keep)[:, None] - np.arange(keep)[None]) > k)
            assert np.all(w[layer, 0][:, i, j] == 0)
    # the model's forward itself is masked: layer 0's attention output by hand (float64)
    x = whisper_adapter.model.encoder.blocks[0].attn
    q, kk = (t.double() for t in raw[0])
    # values: layer 0's normalised input through the value projection
    enc = whisper_adapter.model.encoder
    ln_in = {}
    h = enc.blocks[0].attn_ln.register_forward_hook(lambda m, i, o: ln_in.setdefault("x", o))
    try:
        with torch.no_grad(), whisper_adapter.attention_window(k, layers=[0]):
            enc(whisper_adapter.mel(audio)[None])
    finally:
        h.remove()
    v = x.value(ln_in["x"])[0].double().detach().numpy()  # (1500, D)
    d = q.shape[1] // n_head
    band = np.abs(np.arange(1500)[:, None] - np.arange(1500)[None]) <= k
    heads = []
    for hh in range(n_head):
        sc = (q[:, hh * d:(hh + 1) * d] @ kk[:, hh * d:(hh + 1) * d].T).numpy() / math.sqrt(d)
        sc[~band] = -np.inf
        e = np.exp(sc - sc.max(1, keepdims=True))
        heads.append((e / e.sum(1, keepdims=True)) @ v[:, hh * d:(hh + 1) * d])
    wv = np.concatenate(heads, axis=1)
    expected = wv @ x.out.weight.double().detach().numpy().T + x.out.bias.double().detach().numpy()
    np.testing.assert_allclose(attn0[0].double().numpy(), expected, atol=2e-3)


def test_window_at_full_width_changes_nothing(whisper_adapter, audio, dark_suit_extraction,
                                              reference):
    maps = dark_suit_extraction[1].maps["encoder"]
    with whisper_adapter.attention_window(1500):
        w, s, pad, _ = _capture_encoder(whisper_adapter, audio)
        text = whisper_adapter.transcribe(audio).text
    assert text == reference.text
    assert np.array_equal(w, maps.weights) and np.array_equal(s, maps.scores)
    # the mask path with a mask that allows every key gives the same maps (float rounding)
    with whisper_adapter.attention_window(1499, always_mask=True):
        w2, s2, _, _ = _capture_encoder(whisper_adapter, audio)
    np.testing.assert_allclose(w2.astype(np.float32), maps.weights.astype(np.float32), atol=2e-3)
    np.testing.assert_allclose(s2.astype(np.float32), maps.scores.astype(np.float32), atol=2e-2)
    assert not whisper_adapter.model.encoder.blocks[0].attn.__dict__.get("qkv_attention")


def test_span_removal_empty_and_whole(whisper_adapter, audio, reference):
    dur = len(audio) / 16000
    empty = iv.span_removal(whisper_adapter, audio, 1.0, 1.0, reference=reference.text)
    assert empty[1].transcript == reference.text and empty[1].wer == 0
    whole = iv.span_removal(whisper_adapter, audio, 0.0, dur, reference=reference.text)
    said = whole[1].transcript
    print(f"decoder says with every audio frame replaced by padding: {said!r}")
    assert not set(normalise_words(said)) & set(normalise_words(reference.text))
    assert whole[1].wer >= 1.0 or not said  # every original word deleted or substituted
    assert [v.variant for v in whole] == ["original", f"without 0.00-{dur:.2f} s (padding)"]


def test_replace_frames_edit_by_hand(whisper_adapter):
    from steve_whisper.interventions import fill_frames, padding_mel, replace_frames

    fill = fill_frames(whisper_adapter.model, "padding")
    with torch.no_grad():  # independent: the encoder on a zero mel
        direct = whisper_adapter.model.encoder(torch.zeros(1, 80, 3000))
    assert torch.equal(fill, direct)
    assert torch.equal(padding_mel(80), torch.zeros(80, 3000))
    x = torch.randn(1, 1500, fill.shape[-1])
    y = replace_frames(10, 20, fill)(x)
    assert torch.equal(y[:, 10:20], fill[:, 10:20]) and torch.equal(y[:, :10], x[:, :10])
    assert torch.equal(y[:, 20:], x[:, 20:])
    silence = fill_frames(whisper_adapter.model, "silence")
    assert not torch.equal(silence, fill)


def test_steer_scale_one_reproduces_original(whisper_adapter, audio, reference):
    rows = iv.steer(whisper_adapter, audio, "encoder.blocks.2.mlp.1", 17, 1.0,
                    reference=reference.text)
    assert [r.variant for r in rows] == ["original", "steered"]
    assert rows[1].transcript == reference.text and rows[1].wer == 0.0


def test_scale_neuron_edit_by_hand():
    from steve_whisper.interventions import scale_neuron

    x = torch.randn(1, 1500, 8)
    y = scale_neuron(3, 0.5, 4, 9)(x)
    expected = x.clone()
    for t in range(4, 9):
        expected[0, t, 3] = x[0, t, 3] * 0.5
    assert torch.equal(y, expected)
    assert torch.equal(scale_neuron(3, 1.0)(x), x)


class ToySAE:
    """A standard ReLU SAE written out by hand (d_in 3, d_sae 2)."""

    hook_name = "encoder.blocks.0"
    d_sae = 2
    W_enc = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]])
    b_enc = torch.tensor([0.0, -0.5])
    W_dec = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    b_dec = torch.tensor([0.1, 0.0, 0.0])

    def encode(self, x):
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, c, like=None):
        return c @ self.W_dec + self.b_dec


def test_sae_edit_by_hand():
    from steve_whisper.interventions import sae_edit

    x = torch.tensor([[[1.1, 2.0, 0.5], [0.1, 0.0, 0.0], [3.0, 3.0, 3.0]]])  # (1, 3, 3)
    sae = ToySAE()
    assert torch.equal(sae_edit(sae, 0, 1.0)(x), x)  # scale 1: the original exactly
    # frame 0: (x - b_dec) = (1, 2, .5) -> pre = (1.5, 1.5) -> f = (1.5, 1.0)
    y = sae_edit(sae, 0, 3.0, 0, 1)(x)
    assert torch.allclose(y[0, 0], torch.tensor([1.1, 2.0, 0.5]) + 2 * 1.5 * torch.tensor(
        [1.0, 2.0, 0.0]))
    assert torch.equal(y[0, 1:], x[0, 1:])
    r = sae_edit(sae, None, 1.0, 0, 1)(x)  # reconstruction: 1.5*(1,2,0) + 1*(0,1,1) + b_dec
    assert torch.allclose(r[0, 0], torch.tensor([1.6, 4.0, 1.0]))


def test_encoder_lens_last_layer_is_normal_decoding(whisper_adapter, audio, reference):
    last = whisper_adapter.num_layers("encoder") - 1
    t = whisper_adapter.transcribe(audio, edits=whisper_adapter.encoder_lens_edits(last))
    assert t.text == reference.text


def test_decoder_lens_equals_independent_forward(whisper_adapter, audio, reference):
    model = whisper_adapter.model
    tokens = reference.tokens
    lens = whisper_adapter.decoder_lens(audio, tokens)
    with torch.no_grad():
        feats = model.encoder(whisper_adapter.mel(audio)[None])
        logits = model.decoder(torch.tensor(tokens)[None], feats)[0]  # plain forward, no hooks
        # layer 0 by hand: embeddings, block 0, final ln, token embedding
        dec = model.decoder
        h = dec.token_embedding(torch.tensor(tokens)[None]) + dec.positional_embedding[:len(tokens)]
        h = dec.blocks[0](h, feats, mask=dec.mask)
        l0 = dec.ln(h)[0] @ dec.token_embedding.weight.T
    np.testing.assert_allclose(lens.probs[-1], torch.softmax(logits, -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(lens.probs[0], torch.softmax(l0, -1).numpy(), atol=1e-6)
    table = iv.decoder_lens_table(whisper_adapter, audio, tokens, top=5)
    last = torch.softmax(logits, -1)
    top = last.topk(5, -1)
    assert np.array_equal(table.top_tokens[-1], top.indices.numpy())
    np.testing.assert_allclose(table.top_probs[-1], top.values.numpy(), atol=1e-6)
    rows = iv.decoder_lens_rows(table)
    assert len(rows) == lens.probs.shape[0] * len(tokens)


def test_lm_next_tokens_independent(whisper_adapter):
    model = whisper_adapter.model
    nt = whisper_adapter.lm_next_tokens(" rug", 5)
    # tiny.en: <|startoftranscript|> <|notimestamps|>, then " rug" as GPT-2 tokens
    import tiktoken  # noqa: F401  (whisper's tokenizer backend)
    from whisper.tokenizer import get_tokenizer

    tok = get_tokenizer(False)
    seq = [tok.sot, tok.no_timestamps] + tok.encoding.encode(" rug")
    assert nt.prompt_tokens == seq
    with torch.no_grad():
        feats = model.encoder(torch.zeros(1, 80, 3000))
        logits = model.decoder(torch.tensor(seq)[None], feats)[0, -1]
    order = np.argsort(-logits.numpy())[:5]
    assert nt.tokens == order.tolist()
    np.testing.assert_allclose(nt.logits, logits.numpy()[order], rtol=1e-6)


def test_nearest_tokens_by_numpy(whisper_adapter):
    from whisper.tokenizer import get_tokenizer

    tok = get_tokenizer(False)
    got = whisper_adapter.nearest_tokens(" rug", 5)
    E = whisper_adapter.model.decoder.token_embedding.weight.detach().double().numpy()[:tok.eot]
    E = E - E.mean(0)
    ids = tok.encoding.encode(" rug")
    v = E[ids].mean(0)
    cos = E @ v / (np.linalg.norm(E, axis=1) * np.linalg.norm(v))
    cos[ids] = -2
    order = np.argsort(-cos)[:5]
    assert [g[0] for g in got] == order.tolist()
    np.testing.assert_allclose([g[2] for g in got], cos[order], atol=1e-5)


def _small_sae(site="encoder.blocks.2", d_in=384, d_sae=16):
    from steve_qt.core.features.sae import SAE

    g = torch.Generator().manual_seed(0)
    return SAE(W_enc=torch.randn(d_in, d_sae, generator=g) * 0.1, b_enc=torch.zeros(d_sae),
               W_dec=torch.randn(d_sae, d_in, generator=g) * 0.1, b_dec=torch.zeros(d_in),
               architecture="topk", k=4, hook_name=site, model_name="whisper")


def test_sae_edit_with_the_project_sae():
    from steve_whisper.interventions import sae_edit

    sae = _small_sae()
    x = torch.randn(1, 1500, 384)
    assert torch.equal(sae_edit(sae, 3, 1.0)(x), x)
    codes = sae.encode(x[0, 5:9])
    y = sae_edit(sae, 3, 0.0, 5, 9)(x)
    expected = x[0, 5:9] - codes[:, 3:4] * sae.W_dec[3]  # f_F switched off
    torch.testing.assert_close(y[0, 5:9], expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(y[0, :5], x[0, :5]) and torch.equal(y[0, 9:], x[0, 9:])


def test_steer_cli_with_sae_scale_one(tmp_path, dark_suit, reference, capsys):
    import csv

    from steve_qt.cli import main
    from steve_qt.core.features.sae import save_sae

    save_sae(_small_sae(), tmp_path / "sae")
    out = tmp_path / "s.csv"
    assert main(["steer", str(dark_suit), "--sae", str(tmp_path / "sae"), "--feature", "3",
                 "--scale", "1", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["variant", "transcript", "wer", "diff"]
    assert [r[0] for r in rows[1:]] == ["original", "reconstruction", "steered"]
    assert rows[1][1] == reference.text and rows[3][1] == reference.text
    print(f"random SAE reconstruction says: {rows[2][1]!r}")
    capsys.readouterr()
    assert main(["steer", str(dark_suit), "--sae", str(tmp_path / "sae"), "--feature", "16",
                 "--scale", "0"]) == 2
    assert "there are 16 SAE features" in capsys.readouterr().err


def test_ablate_cli_writes_the_variants_of_span_removal(tmp_path, dark_suit, whisper_adapter,
                                                        reference, capsys):
    import csv

    from steve_qt.cli import main
    from steve_qt.core.speech.audio import load_audio
    from steve_qt.core.interventions.tables import span_removal

    out = tmp_path / "a.csv"
    assert main(["ablate", str(dark_suit), "--span", "0.9", "1.6", "--out", str(out)]) == 0
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    want = span_removal(whisper_adapter, load_audio(dark_suit).samples, 0.9, 1.6)
    assert rows[0] == ["variant", "transcript", "wer", "diff"]
    assert rows[1:] == [list(v.row()) for v in want]
    assert rows[1][1] == reference.text
    capsys.readouterr()
    assert main(["ablate", str(dark_suit), "--span", "0.9", "1.6", "--out", str(out)]) == 2
    assert "use --force" in capsys.readouterr().err  # before the model runs
