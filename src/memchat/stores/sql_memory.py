"""The SQL store's memory records: summaries, pins, paging, the scope of a search, generated
images, token calibration, and the change counters that let a reader keep a session's history
cached (kept by the database's triggers, ``stores/counters.py``).

A mixin of ``SQLStore`` (``stores/sql.py``: the dialect, the sessions and messages); its SQL is
written once for both engines. Each engine's store adds its own full-text search
(``SQLiteStore``: FTS5; ``PostgresStore``: ``pg_trgm`` and ``tsvector``), over the scope
``_scope`` gives.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Sequence
from typing import Any, Protocol

from memchat.domain import ImageRecord, Message, SessionKey, Summary
from memchat.errors import StoreError
from memchat.stores.columns import MESSAGE_COLUMNS, format_time, parse_time
from memchat.stores.columns import now_text as _now
from memchat.stores.dialect import Transaction
from memchat.tokens import RATIO_BOUNDS

#: sessions whose turns may be recalled into others (an incognito session's may not);
#: settings are stored as ``json.dumps(..., sort_keys=True)``, which writes ``"incognito": true``
NOT_INCOGNITO = "s.settings NOT LIKE '%\"incognito\": true%'"

#: weight of a new observation in the calibration's moving average
_CALIBRATION_ALPHA = 0.3
#: matches read per search term (newest first): the cost of a search is bounded by the terms,
#: not by the length of the history
PER_TERM = 64


def insert_image(db: Transaction, sid: int, im: ImageRecord, after_seq: int) -> ImageRecord:
    """One row of ``images`` (inside the caller's transaction)."""
    created = format_time(im.created) if im.created else _now()
    row = db.execute(
        "INSERT INTO images (session_id, after_seq, prompt, params, provider, model, task_id, path, mime, size, "
        "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    ).fetchone()
    return dataclasses.replace(im, id=int(row[0]), after_seq=after_seq, created=parse_time(created))


class _Host(Protocol):
    """What the mixin needs from ``SQLStore``."""

    owner: int

    def _write(self) -> contextlib.AbstractContextManager[Transaction]: ...
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def _session_id(self, db: Transaction | None, session: SessionKey) -> int: ...
    def _sid(self, session: SessionKey) -> int: ...
    @staticmethod
    def _message(row: Sequence[Any]) -> Message: ...
    @staticmethod
    def _summary(row: Sequence[Any]) -> Summary: ...


class MemoryRecords:
    """Methods mixed into ``SQLStore``; they use its dialect through ``_read`` and ``_write``."""

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
                raise StoreError(f"message {message_id} is not in this session")
            db.execute(
                "INSERT INTO pins (message_id, session_id, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (message_id, sid, _now()),
            )

    def unpin(self: _Host, session: SessionKey, message_id: int) -> bool:
        with self._write() as db:
            sid = self._session_id(db, session)
            cur = db.execute("DELETE FROM pins WHERE message_id = ? AND session_id = ?", (message_id, sid))
            return bool(cur.rowcount > 0)

    # -- what a search reads --------------------------------------------------------------

    def has_other_sessions(self: _Host, session: SessionKey | None) -> bool:
        """Whether the owner has a session with settled messages, not incognito, besides
        ``session``: whether recall across sessions can find anything at all."""
        params: list[Any] = [self.owner]
        other = ""
        if session is not None:
            other, params = " AND s.id != ?", [self.owner, self._sid(session)]
        rows = self._read(
            f"SELECT 1 FROM sessions s WHERE s.owner_id = ? AND s.settled_count > 0{other} AND {NOT_INCOGNITO} LIMIT 1",
            params,
        )
        return bool(rows)

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
        observed = min(max(observed, RATIO_BOUNDS[0]), RATIO_BOUNDS[1])
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
