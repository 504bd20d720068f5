"""The bytes of attached files (``attachments`` table, m014/pg007): stored once per owner and
sha256 in the transaction that stores the message naming them, read back only by their owner."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from memchat.domain import Attachment
from memchat.stores.columns import now_text
from memchat.stores.dialect import Transaction


class _Host(Protocol):
    owner: int

    def _write(self) -> contextlib.AbstractContextManager[Transaction]: ...
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def store_attachments(db: Transaction, owner: int, attachments: Iterable[Attachment]) -> None:
    """Keep the bytes of ``attachments`` that carry them (a file already stored is kept once)."""
    for a in attachments:
        if a.data is None:
            continue
        db.execute(
            "INSERT INTO attachments (owner_id, sha256, media_type, size, data, created) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (owner, a.sha256, a.media_type, len(a.data), a.data, now_text()),
        )


def drop_unused(db: Transaction, owner: int, hashes: Iterable[str]) -> None:
    """Remove the bytes of ``hashes`` no message (shown or set aside) of ``owner`` names any more."""
    for h in set(hashes):
        pattern = f'%"{h}"%'
        used = db.execute(
            "SELECT 1 FROM messages m JOIN sessions s ON s.id = m.session_id "
            "WHERE s.owner_id = ? AND m.attachments LIKE ? "
            "UNION ALL SELECT 1 FROM message_versions v JOIN sessions s ON s.id = v.session_id "
            "WHERE s.owner_id = ? AND v.attachments LIKE ? LIMIT 1",
            (owner, pattern, owner, pattern),
        ).fetchone()
        if used is None:
            db.execute("DELETE FROM attachments WHERE owner_id = ? AND sha256 = ?", (owner, h))


class AttachmentRecords:
    """The ``Store`` methods for attachments (a mixin of ``SQLStore``)."""

    def attachment_data(self: _Host, sha256: str) -> bytes | None:
        """The bytes of this owner's file with that hash (None: no such file of theirs)."""
        rows = self._read("SELECT data FROM attachments WHERE owner_id = ? AND sha256 = ?", (self.owner, sha256))
        return bytes(rows[0][0]) if rows else None

    def attachment_type(self: _Host, sha256: str) -> str | None:
        """The media type of this owner's file with that hash (None: no such file of theirs)."""
        rows = self._read("SELECT media_type FROM attachments WHERE owner_id = ? AND sha256 = ?", (self.owner, sha256))
        return str(rows[0][0]) if rows else None


def sweep(db: Transaction, owner: int) -> None:
    """Remove the bytes of ``owner``'s files that no message of theirs names any more (after a
    session, a turn or the end of a session was deleted). Nothing to do for an owner without files."""
    if db.execute("SELECT 1 FROM attachments WHERE owner_id = ? LIMIT 1", (owner,)).fetchone() is None:
        return
    named = "'%\"' || a.sha256 || '\"%'"
    db.execute(
        "DELETE FROM attachments WHERE owner_id = ? AND sha256 IN (SELECT a.sha256 FROM attachments a "
        "WHERE a.owner_id = ? "
        f"AND NOT EXISTS (SELECT 1 FROM messages m JOIN sessions s ON s.id = m.session_id "
        f"WHERE s.owner_id = a.owner_id AND m.attachments LIKE {named}) "
        f"AND NOT EXISTS (SELECT 1 FROM message_versions v JOIN sessions s ON s.id = v.session_id "
        f"WHERE s.owner_id = a.owner_id AND v.attachments LIKE {named}))",
        (owner, owner),
    )
