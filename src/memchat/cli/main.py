"""memchat's command line: ``chat`` (the REPL), ``ask`` (one turn), ``sessions``, ``models``, ``config``.

Module-level imports stay at argparse/sys/os: ``memchat ask`` must start, stream one turn
and exit in well under 200 ms, so everything else (the agent, the store, the provider and
its HTTP client) is imported inside the command that needs it, and the ``ask`` path never
imports rich or prompt_toolkit.

Errors: a ``MemchatError`` becomes one line on stderr (``memchat: …``) and exit code 1;
usage errors exit 2, Ctrl-C exits 130. Output meant for programs (``ask``'s reply,
``export``, ``--json``) goes to stdout and nothing else does.

``ask -s NAME --system TEXT`` sets the persona only when it creates NAME: a one-shot
``ask`` never changes an existing session except by appending its turn (so a failed turn
leaves the session exactly as it was). To change a persona, use ``/system`` in
``memchat chat`` or ``memchat chat -s NAME --system TEXT``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from memchat.agent import Agent
    from memchat.config import Settings
    from memchat.domain import SessionInfo
    from memchat.stores.base import Store

PROG = "memchat"
GLOBAL_FLAGS = ("provider", "model", "base_url", "db", "lang")


class UsageError(Exception):
    """The command line itself is wrong (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        where = self.prog[len(PROG) :].strip()
        raise UsageError(f"{where + ': ' if where else ''}{message} (see: {self.prog} --help)")


# -- strings --------------------------------------------------------------------------------

_registered = False


def _t(key: str, **fields: object) -> str:
    """A CLI string in the user's language (registered on first use: ``ask`` needs few)."""
    global _registered
    from memchat import i18n

    if not _registered:
        i18n.add(en=_EN, zh=_ZH)
        _registered = True
    return i18n.t(key, **fields)


_EN = {
    "cli.interrupted": "interrupted",
    "cli.persona_kept": "note: session {name!r} keeps its persona; --system only applies to a new session",
    "cli.no_question": "no question: pass it as arguments, or pipe it on stdin (or use '-')",
    "cli.no_sessions": "no sessions yet (start one: memchat chat)",
    "cli.renamed": "renamed {old!r} to {new!r}",
    "cli.forked": "forked {old!r} into {new!r} (messages: {count})",
    "cli.deleted": "deleted {name!r}",
    "cli.delete_prompt": "delete session {name!r} and its {count} messages? [y/N] ",
    "cli.delete_kept": "kept {name!r}",
    "cli.delete_refused": "refusing to delete {name!r} without confirmation: stdin is not a terminal; "
    "pass --yes to delete it",
    "cli.exported": "exported {name!r} to {path}",
    "cli.imported": "imported {name!r} ({count} messages)",
    "cli.truncated": "truncated {name!r}: kept {keep} messages, removed {removed}",
    "cli.cannot_read": "cannot read {path}: {reason}",
    "cli.cannot_write": "cannot write {path}: {reason}",
    "cli.not_utf8": "{path} is not UTF-8 text",
    "cli.database": "cannot use the database {path}: {reason}",
    "cli.col_name": "NAME",
    "cli.col_messages": "MESSAGES",
    "cli.col_model": "MODEL",
    "cli.col_updated": "UPDATED",
    "cli.col_setting": "SETTING",
    "cli.col_value": "VALUE",
    "cli.col_source": "SOURCE",
}
_ZH = {
    "cli.interrupted": "已中断",
    "cli.persona_kept": "提示：会话 {name!r} 保留原有人设；--system 只作用于新建的会话",
    "cli.no_question": "没有问题：请作为参数传入，或通过标准输入管道传入（或使用 '-'）",
    "cli.no_sessions": "还没有会话（开始一个：memchat chat）",
    "cli.renamed": "已将 {old!r} 重命名为 {new!r}",
    "cli.forked": "已从 {old!r} 分叉出 {new!r}（{count} 条消息）",
    "cli.deleted": "已删除 {name!r}",
    "cli.delete_prompt": "删除会话 {name!r} 及其 {count} 条消息？[y/N] ",
    "cli.delete_kept": "保留了 {name!r}",
    "cli.delete_refused": "拒绝在未确认的情况下删除 {name!r}：标准输入不是终端；如确需删除请加 --yes",
    "cli.exported": "已将 {name!r} 导出到 {path}",
    "cli.imported": "已导入 {name!r}（{count} 条消息）",
    "cli.truncated": "已截断 {name!r}：保留 {keep} 条消息，删除 {removed} 条",
    "cli.cannot_read": "无法读取 {path}：{reason}",
    "cli.cannot_write": "无法写入 {path}：{reason}",
    "cli.not_utf8": "{path} 不是 UTF-8 文本",
    "cli.database": "无法使用数据库 {path}：{reason}",
    "cli.col_name": "名称",
    "cli.col_messages": "消息数",
    "cli.col_model": "模型",
    "cli.col_updated": "更新时间",
    "cli.col_setting": "设置",
    "cli.col_value": "值",
    "cli.col_source": "来源",
}


def _err(line: str) -> None:
    sys.stderr.write(f"{PROG}: {line}\n")
    sys.stderr.flush()


# -- the parser -----------------------------------------------------------------------------


def _global_flags() -> argparse.ArgumentParser:
    """Flags every command accepts, before or after its name. ``SUPPRESS`` keeps a
    subcommand's absent flag from overwriting one given before the subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("global options")
    s = argparse.SUPPRESS
    g.add_argument("--provider", default=s, help="local, modelscope, openai, deepseek, ollama, vllm or compat")
    g.add_argument("--model", default=s, help="model id (default: the provider's)")
    g.add_argument("--base-url", dest="base_url", default=s, help="the OpenAI-compatible server's URL")
    g.add_argument("--db", default=s, help="the SQLite database file")
    g.add_argument("--lang", default=s, help="language of messages: en or zh")
    return common


def _command_of(argv: Sequence[str]) -> str | None:
    """The command word of ``argv`` (skipping global flags and their values), if any."""
    takes_value = {"--" + name.replace("_", "-") for name in GLOBAL_FLAGS}
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif arg == "--" or not arg.startswith("-"):
            return None if arg == "--" else arg
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, just that command (``ask``'s fast path: building
    every subparser costs a few milliseconds of the turn's start-up budget)."""
    from memchat import __version__

    common = _global_flags()
    parser = _Parser(
        prog=PROG,
        parents=[common],
        description="A chat agent whose conversations have memory.",
        epilog="Settings: flags > MEMCHAT_* environment > config file > defaults (see: memchat config).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(group: Any, name: str, func: Callable[[argparse.Namespace], int], help: str) -> _Parser:
        p: _Parser = group.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(func=func)
        return p

    if only == "ask":
        _define_ask(command(sub, "ask", cmd_ask, _ASK_HELP))
        return parser

    p = command(sub, "chat", cmd_chat, "talk in the interactive REPL")
    p.add_argument("-s", "--session", metavar="NAME", help="the session to open (created if new)")
    p.add_argument("--system", metavar="TEXT", help="persona (system prompt) of the session")
    p.add_argument("--show-context", action="store_true", help="show what the model sees before each turn")
    p.add_argument("-c", "--continue", dest="resume", action="store_true", help="continue the most recent session")

    _define_ask(command(sub, "ask", cmd_ask, _ASK_HELP))

    sessions = command(sub, "sessions", _no_command, "list, show, rename, fork, delete, export, import sessions")
    ss = sessions.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = command(ss, "list", cmd_list, "list sessions, newest first")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ss, "show", cmd_show, "show a session and its messages")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ss, "rename", cmd_rename, "rename a session")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p = command(ss, "fork", cmd_fork, "copy a session (or its first N messages) under a new name")
    p.add_argument("name", metavar="NAME")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--at", type=int, metavar="N", help="copy only the first N messages")
    p = command(ss, "delete", cmd_delete, "delete a session and its messages")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = command(ss, "export", cmd_export, "export a session as JSONL (re-importable) or Markdown")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--format", choices=("jsonl", "md"), default="jsonl", help="default: jsonl")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p = command(ss, "import", cmd_import, "import a JSONL export as a new session")
    p.add_argument("file", metavar="FILE", help="a memchat JSONL export, or '-' for stdin")
    p.add_argument("--name", metavar="NAME", help="import under this name instead of the file's")
    p = command(ss, "truncate", cmd_truncate, "keep only the first N messages of a session")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--keep", type=int, metavar="N", required=True, help="how many messages to keep")

    p = command(sub, "models", cmd_models, "list the provider's models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(sub, "config", cmd_config, "show the resolved settings and where each came from")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


_ASK_HELP = "ask one question; the reply streams to stdout"


def _define_ask(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--session", metavar="NAME", help="continue session NAME (created if new); default: a new one")
    p.add_argument("--system", metavar="TEXT", help="persona of a NEW session (an existing one keeps its own)")
    p.add_argument("question", nargs="*", metavar="QUESTION", help="the question; '-' or none reads stdin")


def _no_command(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires ACTION
    raise UsageError("sessions: an action is required")


# -- shared helpers -------------------------------------------------------------------------


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    from memchat import i18n
    from memchat.config import resolve

    flags = {name: getattr(args, name, None) for name in GLOBAL_FLAGS}
    flags.update(extra)
    settings = resolve(flags)
    if settings.lang:
        i18n.set_lang(settings.lang)
    return settings


def _store(settings: Settings) -> Store:
    from memchat.factory import open_store

    store: Store = open_store(settings.db)
    return store


def _when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


def _print_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    widths = [max(width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=True)]
        sys.stdout.write("  ".join(cells).rstrip() + "\n")


def _write_out(text: str, output: str | None) -> None:
    """``text`` as UTF-8 to ``output`` (a file) or stdout: exports are files, whatever the locale."""
    data = text.encode("utf-8")
    if output is None or output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    from memchat.errors import MemchatError

    try:
        with open(output, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise MemchatError(_t("cli.cannot_write", path=output, reason=exc.strerror or exc)) from exc


def _read_in(path: str) -> str:
    from memchat.errors import ImportFormatError, MemchatError

    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise MemchatError(_t("cli.cannot_read", path=path, reason=exc.strerror or exc)) from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(_t("cli.not_utf8", path="stdin" if path == "-" else path)) from exc


# -- chat and ask ---------------------------------------------------------------------------


def _agent(settings: Settings) -> Agent:
    from memchat.agent import Agent
    from memchat.factory import make_provider

    provider = make_provider(settings)  # first: a bad setting must not create a database
    try:
        store = _store(settings)
    except BaseException:
        provider.close()
        raise
    model = settings.model if "model" in settings.sources else None  # else: the session's, or the provider's
    return Agent(store, provider, model=model, persona=settings.system or "")


def cmd_chat(args: argparse.Namespace) -> int:
    settings = _settings(args, system=args.system)
    from memchat.cli.repl import run_repl

    agent = _agent(settings)
    try:
        return int(
            run_repl(
                agent,
                settings,
                session=args.session,
                system=args.system,
                show_context=args.show_context,
                resume=args.resume,
            )
        )
    finally:
        agent.close()


def _question(args: argparse.Namespace) -> str:
    words: list[str] = args.question
    if words == ["-"] or not words:
        stdin = sys.stdin
        if not words and (stdin is None or stdin.isatty()):
            raise UsageError(f"ask: {_t('cli.no_question')}")
        return "" if stdin is None else stdin.read().rstrip("\r\n")
    return " ".join(words)


def cmd_ask(args: argparse.Namespace) -> int:
    text = _question(args)
    settings = _settings(args, system=args.system)
    agent = _agent(settings)
    try:
        info = _ask_session(agent, args)
        return _stream(agent, info, text)
    finally:
        agent.close()


def _ask_session(agent: Agent, args: argparse.Namespace) -> SessionInfo:
    if args.session is None:
        return agent.session(None)
    existing = agent.store.find_session(args.session)
    if existing is None:
        return agent.session(args.session)  # persona: --system, else the config's
    if args.system is not None and args.system != existing.persona:
        _err(_t("cli.persona_kept", name=existing.name))
    return existing


def _stream(agent: Agent, info: SessionInfo, text: str) -> int:
    out = sys.stdout
    last = "\n"
    turn = agent.stream(info, text)
    try:
        for chunk in turn:
            if chunk.text:
                out.write(chunk.text)
                out.flush()
                last = chunk.text[-1]
    finally:
        # on Ctrl-C between chunks this stores the partial reply as interrupted
        turn.close()
        if last != "\n":
            out.write("\n")
            out.flush()
    return 0


# -- sessions -------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    try:
        sessions = store.list_sessions()
    finally:
        store.close()
    if args.json:
        from memchat.serialization import session_summary

        _print_json([session_summary(s) for s in sessions])
        return 0
    if not sessions:
        sys.stdout.write(_t("cli.no_sessions") + "\n")
        return 0
    header = [_t(f"cli.col_{c}") for c in ("name", "messages", "model", "updated")]
    _table(header, [[s.name, str(s.message_count), s.model or "-", _when(s.updated)] for s in sessions])
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    try:
        info = store.get_session(args.name)
        messages = store.messages(info.id)
    finally:
        store.close()
    if args.json:
        from memchat.serialization import session_view

        _print_json(session_view(info, messages))
        return 0
    w = sys.stdout.write
    w(f"session   {info.name}\n")
    w(f"model     {info.model or '-'}" + (f"  ({info.provider})" if info.provider else "") + "\n")
    w(f"created   {_when(info.created)}\nupdated   {_when(info.updated)}\nmessages  {len(messages)}\n")
    if info.persona:
        w("persona   " + info.persona.replace("\n", "\n          ") + "\n")
    for i, m in enumerate(messages, 1):
        notes = [m.status.value]
        if m.tokens is not None:
            notes.append(f"{m.tokens} token" + ("" if m.tokens == 1 else "s"))
        if m.model and m.role.value == "assistant":
            notes.append(m.model)
        w(f"\n[{i}] {m.role.value} · {' · '.join(notes)} · {_when(m.created)}\n")
        w("    " + m.content.replace("\n", "\n    ") + "\n")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    try:
        info = store.update_session(args.old, name=args.new)
    finally:
        store.close()
    sys.stdout.write(_t("cli.renamed", old=args.old, new=info.name) + "\n")
    return 0


def cmd_fork(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    try:
        info = store.fork_session(args.name, args.new, at=args.at)
    finally:
        store.close()
    sys.stdout.write(_t("cli.forked", old=args.name, new=info.name, count=info.message_count) + "\n")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from memchat.errors import MemchatError

    store = _store(_settings(args))
    try:
        info = store.get_session(args.name)
        if not args.yes:
            if sys.stdin is None or not sys.stdin.isatty():
                raise MemchatError(_t("cli.delete_refused", name=info.name))
            sys.stderr.write(_t("cli.delete_prompt", name=info.name, count=info.message_count))
            sys.stderr.flush()
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes", "是"):
                sys.stdout.write(_t("cli.delete_kept", name=info.name) + "\n")
                return 1
        store.delete_session(info.id)
    finally:
        store.close()
    sys.stdout.write(_t("cli.deleted", name=info.name) + "\n")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from memchat.serialization import export_jsonl, export_markdown

    store = _store(_settings(args))
    try:
        text = (export_markdown if args.format == "md" else export_jsonl)(store, args.name)
    finally:
        store.close()
    _write_out(text, args.output)
    if args.output not in (None, "-"):
        sys.stderr.write(_t("cli.exported", name=args.name, path=args.output) + "\n")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from memchat.errors import ImportFormatError
    from memchat.serialization import prepare_import

    text = _read_in(args.file)
    try:
        info, messages = prepare_import(text, args.name)  # the whole file, before the store opens
    except ImportFormatError as exc:
        where = "stdin" if args.file == "-" else args.file
        raise ImportFormatError(f"{where}: {exc.detail}", **exc.info) from exc
    store = _store(_settings(args))
    try:
        created = store.import_session(info, messages)
    finally:
        store.close()
    sys.stdout.write(_t("cli.imported", name=created.name, count=created.message_count) + "\n")
    return 0


def cmd_truncate(args: argparse.Namespace) -> int:
    store = _store(_settings(args))
    try:
        info = store.get_session(args.name)
        removed = store.truncate(info.id, args.keep)
        kept = store.get_session(info.id).message_count
    finally:
        store.close()
    sys.stdout.write(_t("cli.truncated", keep=kept, name=info.name, removed=removed) + "\n")
    return 0


# -- models and config ----------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from memchat.factory import make_provider

    provider = make_provider(_settings(args))
    try:
        models = provider.list_models()
    finally:
        provider.close()
    if args.json:
        _print_json(models)
    else:
        sys.stdout.write("".join(f"{m}\n" for m in models))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    rows = _settings(args).describe()
    if args.json:
        from memchat.serialization import ConfigEntry

        _print_json({name: ConfigEntry(value=value, source=source) for name, value, source in rows})
        return 0
    header = [_t(f"cli.col_{c}") for c in ("setting", "value", "source")]
    _table(header, [[name, value or "-", source] for name, value, source in rows])
    return 0


# -- entry point ----------------------------------------------------------------------------


def _database_error(exc: BaseException) -> bool:
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(exc, sqlite3.Error)


def _stdout_gone() -> None:
    """stdout's reader went away (``| head``): silence the flush at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    from memchat.errors import MemchatError
    from memchat.i18n import describe_error, set_lang

    args: argparse.Namespace | None = None
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(only=_command_of(argv)).parse_args(argv)
        if getattr(args, "lang", None):
            set_lang(args.lang)
        code: int = args.func(args)
        return code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except UsageError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err(_t("cli.interrupted"))
        return 130
    except BrokenPipeError:
        _stdout_gone()
        return 1
    except MemchatError as exc:
        _err(describe_error(exc))
        return 1
    except Exception as exc:
        if _database_error(exc):
            from memchat.config import default_db_path

            db = getattr(args, "db", None) or default_db_path()
            _err(_t("cli.database", path=db, reason=exc))
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
