"""``steve-qt info FILE.npz``: what an attention (or activations) file holds."""

from __future__ import annotations

import argparse


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="describe an .npz written by steve-qt extract or activations",
                       description=__doc__)
    p.add_argument("npz", help="file written by steve-qt extract or steve-qt activations")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.models.actnpz import is_activation_file
    from ..core.frames import window_name
    from ..core.models.npzio import load_npz

    if is_activation_file(args.npz):
        return activations_info(args.npz)
    c = load_npz(args.npz)
    m = c.maps
    n, _, heads, q, k = m.weights.shape
    qa = "tokens" if m.query_grid is None else "frames"
    ka = "tokens" if m.key_grid is None else "frames"
    print(f"file:        {args.npz}")
    print(f"model:       {m.model}")
    print(f"component:   {m.title} ({m.component})")
    print(f"attention:   {n} layers x {heads} heads x {q} query {qa} x {k} key {ka} "
          f"(float16, {m.nbytes / 1e6:.2f} MB with scores, padding mass and measures)")
    for name, arr in m.measures.items():
        per = "per head" if arr.shape[2] > 1 else "per layer"
        print(f"measure:     {name} {tuple(arr.shape)} ({per})")
    if m.key_grid is not None:
        t0, t1 = m.key_extent_seconds()
        print(f"frames:      {m.spf} samples per frame at {m.sample_rate} Hz "
              f"({1000 * m.spf / m.sample_rate:g} ms), {t0:.3f}-{t1:.3f} s")
    if m.num_windows > 1:
        print(f"window:      {window_name(m.window, m.num_windows).removeprefix('window ')}")
    print(f"padding:     max {float(m.padding_mass.max()):.3f}, mean "
          f"{float(m.padding_mass.mean()):.3f} of each query row went to cropped padding keys")
    print(f"audio:       {c.audio_path or '-'} ({m.num_samples} samples at {m.sample_rate} Hz)")
    if c.transcript.text:
        print(f"transcript:  {c.transcript.text}")
    if c.alignment is not None:
        for name, tier in c.alignment.tiers.items():
            labels = " ".join(iv.label or "_" for iv in tier.intervals[:12])
            more = " ..." if len(tier.intervals) > 12 else ""
            print(f"tier {name + ':':7s} {len(tier.intervals)} intervals: {labels}{more}")
    else:
        print("tiers:       none")
    return 0


def activations_info(path) -> int:
    from ..core.models.actnpz import load_activation_file
    from ..core.models.sites import sites_table

    f = load_activation_file(path)
    raw = f.raw
    rate = int(raw["sample_rate"])
    print(f"file:        {path}")
    print(f"model:       {raw['model']}")
    print(f"activations: {len(f.sites)} site(s), float16; frames sites {int(raw['num_frames'])} "
          f"frames of {1000 * f.grid.hop / rate:g} ms, tokens sites {len(raw['token_labels'])} tokens")
    print(f"audio:       {raw['audio_path'] or '-'} ({int(raw['num_samples'])} samples at {rate} Hz)")
    if str(raw["transcript"]):
        print(f"transcript:  {raw['transcript']}")
    print(sites_table(f.sites))
    return 0
