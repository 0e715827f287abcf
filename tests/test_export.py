"""Data export (steve_qt.core.attention.export): interval CSV checked against the .npz arrays by an
independent computation; TextGrid export read back by our reader, the textgrid package and Praat."""

from __future__ import annotations

import csv
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from steve_qt.core.models.adapters import Word
from steve_qt.core.speech.alignment import Alignment, Interval, Tier, read_textgrid
from steve_qt.core.errors import SteveError
from steve_qt.core.attention.export import CSV_COLUMNS, write_interval_csv, write_textgrid_export


# --- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(dark_suit_extraction, dark_suit, tmp_path_factory):
    """dark_suit through tiny.en: the encoder .npz, its CSV, and the utterance."""
    from steve_qt.core.models.npzio import save_npz
    from steve_qt.core.models.pipeline import open_utterance

    audio, ex = dark_suit_extraction
    utt = open_utterance(dark_suit)
    d = tmp_path_factory.mktemp("export")
    npz = save_npz(d / "enc.npz", ex, "encoder", alignment=utt.alignment, audio_path=dark_suit)
    csv_path = write_interval_csv(d / "enc.csv", ex.maps["encoder"], utt.alignment)
    return {"npz": npz, "csv": csv_path, "utt": utt, "ex": ex, "audio": audio}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return rows


def _float(s: str) -> float:
    return float("nan") if s == "" else float(s)


# --- independent recomputation from the raw .npz arrays ----------------------------------------
def _frames_of_intervals(raw, starts, ends) -> np.ndarray:
    """(I, T) 0/1 membership: frame t belongs to interval i when the centre of its receptive
    field, (offset + spf t + field / 2) / rate, lies in [start, end); an interval holding no
    centre gets the frame whose hop-long span around the centre holds its midpoint."""
    T = raw["attention"].shape[-1]
    rate, spf = float(raw["sample_rate"]), float(raw["spf"])
    off, field = float(raw["frame_offset"]), float(raw["receptive_field"])
    centre = (off + spf * np.arange(T) + field / 2) / rate
    member = (centre[None, :] >= starts[:, None]) & (centre[None, :] < ends[:, None])
    for i in np.flatnonzero(~member.any(axis=1)):
        mid = (starts[i] + ends[i]) / 2
        t = int(np.clip(np.floor((mid * rate - off - (field - spf) / 2) / spf), 0, T - 1))
        member[i, t] = True
    return member.astype(np.float64)


def test_csv_agrees_with_npz_weights(real):
    with np.load(real["npz"], allow_pickle=False) as z:
        raw = {k: z[k] for k in z.files}
    W = raw["attention"].astype(np.float64)  # (N, 1, M, Q, K)
    pad = raw["padding_mass"].astype(np.float64)  # (N, M, Q)
    N, _, M, Q, K = W.shape
    starts, ends, labels = raw["phones_start"], raw["phones_end"], raw["phones_label"]
    I = len(starts)
    P = _frames_of_intervals(raw, starts, ends)  # (I, T)
    n = P.sum(axis=1)  # frames per interval
    rows = _read_csv(real["csv"])
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert len(rows) == N * M * I * I
    got = {c: np.array([_float(r[c]) for r in rows]).reshape(N, M, I, I)
           for c in ("mean_weight", "summed_mass", "query_padding")}
    for c in ("layer", "head", "query_index", "key_index", "query_frames", "key_frames"):
        got[c] = np.array([int(r[c]) for r in rows]).reshape(N, M, I, I)
    li, hi, qi, ki = np.meshgrid(range(N), range(M), range(I), range(I), indexing="ij")
    for c, want in (("layer", li), ("head", hi), ("query_index", qi), ("key_index", ki)):
        np.testing.assert_array_equal(got[c], want, err_msg=c)
    np.testing.assert_array_equal(got["query_frames"][0, 0], np.repeat(n[:, None], I, 1))
    np.testing.assert_array_equal(got["key_frames"][0, 0], np.repeat(n[None, :], I, 0))
    # labels and times of the intervals, exactly (written with repr)
    first = rows[:I * I]
    assert [r["key_label"] for r in first[:I]] == [str(s) for s in labels]
    assert [float(r["key_start_s"]) for r in first[:I]] == [float(s) for s in starts]
    assert [float(r["query_end_s"]) for r in first[::I]] == [float(e) for e in ends]
    for layer in range(N):
        for head in range(M):
            A = W[layer, 0, head]  # (Q, K)
            total = (P / n[:, None]) @ A @ P.T  # (I, I): per query frame summed, then averaged
            mean = total / n[None, :]
            padding = (P / n[:, None]) @ pad[layer, head]
            np.testing.assert_allclose(got["summed_mass"][layer, head], total, rtol=1e-5,
                                       atol=1e-7)
            np.testing.assert_allclose(got["mean_weight"][layer, head], mean, rtol=1e-5,
                                       atol=1e-8)
            np.testing.assert_allclose(got["query_padding"][layer, head, :, 0], padding,
                                       rtol=1e-5, atol=1e-8)
            # conservation: summed mass over key intervals, less what was counted twice (a
            # sub-frame interval shares its frame), plus frames of no interval, plus padding = 1
            count = P.sum(axis=0)  # (T,) intervals each frame was given to
            twice = (P / n[:, None]) @ A @ np.maximum(count - 1.0, 0.0)
            outside = (P / n[:, None]) @ A @ (count == 0)
            np.testing.assert_allclose(total.sum(axis=1) - twice + outside + padding, 1.0,
                                       atol=5e-3)


