"""Forward hooks that keep one attention layer's tensors, for the context-mixing measures of the
model plugins (plugins/steve_whisper/mixing.py, plugins/steve_wav2vec2/mixing.py).

``LayerTaps(layer, q, k, v, attention, out_proj, input_name)`` keeps, by name, batch row 0 of:
``x`` the layer's input (positional, or the keyword ``input_name``), ``q``/``k``/``v`` the
projections' outputs (T, D), ``attn_out`` the attention module's output (its first element), and
with ``keep_graph`` the ``context`` entering the output projection, its gradient retained.
Without ``keep_graph`` everything is detached. ``remove()`` takes every hook off.
"""

from __future__ import annotations

from torch import Tensor


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
