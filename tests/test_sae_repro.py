"""SAE training is reproducible and resumable bit for bit (float32, CPU), trains several sites in
one pass exactly as one site alone, and refuses options that do not fit before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from steve_qt.cli import main
from steve_qt.core.features.sae_train import (CHECKPOINT, ShuffleBuffer, SiteTarget, TrainConfig,
                                              chunk_source, train_sae, train_saes)
from tests.test_sae import planted

ROOT = Path(__file__).resolve().parents[1]
SITES = ("encoder.blocks.1", "encoder.blocks.2")
WEIGHTS = ("W_enc", "b_enc", "W_dec", "b_dec")


def files_of(x, sizes):
    """Split rows into "files" of the given sizes (one array per file)."""
    cuts = np.cumsum(sizes)[:-1]
    return np.split(x, cuts)


def same(a, b):
    for n in WEIGHTS:
        ta, tb = getattr(a, n), getattr(b, n)
        assert torch.equal(ta, tb), (n, float((ta - tb).abs().max()))


CFG = dict(kind="topk", expansion=4, k=3, epochs=3, batch=64, lr=2e-3, shuffle_rows=500,
           dead_after=600)


def test_two_runs_are_identical_bit_for_bit(tmp_path):
    x, _ = planted(n=3000)
    files = files_of(x, [137, 401, 90, 611, 250, 511, 1000])
    a = train_sae(lambda e: iter(files), 16, TrainConfig(**CFG), tmp_path / "a")
    b = train_sae(lambda e: iter(files), 16, TrainConfig(**CFG), tmp_path / "b")
    same(a, b)
    c = train_sae(lambda e: iter(files), 16, TrainConfig(**{**CFG, "seed": 1}), tmp_path / "c")
    assert not torch.equal(a.W_enc, c.W_enc)  # the seed matters: the check above can fail


@pytest.mark.parametrize("stops", [[1], [7, 1], [40], [23, 23, 23]])
def test_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path, stops):
    """Stopped mid-fill, at a fill's end, mid-epoch and across epochs, then continued."""
    x, _ = planted(n=2000)
    files = files_of(x, [300, 300, 150, 450, 800])
    cfg = TrainConfig(**CFG)
    straight = train_sae(lambda e: iter(files), 16, cfg, tmp_path / "a")
    for n in stops:
        assert train_sae(lambda e: iter(files), 16, cfg, tmp_path / "b",
                         stop_after_steps=n) is None
        assert (tmp_path / "b" / CHECKPOINT).exists()
    resumed = train_sae(lambda e: iter(files), 16, cfg, tmp_path / "b")
    same(resumed, straight)


def test_shuffle_buffer_state_rebuilds_the_same_batches():
    """A buffer restored from its state and fed the files from its fill's start gives the
    batches that follow, exactly; the files it reads again are only those of the current fill."""
    rng = np.random.default_rng(3)
    files = [rng.normal(size=(n, 4)).astype(np.float32) for n in (30, 70, 25, 90, 40, 10, 64)]

    def run(buf, start=0):
        out = []
        for i, f in enumerate(files):
            if i >= start:
                for b in buf.add(i, f):
                    out.append((b.numpy().copy(), buf.state()))
        for b in buf.finish():
            out.append((b.numpy().copy(), buf.state()))
        return out

    full = run(ShuffleBuffer(16, 100, seed=5, epoch=2))
    rows = np.concatenate([b for b, _ in full])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, np.concatenate(files)))  # each row once
    for j, (_, state) in enumerate(full):
        buf = ShuffleBuffer(16, 100, seed=5, epoch=2, state=state)
        rest = run(buf, start=state["start_file"])
        assert len(rest) == len(full) - j - 1
        for (a, _), (b, _) in zip(rest, full[j + 1:]):
            assert np.array_equal(a, b)


