"""memchat's command line: the parser, its global flags and ``main()``, which runs a command
and maps its errors to exit codes. The commands live in ``turns`` (``chat``, ``ask``),
``sessions`` (``sessions …``), ``memories`` (``memory …``) and ``info`` (``models``,
``config``); their strings in ``cli_strings``.

Module-level imports stay at argparse/sys/os (and ``common`` and ``cli_strings``, which
import no more): ``memchat ask`` must start, stream one turn and exit in well under 200 ms,
so everything else (the agent, the store, the provider and its HTTP client) is imported
inside the command that needs it. ``build_parser(only="ask")`` imports ``turns`` alone, so the ``ask`` path never
imports rich or prompt_toolkit, nor the other commands.

Errors: a ``MemchatError`` becomes one line on stderr (``memchat: …``) and exit code 1;
usage errors exit 2, Ctrl-C exits 130. Output meant for programs (``ask``'s reply,
``export``, ``--json``) goes to stdout and nothing else does.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

from memchat.cli.cli_strings import t
from memchat.cli.common import GLOBAL_FLAGS, PROG, UsageError, err

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["GLOBAL_FLAGS", "PROG", "UsageError", "build_parser", "main"]


# -- the parser -----------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line and exit 2; an unknown flag is named as one
    (with the nearest known flag, when one is near)."""

    #: the command line being parsed (set by ``main``): which command an unknown flag followed
    argv: Sequence[str] = ()

    def error(self, message: str) -> NoReturn:
        where = self.prog[len(PROG) :].strip()
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            extra = message[len(prefix) :].split()
            flag = next((a for a in extra if a.startswith("-")), None)
            if flag is not None:
                flags, prog = _flags_of(self, self.argv)
                raise UsageError(t("cli.unknown_flag_after", flag=flag, hint=_hint(flag, flags), prog=prog))
        if message == "the following arguments are required: COMMAND":
            message = t("cli.no_command", commands=", ".join(_subcommands(self)))
        raise UsageError(f"{where + ': ' if where else ''}{message} (see: {self.prog} --help)")


