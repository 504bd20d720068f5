"""The agent: one turn = append the user's message → build the context → stream → persist.

Every interface (library, REPL, one-shot CLI, HTTP) goes through ``Agent.stream`` or
``Agent.astream``. A failed call removes the turn (the lesson's rule: history stays as if
it never happened); an interrupted one keeps what streamed, marked ``interrupted``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Sequence,
)
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from memchat.attachments import DEFAULT_LIMIT, accepts_images, fenced, file_text, image_tokens
from memchat.clock import now
from memchat.config import CLIENT_TOOLS, LEARN_MODES, TITLE_MODES
from memchat.domain import (
    DRAFT_ID,
    Attachment,
    Chunk,
    Memory,
    Message,
    Reply,
    Role,
    SessionInfo,
    SessionKey,
    Status,
    Summary,
    ToolCall,
    ToolResult,
    Usage,
)
from memchat.errors import (
    AttachmentError,
    BadRequest,
    ContextLengthExceeded,
    ContextTooLong,
    ImagesNotAccepted,
    MemchatError,
    ProviderError,
    ReplyTooLong,
    SessionNotFound,
    StoreError,
    StreamError,
    TurnInProgress,
)
from memchat.images.base import ImageGenerator
from memchat.lane import Lane
from memchat.memories.learner import LearnJob, MemoryLearner, detect_explicit
from memchat.memories.service import MemoryService
from memchat.memory.budget import Budget, context_window, recall_cap
from memchat.memory.builder import MemoryPlanner
from memchat.memory.plan import STRATEGIES, ContextEntry, ContextPlan, Layout
from memchat.memory.quiet import QuietWorker
from memchat.memory.semantic import SemanticIndex, default_index
from memchat.memory.summarize import summarize
from memchat.memory.upkeep import Upkeep
from memchat.providers.base import ChatOptions, Provider
from memchat.stores.base import SearchBacklog, Store, TurnHandle
from memchat.titles import first_words, is_generated_name, model_title
from memchat.tokens import MESSAGE_OVERHEAD
from memchat.tools.base import Tool, ToolContext
from memchat.tools.builtin import MEMORY_TOOLS, builtin_tools
from memchat.tools.loop import DEFAULT_MAX_STEPS, Approver, ToolLoop
from memchat.tools.registry import ToolRegistry

if TYPE_CHECKING:  # imported where it is used: `memchat ask` never needs it
    import asyncio

#: a 400 that says the provider or model does not take ``tools`` (vLLM, Ollama, ModelScope texts)
_TOOLS_REFUSED = re.compile(r"tool|function.?call", re.I)
#: tool schemas may take at most this share of a call's budget (else the call goes without tools)
TOOLS_SHARE = 0.25
#: seconds between saves of a streaming reply (a crash loses at most this much text)
CHECKPOINT_EVERY = 1.0
#: a reply (text and reasoning, all its tool rounds) longer than this ends the turn: a runaway
#: generation must not grow memory, events and the database without bound
MAX_REPLY_CHARS = 400_000
#: after a failed summary, turns of a session that do not try again: 2, 4, 8 … up to this
SUMMARY_BACKOFF_MAX = 64
#: the settings ``Agent.configured`` may change
CONFIGURABLE = (
    "model",
    "persona",
    "options",
    "memory",
    "context_window",
    "recall_all",
    "long_term",
    "enabled_tools",
    "max_steps",
    "auto_approve",
    "timezone",
    "date_line",
    "checkpoint_every",
    "wait_for_turn",
    "approve",
    "warm_cache",
    "titles",
    "vision",
    "max_attachment",
)
#: seconds ``Agent.close`` waits for memories still being learned in the background
LEARN_FLUSH_SECONDS = 5.0
#: seconds ``close`` gives a memory upkeep job already running to end (a daemon: never joined)
UPKEEP_CLOSE_WAIT = 2.0
#: turns that go on with the summary the embedded model's cache holds while a newer one is
#: evaluated into it between turns; the next pays for it (the user types faster than it warms)
ADOPT_AFTER = 5
#: one summary folds at most this many context windows of the newest messages it is due
#: (an imported or long-unsummarized history would take a local model minutes); what is
#: older stays reachable by recall
FOLD_WINDOWS = 2


#: search-index changes applied per step when the turns leave room (``SearchBacklog``)
SEARCH_STEP = 100


def _settle_step(store: SearchBacklog) -> bool:
    """One step of bringing ``store``'s search indexes up to date; whether more is left."""
    return store.settle_search(SEARCH_STEP) >= SEARCH_STEP


def _prefills(provider: Provider) -> bool:
    """Whether warming ``provider``'s cache can do anything: it has a ``prefill`` of its own (a
    local model); elsewhere planning the next call ahead for it would only cost the CPU."""
    return type(provider).prefill is not Provider.prefill


def _tool_name(schema: dict[str, Any]) -> str:
    """The function name of an OpenAI ``tools`` entry."""
    function = schema.get("function")
    return str(function.get("name", "")) if isinstance(function, dict) else ""


