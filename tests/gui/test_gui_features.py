"""The features dock: activation track, examples of a feature index, listening.

Activations are synthetic (feature_helpers.synthetic_acts) and stored on the document as the
worker would; the index is written by hand with the CSV columns the brief fixes. Playback runs
in a subprocess against an ALSA file device (as test_gui_playback.py does) and what was played
is compared with the formula computed here, independently of steve_qt.core.features.audio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PyQt6 import QtCore, QtGui

from gui_helpers import ARTIFACTS, run_steve_qt
from feature_helpers import D, HOP, SITE, frames_of, make_corpus, synthetic_acts, write_index
from test_gui_playback import ONE_BUFFER_S, alsa_home

PROBE = Path(__file__).with_name("features_probe.py")


@pytest.fixture(autouse=True)
def _activation_cache_in_tmp(tmp_path, monkeypatch):
    """The activation cache the dock looks in (never the user's own)."""
    monkeypatch.setenv("STEVE_QT_CACHE", str(tmp_path / "actcache"))


def _grid():
    from steve_qt.core.frames import whisper_grid

    return whisper_grid(0)


def _show_dock(window, qtbot) -> None:
    """Bring the Features tab to the front (it starts behind Head statistics)."""
    window.features.raise_()
    qtbot.waitUntil(window.features.isVisible, timeout=5000)


def _store(window, index: int, acts: np.ndarray) -> None:
    window.doc.features.store(index, window.doc.attention.model, 0, SITE, acts, _grid())


@pytest.fixture
def corpus(tmp_path, samples_dir):
    files = make_corpus(tmp_path / "corpus", samples_dir)
    acts = {f: synthetic_acts(sf.info(str(f)).frames, seed) for seed, f in enumerate(files)}
    idx = write_index(tmp_path / "idx", tmp_path / "corpus", acts)
    return files, acts, idx


def _half_peak_span(track: np.ndarray, frame: int) -> tuple[float, float]:
    """Brute force: every frame j whose whole path to ``frame`` stays >= half the peak."""
    peak = track[frame]
    keep = [j for j in range(len(track))
            if all(track[k] >= peak / 2 for k in range(min(j, frame), max(j, frame) + 1))]
    a, b = min(keep), max(keep)
    return a * HOP / 16000, (b + 1) * HOP / 16000  # whisper frames: [320 j, 320 (j + 1))


# --- the activation track ----------------------------------------------------------------------
def test_track_equals_the_stored_activations_of_the_chosen_feature(window, dark_suit, qtbot):
    _show_dock(window, qtbot)
    assert window.features.timeline.track.isVisible()
    i = window.opener.open_audio(dark_suit)
    n = window.doc.utterance.audio.samples.size
    acts = synthetic_acts(n, 7)
    window.doc.features.set_site(SITE)
    _store(window, i, acts)
    for f in (0, 5, 2):
        window.features.panel.feature.setValue(f)
        x, y = window.features.timeline.curve.getData()
        np.testing.assert_array_equal(y, acts[:, f])
        t = frames_of(n)
        np.testing.assert_allclose(x, np.arange(t + 1) * HOP / 16000, atol=1e-9)
    # the track is one of the linked time plots, with the same left-axis width
    views = window.views
    assert window.features.timeline.track in views.time_plots
    assert window.features.timeline.track in views.shown_plots()
    assert len(set(views.left_axis_widths())) == 1
    assert window.features.timeline.track.vb.viewRange()[0] == pytest.approx(views.wave.vb.viewRange()[0])
    # "in this file": the top features by max, as a brute-force ranking gives them
    table = window.features.panel.top
    shown = [int(table.item(r, 0).text()) for r in range(table.rowCount())]
    assert shown == [int(f) for f in np.argsort(-acts.max(axis=0), kind="stable")]
    row = shown.index(3)
    qtbot.mouseClick(table.viewport(), QtCore.Qt.MouseButton.LeftButton,
                     pos=table.visualItemRect(table.item(row, 1)).center())
    assert window.doc.features.feature == 3


def test_the_empty_track_row_says_what_to_choose_and_has_no_ticks(window, dark_suit, qtbot):
    _show_dock(window, qtbot)
    track, axis = window.features.timeline.track, window.features.timeline.track.getAxis("left")
    text = lambda: window.features.timeline.track_text.textItem.toPlainText()  # noqa: E731
    assert track.isVisible() and axis.style["showValues"] is False and text() == ""
    i = window.opener.open_audio(dark_suit)
    assert axis.style["showValues"] is False  # no 0..1 ticks over an empty row
    assert text() == "choose a site and a feature in the Features dock"
    window.doc.features.set_site(SITE)
    window.features.activate()
    assert axis.style["showValues"] is False and SITE in text()
    _store(window, i, synthetic_acts(window.doc.utterance.audio.samples.size, 2))
    assert axis.style["showValues"] is True and text().startswith("feature 0: max ")
    ARTIFACTS.mkdir(exist_ok=True)
    window.grab().save(str(ARTIFACTS / "features_track_filled.png"))


def test_best_phone_is_the_label_with_the_highest_mean(window, dark_suit):
    i = window.opener.open_audio(dark_suit)
    n = window.doc.utterance.audio.samples.size
    acts = synthetic_acts(n, 3)
    window.doc.features.set_site(SITE)
    _store(window, i, acts)
    from steve_qt.core.speech.phone_sets import normalise_labels

    phones = window.doc.alignment.phones
    norm = normalise_labels(phones.labels)  # statistics use normalised phones
    table = window.features.panel.top
    for r in range(table.rowCount()):
        f = int(table.item(r, 0).text())
        sums: dict[str, list[float]] = {}
        for j in range(len(acts)):
            t = (j * HOP + HOP / 2) / 16000
            for k, iv in enumerate(phones.intervals):
                if iv.label and iv.start_s <= t < iv.end_s:
                    sums.setdefault(norm[k], []).append(acts[j, f])
        best = max(sorted(sums), key=lambda k: np.mean(sums[k]))
        assert table.item(r, 3).text() == best


# --- examples of an index ----------------------------------------------------------------------
def test_clicking_an_example_opens_its_file_and_selects_the_span(window, corpus, qtbot):
    files, acts, idx = corpus
    window.opener.open_audio(files[0])
    fv = window.doc.features
    fv.set_site(SITE)
    assert window.features.open_index(idx)
    fv.set_feature(4)
    ex_rows = fv.examples
    assert [e.rank for e in ex_rows[:3]] == [0, 1, 2]
    target = next(r for r, e in enumerate(ex_rows) if e.file != files[0])
    ex = ex_rows[target]
    table = window.features.panel.examples
    qtbot.mouseClick(table.viewport(), QtCore.Qt.MouseButton.LeftButton,
                     pos=table.visualItemRect(table.item(target, 2)).center())
    assert window.doc.utterance.path.resolve() == ex.file.resolve(), "the example's file is shown"
    assert window.doc.nav.cursor == pytest.approx(ex.time_s)
    assert window.doc.nav.selection is None  # its activations are not read yet
    # the worker's result arrives: the span around the peak is selected
    a = acts[ex.file]
    _store(window, window.doc.files.current, a)
    assert window.doc.nav.selection == pytest.approx(_half_peak_span(a[:, 4], ex.frame))
    assert fv.example == target


def test_an_example_with_cached_activations_is_selected_at_once(window, corpus):
    files, acts, idx = corpus
    fv = window.doc.features
    for f in files:
        i = window.opener.open_audio(f)
        fv.set_site(SITE)
        _store(window, i, acts[f])
    window.doc.set_current(0)
    window.features.open_index(idx)
    fv.set_feature(6)
    for r, ex in enumerate(fv.examples):
        assert window.features.open_example(r)
        assert window.doc.utterance.path.resolve() == ex.file.resolve()
        assert window.doc.nav.selection == pytest.approx(_half_peak_span(acts[ex.file][:, 6], ex.frame))


def test_example_thumbnails_are_drawn(window, corpus, qtbot):
    files, acts, idx = corpus
    window.opener.open_audio(files[0])
    window.doc.features.set_site(SITE)
    window.features.open_index(idx)
    table = window.features.panel.examples
    qtbot.waitUntil(lambda: not window.features.thumbnails_pending(), timeout=10000)
    assert table.rowCount() > 0
    for r in range(table.rowCount()):
        assert not table.item(r, 0).icon().isNull()


def test_no_index_gives_a_clear_message(window, dark_suit, tmp_path, dialogs_seen):
    window.opener.open_audio(dark_suit)
    window.doc.features.set_site(SITE)
    assert not window.features.listening.play_examples()
    assert "No feature index open" in window.status_bar.message_label.text()
    assert "Open Feature Index" in window.features.panel.examples_note.text()
    empty = tmp_path / "not_an_index"
    empty.mkdir()
    assert not window.features.open_index(empty)
    assert dialogs_seen.errors and "not a feature index" in dialogs_seen.errors[-1][1]
    (empty / "index.json").write_text("{ not json")
    assert not window.features.open_index(empty)
    assert "index.json" in dialogs_seen.errors[-1][1]


def test_a_stale_index_says_the_files_moved(window, corpus, tmp_path):
    files, acts, idx = corpus
    window.opener.open_audio(files[0])
    moved = tmp_path / "moved"
    moved.mkdir()
    files[1].rename(moved / files[1].name)
    window.doc.features.set_site(SITE)
    assert window.features.open_index(idx)
    assert "1 of 3 files are missing" in window.status_bar.message_label.text()
    fv = window.doc.features
    for f in range(8):
        fv.set_feature(f)
        rows = [r for r, e in enumerate(fv.examples) if e.file == files[1]]
        if rows:
            break
    shown = window.doc.files.current
    assert not window.features.open_example(rows[0])
    assert "Stale feature index" in window.status_bar.message_label.text()
    assert str(files[1]) in window.status_bar.message_label.text()
    assert window.doc.files.current == shown


def test_an_index_of_another_model_says_so(window, corpus, tmp_path):
    files, acts, _ = corpus
    idx = write_index(tmp_path / "idx_base", tmp_path / "corpus", acts, model="whisper:base")
    window.opener.open_audio(files[0])
    window.doc.features.set_site(SITE)
    assert window.features.open_index(idx)
    assert "built with model 'whisper:base'" in window.status_bar.message_label.text()
    assert window.doc.features.examples == []
    assert "built with model" in window.features.panel.examples_note.text()
    assert not window.features.listening.play_examples()


# --- listening ---------------------------------------------------------------------------------
def _run_probe(home: Path, *args) -> dict:
    env = dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen",
               XDG_CONFIG_HOME=str(home / ".config"))
    out = subprocess.run([sys.executable, str(PROBE), *map(str, args)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _locate(played: np.ndarray, expected: np.ndarray) -> int:
    """Offset of ``expected`` in ``played`` (the device may add silence before it)."""
    j = int(np.flatnonzero(expected)[0])
    i = int(np.flatnonzero(played)[0])
    return i - j


def test_play_feature_sends_the_enveloped_samples(tmp_path, dark_suit):
    home, raw = alsa_home(tmp_path)
    feature, floor_db = 2, -26
    got = _run_probe(home, "feature", dark_suit, feature, floor_db)
    assert got["started"], got["message"]
    assert got["message"].startswith("Playing feature 2"), got["message"]
    assert not got["message_after"].startswith("Playing"), got["message_after"]
    x, rate = sf.read(str(dark_suit), dtype="float32")
    a = synthetic_acts(x.size, 0)[:, feature].astype(np.float64)
    # the documented formula, by hand: per frame g0 + (1 - g0) clip(a / max a, 0, 1), linear
    # between frame centres (320 f + 160 samples), held beyond the first and last centre
    g0 = 10 ** (floor_db / 20)
    g = g0 + (1 - g0) * np.clip(a / a.max(), 0, 1)
    centres = (np.arange(a.size) * 320 + 160) / 16000
    gain = np.empty(x.size)
    for s in range(x.size):
        t = s / rate
        k = np.searchsorted(centres, t)
        if k == 0:
            gain[s] = g[0]
        elif k == a.size:
            gain[s] = g[-1]
        else:
            w = (t - centres[k - 1]) / (centres[k] - centres[k - 1])
            gain[s] = g[k - 1] * (1 - w) + g[k] * w
    expected = (x * gain).astype(np.float32)
    played = np.fromfile(raw, dtype="<f4")
    assert got["frames_written"] == x.size
    off = _locate(played, expected)
    assert off >= 0
    np.testing.assert_allclose(played[off:off + x.size], expected, atol=2e-7)
    assert played.size - x.size < ONE_BUFFER_S * rate
    quiet = np.abs(expected[gain < g0 * 1.01]).max()
    assert quiet <= g0 * np.abs(x).max() + 1e-6  # where it does not fire: at the floor


def test_play_examples_plays_the_spans_in_order(tmp_path, corpus):
    files, acts, idx = corpus
    home, raw = alsa_home(tmp_path)
    feature, pad_ms = 1, 180
    got = _run_probe(home, "examples", files[0], feature, pad_ms, idx)
    assert got["started"], got["message"]
    pad, gap = pad_ms / 1000, int(0.15 * 16000)
    pieces = []
    for f, time_s in got["examples"]:
        x, rate = sf.read(f, dtype="float32")
        s0, s1 = max(int(round((time_s - pad) * rate)), 0), min(int(round((time_s + pad) * rate)), x.size)
        pieces.append(x[s0:s1])
    expected = np.concatenate([np.concatenate([p, np.zeros(gap, np.float32)]) for p in pieces])[:-gap]
    # the rows the index lists for the feature, top examples first, then the ranges
    with open(idx / "top_examples.csv") as fh:
        top = [line.split(",") for line in fh.read().splitlines()[1:]]
    want = [(str(files[0].parent / r[2]), float(r[4])) for r in top if int(r[0]) == feature]
    assert [(f, pytest.approx(t)) for f, t in got["examples"][:len(want)]] == want
    played = np.fromfile(raw, dtype="<f4")
    assert got["frames_written"] == expected.size
    off = _locate(played, expected)
    np.testing.assert_array_equal(played[off:off + expected.size], expected)


def test_the_example_row_and_cursor_follow_the_montage(window, corpus, monkeypatch):
    files, acts, idx = corpus
    window.opener.open_audio(files[0])
    fv = window.doc.features
    fv.set_site(SITE)
    window.features.open_index(idx)
    fv.set_feature(5)
    (buf, pieces), rate = window.features.listening.montage()
    window.features.listening.montage_pieces, window.features.listening.montage_rate = pieces, rate

    class Clock:  # the player's position, set by the test
        pos = 0.0
        playing = True

        def buffer_position(self):
            return self.pos

        def stop(self):
            self.playing = False

        close = stop

    clock = Clock()
    monkeypatch.setattr(window.playback, "player", clock)
    for p in pieces:
        clock.pos = p.buf0 + p.n / 2
        window.features.listening.follow_montage()
        assert fv.example == p.row
        ex = fv.examples[p.row]
        here = ex.file.resolve() == files[0].resolve()
        assert window.doc.nav.playhead == (pytest.approx(p.t0 + p.n / 2 / rate) if here else None)
        table = window.features.panel.examples
        assert [i.row() for i in table.selectionModel().selectedRows()] == [p.row]


def test_export_examples_audio_writes_the_montage_and_its_table(window, corpus, tmp_path):
    files, acts, idx = corpus
    window.opener.open_audio(files[0])
    window.doc.features.set_site(SITE)
    window.features.open_index(idx)
    window.doc.features.set_feature(0)
    out = tmp_path / "ex.wav"
    wav, table = window.features.listening.export_examples(out)
    y, rate = sf.read(str(wav), dtype="float32")
    import csv

    rows = list(csv.DictReader(open(table)))
    assert len(rows) == len(window.doc.features.examples)
    for r in rows:
        x, _ = sf.read(r["file"], dtype="float32")
        a, b = int(round(float(r["start_s"]) * rate)), int(round(float(r["end_s"]) * rate))
        s0 = int(round(float(r["file_start_s"]) * rate))
        np.testing.assert_array_equal(y[a:b], x[s0:s0 + (b - a)])
    assert window.features.listening.export_examples(out) is None  # no silent overwrite


def test_the_heat_strip_shows_the_top_features_on_the_shared_time_axis(window, dark_suit, qtbot):
    _show_dock(window, qtbot)
    i = window.opener.open_audio(dark_suit)
    acts = synthetic_acts(window.doc.utterance.audio.samples.size, 5)
    window.doc.features.set_site(SITE)
    _store(window, i, acts)
    window.features.panel.heat.setChecked(True)
    in_step = lambda: all(r == pytest.approx(window.doc.nav.view, abs=1e-9)  # noqa: E731
                          for r in window.views.x_ranges())
    qtbot.waitUntil(in_step, timeout=5000)  # once the layout has settled
    heat = window.features.timeline.heat
    assert heat in window.views.shown_plots()
    order = np.argsort(-acts.max(axis=0), kind="stable")
    expect = (acts[:, order] / acts[:, order].max(axis=0)).T  # rows: features, each scaled to max
    np.testing.assert_allclose(window.features.timeline.heat_image.image, expect, rtol=1e-6)
    assert len(set(window.views.left_axis_widths())) == 1
    # row labels: as many as fit without overlapping; every row once the strip is tall enough
    from PyQt6 import QtGui

    label_px = QtGui.QFontMetricsF(window.features.timeline.heat_font).height()
    axis = heat.getAxis("left")

    def labelled() -> list[int]:
        return [int(text) for _, text in axis._tickLevels[0]]

    rows = [int(f) for f in order[:16]]
    row_px = heat.vb.height() / len(rows)
    shown = labelled()
    step = rows.index(shown[1]) - rows.index(shown[0])
    assert shown == rows[::step] and step * row_px >= label_px > (step - 1) * row_px
    assert step < 4  # was every 4th row whatever the room
    heat.setFixedHeight(int(len(rows) * label_px) + 20)
    qtbot.waitUntil(lambda: labelled() == rows, timeout=5000)
    window.features.panel.heat.setChecked(False)
    window.features.panel.heat.setChecked(True)
    window.doc.nav.zoom_in()
    assert all(r == pytest.approx(window.doc.nav.view, abs=1e-9) for r in window.views.x_ranges())
    window.features.panel.heat.setChecked(False)  # the rows resize: no row drifts
    window.resize(1000, 760)
    qtbot.wait(100)
    qtbot.waitUntil(in_step, timeout=5000)
    window.features.panel.heat.setChecked(True)
    qtbot.wait(100)
    qtbot.waitUntil(in_step, timeout=5000)


def test_a_real_index_of_steve_qt_features_index(window, tmp_path, samples_dir, whisper_adapter):
    """An index built by core.feature_index over the real model: its examples open at once
    (their activations are in the activation cache the build filled) and the selected span and
    the track agree with the cached activations."""
    from steve_qt.core.features import actcache
    from steve_qt.core.features.index import build_index

    files = make_corpus(tmp_path / "corpus", samples_dir)
    build_index(tmp_path / "corpus", SITE, tmp_path / "idx", spec="whisper", top_k=3, jobs=1)
    window.opener.open_audio(files[0])
    fv = window.doc.features
    fv.set_site(SITE)
    assert window.features.open_index(tmp_path / "idx"), window.status_bar.message_label.text()
    assert "3 files" in window.status_bar.message_label.text()
    fv.set_feature(100)
    tops = [e for e in fv.examples if e.bin is None]
    assert [e.rank for e in tops] == [0, 1, 2]
    assert all(e.label.startswith("range") for e in fv.examples[3:])
    for r, ex in enumerate(fv.examples[:3]):
        assert window.features.open_example(r)
        assert window.doc.utterance.path.resolve() == ex.file.resolve()
        cached = actcache.load_activations(ex.file, "whisper", SITE)
        np.testing.assert_array_equal(window.features.timeline.curve.getData()[1], cached[:, 100])
        assert cached[ex.frame, 100] == pytest.approx(ex.activation, rel=1e-3)
        assert window.doc.nav.selection == pytest.approx(_half_peak_span(cached[:, 100], ex.frame))


def test_an_sae_is_a_site_whose_track_is_its_codes(window, dark_suit, tmp_path):
    """File > Open SAE...: the track is relu((x - b_dec) W_enc + b_enc) of the SAE's hook_name
    site's activations (a standard SAE), computed here by hand from the saved weights."""
    import torch

    from steve_qt.core.features.sae import SAE, save_sae

    rng = np.random.default_rng(1)
    d_in = 1536  # the width of encoder.blocks.2.mlp.1 in tiny.en (checked when the model is loaded)
    w_enc = (rng.standard_normal((d_in, 12)) / 40).astype(np.float32)
    b_enc = rng.standard_normal(12).astype(np.float32) * 0.1
    b_dec = rng.standard_normal(d_in).astype(np.float32) * 0.1
    sae = SAE(torch.from_numpy(w_enc), torch.from_numpy(b_enc),
              torch.from_numpy(np.ascontiguousarray(w_enc.T)), torch.from_numpy(b_dec),
              architecture="standard", hook_name=SITE)
    save_sae(sae, tmp_path / "sae")
    i = window.opener.open_audio(dark_suit)
    t = frames_of(window.doc.utterance.audio.samples.size)
    acts = np.maximum(rng.standard_normal((t, d_in)), 0).astype(np.float32)
    window.doc.features.set_site(SITE)
    _store(window, i, acts)
    name = window.features.open_sae(tmp_path / "sae")
    assert name is not None and window.doc.features.site == name
    assert window.features.panel.feature.maximum() == 11
    codes = np.maximum((acts.astype(np.float64) - b_dec) @ w_enc + b_enc, 0)
    for f in (0, 7):
        window.doc.features.set_feature(f)
        np.testing.assert_allclose(window.features.timeline.curve.getData()[1], codes[:, f], rtol=1e-5,
                                   atol=1e-5)


def test_the_worker_reads_the_sites_activations_of_the_real_model(app, qtbot, dark_suit,
                                                                  whisper_adapter):
    """With extraction on: once the model has loaded, its frames sites fill the chooser, the
    shown file's activations are read in the worker (encoder only) and the track equals a plain
    forward hook on a plain openai-whisper model with the same weights."""
    import math

    import torch
    import whisper

    from steve_qt.core.speech.audio import load_audio
    from steve_qt.gui.main_window import QtMainWindow

    win = QtMainWindow(auto_extract=True)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    try:
        win.opener.open_audio(dark_suit)
        fv = win.doc.features
        qtbot.waitUntil(lambda: win.doc.attention.extraction is not None and bool(fv.sites),
                        timeout=240000)
        qtbot.waitUntil(lambda: not win.queue.busy, timeout=240000)
        names = [s.name for s in fv.sites]
        assert SITE in names and all(s.axis == "frames" for s in fv.sites)
        assert "decoder.blocks.0" not in names  # tokens sites have no time axis
        assert not win.queue.busy, "nothing is read before the user asks for features"
        _show_dock(win, qtbot)
        combo = win.features.panel.site
        combo.setCurrentIndex(combo.findData(SITE))
        combo.activated.emit(combo.currentIndex())  # the user chooses the site
        assert fv.site == SITE
        qtbot.waitUntil(lambda: fv.activations is not None, timeout=240000)
        fv.set_feature(321)

        plain = whisper.model.Whisper(whisper_adapter.dims)
        plain.load_state_dict(whisper_adapter.model.state_dict())
        plain.eval()
        audio = load_audio(dark_suit).samples
        got = {}
        h = plain.encoder.blocks[2].mlp[1].register_forward_hook(
            lambda m, i, out: got.__setitem__("a", out[0].detach().numpy().copy()))
        with torch.no_grad():
            plain.encoder(whisper_adapter.mel(audio)[None])
        h.remove()
        keep = math.ceil(audio.size / 320)
        np.testing.assert_allclose(win.features.timeline.curve.getData()[1], got["a"][:keep, 321],
                                   rtol=0, atol=1e-4)
    finally:
        win.close()


def test_steve_qt_audio_index_opens_the_index_in_the_dock(corpus, tmp_path):
    """``steve-qt AUDIO --index IDX`` shows the file and the index's examples. It runs (and
    quits) the application's event loop, so it runs in its own process: a quit event loop in
    this test process stalled every later GUI test."""
    files, acts, idx = corpus
    seen = run_steve_qt(["--no-extract", str(files[0]), "--index", str(idx)],
                        ready="win.doc.files.entries and win.doc.features.index is not None",
                        record='{"shown": win.doc.utterance.audio.name, '
                               '"index": str(Path(win.doc.features.index.path).resolve()), '
                               '"note": win.features.panel.examples_note.text()}',
                        home=tmp_path)
    assert seen["status"] == 0
    assert seen["shown"] == files[0].name and Path(seen["index"]) == idx.resolve()
    assert seen["note"]  # says which site to choose (no site list without a loaded model)


def _green_pixels(icon: QtGui.QIcon) -> int:
    """Pixels of the activation curve's green (20, 160, 60) in a thumbnail."""
    from steve_qt.gui.features_dock import THUMB_H, THUMB_W

    img = icon.pixmap(THUMB_W, THUMB_H).toImage()
    n = 0
    for x in range(img.width()):
        for y in range(img.height()):
            c = img.pixelColor(x, y)
            if c.green() > 120 and c.red() < 90 and c.blue() < 110:
                n += 1
    return n


def test_thumbnails_of_files_not_open_draw_the_cached_activation(window, corpus, qtbot):
    """The files of an index are not open: their activations come from the activation cache
    (where `steve-qt features index` leaves them) and each thumbnail draws the curve."""
    from steve_qt.core.features import actcache

    files, acts, idx = corpus
    for f in files:
        actcache.store_activations(f, "whisper", SITE, 0, acts[f],
                                   attrs={"grid": actcache.grid_attrs(_grid())})
    window.doc.features.set_site(SITE)
    window.features.open_index(idx)
    table = window.features.panel.examples
    qtbot.waitUntil(lambda: not window.features.thumbnails_pending(), timeout=10000)
    assert table.rowCount() > 0 and not window.doc.files.entries  # nothing open
    for r, ex in enumerate(window.doc.features.examples):
        assert _green_pixels(table.item(r, 0).icon()) > 20, r
        # a dock too narrow for the time and file columns: the thumbnail says them on hover
        tip = table.item(r, 0).toolTip()
        assert ex.file.name in tip and f"{ex.time_s:.2f} s" in tip


def test_the_track_label_does_not_cover_the_peak(window, dark_suit, qtbot):
    _show_dock(window, qtbot)
    i = window.opener.open_audio(dark_suit)
    n = window.doc.utterance.audio.samples.size
    acts = np.zeros((frames_of(n), D), np.float32)
    acts[3, 0] = 2.0  # a peak at the very start, where the label sits by default
    acts[-4, 1] = 2.0  # one at the very end
    window.doc.features.set_site(SITE)
    _store(window, i, acts)
    feats = window.features
    vb = feats.timeline.track.vb
    for f, frame in ((0, 3), (1, acts.shape[0] - 4)):
        feats.panel.feature.setValue(f)
        qtbot.wait(10)
        t = (frame * HOP + HOP / 2) / 16000
        peak = vb.mapViewToScene(QtCore.QPointF(t, 2.0))
        label = feats.timeline.track_text.sceneBoundingRect()
        assert label.width() > 0
        assert not (label.left() - 2 <= peak.x() <= label.right() + 2), (f, label, peak)
