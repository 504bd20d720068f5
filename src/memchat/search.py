"""Search the words, not just names: the sessions whose messages hold the words a person typed,
found through the store's full-text index (FTS5 trigrams on SQLite, ``pg_trgm`` on PostgreSQL:
English words and Chinese alike), with a snippet of each matching message.

``search_sessions`` is ``Sessions.search``'s engine; every interface shows its ``Found``: the
API's ``GET /api/sessions?q=``, ``memchat sessions search``, the REPL's ``/search`` and the page's
sidebar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from memchat.domain import Role, SessionInfo
from memchat.stores.base import Store

#: the words of a query looked for, at most
MAX_TERMS = 8
#: matching messages read from the index per search (the newest of each word's matches)
MAX_HITS = 400
#: snippets kept per session, and their length in characters (around the first match)
SNIPPETS = 3
BEFORE, AFTER = 40, 110


@dataclass(frozen=True)
class Snippet:
    """A matching message: its id (to open the session at it), role, and the text around the
    match, with where the query's words are in that text (``marks``: start, end)."""

    message_id: int
    role: Role
    text: str
    marks: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class SessionMatch:
    session: SessionInfo
    #: its matching messages, best first (empty when only its name, title or persona matched)
    snippets: list[Snippet] = field(default_factory=list)


@dataclass(frozen=True)
class Found:
    query: str
    #: the page of sessions asked for, best first
    sessions: list[SessionMatch]
    #: how many sessions matched in all
    total: int


def terms_of(query: str) -> list[str]:
    """The words of ``query`` (a quoted phrase stays one), each once, case-folded."""
    found: list[str] = []
    for quoted, word in re.findall(r'"([^"]+)"|(\S+)', query):
        term = " ".join((quoted or word).split()).casefold()
        if term and term not in found:
            found.append(term)
    return found[:MAX_TERMS]


def _marks(text: str, terms: list[str]) -> tuple[tuple[int, int], ...]:
    folded = text.casefold()
    spans: list[tuple[int, int]] = []
    for term in terms:
        start = folded.find(term)
        while start >= 0:
            spans.append((start, start + len(term)))
            start = folded.find(term, start + len(term))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return tuple(merged)


def snippet(text: str, terms: list[str]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The part of ``text`` (on one line) around its first match, "…" where cut, and the spans of
    the terms in it."""
    line = " ".join(text.split())
    marks = _marks(line, terms)
    first = marks[0][0] if marks else 0
    start = max(0, first - BEFORE)
    if start > 0:  # begin at a word, when one begins near
        space = line.find(" ", start, first)
        start = space + 1 if space >= 0 else start
    end = min(len(line), max(first + AFTER, start + BEFORE + AFTER))
    if end < len(line):
        space = line.rfind(" ", first, end)
        end = space if space > first else end
    cut = line[start:end]
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(line) else ""
    shown = prefix + cut + suffix
    return shown, _marks(shown, terms)


def _matched(text: str, terms: list[str]) -> int:
    folded = text.casefold()
    return sum(1 for t in terms if t in folded)


def search_sessions(store: Store, query: str, *, limit: int = 20, offset: int = 0) -> Found:
    """The owner's sessions matching ``query``, best first: those with a message holding every
    word before those holding some, then by how well (the index's score) and how recently."""
    terms = terms_of(query)
    if not terms:
        return Found(query, [], 0)
    sessions = {s.name: s for s in store.list_sessions()}
    # per session: (words matched by its best message or its name, score, its matching messages)
    ranked: dict[int, tuple[int, float, list[tuple[int, float, Snippet]]]] = {}
    for hit in store.search(terms, session=None, limit=MAX_HITS):
        info = sessions.get(hit.session)
        m = hit.message
        if info is None or m.id is None or m.role not in (Role.USER, Role.ASSISTANT):
            continue
        matched = _matched(m.content, terms)
        if not matched:
            continue
        text, marks = snippet(m.content, terms)
        best, score, snippets = ranked.get(info.id, (0, 0.0, []))
        snippets.append((matched, hit.score, Snippet(m.id, m.role, text, marks)))
        ranked[info.id] = (max(best, matched), score + hit.score, snippets)
    for info in sessions.values():  # the name, title or persona alone
        matched = max(_matched(info.name, terms), _matched(info.label, terms), _matched(info.persona, terms))
        if matched:
            best, score, snippets = ranked.get(info.id, (0, 0.0, []))
            ranked[info.id] = (max(best, matched), score + 1.0, snippets)
    by_id = {s.id: s for s in sessions.values()}

    def when(sid: int) -> float:
        updated = by_id[sid].updated
        return updated.timestamp() if updated is not None else 0.0

    order = sorted(ranked, key=lambda sid: (-ranked[sid][0], -ranked[sid][1], -when(sid)))
    page = []
    for sid in order[offset : offset + limit]:
        snippets = sorted(ranked[sid][2], key=lambda s: (-s[0], -s[1], -s[2].message_id))
        page.append(SessionMatch(by_id[sid], [s for _, _, s in snippets[:SNIPPETS]]))
    return Found(query, page, len(order))
