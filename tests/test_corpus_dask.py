"""The feature index on Dask with the real model (tiny.en encoder only): the embedded local
cluster and a separate `dask scheduler` + two `dask worker` processes (started here on 127.0.0.1,
stopped by PID) give the same index, also when a worker is killed mid-run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SITE = "encoder.blocks.1.mlp.1"
DATA_FILES = ("top_examples.csv", "range_examples.csv", "phone_selectivity.csv", "top.npy",
              "ranges.npy", "selectivity.npy", "files.npy", "labels.npy")


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, samples_dir) -> Path:
    """The samples in a TIMIT-like tree, one of them twice (a tie across files), and a broken
    WAV."""
    root = tmp_path_factory.mktemp("dcorpus")
    wavs = sorted(samples_dir.glob("*.wav"))[:3]
    for i, wav in enumerate(wavs):
        d = root / f"DR{i % 2}" / f"SPK{i}"
        d.mkdir(parents=True)
        for ext in (".wav", ".phn", ".wrd", ".txt"):
            if wav.with_suffix(ext).exists():
                shutil.copyfile(wav.with_suffix(ext), d / ("SA1" + ext))
    shutil.copytree(root / "DR0" / "SPK0", root / "DR0" / "SPK9")
    (root / "DR1" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(64))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop(procs: list[subprocess.Popen], extra_pids: list[int]) -> None:
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
    deadline = time.monotonic() + 20
    for pid in extra_pids:
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def local_run(small_corpus, tmp_path_factory, whisper_adapter):
    """The index on the embedded cluster (2 workers), with its timings record and its cache."""
    from steve_qt.core.features.index import build_index
    from steve_qt.core.features.runner import Timings

    out = tmp_path_factory.mktemp("li") / "idx"
    cache = tmp_path_factory.mktemp("cache_local")
    timings = Timings()
    build_index(small_corpus, SITE, out, top_k=3, jobs=2, cache_dir=cache, timings=timings)
    return out, cache, timings.to_dict()


@pytest.fixture(scope="module")
def local_index(local_run):
    return local_run[0]


def test_local_cluster_index_equals_in_process_run(local_index, small_corpus, tmp_path,
                                                   whisper_adapter, monkeypatch):
    """--jobs 2 (embedded cluster, two worker processes) = --jobs 1 (this process, which never
    transcribes), and the numbers equal plain forward hooks on the model."""
    import csv

    import torch
    import whisper

    from steve_qt.core.speech.audio import load_audio
    from steve_qt.core.features.index import build_index

    def no_transcription(*a, **k):
        raise AssertionError("an encoder site must not run the transcription")

    monkeypatch.setattr(whisper_adapter, "_transcribe", no_transcription)
    out = tmp_path / "idx1"
    meta = build_index(small_corpus, SITE, out, top_k=3, jobs=1, cache_dir=tmp_path / "cache")
    assert meta["files_used"] == 4
    for name in DATA_FILES:
        assert (out / name).read_bytes() == (local_index / name).read_bytes(), name
    # brute force for a few features from a plain hook on the openai-whisper model
    model = whisper_adapter.model
    got = {}
    hook = model.get_submodule(SITE).register_forward_hook(
        lambda m, i, o: got.__setitem__("x", o.detach()))
    files = sorted(p.relative_to(small_corpus).as_posix() for p in small_corpus.rglob("SA1.wav"))
    maxima = {}
    try:
        for rel in files:
            audio = load_audio(small_corpus / rel).samples
            # as whisper.transcribe feeds the encoder: log-mel of audio + 30 s of zeros, content
            # frames kept, zero-padded to 3000 frames
            mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels,
                                              padding=whisper.audio.N_SAMPLES)
            mel = whisper.pad_or_trim(mel[:, :mel.shape[-1] - whisper.audio.N_FRAMES],
                                      whisper.audio.N_FRAMES)
            with torch.no_grad():
                model.encoder(mel[None].to(next(model.parameters()).dtype))
            t = -(-len(audio) // 320)
            acts = got["x"][0, :t].float().numpy().astype(np.float16).astype(np.float32)
            maxima[rel] = (acts.max(axis=0), acts.argmax(axis=0))
    finally:
        hook.remove()
    with open(local_index / "top_examples.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for f in (0, 17, 1000):
        want = [c for c in sorted(((float(maxima[r][0][f]), r, int(maxima[r][1][f]))
                                   for r in files), key=lambda c: (-c[0], c[1], c[2]))
                if c[0] > 0][:3]  # only files where the feature fires
        mine = [(float(r["activation"]), r["file"], int(r["frame"])) for r in rows
                if int(r["feature"]) == f]
        assert [m[1:] for m in mine] == [w[1:] for w in want]
        np.testing.assert_allclose([m[0] for m in mine], [w[0] for w in want], atol=2e-2)


def test_local_run_overlaps_its_start_keeps_one_model_per_worker_and_caches_every_file(
        local_run, small_corpus):
    """From the run's own timestamps: the files were listed while the cluster started; each
    worker loaded the model once, before its first file, and kept it; every file's entry was in
    the cache when the run ended (written behind on the workers, flushed before they stopped)."""
    from steve_qt.core.features import actcache

    _, cache, t = local_run
    spans = {}
    for sp in t["spans"]:
        spans.setdefault(sp["part"], []).append(sp)
    (listing,), (cluster,) = spans["list files"], spans["cluster start"]
    assert listing["start"] < cluster["end"]
    loads = {int(sp["where"].split()[-1]): sp for sp in spans["model load"]}
    files = t["files"]
    assert len(loads) == 2 and len(files) == 5
    for f in files:
        assert f["pid"] in loads and f["model_loads"] == 1
        assert f["start"] >= loads[f["pid"]]["end"]
    assert {f["pid"] for f in files} <= set(loads)
    good = sorted(small_corpus.rglob("SA1.wav"))
    extracted = sum(f["extracted"] for f in files)
    assert sum(f["cached"] for f in files) + extracted == len(good) == 4
    assert sum(w["entries"] for w in t["workers"]) == extracted >= 3  # 3 distinct files
    assert all(not w["errors"] for w in t["workers"])
    for wav in good:
        assert actcache.load_activations(wav, "whisper", SITE, cache_dir=cache) is not None
    assert (spans["cluster stop"][0]["start"] < spans["write"][0]["end"])  # stops beside it


def test_phone_statistics_equal_numpy_and_sklearn_over_the_cached_activations(local_run,
                                                                            small_corpus):
    """Selectivity rows of the Dask-built index against a brute force over the activations the
    run cached (float16 -> float32, as the index reads them) and the alignments' phones."""
    from sklearn.metrics import roc_auc_score

    from steve_qt.core.attention.analysis import frame_labels
    from steve_qt.core.features import actcache
    from steve_qt.core.features.index import FeatureIndex
    from steve_qt.core.speech.alignment import load_alignment
    from steve_qt.core.speech.phone_sets import normalise_labels

    out, cache, _ = local_run
    acts, phones = [], []
    for wav in sorted(small_corpus.rglob("SA1.wav")):
        a = actcache.load_activations(wav, "whisper", SITE, cache_dir=cache)
        entry = actcache.file_entries(wav, "whisper", SITE, cache_dir=cache)[0]
        al = load_alignment(wav)
        acts.append(a)
        phones += normalise_labels(frame_labels(entry.grid(), a.shape[0], al.phones))
    acts = np.concatenate(acts).astype(np.float64)
    phones = np.array(phones)
    labelled = phones != ""
    idx = FeatureIndex.open(out)
    for f in (0, 17, 1000):
        for st in idx.selectivity(f):
            mine = acts[phones == st.phone, f]
            rest = acts[labelled & (phones != st.phone), f]
            assert st.frames == mine.size
            assert st.mean == pytest.approx(mine.mean(), abs=1e-9)
            assert st.std == pytest.approx(mine.std(), abs=1e-6)
            assert st.rest_mean == pytest.approx(rest.mean(), abs=1e-9)
            y = phones[labelled] == st.phone
            assert st.auroc == pytest.approx(roc_auc_score(y, acts[labelled, f]), abs=1e-12)


