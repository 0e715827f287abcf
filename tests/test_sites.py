"""Sites and activations: every site kind against an independent forward hook on a plain model.

Whisper: a plain openai-whisper ``Whisper`` built from the adapter's state dict, our own hook
(``model.encoder.blocks[2].mlp[1]`` is the neuron site FREUD and "Interpreting OpenAI's Whisper"
read), the encoder run on the same mel, the decoder on the same tokens. wav2vec 2.0: a plain
transformers model loaded from the saved directory, fed through transformers' own feature
extractor. Also: activations do not depend on attention capture, frames sites never transcribe,
and bad input is one line with exit status 2.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
import whisper

from steve_qt.cli import main
from steve_qt.core.models.adapters import Site
from steve_qt.core.speech.audio import load_audio
from steve_qt.core.errors import SteveError
from steve_qt.core.models.sites import describe_sites, parse_sites, sites_table, validate_sites

ENCODER_SITES = ["encoder.blocks.0", "encoder.blocks.2.mlp.1", "encoder.ln_post"]
DECODER_SITES = ["decoder.blocks.1", "decoder.blocks.3.mlp.1", "decoder.ln"]


# --- core helpers, no model ---------------------------------------------------------------------
FAKE = [Site(f"enc.{l}", 4, "frames", l, "residual") for l in range(3)] + \
       [Site(f"enc.{l}.mlp.1", 8, "frames", l, "mlp") for l in range(3)] + \
       [Site("enc.ln", 4, "frames", None, "ln_post")]


def test_parse_sites_splits_commas_and_drops_duplicates():
    assert parse_sites(["a,b", " c ", "a", ""]) == ["a", "b", "c"]
    assert parse_sites("x") == ["x"] and parse_sites(None) == []


def test_unknown_site_error_is_one_line_listing_the_valid_ones():
    assert [s.name for s in validate_sites(["enc.2", "enc.ln"], FAKE)] == ["enc.2", "enc.ln"]
    with pytest.raises(SteveError) as e:
        validate_sites(["enc.7", "enc.0"], FAKE)
    msg = str(e.value)
    assert "\n" not in msg and "'enc.7'" in msg
    assert msg.endswith("valid sites: enc.{0-2}, enc.{0-2}.mlp.1, enc.ln")
    assert describe_sites(FAKE[:1] + FAKE[2:3]) == "enc.{0,2}"


def test_sites_table_has_one_row_per_site():
    lines = sites_table(FAKE).splitlines()
    assert lines[0].split() == ["name", "dim", "axis", "layer", "kind"]
    assert lines[5].split() == ["enc.1.mlp.1", "8", "frames", "1", "mlp"]
    assert lines[-1].split() == ["enc.ln", "4", "frames", "-", "ln_post"]


# --- Whisper ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def plain_whisper(whisper_adapter):
    """A plain openai-whisper model with the adapter's weights (a separate module tree)."""
    model = whisper.model.Whisper(whisper_adapter.dims)
    model.load_state_dict(whisper_adapter.model.state_dict())
    return model.eval()


def hooked(modules: dict[str, torch.nn.Module], run):
    """Run ``run()`` with plain forward hooks on ``modules``; name -> output[0] (float32 numpy)."""
    got: dict[str, np.ndarray] = {}
    handles = [m.register_forward_hook(
        lambda _m, _i, out, name=name: got.__setitem__(name, out[0].detach().numpy().copy()))
        for name, m in modules.items()]
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    return got


def test_whisper_lists_module_paths_of_the_model(whisper_adapter):
    sites = {s.name: s for s in whisper_adapter.list_sites()}
    assert len(sites) == 2 * (4 * 2 + 1)
    assert sites["encoder.blocks.2.mlp.1"] == Site("encoder.blocks.2.mlp.1", 1536, "frames", 2, "mlp")
    assert sites["encoder.blocks.3"] == Site("encoder.blocks.3", 384, "frames", 3, "residual")
    assert sites["decoder.ln"] == Site("decoder.ln", 384, "tokens", None, "ln_post")
    for name in sites:  # each is a real submodule path
        whisper_adapter.model.get_submodule(name)


