"""``steve-qt info FILE.npz``: what an attention file holds."""

from __future__ import annotations

import argparse


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("info", help="describe an .npz written by steve-qt extract",
                       description=__doc__)
    p.add_argument("npz", help="file written by steve-qt extract")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.npzio import load_npz

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
        print(f"window:      {m.window + 1} of {m.num_windows} (30 s each)")
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
