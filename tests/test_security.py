"""The security campaign (issue 8): every route of the app × {anonymous, a wrong token, another
user}; SSRF through the image URLs a provider returns; path traversal on every route that serves
files; a scan of everything memchat writes or answers for the keys and tokens it was given; and
how config files holding keys come to exist. The page's XSS corpus is in ``tests/test_xss.py``.

Everything runs against real loopback servers: the app under uvicorn, the model
(``fakeserver.py``), an image service (``imageserver.py``) and, for SSRF, small servers of
this file that return hostile image URLs and record whoever reaches them."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount, Route

import campaign
from fakeserver import FakeReply, FakeServer
from imageserver import ImageServer, Task, png
from memchat.agent import Agent
from memchat.factory import open_store
from memchat.images.modelscope_async import ModelScopeImages
from memchat.memories.service import to_record
from memchat.providers.openai_compat import OpenAICompatible
from memchat.serialization import export_jsonl
from memchat.server.app import create_app
from serving import Served

# recognisable fake secrets: any of them found where it should not be is a leak
PROVIDER_KEY = "sk-FAKEKEY-provider-7f3a9c51e2d04b68"
IMAGE_KEY = "ms-FAKEKEY-images-0c9d8e7f6a5b4c3d"
SERVER_TOKEN = "srv-FAKEKEY-token-5e4d3c2b1a09f8e7"

SECRET_TEXT = "ann's secret is 4242-ZEBRA"
SECRET_REPLY = "noted: 4242-ZEBRA"
SECRET_NAME = "ann-diary-ZEBRA"
#: ann's long-term memory ("my secret is …": a fact with a subject, so that another user's "my
#: secret is …" would supersede it if adding a memory looked past the owner)
SECRET_MEMORY = f"my secret is 4242-ZEBRA ({SECRET_TEXT})"
#: a memory of the server token's owner (the local user): a route that served the app's own
#: agent instead of the caller's would show it to bob
OWNER_MEMORY = "my locker code is 7777-OKAPI"


# -- a world with two accounts --------------------------------------------------------------------


@dataclass
class World:
    served: Served
    agent: Agent
    images: ImageServer
    tokens: dict[str, str]
    ids: dict[str, int]  # ann's session, her fork, her first message, her image, her memory; the owner's memory
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def client(self, who: str, headers: dict[str, str] | None = None) -> httpx.Client:
        if who not in self.clients:
            auth = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
            self.clients[who] = httpx.Client(base_url=self.served.url, headers=auth | (headers or {}), timeout=10)
        return self.clients[who]


@pytest.fixture(scope="module")
def image_server() -> Iterator[ImageServer]:
    server = ImageServer().start()
    yield server
    server.close()


@pytest.fixture
def world(fake: FakeServer, image_server: ImageServer, tmp_path: Path) -> Iterator[World]:
    image_server.reset()
    store = open_store(tmp_path / "accounts.db")
    _, ann = store.add_user("ann")
    _, bob = store.add_user("bob")
    provider = OpenAICompatible(fake.url, api_key=PROVIDER_KEY, model="fake/model-a", max_retries=0)
    agent = Agent(store, provider, persona="Be brief.", date_line=False)
    agent.images = ModelScopeImages(image_server.url, api_key=IMAGE_KEY, poll_initial=0.01, poll_max=0.02)
    agent.images_dir = tmp_path / "images"
    served = Served(create_app(agent, token=SERVER_TOKEN))
    tokens = {"ann": ann, "bob": bob, "wrong": "not-" + ann, "owner": SERVER_TOKEN}
    w = World(served, agent, image_server, tokens, {})
    a = w.client("ann")
    sid = a.post("/api/sessions", json={"name": SECRET_NAME, "persona": "ZEBRA persona"}).json()["id"]
    fake.script(FakeReply.text(SECRET_REPLY))
    assert a.post(f"/api/sessions/{sid}/turns", json={"text": SECRET_TEXT}).status_code == 200
    first = a.get(f"/api/sessions/{sid}/messages").json()["messages"][0]["id"]
    assert a.post(f"/api/sessions/{sid}/pins", json={"message_id": first}).status_code == 200
    fake.script(FakeReply.text("filed"))  # a file of hers, fetched by its hash
    filed = {"name": "zebra.txt", "data": base64.b64encode(b"ZEBRA file").decode()}
    assert a.post(f"/api/sessions/{sid}/turns", json={"text": "keep", "attachments": [filed]}).status_code == 200
    image_server.script(Task(polls=0))
    made = a.post(f"/api/sessions/{sid}/images", json={"prompt": "a ZEBRA"})
    assert made.status_code == 201, made.text
    fork = a.post(f"/api/sessions/{sid}/fork", json={"name": SECRET_NAME + " fork"}).json()["id"]
    # after her turn: every later model call is bob's, so a memory of ann's recalled into bob's
    # context shows up in the model's requests (checked in the route test)
    memory = a.post("/api/memories", json={"text": SECRET_MEMORY})
    assert memory.status_code == 201 and memory.json()["content"] == SECRET_MEMORY, memory.text
    owners = w.client("owner").post("/api/memories", json={"text": OWNER_MEMORY})
    assert owners.status_code == 201, owners.text
    w.ids = {
        "session": sid,
        "fork": fork,
        "message": first,
        "image": made.json()["images"][0]["id"],
        "memory": memory.json()["id"],
        "owner_memory": owners.json()["id"],
        "attachment": hashlib.sha256(b"ZEBRA file").hexdigest(),  # type: ignore[dict-item]
    }
    yield w
    for c in w.clients.values():
        c.close()
    served.close()
    agent.images.close()
    agent.close()


def snapshot(w: World) -> str:
    """Everything of ann's, as her own scope of the store sees it (and her image's bytes, and her
    memories, ended ones too), and the memories of the server token's owner (the local user)."""
    ann = w.agent.store.for_owner(w.agent.store.user_for_token(w.tokens["ann"]))
    out: list[Any] = [[to_record(m) for m in scope.memories(include_ended=True)] for scope in (ann, w.agent.store)]
    for s in ann.list_sessions():
        out.append([s.id, s.name, s.persona, s.model, s.memory, s.parent_id, s.message_count])
        out.append([[m.id, m.role.value, m.content, m.status.value] for m in ann.messages(s.id)])
        out.append([m.id for m in ann.pins(s.id)])
        out.append(
            [[im.id, im.path, hashlib.sha256(Path(im.path).read_bytes()).hexdigest()] for im in ann.images(s.id)]
        )
        out.append(export_jsonl(ann, s.id))
    return json.dumps(out, ensure_ascii=False)


