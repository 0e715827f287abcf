"""Alignments: TIMIT and TextGrid readers/writers, tier recognition, validation."""

from __future__ import annotations

import codecs
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from steve_qt.core.speech.alignment import (
    Alignment,
    Interval,
    Tier,
    TierNotFound,
    check_alignment,
    find_alignment,
    load_alignment,
    read_textgrid,
    read_timit,
    write_textgrid,
    write_timit,
)
from steve_qt.core.errors import SteveError
from steve_qt.core.warnings import SteveWarning

DATA = Path(__file__).parent / "data" / "alignments"

# she_had.phn in samples at 16 kHz, typed in again here (the reader must divide by 16000).
PHONES = [(0, 2400, "h#"), (2400, 4000, "sh"), (4000, 5600, "iy"), (5600, 6400, "hv"),
          (6400, 8000, "ae"), (8000, 8800, "dcl"), (8800, 9200, "d"), (9200, 11200, "h#")]
WORDS = [(2400, 5600, "she"), (5600, 9200, "had")]


def expected(rows, rate=16000):
    return [Interval(a / rate, b / rate, label) for a, b, label in rows]


def spoken(tier: Tier) -> list[Interval]:
    return [iv for iv in tier.intervals if iv.label]


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def timit_lines(rows) -> str:
    return "".join(f"{a} {b} {label}\n" for a, b, label in rows)


# --- reading: TIMIT and the TextGrid variants agree ---------------------------------------------
def test_read_timit_fixture():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for given in ("she_had.wav", "she_had.phn", "she_had.WRD", "she_had"):
            a = read_timit(DATA / given)
            assert list(a.tiers) == ["phones", "words"]
            assert a.phones.intervals == expected(PHONES)
            assert a.words.intervals == expected(WORDS)
            assert a.text == "She had."
            assert a.source == DATA / "she_had.phn"
    assert a.phones.labels == [r[2] for r in PHONES]
    np.testing.assert_array_equal(a.phones.starts, [r[0] / 16000 for r in PHONES])


def test_timit_upper_case_extensions_and_overlapping_words_kept():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overlapping words are normal in TIMIT: no warning
        a = read_timit(DATA / "overlap.WAV")
    assert a.source == DATA / "overlap.PHN"
    assert a.words.intervals == expected([(1600, 6400, "dark"), (6080, 8640, "suit")])
    assert a.words.intervals[1].start_s < a.words.intervals[0].end_s
    assert a.text == "unrelated"  # a .txt line without sample numbers is taken whole


def textgrid_variants(tmp_path: Path) -> dict[str, Path]:
    long_text = (DATA / "she_had.TextGrid").read_text("utf-8")
    out = {"long": DATA / "she_had.TextGrid", "short": DATA / "she_had_short.TextGrid"}
    for name, prefix, codec in [("utf16be_bom", codecs.BOM_UTF16_BE, "utf-16-be"),
                                ("utf16le_bom", codecs.BOM_UTF16_LE, "utf-16-le"),
                                ("utf16be", b"", "utf-16-be"), ("utf16le", b"", "utf-16-le"),
                                ("utf8_bom", codecs.BOM_UTF8, "utf-8")]:
        p = tmp_path / f"{name}.TextGrid"
        p.write_bytes(prefix + long_text.encode(codec))
        out[name] = p
    crlf = tmp_path / "crlf.TextGrid"
    crlf.write_bytes(long_text.replace("\n", "\r\n").encode("utf-8"))
    out["crlf"] = crlf
    return out


def test_textgrid_formats_and_encodings_match_timit(tmp_path):
    timit = read_timit(DATA / "she_had")
    for name, path in textgrid_variants(tmp_path).items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            a = read_textgrid(path)
        assert list(a.tiers) == ["phones", "words"], name
        assert a.phones.intervals == timit.phones.intervals, name
        assert spoken(a.words) == timit.words.intervals, name
        assert a.words.labels == ["", "she", "had", ""], name  # silences kept as ""
        assert a.duration_s == 0.7 and a.source == path, name
    short = read_textgrid(DATA / "she_had_short.TextGrid")
    assert (short.phones.name, short.words.name) == ("Phone", "Word")  # own names kept


def _read_with_textgrid_package(path: Path) -> dict[str, list[Interval]]:
    import textgrid

    tg = textgrid.TextGrid()
    tg.read(str(path), round_digits=17)
    return {t.name: [Interval(iv.minTime, iv.maxTime, iv.mark) for iv in t]
            for t in tg if isinstance(t, textgrid.IntervalTier)}


