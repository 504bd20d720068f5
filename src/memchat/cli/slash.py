"""Slash commands: parsing and the dispatch table. Each handler acts on the ``ReplState``
and returns ``None``, ``EXIT`` or a ``Turn`` for the loop to stream (``/retry``).

Memory: ``/context`` shows the plan of the next call, ``/memory`` shows or sets the
session's strategy, ``/pin``/``/unpin`` keep a message in every call, ``/forget-summary``
drops the summaries (rebuilt when needed). ``ReplState.plan`` is the last plan of the next
call, refreshed once after each turn or command, for the bottom toolbar.

Long-term memory (what the agent knows about the user across sessions, through
``agent.memories``): ``/remember TEXT``, ``/forget ID|TEXT``, ``/memories [QUERY]``, and
``/incognito [on|off]`` (nothing learned from the session, nothing recalled into it)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from memchat.agent import Agent, Turn
from memchat.cli.cli_strings import t as cli_t
from memchat.cli.mcp_cmd import mcp_command
from memchat.cli.render import Renderer
from memchat.cli.repl_strings import t
from memchat.domain import Attachment, ImageRecord, Message, Role, SessionInfo, human_size
from memchat.errors import MemchatError
from memchat.i18n import describe_error
from memchat.memory.plan import STRATEGIES, ContextPlan
from memchat.service import Conversations


class _Exit:
    def __repr__(self) -> str:
        return "EXIT"


EXIT: Final = _Exit()
Result = Turn | _Exit | None


@dataclass
class ReplState:
    """What the loop and the commands share: the conversation service, the current session,
    the output. Commands act through ``chats`` only (never the store, never changing the agent)."""

    chats: Conversations
    #: the current session (a draft until its first message: ``SessionInfo.draft``)
    session: SessionInfo
    ui: Renderer
    #: the persona of the sessions ``/new`` starts (``--system``; None: the agent's, from the config)
    persona: str | None = None
    show_context: bool = False
    #: the plan of the next call (without a new message), for the toolbar; None: not known
    plan: ContextPlan | None = None
    #: why ``plan`` is None (the history does not fit the window with ``full``…)
    plan_error: str | None = None
    #: files ``/attach`` read for the next message
    pending: list[Attachment] = field(default_factory=list)
    #: context for the next message (``/mcp attach``): put before it, then forgotten
    attached: list[str] = field(default_factory=list)

    def with_attached(self, message: str) -> str:
        """``message`` after the context attached for it (which is then used up)."""
        if not self.attached:
            return message
        text = "\n\n".join([*self.attached, message])
        self.attached = []
        return text

    @property
    def agent(self) -> Agent:
        """The agent as the service has it configured now (for turns and read-only questions)."""
        return self.chats.agent

    def refresh(self) -> SessionInfo:
        self.session = self.chats.get(self.session)
        return self.session

    @property
    def model(self) -> str:
        """The model the next turn uses (the Agent decides: flag > session's > provider default)."""
        return self.agent.model_for(self.session)

    @property
    def strategy(self) -> str:
        """The memory strategy the next turn uses (the Agent decides: flag > session's > auto)."""
        return self.agent.memory_for(self.session)

    def show_plan(self, plan: ContextPlan) -> None:
        self.ui.context(self.chats.context_view(self.session, plan))

    def show_context_now(self, text: str | None = None) -> None:
        """The plan of the next call (for the message ``text``, recall included, when given)."""
        self.show_plan(self.agent.context(self.refresh(), text))

    def update_status(self) -> None:
        """Plan the next call once (after a turn or a command), for the toolbar."""
        try:
            self.plan, self.plan_error = self.agent.context(self.refresh()), None
        except MemchatError as exc:
            self.plan, self.plan_error = None, describe_error(exc)

    def toolbar(self) -> str:
        """The bottom toolbar: session · strategy · used/budget tokens of the next call (· the
        files ``/attach`` holds for the next message)."""
        files = t("repl.toolbar_files", count=len(self.pending)) if self.pending else ""
        name, strategy = self.session.label or t("repl.new_chat"), self.strategy
        if self.plan is None:
            key = "repl.toolbar_unknown" if self.plan_error is None else "repl.toolbar_over"
            return t(key, session=name, strategy=strategy) + files
        used, limit = self.plan.tokens, self.plan.budget.limit
        percent = round(100 * used / limit) if limit > 0 else 100
        line = t(
            "repl.toolbar",
            session=name,
            strategy=self.plan.strategy,
            used=f"{used:,}",
            limit=f"{limit:,}",
            percent=percent,
        )
        return line + files

    def new_session(self, name: str | None) -> SessionInfo:
        """Start a new chat (a draft, stored with its first message) and make it current."""
        self.session = self.chats.draft(name, persona=self.persona)
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
    state.show_context_now(arg or None)
    return None


def _history(state: ReplState, arg: str) -> Result:
    h = state.chats.history(state.session)
    state.session = h.session
    state.ui.history(
        h.session, h.messages, pinned=h.pinned, summaries=h.summaries, images=h.images, versions=h.versions
    )
    return None


def _system(state: ReplState, arg: str) -> Result:
    if not arg:
        persona = state.refresh().persona
        state.ui.info(t("repl.system_show", persona=persona) if persona else t("repl.system_none"))
        return None
    state.session = state.chats.set_persona(state.session, arg)
    state.ui.info(t("repl.system_set"))
    if state.show_context:
        state.show_context_now()
    return None


def _new(state: ReplState, arg: str) -> Result:
    info = state.new_session(arg or None)
    state.ui.info(t("repl.new", session=info.name) if info.name else t("repl.new_unnamed"))
    if state.show_context:
        state.show_context_now()
    return None


def _sessions(state: ReplState, arg: str) -> Result:
    state.ui.sessions(state.chats.list(), state.session)
    return None


def _search(state: ReplState, arg: str) -> Result:
    """``/search WORDS``: the sessions whose messages hold them, with snippets."""
    state.ui.search(state.chats.search(arg, limit=10))
    return None


def _switch(state: ReplState, arg: str) -> Result:
    state.session = state.chats.get(arg)
    state.ui.info(t("repl.switched", session=state.session.name, count=state.session.message_count))
    return None


def _rename(state: ReplState, arg: str) -> Result:
    state.session = state.chats.rename(state.session, arg)
    state.ui.info(t("repl.renamed", session=state.session.name))
    return None


def _fork(state: ReplState, arg: str) -> Result:
    old = state.session.name
    state.session = state.chats.fork(state.session, arg or None)
    state.ui.info(t("repl.forked", old=old, session=state.session.name))
    return None


def _undo(state: ReplState, arg: str) -> Result:
    removed = state.chats.undo(state.session)  # and the summaries covering it
    state.ui.info(t("repl.undone", count=len(removed)) if removed else t("repl.undo_empty"))
    return None


def _retry(state: ReplState, arg: str) -> Result:
    state.refresh()
    return state.chats.retry(state.session)


def _edit(state: ReplState, arg: str) -> Result:
    """``/edit N TEXT``: message N of ``/history`` (yours) gets TEXT, in place: a new version of
    that point of the session, answered now; the message as it was, with its reply and what
    followed, is kept as another version (``/versions``)."""
    number, _, text = arg.strip().partition(" ")
    messages = state.chats.messages(state.session)
    message = _message_number(state, number, messages)
    if message is None:
        return None
    if message.role is not Role.USER or not text.strip():
        state.ui.error(t("repl.usage", usage=COMMANDS["edit"].usage) if not text.strip() else t("repl.edit_not_yours"))
        return None
    return state.chats.edit(state.session, messages.index(message) + 1, text.strip())


def _versions(state: ReplState, arg: str) -> Result:
    """``/versions``: the versions of the newest message that has some (a regenerated reply, an
    edited message); ``/versions N`` shows version N there; ``/versions M N`` does it for message
    M of ``/history``. The next turn continues from the version shown."""
    words = arg.split()
    if len(words) > 2 or not all(w.isdigit() for w in words):
        state.ui.error(t("repl.usage", usage=COMMANDS["versions"].usage))
        return None
    messages = state.chats.messages(state.session.id)
    if len(words) == 2:
        message = _message_number(state, words[0], messages)
        if message is None:
            return None
        versions = state.chats.versions(state.session.id, message.id or 0)
        if len(versions) < 2:
            state.ui.note(t("repl.no_versions_at", number=words[0]))
            return None
    else:
        versions = state.chats.latest_versions(state.session.id)
        if not versions:
            state.ui.note(t("repl.versions_none"))
            return None
    shown = next(v for v in versions if v.shown)
    number = next(i for i, m in enumerate(messages, 1) if m.id == shown.head)
    if not words:
        state.ui.versions(number, versions)
        state.ui.note(t("repl.versions_hint"))
        return None
    wanted = int(words[-1])
    if not 1 <= wanted <= len(versions):
        state.ui.error(t("repl.no_version", version=wanted, number=number, count=len(versions)))
        return None
    if not state.chats.choose_version(state.session.id, versions[wanted - 1].head):
        state.ui.note(t("repl.version_already", version=wanted))
        return None
    state.refresh()
    state.ui.info(t("repl.version_shown", number=number, version=wanted, count=len(versions)))
    return None


def _clear(state: ReplState, arg: str) -> Result:
    removed = state.chats.clear(state.session)  # summaries and pins go with the messages
    state.ui.info(t("repl.cleared", count=removed))
    return None


def _model(state: ReplState, arg: str) -> Result:
    if arg:  # the session's choice wins over a --model flag from now on
        state.session = state.chats.set_model(state.session, arg)
        state.ui.info(t("repl.model_set", model=state.model))
    else:
        state.refresh()
        state.ui.info(t("repl.model_show", model=state.model))
    return None


def _memory(state: ReplState, arg: str) -> Result:
    agent = state.agent
    if arg:
        name = arg.lower()
        if name not in STRATEGIES:
            state.ui.error(t("repl.memory_unknown", name=arg, choices=", ".join(STRATEGIES)))
            return None
        state.session = state.chats.set_memory(state.session, name)  # wins over --memory from now on
        state.ui.info(t("repl.memory_set", strategy=state.strategy))
        if state.show_context:
            state.show_context_now()
        return None
    info = state.refresh()
    budget = agent.budget_for(state.model)
    own = info.memory if agent.memory is not None and agent.memory != info.memory else None
    state.ui.memory(state.strategy, STRATEGIES, own=own, window=budget.window, limit=budget.limit)
    return None


def _tools(state: ReplState, arg: str) -> Result:
    """``/tools``: which tools are on; ``/tools now,search_history``, ``none`` or ``all`` sets
    them for this session (kept with it)."""
    agent = state.agent
    names = agent.tools.names()
    if arg:
        word = arg.strip().lower()
        chosen = names if word == "all" else [] if word in ("none", "off") else [n.strip() for n in arg.split(",")]
        unknown = [n for n in chosen if n not in names]
        if unknown:
            state.ui.error(t("repl.tools_unknown", name=unknown[0], choices=", ".join(names)))
            return None
        state.session = state.chats.set_tools(state.session, chosen)  # wins over --tools from now on
    on = state.agent.tools_for(state.refresh())
    off = [n for n in names if n not in on]
    none = t("repl.tools_none")
    state.ui.info(t("repl.tools", on=", ".join(on) or none, off=", ".join(off) or none))
    return None


def _image(state: ReplState, arg: str) -> Result:
    """``/image PROMPT``: generate, save, keep with the session, print the paths."""
    if state.agent.images is None:
        state.ui.error(cli_t("cli.image_no_provider"))
        return None
    import threading

    from memchat.images.base import ImageRequest

    cancel = threading.Event()
    draft = state.session if state.session.draft else None
    if draft is not None:  # a new chat is stored with its first image, as with its first message
        state.session = state.chats.save(draft)
    made: list[ImageRecord] = []
    try:
        made = state.chats.generate_image(state.session.id, ImageRequest(prompt=arg), cancel=cancel)
    except KeyboardInterrupt:
        cancel.set()
        state.ui.note(t("repl.image_cancelled"))
        return None
    finally:
        if draft is not None and not made and state.chats.discard_if_empty(state.session.id):
            state.session = draft
    for im in made:
        state.ui.info(t("repl.image_saved", path=im.path), soft=True)
    return None


def _message_number(state: ReplState, arg: str, messages: list[Message]) -> Message | None:
    """Message ``arg`` of ``/history``'s numbering, or None (after saying why)."""
    try:
        number = int(arg)
    except ValueError:
        state.ui.error(t("repl.not_a_number", arg=arg))
        return None
    if not 1 <= number <= len(messages):
        key = "repl.no_message" if messages else "repl.no_messages"
        state.ui.error(t(key, number=number, count=len(messages)))
        return None
    return messages[number - 1]


def _preview(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def _pin(state: ReplState, arg: str) -> Result:
    messages = state.chats.messages(state.session)
    number: int | None = None
    if arg:
        message = _message_number(state, arg, messages)
        if message is None:
            return None
        number = messages.index(message) + 1
    elif not any(m.role is Role.USER for m in messages):
        state.ui.error(t("repl.pin_nothing"))
        return None
    done = state.chats.pin(state.session, number)
    if not done.changed:
        state.ui.info(t("repl.pin_already", number=done.number))
        return None
    message = done.message
    state.ui.info(t("repl.pinned", number=done.number, role=message.role.value, preview=_preview(message.content)))
    return None


def _unpin(state: ReplState, arg: str) -> Result:
    messages = state.chats.messages(state.session)
    message = _message_number(state, arg, messages)
    if message is None:
        return None
    done = state.chats.unpin(state.session, messages.index(message) + 1)
    state.ui.info(t("repl.unpinned", number=done.number) if done.changed else t("repl.not_pinned", number=done.number))
    return None


def _forget_summary(state: ReplState, arg: str) -> Result:
    count = state.chats.forget_summaries(state.session)
    state.ui.info(t("repl.forgot", count=count) if count else t("repl.forgot_none"))
    return None


def _remember(state: ReplState, arg: str) -> Result:
    """``/remember TEXT``: a memory served to every session from now on."""
    m = state.agent.memories.add(arg, session_id=None if state.session.draft else state.session.id)
    line = t("repl.remembered", id=m.id, kind=m.kind.value, text=m.content)
    if m.supersedes is not None:
        line += t("repl.remembered_replaces", id=m.supersedes)
    state.ui.info(line)
    return None


def _forget(state: ReplState, arg: str) -> Result:
    """``/forget ID`` (as ``/memories`` numbers them) or ``/forget TEXT`` (the best match)."""
    memories = state.agent.memories
    ident = arg.strip().removeprefix("#")
    if ident.isdigit():
        m = memories.forget(int(ident))
    else:
        found = memories.forget_matching(arg)
        if found is None:
            state.ui.error(t("repl.memories_no_match", query=arg))
            return None
        m = found
    state.ui.info(t("repl.memory_forgot", id=m.id, text=m.content))
    return None


def _memories(state: ReplState, arg: str) -> Result:
    """``/memories``: every memory served; ``/memories QUERY``: those matching it."""
    memories = state.agent.memories
    found = memories.search(arg) if arg else memories.list()
    if not found:
        state.ui.note(t("repl.memories_no_match", query=arg) if arg else t("repl.memories_none"))
        return None
    state.ui.memories(found)
    state.ui.note(t("repl.memories_hint"))
    return None


_ON = ("on", "yes", "true", "1", "开", "是")
_OFF = ("off", "no", "false", "0", "关", "否")


def _incognito(state: ReplState, arg: str) -> Result:
    """``/incognito``: whether this session is incognito; ``on``/``off`` sets it."""
    agent = state.agent
    word = arg.strip().lower()
    if word and word not in _ON + _OFF:
        state.ui.error(t("repl.usage", usage=COMMANDS["incognito"].usage))
        return None
    if word:
        state.session = state.chats.set_incognito(state.session, word in _ON)
    on = agent.is_incognito(state.refresh())
    state.ui.info(t("repl.incognito_on" if on else "repl.incognito_off"))
    return None


def _attach(state: ReplState, arg: str) -> Result:
    """``/attach FILE``: read and check FILE now (size, type by its bytes, an image for a model
    that takes text only), sent with the next message; ``/attach`` lists, ``/attach clear`` drops."""
    from memchat.attachments import from_path

    path = arg.strip()
    if len(path) > 1 and path[0] == path[-1] and path[0] in "'\"":
        path = path[1:-1]
    if path.lower() == "clear":
        state.pending.clear()
        state.ui.info(t("repl.attach_cleared"))
        return None
    if not path:
        if not state.pending:
            state.ui.info(t("repl.attach_none"))
        else:
            files = ", ".join(f"{a.name} ({a.media_type}, {human_size(a.size)})" for a in state.pending)
            state.ui.info(t("repl.attach_list", files=files))
        return None
    found = from_path(path, limit=state.agent.max_attachment)
    state.agent.check_images(state.model, [found])
    state.pending.append(found)
    state.ui.info(t("repl.attached", name=found.name, type=found.media_type, size=human_size(found.size)))
    return None


def _exit(state: ReplState, arg: str) -> Result:
    return EXIT


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("help", "/help", "none", _help),
        Command("context", "/context [MESSAGE]", "optional", _context),
        Command("history", "/history", "none", _history),
        Command("system", "/system [TEXT]", "optional", _system),
        Command("new", "/new [NAME]", "optional", _new),
        Command("sessions", "/sessions", "none", _sessions),
        Command("search", "/search WORDS", "required", _search),
        Command("switch", "/switch NAME", "required", _switch),
        Command("rename", "/rename NAME", "required", _rename),
        Command("fork", "/fork [NAME]", "optional", _fork),
        Command("undo", "/undo", "none", _undo),
        Command("retry", "/retry", "none", _retry),
        Command("edit", "/edit N TEXT", "required", _edit),
        Command("versions", "/versions [[M] N]", "optional", _versions),
        Command("clear", "/clear", "none", _clear),
        Command("model", "/model [NAME]", "optional", _model),
        Command("memory", "/memory [STRATEGY]", "optional", _memory),
        Command("tools", "/tools [LIST|none|all]", "optional", _tools),
        Command("mcp", "/mcp [attach SERVER URI | prompt SERVER NAME …]", "optional", mcp_command),
        Command("image", "/image PROMPT", "required", _image),
        Command("pin", "/pin [N]", "optional", _pin),
        Command("unpin", "/unpin N", "required", _unpin),
        Command("forget-summary", "/forget-summary", "none", _forget_summary),
        Command("remember", "/remember TEXT", "required", _remember),
        Command("forget", "/forget ID|TEXT", "required", _forget),
        Command("memories", "/memories [QUERY]", "optional", _memories),
        Command("incognito", "/incognito [on|off]", "optional", _incognito),
        Command("attach", "/attach [FILE|clear]", "optional", _attach),
        Command("exit", "/exit", "none", _exit),
    )
}
ALIASES = {"quit": "exit", "q": "exit", "?": "help", "strategy": "memory"}
