"""``memchat users add|list|remove``: accounts of the HTTP server. A user's token is shown once,
at creation; only its hash is stored. Every session belongs to a user and every server lookup is
scoped to the one making the request."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from memchat.cli.common import UsageError, settings_for, store_for
from memchat.stores.base import Accounts

if TYPE_CHECKING:
    import argparse


def cmd_users(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    store = store_for(settings)
    try:
        if not isinstance(store, Accounts):
            raise UsageError(f"{settings.db} keeps no user accounts")
        if args.action == "add":
            user_id, token = store.add_user(args.name)
            sys.stdout.write(f"{token}\n")
            sys.stderr.write(f"memchat: user {args.name!r} (id {user_id}) added; the token above is shown only once\n")
        elif args.action == "list":
            for user_id, name in store.users():
                sys.stdout.write(f"{user_id}\t{name}\n")
        elif args.action == "remove":
            if not store.remove_user(args.name):
                raise UsageError(f"no user named {args.name!r}")
    finally:
        store.close()
    return 0
