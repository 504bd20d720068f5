"""The seam between the SQL store and a database engine.

``SQLStore`` (``stores/sql.py``) writes every statement once, in the SQL both engines speak
(``?`` placeholders, ``INSERT … ON CONFLICT``, ``RETURNING``), and runs it through a
``Dialect``, which owns everything that differs between engines: connecting and closing,
reading, the write transaction (how writers are serialized, and retried when the engine says
"busy"), the placeholder style, the mapping of the driver's errors to memchat's, and the
schema's migrations. SQLite (``sqlite_dialect.py``) and PostgreSQL (``pg_dialect.py``) are the
two; the store above them never imports a driver.

Errors: a constraint that refuses a write is ``IntegrityViolation`` on either engine (the store
turns it into what its caller knows, such as ``SessionExists``); a database that cannot be
reached is a one-line ``StoreError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from memchat.errors import StoreError


class IntegrityViolation(StoreError):
    """A constraint refused a write (a unique name taken, a check failed), whichever engine said
    so. The transaction it happened in is rolled back when the error leaves it."""


class Result(Protocol):
    """What a statement gives back: its rows (already fetched on engines that pool connections)
    and how many rows it changed."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Transaction(Protocol):
    """Statements inside one write transaction (``Dialect.write``)."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result: ...
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


class Dialect(Protocol):
    """One database engine under ``SQLStore``."""

    #: the database as shown in messages (a path; a URL without its password)
    location: str
    #: names this database among the process's turns (two in-memory databases are two)
    key: str
    #: the driver's own errors that mean "the database cannot be used now" besides ``StoreError``
    #: (a turn that fails with one is removed later, see ``SQLStore.abort_turn``)
    driver_errors: tuple[type[Exception], ...]

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement outside any transaction."""
        ...

    def write(self) -> AbstractContextManager[Transaction]:
        """One write transaction, serialized with every other writer of the database (in this
        process and in others), committed when the block ends, rolled back on any error."""
        ...

    def pending_migrations(self) -> list[str]:
        """The migrations this memchat knows that the database has not had yet, in order."""
        ...

    def migrate(self) -> list[str]:
        """Apply the pending migrations under the engine's lock (processes may race); the names
        applied now."""
        ...

    def close(self) -> None: ...
