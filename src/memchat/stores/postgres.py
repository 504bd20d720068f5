"""The PostgreSQL store: the SQLite store's behaviour on PostgreSQL (``pip install "memchat[postgres]"``).

Almost every statement of ``SQLiteStore`` is portable SQL, so this store reuses them through a
small connection adapter (``?`` placeholders, ``INSERT OR IGNORE``, ``lastrowid``, integrity
errors) and replaces only what differs: the schema (``pg_migrations.py``, applied under an
advisory lock so several processes may start at once), full-text search (``pg_trgm`` instead of
FTS5's trigrams; ``tsvector`` and ``ts_rank`` instead of FTS5's BM25 for the ranked word search
of messages and memories) and transactions (every write transaction takes one advisory lock, the
same one-writer discipline as SQLite's ``BEGIN IMMEDIATE``; generation itself runs outside
transactions, so turns in different sessions still run in parallel).
"""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from memchat.domain import Memory, SearchHit, SessionKey
from memchat.errors import ConfigError, StoreError
from memchat.stores.columns import MESSAGE_COLUMNS
from memchat.stores.columns import now_text as _now
from memchat.stores.pg_migrations import PG_MIGRATIONS
from memchat.stores.sqlite import SQLiteStore, _writer_id
from memchat.stores.sqlite_memories import MEMORY_COLUMNS, MEMORY_FROM, memory_from_row, search_form
from memchat.stores.sqlite_memory import NOT_INCOGNITO, PER_TERM

INSTALL = 'PostgreSQL storage needs its extra: pip install "memchat[postgres]"'
#: advisory lock keys: one for write transactions, one for migrations
WRITE_LOCK = 7_211_001
MIGRATE_LOCK = 7_211_002
#: connections per store (each process): a turn's writes take one, reads another
POOL_SIZE = 4
#: seconds a statement waits for a working connection (PostgreSQL restarting, say) before the
#: operation fails with a clear error; a restart shorter than this goes unnoticed
CONNECT_WAIT = 5.0
#: tables whose inserts report the new row's id
_ID_TABLES = ("users", "sessions", "messages", "summaries", "images")
_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(\w+)", re.IGNORECASE)


class _Cursor:
    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


class _Connection:
    """The part of ``sqlite3.Connection`` the store uses, on a psycopg connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        import psycopg

        text, returns_id = _translate(sql)
        try:
            cur = self.conn.execute(text, tuple(params))
        except psycopg.errors.IntegrityError as exc:  # the store's callers know sqlite3's exception
            raise sqlite3.IntegrityError(str(exc)) from exc
        except psycopg.OperationalError as exc:  # the server restarted, the connection dropped
            raise _failed(exc) from exc
        rows = cur.fetchall() if cur.description is not None else []
        lastrowid = int(rows[0][0]) if returns_id and rows else None
        return _Cursor([tuple(r) for r in rows], cur.rowcount, lastrowid)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        for params in seq:
            self.execute(sql, params)

    def close(self) -> None:
        self.conn.close()


class _Pooled:
    """Statements outside a transaction: each on a connection of the pool (autocommit), which
    checks a connection before handing it out and replaces a broken one."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        with self._connection() as conn:
            return _Connection(conn).execute(sql, params)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> None:
        with self._connection() as conn:
            _Connection(conn).executemany(sql, seq)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        import psycopg

        try:
            with self.pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:  # PoolTimeout: no working connection in time
            raise _failed(exc) from exc

    def close(self) -> None:
        self.pool.close()


def _failed(exc: Exception) -> StoreError:
    """The one-line error for a connection that failed or could not be made."""
    if isinstance(exc, StoreError):
        return exc
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StoreError(f"the PostgreSQL database is unreachable: {first}")


