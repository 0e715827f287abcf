"""wav2vec 2.0 adapter: tiny random models saved with save_pretrained, loaded through the entry point.

Checks attention captured from q_proj/k_proj hooks against transformers' own output_attentions,
a head recomputed by hand in numpy, the frame grid against the model's frame count, the CTC
transcript, and the refusals (bad directory, offline hub id, memory limit, short audio, cancel).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from steve_qt.core.models.adapters import Adapter, load_adapter  # noqa: E402
from steve_qt.core.attention.maps import softmax  # noqa: E402
from steve_qt.core.errors import Cancelled, SteveError  # noqa: E402
from steve_qt.core.frames import FrameGrid  # noqa: E402

SR = 16000
N_LAYERS, N_HEADS, HIDDEN = 2, 2, 32
VOCAB = ["<pad>", "<unk>", "|", "a", "b", "c", "d", "e", "f", "g", "h", "i"]


# --- tiny models (conftest-style helpers, local to this file) -----------------------------------
def tiny_config(stable: bool = False):
    return transformers.Wav2Vec2Config(
        hidden_size=HIDDEN,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS,
        intermediate_size=37,
        conv_dim=(16,) * 7,
        vocab_size=len(VOCAB),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        do_stable_layer_norm=stable,
        feat_extract_norm="layer" if stable else "group",
        architectures=None,
    )


def save_tiny(path, ctc: bool, stable: bool = False, seed: int = 0) -> None:
    """Random model (+ tokenizer and feature extractor for CTC) saved to ``path``."""
    torch.manual_seed(seed)
    cls = transformers.Wav2Vec2ForCTC if ctc else transformers.Wav2Vec2Model
    cls(tiny_config(stable)).save_pretrained(path)
    if ctc:
        vocab_file = path / "vocab.json"
        vocab_file.write_text(json.dumps({t: i for i, t in enumerate(VOCAB)}), encoding="utf-8")
        tok = transformers.Wav2Vec2CTCTokenizer(str(vocab_file))
        fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
        transformers.Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(path)


def speechy(n: int, seed: int = 1) -> np.ndarray:
    """Noise with a slow envelope and a tone: float32 mono at 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    x = 0.1 * rng.standard_normal(n) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.2 * np.sin(2 * np.pi * 220 * t)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2v")
    dirs = {
        "ctc": root / "ctc",
        "ctc_stable": root / "ctc_stable",
        "base": root / "base",
    }
    save_tiny(dirs["ctc"], ctc=True, stable=False, seed=0)
    save_tiny(dirs["ctc_stable"], ctc=True, stable=True, seed=1)
    save_tiny(dirs["base"], ctc=False, seed=2)
    return dirs


@pytest.fixture(scope="module")
def odd_dirs(tmp_path_factory):
    """A model whose feature extractor says do_normalize=False, and a config that claims a CTC
    head the weights do not have."""
    root = tmp_path_factory.mktemp("w2v_odd")
    raw, headless = root / "raw", root / "headless"
    save_tiny(raw, ctc=False, seed=3)
    transformers.Wav2Vec2FeatureExtractor(do_normalize=False).save_pretrained(raw)
    save_tiny(headless, ctc=False, seed=4)
    cfg = json.loads((headless / "config.json").read_text())
    cfg["architectures"] = ["Wav2Vec2ForCTC"]
    (headless / "config.json").write_text(json.dumps(cfg))
    return {"raw": raw, "headless": headless}


@pytest.fixture(scope="module")
def adapters(model_dirs):
    return {k: load_adapter("wav2vec2:" + str(d)) for k, d in model_dirs.items()}


@pytest.fixture(scope="module")
def audio3s():
    return speechy(3 * SR)


@pytest.fixture(scope="module")
def extraction(adapters, audio3s):
    return adapters["ctc"].extract(audio3s)


def expected_frames(n: int) -> int:
    return (n - 400) // 320 + 1


# --- loading and protocol ---------------------------------------------------------------------
def test_loads_through_entry_point(adapters):
    a = adapters["ctc"]
    assert isinstance(a, Adapter)
    assert a.name == "wav2vec2" and a.components == ("encoder",) and a.sample_rate == SR
    assert a.model_id == "wav2vec2:ctc"
    assert a.loaded.has_ctc_head and a.loaded.tokenizer is not None and a.loaded.normalize
    assert not adapters["base"].loaded.has_ctc_head
    assert a.num_windows(10 * SR) == 1
    assert a.grid == FrameGrid(320, 400, SR)


