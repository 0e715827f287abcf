"""Corpus runs: `steve-qt stats` over the samples (TIMIT layout too), failures, the cache."""

from __future__ import annotations

import contextlib
import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from steve_qt.core.features import corpus
from steve_qt.core.attention.maps import AttentionMaps
from steve_qt.core.frames import whisper_grid


def sample_wavs(samples_dir: Path) -> list[Path]:
    wavs = sorted(samples_dir.glob("*.wav"))
    if len(wavs) < 2:
        pytest.fail(f"{samples_dir} holds fewer than 2 samples: run python samples/make_samples.py")
    return wavs


def copy_utterance(wav: Path, dest_dir: Path, stem: str | None = None, upper: bool = False,
                   exts=(".phn", ".wrd", ".txt", ".TextGrid")) -> Path:
    """Copy a sample's WAV and alignment files (optionally renamed / upper-case, TIMIT style)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or wav.stem
    out = None
    for ext in (".wav", *exts):
        src = wav.with_suffix(ext)
        if src.exists():
            dst = dest_dir / (stem + (ext.upper() if upper else ext))
            shutil.copyfile(src, dst)
            out = dst if ext == ".wav" else out
    return out


@pytest.fixture(scope="module")
def corpus_tree(tmp_path_factory, samples_dir) -> Path:
    """The samples, the first one in TIMIT layout (DR1/FCJF0/SA1.WAV + .PHN/.WRD), plus a corrupt
    WAV with a valid alignment and a WAV without any alignment."""
    root = tmp_path_factory.mktemp("corpus")
    wavs = sample_wavs(samples_dir)
    copy_utterance(wavs[0], root / "DR1" / "FCJF0", "SA1", upper=True, exts=(".phn", ".wrd"))
    for wav in wavs[1:]:
        copy_utterance(wav, root / "samples")
    bad = copy_utterance(wavs[1], root / "broken", "bad")
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4)
    shutil.copyfile(wavs[1], root / "broken" / "lonely.wav")  # no alignment beside it
    return root


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@contextlib.contextmanager
def counting_extractions():
    """Count the model runs of this process: ``pipeline.extract`` wrapped while the block runs;
    yields a one-item list holding the count."""
    from steve_qt.core.models import pipeline

    runs = [0]
    real = pipeline.extract

    def counted(*args, **kwargs):
        runs[0] += 1
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "extract", counted)
        yield runs


@pytest.fixture(scope="module")
def two_runs(corpus_tree, tmp_path_factory, samples_dir, whisper_adapter):
    from steve_qt.cli import main

    n_ok = len(sample_wavs(samples_dir))
    cache = tmp_path_factory.mktemp("cache")
    out1, out2 = tmp_path_factory.mktemp("out1"), tmp_path_factory.mktemp("out2")
    # --jobs 1: in this process, so that the counting wrapper sees the model runs (the default
    # runs on an embedded Dask cluster: test_parallel_workers_give_the_same_numbers)
    with counting_extractions() as runs:
        assert main(["stats", str(corpus_tree), "--out", str(out1), "--cache", str(cache),
                     "--jobs", "1"]) == 0
        first = runs[0]
        assert main(["stats", str(corpus_tree), "--out", str(out2), "--cache", str(cache),
                     "--jobs", "1"]) == 0
        second = runs[0] - first
    return dict(out1=out1, out2=out2, cache=cache, first=first, second=second, n_ok=n_ok)


def test_corpus_run_skips_bad_files_with_reasons(two_runs, corpus_tree):
    out, n_ok = two_runs["out1"], two_runs["n_ok"]
    summary = (out / "summary.txt").read_text()
    print("\n" + summary)
    assert f"used {n_ok} of {n_ok + 2} files; 1 failed; 1 without alignment" in summary
    assert f"({n_ok} extracted, 0 from cache)" in summary
    rows = {r["file"]: r for r in read_csv(out / "files.csv")}
    assert rows["DR1/FCJF0/SA1.WAV"]["status"] == "ok"  # TIMIT layout, upper-case names
    bad = rows["broken/bad.wav"]
    assert bad["status"] == "failed" and "not a readable audio file" in bad["reason"]
    assert rows["broken/lonely.wav"]["status"] == "skipped"
    assert "no alignment" in rows["broken/lonely.wav"]["reason"]
    assert "failed: broken/bad.wav: " in summary


def test_second_run_reuses_the_cache(two_runs):
    assert two_runs["first"] == two_runs["n_ok"] and two_runs["second"] == 0
    summary = (two_runs["out2"] / "summary.txt").read_text()
    assert f"(0 extracted, {two_runs['n_ok']} from cache)" in summary
    # same numbers from the cache as from the model
    for name in ("head_stats.csv", "class_kind.csv", "head_stats_per_file.csv"):
        assert (two_runs["out1"] / name).read_text() == (two_runs["out2"] / name).read_text()
    entries = list(two_runs["cache"].rglob("*.npz"))
    assert len(entries) == two_runs["n_ok"]
    assert not list(two_runs["cache"].rglob("*.part*"))


def test_corpus_tables_are_consistent(two_runs):
    out = two_runs["out1"]
    pooled = read_csv(out / "head_stats.csv")
    per_file = read_csv(out / "head_stats_per_file.csv")
    assert len(pooled) == 4 * 6 and len(per_file) == 4 * 6 * two_runs["n_ok"]
    # the corpus row is the frame-weighted mean of the file rows (computed here from the CSVs)
    for metric in ("entropy_bits", "local_share_5", "mean_distance_ms", "padding_mass"):
        for row in pooled[:6]:
            mine = [(float(r["frames"]), float(r[metric])) for r in per_file
                    if r["layer"] == row["layer"] and r["head"] == row["head"]]
            expect = sum(f * v for f, v in mine) / sum(f for f, _ in mine)
            assert float(row[metric]) == pytest.approx(expect, rel=1e-4, abs=1e-6)
    for row in pooled:
        assert 0.0 <= float(row["local_share_1"]) <= float(row["local_share_75"]) <= 1.001
    kinds = read_csv(out / "class_kind.csv")
    layers = {r["layer"] for r in kinds}
    assert layers == {"0", "1", "2", "3", "rollout"}
    # per (layer, head, query class) the total mass over key classes + padding is 1
    groups: dict[tuple, float] = {}
    for r in kinds:
        key = (r["layer"], r["head"], r["query_class"])
        groups[key] = groups.get(key, float(r["query_padding"] or 0)) + float(r["total_mass"])
    assert groups and all(abs(v - 1.0) < 5e-3 for v in groups.values()), groups


def test_outputs_are_not_overwritten_without_force(two_runs, corpus_tree, capsys):
    from steve_qt.cli import main

    before = (two_runs["out1"] / "summary.txt").read_text()
    code = main(["stats", str(corpus_tree), "--out", str(two_runs["out1"]), "--cache",
                 str(two_runs["cache"])])
    assert code == 2
    assert "file exists" in capsys.readouterr().err
    assert (two_runs["out1"] / "summary.txt").read_text() == before


def test_parallel_workers_give_the_same_numbers(two_runs, corpus_tree):
    """--jobs 2 over the cached corpus: an embedded Dask cluster, same pooled statistics."""
    res = corpus.run_corpus(corpus_tree, "whisper", jobs=2, cache_dir=two_runs["cache"])
    assert len(res.used) == two_runs["n_ok"] and len(res.failed) == 1
    tables = corpus.corpus_tables(res)
    assert tables["head_stats.csv"] == (two_runs["out1"] / "head_stats.csv").read_text()


def test_cross_component_reports_word_boundary_errors(tmp_path, dark_suit, dark_suit_extraction):
    """--component cross: Whisper DTW words vs the reference words, per file. The cache is filled
    from the session's extraction of dark_suit, so no model runs here."""
    _audio, ex = dark_suit_extraction
    wav = copy_utterance(dark_suit, tmp_path / "one")
    key = corpus.cache_key(corpus.file_sha256(wav), "whisper", "cross")
    corpus.save_cached(corpus.cache_path(tmp_path / "cache", key), ex.maps["cross"],
                       ex.transcript.tokens)
    with counting_extractions() as runs:
        res = corpus.run_corpus(tmp_path / "one", "whisper", component="cross",
                                cache_dir=tmp_path / "cache")
    assert runs[0] == 0
    assert len(res.used) == 1, res.failed and res.failed[0].reason
    tables = corpus.corpus_tables(res)
    print("\n" + tables["summary.txt"])
    errors = read_csv_text(tables["word_errors.csv"])
    same = [e for e in errors if e["same_text"] == "1"]
    assert len(same) >= 4 and {e["ref"] for e in same} >= {"she", "had"}
    assert all(abs(float(e["start_error_ms"])) < 300 for e in same)
    assert "class_kind.csv" not in tables  # tokens x frames: no phone x phone matrix
    assert "whisper DTW word boundaries vs reference" in tables["summary.txt"]
    assert "locality does not apply" in tables["summary.txt"]