def test_reader_agrees_with_textgrid_package(tmp_path):
    variants = textgrid_variants(tmp_path)
    for name in ("long", "short", "utf16be_bom", "utf16le_bom"):
        theirs = _read_with_textgrid_package(variants[name])
        ours = read_textgrid(variants[name])
        assert {t.name: t.intervals for t in ours.tiers.values()} == theirs, name


def test_ipa_textgrid_tiers_points_and_quotes():
    path = DATA / "she_had_ipa.TextGrid"
    with pytest.warns(SteveWarning, match=r"she_had_ipa\.TextGrid: point tier 'bell' ignored"):
        a = read_textgrid(path)
    assert list(a.tiers) == ["words", "phones"]  # file order
    assert a.phones.name == "segments"
    assert a.phones.labels == ["", "ʃ", "iː", "h", "æ", "", "d", ""]
    assert a.words.labels[2] == 'said "had"'
    assert [iv.start_s for iv in a.phones] == [iv.start_s for iv in read_timit(DATA / "she_had").phones]


def test_textgrid_comments_and_free_layout(tmp_path):
    text = ('File type = "ooTextFile"\nObject class = "TextGrid"\n! made by hand\n'
            '0s 1s <exists> 2\n"IntervalTier" "words" 0 1 1 ! type, name, xmin, xmax, size\n'
            '0 1 "hello ! not a comment" \n'
            '"IntervalTier" "other" 0 1 2\n0 0.5 "a" 0.5 1 "multi\nline"\n')
    a = read_textgrid(write(tmp_path / "free.TextGrid", text))
    assert list(a.tiers) == ["words", "other"]
    assert a.words.intervals == [Interval(0.0, 1.0, "hello ! not a comment")]
    assert a.tiers["other"].labels == ["a", "multi\nline"]


# --- round trips --------------------------------------------------------------------------------
def awkward_alignment() -> Alignment:
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.uniform(0.0, 2.0, 9))
    edges = [0.0, *cuts.tolist(), 2.0 + 1e-9 * np.pi]
    labels = ["", "ʃ", "ɪ", 'a "quoted" b', "iː", "tʃ", "", "x", "ɑːɹ", "end"]
    phones = [Interval(a, b, lab) for a, b, lab in zip(edges[:-1], edges[1:], labels)]
    words = [Interval(0.0, edges[3], "ʃɪ"), Interval(edges[3], edges[-1], "word")]
    others = [Interval(0.0, edges[-1], "note")]
    return Alignment({"phones": Tier("phones", phones), "words": Tier("Words", words),
                      "notes": Tier('say "hi"', others)}, duration_s=edges[-1])


def test_textgrid_round_trip_is_exact_non_ascii(tmp_path):
    a = awkward_alignment()
    path = write_textgrid(a, tmp_path / "rt.TextGrid")
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF16_BE)  # non-ASCII labels: UTF-16 with BOM, as Praat
    b = read_textgrid(path)
    assert list(b.tiers) == ["phones", "words", 'say "hi"']
    for key_a, key_b in zip(a.tiers, b.tiers):
        assert b.tiers[key_b] == a.tiers[key_a]  # names, times (bit for bit) and labels
    assert b.duration_s == a.duration_s
    assert _read_with_textgrid_package(path)["phones"] == a.phones.intervals


def test_textgrid_round_trip_ascii_is_plain_text(tmp_path):
    a = read_timit(DATA / "she_had")
    path = write_textgrid(a, tmp_path / "she.TextGrid", duration_s=0.7)
    data = path.read_bytes()
    assert data.isascii() and data.startswith(b'File type = "ooTextFile"\n')
    b = read_textgrid(path)
    assert b.phones == a.phones
    assert spoken(b.words) == a.words.intervals
    assert b.words.intervals[0] == Interval(0.0, 0.15, "")  # the gap before "she" is filled


