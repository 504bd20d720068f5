"""``memchat models`` (the provider's models) and ``memchat config`` (the resolved settings)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from memchat.cli.cli_strings import t
from memchat.cli.common import settings_for
from memchat.cli.output import print_json, table

if TYPE_CHECKING:
    import argparse


def cmd_models(args: argparse.Namespace) -> int:
    from memchat.factory import make_provider

    provider = make_provider(settings_for(args))
    try:
        models = provider.list_models()
    finally:
        provider.close()
    if args.json:
        print_json(models)
    else:
        sys.stdout.write("".join(f"{m}\n" for m in models))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    rows = settings_for(args).describe()
    if args.json:
        from memchat.serialization import ConfigEntry

        print_json({name: ConfigEntry(value=value, source=source) for name, value, source in rows})
        return 0
    header = [t(f"cli.col_{c}") for c in ("setting", "value", "source")]
    table(header, [[name, value or "-", source] for name, value, source in rows])
    return 0
