"""The JSON shapes memchat writes and reads (every one a ``TypedDict``), and the conversions from
the domain's objects to them: the export format (``SessionRecord``, then one ``MessageRecord``
per line — with a ``VersionRecord`` among them for each version of a point that is not shown —
then one ``SummaryRecord`` per summary, then one ``ImageLine`` per image; format ``memchat/1``),
and the ``--json`` output of ``memchat sessions list``/``show``/``context`` and ``memchat
config``."""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

from memchat.domain import Attachment, ImageRecord, Message, SessionInfo, Summary, Usage, Versions
from memchat.search import Found, Snippet

FORMAT = "memchat/1"


# -- shapes -------------------------------------------------------------------------------


class UsageRecord(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class SessionRecord(TypedDict):
    """First line of a JSONL export."""

    type: Literal["session"]
    format: str
    name: str
    persona: str
    model: str | None
    provider: str | None
    memory: str
    settings: dict[str, Any]
    created: str | None
    updated: str | None


class MessageRecord(TypedDict):
    """Every later line of a JSONL export, in conversation order."""

    type: Literal["message"]
    role: str
    content: str
    status: str
    tokens: int | None
    token_method: str | None
    usage: UsageRecord | None
    model: str | None
    created: str | None
    #: present (and true) only on a pinned message
    pinned: NotRequired[bool]
    #: an assistant message's tool calls (OpenAI shape), and a tool result's call id
    tool_calls: NotRequired[list[dict[str, Any]]]
    tool_call_id: NotRequired[str]
    #: the files sent with a user message, their bytes in base64 (``AttachmentRecord``)
    attachments: NotRequired[list[AttachmentRecord]]


class AttachmentRecord(TypedDict):
    """A file of a message in an export: what the message names, and the bytes (base64); an
    import checks them against ``sha256`` and ``size`` and reads their type again."""

    name: str
    media_type: str
    size: int
    sha256: str
    data: str


class VersionRecord(TypedDict):
    """A version of a point of the session that is not shown (an earlier reply a regenerate
    replaced, a message as it was before an edit, with what followed it on that version). It
    stands among the message lines where it began (versions are numbered by when they began);
    ``after`` is the number of the message it follows (0: the session's start), counting the
    message lines from 1, then the messages of the version lines before it, in order; its
    ``messages`` are message records without ``type``, in order."""

    type: Literal["version"]
    after: int
    messages: list[dict[str, Any]]


class ImageLine(TypedDict):
    """A generated image, after the summaries: ``after`` is the number of the message it
    followed (0: before any); ``path`` is where the file was saved on the exporting machine."""

    type: Literal["image"]
    after: int
    prompt: str
    params: dict[str, Any]
    provider: str
    model: str
    task_id: str | None
    path: str
    mime: str
    size: int
    created: str | None


class SummaryRecord(TypedDict):
    """A model-written summary, after the messages. ``first_seq``/``last_seq`` number the
    messages of the file from 1."""

    type: Literal["summary"]
    first_seq: int
    last_seq: int
    content: str
    tokens: int
    token_method: str
    model: str | None
    created: str | None


class SessionSummary(TypedDict):
    """One row of ``memchat sessions list --json``: ``name`` is the session's key (``-s``),
    ``title`` the label written from its first exchange (None: none, the name is shown)."""

    name: str
    title: str | None
    messages: int
    model: str | None
    provider: str | None
    created: str | None
    updated: str | None


class SnippetView(TypedDict):
    """A message found by ``sessions search``: its id, role, the text around the match, and
    where the searched words are in that text (``[start, end]`` character offsets)."""

    message_id: int
    role: str
    snippet: str
    marks: list[list[int]]


class SearchHitView(SessionSummary):
    """One session found by ``memchat sessions search --json``, with its matching messages."""

    matches: list[SnippetView]


class MessageView(TypedDict):
    """One message of ``memchat sessions show --json``; ``index`` counts from 1."""

    index: int
    role: str
    status: str
    tokens: int | None
    token_method: str | None
    usage: UsageRecord | None
    model: str | None
    created: str | None
    pinned: bool
    content: str
    #: the message's point has several versions: which one this is, of how many
    versions: NotRequired[dict[str, int]]
    #: the files sent with it: name, media_type, size, sha256 (no bytes)
    attachments: NotRequired[list[dict[str, Any]]]


class SessionView(TypedDict):
    """``memchat sessions show --json``."""

    name: str
    persona: str
    model: str | None
    provider: str | None
    memory: str
    settings: dict[str, Any]
    created: str | None
    updated: str | None
    messages: list[MessageView]


class ConfigEntry(TypedDict):
    """One setting of ``memchat config --json`` (the key masked)."""

    value: str
    source: str


class BudgetView(TypedDict):
    """The token budget of one call: ``limit = window - reserve - tools - primer``; every
    message counts ``overhead`` tokens for the chat template."""

    window: int
    reserve: int
    tools: int
    primer: int
    overhead: int
    limit: int
    used: int


class ContextEntryView(TypedDict):
    """One message of the call. ``message`` is the stored message's number (as in ``/history``
    and ``sessions show``); ``None`` for the system message and the new message."""

    index: int
    role: str
    #: persona | system | verbatim | new
    kind: str
    tokens: int
    message: int | None
    content: str


class RecallMatchView(TypedDict):
    """A message recall added, and why: its session, its number there, its search score."""

    session: str
    message: int | None
    score: float


class RecallItemView(TypedDict):
    """One thing long-term memory put into the call, and why: a memory (``memory_id``) or a
    past turn (``session``, ``seq``), its tokens, its score and the reason it was chosen."""

    kind: str
    text: str
    tokens: int
    score: float
    why: str
    memory_id: int | None
    session: str | None
    seq: int | None
    created: str | None


class ContextSectionView(TypedDict):
    """A part of the system message. ``covers``: the first and last message numbers a summary
    covers; ``messages``: the pinned messages' numbers; ``matches``: what recall added;
    ``items``: the memories and past turns of sections ``memories`` and ``recall``, with why."""

    kind: str
    tokens: int
    note: str
    covers: list[int] | None
    messages: list[int]
    matches: list[RecallMatchView]
    text: str
    items: list[RecallItemView]


class OmittedView(TypedDict):
    """Stored messages not sent verbatim, and what became of them (a message may be both
    summarized and pinned); ``dropped`` are in none of the sections."""

    total: int
    summarized: int
    pinned: int
    recalled: int
    dropped: int


class ContextView(TypedDict):
    """``memchat sessions context --json`` and ``/context``: exactly what the next call sends."""

    session: str
    strategy: str
    model: str
    tokens: int
    budget: BudgetView
    entries: list[ContextEntryView]
    sections: list[ContextSectionView]
    omitted: OmittedView
    #: the message numbers (first, last) a summary will fold in before the call, if due
    needs_summary: list[int] | None
    notes: list[str]


# -- conversions --------------------------------------------------------------------------


def format_time(value: datetime | None) -> str | None:
    """UTC, microseconds, ``Z`` — the store's own representation."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _usage_record(usage: Usage | None) -> UsageRecord | None:
    if usage is None:
        return None
    return UsageRecord(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def session_record(info: SessionInfo, name: str | None = None) -> SessionRecord:
    return SessionRecord(
        type="session",
        format=FORMAT,
        name=info.name if name is None else name,
        persona=info.persona,
        model=info.model,
        provider=info.provider,
        memory=info.memory,
        settings=dict(info.settings),
        created=format_time(info.created),
        updated=format_time(info.updated),
    )


#: the bytes of an attached file by its hash (``Store.attachment_data``), for an export
FileData = Callable[[str], bytes | None]


def attachment_record(a: Attachment, data: FileData | None) -> AttachmentRecord:
    raw = a.data if a.data is not None else (data(a.sha256) if data is not None else None)
    return AttachmentRecord(
        name=a.name,
        media_type=a.media_type,
        size=a.size,
        sha256=a.sha256,
        data=base64.b64encode(raw).decode("ascii") if raw is not None else "",
    )


def message_record(msg: Message, *, pinned: bool = False, data: FileData | None = None) -> MessageRecord:
    """``data``: where the bytes of the message's files are read (a store's ``attachment_data``)."""
    record = MessageRecord(
        type="message",
        role=msg.role.value,
        content=msg.content,
        status=msg.status.value,
        tokens=msg.tokens,
        token_method=msg.token_method,
        usage=_usage_record(msg.usage),
        model=msg.model,
        created=format_time(msg.created),
    )
    if pinned:
        record["pinned"] = True
    if msg.tool_calls:
        record["tool_calls"] = [dict(c) for c in msg.tool_calls]
    if msg.tool_call_id is not None:
        record["tool_call_id"] = msg.tool_call_id
    if msg.attachments:
        record["attachments"] = [attachment_record(a, data) for a in msg.attachments]
    return record


def version_record(
    messages: Sequence[Message], after: int, pinned: Collection[int] = (), data: FileData | None = None
) -> VersionRecord:
    """A version set aside, following message number ``after`` of the export."""
    records: list[dict[str, Any]] = []
    for m in messages:
        record: dict[str, Any] = dict(message_record(m, pinned=m.id in pinned, data=data))
        del record["type"]
        records.append(record)
    return VersionRecord(type="version", after=after, messages=records)


def image_line(image: ImageRecord, after: int) -> ImageLine:
    return ImageLine(
        type="image",
        after=after,
        prompt=image.prompt,
        params=dict(image.params),
        provider=image.provider,
        model=image.model,
        task_id=image.task_id,
        path=image.path,
        mime=image.mime,
        size=image.size,
        created=format_time(image.created),
    )


def summary_record(summary: Summary, first: int, last: int) -> SummaryRecord:
    """``summary`` covering the messages numbered ``first``…``last`` of the export."""
    return SummaryRecord(
        type="summary",
        first_seq=first,
        last_seq=last,
        content=summary.content,
        tokens=summary.tokens,
        token_method=summary.token_method,
        model=summary.model,
        created=format_time(summary.created),
    )


def numbers(messages: Sequence[Message]) -> list[int]:
    """The seqs of ``messages`` (in order): ``bisect`` on it turns a seq into a message number."""
    return [m.seq or 0 for m in messages]


def covered(seqs: Sequence[int], first_seq: int, last_seq: int) -> tuple[int, int] | None:
    """The 1-based numbers of the first and last messages with ``first_seq <= seq <= last_seq``
    (``seqs`` ascending), or ``None`` when no message is left in that range."""
    first = bisect.bisect_left(seqs, first_seq) + 1
    last = bisect.bisect_right(seqs, last_seq)
    return (first, last) if first <= last else None


def session_summary(info: SessionInfo) -> SessionSummary:
    return SessionSummary(
        name=info.name,
        title=info.title,
        messages=info.message_count,
        model=info.model,
        provider=info.provider,
        created=format_time(info.created),
        updated=format_time(info.updated),
    )


def session_view(
    info: SessionInfo,
    messages: Sequence[Message],
    pinned: frozenset[int] = frozenset(),
    versions: Mapping[int, Versions] | None = None,
) -> SessionView:
    """``memchat sessions show --json``; ``versions``: the messages whose point has several."""
    versions = versions or {}
    return SessionView(
        name=info.name,
        persona=info.persona,
        model=info.model,
        provider=info.provider,
        memory=info.memory,
        settings=dict(info.settings),
        created=format_time(info.created),
        updated=format_time(info.updated),
        messages=[_message_view(i, m, pinned, versions) for i, m in enumerate(messages, 1)],
    )


def _message_view(i: int, m: Message, pinned: frozenset[int], versions: Mapping[int, Versions]) -> MessageView:
    view = MessageView(
        index=i,
        role=m.role.value,
        status=m.status.value,
        tokens=m.tokens,
        token_method=m.token_method,
        usage=_usage_record(m.usage),
        model=m.model,
        created=format_time(m.created),
        pinned=m.id in pinned,
        content=m.content,
    )
    mark = versions.get(m.id or 0)
    if mark is not None:
        view["versions"] = {"number": mark.number, "count": mark.count}
    if m.attachments:
        view["attachments"] = [a.to_record() for a in m.attachments]
    return view


def snippet_view(snippet: Snippet) -> SnippetView:
    return SnippetView(
        message_id=snippet.message_id,
        role=snippet.role.value,
        snippet=snippet.text,
        marks=[[a, b] for a, b in snippet.marks],
    )


def search_view(found: Found) -> list[SearchHitView]:
    """What ``memchat sessions search --json`` prints: the sessions found, best first."""
    return [
        SearchHitView(**session_summary(m.session), matches=[snippet_view(s) for s in m.snippets])
        for m in found.sessions
    ]
