"""Plain values of the conversation: no identity beyond what the store assigns, no I/O.

A ``Message`` is one row of a session's history (the store fills ``id``/``seq``);
a ``Chunk`` is one piece of a streamed reply; ``Reply`` is a finished turn.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Status(enum.StrEnum):
    """Life of a stored message: ``streaming`` → ``complete`` | ``interrupted`` | ``stopped``."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage reported by a provider for one call."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage | None:
        """Usage as a server reports it; a count that is not a number (a list, ``"many"``, NaN)
        counts as 0 rather than failing the reply it came with."""
        if not data:
            return None
        return cls(_count(data.get("prompt_tokens")), _count(data.get("completion_tokens")))


#: token counts are kept below 2**53: a JSON number every client (and SQLite, summed) reads exactly
_MAX_COUNT = 2**53


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return 0
    if isinstance(value, float):
        value = int(value) if value == value and abs(value) != float("inf") else 0
    return min(max(value, 0), _MAX_COUNT) if isinstance(value, int) else 0


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the user sent with a message: stored once by the hash of its bytes (``sha256``),
    named as the user named it. ``data`` is the bytes when they were read (a new message, an
    export); a message read from a store carries the rest only (``Store.attachment_data``)."""

    name: str
    media_type: str
    size: int
    sha256: str
    data: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")

    @property
    def description(self) -> str:
        """What memory, search and older turns see instead of the bytes."""
        return f"[attachment: {self.name}, {self.media_type}, {human_size(self.size)}]"

    def to_record(self) -> dict[str, Any]:
        """The stored reference (``messages.attachments``, JSON): no bytes."""
        return {"name": self.name, "media_type": self.media_type, "size": self.size, "sha256": self.sha256}


def human_size(size: int) -> str:
    """``532 B``, ``120 KB``, ``3.4 MB`` (1 KB = 1024 bytes)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a session. ``id``/``seq``/``created`` belong to the store."""

    role: Role
    content: str
    status: Status = Status.COMPLETE
    tokens: int | None = None
    token_method: str | None = None
    usage: Usage | None = None
    model: str | None = None
    id: int | None = None
    seq: int | None = None
    created: datetime | None = None
    #: an assistant message's tool calls (OpenAI shape: id, type, function{name, arguments})
    tool_calls: tuple[dict[str, Any], ...] | None = None
    #: a tool result's call id
    tool_call_id: str | None = None
    #: files the user sent with it (their bytes stored apart, by hash)
    attachments: tuple[Attachment, ...] = ()

    @property
    def described(self) -> str:
        """The content with a line describing each attachment: what memory and search see."""
        if not self.attachments:
            return self.content
        lines = "\n".join(a.description for a in self.attachments)
        return f"{self.content}\n{lines}" if self.content else lines

    def to_wire(self) -> dict[str, Any]:
        """The OpenAI chat-completions shape of this message."""
        wire: dict[str, Any] = {"role": self.role.value, "content": self.content}
        if self.tool_calls:
            wire["tool_calls"] = [dict(c) for c in self.tool_calls]
        if self.tool_call_id is not None:
            wire["tool_call_id"] = self.tool_call_id
        return wire


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a streamed tool call, as providers send it: the first fragment of a call
    carries its ``id`` and ``name``, later ones pieces of ``arguments`` (JSON text), all
    keyed by ``index`` (see ``memchat.tools.calls.CallAccumulator``)."""

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call the model asked for (``arguments`` is the model's JSON text)."""

    id: str
    name: str
    arguments: str

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What running a tool call gave: the text the model sees, and whether it failed."""

    call: ToolCall
    content: str
    error: bool = False
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Chunk:
    """One streamed piece of a reply. ``usage``/``finish_reason`` come with the last ones.

    Providers also stream ``tool_deltas``; a turn yields ``tool_call`` (about to run) and
    ``tool_result`` (done) so interfaces can show the agent acting."""

    text: str = ""
    reasoning: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    tool_deltas: tuple[ToolCallDelta, ...] = ()
    tool_call: ToolCall | None = None
    tool_result: ToolResult | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A stored conversation: its name, persona (system prompt) and defaults.

    A *draft* (``id`` 0, ``DRAFT_ID``) is a new session not stored yet: its settings are chosen
    (name, persona, model, memory, incognito) but nothing is written until its first message is
    (``Agent.stream`` stores it with the turn, and removes it again when that turn fails), so no
    interface leaves empty sessions behind. ``settings["title"]`` is the display label written from
    the first exchange (``label``); the name stays the session's key."""

    id: int
    name: str
    persona: str = ""
    model: str | None = None
    provider: str | None = None
    #: the memory strategy (``memory/plan.py``); ``auto`` is the product default everywhere
    memory: str = "auto"
    settings: dict[str, Any] = field(default_factory=dict)
    parent_id: int | None = None
    fork_at: int | None = None
    created: datetime | None = None
    updated: datetime | None = None
    message_count: int = 0

    @property
    def draft(self) -> bool:
        """Not stored yet: stored with its first message."""
        return self.id == DRAFT_ID

    @property
    def title(self) -> str | None:
        """The title written from the first exchange (None: none yet, or the user named it)."""
        title = self.settings.get("title") if isinstance(self.settings, dict) else None
        return title if isinstance(title, str) and title.strip() else None

    @property
    def label(self) -> str:
        """What a person is shown: the title, else the name."""
        return self.title or self.name


#: the id of a draft session (stores number sessions from 1)
DRAFT_ID = 0


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a point of a session: a reply regenerated there, or a user message edited
    there, with what followed it on that version. The versions of a point all follow the same
    message (``after``; None: the session's start); one of them is shown — it is part of the
    session's history, what the next turn continues and what memory sees — the others are set
    aside, whole, until chosen (``Store.choose_version``)."""

    #: the id of its first message (a message keeps its id while set aside)
    head: int
    #: the message the point follows (None: the start of the session)
    after: int | None
    shown: bool
    #: its first turn: its first message and what follows it up to the next user message
    messages: tuple[Message, ...]
    #: how many more messages the version holds after ``messages`` (later turns on it)
    more: int = 0
    #: its place among the point's versions, from 1, oldest first
    number: int = 0


@dataclass(frozen=True, slots=True)
class Versions:
    """A shown message that has versions: which one it is and all of them (first message ids,
    oldest first), as the page's ``‹ 2/3 ›`` shows them."""

    number: int
    heads: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.heads)


#: how a session is named to a store: its name (unique per owner), its id, or its record
SessionKey = str | int | SessionInfo


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of one turn."""

    text: str
    session: str
    status: Status = Status.COMPLETE
    usage: Usage | None = None
    reasoning: str = ""
    finish_reason: str | None = None
    model: str | None = None
    message_id: int | None = None
    #: the long-term memories that were in this reply's context (ids)
    memories: tuple[int, ...] = ()
    #: past turns of the user's other sessions that were in this reply's context
    recalled: int = 0
    #: what the user asked this turn to remember or forget ("remember that …"), as stored
    remembered: tuple[Memory, ...] = ()
    #: calls of the caller's own tools (``ChatOptions.tools``) for the caller to run, as OpenAI's
    #: wire shape; the turn goes on with their results (``Agent.astream_results``)
    tool_calls: tuple[dict[str, Any], ...] = ()

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """A generated image kept with its session: where the file is and how it was made."""

    prompt: str
    path: str
    provider: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None
    mime: str = "image/png"
    size: int = 0
    #: the session's last message when it was made (places it in the history)
    after_seq: int = 0
    id: int | None = None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """A model-written summary of a session's messages ``first_seq``…``last_seq``. It is a
    record of its own: the messages it covers are never changed."""

    first_seq: int
    last_seq: int
    content: str
    tokens: int
    token_method: str = "estimate"
    model: str | None = None
    id: int | None = None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A stored message found by full-text search, with the session it belongs to."""

    message: Message
    session: str
    score: float


class MemoryKind(enum.StrEnum):
    """What a long-term memory records about the user and their world."""

    FACT = "fact"  # "lives in Munich", "has two cats"
    PREFERENCE = "preference"  # "prefers window seats"
    INSTRUCTION = "instruction"  # "always answer in metric units": sent with every call
    EVENT = "event"  # "had a dentist appointment" on ``event_date``


class MemoryOrigin(enum.StrEnum):
    """How a memory was learned."""

    EXPLICIT = "explicit"  # the user asked (remember …, /remember, memchat memory add, the page)
    AUTO = "auto"  # extracted by the model from a conversation, after a turn
    IMPORT = "import"  # brought in by ``memchat memory import`` or a database copy


class EndReason(enum.StrEnum):
    """Why a memory stopped being served (it is kept, with its history)."""

    SUPERSEDED = "superseded"  # a newer memory replaced it (``superseded_by``)
    FORGOTTEN = "forgotten"  # the user asked to forget it
    REVERTED = "reverted"  # an older version was restored in its place


@dataclass(frozen=True, slots=True)
class Memory:
    """Something the agent knows about its user, kept across sessions.

    A memory is never rewritten: an edit or a newer fact ends it (``ended``, ``end_reason``,
    ``superseded_by``) and adds the new version (``supersedes`` points back), so the history
    of what was known, and when, stays readable and undoable. ``id``/``created`` belong to the
    store; ``created`` is when it was learned."""

    content: str
    kind: MemoryKind = MemoryKind.FACT
    origin: MemoryOrigin = MemoryOrigin.EXPLICIT
    #: for an event: the day it happened or will happen (resolved from "yesterday", "上周五" …)
    event_date: date | None = None
    #: the session and messages it was learned from (the session id may outlive its name)
    session_id: int | None = None
    session_name: str | None = None
    source_ids: tuple[int, ...] = ()
    supersedes: int | None = None
    tokens: int = 0
    id: int | None = None
    created: datetime | None = None
    ended: datetime | None = None
    end_reason: EndReason | None = None
    superseded_by: int | None = None

    @property
    def active(self) -> bool:
        return self.ended is None
