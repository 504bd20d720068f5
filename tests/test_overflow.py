"""Overflow retry against the real loopback server: when the provider still answers "context
length exceeded", the turn plans again within a smaller budget and retries once; if that fails
too, one clear error and the session as it was (the user message dropped)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator

import pytest

from fakeserver import FakeReply, FakeServer, context_tokens, estimate_tokens
from memchat import Agent, open_store
from memchat.domain import Message, Role
from memchat.errors import ContextLengthExceeded
from memchat.providers.openai_compat import OpenAICompatible
from memchat.stores.sqlite import SQLiteStore
from memchat.tokens import MESSAGE_OVERHEAD
from memchat.tokens import estimate_tokens as memchat_estimate

PERSONA = "You are a terse assistant."
QUESTION = "What did we say about the weather?"


def filler(k: int) -> str:
    return f"Turn {k}: let us talk about the weather again, it is mild and grey today, nothing special."


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    s = open_store(":memory:")
    s.create_session("s", persona=PERSONA)
    s.append_messages("s", [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, filler(k)) for k in range(60)])
    yield s
    s.close()


@pytest.fixture
def make_agent(fake: FakeServer) -> Iterator[Callable[..., Agent]]:
    """Agents that believe the model has ``window`` tokens (a wrong table entry, a local server
    started with a smaller context): the server knows better. Their connections are closed after."""
    providers: list[OpenAICompatible] = []
    agents: list[Agent] = []

    def make(store: SQLiteStore, memory: str = "window", window: int = 8192) -> Agent:
        provider = OpenAICompatible(fake.url, api_key="sk-test", model="Qwen/Test-Model", backoff=0.001, timeout=5.0)
        providers.append(provider)
        agents.append(Agent(store=store, provider=provider, memory=memory, context_window=window, date_line=False))
        return agents[-1]

    yield make
    for agent in agents:  # memory upkeep done before the next test: none of its calls reaches that test's server
        agent.wait_for_summaries(10)
    for provider in providers:
        provider.close()


def sizes(fake: FakeServer) -> list[int]:
    return [context_tokens(r.messages) for r in fake.chat_requests]


def test_the_fake_server_counts_like_memchat() -> None:
    rnd = random.Random(4)
    # each side of every range boundary: kana, Hangul, full-width, astral ideographs, emoji
    alphabet = "abc xyz 0123 ,.!?\n葡萄北京你好😀éüあ한Ａ𠀀\u2e7f\u2e80\u9fff\ua000\uffef\ufff0\U0002ffff\U00030000"
    for _ in range(300):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 300)))
        assert estimate_tokens(text) == memchat_estimate(text)
    assert context_tokens([{"role": "user", "content": "hello"}]) == memchat_estimate("hello") + MESSAGE_OVERHEAD


def test_the_server_refuses_a_long_request_like_openai(fake: FakeServer, make_agent: Callable[..., Agent]) -> None:
    fake.max_context_tokens = 10
    fake.script(FakeReply.text("kept for later"))
    provider = make_agent(open_store(":memory:")).provider
    with pytest.raises(ContextLengthExceeded) as info:
        list(provider.stream([{"role": "user", "content": filler(1)}]))
    assert info.value.status == 400 and info.value.info["code"] == "context_length_exceeded"
    assert "maximum context length is 10 tokens" in str(info.value)
    assert "".join(c.text for c in provider.stream([{"role": "user", "content": "hi"}])) == "kept for later"


@pytest.mark.parametrize("memory", ["window", "summary", "recall", "auto"])
def test_a_too_long_first_request_is_retried_once_smaller(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent], memory: str
) -> None:
    agent = make_agent(store, memory)
    planned = agent.context("s", QUESTION).tokens
    # the model really has less than the first request needs: 70% of it (what the retry plans for)
    fake.max_context_tokens = int(planned * 0.7)
    history = store.messages("s")
    reply = agent.ask("s", QUESTION)
    first, second = fake.chat_requests  # no summarizer call in between: one retry is one request
    assert sizes(fake)[0] > fake.max_context_tokens >= sizes(fake)[1]
    assert first.messages[0] == {"role": "system", "content": PERSONA}
    # no summary written on the retry: the persona, then what recall found (last in the one system message)
    assert second.messages[0]["role"] == "system"
    persona, _, recalled = second.messages[0]["content"].partition("\n\n")
    assert persona == PERSONA and (not recalled or recalled.startswith("[Earlier messages"))
    assert first.messages[-1] == second.messages[-1] == {"role": "user", "content": QUESTION}
    turns = second.messages[1:-1]
    assert turns[0]["role"] == "user"
    assert turns == [m.to_wire() for m in history[len(history) - len(turns) :]]
    assert first.messages[1:-1] == [m.to_wire() for m in history]  # everything fitted the window it believed in
    assert reply.text == f"echo: {QUESTION}"
    stored = store.messages("s")
    assert stored[:-2] == history
    assert [(m.role, m.content) for m in stored[-2:]] == [(Role.USER, QUESTION), (Role.ASSISTANT, reply.text)]


def test_still_too_long_after_the_retry_is_one_clear_error(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(store)
    fake.max_context_tokens = 20  # not even the persona and the question fit
    history = store.messages("s")
    with pytest.raises(ContextLengthExceeded) as info:
        agent.ask("s", QUESTION)
    assert info.value.kind == "context_length" and "maximum context length is 20 tokens" in str(info.value)
    assert len(fake.chat_requests) == 2 and sizes(fake)[1] < sizes(fake)[0]
    assert store.messages("s", include_streaming=True) == history  # the user message was dropped
    fake.max_context_tokens = None
    agent.ask("s", "and now?")
    assert QUESTION not in str(fake.chat_requests[-1].messages)


def test_when_nothing_is_left_to_drop_the_providers_error_comes_at_once(
    fake: FakeServer, make_agent: Callable[..., Agent]
) -> None:
    store = open_store(":memory:")
    store.create_session("new", persona=PERSONA)
    agent = make_agent(store)
    fake.max_context_tokens = 10  # the persona and the question alone are too long
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 10 tokens"):
        agent.ask("new", QUESTION)
    assert len(fake.chat_requests) == 1  # a smaller plan would have to drop the message itself
    assert store.messages("new", include_streaming=True) == []


def test_full_cannot_shrink_so_it_fails_at_once(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(store, memory="full")
    fake.max_context_tokens = agent.context("s", QUESTION).tokens // 2
    history = store.messages("s")
    with pytest.raises(ContextLengthExceeded):
        agent.ask("s", QUESTION)
    assert len(fake.chat_requests) == 1  # no retry: full would send the same again
    assert fake.chat_requests[0].messages[1:-1] == [m.to_wire() for m in history]  # it did send everything
    assert store.messages("s", include_streaming=True) == history


@pytest.mark.parametrize(
    "refusal",
    [
        FakeReply.error_response(  # vLLM (ModelScope's deployments)
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 "
                "tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the "
                "messages or completion.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            },
        ),
        FakeReply.error_response(  # ModelScope's plural envelope
            400, {"errors": {"message": "Input validation error: context length exceeded"}, "request_id": "r-1"}
        ),
        FakeReply.context_length(),  # OpenAI
    ],
    ids=["vllm", "modelscope", "openai"],
)
def test_each_providers_refusal_is_retried(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent], refusal: FakeReply
) -> None:
    agent = make_agent(store)
    fake.script(refusal)
    reply = agent.ask("s", QUESTION)
    assert reply.text == f"echo: {QUESTION}" and len(fake.chat_requests) == 2
    assert sizes(fake)[1] < sizes(fake)[0]


def test_the_async_path_retries_the_same_way(
    fake: FakeServer, store: SQLiteStore, make_agent: Callable[..., Agent]
) -> None:
    agent = make_agent(store)
    provider = agent.provider
    assert isinstance(provider, OpenAICompatible)
    history = store.messages("s")

    async def main() -> None:
        fake.max_context_tokens = agent.context("s", QUESTION).tokens // 2
        reply = await agent.aask("s", QUESTION)
        assert reply.text == f"echo: {QUESTION}"
        assert len(fake.chat_requests) == 2 and sizes(fake)[0] > fake.max_context_tokens >= sizes(fake)[1]
        assert store.messages("s")[:-2] == history and len(store.messages("s")) == len(history) + 2
        # still too long after the retry: one error, and the session as it was
        fake.reset()
        fake.max_context_tokens = 20
        before = store.messages("s")
        with pytest.raises(ContextLengthExceeded):
            await agent.aask("s", "and this one?")
        assert len(fake.chat_requests) == 2
        assert store.messages("s", include_streaming=True) == before
        # full: no retry
        fake.reset()
        agent.memory = "full"
        fake.max_context_tokens = agent.context("s", QUESTION).tokens // 2
        with pytest.raises(ContextLengthExceeded):
            await agent.aask("s", QUESTION)
        assert len(fake.chat_requests) == 1
        assert store.messages("s", include_streaming=True) == before
        await provider.aclose()

    asyncio.run(main())
