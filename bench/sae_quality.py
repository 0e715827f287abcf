"""Record the SAE quality run (not a test; minutes to hours): ``steve-qt sae train`` then
``steve-qt sae eval`` on a synthetic corpus, their numbers into bench/sae_quality.json, which
bench/sae.py shows in bench/RESULTS.md.

    python samples/make_corpus.py --out CORPUS --n N
    steve-qt sae train CORPUS --site encoder.blocks.2 --out SAE --holdout H ... --wer-files 0
    steve-qt sae eval SAE --out EVAL --wer-files W
    python -m bench.sae_quality SAE EVAL "the commands above, as run" ["a note" ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("sae_quality.json")


def summary(train: dict, ev: dict, command: str) -> dict:
    r, t, c = ev["rows"], ev.get("transcript") or {}, train["config"]
    n_wer = len(t.get("files", []))
    text = (f"Quality run: TopK SAE of `{train['site']}` ({c['d_in']} → {c['d_sae']}, k = "
            f"{c['k']}, {c['epochs']} epochs, batch {c['batch']}, lr {c['lr']:g}) on "
            f"{train['train_files']} synthetic training files ({train['rows_trained']:,} rows "
            f"trained, {train['train_seconds_this_run'] / 60:.1f} min of training on 2 shared "
            f"cores); on {ev['files']} held-out files ({r['rows']:,} frames): variance explained "
            f"{r['fraction_variance_explained']:.3f}, L0 {r['l0']:.1f}, dead "
            f"{100 * r['dead_share']:.1f} %, dense {100 * r['dense_share']:.1f} %")
    if n_wer:
        text += (f"; on {n_wer} of them, WER of the transcript with the reconstruction against "
                 f"the unedited one {t['wer']['mean']:.3f}, CER {t['cer']['mean']:.3f}, loss "
                 f"recovered {t['loss_recovered']:.3f} ({t['tokens']} tokens)")
    return {"summary": text + f". Command: {command}", "train": {
        k: train[k] for k in ("config", "rows_trained", "steps", "train_seconds_this_run",
                              "torch_threads", "train_files", "heldout")}, "eval": {
        "files": ev["files"], "rows": r, "transcript": {k: v for k, v in t.items()
                                                        if k != "files"}}}


def main(argv: list[str]) -> int:
    sae, ev_dir, command, *notes = argv
    train = json.loads((Path(sae) / "training.json").read_text())
    ev = json.loads((Path(ev_dir) / "eval.json").read_text())
    out = summary(train, ev, command)
    out["notes"] = notes
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(out["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