def test_shapes_and_grid(extraction, audio3s):
    m = extraction.maps["encoder"]
    t = expected_frames(len(audio3s))
    assert t == 149
    assert m.weights.shape == (N_LAYERS, 1, N_HEADS, t, t) == m.scores.shape
    assert m.weights.dtype == np.float16 and m.scores.dtype == np.float16
    assert m.padding_mass.shape == (N_LAYERS, N_HEADS, t) and not m.padding_mass.any()
    assert m.component == "encoder" and m.num_samples == len(audio3s) and m.sample_rate == SR
    assert m.query_grid == m.key_grid == FrameGrid(320, 400, SR)
    assert extraction.model == "wav2vec2:ctc" and extraction.num_windows == 1


@pytest.mark.parametrize("n", [400, 719, 720, 1040, 12345, 48000])
def test_grid_matches_model_frame_count(adapters, n):
    a = adapters["ctc"]
    model_t = int(a.loaded.model._get_feat_extract_output_lengths(n))
    assert a.grid.frames_valid(n) == model_t == expected_frames(n)
    m = a.extract(speechy(n)).maps["encoder"]
    assert m.num_queries == m.num_keys == model_t


@pytest.mark.parametrize("which", ["ctc", "ctc_stable"])
def test_weights_match_output_attentions(adapters, audio3s, which):
    """Hooked q/k -> softmax equals transformers' own eager attention weights (float32)."""
    from steve_wav2vec2.capture import capture_attention

    a = adapters[which]
    assert bool(a.loaded.config.do_stable_layer_norm) == (which == "ctc_stable")
    inputs = a.input_values(audio3s)
    ours: dict[int, tuple] = {}

    def keep(n, s, w):
        ours[n] = (s.clone(), w.clone())

    from steve_wav2vec2.capture import ATTENTION

    model = a.loaded.model
    assert model.config._attn_implementation == ATTENTION  # what extract() runs
    model.set_attn_implementation("eager")  # transformers returns attentions from eager only
    try:
        out = capture_attention(
            a.loaded.encoder_layers, lambda: model(inputs, output_attentions=True), keep
        )
    finally:
        model.set_attn_implementation(ATTENTION)
    assert sorted(ours) == list(range(N_LAYERS)) and len(out.attentions) == N_LAYERS
    for n in range(N_LAYERS):
        ref = out.attentions[n][0].float()  # (M, T, T)
        scores, weights = ours[n]
        assert weights.shape == ref.shape == (N_HEADS, 149, 149)
        assert (weights - ref).abs().max().item() < 1e-5
        # scores are the logits of those weights: log w = s - logsumexp(s)
        log_w = torch.log_softmax(scores.double(), dim=-1)
        assert (log_w.exp() - ref.double()).abs().max().item() < 1e-5
    # and what extract() stores is eager attention's weights rounded to float16, bit for bit
    m = a.extract(audio3s).maps["encoder"]
    for n in range(N_LAYERS):
        ref = out.attentions[n][0].float().numpy()
        assert np.array_equal(m.weights[n, 0], ref.astype(np.float16)), n
        np.testing.assert_allclose(
            m.scores[n, 0].astype(np.float32), ours[n][0].numpy(), atol=2e-3, rtol=1e-3
        )


def full_reference(q, k, num_heads):
    """The straightforward computation: float32 (M, T, T) scores and softmax, then float16."""
    from steve_wav2vec2.capture import attention_from_projections

    scores, weights = attention_from_projections(q, k, num_heads)
    return scores.half(), weights.half(), scores, weights


def captured(q, k, num_heads, v=None, scratch=False):
    """attention_with_capture on projections (1, T, M*D): (scores, weights) float16 (M, T, T)
    and the attention output (1, T, M, D); values ``v`` (1, T, M*D) default to zeros."""
    from steve_wav2vec2.capture import attention_with_capture

    t = q.shape[1]
    heads = lambda x: x.view(1, t, num_heads, -1).transpose(1, 2)  # noqa: E731  (1, M, T, D)
    v = torch.zeros_like(k) if v is None else v
    s_out = torch.full((num_heads, t, t), float("nan"), dtype=torch.float16)
    w_out = torch.full((num_heads, t, t), float("nan"), dtype=torch.float16)
    d = q.shape[-1] // num_heads
    buf = torch.full((1, num_heads, t, t), float("nan")) if scratch else None
    out = attention_with_capture(heads(q), heads(k), heads(v), d**-0.5, s_out, w_out, buf)
    return s_out, w_out, out