def test_whisper_sites_equal_plain_hooks(whisper_adapter, plain_whisper, dark_suit):
    audio = load_audio(dark_suit).samples
    ex = whisper_adapter.extract(audio, components=("encoder", "cross"),
                                 sites=ENCODER_SITES + DECODER_SITES)
    keep = math.ceil(len(audio) / 320)
    assert ex.frame_grid.hop == 320 and ex.frame_grid.offset == 0
    assert ex.maps["encoder"].weights.shape[-1] == keep

    enc = plain_whisper.encoder
    mel = whisper_adapter.mel(audio)[None]  # the mel transcribe feeds
    mods = {"encoder.blocks.0": enc.blocks[0], "encoder.blocks.2.mlp.1": enc.blocks[2].mlp[1],
            "encoder.ln_post": enc.ln_post}
    ref = hooked(mods, lambda: enc(mel))
    assert ref["encoder.blocks.2.mlp.1"].shape == (1500, 1536)
    for name in ENCODER_SITES:
        got = ex.activations[name]
        assert got.dtype == np.float32 and got.shape == (keep, ref[name].shape[1])
        np.testing.assert_allclose(got, ref[name][:keep], rtol=0, atol=1e-4, err_msg=name)

    dec = plain_whisper.decoder
    tokens = torch.tensor(ex.transcript.tokens)[None]
    with torch.no_grad():
        features = enc(mel)
    mods = {"decoder.blocks.1": dec.blocks[1], "decoder.blocks.3.mlp.1": dec.blocks[3].mlp[1],
            "decoder.ln": dec.ln}
    ref = hooked(mods, lambda: dec(tokens, features))
    for name in DECODER_SITES:
        got = ex.activations[name]
        assert got.shape == (len(ex.transcript.tokens), ref[name].shape[1])
        np.testing.assert_allclose(got, ref[name], rtol=0, atol=1e-4, err_msg=name)


def test_whisper_activations_do_not_depend_on_attention_capture(whisper_adapter, dark_suit):
    audio = load_audio(dark_suit).samples
    with_maps = whisper_adapter.extract(audio, components=None, sites=ENCODER_SITES + DECODER_SITES)
    without = whisper_adapter.extract(audio, components=(), sites=ENCODER_SITES + DECODER_SITES)
    assert set(with_maps.maps) == {"encoder", "cross", "decoder"} and not without.maps
    assert with_maps.transcript.tokens == without.transcript.tokens
    for name in ENCODER_SITES + DECODER_SITES:
        assert np.array_equal(with_maps.activations[name], without.activations[name]), name


def test_frames_sites_never_transcribe(whisper_adapter, dark_suit, monkeypatch):
    calls = []
    real = whisper.transcribe
    monkeypatch.setattr(whisper, "transcribe", lambda *a, **k: calls.append(1) or real(*a, **k))
    audio = load_audio(dark_suit).samples
    steps = []
    ex = whisper_adapter.extract(audio, components=(), sites=["encoder.blocks.1"],
                                 progress=lambda d, t, w: steps.append((d, t)))
    assert calls == [] and steps == [(1, 1)]
    assert ex.transcript.text == "" and ex.maps == {}
    ex = whisper_adapter.extract(audio, components=("encoder",), sites=["encoder.blocks.1"])
    assert calls == [] and set(ex.maps) == {"encoder"}
    whisper_adapter.extract(audio, components=(), sites=["decoder.blocks.0"])
    assert calls == [1]  # a tokens site needs the transcript


def test_frames_sites_alone_stop_the_encoder_after_the_deepest_one(whisper_adapter,
                                                                    plain_whisper, dark_suit):
    """Sites alone: the blocks after the deepest site do not run, and the values are those of a
    whole pass through a plain model (bit for bit); with attention or ln_post every block runs."""
    audio = load_audio(dark_suit).samples
    blocks = whisper_adapter.model.encoder.blocks
    ran: list[int] = []
    handles = [b.register_forward_pre_hook(lambda _m, _i, i=i: ran.append(i))
               for i, b in enumerate(blocks)]
    try:
        ex = whisper_adapter.extract(audio, components=(), sites=["encoder.blocks.1.mlp.1",
                                                                  "encoder.blocks.0"])
        assert ran == [0, 1]  # blocks 0 and 1 started, 2 and 3 did not
        ran.clear()
        whisper_adapter.extract(audio, components=(), sites=["encoder.ln_post"])
        assert ran == [0, 1, 2, 3]
        ran.clear()
        whisper_adapter.extract(audio, components=("encoder",), sites=["encoder.blocks.0"])
        assert ran == [0, 1, 2, 3]
    finally:
        for h in handles:
            h.remove()
    enc = plain_whisper.encoder
    mel = whisper_adapter.mel(audio)[None]
    ref = hooked({"encoder.blocks.1.mlp.1": enc.blocks[1].mlp[1],
                  "encoder.blocks.0": enc.blocks[0]}, lambda: enc(mel))
    keep = math.ceil(len(audio) / 320)
    for name, want in ref.items():
        assert np.array_equal(ex.activations[name], want[:keep]), name


