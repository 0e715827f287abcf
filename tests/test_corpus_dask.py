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
def local_index(small_corpus, tmp_path_factory, whisper_adapter):
    from steve_qt.core.features.index import build_index

    out = tmp_path_factory.mktemp("li") / "idx"
    build_index(small_corpus, SITE, out, top_k=3, jobs=2,
                cache_dir=tmp_path_factory.mktemp("cache_local"))
    return out


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
