"""Build the messages sent to the model: persona first, then the turns in order.

Strategy ``full`` (the lesson's): everything, every turn. Token counts come from the
stored messages (counted once, when stored); only the persona is counted here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memchat.domain import Message, Role, Status
from memchat.tokens import MESSAGE_OVERHEAD, estimate_tokens


@dataclass(frozen=True, slots=True)
class ContextEntry:
    role: Role
    content: str
    tokens: int

    def to_wire(self) -> dict[str, Any]:
        return {"role": self.role.value, "content": self.content}


def build_context(
    persona: str,
    history: Sequence[Message],
    *,
    count: Callable[[str], int] = estimate_tokens,
) -> list[ContextEntry]:
    """The messages of the next call, in order, each with its token count."""
    entries: list[ContextEntry] = []
    if persona:
        entries.append(ContextEntry(Role.SYSTEM, persona, count(persona)))
    for m in history:
        if included(m):
            tokens = m.tokens if m.tokens is not None else count(m.content)
            entries.append(ContextEntry(m.role, m.content, tokens))
    return entries


def included(m: Message) -> bool:
    """Whether a stored message goes into the context."""
    if m.status is Status.STREAMING:
        return False  # another writer's reply still in flight
    return not (m.role is Role.ASSISTANT and not m.content)


def wire_context(persona: str, wire: Sequence[dict[str, Any]], new: Message) -> list[dict[str, Any]]:
    """The request's messages from the ready-made wire dicts of the included history (the
    fast path of ``build_context`` for the call itself)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": persona}] if persona else []
    out.extend(wire)
    out.append(new.to_wire())
    return out


def context_tokens(entries: Sequence[ContextEntry]) -> int:
    """Tokens the context costs, template overhead included."""
    return sum(e.tokens + MESSAGE_OVERHEAD for e in entries)
