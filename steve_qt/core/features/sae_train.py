"""Training sparse autoencoders on streamed activation rows (CPU, resumable).

Two kinds:

- ``topk`` (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): the k largest
  pre-activations are kept (ReLU), decoder rows held at unit norm after every step, and the AuxK
  loss against dead latents: the residual error ``e = x - x_hat`` is reconstructed from the
  ``k_aux = min(d_in // 2, n_dead)`` largest pre-activations among the dead latents (those that
  have not fired for ``dead_after`` rows, or for one epoch when that is shorter), ``loss = ||x - x_hat||^2 + aux_coef * ||e - e_hat||^2``
  with ``aux_coef = 1/32``. Saved as SAELens architecture ``topk``.
- ``l1`` (as FREUD and Anthropic's April 2024 update): ReLU codes,
  ``loss = ||x - x_hat||^2 + lambda * sum_i f_i ||W_dec[i]||`` (the decoder norms in the penalty,
  so the decoder is not constrained), lambda warmed up linearly over the first 5 % of steps,
  gradients clipped at norm 1. Saved as SAELens architecture ``standard``.

Both train on activations scaled by one constant so that the mean row norm is sqrt(d_in) (the
factor is estimated from the first rows, whose mean is also where ``b_dec`` starts); the factor is folded into the saved weights, which
then take raw activations (``normalize_activations: "none"``), as SAELens's
``fold_activation_norm_scaling_factor`` does.

Rows arrive as an iterator of float arrays (B, d_in) per epoch (file after file, from the
activation cache); a seeded shuffle buffer mixes frames of many files into each batch. A
checkpoint (weights, optimiser, counters, position in the epoch) is written every
``checkpoint_every`` steps and on interruption; training again with the same settings continues
where it stopped, with the same batches (the shuffle is seeded per epoch and the skipped batches
are re-read, not re-trained).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from ..errors import SteveError
from .sae import SAE, activate, pre_activations, save_sae

KINDS = ("topk", "l1")
CHECKPOINT = "checkpoint.pt"
REPORT = "training.json"
#: batches(epoch) -> iterator of float arrays (rows, d_in), the same rows in the same order
#: each time it is called with the same epoch
BatchSource = Callable[[int], Iterable[np.ndarray]]
#: progress(rows done, total rows or None, loss of the last step)
ProgressFn = Callable[[int, "int | None", float], None]


@dataclass
class TrainConfig:
    kind: str = "topk"  # topk | l1
    expansion: int = 8  # d_sae = expansion * d_in
    k: int = 32  # TopK: active latents per row
    l1: float = 5.0  # L1: sparsity coefficient lambda (on activations scaled to norm sqrt(d_in))
    epochs: int = 1
    lr: float = 5e-4
    batch: int = 1024  # rows per step
    seed: int = 0
    shuffle_rows: int = 65536  # shuffle buffer (rows)
    dead_after: int = 200_000  # TopK: a latent that has not fired for this many rows is dead
    aux_coef: float = 1 / 32  # TopK: weight of the AuxK loss
    checkpoint_every: int = 200  # steps

    def check(self) -> None:
        if self.kind not in KINDS:
            raise SteveError(f"unknown SAE kind {self.kind!r} (choose {' or '.join(KINDS)})")
        for name in ("expansion", "epochs", "batch", "shuffle_rows", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise SteveError(f"--{name} must be at least 1, not {getattr(self, name)}")
        if self.kind == "topk" and self.k < 1:
            raise SteveError(f"--k must be at least 1, not {self.k}")
        if not self.lr > 0:
            raise SteveError(f"--lr must be positive, not {self.lr}")

    def resumable_part(self) -> dict:
        """The settings a checkpoint must agree with to be continued."""
        d = asdict(self)
        d.pop("checkpoint_every")
        return d


@dataclass
class TrainState:
    """Everything needed to continue training exactly."""

    params: dict  # name -> tensor (trained on scaled activations)
    optim: dict | None = None
    epoch: int = 0
    batches_done: int = 0  # in the current epoch
    step: int = 0
    rows: int = 0  # rows trained on, all epochs
    scale: float | None = None  # activation scaling factor (mean norm -> sqrt(d_in))
    since_fired: torch.Tensor | None = None  # (d_sae,) rows since each latent last fired
    losses: list = field(default_factory=list)  # (step, loss, mse) every checkpoint
    config: dict = field(default_factory=dict)
    rng: torch.Tensor | None = None  # torch RNG state


# --- the model -------------------------------------------------------------------------------
def init_params(d_in: int, d_sae: int, kind: str, generator: torch.Generator) -> dict:
    """W_dec rows random directions (norm 1 for TopK, 0.1 for L1), W_enc = W_dec.T, zero biases."""
    W_dec = torch.randn(d_sae, d_in, generator=generator)
    W_dec /= W_dec.norm(dim=-1, keepdim=True)
    if kind == "l1":
        W_dec *= 0.1
    return {"W_enc": W_dec.T.clone().contiguous(), "b_enc": torch.zeros(d_sae),
            "W_dec": W_dec, "b_dec": torch.zeros(d_in)}


def architecture_of(kind: str) -> str:
    return "topk" if kind == "topk" else "standard"


def forward(p: dict, x: torch.Tensor, kind: str, k: int):
    """(pre (B, d_sae), codes (B, d_sae), x_hat (B, d_in)) on scaled activations.

    TopK decodes from the k active latents only (gathering their decoder rows: B*k*d_in
    multiply-adds instead of B*d_sae*d_in); its codes are returned without gradient."""
    pre = pre_activations(x, p["W_enc"], p["b_enc"], p["b_dec"], True)
    if kind != "topk":
        codes = activate(pre, architecture_of(kind), k)
        return pre, codes, codes @ p["W_dec"] + p["b_dec"]
    top = torch.topk(pre, k=int(k), dim=-1)
    values = torch.relu(top.values)  # (B, k)
    x_hat = torch.einsum("bk,bkd->bd", values, p["W_dec"][top.indices]) + p["b_dec"]
    codes = torch.zeros_like(pre, requires_grad=False).scatter(-1, top.indices, values.detach())
    return pre, codes, x_hat


def auxk_loss(p: dict, x, x_hat, pre, dead: torch.Tensor) -> torch.Tensor:
    """Gao et al.'s AuxK: reconstruct the error e = x - x_hat from the top k_aux dead latents."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return x.new_zeros(())
    k_aux = min(x.shape[-1] // 2, n_dead)
    dead_pre = torch.where(dead[None, :], pre, torch.full_like(pre, -math.inf))
    top = torch.topk(dead_pre, k_aux, dim=-1)
    aux_codes = torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))
    e = (x - x_hat).detach()
    e_hat = aux_codes @ p["W_dec"]
    return (e_hat - e).pow(2).sum(-1).mean()


