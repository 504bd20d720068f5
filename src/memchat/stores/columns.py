"""Column lists and time encoding shared by the SQL store's modules (both engines)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from memchat.domain import Attachment, Message, Role, Status, Usage

MESSAGE_COLUMNS = (
    "id, seq, role, content, status, tokens, token_method, usage, model, created, tool_calls, tool_call_id, attachments"
)
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_text() -> str:
    """The current UTC time as stored (sortable text)."""
    return datetime.now(UTC).strftime(_FORMAT)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def format_time(value: datetime | None) -> str:
    """A time as stored; ``None`` means now; a naive time is taken as UTC."""
    if value is None:
        return now_text()
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(_FORMAT)


def message_from_row(row: Sequence[Any]) -> Message:
    """A message read with ``MESSAGE_COLUMNS`` (from ``messages`` or ``message_versions``)."""
    return Message(
        id=row[0],
        seq=row[1],
        role=Role(row[2]),
        content=row[3],
        status=Status(row[4]),
        tokens=row[5],
        token_method=row[6],
        usage=Usage.from_dict(json.loads(row[7])) if row[7] else None,
        model=row[8],
        created=parse_time(row[9]),
        tool_calls=tuple(json.loads(row[10])) if row[10] else None,
        tool_call_id=row[11],
        attachments=attachments_from_json(row[12]),
    )


def attachments_to_json(attachments: Sequence[Attachment]) -> str | None:
    """``messages.attachments``: the references (name, type, size, hash) in order; the bytes are
    in the ``attachments`` table, once per owner and hash."""
    return json.dumps([a.to_record() for a in attachments], ensure_ascii=False) if attachments else None


def attachments_from_json(text: str | None) -> tuple[Attachment, ...]:
    if not text:
        return ()
    try:
        records = json.loads(text)
    except ValueError:
        return ()
    found = []
    for r in records if isinstance(records, list) else ():
        if isinstance(r, dict) and isinstance(r.get("sha256"), str):
            found.append(
                Attachment(
                    str(r.get("name") or "file"), str(r.get("media_type") or ""), int(r.get("size") or 0), r["sha256"]
                )
            )
    return tuple(found)
