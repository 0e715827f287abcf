"""Ridge probes for continuous targets: a known linear function of the activations gives R² ≈ 1,
shuffled targets ≈ 0 (or below); undefined frames are left out; bad input is one line."""

from __future__ import annotations

import numpy as np
import pytest

from steve_qt.core.errors import SteveError
from steve_qt.core.features.probes import (PROBE_COLUMNS, REGRESSION_TARGETS, probe_csv,
                                           probe_figure, probe_r2)


def toy(rng, n_files=6, frames=80, dim=8):
    w = rng.standard_normal(dim)
    xs = [rng.standard_normal((frames, dim)).astype(np.float32) for _ in range(n_files)]
    ys = [x.astype(np.float64) @ w + 3.0 for x in xs]
    return xs, ys


def test_linear_target_gives_r2_one_and_shuffled_zero():
    rng = np.random.default_rng(0)
    xs, ys = toy(rng)
    score = probe_r2(xs, ys, folds=3, alpha=1e-3)
    assert score.r2 > 0.999 and score.n == 480 and score.files == 6 and score.folds == 3
    perm = rng.permutation(np.concatenate(ys))
    shuffled = np.split(perm, 6)
    s = probe_r2(xs, shuffled, folds=3)
    assert s.r2 < 0.05  # no information: about 0, slightly below out of sample


def test_r2_equals_a_brute_force_leave_one_file_out():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    xs, ys = toy(rng, n_files=4, frames=30, dim=5)
    ys = [y + rng.standard_normal(len(y)) * 2 for y in ys]
    ys[1][:10] = np.nan  # undefined frames are left out
    got = probe_r2(xs, ys, folds=4, alpha=2.0)
    preds, truth = [], []
    for k in range(4):
        train_x = np.concatenate([x[np.isfinite(y)] for i, (x, y) in enumerate(zip(xs, ys)) if i != k])
        train_y = np.concatenate([y[np.isfinite(y)] for i, y in enumerate(ys) if i != k])
        sc = StandardScaler().fit(train_x)
        m = Ridge(alpha=2.0).fit(sc.transform(train_x), train_y)
        keep = np.isfinite(ys[k])
        preds.append(m.predict(sc.transform(xs[k][keep])))
        truth.append(ys[k][keep])
    p, t = np.concatenate(preds), np.concatenate(truth)
    want = 1 - ((t - p) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    assert got.n == 110
    assert got.r2 == pytest.approx(want, abs=1e-6)


def test_undefined_everywhere_is_one_line():
    xs = [np.zeros((5, 2), np.float32)] * 3
    with pytest.raises(SteveError, match="f0 is undefined in every frame"):
        probe_r2(xs, [np.full(5, np.nan)] * 3, what="f0")


def test_csv_and_figure_with_regression_rows(tmp_path):
    rows = []
    for layer in (0, 1):
        rows.append({"site": f"enc.{layer}", "layer": layer, "kind": "residual",
                     "target": "phone", "accuracy": 0.5, "majority_baseline": 0.1,
                     "r2": float("nan"), "n": 100, "classes": 10, "files": 4, "folds": 4})
        rows.append({"site": f"enc.{layer}", "layer": layer, "kind": "residual", "target": "f0",
                     "accuracy": float("nan"), "majority_baseline": float("nan"),
                     "r2": 0.3 + layer * 0.2, "n": 80, "classes": None, "files": 4,
                     "folds": 4})
    lines = probe_csv(rows).splitlines()
    assert lines[0] == ",".join(PROBE_COLUMNS) and "r2" in PROBE_COLUMNS
    assert lines[2].split(",") == ["enc.0", "0", "f0", "", "", "0.300000", "80", "", "4", "4"]
    assert lines[1].split(",")[5] == ""  # no R² for a classification row
    fig = probe_figure(rows, "t")
    assert len(fig.axes) == 2
    assert "R²" in fig.axes[1].get_ylabel()
    fig.savefig(tmp_path / "p.png")
    assert set(REGRESSION_TARGETS) == {"f0", "f1", "f2", "f3", "intensity"}


def test_unknown_target_is_one_line(tmp_path, capsys):
    from steve_qt.cli import main

    (tmp_path / "c").mkdir()
    assert main(["probe", str(tmp_path / "c"), "--out", str(tmp_path / "p"),
                 "--targets", "phone,f9"]) == 2
    err = capsys.readouterr().err
    assert "unknown probe target f9" in err and err.count("\n") == 1
    assert not (tmp_path / "p").exists()


def test_probe_cli_with_acoustic_targets(tmp_path, monkeypatch, capsys):
    import csv

    import soundfile as sf

    from steve_qt.cli import main
    from steve_qt.core.models import pipeline
    from test_feature_index import SITE, FakeAdapter
    from test_index_acoustics import glide

    monkeypatch.setitem(pipeline._ADAPTERS, "fake", FakeAdapter())
    root = tmp_path / "c"
    root.mkdir()
    for i in range(3):
        sf.write(root / f"v{i}.wav", glide(100 + 20 * i, 150, 600, 1500, 1.0, i), 16000,
                 subtype="FLOAT")
    out = tmp_path / "p"
    # no alignment beside the files: acoustic targets need none
    assert main(["probe", str(root), "--out", str(out), "--model", "fake", "--sites", SITE,
                 "--targets", "f0,intensity", "--folds", "3", "--jobs", "1",
                 "--cache", str(tmp_path / "cache")]) == 0
    rows = list(csv.DictReader((out / "probe.csv").open()))
    assert [r["target"] for r in rows] == ["f0", "intensity"]
    assert all(r["r2"] and not r["accuracy"] and r["files"] == "3" for r in rows)
    assert int(rows[0]["n"]) < int(rows[1]["n"])  # pitch is undefined in the silent middle
    silent = tmp_path / "s"
    silent.mkdir()
    for i in range(3):
        sf.write(silent / f"z{i}.wav", np.zeros(16000, np.float32), 16000)
    capsys.readouterr()
    assert main(["probe", str(silent), "--out", str(tmp_path / "q"), "--model", "fake",
                 "--sites", SITE, "--targets", "f0", "--jobs", "1",
                 "--cache", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "error" in line] == [
        "steve-qt: error: f0 is undefined in every frame: nothing to probe"]
    assert not (tmp_path / "q").exists()
