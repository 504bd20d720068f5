"""The tools memchat ships: ``now`` (the date the model cannot know) and ``search_history``
(the session's — and, if allowed, the user's other sessions' — older messages)."""

from __future__ import annotations

import json

from memchat.clock import WEEKDAYS, utc_offset, zone_name
from memchat.tools.base import Tool, ToolContext, make_tool


def now(context: ToolContext) -> str:
    """The current date, time, weekday and time zone of the user."""
    moment = context.now()
    return json.dumps(
        {
            "date": moment.strftime("%Y-%m-%d"),
            "time": moment.strftime("%H:%M:%S"),
            "weekday": WEEKDAYS["en"][moment.weekday()],
            "timezone": zone_name(moment),
            "utc_offset": utc_offset(moment),
            "iso": moment.isoformat(timespec="seconds"),
        },
        ensure_ascii=False,
    )


def search_history(query: str, context: ToolContext, limit: int = 5) -> str:
    """Search the earlier messages of this conversation (and, when allowed, the user's other
    conversations) for words or phrases; returns the best matches, newest first on ties.

    Args:
        query: the words to look for (any language; Chinese works)
        limit: how many messages to return, 1 to 20
    """
    from memchat.memory.recall import query_terms, rank

    if context.store is None or context.session is None:
        return "error: no conversation to search"
    terms = query_terms(query) or ([query.strip()] if query.strip() else [])
    if not terms:
        return "error: the query has no words to search for"
    limit = max(1, min(int(limit), 20))
    hits = context.store.search(terms, session=context.session.id, limit=40)
    if context.search_all:
        hits += context.store.search(terms, session=None, exclude_session=context.session.id, limit=40)
    ranked = rank(hits, terms)[:limit]
    if not ranked:
        return "no earlier message matches"
    lines = []
    for h in ranked:
        where = "" if h.session == context.session.name else f" {h.session}"
        text = " ".join(h.message.content.split())
        lines.append(f"[#{h.message.seq}{where} {h.message.role.value}] {text[:400]}")
    return "\n".join(lines)


def builtin_tools() -> list[Tool]:
    return [make_tool(now), make_tool(search_history)]