def test_whisper_sites_of_a_later_window_are_cropped_to_it(whisper_adapter):
    rng = np.random.default_rng(0)
    audio = (0.01 * rng.standard_normal(480000 + 16000 + 100)).astype(np.float32)
    ex = whisper_adapter.extract(audio, components=(), window=1, sites=["encoder.blocks.3"])
    assert ex.activations["encoder.blocks.3"].shape == (math.ceil(16100 / 320), 384)
    assert ex.frame_grid.offset == 480000


def test_whisper_bad_site_and_empty_audio(whisper_adapter):
    with pytest.raises(SteveError, match=r"unknown site 'encoder\.blocks\.4'; valid sites: "
                                         r"encoder\.blocks\.\{0-3\}"):
        whisper_adapter.extract(np.zeros(16000, np.float32), sites=["encoder.blocks.4"])
    with pytest.raises(SteveError, match="no audio"):
        whisper_adapter.extract(np.zeros(0, np.float32), components=(), sites=["encoder.blocks.0"])


# --- wav2vec 2.0 --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def w2v_dirs(tmp_path_factory):
    pytest.importorskip("transformers")
    from test_wav2vec2 import save_tiny

    root = tmp_path_factory.mktemp("w2v_sites")
    dirs = {"ctc": root / "ctc", "stable": root / "stable"}
    save_tiny(dirs["ctc"], ctc=True, stable=False, seed=0)
    save_tiny(dirs["stable"], ctc=False, stable=True, seed=3)
    return dirs


@pytest.mark.parametrize("which", ["ctc", "stable"])
def test_wav2vec2_sites_equal_plain_hooks(w2v_dirs, which):
    import transformers
    from test_wav2vec2 import speechy

    from steve_qt.core.models.adapters import load_adapter

    adapter = load_adapter(f"wav2vec2:{w2v_dirs[which]}")
    sites = adapter.list_sites()
    prefix = "wav2vec2." if which == "ctc" else ""
    names = [s.name for s in sites]
    expected = [f"{prefix}encoder.layers.0", f"{prefix}encoder.layers.0.feed_forward.intermediate_act_fn",
                f"{prefix}encoder.layers.1", f"{prefix}encoder.layers.1.feed_forward.intermediate_act_fn"]
    assert names == expected + ([f"{prefix}encoder.layer_norm"] if which == "stable" else [])
    assert [s.dim for s in sites[:2]] == [32, 37]

    audio = speechy(16000)
    ex = adapter.extract(audio, sites=names)
    ex0 = adapter.extract(audio, components=(), sites=names)
    num_frames = (len(audio) - 400) // 320 + 1
    assert ex.frame_grid.hop == 320 and ex.frame_grid.receptive_field == 400

    cls = transformers.Wav2Vec2ForCTC if which == "ctc" else transformers.Wav2Vec2Model
    plain = cls.from_pretrained(w2v_dirs[which]).eval()
    base = plain.wav2vec2 if which == "ctc" else plain
    mods = {}
    for n, layer in enumerate(base.encoder.layers):
        mods[f"{prefix}encoder.layers.{n}"] = layer
        mods[f"{prefix}encoder.layers.{n}.feed_forward.intermediate_act_fn"] = \
            layer.feed_forward.intermediate_act_fn
    if which == "stable":
        mods[f"{prefix}encoder.layer_norm"] = base.encoder.layer_norm
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
    values = fe(audio, sampling_rate=16000, return_tensors="pt").input_values

    got: dict[str, np.ndarray] = {}

    def keep(name):
        def hook(_m, _i, out):
            out = out[0] if isinstance(out, tuple) else out
            got[name] = out[0].detach().numpy().copy()
        return hook

    handles = [m.register_forward_hook(keep(n)) for n, m in mods.items()]
    with torch.no_grad():
        plain(values)
    for h in handles:
        h.remove()
    for name in names:
        assert got[name].shape[0] == num_frames
        assert ex.activations[name].shape == got[name].shape
        np.testing.assert_allclose(ex.activations[name], got[name], rtol=0, atol=1e-5, err_msg=name)
        # captured or not, every layer runs eager attention's operations: bit for bit
        assert np.array_equal(ex.activations[name], ex0.activations[name]), name
    assert ex0.maps == {} and set(ex.maps) == {"encoder"}
    with pytest.raises(SteveError, match="unknown site 'encoder.blocks.0'; valid sites: "):
        adapter.extract(audio, sites=["encoder.blocks.0"])


