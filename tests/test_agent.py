"""The turn: append → context → stream → persist, and the lesson's rollback rule."""

from __future__ import annotations

import asyncio
import threading

import pytest

from memchat import Agent, open_store
from memchat.domain import Chunk, Role, Status, Usage
from memchat.errors import AuthenticationError, MemchatError, ServerError, StreamError
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import ScriptedProvider


@pytest.fixture
def store() -> SQLiteStore:
    return open_store(":memory:")


def wire(store: SQLiteStore, name: str) -> list[tuple[str, str, str]]:
    return [(m.role.value, m.content, m.status.value) for m in store.messages(name)]


def test_each_turn_sends_the_whole_conversation(store: SQLiteStore) -> None:
    provider = ScriptedProvider(["Apples are red.", "You said apples."])
    agent = Agent(store=store, provider=provider, date_line=False)
    store.create_session("fruit", persona="你是言简意赅的回答者。")
    assert agent.ask("fruit", "apples?").text == "Apples are red."
    reply = agent.ask("fruit", "what did I say?")
    assert reply.text == "You said apples." and reply.usage is not None
    assert provider.calls[1] == [
        {"role": "system", "content": "你是言简意赅的回答者。"},
        {"role": "user", "content": "apples?"},
        {"role": "assistant", "content": "Apples are red."},
        {"role": "user", "content": "what did I say?"},
    ]
    stored = store.messages("fruit")
    assert [m.status for m in stored] == [Status.COMPLETE] * 4
    assert stored[-1].usage == reply.usage and stored[-1].model == "scripted-model"


def test_stream_yields_chunks_as_they_arrive(store: SQLiteStore) -> None:
    agent = Agent(store=store, provider=ScriptedProvider(["one two three"]), date_line=False)
    turn = agent.stream("s", "count")
    texts = [c.text for c in turn if c.text]
    assert texts == ["one", " two", " three"]
    assert turn.reply is not None and turn.reply.text == "one two three"


@pytest.mark.parametrize(
    "failure",
    [
        AuthenticationError("bad key", status=401),
        ["Half an ans", StreamError("connection cut")],
        ServerError("boom", status=500),
    ],
    ids=["before-any-token", "mid-stream", "server"],
)
def test_a_failed_call_removes_the_user_message(store: SQLiteStore, failure: object) -> None:
    provider = ScriptedProvider(["first answer", failure, "second answer"])  # type: ignore[list-item]
    agent = Agent(store=store, provider=provider, date_line=False)
    agent.ask("s", "first")
    before = wire(store, "s")
    with pytest.raises(MemchatError):
        agent.ask("s", "this one fails")
    assert wire(store, "s") == before
    assert store.messages("s", include_streaming=True) == store.messages("s")
    agent.ask("s", "again")
    assert "this one fails" not in str(provider.calls[-1])


def test_an_empty_reply_is_a_failure(store: SQLiteStore) -> None:
    agent = Agent(store=store, provider=ScriptedProvider([[Chunk(finish_reason="stop")]]), date_line=False)
    with pytest.raises(StreamError):
        agent.ask("s", "hello?")
    assert store.find_session("s") is None  # made for the turn, which left nothing


def test_closing_a_turn_early_keeps_what_streamed(store: SQLiteStore) -> None:
    agent = Agent(store=store, provider=ScriptedProvider(["a long story about dragons"]), date_line=False)
    turn = agent.stream("s", "story")
    shown = next(iter(turn)).text + next(iter(turn)).text
    turn.close()
    assert wire(store, "s") == [("user", "story", "complete"), ("assistant", shown, "interrupted")]
    assert turn.reply is not None and turn.reply.status is Status.INTERRUPTED


def test_ctrl_c_mid_stream_keeps_the_partial_reply(store: SQLiteStore) -> None:
    agent = Agent(store=store, provider=ScriptedProvider([["Once", " upon", KeyboardInterrupt()]]), date_line=False)
    with pytest.raises(KeyboardInterrupt):
        agent.ask("s", "story")
    assert wire(store, "s")[-1] == ("assistant", "Once upon", "interrupted")


def test_stopped_before_any_text_keeps_the_question_and_a_retry_answers_it(store: SQLiteStore) -> None:
    # issue 17: a Ctrl-C (or Stop) before the first token used to throw the user's message away
    provider = ScriptedProvider([[KeyboardInterrupt()], "Once upon a time"])
    agent = Agent(store=store, provider=provider, date_line=False)
    with pytest.raises(KeyboardInterrupt):
        agent.ask("s", "story")
    assert wire(store, "s") == [("user", "story", "complete")]
    list(agent.retry("s"))
    assert wire(store, "s") == [("user", "story", "complete"), ("assistant", "Once upon a time", "complete")]
    assert provider.calls[-1] == [{"role": "user", "content": "story"}]  # asked once, not twice


