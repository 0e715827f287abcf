"""textdiff: WER and word diff on examples worked by hand."""

import math

from steve_qt.core.speech.textdiff import format_diff, normalise_words, wer, word_diff


def test_normalise_lower_case_and_punctuation():
    assert normalise_words("Hello, World!  It's   ok.") == ["hello", "world", "it's", "ok"]
    assert normalise_words("--") == []


def test_two_substitutions():
    ref = "She had your dark suit in greasy wash water all year."
    hyp = "She had your dog suit and greasy wash water all year."
    ops = word_diff(ref, hyp)
    assert [o for o in ops if o[0] != "equal"] == [("substitute", "dark", "dog"),
                                                   ("substitute", "in", "and")]
    assert len(ops) == 11
    assert wer(ref, hyp) == 2 / 11
    assert format_diff(ops).startswith("she had your [dark->dog] suit [in->and] greasy")


def test_deletion_and_insertion():
    assert word_diff("a b c", "a c") == [("equal", "a", "a"), ("delete", "b", None),
                                         ("equal", "c", "c")]
    assert wer("a b c", "a c") == 1 / 3
    assert word_diff("a b", "a x b") == [("equal", "a", "a"), ("insert", None, "x"),
                                         ("equal", "b", "b")]
    assert wer("a b", "a x b") == 0.5
    assert format_diff(word_diff("a b c", "a x c d")) == "a [b->x] c [+d]"


def test_swapped_words_cost_two():
    # d[2][2] = 2: two substitutions (preferred over delete + insert of equal cost)
    assert word_diff("a b", "b a") == [("substitute", "a", "b"), ("substitute", "b", "a")]
    assert wer("a b", "b a") == 1.0


def test_empty_sides():
    assert wer("", "") == 0.0
    assert math.isinf(wer("", "x"))
    assert wer("a b c d", "") == 1.0
    assert word_diff("a b", "") == [("delete", "a", None), ("delete", "b", None)]
    assert wer("Hello, world!", "hello world") == 0.0


def test_more_errors_than_words():
    # ref 1 word, hyp 3 other words: 1 substitution + 2 insertions
    assert wer("a", "x y z") == 3.0
