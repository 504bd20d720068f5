"""The SQL store's long-term memories: what the agent knows about its user, across sessions.

A mixin of ``SQLStore`` (``stores/sql.py``), written once for both engines; each engine's store
adds the ranked search of memories (``search_memories``: FTS5's BM25 on SQLite, ``ts_rank`` on
PostgreSQL) over ``MEMORY_COLUMNS``. Every method is scoped to ``self.owner``: a memory of
another user is ``MemoryNotFound``.

A memory is never rewritten: a newer version ends it (``ended``, ``end_reason``,
``superseded_by``) and points back at it (``supersedes``). The versions linked this way, in
either direction and transitively, are one *line*; at most one version of a line is active
(served) at a time, which ``add_memory`` and ``restore_memory`` keep so.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Protocol

from memchat.domain import EndReason, Memory, MemoryKind, MemoryOrigin
from memchat.errors import MemoryNotFound, SessionNotFound, StoreError
from memchat.memory.terms import index_text
from memchat.stores.columns import format_time, parse_time
from memchat.stores.columns import now_text as _now
from memchat.stores.dialect import Transaction

#: a memory as read (``s.name``: its session's name, NULL once the session is deleted)
MEMORY_COLUMNS = (
    "m.id, m.kind, m.content, m.event_date, m.origin, m.session_id, s.name, m.source_ids, m.supersedes, "
    "m.tokens, m.created, m.ended, m.end_reason, m.superseded_by"
)
MEMORY_SESSION = "LEFT JOIN sessions s ON s.id = m.session_id AND s.owner_id = m.owner_id"
MEMORY_FROM = f"memories m {MEMORY_SESSION}"

Rows = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def memory_from_row(row: Sequence[Any]) -> Memory:
    """A ``Memory`` from a row of ``MEMORY_COLUMNS``."""
    return Memory(
        id=int(row[0]),
        kind=MemoryKind(row[1]),
        content=row[2],
        event_date=date.fromisoformat(row[3]) if row[3] else None,
        origin=MemoryOrigin(row[4]),
        session_id=int(row[5]) if row[5] is not None else None,
        session_name=row[6],
        source_ids=tuple(int(i) for i in json.loads(row[7] or "[]")),
        supersedes=int(row[8]) if row[8] is not None else None,
        tokens=int(row[9] or 0),
        created=parse_time(row[10]),
        ended=parse_time(row[11]),
        end_reason=EndReason(row[12]) if row[12] else None,
        superseded_by=int(row[13]) if row[13] is not None else None,
    )


def search_form(word: str) -> str:
    """A query word as the index holds it: a Chinese run as its bigrams (matched as a phrase
    of consecutive words), any other word as it is."""
    indexed = index_text(word)
    return " ".join(indexed.split()) if indexed is not None else word


def _on(db: Transaction) -> Rows:
    """Run statements inside the caller's transaction."""
    return lambda sql, params: list(db.execute(sql, params).fetchall())


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _select(rows: Rows, owner: int, where: str, params: Sequence[Any], tail: str = "") -> list[Memory]:
    sql = f"SELECT {MEMORY_COLUMNS} FROM {MEMORY_FROM} WHERE m.owner_id = ? AND {where} {tail}"
    return [memory_from_row(r) for r in rows(sql, (owner, *params))]


def _one(rows: Rows, owner: int, memory_id: int) -> Memory:
    found = _select(rows, owner, "m.id = ?", (int(memory_id),))
    if not found:
        raise MemoryNotFound(f"no memory #{memory_id}", memory_id=memory_id)
    return found[0]


def _line(rows: Rows, owner: int, memory_id: int) -> set[int]:
    """The ids of every version in the owner's memory's line (linked by ``supersedes`` or
    ``superseded_by``, either way, transitively); empty when the memory is not the owner's."""
    members: set[int] = set()
    seen: set[int] = {int(memory_id)}
    frontier = [int(memory_id)]
    while frontier:
        marks = _marks(frontier)
        found = rows(
            "SELECT id, supersedes, superseded_by FROM memories WHERE owner_id = ? "
            f"AND (id IN ({marks}) OR supersedes IN ({marks}) OR superseded_by IN ({marks}))",
            (owner, *frontier, *frontier, *frontier),
        )
        frontier = []
        for row in found:
            members.add(int(row[0]))
            for linked in row:
                if linked is not None and int(linked) not in seen:
                    seen.add(int(linked))
                    frontier.append(int(linked))
    return members


def _check_session(db: Transaction, owner: int, session_id: int | None) -> None:
    if session_id is None:
        return
    if db.execute("SELECT 1 FROM sessions WHERE id = ? AND owner_id = ?", (session_id, owner)).fetchone() is None:
        raise SessionNotFound(f"no session #{session_id}", name=session_id)