def assert_float16_of(got: np.ndarray, ref32: np.ndarray) -> None:
    """``got`` (float16) is ``ref32`` (float32) rounded to float16, up to one float16 step where
    float32 rounding differs (a different matmul blocking or scaling order); nearly every element
    is bit-identical to ``ref32.astype(float16)``."""
    ref = ref32.astype(np.float64)
    step = np.spacing(np.abs(ref32).astype(np.float16)).astype(np.float64)  # float16 ulp
    err = np.abs(got.astype(np.float64) - ref)
    assert (err <= step + 1e-6 * np.abs(ref).max()).all(), float((err / step).max())
    assert (got == ref32.astype(np.float16)).mean() > 0.999


@pytest.mark.parametrize("t, d", [(1, 16), (37, 16), (149, 16), (101, 24)])
@pytest.mark.parametrize("scratch", [False, True], ids=["new memory", "scratch"])
def test_capture_is_eager_attention_bit_for_bit(t, d, scratch):
    """Weights and output are those of transformers' own eager attention function, bit for bit;
    the scores are the plain float32 computation rounded to float16 (D = 24: D**-0.5 is not a
    power of two, so the order of scaling may move a float32 rounding)."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import eager_attention_forward

    g = torch.Generator().manual_seed(t + d)
    m = 3
    q = 3 * torch.randn(1, t, m * d, generator=g)
    k = 3 * torch.randn(1, t, m * d, generator=g)
    v = torch.randn(1, t, m * d, generator=g)
    _, _, s32, w32 = full_reference(q, k, m)
    s_out, w_out, out = captured(q, k, m, v, scratch)
    heads = lambda x: x.view(1, t, m, d).transpose(1, 2)  # noqa: E731

    class Module(torch.nn.Module):
        pass

    eager_out, eager_w = eager_attention_forward(Module().eval(), heads(q), heads(k), heads(v),
                                                 None, scaling=d**-0.5)
    assert torch.equal(out, eager_out) and out.shape == (1, t, m, d)
    assert torch.equal(w_out, eager_w[0].half())
    assert_float16_of(s_out.numpy(), s32.numpy())
    assert_float16_of(w_out.numpy(), w32.numpy())
    np.testing.assert_allclose(w_out.double().sum(-1).numpy(), 1.0, atol=1e-2)


def test_capture_with_scratch_does_not_allocate_the_square():
    """With a scratch tensor the (M, T, T) scores and weights live in it: no new float32 square
    (the point of the scratch: fresh memory is what made the capture slow)."""
    from torch.profiler import ProfilerActivity, profile

    from steve_wav2vec2.capture import attention_with_capture

    g = torch.Generator().manual_seed(3)
    m, d, t = 3, 16, 200
    q, k, v = (torch.randn(1, m, t, d, generator=g) for _ in range(3))
    s_out, w_out = (torch.empty(m, t, t, dtype=torch.float16) for _ in range(2))
    scratch = torch.empty(1, m, t, t)

    def allocated(buf) -> int:
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            attention_with_capture(q, k, v, d**-0.5, s_out, w_out, buf)
        return sum(max(0, e.self_cpu_memory_usage) for e in prof.key_averages())

    square = m * t * t * 4
    assert allocated(None) >= square  # the scores (softmax in place): what the check can see
    # the output (1, M, T, D) and its (1, T, M, D) copy: 2 x 38 400 bytes
    assert allocated(scratch) <= 2 * m * t * d * 4 + 1024


@pytest.mark.parametrize("which, n", [("ctc", 3 * SR), ("ctc_stable", 3 * SR), ("ctc", 400)])
def test_extract_equals_full_computation(adapters, which, n):
    """What extract() stores (T = 149 and T = 1) equals the float32 reference
    on the projections hooked in that same run, rounded to float16."""
    from steve_wav2vec2.capture import attention_from_projections

    a = adapters[which]
    audio = speechy(n)
    seen: dict[tuple[str, int], torch.Tensor] = {}  # q/k projections of the extract() run itself
    hooks = [getattr(layer.attention, f"{kind}_proj").register_forward_hook(
                 lambda _m, _i, o, key=(kind, i): seen.__setitem__(key, o.detach().clone()))
             for i, layer in enumerate(a.loaded.encoder_layers) for kind in "qk"]
    try:
        m = a.extract(audio).maps["encoder"]
    finally:
        for h in hooks:
            h.remove()
    ref = {i: tuple(x.numpy() for x in attention_from_projections(seen["q", i], seen["k", i],
                                                                  N_HEADS))
           for i in range(N_LAYERS)}
    assert m.num_queries == expected_frames(n)
    for i in range(N_LAYERS):
        assert_float16_of(m.scores[i, 0], ref[i][0])
        assert_float16_of(m.weights[i, 0], ref[i][1])


@pytest.mark.parametrize("which", ["ctc", "ctc_stable"])
def test_capturing_forward_computes_what_the_plain_model_computes(adapters, which, audio3s):
    """Capturing does not change what the model computes: the logits of extract()'s forward pass
    equal, bit for bit, those of the same model with nothing captured and those with transformers'
    eager attention; transformers' default (SDPA) differs from them by float32 rounding only."""
    from steve_wav2vec2.capture import ATTENTION

    a = adapters[which]
    x = a.input_values(audio3s)
    _maps, logits = a.run(audio3s, a.frames_for(len(audio3s)), None, None)
    model = a.loaded.model
    runs = {}
    with torch.no_grad():
        runs[ATTENTION] = model(x).logits[0].numpy()  # nothing captured
        for impl in ("eager", "sdpa"):
            model.set_attn_implementation(impl)
            try:
                runs[impl] = model(x).logits[0].numpy()
            finally:
                model.set_attn_implementation(ATTENTION)
    assert np.array_equal(logits, runs[ATTENTION]) and np.array_equal(logits, runs["eager"])
    np.testing.assert_allclose(logits, runs["sdpa"], atol=1e-4, rtol=1e-4)
    assert not np.array_equal(logits, runs["sdpa"])  # SDPA's kernel rounds differently


