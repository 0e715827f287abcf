"""``steve-qt sae train``, ``activations --sae`` and the feature figures, on real Whisper
activations of the repository's samples, each number checked against a plain computation."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file as np_load_file

from steve_qt.cli import main
from tests.test_sae import numpy_encode, random_sae

SITE = "encoder.blocks.2"


@pytest.fixture(scope="module")
def env(tmp_path_factory, copy_samples):
    """A two-file corpus and its own activation cache."""
    root = tmp_path_factory.mktemp("saecli")
    corpus = copy_samples(root / "corpus", ("dark_suit", "oily_rag"))
    mp = pytest.MonkeyPatch()
    mp.setenv("STEVE_QT_CACHE", str(root / "cache"))
    yield {"root": root, "corpus": corpus}
    mp.undo()


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(env):
    out = env["root"] / "sae"
    code = main(["sae", "train", str(env["corpus"]), "--site", SITE, "--out", str(out),
                 "--expansion", "2", "--k", "8", "--epochs", "2", "--batch", "64",
                 "--holdout", "0.5", "--wer-files", "1", "--jobs", "1"])
    assert code == 0
    return out


def test_train_writes_saelens_files_and_an_honest_report(env, trained, whisper_adapter):
    from steve_qt.core.features.actcache import load_activations
    from steve_qt.core.features.sae import load_sae
    from steve_qt.core.speech.textdiff import wer

    cfg = json.loads((trained / "cfg.json").read_text())
    assert (cfg["d_in"], cfg["d_sae"], cfg["k"], cfg["architecture"]) == (384, 768, 8, "topk")
    assert cfg["metadata"]["hook_name"] == SITE
    assert not (trained / "checkpoint.pt").exists()
    report = json.loads((trained / "training.json").read_text())
    held = report["heldout_files"]
    assert len(held) == 1 and report["train_files"] == 1
    # the held-out numbers, again by hand from the cached rows and the saved weights
    x = load_activations(held[0], "whisper", SITE)
    w = np_load_file(str(trained / "sae_weights.safetensors"))
    codes = numpy_encode(x, w["W_enc"], w["b_enc"], w["b_dec"], "topk", 8)
    recon = codes @ w["W_dec"].astype(np.float64) + w["b_dec"]
    fve = 1 - ((recon - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    h = report["heldout"]
    assert h["rows"] == len(x)
    assert h["fraction_variance_explained"] == pytest.approx(fve, rel=1e-4, abs=1e-4)
    assert h["l0"] == pytest.approx((codes > 0).sum(1).mean())
    assert h["dead_share"] == pytest.approx((~(codes > 0).any(0)).mean())
    # the transcript test: unedited transcript as the adapter gives it, WER recomputed
    t = report["transcript"]["files"][0]
    from steve_qt.core.speech.audio import load_audio

    assert t["original"] == whisper_adapter.transcribe(load_audio(held[0]).samples).text
    assert t["wer"] == wer(t["original"], t["reconstructed"])
    assert load_sae(trained).hook_name == SITE


def test_reconstruction_edit_touches_only_the_kept_frames():
    from steve_qt.core.features.sae_corpus import reconstruction_edit

    sae = random_sae(d_in=6, d_sae=10, k=3)
    out = torch.randn(1, 20, 6)
    edited = reconstruction_edit(sae, keep_frames=7)(out)
    x = out[0, :7].numpy()
    codes = numpy_encode(x, sae.W_enc.numpy(), sae.b_enc.numpy(), sae.b_dec.numpy(), "topk", 3)
    np.testing.assert_allclose(edited[0, :7].numpy(), codes @ sae.W_dec.numpy() +
                               sae.b_dec.numpy(), rtol=1e-4, atol=1e-4)
    assert torch.equal(edited[0, 7:], out[0, 7:])


def test_existing_sae_not_overwritten(env, trained, capsys):
    code, _, err = cli(["sae", "train", env["corpus"], "--site", SITE, "--out", trained,
                        "--jobs", "1"], capsys)
    assert code == 2 and err.count("\n") == 1 and "--force" in err


def test_activations_sae_codes_equal_numpy_encoding(env, trained, whisper_adapter, capsys,
                                                    samples_dir, tmp_path):
    from steve_qt.core.speech.audio import load_audio

    out = tmp_path / "codes.npz"
    code, _, _ = cli(["activations", samples_dir / "dark_suit.wav", "--sae", trained,
                      "--out", out], capsys)
    assert code == 0
    d = np.load(out)
    assert list(d["sites"]) == [SITE] and list(d["site_dim"]) == [768]
    assert list(d["site_kind"]) == ["sae"] and str(d["sae_dir"]) == str(trained.resolve())
    x = whisper_adapter.extract(load_audio(samples_dir / "dark_suit.wav").samples,
                                components=(), sites=(SITE,)).activations[SITE]
    w = np_load_file(str(trained / "sae_weights.safetensors"))
    want = numpy_encode(np.asarray(x, np.float32), w["W_enc"], w["b_enc"], w["b_dec"],
                        "topk", 8)
    got = d[f"act:{SITE}"].astype(np.float64)  # stored as float16
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=2e-3)


def test_bad_input_one_line_exit_2(env, trained, capsys, samples_dir, tmp_path):
    wav = samples_dir / "dark_suit.wav"
    small = tmp_path / "small"
    s = random_sae(d_in=6, d_sae=10)
    from steve_qt.core.features.sae import save_sae

    save_sae(s, small)  # hook_name encoder.blocks.2, but 6 dimensions
    (tmp_path / "empty").mkdir()
    cases = [
        (["activations", wav, "--sae", tmp_path / "empty", "--out", tmp_path / "a.npz"],
         "cfg.json is missing"),
        (["activations", wav, "--sae", small, "--out", tmp_path / "a.npz"],
         "expects d_in=6 but site encoder.blocks.2 has 384"),
        (["activations", wav, "--sae", trained, "--site", "encoder.blocks.1",
          "--out", tmp_path / "a.npz"], "reads encoder.blocks.2, not encoder.blocks.1"),
        (["sae", "train", tmp_path / "nothing", "--site", SITE, "--out", tmp_path / "o"],
         "no such folder"),
        (["sae", "train", env["corpus"], "--site", "encoder.nope", "--out", tmp_path / "o",
          "--jobs", "1"], "encoder.nope"),
        (["sae", "train", env["corpus"], "--out", tmp_path / "o"], "give --site"),
        (["figure", wav, "--sae", small, "--feature", "1", "--out", tmp_path / "f.pdf"],
         "expects d_in=6"),
        (["figure", wav, "--site", SITE, "--feature", "384", "--out", tmp_path / "f.pdf"],
         "feature 384 does not exist"),
        (["figure", "--index", tmp_path / "empty", "--feature", "1", "--out",
          tmp_path / "f.pdf"], "not a feature index"),
    ]
    for argv, message in cases:
        code, _, err = cli(argv, capsys)
        assert code == 2, (argv, err)
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    with pytest.raises(SystemExit) as exc:  # argparse's own check of --kind
        main(["sae", "train", str(env["corpus"]), "--site", SITE, "--out", "o", "--kind", "relu"])
    assert exc.value.code == 2
    assert "invalid choice: 'relu'" in capsys.readouterr().err


# --- figures ---------------------------------------------------------------------------------
def _pdf(tool: str, pdf) -> str:
    exe = shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} (poppler-utils) is not installed")
    return subprocess.run([exe, str(pdf), "-"] if tool == "pdftotext" else [exe, str(pdf)],
                          check=True, capture_output=True, text=True).stdout


def test_feature_figure_pdf_text_fonts_and_curve(samples_dir, whisper_adapter, capsys,
                                                 tmp_path):
    import argparse

    import whisper

    from steve_qt.commands import feature_figure
    from steve_qt.core.speech.audio import load_audio

    wav = samples_dir / "dark_suit.wav"
    pdf = tmp_path / "f.pdf"
    code, _, err = cli(["figure", wav, "--site", "encoder.blocks.2.mlp.1", "--feature", "17",
                        "--width", "page", "--out", pdf], capsys)
    assert code == 0, err
    text = _pdf("pdftotext", pdf)
    assert "encoder.blocks.2.mlp.1 unit 17" in text
    from steve_qt.core.speech.alignment import load_alignment
    from steve_qt.core.figures.attention import is_silence

    labels = [iv.label for iv in load_alignment(wav).tiers["phones"].intervals
              if not is_silence(iv.label)]
    shown = set(text.split())
    assert sum(lab in shown for lab in labels) >= 0.8 * len(labels), (labels, text)
    assert {"dark", "suit", "greasy"} <= shown  # the word tier
    assert "Type 3" not in _pdf("pdffonts", pdf)
    # the drawn curve is neuron 17 of a plain forward hook on a plain openai-whisper model
    model = whisper.model.Whisper(whisper_adapter.dims)
    model.load_state_dict(whisper_adapter.model.state_dict())
    model.eval()
    samples = load_audio(wav).samples
    got = {}
    h = model.get_submodule("encoder.blocks.2.mlp.1").register_forward_hook(
        lambda m, i, o: got.__setitem__("x", o[0].detach().numpy()))
    # the input whisper.transcribe gives the encoder: the log-mel of audio + 30 s of zeros,
    # the audio's frames kept, zero-padded in the mel domain to 3000 frames
    mel = whisper.log_mel_spectrogram(torch.from_numpy(samples), padding=whisper.audio.N_SAMPLES)
    mel = whisper.pad_or_trim(mel[:, :mel.shape[-1] - whisper.audio.N_FRAMES],
                              whisper.audio.N_FRAMES)
    try:
        with torch.no_grad():
            model.encoder(mel[None])
    finally:
        h.remove()
    want = got["x"][:math.ceil(len(samples) / 320), 17]
    args = argparse.Namespace(audio=str(wav), site="encoder.blocks.2.mlp.1", sae=None,
                              feature=17, model=None, window=0, alignment="auto",
                              alignment_file=None, phone_tier=None, word_tier=None,
                              width="column", dpi=100, title=None, span=None,
                              spectrogram=None)
    fig = feature_figure._file_figure(args)()
    curves = [p for ax in fig.axes for p in ax.patches if hasattr(p, "get_data")]
    values = curves[-1].get_data().values
    np.testing.assert_allclose(values, want, rtol=1e-3, atol=2e-3)


def test_index_grid_figure(env, trained, capsys, tmp_path):
    idx = env["root"] / "idx"
    code, _, err = cli(["features", "index", env["corpus"], "--sae", trained, "--out", idx,
                        "--jobs", "1"], capsys)
    assert code == 0, err
    from steve_qt.core.features.index import FeatureIndex

    index = FeatureIndex.open(idx)
    feature = int(np.argmax([index.feature_max(f) for f in range(index.num_features)]))
    pdf = tmp_path / "grid.pdf"
    code, _, err = cli(["figure", "--index", idx, "--feature", feature, "--out", pdf], capsys)
    assert code == 0, err
    text = _pdf("pdftotext", pdf)
    assert f"SAE feature {feature} ({SITE}, sae)" in text
    top = index.top(feature)
    assert top[0].file in text.replace("\n", " ")
    assert top[0].phone and top[0].phone in text.split()  # the peak's phone is labelled
    assert "Type 3" not in _pdf("pdffonts", pdf)
    png = tmp_path / "grid.png"
    assert cli(["figure", "--index", idx, "--feature", feature, "--out", png, "--width", "page",
                "--dpi", "100"], capsys)[0] == 0
    shutil.copy(png, env["root"] / "grid.png")


def test_erase_concept_without_frames_one_line_exit_2(env, trained, capsys, tmp_path):
    code = main(["sae", "erase", str(trained), str(env["corpus"]), "--concept", "phone=zh",
                 "--out", str(tmp_path / "e"), "--wer-files", "0", "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "phone=zh has no frames" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "e").exists()


def test_steer_over_a_corpus_per_file_and_total(env, trained, capsys, tmp_path):
    import csv

    from steve_qt.core.speech.alignment import load_alignment
    from steve_qt.core.speech.textdiff import wer

    out = tmp_path / "s.csv"
    assert main(["steer", str(env["corpus"]), "--sae", str(trained), "--feature", "3",
                 "--scale", "1", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 and rows[-1]["file"].startswith("TOTAL")
    for r in rows[:2]:  # scale 1 changes nothing: x + 0 * f W_dec
        assert float(r["wer_steered"]) == 0.0 and r["words_changed"] == ""
        assert r["steered"] == r["original"]
    assert "0 words changed in 0 files" in rows[-1]["words_changed"]
    out2 = tmp_path / "s2.csv"
    codes_top = 0  # a feature steered hard (its code scaled by -30)
    assert main(["steer", str(env["corpus"]), "--sae", str(trained), "--feature",
                 str(codes_top), "--scale", "-30", "--out", str(out2)]) == 0
    capsys.readouterr()
    rows = list(csv.DictReader(out2.open()))
    for r in rows[:2]:
        assert float(r["wer_steered"]) == pytest.approx(wer(r["original"], r["steered"]),
                                                        abs=1e-4)
        al = load_alignment(r["file"])
        words = " ".join(iv.label for iv in al.words.intervals if iv.label.strip())
        assert float(r["wer_ref_steered"]) == pytest.approx(wer(words, r["steered"]), abs=1e-4)
        assert float(r["wer_change"]) == pytest.approx(
            float(r["wer_ref_steered"]) - float(r["wer_ref_original"]), abs=2e-4)
    mean = np.mean([float(r["wer_steered"]) for r in rows[:2]])
    assert float(rows[-1]["wer_steered"]) == pytest.approx(mean, abs=1e-4)


def test_eval_transcript_numbers_against_a_plain_forward(env, trained, capsys, tmp_path,
                                                         whisper_adapter):
    """sae eval on one real file: CE_orig equals the cross-entropy of a plain teacher-forced
    forward (no hooks), CE_zero that of a forward hook zeroing the site's audio frames by hand,
    loss recovered follows from the three CEs, WER from the two transcripts."""
    import torch.nn.functional as F

    from steve_qt.core.speech.audio import load_audio
    from steve_qt.core.speech.textdiff import wer

    code = main(["sae", "eval", str(trained), str(env["corpus"]), "--out", str(tmp_path / "ev"),
                 "--wer-files", "1", "--jobs", "1"])
    capsys.readouterr()
    assert code == 0
    rep = json.loads((tmp_path / "ev" / "eval.json").read_text())
    t = rep["transcript"]
    row = t["files"][0]
    assert row["wer"] == pytest.approx(wer(row["original"], row["reconstructed"]))
    samples = load_audio(row["file"]).samples
    plain = whisper_adapter.transcribe(samples)
    assert plain.text == row["original"]
    model = whisper_adapter.model
    mel = whisper_adapter.mel(samples)[None]
    tokens = torch.tensor(plain.tokens)[None]
    from whisper.tokenizer import get_tokenizer

    start = plain.tokens.index(get_tokenizer(False).no_timestamps) + 1  # after the prompt
    keep = math.ceil(len(samples) / 320)

    def ce(zero: bool) -> float:
        def hook(_m, _i, out):
            out = out.clone()
            out[0, :keep] = 0
            return out
        h = model.get_submodule(SITE).register_forward_hook(hook) if zero else None
        try:
            with torch.no_grad():
                logits = model(mel, tokens)[0]
        finally:
            if h is not None:
                h.remove()
        return float(F.cross_entropy(logits[start - 1:-1].float(), tokens[0, start:]))

    assert row["tokens"] == len(plain.tokens) - start
    assert row["ce"]["orig"] == pytest.approx(ce(False), rel=1e-5)
    assert row["ce"]["zero"] == pytest.approx(ce(True), rel=1e-5)
    c = row["ce"]
    assert row["loss_recovered"] == pytest.approx((c["zero"] - c["rec"]) / (c["zero"] - c["orig"]))
    assert t["loss_recovered"] == pytest.approx(row["loss_recovered"])  # one file: the same
    assert "loss recovered" in (tmp_path / "ev" / "eval.md").read_text()
