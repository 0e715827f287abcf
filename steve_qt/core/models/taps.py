"""Forward hooks that keep one attention layer's tensors, for the context-mixing measures of the
model plugins (plugins/steve_whisper/mixing.py, plugins/steve_wav2vec2/mixing.py).

``LayerTaps(layer, q, k, v, attention, out_proj, input_name)`` keeps, by name, batch row 0 of:
``x`` the layer's input (positional, or the keyword ``input_name``), ``q``/``k``/``v`` the
projections' outputs (T, D), ``attn_out`` the attention module's output (its first element), and
with ``keep_graph`` the ``context`` entering the output projection, its gradient retained.
Without ``keep_graph`` everything is detached. ``remove()`` takes every hook off.

``layer_measures(layers, taps, forward, ...)`` is the one pass both plugins run for attention
norm and value zeroing, with the model-specific value-zeroing tail passed in.

For the gradient relevance: ``frozen_parameters(model)`` runs a pass with autograd on the
activations only; ``layer_relevances(taps, n_head)`` then gives each tapped layer's
Ā = E_h[(∇A ⊙ A)⁺] from its kept q, k, v and the context's gradient.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..attention import mixing
from ..errors import Cancelled


class LayerTaps:
    def __init__(self, layer, q, k, v, attention, out_proj, input_name: str,
                 keep_graph: bool = False):
        self.keep_graph = keep_graph
        self.input_name = input_name
        self.t: dict[str, Tensor] = {}
        self.handles = [
            layer.register_forward_pre_hook(self._input, with_kwargs=True),
            q.register_forward_hook(self._keep("q")),
            k.register_forward_hook(self._keep("k")),
            v.register_forward_hook(self._keep("v")),
            attention.register_forward_hook(self._keep("attn_out", first=True)),
        ]
        if keep_graph:
            self.handles.append(out_proj.register_forward_pre_hook(self._context))

    def _store(self, name: str, value: Tensor) -> None:
        self.t[name] = value[0] if self.keep_graph else value.detach()[0]

    def _input(self, _mod, args, kwargs) -> None:
        self._store("x", args[0] if args else kwargs[self.input_name])

    def _keep(self, name: str, first: bool = False):
        def hook(_mod, _inp, out):
            self._store(name, out[0] if first else out)
        return hook

    def _context(self, _mod, inp) -> None:
        ctx = inp[0]
        if ctx.requires_grad:
            ctx.retain_grad()
        self.t["context"] = ctx

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@contextlib.contextmanager
def frozen_parameters(model) -> Iterator[None]:
    """The model's parameters need no gradient inside the block; their flags are put back."""
    flags = [p.requires_grad for p in model.parameters()]
    try:
        model.requires_grad_(False)
        yield
    finally:
        for p, f in zip(model.parameters(), flags):
            p.requires_grad_(f)


def layer_relevances(taps: Sequence[LayerTaps], n_head: int,
                     on_layer: Callable[[int], None] | None = None) -> list[Tensor]:
    """After backward through taps made with ``keep_graph``: per layer Ā (T, T) over the whole
    window (steve_qt.core.attention.mixing.mean_positive_relevance); each tap's tensors are let go."""
    abar = []
    for i, tp in enumerate(taps):
        t = tp.t
        a, g = mixing.attention_gradient(t["q"].detach(), t["k"].detach(), t["v"].detach(),
                                         t["context"].grad[0], n_head)
        abar.append(mixing.mean_positive_relevance(a, g))
        del a, g
        t.clear()
        if on_layer is not None:
            on_layer(i)
    return abar


def relevance_of(model, taps: Sequence[LayerTaps], log_prob: Callable[[], Tensor], n_head: int,
                 keep: int, on_layer: Callable[[int], None] | None = None,
                 should_cancel: Callable[[], bool] | None = None) -> np.ndarray:
    """Grad relevance (N, 1, 1, keep, keep) float16 (steve_qt.core.attention.mixing.relevance_maps):
    ``log_prob()`` runs the model forward with gradients (parameters frozen) through ``taps``
    (made with ``keep_graph``), its result is differentiated, and the taps are removed."""
    try:
        with frozen_parameters(model), torch.enable_grad():
            value = log_prob()
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            value.backward()
        abar = layer_relevances(taps, n_head, on_layer)
    finally:
        for tp in taps:
            tp.remove()
    return mixing.relevance_maps(abar, keep)


#: value_zeroing_of(layer, weights (M, T, T), head outputs, x (T, D), attn_out (T, D)) -> (T, T)
ValueZeroingFn = Callable[[object, Tensor, Tensor, Tensor, Tensor], Tensor]


def layer_measures(layers: Sequence, taps: Sequence[LayerTaps], forward: Callable[[], object],
                   n_head: int, num_frames: int, names: Sequence[str], out_weight_of,
                   value_zeroing_of: ValueZeroingFn,
                   on_layer: Callable[[int], None] | None = None,
                   should_cancel: Callable[[], bool] | None = None) -> dict[str, np.ndarray]:
    """The one-pass measures of every layer: attention norm (N, 1, M, T, T) and/or value zeroing
    (N, 1, 1, T, T), float16, for the first ``num_frames`` frames.

    ``forward()`` runs the model once (under no_grad here); as each of ``layers`` finishes, its
    ``taps`` give the weights of the kept rows and keys (``mixing.attention_weights``), the heads'
    value outputs through ``out_weight_of(layer)`` (the output projection's weight) and, for value
    zeroing, the model-specific ``value_zeroing_of(layer, w, f, x, attn_out)``. Hooks and taps
    are always removed; ``should_cancel()`` is checked after every layer.
    """
    n_layer, t_keep = len(layers), num_frames
    out: dict[str, np.ndarray] = {}
    if "norm" in names:
        out["norm"] = np.empty((n_layer, 1, n_head, t_keep, t_keep), np.float16)
    if "value_zeroing" in names:
        out["value_zeroing"] = np.empty((n_layer, 1, 1, t_keep, t_keep), np.float16)

    def finish(i: int):
        def hook(layer, _inp, _out):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            t = taps[i].t
            w = mixing.attention_weights(t["q"], t["k"], n_head, t_keep, t_keep)  # (M, T, T)
            f = mixing.head_value_outputs(t["v"][:t_keep], out_weight_of(layer), n_head)
            if "norm" in out:
                out["norm"][i, 0] = mixing.attention_norm(w, f).cpu().numpy()
            if "value_zeroing" in out:
                vz = value_zeroing_of(layer, w, f, t["x"][:t_keep], t["attn_out"][:t_keep])
                out["value_zeroing"][i, 0, 0] = vz.cpu().numpy()
            t.clear()
            if on_layer is not None:
                on_layer(i)
        return hook

    handles = [layer.register_forward_hook(finish(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in handles:
            h.remove()
        for tp in taps:
            tp.remove()
    return out