def test_timit_round_trip_quantises_to_samples(tmp_path):
    a = awkward_alignment()
    a.tiers["phones"].intervals[3] = Interval(a.phones.intervals[3].start_s,
                                              a.phones.intervals[3].end_s, "dh")
    a.text = "She had your dark suit."
    with pytest.warns(SteveWarning) as record:
        paths = write_timit(a, tmp_path / "rt.wav")
    messages = " ".join(str(w.message) for w in record)
    assert "empty labels written as h#" in messages and "'notes'" in messages
    assert [p.name for p in paths] == ["rt.phn", "rt.wrd", "rt.txt"]
    b = read_timit(tmp_path / "rt")
    want = [Interval(round(iv.start_s * 16000) / 16000, round(iv.end_s * 16000) / 16000,
                     iv.label or "h#") for iv in a.phones]
    assert b.phones.intervals == want
    assert b.words.labels == ["ʃɪ", "word"]
    assert b.text == "She had your dark suit."
    assert (tmp_path / "rt.txt").read_text().split()[:2] == ["0", "32000"]

    c = read_timit(DATA / "she_had")
    write_timit(c, tmp_path / "again")
    assert read_timit(tmp_path / "again").tiers == c.tiers
    assert (tmp_path / "again.phn").read_text() == (DATA / "she_had.phn").read_text()


@pytest.mark.skipif(shutil.which("praat") is None, reason="Praat not installed")
def test_praat_opens_written_textgrids(tmp_path):
    script = tmp_path / "dump.praat"
    script.write_text(
        'form Dump\n  sentence File x\nendform\nRead from file: file$\n'
        'n = Get number of tiers\nwriteInfoLine: "tiers ", n\nfor i to n\n'
        '  name$ = Get tier name: i\n  ni = Get number of intervals: i\n  for j to ni\n'
        '    t0 = Get start time of interval: i, j\n    t1 = Get end time of interval: i, j\n'
        '    lab$ = Get label of interval: i, j\n'
        '    appendInfoLine: name$, tab$, fixed$(t0, 20), tab$, fixed$(t1, 20), tab$, lab$, "|"\n'
        '  endfor\nendfor\n', encoding="utf-8")
    a = awkward_alignment()
    path = write_textgrid(a, tmp_path / "for_praat.TextGrid")
    out = subprocess.run(["praat", "--run", str(script), str(path)], capture_output=True,
                         check=True, timeout=60).stdout.decode("utf-8")
    lines = out.splitlines()
    assert lines[0] == "tiers 3"
    rows = [line.rstrip("|").split("\t") for line in "\n".join(lines[1:]).split("|\n") if line]
    praat_phones = [Interval(float(r[1]), float(r[2]), r[3]) for r in rows if r[0] == "phones"]
    assert praat_phones == a.phones.intervals
    assert {r[0] for r in rows} == {"phones", "Words", 'say "hi"'}


# --- TIMIT errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("line, message", [
    ("5600 4000 iy", r"line 3: tier 'phones' interval 3 ends before it starts \(0\.35 s to 0\.25 s\)"),
    ("-16 4000 iy", r"line 3: tier 'phones' interval 3 has a negative time"),
    ("4000 56x0 iy", r"line 3: end sample '56x0' is not a number"),
    ("4000 5600", r"line 3: expected 3 fields .* found 2"),
    ("4000 5600 i y", r"line 3: expected 3 fields .* found 4"),
])
def test_timit_bad_lines_name_file_and_line(tmp_path, line, message):
    rows = timit_lines(PHONES[:2]) + line + "\n" + timit_lines(PHONES[3:])
    path = write(tmp_path / "bad.phn", rows)
    with pytest.raises(SteveError, match=message) as err:
        read_timit(tmp_path / "bad.wav")
    assert str(err.value).startswith(str(path) + ": ")
    assert err.value.path == str(path)


def test_timit_crlf_and_blank_lines(tmp_path):
    write(tmp_path / "crlf.PHN", timit_lines(PHONES).replace("\n", "\r\n") + "\r\n")
    write(tmp_path / "crlf.WRD", timit_lines(WORDS).replace("\n", "\r\n"))
    write(tmp_path / "crlf.TXT", "0 11200 She had.\r\n")
    a = read_timit(tmp_path / "crlf.wav")
    assert a.phones.intervals == expected(PHONES) and a.words.intervals == expected(WORDS)
    assert a.text == "She had."
    write(tmp_path / "crlf.PHN", "\n" + timit_lines(PHONES[:1]) + "\n\nbad line here too\n")
    with pytest.raises(SteveError, match=r"crlf\.PHN: line 5: expected 3 fields"):
        read_timit(tmp_path / "crlf.wav")