# -- the route table × who asks -------------------------------------------------------------------

#: reachable without a token, and why
PUBLIC = {
    ("GET", "/api/health"): "liveness",
    ("POST", "/api/login"): "signing in (a wrong token is its own 401)",
    ("GET", "/"): "the page (it holds no data and grants no cookie)",
    ("MOUNT", "/static"): "the page's script and style",
    ("GET", "/openapi.json"): "the API's schema (no data)",
}
#: one sample request per route: (method, route path) → (url, json body, headers); {sid}, {fork},
#: {message}, {image} and {memory} are ann's (in a body, wherever they are a whole value)
SAMPLES: dict[tuple[str, str], tuple[str, Any, dict[str, str]]] = {
    ("GET", "/api/health"): ("/api/health", None, {}),
    ("POST", "/api/login"): ("/api/login", {"token": "wrong-token"}, {}),
    ("GET", "/api/models"): ("/api/models", None, {}),
    ("GET", "/api/mcp"): ("/api/mcp", None, {}),
    ("GET", "/api/sessions"): ("/api/sessions?q=ZEBRA", None, {}),
    ("POST", "/api/sessions"): ("/api/sessions", {"name": "own"}, {}),
    ("POST", "/api/sessions/import"): ("/api/sessions/import", {"text": "not an export"}, {}),
    ("POST", "/api/sessions/turns"): ("/api/sessions/turns", {"text": "what is my secret?"}, {}),
    ("GET", "/api/sessions/{session_id}"): ("/api/sessions/{sid}", None, {}),
    ("GET", "/api/sessions/{session_id}/messages"): ("/api/sessions/{sid}/messages", None, {}),
    ("PATCH", "/api/sessions/{session_id}"): ("/api/sessions/{sid}", {"name": "pwned", "persona": "pwned"}, {}),
    ("DELETE", "/api/sessions/{session_id}"): ("/api/sessions/{sid}", None, {}),
    ("POST", "/api/sessions/{session_id}/fork"): ("/api/sessions/{sid}/fork", {"name": "stolen"}, {}),
    ("POST", "/api/sessions/{session_id}/undo"): ("/api/sessions/{sid}/undo", {}, {}),
    ("GET", "/api/sessions/{session_id}/export"): ("/api/sessions/{sid}/export?format=md", None, {}),
    ("GET", "/api/sessions/{session_id}/context"): ("/api/sessions/{sid}/context?text=x", None, {}),
    ("POST", "/api/sessions/{session_id}/turns"): ("/api/sessions/{sid}/turns", {"text": "hi"}, {}),
    ("POST", "/api/sessions/{session_id}/edit"): (
        "/api/sessions/{sid}/edit",
        {"message_id": "{message}", "text": "x"},
        {},
    ),
    ("GET", "/api/sessions/{session_id}/branches"): ("/api/sessions/{fork}/branches", None, {}),
    ("POST", "/api/sessions/{session_id}/retry"): ("/api/sessions/{sid}/retry", {}, {}),
    ("GET", "/api/sessions/{session_id}/stream"): ("/api/sessions/{sid}/stream?after=0", None, {}),
    ("POST", "/api/sessions/{session_id}/stop"): ("/api/sessions/{sid}/stop", {}, {}),
    ("POST", "/api/sessions/{session_id}/pins"): (
        "/api/sessions/{sid}/pins",
        {"message_id": "{message}", "pinned": False},
        {},
    ),
    ("POST", "/api/sessions/{session_id}/images"): ("/api/sessions/{sid}/images", {"prompt": "x"}, {}),
    ("GET", "/api/sessions/{session_id}/messages/{message_id}/versions"): (
        "/api/sessions/{sid}/messages/{message}/versions",
        None,
        {},
    ),
    ("POST", "/api/sessions/{session_id}/versions"): (
        "/api/sessions/{sid}/versions",
        {"message_id": "{message}"},
        {},
    ),
    ("GET", "/api/images/{image_id}"): ("/api/images/{image}", None, {}),
    ("GET", "/api/attachments/{sha256}"): ("/api/attachments/{attachment}", None, {}),
    ("GET", "/api/memories"): ("/api/memories?q=ZEBRA", None, {}),
    # the same subject as ann's memory: it would supersede hers if adding looked past the owner
    ("POST", "/api/memories"): ("/api/memories", {"text": "my secret is pwned"}, {}),
    ("GET", "/api/memories/export"): ("/api/memories/export", None, {}),
    # a record naming ann's memory's id: it gets a new id of the importer's, never hers
    ("POST", "/api/memories/import"): (
        "/api/memories/import",
        [{"id": "{memory}", "content": "imported by whoever asks", "kind": "fact"}],
        {},
    ),
    ("GET", "/api/memories/{memory_id}"): ("/api/memories/{memory}", None, {}),
    ("PATCH", "/api/memories/{memory_id}"): ("/api/memories/{memory}", {"text": "my secret is pwned"}, {}),
    ("DELETE", "/api/memories/{memory_id}"): ("/api/memories/{memory}", None, {}),
    ("POST", "/api/memories/{memory_id}/restore"): ("/api/memories/{memory}/restore", {}, {}),
    ("GET", "/v1/models"): ("/v1/models", None, {}),
    ("POST", "/v1/chat/completions"): (
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "what is my secret?"}]},
        {"X-Memchat-Session": SECRET_NAME},
    ),
    ("GET", "/"): ("/", None, {}),
    ("MOUNT", "/static"): ("/static/app.js", None, {}),
    ("GET", "/openapi.json"): ("/openapi.json", None, {}),
}
#: where ann's own request shows her secret (so that bob's same request showing nothing of it
#: means something): the samples above, and more of bob's own views of memories
CONTROLS = {("GET", "/api/sessions"), ("GET", "/api/memories"), ("GET", "/api/memories/export")}
#: what bob's own requests to these routes answer (the other routes of his own scope: below 500)
OWN_STATUS = {
    ("GET", "/api/memories"): 200,
    ("POST", "/api/memories"): 201,  # a memory of his own (not an error about ann's on the same subject)
    ("GET", "/api/memories/export"): 200,
    ("POST", "/api/memories/import"): 201,
}
MEMORY_VIEWS = [
    "/api/memories",
    "/api/memories?all=true",
    "/api/memories?kind=fact",
    "/api/memories?kind=fact&all=true",
    "/api/memories?q=secret",
    "/api/memories?q=4242",
    "/api/memories?q=my%20secret&kind=fact",
    "/api/memories?q=zebra&all=true",
    "/api/memories/export?all=false",
    "/api/memories/export?all=true",
]
MISSING = 987_654  # an id nobody has


