"""steve_qt: see and hear what a speech transformer attends to.

``import steve_qt as sq`` gives the public Python API (the README's "Python API" lists it);
names are imported on first use, so that importing the package loads neither torch nor a model.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: public name -> module that defines it (everything else is private)
_PUBLIC = {name: "steve_qt.api" for name in (
    "Error", "load_model", "Model", "load_utterance", "Utterance", "Extraction", "Attention",
    "Word", "load_extraction", "Activations", "load_activations", "FeatureIndex", "build_index",
    "corpus_stats", "CorpusStats", "probe",
    "window", "ablate", "steer", "lens", "Lens", "lm", "figure", "feature_figure", "feature_audio",
    "Sound", "acoustics", "phones", "train_saes", "evaluate_sae", "compare_saes",
    "erase_concept", "steer_corpus",
    "Table")}
_PUBLIC["SAE"] = "steve_qt.core.features.sae"

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'steve_qt' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
