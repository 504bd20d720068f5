"""JSON shapes memchat writes and reads, and session export/import.

Every JSON shape that leaves the process is a ``TypedDict`` here: the export format
(``SessionRecord``, then one ``MessageRecord`` per line, then one ``SummaryRecord`` per
summary; format ``memchat/1``), and the ``--json`` output of ``memchat sessions
list``/``show``/``context`` and ``memchat config``.

An export holds no ids and no secrets. A pinned message carries ``"pinned": true``; a
summary's ``first_seq``/``last_seq`` are the numbers of the messages it covers *in the
file* (1 = the first message line), which are also their seqs once imported, since an
imported session numbers its messages from 1. Import parses and validates the whole file
before it writes anything, then creates the session, its messages, summaries and pins in
one transaction (``Store.import_session``), so a bad file never leaves a half-written
session. ``export → import → export`` gives the same bytes (apart from the name, when
renamed).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, NotRequired, TypedDict

from memchat.domain import ImageRecord, Message, Role, SessionInfo, Status, Summary, Usage
from memchat.errors import ImportFormatError, StoreError
from memchat.memory.plan import STRATEGIES, ContextEntry, ContextPlan
from memchat.stores.base import Store

FORMAT = "memchat/1"
#: statuses an export may hold (``streaming`` rows are in flight and never exported)
_STATUSES = (Status.COMPLETE, Status.INTERRUPTED, Status.STOPPED)


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
    """One row of ``memchat sessions list --json``."""

    name: str
    messages: int
    model: str | None
    provider: str | None
    created: str | None
    updated: str | None


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


def message_record(msg: Message, *, pinned: bool = False) -> MessageRecord:
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
    return record


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


def _numbers(messages: Sequence[Message]) -> list[int]:
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
        messages=info.message_count,
        model=info.model,
        provider=info.provider,
        created=format_time(info.created),
        updated=format_time(info.updated),
    )


def session_view(info: SessionInfo, messages: Sequence[Message], pinned: frozenset[int] = frozenset()) -> SessionView:
    return SessionView(
        name=info.name,
        persona=info.persona,
        model=info.model,
        provider=info.provider,
        memory=info.memory,
        settings=dict(info.settings),
        created=format_time(info.created),
        updated=format_time(info.updated),
        messages=[
            MessageView(
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
            for i, m in enumerate(messages, 1)
        ],
    )


#: characters ``str.splitlines()`` (and some editors) take as line breaks that JSON leaves raw
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _dump(record: Any) -> str:
    """One JSONL line: UTF-8 text kept readable, but nothing a line splitter could cut."""
    return json.dumps(record, ensure_ascii=False).translate(_LINE_BREAKS)


# -- export -------------------------------------------------------------------------------


def export_jsonl(store: Store, name: str | int) -> str:
    """The session as JSONL: a ``session`` line, one ``message`` line per message (pinned ones
    marked), then one ``summary`` line per summary. A summary none of whose messages is left
    (after a truncate) covers nothing and is not exported."""
    info = store.get_session(name)
    messages = store.messages(info.id)
    pinned = {p.id for p in store.pins(info.id)}
    seqs = _numbers(messages)
    lines = [_dump(session_record(info))]
    lines.extend(_dump(message_record(m, pinned=m.id in pinned)) for m in messages)
    for summary in store.summaries(info.id):
        span = covered(seqs, summary.first_seq, summary.last_seq)
        if span is not None:
            lines.append(_dump(summary_record(summary, *span)))
    for image in store.images(info.id):
        lines.append(_dump(image_line(image, bisect.bisect_right(seqs, image.after_seq))))
    return "\n".join(lines) + "\n"


def export_markdown(store: Store, name: str | int) -> str:
    """The session as a Markdown transcript, for people (not re-importable)."""
    info = store.get_session(name)
    messages = store.messages(info.id)
    pinned = {p.id for p in store.pins(info.id)}
    seqs = _numbers(messages)
    out = [f"# {info.name}", ""]
    facts = [
        ("model", info.model),
        ("provider", info.provider),
        ("memory", info.memory),
        ("created", format_time(info.created)),
        ("updated", format_time(info.updated)),
        ("messages", str(len(messages))),
    ]
    out.extend(f"- **{key}**: {value}" for key, value in facts if value)
    out.append("")
    if info.persona:
        out += ["## Persona", "", info.persona.rstrip("\n"), ""]
    summaries = store.summaries(info.id)
    span = covered(seqs, summaries[-1].first_seq, summaries[-1].last_seq) if summaries else None
    if span is not None:  # the running summary in use; its earlier versions only in the JSONL export
        latest = summaries[-1]
        notes = [n for n in (latest.model, _tokens(latest.tokens)) if n]
        if len(summaries) > 1:
            notes.append(f"{len(summaries) - 1} earlier version" + ("s" if len(summaries) > 2 else ""))
        title = f"## Summary of messages {span[0]}–{span[1]}"
        out += [title + "".join(" · " + n for n in notes), "", _quote(latest.content), ""]
    images: dict[int, list[ImageRecord]] = {}
    for image in store.images(info.id):  # each after the message it followed (0: none left)
        i = bisect.bisect_right(seqs, image.after_seq)
        images.setdefault(seqs[i - 1] if i else 0, []).append(image)
    for i, m in enumerate(messages, 1):
        notes = [n for n in (m.model if m.role is Role.ASSISTANT else None, _tokens(m.tokens)) if n]
        if m.status is not Status.COMPLETE:
            notes.append(f"*{m.status.value}*")
        if m.id in pinned:
            notes.append("📌 *pinned*")
        title = f"## {i}. {m.role.value.capitalize()}"
        if notes:
            title += " · " + " · ".join(notes)
        body = m.content.rstrip("\n") if m.content else ("" if m.tool_calls else "*(empty)*")
        calls = [c.get("function") or {} for c in m.tool_calls or ()]
        body += "".join(f"\n\n→ `{fn.get('name')}({fn.get('arguments') or ''})`" for fn in calls)
        out += [title, "", body.strip("\n"), ""]
        for image in images.get(m.seq or 0, []):
            out += [f"![{_alt(image.prompt)}]({_md_path(image.path)})", ""]
    for image in images.get(0, []):
        out += [f"![{_alt(image.prompt)}]({_md_path(image.path)})", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _alt(text: str) -> str:
    return " ".join(text.replace("[", "(").replace("]", ")").split())[:200]


def _md_path(path: str) -> str:
    return path.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.rstrip("\n").split("\n"))


def _tokens(tokens: int | None) -> str | None:
    if tokens is None:
        return None
    return f"{tokens} token" + ("" if tokens == 1 else "s")


# -- import -------------------------------------------------------------------------------

_SESSION_KEYS = frozenset(SessionRecord.__annotations__)
_MESSAGE_KEYS = frozenset(MessageRecord.__annotations__)
_SUMMARY_KEYS = frozenset(SummaryRecord.__annotations__)
_IMAGE_KEYS = frozenset(ImageLine.__annotations__)


@dataclass(frozen=True)
class Parsed:
    """A validated export: the session, its messages, its summaries (``first_seq``/``last_seq``
    numbering the messages from 1) and the indexes (from 0) of its pinned messages."""

    info: SessionInfo
    messages: list[Message]
    summaries: list[Summary] = field(default_factory=list)
    pins: list[int] = field(default_factory=list)
    #: ``after_seq`` holds the number (from 0) of the message each image followed
    images: list[ImageRecord] = field(default_factory=list)


class _Line:
    """Typed access to the fields of one parsed line, with errors naming the line."""

    def __init__(self, number: int, data: dict[str, Any], known: frozenset[str]) -> None:
        self.number = number
        self.data = data
        unknown = sorted(set(data) - known)
        if unknown:
            self.fail(f"unknown field(s) {', '.join(map(repr, unknown))}")

    def fail(self, detail: str) -> NoReturn:
        raise ImportFormatError(f"line {self.number}: {detail}", line=self.number)

    def required(self, key: str) -> Any:
        if key not in self.data:
            self.fail(f"missing field {key!r}")
        return self.data[key]

    def string(self, key: str, *, required: bool = False, default: str | None = None) -> str | None:
        value = self.required(key) if required else self.data.get(key, default)
        if value is not None and not isinstance(value, str):
            self.fail(f"{key!r} must be a string, not {type(value).__name__}")
        if value is None and required:
            self.fail(f"{key!r} must be a string, not null")
        return value

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self.required(key) if required else self.data.get(key)
        if value is None and required:
            self.fail(f"{key!r} must be a whole number, not null")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            self.fail(f"{key!r} must be a whole number ≥ 0 or null, not {value!r}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.data.get(key, False)
        if not isinstance(value, bool):
            self.fail(f"{key!r} must be true or false, not {value!r}")
        return value

    def time(self, key: str) -> datetime | None:
        value = self.string(key)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{key!r} is not an ISO 8601 time: {value!r}")
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def choice(self, key: str, allowed: Sequence[str], *, default: str | None = None) -> str:
        value = self.string(key, required=default is None, default=default) or default
        assert value is not None
        if value not in allowed:
            self.fail(f"unknown {key} {value!r} (expected one of: {', '.join(allowed)})")
        return value

    def usage(self, key: str) -> Usage | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(f"{key!r} must be an object or null")
        counts = []
        for name in ("prompt_tokens", "completion_tokens"):
            n = value.get(name, 0)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                self.fail(f"{key}.{name} must be a whole number ≥ 0, not {n!r}")
            counts.append(n)
        return Usage(counts[0], counts[1])


def _parse_line(number: int, raw: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        detail = f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
        raise ImportFormatError(detail, line=number) from exc
    if not isinstance(data, dict):
        raise ImportFormatError(f"line {number}: expected a JSON object, not {type(data).__name__}", line=number)
    return data


def parse_jsonl(text: str) -> Parsed:
    """Parse and validate a whole export; raise ``ImportFormatError`` naming the first bad line."""
    # split on "\n" only: str.splitlines() would also split on U+2028 and friends, which
    # JSON leaves unescaped inside strings
    lines = [(i, raw) for i, raw in enumerate(text.split("\n"), 1) if raw.strip()]
    if not lines:
        raise ImportFormatError("the file is empty")
    number, raw = lines[0]
    head = _parse_line(number, raw.lstrip("\ufeff"))
    if head.get("type") != "session":
        raise ImportFormatError(
            f"line {number}: expected the session header "
            f'{{"type": "session", "format": "{FORMAT}", …}} — is this a memchat JSONL export?',
            line=number,
        )
    h = _Line(number, head, _SESSION_KEYS)
    fmt = h.string("format", required=True)
    if fmt != FORMAT:
        h.fail(f"unsupported format {fmt!r} (this memchat reads {FORMAT!r})")
    settings = head.get("settings", {})
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        h.fail("'settings' must be an object")
    name = h.string("name", required=True)
    assert name is not None
    if not name.strip():
        h.fail("'name' is empty")
    info = SessionInfo(
        id=0,
        name=name,
        persona=h.string("persona", default="") or "",
        model=h.string("model"),
        provider=h.string("provider"),
        memory=h.choice("memory", STRATEGIES, default="auto"),
        settings=settings,
        created=h.time("created"),
        updated=h.time("updated"),
    )
    roles = [r.value for r in Role]
    statuses = [s.value for s in _STATUSES]
    messages: list[Message] = []
    pins: list[int] = []
    spans: list[tuple[_Line, Summary]] = []
    images: list[tuple[_Line, ImageRecord]] = []
    for number, raw in lines[1:]:
        data = _parse_line(number, raw)
        kind = data.get("type")
        if kind == "summary":
            spans.append(_summary(_Line(number, data, _SUMMARY_KEYS)))
            continue
        if kind == "image":
            images.append(_image(_Line(number, data, _IMAGE_KEYS)))
            continue
        if kind != "message":
            detail = "a second session header" if kind == "session" else f"unknown line type {kind!r}"
            raise ImportFormatError(f"line {number}: {detail} (expected a message or a summary)", line=number)
        m = _Line(number, data, _MESSAGE_KEYS)
        content = m.string("content", required=True)
        assert content is not None
        if m.boolean("pinned"):
            pins.append(len(messages))
        messages.append(
            Message(
                role=Role(m.choice("role", roles)),
                content=content,
                status=Status(m.choice("status", statuses, default=Status.COMPLETE.value)),
                tokens=m.integer("tokens"),
                token_method=m.string("token_method"),
                usage=m.usage("usage"),
                model=m.string("model"),
                created=m.time("created"),
                tool_calls=_tool_calls(m),
                tool_call_id=m.string("tool_call_id"),
            )
        )
    for line, image in images:
        if not 0 <= image.after_seq <= len(messages):
            line.fail(f"the image follows message {image.after_seq}, but the file has {len(messages)} messages")
    for line, summary in spans:
        if not 1 <= summary.first_seq <= summary.last_seq <= len(messages):
            line.fail(
                f"the summary covers messages {summary.first_seq}–{summary.last_seq}, "
                f"but the file has messages 1–{len(messages)}"
                if messages
                else "a summary, but the file has no messages"
            )
    return Parsed(info, messages, [summary for _, summary in spans], pins, [image for _, image in images])


def _tool_calls(m: _Line) -> tuple[dict[str, Any], ...] | None:
    raw = m.data.get("tool_calls")
    if raw is None:
        return None
    ok = isinstance(raw, list) and all(
        isinstance(c, dict)
        and isinstance(c.get("id"), str)
        and isinstance(c.get("function"), dict)
        and isinstance(c["function"].get("name"), str)
        for c in raw
    )
    if not ok:
        m.fail("'tool_calls' must be a list of calls, each with an 'id' and a 'function' with a 'name'")
    return tuple(dict(c) for c in raw)


def _image(i: _Line) -> tuple[_Line, ImageRecord]:
    after = i.integer("after", required=True)
    params = i.data.get("params", {})
    if not isinstance(params, dict):
        i.fail("'params' must be an object")
    size = i.integer("size")
    image = ImageRecord(
        prompt=i.string("prompt", required=True) or "",
        path=i.string("path", required=True) or "",
        provider=i.string("provider", required=True) or "",
        model=i.string("model", required=True) or "",
        params=params,
        task_id=i.string("task_id"),
        mime=i.string("mime", default="image/png") or "image/png",
        size=size or 0,
        after_seq=after or 0,
        created=i.time("created"),
    )
    return i, image


def _summary(s: _Line) -> tuple[_Line, Summary]:
    first, last = s.integer("first_seq", required=True), s.integer("last_seq", required=True)
    content = s.string("content", required=True)
    tokens = s.integer("tokens", required=True)
    assert first is not None and last is not None and content is not None and tokens is not None
    if first > last:
        s.fail(f"'first_seq' ({first}) is after 'last_seq' ({last})")
    summary = Summary(
        first_seq=first,
        last_seq=last,
        content=content,
        tokens=tokens,
        token_method=s.string("token_method", default="estimate") or "estimate",
        model=s.string("model"),
        created=s.time("created"),
    )
    return s, summary


def prepare_import(text: str, name: str | None = None) -> Parsed:
    """Parse and validate an export (``name`` overrides the file's) without touching a store."""
    parsed = parse_jsonl(text)
    if name is not None:
        if not name.strip():
            raise StoreError("a session name cannot be empty")
        parsed = dataclasses.replace(parsed, info=dataclasses.replace(parsed.info, name=name))
    return parsed


def import_jsonl(store: Store, text: str, name: str | None = None) -> SessionInfo:
    """Create a session from a JSONL export (messages, summaries and pins), all or nothing.

    ``name`` overrides the name in the file. A name already taken raises ``SessionExists``.
    """
    parsed = prepare_import(text, name)
    return store.import_session(
        parsed.info, parsed.messages, summaries=parsed.summaries, pins=parsed.pins, images=parsed.images
    )


# -- the context of a call ----------------------------------------------------------------

#: one recalled message in a recall section's note (``matched #seq[ session] (score x.y), …``)
_MATCH = re.compile(r"#(\d+)(?: (.+))? \(score (-?\d+(?:\.\d+)?)\)")
_MATCH_SEPARATOR = re.compile(r", (?=#\d)")
#: the planner's own count of evicted messages; ``omitted`` says it exactly
_EVICTED_NOTE = re.compile(r"^\d+ older messages are not sent verbatim$")


def _shown(entry: ContextEntry) -> str:
    """An entry's text as people read it: a tool-calling message also names its calls."""
    calls = (entry.extra or {}).get("tool_calls") or []
    names = [f"→ {c['function']['name']}({c['function'].get('arguments') or ''})" for c in calls if "function" in c]
    return "\n".join([entry.content, *names]).strip("\n") if names else entry.content


def context_view(store: Store, info: SessionInfo, plan: ContextPlan, *, model: str) -> ContextView:
    """``plan`` described for people and programs, messages named by their numbers in the
    session (as ``/history`` and ``sessions show`` number them). Reads the session's
    messages once (an explicit request, not part of a turn)."""
    messages = store.messages(info.id)
    seqs = _numbers(messages)

    def number(seq: int | None) -> int | None:
        if seq is None:
            return None
        i = bisect.bisect_left(seqs, seq)
        return i + 1 if i < len(seqs) and seqs[i] == seq else None

    others: dict[str, list[int]] = {}

    def number_in(session: str, seq: int) -> int | None:
        if session == info.name:
            return number(seq)
        if session not in others:
            found = store.find_session(session)
            others[session] = _numbers(store.messages(found.id)) if found is not None else []
        i = bisect.bisect_left(others[session], seq)
        return i + 1 if i < len(others[session]) and others[session][i] == seq else None

    entries = [
        ContextEntryView(
            index=i,
            role=e.role.value,
            kind=e.kind,
            tokens=e.tokens,
            message=number(e.seq) if e.kind == "verbatim" else None,
            content=_shown(e),
        )
        for i, e in enumerate(plan.entries, 1)
    ]
    verbatim = {e["message"] for e in entries if e["message"] is not None}
    sent_pins = [p for p in store.pins(info.id) if number(p.seq) not in verbatim] if plan.sections else []
    sections: list[ContextSectionView] = []
    summarized: set[int] = set()
    pinned: set[int] = set()
    recalled: set[int] = set()
    for section in plan.sections:
        view = ContextSectionView(
            kind=section.kind,
            tokens=section.tokens,
            note=section.note,
            covers=None,
            messages=[],
            matches=[],
            text=section.text,
            items=[
                RecallItemView(
                    kind=item.kind,
                    text=item.text,
                    tokens=item.tokens,
                    score=float(item.score),
                    why=item.why,
                    memory_id=item.memory_id,
                    session=item.session,
                    seq=item.seq,
                    created=format_time(item.created),
                )
                for item in section.items
            ],
        )
        if section.kind == "summary":
            summary = store.latest_summary(info.id)
            span = covered(seqs, summary.first_seq, summary.last_seq) if summary is not None else None
            if span is not None:
                view["covers"] = [span[0], span[1]]
                summarized.update(range(span[0], span[1] + 1))
        elif section.kind == "pinned":
            view["messages"] = [n for n in (number(p.seq) for p in sent_pins) if n is not None]
            pinned.update(view["messages"])
        elif section.kind == "recall":
            for item in section.items:
                if item.kind != "turn" or item.seq is None:
                    continue
                session = item.session or info.name
                n = number_in(session, item.seq)
                view["matches"].append(RecallMatchView(session=session, message=n, score=float(item.score)))
                if session == info.name and n is not None:
                    recalled.add(n)
        sections.append(view)
    omitted = set(range(1, len(messages) + 1)) - verbatim
    span = covered(seqs, *plan.needs_summary) if plan.needs_summary is not None else None
    budget = plan.budget
    return ContextView(
        session=info.name,
        strategy=plan.strategy,
        model=model,
        tokens=plan.tokens,
        budget=BudgetView(
            window=budget.window,
            reserve=budget.reserve,
            tools=budget.tools,
            primer=budget.primer,
            overhead=budget.overhead,
            limit=budget.limit,
            used=plan.tokens,
        ),
        entries=entries,
        sections=sections,
        omitted=OmittedView(
            total=len(omitted),
            summarized=len(omitted & summarized),
            pinned=len(omitted & pinned),
            recalled=len(omitted & recalled),
            dropped=len(omitted - summarized - pinned - recalled),
        ),
        needs_summary=[span[0], span[1]] if span is not None else None,
        notes=[n for n in plan.notes if not _EVICTED_NOTE.match(n)],
    )