def test_a_held_extraction_keeps_its_numbers_when_the_next_reuses_memory(adapters):
    """The result arrays come from a pool that reuses the memory of dropped results: a result
    still held is never written by the next extraction, a dropped one's memory is used again."""
    from steve_wav2vec2.adapter import RESULTS

    a = adapters["ctc"]
    x1, x2 = speechy(SR), 0.5 * speechy(SR)[::-1].copy()
    held = a.extract(x1).maps["encoder"]
    before = held.weights.copy(), held.scores.copy()
    reused = RESULTS.reused
    a.extract(x2)  # dropped at once
    third = a.extract(x2).maps["encoder"]  # gets the memory of the one just dropped
    assert RESULTS.reused > reused
    assert np.array_equal(held.weights, before[0]) and np.array_equal(held.scores, before[1])
    assert not np.array_equal(third.weights, held.weights)
    assert np.array_equal(third.weights, a.extract(x2).maps["encoder"].weights)


def test_weight_rows_sum_to_one(extraction):
    w = extraction.maps["encoder"].weights.astype(np.float64)
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=3e-3)
    assert (w >= 0).all()


def test_one_head_by_hand(adapters, audio3s):
    """Scores of layer 1, head 1 recomputed in numpy from the hooked projections."""
    a = adapters["ctc_stable"]
    att = a.loaded.encoder_layers[1].attention
    seen = {}
    hs = [
        att.q_proj.register_forward_hook(lambda m, i, o: seen.__setitem__("q", o.detach().numpy().copy())),
        att.k_proj.register_forward_hook(lambda m, i, o: seen.__setitem__("k", o.detach().numpy().copy())),
    ]
    try:
        m = a.extract(audio3s).maps["encoder"]
    finally:
        for h in hs:
            h.remove()
    d = HIDDEN // N_HEADS
    q = seen["q"][0, :, d : 2 * d].astype(np.float64)  # (T, D) head 1
    k = seen["k"][0, :, d : 2 * d].astype(np.float64)
    s = q @ k.T / np.sqrt(d)
    got = m.scores[1, 0, 1].astype(np.float64)
    np.testing.assert_allclose(got, s, atol=2e-3 + 1e-3 * np.abs(s).max())
    np.testing.assert_allclose(m.weights[1, 0, 1].astype(np.float32), softmax(s), atol=1e-3)


def test_normalisation_matches_feature_extractor(adapters, audio3s):
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
    ref = fe(audio3s, sampling_rate=SR, return_tensors="np").input_values[0]
    ours = adapters["ctc"].input_values(audio3s)[0].numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert abs(ours.mean()) < 1e-5 and abs(ours.std() - 1) < 1e-4


def test_normalisation_follows_config(adapters, odd_dirs, audio3s):
    assert adapters["base"].loaded.normalize  # no feature extractor config: normalise
    raw = load_adapter(f"wav2vec2:{odd_dirs['raw']}")
    assert not raw.loaded.normalize
    np.testing.assert_array_equal(raw.input_values(audio3s)[0].numpy(), audio3s)


