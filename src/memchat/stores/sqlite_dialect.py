"""SQLite under ``SQLStore``: one file (or ``":memory:"``), one connection.

WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` for every write, so several
processes can write one database file; a statement that still meets "database is locked" is
retried a bounded number of times, then fails as a ``StoreError``. The connection is guarded by
a lock, so a store may be shared by threads (the async API runs store calls in worker threads).
SQLite speaks the store's SQL as it is written (``?`` placeholders); its ``IntegrityError``
becomes ``IntegrityViolation``. The schema is ``migrations.py``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from memchat.errors import StoreError
from memchat.stores.columns import now_text
from memchat.stores.dialect import IntegrityViolation
from memchat.stores.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 15_000
LOCK_RETRIES = 8

T = TypeVar("T")


def _create_private(path: Path) -> None:
    """A new database file (and a directory made for it) only its owner can read: it holds
    every conversation. An existing file keeps the mode its owner gave it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


class SQLiteTransaction:
    """Statements inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (``connection``: for the migrations,
    which are written for ``sqlite3`` itself)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            return self.connection.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.connection.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityViolation(str(exc)) from exc


class SQLiteDialect:
    """One SQLite database: ``path`` (made private when new), or ``connection`` as given."""

    driver_errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: str | Path = ":memory:", *, connection: sqlite3.Connection | None = None) -> None:
        self.location = str(path)
        self._lock = threading.RLock()
        if connection is None:
            if self.location != ":memory:":
                try:
                    _create_private(Path(self.location).expanduser())
                except OSError as exc:
                    reason = exc.strerror or str(exc)
                    raise StoreError(f"cannot make the database {self.location}: {reason}") from exc
            connection = sqlite3.connect(
                self.location,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        self.connection = connection
        self.key = f":memory:{id(connection)}" if self.location == ":memory:" else self.location
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA foreign_keys = ON")
        if self.location != ":memory:":
            self._retry(lambda: connection.execute("PRAGMA journal_mode = WAL"))
            connection.execute("PRAGMA synchronous = NORMAL")

    def _retry(self, fn: Callable[[], T]) -> T:
        """``fn()``, again after a short wait while another process holds the database's lock
        past the busy timeout; a ``StoreError`` when it stays locked."""
        for attempt in range(LOCK_RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == LOCK_RETRIES - 1:
                    raise StoreError(f"the database stayed locked: {self.location}") from exc
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._retry(lambda: list(self.connection.execute(sql, params).fetchall()))

    @contextlib.contextmanager
    def write(self) -> Iterator[SQLiteTransaction]:
        """One write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error."""
        with self._lock:
            self._retry(lambda: self.connection.execute("BEGIN IMMEDIATE"))
            try:
                yield SQLiteTransaction(self.connection)
            except BaseException:
                self.connection.execute("ROLLBACK")
                raise
            else:
                self._retry(lambda: self.connection.execute("COMMIT"))

    def pending_migrations(self) -> list[str]:
        with self._lock:
            known = self.connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_memchat_migrations'"
            ).fetchone()
            done = {r[0] for r in self.connection.execute("SELECT name FROM _memchat_migrations")} if known else set()
        return [name for name, _ in MIGRATIONS if name not in done]

    def migrate(self) -> list[str]:
        """Apply the pending migrations in one write transaction, so two processes opening a
        blank database at once cannot both apply them."""
        applied_now: list[str] = []
        with self.write() as tx:
            db = tx.connection
            db.execute("CREATE TABLE IF NOT EXISTS _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
            done = {row[0] for row in db.execute("SELECT name FROM _memchat_migrations")}
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                fn(db)
                db.execute("INSERT INTO _memchat_migrations (name, applied) VALUES (?, ?)", (name, now_text()))
                applied_now.append(name)
        return applied_now

    def close(self) -> None:
        with self._lock:
            self.connection.close()
