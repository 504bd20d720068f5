"""``memchat serve`` over real HTTP: the app under uvicorn on a free port, its model the loopback
OpenAI-compatible server, a temporary SQLite file. Sessions, streamed turns (replay, stop, 409,
failure), the stateful OpenAI-compatible endpoint (driven by the openai SDK), and the guard
(Host, Origin, token, body limits, headers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.server.app import create_app
from serving import Served

TOKEN = "server-token-0123456789abcdef"


@pytest.fixture
def fake(fake_server: FakeServer) -> Iterator[FakeServer]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


def events(response: httpx.Response) -> list[tuple[int, str, dict[str, Any]]]:
    out = []
    for frame in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return out


# -- the guard ------------------------------------------------------------------------------------


def test_the_guard_refuses_other_hosts_cross_site_writes_and_sets_headers(serve: Any) -> None:
    served, client, _ = serve()
    ok = client.get("/api/health")
    assert ok.status_code == 200 and ok.json()["ok"] is True
    csp = ok.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert ok.headers["x-content-type-options"] == "nosniff"
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends its own Host
    assert client.get("/api/health", headers={"Host": "evil.example"}).status_code == 421
    # another site driving the API from a browser
    post = client.post("/api/sessions", json={}, headers={"Origin": "http://evil.example"})
    assert post.status_code == 403 and post.json()["error"]["code"] == "cross_origin"
    assert client.post("/api/sessions", json={}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    same = client.post("/api/sessions", json={}, headers={"Origin": served.url, "Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 201
    # JSON only, bounded
    assert client.post("/api/sessions", content=b"name=x", headers={"Content-Type": "text/plain"}).status_code == 415
    big = client.post(
        "/api/sessions", content=b"{" + b" " * 2_000_000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert big.status_code == 413


def test_a_token_guards_the_api_and_the_page_gets_it_as_an_httponly_cookie(serve: Any) -> None:
    _, client, _ = serve(token=TOKEN)
    assert client.get("/api/sessions").status_code == 401
    assert client.get("/v1/models").status_code == 401
    assert client.get("/api/sessions", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/sessions", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and TOKEN not in page.text
    assert "set-cookie" not in page.headers  # loading the page grants nothing (tests/test_security.py)
    assert client.get("/api/sessions").status_code == 401
    login = client.post("/api/login", json={"token": TOKEN})  # the page asks for the token once
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert client.get("/api/sessions").status_code == 200  # the cookie now rides along


def test_the_provider_key_never_reaches_the_browser(serve: Any, fake: FakeServer) -> None:
    _, client, _ = serve()
    models = client.get("/api/models").json()
    assert models["key_configured"] is True and "sk-upstream-secret-42" not in json.dumps(models)


# -- sessions -------------------------------------------------------------------------------------


def test_sessions_create_list_search_rename_fork_delete(serve: Any) -> None:
    _, client, _ = serve()
    a = client.post("/api/sessions", json={"name": "trip to Lisbon"}).json()
    client.post("/api/sessions", json={"name": "notes", "persona": "你是简洁的助手。"})
    listed = client.get("/api/sessions").json()
    assert listed["total"] == 2 and {s["name"] for s in listed["sessions"]} == {"trip to Lisbon", "notes"}
    assert [s["name"] for s in client.get("/api/sessions", params={"q": "lisbon"}).json()["sessions"]] == [
        "trip to Lisbon"
    ]
    renamed = client.patch(f"/api/sessions/{a['id']}", json={"name": "Lisbon", "memory": "window"}).json()
    assert (renamed["name"], renamed["memory"]) == ("Lisbon", "window")
    clash = client.post("/api/sessions", json={"name": "notes"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "session_exists"
    fork = client.post(f"/api/sessions/{a['id']}/fork", json={"name": "Lisbon 2"})
    assert fork.status_code == 201 and fork.json()["parent_id"] == a["id"]
    assert client.delete(f"/api/sessions/{a['id']}").status_code == 204
    missing = client.get(f"/api/sessions/{a['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_bad_input_is_a_4xx_json_error_and_writes_nothing(serve: Any) -> None:
    _, client, agent = serve()
    before = agent.store.list_sessions()
    cases = [
        client.post("/api/sessions", content=b"{not json", headers={"Content-Type": "application/json"}),
        client.post("/api/sessions", json={"name": 42}),
        client.patch("/api/sessions/999", json={"name": "x"}),
        client.patch("/api/sessions/abc", json={"name": "x"}),
        client.post("/api/sessions/999/turns", json={"text": "hi"}),
        client.post("/api/sessions/import", json={"text": "not an export"}),
        client.get("/api/sessions", params={"limit": 0}),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]["message"]
    assert agent.store.list_sessions() == before


# -- turns ----------------------------------------------------------------------------------------


def test_a_turn_streams_events_with_ids_and_is_stored(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.text("Hel", "lo", " there"))
    response = client.post(f"/api/sessions/{sid}/turns", json={"text": "hi"})
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    assert [i for i, _, _ in got] == list(range(1, len(got) + 1))
    assert "".join(d["text"] for _, k, d in got if k == "delta") == "Hello there"
    assert got[-1][1] == "done" and got[-1][2]["status"] == "complete"
    stored = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in stored] == [("user", "hi"), ("assistant", "Hello there")]
    # the whole conversation goes back next time
    fake.script(FakeReply.text("ok"))
    client.post(f"/api/sessions/{sid}/turns", json={"text": "again"})
    assert [m["content"] for m in fake.chat_requests[-1].messages] == ["Be brief.", "hi", "Hello there", "again"]


def test_reattaching_replays_what_was_missed_without_duplicates(serve: Any, fake: FakeServer) -> None:
    served, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.text(*[f"w{k} " for k in range(12)], delay=0.05))
    seen: list[tuple[int, str, dict[str, Any]]] = []
    with client.stream("POST", f"/api/sessions/{sid}/turns", json={"text": "count"}) as first:
        for line in first.iter_lines():
            if line.startswith("id: "):
                seen.append((int(line[4:]), "", {}))
            if len(seen) >= 3:
                break  # the page reloads: the connection drops, the turn goes on
    assert client.get(f"/api/sessions/{sid}").json()["running"] is True
    rest = events(client.get(f"/api/sessions/{sid}/stream", params={"after": seen[-1][0]}))
    assert rest[0][0] == seen[-1][0] + 1 and rest[-1][1] == "done"
    whole = events(client.get(f"/api/sessions/{sid}/stream", params={"after": 0}))
    assert [i for i, _, _ in whole] == list(range(1, len(whole) + 1))
    text = "".join(d["text"] for _, k, d in whole if k == "delta")
    assert text == "".join(f"w{k} " for k in range(12))
    assert client.get(f"/api/sessions/{sid}/messages").json()["messages"][-1]["content"] == text


def test_a_second_turn_while_one_runs_gets_409_and_stop_keeps_the_partial(serve: Any, fake: FakeServer) -> None:
    _, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.text(*[f"part{k} " for k in range(40)], delay=0.05))
    got_text = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=client.base_url, timeout=10) as other:
            with other.stream("POST", f"/api/sessions/{sid}/turns", json={"text": "long story"}) as r:
                for line in r.iter_lines():
                    if line.startswith("event: delta"):
                        got_text.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert got_text.wait(5)
    busy = client.post(f"/api/sessions/{sid}/turns", json={"text": "me too"})
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "busy"
    assert client.post(f"/api/sessions/{sid}/stop", json={}).json() == {"stopped": True}
    reader.join(5)
    last = client.get(f"/api/sessions/{sid}/messages").json()["messages"][-1]
    assert last["status"] == "stopped" and last["content"].startswith("part0 ")
    done = events(client.get(f"/api/sessions/{sid}/stream"))[-1]
    assert done[1] == "done" and done[2]["status"] == "stopped"


def test_a_failed_turn_drops_the_message_and_says_why(serve: Any, fake: FakeServer) -> None:
    _, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.server_error(500))
    got = events(client.post(f"/api/sessions/{sid}/turns", json={"text": "hello?"}))
    assert got[-1][1] == "error" and got[-1][2]["dropped"] is True and "try again" in got[-1][2]["message"]
    assert client.get(f"/api/sessions/{sid}/messages").json()["messages"] == []


def test_tool_calls_stream_as_events(serve: Any, fake: FakeServer) -> None:
    _, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.calls(("now", "{}")), FakeReply.text("Tuesday."))
    kinds = [k for _, k, _ in events(client.post(f"/api/sessions/{sid}/turns", json={"text": "what day?"}))]
    assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("delta") < kinds.index("done")


# -- the OpenAI-compatible endpoint ------------------------------------------------------------------


def test_any_openai_client_gets_memory_by_changing_its_base_url(serve: Any, fake: FakeServer) -> None:
    import openai

    served, _, _ = serve()
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    try:
        fake.script(FakeReply.text("Nice to meet you, Ada."))
        first = client.chat.completions.create(
            model="fake/model-a",
            messages=[{"role": "user", "content": "My name is Ada."}],
            extra_headers={"X-Memchat-Session": "ada"},
        )
        assert first.choices[0].message.content == "Nice to meet you, Ada." and first.object == "chat.completion"
        fake.script(FakeReply.text("You are ", "Ada."))
        stream = client.chat.completions.create(
            model="fake/model-a",
            messages=[{"role": "user", "content": "What is my name?"}],
            extra_headers={"X-Memchat-Session": "ada"},
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You are Ada."
        assert chunks[-1].usage is not None and chunks[-1].choices == []
        # the client sent only the new message; memchat sent the whole conversation upstream
        upstream = [m["content"] for m in fake.chat_requests[-1].messages]
        assert upstream == ["Be brief.", "My name is Ada.", "Nice to meet you, Ada.", "What is my name?"]
        names = [m.id for m in client.models.list().data]
        assert "fake/model-a" in names
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="m", messages=[{"role": "assistant", "content": "x"}])
    finally:
        client.close()


def test_openai_clients_keep_the_class_of_an_upstream_error_and_get_openais_fields(
    serve: Any, fake: FakeServer
) -> None:
    import openai

    served, raw, _ = serve()
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused")  # the SDK's own retries on
    ask = {"messages": [{"role": "user", "content": "hi"}], "extra_headers": {"X-Memchat-Session": "e"}}
    try:
        missing = {"error": {"message": "The model `gpt-9` does not exist", "type": "invalid_request_error",
                             "code": "model_not_found"}}  # fmt: skip
        fake.script(FakeReply.error_response(404, missing))
        before = len(fake.chat_requests)
        with pytest.raises(openai.NotFoundError, match="does not exist"):
            client.chat.completions.create(model="gpt-9", **ask)
        assert len(fake.chat_requests) == before + 1  # one request: a 404 is not retried (it was a 502)

        fake.script(FakeReply.error_response(400, {"error": {"message": "temperature must be <= 2"}}))
        with pytest.raises(openai.BadRequestError, match="temperature"):
            client.chat.completions.create(model="fake/model-a", **ask)

        # memchat's own key refused upstream: memchat's configuration, an error no SDK retries
        fake.script(FakeReply.error_response(401, {"error": {"message": "Invalid API key"}}))
        before = len(fake.chat_requests)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="fake/model-a", **ask)
        assert caught.value.status_code == 424 and "memchat's API key" in caught.value.message
        assert len(fake.chat_requests) == before + 1
    finally:
        client.close()

    # OpenAI's schema: logprobs and refusal present (null) in the response and every chunk
    fake.script(FakeReply.text("Hello!"))
    body = raw.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}).json()
    choice = body["choices"][0]
    assert choice["logprobs"] is None and choice["message"]["refusal"] is None and "logprobs" in choice
    fake.script(FakeReply.text("Hel", "lo"))
    stream = raw.post(
        "/v1/chat/completions", json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).text
    chunks = [json.loads(f[6:]) for f in stream.split("\n\n") if f.startswith("data: {")]
    assert chunks and all("logprobs" in c["choices"][0] and c["choices"][0]["logprobs"] is None for c in chunks)
    # a stream that fails once begun ends with an error event in OpenAI's shape…
    fake.script(FakeReply.stream_error("boom", after=1))
    failed = raw.post(
        "/v1/chat/completions", json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).text
    error = next(json.loads(f[6:]) for f in failed.split("\n\n") if f.startswith('data: {"error"'))
    assert set(error["error"]) == {"message", "type", "param", "code"} and error["error"]["param"] is None
    # …one refused before its first word is answered as an unstreamed one: its status, no stream
    fake.script(FakeReply.error_response(500, {"error": {"message": "boom"}}))
    refused = raw.post(
        "/v1/chat/completions", json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert refused.status_code == 502 and refused.headers["content-type"].startswith("application/json")
    assert set(refused.json()["error"]) == {"message", "type", "param", "code"}


def test_an_openai_clients_parameters_reach_the_upstream_and_its_finish_and_usage_come_back(
    serve: Any, fake: FakeServer
) -> None:
    import openai

    served, raw, _ = serve()
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    session = {"X-Memchat-Session": "params"}
    try:
        fake.script(FakeReply.text("one two", finish_reason="length", omit_usage=True))
        reply = client.chat.completions.with_raw_response.create(
            model="fake/model-a",
            messages=[{"role": "user", "content": "Count."}],
            extra_headers=session,
            max_completion_tokens=2,
            temperature=0.3,
            top_p=0.9,
            stop=["END"],
            seed=7,
            presence_penalty=0.5,
            frequency_penalty=0.25,
            response_format={"type": "json_object"},
            logit_bias={"50256": -100},
        )
        sent = fake.chat_requests[-1].body
        assert {k: sent[k] for k in ("max_tokens", "temperature", "top_p", "stop", "seed")} == {
            "max_tokens": 2, "temperature": 0.3, "top_p": 0.9, "stop": ["END"], "seed": 7
        }  # fmt: skip
        assert sent["presence_penalty"] == 0.5 and sent["frequency_penalty"] == 0.25
        assert sent["response_format"] == {"type": "json_object"} and sent["logit_bias"] == {"50256": -100}
        completion = reply.parse()
        assert completion.choices[0].finish_reason == "length"  # the upstream's, not always "stop"
        usage = completion.usage
        assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0  # never zeros
        assert reply.headers["x-memchat-usage"] == "estimated"

        fake.script(FakeReply.text("a", "b", finish_reason="length"))
        stream = client.chat.completions.create(
            model="fake/model-a", messages=[{"role": "user", "content": "More."}], extra_headers=session,
            max_tokens=2, stream=True,
        )  # fmt: skip
        finishes = [c.choices[0].finish_reason for c in stream if c.choices and c.choices[0].finish_reason]
        assert finishes == ["length"] and fake.chat_requests[-1].body["max_tokens"] == 2

        before = len(fake.chat_requests)
        with pytest.raises(openai.BadRequestError, match="n > 1"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], n=2)
        with pytest.raises(openai.BadRequestError, match="temperature"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], temperature=7)
        assert len(fake.chat_requests) == before  # refused before any call
    finally:
        client.close()


def test_a_stateless_client_that_resends_the_conversation_keeps_one_session_with_its_memory(
    serve: Any, fake: FakeServer
) -> None:
    import openai

    served, raw, agent = serve()
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    history: list[dict[str, str]] = [{"role": "system", "content": "You are terse."}]
    used: list[str] = []
    try:
        for question, answer in (("My name is Ada.", "Hi Ada."), ("I live in Lyon.", "Noted."), ("Who am I?", "Ada.")):
            history.append({"role": "user", "content": question})
            fake.script(FakeReply.text(answer))
            reply = client.chat.completions.with_raw_response.create(model="fake/model-a", messages=history, user="u1")
            used.append(reply.headers["x-memchat-session"])
            history.append({"role": "assistant", "content": reply.parse().choices[0].message.content or ""})
        assert len(set(used)) == 1  # one session for the conversation, found by what it says
        stored = [m.content for m in agent.store.messages(used[0])]
        assert stored == ["My name is Ada.", "Hi Ada.", "I live in Lyon.", "Noted.", "Who am I?", "Ada."]
        upstream = [m["content"] for m in fake.chat_requests[-1].messages]
        assert upstream[0] == "You are terse." and "My name is Ada." in upstream  # memchat's context

        # a conversation seen for the first time (a LangChain message list) becomes a session with its turns
        fake.script(FakeReply.text("Blue."))
        seen = client.chat.completions.with_raw_response.create(
            model="fake/model-a",
            messages=[
                {"role": "user", "content": "My favourite colour is blue."},
                {"role": "assistant", "content": "Lovely."},
                {"role": "user", "content": "What is my favourite colour?"},
            ],
            user="u1",  # the same end user: a label, not the conversation
        )
        other = seen.headers["x-memchat-session"]
        assert other != used[0]
        assert [m.content for m in agent.store.messages(other)][:2] == ["My favourite colour is blue.", "Lovely."]
        # an edited history does not continue the original: it branches into a session of its own
        edited = [*history[:2], {"role": "assistant", "content": "Hello, Ada!"}, {"role": "user", "content": "Hm?"}]
        fake.script(FakeReply.text("Yes."))
        branch = client.chat.completions.with_raw_response.create(model="fake/model-a", messages=edited)
        assert branch.headers["x-memchat-session"] not in (used[0], other)
        assert len(agent.store.messages(used[0])) == 6  # the original is untouched
    finally:
        client.close()


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.mark.parametrize("stream", [False, True])
def test_a_clients_own_tools_round_trip_through_one_stored_turn(serve: Any, fake: FakeServer, stream: bool) -> None:
    import openai

    served, raw, agent = serve()
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    history: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    try:
        call = {"id": "call_w1", "name": "get_weather", "arguments": '{"city": "Paris"}'}
        fake.script(FakeReply.calls(call))
        asked = client.chat.completions.with_raw_response.create(
            model="fake/model-a", messages=history, tools=[WEATHER_TOOL], tool_choice="auto", stream=stream
        )  # type: ignore[call-overload]
        session = asked.headers["x-memchat-session"]
        if stream:
            chunks = list(asked.parse())
            calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
            assert [(t.id, t.function.name, t.function.arguments) for t in calls] == [
                ("call_w1", "get_weather", '{"city": "Paris"}')
            ]
            assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
        else:
            choice = asked.parse().choices[0]
            assert choice.finish_reason == "tool_calls" and choice.message.content is None
            calls = choice.message.tool_calls or []
            assert [(t.id, t.function.name, t.function.arguments) for t in calls] == [
                ("call_w1", "get_weather", '{"city": "Paris"}')
            ]
        sent = fake.chat_requests[-1].body
        assert sent["tools"] == [WEATHER_TOOL] and sent["tool_choice"] == "auto"  # the client's replace memchat's
        # the client runs its tool and sends the result with the whole conversation (no session named)
        history += [
            {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_w1", "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }]},
            {"role": "tool", "tool_call_id": "call_w1", "content": '{"celsius": 18}'},
        ]  # fmt: skip
        fake.script(FakeReply.text("It is 18 °C in Paris."))
        answered = client.chat.completions.with_raw_response.create(
            model="fake/model-a", messages=history, tools=[WEATHER_TOOL], stream=stream
        )  # type: ignore[call-overload]
        assert answered.headers["x-memchat-session"] == session  # the same turn goes on
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in answered.parse() if c.choices)
        else:
            text = answered.parse().choices[0].message.content
        assert text == "It is 18 °C in Paris."
        upstream = fake.chat_requests[-1].messages
        assert [m["role"] for m in upstream] == ["system", "user", "assistant", "tool"]
        assert upstream[2]["tool_calls"][0]["id"] == "call_w1" and upstream[3]["tool_call_id"] == "call_w1"
        stored = agent.store.messages(session)
        assert [(m.role.value, m.content) for m in stored] == [
            ("user", "What is the weather in Paris?"), ("assistant", ""), ("tool", '{"celsius": 18}'),
            ("assistant", "It is 18 °C in Paris."),
        ]  # fmt: skip
        assert stored[1].tool_calls and stored[1].tool_calls[0]["id"] == "call_w1"
        # the next question of the same conversation finds the session, tool round and all
        history += [{"role": "assistant", "content": text}, {"role": "user", "content": "And tomorrow?"}]
        fake.script(FakeReply.text("Rain."))
        later = client.chat.completions.with_raw_response.create(model="fake/model-a", messages=history)
        assert later.headers["x-memchat-session"] == session and len(agent.store.messages(session)) == 6
        # results that answer no waiting call are refused, with nothing stored
        with pytest.raises(openai.BadRequestError, match="tool"):
            client.chat.completions.create(
                model="fake/model-a", messages=[{"role": "tool", "tool_call_id": "x", "content": "1"}],
                extra_headers={"X-Memchat-Session": session},
            )  # fmt: skip
        assert len(agent.store.messages(session)) == 6
    finally:
        client.close()


def test_a_failed_v1_turn_leaves_no_session_behind(serve: Any, fake: FakeServer) -> None:
    _, raw, agent = serve()
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for stream in (False, True):
        fake.script(FakeReply.error_response(500, {"error": {"message": "overloaded"}}))
        raw.post("/v1/chat/completions", json={**body, "stream": stream})
        fake.script(FakeReply.error_response(500, {"error": {"message": "overloaded"}}))
        raw.post("/v1/chat/completions", json={**body, "stream": stream, "metadata": {"session": "named"}})
    assert agent.store.list_sessions() == []


# -- the page -------------------------------------------------------------------------------------


def test_the_page_and_its_files_are_served_without_inline_script(serve: Any) -> None:
    _, client, _ = serve()
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.text and "onclick" not in page.text and "http" not in page.text.split("<body>")[1]
    for name in ("app.js", "markdown.js", "app.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.text
    assert client.get("/static/../server/app.py").status_code == 404


def test_pins_and_images_through_the_api(serve: Any, fake: FakeServer, tmp_path: Path) -> None:
    from imageserver import ImageServer, Task
    from memchat.domain import ImageRecord
    from memchat.images.modelscope_async import ModelScopeImages

    _, client, agent = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.text("noted"))
    client.post(f"/api/sessions/{sid}/turns", json={"text": "my cat is Mimi"})
    first = client.get(f"/api/sessions/{sid}/messages").json()["messages"][0]["id"]
    assert client.post(f"/api/sessions/{sid}/pins", json={"message_id": first}).json() == {"pins": [first]}
    assert client.post(f"/api/sessions/{sid}/pins", json={"message_id": first, "pinned": False}).json() == {"pins": []}
    assert client.post(f"/api/sessions/{sid}/pins", json={"message_id": 999}).status_code == 400
    refused = client.post(f"/api/sessions/{sid}/images", json={"prompt": "a cat"})
    assert refused.status_code == 400 and "no image provider" in refused.json()["error"]["message"]
    images = ImageServer().start()
    try:
        images.script(Task(polls=0))
        agent.images = ModelScopeImages(images.url, api_key="ms-k", poll_initial=0.01)
        agent.images_dir = tmp_path / "images"
        made = client.post(f"/api/sessions/{sid}/images", json={"prompt": "a cat", "size": "512x512"})
        assert made.status_code == 201, made.text
        (image,) = made.json()["images"]
        png = client.get(image["url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
        assert client.get(f"/api/sessions/{sid}/messages").json()["images"][0]["url"] == image["url"]
        # a record pointing outside the images directory is never served
        (outside,) = agent.store.add_images(sid, [ImageRecord("x", "/etc/passwd", "modelscope", "m")])
        assert client.get(f"/api/images/{outside.id}").status_code == 404
        assert client.get("/api/images/99999").status_code == 404
        images.script(Task(fail=True, polls=0))
        failed = client.post(f"/api/sessions/{sid}/images", json={"prompt": "a cat"})
        assert failed.status_code == 502 and "inappropriate" in failed.json()["error"]["message"]
        assert client.post(f"/api/sessions/{sid}/images", json={"prompt": "x", "size": "huge"}).status_code == 400
        agent.images.close()
    finally:
        images.close()


def test_every_lookup_is_scoped_to_the_user_who_asks(fake: FakeServer, tmp_path: Path) -> None:
    store = open_store(tmp_path / "accounts.db")
    _, ann_token = store.add_user("ann")
    _, bob_token = store.add_user("bob")
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(store, provider, persona="Be brief.", date_line=False)
    served = Served(create_app(agent))
    ann = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {ann_token}"}, timeout=10)
    bob = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {bob_token}"}, timeout=10)
    anonymous = httpx.Client(base_url=served.url, timeout=10)
    try:
        sid = ann.post("/api/sessions", json={"name": "diary"}).json()["id"]
        fake.script(FakeReply.text("secret noted"))
        ann.post(f"/api/sessions/{sid}/turns", json={"text": "my secret is 42"})
        assert [s["name"] for s in ann.get("/api/sessions").json()["sessions"]] == ["diary"]
        assert bob.get("/api/sessions").json()["sessions"] == []
        assert bob.post("/api/sessions", json={"name": "diary"}).status_code == 201  # names are per user
        routes = [
            ("GET", f"/api/sessions/{sid}", None),
            ("GET", f"/api/sessions/{sid}/messages", None),
            ("PATCH", f"/api/sessions/{sid}", {"name": "mine"}),
            ("POST", f"/api/sessions/{sid}/fork", {}),
            ("POST", f"/api/sessions/{sid}/undo", {}),
            ("GET", f"/api/sessions/{sid}/export", None),
            ("GET", f"/api/sessions/{sid}/context", None),
            ("POST", f"/api/sessions/{sid}/turns", {"text": "hi"}),
            ("POST", f"/api/sessions/{sid}/retry", {}),
            ("GET", f"/api/sessions/{sid}/stream", None),
            ("POST", f"/api/sessions/{sid}/stop", {}),
            ("POST", f"/api/sessions/{sid}/pins", {"message_id": 1}),
            ("POST", f"/api/sessions/{sid}/edit", {"message_id": 1, "text": "x"}),
            ("GET", f"/api/sessions/{sid}/branches", None),
            ("POST", f"/api/sessions/{sid}/images", {"prompt": "x"}),
            ("DELETE", f"/api/sessions/{sid}", None),
        ]
        for method, path, body in routes:
            other = bob.request(method, path, json=body)
            assert other.status_code == 404, (method, path, other.status_code)
            nobody = anonymous.request(method, path, json=body)
            assert nobody.status_code == 401, (method, path, nobody.status_code)
        assert anonymous.get("/api/sessions").status_code == 401 and anonymous.get("/api/health").status_code == 200
        # bob reaching ann's session through the OpenAI endpoint by name gets his own session
        fake.script(FakeReply.text("hello bob"))
        bob.post(
            "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "what is my secret?"}]},
            headers={"X-Memchat-Session": "diary"},
        )
        assert "my secret is 42" not in json.dumps(fake.chat_requests[-1].messages)
        assert [m["content"] for m in ann.get(f"/api/sessions/{sid}/messages").json()["messages"]] == [
            "my secret is 42",
            "secret noted",
        ]
        # the page signs in by trading the token for an HttpOnly cookie
        assert anonymous.post("/api/login", json={"token": "nope"}).status_code == 401
        login = anonymous.post("/api/login", json={"token": ann_token})
        assert login.status_code == 200 and "HttpOnly" in login.headers["set-cookie"]
        assert [s["name"] for s in anonymous.get("/api/sessions").json()["sessions"]] == ["diary"]
    finally:
        for c in (ann, bob, anonymous):
            c.close()
        served.close()
        agent.close()


def _said(client: httpx.Client, sid: int) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in client.get(f"/api/sessions/{sid}/messages").json()["messages"]]


def test_editing_a_message_in_place_keeps_the_original_as_a_version(serve: Any, fake: FakeServer) -> None:
    # issue 17: an edit used to fork the session into a new sidebar entry ("plans · edit 3")
    _, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "plans"}).json()["id"]
    for text in ("Let's go to Rome.", "What should we see?"):
        fake.script(FakeReply.text(f"re: {text}"))
        client.post(f"/api/sessions/{sid}/turns", json={"text": text})
    original = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
    second_question = original[2]
    fake.script(FakeReply.text("Try the canals."))
    response = client.post(
        f"/api/sessions/{sid}/edit", json={"message_id": second_question["id"], "text": "And in Venice?"}
    )
    assert events(response)[-1][2]["status"] == "complete"
    assert [s["name"] for s in client.get("/api/sessions").json()["sessions"]] == ["plans"]
    edited = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in edited] == [
        ("user", "Let's go to Rome."),
        ("assistant", "re: Let's go to Rome."),
        ("user", "And in Venice?"),
        ("assistant", "Try the canals."),
    ]
    # the model was asked without the old question and its answer
    assert "What should we see?" not in json.dumps(fake.chat_requests[-1].messages)
    mark = edited[2]["versions"]
    assert mark == {"number": 2, "count": 2, "ids": [second_question["id"], edited[2]["id"]]}
    listed = client.get(f"/api/sessions/{sid}/messages/{edited[2]['id']}/versions").json()
    assert [(v["number"], v["shown"], [m["content"] for m in v["messages"]]) for v in listed["versions"]] == [
        (1, False, ["What should we see?", "re: What should we see?"]),
        (2, True, ["And in Venice?", "Try the canals."]),
    ]
    chosen = client.post(f"/api/sessions/{sid}/versions", json={"message_id": second_question["id"]})
    assert chosen.json() == {"shown": second_question["id"], "changed": True}
    back = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
    assert [(m["id"], m["content"]) for m in back] == [(m["id"], m["content"]) for m in original]  # ids kept
    wrong = client.post(f"/api/sessions/{sid}/edit", json={"message_id": original[1]["id"], "text": "x"})
    assert wrong.status_code == 400  # an assistant message is not edited this way
    assert client.get(f"/api/sessions/{sid}/messages/{2**40}/versions").status_code == 404
    assert client.post(f"/api/sessions/{sid}/versions", json={"message_id": 2**40}).status_code == 404


def test_regenerate_keeps_every_reply_and_the_next_turn_continues_from_the_one_shown(
    serve: Any, fake: FakeServer
) -> None:
    _, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "poem"}).json()["id"]
    fake.script(FakeReply.text("Roses are red."))
    client.post(f"/api/sessions/{sid}/turns", json={"text": "A short poem?"})
    for reply in ("Violets are blue.", "Sugar is sweet."):
        fake.script(FakeReply.text(reply))
        assert events(client.post(f"/api/sessions/{sid}/retry", json={"seed": 7}))[-1][2]["status"] == "complete"
    assert fake.chat_requests[-1].body["seed"] == 7  # the seed asked for goes to the model
    shown = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
    assert [m["content"] for m in shown] == ["A short poem?", "Sugar is sweet."]
    assert shown[1]["versions"]["number"] == 3 and shown[1]["versions"]["count"] == 3
    first = shown[1]["versions"]["ids"][0]
    assert client.post(f"/api/sessions/{sid}/versions", json={"message_id": first}).json()["changed"] is True
    fake.script(FakeReply.text("Thanks."))
    client.post(f"/api/sessions/{sid}/turns", json={"text": "Another line?"})
    sent = [(m["role"], m["content"]) for m in fake.chat_requests[-1].messages if m["role"] != "system"]
    assert sent == [("user", "A short poem?"), ("assistant", "Roses are red."), ("user", "Another line?")]
    # the versions stay where they are: the first reply is version 1 of 3
    assert client.get(f"/api/sessions/{sid}/messages").json()["messages"][1]["versions"]["number"] == 1


def test_a_turn_stopped_before_its_first_word_keeps_the_question(serve: Any, fake: FakeServer) -> None:
    # issue 17: stopping before the first token threw the user's message away (done had message_id null)
    _, client, _ = serve()
    sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
    fake.script(FakeReply.silent(30), FakeReply.text("It is 42."))
    done: list[dict[str, Any]] = []

    def read() -> None:
        with httpx.Client(base_url=client.base_url, timeout=30) as other:
            done.extend(e[2] for e in events(other.post(f"/api/sessions/{sid}/turns", json={"text": "The answer?"})))

    reader = threading.Thread(target=read)
    reader.start()
    while not fake.chat_requests:  # the model was asked and says nothing yet
        threading.Event().wait(0.02)
    assert client.post(f"/api/sessions/{sid}/stop", json={}).json() == {"stopped": True}
    reader.join(10)
    stored = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in stored] == [("user", "The answer?")]
    assert done[-1]["status"] == "stopped" and done[-1]["message_id"] is None
    assert done[-1]["user_message_id"] == stored[0]["id"]
    # one click: Regenerate answers the question kept
    again = events(client.post(f"/api/sessions/{sid}/retry", json={}))
    assert again[-1][2]["status"] == "complete" and again[-1][2]["user_message_id"] == stored[0]["id"]
    assert _said(client, sid) == [("user", "The answer?"), ("assistant", "It is 42.")]


def test_an_image_the_model_makes_is_announced_in_the_stream(serve: Any, fake: FakeServer, tmp_path: Path) -> None:
    from imageserver import ImageServer, Task
    from memchat.images.modelscope_async import ModelScopeImages

    _, client, agent = serve()
    images = ImageServer().start()
    try:
        images.script(Task(polls=0))
        agent.images = ModelScopeImages(images.url, api_key="ms-k", poll_initial=0.01)
        agent.images_dir = tmp_path / "images"
        sid = client.post("/api/sessions", json={"name": "art"}).json()["id"]
        fake.script(FakeReply.calls(("generate_image", '{"prompt": "a fox"}')), FakeReply.text("Here."))
        got = events(client.post(f"/api/sessions/{sid}/turns", json={"text": "draw a fox"}))
        kinds = [k for _, k, _ in got]
        assert kinds.index("tool_result") < kinds.index("image") < kinds.index("done")
        image = next(d for _, k, d in got if k == "image")
        assert image["prompt"] == "a fox" and client.get(image["url"]).content[:4] == b"\x89PNG"
        agent.images.close()
    finally:
        images.close()


def test_serving_beyond_loopback_needs_a_token_or_accounts(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MEMCHAT_PROVIDER": "compat", "MEMCHAT_BASE_URL": "http://127.0.0.1:9/v1"}
    proc = subprocess.run(
        [sys.executable, "-m", "memchat.cli.main", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "set MEMCHAT_SERVER_TOKEN" in proc.stderr and "memchat users add" in proc.stderr


def test_a_redis_that_is_down_is_a_clear_503_and_the_rest_keeps_serving(fake: FakeServer, tmp_path: Path) -> None:
    pytest.importorskip("redis")
    import socket

    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "r.db"), provider, date_line=False)
    served = Served(create_app(agent, redis_url=dead))
    try:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            assert client.get("/api/health").status_code == 200  # the worker started anyway
            sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
            turn = client.post(f"/api/sessions/{sid}/turns", json={"text": "hi"})
            assert turn.status_code == 503
            assert "Redis is not reachable" in turn.json()["error"]["message"]
            assert client.get(f"/api/sessions/{sid}/messages").json()["messages"] == []  # nothing half-written
            assert fake.chat_requests == []
    finally:
        served.close()
        agent.close()


def test_the_warm_up_reaches_every_route_so_the_first_turns_do_not_set_them_up() -> None:
    """The framework sets a route up on the first request that reaches it (~60 ms of the event
    loop, paid under the first turns); the server does it as it starts, for every route: the
    warm-up finds them all, whatever the framework's nesting."""
    from memchat.server.app import _route_paths, build_api
    from memchat.testing import ScriptedProvider

    app = build_api(Agent(open_store(":memory:"), ScriptedProvider()))
    paths = set(_route_paths(app.routes))
    assert {"/api/sessions/{session_id}/turns", "/api/sessions", "/v1/chat/completions", "/api/health"} <= paths
    assert paths >= {p for p in app.openapi()["paths"]}  # every route the API documents


def test_a_turn_s_event_stream_ends_when_its_client_goes_away() -> None:
    """A reader whose client left stops at its next event (its wait on the run ends: nothing
    is left waiting); a reader whose client stays gets every chunk and the end."""
    import asyncio

    from memchat.server.turns_api import EventStream

    async def play(leave_after: int | None) -> tuple[list[Any], list[bool]]:
        closed: list[bool] = []

        async def body() -> Any:
            try:
                for k in range(1000):
                    yield f"id: {k}\n\n".encode()
                    await asyncio.sleep(0)
            finally:
                closed.append(True)

        sent: list[Any] = []
        left = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)
            if leave_after is not None and len(sent) == leave_after:
                left.set()

        await EventStream(body(), media_type="text/event-stream")({"type": "http"}, receive, send)
        return sent, closed

    sent, closed = asyncio.run(play(leave_after=3))
    assert closed == [True] and len(sent) <= 5 and all(m.get("more_body", True) for m in sent)
    sent, closed = asyncio.run(play(leave_after=None))
    assert len(sent) == 1002 and sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