def test_timit_missing_files(tmp_path):
    with pytest.raises(SteveError, match=r"nothing: no TIMIT \.phn or \.wrd file"):
        read_timit(tmp_path / "nothing.wav")


def test_timit_overlapping_phones_warn_and_are_kept(tmp_path):
    rows = [(0, 1600, "h#"), (1600, 3300, "s"), (3200, 4800, "iy"), (4800, 6400, "h#")]
    path = write(tmp_path / "ov.phn", timit_lines(rows))
    with pytest.warns(SteveWarning, match=r"ov\.phn: tier 'phones': 1 interval\(s\) overlap.*"
                                          r"interval 3 starts at 0\.2 s"):
        a = read_timit(path)
    assert a.phones.intervals == expected(rows)


def test_latin1_is_read_with_a_warning(tmp_path):
    write(tmp_path / "l1.phn", "0 1600 \xe9\n", encoding="latin-1")
    with pytest.warns(SteveWarning, match=r"l1\.phn: not UTF-8 or UTF-16 text; read as Latin-1"):
        assert read_timit(tmp_path / "l1.phn").phones.labels == ["é"]


# --- TextGrid errors ----------------------------------------------------------------------------
def small_textgrid(intervals: str, name: str = "phones", extra: str = "", n: int | None = None) -> str:
    n = intervals.count('"') // 2 if n is None else n
    return (f'File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1\n<exists>\n'
            f'{2 if extra else 1}\n"IntervalTier"\n"{name}"\n0\n1\n{n}\n{intervals}{extra}')


def test_textgrid_reversed_and_negative_intervals(tmp_path):
    path = write(tmp_path / "rev.TextGrid", small_textgrid('0\n0.5\n"a"\n0.7\n0.6\n"b"\n'))
    with pytest.raises(SteveError, match=r"rev\.TextGrid: line 16: tier 'phones' interval 2 ends "
                                         r"before it starts \(0\.7 s to 0\.6 s\)"):
        read_textgrid(path)
    path = write(tmp_path / "neg.TextGrid", small_textgrid('-0.1\n0.5\n"a"\n'))
    with pytest.raises(SteveError, match=r"neg\.TextGrid: line 13: tier 'phones' interval 1 has a "
                                         r"negative time"):
        read_textgrid(path)


def test_textgrid_zero_length_interval_kept(tmp_path):
    path = write(tmp_path / "zero.TextGrid",
                 small_textgrid('0\n0.5\n"a"\n0.5\n0.5\n"z"\n0.5\n1\n"b"\n'))
    assert read_textgrid(path).phones.labels == ["a", "z", "b"]


@pytest.mark.parametrize("body, message", [
    ('0\nzero\n"a"\n', r"line 15: expected the xmax of interval 1 in tier 'phones', found \"a\""),
    ('0\n0.5\n"a\n', r"line 15: a string is never closed"),
    ('0\n0.5\n', r"the file ends early, while reading the text of interval 1"),
])
def test_textgrid_syntax_errors_name_file_and_line(tmp_path, body, message):
    path = write(tmp_path / "syn.TextGrid", small_textgrid(body, n=1))
    with pytest.raises(SteveError, match=message) as err:
        read_textgrid(path)
    assert err.value.path == str(path)


def test_not_a_textgrid(tmp_path):
    with pytest.raises(SteveError, match=r"x\.TextGrid: not a Praat TextGrid text file"):
        read_textgrid(write(tmp_path / "x.TextGrid", "hello\n"))
    with pytest.raises(SteveError, match=r"holds a Praat Sound, not a TextGrid"):
        read_textgrid(write(tmp_path / "s.TextGrid",
                            'File type = "ooTextFile"\nObject class = "Sound"\n'))
    (tmp_path / "b.TextGrid").write_bytes(b"ooBinaryFile\x08TextGrid")
    with pytest.raises(SteveError, match=r"binary TextGrid files are not supported"):
        read_textgrid(tmp_path / "b.TextGrid")
    with pytest.raises(SteveError, match="file not found"):
        read_textgrid(tmp_path / "missing.TextGrid")


