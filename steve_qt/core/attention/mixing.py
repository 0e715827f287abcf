"""Context-mixing measures from one attention layer's tensors (torch; no Qt, no model code).

The adapters hook their models and hand each layer's tensors to these functions:

    q, k, v      (K_all, M*d)   query / key / value projections of every position (values with
                                their bias), heads laid out head-major as the models do
    x            (Q, D)         the layer's residual input at the kept query rows
    attn_out     (Q, D)         the attention module's output at the kept query rows (after the
                                output projection, with its bias)
    w_out        (D, M*d)       the output projection's weight
    tail(x, a)                  the rest of the layer at one position: residual input x (B, 1, D)
                                and attention output a (B, K, D) -> layer output (B, K, D)

Queries are the first Q rows, kept keys the first K columns (Whisper's padding is cut; the
softmax is over all K_all keys, as the model takes it).

Value zeroing uses an exact shortcut instead of one pass per key: zeroing the value vector of key
k in every head changes the attention output at q by exactly -Σ_h α_hqk · f_h(x_k), where
f_h(x_k) = v_hk · W_O[:, h]ᵀ (the same vectors attention norm measures), so the perturbed layer
output is ``tail(x_q, attn_out_q - d_qk)`` for all (q, k) at once, in blocks of query rows.

For a pre-LN block (``r = x + a``; ``r + W2 gelu(W1 LN(r) + b1) + b2``, Whisper and the large
wav2vec 2.0 models) ``value_zeroing_pre_ln`` does the same without running ``tail`` on every pair:

- first MLP layer through the sum over heads (exact): with c = r - mean(r), g_hk = f_hk -
  mean(f_hk) and W̃ = W1 diag(γ), W1 LN(r_qk) = (P_q - Σ_h α_hqk U_hk) / σ_qk + W1 β, where
  P_q = W̃ c_q (Q, F) and U_hk = W̃ g_hk (M, K, F) are computed once per layer and σ_qk comes from
  Gram terms (‖c_q‖², ⟨c_q, g_hk⟩, ⟨g_hk, g_h'k⟩): an (M+1)-term sum per pair instead of a D-term
  product;
- GELU and the second MLP layer in float32 (the cost that is left: T² × D × F MACs per layer),
  the product through oneDNN with the weight packed once per layer (``linear_plus``);
- the cosine distance from y_q and the change out_qk - y_q (W2 gelu(pre_qk) less W2 gelu(pre_q)
  and d_qk), split along and across y_q (no cancellation in 1 - cos when the change is small).

Pairs are taken in blocks of keys (all queries of a few keys), small enough to stay in L3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import Cancelled

Tail = Callable[[Tensor, Tensor], Tensor]
#: floats one block of value zeroing may hold ((rows, K, width) float32): 16 Mi = 64 MiB
BLOCK_FLOATS = 16 * 1024 * 1024


def split_heads(x: Tensor, n_head: int) -> Tensor:
    """(T, M*d) -> (M, T, d), a view."""
    return x.view(x.shape[0], n_head, -1).transpose(0, 1)


def attention_weights(q: Tensor, k: Tensor, n_head: int, keep_queries: int,
                      keep_keys: int) -> Tensor:
    """Softmax over all keys of the first ``keep_queries`` rows, cropped to ``keep_keys``: (M, Q, K)."""
    qh = split_heads(q[:keep_queries].float(), n_head)  # (M, Q, d)
    kh = split_heads(k.float(), n_head)  # (M, K_all, d)
    scores = torch.matmul(qh, kh.transpose(1, 2)) * qh.shape[-1] ** -0.5  # (M, Q, K_all)
    return torch.softmax(scores, dim=-1)[..., :keep_keys]


def head_value_outputs(v: Tensor, w_out: Tensor, n_head: int) -> Tensor:
    """f_h(x_k) = v_hk · W_O[:, h]ᵀ for every head and key: (K, M*d), (D, M*d) -> (M, K, D)."""
    vh = split_heads(v.float(), n_head)  # (M, K, d)
    wh = w_out.float().view(w_out.shape[0], n_head, -1).permute(1, 2, 0)  # (M, d, D)
    return torch.matmul(vh, wh)


def attention_norm(weights: Tensor, f: Tensor) -> Tensor:
    """‖α_hqk · f_h(x_k)‖ = α_hqk · ‖f_h(x_k)‖: (M, Q, K), (M, K, D) -> (M, Q, K)."""
    return weights * torch.linalg.vector_norm(f, dim=-1)[:, None, :]


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """1 - cos(a, b) over the last axis (broadcasting), as ‖â - b̂‖² / 2 of the unit vectors.

    The same number as ``1 - cosine_similarity``, without its cancellation: when zeroing a value
    barely moves the output (1 - cos near float32's epsilon) the difference of unit vectors keeps
    its relative precision.
    """
    a_unit = a / torch.linalg.vector_norm(a, dim=-1, keepdim=True).clamp_min(1e-30)
    b_unit = b / torch.linalg.vector_norm(b, dim=-1, keepdim=True).clamp_min(1e-30)
    return 0.5 * torch.linalg.vector_norm(a_unit - b_unit, dim=-1).square()


def normalise_rows(m: Tensor) -> Tensor:
    """Each row divided by its sum (rows summing to 0 stay 0)."""
    s = m.sum(dim=-1, keepdim=True)
    return m / torch.where(s > 0, s, torch.ones_like(s))


def value_zeroing(weights: Tensor, f: Tensor, x: Tensor, attn_out: Tensor, tail: Tail,
                  width: int | None = None,
                  should_cancel: Callable[[], bool] | None = None) -> Tensor:
    """Value zeroing of one layer: (Q, K) float32, rows normalised to sum 1.

    weights (M, Q, K) softmax (over all keys, cropped), f (M, K, D) from ``head_value_outputs``,
    x (Q, D) residual input, attn_out (Q, D) attention output; ``width`` the widest activation
    ``tail`` makes per position (the MLP's), for the block size. ``should_cancel`` is polled
    before each block of query rows (Cancelled).
    """
    n_q, n_k = weights.shape[1:]
    rows = max(1, BLOCK_FLOATS // max(1, n_k * max(width or 0, f.shape[-1])))
    x, attn_out = x.float(), attn_out.float()
    y = tail(x[:, None], attn_out[:, None])  # (Q, 1, D): the layer's output with all values
    out = torch.empty(n_q, n_k, device=weights.device)
    for q0 in range(0, n_q, rows):
        if should_cancel is not None and should_cancel():
            raise Cancelled()
        q1 = min(n_q, q0 + rows)
        d = torch.einsum("mqk,mkd->qkd", weights[:, q0:q1], f)  # (b, K, D) removed contributions
        y_zeroed = tail(x[q0:q1, None], attn_out[q0:q1, None] - d)  # (b, K, D)
        out[q0:q1] = cosine_distance(y_zeroed, y[q0:q1])
    return normalise_rows(out.clamp_(min=0.0))


def attention_gradient(q: Tensor, k: Tensor, v: Tensor, grad_context: Tensor,
                       n_head: int) -> tuple[Tensor, Tensor]:
    """(A, ∂L/∂A), each (M, K_all, K_all), from the projections and the gradient of the context.

    The context of head h is A_h · V_h (before the output projection), so ∂L/∂A_h =
    (∂L/∂context_h) · V_hᵀ: no attention matrix has to be kept in the autograd graph.
    """
    qh, kh = split_heads(q.float(), n_head), split_heads(k.float(), n_head)
    a = torch.softmax(torch.matmul(qh, kh.transpose(1, 2)) * qh.shape[-1] ** -0.5, dim=-1)
    g = torch.matmul(split_heads(grad_context.float(), n_head),
                     split_heads(v.float(), n_head).transpose(1, 2))
    return a, g


def mean_positive_relevance(a: Tensor, grad: Tensor) -> Tensor:
    """Ā = mean over heads of (∇A ⊙ A)⁺: (M, Q, K) -> (Q, K)."""
    return (grad * a).clamp(min=0.0).mean(dim=0)


def propagate_relevance(abar: Sequence[Tensor]) -> list[Tensor]:
    """R_0 = I, R ← R + Ā_l · R for each layer: the cumulative R after each layer, (K, K) each."""
    r = torch.eye(abar[0].shape[-1], dtype=torch.float64, device=abar[0].device)
    out = []
    for a in abar:
        r = r + a.double() @ r
        out.append(r.float())
    return out


def relevance_maps(abar: Sequence[Tensor], keep: int) -> np.ndarray:
    """What ``grad`` stores: R - I after each layer, kept T x T block, (N, 1, 1, T, T) float16.

    The identity (each frame's relevance to itself before any mixing) is left out so that the
    relevance that mixing added is what the colours show; add I to get Chefer et al.'s R.
    """
    eye = torch.eye(keep, device=abar[0].device)
    maps = [r[:keep, :keep] - eye for r in propagate_relevance(abar)]
    return torch.stack(maps)[:, None, None].cpu().numpy().astype(np.float16)


# --- value zeroing of a pre-LN block, structured ------------------------------------------------

#: (key, query) pairs per block of the structured path ((pairs, F) float32 blocks of ~14 MiB for
#: F = 1536, within this CPU's 32 MiB L3): with one thread 1200 to 2400 were fastest of 600 to
#: 4800 (4800: out of cache); with two threads on a busy machine every block's parallel passes
#: wait for both threads, so fewer, larger blocks are much faster there (600 pairs took 1.8 x
#: the time of 2400)
PAIRS_PER_BLOCK = 2400
#: pairs whose LayerNorm scale and bmm coefficients are computed together ((pairs, M) float64
#: terms): every pair of a short window at once, bounded memory for long ones
PAIRS_PER_CHUNK = 1 << 16


@dataclass
class PreLNMLP:
    """The tail of a pre-LN block, r + W2 gelu(W1 LN(r) + b1) + b2 (exact erf GELU), as tensors.

    ln_weight, ln_bias (D,), eps; w1 (F, D), b1 (F,); w2 (D, F), b2 (D,).
    """

    ln_weight: Tensor
    ln_bias: Tensor
    eps: float
    w1: Tensor
    b1: Tensor
    w2: Tensor
    b2: Tensor


def cosine_distance_of_change(y_unit: Tensor, y_norm: Tensor, delta: Tensor) -> Tensor:
    """1 - cos(y, y + δ) over the last axis, from δ's parts along and across y (no cancellation).

    y_unit = y/‖y‖ (..., D) and y_norm = ‖y‖ (..., 1) broadcast against δ (..., D). With
    n = ‖y‖ + ⟨δ, ŷ⟩ and m = ‖δ - ⟨δ, ŷ⟩ŷ‖: 1 - cos = m² / (h (h + n)), h = √(n² + m²), for n > 0;
    1 - n/h otherwise. δ is overwritten.
    """
    along = torch.linalg.vecdot(delta, y_unit)[..., None]
    across = delta.addcmul_(along, y_unit, value=-1.0)  # δ - ⟨δ, ŷ⟩ŷ, in place
    m2 = torch.linalg.vecdot(across, across)
    n = (y_norm + along)[..., 0]
    h = torch.sqrt(n * n + m2).clamp_min(1e-30)
    return torch.where(n > 0, m2 / (h * (h + n)), 1.0 - n / h)


def pair_inv_sigma(alpha: Tensor, cc: Tensor, cg: Tensor, gg: Tensor, width: int,
                   eps: float) -> Tensor:
    """1/σ_qk of LayerNorm at r_qk = r_q - d_qk for a block of keys, from Gram terms: (b, Q).

    alpha (b, Q, M) = α_hqk; cc (Q,) = ‖c_q‖²; cg (b, Q, M) = ⟨c_q, g_hk⟩; gg (b, M, M) =
    ⟨g_hk, g_h'k⟩, with c = r - mean(r), g = f - mean(f). The centred r_qk is c_q - Σ_h α_hqk g_hk,
    so D σ²_qk = ‖c_q‖² - 2 Σ_h α_hqk ⟨c_q, g_hk⟩ + Σ_hh' α_hqk α_h'qk ⟨g_hk, g_h'k⟩ (summed in
    float64).
    """
    a = alpha.double()
    quad = (torch.bmm(a, gg.double()) * a).sum(-1)  # (b, Q)
    var = (cc.double() - 2.0 * (a * cg.double()).sum(-1) + quad).clamp_min(0.0) / width
    return torch.rsqrt(var + eps).float()


def linear_plus(w: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
    """``(x (P, F), c (P, D)) -> c + x · wᵀ`` in float32 for a fixed w (D, F), called per block.

    On the CPU through oneDNN with w packed once into its blocked layout and c added in the
    product's epilogue (torch's private ``mkldnn._linear_pointwise``, what its compiler uses for
    frozen linear layers): float32 products and sums throughout (no reduced-precision mode is
    asked for), measured ~20 % faster here than ``torch.addmm`` (MKL) on (600 to 22500, 1536) x
    (1536, 384). ``torch.addmm`` where oneDNN is not there or refuses the weight. The returned
    function's ``path`` says which: "onednn" or "addmm".
    """
    w = w.float().contiguous()
    ops = getattr(torch.ops, "mkldnn", None)
    if w.device.type == "cpu" and torch.backends.mkldnn.is_available() and ops is not None:
        try:
            packed = ops._reorder_linear_weight(w, None)
            binary = ops._linear_pointwise.binary
            binary(w[:1], w.new_zeros(1, w.shape[0]), packed, None, "add")  # refuses here or never

            def onednn(x: Tensor, c: Tensor) -> Tensor:
                return binary(x, c, packed, None, "add")
            onednn.path = "onednn"
            return onednn
        except (AttributeError, RuntimeError, NotImplementedError):
            pass
    w_t = w.T

    def addmm(x: Tensor, c: Tensor) -> Tensor:
        return torch.addmm(c, x, w_t)
    addmm.path = "addmm"
    return addmm


def value_zeroing_pre_ln(weights: Tensor, f: Tensor, x: Tensor, attn_out: Tensor, mlp: PreLNMLP,
                         should_cancel: Callable[[], bool] | None = None) -> Tensor:
    """Value zeroing of a pre-LN block without a pass per pair: (Q, K) float32, rows sum to 1.

    Same arguments and result as ``value_zeroing`` with the block's ``tail``. Per block of keys:
    one ``bmm`` (inner size M + 1) and an ``addcmul_`` give the first MLP layer's input, GELU in
    place, the second layer (``linear_plus``) with -W2 gelu(pre_q) added in the same call, d_qk
    taken off in place (``baddbmm_``), and the cosine distance from that change in place.
    LayerNorm's σ and the bmm's coefficients are computed for many blocks at once
    (``PAIRS_PER_CHUNK``).
    """
    n_head, n_q, n_k = weights.shape
    gamma, beta = mlp.ln_weight.float(), mlp.ln_bias.float()
    w1, b1 = mlp.w1.float(), mlp.b1.float()
    b2 = mlp.b2.float()
    width, hidden = w1.shape[1], w1.shape[0]
    second = linear_plus(mlp.w2)  # c + x W2ᵀ
    w_tilde_t = (w1 * gamma).T.contiguous()  # (D, F): W̃ᵀ
    bias1 = w1 @ beta + b1  # (F,)
    f_kmd = f.float().transpose(0, 1).contiguous()  # (K, M, D)
    r = x.float() + attn_out.float()  # (Q, D)
    c = r - r.mean(-1, keepdim=True)
    g = f_kmd - f_kmd.mean(-1, keepdim=True)  # (K, M, D)
    p = c @ w_tilde_t  # (Q, F): P_q
    inv_sigma_q = torch.rsqrt(c.double().square().mean(-1, keepdim=True) + mlp.eps).float()
    # W2 gelu(pre_q) (Q, D) by the same product as the pairs' W2 gelu(pre_qk) below
    y_mlp = second(torch.nn.functional.gelu(p * inv_sigma_q + bias1), r.new_zeros(r.shape))
    y = r + y_mlp + b2  # (Q, D): the layer output with all values
    y_norm = torch.linalg.vector_norm(y, dim=-1, keepdim=True).clamp_min(1e-30)
    y_unit = y / y_norm
    alpha = weights.float().permute(2, 1, 0).contiguous()  # (K, Q, M)
    cc = c.double().square().sum(-1)  # (Q,)
    cg = torch.einsum("qd,kmd->kqm", c, g)  # (K, Q, M)
    gg = torch.bmm(g, g.transpose(1, 2))  # (K, M, M)
    # pre_qk = P_q/σ_qk + [-α_hqk/σ_qk ..., 1] · [U_hk ...; W1β + b1]: one bmm per key, M+1 terms
    u = torch.cat([(g.view(-1, width) @ w_tilde_t).view(n_k, n_head, hidden),
                   bias1.expand(n_k, 1, hidden)], dim=1)  # (K, M+1, F)
    keys = max(1, PAIRS_PER_BLOCK // n_q)
    chunk = max(1, PAIRS_PER_CHUNK // (n_q * keys)) * keys
    pre_buf = torch.empty(keys, n_q, hidden, device=weights.device)
    minus_y_mlp = (-y_mlp).expand(keys, n_q, width).contiguous()
    out = torch.empty(n_k, n_q, device=weights.device)
    for c0 in range(0, n_k, chunk):
        c1 = min(n_k, c0 + chunk)
        inv_sigma = pair_inv_sigma(alpha[c0:c1], cc, cg[c0:c1], gg[c0:c1], width, mlp.eps)
        coef = torch.cat([alpha[c0:c1] * -inv_sigma[..., None],
                          torch.ones(c1 - c0, n_q, 1, device=weights.device)], dim=-1)
        for k0 in range(c0, c1, keys):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            k1 = min(c1, k0 + keys)
            b = k1 - k0
            pre = torch.bmm(coef[k0 - c0:k1 - c0], u[k0:k1], out=pre_buf[:b])  # (b, Q, F)
            pre.addcmul_(p, inv_sigma[k0 - c0:k1 - c0, :, None])
            torch.ops.aten.gelu_(pre)
            # out_qk - y_q = (W2 gelu(pre_qk) - W2 gelu(pre_q)) - d_qk, in that order: the two
            # nearly equal terms first (a small change keeps its relative precision)
            delta = second(pre.view(-1, hidden), minus_y_mlp[:b].view(-1, width))
            delta = delta.view(b, n_q, width)
            delta.baddbmm_(alpha[k0:k1], f_kmd[k0:k1], alpha=-1.0)  # d_qk = Σ_h α_hqk f_hk
            out[k0:k1] = cosine_distance_of_change(y_unit, y_norm, delta)
    return normalise_rows(out.T.clamp_(min=0.0))
