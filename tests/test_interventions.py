"""steve_qt.core.interventions.tables: tables, spans, parsing, checked by hand with a fake adapter."""

import contextlib

import numpy as np
import pytest

from steve_qt.core.interventions import tables as iv
from steve_qt.core.models.adapters import Transcript
from steve_qt.core.errors import Cancelled, SteveError


class FakeAdapter:
    """Says 'a b c d' unedited; an edit or window changes what it says, as scripted."""

    supports_interventions = True
    model_id = "fake"

    def __init__(self):
        self.k = None
        self.calls = []

    @contextlib.contextmanager
    def attention_window(self, k, layers=None):
        self.k = k
        try:
            yield
        finally:
            self.k = None

    def transcribe(self, samples, window=0, edits=None, should_cancel=None):
        self.calls.append((self.k, edits))
        if edits:
            return Transcript(text=edits["said"])
        if self.k is not None and self.k < 10:
            return Transcript(text="a x c")
        return Transcript(text="A b, c d.")

    def num_layers(self, part="encoder"):
        return 2

    def span_removal_edits(self, f0, f1, fill="padding"):
        return {"said": f"a d {f0} {f1} {fill}"}

    def site_dim(self, site):
        if site != "encoder.blocks.0":
            raise SteveError(f"no site {site}")
        return 4

    def steering_edits(self, site, feature, scale, frames=None, sae=None):
        return {"said": f"{'recon' if feature is None else 'steer'} {frames[0]} {frames[1]}"}

    def encoder_lens_edits(self, layer):
        return {"said": f"layer {layer}"}


AUDIO = np.zeros(48000, np.float32)  # 3 s: 150 encoder frames


def test_span_frames_by_hand():
    assert iv.span_frames(0.0, 3.0, 48000) == (0, 150)
    assert iv.span_frames(1.02, 1.40, 48000) == (51, 70)  # 16320 // 320, ceil(22400 / 320)
    assert iv.span_frames(1.0, 1.0, 48000) == (50, 50)  # empty
    assert iv.span_frames(1.01, 1.03, 48000) == (50, 52)  # partly covered frames count
    assert iv.span_frames(31.0, 32.0, 40 * 16000, window=1) == (50, 100)
    for bad in [(2.0, 1.0), (-0.1, 1.0), (1.0, 3.5), (float("nan"), 1.0)]:
        with pytest.raises(SteveError):
            iv.span_frames(*bad, 48000)
    with pytest.raises(SteveError, match="outside window 1"):
        iv.span_frames(10.0, 12.0, 40 * 16000, window=1)


def test_parse_ks_and_layers():
    assert iv.parse_ks("1, 2,75") == [1, 2, 75]
    for bad in ["0", "-3", "a", ""]:
        with pytest.raises(SteveError):
            iv.parse_ks(bad)
    assert iv.parse_layers(None) is None and iv.parse_layers("all") is None
    assert iv.parse_layers("1,0,1") == [0, 1]
    with pytest.raises(SteveError):
        iv.parse_layers("-1")


def test_alignment_text_leaves_out_silence():
    from steve_qt.core.speech.alignment import Alignment, Interval, Tier

    tier = Tier("words", [Interval(0, 0.1, "h#"), Interval(0.1, 0.5, "she"),
                          Interval(0.5, 0.6, ""), Interval(0.6, 1.0, "had")])
    al = Alignment({"words": tier})
    assert iv.alignment_text(al) == "she had"
    assert iv.alignment_text(None) is None


def test_window_sweep_table():
    a = FakeAdapter()
    ref, rows = iv.window_sweep(a, AUDIO, [5, 75], [0], alignment_words="a b c e")
    assert ref == "A b, c d."
    header, table = iv.window_table(rows)
    assert header == ("k", "layers", "transcript", "wer", "diff", "wer_alignment",
                      "diff_alignment")
    # k=5: "a x c" vs "a b c d": b->x, -d: 2/4; vs alignment "a b c e": b->x, -e
    assert table[0] == (5, "0", "a x c", "0.5000", "a [b->x] c [-d]", "0.5000",
                        "a [b->x] c [-e]")
    assert table[1][:5] == (75, "0", "A b, c d.", "0.0000", "a b c d")
    assert a.k is None and [c[0] for c in a.calls] == [None, 5, 75]
    _, rows = iv.window_sweep(a, AUDIO, [5], reference="a x c")
    assert iv.window_table(rows)[0] == iv.WINDOW_HEADER
    with pytest.raises(SteveError):
        iv.window_sweep(a, AUDIO, [0])


def test_span_removal_and_steer_variants():
    a = FakeAdapter()
    rows = iv.span_removal(a, AUDIO, 1.02, 1.40, fill="silence")
    assert [r.row() for r in rows] == [
        ("original", "A b, c d.", "0.0000", "a b c d"),
        # 4 edits (1 insertion + 3 substitutions) beat 2 deletions + 3 insertions
        ("without 1.02-1.40 s (silence)", "a d 51 70 silence", "1.0000",
         "a [+d] [b->51] [c->70] [d->silence]")]
    rows = iv.steer(a, AUDIO, "encoder.blocks.0", 3, 0.0, span=(1.02, 1.40), reference="r")
    assert [r.variant for r in rows] == ["original", "steered"]
    assert rows[1].transcript == "steer 51 70"
    rows = iv.steer(a, AUDIO, "encoder.blocks.0", 3, 0.0, reference="r", sae=FakeSAE())
    assert [(r.variant, r.transcript) for r in rows] == [
        ("original", "r"), ("reconstruction", "recon 0 150"), ("steered", "steer 0 150")]