def test_missing_tiers_raise_tier_not_found(tmp_path):
    text = small_textgrid('0\n1\n"hello"\n', name="ORT",
                          extra='"IntervalTier"\n"MAU"\n0\n1\n1\n0\n1\n"h"\n')
    path = write(tmp_path / "mau.TextGrid", text)
    with pytest.raises(TierNotFound, match=r"mau\.TextGrid: no phone or word tier found.*'ORT', "
                                           r"'MAU'") as err:
        read_textgrid(path)
    assert err.value.tier_names == ["ORT", "MAU"]
    assert isinstance(err.value, SteveError)
    a = read_textgrid(path, phone_tier="mau", word_tier="ORT")  # names in any case
    assert list(a.tiers) == ["words", "phones"]
    assert (a.phones.name, a.phones.labels, a.words.labels) == ("MAU", ["h"], ["hello"])
    with pytest.raises(TierNotFound, match=r"no interval tier named 'segs' for the phones; "
                                           r"interval tiers: 'ORT', 'MAU'") as err:
        read_textgrid(path, phone_tier="segs")
    assert err.value.tier_names == ["ORT", "MAU"]
    with pytest.raises(SteveError, match="cannot be both"):
        read_textgrid(path, phone_tier="MAU", word_tier="MAU")


def test_only_point_tiers(tmp_path):
    text = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1\n<exists>\n1\n'
            '"TextTier"\n"tones"\n0\n1\n1\n0.5\n"H*"\n')
    path = write(tmp_path / "pts.TextGrid", text)
    with pytest.warns(SteveWarning, match=r"pts\.TextGrid: point tier 'tones' ignored"):
        with pytest.raises(TierNotFound, match=r"pts\.TextGrid: holds no interval tiers") as err:
            read_textgrid(path)
    assert err.value.tier_names == []


# --- checking against the audio -----------------------------------------------------------------
def test_check_alignment_past_the_end_is_an_error():
    a = read_timit(DATA / "she_had")
    with pytest.raises(SteveError, match=r"she_had\.phn: tier 'phones' interval 8 ends at 0\.7 s, "
                                         r"audio is 0\.6 s long") as err:
        check_alignment(a, 0.6)
    assert err.value.path == str(DATA / "she_had.phn")
    with pytest.raises(SteveError, match=r"interval 7 ends at 0\.575 s, audio is 0\.55 s long "
                                         r"\(and 1 more\)"):
        check_alignment(a, 0.55)


def test_check_alignment_clips_within_one_frame():
    a = read_timit(DATA / "she_had")
    with pytest.warns(SteveWarning, match=r"she_had\.phn: tier 'phones': 1 interval\(s\) end up to "
                                          r"5\.0 ms after the end of the audio \(0\.695 s\), "
                                          r"clipped"):
        b = check_alignment(a, 0.695)
    assert b.phones.intervals[-1] == Interval(0.575, 0.695, "h#")
    assert b.phones.intervals[:-1] == a.phones.intervals[:-1]
    assert b.words == a.words and b.duration_s == 0.695 and b.text == a.text
    assert a.phones.intervals[-1].end_s == 0.7  # the input is not changed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_alignment(a, 0.7 - 1e-12).phones.intervals[-1].end_s == 0.7 - 1e-12
        assert check_alignment(a, 0.9).phones == a.phones  # shorter alignments are fine


def test_check_alignment_rejects_bad_intervals_made_in_code():
    a = Alignment({"phones": Tier("phones", [Interval(0.2, 0.1, "x")])}, source=Path("made.phn"))
    with pytest.raises(SteveError, match=r"made\.phn: tier 'phones' interval 1 ends before"):
        check_alignment(a, 1.0)
    a = Alignment({"words": Tier("words", [Interval(-0.01, 0.1, "x")])})
    with pytest.raises(SteveError, match=r"tier 'words' interval 1 has a negative time"):
        check_alignment(a, 1.0)


# --- finding and loading ------------------------------------------------------------------------
def test_find_alignment_prefers_phn_and_ignores_case(tmp_path):
    write(tmp_path / "A.WAV", "")
    assert find_alignment(tmp_path / "A.WAV") is None
    write(tmp_path / "A.textgrid", (DATA / "she_had.TextGrid").read_text())
    assert find_alignment(tmp_path / "A.WAV") == ("textgrid", tmp_path / "A.textgrid")
    write(tmp_path / "A.Wrd", timit_lines(WORDS))
    assert find_alignment(tmp_path / "A.WAV") == ("textgrid", tmp_path / "A.textgrid")
    write(tmp_path / "A.PHN", timit_lines(PHONES))
    assert find_alignment(tmp_path / "A.WAV") == ("timit", tmp_path / "A.PHN")
    write(tmp_path / "B.flac", "")
    write(tmp_path / "B.wrd", timit_lines(WORDS))
    assert find_alignment(tmp_path / "B.flac") == ("timit", tmp_path / "B.wrd")
    assert find_alignment(tmp_path / "AB.wav") is None


