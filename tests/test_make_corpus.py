"""samples/make_corpus.py: a TIMIT-layout espeak-ng corpus, deterministic, readable by steve_qt."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "samples" / "make_corpus.py"


def _load():
    spec = importlib.util.spec_from_file_location("make_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


mc = _load()


def test_plan_is_seeded_and_speakers_differ():
    a, b, c = mc.plan(20, seed=0), mc.plan(20, seed=0), mc.plan(20, seed=1)
    assert a == b and a != c
    ids = [s.id for s in a.speakers]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert len({s.voice.split("+")[0] for s in a.speakers}) == 5  # five accents
    assert len({s.voice for s in a.speakers}) >= 5
    assert all(130 <= s.rate <= 150 and 35 <= s.pitch <= 65 for s in a.speakers)
    assert all(sorted(order) == list(range(len(mc.HARVARD))) for order in a.orders)
    assert len(mc.plan(1000).speakers) == 34  # 30 files per speaker beyond 8 speakers
    assert len(mc.HARVARD) == 80 and len(set(mc.HARVARD)) == 80


def test_corpus_layout_alignments_and_tables(synthetic_corpus):
    from steve_qt.core.features.corpus import find_audio_files
    from steve_qt.core.models.pipeline import open_utterance

    files = find_audio_files(synthetic_corpus)
    assert len(files) == 8
    with open(synthetic_corpus / "utterances.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with open(synthetic_corpus / "speakers.csv", encoding="utf-8") as fh:
        speakers = {r["speaker"]: r for r in csv.DictReader(fh)}
    assert sorted(r["file"] for r in rows) == sorted(str(f.relative_to(synthetic_corpus)) for f in files)
    assert len(speakers) == 8
    for r in rows:
        wav = synthetic_corpus / r["file"]
        region, speaker, name = Path(r["file"]).parts
        assert region == "DR1" and speaker == r["speaker"] and name == f"SX{int(r['sentence']):03d}.wav"
        for suffix in (".phn", ".wrd", ".txt"):
            assert wav.with_suffix(suffix).exists()
        info = sf.info(str(wav))
        assert info.samplerate == 16000 and info.channels == 1 and info.subtype == "PCM_16"
        utt = open_utterance(wav)
        phones = utt.alignment.phones.intervals
        assert phones[0].start_s == 0 and abs(phones[-1].end_s - utt.audio.duration) < 1e-9
        assert all(abs(a.end_s - b.start_s) < 1e-9 for a, b in zip(phones, phones[1:]))
        words = [iv.label for iv in utt.alignment.words.intervals if iv.label]
        text = mc.HARVARD[int(r["sentence"]) - 1]
        assert words == [t[2] for t in mc.ms.tokenize(text)]  # every word has its interval
        assert wav.with_suffix(".txt").read_text().split(maxsplit=2)[2].strip() == text
        x, _ = sf.read(str(wav))
        assert np.abs(x).max() > 0.05


def test_same_seed_gives_identical_bytes(synthetic_corpus, tmp_path):
    """A second run (3 files: the first three of the same plan) writes the same bytes."""
    out = tmp_path / "c3"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--n", "3", "--seed", "0",
                    "--quiet"], check=True, capture_output=True, timeout=600)
    made = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.parent != out)
    assert len(made) == 3 * 4
    for rel in made:
        assert (out / rel).read_bytes() == (synthetic_corpus / rel).read_bytes(), rel
    # an existing folder is not written into without --force
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--n", "3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "exists" in proc.stderr
