"""The OpenAI-compatible adapter against a real HTTP server (tests/fakeserver.py), and the
agent on top of it: what is sent each turn, how every failure maps, and that a failed
turn leaves the session untouched."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakeserver import FakeReply, FakeServer, refused_url
from memchat.agent import Agent
from memchat.domain import Chunk, Role, Usage
from memchat.errors import (
    AuthenticationError,
    BadRequest,
    ContextLengthExceeded,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamError,
)
from memchat.factory import open_store
from memchat.providers.base import ChatOptions, StoredWire
from memchat.providers.openai_compat import OpenAICompatible
from memchat.providers.sse import Event, SSEDecoder

KEY = "ms-0123456789abcdef-SECRET-KEY"
HI = [{"role": "user", "content": "hi"}]


def make(fake: FakeServer, **kw: Any) -> OpenAICompatible:
    kw.setdefault("api_key", KEY)
    kw.setdefault("model", "Qwen/Test-Model")
    kw.setdefault("backoff", 0.001)
    kw.setdefault("timeout", 5.0)
    return OpenAICompatible(kw.pop("base_url", fake.url), **kw)


@pytest.fixture
def provider(fake: FakeServer) -> Iterator[OpenAICompatible]:
    p = make(fake)
    yield p
    p.close()


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def fail(provider: OpenAICompatible, messages: list[dict[str, Any]] | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        list(provider.stream(messages or HI))
    return info.value


# -- streaming -----------------------------------------------------------------------------


def test_streams_text_finish_and_usage(fake: FakeServer, provider: OpenAICompatible) -> None:
    chunks = list(provider.stream([{"role": "user", "content": "hello there my friend"}]))
    assert text_of(chunks) == "echo: hello there my friend"
    assert len([c for c in chunks if c.text]) > 1  # really streamed in pieces
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].usage.prompt_tokens == 5


def test_scripted_chunks_and_usage(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.text("Hel", "lo", usage={"prompt_tokens": 9, "completion_tokens": 2}))
    chunks = list(provider.stream(HI))
    assert [c.text for c in chunks if c.text] == ["Hel", "lo"]
    assert chunks[-1].usage == Usage(9, 2)


def test_request_body_is_exact(fake: FakeServer, provider: OpenAICompatible) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好"}]
    list(provider.stream(messages))
    req = fake.last
    assert req.method == "POST" and req.path == "/v1/chat/completions"
    assert req.body == {
        "model": "Qwen/Test-Model",
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.headers["content-type"] == "application/json"


def test_a_callers_messages_changed_between_calls_are_sent_as_they_are_now(
    fake: FakeServer, provider: OpenAICompatible
) -> None:
    """Stored messages' JSON is kept between calls (``StoredWire``); a caller's own dicts are
    encoded every call, so changing one in place is never sent stale."""
    history = [StoredWire(role="user", content="kept"), StoredWire(role="assistant", content="ok")]
    mine = {"role": "user", "content": "first"}
    list(provider.stream([*history, mine]))
    mine["content"] = "changed, 改了"
    list(provider.stream([*history, mine]))
    assert fake.last.body["messages"] == [*history, {"role": "user", "content": "changed, 改了"}]
    list(provider.stream([{"role": "system", "content": "else"}, *history[1:]], options=ChatOptions(seed=3)))
    assert fake.last.body["messages"] == [{"role": "system", "content": "else"}, {"role": "assistant", "content": "ok"}]
    assert fake.last.body["seed"] == 3


def test_options_model_override_and_extra_body(fake: FakeServer) -> None:
    p = make(fake, extra_body={"enable_thinking": False})
    try:
        opts = ChatOptions(max_tokens=50, temperature=0.2, top_p=0.9, seed=7)
        list(p.stream(HI, model="other/model", options=opts))
        body = fake.last.body
        assert body["model"] == "other/model"
        assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (50, 0.2, 0.9, 7)
        assert body["enable_thinking"] is False
        list(p.stream(HI, options=ChatOptions(temperature=0.0)))
        assert fake.last.body["temperature"] == 0.0
        assert not {"max_tokens", "top_p", "seed"} & set(fake.last.body)
    finally:
        p.close()


def test_no_auth_header_without_key(fake: FakeServer) -> None:
    p = make(fake, api_key=None, model="")
    try:
        list(p.stream(HI))
    finally:
        p.close()
    assert "authorization" not in fake.last.headers
    assert "model" not in fake.last.body  # no model configured: let the server pick


def test_reasoning_content_chunks(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.thinking(["Let me ", "think."], ["The ", "answer."]))
    chunks = list(provider.stream(HI))
    assert "".join(c.reasoning for c in chunks) == "Let me think."
    assert text_of(chunks) == "The answer."
    first_text = next(i for i, c in enumerate(chunks) if c.text)
    assert all(not c.text for c in chunks[:first_text]) and all(not c.reasoning for c in chunks[first_text:])


def test_usage_chunk_missing_is_tolerated(fake: FakeServer, provider: OpenAICompatible) -> None:
    body = (
        'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":null}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}\n\n'
        "data: [DONE]\n\n"
    )
    fake.script(FakeReply.raw_sse(body))
    chunks = list(provider.stream(HI))
    assert text_of(chunks) == "ok" and chunks[-1].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


def test_sse_variants_comments_crlf_no_space_multiline(fake: FakeServer, provider: OpenAICompatible) -> None:
    body = (
        ": ping\r\n\r\n"
        'data:{"choices":[{"index":0,"delta":{"content":"A"},"finish_reason":null}]}\r\n\r\n'
        'data: {"choices":[{"index":0,\r\ndata: "delta":{"content":"B"},"finish_reason":null}]}\r\n\r\n'
        "event: message\nid: 3\n"
        'data: {"choices":null,"usage":null}\n\n'
        'data: {"choices":[{"index":0,"delta":{"content":"C","reasoning_content":null},"finish_reason":"null"}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}\n\n'
        "data: [DONE]"  # no blank line after it
    )
    fake.script(FakeReply.raw_sse(body, framing="close"))
    chunks = list(provider.stream(HI))
    assert text_of(chunks) == "ABC"
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage == Usage(3, 3)


def test_missing_done_after_finish_is_tolerated(fake: FakeServer, provider: OpenAICompatible) -> None:
    body = (
        'data: {"choices":[{"index":0,"delta":{"content":"done"},"finish_reason":null}]}\n\n'
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    )
    fake.script(FakeReply.raw_sse(body, framing="close"))
    assert text_of(list(provider.stream(HI))) == "done"


def test_plain_json_answer_is_accepted(fake: FakeServer, provider: OpenAICompatible) -> None:
    """A server that ignores ``stream`` and answers one chat.completion object."""
    completion = {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 5},
    }
    fake.script(FakeReply(body=completion))
    chunks = list(provider.stream(HI))
    assert text_of(chunks) == "whole" and chunks[-1].usage == Usage(4, 1) and chunks[-1].finish_reason == "stop"


def test_choices_null_just_ends(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.empty())
    chunks = list(provider.stream(HI))
    assert text_of(chunks) == ""
    assert all(c.usage in (None, Usage(0, 0)) for c in chunks)


def test_connection_is_reused(fake: FakeServer, provider: OpenAICompatible) -> None:
    for _ in range(3):
        list(provider.stream(HI))
    assert len({r.peer for r in fake.requests}) == 1


# -- HTTP errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "cls", "status", "detail"),
    [
        (FakeReply.auth_modelscope(), AuthenticationError, 401, "Authentication failed, please make sure"),
        (FakeReply.auth_openai(), AuthenticationError, 401, "Incorrect API key provided."),
        (
            FakeReply.auth_modelscope("Please bind your Alibaba Cloud account before use."),
            AuthenticationError,
            401,
            "Please bind your Alibaba Cloud account before use.",
        ),
        (FakeReply.error_response(403, {"error": {"message": "forbidden"}}), AuthenticationError, 403, "forbidden"),
        (FakeReply.context_length(), ContextLengthExceeded, 400, "maximum context length is 8192"),
        (
            FakeReply.error_response(400, {"errors": {"message": "Model x has no provider supported"}}),
            BadRequest,
            400,
            "has no provider supported",
        ),
        (
            FakeReply.error_response(
                400,
                {
                    "error": {
                        "code": "invalid_parameter_error",
                        "message": "enable thinking can not be support when `stream=False`.",
                        "type": "invalid_request_error",
                    },
                    "request_id": "214720c8",
                },
            ),
            BadRequest,
            400,
            "enable thinking can not be support",
        ),
        (FakeReply.error_response(404, {"error": {"message": "model not found"}}), BadRequest, 404, "model not found"),
        (FakeReply.error_response(422, "unprocessable"), BadRequest, 422, "unprocessable"),
    ],
)
def test_status_errors_map_with_server_detail(
    fake: FakeServer, provider: OpenAICompatible, reply: FakeReply, cls: type[ProviderError], status: int, detail: str
) -> None:
    fake.script(reply)
    err = fail(provider)
    assert type(err) is cls
    assert err.status == status
    assert detail in err.detail and detail in str(err)
    assert len(fake.requests) == 1  # 4xx is never retried


def test_modelscope_request_id_kept(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.auth_modelscope())
    assert fail(provider).info["request_id"] == "req-fake-401"


def test_context_length_is_a_bad_request(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.context_length())
    err = fail(provider)
    assert (
        isinstance(err, BadRequest) and err.kind == "context_length" and err.info["code"] == "context_length_exceeded"
    )


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_retried_then_succeeds(fake: FakeServer, provider: OpenAICompatible, status: int) -> None:
    fake.script(FakeReply.server_error(status), FakeReply.server_error(status), FakeReply.text("fine"))
    assert text_of(list(provider.stream(HI))) == "fine"
    assert len(fake.requests) == 3
    assert all(r.body == fake.requests[0].body for r in fake.requests)


def test_5xx_after_retries_is_server_error(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(*[FakeReply.server_error(502, "bad gateway upstream")] * 3)
    err = fail(provider)
    assert isinstance(err, ServerError) and err.status == 502 and err.detail == "bad gateway upstream"
    assert len(fake.requests) == 3  # 1 + max_retries
    assert fake.pending == 0


def test_html_error_page_gives_status_line(fake: FakeServer, provider: OpenAICompatible) -> None:
    reply = FakeReply.error_response(503, "<html><body>nginx</body></html>", {"Content-Type": "text/html"})
    fake.script(reply, reply, reply)
    err = fail(provider)
    assert isinstance(err, ServerError) and err.detail == "HTTP 503 Service Unavailable"


def test_max_retries_zero(fake: FakeServer) -> None:
    p = make(fake, max_retries=0)
    try:
        fake.script(FakeReply.server_error(500), FakeReply.text("never"))
        assert isinstance(fail(p), ServerError)
    finally:
        p.close()
    assert len(fake.requests) == 1


def test_connection_dropped_then_retried(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply(drop=True), FakeReply.text("back"))
    assert text_of(list(provider.stream(HI))) == "back"
    assert len(fake.requests) == 2


def test_connection_refused_is_unavailable_after_retries() -> None:
    p = OpenAICompatible(refused_url(), KEY, "m", backoff=0.001, max_retries=2)
    try:
        start = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            list(p.stream(HI))
        assert time.monotonic() - start < 2
    finally:
        p.close()
    assert "127.0.0.1" in info.value.detail and info.value.status is None


def test_connection_refused_says_refused_on_the_async_path_too() -> None:
    """Regression (fault matrix): the async transport's error read only "All connection attempts
    failed" (the server's turns said nothing of the refused connection)."""
    p = OpenAICompatible(refused_url(), KEY, "m", max_retries=0)

    async def main() -> None:
        async for _ in p.astream([{"role": "user", "content": "hi"}]):
            pass

    with pytest.raises(ProviderUnavailable) as info:
        asyncio.run(main())
    assert "Connection refused" in info.value.detail and KEY not in info.value.detail
    p.close()


