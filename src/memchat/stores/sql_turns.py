"""The SQL store's turns: a reply is written in three steps so that a crash never leaves half a
turn (see ``stores/base.py``), and a reply left streaming by a writer that is gone is found and
marked ``interrupted``.

A mixin of ``SQLStore`` (``stores/sql.py``), written once for both engines. A streaming row
names its writer (host and process) and carries a heartbeat: this process knows its own live
turns, another process of this host is asked whether it lives, and a row of another host is
presumed dead once its heartbeat is older than ``STALE_AFTER``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from memchat.domain import Message, Role, SessionKey, Status, Usage
from memchat.errors import StoreError, TurnInProgress
from memchat.memory.terms import index_text
from memchat.stores.base import TurnHandle
from memchat.stores.columns import MESSAGE_COLUMNS
from memchat.stores.columns import now_text as _now
from memchat.stores.columns import parse_time as _parse_time
from memchat.stores.dialect import Dialect, Transaction
from memchat.tokens import estimate_tokens

#: a streaming row from another host is presumed dead after this long without a heartbeat
STALE_AFTER = timedelta(minutes=10)


def writer_id() -> str:
    """Names this process as the writer of a streaming row: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: this process's turns, per database (``Dialect.key``): the reply rows it streams now…
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


class _Host(Protocol):
    """What the mixin needs from ``SQLStore``."""

    _dialect: Dialect
    _writer: str

    def _write(self) -> contextlib.AbstractContextManager[Transaction]: ...
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def _session_id(self, db: Transaction | None, session: SessionKey) -> int: ...
    def _insert_message(self, db: Transaction, sid: int, msg: Message, writer: str | None = None) -> int: ...
    def _touch(self, db: Transaction, sid: int) -> None: ...
    def _row_alive(self, msg_id: int, writer: str | None, heartbeat: str | None) -> bool: ...
    def _remove_orphans(self) -> None: ...
    @staticmethod
    def _next_seq(db: Transaction, sid: int) -> int: ...
    @staticmethod
    def _message(row: Sequence[Any]) -> Message: ...


class TurnRecords:
    """Methods mixed into ``SQLStore``."""

    def recover(self: _Host) -> int:
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

    def begin_turn(self: _Host, session: SessionKey, user: Message | None, *, model: str | None = None) -> TurnHandle:
        """Store the user's message and an empty streaming reply (``user`` None: the reply alone,
        continuing the session's last turn). Turns of one session are serialized: while another
        writer (process, server, REPL) still streams a reply in it, ``TurnInProgress``; a reply
        left streaming by a writer that is gone becomes interrupted."""
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
            uid = self._insert_message(db, sid, user) if user is not None else None
            aid = self._insert_message(
                db,
                sid,
                Message(Role.ASSISTANT, "", status=Status.STREAMING, tokens=0, token_method="estimate", model=model),
                writer=self._writer,
            )
            # ``updated`` moves when the turn ends (finish_turn): an aborted turn leaves no trace
        with _TURNS_LOCK:
            _LIVE.add((self._dialect.key, aid))
        return TurnHandle(sid, uid, aid)

    def _row_alive(self: _Host, msg_id: int, writer: str | None, heartbeat: str | None) -> bool:
        with _TURNS_LOCK:
            live = (self._dialect.key, msg_id) in _LIVE
        return _alive(writer, heartbeat, live)

    def _remove_orphans(self: _Host) -> None:
        """Delete the turns this process failed while the database was unreachable (see
        ``abort_turn``), unless another process has settled their reply since."""
        with _TURNS_LOCK:
            orphans = list(_ORPHANS.get(self._dialect.key, ()))
        if not orphans:
            return
        with self._write() as db:
            for t in orphans:
                db.execute(
                    "DELETE FROM messages WHERE id IN (?, ?) "
                    "AND EXISTS (SELECT 1 FROM messages WHERE id = ? AND status = 'streaming')",
                    (t.user_id if t.user_id is not None else t.assistant_id, t.assistant_id, t.assistant_id),
                )
        with _TURNS_LOCK:
            _ORPHANS[self._dialect.key].difference_update(orphans)

    def checkpoint_turn(self: _Host, turn: TurnHandle, content: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE messages SET content = ?, heartbeat = ? WHERE id = ? AND status = 'streaming'",
                (content, _now(), turn.assistant_id),
            )

    def finish_turn(
        self: _Host,
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
        tool_calls: Sequence[dict[str, Any]] = (),
    ) -> Message:
        """End a turn in one transaction; ``replaces`` are message ids it supersedes (retry);
        ``steps`` are the tool calls and results of the turn, stored between the user's
        message and the reply (which moves to the sequence number after them); ``tool_calls``
        are the reply's own calls, left for the caller to run (a client's tools)."""
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
                "usage = ?, model = COALESCE(?, model), tool_calls = ?, writer = NULL, heartbeat = NULL "
                f"WHERE id = ? RETURNING {MESSAGE_COLUMNS}",
                (
                    content,
                    index_text(content),
                    Status(status).value,
                    tokens,
                    token_method,
                    json.dumps(usage.to_dict()) if usage else None,
                    model,
                    json.dumps(list(tool_calls), ensure_ascii=False) if tool_calls else None,
                    turn.assistant_id,
                ),
            ).fetchone()
            if replaces:
                db.executemany(
                    "DELETE FROM messages WHERE id = ? AND session_id = ?", [(i, turn.session_id) for i in replaces]
                )
            self._touch(db, turn.session_id)
        with _TURNS_LOCK:
            _LIVE.discard((self._dialect.key, turn.assistant_id))
        if row is None:
            raise StoreError("the reply's row disappeared while it streamed (was the session deleted?)")
        return self._message(row)

    def abort_turn(self: _Host, turn: TurnHandle) -> None:
        """Remove the turn's two rows. When the database cannot be reached now (the failure that
        ended the turn, often), they are removed by this process's next turn or ``recover``
        instead; meanwhile no one takes the reply for a live one."""
        with _TURNS_LOCK:
            _LIVE.discard((self._dialect.key, turn.assistant_id))
        unreachable: tuple[type[Exception], ...] = (StoreError, *self._dialect.driver_errors)
        try:
            with self._write() as db:
                ids = [i for i in (turn.user_id, turn.assistant_id) if i is not None]
                db.execute(f"DELETE FROM messages WHERE id IN ({', '.join('?' * len(ids))})", ids)
        except unreachable:
            with _TURNS_LOCK:
                _ORPHANS.setdefault(self._dialect.key, set()).add(turn)
