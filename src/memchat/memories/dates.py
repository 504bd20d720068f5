"""Dates in a message's words ("yesterday", "last Friday", "on March 3", "上周五", "3月3日"),
resolved against the day the message was written."""

from __future__ import annotations

from datetime import date


def resolve_date(text: str, today: date) -> date | None:
    """The day ``text`` says something happened (or will), or None when it names none."""
    return None
