"""Context-mixing measures beside the raw attention: names, shapes, parsing (no torch, no Qt).

Each measure is an array shaped like the attention, float16 (N, 1, M, Q, K), with M = 1 for a
measure defined per layer rather than per head:

===================  ==========  ==================================================================
name (npz key)       heads       meaning
===================  ==========  ==================================================================
``norm``             per head    ‖α_qk · f_h(x_k)‖, f_h = value projection, then the head's slice of
                                 the output projection (Kobayashi et al. 2020)
``value_zeroing``    per layer   cosine distance between the layer's output at q with all values
                                 and with k's value vector zeroed in every head; rows sum to 1
                                 (Mohebbi et al. 2023)
``grad``             per layer   gradient-weighted attention relevance (Chefer et al. 2021):
                                 Ā_l = mean_h (∇A ⊙ A)⁺ of the transcript's log-probability,
                                 R ← R + Ā_l · R from R = I; layer n holds R - I after layers
                                 0..n (cumulative; the identity left out so that what mixing
                                 added shows; the last layer is the full map)
===================  ==========  ==================================================================

On the command line the names may be written with a hyphen (``value-zeroing``).
"""

from __future__ import annotations

from typing import Iterable

from ..errors import SteveError

MEASURES = ("norm", "value_zeroing", "grad")
#: every kind of map a view can show, in the chooser's order
KINDS = ("weights", "scores") + MEASURES
PER_LAYER = frozenset({"value_zeroing", "grad"})
TITLES = {
    "weights": "softmax weights",
    "scores": "pre-softmax scores",
    "norm": "attention norm ‖α·f(x)‖",
    "value_zeroing": "value zeroing",
    "grad": "grad relevance",
}
#: kinds whose values are non-negative (colour scale from 0, log scale allowed)
NON_NEGATIVE = frozenset({"weights", "norm", "value_zeroing", "grad"})


def cli_name(measure: str) -> str:
    return measure.replace("_", "-")


def parse_measures(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"norm,value-zeroing"`` (or a list) -> ``("norm", "value_zeroing")``; SteveError if unknown."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in items:
        name = item.strip().lower().replace("-", "_")
        if not name:
            continue
        if name not in MEASURES:
            valid = ", ".join(cli_name(m) for m in MEASURES)
            raise SteveError(f"unknown measure {item.strip()!r}; valid measures: {valid}")
        if name not in out:
            out.append(name)
    return tuple(out)


#: measures one forward pass gives (hooks on every layer); the others need their own pass
ONE_PASS = frozenset({"norm", "value_zeroing"})


class LayerProgress:
    """Progress of a measures request over its passes, a layer at a time: one pass for the
    ONE_PASS measures wanted, one for ``grad``; ``step(what)`` makes a pass's ``on_layer(i)``,
    which reports ``progress(done, total, "WHAT, LAYER_WORD i")``."""

    def __init__(self, num_layers: int, wanted: Iterable[str], progress=None,
                 layer_word: str = "layer"):
        wanted = set(wanted)
        self.total = num_layers * (("grad" in wanted) + bool(ONE_PASS & wanted))
        self.done = 0
        self.progress, self.layer_word = progress, layer_word

    def step(self, what: str):
        def on_layer(i: int) -> None:
            self.done += 1
            if self.progress is not None:
                self.progress(self.done, self.total, f"{what}, {self.layer_word} {i}")
        return on_layer
