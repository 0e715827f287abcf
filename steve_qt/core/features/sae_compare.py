"""Do two SAEs learn the same features? Latents matched one to one by decoder direction.

The cost is the cosine similarity of decoder rows (``W_dec`` (d_sae, d_in), each row a
feature's direction in the site's space); the one-to-one matching that maximises the summed
cosine is the Hungarian assignment (``scipy.optimize.linear_sum_assignment``). The shares of
matched pairs above 0.7 and 0.9 are the stability numbers AudioSAE (Aparin et al., 2026) and
others report across seeds. The floor is the same comparison of the first SAE against a random
SAE of the same shape (decoder rows drawn uniformly on the sphere, seeded): what matching alone
achieves in d_in dimensions.
"""

from __future__ import annotations

import numpy as np

from ..errors import SteveError

THRESHOLDS = (0.7, 0.9)


def unit_rows(W: np.ndarray) -> np.ndarray:
    W = np.asarray(W, dtype=np.float64)
    n = np.linalg.norm(W, axis=1, keepdims=True)
    return W / np.where(n > 0, n, 1.0)


def decoder_cosines(W_a: np.ndarray, W_b: np.ndarray) -> np.ndarray:
    """(d_sae_a, d_sae_b) cosine similarity of the decoder rows (float64)."""
    return unit_rows(W_a) @ unit_rows(W_b).T


def match_features(W_a: np.ndarray, W_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index in b of each latent of a, its cosine): the one-to-one assignment that maximises
    the summed cosine (``linear_sum_assignment`` on minus the cosine matrix)."""
    from scipy.optimize import linear_sum_assignment

    cos = decoder_cosines(W_a, W_b)
    rows, cols = linear_sum_assignment(-cos)
    order = np.argsort(rows)
    cols = cols[order]
    return cols, cos[np.arange(len(cols)), cols]


def shares(cos: np.ndarray) -> dict:
    return {f"share_above_{t}": float((cos > t).mean()) for t in THRESHOLDS}


def random_decoder(d_sae: int, d_in: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((d_sae, d_in))


def compare_saes(a, b, seed: int = 0) -> dict:
    """Match SAE ``b``'s latents to ``a``'s; the shares above the thresholds for the pair and
    for ``a`` against a random SAE of the same shape (the floor); per-latent cosines."""
    if (a.d_in, a.d_sae) != (b.d_in, b.d_sae):
        raise SteveError(f"the SAEs have different shapes ({a.d_in} -> {a.d_sae} and "
                         f"{b.d_in} -> {b.d_sae}); only SAEs of one shape can be matched")
    W_a, W_b = a.W_dec.detach().double().numpy(), b.W_dec.detach().double().numpy()
    cols, cos = match_features(W_a, W_b)
    _, floor = match_features(W_a, random_decoder(a.d_sae, a.d_in, seed))
    return {"n_features": int(a.d_sae), "d_in": int(a.d_in), **shares(cos),
            "mean_cosine": float(cos.mean()), "median_cosine": float(np.median(cos)),
            "random_floor": {**shares(floor), "mean_cosine": float(floor.mean()),
                             "seed": int(seed)},
            "sites": [a.hook_name, b.hook_name],
            "match": cols.tolist(), "cosine": cos.tolist(), "floor_cosine": floor.tolist()}


def histogram_png(result: dict, path, title: str = "") -> None:
    """Histogram of matched cosines (pair and random floor) as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    bins = np.linspace(-0.2, 1.0, 61)
    ax.hist(result["cosine"], bins=bins, alpha=0.75, label="matched pairs")
    ax.hist(result["floor_cosine"], bins=bins, alpha=0.6, label="vs a random SAE (floor)")
    for t in THRESHOLDS:
        ax.axvline(t, color="k", lw=0.8, ls="--")
    ax.set_xlabel("decoder cosine of the matched latent")
    ax.set_ylabel("latents")
    ax.set_title(title or f"{result['n_features']} latents: "
                 f"{100 * result['share_above_0.7']:.1f}% > 0.7, "
                 f"{100 * result['share_above_0.9']:.1f}% > 0.9", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
