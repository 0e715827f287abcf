"""Figures: --spectrogram mel|broadband under the waveform; --labels fit|all and the label log."""

from __future__ import annotations

import numpy as np
import pytest

from steve_qt.core.speech.alignment import Alignment, Interval, Tier
from steve_qt.core.figures.attention import MIN_LABEL_PT, FigureSpec, draw_figure, label_log
from steve_qt.core.speech.spectrogram import broadband_spectrogram, mel_spectrogram

from audio_helpers import write_wav
from test_figures import RATE, _axes, _visible_texts, synthetic

DPI = 100


@pytest.fixture(scope="module")
def data():
    return synthetic()


def test_spectrogram_panel_under_the_waveform(data):
    for kind, make, top in (("broadband", broadband_spectrogram, 5000), ("mel", mel_spectrogram,
                                                                         80)):
        fig = draw_figure(FigureSpec(layer=1, head=2, spectrogram=kind, dpi=DPI), data)
        y = {name: _axes(fig, name).get_position().y0 for name in ("waveform", "spectrogram",
                                                                      "map")}
        assert y["waveform"] > y["spectrogram"] > y["map"]  # top to bottom
        ax = _axes(fig, "spectrogram")
        (im,) = ax.get_images()
        want = make(data.samples, RATE)  # the figure crops 20 ms beyond the span: none here
        np.testing.assert_array_equal(im.get_array(), want.db)
        assert im.get_clim() == pytest.approx(want.levels)
        assert ax.get_ylim()[1] == pytest.approx(want.y_extent[1]) and \
            want.y_extent[1] == pytest.approx(top, abs=8)
        assert ax.get_xlim() == pytest.approx(_axes(fig, "map").get_xlim())
        assert ax.get_ylabel() == "kHz"
    ticks = [t.get_text() for t in ax.get_yticklabels()]  # mel: kHz at the bands' places
    assert ticks == ["0.5", "1", "2", "4", "8"]
    profile = draw_figure(FigureSpec(layout="profile", query=30, spectrogram="mel", dpi=DPI),
                          data)
    assert "spectrogram" in [a.get_label() for a in profile.axes]
    plain = draw_figure(FigureSpec(dpi=DPI), data)
    assert "spectrogram" not in [a.get_label() for a in plain.axes]  # only when asked for


def crowded():
    """dark-suit-like data plus TIMIT's short closures: 'dcl' (12 ms) and 'hv' (15 ms)."""
    d = synthetic()
    ivs = list(d.alignment.phones.intervals)
    i = len(ivs) // 2
    a = ivs[i].start_s
    extra = [Interval(a, a + 0.012, "dcl"), Interval(a + 0.012, a + 0.027, "hv"),
             Interval(a + 0.027, ivs[i].end_s, ivs[i].label)]
    d.alignment = Alignment({"phones": Tier("phones", ivs[:i] + extra + ivs[i + 1:]),
                             "words": d.alignment.words})
    return d


def test_labels_fit_leaves_out_and_counts_what_has_no_room():
    d = crowded()
    fig = draw_figure(FigureSpec(width="page", dpi=DPI), d)
    tier = _axes(fig, "tier:phones")
    shown = {t.get_text() for t in _visible_texts(tier)}
    total = sum(1 for iv in d.alignment.phones.intervals if iv.label)
    assert "dcl" not in shown and "hv" not in shown  # no room at page width
    counts = fig.steve_labels
    assert counts["phones tier"]["total"] == total
    assert counts["phones tier"]["dropped"] == total - len(_visible_texts(tier))
    dropped = sum(c["dropped"] for c in counts.values())
    line = label_log(fig)
    assert f"phones tier {len(_visible_texts(tier))} of {total}" in line
    assert f"; {dropped} left out for lack of room" in line