def test_ctc_config_without_trained_head(odd_dirs, audio3s):
    from steve_qt.core.warnings import SteveWarning

    with pytest.warns(SteveWarning, match="no trained CTC head"):
        a = load_adapter(f"wav2vec2:{odd_dirs['headless']}")
    assert not a.loaded.has_ctc_head
    ex = a.extract(speechy(8000))
    assert ex.transcript.frame_labels is None and ex.transcript.text == ""


# --- transcript --------------------------------------------------------------------------------
def test_ctc_transcript_matches_processor(adapters, model_dirs, extraction, audio3s):
    tr = extraction.transcript
    t = expected_frames(len(audio3s))
    assert tr.frame_labels is not None and len(tr.frame_labels) == t
    # independent: transformers' processor and model, greedy argmax, batch_decode
    proc = transformers.Wav2Vec2Processor.from_pretrained(model_dirs["ctc"])
    inputs = proc(audio3s, sampling_rate=SR, return_tensors="pt").input_values
    with torch.no_grad():
        ids = adapters["ctc"].loaded.model(inputs).logits[0].argmax(-1)
    assert tr.text == proc.batch_decode(ids[None])[0]
    expect_labels = ["" if i == 0 else VOCAB[i] for i in ids.tolist()]
    assert tr.frame_labels == expect_labels
    assert " ".join(w.text for w in tr.words) == tr.text.replace("|", " ")
    grid = FrameGrid(320, 400, SR)
    for w in tr.words:
        assert 0 <= w.start_s < w.end_s <= grid.extent_seconds(t)[1]
        assert 0 < w.probability <= 1


def test_greedy_words_on_known_logits(adapters):
    from steve_wav2vec2.ctc import greedy_transcript

    # frames: _ a a _ a | b b _ c    (_ = blank)  ->  "aa bc"
    ids = [0, 3, 3, 0, 3, 2, 4, 4, 0, 5]
    logits = np.full((len(ids), len(VOCAB)), -5.0, np.float32)
    logits[np.arange(len(ids)), ids] = 5.0
    grid = FrameGrid(320, 400, SR)
    tr = greedy_transcript(logits, adapters["ctc"].loaded.tokenizer, 0, grid)
    assert tr.text == "aa bc"
    assert tr.frame_labels == ["", "a", "a", "", "a", "|", "b", "b", "", "c"]
    assert tr.tokens == [3, 3, 2, 4, 5] and tr.token_texts == ["a", "a", "|", "b", "c"]
    assert [w.text for w in tr.words] == ["aa", "bc"]
    # frame i's drawing span starts at (320 i + 40) / 16000 s and lasts 20 ms
    assert tr.words[0].start_s == pytest.approx((320 * 1 + 40) / SR)
    assert tr.words[0].end_s == pytest.approx((320 * 4 + 40 + 320) / SR)
    assert tr.words[1].start_s == pytest.approx((320 * 6 + 40) / SR)
    assert tr.words[1].end_s == pytest.approx((320 * 9 + 40 + 320) / SR)
    p = np.exp(5.0) / (np.exp(5.0) + 11 * np.exp(-5.0))
    assert tr.words[0].probability == pytest.approx(p, rel=1e-5)


def test_model_without_ctc_head(adapters, audio3s):
    ex = adapters["base"].extract(audio3s)
    assert ex.transcript.text == "" and ex.transcript.words == []
    assert ex.transcript.frame_labels is None
    assert ex.maps["encoder"].weights.shape == (N_LAYERS, 1, N_HEADS, 149, 149)
    assert ex.meta["ctc_head"] is False


# --- progress, cancel, limits, bad input -----------------------------------------------------
def test_progress_per_layer(adapters):
    calls = []
    adapters["ctc"].extract(speechy(8000), progress=lambda d, n, w: calls.append((d, n, w)))
    # the count from 1, the layers (as everywhere) from 0
    assert calls == [(1, N_LAYERS, "wav2vec2 encoder layer 0"),
                     (2, N_LAYERS, "wav2vec2 encoder layer 1")]


def test_cancel(adapters):
    a = adapters["ctc"]
    with pytest.raises(Cancelled):
        a.extract(speechy(8000), should_cancel=lambda: True)
    calls = []
    # cancel once the first layer is done: the second layer must not be reported
    with pytest.raises(Cancelled):
        a.extract(
            speechy(8000),
            progress=lambda d, n, w: calls.append(d),
            should_cancel=lambda: len(calls) >= 1,
        )
    assert calls == [1]
    # the hooks were removed: a normal run still works and reports every layer
    calls.clear()
    a.extract(speechy(8000), progress=lambda d, n, w: calls.append(d))
    assert calls == [1, 2]