def route_table(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route of the FastAPI app inside the guard; a mount is one entry,
    an included router (FastAPI lists it as one entry) is its routes, under its prefix."""
    out: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                out.append(("MOUNT", prefix + route.path))
            elif isinstance(route, APIRoute | Route):
                out.extend((m, prefix + route.path) for m in sorted(route.methods or ()) if m != "HEAD")
            elif hasattr(route, "original_router") and hasattr(route, "include_context"):
                # ``_IncludedRouter``: its router's paths carry the router's own prefix already;
                # the include's prefix (``include_router(prefix=…)``) comes on top
                walk(route.original_router.routes, prefix + route.include_context.prefix)
            else:
                raise AssertionError(f"a route of an unknown kind: {route!r}")

    walk(app.app.routes, "")
    return out


PLACEHOLDERS = {
    "{sid}": "session",
    "{fork}": "fork",
    "{message}": "message",
    "{image}": "image",
    "{memory}": "memory",
    "{attachment}": "attachment",
}


def fill(key: tuple[str, str], ids: dict[str, int]) -> tuple[str, str, Any, dict[str, str]]:
    """The sample request of a route with ids filled in: (method, url, body, headers)."""
    url, body, headers = SAMPLES[key]
    subst = {k: ids[name] for k, name in PLACEHOLDERS.items()}
    for k, v in subst.items():
        url = url.replace(k, str(v))

    def filled(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: filled(v) for k, v in value.items()}
        if isinstance(value, list):
            return [filled(v) for v in value]
        return subst[value] if isinstance(value, str) and value in subst else value

    return ("GET" if key[0] == "MOUNT" else key[0]), url, filled(body), headers


def ids_in(key: tuple[str, str], ids: dict[str, int]) -> list[int]:
    """The ids a route's sample request names in its URL."""
    return [ids[name] for k, name in PLACEHOLDERS.items() if k in SAMPLES[key][0]]


def without_ids(text: str, numbers: list[int]) -> str:
    for n in numbers:
        text = re.sub(rf"(?<!\d){n}(?!\d)", "N", text)
    return text


def by_the_guard(response: httpx.Response) -> bool:
    """Refused for want of a token (not, say, a wrong token given to /api/login)."""
    return response.status_code == 401 and response.json()["error"]["message"].startswith("a token is required")


def ask(client: httpx.Client, method: str, url: str, body: Any, headers: dict[str, str]) -> httpx.Response:
    return client.request(method, url, json=body, headers=headers)


def test_every_route_refuses_anonymous_and_wrong_tokens_and_hides_one_users_data_from_another(
    world: World, fake: FakeServer
) -> None:
    w = world
    table = route_table(w.served.server.config.app)
    unsampled = [r for r in table if r not in SAMPLES]
    assert not unsampled, f"routes without a sample request in tests/test_security.py: {unsampled}"
    assert len(table) >= 25
    before = snapshot(w)
    secrets = (SECRET_TEXT, SECRET_REPLY, SECRET_NAME, "ZEBRA persona", SECRET_MEMORY, OWNER_MEMORY)
    figures = {"routes": len(table), "public": 0, "anonymous_401": 0, "wrong_token_401": 0, "other_user_404": 0}
    figures["other_user_own_scope"] = 0
    missing = {k: MISSING for k in w.ids}
    for key in table:
        method, url, body, headers = fill(key, w.ids)
        for who in ("anonymous", "wrong"):
            got = ask(w.client(who), method, url, body, headers)
            if key in PUBLIC:
                assert got.status_code < 500 and not by_the_guard(got), (who, key, got.text)
                assert "set-cookie" not in got.headers, (who, key)  # nothing is granted without a token
                assert not any(s in got.text for s in secrets), (who, key)
                continue
            assert got.status_code == 401, (who, key, got.status_code, got.text)
            assert got.json()["error"]["code"] == "unauthorized"
            # an id that exists and one that does not look the same: the guard answers first
            assert ask(w.client(who), *fill(key, missing)[:2], body, headers).text == got.text
            figures["anonymous_401" if who == "anonymous" else "wrong_token_401"] += 1
        if key in PUBLIC:
            figures["public"] += 1
            continue
        if key in CONTROLS:  # ann herself does see her secret this way
            mine = ask(w.client("ann"), method, url, body, headers)
            assert mine.status_code == 200 and any(s in mine.text for s in secrets), (key, mine.text)
        got = ask(w.client("bob"), method, url, body, headers)
        if "{" in key[1]:  # one of ann's things, by id: bob is told it does not exist
            assert got.status_code == 404, (key, got.status_code, got.text)
            absent = ask(w.client("bob"), *fill(key, missing)[:2], body, headers)
            assert absent.status_code == 404
            assert without_ids(got.text, ids_in(key, w.ids)) == without_ids(absent.text, [MISSING]), (
                key,
                got.text,
                absent.text,
            )  # the same words: no existence leak
            figures["other_user_404"] += 1
            if "{memory}" in SAMPLES[key][0]:  # nor the server token owner's (the app's own agent's)
                theirs = ask(w.client("bob"), *fill(key, w.ids | {"memory": w.ids["owner_memory"]})[:2], body, headers)
                assert theirs.status_code == 404, (key, theirs.status_code, theirs.text)
                assert without_ids(theirs.text, [w.ids["owner_memory"]]) == without_ids(absent.text, [MISSING])
                assert not any(s in theirs.text for s in secrets), (key, theirs.text)
                figures["other_user_404"] += 1
        else:  # bob's own scope: it works for him and shows nothing of ann's
            assert got.status_code == OWN_STATUS.get(key, got.status_code) and got.status_code < 500, (
                key,
                got.status_code,
                got.text,
            )
            figures["other_user_own_scope"] += 1
        assert not any(s in got.text for s in secrets), (key, got.text)
    # bob's own views of memories, every filter: ann's show her memory, bob's never do
    for url in MEMORY_VIEWS:
        mine = w.client("ann").get(url)
        assert mine.status_code == 200 and SECRET_MEMORY in mine.text, (url, mine.text)
        got = w.client("bob").get(url)
        assert got.status_code == 200 and not any(s in got.text for s in secrets), (url, got.text)
        figures["other_user_own_scope"] += 1
    assert OWNER_MEMORY in w.client("owner").get("/api/memories").text  # the local user's is there to leak
    # the OpenAI endpoint naming ann's session by name gave bob a session of his own, and
    # recalled none of ann's memories into it
    assert not any(SECRET_TEXT in json.dumps(r.messages) for r in fake.chat_requests[2:])  # after ann's two turns
    assert snapshot(w) == before  # ann's data (and the owner's memories) untouched
    campaign.record("security_routes", figures)


def test_another_users_requests_cannot_see_or_stop_a_turn_that_is_running(world: World, fake: FakeServer) -> None:
    w = world
    sid = w.ids["session"]
    fake.script(FakeReply.text(*[f"w{k} " for k in range(12)], delay=0.05))
    result: dict[str, Any] = {}

    def ann_turn() -> None:
        result["turn"] = w.client("ann").post(f"/api/sessions/{sid}/turns", json={"text": "count"}).text

    thread = threading.Thread(target=ann_turn)
    thread.start()
    try:
        bob = w.client("bob")
        for _ in range(100):
            if w.client("ann").get(f"/api/sessions/{sid}").json()["running"]:
                break
            threading.Event().wait(0.01)
        assert bob.get(f"/api/sessions/{sid}/stream").status_code == 404
        assert bob.post(f"/api/sessions/{sid}/stop", json={}).status_code == 404
        assert bob.post(f"/api/sessions/{sid}/turns", json={"text": "x"}).status_code == 404  # not 409
    finally:
        thread.join(10)
    assert "event: done" in result["turn"] and "w11" in result["turn"]
    assert w.client("ann").get(f"/api/sessions/{sid}/messages").json()["messages"][-1]["status"] == "complete"


def test_the_server_token_alone_guards_every_route_and_the_page_grants_nothing(
    fake: FakeServer, tmp_path: Path
) -> None:
    provider = OpenAICompatible(fake.url, api_key=PROVIDER_KEY, model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "token.db"), provider, persona="p", date_line=False)
    served = Served(create_app(agent, token=SERVER_TOKEN))
    owner = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {SERVER_TOKEN}"}, timeout=10)
    anonymous = httpx.Client(base_url=served.url, timeout=10)
    try:
        sid = owner.post("/api/sessions", json={"name": "mine"}).json()["id"]
        ids = {"session": sid, "fork": sid, "message": 1, "image": 1, "memory": 1, "attachment": 1}
        table = route_table(served.server.config.app)
        for key in table:
            method, url, body, headers = fill(key, ids)
            page = anonymous.get("/")  # a regression: loading the page used to set the token's cookie
            assert page.status_code == 200 and "set-cookie" not in page.headers and not anonymous.cookies
            got = anonymous.request(method, url, json=body, headers=headers)
            if key in PUBLIC:
                assert got.status_code < 500 and not by_the_guard(got), key
            else:
                assert got.status_code == 401, (key, got.status_code)
        assert owner.get("/api/sessions").json()["total"] == 1
    finally:
        owner.close()
        anonymous.close()
        served.close()
        agent.close()