class _TurnState:
    """Bookkeeping of one turn, shared by the sync and async paths (no I/O of its own
    except through the store)."""

    def __init__(
        self,
        agent: Agent,
        info: SessionInfo,
        text: str | None,
        model: str | None,
        options: ChatOptions | None = None,
        resume: tuple[Message, list[Message]] | None = None,
        *,
        replace: int | None = None,
        question: Message | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> None:
        """``text``: the user's new message; None with ``resume`` — (the model's call of the
        caller's tools, stored as the session's last message; their results) — for a reply that
        continues that turn, or with ``question`` — the session's last user message, stored — for
        a new reply to it (a retry).

        ``replace``: the turn is a new version of the point where that shown message is (the
        reply a retry regenerates, the user message an edit changes); the store sets the shown
        path from it on aside when the turn begins, and the turn is planned then, from the
        path that is left (``Turn.plan``).
        ``info`` may be a draft (``SessionInfo.draft``): it is stored when the turn begins, and
        removed again if the turn fails (``created``)."""
        self.agent = agent
        self.info = info
        #: the session was stored by this turn (it was a draft): a failed turn removes it again
        self.created = False
        if agent.semantic is not None:  # indexing pauses while the turn runs (notice resumes it)
            agent.semantic.hold()
        self.model = agent.model_for(info, model)
        #: the message the turn stores (None: a retry, a continuation)
        self.user: Message | None = None
        if text is not None:
            # stored with its files described (what later turns, memory and search see)
            self.user = Message(Role.USER, text, attachments=tuple(attachments))
            tokens, method = agent.provider.count_tokens(self.user.described)
            self.user = dataclasses.replace(self.user, tokens=tokens, token_method=method)
        #: the message the model answers, as the plan takes it (a retry's: its stored question)
        self.asked = self.user
        self.exclude: list[int] = []
        #: the stored user message this turn answers (a retry's, or its own once stored)
        self.question_id: int | None = None
        if question is not None:
            self.asked = dataclasses.replace(
                question, id=None, seq=None, attachments=agent.with_data(question.attachments)
            )
            self.exclude = [question.id] if question.id is not None else []
            self.question_id = question.id
        if self.asked is not None and self.asked.attachments:  # refused now: nothing stored, nothing sent
            agent.check_images(self.model, self.asked.attachments)
        self.replace = replace
        self.strategy = agent.memory_for(info)
        #: the caller's own tools (OpenAI schemas in ``options.tools``): their calls go back to it
        self.client_tools = tuple(options.tools or ()) if options is not None else ()
        self.client_names = frozenset(_tool_name(t) for t in self.client_tools)
        self.tools = agent._tool_loop(info, beside=self.client_names)
        if resume is not None:
            self.tools.resume(*resume)
        self.budget = agent._budget_with_tools(self.model, self.tools, self.client_tools)
        if self.asked is not None and self.asked.attachments:  # sent whole with this turn only
            self.asked = agent.with_files_counted(self.asked, self.budget.limit)
        #: what the call sends (a new version's: planned once it has begun, ``begin``)
        self.planned: ContextPlan | None = None
        if replace is None:
            self.planned = self._make_plan()
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.usage: Usage | None = None  # summed over the turn's calls
        self.first_usage: Usage | None = None  # of the first call: what the plan alone cost
        self.finish_reason: str | None = None
        self.turn: TurnHandle | None = None
        self.saved_at = time.monotonic()
        self.size = 0  # characters streamed (text and reasoning), across the turn's calls
        self.unsaved = False  # a checkpoint failed (the database is unreachable): no more until the end
        self.reply: Reply | None = None
        #: the user stopped the turn (a Stop button): what streamed is kept as ``stopped``
        self.stopped = False
        #: calls of the caller's tools that end this turn for the caller to run (wire shape)
        self.handed: list[dict[str, Any]] = []

    def _make_plan(self, exclude: Sequence[int] = (), *, summarize: bool = True) -> ContextPlan:
        plan = self.agent._plan(
            self.info, self.asked, self.strategy, self.budget, self.model,
            exclude=[*self.exclude, *exclude], summarize=summarize, summary_until=self.agent._summary_until(self.info),
        )  # fmt: skip
        plan.notes.extend(self.tools.notes)
        return plan

    @property
    def plan(self) -> ContextPlan:
        if self.planned is None:
            raise RuntimeError("a new version of a point is planned when its turn begins")
        return self.planned

    @property
    def context(self) -> list[ContextEntry]:
        """The messages of this call with their token counts (for display)."""
        return self.plan.entries

    @property
    def wire(self) -> list[dict[str, Any]]:
        """What the next call sends: the plan, then this turn's tool steps."""
        return self.plan.wire() + self.tools.wire

    def options(self, base: ChatOptions | None) -> ChatOptions | None:
        """The call's options: the caller's, with memchat's own tools beside the caller's."""
        schemas = self.tools.schemas()
        if not schemas:
            return base
        return dataclasses.replace(base or ChatOptions(), tools=(*self.client_tools, *schemas))

    def refused_tools(self, exc: BadRequest) -> bool:
        """The provider or model rejected ``tools``: drop them and say so (True: retry)."""
        if not self.tools.offered or not _TOOLS_REFUSED.search(str(exc.detail)):
            return False
        self.tools.drop(str(exc.detail))
        self.plan.notes.append(self.tools.notes[-1])
        self.budget = dataclasses.replace(self.budget, tools=0)
        return True

    def end_step(self) -> list[ToolCall]:
        """The call ended: the tool calls it asked for (none: the reply is done)."""
        return self.tools.take_calls()

    def record_step(self, calls: list[ToolCall], results: list[ToolResult]) -> None:
        self.tools.record("".join(self.parts), calls, results)
        self.parts = []

    def split(self, calls: list[ToolCall]) -> tuple[list[ToolCall], list[ToolCall]]:
        """The calls memchat runs, and those of the caller's tools (the caller runs them)."""
        own = [c for c in calls if c.name not in self.client_names]
        return own, [c for c in calls if c.name in self.client_names]

    def hand_over(self, calls: list[ToolCall]) -> None:
        """The model called the caller's tools: the turn ends with these calls for the caller,
        whose results continue it (``Agent.astream_results``)."""
        self.handed = [c.to_wire() for c in calls]
        self.finish_reason = "tool_calls"

    def shrink(self, exc: ContextLengthExceeded) -> None:
        """The provider said the context is too long: plan again within a smaller budget."""
        if self.strategy == "full":
            raise exc
        shrunk = self.budget.shrunk(sent=self.plan.tokens)
        told = exc.info.get("context_window")  # the server named its window: plan for it from now on
        if isinstance(told, int) and told < shrunk.window and not self.agent.context_window:
            learned = self.agent.budget_for(self.model)
            shrunk = dataclasses.replace(learned, tools=self.budget.tools) if learned.window <= told else shrunk
        self.budget = shrunk
        stored = [self.turn.user_id] if self.turn and self.turn.user_id is not None else []
        try:  # one more request only: no summary is written now (the next turn writes it)
            self.planned = self._make_plan(stored, summarize=False)
        except ContextTooLong:  # not even the persona and the message fit what is left: the provider's error
            raise exc from None

    def begin(self) -> None:
        """Store the question. While another writer's reply streams in this session, wait up to
        ``agent.wait_for_turn`` seconds (then plan again: that reply is part of the context now),
        else ``TurnInProgress``."""
        deadline = time.monotonic() + self.agent.wait_for_turn
        pause = 0.05
        if self.info.draft:  # a new session is stored with its first message, not before
            self.info, self.created = self.agent.save_draft(self.info)
            self.tools.context.session = self.info
        while True:
            try:
                self.turn = self.agent.store.begin_turn(self.info.id, self.user, model=self.model, replace=self.replace)
                break
            except TurnInProgress:
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
            if self.replace is None:
                self.planned = self._make_plan()
        if self.turn.user_id is not None:
            self.question_id = self.turn.user_id
        if self.planned is None:  # a new version: planned from the path its point now ends
            try:
                self.planned = self._make_plan([self.turn.user_id] if self.turn.user_id is not None else [])
            except BaseException:
                self.abort()
                raise

    def feed(self, chunk: Chunk) -> bool:
        """Record a chunk; True when it is time to checkpoint."""
        if chunk.text:
            self.parts.append(chunk.text)
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
        self.size += len(chunk.text) + len(chunk.reasoning)
        if self.size > self.agent.max_reply_chars:
            raise ReplyTooLong(f"{self.agent.max_reply_chars:,}")
        if chunk.tool_deltas:
            self.tools.feed(chunk)
        if chunk.usage is not None:
            if self.first_usage is None:
                self.first_usage = chunk.usage
            u = self.usage
            self.usage = (
                chunk.usage
                if u is None
                else Usage(
                    u.prompt_tokens + chunk.usage.prompt_tokens, u.completion_tokens + chunk.usage.completion_tokens
                )
            )
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        now = time.monotonic()
        if now - self.saved_at >= self.agent.checkpoint_every:
            self.saved_at = now
            return True
        return False

    def text(self) -> str:
        """The reply's text streamed so far (of this call)."""
        return "".join(self.parts)

    def checkpoint(self, text: str | None = None) -> None:
        """Save the text streamed so far (``text``: as it was when the checkpoint was due). Best
        effort: a database that is unreachable for a moment does not end the turn (its end,
        ``finish``, is what must be written); after a failed save the turn saves no more until it
        ends, so the stream never waits on it again."""
        assert self.turn is not None
        if self.unsaved:
            return
        try:
            self.agent.store.checkpoint_turn(self.turn, self.text() if text is None else text)
        except StoreError:
            self.unsaved = True

    def finish(self, status: Status = Status.COMPLETE) -> Reply:
        assert self.turn is not None
        text = "".join(self.parts)
        if status is Status.COMPLETE and not text and not self.handed:
            raise StreamError("the model returned an empty reply")
        steps = self.tools.steps
        if self.usage is not None and self.usage.completion_tokens and status is Status.COMPLETE and not steps:
            tokens, method = self.usage.completion_tokens, "usage"
        else:
            tokens, method = self.agent.provider.count_tokens(text + (json.dumps(self.handed) if self.handed else ""))
        store = self.agent.store
        first = self.first_usage
        images = self.asked is not None and any(a.is_image for a in self.asked.attachments)
        if first is not None and first.prompt_tokens and status is Status.COMPLETE and not images:
            # (a call with an image is not learned from: its cost is the tile rule's, not text's)
            if self.agent.provider.count_tokens("calibration")[1] == "estimate":
                self.agent._memory.learn(self.model, first.prompt_tokens, self.plan)
        msg = store.finish_turn(
            self.turn,
            text,
            status=status,
            tokens=tokens,
            token_method=method,
            usage=self.usage,
            model=self.model,
            steps=steps,
            tool_calls=self.handed,
        )
        self.reply = Reply(
            text=text,
            session=self.info.name,
            status=status,
            usage=self.usage,
            reasoning="".join(self.reasoning),
            finish_reason=self.finish_reason,
            model=self.model,
            message_id=msg.id,
            memories=self.plan.memory_ids,
            recalled=self.plan.recalled_elsewhere,
            tool_calls=tuple(self.handed),
        )
        learned = self.agent._learn(self, self.reply)
        self.agent.index_later()
        if status is Status.COMPLETE:
            self.agent._after_turn(self)
        self.agent.remembered = list(learned)
        if learned:
            self.reply = dataclasses.replace(self.reply, remembered=learned)
        return self.reply

    @property
    def turn_user_id(self) -> int | None:
        return self.turn.user_id if self.turn is not None else None

    def abort(self) -> None:
        self.tools.cancel()
        if self.turn is not None:
            self.agent.store.abort_turn(self.turn)
            self.turn = None
        if self.created:  # stored for this turn, which left nothing: no empty session stays
            self.created = False
            self.agent._discard_new(self.info)

    def interrupt(self) -> None:
        """Keep what streamed as ``interrupted`` (``stopped`` when the user asked, see
        ``AsyncTurn.stop``); with nothing streamed, keep the question without a reply (a retry
        shows again the reply it was replacing)."""
        self.tools.cancel()
        if self.turn is None:
            return
        if self.parts:
            try:
                self.finish(Status.STOPPED if self.stopped else Status.INTERRUPTED)
                return
            except StoreError:  # the database is unreachable: drop the turn (see abort_turn)
                pass
        self.agent.store.abort_turn(self.turn, keep_question=True)
        self.turn = None


class Turn:
    """A streaming turn: iterate for ``Chunk`` objects; ``reply`` is set when it ends.

    Closing it early (``close()``, ``break`` inside ``with``, Ctrl-C) keeps the text
    streamed so far, stored as ``interrupted``.
    """

    def __init__(self, state: _TurnState, options: ChatOptions | None) -> None:
        self._state = state
        self._options = options
        self._begun = False
        self._started = False
        self._gen = self._run()

    @property
    def reply(self) -> Reply | None:
        return self._state.reply

    @property
    def question_id(self) -> int | None:
        """The id of the stored user message this turn answers (once it has begun)."""
        return self._state.question_id

    @property
    def context(self) -> list[ContextEntry]:
        return self.plan.entries

    @property
    def session(self) -> SessionInfo:
        """The session of this turn: stored once the turn has begun (a draft was stored then)."""
        return self._state.info

    @property
    def plan(self) -> ContextPlan:
        """What this call sends and why (strategy, sections, budget). A retry or an edit is
        planned once it has begun (what it replaces set aside): asking for its plan begins it."""
        if self._state.planned is None:
            self.begin()
        return self._state.plan

    def begin(self) -> None:
        """Store the question now, before iterating (optional; the first chunk does it too)."""
        if not self._begun:
            try:
                self._state.begin()
            except BaseException:
                self._state.abort()
                raise
            self._begun = True

    def _run(self) -> Generator[Chunk, None, None]:
        st = self._state
        self._started = True
        self.begin()
        try:
            while True:
                yield from self._call()
                calls = st.end_step()
                if not calls:
                    break
                own, theirs = st.split(calls)
                results = []
                for call in own:
                    yield Chunk(tool_call=call)
                    result = st.tools.run(call)
                    results.append(result)
                    yield Chunk(tool_result=result)
                if own:
                    st.record_step(own, results)
                if theirs:
                    st.hand_over(theirs)
                    break
            st.finish()
        except (GeneratorExit, KeyboardInterrupt, ReplyTooLong):
            st.interrupt()
            raise
        except BaseException:
            st.abort()
            raise

    def _call(self) -> Generator[Chunk, None, None]:
        """One model call; a context overflow is retried once smaller, refused tools once without."""
        st = self._state
        retried = False
        while True:
            started = False
            try:
                for chunk in st.agent.provider.stream(st.wire, model=st.model, options=st.options(self._options)):
                    started = True
                    if st.feed(chunk):
                        st.checkpoint()
                    yield chunk
                return
            except ContextLengthExceeded as exc:
                if started or retried:
                    raise
                st.shrink(exc)
            except BadRequest as exc:
                if started or not st.refused_tools(exc):
                    raise
            retried = True

    def __iter__(self) -> Iterator[Chunk]:
        return self._gen

    def __next__(self) -> Chunk:
        return next(self._gen)

    def close(self) -> None:
        if self._begun and not self._started:  # begun, never iterated: stopped before any token
            self._started = True
            self._state.interrupt()
        self._gen.close()

    def __enter__(self) -> Turn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTurn:
    """Async twin of ``Turn``: ``async for chunk in turn``; cancellation keeps the partial reply."""

    def __init__(self, setup: Callable[[], _TurnState], options: ChatOptions | None, lane: Lane) -> None:
        self._setup = setup
        self._state: _TurnState | None = None
        self._options = options
        self._begun = False
        #: the agent's lane: this turn's planning and database work
        self._lane = lane
        #: the checkpoint being written beside the stream (the stream does not wait for it)
        self._checkpoint: asyncio.Future[None] | None = None
        self._gen = self._run()

    @property
    def reply(self) -> Reply | None:
        return self._state.reply if self._state else None

    @property
    def plan(self) -> ContextPlan | None:
        """What this call sends and why, once the turn has begun (``begin`` or the first chunk)."""
        return self._state.planned if self._state else None

    @property
    def question_id(self) -> int | None:
        """The id of the stored user message this turn answers (once it has begun)."""
        return self._state.question_id if self._state else None

    @property
    def session(self) -> SessionInfo | None:
        """The session of this turn, once it has begun (a draft is stored then)."""
        return self._state.info if self._state else None

    async def begin(self) -> None:
        """Store the question now, before iterating (optional): ``TurnInProgress`` here, while
        another writer's reply streams in the session, lets a server answer "busy" up front.
        Planned and stored in one job of the agent's lane, ahead of other turns' later work."""

        def start() -> _TurnState:
            st = self._setup()
            self._state = st
            try:
                st.begin()
            except BaseException:
                st.abort()
                raise
            return st

        await self._lane.run(start, urgent=True)
        self._begun = True

    async def _saved(self) -> None:
        """Wait for the checkpoint being written, if one is (the final write comes after it)."""
        pending, self._checkpoint = self._checkpoint, None
        if pending is not None:
            await pending

    async def _run(self) -> AsyncGenerator[Chunk, None]:
        import asyncio  # imported here: `memchat ask` never needs it and it costs ~35 ms

        if not self._begun:
            await self.begin()
        st = self._state
        assert st is not None
        try:
            while True:
                async for chunk in self._call():
                    yield chunk
                calls = st.end_step()
                if not calls:
                    break
                own, theirs = st.split(calls)
                results = []
                for call in own:
                    yield Chunk(tool_call=call)
                    result = await asyncio.to_thread(st.tools.run, call)
                    results.append(result)
                    yield Chunk(tool_result=result)
                if own:
                    st.record_step(own, results)
                if theirs:
                    st.hand_over(theirs)
                    break
            await self._saved()
            await self._lane.run(st.finish)
        except ReplyTooLong:
            await self._saved()
            await self._lane.run(st.interrupt)
            raise
        except asyncio.CancelledError:  # stopped: the checkpoint being written goes first, as for finish
            try:
                await self._saved()
            except BaseException:  # cancelled again, or the checkpoint failed: keep the turn anyway
                pass
            st.interrupt()
            raise
        except (GeneratorExit, KeyboardInterrupt):
            st.interrupt()
            raise
        except BaseException:
            st.abort()
            raise

    async def _call(self) -> AsyncGenerator[Chunk, None]:
        import asyncio

        st = self._state
        assert st is not None
        retried = False
        while True:
            started = False
            try:
                options = st.options(self._options)
                async for chunk in st.agent.provider.astream(st.wire, model=st.model, options=options):
                    started = True
                    if st.feed(chunk):  # saved beside the stream, not in its path
                        if self._checkpoint is None:
                            saving = self._lane.run(functools.partial(st.checkpoint, st.text()))
                            self._checkpoint = asyncio.ensure_future(saving)
                            self._checkpoint.add_done_callback(self._checkpointed)
                        else:  # the last one is still being written: the next chunk tries again
                            st.saved_at = 0.0
                    yield chunk
                return
            except ContextLengthExceeded as exc:
                if started or retried:
                    raise
                await self._lane.run(functools.partial(st.shrink, exc), urgent=True)
            except BadRequest as exc:
                if started or not st.refused_tools(exc):
                    raise
            retried = True

    def _checkpointed(self, done: asyncio.Future[None]) -> None:
        if self._checkpoint is done:
            self._checkpoint = None
        if not done.cancelled():
            done.exception()  # a checkpoint never fails (best effort): nothing is left unretrieved

    def stop(self) -> None:
        """Mark the turn stopped by the user; cancelling its task then keeps the partial reply
        as ``stopped`` rather than ``interrupted``."""
        if self._state is not None:
            self._state.stopped = True

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._gen

    async def __anext__(self) -> Chunk:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()

    async def __aenter__(self) -> AsyncTurn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class Agent:
    """A chat agent with memory: a ``Store`` for sessions and a ``Provider`` for replies."""

    def __init__(
        self,
        store: Store,
        provider: Provider,
        *,
        model: str | None = None,
        persona: str = "",
        options: ChatOptions | None = None,
        memory: str | None = None,
        context_window: int | None = None,
        recall_all: bool = True,
        checkpoint_every: float = CHECKPOINT_EVERY,
        tools: ToolRegistry | Iterable[Tool] | None = None,
        enabled_tools: Sequence[str] | None = None,
        max_steps: int = DEFAULT_MAX_STEPS,
        auto_approve: bool = False,
        timezone: tzinfo | None = None,
        date_line: bool = True,
        long_term: bool = True,
        learning: str | None = None,
        semantic: SemanticIndex | Literal["auto"] | None = "auto",
        client_tools: str = "replace",
        titles: str = "words",
        vision: bool | None = None,
        max_attachment: int = DEFAULT_LIMIT,
    ) -> None:
        if memory is not None and memory not in STRATEGIES:
            raise MemchatError(f"unknown memory strategy {memory!r}; choose one of: {', '.join(STRATEGIES)}")
        self.store = store
        self.provider = provider
        self.model = model
        self.persona = persona
        self.options = options
        #: the memory strategy for every session (None: each session's own, default auto)
        self.memory = memory
        #: the context window to plan for (None: the known-models table, then the provider's)
        self.context_window = context_window
        #: recall also searches the user's other sessions (on by default; off in incognito sessions)
        self.recall_all = recall_all
        self.checkpoint_every = checkpoint_every
        #: a reply longer than this is cut there (kept as interrupted) with ``ReplyTooLong``
        self.max_reply_chars = MAX_REPLY_CHARS
        #: after a turn, memory upkeep also warms the model's cache for the next one (a local
        #: model; off where no next turn comes in this process: ``memchat ask``)
        self.warm_cache = True
        #: the tools the model may call (the built-in ones unless given)
        if tools is None:
            tools = ToolRegistry(builtin_tools())
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        #: tools switched on for every session (None: each session's own, default all but
        #: ``generate_image`` when no image generator is set)
        self.enabled_tools = list(enabled_tools) if enabled_tools is not None else None
        self.max_steps = max_steps
        if client_tools not in CLIENT_TOOLS:
            raise MemchatError(f"client_tools must be one of {', '.join(CLIENT_TOOLS)}, not {client_tools!r}")
        #: when a caller brings its own tools (``ChatOptions.tools``, an OpenAI client's ``tools``):
        #: ``replace`` memchat's with them (the default) or ``add`` them to memchat's
        self.client_tools = client_tools
        #: asked before a tool with side effects runs (None: refused unless ``auto_approve``)
        self.approve: Approver | None = None
        self.auto_approve = auto_approve
        self.timezone = timezone
        #: a line with today's date after the persona (models cannot know it)
        self.date_line = date_line
        #: seconds a turn waits for another writer's reply in the same session (0: busy at once)
        self.wait_for_turn = 0.0
        #: an ``ImageGenerator`` for the ``generate_image`` tool, and where its files go
        self.images: ImageGenerator | None = None
        self.images_dir: Any = None
        #: the semantic index (an embedding model's vectors of past messages, made in the
        #: background): recall fuses its nearest messages with BM25's (None: words only;
        #: "auto": the process's default, the offline model's when it is installed)
        self.semantic: SemanticIndex | None = default_index() if semantic == "auto" else semantic
        self._memory = MemoryPlanner(store, provider.count_tokens, self.semantic)
        #: session id → (failed summaries in a row, turns left before the next try)
        self._summary_backoff: dict[int, tuple[int, int]] = {}
        #: on a model that keeps its KV cache (the embedded one): session → (the last message of
        #: the summary the turns use, turns since a newer one was written): ``_summary_until``
        self._adopted: dict[tuple[str, int], tuple[int, int]] = {}
        self._adopt_lock = threading.Lock()
        #: memory upkeep (summaries, the next call planned ahead) in one background thread,
        #: shared with this agent's twins
        self.upkeep = Upkeep()
        #: warming the model's cache for the next turn: a lane of its own
        self.warming = Upkeep()
        #: the search indexes' backlog (SQLite) applied once the turns leave room, off the reply's
        #: path (shared with this agent's twins: one database)
        self._settler = (
            QuietWorker(functools.partial(_settle_step, store), name="memchat-search")
            if isinstance(store, SearchBacklog)
            else None
        )
        #: the async turns' blocking work (planning, the database), their starts first (shared
        #: with this agent's twins: one server's turns queue in one lane)
        self.lane = Lane("memchat-turns")
        #: the token cost of a set of tool schemas (names → tokens)
        self._schema_costs: dict[tuple[str, ...], int] = {}
        #: long-term memory: what the agent knows about its user, recalled in every session
        #: (with ``recall_all``, the user's other sessions' turns too); off in incognito sessions
        self.long_term = long_term
        if learning is not None and learning not in LEARN_MODES:
            raise MemchatError(f"learning must be one of {', '.join(LEARN_MODES)}, not {learning!r}")
        #: how memories are learned: auto (the model, after each turn, off the reply's path: a
        #: second call per turn), explicit (only when the user asks), off. The library's default
        #: is explicit (no call is made that the caller did not ask for); the configured
        #: interfaces (``make_agent``) default to auto, except on the embedded model, which is
        #: too weak to extract memories reliably
        self.learning = learning or "explicit"
        #: the user's long-term memories (the use cases every interface calls)
        self.memories = MemoryService(store, provider.count_tokens)
        #: one background learner, shared with ``with_store`` twins (each job names its user)
        self._learner: MemoryLearner | None = (
            MemoryLearner(provider.for_upkeep(), mode=self.learning) if self.learning == "auto" else None
        )
        #: what the last turn was asked to remember or forget (for the REPL's confirmation)
        self.remembered: list[Memory] = []
        if titles not in TITLE_MODES:
            raise MemchatError(f"titles must be one of {', '.join(TITLE_MODES)}, not {titles!r}")
        #: how a session the user did not name gets its title from its first exchange
        #: (``memchat.titles``): ``words`` (the question's first words; the library's default: no
        #: call the caller did not ask for), ``model`` (the chat model writes one in the background;
        #: the configured interfaces' default, but on the embedded model), ``off``
        self.titles = titles
        #: the model takes images (None: as the known-models table says; ``attachments.vision``)
        self.vision = vision
        #: the largest file a message may carry, in bytes
        self.max_attachment = max_attachment

    def close(self) -> None:
        """Close the provider and the store; memories still being learned get a few seconds. What
        is not indexed for recall by meaning yet stays for the next process that indexes (the
        REPL, the server, ``memchat memory index``; ``memchat ask`` starts one in the background)."""
        if self._learner is not None:
            self._learner.flush(LEARN_FLUSH_SECONDS)
            self._learner.close()
        self.upkeep.close()  # what waits is done by the next process (its first turn finds it due)
        self.warming.close()
        if self._settler is not None:
            self._settler.close()  # what is not indexed yet is by the next search, first
        # a job already running gets a moment to end before its provider closes under it
        self.upkeep.wait(UPKEEP_CLOSE_WAIT)
        self.warming.wait(UPKEEP_CLOSE_WAIT)
        if self.semantic is not None:
            self.semantic.cancel(self.store)  # the index serves other agents too: it stays open
        self.tools.close()  # tool sources (MCP servers) stop: no child process outlives the agent
        self.provider.close()
        self.store.close()

    # -- long-term memory ---------------------------------------------------------------

    def is_incognito(self, info: SessionInfo) -> bool:
        """Nothing is learned from an incognito session and nothing recalled into it."""
        return isinstance(info.settings, dict) and info.settings.get("incognito") is True

    def set_incognito(self, session: SessionKey | None, on: bool = True) -> SessionInfo:
        info = self.session(session)
        settings = dict(info.settings) if isinstance(info.settings, dict) else {}
        if on:
            settings["incognito"] = True
        else:
            settings.pop("incognito", None)
        return self.store.update_session(info.id, settings=settings)

    def _long_term(self, info: SessionInfo) -> tuple[bool, bool]:
        """(memories, other sessions' turns) for a call in ``info``."""
        if self.is_incognito(info):
            return False, False
        return self.long_term, self.recall_all

    @property
    def learner(self) -> MemoryLearner:
        """The background learner (made on first use)."""
        if self._learner is None:
            self._learner = MemoryLearner(self.provider, mode=self.learning)
        self._learner.mode = self.learning  # the setting may have changed since (/learn, a flag)
        return self._learner

    def _learn(self, state: _TurnState, reply: Reply) -> tuple[Memory, ...]:
        """After a turn: what the user asked to remember or forget, now (a database write);
        in ``auto`` mode, the exchange goes to the background learner (never delaying the reply).
        Never fails the turn."""
        info = state.info
        if not self.long_term or self.learning == "off" or self.is_incognito(info) or state.user is None:
            return ()
        used_tools = state.tools.called
        done: list[Memory] = [a for a in state.tools.context.artifacts if isinstance(a, Memory)]
        try:
            asked = detect_explicit(state.user.content) if not used_tools & {"remember", "forget"} else None
            if asked is not None:
                verb, text = asked
                source = [i for i in (state.turn_user_id, reply.message_id) if i is not None]
                if verb == "remember" and text:
                    done.append(
                        self.memories.add(text, session_id=info.id, source_ids=source, today=now(self.timezone).date())
                    )
                elif verb == "forget" and text:
                    forgotten = self.memories.forget_matching(text)
                    if forgotten is not None:
                        done.append(forgotten)
            if self.learning == "auto" and reply.status is Status.COMPLETE and reply.text and not done:
                self.learner.submit(
                    LearnJob(
                        service=self.memories,
                        session_id=info.id,
                        source_ids=tuple(i for i in (state.turn_user_id, reply.message_id) if i is not None),
                        user=state.user.content,
                        reply=reply.text,
                        model=state.model,
                        today=now(self.timezone).date(),
                    )
                )
        except MemchatError:
            pass  # a memory that cannot be stored (too long, the database busy) does not fail the turn
        return tuple(done)

    def index_later(self) -> None:
        """Give the new messages their vectors for semantic recall, in the background (no-op
        without a semantic index)."""
        if self.semantic is not None:
            self.semantic.notice(self.store)

    def wait_for_upkeep(self, timeout: float | None = None) -> bool:
        """Wait until the background work on memory is done — summaries, the messages indexed
        for semantic recall, the memories being learned — or ``timeout`` seconds passed. True
        when nothing is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = True
        if self.semantic is not None:
            self.index_later()  # what is not indexed yet (an imported history, an earlier run's turns)
            done = self.semantic.wait(timeout) and done
        if self._learner is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done = self._learner.flush(left) and done
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        done = self.upkeep.wait(left) and done
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.warming.wait(left) and done

    def configured(self, **changes: Any) -> Agent:
        """This agent with some settings changed (``model``, ``memory``, ``enabled_tools`` …):
        a twin sharing the provider, store, caches and learner; this one is left as it was."""
        unknown = sorted(set(changes) - set(CONFIGURABLE))
        if unknown:
            raise TypeError(f"not an agent setting: {', '.join(unknown)}")
        if "memory" in changes and changes["memory"] is not None and changes["memory"] not in STRATEGIES:
            raise MemchatError(f"unknown memory strategy {changes['memory']!r}; choose one of: {', '.join(STRATEGIES)}")
        twin = copy.copy(self)
        for name, value in changes.items():
            setattr(twin, name, value)
        return twin

    def for_user(self, user_id: int) -> Agent:
        """This agent serving another user of the same database (a server's account): its
        sessions and memories are that user's only (``with_store`` over the store's view)."""
        return self.with_store(self.store.for_owner(user_id))

    def with_store(self, store: Store) -> Agent:
        """This agent's settings, provider and tools over another store (another user's view
        of the same database, for the server): its own memory caches."""
        twin = copy.copy(self)
        twin.store = store
        twin._memory = MemoryPlanner(store, self.provider.count_tokens, self.semantic)
        twin._summary_backoff = {}
        twin.memories = MemoryService(store, self.provider.count_tokens)
        twin.remembered = []
        return twin

    def _count(self, text: str) -> int:
        return self.provider.count_tokens(text)[0]

    # -- attachments --------------------------------------------------------------------

    def takes_images(self, model: str | None = None) -> bool:
        """Whether ``model`` (the agent's by default) is sent images: the provider, then the
        ``vision`` setting, then the known-models table decide."""
        name = model or self.model or self.provider.model
        return accepts_images(name, override=self.vision, provider=self.provider.accepts_images)

    def check_images(self, model: str, attachments: Sequence[Attachment]) -> None:
        """``ImagesNotAccepted`` when an image goes to a model that takes text only."""
        image = next((a for a in attachments if a.is_image), None)
        if image is not None and not self.takes_images(model):
            embedded = self.provider.accepts_images is False
            raise ImagesNotAccepted(
                f"the model {model} takes text only; {image.name} (an image) was not sent",
                model=model,
                name=image.name,
                reason="embedded" if embedded else "",
            )

    def with_data(self, attachments: Sequence[Attachment]) -> tuple[Attachment, ...]:
        """Stored attachments with their bytes (a retry sends them again)."""
        found = []
        for a in attachments:
            data = a.data if a.data is not None else self.store.attachment_data(a.sha256)
            found.append(dataclasses.replace(a, data=data))
        return tuple(found)

    def with_files_counted(self, message: Message, limit: int) -> Message:
        """``message`` with the tokens it costs sent whole: its text, each text file fenced (one
        that alone does not fit ``limit`` is an ``AttachmentError``), each image by its size (``image_tokens``)."""
        tokens, method = self.provider.count_tokens(message.content)
        for a in message.attachments:
            if a.data is None:
                tokens += self._count(a.description)
            elif a.is_image:
                tokens += image_tokens(a.data)
            else:
                cost = self._count(fenced(a.name, file_text(a)))
                if cost > limit:
                    raise AttachmentError(
                        f"{a.name} needs about {cost:,} tokens, more than the {limit:,} the model's context window "
                        "leaves for messages; attach a part of it",
                        name=a.name,
                        reason="too_many_tokens",
                        tokens=f"{cost:,}",
                        limit=f"{limit:,}",
                    )
                tokens += cost
        return dataclasses.replace(message, tokens=tokens, token_method=method)

    # -- sessions ---------------------------------------------------------------------

    def draft(
        self, name: str | None = None, *, persona: str | None = None, settings: dict[str, Any] | None = None
    ) -> SessionInfo:
        """A new session not stored yet (``SessionInfo.draft``): a turn in it stores it with its
        first message (``name`` None: a generated name then). Its settings may be changed before
        (``dataclasses.replace``); nothing is written until that turn."""
        return SessionInfo(
            DRAFT_ID,
            name or "",
            persona=self.persona if persona is None else persona,
            model=self.model,
            provider=self.provider.name,
            settings=dict(settings or {}),
        )

    def save_draft(self, draft: SessionInfo) -> tuple[SessionInfo, bool]:
        """Store ``draft`` (a turn does, as it begins); whether it was stored now (False: another
        writer made a session of that name meanwhile, which is used)."""
        try:
            info = self.store.create_session(
                draft.name or None,
                persona=draft.persona,
                model=draft.model,
                provider=draft.provider,
                memory=draft.memory,
                settings=dict(draft.settings) or None,
            )
        except MemchatError:
            if not draft.name:
                raise
            return self.store.get_session(draft.name), False
        return info, True

    def _discard_new(self, info: SessionInfo) -> None:
        """Remove a session stored for a turn that failed, if it holds nothing (best effort)."""
        try:
            if not self.store.messages(info.id, include_streaming=True) and not self.store.images(info.id):
                self.store.delete_session(info.id)
        except MemchatError:
            pass

    def _find(self, session: SessionKey | None) -> SessionInfo:
        """The session ``session`` (name, id or info) as it is, or a draft of it (a name not taken
        yet, None): never writes."""
        if isinstance(session, SessionInfo):
            return session
        if session is not None:
            info = self.store.find_session(session)
            if info is not None:
                return info
            if isinstance(session, int):
                raise SessionNotFound(f"no session with id {session}")
        return self.draft(session)

    def session(self, session: SessionKey | None = None, *, persona: str | None = None) -> SessionInfo:
        """The session ``session`` (name, id or info), created if it does not exist yet (a draft
        is returned as it is: a turn stores it).

        ``None`` creates a fresh session with a generated name.
        """
        if isinstance(session, SessionInfo):
            return session
        if session is not None:
            info = self.store.find_session(session)
            if info is not None:
                return info
            if isinstance(session, int):
                raise SessionNotFound(f"no session with id {session}")
        persona = self.persona if persona is None else persona
        try:
            return self.store.create_session(session, persona=persona, model=self.model, provider=self.provider.name)
        except MemchatError:
            if session is None:
                raise
            return self.store.get_session(session)  # created meanwhile by another process

    def model_for(self, session: SessionInfo, model: str | None = None) -> str:
        """The model a turn of ``session`` uses: the call's > the agent's > the one stored with the
        session (if it was chosen on this provider) > the provider's default."""
        provider = self.provider
        stored = session.model if session.provider in (None, provider.name) else None
        return model or self.model or stored or provider.model

    def memory_for(self, session: SessionInfo) -> str:
        """The memory strategy of ``session``: the agent's (flag, env, config) > the session's."""
        return self.memory or session.memory or "auto"

    def budget_for(self, model: str) -> Budget:
        """The token budget of a call to ``model`` (before tool schemas)."""
        window = context_window(
            model,
            override=self.context_window,
            provider_default=self.provider.context_window,
            served=lambda: self.provider.served_window(model),
        )
        overhead, primer = self.provider.template_overhead()
        budget = Budget.for_window(
            window,
            max_tokens=self.options.max_tokens if self.options else None,
            overhead=overhead,
            primer=primer,
        )
        cap = recall_cap(self.provider.prompt_rate())
        return budget if cap is None else dataclasses.replace(budget, recall_cap=cap)

    def _budget_with_tools(self, model: str, loop: ToolLoop, client: Sequence[dict[str, Any]] = ()) -> Budget:
        """The budget once the tool schemas are paid for (memchat's and the caller's ``client``
        ones); in a window too small for memchat's (they would take over a quarter of it) the
        call goes without them. The caller's always go: it asked for them."""
        budget = self.budget_for(model)
        theirs = self._count(json.dumps(list(client), ensure_ascii=False)) if client else 0
        if not loop.tools:
            return dataclasses.replace(budget, tools=theirs) if theirs else budget
        key = tuple(loop.tools)  # the same tools cost the same tokens: counted once
        cost = self._schema_costs.get(key)
        if cost is None:
            cost = self._schema_costs[key] = self._count(loop.schema_text())
        if cost > budget.limit * TOOLS_SHARE:
            loop.drop(f"their schemas need about {cost} tokens of the {budget.limit}-token budget")
            return dataclasses.replace(budget, tools=theirs) if theirs else budget
        return dataclasses.replace(budget, tools=cost + theirs)

    def tools_for(self, session: SessionInfo) -> list[str]:
        """The tools switched on in ``session``: the agent's (flags) > the session's > the default."""
        if self.enabled_tools is not None:
            return list(self.enabled_tools)
        stored = session.settings.get("tools") if isinstance(session.settings, dict) else None
        memories = self._long_term(session)[0] and self.learning != "off"
        if isinstance(stored, list):
            names = [str(n) for n in stored if self.tools.get(str(n)) is not None]
        else:
            names = [n for n in self.tools.names() if n != "generate_image" or self.images is not None]
        return [n for n in names if memories or n not in MEMORY_TOOLS]

    def _tool_loop(self, info: SessionInfo, beside: Collection[str] = ()) -> ToolLoop:
        """The turn's own tools; ``beside``: the names of the caller's tools in this call, which
        replace memchat's (``client_tools = "replace"``, the default) or join them, winning a
        name both have (``"add"``)."""
        chosen = self.tools.select(self.tools_for(info)) if self.provider.supports_tools else {}
        if beside:
            chosen = {k: v for k, v in chosen.items() if k not in beside} if self.client_tools == "add" else {}
        context = ToolContext(
            session=info,
            store=self.store,
            timezone=self.timezone,
            search_all=self._long_term(info)[1],
            images=self.images,
            images_dir=self.images_dir,
            memories=self.memories if self._long_term(info)[0] else None,
        )
        return ToolLoop(
            chosen,
            context,
            max_steps=self.max_steps,
            approve=self.approve,
            auto_approve=self.auto_approve,
            count=self.provider.count_tokens,
        )

    def _layout(self) -> Layout:
        """Where recall goes in a call: what the provider accepts (one system message unless it
        says its template renders another)."""
        try:
            return Layout(self.provider.system_layout())
        except ValueError:
            return Layout.SINGLE

    def today(self) -> datetime | None:
        """The moment the date line of the context shows (None: the line is off)."""
        return now(self.timezone) if self.date_line else None

    def context(self, session: SessionKey | None, text: str | None = None) -> ContextPlan:
        """What the next call sends: the plan of the session's context (with ``text`` as the
        new user message, recall included). Writes nothing; a summary that is due is
        reported in ``needs_summary`` and written by the next turn. A session that does not exist
        yet is planned as a draft (not created)."""
        info = self._find(session)
        model = self.model_for(info)
        new = None
        if text:
            tokens, method = self.provider.count_tokens(text)
            new = Message(Role.USER, text, tokens=tokens, token_method=method)
        loop = self._tool_loop(info)
        memories, others = self._long_term(info)
        plan = self._memory.plan(
            info,
            new,
            strategy=self.memory_for(info),
            budget=self._budget_with_tools(model, loop),
            model=model,
            recall_all=others,
            summarize=False,  # as the turn plans: a summary that is due is written after it
            today=self.today(),
            long_term=memories,
            layout=self._layout(),
            summary_until=self._summary_until(info),  # what the turn would use
        )
        if plan.needs_summary is not None and self.upkeep.pending(self._upkeep_key(info)):
            first, last = plan.needs_summary
            plan.notes.append(f"memory upkeep is folding messages {first}–{last} into the summary now")
        plan.notes.extend(loop.notes)
        return plan

    def _plan(
        self,
        info: SessionInfo,
        new: Message | None,
        strategy: str,
        budget: Budget,
        model: str,
        *,
        exclude: list[int],
        summarize: bool = True,
        recall: bool = True,
        summary_until: int | None = None,
    ) -> ContextPlan:
        """Plan a call; a summary that is due is written after the turn, by memory upkeep (the
        turns it would fold are left out meanwhile: ``summarize`` only says so in the notes).
        Without ``recall`` nothing is searched (its room is kept: memory upkeep planning ahead).
        ``summary_until``: the newest summary the model's cache holds (``_summary_until``)."""

        memories, others = self._long_term(info)

        def make(may_summarize: bool) -> ContextPlan:
            return self._memory.plan(
                info,
                new,
                strategy=strategy,
                budget=budget,
                model=model,
                exclude=exclude,
                recall_all=others,
                summarize=may_summarize,
                today=self.today(),
                long_term=memories,
                layout=self._layout(),
                recall=recall,
                summary_until=summary_until,
            )

        plan = make(False)  # never written on the reply's path: memory upkeep writes it after the turn
        if plan.needs_summary is not None and summary_until is not None:
            newest = self.store.latest_summary(info.id)
            if newest is not None and newest.last_seq > summary_until:  # written: not due, only not used yet
                first, last = plan.needs_summary
                plan.needs_summary = None
                plan.notes.append(
                    f"messages {first}–{last} are left out until the model's cache holds the newest summary "
                    "(in the background, between turns)"
                )
        if plan.needs_summary is not None and summarize:
            first, last = plan.needs_summary
            failures, _ = self._summary_backoff.get(info.id, (0, 0))
            if failures:
                plan.notes.append(f"summaries are paused after {failures} failed in a row; older turns are left out")
            else:
                plan.notes.append(
                    f"messages {first}–{last} are left out until memory upkeep folds them into the summary "
                    "(in the background, after the reply)"
                )
        return plan

    def _upkeep_key(self, info: SessionInfo) -> tuple[str, int]:
        return (self.store.cache_key, info.id)

    def upkeep_pending(self, session: SessionKey | None) -> bool:
        """Whether memory upkeep (a summary being written) is queued or running for ``session``."""
        info = self._find(session)
        return not info.draft and self.upkeep.pending(self._upkeep_key(info))

    def _after_turn(self, state: _TurnState) -> None:
        """A turn ended: plan the next call now, in the background — fold what fell out of the
        window into the summary, move the window when the next turn would overflow it, and warm
        the model's cache with the context's new beginning — so the next turn waits on none of it.
        The first exchange of a session gives it its title (``_title``)."""
        self._title(state)
        if self._settler is not None:  # the turn's messages into the search indexes, when there is room
            self._settler.notice()
        if self.memory_for(state.info) not in ("summary", "auto") or state.user is None:
            return
        info, model, budget, text = state.info, state.model, state.budget, state.user.content
        key = self._upkeep_key(info)
        self._count_waiting(info)
        if self.warm_cache and _prefills(self.provider):  # its own lane: never behind a summary being written
            self.warming.submit(key, lambda: self._warm_next(info, model, budget, text))
        self.upkeep.submit(key, lambda: self._keep_up(info, model, budget, text))

    def _title(self, state: _TurnState) -> None:
        """The first complete exchange of a session the user did not name gives it a title: the
        first words of the question now (one write), and with ``titles="model"`` one the model
        writes in upkeep's lane, off the reply's path. A session has a title from then on (a
        failed call leaves the first words), so this is done once. Never fails the turn."""
        info, reply = state.info, state.reply
        if self.titles == "off" or state.user is None or reply is None or not reply.text:
            return
        if info.title or not is_generated_name(info.name):
            return
        words = first_words(state.user.content)
        if not words:
            return
        try:
            self.store.update_settings(info.id, {"title": words})
        except MemchatError:
            return
        if self.titles == "model":
            question, answer, model = state.user.content, reply.text, state.model
            key = (*self._upkeep_key(info), "title")
            self.upkeep.submit(key, lambda: self._model_title(info.id, words, question, answer, model))

    def _model_title(self, session: int, words: str, question: str, answer: str, model: str) -> None:
        """Replace the first-words title with the model's, unless the session changed it meanwhile
        (renamed, deleted); a failed call keeps the first words."""
        try:
            title = model_title(self.provider.for_upkeep(), model, question, answer)
        except MemchatError:
            return
        info = self.store.find_session(session)
        if info is not None and info.title == words and title != words:
            self.store.update_settings(session, {"title": title})

    def _keep_up(self, info: SessionInfo, model: str, budget: Budget, text: str) -> None:
        """The upkeep of one session (``_after_turn``); ``text``: the last message, standing in for
        the next one's size."""
        failures, wait = self._summary_backoff.get(info.id, (0, 0))
        if wait > 0:  # a summary failed lately: not every turn pays for another try
            self._summary_backoff[info.id] = (failures, wait - 1)
            return
        plan = self._plan(
            info, self._proxy(text), self.memory_for(info), budget, model, exclude=[], summarize=False, recall=False
        )
        if plan.needs_summary is not None:
            if self.warm_cache and _prefills(self.provider):  # before it is stored: turns keep this one
                used = self.store.latest_summary(info.id)
                with self._adopt_lock:
                    self._adopted.setdefault(self._upkeep_key(info), (used.last_seq if used else 0, 0))
            try:
                self.summarize(info, plan.needs_summary, model=model, window=budget.window)
            except ProviderError:
                failures += 1
                self._summary_backoff[info.id] = (failures, min(2**failures, SUMMARY_BACKOFF_MAX))
                return
            self._summary_backoff.pop(info.id, None)
            if self.warm_cache and _prefills(self.provider):  # the summary changed the context's beginning
                key = self._upkeep_key(info)
                self.warming.submit(key, lambda: self._warm_next(info, model, budget, text))

    def _proxy(self, text: str) -> Message:
        tokens, method = self.provider.count_tokens(text)
        return Message(Role.USER, text, tokens=tokens, token_method=method)

    def _warm_next(self, info: SessionInfo, model: str, budget: Budget, text: str) -> None:
        """Warm the model's cache with the next call's beginning — everything before the new
        message and what recall adds — planned ahead (the window moves now when the next turn
        would overflow it). A local model only; a no-op elsewhere."""
        newest = self.store.latest_summary(info.id)
        plan = self._plan(
            info, self._proxy(text), self.memory_for(info), budget, model, exclude=[], summarize=False, recall=False,
            summary_until=newest.last_seq if newest is not None else 0,  # exactly the one adopted if it gets through
        )  # fmt: skip
        head = [e for e in plan.entries if e.kind not in ("recall", "new")]
        until = self._summary_until(info)
        waiting = until is not None and newest is not None and newest.last_seq > until  # turns still send the old
        if self.provider.prefill([e.to_wire() for e in head], keep=waiting) and newest is not None:
            with self._adopt_lock:  # the cache holds the newest summary's layout: the next turn uses it
                key = self._upkeep_key(info)
                if key in self._adopted:
                    self._adopted[key] = (max(newest.last_seq, self._adopted[key][0]), 0)

    def _summary_until(self, info: SessionInfo) -> int | None:
        """The newest summary a turn uses, as its last message (None: the newest there is).

        On a model that keeps the conversation in its KV cache (the embedded one), a summary
        memory upkeep has just written changes the context's beginning: the first turn to use
        it would evaluate it and everything after it again while the user waits (16 s at 7,000
        tokens). So turns go on with the summary the cache holds — the turns the new one folds
        are left out meanwhile, the budget holds — while warming evaluates the new layout into
        the cache between turns (``_warm_next``); after ``ADOPT_AFTER`` turns without a pause
        long enough for it, a turn uses the new one anyway."""
        with self._adopt_lock:
            found = self._adopted.get(self._upkeep_key(info))
        if found is None or found[1] >= ADOPT_AFTER:
            return None
        return found[0]

    def _count_waiting(self, info: SessionInfo) -> None:
        """A turn ended while a newer summary waits to be warmed: one more turn waited (the one
        that used it after ``ADOPT_AFTER`` makes it the one the cache holds)."""
        key = self._upkeep_key(info)
        with self._adopt_lock:
            found = self._adopted.get(key)
        if found is None:
            return
        newest = self.store.latest_summary(info.id)
        if newest is None or newest.last_seq <= found[0]:
            return
        with self._adopt_lock:
            until, waited = self._adopted.get(key, found)
            self._adopted[key] = (newest.last_seq, 0) if waited >= ADOPT_AFTER else (until, waited + 1)

    def wait_for_summaries(self, timeout: float | None = None) -> bool:
        """Wait until memory upkeep (summaries) is done, or ``timeout`` seconds passed."""
        return self.upkeep.wait(timeout)

    def summarize(
        self, session: SessionKey | None, span: tuple[int, int], *, model: str, window: int
    ) -> Summary | None:
        """Fold messages ``span`` (first, last seq) into the session's running summary (with the
        provider's upkeep twin: on the embedded model, a context of its own that gives way to turns).
        None when those messages changed while it was written (another version was chosen, an
        undo): the summary would stand for messages no longer shown, and is not kept."""
        info = self.session(session)
        previous = self.store.latest_summary(info.id)
        if previous is not None and previous.last_seq >= span[1]:
            return previous  # written already (an earlier job covered it)
        first = previous.last_seq + 1 if previous is not None else span[0]
        messages = self._newest_between(info.id, first, span[1], FOLD_WINDOWS * window)
        text = summarize(
            self.provider.for_upkeep(),
            model,
            previous.content if previous is not None else "",
            messages,
            window=window,
            count=self._count,
        )
        tokens, method = self.provider.count_tokens(text)
        start = previous.first_seq if previous is not None else (messages[0].seq or span[0]) if messages else span[0]
        summary = Summary(start, span[1], text, tokens, method, model)
        again = self._newest_between(info.id, first, span[1], FOLD_WINDOWS * window)
        if [(m.id, m.content) for m in again] != [(m.id, m.content) for m in messages]:
            return None
        return self.store.add_summary(info.id, summary)

    def _newest_between(self, session: int, first: int, last: int, tokens: int) -> list[Message]:
        """The newest settled messages with ``first <= seq <= last`` that fit in ``tokens``
        (read backwards a page at a time: a long span is not read whole)."""
        newest_first: list[Message] = []
        total = 0
        before = last + 1
        while True:
            page = self.store.messages_before(session, before, 256)
            for m in reversed(page):
                total += (m.tokens if m.tokens is not None else self._count(m.content)) + MESSAGE_OVERHEAD
                if (m.seq or 0) < first or (total > tokens and newest_first):
                    return newest_first[::-1]
                newest_first.append(m)
            if len(page) < 256:
                return newest_first[::-1]
            before = page[0].seq or 0

    # -- turns ------------------------------------------------------------------------

    def _state(
        self,
        session: SessionKey | None,
        text: str,
        model: str | None,
        options: ChatOptions | None = None,
        *,
        replace: int | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> _TurnState:
        if (not text or not text.strip()) and not attachments:
            raise MemchatError("the message is empty")
        if isinstance(session, SessionInfo):
            info = session if session.draft else self.store.get_session(session.id)
        else:
            info = self._find(session)  # a new session is a draft until the turn begins
        return _TurnState(self, info, text, model, options, replace=replace, attachments=attachments)

    def _results_state(
        self,
        session: SessionKey | None,
        results: Sequence[tuple[str, str]],
        model: str | None,
        options: ChatOptions | None,
    ) -> _TurnState:
        info = self.store.get_session(session.id) if isinstance(session, SessionInfo) else self.session(session)
        newest = self.store.messages_before(info.id, None, 1)
        pending = newest[-1] if newest else None
        if pending is None or pending.role is not Role.ASSISTANT or not pending.tool_calls:
            raise MemchatError("there is no tool call waiting for results in this session")
        waiting = [str(c.get("id")) for c in pending.tool_calls]
        given = {call_id for call_id, _ in results}
        if not results or given != set(waiting) or len(given) != len(results):
            raise MemchatError(
                f"the tool results must answer each waiting call once: {', '.join(waiting)} (got {', '.join(given)})"
            )
        count = self.provider.count_tokens
        answers = [
            Message(Role.TOOL, content, tool_call_id=call_id, tokens=count(content)[0], token_method=count(content)[1])
            for call_id, content in sorted(results, key=lambda r: waiting.index(r[0]))
        ]
        return _TurnState(self, info, None, model, options, resume=(pending, answers))

    def stream(
        self,
        session: SessionKey | None,
        text: str,
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Turn:
        """Start a turn and stream its reply (iterate the result for chunks). ``attachments``:
        files sent with the message (``memchat.attachments.from_path`` … read and check them)."""
        options = options or self.options
        return Turn(self._state(session, text, model, options=options, attachments=attachments), options)

    def stream_results(
        self,
        session: SessionKey | None,
        results: Sequence[tuple[str, str]],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> Turn:
        """Go on with a turn that ended in calls of the caller's tools (``Reply.tool_calls``):
        ``results`` are (call id, what the tool returned), one per call; they are stored with the
        turn, and the model's answer (or its next calls) streams as a turn does."""
        options = options or self.options
        return Turn(self._results_state(session, results, model, options), options)

    def ask_results(
        self,
        session: SessionKey | None,
        results: Sequence[tuple[str, str]],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> Reply:
        """``stream_results`` to its end: the reply (or the model's next calls of the caller's tools)."""
        turn = self.stream_results(session, results, model=model, options=options)
        for _ in turn:
            pass
        assert turn.reply is not None
        return turn.reply

    def astream_results(
        self,
        session: SessionKey | None,
        results: Sequence[tuple[str, str]],
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncTurn:
        """Async twin of ``stream_results``."""
        options = options or self.options
        return AsyncTurn(lambda: self._results_state(session, results, model, options), options, self.lane)

    def ask(
        self,
        session: SessionKey | None,
        text: str,
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Reply:
        """One whole turn; returns the reply with its usage."""
        turn = self.stream(session, text, model=model, options=options, attachments=attachments)
        for _ in turn:
            pass
        assert turn.reply is not None
        return turn.reply

    def retry(
        self, session: SessionKey | None, *, model: str | None = None, options: ChatOptions | None = None
    ) -> Turn:
        """Regenerate the last reply: a new version of it, the old one kept as another version of
        that point (``Store.versions``; shown again if this one fails or is stopped before any
        token). A last question left without a reply (stopped before its first token) gets one."""
        return Turn(self._retry_state(session, model, options), options or self.options)

    def aretry(
        self, session: SessionKey | None, *, model: str | None = None, options: ChatOptions | None = None
    ) -> AsyncTurn:
        """Async twin of ``retry``."""
        return AsyncTurn(lambda: self._retry_state(session, model, options), options or self.options, self.lane)

    def _retry_state(self, session: SessionKey | None, model: str | None, options: ChatOptions | None) -> _TurnState:
        info = self._find(session)
        if info.draft:
            raise MemchatError("there is no reply to regenerate yet")
        history: list[Message] = []  # the newest messages, back to the last user message
        while not any(m.role is Role.USER for m in history):
            page = self.store.messages_before(info.id, history[0].seq if history else None, 64)
            if not page:
                break
            history = page + history
        last_user = max((i for i, m in enumerate(history) if m.role is Role.USER), default=None)
        if last_user is None:
            raise MemchatError("there is no reply to regenerate yet")
        after = history[last_user + 1 :]
        replace = after[0].id if after else None
        return _TurnState(
            self, info, None, model, options or self.options, replace=replace, question=history[last_user]
        )

    def edit(
        self,
        session: SessionKey | None,
        message_id: int,
        text: str,
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> Turn:
        """Give the user message ``message_id`` new text: a new version of that point of the
        session, answered now; the message as it was, with its reply and what followed, is kept
        as another version (``Store.versions``)."""
        options = options or self.options
        return Turn(self._edit_state(session, message_id, text, model, options), options)

    def aedit(
        self,
        session: SessionKey | None,
        message_id: int,
        text: str,
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
    ) -> AsyncTurn:
        """Async twin of ``edit`` (the message is checked now, the turn begins when iterated)."""
        options = options or self.options
        self.editable(session, message_id)
        return AsyncTurn(lambda: self._edit_state(session, message_id, text, model, options), options, self.lane)

    def editable(self, session: SessionKey | None, message_id: int) -> Message:
        """The shown user message ``message_id`` of the session (``StoreError`` for any other)."""
        info = self.store.get_session(session.id) if isinstance(session, SessionInfo) else self.session(session)
        found = self.store.messages_by_id([message_id], session=info.id)
        if not found or found[0].message.role is not Role.USER:
            raise StoreError("that is not a user message of this session")
        return found[0].message

    def _edit_state(
        self, session: SessionKey | None, message_id: int, text: str, model: str | None, options: ChatOptions | None
    ) -> _TurnState:
        edited = self.editable(session, message_id)  # its files stay with the new text
        files = self.with_data(edited.attachments)
        return self._state(session, text, model, options, replace=message_id, attachments=files)

    def astream(
        self,
        session: SessionKey | None,
        text: str,
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> AsyncTurn:
        """Async twin of ``stream``: ``async for chunk in agent.astream(...)``."""
        options = options or self.options
        return AsyncTurn(
            lambda: self._state(session, text, model, options=options, attachments=attachments), options, self.lane
        )

    async def aask(
        self,
        session: SessionKey | None,
        text: str,
        *,
        model: str | None = None,
        options: ChatOptions | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Reply:
        """Async twin of ``ask``."""
        turn = self.astream(session, text, model=model, options=options, attachments=attachments)
        async for _ in turn:
            pass
        assert turn.reply is not None
        return turn.reply