def test_several_sites_equal_each_site_alone_bit_for_bit(tmp_path):
    x1, _ = planted(n=2000, seed=1)
    x2, _ = planted(n=2000, d=12, seed=2)
    sizes = [300, 300, 150, 450, 800]
    f1, f2 = files_of(x1, sizes), files_of(x2, sizes)
    cfg = TrainConfig(**CFG)

    def source(epoch, first, names):
        for i in range(first, len(sizes)):
            yield i, {n: {"one": f1, "two": f2}[n][i] for n in names}

    both = train_saes(source, [SiteTarget("one", 16, tmp_path / "m1"),
                               SiteTarget("two", 12, tmp_path / "m2")], cfg)
    alone1 = train_sae(lambda e: iter(f1), 16, cfg, tmp_path / "s1")
    alone2 = train_sae(lambda e: iter(f2), 12, cfg, tmp_path / "s2")
    same(both["one"], alone1)
    same(both["two"], alone2)


def test_several_sites_resume_each_from_its_own_checkpoint(tmp_path):
    x1, _ = planted(n=1500, seed=1)
    sizes = [300, 300, 150, 450, 300]
    f1 = files_of(x1, sizes)
    f2 = [f[:, :10] * 2 for f in f1]
    cfg = TrainConfig(**CFG)

    def source(epoch, first, names):
        for i in range(first, len(sizes)):
            yield i, {n: {"one": f1, "two": f2}[n][i] for n in names}

    targets = lambda d: [SiteTarget("one", 16, d / "1"), SiteTarget("two", 10, d / "2")]  # noqa
    straight = train_saes(source, targets(tmp_path / "a"), cfg)
    assert train_saes(source, targets(tmp_path / "b"), cfg, stop_after_steps=33) is None
    said = []
    resumed = train_saes(source, targets(tmp_path / "b"), cfg, say=said.append)
    assert len(said) == 2 and all("resuming from step" in s for s in said), said
    for n in ("one", "two"):
        same(resumed[n], straight[n])


# --- the command line -----------------------------------------------------------------------
def write_wav(path: Path, seed: int, n: int = 1600) -> None:
    samples = (np.random.default_rng(seed).normal(size=n) * 1000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())


@pytest.fixture(scope="module")
def cached_corpus(tmp_path_factory):
    """12 short WAVs whose activations of two sites are already in a cache of their own
    (random rows with a sparse structure: the model is never run on them)."""
    from steve_qt.core.features.actcache import store_activations

    root = tmp_path_factory.mktemp("repro")
    corpus, cache = root / "corpus", root / "cache"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    dirs = rng.normal(size=(64, 384)).astype(np.float32)
    for i in range(12):
        wav = corpus / f"f{i:02d}.wav"
        write_wav(wav, i)
        for j, site in enumerate(SITES):
            n = 90 + 13 * i
            codes = rng.exponential(size=(n, 64)) * (rng.random((n, 64)) < 0.05)
            store_activations(wav, "whisper", site, 0, (codes @ dirs) * (1 + j), cache_dir=cache)
    return {"corpus": corpus, "cache": cache, "root": root}


def train_args(env, out, *extra):
    return ["sae", "train", str(env["corpus"]), "--out", str(out), "--cache", str(env["cache"]),
            "--expansion", "1", "--k", "8", "--batch", "64", "--shuffle-rows", "256",
            "--holdout", "0.2", "--wer-files", "0", "--jobs", "1", *extra]


def weights(d: Path) -> dict:
    return load_file(str(d / "sae_weights.safetensors"))


def test_cli_several_sites_equal_one_site(cached_corpus, tmp_path, capsys):
    env = cached_corpus
    assert main(train_args(env, tmp_path / "multi", "--site", SITES[0], "--site", SITES[1],
                           "--epochs", "2")) == 0
    for site in SITES:
        assert main(train_args(env, tmp_path / site, "--site", site, "--epochs", "2")) == 0
        a, b = weights(tmp_path / "multi" / site), weights(tmp_path / site)
        for n in WEIGHTS:
            assert np.array_equal(a[n], b[n]), (site, n)
    capsys.readouterr()


