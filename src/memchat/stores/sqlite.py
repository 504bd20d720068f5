"""SQLite store: the embedded default (one file, or ``":memory:"``).

``SQLStore`` over ``SQLiteDialect`` (``sqlite_dialect.py``: WAL, ``BEGIN IMMEDIATE`` for every
write with a bounded retry when the file stays locked; the schema is ``migrations.py``), plus
what only SQLite has: full-text search with FTS5. Substring search uses the ``trigram``
tokenizer, so substrings of Chinese text match; a two-character term (a Chinese word) is looked
up as the indexed trigrams that start with it (found in the index's vocabulary), plus a bounded
``LIKE`` scan of the newest messages for the occurrences that end a message. The ranked word
search of messages and memories uses FTS5 ``porter unicode61`` indexes ranked with BM25.
"""

from __future__ import annotations

import math
import sqlite3
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memchat.domain import Memory, SearchHit, SessionKey
from memchat.memory.terms import fts_query
from memchat.stores.columns import MESSAGE_COLUMNS
from memchat.stores.sql import LOCAL_USER as LOCAL_USER
from memchat.stores.sql import SQLStore
from memchat.stores.sql_memories import MEMORY_COLUMNS, MEMORY_SESSION, memory_from_row, search_form
from memchat.stores.sql_memory import NOT_INCOGNITO, PER_TERM
from memchat.stores.sqlite_dialect import SQLiteDialect

#: messages read per query word (the newest that hold it): a word held by more is common
PER_WORD = 300
#: the best candidates (by the sum of their words' idf) scored with BM25 proper
CANDIDATES = 150
#: store → (messages, average tokens) for BM25's length normalisation (dropped with the store)
_WORD_STATS: weakref.WeakKeyDictionary[object, tuple[int, float]] = weakref.WeakKeyDictionary()
#: two-character terms are also looked for (by LIKE) among this many of the newest messages
SHORT_TERM_SPAN = 4_000
#: indexed trigrams a two-character term expands to, at most (the most frequent ones)
EXPANSIONS = 48
#: queued index changes applied per transaction (``settle_search``): a deleted session's
#: thousands of messages never hold the write lock for long at once
SETTLE_BATCH = 500


def _phrase(term: str) -> str:
    """``term`` as an FTS5 phrase (a substring for the trigram tokenizer)."""
    return '"' + term.replace('"', '""') + '"'


