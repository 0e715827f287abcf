"""Playback through a real PortAudio OutputStream into an ALSA file device.

PortAudio reads the ALSA configuration when it starts, so the window runs in a subprocess whose
HOME holds an ``.asoundrc`` with ``pcm.!default { type file; slave.pcm "null"; ... }``: every
sample the stream plays lands in a raw file (float32, the stream's format), which is compared
with the selected interval's samples.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

PROBE = Path(__file__).with_name("playback_probe.py")
ONE_BUFFER_S = 0.25  # leading/trailing silence the device may add around the played samples


def alsa_home(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    home.mkdir()
    raw = tmp_path / "played.raw"
    (home / ".asoundrc").write_text(
        f'pcm.!default {{ type file; slave.pcm "null"; file "{raw}"; format "raw" }}\n')
    return home, raw


def run_probe(home: Path, wav: Path, nth_vowel: int = 2) -> dict:
    env = dict(os.environ, HOME=str(home), QT_QPA_PLATFORM="offscreen",
               XDG_CONFIG_HOME=str(home / ".config"))
    out = subprocess.run([sys.executable, str(PROBE), str(wav), str(nth_vowel)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_clicking_a_phone_plays_exactly_its_samples(tmp_path, dark_suit):
    home, raw = alsa_home(tmp_path)
    got = run_probe(home, dark_suit, nth_vowel=2)
    a, b, label = got["interval"]
    assert got["selection"] == [a, b], "the click selects exactly the interval"
    assert got["started"], got["message"]
    assert got["message"].startswith("Playing"), got["message"]
    assert "Playing" not in got["message_after"], "the status bar still says it plays"

    data, rate = sf.read(str(dark_suit), dtype="float32", always_2d=True)
    assert rate == got["rate"]
    s0, s1 = int(round(a * rate)), int(round(b * rate))
    expected = data[s0:s1, 0]
    assert got["frames_written"] == s1 - s0
    played = np.fromfile(raw, dtype="<f4")
    assert np.abs(expected).max() > 0.01, "a vowel is not silent"

    # where the interval's first non-zero sample landed in the played stream
    j = int(np.flatnonzero(expected)[0])
    i = int(np.flatnonzero(played)[0])
    off = i - j
    assert off >= 0
    np.testing.assert_array_equal(played[off:off + expected.size], expected)
    rest = np.concatenate([played[:off], played[off + expected.size:]])
    assert not rest.any(), "nothing but the interval was played"
    assert played.size - expected.size < ONE_BUFFER_S * rate
    for t in got["playheads"]:  # the cursor stays inside what is played
        assert a - 1e-9 <= t <= b + 1e-9


def test_without_a_device_the_status_bar_says_so(tmp_path, dark_suit):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".asoundrc").write_text('pcm.!default { type hw; card 99 }\n')  # no such card
    got = run_probe(home, dark_suit)
    assert got["selection"] is not None and not got["started"]
    assert got["message"].startswith("Playback unavailable"), got["message"]