def test_csv_mass_rows_sum_to_one_when_the_tier_tiles_the_frames(tmp_path):
    """Hand-built maps whose phones tile every frame: summed_mass + padding = 1 per query row."""
    from steve_qt.core.attention.maps import AttentionMaps, softmax
    from steve_qt.core.frames import whisper_grid

    rng = np.random.default_rng(1)
    T, N, M = 50, 2, 3
    s = rng.standard_normal((N, 1, M, T, T + 7)).astype(np.float32)
    w = softmax(s)
    maps = AttentionMaps(w[..., :T].astype(np.float16), s[..., :T].astype(np.float16),
                         w[..., T:].sum(-1)[:, 0].astype(np.float32), "encoder", "test", 16000,
                         T * 320, whisper_grid(), whisper_grid())
    edges = [0.0, 0.13, 0.2, 0.41, 0.55, 0.8, 1.0]
    phones = Tier("phones", [Interval(a, b, lab) for a, b, lab in
                             zip(edges[:-1], edges[1:], ["", "ʃ", "ɑː", "ɪ", "t", ""])])
    out = write_interval_csv(tmp_path / "x.csv", maps, Alignment({"phones": phones}))
    rows = _read_csv(out)
    assert len(rows) == N * M * 6 * 6
    sums: dict[tuple, float] = {}
    for r in rows:
        key = (r["layer"], r["head"], r["query_index"])
        sums[key] = sums.get(key, float(r["query_padding"])) + float(r["summed_mass"])
    assert len(sums) == N * M * 6
    np.testing.assert_allclose(list(sums.values()), 1.0, atol=3e-3)  # float16 weights
    assert {r["query_label"] for r in rows} == {"", "ʃ", "ɑː", "ɪ", "t"}


def test_csv_errors(real, tmp_path):
    ex, utt = real["ex"], real["utt"]
    with pytest.raises(SteveError, match="audio frames on both axes"):
        write_interval_csv(tmp_path / "c.csv", ex.maps["cross"], utt.alignment)
    with pytest.raises(SteveError, match="no 'syllables' tier"):
        write_interval_csv(tmp_path / "c.csv", ex.maps["encoder"], utt.alignment, tier="syllables")
    with pytest.raises(SteveError, match="no 'phones' tier"):
        write_interval_csv(tmp_path / "c.csv", ex.maps["encoder"], None)
    assert not list(tmp_path.iterdir())


# --- TextGrid ----------------------------------------------------------------------------------
def _labelled(intervals) -> list[Interval]:
    return [Interval(iv.start_s, iv.end_s, iv.label) for iv in intervals if iv.label]


def _tiles(intervals, end: float) -> bool:
    ivs = list(intervals)
    return ivs[0].start_s == 0.0 and ivs[-1].end_s == end and all(
        a.end_s == b.start_s for a, b in zip(ivs, ivs[1:]))


def test_textgrid_round_trip_real(real, tmp_path):
    utt, ex, audio = real["utt"], real["ex"], real["audio"]
    path = tmp_path / "dark_suit.TextGrid"
    with warnings.catch_warnings(record=True):  # Whisper words may touch or overlap
        warnings.simplefilter("always")
        write_textgrid_export(path, utt.alignment, ex.transcript.words, audio.duration)
    back = read_textgrid(path)
    assert list(back.tiers) == ["phones", "words", "whisper words"]
    for name in ("phones", "words"):
        assert _labelled(back.tiers[name].intervals) == _labelled(utt.alignment.tiers[name]), name
        assert _tiles(back.tiers[name].intervals, audio.duration)
    assert [iv.label for iv in _labelled(back.tiers["whisper words"].intervals)] == \
        [w.text.strip() for w in ex.transcript.words if min(w.end_s, audio.duration) > w.start_s]
    assert back.duration_s == audio.duration


