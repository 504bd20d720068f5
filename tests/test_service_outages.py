"""Services failing in the middle of a turn, for real: PostgreSQL behind a proxy that drops every
connection and refuses new ones (what a restart looks like from the client), PostgreSQL
terminating memchat's backends, and a Redis server killed while a turn streams. The affected turn
gets a clear error and leaves nothing half-written; the next one works once the service is back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PG_BASE
from fakeserver import FakeReply, FakeServer
from faultproxy import FaultProxy
from memchat.agent import Agent
from memchat.errors import StoreError
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible
from memchat.server.app import create_app
from serving import Served, free_port


def slow_reply(n: int = 12) -> FakeReply:
    return FakeReply.text(*[f"w{k} " for k in range(n)], delay=0.05)


@pytest.fixture
def proxied_pg(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, FaultProxy]]:
    """The test's PostgreSQL schema reached through a FaultProxy (statements wait 1 s at most for
    a connection, instead of the store's default)."""
    from memchat.stores import pg_dialect

    monkeypatch.setattr(pg_dialect, "CONNECT_WAIT", 1.0)
    proxy = FaultProxy("127.0.0.1", 5432)
    assert "@127.0.0.1:5432/" in pg_url
    yield pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/"), proxy
    proxy.close()


def agent_on(url: str, fake: FakeServer) -> Agent:
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(url), provider, date_line=False)
    agent.checkpoint_every = 0.05  # the partial reply is saved (and fails to be) many times
    return agent


def contents(agent: Agent, session: str) -> list[str]:
    return [m.content for m in agent.store.messages(session)]


def test_postgresql_going_away_mid_turn_fails_that_turn_and_leaves_nothing_of_it(
    proxied_pg: tuple[str, FaultProxy], fake: FakeServer
) -> None:
    url, proxy = proxied_pg
    agent = agent_on(url, fake)
    fake.script(FakeReply.text("one"))
    agent.ask("s", "first")
    fake.script(slow_reply())
    streamed = []
    with pytest.raises(StoreError, match="PostgreSQL database is unreachable"):
        for chunk in agent.stream("s", "second"):
            streamed.append(chunk.text)
            if len(streamed) == 3:
                proxy.down()
    assert "".join(streamed) == "".join(f"w{k} " for k in range(12))  # the model's reply went on to the end
    proxy.up()
    # the pool reconnects: the next turn works, and the failed one left nothing behind
    fake.script(FakeReply.text("three"))
    assert agent.ask("s", "third").text == "three"
    assert contents(agent, "s") == ["first", "one", "third", "three"]
    assert all(m.status.value == "complete" for m in agent.store.messages("s"))
    agent.close()


def test_a_postgresql_restart_shorter_than_the_wait_goes_unnoticed(
    proxied_pg: tuple[str, FaultProxy], fake: FakeServer
) -> None:
    url, proxy = proxied_pg
    agent = agent_on(url, fake)
    fake.script(slow_reply())
    turn = agent.stream("s", "hello")
    for k, _ in enumerate(turn):
        if k == 2:
            proxy.down()
        if k == 6:
            proxy.up()  # back within the store's wait for a connection
    assert turn.reply is not None and turn.reply.status.value == "complete"
    assert contents(agent, "s") == ["hello", "".join(f"w{k} " for k in range(12))]
    agent.close()


def test_backends_terminated_mid_turn_are_replaced_and_the_turn_is_stored_once(pg_url: str, fake: FakeServer) -> None:
    import psycopg

    url = pg_url + "&application_name=memchat_fault"
    agent = agent_on(url, fake)
    agent.ask("s", "warm up")  # the pool has its connections
    fake.script(slow_reply())
    killed = 0
    for k, _ in enumerate(agent.stream("s", "go")):
        if k == 3:
            with psycopg.connect(PG_BASE, autocommit=True) as admin:
                killed = len(
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                        ("memchat_fault",),
                    ).fetchall()
                )
    assert killed >= 1
    assert contents(agent, "s")[2:] == ["go", "".join(f"w{k} " for k in range(12))]
    agent.close()


def turn_breaking_midway(client: httpx.Client, sid: int, fault: Callable[[], None]) -> list[tuple[str, Any]]:
    """Run a (slow) turn through the API; ``fault`` strikes after its third event. Its events."""
    seen: list[tuple[str, Any]] = []
    kind = ""
    with client.stream("POST", f"/api/sessions/{sid}/turns", json={"text": "hi"}) as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                seen.append((kind, json.loads(line[6:])))
                if len(seen) == 3:
                    fault()
    return seen


def test_the_server_reports_a_database_outage_mid_turn_and_serves_again_after(
    proxied_pg: tuple[str, FaultProxy], fake: FakeServer
) -> None:
    url, proxy = proxied_pg
    agent = agent_on(url, fake)
    served = Served(create_app(agent))
    try:
        with httpx.Client(base_url=served.url, timeout=20) as client:
            sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
            fake.script(slow_reply())
            seen = turn_breaking_midway(client, sid, proxy.down)
            kind, last = seen[-1]
            assert kind == "error" and last["dropped"] is True
            assert "PostgreSQL database is unreachable" in last["message"]
            assert client.get("/api/health").status_code == 200  # the server itself carries on
            proxy.up()
            fake.script(FakeReply.text("back"))
            again = client.post(f"/api/sessions/{sid}/turns", json={"text": "again"})
            assert again.status_code == 200 and '"status": "complete"' in again.text.replace('":"', '": "')
            stored = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
            assert [m["content"] for m in stored] == ["again", "back"]
    finally:
        served.close()
        agent.close()


# -- Redis -----------------------------------------------------------------------------------------


class RedisServer:
    """A Redis of the test's own on a free port (the machine's shared one is left alone)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the test's redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    pytest.importorskip("redis")
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            raise RuntimeError("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    yield server
    server.kill()


def test_redis_killed_mid_stream_the_turn_still_ends_and_serving_resumes_when_it_is_back(
    own_redis: RedisServer, fake: FakeServer, tmp_path: Path
) -> None:
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "r.db"), provider, date_line=False)
    served = Served(create_app(agent, redis_url=own_redis.url))
    want = "".join(f"w{k} " for k in range(12))
    try:
        with httpx.Client(base_url=served.url, timeout=20) as client:
            sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
            fake.script(slow_reply())
            seen = turn_breaking_midway(client, sid, own_redis.kill)
            # this worker's reader got the whole turn, and it was stored once
            assert seen[-1][0] == "done" and seen[-1][1]["status"] == "complete"
            assert "".join(d.get("text", "") for k, d in seen if k == "delta") == want
            stored = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
            assert [m["content"] for m in stored] == ["hi", want]
            # while Redis is down a new turn is refused with a clear error, and writes nothing
            down = client.post(f"/api/sessions/{sid}/turns", json={"text": "now?"})
            assert down.status_code == 503 and "Redis is not reachable" in down.json()["error"]["message"]
            assert len(client.get(f"/api/sessions/{sid}/messages").json()["messages"]) == 2
            own_redis.start()  # back on the same port
            fake.script(FakeReply.text("back"))
            again = client.post(f"/api/sessions/{sid}/turns", json={"text": "again"})
            assert again.status_code == 200, again.text
            stored = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
            assert [m["content"] for m in stored] == ["hi", want, "again", "back"]
    finally:
        served.close()
        agent.close()
