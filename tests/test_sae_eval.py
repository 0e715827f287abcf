"""``sae compare`` and ``sae eval``: matching checked against a brute-force search, loss
recovered on a toy model, variance explained and L0 against numpy on the saved weights."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from steve_qt.cli import main
from steve_qt.core.features.sae import SAE, save_sae
from steve_qt.core.features.sae_compare import compare_saes, match_features
from steve_qt.core.features.sae_eval import ce_triplet, loss_recovered
from steve_qt.core.speech.textdiff import cer
from tests.test_sae import numpy_encode, random_sae
from tests.test_sae_repro import SITES, cached_corpus  # noqa: F401  (fixture)


def cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- compare -------------------------------------------------------------------------------
def test_permuted_copy_matches_every_latent_at_cosine_one(tmp_path, capsys):
    a = random_sae(d_in=64, d_sae=40, k=4, seed=1)
    perm = np.random.default_rng(0).permutation(40)
    b = SAE(W_enc=a.W_enc[:, perm], b_enc=a.b_enc[perm], W_dec=a.W_dec[perm], b_dec=a.b_dec,
            architecture="topk", k=4)
    save_sae(a, tmp_path / "a")
    save_sae(b, tmp_path / "b")
    code, out, err = cli(["sae", "compare", tmp_path / "a", tmp_path / "b", "--out",
                          tmp_path / "c"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert res["n_features"] == 40 and res["share_above_0.9"] == 1.0
    assert res["share_above_0.7"] == 1.0
    np.testing.assert_allclose(res["cosine"], 1.0, atol=1e-12)
    # latent i of a is latent j of b where perm[j] == i
    assert res["match"] == np.argsort(perm).tolist()
    assert res["random_floor"]["share_above_0.7"] < 0.2  # 40 random directions in 64 dims
    assert "100.0% above 0.7" in out and "100.0% above 0.9" in out
    assert (tmp_path / "c" / "compare_hist.png").stat().st_size > 1000


def test_assignment_equals_brute_force_on_a_hand_built_cosine_matrix():
    """Unit decoder rows chosen so that the cosine matrix is known; the best one-to-one
    assignment is found by trying all 5! of them."""
    rng = np.random.default_rng(4)
    W_a = np.eye(5)
    cos = rng.uniform(-1, 1, size=(5, 5))
    # rows of b whose cosines with the unit vectors e_i are cos[:, j]: b_j = cos[:, j] (+ an
    # orthogonal 6th component to make it unit length)
    W_a6 = np.hstack([W_a, np.zeros((5, 1))])
    norms = np.linalg.norm(cos, axis=0)
    scale = 1.0 / (norms.max() * 1.01)
    b = (cos * scale).T  # (5, 5): row j = column j of cos, scaled
    W_b = np.hstack([b, np.sqrt(1 - (b ** 2).sum(1, keepdims=True))])
    want_cos = W_a6 @ W_b.T
    best = max(itertools.permutations(range(5)),
               key=lambda p: sum(want_cos[i, p[i]] for i in range(5)))
    cols, got = match_features(W_a6, W_b)
    assert tuple(cols.tolist()) == best
    np.testing.assert_allclose(got, [want_cos[i, best[i]] for i in range(5)], atol=1e-12)


def test_compare_refuses_saes_of_different_shapes(tmp_path, capsys):
    save_sae(random_sae(d_in=6, d_sae=10), tmp_path / "a")
    save_sae(random_sae(d_in=6, d_sae=12), tmp_path / "b")
    code, out, err = cli(["sae", "compare", tmp_path / "a", tmp_path / "b", "--out",
                          tmp_path / "c"], capsys)
    assert code == 2 and "different shapes" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "c").exists()
    with pytest.raises(Exception, match="different shapes"):
        compare_saes(random_sae(d_in=6, d_sae=10), random_sae(d_in=5, d_sae=10))


# --- loss recovered on a toy model ---------------------------------------------------------------
def toy_ce():
    """A toy "model": x -> Linear -> (site) -> tanh -> Linear -> logits; CE against fixed
    labels, computed with a forward hook on the site that applies the edit."""
    g = torch.Generator().manual_seed(0)
    site = torch.nn.Linear(4, 6)
    head = torch.nn.Linear(6, 5)
    for m in (site, head):
        torch.nn.init.normal_(m.weight, generator=g)
        torch.nn.init.normal_(m.bias, generator=g)
    x = torch.randn(1, 30, 4, generator=g)
    y = torch.randint(0, 5, (30,), generator=g)

    def ce(edit):
        h = site.register_forward_hook(lambda m, i, o: None if edit is None else edit(o))
        try:
            with torch.no_grad():
                logits = head(torch.tanh(site(x)))[0]
        finally:
            h.remove()
        return float(torch.nn.functional.cross_entropy(logits, y))

    return ce


def test_loss_recovered_is_one_for_a_perfect_and_zero_for_a_zero_reconstruction():
    ce = toy_ce()
    eye = torch.eye(6)
    # relu(x) - relu(-x) = x: a "standard" SAE with 12 latents that reconstructs exactly
    perfect = SAE(W_enc=torch.cat([eye, -eye], 1), b_enc=torch.zeros(12),
                  W_dec=torch.cat([eye, -eye], 0), b_dec=torch.zeros(6),
                  architecture="standard", apply_b_dec_to_input=False)
    t = ce_triplet(ce, perfect, None)
    assert t["zero"] != t["orig"]
    assert loss_recovered(t["orig"], t["rec"], t["zero"]) == pytest.approx(1.0, abs=1e-6)
    nothing = SAE(W_enc=torch.cat([eye, -eye], 1), b_enc=torch.zeros(12),
                  W_dec=torch.zeros(12, 6), b_dec=torch.zeros(6), architecture="standard")
    t = ce_triplet(ce, nothing, None)
    assert loss_recovered(t["orig"], t["rec"], t["zero"]) == 0.0
    assert loss_recovered(1.0, 1.5, 3.0) == pytest.approx(0.75)  # (3 - 1.5) / (3 - 1)


def test_cer_by_hand():
    assert cer("the cat", "the cut") == pytest.approx(1 / 7)
    assert cer("abc", "") == 1.0 and cer("", "") == 0.0


# --- eval on cached rows -----------------------------------------------------------------------
def test_eval_variance_explained_and_l0_equal_numpy_on_saved_weights(cached_corpus, tmp_path,
                                                                    capsys):
    from steve_qt.core.features.actcache import load_activations

    env = cached_corpus
    sae_dir = tmp_path / "sae"
    assert main(["sae", "train", str(env["corpus"]), "--site", SITES[1], "--out", str(sae_dir),
                 "--cache", str(env["cache"]), "--expansion", "1", "--k", "8", "--batch", "64",
                 "--shuffle-rows", "256", "--holdout", "0.25", "--wer-files", "0", "--jobs", "1",
                 "--epochs", "2"]) == 0
    capsys.readouterr()
    code, out, err = cli(["sae", "eval", sae_dir, "--out", tmp_path / "ev", "--cache",
                          env["cache"], "--wer-files", "0"], capsys)
    assert code == 0, err
    rep = json.loads((tmp_path / "ev" / "eval.json").read_text())
    held = json.loads((sae_dir / "training.json").read_text())["heldout_files"]
    assert rep["files"] == len(held) == 3
    w = load_file(str(sae_dir / "sae_weights.safetensors"))
    x = np.concatenate([load_activations(f, "whisper", SITES[1], cache_dir=env["cache"])
                        for f in held]).astype(np.float64)
    codes = numpy_encode(x, w["W_enc"], w["b_enc"], w["b_dec"], "topk", 8)
    recon = codes @ w["W_dec"].astype(np.float64) + w["b_dec"]
    fve = 1 - ((recon - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    s = rep["rows"]
    assert s["rows"] == len(x)
    assert s["fraction_variance_explained"] == pytest.approx(fve, rel=1e-5)
    # TopK ties after float32 rounding could swap a latent; the count per row cannot change
    assert s["l0"] == pytest.approx((codes > 0).sum(1).mean(), abs=1e-9)
    freq = (codes > 0).mean(0)
    np.testing.assert_allclose(rep["activation_frequency"], freq, atol=2 / len(x))
    assert s["dead_share"] == pytest.approx((freq == 0).mean(), abs=2 / len(freq))
    md = (tmp_path / "ev" / "eval.md").read_text()
    assert f"{fve:.4f}" in md and "rows" in md
    assert (tmp_path / "ev" / "frequency_hist.png").stat().st_size > 1000


def test_eval_without_a_usable_file_one_line_exit_2(cached_corpus, tmp_path, capsys):
    save_sae(SAE(W_enc=torch.zeros(384, 8), b_enc=torch.zeros(8), W_dec=torch.zeros(8, 384),
                 b_dec=torch.zeros(384), architecture="topk", k=2,
                 hook_name=SITES[1], model_name="whisper"), tmp_path / "sae")
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = cli(["sae", "eval", tmp_path / "sae", empty, "--out", tmp_path / "ev"],
                       capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "ev").exists()
    code, _, err = cli(["sae", "eval", tmp_path / "sae", "--out", tmp_path / "ev"], capsys)
    assert code == 2 and "held-out" in err and not (tmp_path / "ev").exists()


# --- erase -----------------------------------------------------------------------------------------
def planted_concept(n_files=12, frames=80, d_sae=32, planted=(3, 7, 20), seed=0):
    """Codes where latents ``planted`` fire exactly on concept frames (and only there), every
    other latent independently of the concept; labels 1/0; the file of each frame."""
    rng = np.random.default_rng(seed)
    n = n_files * frames
    labels = (rng.random(n) < 0.3).astype(np.int8)
    codes = rng.exponential(size=(n, d_sae)) * (rng.random((n, d_sae)) < 0.2)
    for j in planted:
        codes[:, j] = labels * rng.uniform(0.5, 2.0, n)
    return codes, labels, np.repeat(np.arange(n_files), frames)


def test_erasure_finds_exactly_the_planted_concept_features():
    from steve_qt.core.features.sae_erase import erase

    codes, labels, fids = planted_concept()
    rng = np.random.default_rng(1)
    W_dec = np.linalg.qr(rng.normal(size=(32, 32)))[0]  # orthogonal: W_enc = W_dec.T inverts
    rows = (codes @ W_dec).astype(np.float32)
    sae = SAE(W_enc=torch.tensor(W_dec.T, dtype=torch.float32), b_enc=torch.zeros(32),
              W_dec=torch.tensor(W_dec, dtype=torch.float32), b_dec=torch.zeros(32),
              architecture="standard")
    np.testing.assert_allclose(sae.encode(rows), codes, atol=1e-4)  # the SAE sees the codes
    res = erase(sae, rows, labels, fids, "toy")
    assert set(res["order"][:3]) == {3, 7, 20}
    assert [r["auroc"] for r in res["ranking"][:3]] == [1.0, 1.0, 1.0]
    assert res["features_needed"] == 4  # 0, 1, 2, 4: the first step that removes all three
    acc = {s["removed"]: s["probe_accuracy"] for s in res["steps"]}
    assert acc[0] > 0.99 and acc[2] > 0.99  # one planted feature left still gives it away
    assert acc[4] <= res["probe"]["majority_baseline"] + res["probe"]["margin"]


def test_erasure_of_a_concept_with_no_frames_is_one_line():
    from steve_qt.core.errors import SteveError
    from steve_qt.core.features.sae_erase import erase, parse_concept

    codes, labels, fids = planted_concept()
    sae = random_sae(d_in=16, d_sae=32, architecture="standard")
    with pytest.raises(SteveError, match="has no frames"):
        erase(sae, codes[:, :16].astype(np.float32), np.zeros_like(labels), fids, "phone=zh")
    with pytest.raises(SteveError, match="KIND=VALUE"):
        parse_concept("vowel")


def test_concept_membership_uses_the_shared_phone_sets():
    from steve_qt.core.features.sae_erase import Concept, frame_labels
    from steve_qt.core.speech.alignment import Interval

    phones = [Interval(0.0, 0.1, "h#"), Interval(0.1, 0.2, "aa"), Interval(0.2, 0.3, "s"),
              Interval(0.3, 0.4, "ao")]
    t = np.array([0.05, 0.15, 0.25, 0.35, 0.5])
    assert frame_labels(t, phones, Concept("class", "vowel")).tolist() == [0, 1, 0, 1, -1]
    # TIMIT folds ao into aa (Lee & Hon): phone=aa takes both
    assert frame_labels(t, phones, Concept("phone", "aa")).tolist() == [0, 1, 0, 1, -1]
    assert frame_labels(t, phones, Concept("manner", "fricative")).tolist() == [0, 0, 1, 0, -1]
