"""A feature index of a decoder (tokens) site: examples are tokens of the transcript with their
position and the time of their word (Whisper's word timings), not frames; word statistics
replace phone statistics."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
from steve_qt.core.speech.textdiff import token_words

SITE = "decoder.blocks.0.mlp.1"


def test_token_words_matches_characters():
    toks = ["<|startoftranscript|>", "<|en|>", " She", " had", " your", " d", "ark", " suit",
            ".", "<|endoftext|>"]
    words = [" She", " had", " your", " dark", " suit."]
    assert token_words(toks, words) == [-1, -1, 0, 1, 2, 3, 3, 4, 4, -1]
    # text that differs (a word the timing merged differently) still matches by blocks
    assert token_words([" ice", "-", "cream"], [" ice-cream"]) == [0, 0, 0]
    assert token_words([" a", " b"], []) == [-1, -1]


@pytest.fixture(scope="module")
def token_index(tmp_path_factory):
    from steve_qt.cli import main

    root = tmp_path_factory.mktemp("tokens")
    corpus = root / "c"
    corpus.mkdir()
    for stem in ("dark_suit", "oily_rag"):
        for ext in (".wav", ".phn", ".wrd"):
            shutil.copy(SAMPLES / f"{stem}{ext}", corpus / f"{stem}{ext}")
    out = root / "idx"
    assert main(["features", "index", str(corpus), "--site", SITE, "--out", str(out),
                 "--jobs", "1", "--top-k", "2", "--cache", str(root / "cache"),
                 "--acoustics", "--min-files", "1", "--min-frames", "1"]) == 0
    return corpus, out


def test_decoder_site_rows_name_a_token_and_its_word_time(token_index, whisper_adapter):
    corpus, out = token_index
    rows = list(csv.DictReader((out / "top_examples.csv").open()))
    assert list(rows[0]) == ["feature", "rank", "file", "position", "token", "time_s",
                             "activation", "word"]
    assert not (out / "phone_selectivity.csv").exists()
    assert (out / "word_selectivity.csv").exists()
    assert not (out / "acoustic_correlation.csv").exists()  # a tokens site has no frame times
    assert "a tokens site" in (out / "summary.txt").read_text()
    # independent: the model's own transcript and word timings for each file
    from steve_qt.core.speech.audio import load_audio

    truth = {}
    for wav in sorted(corpus.glob("*.wav")):
        ex = whisper_adapter.extract(load_audio(wav).samples, components=(), sites=(SITE,))
        truth[wav.name] = ex.transcript
    checked = 0
    for r in rows[:400]:
        tr = truth[r["file"]]
        pos = int(r["position"])
        assert r["token"] == tr.token_texts[pos]
        text = r["token"].strip()
        if text.startswith("<|"):
            assert r["time_s"] == "" and r["word"] == ""  # special tokens belong to no word
            continue
        word = next(w for w in tr.words if text in w.text and r["word"] == w.text.strip())
        assert float(r["time_s"]) == pytest.approx(word.start_s, abs=5e-4)
        checked += 1
    assert checked > 20
    # the old mapping gave a token position a frame time and a phone: no phone column now
    assert all("phone" not in r for r in rows)


@pytest.fixture(scope="module")
def whisper_adapter():
    from steve_qt.core.models.pipeline import get_adapter

    return get_adapter("whisper")
