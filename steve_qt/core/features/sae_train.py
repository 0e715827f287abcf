"""Training sparse autoencoders on streamed activation rows: several sites in one pass,
reproducible bit for bit, resumable exactly.

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

Data: a :data:`SiteSource` yields, per epoch, ``(file index, {site: rows (n, d_in)})`` in a
fixed file order; every site's SAE gets the rows of each file once. Each site has its own
:class:`ShuffleBuffer` (rows of whole files, permuted by a generator seeded with
``(seed, epoch)`` whenever ``shuffle_rows`` rows are held), so a site trained with others gets
exactly the batches it gets alone.

Device and precision: each site's shuffle buffer holds its rows on the training device and
gives out batches there. ``precision`` ``float32`` trains in float32; ``bfloat16`` and
``float16`` (CUDA only, with loss scaling) run the forward pass under ``torch.autocast`` (the
matrix products in the lower precision; weights, Adam's state and the loss in float32); ``auto``
is bfloat16 on a CUDA device that has it and float32 otherwise (:func:`resolve_precision`).

Reproducible: the same data, settings and seed give the same weights bit for bit on one machine
(float32 on the CPU). Training runs with ``torch.use_deterministic_algorithms(True)`` (the
TopK decoder's gather has a scatter-add backward that is otherwise summed in a varying order);
the torch thread count is recorded, since a BLAS may split sums differently for another count.

Resumable: a checkpoint per site (weights, Adam's state, counters, the dead-latent clocks and the
shuffle buffer's position: the file where its current fill began, the rows it carried over
(fewer than a batch), its generator's state at that point and how many batches of the fill were
trained) is written every ``checkpoint_seconds`` (and every ``checkpoint_every`` steps if set),
on SIGINT/SIGTERM, and at the end. Training again with the same settings re-reads only the
files of the current fill and continues with exactly the batches an uninterrupted run trains.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..errors import SteveError
from .sae import SAE, activate, pre_activations, save_sae

KINDS = ("topk", "l1")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
CHECKPOINT = "checkpoint.pt"
REPORT = "training.json"
#: batches(epoch) -> iterator of float arrays (rows, d_in), the same rows in the same order
#: each time it is called with the same epoch (one site; each array counts as one "file")
BatchSource = Callable[[int], Iterable[np.ndarray]]
#: source(epoch, first file, site names) -> iterator of (file index, {site: rows (n, d_in)}),
#: files in a fixed order from ``first file`` on, the same rows each time
SiteSource = Callable[[int, int, Sequence[str]], Iterable[tuple[int, dict]]]
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
    checkpoint_every: int = 0  # steps (0: by time only)
    checkpoint_seconds: float = 30.0  # a checkpoint at least this often
    precision: str = "auto"  # auto | float32 | bfloat16 | float16 (see resolve_precision)

    def check(self, d_in: int | None = None) -> None:
        """SteveError naming the first option that does not fit (alone, with the others, or
        with a site of width ``d_in``)."""
        if self.kind not in KINDS:
            raise SteveError(f"unknown SAE kind {self.kind!r} (choose {' or '.join(KINDS)})")
        if self.precision not in PRECISIONS:
            raise SteveError(f"unknown --precision {self.precision!r} (choose "
                             f"{', '.join(PRECISIONS)})")
        for name in ("expansion", "epochs", "batch", "shuffle_rows"):
            if getattr(self, name) < 1:
                raise SteveError(f"--{name.replace('_', '-')} must be at least 1, "
                                 f"not {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise SteveError(f"checkpoint_every must be 0 or more, not {self.checkpoint_every}")
        if not self.checkpoint_seconds > 0:
            raise SteveError(f"--checkpoint-seconds must be positive, not "
                             f"{self.checkpoint_seconds}")
        if self.kind == "topk" and self.k < 1:
            raise SteveError(f"--k must be at least 1, not {self.k}")
        if not self.lr > 0:
            raise SteveError(f"--lr must be positive, not {self.lr}")
        if self.kind == "l1" and not self.l1 >= 0:
            raise SteveError(f"--l1 must be 0 or more, not {self.l1}")
        if self.dead_after < 1:
            raise SteveError(f"dead_after must be at least 1, not {self.dead_after}")
        if self.shuffle_rows < self.batch:
            raise SteveError(f"the shuffle buffer ({self.shuffle_rows} rows) must hold at least "
                             f"one batch (--batch {self.batch})")
        if d_in is not None:
            if self.kind == "topk" and self.k > self.expansion * d_in:
                raise SteveError(f"--k {self.k} is more than the SAE's {self.expansion * d_in} "
                                 f"latents (--expansion {self.expansion} x d_in {d_in})")

    def resumable_part(self) -> dict:
        """The settings a checkpoint must agree with to be continued."""
        d = asdict(self)
        d.pop("checkpoint_every")
        d.pop("checkpoint_seconds")
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
    rng: torch.Tensor | None = None  # torch RNG state (nothing draws from it after the init)
    buffer: dict | None = None  # the shuffle buffer's position (ShuffleBuffer.state())
    threads: int = 0  # torch threads of the run that wrote the checkpoint
    scaler: dict | None = None  # float16: the gradient scaler's state


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
    e_hat = (aux_codes @ p["W_dec"]).float()
    return (e_hat - e).pow(2).sum(-1).mean()


def losses(p: dict, x, cfg: TrainConfig, dead: torch.Tensor | None, l1_weight: float):
    """(total loss, mse, codes) of one batch."""
    pre, codes, x_hat = forward(p, x, cfg.kind, cfg.k)
    x_hat = x_hat.float()  # the loss in float32 under autocast (no-op in float32)
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
class ShuffleBuffer:
    """Rows of whole files, mixed: once ``buffer_rows`` rows are held (with the rows carried over
    from the last fill) they are permuted and given out in batches; the rows that do not fill a
    batch are carried into the next fill. ``finish`` gives out the rest (the last batch may be
    shorter). One generator, seeded with ``(seed, epoch)``, draws every permutation.

    The rows are held as float32 tensors on ``device`` (each file's rows are moved there as they
    arrive) and the batches are slices of the permuted rows there; the permutation is drawn on
    the host by the same generator whatever the device, so every device gets the same batches.

    Its :meth:`state` is where the current fill began (file index, rows carried in, the
    generator's state) and how many of the fill's batches were given out: small, and enough to
    rebuild the fill by re-reading its files and to skip the batches trained."""

    def __init__(self, batch: int, buffer_rows: int, seed: int, epoch: int,
                 state: dict | None = None, device: str | torch.device = "cpu"):
        self.batch, self.buffer_rows = batch, buffer_rows
        self.device = torch.device(device)
        self.rng = np.random.default_rng([seed, epoch])
        self.start_file = 0
        self.carry: torch.Tensor | None = None
        self.skip = 0  # batches of the next fill trained before (a resumed run)
        self.given = 0  # batches of the current fill given out
        if state is not None:
            self.start_file = int(state["start_file"])
            carry = state["carry"]
            self.carry = (None if carry is None else
                          torch.as_tensor(np.asarray(carry, dtype=np.float32)).to(self.device))
            self.rng.bit_generator.state = state["rng"]
            self.skip = int(state["given"])
        self.start_rng = self.rng.bit_generator.state
        self.next_file = self.start_file
        self.pending: list[torch.Tensor] = []
        self.held = 0 if self.carry is None else len(self.carry)

    def state(self) -> dict:
        """The position (``carry`` as a host array: the checkpoint does not depend on the
        device)."""
        carry = None if self.carry is None else self.carry.cpu().numpy()
        return {"start_file": self.start_file, "carry": carry, "rng": self.start_rng,
                "given": max(self.given, self.skip)}

    def add(self, file_index: int, rows: np.ndarray) -> Iterator[torch.Tensor]:
        """Take one file's rows (files before ``next_file`` are ignored: already in)."""
        if file_index < self.next_file:
            return
        if file_index != self.next_file:
            raise RuntimeError(f"file {file_index} came before file {self.next_file}")
        self.next_file = file_index + 1
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2:
            raise SteveError(f"activation rows must be (rows, dims), got shape {rows.shape}")
        if len(rows):
            self.pending.append(torch.from_numpy(rows).to(self.device))
            self.held += len(rows)
        if self.held >= self.buffer_rows:
            yield from self._fill(last=False)

    def finish(self) -> Iterator[torch.Tensor]:
        """The rows still held, shuffled, in batches (the last may be shorter)."""
        if self.held:
            yield from self._fill(last=True)

    def _fill(self, last: bool) -> Iterator[torch.Tensor]:
        parts = ([] if self.carry is None or not len(self.carry) else [self.carry]) + self.pending
        rows = torch.cat(parts) if len(parts) > 1 else parts[0]
        order = torch.from_numpy(self.rng.permutation(len(rows))).to(self.device)
        rows = rows[order]
        cut = len(rows) if last else len(rows) - len(rows) % self.batch
        for j, i in enumerate(range(0, cut, self.batch)):
            if j < self.skip:
                continue
            self.given = j + 1
            yield rows[i:i + self.batch]
        self.carry = rows[cut:].clone()
        self.pending, self.held = [], len(self.carry)
        self.start_file, self.start_rng = self.next_file, self.rng.bit_generator.state
        self.skip = self.given = 0


def shuffled_batches(chunks: Iterable[np.ndarray], batch: int, buffer_rows: int,
                     seed: int = 0, epoch: int = 0,
                     device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
    """Batches (batch, D) of the rows of ``chunks`` (each (n, D), one "file" each) as the
    trainer draws them (:class:`ShuffleBuffer`), on ``device``."""
    buf = ShuffleBuffer(batch, buffer_rows, seed, epoch, device=device)
    for i, chunk in enumerate(chunks):
        yield from buf.add(i, chunk)
    yield from buf.finish()


def chunk_source(source: BatchSource, name: str) -> SiteSource:
    """A one-site :data:`SiteSource` from a :data:`BatchSource` (each array one "file")."""
    def rows(epoch: int, first: int, names: Sequence[str]):
        for i, chunk in enumerate(source(epoch)):
            if i >= first:
                yield i, {name: chunk}
    return rows


def first_rows_stats(source: SiteSource, dims: dict, rows: int = 20000) -> dict:
    """{site: (scale, mean)} over the first ``rows`` rows of epoch 0 of each site: scale =
    sqrt(d_in) / mean row norm; mean (d_in,) the mean row (b_dec starts there, scaled)."""
    acc = {s: ([], np.zeros(d), 0) for s, d in dims.items()}
    todo = set(dims)
    for _, by_site in source(0, 0, sorted(dims)):
        for s in list(todo):
            chunk = np.asarray(by_site[s], dtype=np.float64)
            if chunk.ndim != 2 or chunk.shape[1] != dims[s]:
                raise SteveError(f"activation rows of {s} have shape {chunk.shape[1:]}, the SAE "
                                 f"expects d_in={dims[s]}")
            norms, total, seen = acc[s]
            norms.append(np.linalg.norm(chunk, axis=1))
            acc[s] = (norms, total + chunk.sum(0), seen + len(chunk))
            if acc[s][2] >= rows:
                todo.discard(s)
        if not todo:
            break
    out = {}
    for s, (norms, total, seen) in acc.items():
        if not seen:
            raise SteveError("no activation rows to train on")
        mean_norm = float(np.concatenate(norms).mean())
        if not mean_norm > 0:
            raise SteveError(f"the activations of {s} are all zero; nothing to train on")
        out[s] = (math.sqrt(dims[s]) / mean_norm, total / seen)
    return out


# --- checkpoints -----------------------------------------------------------------------------
def save_checkpoint(state: TrainState, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
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


class TrainingInterrupted(Exception):
    """Training stopped by SIGINT/SIGTERM after writing its checkpoints."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


@contextlib.contextmanager
def _stop_on_signals(flag: dict):
    """SIGINT and SIGTERM set ``flag['signal']`` (the loop checkpoints and stops after its
    current step); a second SIGINT raises KeyboardInterrupt at once. Only in the main thread."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame):
        if flag.get("signal") and signum == signal.SIGINT:
            raise KeyboardInterrupt
        flag["signal"] = signum

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deterministic():
    """torch's deterministic algorithms for the block (restored after; an op without a
    deterministic kernel on a GPU warns instead of failing)."""
    was = torch.are_deterministic_algorithms_enabled()
    was_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)


# --- one site's training -----------------------------------------------------------------------
@dataclass
class SiteTarget:
    """One SAE to train: its site, the width of the site, where it goes."""

    site: str
    d_in: int
    out: Path
    hook_name: str | None = None
    model_name: str | None = None
    total_rows: int | None = None  # rows per epoch, if known (progress, L1 warm-up, dead clock)


class SiteTrainer:
    """The training of one SAE: weights, Adam, counters and its shuffle buffer."""

    def __init__(self, target: SiteTarget, cfg: TrainConfig, device: str, data_id: str | None,
                 force: bool):
        self.t, self.cfg, self.device = target, cfg, torch.device(device)
        self.out = Path(target.out)
        if self.out.exists() and not self.out.is_dir():
            raise SteveError("is a file, not a folder for an SAE", self.out)
        self.config = {**cfg.resumable_part(), "d_in": target.d_in, "data": data_id}
        self.state = None if force else load_checkpoint(self.out)
        if self.state is not None and self.state.config != self.config:
            raise SteveError("holds a checkpoint trained with other settings or data; use the "
                             "same settings to continue it, or --force to start over", self.out)
        self.resumed = self.state is not None
        self.loss = self.mse = torch.zeros(())
        self.buffer: ShuffleBuffer | None = None

    def start(self, scale: float | None, mean: np.ndarray | None) -> None:
        """Initialise (seeded) or restore the checkpoint; then the optimiser and the buffer."""
        cfg, d_in = self.cfg, self.t.d_in
        if self.state is None:
            gen = torch.Generator().manual_seed(cfg.seed)
            self.state = TrainState(params=init_params(d_in, cfg.expansion * d_in, cfg.kind, gen),
                                    config=self.config,
                                    since_fired=torch.zeros(cfg.expansion * d_in,
                                                            dtype=torch.long))
            self.state.scale = scale
            self.state.params["b_dec"] = torch.from_numpy(mean * scale).float()
        s = self.state
        self.p = {n: t.to(self.device).clone().requires_grad_(True) for n, t in s.params.items()}
        self.opt = torch.optim.Adam(list(self.p.values()), lr=cfg.lr, betas=(0.9, 0.999))
        if s.optim is not None:
            self.opt.load_state_dict(s.optim)
        self.amp = AMP_DTYPES.get(cfg.precision)
        self.scaler = None
        if cfg.precision == "float16":
            self.scaler = torch.amp.GradScaler(self.device.type)
            if s.scaler is not None:
                self.scaler.load_state_dict(s.scaler)
        self.since_fired = s.since_fired.to(self.device)
        total = self.t.total_rows
        steps_per_epoch = math.ceil(total / cfg.batch) if total else None
        self.warmup = (0.05 * steps_per_epoch * cfg.epochs
                       if steps_per_epoch and cfg.kind == "l1" else 0)
        # a latent is dead after dead_after rows without firing, or one epoch when shorter
        self.dead_after = min(cfg.dead_after, total) if total else cfg.dead_after
        self.new_buffer(s.buffer)

    @property
    def epoch(self) -> int:
        return self.state.epoch

    def new_buffer(self, state: dict | None = None) -> None:
        self.buffer = ShuffleBuffer(self.cfg.batch, self.cfg.shuffle_rows, self.cfg.seed,
                                    self.state.epoch, state, self.device)

    def step(self, rows: np.ndarray) -> None:
        cfg, s = self.cfg, self.state
        if rows.shape[1] != self.t.d_in:
            raise SteveError(f"activation rows of {self.t.site} have {rows.shape[1]} "
                             f"dimensions, the SAE expects d_in={self.t.d_in}")
        x = rows.to(self.device) * s.scale
        dead = self.since_fired >= self.dead_after
        lam = cfg.l1 * min(1.0, (s.step + 1) / self.warmup) if self.warmup else cfg.l1
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32,
                            enabled=self.amp is not None):
            loss, mse, codes = losses(self.p, x, cfg, dead, lam)
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if cfg.kind == "l1":
                torch.nn.utils.clip_grad_norm_(list(self.p.values()), 1.0)
            self.opt.step()
        else:  # float16: the loss scaled so that small gradients do not flush to zero
            self.scaler.scale(loss).backward()
            if cfg.kind == "l1":
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(list(self.p.values()), 1.0)
            self.scaler.step(self.opt)
            self.scaler.update()
        if cfg.kind == "topk":
            normalize_decoder_(self.p)
        fired = (codes > 0).any(0)
        self.since_fired = torch.where(fired, 0, self.since_fired + len(rows))
        s.step += 1
        s.rows += len(rows)
        self.loss, self.mse = loss.detach(), mse.detach()

    def end_epoch(self) -> None:
        self.state.epoch += 1
        self.new_buffer()

    def checkpoint(self) -> None:
        s = self.state
        s.params = {n: t.detach().cpu().clone() for n, t in self.p.items()}
        s.optim = self.opt.state_dict()
        s.since_fired = self.since_fired.cpu()
        s.rng = torch.get_rng_state()
        s.buffer = self.buffer.state() if s.epoch < self.cfg.epochs else None
        s.threads = torch.get_num_threads()
        s.scaler = None if self.scaler is None else self.scaler.state_dict()
        s.losses.append((s.step, float(self.loss), float(self.mse)))
        save_checkpoint(s, self.out)

    def finish(self, seconds: float | None = None) -> SAE:
        self.checkpoint()
        sae = to_sae({n: t.cpu() for n, t in self.p.items()}, self.state.scale, self.cfg,
                     self.t.hook_name, self.t.model_name)
        save_sae(sae, self.out, force=True)
        write_report(self.out, {
            "config": {**self.cfg.resumable_part(), "d_in": self.t.d_in,
                       "d_sae": self.cfg.expansion * self.t.d_in},
            "rows_trained": self.state.rows, "steps": self.state.step,
            "activation_scale": self.state.scale, "losses": self.state.losses,
            "torch_threads": torch.get_num_threads(), "device": str(self.device),
            "precision": self.cfg.precision,
            "train_seconds_this_run": seconds,
            "deterministic": "torch.use_deterministic_algorithms(True); same weights bit for "
                             "bit for the same data, settings, seed, machine and thread count"})
        (self.out / CHECKPOINT).unlink(missing_ok=True)
        return sae


def resolve_device(device: str | None) -> str:
    """``auto`` (CUDA when torch sees one, else CPU), ``cpu`` or ``cuda[:N]`` as the model
    commands take it (:func:`steve_qt.core.models.devices.resolve`)."""
    from ..models.devices import resolve

    return resolve(device)


#: autocast dtype of each mixed precision (float32: no autocast)
AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_precision(precision: str, device: str) -> str:
    """``float32``, ``bfloat16`` or ``float16`` for training on ``device``.

    ``auto``: bfloat16 autocast on a CUDA device that supports it (bfloat16's final training
    loss was within 1 % of float32's on the same rows and seed, bench/RESULTS.md), float32
    otherwise, so that CPU training stays bit for bit reproducible. Mixed precision keeps the
    weights, Adam's state and the loss in float32 (the matrix products run in the lower
    precision). float16 needs CUDA (it also scales the loss; a CPU has no use for it)."""
    if precision not in PRECISIONS:
        raise SteveError(f"unknown --precision {precision!r} (choose {', '.join(PRECISIONS)})")
    cuda = torch.device(device).type == "cuda"
    if precision == "auto":
        return "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    if precision == "float16" and not cuda:
        raise SteveError("--precision float16 needs a CUDA device (on the CPU use bfloat16 or "
                         "float32)")
    if precision == "bfloat16" and cuda and not torch.cuda.is_bf16_supported():
        raise SteveError(f"--precision bfloat16: {torch.cuda.get_device_name(device)} does not "
                         "support bfloat16; use float16 or float32")
    return precision


# --- the loop --------------------------------------------------------------------------------
def train_saes(source: SiteSource, targets: Sequence[SiteTarget], cfg: TrainConfig,
               progress: ProgressFn | None = None, force: bool = False,
               stop_after_steps: int | None = None, device: str | None = "cpu",
               data_id: str | None = None, say: Callable[[str], None] | None = None
               ) -> dict | None:
    """Train one SAE per target on one pass over the data per epoch; {site: SAE}, each also
    saved in SAELens's format in its ``out`` (with training.json).

    ``stop_after_steps``: stop (with checkpoints) once the steps of this call over all sites
    reach this number, and return None, as an interruption would (tests). ``data_id``: names the
    data (e.g. a hash of the file list); a checkpoint continues only with the same. SIGINT and
    SIGTERM (main thread) checkpoint every site and raise :class:`TrainingInterrupted`.
    """
    for t in targets:
        cfg.check(t.d_in)
    names = [t.site for t in targets]
    if len(set(names)) != len(names):
        raise SteveError("a site is given twice")
    dev = resolve_device(device)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision, dev))
    trainers = [SiteTrainer(t, cfg, dev, data_id, force) for t in targets]
    fresh = {tr.t.site: tr.t.d_in for tr in trainers if not tr.resumed}
    stats = first_rows_stats(source, fresh) if fresh else {}
    threads = torch.get_num_threads()
    for tr in trainers:
        tr.start(*stats.get(tr.t.site, (None, None)))
        if tr.resumed and say:
            s = tr.state
            say(f"{tr.t.site}: resuming from step {s.step} (epoch {s.epoch + 1} of {cfg.epochs}, "
                f"{s.rows} rows trained) in {tr.out}")
            if s.threads and s.threads != threads:
                say(f"{tr.t.site}: the checkpoint was written with {s.threads} torch threads, "
                    f"this run has {threads}: the result may differ in the last bits")
    flag: dict = {}
    steps_here = 0
    last = t_start = time.monotonic()
    rows_all = sum(t.total_rows or 0 for t in targets) * cfg.epochs or None

    def after_step(tr: SiteTrainer) -> None:
        nonlocal steps_here, last
        steps_here += 1
        if progress:
            progress(sum(x.state.rows for x in trainers), rows_all, float(tr.loss))
        due = time.monotonic() - last >= cfg.checkpoint_seconds or (
            cfg.checkpoint_every and tr.state.step % cfg.checkpoint_every == 0)
        stop = flag.get("signal") or (stop_after_steps is not None
                                      and steps_here >= stop_after_steps)
        if due or stop:
            for x in trainers:
                x.checkpoint()
            last = time.monotonic()
        if flag.get("signal"):
            raise TrainingInterrupted(flag["signal"])
        if stop:
            raise _Stop

    try:
        with _stop_on_signals(flag), deterministic():
            while min(tr.epoch for tr in trainers) < cfg.epochs:
                epoch = min(tr.epoch for tr in trainers)
                active = [tr for tr in trainers if tr.epoch == epoch]
                first = min(tr.buffer.next_file for tr in active)
                for i, by_site in source(epoch, first, [tr.t.site for tr in active]):
                    for tr in active:
                        for rows in tr.buffer.add(i, by_site[tr.t.site]):
                            tr.step(rows)
                            after_step(tr)
                    if flag.get("signal"):
                        for x in trainers:
                            x.checkpoint()
                        raise TrainingInterrupted(flag["signal"])
                for tr in active:
                    for rows in tr.buffer.finish():
                        tr.step(rows)
                        after_step(tr)
                    tr.end_epoch()
            seconds = time.monotonic() - t_start
            return {tr.t.site: tr.finish(seconds) for tr in trainers}
    except _Stop:
        return None


class _Stop(Exception):
    pass


def train_sae(source: BatchSource, d_in: int, cfg: TrainConfig, out_dir: str | os.PathLike,
              hook_name: str | None = None, model_name: str | None = None,
              total_rows: int | None = None, progress: ProgressFn | None = None,
              force: bool = False, stop_after_steps: int | None = None,
              device: str = "cpu") -> SAE | None:
    """One SAE on one stream of arrays (each array one "file"); see :func:`train_saes`."""
    target = SiteTarget(hook_name or "site", d_in, Path(out_dir), hook_name, model_name,
                        total_rows)
    got = train_saes(chunk_source(source, target.site), [target], cfg, progress, force,
                     stop_after_steps, device)
    return None if got is None else got[target.site]


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
    the mean), mean L0 (active latents per row), share of latents that never fire, and of those
    that fire on more than 10 % of the rows, rows (:func:`sae_eval.row_stats`)."""
    from .sae_eval import row_stats

    stats = row_stats(sae, chunks)
    stats.pop("frequency")
    return stats
