"""``memchat sessions …``: list, show, rename, fork, delete, export, import, truncate, context.

Each command opens the store, does one thing and closes it; what it prints goes to stdout
(``--json`` and exports for programs), except the confirmation prompt and the note after an
export to a file, which go to stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from memchat.cli.cli_strings import t
from memchat.cli.common import settings_for, store_for
from memchat.cli.output import print_json, read_in, table, when, write_out

if TYPE_CHECKING:
    import argparse


def cmd_list(args: argparse.Namespace) -> int:
    store = store_for(settings_for(args))
    try:
        sessions = store.list_sessions()
    finally:
        store.close()
    if args.json:
        from memchat.serialization import session_summary

        print_json([session_summary(s) for s in sessions])
        return 0
    if not sessions:
        sys.stdout.write(t("cli.no_sessions") + "\n")
        return 0
    header = [t(f"cli.col_{c}") for c in ("name", "messages", "model", "updated")]
    table(header, [[s.name, str(s.message_count), s.model or "-", when(s.updated)] for s in sessions])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = store_for(settings_for(args))
    try:
        info = store.get_session(args.name)
        messages = store.messages(info.id)
        pinned = frozenset(p.id for p in store.pins(info.id) if p.id is not None)
        summaries = store.summaries(info.id)
    finally:
        store.close()
    if args.json:
        from memchat.serialization import session_view

        print_json(session_view(info, messages, pinned))
        return 0
    from memchat.serialization import covered

    w = sys.stdout.write
    w(f"session   {info.name}\n")
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
        w(f"\n[{i}] {m.role.value} · {' · '.join(notes)} · {when(m.created)}\n")
        w("    " + m.content.replace("\n", "\n    ") + "\n")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    store = store_for(settings_for(args))
    try:
        info = store.update_session(args.old, name=args.new)
    finally:
        store.close()
    sys.stdout.write(t("cli.renamed", old=args.old, new=info.name) + "\n")
    return 0


def cmd_fork(args: argparse.Namespace) -> int:
    store = store_for(settings_for(args))
    try:
        info = store.fork_session(args.name, args.new, at=args.at)
    finally:
        store.close()
    sys.stdout.write(t("cli.forked", old=args.name, new=info.name, count=info.message_count) + "\n")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from memchat.errors import MemchatError

    store = store_for(settings_for(args))
    try:
        info = store.get_session(args.name)
        if not args.yes:
            if sys.stdin is None or not sys.stdin.isatty():
                raise MemchatError(t("cli.delete_refused", name=info.name))
            sys.stderr.write(t("cli.delete_prompt", name=info.name, count=info.message_count))
            sys.stderr.flush()
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes", "是"):
                sys.stdout.write(t("cli.delete_kept", name=info.name) + "\n")
                return 1
        store.delete_session(info.id)
    finally:
        store.close()
    sys.stdout.write(t("cli.deleted", name=info.name) + "\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from memchat.serialization import export_jsonl, export_markdown

    store = store_for(settings_for(args))
    try:
        text = (export_markdown if args.format == "md" else export_jsonl)(store, args.name)
    finally:
        store.close()
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
    store = store_for(settings_for(args))
    try:
        created = store.import_session(
            parsed.info, parsed.messages, summaries=parsed.summaries, pins=parsed.pins, images=parsed.images
        )
    finally:
        store.close()
    sys.stdout.write(t("cli.imported", name=created.name, count=created.message_count) + "\n")
    return 0


def cmd_truncate(args: argparse.Namespace) -> int:
    store = store_for(settings_for(args))
    try:
        info = store.get_session(args.name)
        removed = store.truncate(info.id, args.keep)  # summaries of removed messages go with them
        kept = store.get_session(info.id).message_count
    finally:
        store.close()
    sys.stdout.write(t("cli.truncated", keep=kept, name=info.name, removed=removed) + "\n")
    return 0


def cmd_context(args: argparse.Namespace) -> int:
    from memchat.cli.turns import _agent, memory_settings
    from memchat.serialization import context_view

    agent = _agent(memory_settings(args))
    try:
        info = agent.store.get_session(args.name)
        plan = agent.context(info, args.text)
        view = context_view(agent.store, info, plan, model=agent.model_for(info))
    finally:
        agent.close()
    if args.json:
        print_json(view)
        return 0
    from memchat.cli.context_text import format_context

    sys.stdout.write(format_context(view))
    return 0
