"""Column lists and time encoding shared by the SQL store's modules (both engines)."""

from __future__ import annotations

from datetime import UTC, datetime

MESSAGE_COLUMNS = (
    "id, seq, role, content, status, tokens, token_method, usage, model, created, tool_calls, tool_call_id"
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
