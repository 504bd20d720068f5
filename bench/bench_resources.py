"""Memory held by memchat under two loads (issue 8, resource bounds).

1. ``memchat serve`` holding 500 idle SSE connections: 10 turns whose model has gone silent
   (the loopback model server waits minutes before each piece), each followed by 50 readers of
   ``…/stream``. Printed: the server's resident memory before and with the connections open, per
   connection, and how long ``/api/health`` takes meanwhile.
2. The REPL (``memchat chat`` in a pseudo-terminal) resuming a 10,000-turn session and answering
   one turn, against a 10-turn session: peak resident memory (``VmHWM``) of each.

    .venv/bin/python bench/bench_resources.py
"""

from __future__ import annotations

import asyncio
import os
import pty
import select
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "memchat.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def model_server(delay_ms: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", "0", "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def env_for(home: Path, model_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "MEMCHAT_HOME": str(home),
        "MEMCHAT_PROVIDER": "compat",
        "MEMCHAT_BASE_URL": model_url,
        "MEMCHAT_MODEL": "fake/model-a",
        "MEMCHAT_TOOLS": "none",
        "MEMCHAT_DATE_LINE": "off",
    }


# -- 1. the server and 500 idle streams --------------------------------------------------------------


def server_with_idle_streams(sessions: int = 10, readers: int = 50) -> None:
    model, model_url = model_server(delay_ms=600_000)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        serve = subprocess.Popen(
            [*CLI, "serve", "--port", str(port)], env=env_for(Path(tmp), model_url), stderr=subprocess.DEVNULL
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.05)
            httpx.get(url + "/", timeout=5)  # the page and its routes warmed up
            time.sleep(1)
            before = status_kb(serve.pid, "VmRSS")
            measured: dict[str, float] = {}

            async def hold_and_measure() -> None:
                limits = httpx.Limits(max_connections=sessions * (readers + 1) + 10)
                async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
                    ids = [
                        (await client.post("/api/sessions", json={"name": f"silent {k}"})).json()["id"]
                        for k in range(sessions)
                    ]
                    stack = []
                    for sid in ids:  # a turn whose model says nothing for minutes
                        cm = client.stream("POST", f"/api/sessions/{sid}/turns", json={"text": "hello?"})
                        stack.append(cm)
                        await cm.__aenter__()
                    for sid in ids:
                        for _ in range(readers):
                            cm = client.stream("GET", f"/api/sessions/{sid}/stream", params={"after": 0})
                            stack.append(cm)
                            response = await cm.__aenter__()
                            assert response.status_code == 200, response.status_code
                    await asyncio.sleep(3)
                    measured["held"] = len(stack)
                    measured["rss"] = status_kb(serve.pid, "VmRSS")
                    start = time.perf_counter()
                    assert (await client.get("/api/health")).status_code == 200
                    measured["health_ms"] = (time.perf_counter() - start) * 1000
                    for cm in reversed(stack):
                        await cm.__aexit__(None, None, None)

            asyncio.run(hold_and_measure())
            held, during = int(measured["held"]), int(measured["rss"])
            print("| server | connections | RSS before | RSS with them open | per connection | /api/health meanwhile |")
            print("|---|---:|---:|---:|---:|---:|")
            print(
                f"| memchat serve (1 worker, SQLite) | {held} | {before / 1024:.1f} MiB | {during / 1024:.1f} MiB "
                f"| {(during - before) / held:.1f} KiB | {measured['health_ms']:.0f} ms |",
                flush=True,
            )
        finally:
            serve.terminate()
            serve.wait(10)
            model.terminate()
            model.wait(10)


# -- 2. the REPL on a 10,000-turn session ------------------------------------------------------------


def fill(db: Path, name: str, turns: int) -> None:
    from memchat.domain import Message, Role
    from memchat.factory import open_store

    with open_store(db) as store:
        store.create_session(name, persona="Be brief.")
        messages: list[Message] = []
        for k in range(turns):
            messages.append(Message(Role.USER, f"question {k}: what about the {k}th city we talked about?"))
            messages.append(Message(Role.ASSISTANT, f"answer {k}: " + "it had a river, a bridge and a market. " * 4))
        for start in range(0, len(messages), 2_000):
            store.append_messages(name, messages[start : start + 2_000])


def repl_peak(home: Path, model_url: str, name: str) -> tuple[int, float]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "chat", "-s", name], stdin=slave, stdout=slave, stderr=slave, env=env_for(home, model_url)
    )
    os.close(slave)
    seen = b""

    def until(needle: bytes, after: int, timeout: float = 120) -> None:
        nonlocal seen
        end = time.monotonic() + timeout
        while needle not in seen[after:] and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                got = os.read(master, 65536)
                for _ in range(got.count(b"\x1b[6n")):
                    os.write(master, b"\x1b[1;1R")
                seen += got
        if needle not in seen[after:]:
            raise RuntimeError(seen[-800:].decode(errors="replace"))

    try:
        until(b"You", 0)
        mark = len(seen)
        start = time.perf_counter()
        os.write(master, b"one more question\r")
        until(b"echo: one more question", mark)
        until(b"You", len(seen) - 1)
        took = time.perf_counter() - start
        peak = status_kb(proc.pid, "VmHWM")
        os.write(master, b"/exit\r")
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return peak, took


def repl_on_long_session() -> None:
    model, model_url = model_server(delay_ms=0)
    try:
        print("\n| session | REPL peak RSS | one turn (prompt to prompt) |")
        print("|---|---:|---:|")
        for turns in (10, 10_000):
            with tempfile.TemporaryDirectory() as tmp:
                home = Path(tmp)
                fill(home / "memchat.db", "long", turns)
                peak, took = repl_peak(home, model_url, "long")
                print(f"| {turns:,} turns | {peak / 1024:.1f} MiB | {took * 1000:.0f} ms |", flush=True)
    finally:
        model.terminate()
        model.wait(10)


if __name__ == "__main__":
    server_with_idle_streams()
    repl_on_long_session()
