"""Bad inputs: every row gives a one-line error naming the file and the problem, never a traceback.

The same table is in the README's troubleshooting section. Rows are checked through the CLI
(`steve_qt.cli.main`, exit status 2, stderr one line); the GUI shows the same messages in a dialog
(tests/gui).
"""

from __future__ import annotations

import re
import shutil
import string
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audio_helpers import tone, write_wav
from steve_qt.cli import main
from steve_qt.core.speech.alignment import (Alignment, Interval, Tier, read_textgrid, read_timit,
                                     write_textgrid, write_timit)
from steve_qt.core.errors import SteveError
from steve_qt.core.models.pipeline import open_utterance
from steve_qt.core.warnings import SteveWarning

PHN = "0 3200 h#\n3200 6400 s\n6400 16000 iy\n"
WRD = "3200 16000 see\n"


def _wav(d: Path, name="a.wav", seconds=1.0, rate=16000):
    return write_wav(d / name, tone(seconds, rate), rate)


def _timit(d: Path, phn: str, wrd: str = WRD, name="a"):
    wav = _wav(d, f"{name}.wav")
    (d / f"{name}.phn").write_bytes(phn.encode())
    (d / f"{name}.wrd").write_bytes(wrd.encode())
    return wav


def _textgrid(d: Path, text: str, encoding="utf-8", name="a"):
    wav = _wav(d, f"{name}.wav")
    (d / f"{name}.TextGrid").write_bytes(text.encode(encoding))
    return wav


def _tg(xmax=1.0, tiers=None) -> str:
    tiers = tiers or [("phones", [(0, 0.2, ""), (0.2, 0.4, "s"), (0.4, xmax, "iy")]),
                      ("words", [(0, 0.2, ""), (0.2, xmax, "see")])]
    out = ['File type = "ooTextFile"', 'Object class = "TextGrid"', "", "xmin = 0",
           f"xmax = {xmax}", "tiers? <exists>", f"size = {len(tiers)}", "item []:"]
    for k, (name, ivs) in enumerate(tiers, 1):
        out += [f"    item [{k}]:", '        class = "IntervalTier"', f'        name = "{name}"',
                "        xmin = 0", f"        xmax = {xmax}",
                f"        intervals: size = {len(ivs)}"]
        for j, (a, b, lab) in enumerate(ivs, 1):
            out += [f"        intervals [{j}]:", f"            xmin = {a}", f"            xmax = {b}",
                    f'            text = "{lab}"']
    return "\n".join(out) + "\n"


# (row id, builder(tmp) -> (audio path, file the message must name), words the message must hold)
ERROR_ROWS = [
    ("empty file", lambda d: _bytes(d, "e.wav", b""), "empty"),
    ("truncated WAV header", lambda d: _cut(d, 30), "not a readable audio file"),
    ("truncated WAV data", lambda d: _cut(d, 44 + 1000), "truncated"),
    ("text file named .wav", lambda d: _bytes(d, "t.wav", b"hello\n" * 50), "not a readable audio"),
    ("WAV with 0 samples", lambda d: _same(write_wav(d / "z.wav", np.zeros(0, np.float32), 16000)),
     "no samples"),
    ("TIMIT reversed interval", lambda d: _phn(d, "0 3200 h#\n6400 3200 s\n"), "ends before it starts"),
    ("TIMIT negative time", lambda d: _phn(d, "-320 3200 h#\n3200 6400 s\n"), "negative"),
    ("TIMIT past the end", lambda d: _phn(d, "0 3200 h#\n3200 24000 s\n"), "audio is"),
    ("TIMIT non-numeric field", lambda d: _phn(d, "0 3200 h#\n3200 abc s\n"), "line 2"),
    ("TIMIT wrong field count", lambda d: _phn(d, "0 3200\n"), "line 1"),
    ("TextGrid missing tiers", lambda d: _tgrow(d, _tg(tiers=[("notes", [(0, 1.0, "x")])])),
     "notes"),
    ("TextGrid xmax beyond audio", lambda d: _tgrow(d, _tg(xmax=2.0)), "audio is"),
    ("TextGrid garbage", lambda d: _tgrow(d, "File type = \"ooTextFile\"\nnonsense\n"), "TextGrid"),
    ("npz with object arrays", lambda d: _evil_npz(d), "refused"),
    (".pt that is not a checkpoint", lambda d: _model(d, "notes.pt", b"hello world"),
     "not a PyTorch checkpoint"),
    (".pt holding pickled code", lambda d: _model(d, "evil.pt", None), "refused"),
]