def test_textgrid_exact_words_and_other_readers(tmp_path):
    dur = 2.0
    phones = Tier("phones", [Interval(0.0, 0.3, ""), Interval(0.3, 0.45, "ʃ"),
                             Interval(0.45, 0.7, "iː"), Interval(0.7, dur, "")])
    words = Tier("words", [Interval(0.3, 0.7, "she")])
    model = [Word(0.28, 0.71, " She"), Word(0.9, 1.25, "had"), Word(1.9, 2.3, "ends-late")]
    path = write_textgrid_export(tmp_path / "x.TextGrid", Alignment({"phones": phones,
                                                                     "words": words}), model, dur)
    back = read_textgrid(path)
    assert back.tiers["phones"].intervals == phones.intervals
    assert _labelled(back.tiers["words"].intervals) == words.intervals
    assert _labelled(back.tiers["whisper words"].intervals) == [
        Interval(0.28, 0.71, "She"), Interval(0.9, 1.25, "had"), Interval(1.9, 2.0, "ends-late")]
    assert _tiles(back.tiers["whisper words"].intervals, dur)

    import textgrid  # an independent reader

    tg = textgrid.TextGrid.fromFile(str(path))
    assert [t.name for t in tg.tiers] == ["phones", "words", "whisper words"]
    assert [iv.mark for iv in tg.tiers[0]] == ["", "ʃ", "iː", ""]
    assert tg.maxTime == pytest.approx(dur)


@pytest.mark.skipif(shutil.which("praat") is None, reason="Praat not installed")
def test_praat_opens_the_export(tmp_path):
    path = write_textgrid_export(
        tmp_path / "p.TextGrid",
        Alignment({"phones": Tier("phones", [Interval(0.1, 0.2, "ɑː"), Interval(0.2, 0.4, "ɪ")])}),
        [Word(0.1, 0.4, "hi")], 0.5)
    script = tmp_path / "dump.praat"
    script.write_text('form Dump\n  sentence File x\nendform\nRead from file: file$\n'
                      'n = Get number of tiers\nwriteInfoLine: n\nfor i to n\n'
                      '  name$ = Get tier name: i\n  k = Get number of intervals: i\n'
                      '  lab$ = Get label of interval: i, 2\n'
                      '  appendInfoLine: name$, "|", k, "|", lab$\nendfor\n', encoding="utf-8")
    out = subprocess.run(["praat", "--run", str(script), str(path)], capture_output=True,
                         check=True, timeout=60).stdout.decode("utf-8").split("\n")
    assert out[:3] == ["2", "phones|4|ɑː", "whisper words|3|hi"]


# --- safety ------------------------------------------------------------------------------------
def test_no_overwrite_without_force_and_clear_errors(real, tmp_path):
    maps, al = real["ex"].maps["encoder"], real["utt"].alignment
    words = real["ex"].transcript.words
    for name, write in (
        ("a.csv", lambda p, f: write_interval_csv(p, maps, al, force=f)),
        ("a.TextGrid", lambda p, f: write_textgrid_export(p, al, words, real["audio"].duration,
                                                          force=f)),
    ):
        p = tmp_path / name
        p.write_text("precious")
        with pytest.raises(SteveError, match="exists.*--force") as err:
            write(p, False)
        assert str(p) in str(err.value)
        assert p.read_text() == "precious"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write(p, True)
        assert p.read_bytes() != b"precious"
        with pytest.raises(SteveError, match="does not exist"):
            write(tmp_path / "nowhere" / name, False)
        with pytest.raises(SteveError, match="is a folder"):
            write(tmp_path, True)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.TextGrid", "a.csv"]


def test_textgrid_errors_name_the_target_not_a_temporary_file(tmp_path):
    late = Alignment({"phones": Tier("phones", [Interval(0.0, 3.0, "a")])})
    target = tmp_path / "t.TextGrid"
    with pytest.raises(SteveError) as err:
        write_textgrid_export(target, late, [], 1.0)
    assert str(err.value).startswith(f"{target}: ") and ".part" not in str(err.value)
    assert not list(tmp_path.iterdir())
    with pytest.raises(SteveError, match="nothing to write"):
        write_textgrid_export(target, None, [], 1.0)