def test_interrupted_replies_are_sent_as_context(store: SQLiteStore) -> None:
    provider = ScriptedProvider([["Once", " upon", KeyboardInterrupt()], "ok"])
    agent = Agent(store=store, provider=provider, date_line=False)
    with pytest.raises(KeyboardInterrupt):
        agent.ask("s", "story")
    agent.ask("s", "go on")
    assert provider.calls[-1][1] == {"role": "assistant", "content": "Once upon"}


def test_streamed_text_is_checkpointed(store: SQLiteStore) -> None:
    gate = threading.Event()
    provider = ScriptedProvider(["alpha beta gamma"], gate=gate)
    agent = Agent(store=store, provider=provider, checkpoint_every=0, date_line=False)
    turn = agent.stream("s", "go")
    it = iter(turn)
    next(it)
    gate.set()
    next(it)
    # the second chunk has been recorded and saved before the turn ends
    row = store.messages("s", include_streaming=True)[-1]
    assert row.status is Status.STREAMING and row.content.startswith("alpha")
    for _ in it:
        pass
    assert store.messages("s")[-1].content == "alpha beta gamma"


def test_retry_replaces_the_last_reply_only_on_success(store: SQLiteStore) -> None:
    provider = ScriptedProvider(["first try", ServerError("down", status=503), "second try"])
    agent = Agent(store=store, provider=provider, date_line=False)
    agent.ask("s", "question")
    with pytest.raises(ServerError):
        list(agent.retry("s"))
    assert wire(store, "s") == [("user", "question", "complete"), ("assistant", "first try", "complete")]
    list(agent.retry("s"))
    assert wire(store, "s") == [("user", "question", "complete"), ("assistant", "second try", "complete")]
    # the retried call did not see the old answer
    assert provider.calls[-1] == [{"role": "user", "content": "question"}]


def test_retry_without_a_reply_is_a_clear_error(store: SQLiteStore) -> None:
    agent = Agent(store=store, provider=ScriptedProvider(), date_line=False)
    with pytest.raises(MemchatError, match="no reply"):
        agent.retry("empty")


def test_empty_messages_are_refused(store: SQLiteStore) -> None:
    agent = Agent(store=store, provider=ScriptedProvider(), date_line=False)
    with pytest.raises(MemchatError):
        agent.ask("s", "   ")


def test_a_fresh_session_per_call_without_a_name(store: SQLiteStore) -> None:
    agent = Agent(store=store, provider=ScriptedProvider(default="ok"), persona="helper", date_line=False)
    a, b = agent.ask(None, "one"), agent.ask(None, "two")
    assert a.session != b.session
    assert store.get_session(a.session).persona == "helper"


def test_usage_is_stored_and_reply_tokens_come_from_it(store: SQLiteStore) -> None:
    agent = Agent(
        store=store, provider=ScriptedProvider([[Chunk(text="hey"), Chunk(usage=Usage(40, 7))]]), date_line=False
    )
    agent.ask("s", "hi")
    reply = store.messages("s")[-1]
    assert reply.usage == Usage(40, 7) and reply.tokens == 7 and reply.token_method == "usage"


def test_context_is_what_the_next_call_sends(store: SQLiteStore) -> None:
    provider = ScriptedProvider(["a1", "a2"])
    agent = Agent(store=store, provider=provider, date_line=False)
    store.create_session("s", persona="sys")
    agent.ask("s", "q1")
    ctx = agent.context("s").entries
    assert [(e.role, e.content) for e in ctx] == [(Role.SYSTEM, "sys"), (Role.USER, "q1"), (Role.ASSISTANT, "a1")]
    agent.ask("s", "q2")
    assert provider.calls[-1][:-1] == [e.to_wire() for e in ctx]


def test_async_twins(store: SQLiteStore) -> None:
    provider = ScriptedProvider(["async hello", "async again"])
    agent = Agent(store=store, provider=provider, date_line=False)

    async def main() -> tuple[str, list[str]]:
        reply = await agent.aask("s", "hi")
        chunks = [c.text async for c in agent.astream("s", "more") if c.text]
        return reply.text, chunks

    text, chunks = asyncio.run(main())
    assert text == "async hello" and "".join(chunks) == "async again"
    assert len(provider.calls[-1]) == 3


