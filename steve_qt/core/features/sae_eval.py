"""An SAE judged as the field reports it, on held-out files.

On the site's activation rows (from the activation cache, float16 as stored; see
:mod:`steve_qt.core.features.actcache`):

- fraction of variance explained: ``1 - SSE / SST``, SST the sum of squares about the rows' mean;
- L0: active latents per row, averaged;
- per latent the share of rows it fires on (its activation frequency): dead latents never fire,
  dense ones fire on more than 10 % of the rows; the histogram of log10 frequencies.

On the model (Whisper), per file and in total:

- WER and CER of the transcript with the site's activations replaced by the SAE's
  reconstruction (the frames that cover the audio), against the unedited transcript and, where
  an alignment lies beside the file, against its words;
- loss recovered as SAELens reports it: ``(CE_zero - CE_rec) / (CE_zero - CE_orig)``, each CE the
  mean cross-entropy of a teacher-forced pass over the unedited transcript's tokens; CE_rec with
  the reconstruction spliced in, CE_zero with the site's activations set to zero on the same
  frames. 1 means the reconstruction loses nothing the model uses, 0 means it is as bad as
  removing the site.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

from ..errors import SteveError

DENSE_ABOVE = 0.10  # a latent firing on more than this share of rows is dense


def row_stats(sae, chunks: Iterable[np.ndarray]) -> dict:
    """Variance explained, L0, dead and dense latents and every latent's frequency over rows.

    Sums are in float64 over float32 encodes (rows cast to float32)."""
    import torch

    n, sse, sum_x, sum_sq, l0 = 0, 0.0, None, 0.0, 0.0
    counts = torch.zeros(sae.d_sae, dtype=torch.float64)
    with torch.no_grad():
        for chunk in chunks:
            x = torch.from_numpy(np.asarray(chunk, dtype=np.float32))
            if not len(x):
                continue
            codes = sae.encode(x)
            x_hat = sae.decode(codes, like=x)
            x64 = x.double()
            sse += float((x_hat.double() - x64).pow(2).sum())
            sum_x = x64.sum(0) if sum_x is None else sum_x + x64.sum(0)
            sum_sq += float(x64.pow(2).sum())
            active = codes > 0
            l0 += float(active.sum())
            counts += active.sum(0).double()
            n += len(x)
    if not n:
        raise SteveError("no activation rows to evaluate on")
    total = sum_sq - float(sum_x.pow(2).sum()) / n
    freq = (counts / n).numpy()
    return {"rows": n, "fraction_variance_explained": 1.0 - sse / total if total > 0 else
            float("nan"), "l0": l0 / n, "dead_share": float((freq == 0).mean()),
            "dense_share": float((freq > DENSE_ABOVE).mean()), "mse_per_row": sse / n,
            "frequency": freq}


def loss_recovered(ce_orig: float, ce_rec: float, ce_zero: float) -> float:
    """SAELens's (CE_zero - CE_rec) / (CE_zero - CE_orig); NaN when zeroing changes nothing."""
    den = ce_zero - ce_orig
    return (ce_zero - ce_rec) / den if den != 0 else float("nan")


def zero_edit(keep_frames: int | None) -> Callable:
    """f(output) setting a site's output to zero on the first ``keep_frames`` rows (all rows
    when None): the zero ablation of loss recovered, on the rows the reconstruction replaces."""
    def edit(output):
        out = output.clone()
        rows = out.shape[1] if keep_frames is None else min(keep_frames, out.shape[1])
        out[0, :rows] = 0
        return out
    return edit


def ce_triplet(ce: Callable, sae, keep_frames: int | None) -> dict:
    """{orig, rec, zero}: ``ce(edit)`` (a summed or mean cross-entropy; ``edit`` None for the
    unedited run, else f(output) for the site) with no edit, the SAE's reconstruction spliced
    in, and the site zeroed."""
    from .sae_corpus import reconstruction_edit

    return {"orig": ce(None), "rec": ce(reconstruction_edit(sae, keep_frames)),
            "zero": ce(zero_edit(keep_frames))}


