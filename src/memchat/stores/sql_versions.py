"""The SQL store's reply versions: a point of a session with more than one version.

Regenerating a reply, or editing a user message, makes a new version of that point of the
session: the old one is not deleted but set aside. ``messages`` keeps what is shown — one path
through the versions, the session's history as every reader knows it (memory, recall, search,
counters, export order) — and ``message_versions`` (``stores/ddl.py``) holds the versions not
shown, each row a message as it was (id, seq, columns, pinned, vector) with the version it
belongs to (``head_id``: the id of the version's first message) and the message the version
follows (``after_id``; NULL: the session's start). Setting a version aside moves the shown
path from its first message on into ``message_versions``; showing one moves it back, ids and
seqs unchanged (seqs only grow, so any path through the versions is in seq order). A version
set aside may hold later points with versions of their own: their ``after_id`` names one of its
messages, and they come back with it.

Moving rows out of ``messages`` is a delete to the triggers (``stores/counters.py``): the
session's ``rewrites`` moves and the summaries covering what left are dropped — memory is
planned again from the path now shown. Message ids are given by the store rather than the
engine (``NEXT_MESSAGE_ID``), one more than any id a message has now, shown or set aside:
SQLite gives a new row the largest id plus one, which could be the id of a message set aside.

A mixin of ``SQLStore`` (``stores/sql.py``), written once for both engines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from memchat.domain import Message, Role, SessionKey, Version, Versions
from memchat.errors import StoreError, TurnInProgress
from memchat.stores.base import ShelvedVersion
from memchat.stores.columns import MESSAGE_COLUMNS, message_from_row
from memchat.stores.columns import now_text as _now
from memchat.stores.dialect import Transaction
from memchat.tokens import estimate_tokens

#: the id of a new message: one more than any a message has, shown or set aside
NEXT_MESSAGE_ID = (
    "(SELECT COALESCE(MAX(id), 0) + 1 FROM "
    "(SELECT MAX(id) AS id FROM messages UNION ALL SELECT MAX(id) AS id FROM message_versions) ids)"
)
#: the columns a message keeps while it is set aside (both tables have them)
_KEPT = (
    "id, session_id, seq, role, content, search_text, tool_calls, tool_call_id, attachments, status, "
    "tokens, token_method, usage, model, created"
)
#: ``MESSAGE_COLUMNS`` read from ``message_versions``
_VERSION_COLUMNS = MESSAGE_COLUMNS


class _Host(Protocol):
    """What the mixin needs from ``SQLStore``."""

    def _write(self) -> contextlib.AbstractContextManager[Transaction]: ...
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def _session_id(self, db: Transaction | None, session: SessionKey) -> int: ...
    def _sid(self, session: SessionKey) -> int: ...
    def _touch(self, db: Transaction, sid: int) -> None: ...
    def _row_alive(self, msg_id: int, writer: str | None, heartbeat: str | None) -> bool: ...
    @staticmethod
    def _message(row: Sequence[Any]) -> Message: ...


class _Writers(Protocol):
    def _row_alive(self, msg_id: int, writer: str | None, heartbeat: str | None) -> bool: ...


def settle_streaming(host: _Writers, db: Transaction, sid: int) -> None:
    """``TurnInProgress`` while a reply streams in the session; a reply left streaming by a
    writer that is gone becomes ``interrupted`` (it is then part of the history)."""
    for msg_id, writer, heartbeat, content in db.execute(
        "SELECT id, writer, heartbeat, content FROM messages WHERE session_id = ? AND status = 'streaming'", (sid,)
    ).fetchall():
        if host._row_alive(msg_id, writer, heartbeat):
            raise TurnInProgress("another reply is still being generated in this session; wait for it or stop it")
        db.execute(
            "UPDATE messages SET status = 'interrupted', writer = NULL, tokens = ?, token_method = 'estimate' "
            "WHERE id = ?",
            (estimate_tokens(content), msg_id),
        )


def shelve(db: Transaction, sid: int, head_id: int) -> None:
    """Set aside the shown path of session ``sid`` from message ``head_id`` on (a settled
    message of it) as a version of its point."""
    row = db.execute(
        "SELECT seq FROM messages WHERE id = ? AND session_id = ? AND status != 'streaming'", (head_id, sid)
    ).fetchone()
    if row is None:
        raise StoreError(f"message {head_id} is not in this session")
    seq = int(row[0])
    before = db.execute(
        "SELECT id FROM messages WHERE session_id = ? AND seq < ? AND status != 'streaming' ORDER BY seq DESC LIMIT 1",
        (sid, seq),
    ).fetchone()
    db.execute(
        f"INSERT INTO message_versions ({_KEPT}, head_id, after_id, pinned, vector_model, vector) "
        f"SELECT {', '.join('m.' + c.strip() for c in _KEPT.split(','))}, ?, ?, "
        "CASE WHEN p.message_id IS NULL THEN 0 ELSE 1 END, v.model, v.vector "
        "FROM messages m LEFT JOIN pins p ON p.message_id = m.id LEFT JOIN message_vectors v ON v.message_id = m.id "
        "WHERE m.session_id = ? AND m.seq >= ?",
        (head_id, before[0] if before else None, sid, seq),
    )
    db.execute("DELETE FROM messages WHERE session_id = ? AND seq >= ?", (sid, seq))


def show(db: Transaction, sid: int, head_id: int) -> bool:
    """Show the version of session ``sid`` whose first message is ``head_id``: the shown path
    after the message that version follows is set aside, and the version takes its place.
    False when ``head_id`` is shown already."""
    if db.execute("SELECT 1 FROM messages WHERE id = ? AND session_id = ?", (head_id, sid)).fetchone():
        return False
    row = db.execute(
        "SELECT after_id FROM message_versions WHERE id = ? AND head_id = id AND session_id = ?", (head_id, sid)
    ).fetchone()
    if row is None:
        raise StoreError(f"there is no version {head_id} in this session")
    after = row[0]
    after_seq = 0
    if after is not None:
        found = db.execute("SELECT seq FROM messages WHERE id = ? AND session_id = ?", (after, sid)).fetchone()
        if found is None:
            raise StoreError("that version follows a message that is not shown; show the version holding it first")
        after_seq = int(found[0])
    current = db.execute(
        "SELECT id FROM messages WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT 1", (sid, after_seq)
    ).fetchone()
    if current is not None:
        shelve(db, sid, int(current[0]))
    db.execute(
        f"INSERT INTO messages ({_KEPT}) SELECT {_KEPT} FROM message_versions "
        "WHERE session_id = ? AND head_id = ? ORDER BY seq",
        (sid, head_id),
    )
    db.execute(
        "INSERT INTO pins (message_id, session_id, created) SELECT id, session_id, ? FROM message_versions "
        "WHERE session_id = ? AND head_id = ? AND pinned = 1",
        (_now(), sid, head_id),
    )
    db.execute(
        "INSERT INTO message_vectors (message_id, model, vector) SELECT id, vector_model, vector "
        "FROM message_versions WHERE session_id = ? AND head_id = ? AND vector IS NOT NULL",
        (sid, head_id),
    )
    db.execute("DELETE FROM message_versions WHERE session_id = ? AND head_id = ?", (sid, head_id))
    return True


def drop_versions(db: Transaction, sid: int, after: Sequence[int | None]) -> int:
    """Delete the versions set aside that follow any of the messages ``after`` (None: the
    session's start), and the versions that follow their messages in turn; how many rows went."""
    gone = 0
    pending = list(dict.fromkeys(after))
    while pending:
        ids = [a for a in pending if a is not None]
        where = []
        params: list[Any] = [sid]
        if ids:
            where.append(f"after_id IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        if None in pending:
            where.append("after_id IS NULL")
        heads = [
            int(r[0])
            for r in db.execute(
                f"SELECT DISTINCT head_id FROM message_versions WHERE session_id = ? AND ({' OR '.join(where)})", params
            ).fetchall()
        ]
        if not heads:
            break
        marks = ", ".join("?" * len(heads))
        pending = [
            int(r[0])
            for r in db.execute(
                f"SELECT id FROM message_versions WHERE session_id = ? AND head_id IN ({marks})", (sid, *heads)
            ).fetchall()
        ]
        gone += len(pending)
        db.execute(f"DELETE FROM message_versions WHERE session_id = ? AND head_id IN ({marks})", (sid, *heads))
    return gone


def _first_turn(messages: Sequence[Message]) -> tuple[Message, ...]:
    """A version's first message and what follows it up to the next user message."""
    end = next((i for i, m in enumerate(messages) if i and m.role is Role.USER), len(messages))
    return tuple(messages[:end])


class VersionRecords:
    """Methods mixed into ``SQLStore``."""

    def versions(self: _Host, session: SessionKey, message_id: int) -> list[Version]:
        """The versions of the point where the shown message ``message_id`` is (its own version
        among them), oldest first; one when the point has no other."""
        sid = self._sid(session)
        found = self._read(
            "SELECT seq FROM messages WHERE id = ? AND session_id = ? AND status != 'streaming'", (message_id, sid)
        )
        if not found:
            raise StoreError(f"message {message_id} is not shown in this session")
        seq = int(found[0][0])
        before = self._read(
            "SELECT id FROM messages WHERE session_id = ? AND seq < ? AND status != 'streaming' "
            "ORDER BY seq DESC LIMIT 1",
            (sid, seq),
        )
        after = int(before[0][0]) if before else None
        # the shown version's first turn (a turn's tool steps are few), and how many follow it
        mine = [
            self._message(r)
            for r in self._read(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ? AND seq >= ? "
                "AND status != 'streaming' ORDER BY seq LIMIT 64",
                (sid, seq),
            )
        ]
        total = int(
            self._read(
                "SELECT COUNT(*) FROM messages WHERE session_id = ? AND seq >= ? AND status != 'streaming'", (sid, seq)
            )[0][0]
        )
        rows = self._read(
            f"SELECT {_VERSION_COLUMNS}, head_id FROM message_versions WHERE session_id = ? AND "
            + ("after_id IS NULL" if after is None else "after_id = ?")
            + " ORDER BY head_id, seq",
            (sid,) if after is None else (sid, after),
        )
        grouped: dict[int, list[Message]] = {}
        for r in rows:
            grouped.setdefault(int(r[-1]), []).append(message_from_row(r[:-1]))
        first = _first_turn(mine)
        listed = [Version(message_id, after, True, first, total - len(first))]
        for head, messages in grouped.items():
            first = _first_turn(messages)
            listed.append(Version(head, after, False, first, len(messages) - len(first)))
        listed.sort(key=lambda v: v.messages[0].seq or 0)
        return [Version(v.head, v.after, v.shown, v.messages, v.more, n) for n, v in enumerate(listed, 1)]

    def version_marks(self: _Host, session: SessionKey) -> dict[int, Versions]:
        """Each shown message that has versions (its point has more than one): which it is and
        the first message of each (oldest first)."""
        sid = self._sid(session)
        shelved = self._read(
            "SELECT head_id, after_id, seq FROM message_versions WHERE session_id = ? AND id = head_id", (sid,)
        )
        if not shelved:
            return {}
        by_after: dict[int | None, list[tuple[int, int]]] = {}
        for head, after, seq in shelved:
            by_after.setdefault(None if after is None else int(after), []).append((int(seq), int(head)))
        marks: dict[int, Versions] = {}
        previous: int | None = None
        for msg_id, seq in self._read(
            "SELECT id, seq FROM messages WHERE session_id = ? AND status != 'streaming' ORDER BY seq", (sid,)
        ):
            others = by_after.get(previous)
            if others:
                heads = sorted([*others, (int(seq), int(msg_id))])
                ids = tuple(h for _, h in heads)
                marks[int(msg_id)] = Versions(ids.index(int(msg_id)) + 1, ids)
            previous = int(msg_id)
        return marks

    def choose_version(self: _Host, session: SessionKey, head_id: int) -> bool:
        """Show the version whose first message is ``head_id`` (one of those ``versions``
        lists): what is shown at its point now is set aside, whole. ``TurnInProgress`` while a
        reply streams in the session; False when that version is shown already."""
        with self._write() as db:
            sid = self._session_id(db, session)
            settle_streaming(self, db, sid)
            changed = show(db, sid, head_id)
            if changed:
                self._touch(db, sid)
        return changed

    def shelved_versions(self: _Host, session: SessionKey) -> list[ShelvedVersion]:
        """Every version set aside in the session, whole (the export's ``version`` lines), in
        the order of their first messages."""
        sid = self._sid(session)
        rows = self._read(
            f"SELECT {_VERSION_COLUMNS}, head_id, after_id, pinned FROM message_versions WHERE session_id = ? "
            "ORDER BY head_id, seq",
            (sid,),
        )
        grouped: dict[int, tuple[int | None, list[Message], set[int]]] = {}
        for r in rows:
            head, after, pinned = int(r[-3]), r[-2], bool(r[-1])
            entry = grouped.setdefault(head, (None if after is None else int(after), [], set()))
            message = message_from_row(r[:-3])
            entry[1].append(message)
            if pinned and message.id is not None:
                entry[2].add(message.id)
        found = [ShelvedVersion(head, after, tuple(ms), frozenset(p)) for head, (after, ms, p) in grouped.items()]
        return sorted(found, key=lambda v: v.messages[0].seq or 0)
