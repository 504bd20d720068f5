"""Merge streamed tool-call fragments into whole calls.

OpenAI-style servers key fragments by ``index``: the first fragment of a call carries its
``id`` and ``name``, later ones only pieces of ``arguments``. Ollama-style servers reuse
index 0 for parallel calls and tell them apart only by a new ``id``; a fragment with a new
id on an index already in use therefore starts a new call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from memchat.domain import ToolCall, ToolCallDelta


class CallAccumulator:
    def __init__(self) -> None:
        self._calls: list[dict[str, str]] = []
        self._by_index: dict[int, int] = {}  # stream index → position in _calls

    def feed(self, deltas: Iterable[ToolCallDelta]) -> None:
        for d in deltas:
            pos = self._by_index.get(d.index)
            starts_new = pos is None or (d.id is not None and self._calls[pos]["id"] not in ("", d.id))
            if starts_new:
                self._calls.append({"id": d.id or "", "name": d.name or "", "arguments": ""})
                pos = self._by_index[d.index] = len(self._calls) - 1
            assert pos is not None
            call = self._calls[pos]
            if d.id and not call["id"]:
                call["id"] = d.id
            if d.name and not call["name"]:
                call["name"] = d.name
            call["arguments"] += d.arguments

    def __bool__(self) -> bool:
        return bool(self._calls)

    def calls(self) -> list[ToolCall]:
        """The whole calls (a call the server sent without an id gets one: results need it)."""
        return [
            ToolCall(c["id"] or f"call_{uuid.uuid4().hex[:24]}", c["name"], c["arguments"] or "{}") for c in self._calls
        ]