def test_connection_refused_then_server_up(fake: FakeServer) -> None:
    """Retry reaches a server that starts while the client backs off."""
    url = refused_url()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    p = OpenAICompatible(url, KEY, "m", backoff=0.2, max_retries=3)
    late: list[FakeServer] = []

    def start_late() -> None:
        time.sleep(0.05)
        late.append(FakeServer(port=port).start())

    import threading

    t = threading.Thread(target=start_late)
    t.start()
    try:
        assert text_of(list(p.stream(HI))) == "echo: hi"
    finally:
        t.join()
        p.close()
        for s in late:
            s.close()
    assert len(late[0].requests) == 1


# -- 429: quota vs throttle ----------------------------------------------------------------


def test_quota_modelscope_header_not_retried(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.quota_modelscope(), FakeReply.text("never"))
    err = fail(provider)
    assert isinstance(err, RateLimited) and err.quota and err.kind == "quota" and err.status == 429
    assert err.detail == "Request limit exceeded."
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        FakeReply.quota_openai(),
        FakeReply.error_response(429, {"errors": {"message": "insufficient balance (1008)"}}),
        FakeReply.error_response(
            429,
            {"error": {"message": "Spend limit reached.", "type": "requests", "code": "project_spend_limit_exceeded"}},
        ),
    ],
)
def test_quota_by_type_or_text(fake: FakeServer, provider: OpenAICompatible, reply: FakeReply) -> None:
    fake.script(reply, FakeReply.text("never"))
    err = fail(provider)
    assert isinstance(err, RateLimited) and err.quota
    assert len(fake.requests) == 1


