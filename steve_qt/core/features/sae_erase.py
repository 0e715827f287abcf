"""How many SAE features carry a concept? Rank features by how well they detect it, remove them
in growing numbers, and watch a probe for the concept fall to its majority baseline.

A concept is a set of frames from the alignments: ``phone=X`` (the label after
:func:`~steve_qt.core.speech.phone_sets.normalise_phone`, so TIMIT's 61 labels fold to 39),
``class=vowel|consonant|silence`` and ``manner=...`` / ``voicing=...`` / ``place=...`` (from
:func:`~steve_qt.core.speech.phones.class_label`). Each frame takes the phone under its centre;
frames outside every phone interval, or whose phone the fold leaves out, are left out.

1. Ranking: each latent's code as a detector of the concept, frame level, by AUROC
   (:func:`~steve_qt.core.features.phone_stats.auroc_by_label`); latents are ranked by
   ``|AUROC - 0.5|`` (a latent that fires on the concept's absence carries it too). The concept
   must meet the support rule (:class:`~steve_qt.core.features.phone_stats.SupportRule`,
   default 20 frames from 3 files).
2. Erasure: the top ``m`` latents are zeroed before decoding, for m = 0, 1, 2, 4, ... up to all
   latents; a logistic-regression probe for the concept is trained on the erased reconstruction
   of the training files' frames and scored on the held-out files' frames (files split, seeded).
3. Headline: the smallest m whose probe accuracy is within two binomial standard errors of the
   majority baseline on the held-out frames, as a share of the SAE's latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SteveError

CONCEPT_KINDS = ("phone", "class", "manner", "voicing", "place")


@dataclass(frozen=True)
class Concept:
    kind: str  # phone | class | manner | voicing | place
    value: str

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"

    def member(self, label: str) -> bool | None:
        """Whether a phone label is in the concept; None when the frame is left out."""
        from ..speech.phone_sets import normalise_phone
        from ..speech.phones import class_label

        norm = normalise_phone(label)
        if norm is None:
            return None
        if self.kind == "phone":
            return norm == (normalise_phone(self.value) or self.value)
        feature = "kind" if self.kind == "class" else self.kind
        return class_label(label, feature) == self.value


def parse_concept(text: str) -> Concept:
    kind, sep, value = (text or "").partition("=")
    kind, value = kind.strip(), value.strip()
    if not sep or kind not in CONCEPT_KINDS or not value:
        raise SteveError(f"--concept must be KIND=VALUE with KIND one of "
                         f"{', '.join(CONCEPT_KINDS)} (e.g. class=vowel, phone=s), not {text!r}")
    return Concept(kind, value)


def frame_labels(times: np.ndarray, phones, concept: Concept) -> np.ndarray:
    """(T,) int8: 1 in the concept, 0 not, -1 left out, for frames centred at ``times`` (s)."""
    out = np.full(len(times), -1, dtype=np.int8)
    for iv in phones:
        m = concept.member(iv.label)
        if m is None:
            continue
        sel = (times >= iv.start_s) & (times < iv.end_s)
        out[sel] = 1 if m else 0
    return out


def rank_features(sae, rows: np.ndarray, labels: np.ndarray, block: int = 256) -> np.ndarray:
    """(d_sae,) AUROC of each latent's code as a detector of label 1 (labels 0/1)."""
    from .phone_stats import auroc_by_label

    codes = sae.encode(np.asarray(rows, dtype=np.float32))
    out = np.empty(sae.d_sae)
    for j in range(0, sae.d_sae, block):
        out[j:j + block] = auroc_by_label(codes[:, j:j + block], labels, 2)[1]
    return out


