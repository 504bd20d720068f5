"""``memchat serve`` driven by client software we did not write, used as its users use it:
LangChain's ``ChatOpenAI`` (a growing message list, ``.stream()``, ``max_tokens``, tools through
``bind_tools``), Simon Willison's ``llm`` CLI (``extra-openai-models.yaml``, ``llm -c``,
``llm chat``) and the ``openai`` SDK's async client (a stateless streaming loop, an upstream
404 with the SDK's own retries on). None of them names a session: each resends the whole
conversation, and memchat must find the session it continues. The model is the loopback fake
OpenAI-compatible server (tests/fakeserver.py); the sync SDK is driven in tests/test_server.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from serving import Served

PERSONA = "Be brief."  # memchat's own persona: a client that sends no system message gets it
MODEL = "fake/model-a"


def conversation(agent: Agent, session: str | int) -> list[tuple[str, str]]:
    return [(m.role.value, m.content) for m in agent.store.messages(session)]


def offered(fake: FakeServer) -> set[str]:
    """The tools memchat offered the model in its last request."""
    return {t["function"]["name"] for t in fake.chat_requests[-1].body.get("tools") or []}


# -- LangChain's ChatOpenAI ------------------------------------------------------------------------


@pytest.fixture
def langchain(serve: Any) -> Iterator[Callable[..., Any]]:
    """``ChatOpenAI`` pointed at memchat, as a LangChain user configures it. Its HTTP client is
    our own, closed after the test (LangChain's default one is cached for the process)."""
    pytest.importorskip("langchain_openai")
    from langchain_openai import ChatOpenAI

    clients: list[httpx.Client] = []

    def make(served: Served, **kw: Any) -> Any:
        clients.append(httpx.Client(timeout=10))
        return ChatOpenAI(
            base_url=served.url + "/v1", api_key="unused", model=MODEL, max_retries=0, http_client=clients[-1], **kw
        )

    yield make
    for client in clients:
        client.close()


def test_langchain_message_list_keeps_one_session_and_gets_memchats_context(
    serve: Any, langchain: Any, fake: FakeServer
) -> None:
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

    served, api, agent = serve()
    assert api.post("/api/memories", json={"text": "The user's cat is called Mimi"}).status_code == 201
    chat = langchain(served)
    history: list[BaseMessage] = [SystemMessage("You are terse."), HumanMessage("My name is Ada.")]
    turns = [("Hi Ada.", "I live in Lyon."), ("Noted.", "What is my cat called?"), ("Mimi.", None)]
    for answer, then in turns:
        fake.script(FakeReply.text(answer))
        reply = chat.invoke(history)
        assert isinstance(reply, AIMessage) and reply.content == answer
        assert reply.response_metadata["finish_reason"] == "stop"
        history.append(reply)
        if then is not None:
            history.append(HumanMessage(then))
    (session,) = agent.store.list_sessions()  # one session for the conversation, found by what it says
    said = [
        ("user", "My name is Ada."), ("assistant", "Hi Ada."), ("user", "I live in Lyon."),
        ("assistant", "Noted."), ("user", "What is my cat called?"), ("assistant", "Mimi."),
    ]  # fmt: skip
    assert conversation(agent, session.id) == said and session.persona == "You are terse."
    # upstream: the client's system message as the persona, memchat's long-term memory with it,
    # the stored history and memchat's own tools (LangChain sent neither)
    upstream = fake.chat_requests[-1].messages
    assert upstream[0]["role"] == "system" and upstream[0]["content"].startswith("You are terse.")
    assert "The user's cat is called Mimi" in upstream[0]["content"]
    assert [(m["role"], m["content"]) for m in upstream[1:]] == said[:-1]
    assert {"remember", "search_history"} <= offered(fake)

    # .stream() continues the same conversation, in pieces
    history.append(HumanMessage("Where do I live?"))
    fake.script(FakeReply.text("In ", "Lyon", "."))
    chunks = list(chat.stream(history))
    assert [c.content for c in chunks if c.content] == ["In ", "Lyon", "."]
    finishes = [c.response_metadata["finish_reason"] for c in chunks if "finish_reason" in c.response_metadata]
    assert finishes == ["stop"]
    assert fake.chat_requests[-1].body["stream"] is True
    assert [s.id for s in agent.store.list_sessions()] == [session.id]
    assert conversation(agent, session.id) == [*said, ("user", "Where do I live?"), ("assistant", "In Lyon.")]


def test_langchain_max_tokens_reaches_the_model_and_a_cut_reply_says_length(
    serve: Any, langchain: Any, fake: FakeServer
) -> None:
    from langchain_core.messages import HumanMessage

    served, _, _ = serve()
    short = langchain(served, max_tokens=2)
    fake.script(FakeReply.text("one two", finish_reason="length"))
    cut = short.invoke([HumanMessage("Count to ten.")])
    assert cut.content == "one two" and cut.response_metadata["finish_reason"] == "length"
    assert fake.chat_requests[-1].body["max_tokens"] == 2

    fake.script(FakeReply.text("one", " two", finish_reason="length"))
    chunks = list(short.stream([HumanMessage("Count to twenty.")]))
    assert "".join(str(c.content) for c in chunks) == "one two"
    finishes = [c.response_metadata["finish_reason"] for c in chunks if "finish_reason" in c.response_metadata]
    assert finishes == ["length"] and fake.chat_requests[-1].body["max_tokens"] == 2


def test_langchain_tools_round_trip_through_one_stored_turn(serve: Any, langchain: Any, fake: FakeServer) -> None:
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city now."""
        return '{"celsius": 18}' if city == "Paris" else '{"celsius": null}'

    served, _, agent = serve()
    chat = langchain(served).bind_tools([get_weather])
    history: list[BaseMessage] = [HumanMessage("What is the weather in Paris?")]
    fake.script(FakeReply.calls({"id": "call_w1", "name": "get_weather", "arguments": '{"city": "Paris"}'}))
    asked = chat.invoke(history)
    assert isinstance(asked, AIMessage) and asked.response_metadata["finish_reason"] == "tool_calls"
    calls = [(c["id"], c["name"], c["args"]) for c in asked.tool_calls]
    assert calls == [("call_w1", "get_weather", {"city": "Paris"})]
    sent = fake.chat_requests[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]  # the client's replace memchat's
    (session,) = agent.store.list_sessions()

    history.append(asked)
    for call in asked.tool_calls:  # the user's code runs the tool, as LangChain's docs show
        result = get_weather.invoke(call)
        assert isinstance(result, ToolMessage) and result.tool_call_id == "call_w1"
        history.append(result)
    fake.script(FakeReply.text("It is 18 °C in Paris."))
    final = chat.invoke(history)
    assert final.content == "It is 18 °C in Paris." and final.response_metadata["finish_reason"] == "stop"
    upstream = fake.chat_requests[-1].messages
    assert [m["role"] for m in upstream] == ["system", "user", "assistant", "tool"]
    assert upstream[2]["tool_calls"][0]["id"] == "call_w1" and upstream[3]["tool_call_id"] == "call_w1"
    assert upstream[3]["content"] == '{"celsius": 18}'

    assert [s.id for s in agent.store.list_sessions()] == [session.id]  # the same turn went on
    stored = agent.store.messages(session.id)
    assert [(m.role.value, m.content) for m in stored] == [
        ("user", "What is the weather in Paris?"), ("assistant", ""), ("tool", '{"celsius": 18}'),
        ("assistant", "It is 18 °C in Paris."),
    ]  # fmt: skip
    assert [c["id"] for c in stored[1].tool_calls or ()] == ["call_w1"]

    # the conversation goes on after the tool round: still the same session
    history += [final, HumanMessage("And tomorrow?")]
    fake.script(FakeReply.text("Rain."))
    assert chat.invoke(history).content == "Rain."
    assert [s.id for s in agent.store.list_sessions()] == [session.id]
    assert conversation(agent, session.id)[-2:] == [("user", "And tomorrow?"), ("assistant", "Rain.")]


# -- Simon Willison's llm CLI ------------------------------------------------------------------------


@pytest.fixture
def llm_cli(tmp_path: Path) -> Callable[..., Callable[..., subprocess.CompletedProcess[str]]]:
    """``llm`` configured for memchat through ``extra-openai-models.yaml`` in a user directory of
    its own (its conversation log, ``logs.db``, goes there too); it runs with no plugins."""
    exe = shutil.which("llm", path=os.path.dirname(sys.executable)) or shutil.which("llm")
    if exe is None:
        pytest.skip("the llm CLI is not installed")

    def configure(served: Served) -> Callable[..., subprocess.CompletedProcess[str]]:
        user_dir = tmp_path / "llm"
        user_dir.mkdir(exist_ok=True)
        # llm's format for an OpenAI-compatible server: with api_base set no key is needed
        (user_dir / "extra-openai-models.yaml").write_text(
            f"- model_id: memchat\n  model_name: {MODEL}\n  api_base: {served.url}/v1\n", encoding="utf-8"
        )
        env = {**os.environ, "LLM_USER_PATH": str(user_dir), "HOME": str(tmp_path), "LLM_LOAD_PLUGINS": ""}

        def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            done = subprocess.run(
                [exe, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done

        return run

    return configure


def test_llm_prompt_then_continue_keeps_one_session(serve: Any, llm_cli: Any, fake: FakeServer) -> None:
    served, _, agent = serve()
    llm = llm_cli(served)
    fake.script(FakeReply.text("Nice to meet you, ", "Ada."))
    assert llm("-m", "memchat", "My name is Ada.").stdout == "Nice to meet you, Ada.\n"
    fake.script(FakeReply.text("You are Ada."))
    assert llm("-c", "What is my name?").stdout == "You are Ada.\n"  # llm -c resends the conversation
    (session,) = agent.store.list_sessions()
    assert conversation(agent, session.id) == [
        ("user", "My name is Ada."), ("assistant", "Nice to meet you, Ada."),
        ("user", "What is my name?"), ("assistant", "You are Ada."),
    ]  # fmt: skip
    upstream = [(m["role"], m["content"]) for m in fake.chat_requests[-1].messages]
    assert upstream == [("system", PERSONA), *conversation(agent, session.id)[:-1]]
    assert "remember" in offered(fake)  # memchat's tools: llm sent none

    # a new `llm` prompt (no -c) is a new conversation: a session of its own
    fake.script(FakeReply.text("Hello."))
    llm("-m", "memchat", "Hello again.")
    assert len(agent.store.list_sessions()) == 2
    assert [(m["role"], m["content"]) for m in fake.chat_requests[-1].messages] == [
        ("system", PERSONA), ("user", "Hello again.")
    ]  # fmt: skip


def test_llm_chat_keeps_one_session(serve: Any, llm_cli: Any, fake: FakeServer) -> None:
    served, _, agent = serve()
    llm = llm_cli(served)
    fake.script(FakeReply.text("Hi Bob."), FakeReply.text("You are ", "Bob."))
    out = llm("chat", "-m", "memchat", stdin="I am Bob.\nWho am I?\nexit\n").stdout
    assert "Hi Bob." in out and "You are Bob." in out
    assert len(fake.chat_requests) == 2 and fake.pending == 0
    (session,) = agent.store.list_sessions()
    assert conversation(agent, session.id) == [
        ("user", "I am Bob."), ("assistant", "Hi Bob."), ("user", "Who am I?"), ("assistant", "You are Bob."),
    ]  # fmt: skip
    upstream = [(m["role"], m["content"]) for m in fake.chat_requests[-1].messages]
    assert upstream == [("system", PERSONA), ("user", "I am Bob."), ("assistant", "Hi Bob."), ("user", "Who am I?")]


# -- the openai SDK's async client -------------------------------------------------------------------


def test_async_openai_streaming_loop_keeps_one_session(serve: Any, fake: FakeServer) -> None:
    openai = pytest.importorskip("openai")
    served, _, agent = serve()

    async def chat() -> tuple[list[str], list[dict[str, str]]]:
        client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
        history: list[dict[str, str]] = [{"role": "system", "content": "You are terse."}]
        used: list[str] = []
        try:
            for question, answer in (("My name is Ada.", ["Hi ", "Ada."]), ("I live in Lyon.", ["Noted."]),
                                     ("Who am I?", ["Ada ", "from ", "Lyon."])):  # fmt: skip
                history.append({"role": "user", "content": question})
                fake.script(FakeReply.text(*answer))
                raw = await client.chat.completions.with_raw_response.create(
                    model=MODEL, messages=history, stream=True, stream_options={"include_usage": True}
                )
                used.append(raw.headers["x-memchat-session"])
                pieces: list[str] = []
                finishes: list[str] = []
                async for chunk in raw.parse():
                    for choice in chunk.choices:
                        pieces.append(choice.delta.content or "")
                        finishes += [choice.finish_reason] if choice.finish_reason else []
                assert "".join(pieces) == "".join(answer) and finishes == ["stop"]
                assert chunk.usage is not None and chunk.choices == []  # the last chunk: the usage
                history.append({"role": "assistant", "content": "".join(pieces)})
        finally:
            await client.close()
        return used, history

    used, history = asyncio.run(chat())
    assert len(set(used)) == 1  # one session, named in every response's header
    (session,) = agent.store.list_sessions()
    assert session.name == used[0]
    assert conversation(agent, session.id) == [(m["role"], m["content"]) for m in history[1:]]
    upstream = [(m["role"], m["content"]) for m in fake.chat_requests[-1].messages]
    assert upstream == [(m["role"], m["content"]) for m in history[:-1]]
    assert "remember" in offered(fake)


@pytest.mark.parametrize("stream", [False, True])
def test_async_openai_gets_not_found_for_an_unknown_model_after_one_upstream_request(
    serve: Any, fake: FakeServer, stream: bool
) -> None:
    openai = pytest.importorskip("openai")
    served, _, agent = serve()
    missing = {"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request_error",
                         "code": "model_not_found"}}  # fmt: skip
    # the same answer however many times it is asked: a retry, if any, would be counted
    fake.script(*[FakeReply.error_response(404, missing)] * 3)

    async def ask() -> None:
        client = openai.AsyncOpenAI(base_url=served.url + "/v1", api_key="unused")  # the SDK's own retries on
        try:
            reply = await client.chat.completions.create(
                model="gpt-9", messages=[{"role": "user", "content": "hi"}], stream=stream
            )
            if stream:  # the error is raised before any chunk, as OpenAI's own API does
                async for _ in reply:
                    pass
        finally:
            await client.close()

    with pytest.raises(openai.NotFoundError, match="does not exist") as caught:
        asyncio.run(ask())
    assert caught.value.status_code == 404
    assert len(fake.chat_requests) == 1 and fake.chat_requests[0].body["model"] == "gpt-9"
    assert agent.store.list_sessions() == []  # the failed turn left no session behind
