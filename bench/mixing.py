"""Context-mixing measures: each measure's cost ÷ the plain encoder capture, side by side."""

from __future__ import annotations

import torch

from .common import Config, Section, interleave, make_audio, verdict
from . import whisper_parts as wp

VZ_TARGET = 4.0  # value zeroing at 3 s: at most 4 x the capture
COLUMNS = ["measure", "input", "model", "T frames", "capture ms", "measure ms", "ratio", "target",
           "result", "÷ full extract"]
MEASURE_ROWS = (("norm", "attention norm"), ("value_zeroing", "value zeroing"),
                ("grad", "grad relevance"))


def second_layer_floor(model, keep: int, product: str):
    """The second MLP layer of every encoder block on all keep² pairs, nothing else: the floor of
    value zeroing in float32. ``product``: "mm" (torch.mm on the transposed weight, blocks of 600
    pairs) or "onednn" (``core.attention.mixing.linear_plus``, blocks of its PAIRS_PER_BLOCK). One
    block of inputs, made once, goes through every block's product."""
    from steve_qt.core.attention import mixing as core_mixing

    blocks = [b.mlp[2].weight.detach().float() for b in model.encoder.blocks]
    pairs = keep * keep
    hidden = blocks[0].shape[1]
    rows = 600 if product == "mm" else max(1, core_mixing.PAIRS_PER_BLOCK // keep) * keep
    x = torch.randn(rows, hidden, generator=torch.Generator().manual_seed(0)).abs_()

    def run():
        with torch.no_grad():
            for w in blocks:
                if product == "mm":
                    w_t = w.T.contiguous()
                    for i in range(0, pairs, rows):
                        torch.mm(x[:min(rows, pairs - i)], w_t)
                else:
                    second = core_mixing.linear_plus(w)
                    zeros = x.new_zeros(rows, w.shape[0])
                    for i in range(0, pairs, rows):
                        n = min(rows, pairs - i)
                        second(x[:n], zeros[:n])
    return run


def run(cfg: Config) -> Section:
    from steve_whisper import mixing

    section = Section("mixing", "Context-mixing measures (measure ÷ plain encoder capture, "
                      "same input, interleaved)", COLUMNS)
    adapter = wp.load_whisper()
    model = adapter.model
    repeats, warmup = min(cfg.repeats, 3), min(cfg.warmup, 1)  # value zeroing is slow: short
    source = ""
    extracts: list[list[str]] = []
    floors: list[list[str]] = []
    for seconds in cfg.durations:
        audio, source = make_audio(seconds)
        mel = adapter.mel(audio)  # once, outside the timed region: every variant takes it
        keep = wp.kept_frames(len(audio))
        ex = adapter.extract(audio, components=["encoder"])  # the transcript grad differentiates
        tokens, start = ex.transcript.tokens, ex.meta["text_token_start"]
        t = interleave({
            "capture": lambda: wp.our_capture(adapter, mel, keep),
            "norm": lambda: mixing.layer_measures(model, mel, keep, ["norm"]),
            "value_zeroing": lambda: mixing.layer_measures(model, mel, keep, ["value_zeroing"]),
            "grad": lambda: mixing.grad_relevance(model, mel, tokens, start, keep),
            "extract": lambda: adapter.extract(audio, components=["encoder"]),
            "floor mm": second_layer_floor(model, keep, "mm"),
            "floor onednn": second_layer_floor(model, keep, "onednn"),
        }, repeats, warmup)
        for name, title in MEASURE_ROWS:
            r = t[name].median / t["capture"].median
            target = f"≤ {VZ_TARGET:g}" if name == "value_zeroing" and seconds == 3.0 else ""
            result = verdict(r, VZ_TARGET) if target else ""
            section.rows.append([title, f"{seconds:g} s", "Whisper tiny.en (embedded)", str(keep),
                                 t["capture"].ms(), t[name].ms(), f"{r:.2f}", target, result,
                                 f"{t[name].median / t['extract'].median:.2f}"])
        extracts.append([f"{seconds:g} s", t["extract"].ms()])
        cap = t["capture"].median
        floors.append([f"{seconds:g} s", t["capture"].ms(), t["value_zeroing"].ms(),
                       f"{t['value_zeroing'].median / cap:.2f}", t["floor mm"].ms(),
                       f"{t['floor mm'].median / cap:.2f}", t["floor onednn"].ms(),
                       f"{t['floor onednn'].median / cap:.2f}",
                       f"{(t['value_zeroing'].median - t['floor onednn'].median) / cap:.2f}"])
    section.extra_tables.append((
        "Full `adapter.extract(audio, components=['encoder'])` in the same rounds (the last "
        "column's divisor: what the CLI and the window run before any measure; it transcribes)",
        ["input", "extract ms"], extracts))
    section.extra_tables.append((
        "Value zeroing against its floor, the second MLP layer on every pair (4 blocks × T² "
        "pairs × 1536 → 384, nothing else), timed in the same rounds; ratios ÷ the capture",
        ["input", "capture ms", "value zeroing ms", "÷ capture", "floor: torch.mm ms", "÷ capture",
         "floor: oneDNN (as value zeroing runs it) ms", "÷ capture",
         "value zeroing − oneDNN floor, ÷ capture"], floors))
    section.notes += [
        f"Input: {source}; mel computed once outside the timed region. {repeats} timed runs per "
        f"variant after {warmup} warm-up round(s), interleaved (kept short: the machine is "
        "shared).",
        "Capture = the encoder step of `WhisperAdapter.extract` (as in section 1: one SDPA "
        "forward pass, weights and scores of the T kept frames). Each measure is what "
        "`WhisperAdapter.extract_measures` runs for it: norm and value zeroing = one encoder "
        "forward pass with hooks (`steve_whisper.mixing.layer_measures`), per block the softmax "
        "of the T kept rows over all 1500 keys; norm = α · ‖f_h(x_k)‖; value zeroing = the "
        "attention output with key k's value zeroed being the output minus Σ_h α_hqk f_h(x_k) "
        "(exact, no pass per key), the rest of the block for all T × T pairs in blocks of "
        "keys (below). Grad = encoder + teacher-forced decoder pass with "
        "autograd on the activations, backward from the transcript's log-probability, ∂L/∂A = "
        "∂L/∂context · Vᵀ per head over the full 1500 × 1500 window, Chefer's rule, kept T × T "
        "block; the transcription that gives the tokens is not timed (in the window and the CLI "
        "it comes from the extraction).",
        "Value zeroing (`steve_qt.core.attention.mixing.value_zeroing_pre_ln`, Whisper's pre-LN "
        "block) does not run the MLP tail on every (q, k) pair: the first MLP layer goes through "
        "the sum over heads (exact: W1·LN(r_qk) = (P_q − Σ_h α_hqk U_hk)/σ_qk + W1β with P_q = "
        "W̃c_q, U_hk = W̃g_hk computed once per layer; one `bmm` per block of keys with an "
        "inner size of M + 1 = 7 and one `addcmul_`), σ_qk from Gram terms (‖c_q‖², ⟨c_q, g_hk⟩, "
        "⟨g_hk, g_h'k⟩, summed in float64, for up to 65536 pairs at once), GELU in place, the "
        "second MLP layer in float32 on all T² pairs through oneDNN with the weight packed once "
        "per layer and −W2·gelu(pre_q) added in its epilogue (`mixing.linear_plus`; "
        "`torch.addmm` where oneDNN is missing), d_qk taken off in place, and the cosine "
        "distance from the change out_qk − y_q split along and across y_q (no cancellation), "
        "in blocks of 2400 pairs. Against a float64 per-key brute force on tiny.en (T = 150, "
        "all 4 layers, the same captured weights and value vectors) the normalised maps differ "
        "by at most 6.2e-7 (with `torch.mm` and blocks of 600 pairs: 5.0e-7; float32's "
        "rounding of values up to 0.8 is 6e-8).",
        "The floor is the second MLP layer: T² × 384 × 1536 MACs per layer (13.3 G at T = 150, "
        "53 G for the 4 layers); the table above times it alone in the same rounds, with "
        "`torch.mm` (MKL) and with oneDNN as value zeroing runs it. What value zeroing adds "
        "above the oneDNN floor, besides the encoder forward pass its hooks need (≈ 1 × the "
        "capture): per layer the setup (U_hk = W̃g_hk, 0.53 G MACs; P_q, y_q, Gram terms: "
        "~34 ms with 1 thread), and per block of pairs the `bmm` of inner size 7 and the "
        "`addcmul_` (~0.5 ms per 600 pairs with 1 thread), the exact-erf GELU (~0.55 ms per "
        "600 pairs), and the cosine passes over (pairs, 384) (~0.2 ms), against ~7 ms per 600 "
        "pairs for the product. Tried and not kept: that product in int8 with exact integer "
        "sums (oneDNN `qlinear_pointwise`, AMX, ~14 × float32 `mm` for the product alone), "
        "each operand split in two int8 slices with per-row scales (Ozaki-style, on Δ = "
        "gelu(pre_qk) − gelu(pre_q) so errors scale with the change): the scaling and slicing "
        "passes cost what the product saved (no faster per layer) and the error was 1.5e-5 on "
        "the normalised maps, 30 × float32's; torch's CPU bf16 `mm` (~6 × float32 here) "
        "returns bf16, so a bf16x3 split cannot keep float32 accuracy (each product's output "
        "is rounded to 8 bits). Keeping a whole chunk's (keys, T, D) results for one cosine "
        "pass was slower (out of cache); blocks of 600 to 4800 pairs with 1 thread: 1200 to 2400 "
        "fastest, 4800 out of cache; with 2 threads on a busy machine 2400 took 0.55 × the "
        "time of 600 (each block's parallel passes wait for both threads).",
        "wav2vec 2.0 is not timed here: its measures use the same code (steve_qt.core.attention.mixing); "
        "value zeroing of a base model (12 layers, 768 → 3072 → 768 MLP) puts T² positions "
        "through 12 MLPs, far more than one forward pass.",
    ]
    return section
