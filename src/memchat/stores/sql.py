"""The SQL store: sessions, messages and accounts in a relational database, over a ``Dialect``.

Every statement is written once, in the SQL SQLite and PostgreSQL both speak (``?``
placeholders, ``INSERT … ON CONFLICT``, ``RETURNING``), and run through the store's dialect
(``stores/dialect.py``), which owns the connection, the write transaction, retries, errors and
the schema. The mixins add the rest of the ``Store`` protocol in the same SQL: turns
(``sql_turns.py``), summaries, pins, images and calibration (``sql_memory.py``), long-term
memories (``sql_memories.py``) and message vectors (``sql_vectors.py``). What differs between
engines beyond the dialect, full-text search, lives in ``SQLiteStore`` and ``PostgresStore``,
the two subclasses; their constructors pick the dialect.

A store may be shared by threads; ``for_owner`` gives views of the same database scoped to
another user, which share the dialect (closing a view leaves it open).
"""

from __future__ import annotations

import abc
import contextlib
import copy
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Self

from memchat.domain import (
    ImageRecord,
    Memory,
    Message,
    Role,
    SearchHit,
    SessionInfo,
    SessionKey,
    Status,
    Summary,
)
from memchat.errors import SessionExists, SessionNotFound, StoreError
from memchat.memory.terms import index_text
from memchat.stores.base import ImportedVersion, SessionRef
from memchat.stores.columns import MESSAGE_COLUMNS, attachments_to_json, message_from_row
from memchat.stores.columns import format_time as _format_time
from memchat.stores.columns import now_text as _now
from memchat.stores.columns import parse_time as _parse_time
from memchat.stores.dialect import Dialect, IntegrityViolation, Transaction
from memchat.stores.sql_attachments import AttachmentRecords, store_attachments, sweep
from memchat.stores.sql_memories import MemoriesRecords
from memchat.stores.sql_memory import MemoryRecords, insert_image
from memchat.stores.sql_turns import TurnRecords, writer_id
from memchat.stores.sql_vectors import VectorRecords
from memchat.stores.sql_versions import NEXT_MESSAGE_ID, VersionRecords, drop_versions
from memchat.tokens import estimate_tokens

LOCAL_USER = 1


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_SESSION_COLUMNS = (
    "s.id, s.name, s.persona, s.model, s.provider, s.memory, s.settings, s.parent_id, "
    "s.fork_at, s.created, s.updated, s.settled_count"
)


def search_text(msg: Message) -> str | None:
    """What the word index reads of a message (None: its content): Chinese as bigrams, and the
    description of its attachments (their names and types are found, never their bytes)."""
    if not msg.attachments:
        return index_text(msg.content)
    names = " ".join(re.sub(r"[\W_]+", " ", a.name) for a in msg.attachments)  # "q3-report.pdf": q3 report pdf
    text = f"{msg.described}\n{names}"
    return index_text(text) or text


