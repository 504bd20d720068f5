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


def turn_starts(messages: Sequence[Message]) -> list[int]:
    """Indices where a turn begins: each user message (plus 0 if the list starts otherwise)."""
    starts = [i for i, m in enumerate(messages) if m.role is Role.USER]
    if messages and (not starts or starts[0] != 0):
        starts.insert(0, 0)
    return starts
