"""3. Peak memory of one extraction as the input grows (fresh process per point)."""

from __future__ import annotations

import numpy as np

from .common import Config, Section, memory_probe

COLUMNS = ["model", "input", "T", "RSS before MiB", "bare forward ΔRSS MiB",
           "capture ΔRSS MiB", "capture torch tensors MiB", "stored MiB",
           "fallback capture ΔRSS MiB"]


def fit(frames: list[int], mib: list[float]) -> tuple[np.ndarray, str]:
    """Least-squares ``MiB = a + b·T (+ c·T²)``; returns coefficients (a, b, c) and a formula."""
    t = np.asarray(frames, dtype=float)
    y = np.asarray(mib, dtype=float)
    deg = 2 if len(t) >= 3 else 1
    c = np.polyfit(t, y, deg)[::-1]  # a, b[, c]
    c = np.pad(c, (0, 3 - len(c)))
    text = f"{c[0]:.1f} + {c[1] * 1e3:.2f}e-3·T + {c[2] * 1e6:.2f}e-6·T² MiB"
    return c, text


def model_rows(cfg: Config, label: str, spec: str, section: Section) -> dict:
    points = []
    for seconds in cfg.memory_durations:
        common = ["--model", spec, "--seconds", str(seconds), "--threads", str(cfg.threads),
                  "--repeats", str(cfg.memory_repeats),
                  "--warmup", str(cfg.memory_warmup)]
        bare = memory_probe(cfg, [*common, "--what", "bare"])
        ours = memory_probe(cfg, [*common, "--what", "ours",
                                  *(["--torch-alloc"] if cfg.checks else [])])
        fallback = "—"
        if spec == "whisper":
            p = memory_probe(cfg, [*common, "--what", "fallback"])
            fallback = f"{p['delta_mib']:.0f}"
        torch_mib = ours.get("torch_peak_mib")
        section.rows.append([label, f"{seconds:g} s", str(ours["frames"]),
                             f"{ours['rss_before_mib']:.0f}", f"{bare['delta_mib']:.0f}",
                             f"{ours['delta_mib']:.0f}",
                             "n/a" if torch_mib is None else f"{torch_mib:.0f}",
                             f"{ours['stored_mib']:.1f}", fallback])
        points.append((ours["frames"], ours["delta_mib"], ours["stored_mib"], bare["delta_mib"]))
    frames = [p[0] for p in points]
    if len(set(frames)) < 2:
        return dict(label=label, frames=frames, coef=None, text="", points=points)
    coef, text = fit(frames, [p[1] for p in points])
    return dict(label=label, frames=frames, coef=coef, text=text, points=points)


def describe(res: dict) -> str:
    if res["coef"] is None:
        return f"{res['label']}: one input length only, no fit."
    a, b, c = res["coef"]
    t_max = max(res["frames"])
    quad = c * t_max ** 2
    lin = b * t_max
    return (f"{res['label']}: ΔRSS ≈ {res['text']} (least squares over T = "
            f"{', '.join(map(str, res['frames']))}); at T = {t_max} the T² term is "
            f"{quad:.0f} MiB and the T term {lin:.0f} MiB.")


def run(cfg: Config) -> Section:
    section = Section("memory", "3. Peak memory of one extraction vs input length", COLUMNS)
    fits = [model_rows(cfg, "Whisper tiny.en encoder", "whisper", section)]
    from . import wav2vec2_parts as w2

    spec = w2.model_spec(cfg)
    if spec is not None:
        fits.append(model_rows(cfg, w2.label(cfg), spec, section))
    else:
        section.notes.append(w2.MISSING)
    section.notes += [
        "Each cell is a fresh process: model loaded, input prepared, one warm-up run discarded, "
        "freed heap returned (malloc_trim), peak-RSS mark reset via /proc/self/clear_refs, then "
        "peak RSS (VmHWM) after one run minus RSS before it; median of "
        f"{cfg.memory_repeats} such runs. 'bare forward' is the same model's "
        "forward pass without capture, for reference. 'torch tensors' is the peak of live torch "
        "tensor bytes during a second run (torch.profiler memory timeline; kernels' internal "
        "buffers and numpy-owned arrays not included). 'stored' is what the extraction returns. "
        "'fallback' is the Whisper capture's public-ops path (`use_lse=False`: T×1500 "
        "float32 scores and softmax per layer), used only when torch lacks the flash kernel.",
        "Whisper always encodes the padded 30 s window, so the forward pass costs the same for "
        "every input; capture adds per layer one T×T float32 block per head (the kernel's "
        "log-sum-exp normalises it, so the padding keys are never multiplied out), and the "
        "result is T×T float16 weights + scores per head, so the capture part grows with T and "
        "the stored part with T² (216 MB at T = 1500 for 4 layers × 6 heads). wav2vec 2.0 "
        "has no padding: its forward pass itself holds T×T attention per head, so everything "
        "grows with T².",
    ]
    section.notes += [describe(f) for f in fits]
    return section
