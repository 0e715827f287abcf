"""ELAN .eaf alignments: written by pympi with overlaps and gaps, read back to the same
intervals; found beside the audio; named tiers; bad files are one line; the export writes one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pympi
import pytest
import soundfile as sf

from steve_qt.core.errors import SteveError
from steve_qt.core.speech.alignment import (Alignment, Interval, Tier, TierNotFound,
                                            find_alignment, load_alignment, read_eaf, write_eaf)

PHONES = [(0, 120, "h#"), (120, 250, "s"), (240, 400, "iy"), (520, 610, "t")]  # overlap, gap
WORDS = [(120, 400, "see"), (300, 610, "tea"), (700, 900, "")]
NOTES = [(50, 80, "cough")]


def write_pympi(path, tiers):
    eaf = pympi.Elan.Eaf()
    eaf.remove_tier("default")
    for name, rows in tiers.items():
        eaf.add_tier(name)
        for a, b, v in rows:
            eaf.add_annotation(name, a, b, v)
    eaf.to_file(str(path))
    return path


def as_rows(tier):
    return [(round(iv.start_s * 1000), round(iv.end_s * 1000), iv.label) for iv in tier]


def test_pympi_file_reads_back_with_overlaps_and_gaps(tmp_path):
    p = write_pympi(tmp_path / "u.eaf", {"phones": PHONES, "words": WORDS, "notes": NOTES})
    with pytest.warns(Warning, match="overlap"):
        al = read_eaf(p)
    assert list(al.tiers) == ["phones", "words", "notes"]
    assert as_rows(al.phones) == PHONES and as_rows(al.words) == WORDS
    assert as_rows(al.tiers["notes"]) == NOTES
    assert al.phones.intervals[1] == Interval(0.12, 0.25, "s")


def test_named_tiers_and_reference_tiers(tmp_path):
    eaf = pympi.Elan.Eaf()
    eaf.remove_tier("default")
    eaf.add_tier("segs")
    for a, b, v in [(0, 100, "a"), (100, 200, "b")]:
        eaf.add_annotation("segs", a, b, v)
    eaf.add_linguistic_type("sym", "Symbolic_Association", False)
    eaf.add_tier("gloss", ling="sym", parent="segs")
    eaf.add_ref_annotation("gloss", "segs", 50, "A")
    eaf.add_tier("lex")
    eaf.add_annotation("lex", 0, 200, "ab")
    p = tmp_path / "x.eaf"
    eaf.to_file(str(p))
    al = read_eaf(p, phone_tier="segs", word_tier="lex")
    assert list(al.tiers) == ["phones", "words"]  # the reference tier has no times of its own
    assert al.phones.name == "segs" and as_rows(al.words) == [(0, 200, "ab")]
    with pytest.raises(TierNotFound, match="no interval tier named 'phonez'"):
        read_eaf(p, phone_tier="phonez")


def test_no_time_aligned_tier_is_one_line(tmp_path, capsys):
    from steve_qt.cli import main

    eaf = pympi.Elan.Eaf()
    p = tmp_path / "u.eaf"
    eaf.to_file(str(p))  # only ELAN's empty default tier
    with pytest.raises(SteveError, match="no time-aligned tier"):
        read_eaf(p)
    sf.write(tmp_path / "u.wav", np.zeros(16000, np.float32), 16000)
    assert main(["acoustics", str(tmp_path / "u.wav"), "--out", str(tmp_path / "t.csv")]) == 0
    capsys.readouterr()
    # the same file found beside the audio by a command that reads alignments
    assert main(["phones", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no time-aligned tier" in err
    (tmp_path / "bad.eaf").write_text("<ANNOTATION_DOCUMENT")
    with pytest.raises(SteveError, match="not a readable ELAN file"):
        read_eaf(tmp_path / "bad.eaf")


def test_found_beside_the_audio_and_write_round_trip(tmp_path):
    sf.write(tmp_path / "u.wav", np.zeros(16000, np.float32), 16000)
    write_pympi(tmp_path / "u.EAF", {"phones": PHONES[:2], "words": WORDS[:1]})
    kind, path = find_alignment(tmp_path / "u.wav")
    assert kind == "eaf" and path.name == "u.EAF"
    al = load_alignment(tmp_path / "u.wav", duration_s=1.0)
    assert as_rows(al.phones) == PHONES[:2]
    tiers = {"phones": Tier("phones", [Interval(0.0, 0.1234, "a"), Interval(0.1, 0.3, "b"),
                                       Interval(0.5, 0.6, "c")]),
             "words": Tier("words", [Interval(0.0, 0.6, "abc")])}
    out = tmp_path / "w.eaf"
    write_eaf(Alignment(tiers), out)
    back = pympi.Elan.Eaf(str(out))  # pympi reads what we wrote
    assert back.get_annotation_data_for_tier("phones") == [(0, 123, "a"), (100, 300, "b"),
                                                           (500, 600, "c")]
    with pytest.warns(Warning, match="overlap"):
        again = read_eaf(out)
    assert as_rows(again.phones) == [(0, 123, "a"), (100, 300, "b"), (500, 600, "c")]


def test_extract_reads_and_writes_eaf(tmp_path):
    """The issue's command: an .eaf given with named tiers; the export writes one back."""
    import subprocess
    import sys

    SAMPLES = Path(__file__).resolve().parents[1] / "samples"
    from steve_qt.core.speech.alignment import read_textgrid

    tg = read_textgrid(SAMPLES / "dark_suit.TextGrid")
    src = tmp_path / "x.eaf"
    write_eaf(Alignment({"segs": Tier("segs", tg.phones.intervals),
                         "lex": Tier("lex", tg.words.intervals)}), src)
    out = tmp_path / "x.npz"
    back = tmp_path / "back.eaf"
    r = subprocess.run([sys.executable, "-m", "steve_qt.cli", "extract",
                        str(SAMPLES / "dark_suit.wav"), "--alignment-file", str(src),
                        "--phone-tier", "segs", "--word-tier", "lex", "--out", str(out),
                        "--eaf", str(back)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    al = read_eaf(back, phone_tier="segs", word_tier="lex")
    assert [iv.label for iv in al.phones] == tg.phones.labels
    assert np.allclose(al.phones.starts, np.round(tg.phones.starts * 1000) / 1000)
    assert any("words" in name for name in al.tiers if name not in ("phones", "words"))
