"""Long-term memory through the agent (issue 13): what a user tells one chat is known in the
next, a changed fact replaces the old one, /context says what was used and why, incognito
sessions neither learn nor recall, the model's remember/forget tools and automatic learning
(against the loopback OpenAI-compatible server) — the library path every interface uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fakeserver import FakeReply, FakeServer
from memchat import Agent
from memchat.domain import EndReason, MemoryKind, Message, Role, SessionInfo
from memchat.providers.openai_compat import OpenAICompatible
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import ScriptedProvider


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    s = SQLiteStore(":memory:")
    yield s
    s.close()


def agent_on(store: SQLiteStore, **kw: Any) -> tuple[Agent, ScriptedProvider]:
    provider = ScriptedProvider(default="OK.")
    kw.setdefault("date_line", False)
    return Agent(store, provider, context_window=2048, **kw), provider


def context_text(plan: Any) -> str:
    return "\n".join(e.content for e in plan.entries)


def test_what_one_chat_is_told_to_remember_the_next_chat_knows(store: SQLiteStore) -> None:
    agent, provider = agent_on(store)
    reply = agent.ask("monday", "Remember that my name is Ada.")
    assert [m.content for m in reply.remembered] == ["my name is Ada"]
    agent.ask("monday", "Please remember: I live in Berlin.")
    assert {m.content for m in agent.memories.list()} == {"my name is Ada", "I live in Berlin"}

    reply = agent.ask("tuesday", "What is my name?")  # a new session
    system = provider.calls[-1][0]
    assert system["role"] == "system" and "my name is Ada" in system["content"] and "Berlin" in system["content"]
    assert set(reply.memories) == {m.id for m in agent.memories.list()}
    plan = agent.context("tuesday", "Where do I live?")
    memories = next(s for s in plan.sections if s.kind == "memories")
    assert {i.memory_id for i in memories.items} == set(reply.memories)
    assert all(i.why for i in memories.items)


def test_a_changed_fact_replaces_the_old_one_which_is_no_longer_served(store: SQLiteStore) -> None:
    agent, provider = agent_on(store)
    agent.ask("a", "remember that I live in Berlin")
    old = agent.memories.list()[0]
    agent.ask("b", "Remember that I moved to Munich.")
    (current,) = agent.memories.list()
    assert current.content == "I moved to Munich" and current.supersedes == old.id
    assert agent.memories.get(old.id or 0).end_reason is EndReason.SUPERSEDED
    agent.ask("c", "Where do I live now?")
    sent = json.dumps(provider.calls[-1], ensure_ascii=False)
    assert "Munich" in sent and "Berlin" not in sent  # neither the old memory nor the turn that taught it
    # the history keeps both, and the old one can be restored (undo)
    assert [m.content for m in agent.memories.history(current.id or 0)] == ["I live in Berlin", "I moved to Munich"]
    agent.memories.restore(old.id or 0)
    assert [m.content for m in agent.memories.list()] == ["I live in Berlin"]


def test_forgetting_stops_serving_a_memory(store: SQLiteStore) -> None:
    agent, provider = agent_on(store)
    agent.ask("a", "记住我的猫叫小花。")
    assert [m.content for m in agent.memories.list()] == ["我的猫叫小花"]
    reply = agent.ask("a", "忘记我的猫叫小花")
    assert [m.end_reason for m in reply.remembered] == [EndReason.FORGOTTEN]
    assert agent.memories.list() == []
    agent.ask("b", "我的猫叫什么？")
    assert "小花" not in provider.calls[-1][0]["content"]


def test_a_question_is_not_a_request_to_remember(store: SQLiteStore) -> None:
    agent, _ = agent_on(store)
    agent.ask("a", "Do you remember what I said about Paris?")
    agent.ask("a", "I can't remember my password")
    assert agent.memories.list() == []


def test_past_turns_of_other_sessions_are_recalled_with_their_date_and_why(store: SQLiteStore) -> None:
    agent, provider = agent_on(store)
    when = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    store.import_session(
        SessionInfo(0, "garden"),
        [
            Message(Role.USER, "I planted three apricot trees behind the shed.", created=when),
            Message(Role.ASSISTANT, "Apricots love sun; water them weekly.", created=when + timedelta(seconds=5)),
        ],
    )
    for k in range(20):
        store.import_session(
            SessionInfo(0, f"filler{k}"),
            [Message(Role.USER, f"Small talk {k} about the weather."), Message(Role.ASSISTANT, "Sure.")],
        )
    plan = agent.context("new", "How many apricot trees did I plant?")
    recall = next(s for s in plan.sections if s.kind == "recall")
    first = recall.items[0]
    assert first.kind == "turn" and first.session == "garden" and first.created is not None
    assert "bm25" in first.why
    assert "[2026-03-14 garden #1 user] I planted three apricot trees behind the shed." in recall.text
    assert "Apricots love sun" in recall.text  # the reply after the hit comes with it
    assert plan.recalled_elsewhere == 2 and plan.tokens <= plan.budget.limit
    reply = agent.ask("new", "How many apricot trees did I plant?")
    assert reply.recalled == 2


def test_the_sessions_own_older_turns_come_first(store: SQLiteStore) -> None:
    agent, _ = agent_on(store, memory="recall")
    store.import_session(SessionInfo(0, "other"), [Message(Role.USER, "My bicycle is red.")])
    store.import_session(
        SessionInfo(0, "mine"),
        [Message(Role.USER, "My bicycle is blue."), Message(Role.ASSISTANT, "Nice.")]
        + [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, f"filler {k} " * 40) for k in range(60)],
    )
    plan = agent.context("mine", "What colour is my bicycle?")
    items = [i for s in plan.sections for i in s.items if i.kind == "turn"]
    mine = next(i for i in items if "bicycle is blue" in i.text)
    other = next(i for i in items if "bicycle is red" in i.text)
    assert mine.session is None and other.session == "other" and mine.score > other.score
    assert "this chat" in mine.why and "this chat" not in other.why


def test_an_incognito_session_neither_learns_nor_recalls_and_is_not_recalled(store: SQLiteStore) -> None:
    agent, provider = agent_on(store)
    agent.ask("known", "Remember that my favourite tea is oolong.")
    agent.set_incognito("secret", True)
    agent.ask("secret", "Remember that my bank PIN hint is marmalade.")
    assert [m.content for m in agent.memories.list()] == ["my favourite tea is oolong"]
    agent.ask("secret", "Which tea do I like?")
    assert "oolong" not in json.dumps(provider.calls[-1])
    assert "remember" not in json.dumps(provider.calls[-1])  # the memory tools are not offered either
    plan = agent.context("fresh", "What is my bank PIN hint? marmalade")
    assert "marmalade" not in context_text(plan).replace("What is my bank PIN hint? marmalade", "")


def test_memories_off_sends_none(store: SQLiteStore) -> None:
    agent, provider = agent_on(store)
    agent.ask("a", "Remember that I am allergic to peanuts.")
    off, provider2 = agent_on(store, long_term=False, recall_all=False)
    off.ask("b", "Am I allergic to anything?")
    assert "peanuts" not in json.dumps(provider2.calls[-1])
    assert off.memories.list() != []  # kept, just not used


def test_instructions_always_go_and_the_rest_when_relevant_once_many(store: SQLiteStore) -> None:
    agent, _ = agent_on(store)
    agent.memories.add("Always answer in metric units.")
    for k in range(120):
        agent.memories.add(f"Fact number {k}: the user's item {k} is stored in box {k * 7}.", kind="fact")
    agent.memories.add("The user's violin is a 1923 Mittenwald.", kind="fact")
    plan = agent.context("s", "Tell me about my violin")
    always = next(s for s in plan.sections if s.kind == "memories")
    assert [i.text.split("] ", 1)[1] for i in always.items] == ["Always answer in metric units."]
    recall = next(s for s in plan.sections if s.kind == "recall")
    assert any(i.kind == "memory" and "Mittenwald" in i.text for i in recall.items)
    memory_tokens = sum(i.tokens for s in plan.sections for i in s.items)
    assert memory_tokens <= 2_000 and plan.tokens <= plan.budget.limit


def test_an_event_keeps_the_day_it_refers_to(store: SQLiteStore) -> None:
    agent, _ = agent_on(store)
    memory = agent.memories.add("I had my dentist appointment yesterday", today=date(2026, 12, 2))
    assert memory.kind is MemoryKind.EVENT and memory.event_date == date(2026, 12, 1)
    plan = agent.context("s", "When did I last see the dentist?")
    assert "on 2026-12-01" in context_text(plan)


# -- with a real HTTP model server ------------------------------------------------------------


@pytest.fixture
def compat(fake: FakeServer) -> Iterator[OpenAICompatible]:
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model", max_retries=0)
    yield provider
    provider.close()


def test_the_model_remembers_and_forgets_through_its_tools(
    fake: FakeServer, compat: OpenAICompatible, store: SQLiteStore
) -> None:
    agent = Agent(store, compat, date_line=False)
    fake.script(
        FakeReply.calls(("remember", json.dumps({"content": "The user's daughter is called Mei.", "kind": "fact"}))),
        FakeReply.text("I'll remember that."),
    )
    reply = agent.ask("a", "My daughter is called Mei, by the way.")
    (memory,) = agent.memories.list()
    assert memory.content == "The user's daughter is called Mei." and memory.session_id == store.get_session("a").id
    assert [m.id for m in reply.remembered] == [memory.id]
    tools = [t["function"]["name"] for t in fake.chat_requests[0].body["tools"]]
    assert {"remember", "forget"} <= set(tools)
    fake.script(FakeReply.calls(("forget", json.dumps({"memory_id": memory.id}))), FakeReply.text("Forgotten."))
    agent.ask("b", "Please forget my daughter's name.")
    assert agent.memories.list() == [] and agent.memories.get(memory.id or 0).end_reason is EndReason.FORGOTTEN
    # the memory was in the second chat's system message, with the id the tool needs
    assert f"[m{memory.id}" in fake.chat_requests[-2].messages[0]["content"]


def test_automatic_learning_runs_after_the_reply_and_updates_a_changed_fact(
    fake: FakeServer, compat: OpenAICompatible, store: SQLiteStore
) -> None:
    agent = Agent(store, compat, date_line=False, learning="auto")
    berlin = agent.memories.add("I live in Berlin")
    fake.script(
        FakeReply.text("Congratulations on the move!"),
        FakeReply.text(
            "```json\n"
            + json.dumps({"memories": [{"op": "update", "id": berlin.id, "kind": "fact", "text": "Lives in Munich"}]})
            + "\n```"
        ),
    )
    reply = agent.ask("a", "We finally moved to Munich last week.")
    assert reply.text == "Congratulations on the move!"
    assert agent.learner.flush(10)
    (current,) = agent.memories.list()
    assert current.content == "Lives in Munich" and current.supersedes == berlin.id
    extraction = fake.chat_requests[-1]
    assert "We finally moved to Munich" in json.dumps(extraction.messages, ensure_ascii=False)
    related = "".join(m["content"] for m in extraction.messages)
    assert "I live in Berlin" in related and str(berlin.id) in related  # the memory it may update, with its id
    agent.close()


def test_automatic_learning_that_fails_never_breaks_a_turn(
    fake: FakeServer, compat: OpenAICompatible, store: SQLiteStore
) -> None:
    agent = Agent(store, compat, date_line=False, learning="auto")
    fake.script(FakeReply.text("Hello!"), FakeReply.server_error(500), FakeReply.text("Still here."))
    assert agent.ask("a", "I work as a carpenter in Oslo.").text == "Hello!"
    agent.learner.flush(10)
    assert agent.ask("a", "How are you?").text == "Still here."
    assert agent.learner.backoff[0] >= 1 and agent.memories.list() == []
    agent.close()
