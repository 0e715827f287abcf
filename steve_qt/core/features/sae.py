"""Sparse autoencoders in SAELens's on-disk format (torch, no Qt).

An SAE directory holds ``cfg.json`` and ``sae_weights.safetensors`` as SAELens 6 writes them:

- weights: ``W_enc`` (d_in, d_sae), ``b_enc`` (d_sae,), ``W_dec`` (d_sae, d_in), ``b_dec`` (d_in,);
- config: ``d_in``, ``d_sae``, ``dtype``, ``device``, ``apply_b_dec_to_input``,
  ``normalize_activations``, ``reshape_activations``, ``architecture`` (``"topk"`` with ``k``, or
  ``"standard"``) and a ``metadata`` block holding ``hook_name`` (our site, e.g.
  ``encoder.blocks.2``) and ``model_name`` (our model spec).

Encoding is SAELens's: ``pre = (x - b_dec * apply_b_dec_to_input) @ W_enc + b_enc``; standard SAEs
take ``relu(pre)``, TopK SAEs keep the k largest entries of ``pre`` (ReLU applied to them) and zero
the rest. Decoding: ``codes @ W_dec + b_dec``.

Reading accepts the config variants SAELens releases have written: the metadata block as
``metadata`` (6.x) or ``meta`` (6.0 release candidates), or flat at the top level (before 6.0:
``hook_name`` or the older ``hook_point``, ``model_name``); ``normalize_activations`` as a bool
(before 4.x) or a string; TopK before 6.0 as ``activation_fn`` / ``activation_fn_str`` ``"topk"``
with ``activation_fn_kwargs: {"k": K}``. Architectures other than standard and TopK (gated,
JumpReLU, ...) and normalisations that need a dataset statistic the files do not hold are refused
with a message, not misread.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import SteveError

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
ARCHITECTURES = ("topk", "standard")
NORMALIZATIONS = ("none", "constant_norm_rescale", "layer_norm")
SAELENS_FORMAT_VERSION = "6.0.0"  # the config layout we write (SAELens >= 6)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "float64": torch.float64, "torch.float32": torch.float32,
          "torch.float16": torch.float16, "torch.bfloat16": torch.bfloat16,
          "torch.float64": torch.float64}


@dataclass
class SAE:
    """A trained sparse autoencoder: weights and the config SAELens keeps beside them."""

    W_enc: torch.Tensor  # (d_in, d_sae)
    b_enc: torch.Tensor  # (d_sae,)
    W_dec: torch.Tensor  # (d_sae, d_in)
    b_dec: torch.Tensor  # (d_in,)
    architecture: str = "topk"  # "topk" | "standard"
    k: int | None = None  # active features per row (TopK only)
    apply_b_dec_to_input: bool = True
    normalize_activations: str = "none"  # "none" | "constant_norm_rescale" | "layer_norm"
    hook_name: str | None = None  # the site the SAE reads (a module path of the model)
    model_name: str | None = None  # the model spec it was trained on
    metadata: dict = field(default_factory=dict)  # the rest of the metadata block, kept as is

    def __post_init__(self) -> None:
        check_shapes(self.W_enc, self.b_enc, self.W_dec, self.b_dec)
        if self.architecture not in ARCHITECTURES:
            raise SteveError(f"SAE architecture {self.architecture!r} is not supported "
                             f"(supported: {', '.join(ARCHITECTURES)})")
        if self.architecture == "topk" and not (self.k and 0 < self.k <= self.d_sae):
            raise SteveError(f"a TopK SAE needs k between 1 and d_sae={self.d_sae}, "
                             f"not {self.k!r}")
        if self.normalize_activations not in NORMALIZATIONS:
            raise SteveError(f"normalize_activations {self.normalize_activations!r} is not "
                             f"supported (supported: {', '.join(NORMALIZATIONS)})")

    @property
    def d_in(self) -> int:
        return int(self.W_enc.shape[0])

    @property
    def d_sae(self) -> int:
        return int(self.W_enc.shape[1])

    # --- inference ---------------------------------------------------------------------------
    def encode(self, x):
        """Codes (..., d_sae) of activations x (..., d_in); numpy in -> numpy out (float32)."""
        if isinstance(x, np.ndarray):
            with torch.no_grad():
                return self.encode(torch.from_numpy(np.asarray(x, np.float32))).numpy()
        x = x.to(self.W_enc.dtype)
        x, _ = normalize_in(x, self.normalize_activations)
        pre = pre_activations(x, self.W_enc, self.b_enc, self.b_dec, self.apply_b_dec_to_input)
        return activate(pre, self.architecture, self.k)

    def decode(self, codes, like=None):
        """Reconstruction (..., d_in) of codes (..., d_sae); numpy in -> numpy out.

        With a run-time normalisation (``constant_norm_rescale``, ``layer_norm``) the
        reconstruction is mapped back to the scale of ``like``, the input that was encoded.
        """
        if isinstance(codes, np.ndarray):
            with torch.no_grad():
                ref = None if like is None else torch.from_numpy(np.asarray(like, np.float32))
                return self.decode(torch.from_numpy(np.asarray(codes, np.float32)), ref).numpy()
        x_hat = codes.to(self.W_dec.dtype) @ self.W_dec + self.b_dec
        if self.normalize_activations != "none":
            if like is None:
                raise SteveError(f"this SAE normalises its input ({self.normalize_activations});"
                                 " decoding needs the encoded input")
            _, undo = normalize_in(like.to(self.W_dec.dtype), self.normalize_activations)
            x_hat = undo(x_hat)
        return x_hat

    def reconstruct(self, x):
        """decode(encode(x)) at the scale of x."""
        return self.decode(self.encode(x), like=x)

    # --- config ------------------------------------------------------------------------------
    def cfg_dict(self) -> dict:
        """``cfg.json`` as SAELens 6 writes it for an inference SAE."""
        cfg = {"d_in": self.d_in, "d_sae": self.d_sae, "dtype": dtype_name(self.W_enc.dtype),
               "device": "cpu", "apply_b_dec_to_input": bool(self.apply_b_dec_to_input),
               "normalize_activations": self.normalize_activations,
               "reshape_activations": "none"}
        if self.architecture == "topk":
            cfg["k"] = int(self.k)
            cfg["rescale_acts_by_decoder_norm"] = False
        meta = dict(self.metadata)
        meta.update({"model_name": self.model_name, "hook_name": self.hook_name})
        meta.setdefault("sae_lens_version", SAELENS_FORMAT_VERSION)
        meta.setdefault("sae_lens_training_version", SAELENS_FORMAT_VERSION)
        cfg["metadata"] = meta
        cfg["architecture"] = self.architecture
        return cfg

    # --- files -------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SAE":
        """Read an SAE folder in SAELens's format (:func:`load_sae`)."""
        return load_sae(directory)

    def save(self, directory: str | os.PathLike, force: bool = False) -> Path:
        """Write this SAE in SAELens's format (:func:`save_sae`)."""
        return save_sae(self, directory, force)

    def __repr__(self) -> str:
        k = f", k={self.k}" if self.architecture == "topk" else ""
        return (f"SAE({self.architecture}{k}, d_in={self.d_in}, d_sae={self.d_sae}, "
                f"site={self.hook_name!r}, model={self.model_name!r})")


