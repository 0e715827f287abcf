"""File > Record... through a real PortAudio InputStream reading an ALSA file device.

PortAudio reads the ALSA configuration when it starts, so the window runs in a subprocess whose
HOME holds an ``.asoundrc`` whose default PCM reads its capture from a raw float32 file
(``infile``). The take written must hold those samples (to 16-bit precision), in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

PROBE = Path(__file__).with_name("record_probe.py")
LSB = 1 / 32768  # one step of a 16-bit WAV


def run_probe(home: Path, folder: Path) -> dict:
    env = dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen",
               XDG_CONFIG_HOME=str(home / ".config"))
    out = subprocess.run([sys.executable, str(PROBE), str(folder)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_take_becomes_an_utterance_holding_the_samples_fed_in(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    fed = (0.3 * np.random.default_rng(0).uniform(-1, 1, 48000)).astype("<f4")
    raw_in = tmp_path / "in.raw"
    fed.tofile(raw_in)
    (home / ".asoundrc").write_text(
        f'pcm.!default {{ type file; slave.pcm "null"; file "{tmp_path / "out.raw"}"; '
        f'infile "{raw_in}"; format "raw" }}\n')
    folder = tmp_path / "takes"
    got = run_probe(home, folder)
    assert got["dialog"] and got["meter"] > 0, got
    assert got["shortcut"] == "Ctrl+R"
    takes = sorted(folder.glob("take-*.wav"))
    assert len(takes) == 1 and got["entries"] == [str(takes[0])] and got["current"] == 0
    assert got["rate"] == 16000
    info = sf.info(str(takes[0]))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    wav, _ = sf.read(str(takes[0]), dtype="float32")
    assert wav.size >= 1600
    # the device hands out the file's samples from wherever its reading stood: find the first
    # 64 recorded samples in what was fed, then the whole stretch up to the file's end matches
    ref = np.round(fed * 32768) / 32768
    start = next((o for o in range(fed.size - 64)
                  if np.abs(ref[o:o + 64] - wav[:64]).max() <= LSB), None)
    assert start is not None, "the recorded samples are not the ones fed in"
    n = min(wav.size, fed.size - start)
    assert n >= 64
    np.testing.assert_allclose(wav[:n], fed[start:start + n], atol=LSB)


def test_without_an_input_device_the_status_bar_says_so(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text(  # a default device that is not there
        'pcm.!default { type hw; card 97 }\nctl.!default { type hw; card 97 }\n')
    folder = tmp_path / "takes"
    got = run_probe(home, folder)  # no dialog appears: its Stop-presser just waits
    assert got["message"].startswith("Recording unavailable"), got
    assert not got["dialog"] and got["entries"] == []
    assert not folder.exists() or not list(folder.glob("*.wav"))