def _hint(flag: str, flags: Sequence[str]) -> str:
    import difflib

    match = difflib.get_close_matches(flag.split("=", 1)[0], flags, n=1, cutoff=0.7)
    return t("cli.unknown_flag_hint", match=match[0]) if match else ""


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags_of(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[list[str], str]:
    """The flags of the command ``argv`` names (and its action's) and the global ones, and the
    command's ``prog`` (for its ``--help``)."""
    flags = list(parser._option_string_actions)
    current = parser
    for word in argv:
        sub = _subcommands(current).get(word)
        if sub is not None:
            current = sub
            flags += list(sub._option_string_actions)
    return flags, current.prog


def _unknown_flag(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """The line for a command line that names no command but has a flag nobody knows
    (``memchat --bogus``), which argparse would call a missing COMMAND."""
    known = set(parser._option_string_actions)
    takes_value = {"--" + name.replace("_", "-") for name in GLOBAL_FLAGS}
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in takes_value:
            skip = True
            continue
        if arg.startswith("-") and arg != "-" and arg.split("=", 1)[0] not in known:
            commands = ", ".join(_subcommands(parser))
            return t("cli.unknown_flag", flag=arg, hint=_hint(arg, sorted(_every_flag(parser))), commands=commands)
    return None


def _every_flag(parser: argparse.ArgumentParser) -> set[str]:
    flags = set(parser._option_string_actions)
    for sub in _subcommands(parser).values():
        flags |= _every_flag(sub)
    return flags


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
    from memchat.cli import turns

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
        _define_ask(command(sub, "ask", turns.cmd_ask, _ASK_HELP))
        return parser
    from memchat.cli import info, sessions

    p = command(sub, "chat", turns.cmd_chat, "talk in the interactive REPL")
    p.add_argument("-s", "--session", metavar="NAME", help="the session to open (created if new)")
    p.add_argument("--system", metavar="TEXT", help="persona (system prompt) of the session")
    p.add_argument("--show-context", action="store_true", help="show what the model sees before each turn")
    p.add_argument("-c", "--continue", dest="resume", action="store_true", help="continue the most recent session")
    _memory_flags(p)
    _long_term_flags(p)
    _tool_flags(p)

    _define_ask(command(sub, "ask", turns.cmd_ask, _ASK_HELP))

    sessions_parser = command(
        sub, "sessions", _no_command, "list, search, show, rename, fork, delete, export, import sessions"
    )
    ss = sessions_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = command(ss, "list", sessions.cmd_list, "list sessions, newest first")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ss, "search", sessions.cmd_search, "find the sessions whose messages hold these words, with snippets")
    p.add_argument("query", nargs="+", metavar="TEXT")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N sessions (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ss, "show", sessions.cmd_show, "show a session and its messages")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ss, "rename", sessions.cmd_rename, "rename a session")
    p.add_argument("old", metavar="OLD")
    p.add_argument("new", metavar="NEW")
    p = command(ss, "fork", sessions.cmd_fork, "copy a session (or its first N messages) under a new name")
    p.add_argument("name", metavar="NAME")
    p.add_argument("new", metavar="NEW")
    p.add_argument("--at", type=int, metavar="N", help="copy only the first N messages")
    p = command(ss, "delete", sessions.cmd_delete, "delete a session and its messages")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = command(ss, "export", sessions.cmd_export, "export a session as JSONL (re-importable) or Markdown")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--format", choices=("jsonl", "md"), default="jsonl", help="default: jsonl")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p = command(ss, "import", sessions.cmd_import, "import a JSONL export as a new session")
    p.add_argument("file", metavar="FILE", help="a memchat JSONL export, or '-' for stdin")
    p.add_argument("--name", metavar="NAME", help="import under this name instead of the file's")
    p = command(ss, "truncate", sessions.cmd_truncate, "keep only the first N messages of a session")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--keep", type=int, metavar="N", required=True, help="how many messages to keep")
    p = command(ss, "context", sessions.cmd_context, "show exactly what the next call of a session sends, and why")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--text", metavar="MESSAGE", help="plan for this next message (recall included)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _memory_flags(p)
    _tool_flags(p, approval=False)

    _define_memory(sub, command)

    from memchat.cli import images

    p = command(sub, "image", images.cmd_image, "generate images from a text prompt and save them")
    p.add_argument("prompt", nargs="+", metavar="PROMPT", help="what the image shows")
    p.add_argument("--image-provider", dest="image_provider", choices=("modelscope", "openai"))
    p.add_argument("--image-model", dest="image_model", metavar="ID", help="the image model (also --model)")
    p.add_argument("--size", metavar="WxH", help="e.g. 1024x1024")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--negative", metavar="TEXT", help="what the image must not show")
    p.add_argument("--image-url", dest="image_url", metavar="URL", help="the image to edit (editing models)")
    p.add_argument("-n", type=int, default=1, metavar="N", help="how many images (default 1)")
    p.add_argument("-o", "--output", metavar="PATH", help="a file (one image) or a directory")
    p.add_argument("-s", "--session", metavar="NAME", help="keep the images with this session")

    from memchat.cli import serve

    p = command(sub, "serve", serve.cmd_serve, "the HTTP API and the web chat page")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="default 8765")
    p.add_argument("--allow-host", action="append", metavar="NAME", help="another Host name to answer as")
    p.add_argument("--no-migrate", dest="no_migrate", action="store_true", help="refuse a stale database schema")
    p.add_argument("--workers", type=int, default=1, help="server processes (more than one needs MEMCHAT_REDIS_URL)")
    p.add_argument(
        "--mcp",
        action="append",
        metavar="NAME",
        help="MCP servers of config.toml to use: names, 'all' or 'none' (default: the enabled ones; env MEMCHAT_MCP)",
    )

    from memchat.cli import users

    users_parser = command(sub, "users", users.cmd_users, "accounts of the HTTP server (add, list, remove)")
    us = users_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = command(us, "add", users.cmd_users, "add a user and print their token (once)")
    p.add_argument("name", metavar="NAME")
    command(us, "list", users.cmd_users, "list users")
    p = command(us, "remove", users.cmd_users, "remove a user and all their sessions")
    p.add_argument("name", metavar="NAME")

    from memchat.cli import db

    db_parser = command(sub, "db", db.cmd_db, "the database: migrate, status, copy")
    ds = db_parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    command(ds, "migrate", db.cmd_db, "apply the pending schema migrations")
    command(ds, "status", db.cmd_db, "say whether migrations are pending")
    p = command(ds, "copy", db.cmd_db, "copy every session and user into an empty database")
    p.add_argument("source", metavar="SRC", help="a SQLite file (or URL)")
    p.add_argument("target", metavar="DST", help="a SQLite file (or URL); must hold no sessions")

    p = command(sub, "models", info.cmd_models, "list the provider's models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(sub, "config", info.cmd_config, "show the resolved settings and where each came from")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


_ASK_HELP = "ask one question; the reply streams to stdout"


def _define_ask(p: argparse.ArgumentParser) -> None:
    p.add_argument("-s", "--session", metavar="NAME", help="continue session NAME (created if new); default: a new one")
    p.add_argument("-c", "--continue", dest="resume", action="store_true", help="continue the most recent session")
    p.add_argument("--system", metavar="TEXT", help="persona of a NEW session (an existing one keeps its own)")
    p.add_argument(
        "question",
        nargs="*",
        metavar="QUESTION",
        help="the question; '-' or none reads stdin; with text piped in too, that text comes first (as context)",
    )
    p.add_argument(
        "-a",
        "--attach",
        action="append",
        metavar="FILE",
        help="send FILE with the question (repeatable; '-' takes stdin's bytes): text and code as named "
        "context, a PDF's text, images for a model that takes them",
    )
    p.add_argument(
        "--vision",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the model takes images (default: as memchat's table of known models says)",
    )
    _memory_flags(p)
    _long_term_flags(p)
    _tool_flags(p)


def _define_memory(sub: Any, command: Callable[..., _Parser]) -> None:
    """``memchat memory list|search|show|add|edit|forget|restore|history|export|import``."""
    from memchat.cli import memories

    kinds = memories.KINDS
    group = command(sub, "memory", _no_command, "what memchat remembers about you across sessions: review and control")
    ms = group.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = command(ms, "list", memories.cmd_list, "the memories served to every session, newest first")
    p.add_argument("--all", action="store_true", help="also the forgotten and replaced ones (with their state)")
    p.add_argument("--kind", choices=kinds, help="only memories of this kind")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ms, "search", memories.cmd_search, "memories matching some words, best first")
    p.add_argument("query", nargs="+", metavar="QUERY")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ms, "show", memories.cmd_show, "one memory: where and when it was learned, its state")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ms, "add", memories.cmd_add, "remember something (a newer fact on the same subject replaces the old)")
    p.add_argument("text", nargs="+", metavar="TEXT")
    p.add_argument("--kind", choices=kinds, help="default: guessed from the text")
    p.add_argument("--date", metavar="YYYY-MM-DD", help="the day an event happened (default: read from the text)")
    p = command(ms, "edit", memories.cmd_edit, "replace a memory's text (the old version is kept)")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("text", nargs="+", metavar="TEXT")
    p.add_argument("--kind", choices=kinds, help="change its kind too")
    p = command(ms, "forget", memories.cmd_forget, "stop serving a memory (kept; restore brings it back)")
    p.add_argument("id", type=int, nargs="?", metavar="ID")
    p.add_argument("--match", nargs="+", metavar="TEXT", help="forget the memory that best matches TEXT")
    p = command(ms, "restore", memories.cmd_restore, "serve a forgotten or replaced memory again")
    p.add_argument("id", type=int, metavar="ID")
    p = command(ms, "history", memories.cmd_history, "every version of a memory, oldest first")
    p.add_argument("id", type=int, metavar="ID")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = command(ms, "export", memories.cmd_export, "every memory (ended ones too) as JSONL")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p = command(ms, "import", memories.cmd_import, "add the memories of a JSONL export (all or none)")
    p.add_argument("file", metavar="FILE", help="a memchat memory export, or '-' for stdin")
    p = command(
        ms, "index", memories.cmd_index, "index past messages for recall by meaning now (else: in the background)"
    )
    p.add_argument("--background", action="store_true", help=argparse.SUPPRESS)  # ask's detached indexer


