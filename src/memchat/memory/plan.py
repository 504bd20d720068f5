"""A context plan: exactly what one call sends, and why.

The wire messages are: one system message (the persona first, then — when the strategy adds
them — the summary of older turns and pinned messages that fell out of the window, each under
a clear heading), the verbatim turns, then — when recall found any — older messages under
their own heading in a system message just before the new user message, and the new user
message. ``sections`` break the system messages down for ``/context``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memchat.domain import Role
from memchat.memory.budget import Budget
from memchat.tokens import MESSAGE_OVERHEAD

STRATEGIES = ("auto", "full", "window", "summary", "recall")


@dataclass(frozen=True, slots=True)
class ContextEntry:
    """One message of the call, with its token count and what it is."""

    role: Role
    content: str
    tokens: int
    #: persona | system | verbatim | recall | new
    kind: str = "verbatim"
    seq: int | None = None
    extra: dict[str, Any] | None = None  # tool_calls / tool_call_id

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"role": self.role.value, "content": self.content}
        if self.extra:
            wire.update(self.extra)
        return wire


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the system messages: persona, summary, pinned (the leading one) or recall (its
    own, before the new message)."""

    kind: str
    text: str
    tokens: int
    #: for summary: the seq range covered; for recall: why each message was picked
    note: str = ""


def context_tokens(entries: Sequence[ContextEntry], overhead: int = MESSAGE_OVERHEAD) -> int:
    """Tokens a list of messages costs, ``overhead`` per message for the chat template."""
    return sum(e.tokens + overhead for e in entries)


@dataclass
class ContextPlan:
    strategy: str
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

    def verbatim(self) -> list[ContextEntry]:
        return [e for e in self.entries if e.kind in ("verbatim", "new")]