# --- the maths, shared by inference and training ---------------------------------------------
def pre_activations(x, W_enc, b_enc, b_dec, apply_b_dec_to_input: bool = True):
    """(..., d_sae) encoder pre-activations of x (..., d_in)."""
    if apply_b_dec_to_input:
        x = x - b_dec
    return x @ W_enc + b_enc


def activate(pre, architecture: str, k: int | None = None):
    """Codes from pre-activations: ReLU (standard) or ReLU of the k largest, zeros elsewhere."""
    if architecture == "standard":
        return torch.relu(pre)
    top = torch.topk(pre, k=int(k), dim=-1)
    codes = torch.zeros_like(pre)
    return codes.scatter(-1, top.indices, torch.relu(top.values))


def normalize_in(x, kind: str):
    """(x normalised, function that maps a reconstruction back) for SAELens's run-time
    normalisations: ``constant_norm_rescale`` scales each row to norm sqrt(d_in); ``layer_norm``
    subtracts each row's mean and divides by its standard deviation (+1e-5)."""
    if kind == "none":
        return x, lambda y: y
    if kind == "constant_norm_rescale":
        coeff = math.sqrt(x.shape[-1]) / x.norm(dim=-1, keepdim=True)
        return x * coeff, lambda y: y / coeff
    if kind == "layer_norm":
        mu = x.mean(dim=-1, keepdim=True)
        std = (x - mu).std(dim=-1, keepdim=True)
        return (x - mu) / (std + 1e-5), lambda y: y * std + mu
    raise SteveError(f"normalize_activations {kind!r} is not supported")


