"""A context plan: exactly what one call sends, and why.

The wire messages are: one system message (the persona first, then — when the strategy adds
them — the date, memories, the summary of older turns, pinned messages that fell out of the
window and, last, what recall found, each under a clear heading), the verbatim turns, and the
new user message; where the provider's template renders a later system message (``Layout.
RECALL_APART``), recall is a system message of its own after the new one. ``sections`` break
the system messages down for ``/context``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from memchat.domain import Role
from memchat.memory.budget import Budget
from memchat.providers.base import StoredWire
from memchat.tokens import MESSAGE_OVERHEAD


class Strategy(enum.StrEnum):
    """How a session's history becomes each call's context (see ``memory/builder.py``)."""

    AUTO = "auto"
    FULL = "full"
    WINDOW = "window"
    SUMMARY = "summary"
    RECALL = "recall"


STRATEGIES = tuple(s.value for s in Strategy)


class Layout(enum.StrEnum):
    """Where the recalled memories and turns go in a call (the provider says which it accepts)."""

    #: one system message: persona, date, memories, summary, pins, then recall last (the part
    #: before it stays a stable prefix). Every chat template accepts it: the default.
    SINGLE = "single"
    #: recall as a second system message right after the new one, so that the whole history
    #: and the new message stay a stable prefix (KV-cache reuse); only where the template renders it
    RECALL_APART = "recall_apart"


class EntryKind(enum.StrEnum):
    """What one message of a call is."""

    PERSONA = "persona"  # the system message holding the persona alone
    SYSTEM = "system"  # the system message with more than the persona
    VERBATIM = "verbatim"  # a stored message, sent as it is
    RECALL = "recall"  # the system message of recalled memories and turns (Layout.RECALL_APART)
    NEW = "new"  # the user's new message


class SectionKind(enum.StrEnum):
    """A part of the system messages."""

    PERSONA = "persona"
    DATE = "date"
    MEMORIES = "memories"
    SUMMARY = "summary"
    PINNED = "pinned"
    RECALL = "recall"


class ItemKind(enum.StrEnum):
    """What memory brought into a call."""

    MEMORY = "memory"
    TURN = "turn"


@dataclass(frozen=True, slots=True)
class ContextEntry:
    """One message of the call, with its token count and what it is."""

    role: Role
    content: str
    tokens: int
    kind: EntryKind = EntryKind.VERBATIM
    seq: int | None = None
    extra: dict[str, Any] | None = None  # tool_calls / tool_call_id
    #: ``to_wire``'s dict, made once (an entry of a stored message is reused turn after turn)
    wire_cache: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def to_wire(self) -> dict[str, Any]:
        """The message as the API takes it (the same dict every time: read it, do not change it)."""
        wire = self.wire_cache
        if wire is None:
            wire = StoredWire(role=self.role.value, content=self.content)
            if self.extra:
                wire.update(self.extra)
            object.__setattr__(self, "wire_cache", wire)
        return wire


@dataclass(frozen=True, slots=True)
class RecallItem:
    """One thing memory brought into a call, and why: a long-term memory, or a past turn (of
    this session, or of another one of the user's)."""

    kind: ItemKind
    text: str
    tokens: int
    score: float = 0.0
    #: a short reason: the words it matched, same session or another, how recent
    why: str = ""
    memory_id: int | None = None
    session: str | None = None
    seq: int | None = None
    message_id: int | None = None
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the system messages: persona, summary, pinned (the leading one) or recall (its
    own, before the new message)."""

    kind: SectionKind
    text: str
    tokens: int
    #: for summary: the seq range covered; for recall: why each message was picked
    note: str = ""
    #: memories and past turns (kinds ``memories`` and ``recall``), each with why it was chosen
    items: tuple[RecallItem, ...] = ()


def context_tokens(entries: Sequence[ContextEntry], overhead: int = MESSAGE_OVERHEAD) -> int:
    """Tokens a list of messages costs, ``overhead`` per message for the chat template."""
    return sum(e.tokens + overhead for e in entries)


@dataclass
class ContextPlan:
    strategy: Strategy
    budget: Budget
    entries: list[ContextEntry] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    #: settled messages of the session not sent verbatim (summarized, recalled or dropped)
    omitted: int = 0
    #: (first_seq, last_seq) that should be folded into a new summary before this call
    needs_summary: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)
    #: the estimate-based size before calibration, to learn the provider's real ratio
    raw_estimate: int = 0

    @property
    def tokens(self) -> int:
        """Tokens of the whole call (template overhead included)."""
        return context_tokens(self.entries, self.budget.overhead)

    def wire(self) -> list[dict[str, Any]]:
        return [e.to_wire() for e in self.entries]

    @property
    def memory_ids(self) -> tuple[int, ...]:
        """The long-term memories this call sends."""
        return tuple(
            i.memory_id for s in self.sections for i in s.items if i.kind == "memory" and i.memory_id is not None
        )

    @property
    def recalled_elsewhere(self) -> int:
        """Past turns of the user's other sessions this call sends."""
        return sum(1 for s in self.sections for i in s.items if i.kind == "turn" and i.session is not None)

    def verbatim(self) -> list[ContextEntry]:
        return [e for e in self.entries if e.kind in ("verbatim", "new")]
