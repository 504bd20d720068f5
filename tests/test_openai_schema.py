"""``/v1`` answers in OpenAI's published shapes: every response, stream chunk, model list and
error is validated against the schemas of OpenAI's OpenAPI spec (``tests/schemas/openai-chat.json``:
copied unchanged from openai/openai-openapi, its commit and version named in the file)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.server.app import create_app
from serving import Served

SPEC = Path(__file__).parent / "schemas" / "openai-chat.json"
ASK = [{"role": "user", "content": "hi"}]


def _nullable(node: Any) -> Any:
    """OpenAI's 3.1 spec still marks some fields with OpenAPI 3.0's ``nullable: true`` (which
    JSON Schema ignores): read it as OpenAPI does, null allowed."""
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "$ref" in out or "allOf" in out or "anyOf" in out or "oneOf" in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _registry() -> Registry:
    doc = json.loads(SPEC.read_text(encoding="utf-8"))
    assert doc["source"]["repository"] == "https://github.com/openai/openai-openapi" and doc["source"]["version"]
    contents = {"components": _nullable(copy.deepcopy(doc["components"]))}
    return Registry().with_resource("urn:openai", Resource.from_contents(contents, default_specification=DRAFT202012))


def check(name: str, instance: Any) -> None:
    """``instance`` is valid for OpenAI's schema ``name`` (every error listed when not)."""
    validator = Draft202012Validator({"$ref": f"urn:openai#/components/schemas/{name}"}, registry=_registry())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, f"{name}: " + "; ".join(errors)


def test_the_checker_refuses_what_openai_would_not_send() -> None:
    """The schemas bite: a response without ``choices`` or an error without ``type`` fails."""
    with pytest.raises(AssertionError, match="choices"):
        check("CreateChatCompletionResponse", {"id": "x", "object": "chat.completion", "created": 1, "model": "m"})
    with pytest.raises(AssertionError, match="type"):
        check("ErrorResponse", {"error": {"message": "m", "param": None, "code": None}})
    with pytest.raises(AssertionError, match="finish_reason"):
        check(
            "CreateChatCompletionStreamResponse",
            {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {}, "finish_reason": "because"}]},
        )  # fmt: skip


@pytest.fixture
def v1(fake_server: FakeServer, tmp_path: Path) -> Iterator[tuple[httpx.Client, FakeServer]]:
    fake_server.reset()
    provider = OpenAICompatible(fake_server.url, api_key="sk-upstream", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "schema.db"), provider, persona="Be brief.", date_line=False)
    served = Served(create_app(agent))
    client = httpx.Client(base_url=served.url + "/v1", timeout=10)
    yield client, fake_server
    client.close()
    served.close()
    agent.close()
    fake_server.reset()


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    frames = [f[6:] for f in response.text.split("\n\n") if f.startswith("data: ")]
    assert frames[-1] == "[DONE]" or '"error"' in frames[-1]
    return [json.loads(f) for f in frames if f != "[DONE]"]


def test_completions_and_their_chunks_validate(v1: tuple[httpx.Client, FakeServer]) -> None:
    client, fake = v1
    fake.script(FakeReply.text("Hello!"))
    body = client.post("/chat/completions", json={"model": "m", "messages": ASK}).json()
    check("CreateChatCompletionResponse", body)

    fake.script(FakeReply.text("Hel", "lo", finish_reason="length", omit_usage=True))
    streamed = client.post(
        "/chat/completions",
        json={"model": "m", "messages": ASK, "stream": True, "stream_options": {"include_usage": True}},
    )
    got = chunks(streamed)
    for chunk in got:
        check("CreateChatCompletionStreamResponse", chunk)
    assert got[-1]["choices"] == [] and got[-1]["usage"]["completion_tokens"] > 0  # estimated, never zeros


def test_tool_calls_validate_streamed_and_not(v1: tuple[httpx.Client, FakeServer]) -> None:
    client, fake = v1
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
    fake.script(FakeReply.calls({"id": "call_1", "name": "lookup", "arguments": "{}"}))
    body = client.post("/chat/completions", json={"messages": ASK, "tools": [tool], "metadata": {"session": "a"}})
    check("CreateChatCompletionResponse", body.json())
    assert body.json()["choices"][0]["message"]["tool_calls"][0]["id"] == "call_1"
    fake.script(FakeReply.calls({"id": "call_2", "name": "lookup", "arguments": "{}"}))
    streamed = client.post(
        "/chat/completions", json={"messages": ASK, "tools": [tool], "stream": True, "metadata": {"session": "b"}}
    )
    got = chunks(streamed)
    for chunk in got:
        check("CreateChatCompletionStreamResponse", chunk)
    assert got[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_models_and_errors_validate(v1: tuple[httpx.Client, FakeServer]) -> None:
    client, fake = v1
    check("ListModelsResponse", client.get("/models").json())
    refused = [
        client.post("/chat/completions", json={"messages": []}),  # memchat's own 400
        client.post("/chat/completions", content=b"{nope", headers={"Content-Type": "application/json"}),
        client.post("/chat/completions", json={"messages": ASK, "n": 3}),
    ]
    for status, body in ((404, {"error": {"message": "no such model"}}), (429, None), (401, None), (500, None)):
        fake.script(FakeReply.error_response(status, body))
        refused.append(client.post("/chat/completions", json={"messages": ASK}))
    assert [r.status_code for r in refused] == [400, 400, 400, 404, 429, 424, 502]
    for response in refused:
        check("ErrorResponse", response.json())
    fake.script(FakeReply.stream_error("upstream model failed", after=1))
    failed = chunks(client.post("/chat/completions", json={"messages": ASK, "stream": True}))
    for chunk in failed[:-1]:
        check("CreateChatCompletionStreamResponse", chunk)
    check("ErrorResponse", failed[-1])
