"""``memchat db migrate|status|copy``: the schema and moving every session between databases.

``copy`` goes through the JSONL export of each session (summaries, pins, images and tool calls
included, the same records ``sessions export`` writes) and copies the server's accounts with
their token hashes, so nothing is lost and tokens keep working. Each owner's long-term memories
follow their sessions, every version with its history (``import_memories``: ended ones, links,
times and origins kept), their sessions and source messages pointed at the copies."""

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
        taken = any(
            dst.for_owner(old).list_sessions() or dst.for_owner(old).memories(include_ended=True, limit=1)
            for old, _ in owners
        )
        if taken or dst.user_records():
            raise UsageError(f"{target} already holds sessions or users; copy into an empty database")
        for old_id, name, token_hash, created in src.user_records():
            owners.append((old_id, dst.restore_user(name, token_hash, created)))
        copied = remembered = 0
        for old_id, new_id in owners:
            src_view, dst_view = src.for_owner(old_id), dst.for_owner(new_id)
            sessions: dict[int, int] = {}
            messages: dict[int, int] = {}
            for info in reversed(src_view.list_sessions()):  # oldest first: ids keep their order
                new = import_jsonl(dst_view, export_jsonl(src_view, info.id))
                sessions[info.id] = new.id
                pairs = zip(src_view.messages(info.id), dst_view.messages(new.id), strict=True)
                messages.update((int(a.id or 0), int(b.id or 0)) for a, b in pairs)
                copied += 1
            remembered += _copy_memories(src_view, dst_view, sessions, messages)
        err(
            f"copied {copied} session(s) and {len(owners) - 1} user(s) from {source} to {target}, "
            f"with {remembered} memory record(s)"
        )
    finally:
        src.close()
        dst.close()
    return 0


def _copy_memories(src: Any, dst: Any, sessions: dict[int, int], messages: dict[int, int]) -> int:
    """Copy one owner's memories, every version (oldest first, so ids keep their order), with
    their sessions and source messages mapped to the copies (a source not copied is dropped);
    return how many."""
    import dataclasses

    memories = list(reversed(src.memories(include_ended=True)))
    batch = [
        dataclasses.replace(
            m,
            session_id=sessions.get(m.session_id) if m.session_id is not None else None,
            source_ids=tuple(messages[i] for i in m.source_ids if i in messages),
        )
        for m in memories
    ]
    dst.import_memories(batch)
    return len(batch)
