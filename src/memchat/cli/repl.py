"""``memchat chat``: the lesson's loop — read a message, send the whole conversation,
stream the reply, remember it — with sessions, slash commands and line editing.

It starts at the prompt: the persona comes from ``--system``, ``/system`` or the config, never
from a question asked first, and a line starting with ``/`` is always a command (``//`` sends
one as text). A new chat is a draft (``Conversations.draft``) until its first message: leaving
without one stores nothing.

The loop only reads and dispatches: turns go through ``Agent`` (which stores them, drops
a failed one and keeps an interrupted one), output through ``render.Renderer``, commands
through ``slash.dispatch``. Input comes from a prompt_toolkit ``PromptSession`` (history
behind prompt_toolkit's ``History`` interface) or, when stdin is not a terminal, from
plain lines of stdin. On a terminal the bottom toolbar shows the session, its memory
strategy and how much of the token budget the next call uses (planned once after each turn
or command, never per keypress).
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import WordCompleter
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.output import Output, create_output
from rich.console import Console

from memchat import i18n
from memchat.agent import Agent, Turn
from memchat.cli import slash
from memchat.cli.context_text import learned_lines, used_line
from memchat.cli.render import Renderer
from memchat.cli.repl_strings import t
from memchat.config import Settings, data_dir
from memchat.domain import Reply, SessionInfo, ToolCall
from memchat.errors import MemchatError
from memchat.service import Conversations
from memchat.tools import Tool

#: typed alone on a line (any case, spaces around ignored) they end the chat, as in the lesson
EXIT_WORDS = frozenset({"退出", "q", "quit", "exit"})
#: a line that is exactly this starts a multi-line block, and another one ends it
BLOCK = '"""'


class LineReader(Protocol):
    #: whether a person is typing (then the toolbar is kept up to date)
    interactive: bool

    def read(self, prompt: str) -> str:
        """One line (or an Alt-Enter multi-line entry); EOFError at the end, KeyboardInterrupt on Ctrl-C."""
        ...


class PromptReader:
    """Line editing and persistent history through prompt_toolkit."""

    interactive = True

    def __init__(
        self,
        history: History,
        *,
        input: Input | None = None,
        output: Output | None = None,
        toolbar: Callable[[], str] | None = None,
    ) -> None:
        bindings = KeyBindings()

        @bindings.add("escape", "enter")
        def _newline(event: KeyPressEvent) -> None:
            event.current_buffer.insert_text("\n")

        self.session: PromptSession[str] = PromptSession(
            history=history,
            input=input,
            output=output,
            key_bindings=bindings,
            completer=WordCompleter([f"/{name}" for name in slash.COMMANDS], sentence=True),
            complete_while_typing=False,
            bottom_toolbar=toolbar,
        )

    def read(self, prompt: str) -> str:
        return self.session.prompt(prompt)


class StdinReader:
    """Plain lines from a stream that is not a terminal (``printf 'hi\\nq\\n' | memchat chat``)."""

    interactive = False

    def __init__(self, stream: TextIO, echo: Callable[[str], None] | None = None) -> None:
        self.stream = stream
        self.echo = echo

    def read(self, prompt: str) -> str:
        line = self.stream.readline()
        if not line:
            raise EOFError
        line = line.removesuffix("\n").removesuffix("\r")
        if self.echo is not None:
            self.echo(prompt + line)
        return line


def file_history(path: Path) -> History:
    try:  # what the user typed, so only they may read it
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def read_message(reader: LineReader, prompt: str | None = None) -> str:
    """One entry: a line, or the lines of a ``\"\"\"`` block (Ctrl-D also ends a block)."""
    line = reader.read(t("repl.you") if prompt is None else prompt)
    if line.strip() != BLOCK:
        return line
    lines: list[str] = []
    while True:
        try:
            more = reader.read(t("repl.more"))
        except EOFError:
            break
        if more.strip() == BLOCK:
            break
        lines.append(more)
    return "\n".join(lines)


def is_exit(text: str) -> bool:
    return text.strip().lower() in EXIT_WORDS


#: seconds the REPL, on exit, waits for memory upkeep still running (a summary being written)
EXIT_UPKEEP_WAIT = 5.0


