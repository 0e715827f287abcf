"""Linear probes: the core on hand-made arrays (planted labels, a brute-force leave-one-file-out),
and `steve-qt probe` with tiny.en on a small espeak-ng corpus (in this process and on a Dask
cluster), plus the refusals."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from steve_qt.cli import main
from steve_qt.core.models.adapters import Site
from steve_qt.core.errors import SteveError
from steve_qt.core.features.probes import (PROBE_COLUMNS, ProbeFile, frame_targets, probe_accuracy,
                                  probe_csv, probe_figure, probe_table, save_figure)


# --- labels ---------------------------------------------------------------------------------------
def test_frame_targets_leave_out_silence_and_unknown():
    t = frame_targets(["", "h#", "s", "iː", "pau", "d", "xyzq", "ŋ"])
    assert list(t["phone"]) == ["", "", "s", "i", "", "d", "", "ŋ"]  # normalised: iː -> i
    assert list(t["class"]) == ["", "", "consonant", "vowel", "", "consonant", "", "consonant"]
    assert list(t["manner"]) == ["", "", "fricative", "monophthong", "", "stop", "", "nasal"]
    assert list(t["voicing"]) == ["", "", "voiceless", "voiced", "", "voiced", "", "voiced"]
    # TIMIT: folded 61 -> 39; q (deleted by Lee & Hon) is left out
    t = frame_targets(["h#", "ix", "ng", "q", "ao"])
    assert list(t["phone"]) == ["", "ih", "ng", "", "aa"]


# --- the core on arrays ---------------------------------------------------------------------------
def toy_files(rng, n_files=6, frames=40, dim=6, labels=("a", "b", "c", "d", "e")):
    xs, ys = [], []
    for _ in range(n_files):
        y = rng.choice(labels, size=frames)
        ys.append(y)
        xs.append(rng.standard_normal((frames, dim)).astype(np.float32))
    return xs, ys


def test_a_planted_feature_equal_to_the_label_gives_accuracy_one():
    rng = np.random.default_rng(0)
    xs, ys = toy_files(rng)
    labels = sorted({l for y in ys for l in y})
    planted = [np.hstack([x, (y[:, None] == np.array(labels)[None, :]).astype(np.float32)])
               for x, y in zip(xs, ys)]  # one column per label: 1 where the frame has it
    score = probe_accuracy(planted, ys, folds=3)
    assert score.accuracy == 1.0 and score.n == 240 and score.files == 6 and score.folds == 3
    assert score.majority_baseline < 0.5
    # binary target, one column equal to the label (0/1)
    yb = [np.where(y == "a", "yes", "no") for y in ys]
    xb = [np.hstack([x, (y == "yes")[:, None].astype(np.float32)]) for x, y in zip(xs, yb)]
    assert probe_accuracy(xb, yb).accuracy == 1.0
    # without the planted columns the noise tells nothing
    noise = probe_accuracy(xs, ys, folds=3)
    assert noise.accuracy < 0.4 and noise.accuracy <= noise.majority_baseline + 0.1


def test_scores_equal_a_brute_force_leave_one_file_out():
    """folds = files: GroupKFold is leave-one-file-out; recompute it with a plain loop."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    xs, ys = toy_files(rng, n_files=4, frames=30, dim=3, labels=("p", "t", "k"))
    for x, y in zip(xs, ys):  # a weak signal, so the probe is neither 0 nor 1
        x[:, 0] += (y == "p") * 1.0
    ys[0][:5] = ""  # left out
    score = probe_accuracy(xs, ys, folds=4)
    correct = base = n = 0
    for g in range(4):
        keep = [y != "" for y in ys]
        x_tr = np.vstack([x[k] for i, (x, k) in enumerate(zip(xs, keep)) if i != g])
        y_tr = np.concatenate([y[k] for i, (y, k) in enumerate(zip(ys, keep)) if i != g])
        x_te, y_te = xs[g][keep[g]], ys[g][keep[g]]
        scaler = StandardScaler().fit(x_tr)
        lr = LogisticRegression(max_iter=1000).fit(scaler.transform(x_tr), y_tr)
        correct += int((lr.predict(scaler.transform(x_te)) == y_te).sum())
        counts = Counter(y_tr.tolist())
        majority = sorted(counts, key=lambda l: (-counts[l], l))[0]
        base += int((y_te == majority).sum())
        n += len(y_te)
    assert score.n == n == 115 and score.folds == 4 and score.classes == 3
    assert score.accuracy == correct / n
    assert score.majority_baseline == base / n
    assert 0 < score.accuracy < 1


