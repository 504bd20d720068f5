"""The entries of a session's last call, reused by the next one (O(new messages) per turn).

A session's calls mostly repeat the previous one's messages and add the last turn: with the
whole history (``full``), or while the window has not moved, every stored message sent last time
is sent again, at the same place. ``SentPrefix`` keeps the entries made for them and the sum of
their tokens; the next plan checks that its messages begin with the very same ones (a list
comparison, C-speed: the tail cache hands out the same ``Message`` objects until the session is
rewritten) and makes entries only for the rest. Anything else (the window moved, a rewrite, a new
calibration ratio) starts again from the first message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from memchat.attachments.content import wire_content
from memchat.domain import Message
from memchat.memory.plan import ContextEntry, EntryKind


def make_entry(m: Message, tokens: int, kind: EntryKind) -> ContextEntry:
    """The entry of one message of the call."""
    extra: dict[str, object] = {}
    if m.attachments and kind is EntryKind.NEW:  # the files go whole with their turn only
        extra["content"] = wire_content(m.content, m.attachments)
    if m.tool_calls:
        extra["tool_calls"] = [dict(c) for c in m.tool_calls]
    if m.tool_call_id is not None:
        extra["tool_call_id"] = m.tool_call_id
    return ContextEntry(m.role, m.described, tokens, kind=kind, seq=m.seq, extra=extra or None)


@dataclass(frozen=True, slots=True)
class SentPrefix:
    """Stored messages a call sent, in order, with their entries and the sum of their tokens
    (made at one calibration ratio). Never changed once made: threads share it safely."""

    ratio: float
    messages: list[Message]
    entries: list[ContextEntry]
    tokens: int

    def reusable(self, messages: Sequence[Message], ratio: float) -> int:
        """How many leading ``messages`` this prefix already holds (all of it, or 0)."""
        n = len(self.messages)
        if not n or ratio != self.ratio or len(messages) < n:
            return 0
        return n if messages[:n] == self.messages else 0

    def tokens_of(self, messages: Sequence[Message], ratio: float, count: Callable[[Message], int]) -> int:
        """The tokens of ``messages`` (without the template's overhead), reusing this prefix's sum."""
        k = self.reusable(messages, ratio)
        return (self.tokens if k else 0) + sum(count(m) for m in messages[k:])


def extend(
    prefix: SentPrefix | None,
    messages: Sequence[Message],
    new: Message | None,
    ratio: float,
    make: Callable[[Message], ContextEntry],
) -> tuple[list[ContextEntry], int, SentPrefix]:
    """The entries of ``messages`` (``make`` makes one), reusing ``prefix`` where the messages begin
    with its own; the sum of their tokens; and the prefix to keep for the next call: the leading
    stored messages (``new``, the message being sent, is not stored yet: the next call has it from
    the store)."""
    k = prefix.reusable(messages, ratio) if prefix is not None else 0
    entries = list(prefix.entries) if prefix is not None and k else []
    total = prefix.tokens if prefix is not None and k else 0
    kept, kept_tokens = len(messages), 0
    for i in range(k, len(messages)):
        m = messages[i]
        if kept == len(messages) and (m is new or m.id is None):
            kept, kept_tokens = i, total  # the prefix ends at the first message not (yet) stored
        entry = make(m)
        entries.append(entry)
        total += entry.tokens
    if kept == len(messages):
        kept_tokens = total
    return entries, total, SentPrefix(ratio, list(messages[:kept]), entries[:kept], kept_tokens)