def losses(p: dict, x, cfg: TrainConfig, dead: torch.Tensor | None, l1_weight: float):
    """(total loss, mse, codes) of one batch."""
    pre, codes, x_hat = forward(p, x, cfg.kind, cfg.k)
    mse = (x_hat - x).pow(2).sum(-1).mean()
    if cfg.kind == "topk":
        total = mse + cfg.aux_coef * auxk_loss(p, x, x_hat, pre, dead)
    else:
        total = mse + l1_weight * (codes * p["W_dec"].norm(dim=-1)).sum(-1).mean()
    return total, mse, codes


def normalize_decoder_(p: dict) -> None:
    with torch.no_grad():
        p["W_dec"] /= p["W_dec"].norm(dim=-1, keepdim=True).clamp_min(1e-8)


def to_sae(p: dict, scale: float, cfg: TrainConfig, hook_name: str | None,
           model_name: str | None) -> SAE:
    """The trained weights as an SAE on raw activations (the scale folded in)."""
    with torch.no_grad():
        return SAE(W_enc=p["W_enc"].detach() * scale, b_enc=p["b_enc"].detach().clone(),
                   W_dec=p["W_dec"].detach() / scale, b_dec=p["b_dec"].detach() / scale,
                   architecture=architecture_of(cfg.kind),
                   k=cfg.k if cfg.kind == "topk" else None, apply_b_dec_to_input=True,
                   normalize_activations="none", hook_name=hook_name, model_name=model_name)


