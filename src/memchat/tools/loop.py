"""The tool side of one turn: which tools are offered, the calls the model made in this
step, running them (with approval for side effects), and the steps taken so far — the
assistant messages with their calls and one ``tool`` message per result — which the turn
sends back to the model and stores with the reply, all in the turn's one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from memchat.domain import Chunk, Message, Role, ToolCall, ToolResult
from memchat.tools.base import Tool, ToolContext
from memchat.tools.calls import CallAccumulator
from memchat.tools.runner import run_call

#: model calls of one turn that may ask for tools; the next call must answer
DEFAULT_MAX_STEPS = 8

Approver = Callable[[ToolCall, Tool], bool]
Counter = Callable[[str], tuple[int, str]]


class ToolLoop:
    def __init__(
        self,
        tools: Mapping[str, Tool],
        context: ToolContext,
        *,
        max_steps: int = DEFAULT_MAX_STEPS,
        approve: Approver | None = None,
        auto_approve: bool = False,
        count: Counter | None = None,
    ) -> None:
        self.tools = dict(tools)
        self.context = context
        self.max_steps = max_steps
        self.approve = approve
        self.auto_approve = auto_approve
        self._count = count
        self.steps: list[Message] = []
        self.wire: list[dict[str, Any]] = []
        self.taken = 0
        self.notes: list[str] = []
        #: the names of the tools called in this turn
        self.called: set[str] = set()
        self._calls = CallAccumulator()

    @property
    def offered(self) -> bool:
        """Whether the next call offers tools (not once the step limit is reached)."""
        return bool(self.tools) and self.taken < self.max_steps

    def schemas(self) -> tuple[dict[str, Any], ...] | None:
        return tuple(t.schema() for t in self.tools.values()) if self.offered else None

    def schema_text(self) -> str:
        """The tool schemas as sent (for the budget: they take room in the context)."""
        return json.dumps([t.schema() for t in self.tools.values()], ensure_ascii=False) if self.tools else ""

    def cancel(self) -> None:
        """The turn ends early (interrupted, stopped, failed): a tool still running is told so."""
        self.context.cancelled.set()

    def drop(self, reason: str) -> None:
        """The provider refused ``tools``: go on without them."""
        self.tools = {}
        self.notes.append(f"tools were switched off for this turn: {reason}")

    def feed(self, chunk: Chunk) -> None:
        if chunk.tool_deltas:
            self._calls.feed(chunk.tool_deltas)

    def take_calls(self) -> list[ToolCall]:
        """The calls the model made in the call that just ended (and forget them)."""
        calls = self._calls.calls() if self._calls else []
        self._calls = CallAccumulator()
        return calls

    def run(self, call: ToolCall) -> ToolResult:
        found = self.tools.get(call.name)
        if found is not None and found.side_effects and not self.auto_approve:
            allowed = self.approve(call, found) if self.approve is not None else False
            if not allowed:
                why = "the user declined" if self.approve is not None else "it has side effects and was not approved"
                why += " (non-interactive: pass --yes to allow it)" if self.approve is None else ""
                return ToolResult(call, f"error: the call was not run: {why}", error=True)
        return run_call(self.tools, call, self.context)

    def record(self, text: str, calls: list[ToolCall], results: list[ToolResult]) -> None:
        """One step taken: the assistant's message with its calls, then every result."""
        self.taken += 1
        self.called.update(c.name for c in calls)
        wire_calls = tuple(c.to_wire() for c in calls)
        assistant = Message(Role.ASSISTANT, text, tool_calls=wire_calls, **self._tokens(text + json.dumps(wire_calls)))
        self.steps.append(assistant)
        self.wire.append(assistant.to_wire())
        for r in results:
            msg = Message(Role.TOOL, r.content, tool_call_id=r.call.id, **self._tokens(r.content))
            self.steps.append(msg)
            self.wire.append(msg.to_wire())

    def resume(self, pending: Message, results: list[Message]) -> None:
        """Go on from a step the caller took: ``pending`` (stored: the model's calls of the
        caller's tools) and ``results`` (their answers, stored when the turn ends)."""
        self.wire += [pending.to_wire(), *(r.to_wire() for r in results)]
        self.steps += results

    def _tokens(self, text: str) -> dict[str, Any]:
        if self._count is None:
            return {}
        n, method = self._count(text)
        return {"tokens": n, "token_method": method}
