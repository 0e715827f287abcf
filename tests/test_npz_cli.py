"""steve-qt extract / info end to end, and the npz schema."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from steve_qt.cli import main
from steve_qt.core.errors import SteveError
from steve_qt.core.models.npzio import load_npz

STEVE = str(Path(sys.executable).with_name("steve-qt"))


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, dark_suit, whisper_adapter):
    out = tmp_path_factory.mktemp("npz") / "dark_suit.npz"
    assert main(["extract", str(dark_suit), "--out", str(out)]) == 0
    return out


def test_npz_schema(extracted, dark_suit):
    import soundfile as sf

    n = sf.info(str(dark_suit)).frames
    with np.load(extracted, allow_pickle=False) as z:
        t = math.ceil(n / 320)
        assert z["attention"].shape == (4, 1, 6, t, t) and z["attention"].dtype == np.float16
        assert z["scores"].shape == z["attention"].shape and z["scores"].dtype == np.float16
        assert z["padding_mass"].shape == (4, 6, t)
        assert int(z["spf"]) == 320 and int(z["sample_rate"]) == 16000
        assert int(z["num_samples"]) == n
        assert str(z["model"]) == "whisper:tiny.en (embedded)" and str(z["component"]) == "encoder"
        for tier in ("phones", "words"):
            assert z[f"{tier}_start"].dtype == np.float64 and z[f"{tier}_end"].dtype == np.float64
            assert z[f"{tier}_label"].dtype.kind == "U"
            assert len(z[f"{tier}_start"]) == len(z[f"{tier}_label"]) > 3
        assert "dark" in str(z["transcript"]).lower()
        assert z["phones_end"].max() <= n / 16000 + 1e-9


def test_npz_round_trip(extracted):
    c = load_npz(extracted)
    assert c.maps.weights.shape[0] == 4 and c.maps.key_grid.hop == 320
    assert c.alignment.phones.intervals[0].start_s == 0.0
    assert c.maps.head(1, 2).shape == (c.maps.num_queries, c.maps.num_keys)


def test_info(extracted, capsys):
    assert main(["info", str(extracted)]) == 0
    out = capsys.readouterr().out
    assert "4 layers x 6 heads" in out and "encoder self-attention" in out
    assert "tier phones:" in out


def test_cross_attention_extract(tmp_path, dark_suit):
    out = tmp_path / "x.npz"
    assert main(["extract", str(dark_suit), "--component", "cross", "--out", str(out)]) == 0
    c = load_npz(out)
    assert c.maps.component == "cross" and c.maps.query_grid is None
    assert c.maps.query_labels[0] == "<|startoftranscript|>"
    assert len(c.maps.query_labels) == c.maps.num_queries


def test_existing_output_is_not_overwritten(extracted, capsys):
    before = extracted.read_bytes()
    assert main(["extract", "samples/dark_suit.wav", "--out", str(extracted)]) == 2
    assert "file exists" in capsys.readouterr().err
    assert extracted.read_bytes() == before


def test_object_arrays_are_refused(tmp_path):
    bad = tmp_path / "evil.npz"
    np.savez(bad, format=np.array("steve_qt.attention"), attention=np.array([{"a": 1}], dtype=object))
    with pytest.raises(SteveError, match="refused"):
        load_npz(bad)
    assert main(["info", str(bad)]) == 2
    from steve_qt.core.models.actnpz import load_activation_file
    with pytest.raises(SteveError, match="refused"):
        load_activation_file(bad)


def test_console_script_errors_are_one_line_exit_2(tmp_path):
    if not Path(STEVE).exists():
        pytest.skip("console script not installed in this environment")
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    r = subprocess.run([STEVE, "extract", str(bad), "--out", str(tmp_path / "o.npz")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([STEVE, "extract", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--component" in r.stdout


def test_alignment_none_writes_no_tiers(tmp_path, dark_suit):
    wav = tmp_path / "lonely.wav"
    shutil.copy(dark_suit, wav)
    out = tmp_path / "n.npz"
    assert main(["extract", str(wav), "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as z:
        assert "phones_start" not in z.files


def test_outputs_get_normal_permissions(tmp_path):
    import os

    from steve_qt.core.fileio import write_text_atomic

    old = os.umask(0o022)
    try:
        p = write_text_atomic(tmp_path / "a.txt", "x")
        assert p.stat().st_mode & 0o777 == 0o644
        os.chmod(p, 0o600)
        write_text_atomic(p, "y", force=True)  # replacing keeps the existing file's mode
        assert p.stat().st_mode & 0o777 == 0o600 and p.read_text() == "y"
    finally:
        os.umask(old)


def test_cross_npz_keeps_alignment_heads(tmp_path, dark_suit):
    out = tmp_path / "c.npz"
    assert main(["extract", str(dark_suit), "--component", "cross", "--out", str(out)]) == 0
    c = load_npz(out)
    assert c.maps.meta["alignment_heads"][0] == [1, 0] and len(c.maps.meta["alignment_heads"]) == 8
    start, end = c.maps.meta["text_token_start"], c.maps.meta["text_token_end"]
    assert c.maps.query_labels[start - 1] == "<|notimestamps|>"
    assert c.maps.query_labels[end] == "<|endoftext|>"
