"""Figures for papers (steve_qt.core.figures.attention, ``steve-qt figure``): text stays text, PNG bytes are
reproducible, labels don't overlap, the drawn numbers are the maps' numbers."""

from __future__ import annotations

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from steve_qt.core.models.adapters import Extraction, Transcript, Word
from steve_qt.core.speech.alignment import Alignment, Interval, Tier
from steve_qt.core.attention.maps import AttentionMaps, softmax
from steve_qt.core.errors import SteveError
from steve_qt.core.figures.attention import (FigureData, FigureSpec, draw_figure, figure_bytes,
                                   render_figure)
from steve_qt.core.frames import whisper_grid

from audio_helpers import write_wav

SVG = "{http://www.w3.org/2000/svg}"
RATE = 16000
PHONES = ["", "ʃ", "iː", "h", "æ", "d", "j", "ɚ", "d", "ɑːɹ", "k", "s", "uː", "t", "ɪ", "n",
          "ɡ", "ɹ", "iː", "z", "i", "w", "ɑː", "ʃ", "w", "ɔː", "ɾ", "ɚ", "ɔːl", "j", "ɪɹ", ""]
WORDS = ["she", "had", "your", "dark", "suit", "in", "greasy", "wash", "water", "all", "year"]
TOKENS = ["<|startoftranscript|>", "<|notimestamps|>", " She", " had", " your", " dark", " suit",
          " in", " gre", "asy", " wash", " water", " all", " year", ".", "<|endoftext|>"]
DPI = 100  # fast enough for most tests; the PNG tests use the default 300


def _softmax_crop(scores: np.ndarray, pad_keys: int, pad_score: float):
    shape = scores.shape[:-1] + (pad_keys,)
    w = softmax(np.concatenate([scores, np.full(shape, pad_score, np.float32)], axis=-1))
    keep = scores.shape[-1]
    return w[..., :keep].astype(np.float16), w[..., keep:].sum(-1)[:, 0].astype(np.float32)


def synthetic(seconds: float = 2.8, seed: int = 0) -> FigureData:
    """Banded encoder maps, token x time cross maps, IPA phones and words, a waveform."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    x = (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) * np.sin(2 * np.pi * 180 * t)
         + 0.01 * rng.standard_normal(n)).astype(np.float32)
    grid = whisper_grid(0)
    T = grid.frames_covering(n)
    N, M = 3, 4
    q, k = np.arange(T)[:, None], np.arange(T)[None, :]
    scores = np.stack([np.stack([-((k - q - (h - 1) * (l + 1)) ** 2) / (2.0 * (1 + 2 * h) ** 2)
                                 + 0.3 * rng.standard_normal((T, T)) for h in range(M)])
                       for l in range(N)])[:, None].astype(np.float32)  # (N, 1, M, T, T)
    w, pad = _softmax_crop(scores, 20, -2.0)
    enc = AttentionMaps(w, scores.astype(np.float16), pad, "encoder", "whisper:test", RATE, n,
                        grid, grid)
    Q = len(TOKENS)
    centres = np.linspace(5, T - 10, Q)[:, None]
    cs = np.stack([np.stack([-((k - centres) ** 2) / (2.0 * (2 + h) ** 2)
                             for h in range(M)]) for _ in range(N)])[:, None].astype(np.float32)
    cw, cpad = _softmax_crop(cs, 20, -3.0)
    cross = AttentionMaps(cw, cs.astype(np.float16), cpad, "cross", "whisper:test", RATE, n,
                          None, grid, query_labels=TOKENS)
    inner = np.linspace(0.15, seconds - 0.2, len(PHONES) - 1)[1:-1]  # 60-110 ms phones
    inner += rng.uniform(-0.25, 0.25, inner.size) * (inner[1] - inner[0])
    b = np.concatenate([[0.0, 0.15], inner, [seconds - 0.2, seconds]])
    phones = [Interval(float(b[i]), float(b[i + 1]), PHONES[i]) for i in range(len(PHONES))]
    wb = np.linspace(0.15, seconds - 0.2, len(WORDS) + 1)
    words = [Interval(0.0, 0.15, "")] + [Interval(float(wb[i]), float(wb[i + 1]), w)
                                         for i, w in enumerate(WORDS)] + \
        [Interval(seconds - 0.2, seconds, "")]
    al = Alignment({"phones": Tier("phones", phones), "words": Tier("words", words)})
    model_words = [Word(float(wb[i]) + 0.02, float(wb[i + 1]), w) for i, w in enumerate(WORDS)]
    return FigureData({"encoder": enc, "cross": cross}, x, RATE, al, model_words)


@pytest.fixture(scope="module")
def data() -> FigureData:
    return synthetic()


def _pdf_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} (poppler-utils) is not installed")
    return path


def _pdftotext(pdf: Path) -> str:
    return subprocess.run([_pdf_tool("pdftotext"), str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout


def _svg_texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(e.itertext()) for e in root.iter(f"{SVG}text")]


def _visible_texts(ax) -> list:
    return [t for t in ax.texts if t.get_visible() and t.get_text()]


def _drawn_labels(fig) -> set[str]:
    """Phone/word labels the figure shows: tier texts and the map's tick labels."""
    out = set()
    for ax in fig.axes:
        if ax.get_label().startswith("tier:"):
            out |= {t.get_text() for t in _visible_texts(ax)}
        if ax.get_label() == "map":
            out |= {t.get_text() for t in ax.get_yticklabels() if t.get_text()}
    return out


