"""The API's SAE, steering-over-a-corpus and phone-table functions give what the CLI writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import steve_qt as sq
from steve_qt.cli import main

SITE = "encoder.blocks.2"


@pytest.fixture(scope="module")
def env(tmp_path_factory, copy_samples):
    """A three-file corpus (erasure ranks only concepts in 3 files) with its own cache."""
    root = tmp_path_factory.mktemp("apisae")
    corpus = copy_samples(root / "corpus", ("dark_suit", "oily_rag", "cats_and_dogs"))
    mp = pytest.MonkeyPatch()
    mp.setenv("STEVE_QT_CACHE", str(root / "cache"))
    yield {"root": root, "corpus": corpus}
    mp.undo()


OPTS = dict(expansion=2, k=8, epochs=2, batch=64, holdout=0.5, wer_files=0, jobs=1)
ARGV = ["--expansion", "2", "--k", "8", "--epochs", "2", "--batch", "64", "--holdout", "0.5",
        "--wer-files", "0", "--jobs", "1"]


def test_train_eval_compare_erase_equal_the_cli(env, capsys, whisper_adapter):
    root, corpus = env["root"], env["corpus"]
    reports = sq.train_saes(corpus, root / "api_sae", sites=[SITE], **OPTS)
    assert list(reports) == [SITE]
    assert main(["sae", "train", str(corpus), "--site", SITE, "--out", str(root / "cli_sae"),
                 *ARGV]) == 0
    # the same command twice gives the same SAE bit for bit (same machine, seed, files)
    for name in ("sae_weights.safetensors", "cfg.json"):
        assert (root / "api_sae" / name).read_bytes() == (root / "cli_sae" / name).read_bytes()
    sae = reports[SITE]["sae"]
    assert isinstance(sae, sq.SAE) and sae.d_sae == 768
    held = reports[SITE]["heldout"]
    assert 0 < held["rows"] and np.isfinite(held["fraction_variance_explained"])

    ev = sq.evaluate_sae(root / "api_sae", root / "api_eval", corpus, wer_files=0, jobs=1)
    assert main(["sae", "eval", str(root / "cli_sae"), str(corpus), "--out",
                 str(root / "cli_eval"), "--wer-files", "0", "--jobs", "1"]) == 0
    cli_ev = json.loads((root / "cli_eval" / "eval.json").read_text())
    assert ev["rows"] == cli_ev["rows"] and ev["files"] == cli_ev["files"] == 3

    cmp = sq.compare_saes(root / "api_sae", root / "cli_sae")
    assert cmp["share_above_0.9"] == 1.0  # identical SAEs match at cosine 1

    er = sq.erase_concept(root / "api_sae", corpus, "class=vowel", root / "api_erase",
                          wer_files=0, jobs=1)
    assert main(["sae", "erase", str(root / "cli_sae"), str(corpus), "--concept",
                 "class=vowel", "--out", str(root / "cli_erase"), "--wer-files", "0",
                 "--jobs", "1"]) == 0
    cli_er = json.loads((root / "cli_erase" / "erase.json").read_text())
    assert er["steps"] == cli_er["steps"] and er["features_needed"] == cli_er["features_needed"]
    capsys.readouterr()

    with pytest.raises(sq.Error, match="given twice"):
        sq.train_saes(corpus, root / "twice", sites=[SITE, SITE], **OPTS)
    assert not (root / "twice").exists()
    with pytest.raises(sq.Error, match="not overwritten"):
        sq.train_saes(corpus, root / "api_sae", sites=[SITE], **OPTS)


def test_steer_corpus_equals_the_cli(env, capsys, tmp_path, whisper_adapter):
    import csv

    model = sq.load_model("whisper", device="cpu")
    table = sq.steer_corpus(model, env["corpus"], feature=3, scale=1.0, site=SITE)
    out = tmp_path / "s.csv"
    assert main(["steer", str(env["corpus"]), "--site", SITE, "--feature", "3", "--scale", "1",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    rows = list(csv.reader(out.open()))
    assert list(table.columns) == rows[0]
    assert [[str(c) for c in r] for r in table.tuples()] == rows[1:]
    assert rows[-1][0].startswith("TOTAL")


def test_phones_tables(env, capsys):
    t = sq.phones()
    assert ("TIMIT 61 -> 39" in {r[0] for r in t} or len(t) > 61) and t.columns[0] == "kind"
    inv = sq.phones(env["corpus"])
    assert inv.columns == ("label", "normalised", "intervals", "files")
    assert main(["phones", str(env["corpus"])]) == 0
    out = capsys.readouterr().out
    for raw, norm, n, nf in inv:
        assert f"{raw:<8} -> {norm:<10} {n:>7} {nf:>6}" in out
    with pytest.raises(sq.Error, match="folder not found"):
        sq.phones(env["root"] / "nothing_here")
    (env["root"] / "empty").mkdir()
    with pytest.raises(sq.Error, match="no audio files"):
        sq.phones(env["root"] / "empty")
