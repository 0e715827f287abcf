"""Sites: named places in a model whose output is read per frame (or per token).

A site's name is the module path of the loaded model (``model.get_submodule(name)``), so names
people already use work unchanged: ``encoder.blocks.2.mlp.1`` for openai-whisper's GELU neurons,
``wav2vec2.encoder.layers.3`` for a transformers wav2vec 2.0 layer. Adapters list their sites
(``Adapter.list_sites()``); this module parses and checks requests against such a list, prints it,
and records module outputs with forward hooks. No torch import here: the recorder only calls
methods of the modules and tensors it is handed.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np

from .adapters import Site
from ..errors import SteveError

def parse_sites(values: Iterable[str] | str | None) -> list[str]:
    """``["a,b", " c "]`` -> ``["a", "b", "c"]``: comma-separated, stripped, first of duplicates."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for value in values:
        for name in str(value).split(","):
            name = name.strip()
            if name and name not in out:
                out.append(name)
    return out


def site_pattern(site: Site) -> str:
    """The name with its layer segment as ``{l}``: ``encoder.blocks.2.mlp.1`` -> ``encoder.blocks.{l}.mlp.1``."""
    if site.layer is None:
        return site.name
    return re.sub(rf"\.{site.layer}(?=\.|$)", ".{l}", site.name, count=1)


def describe_sites(sites: Sequence[Site]) -> str:
    """All site names on one line, layers folded: ``encoder.blocks.{0-3}.mlp.1, encoder.ln_post``."""
    groups: dict[str, list[int]] = {}
    for s in sites:
        groups.setdefault(site_pattern(s), []).append(-1 if s.layer is None else s.layer)
    parts = []
    for pattern, layers in groups.items():
        if "{l}" not in pattern:
            parts.append(pattern)
            continue
        lo, hi = min(layers), max(layers)
        span = str(lo) if lo == hi else (f"{lo}-{hi}" if sorted(layers) == list(range(lo, hi + 1))
                                         else ",".join(map(str, sorted(layers))))
        parts.append(pattern.replace("{l}", "{" + span + "}"))
    return ", ".join(parts)


def validate_sites(requested: Iterable[str] | str | None, available: Sequence[Site]) -> list[Site]:
    """Requested names -> their Sites (request order); SteveError naming the valid ones."""
    by_name = {s.name: s for s in available}
    names = parse_sites(requested)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        which = ", ".join(repr(n) for n in unknown)
        raise SteveError(f"unknown site{'s' if len(unknown) > 1 else ''} {which}; valid sites: "
                         f"{describe_sites(available)}")
    return [by_name[n] for n in names]


def sites_table(sites: Sequence[Site]) -> str:
    """Plain-text table: name, dim, axis, layer, kind."""
    rows = [("name", "dim", "axis", "layer", "kind")]
    rows += [(s.name, str(s.dim), s.axis, "-" if s.layer is None else str(s.layer), s.kind)
             for s in sites]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) if i in (1, 3) else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    return "\n".join(lines)


class SitesRecorded(Exception):
    """Raised by a stopping SiteRecorder's hook once it has every site (not an error)."""


class SiteRecorder:
    """Forward hooks that keep the output of named modules as float32 (rows, D) numpy arrays.

    ``SiteRecorder(model, names, rows=T)`` as a context manager: while inside, each forward pass of
    ``model.get_submodule(name)`` stores ``output[0, :T]`` (batch element 0; the first element when
    a module returns a tuple, as transformers' layers do) in ``recorder.arrays[name]``, a copy. With
    ``rows=None`` every row is kept. The hooks are removed on exit whatever happens.

    ``stop=True`` ends the forward pass as soon as every site has been recorded (for a caller that
    wants the sites and nothing else: the layers after the deepest site are not run). The
    recorder's hook then raises ``SitesRecorded``, which its own ``with`` block swallows.
    """

    def __init__(self, model, names: Sequence[str], rows: int | None = None,
                 stop: bool = False):
        self.model = model
        self.names = list(names)
        self.rows = rows
        self.stop = stop and bool(self.names)
        self.arrays: dict[str, np.ndarray] = {}
        self._handles: list = []

    def _hook(self, name: str):
        def hook(_module, _inputs, output) -> None:
            if isinstance(output, (tuple, list)):
                output = output[0]
            x = output.detach()[0]  # (T_all, D)
            if self.rows is not None:
                x = x[: self.rows]
            self.arrays[name] = np.array(x.float().cpu().numpy(), dtype=np.float32, copy=True)
            if self.stop and len(self.arrays) == len(self.names):
                raise SitesRecorded()
        return hook

    def __enter__(self) -> "SiteRecorder":
        try:
            for name in self.names:
                module = self.model.get_submodule(name)
                self._handles.append(module.register_forward_hook(self._hook(name)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, exc_type=None, *_exc) -> bool:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return exc_type is not None and issubclass(exc_type, SitesRecorded)

    def result(self) -> dict[str, np.ndarray]:
        """The recorded arrays in the order of ``names``; SteveError for a module that never ran."""
        missing = [n for n in self.names if n not in self.arrays]
        if missing:
            raise SteveError(f"site(s) {', '.join(missing)} produced no output in this pass")
        return {n: self.arrays[n] for n in self.names}
