"""Test doubles that implement the real interfaces, for memchat's tests and yours.

``ScriptedProvider`` replies from a queue and records every call::

    provider = ScriptedProvider(["Hello!", ["Par", "tial", StreamError("cut")], AuthenticationError("bad key")])
    agent = Agent(store=open_store(":memory:"), provider=provider)
    agent.ask("s", "hi").text        # "Hello!"
    provider.calls[-1]               # the exact messages sent
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from memchat.domain import Chunk, Usage
from memchat.providers.base import ChatOptions, Provider, WireMessage

Script = str | BaseException | Sequence[str | Chunk | BaseException]


class ScriptedProvider(Provider):
    """Streams queued replies. A reply is a string (streamed word by word), an exception
    (raised before any chunk), or a list of strings, chunks and exceptions (played in order,
    so an exception in the list cuts the stream mid-way)."""

    name = "scripted"

    def __init__(
        self,
        replies: Iterable[Script] = (),
        *,
        model: str = "scripted-model",
        default: str | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.model = model
        self.replies: deque[Script] = deque(replies)
        self.default = default
        self.calls: list[list[WireMessage]] = []
        self.models: list[str | None] = []
        #: when set, each chunk after the first waits for this event (to test interruption)
        self.gate = gate

    def enqueue(self, *replies: Script) -> None:
        self.replies.extend(replies)

    def stream(
        self,
        messages: Sequence[WireMessage],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> Iterator[Chunk]:
        self.calls.append([dict(m) for m in messages])
        self.models.append(model)
        if self.replies:
            script = self.replies.popleft()
        elif self.default is not None:
            script = self.default
        else:
            raise AssertionError("ScriptedProvider has no reply queued")
        if isinstance(script, BaseException):
            raise script
        items: Sequence[Any] = _words(script) if isinstance(script, str) else script
        completion = 0
        reported = False
        for i, item in enumerate(items):
            if isinstance(item, BaseException):
                raise item
            if i and self.gate is not None:
                self.gate.wait(10)
            chunk = item if isinstance(item, Chunk) else Chunk(text=item)
            completion += 1 if chunk.text else 0
            reported = reported or chunk.usage is not None
            yield chunk
        if reported:
            return
        prompt = sum(self.count_tokens(str(m.get("content", "")))[0] for m in messages)
        yield Chunk(finish_reason="stop", usage=Usage(prompt, completion))


def _words(text: str) -> list[str]:
    out: list[str] = []
    for i, word in enumerate(text.split(" ")):
        out.append(word if i == 0 else " " + word)
    return out
