"""Feature index: equals a brute-force computation (top-k, ranges, selectivity, ties), reads back
fast-path tables equal to the CSVs, and refuses bad input with one line (exit 2).

Most tests use a stand-in adapter (in this process, --jobs 1) whose activations are small
multiples of 1/4 (exact in float16, many ties). The Dask cluster tests with the real model are in
tests/test_corpus_dask.py.
"""

from __future__ import annotations

import csv
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from steve_qt.core.features import actcache
from steve_qt.core.features import index as feature_index
from steve_qt.core.errors import SteveError

D = 6
HOP = 320
SITE = "fake.site"


class FakeAdapter:
    """Activations (T, D) made from the audio bytes: values in {-2, -1.75, ..., 2}, zeros for
    feature 5 (never fires), feature 4 never positive. T = ceil(samples / 320) per 30 s window."""

    name, model_id, components, sample_rate = "fake", "fake model", ("encoder",), 16000

    def __init__(self):
        self.calls = 0

    def num_windows(self, n: int) -> int:
        return max(1, -(-n // 480000))

    def list_sites(self):
        from steve_qt.core.models.adapters import Site

        return [Site(SITE, D, "frames", 0, "mlp"), Site("fake.other", 3, "frames", 1, "mlp")]

    def extract(self, audio, components=None, window=0, progress=None, should_cancel=None,
                sites=()):
        from steve_qt.core.models.adapters import Extraction, Transcript
        from steve_qt.core.frames import whisper_grid

        assert components == () and tuple(sites) == (SITE,)
        self.calls += 1
        seg = audio[window * 480000:(window + 1) * 480000]
        acts = fake_acts(seg)
        ex = Extraction({}, Transcript(), self.model_id, window, self.num_windows(len(audio)))
        ex.activations = {SITE: acts}
        ex.frame_grid = whisper_grid(window)
        return ex


def fake_acts(seg: np.ndarray) -> np.ndarray:
    t = math.ceil(len(seg) / HOP)
    seed = int.from_bytes(hashlib.sha256(np.asarray(seg, np.float32).tobytes()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    a = rng.integers(-8, 9, size=(t, D)).astype(np.float32) / 4
    a[:, 4] = -np.abs(a[:, 4])
    a[:, 5] = 0
    return a


PHONES = ["h#", "s", "iy", "t", "aa"]
FOLD = {"h#": "sil"}  # what normalisation does to these labels (TIMIT 61 -> 39)


def write_file(folder: Path, stem: str, frames: int, seed: int, align: bool = True) -> Path:
    """A WAV of ``frames`` * 320 samples; phones tile it in whole frames (so a frame's centre
    decides its phone without edge cases)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    x = (0.1 * rng.standard_normal(frames * HOP)).astype(np.float32)
    sf.write(str(folder / f"{stem}.wav"), x, 16000, subtype="FLOAT")
    if align:
        rows, f = [], 0
        while f < frames:
            n = min(frames - f, int(rng.integers(2, 9)))
            rows.append((f * HOP, (f + n) * HOP, PHONES[int(rng.integers(len(PHONES)))]))
            f += n
        (folder / f"{stem}.phn").write_text("".join(f"{a} {b} {p}\n" for a, b, p in rows))
        (folder / f"{stem}.wrd").write_text(f"0 {frames * HOP} w{seed}\n")
    return folder / f"{stem}.wav"


@pytest.fixture
def fake(monkeypatch):
    from steve_qt.core.models import pipeline

    a = FakeAdapter()
    monkeypatch.setitem(pipeline._ADAPTERS, "fake", a)
    return a


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    for i in range(9):
        write_file(root / f"DR{i % 2}" / f"S{i}", f"u{i}", frames=20 + 7 * i, seed=i,
                   align=i != 3)
    # a duplicate of u0 under another name: same activations, so ties across files
    src = root / "DR0" / "S0"
    dup = root / "DR0" / "A0"
    dup.mkdir(parents=True)
    for ext in (".wav", ".phn", ".wrd"):
        (dup / f"u0{ext}").write_bytes((src / f"u0{ext}").read_bytes())
    (root / "DR1" / "bad.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(64))
    return root


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


# --- brute force, written from the documented rules only ---------------------------------------
def brute(root: Path, top_k: int, bins: int):
    from steve_qt.core.speech.alignment import read_timit

    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    per_file = {}
    for rel in files:
        try:
            x, rate = sf.read(str(root / rel), dtype="float32")
        except Exception:
            continue
        acts = fake_acts(x).astype(np.float16).astype(np.float32)
        phn = root / rel.replace(".wav", ".phn")
        labels = [""] * acts.shape[0]
        words = [""] * acts.shape[0]
        if phn.exists():
            al = read_timit(phn)
            for t in range(acts.shape[0]):
                centre = (HOP * t + HOP / 2) / 16000
                for iv in al.phones.intervals:
                    if iv.start_s <= centre < iv.end_s:
                        labels[t] = iv.label
                for iv in al.words.intervals:
                    if iv.start_s <= centre < iv.end_s:
                        words[t] = iv.label
        per_file[rel] = (acts, labels, words)
    top, ranges, sel = {}, {}, {}
    for f in range(D):
        cands = []  # (activation, file, frame) of each file's first maximum
        negs = []
        for rel, (a, _, _) in per_file.items():
            col = [float(v) for v in a[:, f]]
            m = max(col)
            cands.append((m, rel, col.index(m)))
            u = min(col)
            negs.append((u, rel, col.index(u)))
        ordered = sorted(cands, key=lambda c: (-c[0], c[1], c[2]))
        top[f] = [c for c in ordered if c[0] > 0][:top_k]  # only files where it fires
        big = max(c[0] for c in cands)
        small = min(c[0] for c in negs)
        for b in range(1, bins + 1):
            lo, hi = big * (b - 1) / bins, big * b / bins
            inside = [c for c in ordered if big > 0 and lo < c[0] <= hi]
            ranges[(f, b)] = inside[:top_k]
            lo, hi = -small * (b - 1) / bins, -small * b / bins
            inside = [c for c in sorted(negs, key=lambda c: (c[0], c[1], c[2]))
                      if small < 0 and lo < -c[0] <= hi]
            ranges[(f, -b)] = inside[:top_k]
        # selectivity over normalised phones (TIMIT's h# is sil), with support and AUROC
        from sklearn.metrics import roc_auc_score

        values: dict[str, list[float]] = {}
        in_files: dict[str, set] = {}
        all_v, all_p = [], []
        for rel, (a, labels, _) in per_file.items():
            for t, p in enumerate(labels):
                p = FOLD.get(p, p)
                if p:
                    values.setdefault(p, []).append(float(a[t, f]))
                    in_files.setdefault(p, set()).add(rel)
                    all_v.append(float(a[t, f]))
                    all_p.append(p)
        for p, vs in values.items():
            rest = [v for q, ws in values.items() if q != p for v in ws]
            mean, rmean = sum(vs) / len(vs), sum(rest) / len(rest)
            sd = math.sqrt(sum((v - mean) ** 2 for v in vs) / len(vs))
            rsd = math.sqrt(sum((v - rmean) ** 2 for v in rest) / len(rest))
            pooled = math.sqrt((sd ** 2 + rsd ** 2) / 2)
            d = (mean - rmean) / pooled if pooled > 0 else math.nan
            auc = roc_auc_score([q == p for q in all_p], all_v)
            sel[(f, p)] = (len(vs), mean, rmean, d, sd, rsd, len(in_files[p]), auc)
        ok = [p for p in values if sel[(f, p)][0] >= 20 and sel[(f, p)][6] >= 3]
        sel[(f, "best")] = sorted(ok, key=lambda p: (-sel[(f, p)][1], p))[0] if ok else None
    return files, per_file, top, ranges, sel


@pytest.fixture
def built(fake, corpus, tmp_path):
    from steve_qt.cli import main

    idx = tmp_path / "idx"
    code = main(["features", "index", str(corpus), "--site", SITE, "--model", "fake", "--out",
                 str(idx), "--top-k", "4", "--bins", "5", "--jobs", "1", "--cache",
                 str(tmp_path / "cache")])
    assert code == 0
    return idx


def test_index_equals_brute_force(built, corpus):
    files, per_file, top, ranges, sel = brute(corpus, top_k=4, bins=5)
    rows = read_csv(built / "top_examples.csv")
    assert list(rows[0]) == ["feature", "rank", "file", "frame", "time_s", "activation", "phone",
                             "word"]
    for f in range(D):
        mine = [r for r in rows if int(r["feature"]) == f]
        assert [int(r["rank"]) for r in mine] == list(range(len(top[f])))
        assert [(float(r["activation"]), r["file"], int(r["frame"])) for r in mine] == top[f], f
        for r in mine:
            acts, labels, words = per_file[r["file"]]
            t = int(r["frame"])
            assert r["phone"] == labels[t] and r["word"] == words[t]
            assert float(r["time_s"]) == pytest.approx((HOP * t + HOP / 2) / 16000, abs=1e-3)
    # the duplicated file ties with its original: the lower path comes first
    assert any(r["file"] == "DR0/A0/u0.wav" for r in rows)
    rr = read_csv(built / "range_examples.csv")
    assert list(rr[0])[-3:] == ["bin", "lo", "hi"]
    for (f, b), expect in ranges.items():
        mine = [r for r in rr if int(r["feature"]) == f and int(r["bin"]) == b]
        assert [(float(r["activation"]), r["file"], int(r["frame"])) for r in mine] == expect, (f, b)
        for r in mine:
            lo, hi = float(r["lo"]), float(r["hi"])
            v = float(r["activation"])
            assert (lo < v <= hi) if b > 0 else (lo <= v < hi)
    assert not [r for r in rr if r["feature"] == "5"]  # never fires, never negative
    assert not [r for r in rr if r["feature"] == "4" and int(r["bin"]) > 0]
    assert {int(r["bin"]) for r in rr if r["feature"] == "0"} <= {1, 2, 3, 4, 5, -1, -2, -3, -4, -5}
    ps = read_csv(built / "phone_selectivity.csv")
    assert list(ps[0]) == ["feature", "phone", "n_frames", "n_files", "mean", "std", "rest_mean",
                           "rest_std", "selectivity", "auroc", "supported", "best"]
    for r in ps:
        f, p = int(r["feature"]), r["phone"]
        n, mean, rmean, d, sd, rsd, n_files, auc = sel[(f, p)]
        assert int(r["n_frames"]) == n and int(r["n_files"]) == n_files
        assert r["supported"] == str(int(n >= 20 and n_files >= 3))
        assert float(r["auroc"]) == pytest.approx(auc, abs=1e-12)
        assert float(r["mean"]) == pytest.approx(mean, abs=1e-9)
        assert float(r["rest_mean"]) == pytest.approx(rmean, abs=1e-9)
        assert float(r["std"] or "nan") == pytest.approx(sd, abs=1e-6, nan_ok=True)
        assert float(r["rest_std"] or "nan") == pytest.approx(rsd, abs=1e-6, nan_ok=True)
        assert float(r["selectivity"] or "nan") == pytest.approx(d, abs=1e-5, nan_ok=True)
        assert (r["best"] == "1") == (p == sel[(f, "best")])
    assert len(ps) == D * len({k[1] for k in sel if k[1] != "best"})


def test_files_meta_and_summary(built, corpus):
    rows = {r["file"]: r for r in read_csv(built / "files.csv")}
    assert rows["DR1/bad.wav"]["status"] == "failed"
    assert "not a readable audio file" in rows["DR1/bad.wav"]["reason"]
    assert rows["DR1/S3/u3.wav"]["status"] == "ok"  # no alignment: indexed, no labels
    assert sum(r["status"] == "ok" for r in rows.values()) == 10
    import json

    meta = json.loads((built / "index.json").read_text())
    assert meta["site"] == SITE and meta["model"] == "fake" and meta["sae"] is None
    assert meta["corpus"] == str(corpus.resolve()) and meta["num_files"] == 11
    assert meta["top_k"] == 4 and meta["num_features"] == D
    assert {"steve_qt", "numpy"} <= set(meta["versions"])
    summary = (built / "summary.txt").read_text()
    assert "used 10 of 11 files; 1 failed" in summary and "failed: DR1/bad.wav" in summary


def test_reader_gives_the_csv_rows(built):
    idx = feature_index.FeatureIndex.open(built)
    rows = read_csv(built / "top_examples.csv")
    rr = read_csv(built / "range_examples.csv")
    for f in range(D):
        got = [(e.rank, e.file, e.frame, np.float32(e.activation), e.phone, e.word)
               for e in idx.top(f)]
        want = [(int(r["rank"]), r["file"], int(r["frame"]), np.float32(r["activation"]),
                 r["phone"], r["word"]) for r in rows if int(r["feature"]) == f]
        assert got == want
        got = [(e.bin, e.rank, e.file, np.float32(e.activation)) for e in idx.ranges(f)]
        want = [(int(r["bin"]), int(r["rank"]), r["file"], np.float32(r["activation"]))
                for r in rr if int(r["feature"]) == f]
        assert got == want
        st = idx.selectivity(f)
        assert st[0].best and all(not s.best for s in st[1:])
        assert [s.mean for s in st] == sorted((s.mean for s in st), reverse=True)
    assert idx.audio_path(idx.top(0)[0]).exists()
    with pytest.raises(SteveError, match="features 0 to 5"):
        idx.top(D)


def test_top_command_prints_the_examples(built, capsys):
    from steve_qt.cli import main

    assert main(["features", "top", str(built), "0", "--ranges", "--phones"]) == 0
    out = capsys.readouterr().out
    first = read_csv(built / "top_examples.csv")[0]
    assert f"feature 0 of {SITE}" in out and first["file"] in out and "range bin 5" in out
    assert "best" in out


def test_second_run_reads_the_cache(fake, corpus, built, tmp_path):
    """Same index from cached activations; the model is not called again."""
    from steve_qt.cli import main

    calls = fake.calls
    idx2 = tmp_path / "idx2"
    assert main(["features", "index", str(corpus), "--site", SITE, "--model", "fake", "--out",
                 str(idx2), "--top-k", "4", "--jobs", "1", "--cache", str(tmp_path / "cache")]) == 0
    assert fake.calls == calls
    for name in ("top_examples.csv", "range_examples.csv", "phone_selectivity.csv"):
        assert (built / name).read_bytes() == (idx2 / name).read_bytes()


# --- bad input: one line, exit 2 -------------------------------------------------------------------
def run_cli(argv, capsys) -> tuple[int, str]:
    from steve_qt.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # the progress bar (tqdm, stderr) aside, the error is one line
    lines = [ln for ln in err.replace("\r", "\n").splitlines()
             if ln.strip() and not ln.startswith("steve-qt features index:")]
    return code, "\n".join(lines)


def test_existing_index_needs_force(fake, corpus, built, tmp_path, capsys):
    before = (built / "top_examples.csv").read_bytes()
    argv = ["features", "index", str(corpus), "--site", SITE, "--model", "fake", "--out",
            str(built), "--top-k", "2", "--jobs", "1", "--cache", str(tmp_path / "cache")]
    code, err = run_cli(argv, capsys)
    assert code == 2 and "exists" in err and "--force" in err and len(err.splitlines()) == 1
    assert (built / "top_examples.csv").read_bytes() == before
    code, _ = run_cli(argv + ["--force"], capsys)
    assert code == 0
    assert max(int(r["rank"]) for r in read_csv(built / "top_examples.csv")) == 1
    assert not [p for p in built.parent.iterdir() if p.name.startswith(".idx")]


def test_unknown_site_lists_valid_ones(fake, corpus, tmp_path, capsys):
    code, err = run_cli(["features", "index", str(corpus), "--site", "nope", "--model", "fake",
                         "--out", str(tmp_path / "i"), "--jobs", "1"], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "unknown site 'nope'" in err and SITE in err and "fake.other" in err
    assert not (tmp_path / "i").exists()


def test_corpus_without_audio(fake, tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("hello")
    code, err = run_cli(["features", "index", str(tmp_path / "empty"), "--site", SITE, "--model",
                         "fake", "--out", str(tmp_path / "i"), "--jobs", "1"], capsys)
    assert code == 2 and "no audio files" in err and len(err.splitlines()) == 1


def test_corpus_of_unreadable_files_only(fake, tmp_path, capsys):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.wav").write_bytes(b"not audio")
    code, err = run_cli(["features", "index", str(tmp_path / "c"), "--site", SITE, "--model",
                         "fake", "--out", str(tmp_path / "i"), "--jobs", "1", "--cache",
                         str(tmp_path / "cache")], capsys)
    assert code == 2 and "none of the 1 audio files" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "i").exists()


def test_dead_scheduler_is_one_line_quickly(fake, corpus, tmp_path, capsys):
    import socket
    import time

    with socket.socket() as s:  # a port with nothing behind it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    code, err = run_cli(["features", "index", str(corpus), "--site", SITE, "--model", "fake",
                         "--out", str(tmp_path / "i"), "--scheduler", f"tcp://127.0.0.1:{port}",
                         "--timeout", "2"], capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"no Dask scheduler answers at tcp://127.0.0.1:{port}" in err
    assert time.monotonic() - t0 < 30  # the timeout is 2 s; generous for a busy machine


# --- the activation cache ----------------------------------------------------------------------------
def test_cache_round_trip_iter_rows_and_atomic_writes(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    files = []
    for i in range(4):
        p = tmp_path / f"f{i}.wav"
        p.write_bytes(bytes([i]) * 100)
        files.append(p)
    acts = [rng.standard_normal((300 + 50 * i, 5)).astype(np.float16) for i in range(4)]
    for p, a in zip(files, acts):
        actcache.store_activations(p, "whisper", "s", 0, a, cache_dir=tmp_path / "c")
    got = actcache.load_activations(files[1], "whisper", "s", cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(got, acts[1].astype(np.float32))
    assert got.dtype == np.float32
    assert actcache.load_activations(files[1], "whisper", "t", cache_dir=tmp_path / "c") is None
    assert actcache.load_activations(files[1], "whisper:base", "s", cache_dir=tmp_path / "c") is None
    everything = np.concatenate(acts).astype(np.float32)
    batches = list(actcache.iter_rows(files, "whisper", "s", batch=128, cache_dir=tmp_path / "c"))
    assert all(b.shape == (128, 5) for b in batches[:-1]) and batches[-1].shape[0] <= 128
    np.testing.assert_array_equal(np.concatenate(batches), everything)
    shuffled = np.concatenate(list(actcache.iter_rows(files, "whisper", "s", batch=128, seed=0,
                                                      shuffle_batches=4,
                                                      cache_dir=tmp_path / "c")))
    assert not np.array_equal(shuffled, everything)
    key = lambda a: np.lexsort(a.T[::-1])
    np.testing.assert_array_equal(shuffled[key(shuffled)], everything[key(everything)])
    assert actcache.count_rows(files, "whisper", "s", cache_dir=tmp_path / "c") == (4, everything.shape[0], 5)
    # the store is plain Zarr
    import zarr

    g = zarr.open_group(str(tmp_path / "c" / "activations"), mode="r")
    assert len(list(g.group_keys())) >= 1
    # a writer killed mid-way leaves no entry (and a later reader sees none)
    import zarr.core.array as za

    def dies(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(za.Array, "__setitem__", dies)
    extra = tmp_path / "f9.wav"
    extra.write_bytes(b"x" * 10)
    with pytest.raises(KeyboardInterrupt):
        actcache.store_activations(extra, "whisper", "s", 0, acts[0], cache_dir=tmp_path / "c")
    assert actcache.load_activations(extra, "whisper", "s", cache_dir=tmp_path / "c") is None
    assert not list((tmp_path / "c" / "activations.tmp").glob("a-*"))


def test_sae_features_equal_brute_force(fake, corpus, tmp_path):
    """--sae: the index of an SAE's latents, against codes computed here with numpy. Weights are
    small integers and quarters, so float32 arithmetic is exact and ties survive."""
    import torch

    from steve_qt.cli import main
    from steve_qt.core.features.sae import SAE, save_sae

    rng = np.random.default_rng(5)
    w_enc = rng.integers(-1, 2, size=(D, 8)).astype(np.float32)
    b_enc = (rng.integers(-2, 3, size=8) / 4).astype(np.float32)
    sae = SAE(torch.from_numpy(w_enc), torch.from_numpy(b_enc), torch.zeros(8, D),
              torch.zeros(D), architecture="standard", hook_name=SITE, model_name="fake")
    save_sae(sae, tmp_path / "sae")
    idx = tmp_path / "idx_sae"
    assert main(["features", "index", str(corpus), "--sae", str(tmp_path / "sae"), "--model",
                 "fake", "--out", str(idx), "--top-k", "3", "--jobs", "1", "--cache",
                 str(tmp_path / "cache")]) == 0
    files, per_file, *_ = brute(corpus, top_k=3, bins=5)
    rows = read_csv(idx / "top_examples.csv")
    for f in range(8):
        cands = []
        for rel, (a, _, _) in per_file.items():
            codes = np.maximum(a @ w_enc + b_enc, 0)[:, f]
            m = float(codes.max())
            cands.append((m, rel, int(np.nonzero(codes == m)[0][0])))
        want = sorted(cands, key=lambda c: (-c[0], c[1], c[2]))[:3]
        got = [(float(r["activation"]), r["file"], int(r["frame"])) for r in rows
               if int(r["feature"]) == f]
        assert got == want, f
    import json

    meta = json.loads((idx / "index.json").read_text())
    assert meta["site"] == SITE and meta["sae"] == str((tmp_path / "sae").resolve())
    assert meta["num_features"] == 8


def test_streaming_merge_equals_brute_force_over_many_batches(tmp_path):
    """The builder merges files in batches and reads the spill back in chunks: with 300 files
    arriving in random order (batch 8, chunk 32) the tables equal a sort of all files."""
    rng = np.random.default_rng(3)
    n, d, k, bins = 300, 5, 7, 4
    files = [f"f{i:03d}.wav" for i in range(n)]
    vmax = rng.integers(-3, 12, size=(n, d)).astype(np.float32) / 2  # many ties
    vmin = np.minimum(vmax, -rng.integers(0, 5, size=(n, d)).astype(np.float32) / 4)
    amax = rng.integers(0, 10, size=(n, d)).astype(np.int32)
    amin = rng.integers(0, 10, size=(n, d)).astype(np.int32)
    b = feature_index.IndexBuilder(files, k, bins, tmp_path / "spill", batch=8, chunk=32)
    for i in rng.permutation(n):
        s = feature_index.FileSummary(files[i], ok=True, rows=10)
        s.vmax, s.amax, s.vmin, s.amin = vmax[i], amax[i], vmin[i], amin[i]
        s.times = np.arange(10) * 0.02 + 0.01
        s.phones = ["a"] * 5 + ["b"] * 5
        s.words = [""] * 10
        b.add(int(i), s)
    t = b.finish()
    top, ranges = t["top"], t["ranges"]
    assert not np.any(top["activation"] <= 0)  # non-firing files are never "top"
    for f in range(d):
        want = [i for i in sorted(range(n), key=lambda i: (-vmax[i, f], files[i]))
                if vmax[i, f] > 0][:k]
        got = top[top["feature"] == f]
        assert list(got["file"]) == want and list(got["rank"]) == list(range(len(want)))
        assert list(got["frame"]) == [amax[i, f] for i in want]
        big, small = float(vmax[:, f].max()), float(vmin[:, f].min())
        for bb in range(1, bins + 1):
            lo, hi = big * (bb - 1) / bins, big * bb / bins
            want = [i for i in sorted(range(n), key=lambda i: (-vmax[i, f], files[i]))
                    if big > 0 and lo < vmax[i, f] <= hi][:k]
            got = ranges[(ranges["feature"] == f) & (ranges["bin"] == bb)]
            assert list(got["file"]) == want, (f, bb)
            lo, hi = -small * (bb - 1) / bins, -small * bb / bins
            want = [i for i in sorted(range(n), key=lambda i: (vmin[i, f], files[i]))
                    if small < 0 and lo < -vmin[i, f] <= hi][:k]
            got = ranges[(ranges["feature"] == f) & (ranges["bin"] == -bb)]
            assert list(got["file"]) == want, (f, -bb)
            assert list(got["frame"]) == [amin[i, f] for i in want]


def test_csv_columns_give_the_text_of_csv_rows():
    """The column-at-a-time CSV writer against the row writer (the csv module) on cells that
    need quoting, and the float texts of the index's columns against str/repr/format."""
    from steve_qt.core.fileio import csv_text, csv_text_columns

    texts = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\ronly", "", " lead", "é ʃ",
             '"', ","]
    ints = np.array([0, -3, 7, 2**40, 5, 1, -1, 0, 9, 3], dtype=np.int64)
    flags = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 1], dtype=np.int8)
    floats32 = np.array([0.1, -0.0, 1e-5, 3.4e38, np.nan, 1.0, 2.5e-8, -7.25, np.inf, 123456.7],
                        dtype=np.float32)
    floats64 = np.array([0.1, 1 / 3, 1e16, -1e-7, np.nan, 2.0, 1e-300, -np.inf, 5e-324, 0.5])
    header = ["t", "i", "f", "x", "y", "z", "w"]
    cols = [texts, ints, flags, feature_index._texts(floats32), feature_index._texts(floats64),
            feature_index._texts(floats64, ".3f"), list(reversed(texts))]
    plain = lambda v, fmt="": "" if not np.isfinite(v) else (  # noqa: E731
        format(float(v), fmt) if fmt else (str(v) if isinstance(v, np.float32) else repr(float(v))))
    rows = [[texts[k], int(ints[k]), int(flags[k]), plain(floats32[k]), plain(floats64[k]),
             plain(floats64[k], ".3f"), texts[-1 - k]] for k in range(10)]
    assert csv_text_columns(header, cols) == csv_text(header, rows)
    assert csv_text_columns(header, [[] for _ in header]) == csv_text(header, [])
    with pytest.raises(TypeError):
        csv_text_columns(["a"], [np.array([0.5])])


def test_cache_writes_behind_are_all_there_after_the_flush(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    root = actcache.store_root(tmp_path / "c")
    acts = {f"{i:02x}" * 32: rng.standard_normal((20 + i, 7)).astype(np.float32)
            for i in range(9)}
    for key, a in acts.items():
        actcache.save_entry_behind(root, key, a, {"n": 1})
    done = actcache.flush_writes()
    assert done["entries"] == 9 and done["errors"] == [] and done["seconds"] > 0
    for key, a in acts.items():
        e = actcache.load_entry(root, key)
        np.testing.assert_array_equal(e.acts, a.astype(np.float16))
        assert e.attrs["n"] == 1
    assert actcache.flush_writes()["entries"] == 0  # counted once
    # a write that fails leaves no entry and is reported by the flush, not raised
    real = actcache.save_entry

    def fails_once(root, key, a, attrs):
        if key == "ff" * 32:
            raise OSError("disk full")
        return real(root, key, a, attrs)

    monkeypatch.setattr(actcache, "save_entry", fails_once)
    actcache.save_entry_behind(root, "ff" * 32, acts["00" * 32], {})
    actcache.save_entry_behind(root, "ee" * 32, acts["00" * 32], {})
    done = actcache.flush_writes()
    assert done["entries"] == 1 and done["errors"] == ["OSError: disk full"]
    assert actcache.load_entry(root, "ff" * 32) is None
    assert actcache.load_entry(root, "ee" * 32) is not None
