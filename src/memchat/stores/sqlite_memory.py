"""The SQLite store's memory records: summaries, pins, full-text search, token calibration,
and the change counters that let a reader keep a session's history cached.

A mixin of ``SQLiteStore`` (see ``stores/sqlite.py`` for the connection and transactions).
Full-text search uses FTS5 with the ``trigram`` tokenizer, so substrings of Chinese text
match; a two-character term (a Chinese word) is looked up as the indexed trigrams that start
with it (found in the index's vocabulary), plus a bounded ``LIKE`` scan of the newest messages
for the occurrences that end a message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sqlite3
import weakref
from collections.abc import Sequence
from typing import Any, Protocol

from memchat.domain import ImageRecord, Message, SearchHit, SessionKey, Summary
from memchat.stores.columns import MESSAGE_COLUMNS, format_time, parse_time
from memchat.stores.columns import now_text as _now

#: sessions whose turns may be recalled into others (an incognito session's may not);
#: settings are stored as ``json.dumps(..., sort_keys=True)``, which writes ``"incognito": true``
NOT_INCOGNITO = "s.settings NOT LIKE '%\"incognito\": true%'"

#: weight of a new observation in the calibration's moving average
_CALIBRATION_ALPHA = 0.3
_RATIO_BOUNDS = (0.5, 3.0)
#: matches read per search term (newest first): the cost of a search is bounded by the terms,
#: not by the length of the history
PER_TERM = 64
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


def insert_image(db: sqlite3.Connection, sid: int, im: ImageRecord, after_seq: int) -> ImageRecord:
    """One row of ``images`` (inside the caller's transaction)."""
    created = format_time(im.created) if im.created else _now()
    cur = db.execute(
        "INSERT INTO images (session_id, after_seq, prompt, params, provider, model, task_id, path, mime, size, "
        "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            sid,
            after_seq,
            im.prompt,
            json.dumps(im.params, ensure_ascii=False, sort_keys=True),
            im.provider,
            im.model,
            im.task_id,
            im.path,
            im.mime,
            im.size,
            created,
        ),
    )
    return dataclasses.replace(im, id=int(cur.lastrowid or 0), after_seq=after_seq, created=parse_time(created))


def _phrase(term: str) -> str:
    """``term`` as an FTS5 phrase (a substring for the trigram tokenizer)."""
    return '"' + term.replace('"', '""') + '"'


class _Host(Protocol):
    """What the mixin needs from ``SQLiteStore``."""

    owner: int

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]: ...
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def _session_id(self, db: sqlite3.Connection, session: SessionKey) -> int: ...
    def _sid(self, session: SessionKey) -> int: ...
    def _expand(self, term: str) -> str: ...
    def _word_stats(self) -> tuple[int, float]: ...
    def _others_exist(self, exclude_session: SessionKey | None) -> bool: ...
    @staticmethod
    def _message(row: Sequence[Any]) -> Message: ...
    @staticmethod
    def _summary(row: Sequence[Any]) -> Summary: ...
    def session_last_seq(self, session: SessionKey) -> int: ...
    def _scope(
        self, session: SessionKey | None, before_seq: int | None, exclude_session: SessionKey | None = None
    ) -> tuple[str, list[Any]]: ...