def test_memory_limit(adapters, audio3s, monkeypatch):
    a = adapters["ctc"]
    t = 149
    # stored float16 weights + scores; the float32 scores and softmax weights of one layer
    need = N_LAYERS * N_HEADS * t * t * 2 * 2 + 2 * N_HEADS * t * t * 4
    monkeypatch.setenv("STEVE_QT_MAX_ATTENTION_BYTES", str(need - 1))
    with pytest.raises(SteveError, match=rf"would need {need} bytes.*shorter"):
        a.extract(audio3s)
    monkeypatch.setenv("STEVE_QT_MAX_ATTENTION_BYTES", str(need))
    a.extract(audio3s)
    monkeypatch.delenv("STEVE_QT_MAX_ATTENTION_BYTES")
    a.max_attention_bytes = 1000
    try:
        with pytest.raises(SteveError, match="would need"):
            a.extract(audio3s)
    finally:
        a.max_attention_bytes = None


def test_short_and_bad_audio(adapters):
    a = adapters["ctc"]
    with pytest.raises(SteveError, match=r"shorter than one wav2vec 2.0 frame \(25 ms\)"):
        a.extract(speechy(399))
    assert a.extract(speechy(400)).maps["encoder"].weights.shape[-1] == 1
    with pytest.raises(SteveError, match="mono"):
        a.extract(np.zeros((8000, 2), np.float32))
    with pytest.raises(SteveError, match="float"):
        a.extract(np.zeros(8000, np.int16))
    with pytest.raises(SteveError, match="NaN"):
        a.extract(np.full(8000, np.nan, np.float32))
    with pytest.raises(SteveError, match="only encoder"):
        a.extract(speechy(8000), components=["cross"])
    with pytest.raises(SteveError, match="window"):
        a.extract(speechy(8000), window=1)


def test_no_model_given():
    with pytest.raises(SteveError, match="directory .*hub id"):
        load_adapter("wav2vec2")


def test_bad_directories(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SteveError, match="no config.json") as err:
        load_adapter(f"wav2vec2:{empty}")
    assert str(empty) in str(err.value)

    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(SteveError, match="not hold a wav2vec 2.0 model") as err:
        load_adapter(f"wav2vec2:{other}")
    assert str(other) in str(err.value)

    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    tiny_config().save_pretrained(no_weights)
    with pytest.raises(SteveError, match="cannot load the wav2vec 2.0 weights") as err:
        load_adapter(f"wav2vec2:{no_weights}")
    assert str(no_weights) in str(err.value)

    with pytest.raises(SteveError, match="model directory not found"):
        load_adapter(f"wav2vec2:{tmp_path / 'missing' / 'dir'}")
    a_file = tmp_path / "model.bin"
    a_file.write_bytes(b"x")
    with pytest.raises(SteveError, match="is a file"):
        load_adapter(f"wav2vec2:{a_file}")


def test_hub_id_offline(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    t0 = time.perf_counter()
    with pytest.raises(SteveError, match=r"cannot download nobody-here/no-such-wav2vec2: no network"):
        load_adapter("wav2vec2:nobody-here/no-such-wav2vec2")
    assert time.perf_counter() - t0 < 10


def test_installed_transformers_meets_the_declared_floor():
    """pyproject declares the oldest transformers the adapter works with.

    How the floor was found: with transformers 4.56.0 (huggingface-hub 0.35.3, tokenizers 0.22.1
    installed into a separate --target directory put first on PYTHONPATH) all of this file
    passes; with 4.55.4 loading fails, ``Wav2Vec2ForCTC.__init__() got an unexpected keyword
    argument 'dtype'`` (4.56.0 renamed from_pretrained's ``torch_dtype`` to ``dtype``;
    ``set_attn_implementation``, which the output_attentions comparison calls, is older)."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement
    from packaging.version import Version

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text("utf-8"))
    (req,) = [Requirement(r) for r in meta["project"]["dependencies"]
              if Requirement(r).name == "transformers"]
    assert str(req.specifier) == ">=4.56"
    assert Version(transformers.__version__) in req.specifier
    model_cls = transformers.PreTrainedModel
    assert callable(getattr(model_cls, "set_attn_implementation", None))
