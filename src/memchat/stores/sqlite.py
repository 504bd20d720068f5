"""SQLite store: the embedded default.

WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` for every write, so several
processes can write one database file; a write that still meets "database is locked" is
retried a bounded number of times. One connection per store, guarded by a lock, so a
store may be shared by threads (the async API runs store calls in worker threads).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from memchat.domain import ImageRecord, Message, Role, SessionInfo, SessionKey, Status, Summary, Usage
from memchat.errors import SessionExists, SessionNotFound, StoreError, TurnInProgress
from memchat.memory.terms import index_text
from memchat.stores.base import SessionRef, TurnHandle
from memchat.stores.columns import MESSAGE_COLUMNS
from memchat.stores.columns import format_time as _format_time
from memchat.stores.columns import now_text as _now
from memchat.stores.columns import parse_time as _parse_time
from memchat.stores.migrations import MIGRATIONS
from memchat.stores.sqlite_memories import MemoriesRecords
from memchat.stores.sqlite_memory import MemoryRecords, insert_image
from memchat.stores.sqlite_vectors import VectorRecords
from memchat.tokens import estimate_tokens

LOCAL_USER = 1


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


BUSY_TIMEOUT_MS = 15_000
LOCK_RETRIES = 8
#: a streaming row from another host is presumed dead after this long without a heartbeat
STALE_AFTER = timedelta(minutes=10)
CHECKPOINT_EVERY = 1.0  # seconds between saves of streamed text


def _create_private(path: Path) -> None:
    """A new database file (and a directory made for it) only its owner can read: it holds
    every conversation. An existing file keeps the mode its owner gave it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _writer_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


#: this process's turns, per database (``SQLiteStore._key``): the reply rows it streams now…
_LIVE: set[tuple[str, int]] = set()
#: …and the turns it failed and could not remove then (the database was unreachable): they are
#: removed by its next ``begin_turn`` or ``recover`` on that database, so a failed turn leaves
#: nothing behind once the database is back
_ORPHANS: dict[str, set[TurnHandle]] = {}
_TURNS_LOCK = threading.Lock()


