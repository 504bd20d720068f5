"""JSON shapes memchat writes and reads, and session export/import.

Every JSON shape that leaves the process is a ``TypedDict`` here: the export format
(``SessionRecord`` then one ``MessageRecord`` per line, format ``memchat/1``), and the
``--json`` output of ``memchat sessions list``/``show`` and ``memchat config``.

An export holds no ids and no secrets. Import parses and validates the whole file before
it writes anything, then creates the session and its messages in one transaction
(``Store.import_session``), so a bad file never leaves a half-written session.
``export → import → export`` gives the same bytes (apart from the name, when renamed).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn, TypedDict

from memchat.domain import Message, Role, SessionInfo, Status, Usage
from memchat.errors import ImportFormatError, StoreError
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


def message_record(msg: Message) -> MessageRecord:
    return MessageRecord(
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


def session_summary(info: SessionInfo) -> SessionSummary:
    return SessionSummary(
        name=info.name,
        messages=info.message_count,
        model=info.model,
        provider=info.provider,
        created=format_time(info.created),
        updated=format_time(info.updated),
    )


def session_view(info: SessionInfo, messages: Sequence[Message]) -> SessionView:
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
    """The session as JSONL: a ``session`` line, then one ``message`` line per message."""
    info = store.get_session(name)
    lines = [_dump(session_record(info))]
    lines.extend(_dump(message_record(m)) for m in store.messages(info.id))
    return "\n".join(lines) + "\n"


def export_markdown(store: Store, name: str | int) -> str:
    """The session as a Markdown transcript, for people (not re-importable)."""
    info = store.get_session(name)
    messages = store.messages(info.id)
    out = [f"# {info.name}", ""]
    facts = [
        ("model", info.model),
        ("provider", info.provider),
        ("created", format_time(info.created)),
        ("updated", format_time(info.updated)),
        ("messages", str(len(messages))),
    ]
    out.extend(f"- **{key}**: {value}" for key, value in facts if value)
    out.append("")
    if info.persona:
        out += ["## Persona", "", info.persona.rstrip("\n"), ""]
    for i, m in enumerate(messages, 1):
        notes = [n for n in (m.model if m.role is Role.ASSISTANT else None, _tokens(m.tokens)) if n]
        if m.status is not Status.COMPLETE:
            notes.append(f"*{m.status.value}*")
        title = f"## {i}. {m.role.value.capitalize()}"
        if notes:
            title += " · " + " · ".join(notes)
        out += [title, "", m.content.rstrip("\n") if m.content else "*(empty)*", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _tokens(tokens: int | None) -> str | None:
    if tokens is None:
        return None
    return f"{tokens} token" + ("" if tokens == 1 else "s")


# -- import -------------------------------------------------------------------------------

_SESSION_KEYS = frozenset(SessionRecord.__annotations__)
_MESSAGE_KEYS = frozenset(MessageRecord.__annotations__)


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

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            self.fail(f"{key!r} must be a whole number ≥ 0 or null, not {value!r}")
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
        value = self.string(key, required=default is None, default=default)
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
        for field in ("prompt_tokens", "completion_tokens"):
            n = value.get(field, 0)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                self.fail(f"{key}.{field} must be a whole number ≥ 0, not {n!r}")
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


def parse_jsonl(text: str) -> tuple[SessionInfo, list[Message]]:
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
        memory=h.string("memory", default="full") or "full",
        settings=settings,
        created=h.time("created"),
        updated=h.time("updated"),
    )
    roles = [r.value for r in Role]
    statuses = [s.value for s in _STATUSES]
    messages: list[Message] = []
    for number, raw in lines[1:]:
        data = _parse_line(number, raw)
        kind = data.get("type")
        if kind != "message":
            detail = "a second session header" if kind == "session" else f"unknown line type {kind!r}"
            raise ImportFormatError(f"line {number}: {detail} (expected a message)", line=number)
        m = _Line(number, data, _MESSAGE_KEYS)
        content = m.string("content", required=True)
        assert content is not None
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
            )
        )
    return info, messages


def prepare_import(text: str, name: str | None = None) -> tuple[SessionInfo, list[Message]]:
    """Parse and validate an export (``name`` overrides the file's) without touching a store."""
    info, messages = parse_jsonl(text)
    if name is not None:
        if not name.strip():
            raise StoreError("a session name cannot be empty")
        info = dataclasses.replace(info, name=name)
    return info, messages


def import_jsonl(store: Store, text: str, name: str | None = None) -> SessionInfo:
    """Create a session from a JSONL export, all or nothing.

    ``name`` overrides the name in the file. A name already taken raises ``SessionExists``.
    """
    info, messages = prepare_import(text, name)
    return store.import_session(info, messages)