def check_shapes(W_enc, b_enc, W_dec, b_dec) -> None:
    d_in, d_sae = W_enc.shape
    want = {"b_enc": (d_sae,), "W_dec": (d_sae, d_in), "b_dec": (d_in,)}
    got = {"b_enc": tuple(b_enc.shape), "W_dec": tuple(W_dec.shape), "b_dec": tuple(b_dec.shape)}
    bad = [f"{n} is {got[n]}, expected {w}" for n, w in want.items() if got[n] != w]
    if bad:
        raise SteveError(f"SAE weights do not fit W_enc {tuple(W_enc.shape)}: " + "; ".join(bad))


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


# --- reading and writing ---------------------------------------------------------------------
def save_sae(sae: SAE, directory: str | os.PathLike, force: bool = False) -> Path:
    """Write ``cfg.json`` and ``sae_weights.safetensors`` into ``directory`` (created if needed),
    each atomically; an existing SAE there is replaced only with ``force``."""
    from safetensors.torch import save as st_save

    from ..fileio import write_bytes_atomic, write_text_atomic

    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise SteveError("is a file, not a folder for an SAE", d)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {"W_enc": sae.W_enc, "b_enc": sae.b_enc, "W_dec": sae.W_dec, "b_dec": sae.b_dec}
    blob = st_save({n: t.detach().contiguous().cpu() for n, t in tensors.items()})
    write_bytes_atomic(d / WEIGHTS_FILENAME, blob, force=force)
    write_text_atomic(d / CFG_FILENAME, json.dumps(sae.cfg_dict(), indent=2) + "\n", force=force)
    return d