# --- streaming -------------------------------------------------------------------------------
def shuffled_batches(chunks: Iterable[np.ndarray], batch: int, buffer_rows: int,
                     rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Batches (batch, D) of the rows of ``chunks`` (each (n, D)), mixed in a shuffle buffer of
    ``buffer_rows``; the last batch of the stream may be shorter."""
    pending: list[np.ndarray] = []
    n = 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2:
            raise SteveError(f"activation rows must be (rows, dims), got shape {chunk.shape}")
        if len(chunk):
            pending.append(chunk)
            n += len(chunk)
        if n >= buffer_rows:
            rows = np.concatenate(pending)
            rows = rows[rng.permutation(len(rows))]
            cut = len(rows) - len(rows) % batch
            yield from (rows[i:i + batch] for i in range(0, cut, batch))
            pending, n = ([rows[cut:]], len(rows) - cut) if cut < len(rows) else ([], 0)
    if n:
        rows = np.concatenate(pending)
        rows = rows[rng.permutation(len(rows))]
        yield from (rows[i:i + batch] for i in range(0, len(rows), batch))


def first_rows_stats(source: BatchSource, d_in: int, rows: int = 20000) -> tuple[float, np.ndarray]:
    """(scale, mean) over the first ``rows`` rows of epoch 0: scale = sqrt(d_in) / mean row
    norm; mean (d_in,) the mean row (b_dec starts there, scaled)."""
    norms, total, seen = [], np.zeros(d_in), 0
    for chunk in source(0):
        chunk = np.asarray(chunk, dtype=np.float64)
        if chunk.ndim != 2 or chunk.shape[1] != d_in:
            raise SteveError(f"activation rows have shape {chunk.shape[1:]}, the SAE expects "
                             f"d_in={d_in}")
        norms.append(np.linalg.norm(chunk, axis=1))
        total += chunk.sum(0)
        seen += len(chunk)
        if seen >= rows:
            break
    if not seen:
        raise SteveError("no activation rows to train on")
    mean_norm = float(np.concatenate(norms).mean())
    if not mean_norm > 0:
        raise SteveError("the activations are all zero; nothing to train on")
    return math.sqrt(d_in) / mean_norm, total / seen


# --- checkpoints -----------------------------------------------------------------------------
def save_checkpoint(state: TrainState, directory: Path) -> None:
    tmp = directory / f".{CHECKPOINT}.part"
    torch.save(asdict(state), tmp)
    os.replace(tmp, directory / CHECKPOINT)


def load_checkpoint(directory: Path) -> TrainState | None:
    path = directory / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return TrainState(**torch.load(path, weights_only=False))
    except Exception as exc:  # a torn or foreign file: say so, do not guess
        raise SteveError(f"cannot read the training checkpoint ({exc}); remove it or use --force",
                         path) from exc


# --- the loop --------------------------------------------------------------------------------
def train_sae(source: BatchSource, d_in: int, cfg: TrainConfig, out_dir: str | os.PathLike,
              hook_name: str | None = None, model_name: str | None = None,
              total_rows: int | None = None, progress: ProgressFn | None = None,
              force: bool = False, stop_after_steps: int | None = None) -> SAE | None:
    """Train, checkpointing into ``out_dir``; save the SAE there in SAELens's format at the end.

    ``total_rows``: rows per epoch, if known (progress and the L1 warm-up use it).
    ``stop_after_steps``: stop (with a checkpoint) after this many steps in this call and return
    None, as an interruption would (for tests and short runs).
    """
    cfg.check()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SteveError("is a file, not a folder for an SAE", out)
    out.mkdir(parents=True, exist_ok=True)
    state = None if force else load_checkpoint(out)
    if state is not None and state.config != {**cfg.resumable_part(), "d_in": d_in}:
        raise SteveError("holds a checkpoint trained with other settings; use the same settings "
                         "to continue it, or --force to start over", out)
    if state is None:
        gen = torch.Generator().manual_seed(cfg.seed)
        state = TrainState(params=init_params(d_in, cfg.expansion * d_in, cfg.kind, gen),
                           config={**cfg.resumable_part(), "d_in": d_in},
                           since_fired=torch.zeros(cfg.expansion * d_in, dtype=torch.long))
        state.scale, mean = first_rows_stats(source, d_in)
        state.params["b_dec"] = torch.from_numpy(mean * state.scale).float()
        torch.manual_seed(cfg.seed)
    else:
        torch.set_rng_state(state.rng)
    p = {n: t.clone().requires_grad_(True) for n, t in state.params.items()}
    opt = torch.optim.Adam(list(p.values()), lr=cfg.lr, betas=(0.9, 0.999))
    if state.optim is not None:
        opt.load_state_dict(state.optim)
    steps_per_epoch = math.ceil(total_rows / cfg.batch) if total_rows else None
    warmup = 0.05 * steps_per_epoch * cfg.epochs if steps_per_epoch and cfg.kind == "l1" else 0
    steps_here = 0
    loss = mse = torch.zeros(())
    # a latent is dead after dead_after rows without firing, or one epoch when that is shorter
    dead_after = min(cfg.dead_after, total_rows) if total_rows else cfg.dead_after

    def checkpoint():
        state.params = {n: t.detach().clone() for n, t in p.items()}
        state.optim = opt.state_dict()
        state.rng = torch.get_rng_state()
        state.losses.append((state.step, float(loss.detach()), float(mse.detach())))
        save_checkpoint(state, out)

    try:
        while state.epoch < cfg.epochs:
            rng = np.random.default_rng([cfg.seed, state.epoch])
            batches = shuffled_batches(source(state.epoch), cfg.batch, cfg.shuffle_rows, rng)
            for i, rows in enumerate(batches):
                if i < state.batches_done:
                    continue  # trained before the interruption
                if rows.shape[1] != d_in:
                    raise SteveError(f"activation rows have {rows.shape[1]} dimensions, the SAE "
                                     f"expects d_in={d_in}")
                x = torch.from_numpy(rows) * state.scale
                dead = state.since_fired >= dead_after
                lam = cfg.l1 * min(1.0, (state.step + 1) / warmup) if warmup else cfg.l1
                loss, mse, codes = losses(p, x, cfg, dead, lam)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.kind == "l1":
                    torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
                opt.step()
                if cfg.kind == "topk":
                    normalize_decoder_(p)
                fired = (codes > 0).any(0)
                state.since_fired = torch.where(fired, 0, state.since_fired + len(rows))
                state.step += 1
                state.batches_done = i + 1
                state.rows += len(rows)
                steps_here += 1
                if progress:
                    progress(state.rows, total_rows * cfg.epochs if total_rows else None,
                             float(loss.detach()))
                if state.step % cfg.checkpoint_every == 0:
                    checkpoint()
                if stop_after_steps is not None and steps_here >= stop_after_steps:
                    checkpoint()
                    return None
            state.epoch += 1
            state.batches_done = 0
    except KeyboardInterrupt:
        checkpoint()
        raise
    checkpoint()
    sae = to_sae(p, state.scale, cfg, hook_name, model_name)
    save_sae(sae, out, force=True)
    write_report(out, {"config": {**cfg.resumable_part(), "d_in": d_in,
                                  "d_sae": cfg.expansion * d_in},
                       "rows_trained": state.rows, "steps": state.step,
                       "activation_scale": state.scale, "losses": state.losses})
    (out / CHECKPOINT).unlink(missing_ok=True)
    return sae


def write_report(out: Path, entries: dict) -> None:
    """Merge ``entries`` into ``out/training.json`` (our own file beside SAELens's two)."""
    from ..fileio import write_text_atomic

    path = out / REPORT
    report = json.loads(path.read_text()) if path.is_file() else {}
    report.update(entries)
    write_text_atomic(path, json.dumps(report, indent=2) + "\n", force=True)


# --- evaluation ------------------------------------------------------------------------------
def evaluate(sae: SAE, chunks: Iterable[np.ndarray]) -> dict:
    """On held-out rows: fraction of variance explained (1 - SSE / total sum of squares about
    the mean), mean L0 (active latents per row), share of latents that never fire, rows."""
    n, sse, sum_x, sum_sq, l0 = 0, 0.0, None, 0.0, 0.0
    fired = torch.zeros(sae.d_sae, dtype=torch.bool)
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
            l0 += float((codes > 0).sum())
            fired |= (codes > 0).any(0)
            n += len(x)
    if not n:
        raise SteveError("no held-out activation rows to evaluate on")
    total = sum_sq - float(sum_x.pow(2).sum()) / n
    return {"rows": n, "fraction_variance_explained": 1.0 - sse / total if total > 0 else
            float("nan"), "l0": l0 / n, "dead_share": float((~fired).float().mean()),
            "mse_per_row": sse / n}