class SQLiteStore(SQLStore):
    """Sessions and messages in one SQLite file (or ``":memory:"``)."""

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        connection: sqlite3.Connection | None = None,
        migrate: bool | None = True,
    ) -> None:
        """``migrate``: True applies pending migrations, False refuses a database that needs
        some, None leaves it as it is (``memchat db``)."""
        super().__init__(SQLiteDialect(path, connection=connection), migrate=migrate)

    @classmethod
    def from_url(cls, url: str, *, migrate: bool | None = True) -> SQLiteStore:
        for prefix in ("sqlite:///", "sqlite://"):
            if url.startswith(prefix):
                return cls(url[len(prefix) :] or ":memory:", migrate=migrate)
        return cls(url, migrate=migrate)

    def _bulk_written(self) -> None:
        self.settle_search()  # an import's indexing is its own (the first search after 20,000 took 0.6 s)

    # -- search: FTS5 ---------------------------------------------------------------------

    def settle_search(self, limit: int | None = None) -> int:
        """Apply the full-text indexes' backlog (m015: what changes to messages queued for them),
        oldest first, ``limit`` changes per transaction (None: all of it); how many were applied.
        The agent's ``QuietWorker`` calls it when the turns leave room, an import or a fork at its
        end, and a search first whenever what waits could be found (``_settle_for``), so a search
        always sees every settled message. Cheap when there is nothing to do (one indexed read)."""
        applied = 0
        while self._read("SELECT 1 FROM search_backlog LIMIT 1"):
            with self._write() as db:
                rows = db.execute(
                    "SELECT n, message_id, old_content, old_words, new_content, new_words FROM search_backlog "
                    "ORDER BY n LIMIT ?",
                    (limit or SETTLE_BATCH,),
                ).fetchall()
                for _, mid, old_content, old_words, new_content, new_words in rows:
                    if old_content is not None:
                        db.execute(
                            "INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', ?, ?)",
                            (mid, old_content),
                        )
                        db.execute(
                            "INSERT INTO messages_words (messages_words, rowid, words) VALUES ('delete', ?, ?)",
                            (mid, old_words),
                        )
                    if new_content is not None:
                        db.execute("INSERT INTO messages_fts (rowid, content) VALUES (?, ?)", (mid, new_content))
                        db.execute("INSERT INTO messages_words (rowid, words) VALUES (?, ?)", (mid, new_words))
                if rows:
                    db.execute("DELETE FROM search_backlog WHERE n <= ?", (rows[-1][0],))
            applied += len(rows)
            if limit is not None:
                break
        return applied

    def _settle_for(
        self, session: SessionKey | None, before_seq: int | None, exclude_session: SessionKey | None
    ) -> None:
        """Apply the index backlog before a search that could find what it holds. A search of the
        user's other sessions cannot find the current session's messages, nor a search of a
        session's older messages its newest: the turn that just ended (its question and reply)
        is left for a quiet moment. Anything else waiting (a message of another session, one
        removed), and the whole queue is applied, in order."""
        if not self._read("SELECT 1 FROM search_backlog LIMIT 1"):
            return
        params: list[Any] = []
        if session is not None and before_seq is not None:
            irrelevant, params = "m.session_id != ? OR m.seq >= ?", [self._sid(session), before_seq]
        elif session is not None:
            irrelevant, params = "m.session_id != ?", [self._sid(session)]
        elif exclude_session is not None:
            irrelevant, params = "m.session_id = ?", [self._sid(exclude_session)]
        else:
            irrelevant = "0"
        matters = self._read(
            "SELECT 1 FROM search_backlog b LEFT JOIN messages m ON m.id = b.message_id "
            f"WHERE m.id IS NULL OR NOT ({irrelevant}) LIMIT 1",
            params,
        )
        if matters:
            self.settle_search()

    def search(
        self,
        terms: Sequence[str],
        *,
        session: SessionKey | None = None,
        before_seq: int | None = None,
        exclude_session: SessionKey | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Settled messages containing any of ``terms`` (case-insensitive substrings): in
        ``session`` before ``before_seq``, or with ``session=None`` in all of the owner's
        sessions but ``exclude_session``. Terms of three characters or more use the trigram
        index; two-character ones (Chinese words) the indexed trigrams that start with them,
        and a ``LIKE`` scan of the newest ``SHORT_TERM_SPAN`` sequence numbers (for a word
        that ends a message), so the cost stays bounded. Returned newest first; the caller
        ranks them."""
        long_terms = [t for t in terms if len(t) >= 3]
        short_terms = [t for t in terms if 0 < len(t) < 3]
        if not long_terms and not short_terms:
            return []
        self._settle_for(session, before_seq, exclude_session)
        cols = ", ".join("m." + c.strip() for c in MESSAGE_COLUMNS.split(","))
        scope, params = self._scope(session, before_seq, exclude_session)
        found: dict[int, SearchHit] = {}
        # One bounded query per term, newest matches first (FTS5 walks its doclist backwards
        # and stops at the LIMIT): a term found in more than PER_TERM messages is common, and
        # only its newest matches are candidates. One OR query ranked by bm25 would score
        # every match, which grows with the history (~50 ms at 20,000 messages).
        queries = [(t, _phrase(t)) for t in long_terms]
        queries += [(t, q) for t in short_terms if len(t) == 2 and (q := self._expand(t))]
        scores: dict[int, float] = {}
        for t, query in queries:
            ids = self._read(
                "SELECT m.id FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN sessions s ON s.id = m.session_id "
                f"WHERE messages_fts MATCH ? AND m.status != 'streaming'{scope} "
                "ORDER BY messages_fts.rowid DESC LIMIT ?",
                (query, *params, PER_TERM),
            )
            weight = math.log(1 + PER_TERM / len(ids)) * (1 + len(t) / 6) if ids else 0.0
            for (mid,) in ids:
                scores[mid] = scores.get(mid, 0.0) + weight
        best = sorted(scores, key=lambda mid: (-scores[mid], -mid))[:limit]
        if best:
            rows = self._read(
                f"SELECT {cols}, s.name FROM messages m JOIN sessions s ON s.id = m.session_id "
                f"WHERE m.id IN ({', '.join('?' * len(best))})",
                best,
            )
            for r in rows:
                msg = self._message(r[:-1])
                found[msg.id or 0] = SearchHit(msg, r[-1], scores[msg.id or 0])
        if short_terms:
            likes = " OR ".join("m.content LIKE ? ESCAPE '\\'" for _ in short_terms)
            escaped = ["%" + t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for t in short_terms]
            span = ""
            if session is not None:
                top = before_seq if before_seq is not None else self.session_last_seq(session) + 1
                span = f" AND m.seq >= {int(top) - SHORT_TERM_SPAN}"
            rows = self._read(
                f"SELECT {cols}, s.name FROM messages m JOIN sessions s ON s.id = m.session_id "
                f"WHERE ({likes}) AND m.status != 'streaming'{scope}{span} ORDER BY m.seq DESC LIMIT ?",
                (*escaped, *params, limit),
            )
            for r in rows:
                msg = self._message(r[:-1])
                found.setdefault(msg.id or 0, SearchHit(msg, r[-1], 0.0))
        return sorted(found.values(), key=lambda h: -(h.message.seq or 0))

    def search_words(
        self,
        words: Sequence[str],
        *,
        session: SessionKey | None = None,
        before_seq: int | None = None,
        exclude_session: SessionKey | None = None,
        limit: int = 50,
    ) -> list[SearchHit]:
        """Settled messages ranked by BM25 over the word index, best first (see the ``Store``
        protocol and ``memory/bm25.py``: candidates by the words' idf, bounded per word, then
        BM25 with term frequency and length normalisation)."""
        from memchat.memory import bm25

        words = list(dict.fromkeys(w for w in words if w))
        if not words:
            return []
        if session is None and not self.has_other_sessions(exclude_session):
            return []  # the user has no other session with messages: nothing to search
        self._settle_for(session, before_seq, exclude_session)
        n, average = self._word_stats()
        span = ""
        span_params: list[Any] = []
        if session is not None:  # the session's messages lie within its id range
            lo, hi = self._read(
                "SELECT MIN(id), MAX(id) FROM messages WHERE session_id = ?"
                + (" AND seq < ?" if before_seq is not None else ""),
                (self._sid(session), *([before_seq] if before_seq is not None else [])),
            )[0]
            if lo is None:
                return []
            span, span_params = " AND rowid BETWEEN ? AND ?", [lo, hi]
            n = hi - lo + 1  # the messages of that range (of every session: the index has them all)
        else:
            # two subqueries: SQLite answers a lone MIN or MAX from the primary key at once, but
            # scans the table for both in one SELECT (9 ms at 100,000 messages)
            lo, hi = self._read("SELECT (SELECT MIN(id) FROM messages), (SELECT MAX(id) FROM messages)")[0]
            lo, hi = lo or 0, hi or 0
        idfs: dict[str, float] = {}
        matched: dict[int, list[str]] = {}
        for w in words:
            rows = self._read(
                f"SELECT rowid FROM messages_words WHERE messages_words MATCH ?{span} ORDER BY rowid DESC LIMIT ?",
                (fts_query([w]), *span_params, PER_WORD),
            )
            if not rows:
                continue
            # the document frequency: exact below PER_WORD, else from the id range the newest
            # PER_WORD matches span (a common word; no count of its whole doclist is needed)
            df = len(rows)
            if df >= PER_WORD:
                covered = max(1, hi - int(rows[-1][0]) + 1)
                df = min(n, round(df * max(1, hi - lo + 1) / covered))
            idfs[w] = bm25.idf(df, max(n, df))
            for (mid,) in rows:
                matched.setdefault(mid, []).append(w)
        if not matched:
            return []
        best = sorted(matched, key=lambda mid: (-sum(idfs[w] for w in matched[mid]), -mid))[:CANDIDATES]
        scope, params = self._scope(session, before_seq, exclude_session)
        if session is None:
            scope += f" AND {NOT_INCOGNITO}"
        cols = ", ".join("m." + c.strip() for c in MESSAGE_COLUMNS.split(","))
        rows = self._read(
            f"SELECT {cols}, s.name, COALESCE(m.search_text, m.content) FROM messages m "
            f"CROSS JOIN sessions s ON s.id = m.session_id WHERE m.id IN ({', '.join('?' * len(best))}) "
            f"AND m.status != 'streaming'{scope}",
            (*best, *params),
        )
        scored = []  # scored from the row; a Message is made only for the hits returned
        for r in rows:
            mid, tokens = r[0] or 0, r[5]
            value, _ = bm25.score(words, r[-1], tokens or len(r[-1]) // 4, idfs, average, matched.get(mid, []))
            scored.append((-value, -mid, r))
        scored.sort(key=lambda s: (s[0], s[1]))
        return [SearchHit(self._message(r[:-2]), r[-2], -value) for value, _, r in scored[:limit]]

    def _word_stats(self) -> tuple[int, float]:
        """(messages in the word index, their average length in tokens), cached while the
        number of messages moves by less than a twentieth."""
        n = int(self._read("SELECT COALESCE(SUM(settled_count), 0) FROM sessions")[0][0]) or 1
        cached = _WORD_STATS.get(self)
        if cached is not None and abs(cached[0] - n) <= cached[0] / 20:
            return n, cached[1]
        average = self._read("SELECT AVG(tokens) FROM (SELECT tokens FROM messages ORDER BY id DESC LIMIT 5000)")
        value = float(average[0][0] or 1.0)
        _WORD_STATS[self] = (n, value)
        return n, value

    def _expand(self, term: str) -> str:
        """An FTS5 query matching the indexed trigrams that start with the two-character
        ``term`` (the most frequent ``EXPANSIONS`` of them); "" when there are none."""
        rows = self._read(
            "SELECT term FROM messages_fts_vocab WHERE term >= ? AND term < ? ORDER BY doc DESC LIMIT ?",
            (term.lower(), term.lower() + "\U0010ffff", EXPANSIONS),
        )
        return " OR ".join(_phrase(r[0]) for r in rows)

    def search_memories(self, words: Sequence[str], *, limit: int = 20) -> list[tuple[Memory, float]]:
        """The owner's active memories matching any of ``words``, ranked by FTS5's BM25 over the
        memory word index (stemmed English words, Chinese as bigrams: a Chinese word longer than
        two characters matches as the phrase of its bigrams), best first; the score is
        ``-bm25`` (higher is better)."""
        forms = [f for w in words if (f := search_form(str(w)).strip())]
        if not forms or limit <= 0:
            return []
        rows = self._read(
            f"SELECT {MEMORY_COLUMNS}, -bm25(memories_words) FROM memories_words "
            f"JOIN memories m ON m.id = memories_words.rowid {MEMORY_SESSION} "
            "WHERE memories_words MATCH ? AND m.owner_id = ? AND m.ended IS NULL "
            "ORDER BY bm25(memories_words), m.id DESC LIMIT ?",
            (fts_query(forms), self.owner, int(limit)),
        )
        return [(memory_from_row(r[:-1]), float(r[-1])) for r in rows]
