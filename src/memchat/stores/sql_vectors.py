"""The SQL store's message vectors: one embedding per settled user or assistant message,
written by the background indexer (``memory/vectors.py``) and read back by semantic recall.

A mixin of ``SQLStore``, written once for both engines (``ON CONFLICT``, plain joins). A vector
is opaque bytes to the store (the indexer's encoding), kept with the name of the model that made
it: a message whose vector came from another model counts as not indexed. A vector goes with
its message (``ON DELETE CASCADE``); vectors never travel in exports or ``db copy`` (they are
remade).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

from memchat.domain import Message, SearchHit, SessionKey
from memchat.stores.columns import MESSAGE_COLUMNS
from memchat.stores.dialect import Transaction
from memchat.stores.sql_memory import NOT_INCOGNITO

#: the messages worth a vector: what the user and the assistant said, settled, not empty
_INDEXABLE = "m.role IN ('user', 'assistant') AND m.status != 'streaming' AND m.content != ''"


class _Host(Protocol):
    owner: int

    def _write(self) -> contextlib.AbstractContextManager[Transaction]: ...
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
    def _sid(self, session: SessionKey) -> int: ...
    @staticmethod
    def _message(row: Sequence[Any]) -> Message: ...


class VectorRecords:
    """Methods mixed into ``SQLStore``."""

    def vectors_missing(self: _Host, model: str, limit: int = 32) -> list[tuple[int, str]]:
        """(id, text) of the owner's messages with no vector made by ``model``, newest first
        (the recent past is the likeliest to be asked about), not those of incognito sessions."""
        rows = self._read(
            "SELECT m.id, m.content FROM messages m JOIN sessions s ON s.id = m.session_id "
            "LEFT JOIN message_vectors v ON v.message_id = m.id AND v.model = ? "
            f"WHERE s.owner_id = ? AND {_INDEXABLE} AND {NOT_INCOGNITO} AND v.message_id IS NULL "
            "ORDER BY m.id DESC LIMIT ?",
            (model, self.owner, int(limit)),
        )
        return [(int(r[0]), str(r[1])) for r in rows]

    def add_vectors(self: _Host, model: str, vectors: Sequence[tuple[int, bytes]]) -> int:
        """Keep ``vectors`` ((message id, bytes) made by ``model``), replacing another model's;
        those of messages gone meanwhile are skipped. Returns how many were kept."""
        kept = 0
        with self._write() as db:
            for mid, blob in vectors:
                present = db.execute("SELECT 1 FROM messages WHERE id = ?", (int(mid),)).fetchone()
                if present is None:
                    continue
                db.execute(
                    "INSERT INTO message_vectors (message_id, model, vector) VALUES (?, ?, ?) "
                    "ON CONFLICT (message_id) DO UPDATE SET model = excluded.model, vector = excluded.vector",
                    (int(mid), model, bytes(blob)),
                )
                kept += 1
        return kept

    def vectors_after(self: _Host, model: str, after_id: int = 0, limit: int = 20_000) -> list[tuple[int, bytes]]:
        """(message id, bytes) of the owner's vectors made by ``model`` for messages after
        ``after_id``, oldest first, at most ``limit`` (a reader catches up in pages)."""
        rows = self._read(
            "SELECT v.message_id, v.vector FROM message_vectors v JOIN messages m ON m.id = v.message_id "
            "JOIN sessions s ON s.id = m.session_id "
            "WHERE v.model = ? AND v.message_id > ? AND s.owner_id = ? ORDER BY v.message_id LIMIT ?",
            (model, int(after_id), self.owner, int(limit)),
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def messages_by_id(
        self: _Host,
        ids: Sequence[int],
        *,
        session: SessionKey | None = None,
        before_seq: int | None = None,
        exclude_session: SessionKey | None = None,
    ) -> list[SearchHit]:
        """The settled messages among ``ids`` within the scope ``search_words`` takes (``session``
        before ``before_seq``, or the owner's other sessions but incognito ones), as hits with
        score 0, in the order of ``ids``.

        Two lookups by primary key — the messages, then their sessions in scope — rather than
        one join, for which a planner may prefer the owner's index and walk every message of
        the owner (30 ms at 100,000 messages instead of well under one)."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            return []
        where, params = "", []
        if session is not None:
            where, params = " AND session_id = ?", [self._sid(session)]
            if before_seq is not None:
                where += " AND seq < ?"
                params.append(before_seq)
        rows = self._read(
            f"SELECT {MESSAGE_COLUMNS}, session_id FROM messages "
            f"WHERE id IN ({', '.join('?' * len(wanted))}) AND status != 'streaming'{where}",
            (*wanted, *params),
        )
        sids = sorted({int(r[-1]) for r in rows})
        if not sids:
            return []
        scope = "s.owner_id = ?"
        scope_params: list[Any] = [self.owner]
        if session is None:
            scope += f" AND {NOT_INCOGNITO}"
            if exclude_session is not None:
                scope += " AND s.id != ?"
                scope_params.append(self._sid(exclude_session))
        names = dict(
            self._read(
                f"SELECT s.id, s.name FROM sessions s WHERE s.id IN ({', '.join('?' * len(sids))}) AND {scope}",
                (*sids, *scope_params),
            )
        )
        found = {
            int(r[0]): SearchHit(self._message(r[:-1]), str(names[int(r[-1])]), 0.0) for r in rows if r[-1] in names
        }
        return [found[i] for i in wanted if i in found]