def _same(p):
    return p, p


def _bytes(d, name, data):
    p = d / name
    p.write_bytes(data)
    return p, p


def _cut(d, n):
    good = _wav(d, "good.wav")
    p = d / "cut.wav"
    p.write_bytes(good.read_bytes()[:n])
    return p, p


def _phn(d, phn):
    wav = _timit(d, phn)
    return wav, d / "a.phn"


def _tgrow(d, text):
    wav = _textgrid(d, text)
    return wav, d / "a.TextGrid"


def _evil_npz(d):
    p = d / "evil.npz"
    np.savez(p, format=np.array("steve_qt.attention"), attention=np.array([{}], dtype=object))
    return p, p


def _model(d, name, data):
    import torch

    p = d / name
    if data is None:
        class Evil:
            def __reduce__(self):
                return (print, ("this must never run",))

        torch.save({"dims": {}, "model_state_dict": {}, "x": Evil()}, p)
    else:
        p.write_bytes(data)
    return p, p


@pytest.mark.parametrize("row", ERROR_ROWS, ids=[r[0] for r in ERROR_ROWS])
def test_bad_input_row(row, tmp_path, capsys):
    _id, build, words = row
    target, named = build(tmp_path)
    if target.suffix == ".npz":
        argv = ["info", str(target)]
    elif target.suffix == ".pt":
        argv = ["extract", str(_wav(tmp_path)), "--model", f"whisper:{target}",
                "--out", str(tmp_path / "o.npz")]
    else:
        argv = ["extract", str(target), "--out", str(tmp_path / "o.npz")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("steve-qt: error: ") and err.count("\n") == 1, err
    assert str(named) in err and words in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


# rows that must load (possibly with a warning), checked without running a model
def _ok_rows():
    quote = _tg(tiers=[("phones", [(0, 0.5, 'say "ʃ"'), (0.5, 1.0, "iː")]),
                       ("words", [(0, 1.0, "naïve")])])
    return [
        ("TIMIT CRLF", lambda d: _timit(d, PHN.replace("\n", "\r\n"), WRD.replace("\n", "\r\n")),
         None),
        ("TIMIT overlapping words", lambda d: _timit(d, PHN, "3200 9000 a\n6400 16000 b\n"), None),
        ("TIMIT past the end within a frame", lambda d: _timit(d, "0 3200 h#\n3200 16200 s\n"),
         "clipped"),
        ("TextGrid UTF-16 with BOM", lambda d: _textgrid(d, _tg(), "utf-16"), None),
        ("TextGrid UTF-16 without BOM", lambda d: _textgrid(d, _tg(), "utf-16-le"), None),
        ("TextGrid short format", lambda d: _textgrid(d, _short_tg()), None),
        ("TextGrid quotes and non-ASCII", lambda d: _textgrid(d, quote.replace('say "ʃ"',
                                                                              'say ""ʃ""'),
                                                              "utf-16"), None),
        ("TextGrid point tier", lambda d: _textgrid(d, _with_point_tier()), "point tier"),
    ]


def _short_tg():
    return ('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1\n<exists>\n2\n'
            '"IntervalTier"\n"phones"\n0\n1\n3\n0\n0.2\n""\n0.2\n0.4\n"s"\n0.4\n1\n"iy"\n'
            '"IntervalTier"\n"words"\n0\n1\n2\n0\n0.2\n""\n0.2\n1\n"see"\n')


def _with_point_tier():
    base = _tg().replace("<exists>\nsize = 2", "<exists>\nsize = 3")
    return base + ('    item [3]:\n        class = "TextTier"\n        name = "tones"\n'
                   "        xmin = 0\n        xmax = 1\n        points: size = 1\n"
                   '        points [1]:\n            number = 0.5\n            mark = "H*"\n')


@pytest.mark.parametrize("row", _ok_rows(), ids=[r[0] for r in _ok_rows()])
def test_valid_input_row(row, tmp_path, recwarn):
    _id, build, warning = row
    wav = build(tmp_path)
    utt = open_utterance(wav)
    assert utt.alignment is not None and utt.alignment.phones is not None
    assert len(utt.alignment.phones.intervals) >= 2
    msgs = [str(w.message) for w in recwarn.list if issubclass(w.category, SteveWarning)]
    if warning:
        assert any(warning in m for m in msgs), msgs
    else:
        assert not msgs, msgs
    if "quotes" in _id:
        assert utt.alignment.phones.intervals[0].label == 'say "ʃ"'
        assert utt.alignment.words.intervals[0].label == "naïve"


@pytest.mark.parametrize("subtype,channels,rate", [("PCM_U8", 1, 16000), ("PCM_24", 1, 16000),
                                                   ("FLOAT", 1, 16000), ("PCM_16", 6, 16000),
                                                   ("PCM_16", 1, 8000), ("PCM_16", 1, 96000)])
def test_valid_audio_formats_open(tmp_path, subtype, channels, rate):
    p = write_wav(tmp_path / "x.wav", tone(0.5, rate, channels=channels), rate, subtype)
    utt = open_utterance(p)
    assert utt.audio.num_channels == channels and abs(len(utt.audio.samples) - 8000) <= 1


def test_ten_ms_of_audio_gives_one_whisper_frame(tmp_path, whisper_adapter):
    p = write_wav(tmp_path / "short.wav", tone(0.01, 16000), 16000)
    out = tmp_path / "s.npz"
    assert main(["extract", str(p), "--out", str(out)]) == 0
    with np.load(out, allow_pickle=False) as z:
        assert z["attention"].shape == (4, 1, 6, 1, 1)


def test_long_audio_windows_via_cli(tmp_path, whisper_adapter, capsys):
    rng = np.random.default_rng(1)
    p = write_wav(tmp_path / "long.wav", 0.01 * rng.standard_normal(16000 * 31), 16000)
    out = tmp_path / "w.npz"
    assert main(["extract", str(p), "--window", "1", "--out", str(out)]) == 0
    assert "window 1 of 2 (30\u201360 s)" in capsys.readouterr().out
    assert main(["extract", str(p), "--window", "5", "--out", str(tmp_path / "x.npz")]) == 2
    assert "window 5 does not exist" in capsys.readouterr().err


def test_hub_id_offline_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    wav = _wav(tmp_path)
    assert main(["extract", str(wav), "--model", "wav2vec2:nobody/no-such-model",
                 "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "nobody/no-such-model" in err and err.count("\n") == 1


def test_named_whisper_offline_is_a_clear_error(tmp_path, monkeypatch, capsys):
    def no_network(*_a, **_k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    wav = _wav(tmp_path)
    assert main(["extract", str(wav), "--model", "whisper:base.en",
                 "--out", str(tmp_path / "o.npz")]) == 2
    assert "embedded model works offline" in capsys.readouterr().err


def test_inputs_are_never_written_next_to(tmp_path, whisper_adapter, dark_suit):
    d = tmp_path / "in"
    d.mkdir()
    for f in dark_suit.parent.glob("dark_suit.*"):
        shutil.copy(f, d)
    before = sorted(p.name for p in d.iterdir())
    out = tmp_path / "out.npz"
    assert main(["extract", str(d / "dark_suit.wav"), "--out", str(out)]) == 0
    assert sorted(p.name for p in d.iterdir()) == before


# --- fuzzing the readers --------------------------------------------------------------------------
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid(alignment: Alignment) -> None:
    for tier in alignment.tiers.values():
        for iv in tier.intervals:
            assert np.isfinite(iv.start_s) and np.isfinite(iv.end_s)
            assert 0 <= iv.start_s <= iv.end_s
            assert isinstance(iv.label, str)


timit_lines = st.lists(st.tuples(st.integers(-5, 50000), st.integers(-5, 50000),
                                 st.text(string.printable, max_size=6)), max_size=8)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300),
                      timit_lines.map(lambda rows: "\n".join(f"{a} {b} {c}" for a, b, c in rows)
                                      .encode("utf-8", "replace"))))
def test_fuzz_timit_reader(tmp_path, data):
    (tmp_path / "f.phn").write_bytes(data)
    (tmp_path / "f.wrd").write_bytes(b"")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SteveWarning)
        try:
            _valid(read_timit(tmp_path / "f.phn"))
        except SteveError:
            pass


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode),
                      st.sampled_from([_tg(), _short_tg(), _with_point_tier()]).flatmap(
                          lambda t: st.integers(0, len(t)).map(lambda n: t[:n].encode()))))
