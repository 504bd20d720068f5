"""The shape rules of a context: whole turns, tool calls with their results, no two user
messages in a row. Pure functions over stored messages."""

from __future__ import annotations

from collections.abc import Sequence

from memchat.domain import Message, Role, Status


def sanitize(messages: Sequence[Message]) -> list[Message]:
    """The messages that may be sent, in order:

    - a streaming row (another writer's reply in flight) and an empty assistant row are left out;
    - an assistant message with tool calls goes only with *all* its results, and a tool
      result only after its call;
    - of two user messages in a row (the first lost its reply), only the later is kept.
    """
    out: list[Message] = []
    i, n = 0, len(messages)
    while i < n:
        m = messages[i]
        if m.status is Status.STREAMING:
            i += 1
            continue
        if m.role is Role.ASSISTANT and m.tool_calls:
            ids = {str(c.get("id")) for c in m.tool_calls}
            j = i + 1
            results: list[Message] = []
            while j < n and messages[j].role is Role.TOOL:
                results.append(messages[j])
                j += 1
            if ids and ids <= {r.tool_call_id for r in results}:
                out.append(m)
                out.extend(r for r in results if r.tool_call_id in ids)
            i = j
            continue
        if m.role is Role.TOOL:
            i += 1  # a result without its call just before it
            continue
        if m.role is Role.ASSISTANT and not m.content:
            i += 1
            continue
        if m.role is Role.USER and out and out[-1].role is Role.USER:
            out.pop()
        out.append(m)
        i += 1
    return out


def with_new(history: list[Message], new: Message) -> list[Message]:
    """``sanitize([*history, new])`` for an already sanitized ``history`` and a new user message,
    without walking the history again: only its last message can be affected."""
    if history and history[-1].role is Role.USER:
        return [*history[:-1], new]
    return [*history, new]


def _safe_cut(messages: Sequence[Message], lowest: int) -> int:
    """The last index ``b`` >= ``lowest`` where ``sanitize`` splits cleanly (``sanitize(m) ==
    sanitize(m[:b]) + sanitize(m[b:])``): a user message right after a settled assistant
    message without tool calls; ``lowest`` when there is none."""
    for b in range(len(messages) - 1, max(lowest, 1) - 1, -1):
        before, at = messages[b - 1], messages[b]
        if (
            at.role is Role.USER
            and before.role is Role.ASSISTANT
            and before.content
            and not before.tool_calls
            and before.status is not Status.STREAMING
        ):
            return b
    return lowest


class SanitizedTail:
    """``sanitize`` of a session's newest messages, kept between turns: when the messages only
    grew at the end, only what follows the last clean cut is sanitized again (O(new messages),
    not O(history))."""

    __slots__ = ("_cut", "_first", "_head", "_mark")

    def __init__(self) -> None:
        self._first: Message | None = None  # the first message it was made from
        self._mark: Message | None = None  # the message just before the cut
        self._cut = 0
        self._head: list[Message] = []  # sanitize(messages[:cut])

    def get(self, messages: Sequence[Message]) -> list[Message]:
        cut = self._cut
        reusable = 0 < cut <= len(messages) and messages[0] is self._first and messages[cut - 1] is self._mark
        if not reusable:
            cut, head = 0, []
        else:
            head = self._head
        rest = sanitize(messages[cut:])
        out = head + rest
        new_cut = _safe_cut(messages, cut)
        if new_cut > cut:
            head = head + sanitize(messages[cut:new_cut])
        self._first = messages[0] if messages else None
        self._cut, self._head = new_cut, head
        self._mark = messages[new_cut - 1] if new_cut else None
        return out


def turn_starts(messages: Sequence[Message]) -> list[int]:
    """Indices where a turn begins: each user message (plus 0 if the list starts otherwise)."""
    starts = [i for i, m in enumerate(messages) if m.role is Role.USER]
    if messages and (not starts or starts[0] != 0):
        starts.insert(0, 0)
    return starts
