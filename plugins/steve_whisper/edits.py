"""Edited runs: functions applied to module outputs as forward hooks, always removed.

``edits`` maps a module path of the openai-whisper model (``encoder.blocks.2.mlp.1``,
``encoder.ln_post``, ``decoder.blocks.0``...) to ``f(output) -> output``. Encoder modules see
the padded window, (1, 1500, D); decoder modules see (1, n_new_tokens, D) once per decoding step
(kv-cache). A function that returns None leaves the output as it is.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Mapping

import torch

from steve_qt.core.errors import SteveError

EditFn = Callable[[torch.Tensor], "torch.Tensor | None"]


def module_at(model: torch.nn.Module, path: str) -> torch.nn.Module:
    """The submodule at ``path``; SteveError when there is none."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise SteveError(f"the model has no module {path!r} (module paths look like "
                         f"encoder.blocks.0.mlp.1, encoder.ln_post, decoder.blocks.0)") from None


def _hook(fn: EditFn):
    def hook(_mod, _inp, out):
        return fn(out)
    return hook


@contextlib.contextmanager
def edit_hooks(model: torch.nn.Module, edits: Mapping[str, EditFn] | None) -> Iterator[None]:
    """Install ``edits`` as forward hooks for the duration of the block."""
    modules = [(module_at(model, path), fn) for path, fn in (edits or {}).items()]
    handles = []
    try:
        for mod, fn in modules:
            handles.append(mod.register_forward_hook(_hook(fn)))
        yield
    finally:
        for h in handles:
            h.remove()