class SQLStore(TurnRecords, VersionRecords, MemoryRecords, MemoriesRecords, VectorRecords, AttachmentRecords, abc.ABC):
    """Sessions and messages in the database ``dialect`` reaches (``SQLiteStore`` and
    ``PostgresStore`` are the ones to open; they add full-text search)."""

    def __init__(self, dialect: Dialect, *, migrate: bool | None = True) -> None:
        """``migrate``: True applies pending migrations, False refuses a database that needs
        some, None leaves it as it is (``memchat db``)."""
        self._dialect = dialect
        #: the database as shown in messages (a path; a URL without its password)
        self.path = dialect.location
        #: whose sessions this store sees (the local user unless ``for_owner`` says otherwise)
        self.owner = LOCAL_USER
        self._view = False
        self._writer = writer_id()
        if migrate:
            self.migrate()
        elif migrate is False:
            pending = self.pending_migrations()
            if pending:
                dialect.close()
                raise StoreError(
                    f"the database {self.path} needs {len(pending)} migration(s) ({', '.join(pending)}); "
                    "run: memchat db migrate"
                )
        if migrate is not None:
            self.recover()

    # -- full-text search: each engine's own (see the ``Store`` protocol) ----------------

    @abc.abstractmethod
    def search(
        self,
        terms: Sequence[str],
        *,
        session: SessionKey | None = None,
        before_seq: int | None = None,
        exclude_session: SessionKey | None = None,
        limit: int = 20,
    ) -> list[SearchHit]: ...

    @abc.abstractmethod
    def search_words(
        self,
        words: Sequence[str],
        *,
        session: SessionKey | None = None,
        before_seq: int | None = None,
        exclude_session: SessionKey | None = None,
        limit: int = 50,
    ) -> list[SearchHit]: ...

    @abc.abstractmethod
    def search_memories(self, words: Sequence[str], *, limit: int = 20) -> list[tuple[Memory, float]]: ...

    # -- plumbing ---------------------------------------------------------------------

    def _bulk_written(self) -> None:
        """An import or a fork has just written many messages: what the engine defers per message
        (SQLite's search backlog) is done now, by the bulk write, not by the next turn."""

    def _write(self) -> contextlib.AbstractContextManager[Transaction]:
        """One write transaction (``Dialect.write``)."""
        return self._dialect.write()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._dialect.read(sql, params)

    def pending_migrations(self) -> list[str]:
        """Migrations this memchat knows that the database has not had yet."""
        return self._dialect.pending_migrations()

    def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied now."""
        return self._dialect.migrate()

    def close(self) -> None:
        if self._view:  # the connection belongs to the store this view came from
            return
        self._dialect.close()

    @property
    def cache_key(self) -> str:
        """Names this database as seen by this owner, for caches kept outside the store (a
        ``for_owner`` view of the same user shares it)."""
        return f"{self._dialect.key}#{self.owner}"

    def for_owner(self, user_id: int) -> Self:
        """The same database seen as user ``user_id``: every lookup is scoped to their sessions."""
        view = copy.copy(self)
        view.owner = user_id
        view._view = True
        return view

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- users (the server's accounts) ------------------------------------------------------

    def add_user(self, name: str) -> tuple[int, str]:
        """A new user and their token (shown once; only its hash is kept)."""
        if not name.strip() or len(name) > 100:
            raise StoreError("a user name must be 1 to 100 characters")
        token = secrets.token_urlsafe(32)
        with self._write() as db:
            try:
                row = db.execute(
                    "INSERT INTO users (name, created, token_hash) VALUES (?, ?, ?) RETURNING id",
                    (name, _now(), _hash(token)),
                ).fetchone()
            except IntegrityViolation:
                raise StoreError(f"a user named {name!r} already exists") from None
        return int(row[0]), token

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
                row = db.execute(
                    "INSERT INTO users (name, created, token_hash) VALUES (?, ?, ?) RETURNING id",
                    (name, created, token_hash),
                ).fetchone()
            except IntegrityViolation:
                raise StoreError(f"a user named {name!r} already exists") from None
        return int(row[0])

    def remove_user(self, name: str) -> bool:
        """Remove a user with all their sessions."""
        with self._write() as db:
            return db.execute("DELETE FROM users WHERE name = ? AND id != ?", (name, LOCAL_USER)).rowcount > 0

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

    def _session_id(self, db: Transaction | None, session: SessionKey) -> int:
        """The id of one of the owner's sessions (``SessionNotFound``), looked up inside the
        transaction ``db``, or outside any with None."""
        if isinstance(session, SessionInfo):
            session = session.id
        params: tuple[Any, ...]
        if isinstance(session, int):
            sql, params = "SELECT id FROM sessions WHERE id = ? AND owner_id = ?", (session, self.owner)
        else:
            sql, params = "SELECT id FROM sessions WHERE owner_id = ? AND name = ?", (self.owner, session)
        rows = db.execute(sql, params).fetchall() if db is not None else self._read(sql, params)
        if not rows:
            raise SessionNotFound(f"no session named {session!r}", name=session)
        return int(rows[0][0])

    def _sid(self, session: SessionKey) -> int:
        """A session's id; an int is taken as it is (callers that hold an id skip a lookup)."""
        if isinstance(session, int):
            return session
        if isinstance(session, SessionInfo):
            return session.id
        return self._session_id(None, session)

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

    def _free_name(self, db: Transaction, base: str) -> str:
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
        db: Transaction,
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
            row = db.execute(
                "INSERT INTO sessions (owner_id, name, persona, model, provider, memory, settings, "
                "parent_id, fork_at, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
            ).fetchone()
        except IntegrityViolation as exc:
            raise SessionExists(f"a session named {name!r} already exists", name=name) from exc
        return int(row[0])

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
                except IntegrityViolation as exc:
                    raise SessionExists(f"a session named {name!r} already exists", name=name) from exc
        return self.get_session(sid)

    def update_settings(self, session: SessionKey, changes: Mapping[str, Any]) -> SessionInfo:
        """Merge ``changes`` into the session's settings in one write (a None value removes its
        key): writers of different keys (a title written in the background, incognito switched
        on meanwhile) never undo each other. ``updated`` stays as it was (not a change of the
        conversation)."""
        with self._write() as db:
            sid = self._session_id(db, session)
            row = db.execute("SELECT settings FROM sessions WHERE id = ?", (sid,)).fetchone()
            try:
                settings = json.loads(row[0]) if row and row[0] else {}
            except ValueError:
                settings = {}
            if not isinstance(settings, dict):
                settings = {}
            for key, value in changes.items():
                if value is None:
                    settings.pop(key, None)
                else:
                    settings[key] = value
            text = json.dumps(settings, ensure_ascii=False, sort_keys=True)
            db.execute("UPDATE sessions SET settings = ? WHERE id = ?", (text, sid))
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
            base = int(db.execute(f"SELECT {NEXT_MESSAGE_ID}").fetchone()[0]) - 1
            db.execute(
                "INSERT INTO messages (id, session_id, seq, role, content, search_text, tool_calls, tool_call_id, "
                "attachments, status, tokens, token_method, usage, model, created) "
                "SELECT ? + n, ?, n, role, content, search_text, tool_calls, tool_call_id, attachments, status, "
                "tokens, token_method, usage, model, created FROM (SELECT ROW_NUMBER() OVER (ORDER BY seq) AS n, "
                "role, content, search_text, tool_calls, tool_call_id, attachments, status, tokens, token_method, "
                "usage, model, created FROM messages WHERE session_id = ? AND status != 'streaming' "
                "ORDER BY seq LIMIT ?) copied",
                (base, sid, src, cut),
            )
            db.execute(
                "UPDATE sessions SET last_seq = (SELECT COUNT(*) FROM messages WHERE session_id = ?) WHERE id = ?",
                (sid, sid),
            )
        self._bulk_written()
        return self.get_session(sid)

    def delete_session(self, session: SessionKey) -> None:
        with self._write() as db:
            sid = self._session_id(db, session)
            db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
            sweep(db, self.owner)  # its files, unless another session of theirs names them

    # -- messages ---------------------------------------------------------------------

    @staticmethod
    def _message(row: Sequence[Any]) -> Message:
        return message_from_row(row)

    def messages(
        self, session: SessionKey, *, include_streaming: bool = False, after: int | None = None
    ) -> list[Message]:
        """The session's messages in order; ``after`` gives only those with a greater ``seq``."""
        sid = session if isinstance(session, int) and after is not None else self._session_id(None, session)
        where = "" if include_streaming else " AND status != 'streaming'"
        if after is not None:
            where += f" AND seq > {int(after)}"
        rows = self._read(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?{where} ORDER BY seq", (sid,))
        return [self._message(r) for r in rows]

    @staticmethod
    def _next_seq(db: Transaction, sid: int) -> int:
        """The next sequence number: strictly increasing per session, never reused after a delete."""
        row = db.execute("UPDATE sessions SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (sid,))
        return int(row.fetchone()[0])

    def _insert_message(self, db: Transaction, sid: int, msg: Message, writer: str | None = None) -> int:
        tokens, method = msg.tokens, msg.token_method
        if tokens is None:
            tokens, method = estimate_tokens(msg.content), "estimate"
        now = _now()
        row = db.execute(
            "INSERT INTO messages (id, session_id, seq, role, content, search_text, status, tokens, token_method, "
            "usage, model, writer, heartbeat, created, tool_calls, tool_call_id, attachments) "
            f"VALUES ({NEXT_MESSAGE_ID}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                sid,
                self._next_seq(db, sid),
                Role(msg.role).value,
                msg.content,
                search_text(msg),
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
                attachments_to_json(msg.attachments),
            ),
        ).fetchone()
        store_attachments(db, self.owner, msg.attachments)
        return int(row[0])

    def _touch(self, db: Transaction, sid: int) -> None:
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
            self._drop_versions_from(db, sid, int(row[0]))
            cur = db.execute(
                "DELETE FROM messages WHERE session_id = ? AND seq >= ? AND status != 'streaming'", (sid, row[0])
            )
            sweep(db, self.owner)
            self._touch(db, sid)
            return cur.rowcount

    @staticmethod
    def _drop_versions_from(db: Transaction, sid: int, seq: int) -> None:
        """The messages from ``seq`` on are about to go: so do the versions of their points and
        of the point of the first of them (none of these points is left)."""
        after = db.execute(
            "SELECT id FROM messages WHERE session_id = ? AND seq < ? AND status != 'streaming' "
            "ORDER BY seq DESC LIMIT 1",
            (sid, seq),
        ).fetchone()
        going = db.execute(
            "SELECT id FROM messages WHERE session_id = ? AND seq >= ? AND status != 'streaming'", (sid, seq)
        ).fetchall()
        drop_versions(db, sid, [after[0] if after else None, *(int(r[0]) for r in going)])

    def remove_last_turn(self, session: SessionKey) -> list[Message]:
        """Remove the last user message and everything after it, with their versions (and the
        other versions of that message); return what was removed."""
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
            self._drop_versions_from(db, sid, int(row[0]))
            db.execute(
                "DELETE FROM messages WHERE session_id = ? AND seq >= ? AND status != 'streaming'", (sid, row[0])
            )
            if any(m.attachments for m in removed):
                sweep(db, self.owner)
            self._touch(db, sid)
        return removed

    def _insert_version(
        self, db: Transaction, sid: int, version: ImportedVersion, ids: list[int], numbered: list[int], total: int
    ) -> list[int]:
        """Store an imported version set aside (``ImportedVersion``): ``ids`` are the session's
        messages stored so far, ``numbered`` the versions' messages stored so far, ``total`` how
        many messages the import has; the ids of its messages."""
        after = version.after
        if after <= total:
            if after > len(ids):
                raise StoreError(f"a version follows message {after}, which comes after it")
            anchor = ids[after - 1] if after else None
        else:
            if after - total > len(numbered):
                raise StoreError(f"a version follows message {after}, which comes after it")
            anchor = numbered[after - total - 1]
        if not version.messages:
            raise StoreError("a version holds no message")
        made: list[int] = []
        for index, m in enumerate(version.messages):
            new_id = int(db.execute(f"SELECT {NEXT_MESSAGE_ID}").fetchone()[0])
            tokens, method = m.tokens, m.token_method
            if tokens is None:
                tokens, method = estimate_tokens(m.content), "estimate"
            db.execute(
                "INSERT INTO message_versions (id, session_id, head_id, after_id, seq, role, content, search_text, "
                "tool_calls, tool_call_id, status, tokens, token_method, usage, model, created, pinned, attachments) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_id,
                    sid,
                    made[0] if made else new_id,
                    anchor,
                    self._next_seq(db, sid),
                    Role(m.role).value,
                    m.content,
                    search_text(m),
                    json.dumps(list(m.tool_calls), ensure_ascii=False) if m.tool_calls else None,
                    m.tool_call_id,
                    Status(m.status).value,
                    tokens,
                    method,
                    json.dumps(m.usage.to_dict()) if m.usage else None,
                    m.model,
                    _format_time(m.created) if m.created else _now(),
                    1 if index in version.pins else 0,
                    attachments_to_json(m.attachments),
                ),
            )
            store_attachments(db, self.owner, m.attachments)
            made.append(new_id)
        return made

    def import_session(
        self,
        info: SessionInfo,
        messages: Sequence[Message],
        *,
        summaries: Sequence[Summary] = (),
        pins: Sequence[int] = (),
        images: Sequence[ImageRecord] = (),
        versions: Sequence[ImportedVersion] = (),
    ) -> SessionInfo:
        """Create a session with its messages, summaries, pins, images and the versions set
        aside in one transaction (all or nothing). A summary's ``first_seq``/``last_seq`` are
        1-based positions in ``messages``; ``pins`` are 0-based indexes into ``messages``; an
        image's ``after_seq`` is the number (from 1; 0: before any) of the message it follows;
        a version is stored where it comes among the messages (``ImportedVersion``), so that
        seqs keep the order in which every message and version began."""
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
            ids: list[int] = []
            numbered: list[int] = []  # ids by number: the messages, then the versions' messages
            pending = sorted(enumerate(versions), key=lambda kv: (kv[1].position, kv[0]))
            for position in range(len(messages) + 1):
                while pending and pending[0][1].position <= position:
                    numbered.extend(self._insert_version(db, sid, pending.pop(0)[1], ids, numbered, len(messages)))
                if position < len(messages):
                    ids.append(self._insert_message(db, sid, messages[position]))
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
                    "INSERT INTO pins (message_id, session_id, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (ids[index], sid, _now()),
                )
            for im in images:
                if not 0 <= im.after_seq <= len(seqs):
                    raise StoreError(f"an image follows message {im.after_seq} of {len(seqs)}")
                insert_image(db, sid, im, seqs[im.after_seq - 1] if im.after_seq else 0)
            updated = _format_time(info.updated) if info.updated else _now()
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (updated, sid))
        self._bulk_written()
        return self.get_session(sid)
