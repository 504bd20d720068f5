"""The context window is asked, not guessed: what llama.cpp's server (``/props``), vLLM
(``max_model_len``) and Ollama (``/api/show``) say, or what a server's context-length error
names, is what memchat plans for (capped by the known-models table, overridden by the flag),
kept per base URL and model; base URLs are checked when read. Against the loopback server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.config import resolve
from memchat.errors import ConfigError, StreamError
from memchat.factory import make_provider, open_store
from memchat.memory.budget import DEFAULT_WINDOW
from memchat.providers.openai_compat import OpenAICompatible
from memchat.providers.windows import WindowBook, window_in_error

MADE: list[OpenAICompatible] = []


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    yield
    while MADE:
        MADE.pop().close()


def provider(fake: FakeServer, book: WindowBook, model: str = "my-local-model") -> OpenAICompatible:
    MADE.append(OpenAICompatible(fake.url, model=model, max_retries=0, windows=book))
    return MADE[-1]


def asked(fake: FakeServer) -> list[str]:
    return [r.path for r in fake.requests if not r.path.endswith("/chat/completions")]


@pytest.mark.parametrize(("like", "window"), [("llama.cpp", 4096), ("vllm", 16384), ("ollama", 8192), ("ollama", None)])
def test_the_window_the_server_says_is_planned_for_and_asked_once(
    fake: FakeServer, like: str, window: int | None
) -> None:
    fake.serves_like, fake.window = like, window
    fake.models = ["my-local-model"]
    book = WindowBook()
    agent = Agent(open_store(":memory:"), provider(fake, book), date_line=False)
    expected = window or 4096  # Ollama without num_ctx serves its default context
    assert agent.budget_for("my-local-model").window == expected
    first = asked(fake)
    assert first and len(first) <= 3
    assert agent.budget_for("my-local-model").window == expected
    again = Agent(open_store(":memory:"), provider(fake, book), date_line=False)
    assert again.budget_for("my-local-model").window == expected
    assert asked(fake) == first  # kept per base URL and model: not asked again


def test_the_table_caps_the_server_and_the_flag_wins(fake: FakeServer) -> None:
    fake.serves_like, fake.window = "vllm", 1_000_000
    fake.models = ["gpt-4o"]
    agent = Agent(open_store(":memory:"), provider(fake, WindowBook(), "gpt-4o"), date_line=False)
    assert agent.budget_for("gpt-4o").window == 128_000  # a server cannot give a model more than it has
    fake.window = 2048
    small = Agent(open_store(":memory:"), provider(fake, WindowBook(), "gpt-4o"), date_line=False)
    assert small.budget_for("gpt-4o").window == 2048  # nor can the model use more than the server serves
    flagged = Agent(
        open_store(":memory:"), provider(fake, WindowBook(), "gpt-4o"), date_line=False, context_window=3000
    )
    assert flagged.budget_for("gpt-4o").window == 3000
    before = len(fake.requests)
    flagged.budget_for("gpt-4o")
    assert len(fake.requests) == before  # with the flag nobody is asked


def test_a_server_that_says_nothing_keeps_the_guess_and_a_file_keeps_what_was_learned(
    fake: FakeServer, tmp_path: Path
) -> None:
    book = WindowBook(tmp_path / "windows.json")
    agent = Agent(open_store(":memory:"), provider(fake, book), date_line=False)
    assert agent.budget_for("my-local-model").window == DEFAULT_WINDOW
    fake.serves_like, fake.window = "llama.cpp", 2048
    assert agent.budget_for("my-local-model").window == DEFAULT_WINDOW  # "says nothing" is believed a day
    # a context-length error names the window: learned, and kept for the next process
    fake.script(FakeReply.context_length("This model's maximum context length is 1536 tokens. However, ..."))
    with pytest.raises(Exception, match="maximum context length"):
        agent.provider.ask_window = False
        list(agent.provider.stream([{"role": "user", "content": "hi"}]))
    later = WindowBook(tmp_path / "windows.json")
    assert later.get(fake.url, "my-local-model") == (True, 1536)
    assert window_in_error("Requested tokens (900) exceed context window of 512") == 512


def test_a_turn_that_overflows_a_smaller_server_learns_its_window_and_is_answered(fake: FakeServer) -> None:
    """A server whose window memchat did not know refuses the call naming its size: the turn is
    planned again for it (one retry) and every later turn plans for it from the start."""
    store = open_store(":memory:")
    store.create_session("s")
    store.append_messages("s", [m for k in range(40) for m in _turn(k)])
    agent = Agent(store, provider(fake, WindowBook()), date_line=False, memory="window")
    fake.max_context_tokens = 900
    reply = agent.ask("s", "What did we say about the weather?")
    assert reply.text
    sizes = [r for r in fake.chat_requests]
    assert len(sizes) == 2  # refused once, then planned for the window it named
    assert agent.budget_for("my-local-model").window == 900
    agent.ask("s", "And then?")
    assert len(fake.chat_requests) == 3  # the next turn fits at once


def _turn(k: int) -> list:  # type: ignore[type-arg]
    from memchat.domain import Message, Role

    text = f"Turn {k}: the weather was mild and grey, and we talked about it at some length."
    return [Message(Role.USER, text), Message(Role.ASSISTANT, "Noted: " + text)]


def test_an_empty_stream_after_a_large_prompt_names_the_fix(fake: FakeServer) -> None:
    """llama-cpp-python's server answers 200 and an empty stream when the prompt is too long; a
    server that then answers the same request fine gets one line naming --context-window."""
    fake.script(FakeReply.raw_sse(b""), FakeReply.text("fine"))
    p = provider(fake, WindowBook())
    with pytest.raises(StreamError, match="--context-window") as caught:
        list(p.stream([{"role": "user", "content": "hello " * 3000}]))
    assert "empty reply" in str(caught.value) and "\n" not in str(caught.value)
    probe = fake.chat_requests[-1].body
    assert probe["stream"] is False and probe["max_tokens"] == 1


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:8090/v1", "did you mean http://127.0.0.1:8090/v1?"),
        ("api.example.com/v1", "did you mean https://api.example.com/v1?"),
        ("ftp://example.com/v1", "must start with http:// or https://"),
        ("http://h:port/v1", "is not a URL"),
    ],
)
def test_a_bad_base_url_is_one_line_when_read(url: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({"base_url": url})
    assert says in str(caught.value) and "MEMCHAT_BASE_URL" in str(caught.value)
    with pytest.raises(ConfigError, match="MEMCHAT_IMAGE_BASE_URL"):
        resolve({"provider": "modelscope", "api_key": "k", "image_base_url": url})


def test_a_hosted_api_is_not_asked_but_a_server_at_another_address_is() -> None:
    hosted = make_provider(resolve({"provider": "modelscope", "api_key": "k"}))
    assert isinstance(hosted, OpenAICompatible) and not hosted.ask_window
    moved = make_provider(resolve({"provider": "openai", "api_key": "k", "base_url": "http://127.0.0.1:9/v1"}))
    assert isinstance(moved, OpenAICompatible) and moved.ask_window


def test_concurrent_turns_on_a_fresh_server_ask_for_the_window_once() -> None:
    """Fifty chats starting at once on a new server must not each ask the model server for its
    window: the first question is shared, and every caller plans for its answer."""
    import threading

    import httpx

    gate, entered = threading.Event(), threading.Event()
    asked_paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked_paths.append(request.url.path)
        entered.set()
        gate.wait(5)  # the question is in flight while the other callers come
        if request.url.path == "/props":
            return httpx.Response(200, json={"n_ctx": 4096})
        return httpx.Response(404)

    transport = httpx.MockTransport(handler)
    chosen = OpenAICompatible(
        "http://127.0.0.1:9/v1", model="my-local-model", transport=transport, windows=WindowBook()
    )
    MADE.append(chosen)
    windows: list[int | None] = []
    first = threading.Thread(target=lambda: windows.append(chosen.served_window()))
    first.start()
    assert entered.wait(5)
    others = [threading.Thread(target=lambda: windows.append(chosen.served_window())) for _ in range(8)]
    for t in others:
        t.start()
    gate.set()
    for t in [first, *others]:
        t.join(10)
    assert windows == [4096] * 9
    assert asked_paths == ["/props"]  # one question, its answer shared