def _axes(fig, label: str):
    found = [ax for ax in fig.axes if ax.get_label() == label]
    assert found, f"no axes {label!r} in {[ax.get_label() for ax in fig.axes]}"
    return found[0]


# --- PDF / SVG: text is text, only heatmaps are images ----------------------------------------
def test_pdf_truetype_text_with_labels_and_title(data, tmp_path):
    pdf = render_figure(FigureSpec(layer=2, head=3, dpi=DPI), data, tmp_path / "map.pdf")
    fonts = subprocess.run([_pdf_tool("pdffonts"), str(pdf)], check=True, capture_output=True,
                           text=True).stdout
    rows = fonts.splitlines()[2:]
    assert rows, fonts
    assert not any("Type 3" in r for r in rows), fonts
    assert all("TrueType" in r and " yes " in r for r in rows), fonts  # embedded TrueType
    text = _pdftotext(pdf)
    assert "whisper:test: encoder self-attention" in text
    assert "layer 2, head 3" in text
    drawn = _drawn_labels(draw_figure(FigureSpec(layer=2, head=3, dpi=DPI), data))
    phones = {p for p in PHONES if p}
    assert len(drawn & phones) >= 0.6 * len(phones), sorted(phones - drawn)
    flat = "".join(text.split())
    missing = [lab for lab in drawn if "".join(lab.split()) not in flat]
    assert not missing, (missing, text)
    assert "attention weight" in text and "time (s)" in text


def test_svg_labels_are_text_and_only_maps_are_images(data, tmp_path):
    svg = render_figure(FigureSpec(layer=0, head=None, width="page", dpi=DPI), data,
                        tmp_path / "map.svg").read_bytes()
    texts = _svg_texts(svg)
    assert "layer 0, mean of heads" in texts
    assert {"ʃ", "ɑːɹ", "ɪ", "she", "greasy", "phones", "words"} <= set(texts), texts
    root = ET.fromstring(svg)
    images = [g.get("id") for g in root.iter(f"{SVG}g") for ch in g if ch.tag == f"{SVG}image"]
    assert len(images) == 2, images  # the map and the colour bar's gradient
    assert b"<path" in svg  # waveform, lines and tiers stay vector


def test_grid_svg_one_image_per_map(data, tmp_path):
    svg = figure_bytes(FigureSpec(layout="grid", dpi=DPI), data, "svg")
    root = ET.fromstring(svg)
    n_images = sum(1 for g in root.iter(f"{SVG}g") for ch in g if ch.tag == f"{SVG}image")
    maps = data.maps["encoder"]
    assert n_images == maps.num_layers * (maps.num_heads + 1) + 1  # + the colour bar
    texts = set(_svg_texts(svg))
    assert {"L0", "L2", "h0", "h3", "mean"} <= texts, texts


def test_pdf_and_svg_bytes_are_reproducible(data):
    spec = FigureSpec(layer=1, head=0, dpi=DPI)
    for fmt in ("pdf", "svg"):
        assert figure_bytes(spec, data, fmt) == figure_bytes(spec, data, fmt), fmt


