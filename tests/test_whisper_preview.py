"""The torch-free encoder preview (plugins/steve_whisper/preview.py) against openai-whisper and the
Whisper adapter's own capture (torch), which share none of its code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import wait

import numpy as np
import pytest
import torch
from whisper.audio import N_SAMPLES, log_mel_spectrogram, pad_or_trim

from steve_qt.core.speech.audio import load_audio

from steve_whisper import modelfiles, preview

#: mel tolerance: both are float32; torch.stft and numpy's pocketfft round differently, which
#: shows most in near-silent bins (log10 of powers near the 1e-10 floor); measured 3.5e-5 on the
#: samples, against a mel range of about 3 (a float16 map cell is 5e-4 wide at 0.5)
MEL_TOL = 2e-4


def adapter_mel(segment: np.ndarray) -> np.ndarray:
    """The adapter's encoder input, written out from whisper's own functions (not the adapter's
    ``mel``, so that this also checks what the adapter does)."""
    mel = log_mel_spectrogram(torch.from_numpy(segment), 80, padding=N_SAMPLES)
    return pad_or_trim(mel[:, :mel.shape[-1] - 3000], 3000).numpy()


@pytest.mark.parametrize("n", [100, 250, 4801, 48000, N_SAMPLES])
def test_log_mel_equals_whisper(n):
    rng = np.random.default_rng(n)
    t = np.arange(n) / 16000
    seg = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    seg[: n // 3] *= 0.01  # a quiet part: the 8-decade floor matters
    ours, theirs = preview.log_mel(seg), adapter_mel(seg)
    assert ours.shape == theirs.shape == (80, 3000)
    assert np.abs(ours - theirs).max() <= MEL_TOL
    assert np.all(ours[:, n // 160:] == 0)  # padded with zeros in the mel domain, as the adapter


def one_ulp_apart(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """Per element: |a - b| within one float16 step at the larger magnitude, + ``atol``.

    Both sides are float32 results rounded to float16 once; two float32 computations of the
    same model differ by about 1e-6 relative, which can put a value on either side of a float16
    rounding boundary -- one step, never more. Near 0 the float16 step is tiny and the float32
    rounding of the computation itself shows: ``atol`` 1e-6 for weights (in [0, 1]), 1e-4 for
    scores (dot products of 64 terms whose sum reaches 40 in magnitude; measured 2.5e-5 beyond
    one step on the samples)."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    step = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(np.float16)).astype(np.float32)
    return np.abs(a32 - b32) <= step + atol


@pytest.fixture(scope="module")
def cached_model(whisper_adapter):
    """The adapter has been loaded, so the converted model is in the (test) user cache."""
    path = preview.embedded_cache_file()
    assert path is not None and path.exists()
    return whisper_adapter


@pytest.fixture(scope="module", params=["dark_suit.wav", "oily_rag.wav"])
def both(request, cached_model, samples_dir):
    audio = load_audio(samples_dir / request.param).samples
    model = cached_model.extract(audio, components=("encoder",), sites=["encoder.ln_post"])
    return audio, model.maps["encoder"], preview.preview_extraction(audio)


def test_preview_equals_the_adapter_within_one_float16_step(both):
    _audio, model, ex = both
    pm = ex.maps["encoder"]
    assert pm.weights.shape == model.weights.shape and pm.weights.dtype == np.float16
    assert pm.scores.dtype == np.float16 and pm.padding_mass.dtype == np.float32
    assert one_ulp_apart(pm.weights, model.weights).all()
    assert one_ulp_apart(pm.scores, model.scores, atol=1e-4).all()
    assert np.abs(pm.padding_mass - model.padding_mass).max() <= 1e-4
    assert model.padding_mass.max() > 1e-3  # the padding keys carry mass that matters


def test_a_preview_without_the_padding_keys_fails_the_tolerance(both):
    """The check above would catch a softmax over the kept keys only."""
    _audio, model, ex = both
    s = ex.maps["encoder"].scores.astype(np.float32)
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    wrong = (w / w.sum(axis=-1, keepdims=True)).astype(np.float16)
    assert not one_ulp_apart(wrong, model.weights).all()


def test_preview_is_the_adapters_first_stage_marked(both, cached_model):
    audio, model, ex = both
    from steve_qt.core.errors import Cancelled

    parts = []
    with pytest.raises(Cancelled):  # stop after the first stage
        cached_model.extract(audio, on_partial=parts.append, should_cancel=lambda: bool(parts))
    first = parts[0]
    assert preview.is_preview(ex) and not preview.is_preview(first)
    assert ex.pending == ("model", *first.pending)
    assert ex.model == first.model and ex.window == first.window
    assert ex.num_windows == first.num_windows and ex.frame_grid == first.frame_grid
    assert {k: v for k, v in ex.meta.items() if k != preview.PREVIEW_KEY} == first.meta
    pm, fm = ex.maps["encoder"], first.maps["encoder"]
    for field in ("component", "model", "sample_rate", "num_samples", "query_grid", "key_grid",
                  "window", "num_windows"):
        assert getattr(pm, field) == getattr(fm, field), field