def test_async_cancellation_keeps_the_partial_reply(store: SQLiteStore) -> None:
    gate = threading.Event()
    agent = Agent(store=store, provider=ScriptedProvider(["never ending story"], gate=gate), date_line=False)

    async def main() -> None:
        async def consume() -> None:
            async for _ in agent.astream("s", "tell"):
                pass

        task = asyncio.create_task(consume())
        for _ in range(200):
            await asyncio.sleep(0.01)
            rows = store.messages("s", include_streaming=True)
            if rows and rows[-1].status is Status.STREAMING:
                break
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()

    asyncio.run(main())
    last = store.messages("s")[-1]
    assert last.status is Status.INTERRUPTED and last.content == "never"


def test_history_stays_exact_when_another_process_changes_the_session(tmp_path: object) -> None:
    """Two agents on one database file (as two processes would be) interleave turns, undo
    and truncate: each call still sends exactly what is stored."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "shared.db"
    pa, pb = ScriptedProvider(default="from A"), ScriptedProvider(default="from B")
    a = Agent(store=open_store(path), provider=pa, date_line=False)
    b = Agent(store=open_store(path), provider=pb, date_line=False)

    def expected(store: SQLiteStore) -> list[dict[str, str]]:
        return [m.to_wire() for m in store.messages("s")]

    a.ask("s", "a1")
    b.ask("s", "b1")
    assert pb.calls[-1][:-1] == expected(a.store)[:2]
    a.ask("s", "a2")
    assert [m["content"] for m in pa.calls[-1]] == ["a1", "from A", "b1", "from B", "a2"]
    b.store.remove_last_turn("s")
    a.ask("s", "a3")
    assert [m["content"] for m in pa.calls[-1]] == ["a1", "from A", "b1", "from B", "a3"]
    b.store.truncate("s", 2)
    b.store.append_messages("s", [m for m in a.store.messages("s")[:2]])  # same count, new rows
    a.ask("s", "a4")
    assert pa.calls[-1][:-1] == expected(b.store)[:-2]


def test_model_precedence_and_switching_provider(store: SQLiteStore) -> None:
    a = ScriptedProvider(default="ok", model="a-default")
    Agent(store=store, provider=a, model="a-chosen", date_line=False).ask("s", "hi")
    assert a.models[-1] == "a-chosen"
    # the session remembers the model chosen for it on this provider
    Agent(store=store, provider=a, date_line=False).ask("s", "again")
    assert a.models[-1] == "a-chosen"
    # another provider does not receive a model name that belongs to the first one
    b = ScriptedProvider(default="ok", model="b-default")
    b.name = "other"
    Agent(store=store, provider=b, date_line=False).ask("s", "elsewhere")
    assert b.models[-1] == "b-default"
    Agent(store=store, provider=b, date_line=False).ask("s", "per call", model="b-special")
    assert b.models[-1] == "b-special"


def test_a_summary_of_messages_set_aside_while_it_was_written_is_not_kept(store: SQLiteStore) -> None:
    # issue 17: versions make history change under memory upkeep (an edit, another version chosen)
    from collections.abc import Callable, Iterator
    from typing import Any

    from memchat.domain import Message

    class EditsMeanwhile(ScriptedProvider):
        during: Callable[[], object] = staticmethod(lambda: None)

        def stream(self, messages: Any, **kw: Any) -> Iterator[Chunk]:
            if str(messages[0]["content"]).startswith("You keep the memory"):
                self.during()
            yield from super().stream(messages, **kw)

    provider = EditsMeanwhile(default="a summary")
    agent = Agent(store=store, provider=provider, date_line=False)
    store.create_session("s")
    msgs = store.append_messages(
        "s", [Message(role, f"{role.value} {k}") for k in range(6) for role in (Role.USER, Role.ASSISTANT)]
    )
    provider.during = lambda: store.finish_turn(
        store.begin_turn("s", Message(Role.USER, "edited"), replace=msgs[2].id), "new"
    )
    assert agent.summarize("s", (msgs[0].seq or 0, msgs[7].seq or 0), model="m", window=4096) is None
    assert store.summaries("s") == []
    provider.during = lambda: None
    kept = agent.summarize("s", (msgs[0].seq or 0, msgs[1].seq or 0), model="m", window=4096)
    assert kept is not None and store.summaries("s") == [kept]