def _window(value: str) -> int:
    try:
        tokens = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of tokens, not {value!r}") from None
    if tokens <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of tokens, not {tokens}")
    return tokens


def _memory_flags(p: argparse.ArgumentParser) -> None:
    """``--memory``, ``--context-window``, ``--recall`` (``chat``, ``ask``, ``sessions context``)."""
    from memchat.memory.plan import STRATEGIES

    g = p.add_argument_group("memory")
    g.add_argument(
        "--memory",
        choices=STRATEGIES,
        help="what older turns become when the conversation outgrows the context window "
        "(default: the session's, else auto; env MEMCHAT_MEMORY)",
    )
    g.add_argument(
        "--context-window",
        dest="context_window",
        type=_window,
        metavar="N",
        help="the model's context window in tokens (default: known per model; env MEMCHAT_CONTEXT_WINDOW)",
    )
    g.add_argument(
        "--recall",
        choices=("session", "all"),
        help="where recall searches older messages: all your sessions (default, unless --no-memories) "
        "or this session only (env MEMCHAT_RECALL)",
    )


def _long_term_flags(p: argparse.ArgumentParser) -> None:
    """``--no-memories``, ``--learn``, ``--incognito`` (``chat``, ``ask``)."""
    g = p.add_argument_group("long-term memory")
    g.add_argument(
        "--no-memories",
        dest="memories",
        action="store_const",
        const=False,
        help="no long-term memories and no recall from your other sessions (env MEMCHAT_MEMORIES=0)",
    )
    g.add_argument(
        "--learn",
        choices=("auto", "explicit", "off"),
        help="what the agent learns about you: from every turn (auto), only when asked to remember "
        "(explicit), nothing (off) (env MEMCHAT_LEARN)",
    )
    g.add_argument(
        "--incognito",
        action="store_true",
        help="mark the session incognito: nothing is learned from it, nothing recalled into it",
    )