def _translate(sql: str) -> tuple[str, bool]:
    """SQLite's dialect as the store writes it → PostgreSQL's; and whether the statement now
    returns the new row's id."""
    text = sql.replace("%", "%%").replace("?", "%s")
    returns_id = False
    m = _INSERT.match(text)
    if m:
        if m.group(1):
            text = _INSERT.sub(lambda x: f"INSERT INTO {x.group(2)}", text, count=1) + " ON CONFLICT DO NOTHING"
        elif m.group(2).lower() in _ID_TABLES and "RETURNING" not in text.upper():
            text += " RETURNING id"
            returns_id = True
    return text, returns_id


class PostgresStore(SQLiteStore):
    """Sessions and messages in a PostgreSQL database (``postgresql://…``)."""

    def __init__(self, url: str, *, migrate: bool | None = True) -> None:
        try:
            import psycopg  # noqa: F401  (only: is the extra installed?)
        except ImportError as exc:
            raise ConfigError(f"{INSTALL} ({exc.name} is missing)") from None
        self.path = _redact(url)
        self._key = self.path
        self._lock = threading.RLock()
        self.owner = 1
        self._view = False
        try:
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise ConfigError(f"{INSTALL} ({exc.name} is missing)") from None
        pool = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,  # a connection the server dropped is replaced
            timeout=CONNECT_WAIT,
            # a reconnection that keeps failing gives up this soon, so the first request after an
            # outage starts a fresh attempt at once instead of waiting out a long backoff
            reconnect_timeout=CONNECT_WAIT,
            open=False,
        )
        try:
            pool.open(wait=True, timeout=10)
        except Exception as exc:  # PoolTimeout: no connection could be made
            pool.close()
            cause = exc.__cause__ or exc
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise StoreError(f"cannot connect to {self.path}: {first}") from None
        self._pool = pool
        self._db = _Pooled(pool)  # type: ignore[assignment]
        self._writer = _writer_id()
        if migrate:
            self.migrate()
        elif migrate is False:
            pending = self.pending_migrations()
            if pending:
                pool.close()
                raise StoreError(
                    f"the database {self.path} needs {len(pending)} migration(s) ({', '.join(pending)}); "
                    "run: memchat db migrate"
                )
        if migrate is not None:
            self.recover()

    # -- plumbing ---------------------------------------------------------------------------

    def _retry(self, fn: Any) -> Any:
        return fn()

    @contextlib.contextmanager
    def _transaction(self, lock: int) -> Iterator[_Connection]:
        """A transaction on one pooled connection, holding the advisory lock ``lock``."""
        import psycopg

        try:
            with self._lock, self._pool.connection() as conn:
                db = _Connection(conn)
                db.execute("BEGIN")
                try:
                    db.execute("SELECT pg_advisory_xact_lock(?)", (lock,))
                    yield db
                except BaseException:
                    if not conn.broken:
                        db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        except psycopg.OperationalError as exc:
            raise _failed(exc) from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialized with every other writer by an advisory lock."""
        with self._transaction(WRITE_LOCK) as db:
            yield db  # type: ignore[misc]

    def pending_migrations(self) -> list[str]:
        with self._lock:
            known = self._db.execute("SELECT to_regclass('_memchat_migrations')").fetchone()
            done = (
                {r[0] for r in self._db.execute("SELECT name FROM _memchat_migrations")}
                if known and known[0]
                else set()
            )
        return [name for name, _ in PG_MIGRATIONS if name not in done]

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._transaction(MIGRATE_LOCK) as db:  # several processes may start at once
            db.execute("CREATE TABLE IF NOT EXISTS _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
            done = {r[0] for r in db.execute("SELECT name FROM _memchat_migrations")}
            for name, script in PG_MIGRATIONS:
                if name in done:
                    continue
                if isinstance(script, str):
                    db.conn.execute(script)
                else:
                    script(db)
                db.execute("INSERT INTO _memchat_migrations (name, applied) VALUES (?, ?)", (name, _now()))
                applied.append(name)
        return applied

    def close(self) -> None:
        if not self._view:
            self._pool.close()

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


def _redact(url: str) -> str:
    """The URL without its password (for messages)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
