"""Long-term memories over HTTP (issue 13): the ``/api/memories`` routes under uvicorn with the
loopback model server — add, list, search, show with history, edit (a new version), forget and
restore, JSONL export and all-or-nothing import; every route scoped to the account that asks;
a memory reaching the context of a turn in a new session (and named in its ``done`` event and
``/v1``'s headers); an incognito session getting none."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
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


#: learning="explicit" everywhere: automatic learning asks the model after each turn, in the
#: background, and would take the replies scripted for the next turn
@pytest.fixture
def serve(fake: FakeServer, tmp_path: Path) -> Iterator[Callable[[], tuple[httpx.Client, Agent]]]:
    made: list[tuple[Served, httpx.Client, Agent]] = []

    def start() -> tuple[httpx.Client, Agent]:
        provider = OpenAICompatible(fake.url, api_key="sk-upstream", model="fake/model-a", max_retries=0)
        agent = Agent(
            open_store(tmp_path / "server.db"), provider, persona="Be brief.", date_line=False, learning="explicit"
        )
        served = Served(create_app(agent))
        client = httpx.Client(base_url=served.url, timeout=10)
        made.append((served, client, agent))
        return client, agent

    yield start
    for served, client, agent in made:
        client.close()
        served.close()
        agent.close()


def events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


def system_text(fake: FakeServer) -> str:
    return "\n".join(m["content"] for m in fake.chat_requests[-1].messages if m["role"] == "system")


def test_add_list_search_edit_forget_restore_and_history(serve: Any) -> None:
    client, _ = serve()
    assert client.get("/api/memories").json() == {"memories": [], "total": 0}
    city = client.post("/api/memories", json={"text": "My home city is Lisbon"})
    assert city.status_code == 201
    made = city.json()
    assert (made["content"], made["kind"], made["origin"], made["active"]) == (
        "My home city is Lisbon",
        "fact",
        "explicit",
        True,
    )
    rule = client.post("/api/memories", json={"text": "Always answer in metric units"}).json()
    assert rule["kind"] == "instruction"
    trip = client.post("/api/memories", json={"text": "Flew to Tokyo", "kind": "event", "date": "2026-11-20"}).json()
    assert (trip["kind"], trip["event_date"]) == ("event", "2026-11-20")
    listed = client.get("/api/memories").json()
    assert listed["total"] == 3 and {m["id"] for m in listed["memories"]} == {made["id"], rule["id"], trip["id"]}
    assert [m["id"] for m in client.get("/api/memories", params={"kind": "instruction"}).json()["memories"]] == [
        rule["id"]
    ]
    found = client.get("/api/memories", params={"q": "Lisbon"}).json()["memories"]
    assert [m["id"] for m in found] == [made["id"]]
    assert client.get("/api/memories", params={"q": "Lisbon", "kind": "event"}).json()["memories"] == []

    # an edit is a new version; the old one is kept, superseded, and the history shows both
    edited = client.patch(f"/api/memories/{made['id']}", json={"text": "My home city is Porto"})
    assert edited.status_code == 200
    new = edited.json()
    assert new["id"] != made["id"] and new["supersedes"] == made["id"] and new["content"] == "My home city is Porto"
    old = client.get(f"/api/memories/{made['id']}").json()
    assert (old["active"], old["end_reason"], old["superseded_by"]) == (False, "superseded", new["id"])
    assert [v["content"] for v in old["history"]] == ["My home city is Lisbon", "My home city is Porto"]
    assert client.get(f"/api/memories/{new['id']}").json()["history"] == old["history"]
    served = {m["content"] for m in client.get("/api/memories").json()["memories"]}
    assert "My home city is Lisbon" not in served and "My home city is Porto" in served
    assert len(client.get("/api/memories", params={"all": "true"}).json()["memories"]) == 4
    # an ended memory cannot be edited or forgotten again: 409, restore it first
    stale = client.patch(f"/api/memories/{made['id']}", json={"text": "x"})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "memory_ended"

    # forget is kept (ended) and undone by restore
    forgot = client.delete(f"/api/memories/{rule['id']}")
    assert forgot.status_code == 200 and forgot.json()["end_reason"] == "forgotten" and not forgot.json()["active"]
    assert rule["id"] not in {m["id"] for m in client.get("/api/memories").json()["memories"]}
    assert client.delete(f"/api/memories/{rule['id']}").status_code == 409
    back = client.post(f"/api/memories/{rule['id']}/restore", json={})
    assert back.status_code == 200 and back.json()["active"] is True
    assert rule["id"] in {m["id"] for m in client.get("/api/memories").json()["memories"]}
    # restoring the older city brings Lisbon back and ends Porto
    client.post(f"/api/memories/{made['id']}/restore", json={})
    served = {m["content"] for m in client.get("/api/memories").json()["memories"]}
    assert "My home city is Lisbon" in served and "My home city is Porto" not in served

    # errors: JSON, the usual shape
    for response, status in [
        (client.get("/api/memories/999999"), 404),
        (client.patch("/api/memories/999999", json={"text": "x"}), 404),
        (client.delete("/api/memories/999999"), 404),
        (client.post("/api/memories/999999/restore", json={}), 404),
        (client.post("/api/memories", json={"text": "   "}), 400),
        (client.post("/api/memories", json={"text": "x" * 2_500}), 400),
        (client.post("/api/memories", json={"text": "x", "kind": "gossip"}), 422),
        (client.post("/api/memories", json={"text": "x", "date": "someday"}), 422),
        (client.get("/api/memories/abc"), 422),
    ]:
        assert response.status_code == status, (response.request.url, response.text)
        assert set(response.json()["error"]) == {"code", "message"}


def test_export_and_import_round_trip_all_or_nothing(serve: Any, tmp_path: Path) -> None:
    client, _ = serve()
    first = client.post("/api/memories", json={"text": "My dog is called Rex"}).json()
    client.patch(f"/api/memories/{first['id']}", json={"text": "My dog is called Max"})
    client.post("/api/memories", json={"text": "我喜欢喝乌龙茶"})
    forgotten = client.post("/api/memories", json={"text": "I play chess on Sundays"}).json()
    client.delete(f"/api/memories/{forgotten['id']}")
    export = client.get("/api/memories/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in export.headers["content-disposition"]
    lines = export.text.splitlines()
    assert len(lines) == 4 and all(json.loads(line)["content"] for line in lines)
    assert "我喜欢喝乌龙茶" in export.text  # UTF-8, not escaped

    # into another database: JSONL as it was exported
    provider = OpenAICompatible("http://127.0.0.1:9", api_key="k", model="m", max_retries=0)
    other = Agent(open_store(tmp_path / "other.db"), provider, date_line=False, learning="explicit")
    served = Served(create_app(other))
    try:
        with httpx.Client(base_url=served.url, timeout=10) as c:
            done = c.post(
                "/api/memories/import", content=export.text.encode(), headers={"Content-Type": "application/x-ndjson"}
            )
            assert done.status_code == 201 and done.json()["imported"] == 4
            active = {m["content"] for m in c.get("/api/memories").json()["memories"]}
            assert active == {"My dog is called Max", "我喜欢喝乌龙茶"}
            every = c.get("/api/memories", params={"all": "true"}).json()["memories"]
            assert len(every) == 4
            rex = next(m for m in every if m["content"] == "My dog is called Rex")
            assert rex["end_reason"] == "superseded"
            history = c.get(f"/api/memories/{rex['id']}").json()["history"]
            assert [v["content"] for v in history] == ["My dog is called Rex", "My dog is called Max"]
            # a JSON list works too
            listed = c.post("/api/memories/import", json=[{"content": "I am left-handed", "kind": "fact"}])
            assert listed.status_code == 201 and listed.json()["imported"] == 1
            # one bad record refuses the batch, naming it; nothing is stored
            before = c.get("/api/memories", params={"all": "true"}).json()["total"]
            bad = [{"content": "fine"}, {"content": "also fine"}, {"content": "odd", "kind": "gossip"}]
            refused = c.post("/api/memories/import", json=bad)
            assert refused.status_code == 400 and "memory 3" in refused.json()["error"]["message"]
            broken = c.post(
                "/api/memories/import",
                content=b'{"content": "a"}\n{"content": \n',
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert broken.status_code == 400 and "line 2" in broken.json()["error"]["message"]
            empty = c.post("/api/memories/import", content=b"  ", headers={"Content-Type": "application/x-ndjson"})
            assert empty.status_code == 400
            assert c.get("/api/memories", params={"all": "true"}).json()["total"] == before
    finally:
        served.close()
        other.close()


def test_each_account_sees_only_its_own_memories(fake: FakeServer, tmp_path: Path) -> None:
    store = open_store(tmp_path / "accounts.db")
    _, ann_token = store.add_user("ann")
    _, bob_token = store.add_user("bob")
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(store, provider, persona="Be brief.", date_line=False, learning="explicit")
    served = Served(create_app(agent))
    ann = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {ann_token}"}, timeout=10)
    bob = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {bob_token}"}, timeout=10)
    anonymous = httpx.Client(base_url=served.url, timeout=10)
    try:
        secret = ann.post("/api/memories", json={"text": "My bank PIN hint is the cat's birthday"}).json()
        mid = secret["id"]
        assert bob.get("/api/memories").json()["memories"] == []
        assert bob.get("/api/memories", params={"q": "PIN"}).json()["memories"] == []
        assert bob.get("/api/memories/export").text == ""
        routes = [
            ("GET", f"/api/memories/{mid}", None),
            ("PATCH", f"/api/memories/{mid}", {"text": "mine now"}),
            ("DELETE", f"/api/memories/{mid}", None),
            ("POST", f"/api/memories/{mid}/restore", {}),
        ]
        for method, path, body in routes:
            other = bob.request(method, path, json=body)
            assert other.status_code == 404, (method, path, other.status_code)
            assert other.json()["error"]["code"] == "memory_not_found"
        for method, path, body in [
            *routes,
            ("GET", "/api/memories", None),
            ("POST", "/api/memories", {"text": "x"}),
            ("GET", "/api/memories/export", None),
            ("POST", "/api/memories/import", [{"content": "x"}]),
        ]:
            assert anonymous.request(method, path, json=body).status_code == 401, (method, path)
        # bob's own memory with the same words stays his; ann's is untouched
        bob.post("/api/memories", json={"text": "My bank PIN hint is the dog's birthday"})
        assert [m["content"] for m in ann.get("/api/memories").json()["memories"]] == [secret["content"]]
        assert ann.get(f"/api/memories/{mid}").json()["active"] is True
        # and what bob's turns are sent holds nothing of ann's
        fake.script(FakeReply.text("hello"))
        sid = bob.post("/api/sessions", json={"name": "chat"}).json()["id"]
        bob.post(f"/api/sessions/{sid}/turns", json={"text": "what is my PIN hint?"})
        sent = json.dumps(fake.chat_requests[-1].messages)
        assert "dog's birthday" in sent and "cat's birthday" not in sent
    finally:
        for c in (ann, bob, anonymous):
            c.close()
        served.close()
        agent.close()


def test_a_memory_reaches_a_new_session_and_the_reply_says_so(serve: Any, fake: FakeServer) -> None:
    client, _ = serve()
    first = client.post("/api/sessions", json={"name": "first chat"}).json()["id"]
    # the model keeps what the user told it with the remember tool
    fake.script(
        FakeReply.calls(("remember", json.dumps({"content": "My name is Ada and I live in Lyon"}))),
        FakeReply.text("Nice to meet you, Ada."),
    )
    told = events(client.post(f"/api/sessions/{first}/turns", json={"text": "I'm Ada, I live in Lyon."}))
    assert [k for k, _ in told if k == "tool_call"] and told[-1][0] == "done"
    (made,) = client.get("/api/memories").json()["memories"]
    assert made["content"] == "My name is Ada and I live in Lyon"
    assert (made["session_id"], made["session"], made["session_exists"]) == (first, "first chat", True)

    second = client.post("/api/sessions", json={"name": "a new chat"}).json()["id"]
    fake.script(FakeReply.text("You are Ada."))
    got = events(client.post(f"/api/sessions/{second}/turns", json={"text": "What is my name?"}))
    assert "My name is Ada and I live in Lyon" in system_text(fake)
    kind, done = got[-1]
    assert kind == "done" and done["status"] == "complete"
    assert made["id"] in done["memories"] and isinstance(done["recalled"], int)
    # the context view shows it, with why
    view = client.get(f"/api/sessions/{second}/context", params={"text": "What is my name?"}).json()
    items = [i for s in view["sections"] for i in s["items"]]
    mine = [i for i in items if i["kind"] == "memory" and i["memory_id"] == made["id"]]
    assert mine and mine[0]["why"] and mine[0]["tokens"] > 0
    assert set(mine[0]) == {"kind", "text", "tokens", "score", "why", "memory_id", "session", "seq", "created"}

    # the source session gone, the memory stays (and says so)
    assert client.delete(f"/api/sessions/{first}").status_code == 204
    assert client.get(f"/api/memories/{made['id']}").json()["session_exists"] is False

    # /v1: the body is OpenAI's, the count rides in a header
    fake.script(FakeReply.text("Ada."))
    reply = client.post(
        "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "Who am I?"}]},
        headers={"X-Memchat-Session": "via v1"},
    )
    assert reply.status_code == 200 and int(reply.headers["X-Memchat-Memories"]) >= 1
    assert "X-Memchat-Recalled" in reply.headers
    assert set(reply.json()) == {"id", "object", "created", "model", "choices", "usage"}
    fake.script(FakeReply.text("A", "da."))
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "Who am I, again?"}]},
        headers={"X-Memchat-Session": "via v1"},
    ) as streamed:
        assert int(streamed.headers["X-Memchat-Memories"]) >= 1
        assert streamed.read().endswith(b"data: [DONE]\n\n")


def test_an_incognito_session_gets_no_memories(serve: Any, fake: FakeServer) -> None:
    client, _ = serve()
    client.post("/api/memories", json={"text": "My favourite colour is teal"})
    sid = client.post("/api/sessions", json={"name": "private"}).json()["id"]
    assert client.get(f"/api/sessions/{sid}").json()["incognito"] is False
    changed = client.patch(f"/api/sessions/{sid}", json={"incognito": True})
    assert changed.status_code == 200 and changed.json()["incognito"] is True
    assert client.get(f"/api/sessions/{sid}").json()["incognito"] is True
    assert next(s for s in client.get("/api/sessions").json()["sessions"] if s["id"] == sid)["incognito"] is True
    fake.script(FakeReply.text("I don't know."))
    got = events(client.post(f"/api/sessions/{sid}/turns", json={"text": "What is my favourite colour?"}))
    assert "teal" not in json.dumps(fake.chat_requests[-1].messages)
    assert got[-1][0] == "done" and got[-1][1]["memories"] == [] and got[-1][1]["recalled"] == 0
    # and back: the memory comes in again
    assert client.patch(f"/api/sessions/{sid}", json={"incognito": False}).json()["incognito"] is False
    fake.script(FakeReply.text("Teal."))
    got = events(client.post(f"/api/sessions/{sid}/turns", json={"text": "What is my favourite colour?"}))
    assert "teal" in system_text(fake) and len(got[-1][1]["memories"]) == 1


def test_the_schema_declares_the_memory_routes(serve: Any) -> None:
    client, _ = serve()
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path, methods in {
        "/api/memories": {"get", "post"},
        "/api/memories/{memory_id}": {"get", "patch", "delete"},
        "/api/memories/{memory_id}/restore": {"post"},
        "/api/memories/export": {"get"},
        "/api/memories/import": {"post"},
    }.items():
        assert methods <= set(paths[path]), path
    assert "MemoryOut" in schema["components"]["schemas"] and "MemoryDetail" in schema["components"]["schemas"]
    listed = paths["/api/memories"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed["$ref"].endswith("/MemoryList")
    assert "404" in paths["/api/memories/{memory_id}"]["get"]["responses"]
    assert "409" in paths["/api/memories/{memory_id}"]["patch"]["responses"]
    session_change = schema["components"]["schemas"]["SessionChange"]["properties"]
    assert "incognito" in session_change