def transcript_eval(sae, files: list, spec: str, site_axis: str, site: str,
                    progress: Callable[[int, int], None] | None = None) -> dict:
    """Per file: transcripts (unedited, with the reconstruction), WER and CER of the second
    against the first and against the alignment's words, and the teacher-forced CE triplet;
    totals: mean WER/CER over files, and loss recovered from the CEs summed over all tokens."""
    from ..models.pipeline import get_adapter
    from ..speech.alignment import alignment_words
    from ..speech.audio import load_audio
    from ..speech.textdiff import cer, wer
    from .sae_corpus import reconstruction_edit

    adapter = get_adapter(spec)
    if not hasattr(adapter, "transcribe") or not hasattr(adapter, "teacher_forced_ce"):
        raise SteveError(f"{adapter.model_id} cannot transcribe with edits (Whisper only)")
    rows = []
    tot = {"orig": 0.0, "rec": 0.0, "zero": 0.0}
    n_tokens = 0
    for i, f in enumerate(files):
        audio = load_audio(f)
        samples = audio.samples[:480000]
        keep = math.ceil(len(samples) / 320) if site_axis == "frames" else None
        plain = adapter.transcribe(samples)
        edited = adapter.transcribe(samples, edits={site: reconstruction_edit(sae, keep)}).text

        def ce(edit, samples=samples, tokens=plain.tokens):
            return adapter.teacher_forced_ce(samples, tokens, None if edit is None
                                             else {site: edit})[0]

        trip = ce_triplet(ce, sae, keep)
        n = adapter.teacher_forced_ce(samples, plain.tokens)[1]
        row = {"file": str(f), "original": plain.text, "reconstructed": edited,
               "wer": wer(plain.text, edited), "cer": cer(plain.text, edited),
               "tokens": n, "ce": {k: v / n for k, v in trip.items()},
               "loss_recovered": loss_recovered(trip["orig"], trip["rec"], trip["zero"])}
        ref = alignment_words(f, len(audio.samples) / audio.rate)
        if ref is not None:
            row.update({"alignment_words": ref, "wer_vs_alignment_original": wer(ref, plain.text),
                        "wer_vs_alignment_reconstructed": wer(ref, edited),
                        "cer_vs_alignment_reconstructed": cer(ref, edited)})
        rows.append(row)
        for k in tot:
            tot[k] += trip[k]
        n_tokens += n
        if progress:
            progress(i + 1, len(files))
    if not rows:
        return {"files": []}
    ce_mean = {k: v / n_tokens for k, v in tot.items()}

    def mean(key):
        vals = [r[key] for r in rows if key in r]
        return {"mean": float(np.mean(vals)), "files": len(vals)} if vals else None

    return {"files": rows, "tokens": n_tokens, "ce": ce_mean,
            "loss_recovered": loss_recovered(ce_mean["orig"], ce_mean["rec"], ce_mean["zero"]),
            "wer": mean("wer"), "cer": mean("cer"),
            "wer_vs_alignment_original": mean("wer_vs_alignment_original"),
            "wer_vs_alignment_reconstructed": mean("wer_vs_alignment_reconstructed")}


def frequency_png(freq: np.ndarray, path, title: str = "") -> None:
    """Histogram of log10 activation frequency (dead latents counted in the title)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    live = freq[freq > 0]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    if len(live):
        ax.hist(np.log10(live), bins=50)
    ax.axvline(np.log10(DENSE_ABOVE), color="k", lw=0.8, ls="--")
    ax.set_xlabel("log10 share of rows the latent fires on (dashed: dense above 10 %)")
    ax.set_ylabel("latents")
    ax.set_title(title or f"{len(freq)} latents, {int((freq == 0).sum())} dead", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def wer_png(files: list, path) -> None:
    """Per-file WER (reconstruction vs unedited transcript) as a bar chart."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    vals = [min(r["wer"], 2.0) for r in files]
    ax.bar(range(len(vals)), vals)
    ax.set_xlabel("held-out file")
    ax.set_ylabel("WER with the reconstruction (clipped at 2)")
    ax.set_title(f"mean WER {np.mean([r['wer'] for r in files]):.3f} over {len(files)} files",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(report: dict) -> str:
    """eval.md: the numbers of eval.json, readable, with how much data each rests on."""
    s = report["rows"]
    lines = [f"# SAE evaluation: {report['sae']}", "",
             f"Site `{report['site']}` of `{report['model']}`, {report['files']} files "
             f"({s['rows']} rows, float16 as cached).", "",
             "| measure | value |", "|---|---|",
             f"| fraction of variance explained | {s['fraction_variance_explained']:.4f} |",
             f"| L0 (active latents per row) | {s['l0']:.2f} |",
             f"| dead latents (never fire) | {100 * s['dead_share']:.1f} % |",
             f"| dense latents (fire on > 10 % of rows) | {100 * s['dense_share']:.1f} % |"]
    t = report.get("transcript")
    if t and t.get("files"):
        n = len(t["files"])
        lines += [f"| WER, reconstruction vs unedited transcript ({n} files) | "
                  f"{t['wer']['mean']:.3f} |",
                  f"| CER, reconstruction vs unedited transcript ({n} files) | "
                  f"{t['cer']['mean']:.3f} |"]
        if t.get("wer_vs_alignment_reconstructed"):
            a, b = t["wer_vs_alignment_original"], t["wer_vs_alignment_reconstructed"]
            lines += [f"| WER vs alignment words, unedited ({a['files']} files) | "
                      f"{a['mean']:.3f} |",
                      f"| WER vs alignment words, reconstruction ({b['files']} files) | "
                      f"{b['mean']:.3f} |"]
        ce = t["ce"]
        lines += [f"| loss recovered ({t['tokens']} tokens) | {t['loss_recovered']:.4f} |",
                  f"| CE orig / rec / zero (nats per token) | {ce['orig']:.4f} / "
                  f"{ce['rec']:.4f} / {ce['zero']:.4f} |"]
        lines += ["", "## Per file", "", "| file | WER | CER | loss recovered | unedited | "
                  "with the reconstruction |", "|---|---|---|---|---|---|"]
        for r in t["files"]:
            lines.append(f"| {r['file']} | {r['wer']:.3f} | {r['cer']:.3f} | "
                         f"{r['loss_recovered']:.3f} | {r['original']} | {r['reconstructed']} |")
    lines += ["", "Plots: `frequency_hist.png`" + (", `wer_per_file.png`" if t and t.get("files")
                                                   else "") + "."]
    return "\n".join(lines) + "\n"
