"""Session import: parse and validate a whole JSONL export before anything is written, then
create the session, its messages, summaries, pins and images in one transaction
(``Store.import_session``), so a bad file never leaves a half-written session.
``export → import → export`` gives the same bytes (apart from the name, when renamed)."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

from memchat.attachments.sniff import media_type
from memchat.domain import Attachment, ImageRecord, Message, Role, SessionInfo, Status, Summary, Usage
from memchat.errors import AttachmentError, ImportFormatError, StoreError
from memchat.memory.plan import STRATEGIES
from memchat.serialization.wire import FORMAT, ImageLine, MessageRecord, SessionRecord, SummaryRecord, VersionRecord
from memchat.stores.base import ImportedVersion, Store

#: statuses an export may hold (``streaming`` rows are in flight and never exported)
_STATUSES = (Status.COMPLETE, Status.INTERRUPTED, Status.STOPPED)

_SESSION_KEYS = frozenset(SessionRecord.__annotations__)
_MESSAGE_KEYS = frozenset(MessageRecord.__annotations__)
_SUMMARY_KEYS = frozenset(SummaryRecord.__annotations__)
_IMAGE_KEYS = frozenset(ImageLine.__annotations__)
_VERSION_KEYS = frozenset(VersionRecord.__annotations__)


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
    #: the versions of points that are not shown, where each began among the messages
    versions: list[ImportedVersion] = field(default_factory=list)


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
    versions: list[tuple[_Line, ImportedVersion, int]] = []  # and how many version messages came before
    held = 0  # messages of the version lines so far
    for number, raw in lines[1:]:
        data = _parse_line(number, raw)
        kind = data.get("type")
        if kind == "summary":
            spans.append(_summary(_Line(number, data, _SUMMARY_KEYS)))
            continue
        if kind == "image":
            images.append(_image(_Line(number, data, _IMAGE_KEYS)))
            continue
        if kind == "version":
            line = _Line(number, data, _VERSION_KEYS)
            version = _version(line, len(messages), roles, statuses)
            versions.append((line, version, held))
            held += len(version.messages)
            continue
        if kind != "message":
            detail = "a second session header" if kind == "session" else f"unknown line type {kind!r}"
            raise ImportFormatError(f"line {number}: {detail} (expected a message or a summary)", line=number)
        m = _Line(number, data, _MESSAGE_KEYS)
        if m.boolean("pinned"):
            pins.append(len(messages))
        messages.append(_message(m, roles, statuses))
    for line, version, before in versions:
        after = version.after
        if after > len(messages) + before or (after <= len(messages) and after > version.position):
            line.fail(f"the version follows message {after}, which does not come before it")
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
    return Parsed(
        info,
        messages,
        [summary for _, summary in spans],
        pins,
        [image for _, image in images],
        [version for _, version, _ in versions],
    )


def _message(m: _Line, roles: Sequence[str], statuses: Sequence[str]) -> Message:
    content = m.string("content", required=True)
    assert content is not None
    return Message(
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
        attachments=_attachments(m),
    )


def _attachments(m: _Line) -> tuple[Attachment, ...]:
    """A message's files: each one's bytes must match its ``sha256`` and ``size``, and be of its
    type (read from the bytes again: an edited export cannot smuggle a file in as another type)."""
    raw = m.data.get("attachments")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        m.fail("'attachments' must be a list")
    found = []
    for k, a in enumerate(raw):
        if not isinstance(a, dict):
            m.fail(f"attachments[{k}] must be an object")
        name, kind, size, digest, text = (a.get(x) for x in ("name", "media_type", "size", "sha256", "data"))
        if not (isinstance(name, str) and name and isinstance(kind, str) and isinstance(digest, str)):
            m.fail(f"attachments[{k}] needs a name, a media_type and a sha256")
        if isinstance(size, bool) or not isinstance(size, int) or not isinstance(text, str):
            m.fail(f"attachments[{k}] needs a size and its data (base64)")
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            m.fail(f"attachments[{k}] ({name}): the data is not base64")
        if hashlib.sha256(data).hexdigest() != digest or len(data) != size:
            m.fail(f"attachments[{k}] ({name}): the data does not match its sha256 and size")
        try:
            media_type(name, data, kind)
        except AttachmentError as exc:
            m.fail(f"attachments[{k}]: {exc.detail}")
        found.append(Attachment(name, kind, size, digest, data))
    return tuple(found)


def _version(v: _Line, position: int, roles: Sequence[str], statuses: Sequence[str]) -> ImportedVersion:
    after = v.integer("after", required=True)
    assert after is not None
    records = v.required("messages")
    if not isinstance(records, list) or not records:
        v.fail("'messages' must be a list of one message or more")
    found: list[Message] = []
    pins: list[int] = []
    for k, record in enumerate(records):
        if not isinstance(record, dict):
            v.fail(f"messages[{k}] must be an object")
        m = _Line(v.number, record, _MESSAGE_KEYS - {"type"})
        if m.boolean("pinned"):
            pins.append(k)
        found.append(_message(m, roles, statuses))
    return ImportedVersion(position, after, tuple(found), tuple(pins))


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
        parsed.info,
        parsed.messages,
        summaries=parsed.summaries,
        pins=parsed.pins,
        images=parsed.images,
        versions=parsed.versions,
    )