def _alive(writer: str | None, heartbeat: str | None, live: bool) -> bool:
    """Whether the writer of a streaming row may still finish it: this process if the row is
    one of its live turns (``live``), another live process of this host, or (another host) a
    heartbeat newer than ``STALE_AFTER``."""
    host, _, pid = (writer or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return live if int(pid) == os.getpid() else _pid_alive(int(pid))
    beat = _parse_time(heartbeat)
    return beat is not None and datetime.now(UTC) - beat < STALE_AFTER


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_SESSION_COLUMNS = (
    "s.id, s.name, s.persona, s.model, s.provider, s.memory, s.settings, s.parent_id, "
    "s.fork_at, s.created, s.updated, s.settled_count"
)


class SQLiteStore(MemoryRecords, MemoriesRecords, VectorRecords):
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
        self.path = str(path)
        self._lock = threading.RLock()
        #: whose sessions this store sees (the local user unless ``for_owner`` says otherwise)
        self.owner = LOCAL_USER
        self._view = False
        if connection is None:
            if self.path != ":memory:":
                _create_private(Path(self.path).expanduser())
            connection = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        self._db = connection
        #: names this database among the process's turns (two in-memory databases are two)
        self._key = f":memory:{id(connection)}" if self.path == ":memory:" else self.path
        self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA foreign_keys = ON")
        if self.path != ":memory:":
            self._retry(lambda: self._db.execute("PRAGMA journal_mode = WAL"))
            self._db.execute("PRAGMA synchronous = NORMAL")
        self._writer = _writer_id()
        if migrate:
            self.migrate()
        elif migrate is False:
            pending = self.pending_migrations()
            if pending:
                self._db.close()
                raise StoreError(
                    f"the database {self.path} needs {len(pending)} migration(s) ({', '.join(pending)}); "
                    "run: memchat db migrate"
                )
        if migrate is not None:
            self.recover()

    @classmethod
    def from_url(cls, url: str, *, migrate: bool | None = True) -> SQLiteStore:
        for prefix in ("sqlite:///", "sqlite://"):
            if url.startswith(prefix):
                return cls(url[len(prefix) :] or ":memory:", migrate=migrate)
        return cls(url, migrate=migrate)

    # -- plumbing ---------------------------------------------------------------------

    def _retry(self, fn: Any) -> Any:
        for attempt in range(LOCK_RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == LOCK_RETRIES - 1:
                    raise StoreError(f"the database stayed locked: {self.path}") from exc
                time.sleep(0.05 * 2**attempt)
        return None  # pragma: no cover

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any error."""
        with self._lock:
            self._retry(lambda: self._db.execute("BEGIN IMMEDIATE"))
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._retry(lambda: self._db.execute("COMMIT"))

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._retry(lambda: self._db.execute(sql, params).fetchall()))

    def pending_migrations(self) -> list[str]:
        """Migrations this memchat knows that the database has not had yet."""
        with self._lock:
            known = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_memchat_migrations'"
            ).fetchone()
            done = {r[0] for r in self._db.execute("SELECT name FROM _memchat_migrations")} if known else set()
        return [name for name, _ in MIGRATIONS if name not in done]

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied now."""
        applied_now: list[str] = []
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
            done = {row[0] for row in db.execute("SELECT name FROM _memchat_migrations")}
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                fn(db)
                db.execute("INSERT INTO _memchat_migrations (name, applied) VALUES (?, ?)", (name, _now()))
                applied_now.append(name)
        return applied_now

    def recover(self) -> int:
        """Remove this process's failed turns that could not be removed then; mark ``streaming``
        rows whose writer is gone as ``interrupted``; return how many were marked."""
        self._remove_orphans()
        rows = self._read("SELECT id, writer, heartbeat, content FROM messages WHERE status = 'streaming'")
        stale = [(i, content) for i, writer, heartbeat, content in rows if not self._row_alive(i, writer, heartbeat)]
        if stale:
            with self._write() as db:
                db.executemany(
                    "UPDATE messages SET status = 'interrupted', writer = NULL, tokens = ?, token_method = 'estimate' "
                    "WHERE id = ? AND status = 'streaming'",
                    [(estimate_tokens(content), i) for i, content in stale],
                )
        return len(stale)

    def close(self) -> None:
        if self._view:  # the connection belongs to the store this view came from
            return
        with self._lock:
            self._db.close()

    @property
    def cache_key(self) -> str:
        """Names this database as seen by this owner, for caches kept outside the store (a
        ``for_owner`` view of the same user shares it)."""
        return f"{self._key}#{self.owner}"

    def for_owner(self, user_id: int) -> SQLiteStore:
        """The same database seen as user ``user_id``: every lookup is scoped to their sessions."""
        view = copy.copy(self)
        view.owner = user_id
        view._view = True
        return view

    # -- users (the server's accounts) ------------------------------------------------------

    def add_user(self, name: str) -> tuple[int, str]:
        """A new user and their token (shown once; only its hash is kept)."""
        if not name.strip() or len(name) > 100:
            raise StoreError("a user name must be 1 to 100 characters")
        token = secrets.token_urlsafe(32)
        with self._write() as db:
            try:
                cur = db.execute(
                    "INSERT INTO users (name, created, token_hash) VALUES (?, ?, ?)", (name, _now(), _hash(token))
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"a user named {name!r} already exists") from None
        return int(cur.lastrowid or 0), token

    def user_for_token(self, token: str) -> int | None:
        rows = self._read("SELECT id FROM users WHERE token_hash = ?", (_hash(token),))
        return int(rows[0][0]) if rows else None

    def users(self) -> list[tuple[int, str]]:
        return [
            (int(r[0]), str(r[1]))
            for r in self._read("SELECT id, name FROM users WHERE id != ? ORDER BY id", (LOCAL_USER,))
        ]

    def user_records(self) -> list[tuple[int, str, str | None, str]]:
        """Every account as (id, name, token hash, created), for copying a database."""
        rows = self._read("SELECT id, name, token_hash, created FROM users WHERE id != ? ORDER BY id", (LOCAL_USER,))
        return [(int(r[0]), str(r[1]), r[2], str(r[3])) for r in rows]

    def restore_user(self, name: str, token_hash: str | None, created: str) -> int:
        """An account copied from another database (its token keeps working)."""
        with self._write() as db:
            try:
                cur = db.execute(
                    "INSERT INTO users (name, created, token_hash) VALUES (?, ?, ?)", (name, created, token_hash)
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"a user named {name!r} already exists") from None
        return int(cur.lastrowid or 0)

    def remove_user(self, name: str) -> bool:
        """Remove a user with all their sessions."""
        with self._write() as db:
            return db.execute("DELETE FROM users WHERE name = ? AND id != ?", (name, LOCAL_USER)).rowcount > 0

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sessions ---------------------------------------------------------------------

    @staticmethod
    def _session(row: Sequence[Any]) -> SessionInfo:
        return SessionInfo(
            id=row[0],
            name=row[1],
            persona=row[2],
            model=row[3],
            provider=row[4],
            memory=row[5],
            settings=json.loads(row[6] or "{}"),
            parent_id=row[7],
            fork_at=row[8],
            created=_parse_time(row[9]),
            updated=_parse_time(row[10]),
            message_count=row[11],
        )

    def _session_id(self, db: sqlite3.Connection, session: SessionKey) -> int:
        if isinstance(session, SessionInfo):
            session = session.id
        if isinstance(session, int):
            row = db.execute("SELECT id FROM sessions WHERE id = ? AND owner_id = ?", (session, self.owner)).fetchone()
        else:
            row = db.execute(
                "SELECT id FROM sessions WHERE owner_id = ? AND name = ?", (self.owner, session)
            ).fetchone()
        if row is None:
            raise SessionNotFound(f"no session named {session!r}", name=session)
        return int(row[0])

    def _sid(self, session: SessionKey) -> int:
        """A session's id; an int is taken as it is (callers that hold an id skip a lookup)."""
        if isinstance(session, int):
            return session
        if isinstance(session, SessionInfo):
            return session.id
        with self._lock:
            return self._session_id(self._db, session)

    def find_session(self, name: SessionKey) -> SessionInfo | None:
        if isinstance(name, SessionInfo):
            name = name.id
        where = "s.owner_id = ? AND " + ("s.id = ?" if isinstance(name, int) else "s.name = ?")
        params: tuple[Any, ...] = (self.owner, name)
        rows = self._read(f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE {where}", params)
        return self._session(rows[0]) if rows else None

    def get_session(self, name: SessionKey) -> SessionInfo:
        info = self.find_session(name)
        if info is None:
            raise SessionNotFound(f"no session named {name!r}", name=name)
        return info

    def session(self, name: str, *, persona: str = "") -> SessionRef:
        """The session ``name`` bound to this store, created (with ``persona``) if new."""
        if self.find_session(name) is None:
            with contextlib.suppress(SessionExists):
                self.create_session(name, persona=persona)
        return SessionRef(self, name)

    def list_sessions(self) -> list[SessionInfo]:
        rows = self._read(
            f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE s.owner_id = ? ORDER BY s.updated DESC, s.id DESC",
            (self.owner,),
        )
        return [self._session(r) for r in rows]

    def _free_name(self, db: sqlite3.Connection, base: str) -> str:
        name, n = base, 1
        while db.execute("SELECT 1 FROM sessions WHERE owner_id = ? AND name = ?", (self.owner, name)).fetchone():
            n += 1
            name = f"{base}-{n}"
        return name

    @staticmethod
    def _check_name(name: str) -> str:
        name = name.strip()
        if not name:
            raise StoreError("a session name cannot be empty")
        if len(name) > 200:
            raise StoreError("a session name is at most 200 characters")
        return name

    def create_session(
        self,
        name: str | None = None,
        *,
        persona: str = "",
        model: str | None = None,
        provider: str | None = None,
        memory: str = "auto",
        settings: dict[str, Any] | None = None,
    ) -> SessionInfo:
        with self._write() as db:
            sid = self._insert_session(db, name, persona, model, provider, memory, settings, None, None)
        return self.get_session(sid)

    def _insert_session(
        self,
        db: sqlite3.Connection,
        name: str | None,
        persona: str,
        model: str | None,
        provider: str | None,
        memory: str,
        settings: dict[str, Any] | None,
        created: str | None,
        updated: str | None,
        parent_id: int | None = None,
        fork_at: int | None = None,
    ) -> int:
        """The one way a session row is written: every column, ``memory`` included, is given
        explicitly, so no session depends on the schema's declared defaults."""
        if name is None:
            name = self._free_name(db, datetime.now().astimezone().strftime("chat-%Y%m%d-%H%M%S"))
        name = self._check_name(name)
        now = _now()
        try:
            cur = db.execute(
                "INSERT INTO sessions (owner_id, name, persona, model, provider, memory, settings, "
                "parent_id, fork_at, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.owner,
                    name,
                    persona or "",
                    model,
                    provider,
                    memory,
                    json.dumps(settings or {}, ensure_ascii=False, sort_keys=True),
                    parent_id,
                    fork_at,
                    created or now,
                    updated or now,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise SessionExists(f"a session named {name!r} already exists", name=name) from exc
        return int(cur.lastrowid or 0)

    def update_session(
        self,
        session: SessionKey,
        *,
        name: str | None = None,
        persona: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        settings: dict[str, Any] | None = None,
        memory: str | None = None,
    ) -> SessionInfo:
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = self._check_name(name)
        if persona is not None:
            changes["persona"] = persona
        if model is not None:
            changes["model"] = model or None
        if provider is not None:
            changes["provider"] = provider or None
        if settings is not None:
            changes["settings"] = json.dumps(settings, ensure_ascii=False, sort_keys=True)
        if memory is not None:
            changes["memory"] = memory
        with self._write() as db:
            sid = self._session_id(db, session)
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)
                try:
                    db.execute(
                        f"UPDATE sessions SET {sets}, updated = ? WHERE id = ?",
                        (*changes.values(), _now(), sid),
                    )
                except sqlite3.IntegrityError as exc:
                    raise SessionExists(f"a session named {name!r} already exists", name=name) from exc
        return self.get_session(sid)

    def rename_session(self, old: str | int, new: str) -> SessionInfo:
        return self.update_session(old, name=new)

    def fork_session(self, session: SessionKey, new_name: str | None = None, *, at: int | None = None) -> SessionInfo:
        """Copy a session (its first ``at`` messages, or all) under a new name."""
        with self._write() as db:
            src = self._session_id(db, session)
            row = db.execute(
                "SELECT name, persona, model, provider, memory, settings FROM sessions WHERE id = ?", (src,)
            ).fetchone()
            count = db.execute(
                "SELECT COUNT(*) FROM messages WHERE session_id = ? AND status != 'streaming'", (src,)
            ).fetchone()[0]
            if at is not None and not 0 <= at <= count:
                raise StoreError(f"--at must be between 0 and {count}")
            cut = count if at is None else at
            name = new_name if new_name is not None else self._free_name(db, f"{row[0]}-fork")
            sid = self._insert_session(
                db, name, row[1], row[2], row[3], row[4], json.loads(row[5]), None, None, src, cut
            )
            db.execute(
                "INSERT INTO messages (session_id, seq, role, content, search_text, tool_calls, tool_call_id, "
                "attachments, status, tokens, token_method, usage, model, created) "
                "SELECT ?, ROW_NUMBER() OVER (ORDER BY seq), role, content, search_text, tool_calls, tool_call_id, "
                "attachments, "
                "status, tokens, token_method, usage, model, created FROM messages "
                "WHERE session_id = ? AND status != 'streaming' ORDER BY seq LIMIT ?",
                (sid, src, cut),
            )
            db.execute(
                "UPDATE sessions SET last_seq = (SELECT COUNT(*) FROM messages WHERE session_id = ?) WHERE id = ?",
                (sid, sid),
            )
        return self.get_session(sid)

    def delete_session(self, session: SessionKey) -> None:
        with self._write() as db:
            sid = self._session_id(db, session)
            db.execute("DELETE FROM sessions WHERE id = ?", (sid,))

    # -- messages ---------------------------------------------------------------------

    @staticmethod
    def _message(row: Sequence[Any]) -> Message:
        return Message(
            id=row[0],
            seq=row[1],
            role=Role(row[2]),
            content=row[3],
            status=Status(row[4]),
            tokens=row[5],
            token_method=row[6],
            usage=Usage.from_dict(json.loads(row[7])) if row[7] else None,
            model=row[8],
            created=_parse_time(row[9]),
            tool_calls=tuple(json.loads(row[10])) if row[10] else None,
            tool_call_id=row[11],
        )

    def messages(
        self, session: SessionKey, *, include_streaming: bool = False, after: int | None = None
    ) -> list[Message]:
        """The session's messages in order; ``after`` gives only those with a greater ``seq``."""
        with self._lock:
            sid = session if isinstance(session, int) and after is not None else self._session_id(self._db, session)
            where = "" if include_streaming else " AND status != 'streaming'"
            if after is not None:
                where += f" AND seq > {int(after)}"
            rows = self._read(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?{where} ORDER BY seq", (sid,)
            )
        return [self._message(r) for r in rows]

    @staticmethod
    def _next_seq(db: sqlite3.Connection, sid: int) -> int:
        """The next sequence number: strictly increasing per session, never reused after a delete."""
        row = db.execute("UPDATE sessions SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (sid,))
        return int(row.fetchone()[0])

    def _insert_message(self, db: sqlite3.Connection, sid: int, msg: Message, writer: str | None = None) -> int:
        tokens, method = msg.tokens, msg.token_method
        if tokens is None:
            tokens, method = estimate_tokens(msg.content), "estimate"
        now = _now()
        cur = db.execute(
            "INSERT INTO messages (session_id, seq, role, content, search_text, status, tokens, token_method, "
            "usage, model, writer, heartbeat, created, tool_calls, tool_call_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                sid,
                self._next_seq(db, sid),
                Role(msg.role).value,
                msg.content,
                index_text(msg.content),
                Status(msg.status).value,
                tokens,
                method,
                json.dumps(msg.usage.to_dict()) if msg.usage else None,
                msg.model,
                writer,
                now if writer else None,
                _format_time(msg.created) if msg.created else now,
                json.dumps(list(msg.tool_calls), ensure_ascii=False) if msg.tool_calls else None,
                msg.tool_call_id,
            ),
        )
        return int(cur.lastrowid or 0)

    def _touch(self, db: sqlite3.Connection, sid: int) -> None:
        db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (_now(), sid))

    def append_messages(self, session: SessionKey, messages: Sequence[Message]) -> list[Message]:
        with self._write() as db:
            sid = self._session_id(db, session)
            ids = [self._insert_message(db, sid, m) for m in messages]
            self._touch(db, sid)
        wanted = set(ids)
        return [m for m in self.messages(sid) if m.id in wanted]

    def truncate(self, session: SessionKey, keep: int) -> int:
        """Keep the first ``keep`` messages; return how many were removed."""
        if keep < 0:
            raise StoreError("--keep must be 0 or more")
        with self._write() as db:
            sid = self._session_id(db, session)
            row = db.execute(
                "SELECT seq FROM messages WHERE session_id = ? AND status != 'streaming' ORDER BY seq LIMIT 1 OFFSET ?",
                (sid, keep),
            ).fetchone()
            if row is None:
                return 0
            cur = db.execute(
                "DELETE FROM messages WHERE session_id = ? AND seq >= ? AND status != 'streaming'", (sid, row[0])
            )
            self._touch(db, sid)
            return cur.rowcount

    def remove_last_turn(self, session: SessionKey) -> list[Message]:
        """Remove the last user message and everything after it; return what was removed."""
        with self._write() as db:
            sid = self._session_id(db, session)
            row = db.execute(
                "SELECT MAX(seq) FROM messages WHERE session_id = ? AND role = 'user' AND status != 'streaming'",
                (sid,),
            ).fetchone()
            if row[0] is None:
                return []
            removed = [
                self._message(r)
                for r in db.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND seq >= ? "
                    "AND status != 'streaming' ORDER BY seq",
                    (sid, row[0]),
                )
            ]
            db.execute(
                "DELETE FROM messages WHERE session_id = ? AND seq >= ? AND status != 'streaming'", (sid, row[0])
            )
            self._touch(db, sid)
        return removed

    def import_session(
        self,
        info: SessionInfo,
        messages: Sequence[Message],
        *,
        summaries: Sequence[Summary] = (),
        pins: Sequence[int] = (),
        images: Sequence[ImageRecord] = (),
    ) -> SessionInfo:
        """Create a session with its messages, summaries, pins and images in one transaction (all
        or nothing). A summary's ``first_seq``/``last_seq`` are 1-based positions in ``messages``;
        ``pins`` are 0-based indexes into ``messages``; an image's ``after_seq`` is the number
        (from 1; 0: before any) of the message it follows."""
        with self._write() as db:
            sid = self._insert_session(
                db,
                info.name,
                info.persona,
                info.model,
                info.provider,
                info.memory,
                info.settings,
                _format_time(info.created) if info.created else None,
                None,
            )
            ids = [self._insert_message(db, sid, m) for m in messages]
            seqs = [r[0] for r in db.execute("SELECT seq FROM messages WHERE session_id = ? ORDER BY seq", (sid,))]
            for s in summaries:
                if not 1 <= s.first_seq <= s.last_seq <= len(seqs):
                    raise StoreError(f"a summary covers messages {s.first_seq}-{s.last_seq} of {len(seqs)}")
                db.execute(
                    "INSERT INTO summaries (session_id, first_seq, last_seq, content, tokens, token_method, model, "
                    "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        sid,
                        seqs[s.first_seq - 1],
                        seqs[s.last_seq - 1],
                        s.content,
                        s.tokens,
                        s.token_method,
                        s.model,
                        _format_time(s.created),
                    ),
                )
            for index in pins:
                if not 0 <= index < len(ids):
                    raise StoreError(f"a pin refers to message {index + 1} of {len(ids)}")
                db.execute(
                    "INSERT OR IGNORE INTO pins (message_id, session_id, created) VALUES (?, ?, ?)",
                    (ids[index], sid, _now()),
                )
            for im in images:
                if not 0 <= im.after_seq <= len(seqs):
                    raise StoreError(f"an image follows message {im.after_seq} of {len(seqs)}")
                insert_image(db, sid, im, seqs[im.after_seq - 1] if im.after_seq else 0)
            updated = _format_time(info.updated) if info.updated else _now()
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (updated, sid))
        return self.get_session(sid)

    # -- one turn ---------------------------------------------------------------------

    def begin_turn(self, session: SessionKey, user: Message, *, model: str | None = None) -> TurnHandle:
        """Store the user's message and an empty streaming reply. Turns of one session are
        serialized: while another writer (process, server, REPL) still streams a reply in it,
        ``TurnInProgress``; a reply left streaming by a writer that is gone becomes interrupted."""
        self._remove_orphans()
        with self._write() as db:
            sid = self._session_id(db, session)
            for msg_id, writer, heartbeat, content in db.execute(
                "SELECT id, writer, heartbeat, content FROM messages WHERE session_id = ? AND status = 'streaming'",
                (sid,),
            ).fetchall():
                if self._row_alive(msg_id, writer, heartbeat):
                    raise TurnInProgress(
                        "another reply is still being generated in this session; wait for it or stop it"
                    )
                db.execute(
                    "UPDATE messages SET status = 'interrupted', writer = NULL, tokens = ?, token_method = 'estimate' "
                    "WHERE id = ?",
                    (estimate_tokens(content), msg_id),
                )
            uid = self._insert_message(db, sid, user)
            aid = self._insert_message(
                db,
                sid,
                Message(Role.ASSISTANT, "", status=Status.STREAMING, tokens=0, token_method="estimate", model=model),
                writer=self._writer,
            )
            # ``updated`` moves when the turn ends (finish_turn): an aborted turn leaves no trace
        with _TURNS_LOCK:
            _LIVE.add((self._key, aid))
        return TurnHandle(sid, uid, aid)

    def _row_alive(self, msg_id: int, writer: str | None, heartbeat: str | None) -> bool:
        with _TURNS_LOCK:
            live = (self._key, msg_id) in _LIVE
        return _alive(writer, heartbeat, live)

    def _remove_orphans(self) -> None:
        """Delete the turns this process failed while the database was unreachable (see
        ``abort_turn``), unless another process has settled their reply since."""
        with _TURNS_LOCK:
            orphans = list(_ORPHANS.get(self._key, ()))
        if not orphans:
            return
        with self._write() as db:
            for t in orphans:
                db.execute(
                    "DELETE FROM messages WHERE id IN (?, ?) "
                    "AND EXISTS (SELECT 1 FROM messages WHERE id = ? AND status = 'streaming')",
                    (t.user_id, t.assistant_id, t.assistant_id),
                )
        with _TURNS_LOCK:
            _ORPHANS[self._key].difference_update(orphans)

    def checkpoint_turn(self, turn: TurnHandle, content: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE messages SET content = ?, heartbeat = ? WHERE id = ? AND status = 'streaming'",
                (content, _now(), turn.assistant_id),
            )

    def finish_turn(
        self,
        turn: TurnHandle,
        content: str,
        *,
        status: Status = Status.COMPLETE,
        tokens: int | None = None,
        token_method: str | None = None,
        usage: Usage | None = None,
        model: str | None = None,
        replaces: Sequence[int] = (),
        steps: Sequence[Message] = (),
    ) -> Message:
        """End a turn in one transaction; ``replaces`` are message ids it supersedes (retry);
        ``steps`` are the tool calls and results of the turn, stored between the user's
        message and the reply (which moves to the sequence number after them)."""
        if tokens is None:
            tokens, token_method = estimate_tokens(content), "estimate"
        with self._write() as db:
            if steps:
                for step in steps:
                    self._insert_message(db, turn.session_id, step)
                db.execute(
                    "UPDATE messages SET seq = ? WHERE id = ? AND status = 'streaming'",
                    (self._next_seq(db, turn.session_id), turn.assistant_id),
                )
            row = db.execute(
                "UPDATE messages SET content = ?, search_text = ?, status = ?, tokens = ?, token_method = ?, "
                "usage = ?, model = COALESCE(?, model), writer = NULL, heartbeat = NULL "
                f"WHERE id = ? RETURNING {MESSAGE_COLUMNS}",
                (
                    content,
                    index_text(content),
                    Status(status).value,
                    tokens,
                    token_method,
                    json.dumps(usage.to_dict()) if usage else None,
                    model,
                    turn.assistant_id,
                ),
            ).fetchone()
            if replaces:
                db.executemany(
                    "DELETE FROM messages WHERE id = ? AND session_id = ?", [(i, turn.session_id) for i in replaces]
                )
            self._touch(db, turn.session_id)
        with _TURNS_LOCK:
            _LIVE.discard((self._key, turn.assistant_id))
        if row is None:
            raise StoreError("the reply's row disappeared while it streamed (was the session deleted?)")
        return self._message(row)

    def abort_turn(self, turn: TurnHandle) -> None:
        """Remove the turn's two rows. When the database cannot be reached now (the failure that
        ended the turn, often), they are removed by this process's next turn or ``recover``
        instead; meanwhile no one takes the reply for a live one."""
        with _TURNS_LOCK:
            _LIVE.discard((self._key, turn.assistant_id))
        try:
            with self._write() as db:
                db.execute("DELETE FROM messages WHERE id IN (?, ?)", (turn.user_id, turn.assistant_id))
        except (StoreError, sqlite3.Error):
            with _TURNS_LOCK:
                _ORPHANS.setdefault(self._key, set()).add(turn)
