"""1b. Capture overhead for wav2vec 2.0 (base-sized random model) through its adapter."""

from __future__ import annotations

import numpy as np

from . import wav2vec2_parts as w2
from .common import Config, Section, interleave, make_audio


def sdpa_twin(spec_dir: str):
    """The same saved weights loaded with SDPA attention (transformers' default), for reference."""
    from transformers import Wav2Vec2ForCTC

    return Wav2Vec2ForCTC.from_pretrained(spec_dir, attn_implementation="sdpa").eval()


def add_rows(cfg: Config, section: Section, ratio_row, other_rows: list) -> None:
    spec = w2.model_spec(cfg)
    if spec is None:
        section.notes.append(w2.MISSING)
        return
    adapter = w2.load_adapter(spec)
    model = w2.hf_model(adapter)
    impl = w2.attn_implementation(model)
    sdpa = sdpa_twin(spec.partition(":")[2]) if impl != "sdpa" else None
    name = w2.label(cfg)
    source = ""
    diffs: list[float] = []
    store: list[str] = []  # the stored arrays alone: allocated and written once
    for seconds in cfg.durations:
        audio, source = make_audio(seconds)
        frames = w2.num_frames(adapter, len(audio))
        shape = (adapter.num_layers, 1, adapter.num_heads, frames, frames)
        variants = {"bare": lambda: w2.bare_forward(adapter, audio),
                    "capture": lambda: w2.extract(adapter, audio),
                    "store": lambda: [np.empty(shape, np.float16).fill(0) for _ in range(2)]}
        if sdpa is not None:
            variants["sdpa"] = lambda: w2.bare_forward(adapter, audio, model=sdpa)
        t = interleave(variants, cfg.repeats, cfg.warmup)
        section.rows.append(ratio_row(f"{name}, bare = adapter's model ({impl})", seconds,
                                      frames, t["bare"], t["capture"]))
        if sdpa is not None:
            section.rows.append(ratio_row(f"{name}, bare = same weights with SDPA", seconds,
                                          frames, t["sdpa"], t["capture"]))
        store.append(f"{seconds:g} s: {t['store'].median * 1e3:.0f} ms "
                     f"({100 * t['store'].median / t['bare'].median:.1f}% of the bare forward; "
                     f"capture − bare = {(t['capture'].median - t['bare'].median) * 1e3:.0f} ms)")
        if cfg.checks:
            maps = w2.extract(adapter, audio).maps["encoder"]
            for a, b in zip((maps.weights, maps.scores), w2.full_reference(adapter, audio)):
                diffs.append(float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()))
    section.notes.append(
        f"wav2vec 2.0 input: {source}. Random `Wav2Vec2ForCTC` ({cfg.wav2vec2_config}) saved with "
        "`save_pretrained` to a temp dir and loaded through `get_adapter('wav2vec2:' + dir)`. "
        f"Bare = the adapter's own loaded model called on the same input_values with nothing "
        f"captured (its attention implementation: `{impl}`, which hands every layer to "
        "transformers' SDPA function when nothing is captured). Capture = "
        "`adapter.extract(audio, components=['encoder'])` (everything the adapter does: input "
        "preparation, the forward pass in which each layer's attention takes its output and "
        "per-row log-sum-exp from the flash-attention kernel SDPA uses, then computes in blocks "
        "of 64 query rows the T×T scores and weights = exp(scores − lse), written straight into "
        "the float16 (N, 1, M, T, T) arrays, and the CTC transcript). Target for wav2vec 2.0: "
        "≤ 1.10 (issue 14)."
        + (" Because the adapter's model does not use SDPA, the same weights were also loaded "
           "with `attn_implementation='sdpa'` and timed in the same interleaved rounds; both "
           "ratios are reported." if sdpa is not None else "")
        + (f" Max |adapter − full float32 (M, T, T) computation rounded to float16| on weights "
           f"and scores: {max(diffs):.3g}." if diffs else "")
        + (" Part of the overhead is just holding the result: allocating the two float16 "
           "(N, 1, M, T, T) arrays (weights, scores) and writing them once, timed in the same "
           "rounds: " + "; ".join(store) + "." if store else ""))
