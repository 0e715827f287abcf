"""The feature index against acoustics and with honest phone statistics: acoustic_correlation.csv
equals a direct numpy correlation of the cached activations against parselmouth's own tracks;
a label with one frame never enters a ranking; AUROC equals sklearn's."""

from __future__ import annotations

import csv
import math

import numpy as np
import parselmouth
import pytest
import soundfile as sf
from scipy.signal import lfilter

from steve_qt.core.features import actcache
from steve_qt.core.features import index as feature_index

from test_feature_index import HOP, SITE, FakeAdapter, D  # noqa: F401  (the stand-in model)

RATE = 16000


@pytest.fixture
def fake(monkeypatch):
    from steve_qt.core.models import pipeline

    a = FakeAdapter()
    monkeypatch.setitem(pipeline._ADAPTERS, "fake", a)
    return a


def glide(f0a, f0b, f1, f2, seconds, seed):
    """A vowel whose pitch glides from f0a to f0b, with a pause of silence in the middle."""
    n = int(RATE * seconds)
    f0 = np.linspace(f0a, f0b, n)
    phase = np.cumsum(f0 / RATE)
    x = np.zeros(n)
    x[np.flatnonzero(np.diff(np.floor(phase)) > 0) + 1] = 1.0
    for f, bw in ((f1, 70.0), (f2, 90.0)):
        r = np.exp(-np.pi * bw / RATE)
        c = 2 * r * np.cos(2 * np.pi * f / RATE)
        x = lfilter([1 - c + r * r], [1, -c, r * r], x)
    x = 0.4 * x / np.abs(x).max()
    x[n // 2 - 2000:n // 2 + 2000] = 0
    x += 1e-4 * np.random.default_rng(seed).standard_normal(n)
    return x.astype(np.float32)


@pytest.fixture
def vowels(tmp_path):
    root = tmp_path / "vowels"
    root.mkdir()
    for i, (a, b, f1, f2) in enumerate([(100, 140, 700, 1200), (180, 120, 500, 1800),
                                        (130, 130, 600, 1000), (90, 200, 400, 2000)]):
        sf.write(root / f"v{i}.wav", glide(a, b, f1, f2, 1.2 + 0.3 * i, i), RATE, subtype="FLOAT")
    sf.write(root / "short.wav", np.zeros(400, np.float32), RATE, subtype="FLOAT")
    return root


def praat_at(path, times):
    """f0, f1, f2, f3, intensity at ``times`` straight from parselmouth's objects."""
    x, rate = sf.read(path)
    snd = parselmouth.Sound(x, sampling_frequency=rate)
    pitch, fm, it = snd.to_pitch(), snd.to_formant_burg(), snd.to_intensity()
    out = {"f0": np.array([pitch.get_value_at_time(t) for t in times])}
    for k in (1, 2, 3):
        out[f"f{k}"] = np.array([fm.get_value_at_time(k, t) for t in times])
    it_v = np.array([it.get_value(t, parselmouth.Interpolation.LINEAR) for t in times])
    # a frame of zero power is -300 dB in Praat and undefined in the index: leave out any time
    # whose neighbouring intensity frames include one
    zero = it.xs()[it.values[0] <= -300]
    near = (np.abs(np.asarray(times)[:, None] - zero[None, :]) < it.dt).any(axis=1) \
        if zero.size else np.zeros(len(times), bool)
    it_v[near] = np.nan
    out["intensity"] = it_v
    return out


def test_acoustic_correlation_equals_direct_correlation(fake, vowels, tmp_path):
    from steve_qt.cli import main

    idx = tmp_path / "idx"
    cache = tmp_path / "cache"
    assert main(["features", "index", str(vowels), "--site", SITE, "--model", "fake", "--out",
                 str(idx), "--jobs", "1", "--cache", str(cache), "--acoustics"]) == 0
    rows = list(csv.DictReader((idx / "acoustic_correlation.csv").open()))
    assert list(rows[0]) == ["feature", "measure", "r", "n_frames", "files"]
    got = {(int(r["feature"]), r["measure"]): r for r in rows}
    # direct: the cached activations (float16 in the cache) against parselmouth at frame centres
    xs, ys = [], {m: [] for m in ("f0", "f1", "f2", "f3", "intensity")}
    for p in sorted(vowels.glob("v*.wav")):
        key = actcache.file_key(p, "fake", SITE)
        entry = actcache.load_entry(actcache.store_root(cache), key)
        acts = entry.acts.astype(np.float64)
        times = (HOP * np.arange(acts.shape[0]) + HOP / 2) / RATE
        xs.append(acts)
        for m, v in praat_at(p, times).items():
            ys[m].append(v)
    x = np.concatenate(xs)
    checked = 0
    for m, parts in ys.items():
        y = np.concatenate(parts)
        keep = np.isfinite(y)
        for f in (0, 1, 2, 3):
            want = np.corrcoef(x[keep, f], y[keep])[0, 1]
            r = got[(f, m)]
            assert int(r["n_frames"]) == keep.sum(), m
            assert int(r["files"]) == 4  # short.wav has no frames: too short for Praat
            assert float(r["r"]) == pytest.approx(want, abs=1e-9), (f, m)
            checked += 1
        assert got[(5, m)]["r"] == ""  # feature 5 never varies: r undefined, not 0
    assert checked == 20
    assert 0 < int(got[(0, "f0")]["n_frames"]) < int(got[(0, "intensity")]["n_frames"])
    files = list(csv.DictReader((idx / "files.csv").open()))
    assert {f["file"]: f["status"] for f in files}["short.wav"] == "ok"


def test_top_acoustics_lists_most_correlated(fake, vowels, tmp_path, capsys):
    from steve_qt.cli import main

    idx = tmp_path / "idx"
    assert main(["features", "index", str(vowels), "--site", SITE, "--model", "fake", "--out",
                 str(idx), "--jobs", "1", "--cache", str(tmp_path / "c"), "--acoustics"]) == 0
    capsys.readouterr()
    assert main(["features", "top", str(idx), "--acoustics", "f2", "-k", "3"]) == 0
    out = capsys.readouterr().out
    rows = [r for r in csv.DictReader((idx / "acoustic_correlation.csv").open())
            if r["measure"] == "f2" and r["r"]]
    best = sorted(rows, key=lambda r: (-abs(float(r["r"])), int(r["feature"])))[:3]
    listed = [int(line.split()[0]) for line in out.splitlines()[1:4]]
    assert listed == [int(r["feature"]) for r in best]
    no = tmp_path / "plain"
    assert main(["features", "index", str(vowels), "--site", SITE, "--model", "fake", "--out",
                 str(no), "--jobs", "1", "--cache", str(tmp_path / "c")]) == 0
    assert not (no / "acoustic_correlation.csv").exists()
    capsys.readouterr()
    assert main(["features", "top", str(no), "--acoustics", "f2"]) == 2
    assert "--acoustics" in capsys.readouterr().err


def _summary(path, feats, phones, times=None):
    t = feats.shape[0]
    times = np.arange(t) * 0.02 + 0.01 if times is None else times
    return feature_index.summarise(path, feats.astype(np.float32), times, phones, [""] * t)


def test_one_frame_label_never_ranked_and_auroc_equals_sklearn(tmp_path, monkeypatch):
    from sklearn.metrics import roc_auc_score

    monkeypatch.setattr(feature_index, "AUROC_BLOCK", 2)  # 3 features: two spilled blocks

    rng = np.random.default_rng(0)
    files = [f"f{i}.wav" for i in range(5)]
    b = feature_index.IndexBuilder(files, 3, 2, tmp_path / "spill")
    all_x, all_p = [], []
    for i, name in enumerate(files):
        t = 40
        phones = [["s", "iy", "t"][j % 3] for j in range(t)]
        x = rng.integers(0, 4, size=(t, 3)).astype(np.float32)  # ties
        if i == 2:
            phones[5] = "epi"  # TIMIT's epenthetic silence: folds into sil...
            phones[6] = "zh"  # ...and one frame of zh (folds to sh), a huge activation
            x[6, 0] = 1000.0
        b.add(i, _summary(name, x, phones))
        all_x.append(x)
        all_p += [{"epi": "sil", "zh": "sh"}.get(p, p) for p in phones]
    t = b.finish()
    sel, labels = t["selectivity"], t["labels"]
    rows = {(int(r["feature"]), labels[r["phone"]]): r for r in sel}
    sh = rows[(0, "sh")]
    assert sh["frames"] == 1 and sh["n_files"] == 1 and not sh["supported"]
    assert sh["selectivity"] > 5  # Cohen's d explodes on one frame...
    assert not sh["best"]  # ...but never ranks
    assert all(labels[r["phone"]] in ("s", "iy", "t") for r in sel[sel["best"] == 1])
    x = np.concatenate(all_x)
    assert np.isfinite(sel["auroc"]).all()
    for (f, p), r in rows.items():
        want = roc_auc_score([q == p for q in all_p], x[:, f])
        assert r["auroc"] == pytest.approx(want, abs=1e-12), (f, p)
    meta = {"site": "s", "model": "m", "sae": None, "corpus": "c", "files_used": 5,
            "num_files": 5, "files_failed": 0, "num_features": 3, "top_k": 3, "bins": 2,
            "support": {"min_frames": 20, "min_files": 3}}
    text = feature_index.summary_text(meta, t, files, {}, 0.0)
    ranked = [line for line in text.splitlines() if line.startswith("most phone-selective")][0]
    assert "sh" not in ranked and "sil" not in ranked
    assert "3 of 5 normalised phones" in text


def test_min_frames_option(fake, tmp_path):
    from steve_qt.cli import main
    from test_feature_index import write_file

    root = tmp_path / "c"
    for i in range(3):
        write_file(root, f"u{i}", frames=30, seed=i)
    out = tmp_path / "idx"
    assert main(["features", "index", str(root), "--site", SITE, "--model", "fake", "--out",
                 str(out), "--jobs", "1", "--cache", str(tmp_path / "cache"),
                 "--min-frames", "1000"]) == 0
    rows = list(csv.DictReader((out / "phone_selectivity.csv").open()))
    assert rows and all(r["supported"] == "0" and r["best"] == "0" for r in rows)
    assert "none (phones with at least 1000 frames" in (out / "summary.txt").read_text()
    assert math.isfinite(float(rows[0]["auroc"]))