def test_load_alignment_kinds(tmp_path):
    audio = tmp_path / "u.wav"
    assert load_alignment(audio) is None
    with pytest.raises(SteveError, match=r"u: no TextGrid file with this name"):
        load_alignment(audio, kind="textgrid")
    with pytest.raises(SteveError, match=r"unknown alignment kind 'praat'"):
        load_alignment(audio, kind="praat")
    shutil.copy(DATA / "she_had.TextGrid", tmp_path / "u.TextGrid")
    shutil.copy(DATA / "she_had.phn", tmp_path / "u.phn")
    assert load_alignment(audio).source == tmp_path / "u.phn"
    assert load_alignment(audio, kind="textgrid").source == tmp_path / "u.TextGrid"
    assert load_alignment(audio, kind="none") is None
    with pytest.warns(SteveWarning, match="point tier 'bell' ignored"):
        a = load_alignment(audio, path=DATA / "she_had_ipa.TextGrid", duration_s=0.7)
    assert a.phones.name == "segments" and a.duration_s == 0.7
    with pytest.raises(SteveError, match=r"u\.phn: tier 'phones' interval 6 ends at 0\.55 s, "
                                         r"audio is 0\.5 s long \(and 2 more\)"):
        load_alignment(audio, duration_s=0.5)
    with pytest.raises(SteveError, match=r"notes\.csv: unknown alignment format"):
        load_alignment(audio, path=tmp_path / "notes.csv")
    b = load_alignment(None, kind="timit", path=DATA / "she_had.wrd")
    assert b.words.labels == ["she", "had"]
    c = load_alignment(audio, kind="auto", path=DATA / "she_had_short.TextGrid",
                       phone_tier="Word", word_tier="Phone")
    assert c.phones.name == "Word"


# --- the data model -----------------------------------------------------------------------------
def test_tier_lookup_is_half_open_and_takes_the_first():
    tier = Tier("words", [Interval(0.0, 1.0, "a"), Interval(1.0, 1.0, "zero"),
                          Interval(1.0, 2.0, "b"), Interval(1.5, 3.0, "c")])
    assert tier.at(0.0).label == "a"
    assert tier.at(0.999).label == "a"
    assert tier.index_at(1.0) == 2  # the zero-length interval contains no time
    assert tier.at(1.7).label == "b"  # overlap: the first one
    assert tier.at(2.5).label == "c"
    assert tier.at(3.0) is None and tier.index_at(-1) is None
    assert tier.labels == ["a", "zero", "b", "c"]
    np.testing.assert_array_equal(tier.ends, [1.0, 1.0, 2.0, 3.0])
    iv = Interval(1.0, 1.5, "x")
    assert (iv.duration, iv.midpoint) == (0.5, 1.25)
    with pytest.raises(AttributeError):
        iv.label = "y"  # frozen
    assert Tier("w", []).at(0.5) is None


def test_write_textgrid_tiles_tiers_for_praat(tmp_path):
    tier = Tier("phones", [Interval(0.1, 0.2, "a"), Interval(0.2, 0.2, "z"),
                           Interval(0.3, 0.5, "b"), Interval(0.45, 0.6, "c")])
    a = Alignment({"phones": tier}, duration_s=0.8)
    with pytest.warns(SteveWarning) as record:
        path = write_textgrid(a, tmp_path / "tile.TextGrid")
    messages = " ".join(str(w.message) for w in record)
    assert "1 interval(s) of zero length left out" in messages
    assert "1 interval(s) overlapped the one before" in messages
    b = read_textgrid(path)
    assert b.phones.intervals == [Interval(0.0, 0.1, ""), Interval(0.1, 0.2, "a"),
                                  Interval(0.2, 0.3, ""), Interval(0.3, 0.5, "b"),
                                  Interval(0.5, 0.6, "c"), Interval(0.6, 0.8, "")]
    with pytest.raises(SteveError, match=r"interval 4 ends at 0\.6 s, after the end of the "
                                         r"TextGrid \(0\.55 s\)"):
        write_textgrid(a, tmp_path / "short.TextGrid", duration_s=0.55)