def test_a_probe_needs_two_files_and_matching_rows():
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(SteveError, match="at least 2 files"):
        probe_accuracy([x, x], [np.array(["a"] * 4), np.array([""] * 4)])
    with pytest.raises(ValueError, match="4 activation rows but 3 labels"):
        probe_accuracy([x, x], [np.array(["a"] * 3), np.array(["a"] * 4)])


def test_table_csv_and_figure(tmp_path):
    rng = np.random.default_rng(2)
    sites = [Site(f"enc.{l}", 4, "frames", l, "residual") for l in range(3)] + \
            [Site("enc.ln", 4, "frames", None, "ln_post")]
    files = []
    for i in range(4):
        phones = list(rng.choice(["s", "iː", "d", "ɑː", "h#"], size=30))
        acts = {s.name: rng.standard_normal((30, 4)).astype(np.float16) for s in sites}
        files.append(ProbeFile(f"f{i}.wav", True, "", acts, phones))
    files.append(ProbeFile("bad.wav", reason="no phone alignment beside it"))
    rows = probe_table(files, sites, folds=2)
    assert [(r["site"], r["target"]) for r in rows][:5] == [
        ("enc.0", "phone"), ("enc.0", "class"), ("enc.0", "manner"), ("enc.0", "voicing"),
        ("enc.1", "phone")]
    assert len(rows) == 16 and all(r["files"] == 4 for r in rows)
    text = probe_csv(rows)
    lines = text.splitlines()
    assert lines[0] == ",".join(PROBE_COLUMNS)
    assert lines[0].startswith("site,layer,target,accuracy,majority_baseline,r2,n")
    assert lines[-1].startswith("enc.ln,,voicing,")
    fig = probe_figure(rows, "toy")
    save_figure(fig, tmp_path / "p.pdf")
    save_figure(fig, tmp_path / "p.png")
    pdf = (tmp_path / "p.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type /Font" in pdf  # TrueType embedded (fonttype 42)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "post"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "phone", "class", "manner", "voicing"]
    assert (tmp_path / "p.png").stat().st_size > 1000


# --- tiny.en on a synthetic corpus ----------------------------------------------------------------
def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def speech_frames_by_centre(wav: Path) -> int:
    """Independent count: 20 ms frames (ceil(n / 320)) whose centre lies in a non-silence .phn
    interval (TIMIT's h#/pau are silence)."""
    import soundfile as sf

    n = sf.info(str(wav)).frames
    centres = (np.arange(-(-n // 320)) * 320 + 160)
    count = 0
    for line in wav.with_suffix(".phn").read_text(encoding="utf-8").splitlines():
        a, b, label = line.split(maxsplit=2)
        if label not in ("h#", "pau"):
            count += int(((centres >= int(a)) & (centres < int(b))).sum())
    return count


@pytest.fixture(scope="module")
def probe_run(synthetic_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    out, cache = root / "p", root / "cache"
    code = main(["probe", str(synthetic_corpus), "--out", str(out), "--jobs", "1",
                 "--cache", str(cache), "--folds", "4"])
    assert code == 0
    return out, cache


def test_tiny_en_layers_beat_the_majority_baseline(probe_run, synthetic_corpus):
    out, _ = probe_run
    rows = read_csv(out / "probe.csv")
    assert [(r["site"], r["layer"], r["target"]) for r in rows] == [
        (f"encoder.blocks.{l}", str(l), t) for l in range(4)
        for t in ("phone", "class", "manner", "voicing")]
    for r in rows:
        assert float(r["accuracy"]) > float(r["majority_baseline"]) + 0.05, r
        assert r["files"] == "8" and r["folds"] == "4"
    files = read_csv(out / "files.csv")
    assert len(files) == 8 and all(f["status"] == "ok" and f["extracted"] == "1" for f in files)
    expected = sum(speech_frames_by_centre(synthetic_corpus / f["file"]) for f in files)
    assert abs(int(rows[0]["n"]) - expected) <= 0.02 * expected
    assert all(r["n"] == rows[0]["n"] for r in rows)  # every target on the same frames
    assert (out / "probe.pdf").stat().st_size > 0 and (out / "probe.png").stat().st_size > 0
    assert "encoder.blocks.3" in (out / "summary.txt").read_text()


def test_a_second_run_reads_the_cache_and_gives_the_same_table(probe_run, synthetic_corpus):
    out, cache = probe_run
    before = (out / "probe.csv").read_text()
    assert main(["probe", str(synthetic_corpus), "--out", str(out), "--jobs", "1",
                 "--cache", str(cache), "--folds", "4", "--force"]) == 0
    assert (out / "probe.csv").read_text() == before
    assert all(f["extracted"] == "0" and f["cached"] == "1" for f in read_csv(out / "files.csv"))


def test_the_same_probe_on_a_dask_cluster(probe_run, synthetic_corpus, tmp_path):
    """Two worker processes of an embedded cluster, their own cache: the same rows."""
    out, _ = probe_run
    out2 = tmp_path / "p2"
    assert main(["probe", str(synthetic_corpus), "--out", str(out2), "--jobs", "2",
                 "--cache", str(tmp_path / "cache2"), "--folds", "4",
                 "--sites", "encoder.blocks.1"]) == 0
    mine = [r for r in read_csv(out / "probe.csv") if r["site"] == "encoder.blocks.1"]
    assert read_csv(out2 / "probe.csv") == mine
    assert all(f["extracted"] == "1" for f in read_csv(out2 / "files.csv"))


def test_bad_input_is_one_line(synthetic_corpus, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    unaligned = tmp_path / "unaligned"
    unaligned.mkdir()
    wavs = sorted(synthetic_corpus.rglob("*.wav"))[:2]
    for w in wavs:
        (unaligned / w.name.replace(".wav", f"_{w.parent.name}.wav")).write_bytes(w.read_bytes())
    exists = tmp_path / "exists"
    exists.mkdir()
    cases = [
        (["probe", str(empty), "--out", str(tmp_path / "o1")], "no audio files"),
        (["probe", str(synthetic_corpus), "--out", str(exists)], "folder exists"),
        (["probe", str(synthetic_corpus), "--out", str(tmp_path / "o2"), "--jobs", "1",
          "--sites", "decoder.blocks.0"], "decoder.blocks.0 is a tokens site"),
        (["probe", str(synthetic_corpus), "--out", str(tmp_path / "o3"), "--jobs", "1",
          "--sites", "encoder.blocks.7"], "unknown site 'encoder.blocks.7'; valid sites: "),
        (["probe", str(unaligned), "--out", str(tmp_path / "o4"), "--jobs", "1",
          "--cache", str(tmp_path / "c")],
         "probes need at least 2 files with activations and phone labels, got 0 of 2 "
         "(first failure: "),
        (["probe", str(synthetic_corpus), "--out", str(tmp_path / "o5"), "--folds", "1"],
         "--folds must be at least 2"),
    ]
    for argv, what in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        last = err.rstrip("\n").split("\n")[-1]  # tqdm may draw above it
        assert last.startswith("steve-qt: error: ") and what in last, err
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))
