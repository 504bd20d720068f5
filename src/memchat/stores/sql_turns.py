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
from memchat.errors import StoreError
from memchat.memory.terms import index_text
from memchat.stores.base import TurnHandle
from memchat.stores.columns import MESSAGE_COLUMNS, attachments_from_json
from memchat.stores.columns import now_text as _now
from memchat.stores.columns import parse_time as _parse_time
from memchat.stores.dialect import Dialect, Transaction
from memchat.stores.sql_attachments import drop_unused
from memchat.stores.sql_versions import settle_streaming, shelve, show
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

    owner: int
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

    def begin_turn(
        self: _Host,
        session: SessionKey,
        user: Message | None,
        *,
        model: str | None = None,
        replace: int | None = None,
    ) -> TurnHandle:
        """Store the user's message and an empty streaming reply (``user`` None: the reply alone,
        continuing the session's last turn). With ``replace``, the turn is a new version of the
        point where that shown message is (a retry: the reply after the last question; an edit:
        the user message edited): the shown path from it on is set aside first, whole, in the
        same transaction (``sql_versions.py``). Turns of one session are serialized: while
        another writer (process, server, REPL) still streams a reply in it, ``TurnInProgress``;
        a reply left streaming by a writer that is gone becomes interrupted."""
        self._remove_orphans()
        with self._write() as db:
            sid = self._session_id(db, session)
            settle_streaming(self, db, sid)
            if replace is not None:
                shelve(db, sid, replace)
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
        return TurnHandle(sid, uid, aid, replace)

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
                live = db.execute("SELECT 1 FROM messages WHERE id = ? AND status = 'streaming'", (t.assistant_id,))
                if live.fetchone() is None:
                    continue
                ids = (t.user_id if t.user_id is not None else t.assistant_id, t.assistant_id)
                db.execute("DELETE FROM messages WHERE id IN (?, ?)", ids)
                if t.shelved is not None:  # what the turn set aside is shown again
                    with contextlib.suppress(StoreError):
                        show(db, t.session_id, t.shelved)
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
        steps: Sequence[Message] = (),
        tool_calls: Sequence[dict[str, Any]] = (),
    ) -> Message:
        """End a turn in one transaction; ``steps`` are the tool calls and results of the turn,
        stored between the user's message and the reply (which moves to the sequence number after them); ``tool_calls``
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
            self._touch(db, turn.session_id)
        with _TURNS_LOCK:
            _LIVE.discard((self._dialect.key, turn.assistant_id))
        if row is None:
            raise StoreError("the reply's row disappeared while it streamed (was the session deleted?)")
        return self._message(row)

    def abort_turn(self: _Host, turn: TurnHandle, *, keep_question: bool = False) -> None:
        """Remove the turn's two rows and show again the version it set aside, if any. With
        ``keep_question`` (a turn stopped before its reply began) only the empty reply goes:
        the user's message stays, as the version shown (a retry, which has none of its own,
        shows the version it set aside again). When the database cannot be reached now (the
        failure that ended the turn, often), the turn is removed by this process's next turn or
        ``recover`` instead; meanwhile no one takes the reply for a live one."""
        with _TURNS_LOCK:
            _LIVE.discard((self._dialect.key, turn.assistant_id))
        unreachable: tuple[type[Exception], ...] = (StoreError, *self._dialect.driver_errors)
        keep = keep_question and turn.user_id is not None
        try:
            with self._write() as db:
                ids = [i for i in (None if keep else turn.user_id, turn.assistant_id) if i is not None]
                held = db.execute(
                    f"SELECT attachments FROM messages WHERE id IN ({', '.join('?' * len(ids))})", ids
                ).fetchall()
                db.execute(f"DELETE FROM messages WHERE id IN ({', '.join('?' * len(ids))})", ids)
                files = [a.sha256 for (text,) in held for a in attachments_from_json(text)]
                if files:  # the failed turn's files go with it (unless another message names them)
                    drop_unused(db, self.owner, files)
                if turn.shelved is not None and not keep:
                    show(db, turn.session_id, turn.shelved)
        except unreachable:
            with _TURNS_LOCK:
                _ORPHANS.setdefault(self._dialect.key, set()).add(turn)