def read_csv_text(text: str) -> list[dict]:
    import io

    return list(csv.DictReader(io.StringIO(text)))


# --- the cache itself ------------------------------------------------------------------------------
def small_maps() -> AttentionMaps:
    rng = np.random.default_rng(0)
    w = rng.random((2, 1, 3, 5, 5)).astype(np.float16)
    return AttentionMaps(w, None, np.zeros((2, 3, 5), np.float32), "encoder", "m", 16000, 1600,
                         query_grid=whisper_grid(), key_grid=whisper_grid(),
                         meta={"alignment_heads": [[1, 0]]})


def test_cache_round_trip_and_keys(tmp_path):
    path = tmp_path / "ab" / "entry.npz"
    corpus.save_cached(path, small_maps(), [1, 2, 3])
    maps, tokens = corpus.load_cached(path)
    np.testing.assert_array_equal(maps.weights, small_maps().weights)
    assert tokens == [1, 2, 3] and maps.meta == {"alignment_heads": [[1, 0]]}
    assert maps.query_grid == whisper_grid()
    k = corpus.cache_key("00" * 32, "whisper", "encoder")
    assert k != corpus.cache_key("00" * 32, "whisper", "cross")
    assert k != corpus.cache_key("00" * 32, "whisper:base", "encoder")
    assert k != corpus.cache_key("11" * 32, "whisper", "encoder")
    assert k == corpus.cache_key("00" * 32, " Whisper ", "encoder")  # normalised spec