def test_span_removal_names_the_span_to_10_ms():
    rows = iv.span_removal(FakeAdapter(), AUDIO, 0.719812, 1.02087, fill="padding")
    assert rows[1].variant == "without 0.72-1.02 s (padding)"


class FakeSAE:
    hook_name = "encoder.blocks.0"
    d_sae = 10


def test_bad_features():
    a = FakeAdapter()
    with pytest.raises(SteveError, match="feature 4 does not exist: there are 4 neurons"):
        iv.steer(a, AUDIO, "encoder.blocks.0", 4, 0.0)
    with pytest.raises(SteveError, match="no site"):
        iv.steer(a, AUDIO, "encoder.blocks.9", 0, 0.0)
    with pytest.raises(SteveError, match="there are 10 SAE features"):
        iv.check_feature(a, "encoder.blocks.0", 10, FakeSAE())
    with pytest.raises(SteveError, match="trained on site"):
        iv.check_feature(a, "encoder.blocks.1", 0, FakeSAE())
    with pytest.raises(SteveError, match="encoder .audio frame. sites only"):
        iv.steer(a, AUDIO, "decoder.blocks.0", 0, 0.0, span=(0.1, 0.2))
    with pytest.raises(SteveError, match="finite"):
        iv.steer(a, AUDIO, "encoder.blocks.0", 0, float("inf"))


def test_encoder_lens_rows_and_cancel():
    a = FakeAdapter()
    rows = iv.encoder_lens(a, AUDIO, reference="layer 1")
    assert [(l, v.transcript, v.wer) for l, v in rows] == [(0, "layer 0", 0.5),
                                                          (1, "layer 1", 0.0)]
    with pytest.raises(Cancelled):
        iv.encoder_lens(a, AUDIO, should_cancel=lambda: True)


def test_no_interventions_for_other_models():
    class W2V:
        model_id = "wav2vec2"

    with pytest.raises(SteveError, match="does not support interventions"):
        iv.window_sweep(W2V(), AUDIO, [5])


def test_csv_round_trip(tmp_path):
    import csv

    from steve_qt.core.fileio import write_csv

    p = tmp_path / "t.csv"
    write_csv(p, iv.VARIANT_HEADER, [("original", 'say "x", y', "0.0000", "")])
    with open(p, newline="") as fh:
        assert list(csv.reader(fh)) == [list(iv.VARIANT_HEADER),
                                        ["original", 'say "x", y', "0.0000", ""]]
    with pytest.raises(SteveError, match="exists"):
        write_csv(p, iv.VARIANT_HEADER, [])


class FakeLensAdapter(FakeAdapter):
    """Decoder lens over 3 positions, 2 layers, a 4-token vocabulary written out by hand."""

    probs = np.array([[[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1], [0.25, 0.5, 0.15, 0.1]],
                      [[0.7, 0.1, 0.1, 0.1], [0.0, 0.0, 0.9, 0.1], [0.2, 0.2, 0.5, 0.1]]],
                     np.float32)

    def transcribe(self, samples, window=0, edits=None, should_cancel=None):
        t = super().transcribe(samples, window, edits, should_cancel)
        t.tokens = [0, 1, 2]
        return t

    def decoder_lens(self, samples, tokens, window=0):
        from types import SimpleNamespace

        return SimpleNamespace(tokens=list(tokens), probs=self.probs)

    def token_texts(self, tokens):
        return [["<a>", " b", ",c", '"d'][int(t)] for t in tokens]


def test_lens_cli_writes_both_tables(tmp_path, monkeypatch, dark_suit):
    import csv
    import json

    from steve_qt.cli import main
    from steve_qt.core.models import pipeline

    monkeypatch.setattr(pipeline, "get_adapter", lambda spec=None: FakeLensAdapter())
    out = tmp_path / "lens"
    assert main(["lens", str(dark_suit), "--out", str(out), "--top", "2"]) == 0
    with open(out / "encoder_lens.csv", newline="") as fh:
        enc = list(csv.reader(fh))
    assert enc == [["layer", "transcript", "wer"], ["0", "layer 0", "1.0000"],
                   ["1", "layer 1", "1.0000"]]
    with open(out / "decoder_lens.csv", newline="") as fh:
        dec = list(csv.DictReader(fh))
    assert len(dec) == 6 and list(dec[0]) == list(iv.DECODER_LENS_HEADER)
    # layer 1, position 1: probs (0, 0, .9, .1) -> tokens 2 then 3
    row = dec[4]
    assert (row["layer"], row["position"], row["token"]) == ("1", "1", " b")
    assert json.loads(row["top_tokens"]) == [",c", '"d']
    assert json.loads(row["top_probs"]) == [0.9, 0.1]
    assert main(["lens", str(dark_suit), "--out", str(out)]) == 2  # no overwrite