class MemoryRecords:
    """Methods mixed into ``SQLiteStore``; they use its connection helpers."""

    # -- change counters ----------------------------------------------------------------

    def session_state(self: _Host, session: SessionKey) -> tuple[int, int]:
        """(version, rewrites) of a session. ``version`` moves with every change to its
        messages, summaries or pins; ``rewrites`` only when settled messages were deleted or
        changed, or settled before newer ones (anything but an append at the end)."""
        rows = self._read("SELECT version, rewrites FROM sessions WHERE id = ?", (self._sid(session),))
        return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)

    def messages_before(self: _Host, session: SessionKey, before_seq: int | None, limit: int) -> list[Message]:
        """Up to ``limit`` settled messages just before ``before_seq`` (or the newest), oldest first."""
        sid = self._sid(session)
        where = "" if before_seq is None else f" AND seq < {int(before_seq)}"
        rows = self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND status != 'streaming'{where} "
            "ORDER BY seq DESC LIMIT ?",
            (sid, limit),
        )
        return [self._message(r) for r in reversed(rows)]

    def messages_between(self: _Host, session: SessionKey, first_seq: int, last_seq: int) -> list[Message]:
        """Settled messages with ``first_seq <= seq <= last_seq``, in order."""
        rows = self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND status != 'streaming' "
            "AND seq BETWEEN ? AND ? ORDER BY seq",
            (self._sid(session), first_seq, last_seq),
        )
        return [self._message(r) for r in rows]

    # -- summaries ----------------------------------------------------------------------

    @staticmethod
    def _summary(row: Sequence[Any]) -> Summary:
        return Summary(
            id=row[0],
            first_seq=row[1],
            last_seq=row[2],
            content=row[3],
            tokens=row[4],
            token_method=row[5],
            model=row[6],
            created=parse_time(row[7]),
        )

    def summaries(self: _Host, session: SessionKey) -> list[Summary]:
        rows = self._read(
            "SELECT id, first_seq, last_seq, content, tokens, token_method, model, created FROM summaries "
            "WHERE session_id = ? ORDER BY last_seq, id",
            (self._sid(session),),
        )
        return [self._summary(r) for r in rows]

    def latest_summary(self: _Host, session: SessionKey) -> Summary | None:
        rows = self._read(
            "SELECT id, first_seq, last_seq, content, tokens, token_method, model, created FROM summaries "
            "WHERE session_id = ? ORDER BY last_seq DESC, id DESC LIMIT 1",
            (self._sid(session),),
        )
        return self._summary(rows[0]) if rows else None

    def add_summary(self: _Host, session: SessionKey, summary: Summary) -> Summary:
        with self._write() as db:
            sid = self._session_id(db, session)
            row = db.execute(
                "INSERT INTO summaries (session_id, first_seq, last_seq, content, tokens, token_method, model, "
                "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id, first_seq, last_seq, content, tokens, token_method, model, created",
                (
                    sid,
                    summary.first_seq,
                    summary.last_seq,
                    summary.content,
                    summary.tokens,
                    summary.token_method,
                    summary.model,
                    format_time(summary.created),
                ),
            ).fetchone()
        return self._summary(row)

    def forget_summaries(self: _Host, session: SessionKey) -> int:
        """Delete a session's summaries (they are rebuilt when needed); return how many."""
        with self._write() as db:
            sid = self._session_id(db, session)
            return int(db.execute("DELETE FROM summaries WHERE session_id = ?", (sid,)).rowcount)

    # -- pins ---------------------------------------------------------------------------

    def pins(self: _Host, session: SessionKey) -> list[Message]:
        """The session's pinned messages, in order."""
        rows = self._read(
            f"SELECT {', '.join('m.' + c.strip() for c in MESSAGE_COLUMNS.split(','))} "
            "FROM pins p JOIN messages m ON m.id = p.message_id WHERE p.session_id = ? ORDER BY m.seq",
            (self._sid(session),),
        )
        return [self._message(r) for r in rows]

    def pin(self: _Host, session: SessionKey, message_id: int) -> None:
        with self._write() as db:
            sid = self._session_id(db, session)
            owner = db.execute("SELECT session_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if owner is None or owner[0] != sid:
                from memchat.errors import StoreError

                raise StoreError(f"message {message_id} is not in this session")
            db.execute(
                "INSERT OR IGNORE INTO pins (message_id, session_id, created) VALUES (?, ?, ?)",
                (message_id, sid, _now()),
            )

    def unpin(self: _Host, session: SessionKey, message_id: int) -> bool:
        with self._write() as db:
            sid = self._session_id(db, session)
            cur = db.execute("DELETE FROM pins WHERE message_id = ? AND session_id = ?", (message_id, sid))
            return bool(cur.rowcount > 0)

    # -- search -------------------------------------------------------------------------

    def search(
        self: _Host,
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
        self: _Host,
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
        from memchat.memory.terms import fts_query

        words = list(dict.fromkeys(w for w in words if w))
        if not words:
            return []
        if session is None and not self._others_exist(exclude_session):
            return []  # the user has no other session with messages: nothing to search
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
        hits: list[SearchHit] = []
        for r in rows:
            msg = self._message(r[:-2])
            found = matched.get(msg.id or 0, [])
            value, _ = bm25.score(words, r[-1], msg.tokens or len(r[-1]) // 4, idfs, average, found)
            hits.append(SearchHit(msg, r[-2], value))
        hits.sort(key=lambda h: (-h.score, -(h.message.id or 0)))
        return hits[:limit]

    def _others_exist(self: _Host, exclude_session: SessionKey | None) -> bool:
        """Whether the owner has a session with settled messages, not incognito, besides ``exclude_session``."""
        params: list[Any] = [self.owner]
        other = ""
        if exclude_session is not None:
            other, params = " AND s.id != ?", [self.owner, self._sid(exclude_session)]
        rows = self._read(
            f"SELECT 1 FROM sessions s WHERE s.owner_id = ? AND s.settled_count > 0{other} AND {NOT_INCOGNITO} LIMIT 1",
            params,
        )
        return bool(rows)

    def _word_stats(self: _Host) -> tuple[int, float]:
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

    def messages_at(self: _Host, session: SessionKey, seqs: Sequence[int]) -> list[Message]:
        """The settled messages of ``session`` with these sequence numbers, in order."""
        wanted = sorted({int(q) for q in seqs})
        if not wanted:
            return []
        rows = self._read(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND status != 'streaming' "
            f"AND seq IN ({', '.join('?' * len(wanted))}) ORDER BY seq",
            (self._sid(session), *wanted),
        )
        return [self._message(r) for r in rows]

    def _expand(self: _Host, term: str) -> str:
        """An FTS5 query matching the indexed trigrams that start with the two-character
        ``term`` (the most frequent ``EXPANSIONS`` of them); "" when there are none."""
        rows = self._read(
            "SELECT term FROM messages_fts_vocab WHERE term >= ? AND term < ? ORDER BY doc DESC LIMIT ?",
            (term.lower(), term.lower() + "\U0010ffff", EXPANSIONS),
        )
        return " OR ".join(_phrase(r[0]) for r in rows)

    def session_last_seq(self: _Host, session: SessionKey) -> int:
        rows = self._read("SELECT last_seq FROM sessions WHERE id = ?", (self._sid(session),))
        return int(rows[0][0]) if rows else 0

    def _scope(
        self: _Host, session: SessionKey | None, before_seq: int | None, exclude_session: SessionKey | None = None
    ) -> tuple[str, list[Any]]:
        if session is not None:
            scope, params = " AND m.session_id = ?", [self._sid(session)]
            if before_seq is not None:
                scope += " AND m.seq < ?"
                params.append(before_seq)
            return scope, params
        if exclude_session is not None:
            return " AND s.owner_id = ? AND m.session_id != ?", [self.owner, self._sid(exclude_session)]
        return " AND s.owner_id = ?", [self.owner]

    # -- generated images -----------------------------------------------------------------

    def add_images(self: _Host, session: SessionKey, images: Sequence[ImageRecord]) -> list[ImageRecord]:
        """Keep ``images`` with the session, placed after its current last message."""
        with self._write() as db:
            sid = self._session_id(db, session)
            last = int(db.execute("SELECT last_seq FROM sessions WHERE id = ?", (sid,)).fetchone()[0])
            return [insert_image(db, sid, im, im.after_seq or last) for im in images]

    def images(self: _Host, session: SessionKey) -> list[ImageRecord]:
        """The session's generated images, oldest first."""
        rows = self._read(
            "SELECT id, after_seq, prompt, params, provider, model, task_id, path, mime, size, created "
            "FROM images WHERE session_id = ? ORDER BY id",
            (self._sid(session),),
        )
        return [
            ImageRecord(
                prompt=r[2],
                path=r[7],
                provider=r[4],
                model=r[5],
                params=json.loads(r[3] or "{}"),
                task_id=r[6],
                mime=r[8],
                size=r[9],
                after_seq=r[1],
                id=r[0],
                created=parse_time(r[10]),
            )
            for r in rows
        ]

    # -- token calibration ----------------------------------------------------------------

    def calibration(self: _Host, model: str) -> float | None:
        """How many real tokens one estimated token is worth for ``model`` (None: not measured)."""
        rows = self._read("SELECT ratio FROM calibration WHERE model = ?", (model,))
        return float(rows[0][0]) if rows else None

    def record_calibration(self: _Host, model: str, observed: float) -> float:
        """Fold one observation (reported prompt tokens ÷ estimated) into the model's ratio."""
        observed = min(max(observed, _RATIO_BOUNDS[0]), _RATIO_BOUNDS[1])
        with self._write() as db:
            row = db.execute("SELECT ratio, samples FROM calibration WHERE model = ?", (model,)).fetchone()
            if row is None:
                ratio, samples = observed, 1
            else:
                ratio, samples = row[0] * (1 - _CALIBRATION_ALPHA) + observed * _CALIBRATION_ALPHA, row[1] + 1
            db.execute(
                "INSERT INTO calibration (model, ratio, samples, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model) DO UPDATE SET ratio = excluded.ratio, samples = excluded.samples, "
                "updated = excluded.updated",
                (model, ratio, samples, _now()),
            )
        return float(ratio)
