"""``memchat sessions …``: list, search, show, rename, fork, delete, export, import, truncate, context.

Each command opens the store, does one thing and closes it; what it prints goes to stdout
(``--json`` and exports for programs), except the confirmation prompt and the note after an
export to a file, which go to stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from memchat.cli.cli_strings import t
from memchat.cli.common import err, settings_for, store_for
from memchat.cli.output import print_json, read_in, table, when, write_out

if TYPE_CHECKING:
    import argparse

    from memchat.service import Sessions


def _sessions(args: argparse.Namespace) -> Sessions:
    """The session use cases over the store the settings name (close it when done)."""
    from memchat.service import Sessions

    return Sessions(store_for(settings_for(args)))


def cmd_list(args: argparse.Namespace) -> int:
    chats = _sessions(args)
    try:
        sessions = chats.list()
    finally:
        chats.close()
    if args.json:
        from memchat.serialization import session_summary

        print_json([session_summary(s) for s in sessions])
        return 0
    if not sessions:
        sys.stdout.write(t("cli.no_sessions") + "\n")
        return 0
    header = [t(f"cli.col_{c}") for c in ("name", "title", "messages", "model", "updated")]
    rows = [
        [s.name, _one_line(s.title or "-"), str(s.message_count), s.model or "-", when(s.updated)] for s in sessions
    ]
    table(header, rows)
    return 0


def _one_line(text: str, width: int = 48) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def cmd_search(args: argparse.Namespace) -> int:
    """Sessions whose messages (or name, title, persona) hold the words: each session's name
    (what ``-s`` takes) and title, then its matching messages' snippets, the words in bold on a
    terminal."""
    query = " ".join(args.query)
    chats = _sessions(args)
    try:
        found = chats.search(query, limit=args.limit)
    finally:
        chats.close()
    if args.json:
        from memchat.serialization import search_view

        print_json(search_view(found))
        return 0
    if not found.sessions:
        err(t("cli.search_none", query=query))
        return 1
    bold = sys.stdout.isatty()
    w = sys.stdout.write
    for match in found.sessions:
        s = match.session
        title = f"  · {s.title}" if s.title else ""
        w(f"{s.name}{title}  ({t('cli.col_messages').lower()}: {s.message_count}, {when(s.updated)})\n")
        if not match.snippets:
            w(f"    {t('cli.search_name_only')}\n")
        for snip in match.snippets:
            text, at = snip.text, 0
            shown = []
            for start, end in snip.marks:
                shown.append(text[at:start])
                shown.append(f"\x1b[1m{text[start:end]}\x1b[0m" if bold else text[start:end])
                at = end
            shown.append(text[at:])
            w(f"    {snip.role.value}: {''.join(shown)}\n")
    if found.total > len(found.sessions):
        sys.stderr.write(t("cli.search_total", shown=len(found.sessions), total=found.total) + "\n")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    chats = _sessions(args)
    try:
        history = chats.history(args.name)
        info, messages, pinned = history.session, history.messages, frozenset(history.pinned)
        summaries = history.summaries
    finally:
        chats.close()
    if args.json:
        from memchat.serialization import session_view

        print_json(session_view(info, messages, pinned, history.versions))
        return 0
    from memchat.domain import human_size
    from memchat.serialization import covered

    w = sys.stdout.write
    w(f"session   {info.name}\n")
    if info.title:
        w(f"title     {info.title}\n")
    w(f"model     {info.model or '-'}" + (f"  ({info.provider})" if info.provider else "") + "\n")
    w(f"memory    {info.memory}\n")
    w(f"created   {when(info.created)}\nupdated   {when(info.updated)}\nmessages  {len(messages)}\n")
    if info.persona:
        w("persona   " + info.persona.replace("\n", "\n          ") + "\n")
    span = (
        covered([m.seq or 0 for m in messages], summaries[-1].first_seq, summaries[-1].last_seq) if summaries else None
    )
    if span is not None:  # the running summary in use
        w(f"summary   of messages {span[0]}–{span[1]}: " + summaries[-1].content.replace("\n", "\n          ") + "\n")
    for i, m in enumerate(messages, 1):
        notes = [m.status.value]
        if m.tokens is not None:
            notes.append(f"{m.tokens} token" + ("" if m.tokens == 1 else "s"))
        if m.model and m.role.value == "assistant":
            notes.append(m.model)
        if m.id in pinned:
            notes.append("pinned")
        mark = history.versions.get(m.id or 0)
        if mark is not None:  # its point has versions (memchat chat: /versions)
            notes.append(f"version {mark.number} of {mark.count}")
        w(f"\n[{i}] {m.role.value} · {' · '.join(notes)} · {when(m.created)}\n")
        w("    " + m.content.replace("\n", "\n    ") + "\n")
        for a in m.attachments:
            w(f"    📎 {a.name} ({a.media_type}, {human_size(a.size)})\n")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    chats = _sessions(args)
    try:
        info = chats.rename(args.old, args.new)
    finally:
        chats.close()
    sys.stdout.write(t("cli.renamed", old=args.old, new=info.name) + "\n")
    return 0


def cmd_fork(args: argparse.Namespace) -> int:
    chats = _sessions(args)
    try:
        info = chats.fork(args.name, args.new, at=args.at)
    finally:
        chats.close()
    sys.stdout.write(t("cli.forked", old=args.name, new=info.name, count=info.message_count) + "\n")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from memchat.errors import MemchatError

    chats = _sessions(args)
    try:
        info = chats.get(args.name)
        if not args.yes:
            if sys.stdin is None or not sys.stdin.isatty():
                raise MemchatError(t("cli.delete_refused", name=info.name))
            sys.stderr.write(t("cli.delete_prompt", name=info.name, count=info.message_count))
            sys.stderr.flush()
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes", "是"):
                sys.stdout.write(t("cli.delete_kept", name=info.name) + "\n")
                return 1
        chats.delete(info.id)
    finally:
        chats.close()
    sys.stdout.write(t("cli.deleted", name=info.name) + "\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    chats = _sessions(args)
    try:
        text = chats.export(args.name, "md" if args.format == "md" else "jsonl")
    finally:
        chats.close()
    write_out(text, args.output)
    if args.output not in (None, "-"):
        sys.stderr.write(t("cli.exported", name=args.name, path=args.output) + "\n")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from memchat.errors import ImportFormatError
    from memchat.serialization import prepare_import

    text = read_in(args.file)
    try:
        parsed = prepare_import(text, args.name)  # the whole file, before the store opens
    except ImportFormatError as exc:
        where = "stdin" if args.file == "-" else args.file
        raise ImportFormatError(f"{where}: {exc.detail}", **exc.info) from exc
    chats = _sessions(args)
    try:
        created = chats.import_prepared(parsed)
    finally:
        chats.close()
    sys.stdout.write(t("cli.imported", name=created.name, count=created.message_count) + "\n")
    return 0


def cmd_truncate(args: argparse.Namespace) -> int:
    chats = _sessions(args)
    try:
        info = chats.get(args.name)
        removed = chats.truncate(info.id, args.keep)  # summaries of removed messages go with them
        kept = chats.get(info.id).message_count
    finally:
        chats.close()
    sys.stdout.write(t("cli.truncated", keep=kept, name=info.name, removed=removed) + "\n")
    return 0


def cmd_context(args: argparse.Namespace) -> int:
    from memchat.cli.turns import _agent, memory_settings
    from memchat.service import Conversations

    chats = Conversations(_agent(memory_settings(args)))
    try:
        info = chats.get(args.name)
        view = chats.context_view(info, chats.context(info, args.text))
    finally:
        chats.agent.close()
    if args.json:
        print_json(view)
        return 0
    from memchat.cli.context_text import format_context

    sys.stdout.write(format_context(view))
    return 0