def test_fuzz_textgrid_reader(tmp_path, data):
    p = tmp_path / "f.TextGrid"
    p.write_bytes(data)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SteveWarning)
        try:
            _valid(read_textgrid(p))
        except SteveError:
            pass


labels = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=5)


@st.composite
def alignments(draw):
    bounds = sorted(set(draw(st.lists(st.integers(1, 47999), min_size=1, max_size=10))))
    edges = [0, *bounds, 48000]
    phones = [Interval(a / 16000, b / 16000, draw(labels)) for a, b in zip(edges, edges[1:])]
    words = [Interval(phones[0].start_s, phones[-1].end_s, draw(labels.filter(bool)))]
    return Alignment({"phones": Tier("phones", phones), "words": Tier("words", words)},
                     duration_s=3.0)


@FUZZ
@given(a=alignments())
def test_fuzz_textgrid_round_trip(tmp_path, a):
    p = tmp_path / "r.TextGrid"
    if p.exists():
        p.unlink()
    write_textgrid(a, p)
    b = read_textgrid(p)
    for key in ("phones", "words"):
        assert b.tiers[key].intervals == a.tiers[key].intervals


@FUZZ
@given(a=alignments())
def test_fuzz_timit_round_trip(tmp_path, a):
    import warnings

    for f in tmp_path.glob("r.*"):
        f.unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SteveWarning)  # empty labels -> h#, spaces -> _
        write_timit(a, tmp_path / "r")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", SteveWarning)
        b = read_timit(tmp_path / "r.phn")
    # the one warning a round trip may give: a word file left empty by the writer (a word label
    # it cannot write), which the reader then ignores, saying so
    for w in seen:
        assert "r.wrd: file holds no intervals; ignored" in str(w.message), str(w.message)
    if seen:
        assert not b.tiers.get("words")
    got = b.tiers["phones"].intervals
    assert [(iv.start_s, iv.end_s) for iv in got] == \
        [(iv.start_s, iv.end_s) for iv in a.tiers["phones"].intervals]