def test_external_cluster_with_a_killed_worker_gives_the_same_index(local_index, small_corpus,
                                                                    tmp_path):
    from distributed import Client

    from steve_qt.core.features.index import build_index

    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    procs: list[subprocess.Popen] = []
    worker_pids: list[int] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(port), "--no-dashboard"], env=env,
            stdout=open(logs / "s.out", "wb"), stderr=subprocess.STDOUT))
        for i in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nworkers", "1",
                 "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"], env=env,
                stdout=open(logs / f"w{i}.out", "wb"), stderr=subprocess.STDOUT))
        with Client(addr, timeout=60) as probe:
            probe.wait_for_workers(2, timeout=120)
            worker_pids = list(probe.run(os.getpid).values())
        assert len(worker_pids) == 2
        killed = []

        def progress(done: int, total: int, what: str) -> None:
            if done == 1 and not killed:  # mid-run: one file done, others running
                os.kill(worker_pids[0], signal.SIGKILL)
                killed.append(worker_pids[0])

        out = tmp_path / "idx"
        meta = build_index(small_corpus, SITE, out, top_k=3, scheduler=addr,
                           cache_dir=tmp_path / "cache", progress=progress, timeout=10)
        assert killed and not alive(killed[0])
        assert meta["files_used"] == 4 and meta["files_failed"] == 1
        for name in DATA_FILES:
            assert (out / name).read_bytes() == (local_index / name).read_bytes(), name
        # the restarted worker (the nanny brings it back) is a new process
        with Client(addr, timeout=30) as probe:
            worker_pids += [p for p in probe.run(os.getpid).values() if p not in worker_pids]
    finally:
        stop(procs, worker_pids)
    assert not [p for p in worker_pids if alive(p)]


def test_stats_runs_on_the_embedded_cluster_and_a_dead_scheduler_is_one_line(small_corpus,
                                                                              tmp_path, capsys):
    from steve_qt.cli import main

    port = free_port()
    t0 = time.monotonic()
    code = main(["stats", str(small_corpus), "--out", str(tmp_path / "s"), "--scheduler",
                 f"tcp://127.0.0.1:{port}", "--timeout", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "no Dask scheduler answers" in err and "Traceback" not in err
    assert time.monotonic() - t0 < 30