def run_repl(
    agent: Agent,
    settings: Settings,
    *,
    session: str | None = None,
    system: str | None = None,
    show_context: bool = False,
    resume: bool = False,
    incognito: bool = False,
    console: Console | None = None,
    pt_input: Input | None = None,
    pt_output: Output | None = None,
    history_path: Path | None = None,
) -> int:
    """Chat in the terminal until an exit word, ``/exit`` or Ctrl-D; return the exit code."""
    if settings.lang:
        i18n.set_lang(settings.lang)
    ui = Renderer(console)
    state: slash.ReplState | None = None

    def toolbar() -> str:
        return state.toolbar() if state is not None else ""

    reader: LineReader
    if pt_input is not None or (sys.stdin is not None and sys.stdin.isatty()):
        history = file_history(history_path or data_dir() / "input_history")
        output = pt_output if pt_output is not None else create_output(always_prefer_tty=True)
        reader = PromptReader(history, input=pt_input, output=output, toolbar=toolbar)
    else:
        reader = StdinReader(sys.stdin or io.StringIO(), echo=ui.info)

    always: set[str] = set()

    def approve(call: ToolCall, tool: Tool) -> bool:
        """y / n / always (this tool, until the REPL ends); anything else is no."""
        if call.name in always:
            return True
        question = t("repl.tool_approve", call=f"{call.name}({' '.join(call.arguments.split())[:200]})")
        try:
            answer = reader.read(question).strip().lower()
        except (EOFError, KeyboardInterrupt):
            return False
        if answer in ("a", "always", "总是"):
            always.add(call.name)
            return True
        return answer in ("y", "yes", "是", "好")

    # the REPL's hooks go into the agent the service uses (the one given is left as it was)
    chats = Conversations(
        agent.configured(
            approve=approve,
        )
    )

    try:
        info, created = _open_session(chats, session, system=system, resume=resume)
        state = slash.ReplState(chats, info, ui, persona=system, show_context=show_context)
        ui.banner(info, agent.provider.name, state.model, resumed=not created)
        if not created and system is not None and system != info.persona:
            state.session = chats.set_persona(info, system)
            ui.note(t("repl.persona_flag", session=info.name))
        if incognito and not agent.is_incognito(state.session):
            state.session = chats.set_incognito(state.session, True)
        if agent.is_incognito(state.session):
            ui.note(t("repl.incognito_on"))
    except MemchatError as exc:
        ui.error(i18n.describe_error(exc))
        return 1
    if show_context:
        state.show_context_now()
    if reader.interactive:
        state.update_status()
    _loop(state, reader)
    # a summary the last turns made due gets a few seconds to be written; what is left, the
    # next run's first turn finds due again
    chats.agent.wait_for_summaries(EXIT_UPKEEP_WAIT)
    ui.info(t("repl.bye"))
    return 0


def _open_session(
    chats: Conversations, name: str | None, *, system: str | None, resume: bool
) -> tuple[SessionInfo, bool]:
    """The session to chat in and whether it is new (a draft, stored with its first message)."""
    found = chats.find(name) if name is not None else chats.latest() if resume else None
    if found is not None:
        return found, False
    return chats.draft(name, persona=system), True


def _loop(state: slash.ReplState, reader: LineReader) -> None:
    while True:
        try:
            text = read_message(reader)
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line
        except EOFError:
            return
        command = text.strip()
        if not command:
            continue
        if is_exit(command):
            return
        try:
            if command.startswith("/") and not command.startswith("//"):
                result = slash.dispatch(state, command)
                if result is slash.EXIT:
                    return
                if isinstance(result, Turn):  # /retry or /edit: a new version of a point
                    _run_turn(state, result, retry=slash.parse(command)[0] == "retry", version=True)
            else:
                message = text if "\n" in text else command
                if command.startswith("//"):
                    message = message.lstrip()[1:]
                info = state.refresh()
                turn = state.chats.stream(info, state.with_attached(message), attachments=tuple(state.pending))
                state.pending.clear()  # sent with this turn (a refusal above keeps them for the next)
                _run_turn(state, turn)
        except MemchatError as exc:
            state.ui.error(i18n.describe_error(exc))
        except KeyboardInterrupt:
            continue
        if reader.interactive:
            state.update_status()  # the toolbar: once per turn or command


def _run_turn(state: slash.ReplState, turn: Turn, *, retry: bool = False, version: bool = False) -> None:
    """Stream one turn. Ctrl-C keeps what was shown (the Agent stores it as interrupted; before
    any text, the question is kept without a reply); a failed call prints one line and the Agent
    has already dropped the message. ``version``: the turn is a new version of a point (``/retry``,
    ``/edit``): which one it is, is said after it."""
    ui = state.ui
    try:
        if state.show_context:
            state.show_plan(turn.plan)  # what this call sends, recall for this message included
        try:
            with ui.reply() as view:
                for chunk in turn:
                    view.add(chunk)
        finally:
            if state.session.draft and not turn.session.draft:  # stored with this message
                state.session = state.chats.find(turn.session.id) or state.session
    except KeyboardInterrupt:
        turn.close()
        if turn.reply is not None:
            ui.note(t("repl.interrupted"))
        else:
            ui.note(t("repl.retry_kept") if retry else t("repl.interrupted_empty"))
    except MemchatError as exc:
        turn.close()
        ui.error(i18n.describe_error(exc))
        if not getattr(exc, "kept", False):  # the message itself says what was kept
            ui.note(t("repl.retry_kept") if retry else t("err.dropped"))
        return
    if turn.reply is not None:
        _marks(state, turn.reply)
    if version and turn.reply is not None:
        versions = state.chats.latest_versions(state.session.id)
        shown = next((v for v in versions if v.shown), None)
        if shown is not None:
            ui.note(t("repl.version_made", number=shown.number, count=len(versions)))
    if state.show_context and turn.reply is not None:
        state.show_context_now()


def _marks(state: slash.ReplState, reply: Reply) -> None:
    """After a reply: what the user asked it to remember or forget (``✓ remembered: …``), and
    whether it used long-term memories or turns of other chats."""
    for line in learned_lines(reply.remembered):
        state.ui.info(line)
    used = used_line(reply.memories, reply.recalled)
    if used is not None:
        state.ui.note(used + t("repl.used_hint"))