@pytest.fixture(scope="module")
def five_minutes(tmp_path_factory):
    rng = np.random.default_rng(5)
    d = tmp_path_factory.mktemp("long")
    return write_wav(d / "five_minutes.wav", 0.01 * rng.standard_normal(16000 * 300), 16000)


def test_five_minutes_whisper_windows(tmp_path, five_minutes, whisper_adapter, capsys):
    out = tmp_path / "w9.npz"
    assert main(["extract", str(five_minutes), "--window", "9", "--out", str(out)]) == 0
    assert "window 9 of 10 (270\u2013300 s)" in capsys.readouterr().out
    with np.load(out, allow_pickle=False) as z:
        assert z["attention"].shape[3] == 1500 and int(z["frame_offset"]) == 9 * 480000


def test_five_minutes_wav2vec2_is_refused_with_the_memory_it_needs(tmp_path, five_minutes, capsys):
    from test_wav2vec2 import save_tiny

    model = tmp_path / "w2v"
    save_tiny(model, ctc=False)
    capsys.readouterr()  # drop save_pretrained's progress bar
    assert main(["extract", str(five_minutes), "--model", f"wav2vec2:{model}",
                 "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert str(five_minutes) in err or "wav2vec" in err
    assert re.search(r"\d", err) and ("GiB" in err or "bytes" in err or "GB" in err), err
    assert err.count("\n") == 1


def test_timit_blank_labels_round_trip(tmp_path):
    """Found by the fuzz test: a label of only spaces lost its field ('0 48000 '), and the file
    could not be read back. Blank phone labels are written as h#; blank words are left out."""
    import warnings

    from steve_qt.core.speech.alignment import Alignment, Interval, Tier

    a = Alignment(tiers={"phones": Tier("phones", [Interval(0.0, 1 / 16000, ""),
                                                   Interval(1 / 16000, 3.0, " ")]),
                         "words": Tier("words", [Interval(0.0, 3.0, " ")])}, duration_s=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SteveWarning)
        write_timit(a, tmp_path / "r")
    assert (tmp_path / "r.phn").read_text() == "0 1 h#\n1 48000 h#\n"
    assert (tmp_path / "r.wrd").read_text() == ""
    with pytest.warns(SteveWarning, match="r.wrd: file holds no intervals"):  # the empty words
        back = read_timit(tmp_path / "r.phn")
    assert [iv.label for iv in back.tiers["phones"].intervals] == ["h#", "h#"]