def _tool_flags(p: argparse.ArgumentParser, *, approval: bool = True) -> None:
    """``--tools``, ``--tool``, ``--mcp``, ``--max-steps``, ``--timezone``, ``--no-date`` (and ``--yes``)."""
    g = p.add_argument_group("tools")
    g.add_argument(
        "--tools",
        metavar="LIST",
        help="tools the model may call, comma-separated (now,search_history,generate_image) or 'none' "
        "(default: the session's, else all; env MEMCHAT_TOOLS)",
    )
    g.add_argument(
        "--tool",
        action="append",
        metavar="MODULE:FUNCTION",
        help="add your own tool: a typed Python function (repeatable)",
    )
    g.add_argument(
        "--mcp",
        action="append",
        metavar="NAME",
        help="MCP servers of config.toml to use: names (repeatable or comma-separated), 'all' or 'none' "
        "(default: those not marked enabled = false; env MEMCHAT_MCP)",
    )
    g.add_argument("--max-steps", dest="max_steps", type=int, metavar="N", help="tool rounds per turn (default 8)")
    g.add_argument("--timezone", metavar="ZONE", help="IANA time zone for the date (default: the system's)")
    g.add_argument(
        "--no-date",
        dest="date_line",
        action="store_const",
        const=False,
        help="do not tell the model today's date (env MEMCHAT_DATE_LINE=off)",
    )
    if approval:  # the commands that run turns
        g.add_argument("--yes", action="store_true", help="run tools that have side effects without asking")
        g.add_argument(
            "--seed",
            type=int,
            metavar="N",
            help="sample replies with this seed: the same context gives the same reply (default: a new sample "
            "each time, so a regenerate differs; env MEMCHAT_SEED)",
        )


def _no_command(args: argparse.Namespace) -> int:  # pragma: no cover - argparse requires ACTION
    raise UsageError(f"{args.command}: an action is required")


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
        if "--lang" in argv[:-1]:  # before parsing: its errors are in that language too
            set_lang(argv[argv.index("--lang") + 1])
        command = _command_of(argv)
        parser = build_parser(only=command)
        if command is None or command not in _subcommands(parser):
            unknown = _unknown_flag(parser, argv)
            if unknown is not None:
                raise UsageError(unknown)
        _Parser.argv = argv
        args = parser.parse_args(argv)
        if getattr(args, "lang", None):
            set_lang(args.lang)
        code: int = args.func(args)
        return code
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except UsageError as exc:
        err(str(exc))
        return 2
    except KeyboardInterrupt:
        err(t("cli.interrupted"))
        return 130
    except BrokenPipeError:
        _stdout_gone()
        return 1
    except MemchatError as exc:
        err(describe_error(exc))
        return 1
    except Exception as exc:
        if _database_error(exc):
            from memchat.config import default_db_path

            db = getattr(args, "db", None) or default_db_path()
            err(t("cli.database", path=db, reason=exc))
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
