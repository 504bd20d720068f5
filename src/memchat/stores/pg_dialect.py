"""PostgreSQL under ``SQLStore`` (``pip install "memchat[postgres]"``): a small pool of connections.

Statements outside a transaction each take a connection of the pool (autocommit), which checks a
connection before handing it out and replaces one the server dropped; a write transaction holds
one pooled connection and the advisory lock ``WRITE_LOCK``, the same one-writer discipline as
SQLite's ``BEGIN IMMEDIATE`` (generation itself runs outside transactions, so turns in different
sessions still run in parallel). Migrations (``pg_migrations.py``) run under ``MIGRATE_LOCK``, so
several processes may start at once.

The store's SQL reaches psycopg with one change: its ``?`` placeholders become ``%s`` (and a
literal ``%`` is doubled). psycopg's ``IntegrityError`` becomes ``IntegrityViolation``; a
connection that fails, or cannot be had within ``CONNECT_WAIT``, is a one-line ``StoreError``.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from memchat.errors import ConfigError, StoreError
from memchat.stores.columns import now_text
from memchat.stores.dialect import IntegrityViolation
from memchat.stores.pg_migrations import PG_MIGRATIONS

INSTALL = 'PostgreSQL storage needs its extra: pip install "memchat[postgres]"'
#: advisory lock keys: one for write transactions, one for migrations
WRITE_LOCK = 7_211_001
MIGRATE_LOCK = 7_211_002
#: connections per store (each process): a turn's writes take one, reads another
POOL_SIZE = 4
#: seconds a statement waits for a working connection (PostgreSQL restarting, say) before the
#: operation fails with a clear error; a restart shorter than this goes unnoticed
CONNECT_WAIT = 5.0


def placeholders(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresResult:
    """A statement's rows, fetched at once (its connection may go back to the pool)."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self._rows)


class PostgresTransaction:
    """Statements on one psycopg connection (``connection``: for scripts run as they are)."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PostgresResult:
        import psycopg

        try:
            cur = self.connection.execute(placeholders(sql), tuple(params))
        except psycopg.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc
        except psycopg.OperationalError as exc:  # the server restarted, the connection dropped
            raise _failed(exc) from exc
        rows = cur.fetchall() if cur.description is not None else []
        return PostgresResult([tuple(r) for r in rows], cur.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        for params in rows:
            self.execute(sql, params)


def _failed(exc: Exception) -> StoreError:
    """The one-line error for a connection that failed or could not be made."""
    if isinstance(exc, StoreError):
        return exc
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return StoreError(f"the PostgreSQL database is unreachable: {first}")


def redact(url: str) -> str:
    """The URL without its password (for messages)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class PostgresDialect:
    """One PostgreSQL database (``postgresql://…``); ``ConfigError`` without the extra,
    ``StoreError`` when no connection can be made."""

    driver_errors: tuple[type[Exception], ...] = ()

    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401  (only: is the extra installed?)
            from psycopg_pool import ConnectionPool
        except ImportError as exc:
            raise ConfigError(f"{INSTALL} ({exc.name} is missing)") from None
        self.location = redact(url)
        self.key = self.location
        self._lock = threading.RLock()
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
            raise StoreError(f"cannot connect to {self.location}: {first}") from None
        self._pool = pool

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        """A connection of the pool (autocommit), checked before it is handed out."""
        import psycopg

        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:  # PoolTimeout: no working connection in time
            raise _failed(exc) from exc

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._connection() as conn:
            return PostgresTransaction(conn).execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _transaction(self, lock: int) -> Iterator[PostgresTransaction]:
        """A transaction on one pooled connection, holding the advisory lock ``lock``."""
        import psycopg

        try:
            with self._lock, self._pool.connection() as conn:
                tx = PostgresTransaction(conn)
                tx.execute("BEGIN")
                try:
                    tx.execute("SELECT pg_advisory_xact_lock(?)", (lock,))
                    yield tx
                except BaseException:
                    if not conn.broken:
                        tx.execute("ROLLBACK")
                    raise
                tx.execute("COMMIT")
        except psycopg.OperationalError as exc:
            raise _failed(exc) from exc

    @contextlib.contextmanager
    def write(self) -> Iterator[PostgresTransaction]:
        """One write transaction, serialized with every other writer by an advisory lock."""
        with self._transaction(WRITE_LOCK) as tx:
            yield tx

    def pending_migrations(self) -> list[str]:
        with self._lock:
            known = self.read("SELECT to_regclass('_memchat_migrations')")
            done = {r[0] for r in self.read("SELECT name FROM _memchat_migrations")} if known[0][0] else set()
        return [name for name, _ in PG_MIGRATIONS if name not in done]

    def migrate(self) -> list[str]:
        applied: list[str] = []
        with self._transaction(MIGRATE_LOCK) as tx:  # several processes may start at once
            tx.execute("CREATE TABLE IF NOT EXISTS _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
            done = {r[0] for r in tx.execute("SELECT name FROM _memchat_migrations")}
            for name, script in PG_MIGRATIONS:
                if name in done:
                    continue
                if isinstance(script, str):
                    tx.connection.execute(script)
                else:
                    script(tx)
                tx.execute("INSERT INTO _memchat_migrations (name, applied) VALUES (?, ?)", (name, now_text()))
                applied.append(name)
        return applied

    def close(self) -> None:
        self._pool.close()
