"""The PostgreSQL store (``pip install "memchat[postgres]"``): ``SQLStore`` over
``PostgresDialect`` (``pg_dialect.py``: a pool of connections, one advisory lock for writers, the
schema ``pg_migrations.py`` applied under another), plus what differs from SQLite's: full-text
search. ``pg_trgm`` finds substrings instead of FTS5's trigrams; ``tsvector`` and ``ts_rank``
rank the word search of messages and memories instead of FTS5's BM25.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from memchat.domain import Memory, SearchHit, SessionKey
from memchat.stores.columns import MESSAGE_COLUMNS
from memchat.stores.pg_dialect import PostgresDialect
from memchat.stores.sql import SQLStore
from memchat.stores.sql_memories import MEMORY_COLUMNS, MEMORY_FROM, memory_from_row, search_form
from memchat.stores.sql_memory import NOT_INCOGNITO, PER_TERM


class PostgresStore(SQLStore):
    """Sessions and messages in a PostgreSQL database (``postgresql://…``)."""

    def __init__(self, url: str, *, migrate: bool | None = True) -> None:
        """``migrate``: as ``SQLiteStore``'s. ``ConfigError`` without the extra installed,
        ``StoreError`` when the database cannot be reached."""
        super().__init__(PostgresDialect(url), migrate=migrate)

    # -- search: pg_trgm instead of FTS5 ------------------------------------------------------

    def search(
        self,
        terms: Sequence[str],
        *,
        session: SessionKey | None = None,
        before_seq: int | None = None,
        exclude_session: SessionKey | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """As ``SQLiteStore.search``: one bounded query per term, newest matches first, scored by
        how many and how rare the terms each message matches. Terms of three characters or more
        use the trigram index; two-character ones (Chinese words) cannot, and are looked for by
        scanning the messages in scope, newest first (a trigram index needs three characters)."""
        terms = [t for t in terms if t]
        if not terms:
            return []
        cols = ", ".join("m." + c.strip() for c in MESSAGE_COLUMNS.split(","))
        scope, params = self._scope(session, before_seq, exclude_session)
        scores: dict[int, float] = {}
        for t in terms:
            pattern = "%" + t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            ids = self._read(
                "SELECT m.id FROM messages m JOIN sessions s ON s.id = m.session_id "
                f"WHERE m.content ILIKE ? ESCAPE '\\' AND m.status != 'streaming'{scope} "
                "ORDER BY m.id DESC LIMIT ?",
                (pattern, *params, PER_TERM),
            )
            weight = math.log(1 + PER_TERM / len(ids)) * (1 + len(t) / 6) if ids else 0.0
            for (mid,) in ids:
                scores[int(mid)] = scores.get(int(mid), 0.0) + weight
        best = sorted(scores, key=lambda mid: (-scores[mid], -mid))[:limit]
        if not best:
            return []
        rows = self._read(
            f"SELECT {cols}, s.name FROM messages m JOIN sessions s ON s.id = m.session_id "
            f"WHERE m.id IN ({', '.join('?' * len(best))})",
            best,
        )
        found = [SearchHit(self._message(r[:-1]), r[-1], scores[int(r[0])]) for r in rows]
        return sorted(found, key=lambda h: -(h.message.seq or 0))

    # -- ranked word search: tsvector instead of FTS5's BM25 -----------------------------------

    def search_words(
        self,
        words: Sequence[str],
        *,
        session: SessionKey | None = None,
        before_seq: int | None = None,
        exclude_session: SessionKey | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        """As ``SQLiteStore.search_words``, over the GIN-indexed ``words`` column (the English
        ``tsvector`` of ``COALESCE(search_text, content)``): settled messages matching any of
        ``words`` (each word a phrase of its own, English-stemmed), best first by ``ts_rank``
        (normalised by the message's length, as BM25 is, but without BM25's idf: every word
        weighs the same); ``score`` higher is better."""
        query, query_params = _tsquery(words)
        if not query or limit <= 0:
            return []
        scope, params = self._scope(session, before_seq, exclude_session)
        if session is None:
            scope += f" AND {NOT_INCOGNITO}"
        cols = ", ".join("m." + c.strip() for c in MESSAGE_COLUMNS.split(","))
        rows = self._read(
            f"SELECT {cols}, s.name, ts_rank({_MESSAGE_VECTOR}, q.query, {_RANK_NORMALIZATION}) AS score "
            f"FROM ({query}) AS q (query), messages m JOIN sessions s ON s.id = m.session_id "
            f"WHERE {_MESSAGE_VECTOR} @@ q.query AND m.status != 'streaming'{scope} "
            "ORDER BY score DESC, m.id DESC LIMIT ?",
            (*query_params, *params, int(limit)),
        )
        return [SearchHit(self._message(r[:-2]), r[-2], float(r[-1])) for r in rows]

    def search_memories(self, words: Sequence[str], *, limit: int = 20) -> list[tuple[Memory, float]]:
        """As ``SQLiteStore.search_memories``, over the GIN-indexed ``words`` column of the
        memories (their English ``tsvector``), ranked by ``ts_rank`` (higher is better)."""
        query, query_params = _tsquery([search_form(str(w)) for w in words])
        if not query or limit <= 0:
            return []
        rows = self._read(
            f"SELECT {MEMORY_COLUMNS}, ts_rank({_MEMORY_VECTOR}, q.query, {_RANK_NORMALIZATION}) AS score "
            f"FROM ({query}) AS q (query), {MEMORY_FROM} "
            f"WHERE {_MEMORY_VECTOR} @@ q.query AND m.owner_id = ? AND m.ended IS NULL "
            "ORDER BY score DESC, m.id DESC LIMIT ?",
            (*query_params, self.owner, int(limit)),
        )
        return [(memory_from_row(r[:-1]), float(r[-1])) for r in rows]


#: the stored, GIN-indexed ``tsvector`` of ``COALESCE(search_text, content)`` (``pg_migrations.py``)
_MESSAGE_VECTOR = "m.words"
_MEMORY_VECTOR = "m.words"
#: ts_rank's normalisation: divide by 1 + log(document length) (long texts do not win by length)
_RANK_NORMALIZATION = 1


def _tsquery(words: Sequence[str]) -> tuple[str, list[str]]:
    """A ``SELECT`` of the tsquery matching any of ``words``, and its parameters: each word goes
    through ``phraseto_tsquery`` as a parameter (plain text: no word is read as tsquery syntax;
    a word of several tokens is their phrase, as a quoted FTS5 phrase is), joined with ``||``.
    ("", []) when no word is left."""
    kept = [w for w in (str(w).strip() for w in words) if w]
    if not kept:
        return "", []
    return "SELECT " + " || ".join("phraseto_tsquery('english', ?)" for _ in kept), kept
