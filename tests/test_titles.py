"""Titles (issue 17, finding 6: sessions were named by timestamp): a session the user did not name
gets a short title from its first exchange — the first words of the question at once, then one
the chat model writes off the reply's path (memory upkeep's lane), falling back to the first
words on the embedded model or a failure; a rename wins; the name stays the key."""

from __future__ import annotations

from typing import Any

import pytest

from memchat.agent import Agent
from memchat.config import resolve
from memchat.errors import ProviderError
from memchat.factory import make_agent, open_store
from memchat.memory.upkeep import Upkeep
from memchat.service import Conversations
from memchat.testing import ScriptedProvider
from memchat.titles import first_words, is_generated_name


class HeldUpkeep(Upkeep):
    """Upkeep's jobs kept until ``run()``: what the user has before the background work is done."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[Any] = []

    def submit(self, key: Any, job: Any) -> None:
        self.held.append(job)

    def run(self) -> None:
        while self.held:
            self.held.pop(0)()


def agent_with(*replies: Any, titles: str = "words") -> Agent:
    return Agent(open_store(":memory:"), ScriptedProvider(replies), date_line=False, titles=titles)


def test_first_words_make_a_short_title() -> None:
    assert first_words("What is a prime number?") == "What is a prime number?"
    long = "Please write me a **haiku** about the old pond and the frog"
    assert first_words(long) == "Please write me a haiku about…"
    assert first_words("  \n# Plan   my\ntrip  ") == "Plan my trip"
    chinese = "请帮我规划一次去长城的旅行，最好是春天的时候，人不要太多"
    assert first_words(chinese) == "请帮我规划一次去长城的旅行，最好…"  # 16 characters
    assert first_words("   ") == ""
    assert is_generated_name("chat-20250101-120000") and is_generated_name("chat-20250101-120000-2")
    assert not is_generated_name("trip")


def test_the_first_exchange_titles_a_session_the_user_did_not_name() -> None:
    agent = agent_with("Old pond, a frog jumps in.", "Yes.", "Sure.")
    reply = agent.ask(None, "Write me a haiku about a frog, please")
    info = agent.store.get_session(reply.session)
    assert is_generated_name(info.name)  # the key stays the generated name (-s, /switch)
    assert info.title == "Write me a haiku about a…" and info.label == info.title
    agent.ask(info.name, "Another one about the moon?")  # later turns keep the first title
    assert agent.store.get_session(info.name).title == "Write me a haiku about a…"
    agent.ask("trip", "Plan a trip")  # named by the user: no title, the name is shown
    named = agent.store.get_session("trip")
    assert named.title is None and named.label == "trip"


def test_a_rename_wins_over_the_title() -> None:
    agent = agent_with("ok", "ok", "ok")
    chats = Conversations(agent)
    info = chats.get(agent.ask(None, "What is a prime number?").session)
    assert info.label == "What is a prime number?"
    renamed = chats.rename(info.id, "primes")
    assert renamed.title is None and renamed.label == "primes"
    agent.ask("primes", "and 7?")
    assert chats.get("primes").label == "primes"
    other = chats.get(agent.ask(None, "Tell me about frogs").session)
    assert chats.change(other.id, name="frogs").label == "frogs"  # the API's PATCH too


def test_the_model_writes_the_title_after_the_reply() -> None:
    agent = agent_with("Old pond — a frog jumps in, the sound of water.", "Frog Haiku", titles="model")
    agent.upkeep = held = HeldUpkeep()
    reply = agent.ask(None, "Write me a haiku about a frog, please")
    # the reply is complete and the first words are the title before the model is asked
    assert reply.text.startswith("Old pond") and len(agent.provider.calls) == 1  # type: ignore[attr-defined]
    assert agent.store.get_session(reply.session).title == "Write me a haiku about a…"
    held.run()
    assert agent.store.get_session(reply.session).title == "Frog Haiku"
    title_call = agent.provider.calls[1]  # type: ignore[attr-defined]
    assert title_call[0]["role"] == "system" and "title" in title_call[0]["content"]
    assert "Write me a haiku about a frog" in title_call[1]["content"] and "Old pond" in title_call[1]["content"]


def test_a_title_in_the_language_of_the_question() -> None:
    agent = agent_with("长城全长两万多公里。", "「长城的长度」", titles="model")
    reply = agent.ask(None, "长城有多长？")
    agent.wait_for_upkeep(30)
    assert "标题" in agent.provider.calls[1][0]["content"]  # type: ignore[attr-defined]
    assert agent.store.get_session(reply.session).title == "长城的长度"  # quotes dropped


def test_a_failed_title_call_keeps_the_first_words() -> None:
    agent = agent_with("An answer.", ProviderError("upstream down"), titles="model")
    reply = agent.ask(None, "What is a prime number?")
    agent.wait_for_upkeep(30)
    assert agent.store.get_session(reply.session).title == "What is a prime number?"


def test_a_rename_before_the_model_title_wins() -> None:
    agent = agent_with("An answer.", "Prime Numbers", titles="model")
    agent.upkeep = held = HeldUpkeep()
    chats = Conversations(agent)
    reply = agent.ask(None, "What is a prime number?")
    chats.rename(reply.session, "maths")
    held.run()
    info = chats.get("maths")
    assert info.title is None and info.label == "maths"


@pytest.mark.parametrize(("provider", "mode"), [("local", "words"), ("openai", "model")])
def test_the_embedded_model_titles_by_first_words(monkeypatch: pytest.MonkeyPatch, provider: str, mode: str) -> None:
    """The embedded model is too small to write a good title: the first words stay."""
    monkeypatch.delenv("MEMCHAT_TITLES")
    monkeypatch.setenv("MEMCHAT_API_KEY", "sk-test")
    agent = make_agent(resolve({"provider": provider, "db": ":memory:"}))
    try:
        assert agent.titles == mode
    finally:
        agent.close()


def test_a_fork_is_shown_apart_from_its_original() -> None:
    agent = agent_with("ok")
    chats = Conversations(agent)
    info = chats.get(agent.ask(None, "What is a prime number?").session)
    assert chats.fork(info.id).label == "What is a prime number? · fork"
    assert chats.fork(info.id, "primes-2").label == "primes-2"