def test_cli_killed_run_resumes_to_the_uninterrupted_sae(cached_corpus, tmp_path, capsys):
    """SIGKILL after the first (time-driven) checkpoint; the rerun says where it resumes and
    ends with the SAE of a run never interrupted, bit for bit."""
    env = cached_corpus
    common = ["--site", SITES[1], "--epochs", "8", "--checkpoint-seconds", "0.2"]
    killed = tmp_path / "killed"
    envvars = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    proc = subprocess.Popen([sys.executable, "-m", "steve_qt.cli",
                             *train_args(env, killed, *common)], env=envvars,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (killed / CHECKPOINT).exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "cfg.json").exists()  # killed before its end
    assert main(train_args(env, killed, *common)) == 0
    err = capsys.readouterr().err
    assert "resuming from step" in err and "epoch" in err, err[-1000:]
    assert main(train_args(env, tmp_path / "straight", *common)) == 0
    a, b = weights(killed), weights(tmp_path / "straight")
    for n in WEIGHTS:
        assert np.array_equal(a[n], b[n]), n


@pytest.mark.parametrize("extra,message", [
    (["--site", SITES[1], "--k", "500"], "--k 500 is more than the SAE's 384 latents"),
    (["--site", SITES[1], "--site", SITES[1]], "site encoder.blocks.2 is given twice"),
    (["--site", SITES[1], "--site", "encoder.layers.3"], "encoder.layers.3"),
    (["--site", SITES[1], "--batch", "512"], "shuffle buffer (256 rows) must hold"),
    (["--site", SITES[1], "--holdout", "1.5"], "--holdout must be"),
    (["--site", SITES[1], "--device", "tpu"], "unknown device 'tpu'"),
    (["--site", SITES[1], "--wer-files", "-1"], "--wer-files"),
    (["--site", SITES[1], "--precision", "half"], "unknown --precision 'half'"),
    (["--site", SITES[1], "--precision", "float16", "--device", "cpu"],
     "--precision float16 needs a CUDA device"),
])
def test_cli_options_that_do_not_fit_one_line_exit_2_nothing_written(cached_corpus, tmp_path,
                                                                     capsys, extra, message):
    out = tmp_path / "out"
    assert main(train_args(cached_corpus, out, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when there is no GPU")
def test_cli_cuda_without_gpu_says_so(cached_corpus, tmp_path, capsys):
    assert main(train_args(cached_corpus, tmp_path / "o", "--site", SITES[1],
                           "--device", "cuda")) == 2
    assert "sees no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_training_matches_cpu_within_tolerance(tmp_path):
    x, _ = planted(n=2000)
    files = files_of(x, [500] * 4)
    cpu = train_sae(lambda e: iter(files), 16, TrainConfig(**CFG), tmp_path / "c")
    gpu = train_sae(lambda e: iter(files), 16, TrainConfig(**CFG), tmp_path / "g",
                    device="cuda")
    # GPU kernels sum in other orders: float32 rounding, amplified over steps
    assert torch.allclose(cpu.W_dec, gpu.W_dec, atol=1e-3)


def test_chunk_source_counts_each_array_as_a_file():
    src = chunk_source(lambda e: iter([np.ones((2, 3)), np.zeros((1, 3))]), "s")
    assert [(i, d["s"].shape) for i, d in src(0, 1, ["s"])] == [(1, (1, 3))]


def test_cli_sigterm_checkpoints_and_says_how_to_continue(cached_corpus, tmp_path):
    env = cached_corpus
    out = tmp_path / "t"
    envvars = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    proc = subprocess.Popen([sys.executable, "-m", "steve_qt.cli", *train_args(
        env, out, "--site", SITES[1], "--epochs", "50", "--checkpoint-seconds", "0.2")],
        env=envvars, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not (out / CHECKPOINT).exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGTERM)
        err = proc.communicate(timeout=120)[1].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "interrupted; the same command continues from" in err
    assert (out / CHECKPOINT).exists() and not (out / "cfg.json").exists()
