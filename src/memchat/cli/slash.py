"""Slash commands: parsing and the dispatch table. Each handler acts on the ``ReplState``
and returns ``None``, ``EXIT`` or a ``Turn`` for the loop to stream (``/retry``)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from memchat.agent import Agent, Turn
from memchat.cli.render import Renderer
from memchat.cli.repl_strings import t
from memchat.domain import SessionInfo
from memchat.errors import SessionExists


class _Exit:
    def __repr__(self) -> str:
        return "EXIT"


EXIT: Final = _Exit()
Result = Turn | _Exit | None


@dataclass
class ReplState:
    """What the loop and the commands share: the agent, the current session, the output."""

    agent: Agent
    session: SessionInfo
    ui: Renderer
    #: asks the persona for a new session; ``None`` when it should not be asked
    ask_persona: Callable[[], str | None]
    show_context: bool = False

    def refresh(self) -> SessionInfo:
        self.session = self.agent.store.get_session(self.session.id)
        return self.session

    @property
    def model(self) -> str:
        """The model the next turn uses (the Agent decides: flag > session's > provider default)."""
        return self.agent.model_for(self.session)

    def show_context_now(self) -> None:
        self.ui.context(self.agent.context(self.session.id).entries)

    def new_session(self, name: str | None) -> SessionInfo:
        """Create a session (asking its persona when that applies) and make it current."""
        store = self.agent.store
        if name is not None and store.find_session(name) is not None:
            raise SessionExists(f"a session named {name!r} already exists", name=name)
        persona = self.ask_persona()
        self.session = store.create_session(name, persona=self.agent.persona if persona is None else persona)
        return self.session


Arity = Literal["none", "optional", "required"]
Handler = Callable[[ReplState, str], Result]


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    arity: Arity
    handler: Handler

    @property
    def help(self) -> str:
        return t(f"repl.help.{self.name}")


def parse(line: str) -> tuple[str, str]:
    """``"/Switch  work "`` → ``("switch", "work")``."""
    parts = line.strip().removeprefix("/").split(None, 1)
    if not parts:
        return "", ""
    return parts[0].lower(), parts[1].strip() if len(parts) > 1 else ""


def dispatch(state: ReplState, line: str) -> Result:
    name, arg = parse(line)
    command = COMMANDS.get(name) or COMMANDS.get(ALIASES.get(name, ""))
    if command is None:
        match = difflib.get_close_matches(name, [*COMMANDS, *ALIASES], n=1, cutoff=0.6)
        shown = "/" + name
        if match:
            state.ui.error(t("repl.unknown_hint", command=shown, match="/" + match[0]))
        else:
            state.ui.error(t("repl.unknown", command=shown))
        return None
    if (command.arity == "none" and arg) or (command.arity == "required" and not arg):
        state.ui.error(t("repl.usage", usage=command.usage))
        return None
    return command.handler(state, arg)


# -- handlers ---------------------------------------------------------------------------


def _help(state: ReplState, arg: str) -> Result:
    state.ui.help((c.usage, c.help) for c in COMMANDS.values())
    return None


def _context(state: ReplState, arg: str) -> Result:
    state.show_context_now()
    return None


def _history(state: ReplState, arg: str) -> Result:
    info = state.refresh()
    state.ui.history(info, state.agent.store.messages(info.id))
    return None


def _system(state: ReplState, arg: str) -> Result:
    if not arg:
        persona = state.refresh().persona
        state.ui.info(t("repl.system_show", persona=persona) if persona else t("repl.system_none"))
        return None
    state.session = state.agent.store.update_session(state.session.id, persona=arg)
    state.ui.info(t("repl.system_set"))
    if state.show_context:
        state.show_context_now()
    return None


def _new(state: ReplState, arg: str) -> Result:
    info = state.new_session(arg or None)
    state.ui.info(t("repl.new", session=info.name))
    if state.show_context:
        state.show_context_now()
    return None


def _sessions(state: ReplState, arg: str) -> Result:
    state.ui.sessions(state.agent.store.list_sessions(), state.session.id)
    return None


def _switch(state: ReplState, arg: str) -> Result:
    state.session = state.agent.store.get_session(arg)
    state.ui.info(t("repl.switched", session=state.session.name, count=state.session.message_count))
    return None


def _rename(state: ReplState, arg: str) -> Result:
    state.session = state.agent.store.update_session(state.session.id, name=arg)
    state.ui.info(t("repl.renamed", session=state.session.name))
    return None


def _fork(state: ReplState, arg: str) -> Result:
    old = state.session.name
    state.session = state.agent.store.fork_session(state.session.id, arg or None)
    state.ui.info(t("repl.forked", old=old, session=state.session.name))
    return None


def _undo(state: ReplState, arg: str) -> Result:
    removed = state.agent.store.remove_last_turn(state.session.id)
    state.ui.info(t("repl.undone", count=len(removed)) if removed else t("repl.undo_empty"))
    return None


def _retry(state: ReplState, arg: str) -> Result:
    state.refresh()
    return state.agent.retry(state.session.id)


def _clear(state: ReplState, arg: str) -> Result:
    removed = state.agent.store.truncate(state.session.id, 0)
    state.ui.info(t("repl.cleared", count=removed))
    return None


def _model(state: ReplState, arg: str) -> Result:
    if arg:
        agent = state.agent
        state.session = agent.store.update_session(state.session.id, model=arg, provider=agent.provider.name)
        agent.model = None  # the session's choice now wins over a --model flag
        state.ui.info(t("repl.model_set", model=state.model))
    else:
        state.refresh()
        state.ui.info(t("repl.model_show", model=state.model))
    return None


def _exit(state: ReplState, arg: str) -> Result:
    return EXIT


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("help", "/help", "none", _help),
        Command("context", "/context", "none", _context),
        Command("history", "/history", "none", _history),
        Command("system", "/system [TEXT]", "optional", _system),
        Command("new", "/new [NAME]", "optional", _new),
        Command("sessions", "/sessions", "none", _sessions),
        Command("switch", "/switch NAME", "required", _switch),
        Command("rename", "/rename NAME", "required", _rename),
        Command("fork", "/fork [NAME]", "optional", _fork),
        Command("undo", "/undo", "none", _undo),
        Command("retry", "/retry", "none", _retry),
        Command("clear", "/clear", "none", _clear),
        Command("model", "/model [NAME]", "optional", _model),
        Command("exit", "/exit", "none", _exit),
    )
}
ALIASES = {"quit": "exit", "q": "exit", "?": "help"}