def test_second_window(cached_model, samples_dir):
    """Window 1 of 31 s of audio (the last second) as the adapter gives it."""
    a = load_audio(samples_dir / "dark_suit.wav").samples
    audio = np.concatenate([np.tile(a, 9)[:N_SAMPLES], a[:16000]])
    model = cached_model.extract(audio, components=("encoder",), window=1,
                                 sites=["encoder.ln_post"]).maps["encoder"]
    ex = preview.preview_extraction(audio, window=1)
    assert ex.window == 1 and ex.num_windows == 2
    assert one_ulp_apart(ex.maps["encoder"].weights, model.weights).all()


def test_no_preview_without_the_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STEVE_QT_CACHE", str(tmp_path))
    assert preview.preview_extraction(np.zeros(16000, np.float32)) is None


def test_no_preview_for_another_model_file(cached_model, tmp_path, monkeypatch):
    other = tmp_path / "model"
    other.mkdir()
    (other / "model.bin").write_bytes(b"not the embedded model")
    monkeypatch.setattr(modelfiles, "embedded_model_dir", lambda: other)
    assert preview.preview_extraction(np.zeros(16000, np.float32)) is None


def test_cancel_stops_the_preview(cached_model):
    from steve_qt.core.errors import Cancelled

    with pytest.raises(Cancelled):
        preview.preview_extraction(np.zeros(16000, np.float32), should_cancel=lambda: True)


def test_importing_the_preview_imports_neither_torch_nor_whisper(cached_model):
    code = ("import sys, numpy as np; import steve_whisper.preview as p; "
            "ex = p.preview_extraction(np.zeros(8000, np.float32)); "
            "import json; print(json.dumps([ex is not None] + "
            "[m for m in ('torch', 'whisper', 'scipy') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True]


def test_gelu_equals_torch():
    x = np.linspace(-8, 8, 200001, dtype=np.float32)
    ours = preview.gelu_(x.copy())
    theirs = torch.nn.functional.gelu(torch.from_numpy(x)).numpy()
    # erf's error (below 1.5e-7) times |x| / 2, plus float32 rounding of x * Phi(x)
    assert (np.abs(ours - theirs) <= 1e-6 * np.maximum(1.0, np.abs(x))).all()


def test_started_preview_is_taken_once_and_cancel_ends_its_process(cached_model, dark_suit):
    """``previews.start`` (a forked child on Linux) hands its result to ``take`` for the same
    file; Cancel while waiting ends the child; other samples get a preview computed anew."""
    from steve_qt.core.models import previews
    from steve_qt.core.errors import Cancelled

    audio = load_audio(dark_suit)
    assert previews.start("whisper", dark_suit)
    ex = previews.take("whisper", audio)
    direct = preview.preview_extraction(audio.samples)
    np.testing.assert_array_equal(ex.maps["encoder"].weights, direct.maps["encoder"].weights)

    assert previews.start("whisper", dark_suit)
    fut = previews._STARTED[previews._key("whisper", dark_suit, 0)]
    with pytest.raises(Cancelled):
        previews.take("whisper", audio, should_cancel=lambda: True)
    if fut.process is not None:  # the thread waiting for the child sees it end and reaps it
        pid = fut.process.pid
        wait([fut], timeout=10)
        assert fut.done() and "ended" in str(fut.exception())
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    assert previews.start("whisper", dark_suit)
    audio.samples = audio.samples[:16000].copy()  # the file changed since start(): not its preview
    ex = previews.take("whisper", audio)
    assert ex.maps["encoder"].weights.shape[-1] == 50
    assert previews.take("wav2vec2:/nowhere", audio) is None  # no preview for that adapter


def test_a_started_preview_that_does_not_come_is_given_up(cached_model, dark_suit, monkeypatch,
                                                          caplog):
    """``take`` waits at most WAIT_S for a started preview, then ends its process: no preview,
    a log line, and the model's own result follows as ever."""
    from steve_qt.core.models import previews

    monkeypatch.setattr(previews, "WAIT_S", 0.0)
    audio = load_audio(dark_suit)
    assert previews.start("whisper", dark_suit)
    fut = previews._STARTED[previews._key("whisper", dark_suit, 0)]
    assert previews.take("whisper", audio) is None
    assert any("preview failed" in r.getMessage() for r in caplog.records)
    if fut.process is not None:  # killed, not finished: its waiting thread saw it end
        wait([fut], timeout=10)
        assert fut.done() and "ended" in str(fut.exception())
