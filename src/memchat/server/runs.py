"""Turns that run as server tasks, decoupled from the HTTP connection that started them.

Each run records its events with increasing ids; any number of readers replay what they missed
(``after``) and then tail the live ones, so a reload or a dropped connection re-attaches with
neither loss nor duplicates. One run per session at a time; a stop request marks the turn
``stopped`` and cancels its task (the partial reply is kept)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from memchat import i18n
from memchat.agent import AsyncTurn
from memchat.domain import Chunk, Reply
from memchat.errors import MemchatError, ProviderError, RateLimited, TurnInProgress
from memchat.memory.plan import ContextPlan
from memchat.tokens import estimate_tokens

#: finished runs whose events stay readable (a reload right after the end still replays)
KEEP_FINISHED = 64


@dataclass
class Event:
    id: int
    kind: str  # delta | reasoning | tool_call | tool_result | image | usage | done | error
    data: dict[str, Any]


@dataclass
class Run:
    session_id: int
    turn: AsyncTurn
    events: list[Event] = field(default_factory=list)
    done: bool = False
    task: asyncio.Task[None] | None = None
    #: where the events also go for the other workers (``fanout.RedisFanout``), if anywhere
    fanout: Any = None
    #: the readers waiting for the next event (each a future, woken by ``add``)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)
    #: why the turn is being ended from outside, if it is ("shutdown": the server is stopping)
    ending: str | None = None
    #: called once when another worker asked to stop this turn (seen as an event was shared)
    on_stop_request: Callable[[], Any] | None = None

    async def add(self, kind: str, data: dict[str, Any]) -> None:
        event = Event(len(self.events) + 1, kind, data)
        if self.fanout is not None:
            try:
                stop = await self.fanout.publish(self.session_id, event)
            except MemchatError:  # Redis went away: this worker's own readers still get the turn
                self.fanout = None
            else:
                if stop and not self.done and self.on_stop_request is not None:
                    self.on_stop_request()
                    self.on_stop_request = None
        self.events.append(event)
        if kind in ("done", "error"):
            self.done = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def batches(self, after: int = 0, keepalive: float | None = None) -> AsyncGenerator[list[Event], None]:
        """The events after ``after``, then the live ones until the run ends, in lists: all that
        came while the reader was busy go together (one write under load, not one each); an
        empty list when ``keepalive`` seconds passed with none (time for a ping). A reader costs a
        future and a timer while it waits, no task of its own."""
        loop = asyncio.get_running_loop()
        sent = after
        while True:
            if len(self.events) <= sent and not self.done:
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append(waiter)
                timer = loop.call_later(keepalive, _wake, waiter) if keepalive else None
                try:
                    await waiter
                finally:
                    if timer is not None:
                        timer.cancel()
                if len(self.events) <= sent and not self.done:
                    yield []
                    continue
            batch = self.events[sent:]
            sent += len(batch)
            if batch:
                yield batch
            if self.done and sent >= len(self.events):
                return

    async def follow(self, after: int = 0) -> AsyncGenerator[Event, None]:
        """The events after ``after``, then the live ones until the run ends."""
        async for batch in self.batches(after):
            for event in batch:
                yield event


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


#: times a stop request is published to the other workers, and the pause between checks
STOP_TRIES = 6
STOP_POLL = 0.05


class Busy(Exception):
    """A turn already runs in this session."""


class Runs:
    def __init__(self, images_of: Callable[[int], list[Any]] | None = None, fanout: Any = None) -> None:
        self._active: dict[int, Run] = {}
        self._finished: dict[int, Run] = {}
        #: a session's image records (``ImageRecord``), to announce what ``generate_image`` made
        self._images_of = images_of
        #: several workers: turns claimed and their events shared through Redis
        self.fanout = fanout
        #: stops asked by another worker and seen in a turn's events (kept until they are done)
        self._stopping: set[asyncio.Task[bool]] = set()

    def _stop_later(self, session_id: int) -> None:
        """Stop the session's turn from a task of its own (the turn's task cannot await itself)."""
        task = asyncio.get_running_loop().create_task(self.stop_local(session_id))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def get(self, session_id: int) -> Run | None:
        return self._active.get(session_id) or self._finished.get(session_id)

    async def start(self, session_id: int, make_turn: Callable[[], AsyncTurn]) -> Run:
        if session_id in self._active:
            raise Busy
        if self.fanout is not None and not await self.fanout.claim(session_id):
            raise Busy  # another worker runs a turn in this session
        run = Run(session_id, make_turn(), fanout=self.fanout)
        run.on_stop_request = lambda: self._stop_later(session_id)
        self._active[session_id] = run
        try:  # the question is stored before the answer starts: a reply streaming from another
            await run.turn.begin()  # process (the REPL, a script, a host without Redis) is a 409
        except TurnInProgress:
            await self._forget(session_id)
            raise Busy from None
        except Exception:  # any other failure is the turn's own: its stream says it (in _drive)
            pass
        except BaseException:  # cancelled (the server stopping): the session must not stay busy
            await self._forget(session_id)
            raise
        run.task = asyncio.get_running_loop().create_task(self._drive(run))
        return run

    async def start_new(self, make_turn: Callable[[], AsyncTurn]) -> Run:
        """A turn in a new chat (a draft): its session is stored as the turn begins, so the run
        is known by the session's id from then on. A turn that cannot begin raises, having
        stored nothing."""
        turn = make_turn()
        await turn.begin()
        session = turn.session
        assert session is not None and not session.draft
        if self.fanout is not None:
            await self.fanout.claim(session.id)  # a new session: no other worker runs a turn in it
        run = Run(session.id, turn, fanout=self.fanout)
        run.on_stop_request = lambda: self._stop_later(session.id)
        self._active[session.id] = run
        run.task = asyncio.get_running_loop().create_task(self._drive(run))
        return run

    async def _forget(self, session_id: int) -> None:
        self._active.pop(session_id, None)
        if self.fanout is not None:
            await self.fanout.release(session_id)

    async def running(self, session_id: int) -> bool:
        if session_id in self._active:
            return True
        return self.fanout is not None and bool(await self.fanout.running(session_id))

    async def follow(self, session_id: int, after: int) -> AsyncIterator[Event] | None:
        """The session's current or last turn, from wherever it runs (None: nothing to follow)."""
        if self.fanout is not None:
            if await self.fanout.has_events(session_id):
                events: AsyncIterator[Event] = self.fanout.follow(session_id, after)
                return events
            return None
        run = self.get(session_id)
        return run.follow(after) if run is not None else None

    async def stop(self, session_id: int) -> bool:
        if session_id not in self._active and self.fanout is not None and await self.fanout.running(session_id):
            # the worker running it stops it; a published request reaches only the subscribers of
            # that moment (one resubscribing after a dropped connection misses it), so it is sent
            # again until the turn is seen to end, for a few seconds at most
            for _ in range(STOP_TRIES):
                await self.fanout.request_stop(session_id)
                for _ in range(10):
                    await asyncio.sleep(STOP_POLL)
                    if not await self.fanout.running(session_id):
                        return True
            return True
        return await self.stop_local(session_id)

    async def stop_local(self, session_id: int) -> bool:
        run = self._active.get(session_id)
        if run is None or run.task is None:
            return False
        run.turn.stop()
        run.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run.task
        return True

    async def close(self, reason: str = "shutdown") -> None:
        """Stop every turn running here (each kept as stopped); their readers' last event, a
        ``done``, carries ``reason``, so a page can say the server stopped mid-reply."""
        for session_id in list(self._active):
            run = self._active.get(session_id)
            if run is not None:
                run.ending = reason
            await self.stop_local(session_id)

    async def _made(self, session_id: int, content: str) -> list[dict[str, Any]]:
        """The images a ``generate_image`` result names, as the page shows them."""
        if self._images_of is None:
            return []
        try:
            saved = set(json.loads(content).get("saved") or [])
        except (ValueError, AttributeError):
            return []
        records = await asyncio.to_thread(self._images_of, session_id)
        return [{"id": r.id, "prompt": r.prompt, "url": f"/api/images/{r.id}"} for r in records if r.path in saved]

    async def _drive(self, run: Run) -> None:
        try:
            async for chunk in run.turn:
                for kind, data in chunk_events(chunk):
                    await run.add(kind, data)
                result = chunk.tool_result
                if result is not None and result.call.name == "generate_image" and not result.error:
                    for image in await self._made(run.session_id, result.content):
                        await run.add("image", image)
            reply = run.turn.reply
            assert reply is not None
            done: dict[str, Any] = {
                "status": reply.status.value,
                "message_id": reply.message_id,
                "user_message_id": run.turn.question_id,
                "text": reply.text,
            }
            if reply.finish_reason:  # the model's own: stop, length, content_filter …
                done["finish_reason"] = reply.finish_reason
            if reply.tool_calls:  # calls of the client's own tools, for it to run
                done["tool_calls"] = [dict(c) for c in reply.tool_calls]
            if reply.usage is None and run.turn.plan is not None:  # the upstream said nothing: memchat's count
                done["usage_estimate"] = {
                    "prompt_tokens": run.turn.plan.tokens,
                    "completion_tokens": estimate_tokens(reply.text),
                    "total_tokens": run.turn.plan.tokens + estimate_tokens(reply.text),
                }
            await run.add("done", {**done, **memory_use(reply)})
        except asyncio.CancelledError:
            reply = run.turn.reply
            status = reply.status.value if reply is not None else "stopped"
            # stopped before its first word, the turn keeps its question (with no reply)
            done = {
                "status": status,
                "message_id": reply.message_id if reply else None,
                "user_message_id": run.turn.question_id,
            }
            if run.ending:
                done["reason"] = run.ending
            await run.add("done", {**done, **memory_use(reply)})
            raise
        except MemchatError as exc:
            # the failed turn is gone (the lesson's rule) unless the error says it is kept: say why, in one line
            dropped = not getattr(exc, "kept", False)
            error: dict[str, Any] = {"kind": exc.kind, "message": i18n.describe_error(exc), "dropped": dropped}
            if isinstance(exc, ProviderError) and exc.status is not None:  # the upstream's own answer
                error["upstream_status"] = exc.status
            if isinstance(exc, RateLimited) and exc.retry_after is not None:
                error["retry_after"] = exc.retry_after
            await run.add("error", error)
        except Exception as exc:  # a bug: still end the stream, with a line rather than a hang
            await run.add("error", {"kind": "internal", "message": f"internal error: {type(exc).__name__}"})
        finally:
            self._active.pop(run.session_id, None)
            if self.fanout is not None:
                await self.fanout.release(run.session_id)
            self._finished[run.session_id] = run
            while len(self._finished) > KEEP_FINISHED:
                self._finished.pop(next(iter(self._finished)))