def test_throttle_with_long_retry_after_raises_at_once(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.throttled(30), FakeReply.text("never"))
    err = fail(provider)
    assert isinstance(err, RateLimited) and not err.quota and err.kind == "rate_limited"
    assert err.retry_after == 30.0
    assert len(fake.requests) == 1


def test_openai_throttle_mentioning_billing_is_not_quota(fake: FakeServer, provider: OpenAICompatible) -> None:
    msg = "Rate limit reached for requests. Visit https://platform.openai.com/account/billing to raise it."
    body = {"error": {"message": msg, "type": "requests", "code": "rate_limit_exceeded"}}
    fake.script(FakeReply.error_response(429, body, {"Retry-After": "20", "x-ratelimit-remaining-requests": "0"}))
    err = fail(provider)
    assert isinstance(err, RateLimited) and not err.quota and err.retry_after == 20.0


def test_throttle_short_retry_after_is_retried(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.throttled(0.02, ms=True), FakeReply.throttled(0), FakeReply.text("through"))
    start = time.monotonic()
    assert text_of(list(provider.stream(HI))) == "through"
    assert time.monotonic() - start >= 0.02
    assert len(fake.requests) == 3


def test_throttle_exhausted_keeps_retry_after(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(*[FakeReply.throttled(0.01, ms=True)] * 3)
    err = fail(provider)
    assert isinstance(err, RateLimited) and not err.quota and err.retry_after == pytest.approx(0.01)
    assert len(fake.requests) == 3


def test_retry_after_http_date(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(
        FakeReply.error_response(
            429, {"errors": {"message": "slow down"}}, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}
        )
    )
    err = fail(provider)
    assert isinstance(err, RateLimited) and err.retry_after is not None and err.retry_after > 10
    assert len(fake.requests) == 1


# -- broken streams ------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_mid_stream_cut_is_stream_error_not_retried(fake: FakeServer, provider: OpenAICompatible, framing: str) -> None:
    fake.script(FakeReply.cut(after=2, framing=framing), FakeReply.text("never"))
    got: list[Chunk] = []
    with pytest.raises(StreamError) as info:
        for chunk in provider.stream(HI):
            got.append(chunk)
    assert text_of(got) == "one two "
    assert info.value.status == 200
    assert len(fake.requests) == 1
    assert fake.pending == 1


def test_cut_right_after_headers(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.cut(after=0))
    assert isinstance(fail(provider), StreamError)
    assert len(fake.requests) == 1


def test_malformed_chunk_is_stream_error(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.malformed(after=1))
    err = fail(provider)
    assert isinstance(err, StreamError) and "malformed" in err.detail
    assert len(fake.requests) == 1


def test_in_stream_error_event(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.stream_error("model overloaded, try later", after=1))
    err = fail(provider)
    assert isinstance(err, StreamError) and err.detail == "model overloaded, try later"
    assert err.info["code"] == "internal_error"


def test_sse_error_event_field(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.raw_sse('event: error\ndata: {"message":"quota gone"}\n\n'))
    err = fail(provider)
    assert isinstance(err, StreamError) and err.detail == "quota gone"


def test_stall_before_first_byte_is_timeout(fake: FakeServer) -> None:
    p = make(fake, timeout=0.3)
    try:
        fake.script(FakeReply.stall_reply(10))
        start = time.monotonic()
        err = fail(p)
        elapsed = time.monotonic() - start
    finally:
        p.close()
    assert isinstance(err, ProviderTimeout) and "0.3" in err.detail
    assert elapsed < 2
    assert len(fake.requests) == 1


def test_stall_mid_stream_is_timeout(fake: FakeServer) -> None:
    p = make(fake, timeout=0.3)
    got: list[Chunk] = []
    try:
        fake.script(FakeReply.stall_reply(10, after=1, chunks=["a", "b", "c"]))
        with pytest.raises(ProviderTimeout):
            for c in p.stream(HI):
                got.append(c)
    finally:
        p.close()
    assert text_of(got) == "a"
    assert len(fake.requests) == 1


def test_slow_but_steady_stream_is_fine(fake: FakeServer) -> None:
    p = make(fake, timeout=0.5)
    try:
        fake.script(FakeReply.text("a", "b", "c", "d", delay=0.1))
        assert text_of(list(p.stream(HI))) == "abcd"
    finally:
        p.close()


# -- async ---------------------------------------------------------------------------------


def test_astream_matches_stream(fake: FakeServer, provider: OpenAICompatible) -> None:
    messages = [{"role": "user", "content": "same words here"}]
    sync = list(provider.stream(messages))

    async def main() -> list[Chunk]:
        try:
            return [c async for c in provider.astream(messages)]
        finally:
            await provider.aclose()

    assert asyncio.run(main()) == sync
    assert fake.requests[0].body == fake.requests[1].body


def test_astream_errors_and_retries(fake: FakeServer, provider: OpenAICompatible) -> None:
    async def collect() -> list[Chunk]:
        return [c async for c in provider.astream(HI)]

    async def main() -> None:
        try:
            fake.script(FakeReply.auth_modelscope())
            with pytest.raises(AuthenticationError):
                await collect()
            fake.script(FakeReply.server_error(500), FakeReply.text("after retry"))
            assert text_of(await collect()) == "after retry"
            fake.script(FakeReply.cut(after=1))
            with pytest.raises(StreamError):
                await collect()
            fake.script(FakeReply.quota_openai())
            with pytest.raises(RateLimited) as info:
                await collect()
            assert info.value.quota
            fake.script(FakeReply.thinking(["hmm"], ["yes"]))
            chunks = await collect()
            assert "".join(c.reasoning for c in chunks) == "hmm" and text_of(chunks) == "yes"
        finally:
            await provider.aclose()

    asyncio.run(main())
    assert len(fake.requests) == 1 + 2 + 1 + 1 + 1


def test_astream_stall_is_timeout(fake: FakeServer) -> None:
    p = make(fake, timeout=0.3)
    fake.script(FakeReply.stall_reply(10, after=1))

    async def main() -> None:
        try:
            with pytest.raises(ProviderTimeout):
                async for _ in p.astream(HI):
                    pass
        finally:
            await p.aclose()

    asyncio.run(main())


def test_astream_over_two_event_loops(fake: FakeServer, provider: OpenAICompatible) -> None:
    async def once() -> str:
        return text_of([c async for c in provider.astream(HI)])

    # no aclose(): each loop's client is closed by the loop's own shutdown (asyncio.run)
    assert asyncio.run(once()) == "echo: hi"
    assert asyncio.run(once()) == "echo: hi"
    gc.collect()  # an unclosed connection would raise ResourceWarning (an error here) now
    assert len({r.peer for r in fake.requests}) == 2


# -- models, secrecy -----------------------------------------------------------------------


def test_list_models(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.models = ["Qwen/Qwen3-32B", "deepseek-ai/DeepSeek-V3.1"]
    assert provider.list_models() == ["Qwen/Qwen3-32B", "deepseek-ai/DeepSeek-V3.1"]
    assert fake.last.method == "GET" and fake.last.path == "/v1/models"
    assert fake.last.headers["authorization"] == f"Bearer {KEY}"


def test_list_models_error(fake: FakeServer, provider: OpenAICompatible) -> None:
    fake.script(FakeReply.auth_openai(), endpoint="models")
    with pytest.raises(AuthenticationError):
        provider.list_models()


def test_count_tokens_is_the_estimate(provider: OpenAICompatible) -> None:
    assert provider.count_tokens("hello world")[1] == "estimate"


def test_key_never_in_errors_or_repr(fake: FakeServer) -> None:
    p = make(fake)
    assert KEY not in repr(p) and "***" in repr(p)
    echoing = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    replies = [
        FakeReply.error_response(401, echoing),
        FakeReply.error_response(400, echoing),
        FakeReply.error_response(429, echoing, {"Retry-After": "60"}),
        *[FakeReply.error_response(500, echoing)] * 3,
        FakeReply.stream_error(f"bad key {KEY}"),
        FakeReply.malformed(),
        FakeReply.cut(after=1),
    ]
    errors: list[ProviderError] = []
    try:
        fake.script(*replies)
        for _ in range(len(replies) - 2):
            errors.append(fail(p))
        unreachable = OpenAICompatible(refused_url(), KEY, backoff=0.001, max_retries=0)
        errors.append(fail(unreachable))
        unreachable.close()
    finally:
        p.close()
    assert len(errors) == 8
    for err in errors:
        text = "".join(traceback.format_exception(err)) + repr(err) + str(err.info) + repr(vars(err))
        assert KEY not in text, type(err)
    assert "Incorrect API key provided: ***" == errors[0].detail


# -- through the agent ---------------------------------------------------------------------


@pytest.fixture
def agent(fake: FakeServer) -> Iterator[Agent]:
    a = Agent(open_store(":memory:"), make(fake), persona="You are a test persona.", date_line=False)
    yield a
    a.close()


def wire(agent: Agent, session: str) -> list[dict[str, str]]:
    return [{"role": m.role.value, "content": m.content} for m in agent.store.messages(agent.session(session).id)]


def test_agent_sends_whole_conversation_each_turn(fake: FakeServer, agent: Agent) -> None:
    system = {"role": "system", "content": "You are a test persona."}
    assert agent.ask("s", "my name is Ada").text == "echo: my name is Ada"
    assert agent.ask("s", "what is my name?").text == "echo: what is my name?"
    reply = agent.ask("s", "third")
    assert reply.text == "echo: third" and reply.usage is not None and reply.usage.prompt_tokens > 0
    sent = [r.messages for r in fake.chat_requests]
    assert sent[0] == [system, {"role": "user", "content": "my name is Ada"}]
    assert sent[1] == [
        system,
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]
    assert sent[2] == [
        *sent[1],
        {"role": "assistant", "content": "echo: what is my name?"},
        {"role": "user", "content": "third"},
    ]
    assert all(r.body["model"] == "Qwen/Test-Model" for r in fake.chat_requests)


@pytest.mark.parametrize(
    "failure",
    [
        [FakeReply.server_error(500)] * 3,
        [FakeReply.auth_modelscope()],
        [FakeReply.quota_modelscope()],
        [FakeReply.context_length()] * 2,  # the retry with a smaller context fails too
        [FakeReply.cut(after=2)],
        [FakeReply.malformed(after=1)],
        [FakeReply.stream_error()],
        [FakeReply.empty()],
    ],
    ids=["500", "401", "quota", "context", "cut", "malformed", "error-event", "choices-null"],
)
def test_failed_turn_leaves_session_untouched(fake: FakeServer, agent: Agent, failure: list[FakeReply]) -> None:
    agent.ask("s", "first")
    before = wire(agent, "s")
    fake.reset()
    fake.script(*failure)
    with pytest.raises(ProviderError):
        agent.ask("s", "this one fails")
    assert wire(agent, "s") == before
    assert agent.store.messages(agent.session("s").id, include_streaming=True) == agent.store.messages(
        agent.session("s").id
    )
    agent.ask("s", "next")
    last = fake.chat_requests[-1].messages
    assert all("this one fails" not in m["content"] for m in last)
    assert last == [
        {"role": "system", "content": "You are a test persona."},
        *before,
        {"role": "user", "content": "next"},
    ]


def test_agent_stream_yields_chunks_then_reply(fake: FakeServer, agent: Agent) -> None:
    fake.script(FakeReply.thinking(["pondering"], ["Hi ", "there"]))
    turn = agent.stream("s", "hello")
    chunks = list(turn)
    assert text_of(chunks) == "Hi there"
    assert turn.reply is not None and turn.reply.reasoning == "pondering" and turn.reply.finish_reason == "stop"
    assert [m.role for m in agent.store.messages(agent.session("s").id)] == [Role.USER, Role.ASSISTANT]


def test_agent_async_turns(fake: FakeServer, agent: Agent) -> None:
    async def main() -> None:
        try:
            assert (await agent.aask("a", "one")).text == "echo: one"
            fake.script(FakeReply.cut(after=1))
            with pytest.raises(StreamError):
                await agent.aask("a", "lost")
            assert (await agent.aask("a", "two")).text == "echo: two"
        finally:
            assert isinstance(agent.provider, OpenAICompatible)
            await agent.provider.aclose()

    asyncio.run(main())
    assert [m["content"] for m in fake.chat_requests[-1].messages] == [
        "You are a test persona.",
        "one",
        "echo: one",
        "two",
    ]


# -- the SSE decoder alone -----------------------------------------------------------------


def test_sse_decoder_byte_by_byte() -> None:
    raw = b': c\r\ndata: {"a":\r\ndata: 1}\r\n\r\ndata:x\rdata: y\r\r\ndata: [DONE]\n\n'
    whole = SSEDecoder().feed(raw)
    dec = SSEDecoder()
    parts: list[Event] = []
    for i in range(len(raw)):
        parts.extend(dec.feed(raw[i : i + 1]))
    parts.extend(dec.flush())
    assert parts == whole == [Event('{"a":\n1}'), Event("x\ny"), Event("[DONE]")]
    assert json.loads(whole[0].data) == {"a": 1}


def test_sse_decoder_utf8_split_and_flush() -> None:
    data = 'data: {"t":"你好"}'.encode()
    dec = SSEDecoder()
    assert dec.feed(data[:10]) == [] and dec.feed(data[10:]) == []
    assert dec.flush() == [Event('{"t":"你好"}')]


# -- the fake server as a process ----------------------------------------------------------


def test_fakeserver_cli_process() -> None:
    script = Path(__file__).with_name("fakeserver.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--reply", "fixed answer here", "--delay-ms", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        p = OpenAICompatible(url, None, "m", backoff=0.001)
        try:
            assert text_of(list(p.stream(HI))) == "fixed answer here"
            assert p.list_models() == ["fake/model-a", "fake/model-b"]
        finally:
            p.close()
    finally:
        proc.terminate()
        assert proc.wait(5) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_at_most_max_streams_are_open_at_once_and_the_others_wait_their_turn() -> None:
    """A server with hundreds of turns streaming keeps at most ``max_streams`` requests open to
    the model server; the others wait, in order, and every one is answered."""
    import httpx

    open_now, most = 0, 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        text = json.loads(request.content)["messages"][-1]["content"]

        async def body() -> Any:
            try:
                for word in ("you said", text):
                    await asyncio.sleep(0.01)
                    yield f'data: {{"choices":[{{"index":0,"delta":{{"content":"{word} "}}}}]}}\n\n'.encode()
                yield b"data: [DONE]\n\n"
            finally:
                nonlocal open_now
                open_now -= 1

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    provider = OpenAICompatible(
        "http://127.0.0.1:9/v1", model="m", transport=httpx.MockTransport(handler), max_streams=2, ask_window=False
    )

    async def one(k: int) -> str:
        parts = [c.text async for c in provider.astream([{"role": "user", "content": f"n{k}"}])]
        return "".join(parts)

    async def main() -> list[str]:
        try:
            return await asyncio.gather(*(one(k) for k in range(7)))
        finally:
            await provider.aclose()

    assert asyncio.run(main()) == [f"you said n{k} " for k in range(7)]
    assert most == 2
