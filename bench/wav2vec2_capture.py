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
    from .capture import W2V2_TARGET

    spec = w2.model_spec(cfg)
    if spec is None:
        section.notes.append(w2.MISSING)
        return
    adapter = w2.load_adapter(spec)
    model = w2.hf_model(adapter)
    impl = w2.attn_implementation(model)
    sdpa = sdpa_twin(spec.partition(":")[2])
    name = w2.label(cfg)
    source = ""
    diffs: list[float] = []
    store: list[str] = []  # the stored arrays alone: allocated and written once
    for seconds in cfg.durations:
        audio, source = make_audio(seconds)
        frames = w2.num_frames(adapter, len(audio))
        shape = (adapter.num_layers, 1, adapter.num_heads, frames, frames)
        def capture_fresh():
            """Every result in new memory, as when the results before are still held."""
            from steve_qt.core.models.buffers import BufferPool
            import steve_wav2vec2.adapter as w2_adapter

            pool, w2_adapter.RESULTS = w2_adapter.RESULTS, BufferPool(max_bytes=0)
            try:
                w2.extract(adapter, audio)
            finally:
                w2_adapter.RESULTS = pool

        variants = {"bare": lambda: w2.bare_forward(adapter, audio, model=sdpa),
                    "capture": lambda: w2.extract(adapter, audio),
                    "fresh": capture_fresh,
                    "eager": lambda: w2.bare_forward(adapter, audio),
                    "store": lambda: [np.empty(shape, np.float16).fill(0) for _ in range(2)]}
        t = interleave(variants, cfg.repeats, cfg.warmup)
        section.rows.append(ratio_row(f"{name}, bare = transformers' default (SDPA)", seconds,
                                      frames, t["bare"], t["capture"]))
        other_rows.append(ratio_row(f"{name}: capture into new memory (earlier results held)",
                                    seconds, frames, t["bare"], t["fresh"]))
        other_rows.append(ratio_row(f"{name}: the adapter's model with nothing captured ({impl}: "
                                    "eager attention)", seconds, frames, t["bare"], t["eager"]))
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
        "Bare = the same saved weights loaded with transformers' default attention (SDPA, "
        "`attn_implementation='sdpa'`), called on the same input_values. Capture = "
        "`adapter.extract(audio, components=['encoder'])`: everything the adapter does (input "
        "preparation; the forward pass, in which each layer's attention is computed with eager "
        "attention's own operations — q·kᵀ·scaling, softmax, weights·v, in a float32 (M, T, T) "
        "scratch made once per extraction — and its scores and weights are copied into the "
        "float16 (N, 1, M, T, T) arrays; the CTC transcript). The weights and every layer output "
        "are transformers' eager attention's, bit for bit (tests); they differ from SDPA's by "
        "float32 rounding. The result arrays come from a pool that uses the memory of earlier "
        "results nobody holds any more (`steve_qt.core.models.buffers`): the bench drops each result, so "
        "'capture' reuses its memory; the row 'into new memory' gives the adapter a pool that "
        "keeps nothing, so every capture writes into new memory from the kernel, as when "
        f"earlier results are still held. Target for wav2vec 2.0: ≤ {W2V2_TARGET} "
        "judged against SDPA."
        + (f" Max |adapter − full float32 (M, T, T) computation rounded to float16| on weights "
           f"and scores: {max(diffs):.3g}." if diffs else "")
        + (" Part of the overhead is just holding the result: allocating the two float16 "
           "(N, 1, M, T, T) arrays (weights, scores) and writing them once, timed in the same "
           "rounds: " + "; ".join(store) + "." if store else ""))
