"""What every command shares: the program's name, usage errors, one-line messages on stderr,
and the settings and store a command's arguments resolve to.

Imported by ``main`` at start-up, so its module-level imports stay at sys/typing (see ``main``).
It lives apart from ``main`` because ``python -m memchat.cli.main`` runs ``main`` as
``__main__``: a command module importing ``UsageError`` from ``memchat.cli.main`` would load a
second copy of it, whose ``UsageError`` the running ``main()`` would not catch.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from memchat.config import Settings
    from memchat.stores.base import Store

PROG = "memchat"
GLOBAL_FLAGS = ("provider", "model", "base_url", "db", "lang")


class UsageError(Exception):
    """The command line itself is wrong (exit code 2)."""


def err(line: str) -> None:
    """``line`` on stderr as ``memchat: line``: one line whatever it quotes (a newline or another
    control character the user typed is shown escaped, as ``\\n``)."""
    line = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)
    sys.stderr.write(f"{PROG}: {line}\n")
    sys.stderr.flush()


def settings_for(args: argparse.Namespace, **extra: Any) -> Settings:
    """The settings resolved from the global flags (and ``extra``); applies their language."""
    from memchat import i18n
    from memchat.config import resolve

    flags = {name: getattr(args, name, None) for name in GLOBAL_FLAGS}
    flags.update(extra)
    settings = resolve(flags)
    if settings.lang:
        i18n.set_lang(settings.lang)
    return settings


def store_for(settings: Settings) -> Store:
    """The store of ``settings.db`` (the caller closes it)."""
    from memchat.factory import open_store

    store: Store = open_store(settings.db)
    return store
