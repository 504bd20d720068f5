"""The REPL and the web page writing one session at once (issue 8, concurrency): two processes,
one SQLite file. A turn started in one is refused by the other with one clear line (REPL) or 409
(web) while it runs; afterwards each sees — and sends the model — every turn the other made, in
order, none lost or doubled."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakeserver import FakeReply, FakeServer
from memchat.factory import open_store
from serving import serve_process

CLI = [sys.executable, "-m", "memchat.cli.main"]


class Repl:
    """``memchat chat`` in a pseudo-terminal that answers cursor-position requests."""

    def __init__(self, env: dict[str, str], session: str) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [*CLI, "chat", "-s", session, "--system", "Be brief."], stdin=slave, stdout=slave, stderr=slave, env=env
        )
        os.close(slave)
        self.seen = b""

    def wait_for(self, needle: bytes, after: int = 0, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while needle not in self.seen[after:] and time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                try:
                    got = os.read(self.master, 65536)
                except OSError:
                    break
                for _ in range(got.count(b"\x1b[6n")):
                    os.write(self.master, b"\x1b[1;1R")
                self.seen += got
        assert needle in self.seen[after:], self.seen[-1500:].decode(errors="replace")

    def say(self, text: str) -> int:
        mark = len(self.seen)
        os.write(self.master, text.encode() + b"\r")
        return mark

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        os.close(self.master)


@pytest.fixture
def both(fake: FakeServer, tmp_path: Path) -> Iterator[tuple[str, Repl, Path]]:
    env = {
        **os.environ,
        "MEMCHAT_HOME": str(tmp_path),
        "MEMCHAT_PROVIDER": "compat",
        "MEMCHAT_BASE_URL": fake.url,
        "MEMCHAT_TOOLS": "none",
        "PYTHONIOENCODING": "utf-8",
    }
    server, url = serve_process(env)
    repl = Repl(env, "shared")
    repl.wait_for(b"You")
    yield url, repl, tmp_path / "memchat.db"
    repl.close()
    server.terminate()
    server.wait(10)


def test_the_repl_and_the_web_page_take_turns_in_one_session(both: tuple[str, Repl, Path], fake: FakeServer) -> None:
    url, repl, db = both
    # the REPL speaks first (its session is created with the persona)
    mark = repl.say("from the terminal")
    repl.wait_for(b"echo: from the terminal", mark)
    repl.wait_for(b"You", len(repl.seen) - 1)
    with httpx.Client(base_url=url, timeout=20) as web:
        (session,) = [s for s in web.get("/api/sessions").json()["sessions"] if s["name"] == "shared"]
        sid = session["id"]
        # a slow web turn; the REPL tries meanwhile and is told, in one line, to wait
        fake.script(FakeReply.text(*[f"web{k} " for k in range(30)], delay=0.05))
        started = threading.Event()
        web_events: list[str] = []

        def web_turn() -> None:
            with httpx.Client(base_url=url, timeout=20) as c:
                with c.stream("POST", f"/api/sessions/{sid}/turns", json={"text": "from the page"}) as r:
                    for line in r.iter_lines():
                        if line.startswith("event: "):
                            web_events.append(line)
                            started.set()

        runner = threading.Thread(target=web_turn)
        runner.start()
        assert started.wait(10)
        mark = repl.say("me too")
        repl.wait_for(b"another reply is still being generated in this session", mark)
        runner.join(15)
        assert web_events[-1] == "event: done"
        # now the REPL's turn goes through, and the model sees the page's turn in its context
        fake.script(FakeReply.text("terminal reply", delay=0.0))
        mark = repl.say("after the page")
        repl.wait_for(b"terminal reply", mark)
        repl.wait_for(b"You", len(repl.seen) - 1)
        sent = [m["content"] for m in fake.chat_requests[-1].messages]
        assert sent[-3:] == ["from the page", "".join(f"web{k} " for k in range(30)), "after the page"]
        # a slow REPL turn: the page gets 409 meanwhile
        fake.script(FakeReply.text(*[f"tty{k} " for k in range(30)], delay=0.05))
        mark = repl.say("long one")
        repl.wait_for(b"tty0", mark)
        busy = web.post(f"/api/sessions/{sid}/turns", json={"text": "page again"})
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "busy"
        repl.wait_for(b"tty29", mark)
        repl.wait_for(b"You", len(repl.seen) - 1)
        stored = [m["content"] for m in web.get(f"/api/sessions/{sid}/messages").json()["messages"]]
    assert b"Traceback" not in repl.seen
    assert stored == [
        "from the terminal",
        "echo: from the terminal",
        "from the page",
        "".join(f"web{k} " for k in range(30)),
        "after the page",
        "terminal reply",
        "long one",
        "".join(f"tty{k} " for k in range(30)),
    ]
    with open_store(db) as store:  # the same from the database itself, nothing left streaming
        assert [m.status.value for m in store.messages("shared")] == ["complete"] * 8