def _insert(db: Transaction, owner: int, m: Memory, *, ended: bool = False) -> int:
    """One row of ``memories`` (links left out: the caller sets them); with ``ended`` the
    memory's ``ended``/``end_reason`` are kept as they are."""
    row = db.execute(
        "INSERT INTO memories (owner_id, kind, content, search_text, event_date, origin, session_id, source_ids, "
        "tokens, created, ended, end_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            owner,
            MemoryKind(m.kind).value,
            m.content,
            index_text(m.content),
            m.event_date.isoformat() if m.event_date else None,
            MemoryOrigin(m.origin).value,
            m.session_id,
            json.dumps([int(i) for i in m.source_ids]),
            int(m.tokens),
            format_time(m.created),
            format_time(m.ended) if ended and m.ended else None,
            EndReason(m.end_reason).value if ended and m.end_reason else None,
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


class _Host(Protocol):
    """What the mixin needs from ``SQLStore``."""

    owner: int

    def _write(self) -> contextlib.AbstractContextManager[Transaction]: ...
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class MemoriesRecords:
    """The ``Store`` protocol's long-term memory methods (but the ranked search), mixed into ``SQLStore``."""

    def add_memory(self: _Host, memory: Memory, *, supersedes: int | None = None) -> Memory:
        """Store a new active memory of the owner (``created`` defaults to now; ``id``,
        ``ended``, ``end_reason``, ``supersedes`` and ``superseded_by`` of ``memory`` are the
        store's and ignored). With ``supersedes``, the same transaction ends that memory
        (``ended`` now, ``end_reason`` superseded, ``superseded_by`` the new one), which must be
        the owner's and active (``MemoryNotFound`` otherwise, and nothing is stored). A
        ``session_id`` must be one of the owner's sessions (``SessionNotFound``)."""
        with self._write() as db:
            if supersedes is not None:
                old = _one(_on(db), self.owner, supersedes)
                if not old.active:
                    raise MemoryNotFound(f"memory #{supersedes} is no longer served", memory_id=supersedes)
            _check_session(db, self.owner, memory.session_id)
            new_id = _insert(db, self.owner, memory)
            if supersedes is not None:
                db.execute("UPDATE memories SET supersedes = ? WHERE id = ?", (supersedes, new_id))
                db.execute(
                    "UPDATE memories SET ended = ?, end_reason = ?, superseded_by = ? WHERE id = ?",
                    (_now(), EndReason.SUPERSEDED.value, new_id, supersedes),
                )
            return _one(_on(db), self.owner, new_id)

    def get_memory(self: _Host, memory_id: int) -> Memory:
        """One of the owner's memories, active or not (``MemoryNotFound``)."""
        return _one(self._read, self.owner, memory_id)

    def memories(
        self: _Host,
        *,
        include_ended: bool = False,
        kinds: Sequence[MemoryKind] | None = None,
        limit: int | None = None,
    ) -> list[Memory]:
        """The owner's memories, newest first (highest id first), active ones only unless
        ``include_ended``; only of ``kinds`` when given (an empty list: none)."""
        where, params = "1 = 1", []
        if not include_ended:
            where += " AND m.ended IS NULL"
        if kinds is not None:
            if not kinds:
                return []
            values = [MemoryKind(k).value for k in kinds]
            where += f" AND m.kind IN ({_marks(values)})"
            params += values
        tail = "ORDER BY m.id DESC"
        if limit is not None:
            tail += f" LIMIT {max(int(limit), 0)}"
        return _select(self._read, self.owner, where, params, tail)

    def end_memory(self: _Host, memory_id: int, reason: EndReason) -> Memory:
        """Stop serving an active memory of the owner: ``ended`` now, ``end_reason`` ``reason``
        (forgotten, or reverted); it is kept, and ``restore_memory`` brings it back.
        ``MemoryNotFound`` when it is not the owner's or not active; a memory is superseded only
        by ``add_memory(…, supersedes=…)`` (a ``StoreError`` here)."""
        reason = EndReason(reason)
        if reason is EndReason.SUPERSEDED:
            raise StoreError("a memory is superseded by adding its new version (add_memory with supersedes)")
        with self._write() as db:
            if not _one(_on(db), self.owner, memory_id).active:
                raise MemoryNotFound(f"memory #{memory_id} is no longer served", memory_id=memory_id)
            db.execute("UPDATE memories SET ended = ?, end_reason = ? WHERE id = ?", (_now(), reason.value, memory_id))
            return _one(_on(db), self.owner, memory_id)

    def restore_memory(self: _Host, memory_id: int) -> Memory:
        """Serve an ended memory of the owner again, in one transaction, and return it.

        The memory becomes active (``ended``, ``end_reason`` and ``superseded_by`` cleared: an
        active memory is replaced by nothing). Every other active version of its line (the
        versions linked to it by ``supersedes``/``superseded_by``, either way, transitively)
        ends with ``end_reason`` reverted and ``superseded_by`` NULL (``superseded_by`` only ever
        names a newer version that replaced a memory; the line stays linked through the
        ``supersedes`` links, so ``memory_history`` still shows every version). So a forgotten
        memory whose line has nothing active just comes back; a superseded (or reverted) one
        comes back in place of the version served now, which ends as reverted. Restoring an
        active memory changes nothing. ``MemoryNotFound`` when it is not the owner's."""
        with self._write() as db:
            rows = _on(db)
            memory = _one(rows, self.owner, memory_id)
            if memory.active:
                return memory
            others = sorted(_line(rows, self.owner, memory_id) - {int(memory_id)})
            if others:
                db.execute(
                    f"UPDATE memories SET ended = ?, end_reason = ? WHERE id IN ({_marks(others)}) AND ended IS NULL",
                    (_now(), EndReason.REVERTED.value, *others),
                )
            db.execute(
                "UPDATE memories SET ended = NULL, end_reason = NULL, superseded_by = NULL WHERE id = ?",
                (memory_id,),
            )
            return _one(rows, self.owner, memory_id)

    def memory_history(self: _Host, memory_id: int) -> list[Memory]:
        """Every version of the memory's line (linked by ``supersedes``/``superseded_by``, either
        way, transitively), oldest first (by ``created``, then id). ``MemoryNotFound`` when it
        is not the owner's."""
        ids = sorted(_line(self._read, self.owner, memory_id))
        if not ids:
            raise MemoryNotFound(f"no memory #{memory_id}", memory_id=memory_id)
        found = _select(self._read, self.owner, f"m.id IN ({_marks(ids)})", ids)
        return sorted(found, key=lambda m: (m.created.timestamp() if m.created else 0.0, m.id or 0))

    def memory_version(self: _Host) -> int:
        """A counter that moves with every change to the owner's memories (kept by triggers)."""
        rows = self._read("SELECT memory_version FROM users WHERE id = ?", (self.owner,))
        return int(rows[0][0]) if rows else 0

    def import_memories(self: _Host, memories: Sequence[Memory]) -> list[Memory]:
        """Store the owner's memories as they are, in one transaction (all or nothing), and
        return them as stored, in the batch's order: ``created``, ``ended``, ``end_reason``,
        ``origin``, ``session_id`` (one of the owner's sessions) and ``source_ids`` are kept;
        each gets a new id, and ``supersedes``/``superseded_by``, which refer to the ``id`` of
        another memory of the batch, are remapped to the new ids. A ``StoreError`` refuses the
        batch (nothing stored) when a link points outside it, two memories share an id, a
        memory is ended without a reason (or has a reason but is not ended), or a session is
        not the owner's."""
        batch_ids = [m.id for m in memories if m.id is not None]
        if len(set(batch_ids)) != len(batch_ids):
            raise StoreError("two memories of the batch have the same id")
        known = set(batch_ids)
        for k, m in enumerate(memories, 1):
            for name, link in (("supersedes", m.supersedes), ("superseded_by", m.superseded_by)):
                if link is not None and link not in known:
                    raise StoreError(f"memory {k}: {name} #{link} is not in the batch")
            if (m.ended is None) != (m.end_reason is None):
                raise StoreError(f"memory {k}: an ended memory needs an end reason, and only an ended one")
        if not memories:
            return []
        with self._write() as db:
            new_ids: list[int] = []
            remap: dict[int, int] = {}
            for k, m in enumerate(memories, 1):
                try:
                    _check_session(db, self.owner, m.session_id)
                except SessionNotFound:
                    raise StoreError(f"memory {k}: no session #{m.session_id}") from None
                new_id = _insert(db, self.owner, m, ended=True)
                new_ids.append(new_id)
                if m.id is not None:
                    remap[m.id] = new_id
            for m, new_id in zip(memories, new_ids, strict=True):
                if m.supersedes is not None or m.superseded_by is not None:
                    db.execute(
                        "UPDATE memories SET supersedes = ?, superseded_by = ? WHERE id = ?",
                        (
                            remap[m.supersedes] if m.supersedes is not None else None,
                            remap[m.superseded_by] if m.superseded_by is not None else None,
                            new_id,
                        ),
                    )
            # the new ids are the batch's own (the transaction holds the write lock), read as a range
            span = (min(new_ids), max(new_ids))
            stored = {m.id: m for m in _select(_on(db), self.owner, "m.id BETWEEN ? AND ?", span)}
            return [stored[i] for i in new_ids]