def test_labels_all_draws_every_label_shrunk_then_abbreviated():
    d = crowded()
    fig = draw_figure(FigureSpec(width="page", labels="all", dpi=DPI), d)
    r = fig.canvas.get_renderer()
    tier = _axes(fig, "tier:phones")
    texts = _visible_texts(tier)
    labels = [iv.label for iv in d.alignment.phones.intervals
              if iv.label and iv.start_s < d.alignment.phones.intervals[-1].end_s]
    assert len(texts) == len(labels)  # every label, none hidden
    by_start = sorted(texts, key=lambda t: t.get_position()[0])
    for t, want in zip(by_start, labels):  # each one its own label or a prefix of it
        assert want.startswith(t.get_text()) and t.get_text(), (t.get_text(), want)
        assert t.get_fontsize() >= MIN_LABEL_PT - 1e-9
    closures = [iv for iv in d.alignment.phones.intervals if iv.label in ("dcl", "hv")]
    for iv in closures:  # no room even at the smallest size: abbreviated
        (t,) = [t for t in texts if iv.start_s < t.get_position()[0] < iv.end_s]
        assert t.get_fontsize() == pytest.approx(MIN_LABEL_PT)
        assert len(t.get_text()) < len(iv.label) and iv.label.startswith(t.get_text())
    # what does fit stays inside its interval
    x = tier.transData.transform
    for t in texts:
        if t.get_fontsize() > MIN_LABEL_PT:
            bb = t.get_window_extent(r)
            c = t.get_position()[0]
            iv = next(iv for iv in d.alignment.phones.intervals
                      if iv.start_s <= c <= iv.end_s and iv.label.startswith(t.get_text()))
            assert x((iv.start_s, 0))[0] - 0.5 <= bb.x0 and bb.x1 <= x((iv.end_s, 0))[0] + 0.5
    counts = fig.steve_labels
    assert all(c["dropped"] == 0 for c in counts.values())
    assert counts["phones tier"]["abbreviated"] >= 1
    ticks = [t for t in _axes(fig, "map").get_yticklabels() if t.get_text()]
    assert len(ticks) == counts["phones on the query axis"]["total"]  # all kept on the axis
    assert "in a smaller font" in label_log(fig) and "abbreviated" in label_log(fig)


def test_cli_spectrogram_and_labels_log_on_stderr(data, tmp_path, capsys):
    from steve_qt.cli import main
    from steve_qt.core.models.adapters import Extraction, Transcript
    from steve_qt.core.models.npzio import save_npz

    d = crowded()
    wav = write_wav(tmp_path / "utt.wav", d.samples, RATE)
    ex = Extraction(maps=d.maps, transcript=Transcript(""), model="whisper:test")
    npz = save_npz(tmp_path / "e.npz", ex, "encoder", alignment=d.alignment, audio_path=wav)
    out = tmp_path / "f.png"
    assert main(["figure", str(npz), "--spectrogram", "broadband", "--width", "page",
                 "--dpi", "72", "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("steve-qt figure: labels drawn: ")
    assert "left out for lack of room (--labels all draws every label)" in err[0]
    assert main(["figure", str(npz), "--labels", "all", "--dpi", "72", "--force",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "left out" not in err and "abbreviated" in err
    with pytest.raises(SystemExit) as exit_:  # argparse: a choice it does not know
        main(["figure", str(npz), "--spectrogram", "narrow", "--out", str(out)])
    assert exit_.value.code == 2 and "invalid choice: 'narrow'" in capsys.readouterr().err


def test_feature_figure_takes_labels_all_and_logs_the_labels(tmp_path, capsys, dark_suit,
                                                             whisper_adapter):
    from steve_qt.cli import main

    out = tmp_path / "f.png"
    base = ["figure", str(dark_suit), "--site", "encoder.blocks.2.mlp.1", "--feature", "5",
            "--dpi", "72", "--out", str(out)]
    assert main(base) == 0
    err = capsys.readouterr().err
    assert "steve-qt figure: labels drawn: " in err and "left out for lack of room" in err
    assert main(base + ["--labels", "all", "--force"]) == 0
    err = capsys.readouterr().err
    assert "steve-qt figure: labels drawn: " in err and "left out" not in err