def memory_use(reply: Reply | None) -> dict[str, Any]:
    """What long-term memory put into a reply's context: the ids of the memories it sent
    (``memories``) and how many past turns of the user's other sessions (``recalled``); the
    page marks such a reply ("used 2 memories")."""
    if reply is None:
        return {"memories": [], "recalled": 0}
    return {"memories": list(reply.memories), "recalled": reply.recalled}


def planned_memory_use(run: Run) -> tuple[int, int]:
    """(memories, past turns of the user's other sessions) in the context of a run's turn as
    planned when it began, before its reply exists (``/v1``'s response headers go out first)."""
    plan = getattr(run.turn, "plan", None)
    if plan is None:  # AsyncTurn has no public ``plan`` yet: its state's (None before it begins)
        plan = getattr(getattr(run.turn, "_state", None), "plan", None)
    if not isinstance(plan, ContextPlan):
        return 0, 0
    return len(plan.memory_ids), plan.recalled_elsewhere


def chunk_events(chunk: Chunk) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if chunk.reasoning:
        out.append(("reasoning", {"text": chunk.reasoning}))
    if chunk.text:
        out.append(("delta", {"text": chunk.text}))
    if chunk.tool_call is not None:
        c = chunk.tool_call
        out.append(("tool_call", {"id": c.id, "name": c.name, "arguments": c.arguments}))
    if chunk.tool_result is not None:
        r = chunk.tool_result
        out.append(("tool_result", {"id": r.call.id, "name": r.call.name, "content": r.content, "error": r.error}))
    if chunk.usage is not None:
        out.append(("usage", chunk.usage.to_dict()))
    return out