# --- the commands -------------------------------------------------------------------------------
def test_sites_command_prints_the_table(capsys):
    assert main(["sites"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["name", "dim", "axis", "layer", "kind"]
    assert "encoder.blocks.2.mlp.1  1536  frames      2  mlp" in out


def test_activations_command_writes_float16_per_site(whisper_adapter, dark_suit, tmp_path, capsys):
    out = tmp_path / "a.npz"
    argv = ["activations", str(dark_suit), "--site", "encoder.blocks.2.mlp.1",
            "--site", "encoder.blocks.1,decoder.blocks.0", "--out", str(out)]
    assert main(argv) == 0
    audio = load_audio(dark_suit).samples
    ex = whisper_adapter.extract(audio, components=(),
                                 sites=["encoder.blocks.2.mlp.1", "encoder.blocks.1", "decoder.blocks.0"])
    keep = math.ceil(len(audio) / 320)
    with np.load(out, allow_pickle=False) as z:
        assert str(z["format"]) == "steve_qt.activations"
        assert list(z["sites"]) == ["encoder.blocks.2.mlp.1", "encoder.blocks.1", "decoder.blocks.0"]
        assert list(z["site_axis"]) == ["frames", "frames", "tokens"]
        assert list(z["site_dim"]) == [1536, 384, 384] and list(z["site_layer"]) == [2, 1, 0]
        for name, a in ex.activations.items():
            assert z[f"act:{name}"].dtype == np.float16
            assert np.array_equal(z[f"act:{name}"], a.astype(np.float16))
        assert int(z["num_frames"]) == keep and int(z["spf"]) == 320
        np.testing.assert_allclose(z["frame_time_s"], (np.arange(keep) + 0.5) * 0.02)
        assert int(z["num_samples"]) == len(audio)
        assert len(z["token_labels"]) == len(z["tokens"]) == z["act:decoder.blocks.0"].shape[0]
        assert str(z["transcript"]).startswith("She had your")
        assert z["phones_label"].size > 0 and str(z["audio_path"]) == str(dark_suit)
    from steve_qt.core.models.actnpz import load_activation_file

    f = load_activation_file(out)
    assert [s.name for s in f.sites] == list(ex.activations) and f.grid.hop == 320
    assert f.sites[2] == Site("decoder.blocks.0", 384, "tokens", 0, "residual")
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert f"frames sites {keep} frames of 20 ms" in info and "encoder.blocks.2.mlp.1  1536" in info
    # no overwrite without --force
    assert main(argv) == 2
    assert "file exists" in capsys.readouterr().err


def test_activations_command_bad_input_is_one_line(dark_suit, tmp_path, capsys):
    import soundfile as sf

    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    for argv, what in [
        (["activations", str(dark_suit), "--site", "encoder.blocks.9",
          "--out", str(tmp_path / "x.npz")], "unknown site 'encoder.blocks.9'; valid sites"),
        (["activations", str(empty), "--site", "encoder.blocks.0",
          "--out", str(tmp_path / "y.npz")], ""),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("steve-qt: error: ") and err.count("\n") == 1 and what in err
        assert not (tmp_path / "x.npz").exists() and not (tmp_path / "y.npz").exists()


def test_wav2vec2_sites_command_and_probe(w2v_dirs, tmp_path, capsys):
    """The commands take wav2vec 2.0 module paths too (a random tiny model: only the plumbing)."""
    import shutil

    import soundfile as sf
    from test_wav2vec2 import speechy

    spec = f"wav2vec2:{w2v_dirs['ctc']}"
    assert main(["sites", "--model", spec]) == 0
    out = capsys.readouterr().out
    assert ["wav2vec2.encoder.layers.1.feed_forward.intermediate_act_fn", "37", "frames", "1",
            "mlp"] in [line.split() for line in out.splitlines()]
    corpus = tmp_path / "c"
    corpus.mkdir()
    for i in range(3):  # 1 s each, phones every 0.25 s
        sf.write(str(corpus / f"u{i}.wav"), speechy(16000, seed=i), 16000)
        (corpus / f"u{i}.phn").write_text("0 4000 s\n4000 8000 a\n8000 12000 t\n12000 16000 i\n")
    assert main(["probe", str(corpus), "--out", str(tmp_path / "p"), "--model", spec,
                 "--jobs", "1", "--cache", str(tmp_path / "cache"), "--folds", "3"]) == 0
    with open(tmp_path / "p" / "probe.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["site"] for r in rows[::4]] == ["wav2vec2.encoder.layers.0", "wav2vec2.encoder.layers.1"]
    frames = (16000 - 400) // 320 + 1  # 49 per file; centres 12.5 ms + 20 ms * i, all in a phone
    assert all(int(r["n"]) == 3 * frames and r["files"] == "3" for r in rows)
    shutil.rmtree(tmp_path / "cache")
