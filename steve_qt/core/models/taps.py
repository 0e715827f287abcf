"""Forward hooks that keep one attention layer's tensors, for the context-mixing measures of the
model plugins (plugins/steve_whisper/mixing.py, plugins/steve_wav2vec2/mixing.py).

``LayerTaps(layer, q, k, v, attention, out_proj, input_name)`` keeps, by name, batch row 0 of:
``x`` the layer's input (positional, or the keyword ``input_name``), ``q``/``k``/``v`` the
projections' outputs (T, D), ``attn_out`` the attention module's output (its first element), and
with ``keep_graph`` the ``context`` entering the output projection, its gradient retained.
Without ``keep_graph`` everything is detached. ``remove()`` takes every hook off.

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
