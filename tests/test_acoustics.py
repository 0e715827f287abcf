"""Acoustic tracks: parselmouth's own calls, a synthetic vowel of known F0/F1/F2, Praat's
``Get value at time`` for sampling, and the CLI's CSV and bad input."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import parselmouth
import pytest
import soundfile as sf
from scipy.signal import lfilter

from steve_qt.core.errors import SteveError
from steve_qt.core.speech.acoustics import (AcousticParams, compute_tracks, sample_track,
                                            tracks_csv)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

RATE = 16000


def synthetic_vowel(f0=100.0, formants=((700.0, 60.0), (1200.0, 80.0)), rate=RATE, dur=1.0):
    """A pulse train at f0 through one two-pole resonator per (frequency, bandwidth)."""
    n = int(rate * dur)
    x = np.zeros(n)
    x[np.round(np.arange(0, n - 1, rate / f0)).astype(int)] = 1.0
    for f, bw in formants:
        r = np.exp(-np.pi * bw / rate)
        c = 2 * r * np.cos(2 * np.pi * f / rate)
        x = lfilter([1 - c + r * r], [1, -c, r * r], x)
    return 0.5 * x / np.abs(x).max()


def test_tracks_equal_parselmouths_calls():
    x, rate = sf.read(SAMPLES / "dark_suit.wav")
    tr = compute_tracks(x, rate)
    snd = parselmouth.Sound(x, sampling_frequency=rate)
    pitch = snd.to_pitch()  # Praat's To Pitch with its defaults
    f0 = pitch.selected_array["frequency"]
    np.testing.assert_array_equal(tr["f0"].times, pitch.xs())
    np.testing.assert_array_equal(np.isnan(tr["f0"].values), f0 == 0)  # unvoiced: NaN, not 0
    np.testing.assert_array_equal(tr["f0"].values[f0 > 0], f0[f0 > 0])
    fm = snd.to_formant_burg(max_number_of_formants=5, maximum_formant=5500, window_length=0.025,
                             pre_emphasis_from=50)
    np.testing.assert_array_equal(tr["f2"].times, fm.xs())
    for k in (1, 2, 3):
        want = np.array([fm.get_value_at_time(k, t) for t in fm.xs()])
        np.testing.assert_array_equal(tr[f"f{k}"].values, want)
    it = snd.to_intensity(minimum_pitch=100)
    want = it.values[0].copy()
    want[want <= -300] = np.nan
    np.testing.assert_array_equal(tr["intensity"].times, it.xs())
    np.testing.assert_array_equal(tr["intensity"].values, want)
    assert 0.3 < np.isfinite(tr["f0"].values).mean() < 0.95


def test_synthetic_vowel_pitch_and_formants():
    tr = compute_tracks(synthetic_vowel(), RATE)
    for m, want, tol in (("f0", 100.0, 1.0), ("f1", 700.0, 35.0), ("f2", 1200.0, 60.0)):
        v = tr[m].values
        mid = v[len(v) // 4: 3 * len(v) // 4]  # away from the edges
        assert np.isfinite(mid).all(), m
        assert np.abs(mid - want).max() <= tol, (m, np.nanmin(mid), np.nanmax(mid))


def test_sampling_equals_praats_get_value_at_time():
    x = synthetic_vowel()
    x[6000:9000] = 0  # an unvoiced, zero-power gap
    tr = compute_tracks(x, RATE)
    snd = parselmouth.Sound(x, sampling_frequency=RATE)
    times = np.linspace(-0.05, 1.05, 1201)
    pitch = snd.to_pitch()
    want = np.array([pitch.get_value_at_time(t) for t in times])
    got = sample_track(tr["f0"], times)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-12)
    fm = snd.to_formant_burg()
    for k in (1, 2):
        want = np.array([fm.get_value_at_time(k, t) for t in times])
        got = sample_track(tr[f"f{k}"], times)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-12)
    it = snd.to_intensity()
    want = np.array([it.get_value(t, parselmouth.Interpolation.LINEAR) for t in times])
    got = sample_track(tr["intensity"], times)
    # Praat interpolates towards a zero-power frame's -300 dB; here that frame is undefined, so
    # compare where no undefined frame is within one frame of the time
    gap = tr["intensity"].times[np.isnan(tr["intensity"].values)]
    near_gap = (np.abs(times[:, None] - gap[None, :]) < tr["intensity"].step).any(axis=1)
    ok = ~np.isnan(got) & ~near_gap
    assert ok.sum() > 800
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12)


def test_silence_is_undefined_and_short_sound_is_an_error():
    tr = compute_tracks(np.zeros(RATE), RATE)
    for m in ("f0", "f1", "f2", "f3", "intensity"):
        assert np.isnan(tr[m].values).all(), m
    with pytest.raises(SteveError, match="shorter than Praat's analysis window"):
        compute_tracks(np.zeros(500), RATE)
    with pytest.raises(SteveError, match="pitch floor"):
        compute_tracks(np.zeros(RATE), RATE, AcousticParams(pitch_floor=700))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "steve_qt.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_cli_csv(tmp_path):
    wav = tmp_path / "v.wav"
    sf.write(wav, synthetic_vowel().astype(np.float32), RATE, subtype="FLOAT")
    out = tmp_path / "t.csv"
    r = _cli("acoustics", wav, "--out", out, "--pitch-ceiling", "500")
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["time_s", "f0_hz", "f1_hz", "f2_hz", "f3_hz", "intensity_db"]
    x, _ = sf.read(wav)
    tr = compute_tracks(x, RATE, AcousticParams(pitch_ceiling=500))
    assert out.read_text() == tracks_csv(tr)
    assert len(rows) - 1 == len(tr["f0"].times)
    mid = rows[len(rows) // 2]
    assert abs(float(mid[1]) - 100) < 1
    r = _cli("acoustics", wav, "--out", out)
    assert r.returncode == 2 and "exists" in r.stderr


def test_cli_silence_and_short(tmp_path):
    sil = tmp_path / "sil.wav"
    sf.write(sil, np.zeros(RATE, np.float32), RATE)
    r = _cli("acoustics", sil, "--out", tmp_path / "s.csv")
    assert r.returncode == 0
    assert "no pitch or formant" in r.stderr
    rows = list(csv.reader((tmp_path / "s.csv").open()))
    assert all(cell == "" for row in rows[1:] for cell in row[1:])
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(500, np.float32), RATE)
    r = _cli("acoustics", short, "--out", tmp_path / "x.csv")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "shorter than Praat" in r.stderr
    assert not (tmp_path / "x.csv").exists()


def test_figure_overlay_draws_praats_tracks():
    from matplotlib.figure import Figure

    from steve_qt.core.figures.acoustics import (FORMANT_COLOUR, PITCH_COLOUR, draw_acoustics,
                                                 parse_overlays)
    from steve_qt.core.speech.spectrogram import spectrogram

    x = synthetic_vowel()
    spec = spectrogram(x.astype(np.float32), RATE, "broadband")
    fig = Figure()
    ax = fig.add_subplot()
    which = parse_overlays("pitch,formants,intensity")
    assert draw_acoustics(ax, x, RATE, (0.0, 1.0), which, spec.y_of_hz) == []
    tr = compute_tracks(x, RATE)
    pitch_ax, int_ax = fig.axes[1], fig.axes[2]
    line = pitch_ax.lines[0]
    assert line.get_color() == PITCH_COLOUR and pitch_ax.get_ylabel() == "pitch (Hz)"
    np.testing.assert_array_equal(line.get_xdata(), tr["f0"].times)
    np.testing.assert_array_equal(line.get_ydata(), tr["f0"].values)  # NaN gaps stay gaps
    np.testing.assert_array_equal(int_ax.lines[0].get_ydata(), tr["intensity"].values)
    dots = ax.collections
    assert len(dots) == 3 and all(
        tuple(d.get_facecolor()[0][:3]) == (1.0, 0.0, 0.0) for d in dots)
    ys = dots[1].get_offsets()[:, 1]
    f2 = tr["f2"].values[np.isfinite(tr["f2"].values)]
    np.testing.assert_allclose(ys, [spec.y_of_hz(f) for f in f2])
    assert FORMANT_COLOUR == "#ff0000"
    with pytest.raises(SteveError, match="unknown acoustic track"):
        parse_overlays("pitch,f5")
    fig2 = Figure()
    notes = draw_acoustics(fig2.add_subplot(), np.zeros(RATE), RATE, (0, 1), ("pitch",),
                           spec.y_of_hz)
    assert notes == ["no pitch found (unvoiced, silence or noise)"]
