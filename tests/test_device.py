"""``--device auto|cpu|cuda``: resolution, one-line errors, and a GPU run when there is a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steve_qt import cli
from steve_qt.core.models import devices
from steve_qt.core.models import pipeline
from steve_qt.core.errors import SteveError

HAS_CUDA = torch.cuda.is_available()
NO_GPU = (f"no CUDA device visible to torch {torch.__version__} "
          f"({'CPU-only build' if torch.version.cuda is None else 'CUDA ' + torch.version.cuda}): "
          "the GPU path was not run")


def test_auto_is_cuda_exactly_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve("auto") == "cuda"
    assert devices.resolve("CPU") == "cpu"


def test_default_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(devices.DEVICE_ENV, raising=False)
    assert devices.requested() == "auto"
    monkeypatch.setenv(devices.DEVICE_ENV, "cpu")
    assert devices.requested() == "cpu" and devices.resolve() == "cpu"


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", ""])
def test_unknown_devices_are_refused(name):
    with pytest.raises(SteveError, match="unknown device"):
        devices.check_name(name)


def test_cuda_without_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SteveError, match="not available.*sees no CUDA device"):
        devices.resolve("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SteveError, match="sees 1 CUDA device"):
        devices.resolve("cuda:3")


@pytest.mark.parametrize("argv", [
    ["extract", "{wav}", "--out", "{out}", "--device", "quantum"],
    ["figure", "{wav}", "--out", "{out}.pdf", "--device", "quantum"],
    ["stats", "{dir}", "--out", "{out}", "--device", "quantum"],
])
def test_commands_give_one_line_for_an_unknown_device(argv, dark_suit, tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.delenv(devices.DEVICE_ENV, raising=False)
    argv = [a.format(wav=dark_suit, dir=dark_suit.parent, out=tmp_path / "o") for a in argv]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["steve-qt: error: unknown device 'quantum'; use auto, cpu or cuda (or cuda:N)"]
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is present: the refusal is not what happens here")
def test_gui_and_commands_refuse_cuda_without_a_gpu(dark_suit, tmp_path, capsys, monkeypatch):
    from steve_qt.gui.app import run_gui

    monkeypatch.delenv(devices.DEVICE_ENV, raising=False)
    assert run_gui([str(dark_suit), "--device", "cuda"]) == 2
    assert cli.main(["extract", str(dark_suit), "--out", str(tmp_path / "x.npz"),
                     "--device", "cuda"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(ln.startswith("steve-qt: error: device 'cuda' is not available")
                                   for ln in lines)


def test_the_device_reaches_the_adapter(monkeypatch, whisper_adapter):
    monkeypatch.setenv(devices.DEVICE_ENV, "cpu")
    a = pipeline.get_adapter("whisper")
    assert a is whisper_adapter and a.device == "cpu"
    assert next(a.model.parameters()).device.type == "cpu"


class _CpuOnly:
    name, model_id, components, sample_rate = "cpuonly", "cpuonly", ("encoder",), 16000

    def __init__(self, arg=None):
        pass

    def num_windows(self, n):
        return 1

    def list_sites(self):
        return []

    def extract(self, audio, components=None, window=0, progress=None, should_cancel=None):
        raise AssertionError


def test_adapters_without_a_device_keyword_run_on_the_cpu(monkeypatch):
    from steve_qt.core.models import adapters

    class EP:
        name = "cpuonly"

        def load(self):
            return _CpuOnly

    monkeypatch.setattr(adapters, "available_adapters", lambda: {"cpuonly": EP()})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert isinstance(adapters.load_adapter("cpuonly", "auto"), _CpuOnly)  # auto: the CPU
    with pytest.raises(SteveError, match="runs on the CPU only"):
        adapters.load_adapter("cpuonly", "cuda")


@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
def test_whisper_on_the_gpu_matches_the_cpu(dark_suit_extraction):
    """Encoder maps and transcript on CUDA agree with the CPU run (float rounding only)."""
    audio, cpu = dark_suit_extraction
    gpu = pipeline.get_adapter("whisper", "cuda").extract(audio.samples)
    assert next(pipeline.get_adapter("whisper", "cuda").model.parameters()).is_cuda
    for c in cpu.maps:
        np.testing.assert_allclose(gpu.maps[c].weights.astype(np.float32),
                                   cpu.maps[c].weights.astype(np.float32), atol=2e-3)
    assert gpu.transcript.text == cpu.transcript.text


@pytest.mark.skipif(not HAS_CUDA, reason=NO_GPU)
def test_wav2vec2_on_the_gpu_matches_the_cpu(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, conv_dim=(16,) * 7, vocab_size=12,
                         num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    Wav2Vec2ForCTC(cfg).save_pretrained(tmp_path)
    x = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    cpu = pipeline.load_adapter(f"wav2vec2:{tmp_path}", "cpu").extract(x)
    gpu = pipeline.load_adapter(f"wav2vec2:{tmp_path}", "cuda").extract(x)
    np.testing.assert_allclose(gpu.maps["encoder"].weights.astype(np.float32),
                               cpu.maps["encoder"].weights.astype(np.float32), atol=2e-3)
