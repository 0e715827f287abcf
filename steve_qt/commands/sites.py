"""``steve-qt sites [--model SPEC]``: the sites a model's activations can be read from."""

from __future__ import annotations

import argparse

from .common import add_model_option


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("sites", help="list the sites (module paths) whose activations can be read",
                       description=__doc__)
    add_model_option(p)
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
