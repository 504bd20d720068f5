"""``memchat db migrate|status|copy``: the schema and moving every session between databases.

``copy`` goes through the JSONL export of each session (summaries, pins, images and tool calls
included, the same records ``sessions export`` writes) and copies the server's accounts with
their token hashes, so nothing is lost and tokens keep working."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from memchat.cli.common import UsageError, err, settings_for

if TYPE_CHECKING:
    import argparse


def _open(target: str, migrate: bool | None) -> Any:
    from memchat.factory import open_store

    return open_store(target, migrate=migrate)


def cmd_db(args: argparse.Namespace) -> int:
    if args.action == "copy":
        return _copy(args.source, args.target)
    target = settings_for(args).db
    store = _open(target, None)
    try:
        pending = store.pending_migrations()
        if args.action == "migrate":
            applied = store.migrate()
            err(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''} to {target}")
        else:
            state = f"{len(pending)} pending: {', '.join(pending)}" if pending else "up to date"
            sys.stdout.write(f"{target}: {state}\n")
    finally:
        store.close()
    return 0


def _copy(source: str, target: str) -> int:
    from memchat.serialization import export_jsonl, import_jsonl
    from memchat.stores.sqlite import LOCAL_USER

    src = _open(source, False)
    try:
        dst = _open(target, True)
    except BaseException:
        src.close()
        raise
    try:
        owners: list[tuple[int, int]] = [(LOCAL_USER, LOCAL_USER)]
        if any(dst.for_owner(old).list_sessions() for old, _ in owners) or dst.user_records():
            raise UsageError(f"{target} already holds sessions or users; copy into an empty database")
        for old_id, name, token_hash, created in src.user_records():
            owners.append((old_id, dst.restore_user(name, token_hash, created)))
        copied = 0
        for old_id, new_id in owners:
            src_view, dst_view = src.for_owner(old_id), dst.for_owner(new_id)
            for info in reversed(src_view.list_sessions()):  # oldest first: ids keep their order
                import_jsonl(dst_view, export_jsonl(src_view, info.id))
                copied += 1
        err(f"copied {copied} session(s) and {len(owners) - 1} user(s) from {source} to {target}")
    finally:
        src.close()
        dst.close()
    return 0
