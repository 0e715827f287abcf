"""The public Python API (``import steve_qt as sq``) on the bundled samples: every name of the
README's table is used; outputs equal the CLI's for the same input; bad input raises sq.Error."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import steve_qt as sq
from steve_qt.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENC_SITE = "encoder.blocks.2.mlp.1"
RES_SITE = "encoder.blocks.2"


def readme_names() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Za-z_]+)", section, flags=re.M)


# --- the surface -----------------------------------------------------------------------------
def test_readme_table_is_the_public_surface():
    names = readme_names()
    assert len(names) >= 20
    assert sorted(names) == sorted(sq.__all__)
    for name in names:
        assert getattr(sq, name) is not None
    with pytest.raises(AttributeError):
        sq.not_a_public_name  # noqa: B018


def test_import_loads_neither_torch_nor_the_api():
    code = ("import sys, steve_qt; "
            "print('torch' in sys.modules, 'steve_qt.api' in sys.modules, "
            "'steve_qt.core.features.sae' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False", "False"]


# --- shared runs -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model(whisper_adapter):
    m = sq.load_model("whisper", device="cpu")
    assert m.adapter is whisper_adapter  # loaded once per process
    return m


@pytest.fixture(scope="module")
def utt(dark_suit):
    return sq.load_utterance(dark_suit)


@pytest.fixture(scope="module")
def ex(model, utt):
    return model.extract(utt, components=("encoder", "cross"), measures=("norm",))


@pytest.fixture(scope="module")
def cli_npz(tmp_path_factory, dark_suit, whisper_adapter):
    out = tmp_path_factory.mktemp("cli") / "cli.npz"
    assert main(["extract", str(dark_suit), "--out", str(out), "--measures", "norm"]) == 0
    return out


@pytest.fixture(scope="module")
def acts(model, utt):
    return model.activations(utt, sites=[RES_SITE, ENC_SITE])


def test_objects_show_themselves(model, utt, ex, acts):
    assert "tiny.en" in repr(model) and "dark_suit.wav" in repr(utt)
    assert "encoder 4x1x6x" in repr(ex) and ex.transcript[:10] in repr(ex)
    assert ex.transcript[:10] in ex._repr_html_()
    assert "4 layers x 6 heads" in repr(ex["encoder"])
    assert f"{ENC_SITE}: " in repr(acts) and "x1536" in repr(acts)


def test_extraction_equals_cli_npz(ex, cli_npz, tmp_path):
    enc = ex["encoder"]
    n, one, m, q, k = enc.weights.shape
    assert (one, enc.weights.dtype) == (1, np.float16) and q == k
    assert ex.components == ("encoder", "cross")
    path = ex.save(tmp_path / "api.npz")
    with np.load(path, allow_pickle=False) as a, np.load(cli_npz, allow_pickle=False) as c:
        assert sorted(a.files) == sorted(c.files)
        for key in a.files:
            if key == "audio_path":
                assert Path(str(a[key])).resolve() == Path(str(c[key])).resolve()
                continue
            # the same operations on the same input: equal bit for bit
            np.testing.assert_array_equal(a[key], c[key], err_msg=key)
    back = sq.load_extraction(path)
    np.testing.assert_array_equal(back["encoder"].weights, enc.weights)
    np.testing.assert_array_equal(back["encoder"].measures["norm"], enc.measures["norm"])
    assert back.transcript == ex.transcript and back.words == ex.words


def test_words_and_transcript(ex):
    assert ex.transcript.strip()
    assert all(isinstance(w, sq.Word) for w in ex.words)
    assert [w.text for w in ex.words] == [w.text for w in ex.core.transcript.words]
    starts = [w.start for w in ex.words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in ex.words)


def test_xarray_coords_are_frame_centres(ex, utt):
    from steve_qt.core.frames import whisper_grid

    da = ex["encoder"].to_xarray()
    assert da.dims == ("layer", "head", "query", "key")
    q = da.sizes["query"]
    centres = whisper_grid(0).center_seconds(np.arange(q))
    np.testing.assert_array_equal(da.coords["query_time"].values, centres)
    np.testing.assert_array_equal(da.coords["key_time"].values, centres)
    # by hand: frame i spans samples [320 i, 320 i + 320) at 16 kHz
    np.testing.assert_allclose(centres, (320 * np.arange(q) + 160) / 16000, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(da.sel(layer=2, head=3).values, ex["encoder"].weights[2, 0, 3])
    # phone of each frame: brute force over the intervals (a frame's centre in [start, end))
    tier = utt.alignment.phones
    phones = da.coords["query_phone"].values
    for i, t in enumerate(centres):
        owners = [iv.label for iv in tier.intervals if iv.start_s <= t < iv.end_s]
        if owners:
            assert phones[i] == owners[-1], i
    cross = ex["cross"].to_xarray()
    assert "query_token" in cross.coords and "key_time" in cross.coords
    norm = ex["encoder"].to_xarray("norm")
    assert norm.name == "norm" and norm.shape == da.shape


def test_analysis_methods(ex):
    enc = ex["encoder"]
    w = enc.weights[1, 0].astype(np.float32)
    np.testing.assert_allclose(enc.head(1, None), w.mean(axis=0), rtol=0, atol=1e-6)
    # rollout by hand: mean of heads + I, rows renormalised, multiplied through layers
    eye = np.eye(enc.shape[3])
    r = eye
    for n in range(enc.num_layers):
        a = enc.weights[n, 0].astype(np.float64).mean(axis=0) + eye
        r = (a / a.sum(axis=-1, keepdims=True)) @ r
    np.testing.assert_allclose(enc.rollout(), r, rtol=0, atol=1e-5)
    stats = enc.head_stats()
    assert len(stats) == 4 * 6 and stats.columns[:2] == ("layer", "head")
    df = stats.to_pandas()
    assert df["entropy_bits"].dtype.kind == "f" and (df["entropy_bits"] >= 0).all()
    pm = enc.phone_matrix(2, 3)
    assert pm.mean.shape == (len(pm.query_labels), len(pm.key_labels))
    with pytest.raises(sq.Error, match="rollout needs self-attention"):
        ex["cross"].rollout()


def test_activations_equal_cli(acts, dark_suit, tmp_path, capsys):
    out = tmp_path / "acts.npz"
    assert main(["activations", str(dark_suit), "--site", RES_SITE, "--site", ENC_SITE,
                 "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as z:
        for site in (RES_SITE, ENC_SITE):
            assert acts[site].dtype == np.float32 and acts[site].ndim == 2
            np.testing.assert_array_equal(acts[site].astype(np.float16), z[f"act:{site}"])
        np.testing.assert_array_equal(acts.frame_times, z["frame_time_s"])
    assert set(acts) == {RES_SITE, ENC_SITE} and len(acts) == 2
    saved = acts.save(tmp_path / "api_acts.npz")
    again = sq.load_activations(saved)
    np.testing.assert_array_equal(again[ENC_SITE], acts[ENC_SITE].astype(np.float16))


def test_sae_load_encode(acts, tmp_path):
    import torch

    from steve_qt.core.features.sae import SAE

    g = torch.Generator().manual_seed(0)
    d_in, d_sae, k = 384, 64, 4
    sae = SAE(torch.randn(d_in, d_sae, generator=g) * 0.1, torch.randn(d_sae, generator=g) * 0.1,
              torch.randn(d_sae, d_in, generator=g) * 0.1, torch.randn(d_in, generator=g) * 0.1,
              architecture="topk", k=k, hook_name=RES_SITE, model_name="whisper")
    sae.save(tmp_path / "sae")
    loaded = sq.SAE.load(tmp_path / "sae")
    assert isinstance(loaded, sq.SAE) and "d_sae=64" in repr(loaded)
    x = acts[RES_SITE]
    codes = loaded.encode(x)
    # SAELens's TopK by hand in float64: pre = (x - b_dec) W_enc + b_enc, k largest, ReLU
    W_enc, b_enc, b_dec = (t.double().numpy() for t in (sae.W_enc, sae.b_enc, sae.b_dec))
    pre = (x.astype(np.float64) - b_dec) @ W_enc + b_enc
    want = np.zeros_like(pre)
    top = np.argsort(-pre, axis=1)[:, :k]
    rows = np.arange(len(pre))[:, None]
    want[rows, top] = np.maximum(pre[rows, top], 0)
    assert codes.shape == (x.shape[0], d_sae)
    np.testing.assert_allclose(codes, want, rtol=0, atol=1e-4)  # float32 matmul vs float64
    assert loaded.decode(codes).shape == x.shape


def test_feature_audio_is_the_enveloped_file(utt, acts):
    s = sq.feature_audio(utt, acts, ENC_SITE, 1129)
    assert isinstance(s, sq.Sound) and s.rate == utt.audio.original_rate
    a = acts[ENC_SITE][:, 1129].astype(np.float64)
    g = 0.1 + 0.9 * np.clip(a / a.max(), 0, 1)  # -20 dB floor
    t = np.arange(len(utt.audio.original)) / s.rate
    env = np.interp(t, (320 * np.arange(len(a)) + 160) / 16000, g)
    x = utt.audio.original
    want = x * (env[:, None] if x.ndim == 2 else env)
    np.testing.assert_allclose(s.samples, want, rtol=0, atol=1e-6)
    assert s.player is not None and "<audio" in s._repr_html_()


def test_figure_equals_cli_png(cli_npz, tmp_path, capsys):
    ex2 = sq.load_extraction(cli_npz)
    fig = sq.figure(ex2, layer=2, head=3, out=tmp_path / "api.png")
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    assert main(["figure", str(cli_npz), "--layer", "2", "--head", "3", "--out",
                 str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "api.png").read_bytes() == (tmp_path / "cli.png").read_bytes()


# --- feature index ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory, samples_dir):
    out = tmp_path_factory.mktemp("corpus")
    for p in samples_dir.iterdir():
        if p.suffix.lower() in (".wav", ".phn", ".wrd", ".txt", ".textgrid"):
            shutil.copy(p, out / p.name)
    return out


@pytest.fixture(scope="module")
def indexes(corpus, model, tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    idx = sq.build_index(corpus, d / "api", site=ENC_SITE, model=model, jobs=1, top_k=3)
    assert main(["features", "index", str(corpus), "--site", ENC_SITE, "--out", str(d / "cli"),
                 "--jobs", "1", "--top-k", "3"]) == 0
    return idx, d / "cli"


def test_index_equals_cli(indexes, capsys):
    idx, cli_dir = indexes
    cli = sq.FeatureIndex.open(cli_dir)
    assert isinstance(idx, sq.FeatureIndex) and "1536 features" in repr(idx)
    for f in (0, 17, 1129):
        assert idx.top(f).tuples() == cli.top(f).tuples()
        assert idx.ranges(f).tuples() == cli.ranges(f).tuples()
    capsys.readouterr()
    assert main(["features", "top", str(cli_dir), "17"]) == 0
    printed = [line.split() for line in capsys.readouterr().out.splitlines()
               if line.startswith("  ")]
    rows = idx.top(17)
    assert len(printed) == len(rows) == 3
    for p, r in zip(printed, rows):
        assert int(p[0]) == r.rank and p[-1] == r.file and int(p[5]) == r.frame
        assert float(p[1]) == pytest.approx(r.activation, rel=1e-3)
    df = rows.to_pandas()
    assert list(df.columns) == list(sq.FeatureIndex.EXAMPLE_COLUMNS)
    assert df["activation"].is_monotonic_decreasing
    sound = idx.examples_audio(17)
    assert sound.rate == 16000 and 0 < sound.duration <= 3 * 0.5 + 2 * 0.15 + 1e-9


# --- interventions ---------------------------------------------------------------------------
def _cli_csv(argv, capsys) -> list[list[str]]:
    import csv
    import io

    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    body = out.split("\n", 1)[1] if out.startswith("unmasked:") else out
    return list(csv.reader(io.StringIO(body)))


def _strings(table) -> list[list[str]]:
    return [list(map(str, table.columns))] + [[str(v) for v in r] for r in table.tuples()]


def test_window_ablate_lm_equal_cli(model, utt, dark_suit, capsys):
    w = sq.window(model, utt, k=[5])
    assert w.title.startswith("unmasked: ")
    assert _strings(w) == _cli_csv(["window", str(dark_suit), "--k", "5"], capsys)
    a = sq.ablate(model, utt, span=(0.5, 1.0))
    assert _strings(a) == _cli_csv(["ablate", str(dark_suit), "--span", "0.5", "1.0"], capsys)
    lm = sq.lm(model, neighbours=" rug", top=5)
    assert _strings(lm) == _cli_csv(["lm", "--neighbours", " rug", "--top", "5"], capsys)
    assert lm.to_pandas()["score"].dtype.kind == "f"


def test_steer_and_lens(model, utt):
    rows = sq.steer(model, utt, 1129, 1.0, site=ENC_SITE)
    assert [r[0] for r in rows] == ["original", "steered"]
    assert rows[1][1] == rows[0][1]  # scale 1 changes nothing
    out = sq.lens(model, utt, top=3)
    assert isinstance(out, sq.Lens) and len(out.encoder) == 4
    assert out.encoder.columns == ("layer", "transcript", "wer")
    assert len(out.decoder) == 4 * len(model.adapter.transcribe(utt.samples).tokens)


# --- bad input -------------------------------------------------------------------------------
def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


def test_bad_arguments_raise_error_with_the_cli_message(model, utt, ex, tmp_path, capsys):
    with pytest.raises(sq.Error) as e:
        sq.load_model("nosuchmodel")
    capsys.readouterr()
    assert main(["extract", str(ROOT / "samples" / "dark_suit.wav"), "--model", "nosuchmodel",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert capsys.readouterr().err.strip() == f"steve-qt: error: {_one_line(e)}"
    assert not (tmp_path / "x.npz").exists()

    with pytest.raises(sq.Error) as e:
        sq.load_utterance(tmp_path / "missing.wav")
    _one_line(e)
    with pytest.raises(sq.Error) as e:
        model.activations(utt, sites=["encoder.blocks.99"])
    assert "encoder.blocks.99" in _one_line(e)
    with pytest.raises(sq.Error) as e:
        model.extract(utt, measures=("nosuch",))
    assert "unknown measure" in _one_line(e)
    with pytest.raises(sq.Error) as e:
        sq.window(model, utt, k=[0])
    assert _one_line(e) == "the attention window k must be a positive number of frames, got 0"
    with pytest.raises(sq.Error) as e:
        sq.figure(ex, layer=9, out=tmp_path / "f.png")
    _one_line(e)
    assert not (tmp_path / "f.png").exists() and not list(tmp_path.glob("*.tmp*"))

    existing = tmp_path / "keep.npz"
    existing.write_bytes(b"keep")
    with pytest.raises(sq.Error) as e:
        ex.save(existing)
    _one_line(e)
    assert existing.read_bytes() == b"keep"
    with pytest.raises(sq.Error):
        ex["decoder"]
    with pytest.raises(sq.Error):
        sq.FeatureIndex.open(tmp_path)
    with pytest.raises(sq.Error):
        sq.lm(model, prompt="")


# --- corpus statistics and probes --------------------------------------------------------------
def test_corpus_stats_equal_cli(corpus, model, tmp_path, capsys):
    stats = sq.corpus_stats(corpus, model=model, jobs=1, cache=tmp_path / "cache")
    assert isinstance(stats, sq.CorpusStats) and stats.used == 4 and stats.failed == 0
    assert main(["stats", str(corpus), "--out", str(tmp_path / "cli"), "--jobs", "1",
                 "--cache", str(tmp_path / "cache")]) == 0
    for name, table in stats.tables.items():
        cli = (tmp_path / "cli" / name).read_text()
        if name == "files.csv":  # the CLI's run read the cache the API's run filled; seconds differ
            assert table.columns[:3] == ("file", "status", "reason")
            assert [r[:4] for r in table] == [r.split(",")[:4] for r in cli.splitlines()[1:]]
            continue
        assert table.to_csv() == cli, name
    head = stats["head_stats.csv"].to_pandas()
    assert len(head) == 4 * 6 and head["entropy_bits"].dtype.kind == "f"


def test_probe_equals_cli(corpus, model, tmp_path, capsys):
    rows = sq.probe(corpus, tmp_path / "api", model=model, sites=[RES_SITE], folds=2, jobs=1,
                    cache=tmp_path / "cache")
    assert main(["probe", str(corpus), "--out", str(tmp_path / "cli"), "--sites", RES_SITE,
                 "--folds", "2", "--jobs", "1", "--cache", str(tmp_path / "cache")]) == 0
    assert rows.to_csv() == (tmp_path / "cli" / "probe.csv").read_text()
    assert (tmp_path / "api" / "probe.csv").read_text() == rows.to_csv()


def test_feature_figures_equal_cli(indexes, model, utt, dark_suit, tmp_path, capsys):
    from matplotlib.figure import Figure

    fig = sq.feature_figure(utt, 1129, model=model, site=ENC_SITE, out=tmp_path / "api.png")
    assert isinstance(fig, Figure)
    assert main(["figure", str(dark_suit), "--feature", "1129", "--site", ENC_SITE, "--out",
                 str(tmp_path / "cli.png")]) == 0
    assert (tmp_path / "api.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    idx, cli_dir = indexes
    sq.feature_figure(idx, 17, out=tmp_path / "api_idx.png")
    assert main(["figure", "--index", str(idx.path), "--feature", "17", "--out",
                 str(tmp_path / "cli_idx.png")]) == 0
    assert (tmp_path / "api_idx.png").read_bytes() == (tmp_path / "cli_idx.png").read_bytes()
    with pytest.raises(sq.Error) as e:
        sq.feature_figure(utt, 5000, model=model, site=ENC_SITE, out=tmp_path / "bad.png")
    assert "feature 5000 does not exist" in _one_line(e)
    assert not (tmp_path / "bad.png").exists()


def test_extraction_exports_equal_cli(ex, dark_suit, tmp_path, capsys):
    """save_csv / save_textgrid / save_eaf write the bytes `steve-qt extract` writes."""
    cli = tmp_path / "cli"
    cli.mkdir()
    assert main(["extract", str(dark_suit), "--out", str(cli / "x.npz"), "--csv",
                 str(cli / "x.csv"), "--textgrid", str(cli / "x.TextGrid"), "--eaf",
                 str(cli / "x.eaf")]) == 0
    capsys.readouterr()
    ex.save_csv(tmp_path / "x.csv", "encoder")
    ex.save_textgrid(tmp_path / "x.TextGrid")
    ex.save_eaf(tmp_path / "x.eaf")
    for name in ("x.csv", "x.TextGrid"):
        assert (tmp_path / name).read_bytes() == (cli / name).read_bytes(), name
    strip = lambda t: re.sub(r'DATE="[^"]*"|<PROPERTY NAME="URN">[^<]*', "", t)  # noqa: E731
    assert strip((tmp_path / "x.eaf").read_text()) == strip((cli / "x.eaf").read_text())
    with pytest.raises(sq.Error, match="already exists|--force"):
        ex.save_csv(tmp_path / "x.csv", "encoder")


def test_acoustics_equal_parselmouth(utt):
    """sq.acoustics gives Praat's own numbers: To Pitch and To Formant (burg) called here
    directly, with Praat's defaults."""
    import parselmouth

    tracks = sq.acoustics(utt)
    from steve_qt.core.speech.audio import to_mono

    samples = to_mono(utt.audio.original).astype(np.float64)  # Praat reads the file's own rate
    snd = parselmouth.Sound(samples, sampling_frequency=utt.audio.original_rate)
    pitch = snd.to_pitch()
    f0 = pitch.selected_array["frequency"]
    f0[f0 == 0] = np.nan
    np.testing.assert_array_equal(tracks["f0"].times, pitch.xs())
    np.testing.assert_array_equal(tracks["f0"].values, f0)
    formant = snd.to_formant_burg()
    t = formant.xs()
    f2 = np.array([formant.get_value_at_time(2, x) for x in t])
    np.testing.assert_array_equal(tracks["f2"].values, f2)
    with pytest.raises(sq.Error, match="pitch floor"):
        sq.acoustics(utt, pitch_floor=700.0)
    with pytest.raises(sq.Error, match="unexpected keyword"):
        sq.acoustics(utt, not_a_parameter=1)
