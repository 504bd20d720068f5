"""Resource-bounds campaign (issue 8): ``memchat serve`` holding many idle SSE streams, and a
reader that stops reading while a long reply streams. Memory is bounded and the server keeps
answering. (The figures: ``bench/bench_resources.py``; these assert the bounds.)"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import campaign
from fakeserver import FakeReply, FakeServer
from serving import serve_process

pytestmark = pytest.mark.campaign

CLI = [sys.executable, "-m", "memchat.cli.main"]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


@pytest.fixture
def server(fake: FakeServer, tmp_path: Path) -> Iterator[tuple[str, int]]:
    env = {
        **os.environ,
        "MEMCHAT_HOME": str(tmp_path),
        "MEMCHAT_PROVIDER": "compat",
        "MEMCHAT_BASE_URL": fake.url,
        "MEMCHAT_TOOLS": "none",
    }
    proc, url = serve_process(env)
    yield url, proc.pid
    proc.terminate()
    proc.wait(10)


def test_many_idle_streams_cost_little_memory_and_the_server_keeps_answering(
    server: tuple[str, int], fake: FakeServer
) -> None:
    url, pid = server
    readers = campaign.size(60, 500)
    sessions = 10
    for _ in range(sessions):  # turns whose model then says nothing for a minute
        fake.script(FakeReply.stall_reply(60))
    httpx.get(url + "/api/sessions", timeout=5)  # warm
    before = rss_kib(pid)
    got: dict[str, float] = {}

    async def hold() -> None:
        limits = httpx.Limits(max_connections=readers + sessions + 10)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            ids = [(await client.post("/api/sessions", json={"name": f"s{k}"})).json()["id"] for k in range(sessions)]
            opened = []
            for sid in ids:
                cm = client.stream("POST", f"/api/sessions/{sid}/turns", json={"text": "hello?"})
                opened.append((cm, await cm.__aenter__()))
            for k in range(readers):
                cm = client.stream("GET", f"/api/sessions/{ids[k % sessions]}/stream", params={"after": 0})
                opened.append((cm, await cm.__aenter__()))
            got["ok"] = sum(r.status_code == 200 for _, r in opened)
            await asyncio.sleep(1)
            got["rss"] = rss_kib(pid)
            started = time.perf_counter()
            got["health"] = (await client.get("/api/health")).status_code
            got["health_ms"] = (time.perf_counter() - started) * 1000
            for sid in ids:  # stop the silent turns; every reader's stream ends
                await client.post(f"/api/sessions/{sid}/stop", json={})
            for cm, _ in reversed(opened):
                await cm.__aexit__(None, None, None)

    asyncio.run(hold())
    per_stream = (got["rss"] - before) / (readers + sessions)
    campaign.record(
        "resources_idle_streams",
        {"streams": readers + sessions, "kib_per_stream": round(per_stream, 1), "health_ms": round(got["health_ms"])},
    )
    assert got["ok"] == readers + sessions and got["health"] == 200
    assert per_stream < 256  # measured ~40 KiB; a buffer per stream growing without bound would show


def test_a_reader_that_stops_reading_holds_back_no_one(server: tuple[str, int], fake: FakeServer) -> None:
    url, pid = server
    chunk = "x" * 999 + " "
    pieces = campaign.size(150, 390)  # up to 390,000 characters: under the 400,000 cap
    fake.script(FakeReply.text(*[chunk] * pieces, delay=0.0))
    sid = httpx.post(url + "/api/sessions", json={"name": "big"}, timeout=5).json()["id"]
    before = rss_kib(pid)
    # a raw socket that sends the request and then never reads the answer
    stuck = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = b'{"text": "a long one"}'
    stuck.sendall(
        f"POST /api/sessions/{sid}/turns HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the turn goes on to its end without that reader
            if not httpx.get(f"{url}/api/sessions/{sid}", timeout=5).json()["running"]:
                break
            time.sleep(0.1)
        assert httpx.get(url + "/api/health", timeout=5).status_code == 200
        stored = httpx.get(f"{url}/api/sessions/{sid}/messages", timeout=10).json()["messages"]
        assert stored[-1]["status"] == "complete" and len(stored[-1]["content"]) == len(chunk) * pieces
        grew = rss_kib(pid) - before
        campaign.record("resources_stuck_reader", {"reply_chars": len(chunk) * pieces, "rss_growth_kib": grew})
        assert grew < 64 * 1024  # the reply's events, not an unbounded copy per byte
    finally:
        stuck.close()
