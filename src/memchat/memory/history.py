"""An in-process copy of each session's history, brought up to date by deltas.

Building a turn's context must cost O(messages that changed), not a reload of the whole
history: the cache asks the store for (count, last seq) of the session's settled
messages and fetches only the rows after the last one it holds. If the count shows that
anything else changed (a truncate, an undo, another process finishing an older reply),
it reloads the session once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from memchat.domain import Message
from memchat.memory.context import included
from memchat.stores.base import Store


@dataclass
class _Entry:
    messages: list[Message] = field(default_factory=list)
    wire: list[dict[str, Any]] = field(default_factory=list)
    last_seq: int = 0


class HistoryCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._entries: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, session_id: int) -> tuple[list[Message], list[dict[str, Any]]]:
        """The session's settled messages, and the wire dicts of those that go into the
        context (treat both as read-only)."""
        with self._lock:
            count, last_seq = self._store.message_stats(session_id)
            entry = self._entries.get(session_id)
            if entry is not None and (len(entry.messages), entry.last_seq) == (count, last_seq):
                return entry.messages, entry.wire
            if entry is not None and last_seq > entry.last_seq:
                new = self._store.messages(session_id, after=entry.last_seq)
                if len(entry.messages) + len(new) == count:
                    entry.messages.extend(new)
                    entry.wire.extend(m.to_wire() for m in new if included(m))
                    entry.last_seq = last_seq
                    return entry.messages, entry.wire
            messages = self._store.messages(session_id)
            wire = [m.to_wire() for m in messages if included(m)]
            entry = _Entry(messages, wire, (messages[-1].seq or 0) if messages else 0)
            self._entries[session_id] = entry
            return entry.messages, entry.wire

    def forget(self, session_id: int | None = None) -> None:
        with self._lock:
            if session_id is None:
                self._entries.clear()
            else:
                self._entries.pop(session_id, None)
