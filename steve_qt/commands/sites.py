"""``steve-qt sites [--model SPEC]``: the sites a model's activations can be read from."""

from __future__ import annotations

import argparse

from ..core.models.adapters import DEFAULT_SPEC


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sites", help="list the sites (module paths) whose activations can be read",
                       description=__doc__)
    p.add_argument("--model", default=DEFAULT_SPEC, metavar="SPEC",
                   help="whisper (embedded tiny.en, default), whisper:NAME_OR_PATH, "
                        "wav2vec2:DIR_OR_ID")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..core.models.pipeline import get_adapter
    from ..core.models.sites import sites_table

    adapter = get_adapter(args.model)
    print(f"{adapter.model_id}: {len(adapter.list_sites())} sites "
          "(axis frames: one row per audio frame; tokens: one row per transcript token)")
    print(sites_table(adapter.list_sites()))
    return 0
