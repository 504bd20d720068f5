"""``memchat memory …``: review and control what memchat remembers about you across sessions —
list, search, show, add, edit, forget, restore, history, export, import; and ``index``, which
gives past messages their vectors for recall by meaning now instead of in the background.

Every command goes through ``MemoryService`` (the same use cases the REPL, the tools, the HTTP
API and the page call) over the local user's memories; none needs the model, so none builds
a provider (tokens are estimated). What a command prints goes to stdout (``--json`` and
``export`` for programs); errors are one line on stderr with exit code 1. A memory is never
deleted: ``forget`` and ``edit`` end it (``list --all`` and ``history`` still show it) and
``restore`` serves it again.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from memchat.cli.cli_strings import register, t
from memchat.cli.common import UsageError, settings_for, store_for
from memchat.cli.output import print_json, read_in, table, write_out

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime

    from memchat.domain import Memory
    from memchat.memories import MemoryService
    from memchat.stores.base import Store

KINDS = ("fact", "preference", "instruction", "event")
#: display cells of a memory's text in a table (``show`` prints it whole)
TEXT_WIDTH = 72


def _count(text: str) -> tuple[int, str]:
    from memchat.tokens import estimate_tokens

    return estimate_tokens(text), "estimate"


def _open(args: argparse.Namespace) -> tuple[Store, MemoryService]:
    from memchat.memories import MemoryService

    register()  # the strings (and the memory errors' wording) before anything can fail
    store = store_for(settings_for(args))
    return store, MemoryService(store, _count)


def _run(args: argparse.Namespace, action: Callable[[MemoryService, Store], int]) -> int:
    store, service = _open(args)
    try:
        return action(service, store)
    finally:
        store.close()


def _day(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d") if value else "-"


def _clip(text: str, width: int = TEXT_WIDTH) -> str:
    import unicodedata

    line = " ".join(text.split())
    out: list[str] = []
    used = 0
    for ch in line:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width - 1:
            return "".join(out) + "…"
        out.append(ch)
        used += w
    return line


def state(m: Memory) -> str:
    """Whether a memory is served, and if not since when and why."""
    if m.active:
        return t("mem.state_active")
    reason = m.end_reason.value if m.end_reason else "forgotten"
    if reason == "superseded" and m.superseded_by is not None:
        return t("mem.state_superseded", id=m.superseded_by, date=_day(m.ended))
    return t(f"mem.state_{reason}", date=_day(m.ended))


def rows(memories: Sequence[Memory], *, with_state: bool = False) -> tuple[list[str], list[list[str]]]:
    """The compact table of memories: id, kind, date (an event's), text, learned (and state)."""
    header = [t(f"cli.col_{c}") for c in ("id", "kind", "date", "text", "learned")]
    if with_state:
        header.append(t("cli.col_state"))
    body = []
    for m in memories:
        row = [
            str(m.id),
            m.kind.value,
            m.event_date.isoformat() if m.event_date else "-",
            _clip(m.content),
            _day(m.created),
        ]
        if with_state:
            row.append(state(m))
        body.append(row)
    return header, body


def _print(memories: Sequence[Memory], *, as_json: bool, empty: str, with_state: bool = False) -> None:
    if as_json:
        from memchat.memories.service import to_record

        print_json([to_record(m) for m in memories])
        return
    if not memories:
        sys.stdout.write(empty + "\n")
        return
    table(*rows(memories, with_state=with_state))


# -- the commands ---------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    def action(service: MemoryService, store: Store) -> int:
        found = service.list(include_ended=args.all, kind=args.kind)
        _print(found, as_json=args.json, empty=t("mem.none"), with_state=args.all)
        return 0

    return _run(args, action)


def cmd_search(args: argparse.Namespace) -> int:
    query = " ".join(args.query).strip()
    if not query:
        raise UsageError("memory search: say what to look for")

    def action(service: MemoryService, store: Store) -> int:
        found = service.search(query, limit=args.limit)
        _print(found, as_json=args.json, empty=t("mem.no_match", query=query))
        return 0

    return _run(args, action)


def cmd_show(args: argparse.Namespace) -> int:
    def action(service: MemoryService, store: Store) -> int:
        m = service.get(args.id)
        sources = list(_sources(store, m))
        if args.json:
            from memchat.memories.service import to_record

            record = to_record(m)
            record["sources"] = [{"message": n, "role": role, "content": text} for n, role, text in sources]
            print_json(record)
            return 0
        w = sys.stdout.write
        label = {k: t(f"mem.label_{k}") for k in ("memory", "kind", "date", "learned", "state", "session", "source")}
        width = max(_width(v) for v in label.values()) + 2

        def line(key: str, value: str) -> None:
            w(label[key] + " " * (width - _width(label[key])) + value + "\n")

        line("memory", f"#{m.id}  {m.content}")
        line("kind", f"{m.kind.value} · {t('mem.origin_' + m.origin.value)}")
        if m.event_date:
            line("date", m.event_date.isoformat())
        line("learned", _minute(m.created))
        line("state", state(m) + (t("mem.replaces", id=m.supersedes) if m.supersedes else ""))
        if m.session_id is not None:
            name = m.session_name if m.session_name else t("mem.session_gone", id=m.session_id)
            line("session", name)
        for number, role, text in sources:
            where = t("mem.message", number=number) if number else ""
            line("source", f"{where} {role}: {_clip(text, 200)}".strip())
        return 0

    return _run(args, action)


def _sources(store: Store, m: Memory) -> Iterator[tuple[int | None, str, str]]:
    """The messages a memory was learned from: (number in its session, role, text)."""
    if m.session_id is None or not m.source_ids:
        return
    from memchat.errors import StoreError

    try:
        messages = store.messages(m.session_id)
    except StoreError:  # the session was deleted since; the memory stays
        return
    wanted = set(m.source_ids)
    for number, message in enumerate(messages, 1):
        if message.id in wanted:
            yield number, message.role.value, message.content


def cmd_add(args: argparse.Namespace) -> int:
    text = " ".join(args.text)

    def action(service: MemoryService, store: Store) -> int:
        m = service.add(text, kind=args.kind, event_date=args.date)
        sys.stdout.write(_learned(service, m, "mem.added") + "\n")
        return 0

    return _run(args, action)


def _learned(service: MemoryService, m: Memory, key: str) -> str:
    """``remembered #4 (fact): …``, plus what it replaced."""
    from memchat.errors import MemchatError

    line = t(key, id=m.id, kind=m.kind.value, text=m.content)
    if m.event_date:
        line += t("mem.on_date", date=m.event_date.isoformat())
    if m.supersedes is not None:
        try:
            old = service.get(m.supersedes)
            line += t("mem.replacing", id=old.id, text=_clip(old.content, 60))
        except MemchatError:  # the note is a courtesy
            line += t("mem.replaces", id=m.supersedes)
    return line


def cmd_edit(args: argparse.Namespace) -> int:
    text = " ".join(args.text)

    def action(service: MemoryService, store: Store) -> int:
        m = service.edit(args.id, text, kind=args.kind)
        sys.stdout.write(t("mem.edited", old=args.id, id=m.id, text=m.content) + "\n")
        return 0

    return _run(args, action)


def cmd_forget(args: argparse.Namespace) -> int:
    match = " ".join(args.match or []).strip()
    if (args.id is None) == (not match):
        raise UsageError("memory forget: give an ID or --match TEXT (one of them)")

    def action(service: MemoryService, store: Store) -> int:
        from memchat.errors import MemchatError

        if args.id is not None:
            m = service.forget(args.id)
        else:
            found = service.forget_matching(match)
            if found is None:
                raise MemchatError(t("mem.no_match", query=match))
            m = found
        sys.stdout.write(t("mem.forgot", id=m.id, text=m.content) + "\n")
        return 0

    return _run(args, action)


def cmd_restore(args: argparse.Namespace) -> int:
    def action(service: MemoryService, store: Store) -> int:
        m = service.restore(args.id)
        sys.stdout.write(t("mem.restored", id=m.id, text=m.content) + "\n")
        return 0

    return _run(args, action)


def cmd_history(args: argparse.Namespace) -> int:
    def action(service: MemoryService, store: Store) -> int:
        versions = service.history(args.id)
        if args.json:
            from memchat.memories.service import to_record

            print_json([to_record(m) for m in versions])
            return 0
        header = [t(f"cli.col_{c}") for c in ("id", "learned", "state", "text")]
        table(header, [[str(m.id), _minute(m.created), state(m), _clip(m.content)] for m in versions])
        return 0

    return _run(args, action)


def cmd_export(args: argparse.Namespace) -> int:
    import json

    def action(service: MemoryService, store: Store) -> int:
        records = service.export(include_ended=True)
        write_out("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), args.output)
        if args.output not in (None, "-"):
            sys.stderr.write(t("mem.exported", count=len(records), path=args.output) + "\n")
        return 0

    return _run(args, action)


def parse_records(text: str, where: str) -> list[dict[str, Any]]:
    """The records of a memory export (JSONL), each checked; a bad line is an
    ``ImportFormatError`` naming it, before anything is stored."""
    import json

    from memchat.errors import ImportFormatError, MemchatError
    from memchat.memories.service import from_record

    records: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise ImportFormatError(t("mem.bad_json", where=where, line=number, reason=exc)) from exc
        try:
            from_record(record)
        except MemchatError as exc:
            raise ImportFormatError(t("mem.bad_line", where=where, line=number, reason=exc.detail)) from exc
        records.append(record)
    return records


def cmd_import(args: argparse.Namespace) -> int:
    where = "stdin" if args.file == "-" else args.file
    records = parse_records(read_in(args.file), where)  # the whole file, before the store opens

    def action(service: MemoryService, store: Store) -> int:
        added = service.import_records(records)
        sys.stdout.write(t("mem.imported", count=len(added), path=where) + "\n")
        return 0

    return _run(args, action)


def cmd_index(args: argparse.Namespace) -> int:
    """Give every past message its vector for recall by meaning now (normally done in the
    background after each turn; a long imported history takes minutes), with progress."""
    import os
    import time

    from memchat.errors import ConfigError
    from memchat.factory import make_semantic_index
    from memchat.memory.semantic import index_all

    register()
    settings = settings_for(args)
    index = make_semantic_index(settings)
    if index is None:
        if args.background:
            return 0
        raise ConfigError(t("mem.index_off"))
    lock = _background_lock(settings.db) if args.background else None
    if args.background and lock is None:
        return 0  # another background indexer works on this database
    if args.background:
        os.nice(19)  # only the time other work leaves (a chat started meanwhile keeps its speed)
    store = store_for(settings)
    live = sys.stderr.isatty() and not args.background

    def progress(count: int) -> None:
        if live:
            sys.stderr.write("\r" + t("mem.indexing", count=count))
            sys.stderr.flush()

    started = time.monotonic()
    try:
        count = index_all(index, store, on_progress=progress)
    finally:
        index.cancel(store)
        store.close()
    if live:
        sys.stderr.write("\r\033[K")
    if not args.background:
        sys.stdout.write(t("mem.indexed", count=count, seconds=time.monotonic() - started) + "\n")
    return 0


def _background_lock(db: str) -> Any:
    """An exclusive lock on this database's background indexing (held until the process
    ends), or None when another process holds it."""
    import fcntl
    import hashlib

    from memchat.config import data_dir

    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(db.encode()).hexdigest()[:16]
    handle = (folder / f"index-{name}.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def start_background_index(settings: Any) -> None:
    """Index what a one-shot command left (``memchat ask``) in a detached process, as ``git gc
    --auto`` does: this process exits at once; at most one such indexer per database runs."""
    import os
    import shutil
    import subprocess

    command = [sys.executable, "-m", "memchat.cli", "memory", "index", "--background", "--db", settings.db]
    nice = shutil.which("nice")
    if nice is not None:  # at the lowest priority from its first instruction (its imports too)
        command = [nice, "-n", "19", *command]
    try:
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the terminal's job, nor by its Ctrl-C
            env=os.environ.copy(),
            close_fds=True,
        )
    except OSError:
        pass  # indexing waits for the next process that indexes


def _minute(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