# -- SSRF: the image URLs a provider returns ------------------------------------------------------


class Recorder(ThreadingHTTPServer):
    """A loopback HTTP server that records every connection it accepts (even one that never
    becomes a request, like a TLS handshake) and answers every GET with a PNG — or, on the
    hostile image provider, with scripted image URLs and redirects."""

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.urls: list[str] = []  # the image provider's answer: these URLs, in order
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorder.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", self.path.removeprefix("/redirect?to="))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = png()
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # the OpenAI images API: one URL per image
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                recorder.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = json.dumps({"created": 1, "data": [{"url": recorder.urls.pop(0)}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def victim() -> Iterator[Recorder]:
    """What an SSRF would reach: a service on the loopback interface."""
    server = Recorder()
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile() -> Iterator[Recorder]:
    """An image provider (on loopback, so its own origin is trusted) returning hostile URLs."""
    server = Recorder()
    yield server
    server.close()


def ssrf_urls(port: int) -> list[str]:
    """Image URLs that must never be fetched: every one names an address that is not public;
    those that can reach this machine point at the victim's port."""
    p = port
    loopback = [
        f"https://127.0.0.1:{p}/x.png",
        f"http://127.0.0.1:{p}/x.png",  # plain http to another origin
        f"https://127.0.0.2:{p}/x.png",
        f"https://localhost:{p}/x.png",
        f"https://LOCALHOST.:{p}/x.png",
        f"https://[::1]:{p}/x.png",
        f"https://[::ffff:127.0.0.1]:{p}/x.png",  # IPv4-mapped IPv6
        f"https://[::ffff:7f00:1]:{p}/x.png",
        f"https://[::127.0.0.1]:{p}/x.png",  # IPv4-compatible (deprecated) IPv6
        f"https://2130706433:{p}/x.png",  # decimal
        f"https://0x7f000001:{p}/x.png",  # hex
        f"https://0x7f.0.0.1:{p}/x.png",
        f"https://0177.0.0.1:{p}/x.png",  # octal
        f"https://127.1:{p}/x.png",  # short form
        f"https://0:{p}/x.png",  # 0.0.0.0 reaches this machine on Linux
        f"https://0.0.0.0:{p}/x.png",
        f"https://[::]:{p}/x.png",
        f"https://user:pass@127.0.0.1:{p}/x.png",
        f"https://images.example.com@127.0.0.1:{p}/x.png",  # userinfo that looks like a host
        f"https://images.example.com\\@127.0.0.1:{p}/x.png",
        f"https://127.0.0.1:{p}#@images.example.com/x.png",
    ]
    private = [
        "https://10.0.0.1/x.png",
        "https://10.255.255.254/x.png",
        "https://172.16.0.1/x.png",
        "https://172.31.255.254/x.png",
        "https://192.168.1.1/x.png",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[fe80::1]/x.png",  # IPv6 link-local
        "https://[fd00::1]/x.png",  # IPv6 unique local
        "https://[fc00::1]/x.png",
        "https://[::ffff:10.0.0.1]/x.png",
        "https://[::ffff:169.254.169.254]/x.png",
        "https://[64:ff9b::a9fe:a9fe]/x.png",  # NAT64 of 169.254.169.254
        "https://100.64.0.1/x.png",  # carrier-grade NAT
        "https://198.18.0.1/x.png",  # benchmarking
        "https://224.0.0.1/x.png",  # multicast
        "https://255.255.255.255/x.png",
        "https://[ff02::1]/x.png",
    ]
    schemes = [
        "file:///etc/passwd",
        "ftp://127.0.0.1/x.png",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
        "//127.0.0.1/x.png",
        f"http://127.0.0.1:{p}/x.png".replace("http", "HTTP"),
    ]
    return loopback + private + schemes


def hostile_images(hostile: Recorder) -> Any:
    from memchat.images.openai_images import OpenAIImages

    return OpenAIImages(hostile.origin + "/v1", api_key=IMAGE_KEY, model="m", max_retries=0, http_timeout=5)


@pytest.mark.campaign
def test_image_urls_to_private_loopback_and_odd_addresses_are_refused_and_nothing_is_fetched(
    victim: Recorder, hostile: Recorder, tmp_path: Path
) -> None:
    from memchat.errors import ImageDownloadError
    from memchat.images import ImageRequest

    urls = ssrf_urls(victim.port)
    # each also served as a redirect from the provider's own (trusted) origin
    via_redirect = [f"{hostile.origin}/redirect?to={u}" for u in urls if "://" in u and not u.startswith("//")]
    # and a redirect chain that ends on the victim after hops on the trusted origin
    hop = f"{hostile.origin}/redirect?to=https://127.0.0.1:{victim.port}/x.png"
    chain = [f"{hostile.origin}/redirect?to={hostile.origin}/redirect?to={hop}"]
    cases = urls + via_redirect + chain
    rounds = campaign.size(1, 3)
    gen = hostile_images(hostile)
    refused: dict[str, int] = {}
    try:
        for _ in range(rounds):
            for url in cases:
                before = (victim.connections, len(victim.requests))
                hostile.urls.append(url)
                with pytest.raises(ImageDownloadError) as caught:
                    gen.generate(ImageRequest("x"), dest_dir=tmp_path / "out")
                message = str(caught.value)
                assert any(w in message for w in ("refused", "redirect", "resolve", "cannot download")), (
                    url,
                    message,
                )
                assert (victim.connections, len(victim.requests)) == before, f"{url} reached the victim"
                reason = message.split(": ")[-1].split(" (")[0] if "refused" in message else message
                refused[reason[:40]] = refused.get(reason[:40], 0) + 1
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    finally:
        gen.close()
    # the same path works for a file on the provider's own origin (the test is not vacuous)
    hostile.urls.append(f"{hostile.origin}/files/ok.png")
    ok = hostile_images(hostile)
    try:
        (made,) = ok.generate(ImageRequest("x"), dest_dir=tmp_path / "ok")
        assert made.path.read_bytes().startswith(b"\x89PNG")
    finally:
        ok.close()
    campaign.record(
        "security_ssrf",
        {
            "urls": len(urls),
            "redirects": len(via_redirect) + len(chain),
            "rounds": rounds,
            "refused": sum(refused.values()),
        },
    )


def test_a_download_elsewhere_connects_to_the_address_checked_and_never_carries_the_key(
    victim: Recorder, hostile: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name answers a public address when checked and loopback after; the
    download must go to the address that was checked. And the service's key is for the service:
    a CDN on another host never sees it."""
    import socket

    from memchat.errors import ImageDownloadError
    from memchat.images import ImageRequest

    real = socket.getaddrinfo
    answers = {"rebind.example": 0}

    def rebinding(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host == "rebind.example":
            answers[host] += 1
            address = "93.184.216.34" if answers[host] == 1 else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kw)

    sent: list[httpx.Request] = []
    real_send = httpx.Client.send

    def send(self: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
        if request.url.host == "127.0.0.1" and request.url.port == hostile.port:
            return real_send(self, request, **kw)  # the provider itself
        sent.append(request)
        raise httpx.ConnectError("not on the internet in tests")

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    monkeypatch.setattr(httpx.Client, "send", send)
    gen = hostile_images(hostile)
    try:
        hostile.urls.append(f"https://rebind.example:{victim.port}/x.png")
        before = victim.connections
        with pytest.raises(ImageDownloadError, match="cannot download the image from rebind.example"):
            gen.generate(ImageRequest("x"), dest_dir=tmp_path)
    finally:
        gen.close()
    (request,) = sent
    assert request.url.host == "93.184.216.34" and request.headers["host"] == f"rebind.example:{victim.port}"
    assert request.extensions["sni_hostname"] == "rebind.example"  # the certificate is checked for the name
    assert "authorization" not in request.headers and IMAGE_KEY not in str(request.headers.raw)
    assert answers["rebind.example"] == 1 and victim.connections == before
    # the provider's own origin still gets the key (it is the service)
    assert hostile.requests[-1][1]["authorization"] == f"Bearer {IMAGE_KEY}"


def test_a_download_that_cannot_connect_is_an_image_error_not_a_crash(
    hostile: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memchat.errors import ImageDownloadError
    from memchat.images import ImageRequest

    gen = hostile_images(hostile)
    try:
        closed = Recorder()
        closed.close()  # a port nobody listens on: the connection is refused
        # taken as allowed, so that what is checked is the error a failed connection becomes
        monkeypatch.setattr("memchat.images.download.check_url", lambda url, trusted: None)
        hostile.urls.append(f"http://127.0.0.1:{closed.port}/a.png")
        with pytest.raises(ImageDownloadError, match="cannot download the image from 127.0.0.1"):
            gen.generate(ImageRequest("x"), dest_dir=tmp_path)
    finally:
        gen.close()


# -- path traversal on every route that serves a file ---------------------------------------------

TRAVERSALS = [
    "../server/app.py",
    "..%2fserver%2fapp.py",
    "%2e%2e/server/app.py",
    "%2e%2e%2fserver%2fapp.py",
    "%252e%252e%252fserver%252fapp.py",  # double-encoded
    "..%252fserver%252fapp.py",
    "....//server/app.py",
    "..\\server\\app.py",
    "..%5cserver%5capp.py",
    "%2e%2e%5cserver%5capp.py",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "//etc/passwd",
    "app.js%00.png",
    "app.js%00",
    "..%00/server/app.py",
    "%c0%ae%c0%ae/server/app.py",  # overlong UTF-8
    "..%c0%afserver%c0%afapp.py",
    "./../server/app.py",
    "static/../../server/app.py",
    "../../../../../../etc/passwd",
    "..;/server/app.py",
    "%2e%2e;/server/app.py",
    "file:///etc/passwd",
]
#: what a file outside a served directory would show
LEAKS = ("def create_app", "root:x:0:0", "SQLite format 3")


def raw_get(client: httpx.Client, path: str, headers: dict[str, str]) -> httpx.Response:
    """GET ``path`` exactly as written (no normalisation of dots or escapes by the client)."""
    request = client.build_request("GET", "/", headers=headers)
    request.url = request.url.copy_with(raw_path=path.encode("latin-1"))
    return client.send(request)


def test_no_file_outside_its_directory_is_served_whatever_the_path(world: World) -> None:
    w = world
    auth = {"Authorization": f"Bearer {w.tokens['ann']}"}
    bases = ["/static/", "/static/x/", "/api/images/", "/", "/api/sessions/{sid}/export?format="]
    served = 0
    for base in bases:
        for attack in TRAVERSALS:
            path = base.replace("{sid}", str(w.ids["session"])) + attack
            got = raw_get(w.client("anonymous"), path, auth)
            assert got.status_code in (400, 404, 405, 422) or (base == "/" and got.status_code == 200), (
                path,
                got.status_code,
            )
            assert not any(leak in got.text for leak in LEAKS), path
            served += 1
    # the static directory serves its own files, and only those
    assert raw_get(w.client("anonymous"), "/static/app.js", {}).status_code == 200
    # image records whose path points outside the images directory (an import can carry any
    # path) are never served: absolute, relative, dotted, the database itself
    a = w.client("ann")
    sid = w.ids["session"]
    export = a.get(f"/api/sessions/{sid}/export").text
    image_dir = Path(w.agent.images_dir)
    hostile = [
        "/etc/passwd",
        "../../../../etc/passwd",
        str(image_dir / ".." / "accounts.db"),
        str(image_dir / str(sid) / ".." / ".." / "accounts.db"),
        "accounts.db",
        str(image_dir),  # the directory itself
        str(image_dir / "missing.png"),
        str(Path(__file__).resolve()),
    ]
    records = 0
    for k, path in enumerate(hostile):
        lines = []
        for line in export.splitlines():
            obj = json.loads(line)
            if obj.get("type") == "image":
                obj["path"] = path
            lines.append(json.dumps(obj))
        imported = a.post("/api/sessions/import", json={"text": "\n".join(lines), "name": f"imported {k}"})
        assert imported.status_code == 201, imported.text
        for image in a.get(f"/api/sessions/{imported.json()['id']}/messages").json()["images"]:
            got = a.get(image["url"])
            assert got.status_code == 404 and not any(leak in got.text for leak in LEAKS), path
            records += 1
    assert records == len(hostile)
    campaign.record("security_traversal", {"paths": served, "hostile_image_records": records})


# -- secrets: nowhere but where they belong -------------------------------------------------------


def core(secret: str) -> str:
    """The part of a secret no masked form shows (``mask`` keeps 3 leading and 4 trailing)."""
    return secret[3:-4]


def test_no_key_or_token_is_found_in_responses_logs_exports_errors_or_the_database(
    fake: FakeServer, image_server: ImageServer, clean_env: Path
) -> None:
    """``memchat serve`` (a real process) with a provider key, an image key, a server token and
    two accounts; turns that succeed and turns whose upstream echoes the key back in its errors
    (chat, stream, image service, a tool's error), exports, the page: then every response, the
    server's output, the CLI's output and every byte under MEMCHAT_HOME are searched."""
    import os
    import subprocess
    import sys
    import time

    from serving import free_port

    image_server.reset()
    home = clean_env
    env = {
        **os.environ,
        "MEMCHAT_PROVIDER": "compat",
        "MEMCHAT_BASE_URL": fake.url,
        "MEMCHAT_API_KEY": PROVIDER_KEY,
        "MEMCHAT_MODEL": "fake/model-a",
        "MEMCHAT_IMAGE_PROVIDER": "modelscope",
        "MEMCHAT_IMAGE_BASE_URL": image_server.url,
        "MEMCHAT_IMAGE_API_KEY": IMAGE_KEY,
        "MEMCHAT_SERVER_TOKEN": SERVER_TOKEN,
    }
    cli = [sys.executable, "-m", "memchat.cli.main"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)

    tokens = {}
    for name in ("ann", "bob"):
        added = run("users", "add", name)
        assert added.returncode == 0, added.stderr
        tokens[name] = added.stdout.strip()  # printed once, on purpose: not scanned
    port = free_port()
    out, err = home / "serve.out", home / "serve.err"
    with out.open("w") as o, err.open("w") as e:
        server = subprocess.Popen([*cli, "serve", "--port", str(port)], stdout=o, stderr=e, env=env)
    seen: list[str] = []  # everything a client received
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/api/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and server.poll() is None, err.read_text()
                time.sleep(0.05)
        ann = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {tokens['ann']}"}, timeout=15)
        owner = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SERVER_TOKEN}"}, timeout=15)
        anonymous = httpx.Client(base_url=base, timeout=15)

        def keep(r: httpx.Response) -> httpx.Response:
            seen.append(f"{r.status_code} {r.request.method} {r.request.url.path}\n{r.headers}\n{r.text}")
            return r

        echo = f"Incorrect API key provided: {PROVIDER_KEY}. Authorization: Bearer {PROVIDER_KEY}"
        with ann, owner, anonymous:
            sid = keep(ann.post("/api/sessions", json={"name": "scan"})).json()["id"]
            fake.script(
                FakeReply.text("hello"),
                FakeReply.error_response(401, {"error": {"message": echo, "code": "invalid_api_key"}}),
                FakeReply.error_response(400, {"error": {"message": echo}}),
                FakeReply.stream_error(echo),
                FakeReply.calls(("generate_image", '{"prompt": "a fox"}')),
                FakeReply.text("no image then"),
            )
            image_server.http_errors.append((401, {"errors": {"message": f"bad token {IMAGE_KEY}"}}, {}))  # the tool's
            for text in ("hi", "again", "once more", "in-stream", "draw a fox"):
                keep(ann.post(f"/api/sessions/{sid}/turns", json={"text": text}))
            assert "bad token ***" in ann.get(f"/api/sessions/{sid}/messages").text  # the tool's error, kept
            image_server.http_errors.append((403, {"errors": {"message": f"denied for {IMAGE_KEY}"}}, {}))
            keep(ann.post(f"/api/sessions/{sid}/images", json={"prompt": "a cat"}))
            image_server.script(Task(polls=0))
            made = keep(ann.post(f"/api/sessions/{sid}/images", json={"prompt": "a cat"}))
            assert made.status_code == 201, made.text
            keep(ann.get(made.json()["images"][0]["url"]))
            fake.script(FakeReply.error_response(401, {"error": {"message": echo}}), FakeReply.stream_error(echo))
            body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "metadata": {"session": "local"}}
            keep(owner.post("/v1/chat/completions", json=body))
            keep(owner.post("/v1/chat/completions", json={**body, "stream": True}))
            fake.script(FakeReply.text("fine"))
            keep(owner.post("/v1/chat/completions", json=body))
            for path in (
                f"/api/sessions/{sid}/messages",
                f"/api/sessions/{sid}/export",
                f"/api/sessions/{sid}/export?format=md",
                f"/api/sessions/{sid}/context?text=x",
                "/api/sessions",
                "/api/models",
                "/v1/models",
                "/api/health",
                "/",
                "/static/app.js",
                "/static/i18n.js",
                "/static/markdown.js",
                "/static/app.css",
                "/openapi.json",
                "/api/sessions/999999",
            ):
                keep(ann.get(path))
                keep(anonymous.get(path))
            keep(anonymous.post("/api/login", json={"token": "wrong"}))
            signed_in = anonymous.post("/api/login", json={"token": tokens["bob"]})  # bob's own cookie: his token
            assert "HttpOnly" in signed_in.headers["set-cookie"] and tokens["bob"] not in signed_in.text
            statuses = [s.split(" ", 1)[0] for s in seen]
            assert "401" in statuses and "502" in statuses and "200" in statuses  # the errors did happen
    finally:
        server.terminate()
        server.wait(10)
    # the command line: a failing ask, the settings, an export to a file
    fake.script(FakeReply.error_response(401, {"error": {"message": echo}}))
    cli_out = [run("ask", "-s", "cli", "hello"), run("config"), run("sessions", "list", "--json")]
    cli_out.append(run("sessions", "export", "local", "-o", str(home / "scan.jsonl")))
    cli_out.append(run("sessions", "export", "local", "--format", "md", "-o", str(home / "scan.md")))
    assert cli_out[0].returncode != 0 and cli_out[0].stderr.strip()
    texts = {"responses": "\n".join(seen), "cli": "\n".join(p.stdout + p.stderr for p in cli_out)}
    files = {str(p.relative_to(home)): p.read_bytes() for p in home.rglob("*") if p.is_file()}
    assert {"scan.jsonl", "scan.md", "serve.err"} <= set(files), (sorted(files), cli_out[-1].stderr)
    assert any(name.endswith(".db") for name in files) and any(name.endswith(".png") for name in files)
    secrets = {"provider key": PROVIDER_KEY, "image key": IMAGE_KEY, "server token": SERVER_TOKEN, **tokens}
    found = {
        f"{what} in {where}": n
        for what, secret in secrets.items()
        for where, blob in [*((k, v.encode()) for k, v in texts.items()), *files.items()]
        if (n := blob.count(core(secret).encode()))
    }
    assert found == {}, found
    # memchat never writes a config file (keys come from the environment or a file the user
    # wrote, refused unless 0600: tests/test_config.py), so no key file is ever created by it
    assert not [name for name in files if name.endswith(".toml")]
    from memchat.config import config_path

    assert not config_path().exists()
    # account tokens are kept only as their hashes
    db = b"".join(v for k, v in files.items() if ".db" in k)
    assert all(hashlib.sha256(t.encode()).hexdigest().encode() in db for t in tokens.values())
    campaign.record(
        "security_secrets",
        {
            "secrets": len(secrets),
            "responses": len(seen),
            "files": len(files),
            "scanned_bytes": sum(len(v) for v in files.values()) + sum(len(t) for t in texts.values()),
            "found": 0,
        },
    )


def test_no_code_of_memchat_writes_a_config_file() -> None:
    """Keys reach memchat from the environment or from a config file the user wrote (refused
    unless 0600, tests/test_config.py); memchat itself never creates one, so it never has to
    choose the mode of a file holding a key."""
    import re

    import memchat

    src = Path(memchat.__file__).parent
    writers = re.compile(r"write_text|write_bytes|open\([^)]*['\"][wax]|mkstemp|os\.open\(")
    config = (src / "config.py").read_text()
    assert not writers.search(config)
    users = [f.relative_to(src) for f in src.rglob("*.py") if f.name != "config.py" and "config_path(" in f.read_text()]
    assert users == []
