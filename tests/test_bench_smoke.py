"""The benchmarks in bench/ execute (tiny inputs, one repeat). No timing is asserted anywhere.

Besides "it runs", two facts the benchmark's conclusions rest on are checked against independent
computations: the STEVE-recipe baseline equals whisper's own pre-softmax scores, and the capture
the benchmark times is the adapter's. (tests/test_whisper.py checks that the capture's fast path
equals its public-ops fallback, which the benchmark also times.)
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import baseline, capture, extraction, first_map, memory, mixing, redraw, report  # noqa: E402,E501
from bench import whisper_parts as wp  # noqa: E402
from bench.common import Config, interleave, make_audio  # noqa: E402


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory) -> Config:
    cfg = Config.tiny()
    silent = tmp_path_factory.mktemp("bench") / "silence.wav"
    sf.write(str(silent), np.zeros(16000, np.float32), 16000)  # transcribes quickly to ""
    cfg.first_map_file = str(silent)
    return cfg


def test_interleave_runs_variants_alternately():
    order = []
    t = interleave({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                   repeats=2, warmup=1)
    assert order == ["a", "b"] * 3
    assert len(t["a"].times) == len(t["b"].times) == 2


def test_steve_recipe_equals_whispers_own_scores():
    from whisper.model import disable_sdpa

    adapter = wp.load_whisper()
    audio, _ = make_audio(1.0)
    mel = adapter.mel(audio)
    layers = wp.steve_capture(adapter, mel)  # N x (1, M, 1500, 1500)
    assert len(layers) == adapter.dims.n_audio_layer
    assert layers[0].shape == (1, adapter.dims.n_audio_head, 1500, 1500)
    assert layers[0].dtype == torch.float32
    qk = {}
    handles = [b.attn.register_forward_hook(
        lambda _m, _i, out, i=i: qk.__setitem__(i, out[1])) for i, b in
        enumerate(adapter.model.encoder.blocks)]
    try:
        with torch.no_grad(), disable_sdpa():
            adapter.model.encoder(mel[None])
    finally:
        for h in handles:
            h.remove()
    for i, layer in enumerate(layers):
        ref = qk[i].float()  # whisper's explicit path: (q d^-1/4)(k d^-1/4)^T, (1, M, 1500, 1500)
        assert torch.allclose(layer, ref, atol=2e-3, rtol=1e-4), float((layer - ref).abs().max())


def test_bench_capture_is_the_adapters_encoder_capture():
    adapter = wp.load_whisper()
    silence = np.zeros(16000, np.float32)  # transcribes quickly
    maps = adapter.extract(silence, components=["encoder"]).maps["encoder"]
    mel = adapter.mel(silence)
    ours = wp.our_capture(adapter, mel, wp.kept_frames(len(silence)))
    for a, b in zip(ours, (maps.weights, maps.scores, maps.padding_mass)):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.array_equal(a, b)


def test_every_section_runs_and_renders(tiny_cfg, tmp_path):
    # redraw and first_map only wait for their child processes: run them alongside
    with ThreadPoolExecutor(max_workers=2) as pool:
        children = [pool.submit(m.run, tiny_cfg) for m in (redraw, first_map)]
        sections = [m.run(tiny_cfg) for m in (capture, extraction, baseline, memory, mixing)]
        sections += [f.result() for f in children]
    for s in sections:
        assert s.rows, s.name
        assert all(len(r) == len(s.columns) for r in s.rows), s.name
        for _title, cols, rows in s.extra_tables:
            assert all(len(r) == len(cols) for r in rows)
    by_name = {s.name: s for s in sections}
    ratios = [float(r[5]) for r in by_name["capture"].rows]
    assert all(r > 0 for r in ratios)
    # the wav2vec 2.0 adapter is in plugins/, so its rows must be measured, not skipped
    assert any("wav2vec 2.0" in r[0] for r in by_name["capture"].rows), by_name["capture"].rows
    assert not any("not measured" in n for n in by_name["capture"].notes)
    md, js = tmp_path / "R.md", tmp_path / "r.json"
    header = dict(date="now", command="test", mode="tiny", threads=2,
                  machine=report.machine(), versions=report.versions())
    report.write(sections, header, md=md, js=js)
    text = md.read_text()
    assert "## 1. Capture overhead" in text and "## 5. Time to first map" in text
    assert "## Context-mixing measures" in text
    assert [r[0] for r in by_name["extraction"].rows] == ["full extraction"]
    assert "encoder forward passes in one full extraction: 1;" in " ".join(
        by_name["extraction"].notes)
    assert [r[0] for r in by_name["mixing"].rows] == ["attention norm", "value zeroing",
                                                      "grad relevance"]
    assert "torch" in text and "nproc" in text
    assert report.load_previous(js).keys() == by_name.keys()