def load_sae(directory: str | os.PathLike) -> SAE:
    """Read an SAE directory in SAELens's format (any config variant listed in the module doc)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    if not d.is_dir():
        raise SteveError("no such SAE folder" if not d.exists() else "is not a folder", d)
    cfg_path, weights_path = d / CFG_FILENAME, d / WEIGHTS_FILENAME
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise SteveError(f"not an SAE folder: {p.name} is missing", d)
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SteveError(f"cannot read the SAE config: {exc}", cfg_path) from exc
    if not isinstance(raw, dict):
        raise SteveError("the SAE config is not a JSON object", cfg_path)
    cfg = read_cfg(raw, cfg_path)
    try:
        weights = load_file(str(weights_path))
    except (OSError, SafetensorError, ValueError) as exc:
        raise SteveError(f"cannot read the SAE weights: {exc}", weights_path) from exc
    missing = [n for n in ("W_enc", "b_enc", "W_dec", "b_dec") if n not in weights]
    if missing:
        raise SteveError(f"the SAE weights lack {', '.join(missing)}", weights_path)
    dtype = DTYPES.get(str(cfg.pop("dtype")), torch.float32)
    W_enc, b_enc, W_dec, b_dec = (weights[n].to(dtype) for n in ("W_enc", "b_enc", "W_dec", "b_dec"))
    if tuple(W_enc.shape) != (cfg["d_in"], cfg["d_sae"]):
        raise SteveError(f"W_enc is {tuple(W_enc.shape)} but the config says d_in={cfg['d_in']}, "
                         f"d_sae={cfg['d_sae']}", d)
    if cfg.pop("rescale_acts_by_decoder_norm"):
        norms = W_dec.norm(dim=-1)
        if not torch.allclose(norms, torch.ones_like(norms), atol=1e-4):
            raise SteveError("this TopK SAE rescales codes by its decoder norms "
                             "(rescale_acts_by_decoder_norm), which is not supported", cfg_path)
    del cfg["d_in"], cfg["d_sae"]
    return SAE(W_enc, b_enc, W_dec, b_dec, **cfg)


def read_cfg(raw: dict, where=None) -> dict:
    """Our SAE fields from a ``cfg.json`` dict of any SAELens release (see the module doc)."""
    def need(name):
        if name not in raw:
            raise SteveError(f"the SAE config has no {name!r}", where)
        try:
            return int(raw[name])
        except (TypeError, ValueError):
            raise SteveError(f"the SAE config's {name!r} is not a number: {raw[name]!r}",
                             where) from None

    d_in, d_sae = need("d_in"), need("d_sae")
    meta_key = "metadata" if isinstance(raw.get("metadata"), dict) else \
        "meta" if isinstance(raw.get("meta"), dict) else None
    meta = dict(raw[meta_key]) if meta_key else {}
    hook = meta.get("hook_name") or raw.get("hook_name") or raw.get("hook_point")
    model = meta.get("model_name") or raw.get("model_name")
    if not meta_key:  # before 6.0: keep what the later metadata block would hold
        meta = {n: raw[n] for n in ("hook_layer", "hook_head_index", "context_size",
                                    "dataset_path", "sae_lens_training_version",
                                    "neuronpedia_id", "prepend_bos") if n in raw}
    for n in ("hook_name", "model_name"):
        meta.pop(n, None)
    act_fn = raw.get("activation_fn", raw.get("activation_fn_str", "relu"))
    architecture = raw.get("architecture") or "standard"
    k = raw.get("k")
    if act_fn == "topk" and architecture == "standard":  # pre-6 TopK: a standard SAE + topk fn
        architecture = "topk"
    if architecture == "topk" and k is None:
        k = (raw.get("activation_fn_kwargs") or {}).get("k")
    if architecture not in ARCHITECTURES:
        raise SteveError(f"SAE architecture {architecture!r} is not supported "
                         f"(supported: {', '.join(ARCHITECTURES)})", where)
    norm = raw.get("normalize_activations", "none")
    if isinstance(norm, bool):
        norm = "expected_average_only_in" if norm else "none"
    norm = norm or "none"
    if norm not in NORMALIZATIONS:
        hint = (" (it scales inputs by a dataset average the files do not hold; fold it into the "
                "weights with SAELens first)" if norm == "expected_average_only_in" else "")
        raise SteveError(f"normalize_activations {norm!r} is not supported{hint}", where)
    if raw.get("reshape_activations", "none") not in ("none", None):
        raise SteveError(f"reshape_activations {raw['reshape_activations']!r} is not supported",
                         where)
    return {"d_in": d_in, "d_sae": d_sae, "dtype": raw.get("dtype", "float32"),
            "architecture": architecture, "k": None if k is None else int(k),
            "apply_b_dec_to_input": bool(raw.get("apply_b_dec_to_input", True)),
            "normalize_activations": norm, "hook_name": hook, "model_name": model,
            "metadata": meta,
            "rescale_acts_by_decoder_norm": bool(raw.get("rescale_acts_by_decoder_norm", False))}


def check_site(sae: SAE, site_name: str, dim: int, where=None) -> None:
    """Raise SteveError unless the SAE reads ``site_name`` activations of width ``dim``."""
    if sae.d_in != dim:
        raise SteveError(f"the SAE expects d_in={sae.d_in} but site {site_name} has {dim} "
                         "dimensions", where)