def erased_reconstruction(sae, rows: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """decode(encode(x) with the latents ``removed`` set to 0) (float32)."""
    codes = sae.encode(np.asarray(rows, dtype=np.float32))
    codes[:, removed] = 0
    return sae.decode(codes, like=rows)


def erased_edit(sae, removed, keep_frames: int | None):
    """f(output) replacing a site's first ``keep_frames`` rows by the SAE's reconstruction with
    the latents ``removed`` set to 0 (none removed: the plain reconstruction)."""
    import torch

    removed = torch.as_tensor(np.asarray(removed, dtype=np.int64))

    def edit(output):
        out = output.clone()
        rows = out.shape[1] if keep_frames is None else min(keep_frames, out.shape[1])
        with torch.no_grad():
            x = out[0, :rows].float()
            codes = sae.encode(x)
            codes[:, removed] = 0
            out[0, :rows] = sae.decode(codes, like=x).to(out.dtype)
        return out

    return edit


def probe_accuracy(train_x, train_y, test_x, test_y, seed: int = 0) -> float:
    """Accuracy on the test frames of a logistic regression fitted on the train frames
    (features standardised on the train frames)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(train_y)) < 2:
        return float(np.mean(test_y == train_y[0]))
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(max_iter=300, random_state=seed)
    clf.fit(scaler.transform(train_x), train_y)
    return float(clf.score(scaler.transform(test_x), test_y))


def steps_of(d_sae: int) -> list[int]:
    """0, 1, 2, 4, ... and d_sae."""
    out, m = [0], 1
    while m < d_sae:
        out.append(m)
        m *= 2
    return out + [d_sae]


def erase(sae, rows: np.ndarray, labels: np.ndarray, file_ids: np.ndarray, concept: str = "",
          heldout: float = 0.25, seed: int = 0, rule=None, max_train_frames: int = 20000) -> dict:
    """The ranking, the probe accuracy after each erasure step and the headline (module doc).

    ``rows`` (N, d_in), ``labels`` (N,) 1/0/-1, ``file_ids`` (N,) the file of each frame."""
    from .phone_stats import SupportRule, label_support

    rule = rule or SupportRule()
    keep = labels >= 0
    rows, labels, file_ids = rows[keep], labels[keep].astype(np.int64), file_ids[keep]
    n_frames, n_files = label_support(labels, file_ids, 2)
    if n_frames[1] == 0:
        raise SteveError(f"the concept {concept} has no frames in this corpus")
    if not rule.ok(n_frames[1], n_files[1]):
        raise SteveError(f"the concept {concept} has {n_frames[1]} frames in {n_files[1]} files; "
                         f"ranking needs {rule.describe()}")
    if n_frames[0] == 0:
        raise SteveError(f"every frame is in the concept {concept}: nothing to tell it from")
    auroc = rank_features(sae, rows, labels)
    order = np.argsort(-np.abs(np.nan_to_num(auroc, nan=0.5) - 0.5), kind="stable")
    files = np.unique(file_ids)
    rng = np.random.default_rng(seed)
    n_test = max(1, int(round(heldout * len(files))))
    if len(files) < 2:
        raise SteveError("erasure needs at least 2 files (the probe is scored on held-out files)")
    test_files = set(rng.permutation(files)[:min(n_test, len(files) - 1)].tolist())
    is_test = np.array([f in test_files for f in file_ids])
    tr = np.flatnonzero(~is_test)
    if len(tr) > max_train_frames:
        tr = np.sort(rng.choice(tr, max_train_frames, replace=False))
    te = np.flatnonzero(is_test)
    y_tr, y_te = labels[tr], labels[te]
    majority = max(float(np.mean(y_te == 1)), float(np.mean(y_te == 0)))
    margin = 2 * np.sqrt(majority * (1 - majority) / len(te))
    steps = []
    for m in steps_of(sae.d_sae):
        x_hat = erased_reconstruction(sae, rows, order[:m])
        acc = probe_accuracy(x_hat[tr], y_tr, x_hat[te], y_te, seed)
        steps.append({"removed": m, "share": m / sae.d_sae, "probe_accuracy": acc})
    reached = next((s for s in steps if s["probe_accuracy"] <= majority + margin), steps[-1])
    return {"concept": concept, "frames": int(n_frames[1]), "files": int(n_files[1]),
            "other_frames": int(n_frames[0]), "support_rule": rule.describe(),
            "probe": {"train_frames": int(len(tr)), "test_frames": int(len(te)),
                      "test_files": int(len(test_files)), "majority_baseline": majority,
                      "margin": float(margin)},
            "steps": steps, "features_needed": int(reached["removed"]),
            "share_needed": float(reached["share"]),
            "probe_test_file_ids": sorted(int(f) for f in test_files),
            "ranking": [{"feature": int(f), "auroc": float(auroc[f])} for f in order[:50]],
            "order": order.tolist()}


def erasure_png(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    s = result["steps"]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    x = [max(r["removed"], 0.5) for r in s]
    ax.plot(x, [r["probe_accuracy"] for r in s], "o-", label="probe accuracy")
    base = result["probe"]["majority_baseline"]
    ax.axhline(base, color="k", ls="--", lw=0.8, label="majority baseline")
    ax.set_xscale("log")
    ax.set_xlabel("features removed (top by |AUROC - 0.5|; 0 drawn at 0.5)")
    ax.set_ylabel("held-out probe accuracy")
    ax.set_title(f"{result['concept']}: {result['features_needed']} features "
                 f"({100 * result['share_needed']:.1f}%) bring the probe to its baseline",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(res: dict) -> str:
    """erase.json's content as a readable report."""
    p = res["probe"]
    lines = [f"# Erasing {res['concept']} from {res['sae']}", "",
             f"{res['frames']} concept frames in {res['files']} files, {res['other_frames']} "
             f"other frames ({res['support_rule']}). Probe: logistic regression on "
             f"{p['train_frames']} training frames, scored on {p['test_frames']} frames of "
             f"{p['test_files']} held-out files; majority baseline "
             f"{p['majority_baseline']:.3f} (reached: within {p['margin']:.3f}).", "",
             "| features removed | share | probe accuracy |", "|---|---|---|"]
    lines += [f"| {s['removed']} | {100 * s['share']:.1f} % | {s['probe_accuracy']:.3f} |"
              for s in res["steps"]]
    lines += ["", f"**{res['features_needed']} features ({100 * res['share_needed']:.1f} %) "
              "bring the probe to its baseline.**", "", "Top features by |AUROC - 0.5|:", ""]
    lines += [f"- {r['feature']}: AUROC {r['auroc']:.3f}" for r in res["ranking"][:10]]
    if "wer_cost" in res:
        w = res["wer_cost"]
        lines += ["", f"WER against the unedited transcript ({len(w['files'])} files): "
                  f"reconstruction {w['mean_wer_reconstruction']:.3f}, erased "
                  f"{w['mean_wer_erased']:.3f}."]
    return "\n".join(lines) + "\n"
