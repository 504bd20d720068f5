"""An in-process copy of the newest part of each session, kept current by deltas.

Building a context must cost O(what changed + the budget), not O(history): each turn the
cache reads the session's two change counters (one row), fetches only the messages after
the last one it holds, and reads older pages only while it holds fewer tokens than asked
for. Anything but an append at the end (an undo, a truncate, another process finishing an
older reply) moves the ``rewrites`` counter and the tail is read again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from memchat.domain import Message
from memchat.stores.base import Store

PAGE = 256


@dataclass
class _Tail:
    version: int
    rewrites: int
    messages: list[Message] = field(default_factory=list)
    tokens: int = 0
    complete: bool = False  # holds the session from its first message
    #: the window strategy's first verbatim seq, kept while it fits (a stable prefix lets a
    #: local model reuse its KV cache)
    window_start: int | None = None


def _tokens(messages: list[Message]) -> int:
    return sum((m.tokens or 0) for m in messages)


class TailCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._tails: dict[int, _Tail] = {}
        self._lock = threading.Lock()

    def get(self, session_id: int, need_tokens: int) -> tuple[list[Message], bool, _Tail]:
        """The newest settled messages holding at least ``need_tokens`` (or all of them),
        oldest first; whether they start at the session's beginning; the cache entry."""
        store = self._store
        with self._lock:
            version, rewrites = store.session_state(session_id)
            tail = self._tails.get(session_id)
            if tail is None or tail.rewrites != rewrites:
                tail = _Tail(version, rewrites)
                self._tails[session_id] = tail
                page = store.messages_before(session_id, None, PAGE)
                tail.messages, tail.tokens, tail.complete = page, _tokens(page), len(page) < PAGE
            elif tail.version != version:
                last = tail.messages[-1].seq if tail.messages else 0
                new = store.messages(session_id, after=last or 0)
                tail.messages.extend(new)
                tail.tokens += _tokens(new)
                tail.version = version
            while tail.tokens < need_tokens and not tail.complete:
                first = tail.messages[0].seq if tail.messages else None
                page = store.messages_before(session_id, first, PAGE)
                tail.messages[:0] = page
                tail.tokens += _tokens(page)
                tail.complete = len(page) < PAGE
            self._trim(tail, need_tokens)
            return tail.messages, tail.complete, tail

    @staticmethod
    def _trim(tail: _Tail, need_tokens: int) -> None:
        """Forget old messages once the tail holds far more than a context needs."""
        if tail.tokens <= 4 * need_tokens + 4 * PAGE:
            return
        keep, total = len(tail.messages), 0
        for i in range(len(tail.messages) - 1, -1, -1):
            total += tail.messages[i].tokens or 0
            if total >= 2 * need_tokens:
                keep = len(tail.messages) - i
                break
        dropped = tail.messages[: len(tail.messages) - keep]
        del tail.messages[: len(tail.messages) - keep]
        tail.tokens -= _tokens(dropped)
        tail.complete = tail.complete and not dropped

    def forget(self, session_id: int | None = None) -> None:
        with self._lock:
            if session_id is None:
                self._tails.clear()
            else:
                self._tails.pop(session_id, None)