def test_interrupted_cache_write_leaves_no_entry(tmp_path, monkeypatch):
    path = tmp_path / "ab" / "entry.npz"

    def dies(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # as if killed while writing

    monkeypatch.setattr(np, "savez_compressed", dies)
    with pytest.raises(KeyboardInterrupt):
        corpus.save_cached(path, small_maps(), [])
    assert list(path.parent.iterdir()) == []  # neither the entry nor a temporary file


def test_corrupt_cache_entry_is_recomputed(tmp_path):
    path = tmp_path / "entry.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert corpus.load_cached(path) is None
    assert corpus.load_cached(tmp_path / "missing.npz") is None


# --- long audio (several 30 s windows) and model failures, with a stand-in adapter ----------------
class WindowAdapter:
    """Gives every frame all its attention to itself (identity heads), per 30 s window; fails on
    audio whose first sample is exactly 0.5 (to test that a model error is reported, not raised)."""

    name, model_id, components, sample_rate = "fake", "fake identity", ("encoder",), 16000

    def __init__(self):
        self.calls: list[int] = []

    def num_windows(self, n: int) -> int:
        return max(1, -(-n // 480000))

    def extract(self, audio, components=None, window=0, progress=None, should_cancel=None):
        from steve_qt.core.models.adapters import Extraction, Transcript

        if audio[0] == 0.5:
            raise RuntimeError("model exploded")
        self.calls.append(window)
        n = min(480000, len(audio) - window * 480000)
        t = whisper_grid(window).frames_covering(n)
        w = np.broadcast_to(np.eye(t, dtype=np.float16), (2, 1, 2, t, t)).copy()
        maps = AttentionMaps(w, None, np.zeros((2, 2, t), np.float32), "encoder", self.model_id,
                             16000, n, query_grid=whisper_grid(window), key_grid=whisper_grid(window),
                             window=window, num_windows=self.num_windows(len(audio)))
        return Extraction({"encoder": maps}, Transcript(), self.model_id, window,
                          maps.num_windows)


def write_utterance(folder: Path, stem: str, seconds: float, first: float = 0.1) -> Path:
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    n = int(seconds * 16000)
    x = (0.1 * np.sin(np.arange(n) * 0.05)).astype(np.float32)
    x[0] = first
    sf.write(str(folder / f"{stem}.wav"), x, 16000, subtype="FLOAT")
    # phones: 1 s silence, then 2 s vowel / 1 s consonant alternating up to the end
    rows, t = [(0, 16000, "h#")], 16000
    while t < n:
        lab = "iy" if (t // 16000) % 3 == 1 else "s"
        b = min(n, t + (32000 if lab == "iy" else 16000))
        rows.append((t, b, lab))
        t = b
    (folder / f"{stem}.phn").write_text("".join(f"{a} {b} {lab}\n" for a, b, lab in rows))
    (folder / f"{stem}.wrd").write_text(f"16000 {n} word\n")
    return folder / f"{stem}.wav"


def test_long_audio_uses_every_window_and_model_errors_are_reported(tmp_path, monkeypatch):
    from steve_qt.core.models import pipeline

    fake = WindowAdapter()
    monkeypatch.setitem(pipeline._ADAPTERS, "fake", fake)
    write_utterance(tmp_path / "c", "long", 35.0)  # windows 0 and 1
    write_utterance(tmp_path / "c", "short", 3.0)
    write_utterance(tmp_path / "c", "boom", 3.0, first=0.5)
    res = corpus.run_corpus(tmp_path / "c", "fake", cache_dir=tmp_path / "cache")
    by_name = {Path(f.path).name: f for f in res.files}
    assert by_name["boom.wav"].reason == "RuntimeError: model exploded"
    long = by_name["long.wav"]
    assert long.ok and long.windows == 2 and long.extracted == 2
    assert long.frames == 1500 + 250
    # identity heads: all mass on the own phone, distance 0; silence share = silent frames
    st = long.stats
    np.testing.assert_allclose(st.own_phone_mass, 1.0, atol=1e-3)
    np.testing.assert_allclose(st.mean_distance_ms, 0.0, atol=1e-6)
    np.testing.assert_allclose(st.silence_share, 50 / 1750, atol=1e-4)  # the first second
    # class matrix: identity keeps every class to itself
    cm = long.classes[("kind", 0, None)]
    i, j = cm.labels.index("vowel"), cm.labels.index("consonant")
    assert cm.total[i, i] == pytest.approx(1.0, abs=1e-3) and cm.total[i, j] == pytest.approx(0.0)
    assert cm.query_frames.sum() == 1750
    assert "used 2 of 3 files; 1 failed (3 extracted, 0 from cache)" == res.summary_line()
    # second run: from the cache, the model is not called again
    fake.calls.clear()
    again = corpus.run_corpus(tmp_path / "c", "fake", cache_dir=tmp_path / "cache")
    assert fake.calls == [] and "(0 extracted, 3 from cache)" in again.summary_line()