# --- PNG -----------------------------------------------------------------------------------------
def _png(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


def test_png_deterministic_not_blank_and_sized(data):
    spec = FigureSpec(layer=2, head=1)  # default dpi 300
    a = figure_bytes(spec, data, "png")
    b = figure_bytes(spec, data, "png")
    assert a == b
    img = _png(a)
    assert img.shape[1] == round(3.5 * 300)
    assert img.std() > 20  # not a blank page
    # the heatmap region is not one colour: the map's pixels vary
    fig = draw_figure(spec, data)
    box = _axes(fig, "map").get_window_extent()
    h = img.shape[0]
    crop = img[int(h - box.y1) + 3:int(h - box.y0) - 3, int(box.x0) + 3:int(box.x1) - 3]
    assert crop.size and crop.std() > 10


def test_page_width_and_dpi(data):
    img = _png(figure_bytes(FigureSpec(width="page", dpi=120), data, "png"))
    assert img.shape[1] == round(7.0 * 120)


# --- what is drawn -------------------------------------------------------------------------------
def test_map_image_is_the_head_placed_in_seconds(data):
    maps = data.maps["encoder"]
    fig = draw_figure(FigureSpec(layer=1, head=2, dpi=DPI), data)
    ax = _axes(fig, "map")
    im = ax.get_images()[0]
    want = maps.weights[1, 0, 2].astype(np.float32)
    np.testing.assert_array_equal(np.asarray(im.get_array()), want)
    # extent: frame i spans [320 i, 320 (i + 1)) samples -> T frames cover T * 0.02 s
    T = maps.num_keys
    assert im.get_extent() == pytest.approx([0.0, T * 0.02, T * 0.02, 0.0])
    assert im.get_clim() == pytest.approx((0.0, float(want.max())))
    assert im.get_rasterized()
    # phone boundaries drawn on the map: a vertical line at every inner phone boundary
    inner = {round(iv.start_s, 9) for iv in data.alignment.phones.intervals[1:]}
    xs = {round(float(seg[0][0]), 9) for c in ax.collections for seg in c.get_segments()
          if seg[0][0] == seg[1][0]}
    assert inner <= xs


def test_span_crops_time_axes_and_waveform(data):
    fig = draw_figure(FigureSpec(layer=0, head=0, span=(0.8, 1.6), dpi=DPI), data)
    ax = _axes(fig, "map")
    assert ax.get_xlim() == pytest.approx((0.8, 1.6))
    assert sorted(ax.get_ylim()) == pytest.approx([0.8, 1.6])
    wave = _axes(fig, "waveform")
    coll = wave.collections[0]
    verts = np.concatenate([p.vertices for p in coll.get_paths()])
    assert verts[:, 0].min() >= 0.8 - 1e-6 and verts[:, 0].max() <= 1.6 + 1e-6
    # the envelope spans the samples of the span
    seg = data.samples[int(0.8 * RATE):int(1.6 * RATE)]
    assert verts[:, 1].max() == pytest.approx(float(seg.max()), abs=1e-6)
    assert verts[:, 1].min() == pytest.approx(float(seg.min()), abs=1e-6)


def test_labels_never_overlap(data):
    for width in ("column", "page"):
        fig = draw_figure(FigureSpec(layer=2, head=3, width=width, dpi=DPI), data)
        r = fig.canvas.get_renderer()
        ax = _axes(fig, "map")
        boxes = [t.get_window_extent(r) for t in ax.get_yticklabels() if t.get_text()]
        assert len(boxes) >= 8, width  # thinned, not emptied
        for a, b in zip(boxes, boxes[1:]):
            assert not a.overlaps(b), (width, a, b)
        for tier in ("tier:phones", "tier:words"):
            tax = _axes(fig, tier)
            tb = sorted((t.get_window_extent(r) for t in _visible_texts(tax)), key=lambda b: b.x0)
            assert len(tb) >= 5, (width, tier)
            for a, b in zip(tb, tb[1:]):
                assert a.x1 <= b.x0, (width, tier, a, b)
            for t in _visible_texts(tax):  # not clipped off the strip
                bb = t.get_window_extent(r)
                assert tax.bbox.x0 - 0.5 <= bb.x0 and bb.x1 <= tax.bbox.x1 + 0.5


def test_dense_labels_are_thinned_not_overlapping():
    """Sixty one-frame phones in 1.2 s: most labels must go, none may collide."""
    d = synthetic(1.2, seed=3)
    edges = np.linspace(0, 1.2, 61)
    d.alignment = Alignment({"phones": Tier("phones", [
        Interval(float(a), float(b), lab) for a, b, lab in
        zip(edges[:-1], edges[1:], (["ʃ", "ɑː", "ɪ", "tʃ", "ŋ"] * 12))])})
    fig = draw_figure(FigureSpec(width="column", dpi=DPI), d)
    r = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(r) for t in _axes(fig, "map").get_yticklabels() if t.get_text()]
    assert 3 <= len(boxes) < 60
    assert all(not a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    tier = _axes(fig, "tier:phones")
    tb = sorted((t.get_window_extent(r) for t in _visible_texts(tier)), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(tb, tb[1:]))


def test_grid_shares_one_colour_scale(data):
    maps = data.maps["encoder"]
    fig = draw_figure(FigureSpec(layout="grid", dpi=DPI), data)
    ims = [ax.get_images()[0] for ax in fig.axes if ax.get_label().startswith("map:")]
    assert len(ims) == maps.num_layers * (maps.num_heads + 1)
    w = maps.weights.astype(np.float32)
    top = max(float(w.max()), float(w.mean(axis=2).max()))
    for im in ims:
        assert im.get_clim() == pytest.approx((0.0, top))
    mean_l1 = next(ax for ax in fig.axes if ax.get_label() == "map:1:mean").get_images()[0]
    np.testing.assert_allclose(np.asarray(mean_l1.get_array()), w[1, 0].mean(axis=0), rtol=1e-6)


def test_profile_is_the_query_row(data):
    maps = data.maps["encoder"]
    q = 70
    fig = draw_figure(FigureSpec(layout="profile", layer=2, head=1, query=q, dpi=DPI), data)
    ax = _axes(fig, "profile")
    step = ax.patches[0]
    values, edges, _ = step.get_data()
    np.testing.assert_allclose(values, maps.weights[2, 0, 1, q].astype(np.float64))
    assert edges[0] == pytest.approx(0.0) and edges[-1] == pytest.approx(maps.num_keys * 0.02)
    title = fig.get_suptitle()
    assert "query 1.410 s" in title  # centre of frame 70: (70 * 320 + 160) / 16000
    pad = float(maps.padding_mass[2, 1, q])
    assert f"{100 * pad:.1f}% to padding" in title


def test_cross_figure_tokens_by_time_with_word_tiers(data):
    fig = draw_figure(FigureSpec(component="cross", layer=1, head=0, dpi=DPI), data)
    ax = _axes(fig, "map")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "\u2423She" in labels and "asy" in labels
    assert not any("startoftranscript" in s or s in ("SOT", "EOT") for s in labels)
    img = np.asarray(ax.get_images()[0].get_array())
    cross = data.maps["cross"]
    np.testing.assert_array_equal(img, cross.weights[1, 0, 0, 2:15].astype(np.float32))
    tiers = [a.get_label() for a in fig.axes if a.get_label().startswith("tier:")]
    assert tiers == ["tier:phones", "tier:words", "tier:whisper"]
    whisper = {t.get_text() for t in _visible_texts(_axes(fig, "tier:whisper"))}
    assert len(whisper) >= 6 and whisper <= set(WORDS)


def test_spec_errors(data):
    bad = [
        FigureSpec(layer=7), FigureSpec(head=9), FigureSpec(layer="rollout", component="cross"),
        FigureSpec(kind="scores", scale="log"), FigureSpec(component="decoder"),
        FigureSpec(colormap="no-such-map"), FigureSpec(layout="profile", query=None),
        FigureSpec(span=(5.0, 6.0)), FigureSpec(width="poster"),
    ]
    for spec in bad:
        with pytest.raises(SteveError):
            draw_figure(spec, data)


def test_render_refuses_overwrite_and_bad_paths(data, tmp_path):
    out = tmp_path / "f.png"
    out.write_bytes(b"keep me")
    with pytest.raises(SteveError, match="exists"):
        render_figure(FigureSpec(dpi=DPI), data, out)
    assert out.read_bytes() == b"keep me"
    render_figure(FigureSpec(dpi=DPI), data, out, force=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SteveError, match="does not exist"):
        render_figure(FigureSpec(dpi=DPI), data, tmp_path / "no" / "such" / "f.pdf")
    with pytest.raises(SteveError, match="format"):
        render_figure(FigureSpec(dpi=DPI), data, tmp_path / "f.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png"]  # no temporary files left


# --- CLI -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def npz_files(data, tmp_path_factory):
    """An .npz per component written by save_npz, with and without its audio file."""
    from steve_qt.core.models.npzio import save_npz

    d = tmp_path_factory.mktemp("npz")
    wav = write_wav(d / "utt.wav", data.samples, RATE)
    ex = Extraction(maps=data.maps, transcript=Transcript("she had", words=list(data.words)),
                    model="whisper:test")
    out = {}
    for comp in ("encoder", "cross"):
        out[comp] = save_npz(d / f"{comp}.npz", ex, comp, alignment=data.alignment,
                             audio_path=wav)
    out["orphan"] = save_npz(d / "orphan.npz", ex, "encoder", alignment=data.alignment,
                             audio_path=d / "gone.wav")
    return out


def _cli(argv, capsys):
    from steve_qt.cli import main

    code = main(["figure", *map(str, argv)])
    return code, capsys.readouterr()


def test_cli_from_npz_pdf(npz_files, tmp_path, capsys):
    out = tmp_path / "fig.pdf"
    code, io_ = _cli([npz_files["encoder"], "--layer", "1", "--head", "2", "--out", out,
                      "--dpi", "100"], capsys)
    assert code == 0, io_.err
    text = _pdftotext(out)
    assert "layer 1, head 2" in text and "ʃ" in text


def test_cli_model_words_tier_beneath_an_encoder_map(npz_files, tmp_path, capsys):
    plain, with_words = tmp_path / "plain.svg", tmp_path / "words.svg"
    for out, extra in ((plain, []), (with_words, ["--model-words"])):
        code, io_ = _cli([npz_files["encoder"], "--out", out, "--dpi", "100", *extra], capsys)
        assert code == 0, io_.err
    plain_t, words_t = (" ".join(_svg_texts(p.read_bytes())) for p in (plain, with_words))
    # the model's words (here the fixture's) are drawn once more, in a tier named by the model
    assert "whisper" not in plain_t.split() and plain_t.split().count("dark") == 1
    assert "whisper" in words_t.split() and words_t.split().count("dark") == 2


def test_cli_grid_profile_and_cross(npz_files, tmp_path, capsys):
    code, io_ = _cli([npz_files["encoder"], "--grid", "--width", "page", "--out",
                      tmp_path / "g.svg", "--dpi", "100"], capsys)
    assert code == 0, io_.err
    code, io_ = _cli([npz_files["encoder"], "--profile-query", "1.0", "--layer", "rollout",
                      "--out", tmp_path / "p.svg", "--dpi", "100"], capsys)
    assert code == 0, io_.err
    assert "query 1.010 s" in "".join(_svg_texts((tmp_path / "p.svg").read_bytes()))
    code, io_ = _cli([npz_files["cross"], "--profile-token", "5", "--out", tmp_path / "c.svg",
                      "--dpi", "100"], capsys)
    assert code == 0, io_.err
    assert "\u201c\u2423dark\u201d" in "".join(_svg_texts((tmp_path / "c.svg").read_bytes()))


def test_cli_npz_without_audio_notes_it(npz_files, tmp_path, capsys):
    out = tmp_path / "o.svg"
    code, io_ = _cli([npz_files["orphan"], "--out", out, "--dpi", "100"], capsys)
    assert code == 0, io_.err
    texts = " ".join(_svg_texts(out.read_bytes()))
    assert "waveform omitted" in texts and "gone.wav" in texts


def test_cli_errors_exit_2(npz_files, tmp_path, capsys):
    existing = tmp_path / "x.png"
    existing.write_bytes(b"old")
    code, io_ = _cli([npz_files["encoder"], "--out", existing], capsys)
    assert code == 2 and "exists" in io_.err and str(existing) in io_.err
    assert existing.read_bytes() == b"old"
    code, io_ = _cli([npz_files["encoder"], "--out", tmp_path / "missing" / "x.pdf"], capsys)
    assert code == 2 and "does not exist" in io_.err
    code, io_ = _cli([npz_files["encoder"], "--grid", "--profile-query", "1", "--out",
                      tmp_path / "y.pdf"], capsys)
    assert code == 2 and "choose one" in io_.err
    code, io_ = _cli([npz_files["encoder"], "--component", "cross", "--out",
                      tmp_path / "y.pdf"], capsys)
    assert code == 2 and "holds 'encoder'" in io_.err
    code, io_ = _cli([npz_files["encoder"], "--layer", "9", "--out", tmp_path / "y.pdf"], capsys)
    assert code == 2 and "layer 9" in io_.err
    code, io_ = _cli([npz_files["cross"], "--profile-query", "1", "--out", tmp_path / "y.pdf"],
                     capsys)
    assert code == 2 and "--profile-token" in io_.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
    for line in io_.err.strip().splitlines():
        assert line.startswith("steve-qt: error:")


# --- the real model on a sample ------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(dark_suit_extraction, dark_suit):
    from steve_qt.core.models.pipeline import open_utterance

    audio, ex = dark_suit_extraction
    utt = open_utterance(dark_suit)
    return FigureData.from_extraction(ex, audio, utt.alignment)


def test_real_whisper_map_pdf(real, tmp_path):
    pdf = render_figure(FigureSpec(layer=2, head=3, dpi=150), real, tmp_path / "real.pdf")
    text = _pdftotext(pdf)
    assert "tiny.en" in text and "encoder self-attention" in text and "layer 2, head 3" in text
    labels = {iv.label for iv in real.alignment.phones.intervals if iv.label not in ("h#", "pau")}
    drawn = _drawn_labels(draw_figure(FigureSpec(layer=2, head=3, dpi=150), real))
    assert len(drawn & labels) >= 0.6 * len(labels), sorted(labels - drawn)
    flat = "".join(text.split())
    assert all("".join(lab.split()) in flat for lab in drawn), text
    assert {"dark", "suit", "wash"} <= drawn


def test_real_whisper_cross_and_grid_png(real):
    fig = draw_figure(FigureSpec(component="cross", layer=3, dpi=DPI), real)
    labels = [t.get_text() for t in _axes(fig, "map").get_yticklabels()]
    words = real.maps["cross"].query_labels
    assert labels and all(not s.startswith("<|") for s in labels)
    assert len(labels) >= 0.6 * sum(1 for w in words if not w.startswith("<|"))
    png = figure_bytes(FigureSpec(layout="grid", dpi=DPI), real, "png")
    assert _png(png).std() > 20


def test_from_document_is_what_the_window_shows(data):
    from steve_qt.core.speech.audio import from_array
    from steve_qt.core.state.document import Document
    from steve_qt.core.figures.attention import from_document
    from steve_qt.core.models.pipeline import Utterance

    doc = Document()
    with pytest.raises(SteveError, match="nothing to draw"):
        from_document(doc)
    doc.add(Utterance(from_array(data.samples, RATE), data.alignment, "textgrid"))
    ex = Extraction(maps=data.maps, transcript=Transcript("she", words=list(data.words)),
                    model="whisper:test")
    doc.set_extraction(0, doc.attention.model, 0, ex)
    doc.attention.set_layer(1)
    doc.attention.set_head(2)
    doc.attention.set_scale("row")
    doc.attention.set_colormap("magma")
    doc.nav.set_view(0.5, 1.5)
    doc.attention.set_query(40)
    spec, fdata = from_document(doc, layout="profile", width="page", dpi=DPI)
    assert (spec.component, spec.layer, spec.head, spec.scale, spec.colormap, spec.query) == \
        ("encoder", 1, 2, "row", "magma", 40)
    assert spec.span == pytest.approx((0.5, 1.5))
    fig = draw_figure(spec, fdata)
    assert "layer 1, head 2" in fig.get_suptitle()  # numbered from 0, as on screen and in the CLI
    assert _axes(fig, "profile").get_xlim() == pytest.approx((0.5, 1.5))
    values = _axes(fig, "profile").patches[0].get_data().values
    row = data.maps["encoder"].weights[1, 0, 2, 40].astype(np.float64)
    np.testing.assert_allclose(values, row / row.max())


def test_real_cli_from_audio(dark_suit, whisper_adapter, tmp_path, capsys):
    """steve-qt figure AUDIO runs the model (loaded once per process) and draws its words."""
    out = tmp_path / "cross.svg"
    code, io_ = _cli([dark_suit, "--component", "cross", "--layer", "3", "--head", "mean",
                      "--width", "page", "--out", out, "--dpi", "100"], capsys)
    assert code == 0, io_.err
    texts = _svg_texts(out.read_bytes())
    assert "whisper:tiny.en (embedded): decoder cross-attention" in texts
    assert "layer 3, mean of heads" in texts
    assert {"phones", "words", "whisper", "dark", "wash"} <= set(texts)
