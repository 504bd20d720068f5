"""Crash-safety campaign (issue 8): ``kill -9`` of ``memchat ask``, the REPL and the server at a
random moment of a streaming turn, again and again on one database per store, then the audit a
user relies on:

- corrupt databases: SQLite ``integrity_check``, ``foreign_key_check`` and the full-text index's
  own check; on both stores the constraints the schema cannot state (sequence numbers unique and
  in order, the trigger-kept count of settled messages right);
- completed turns lost: a turn the user was told had ended (``ask`` exited 0, the REPL showed its
  next prompt, the server sent ``done``) missing from the database;
- dangling user messages: a question with no reply row after it;
- partial replies not marked: after the next start, a reply still ``streaming``, or a reply cut
  short but stored as ``complete``.

Target: 0, 0, 0, 0. Reduced size here; ``MEMCHAT_CAMPAIGN=full`` kills 100 times per interface
and store (600 kills)."""

from __future__ import annotations

import os
import pty
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import campaign
from fakeserver import FakeServer
from memchat.domain import Role, Status
from memchat.factory import open_store
from memchat.stores.sqlite import SQLiteStore
from serving import serve_process

pytestmark = [pytest.mark.campaign, pytest.mark.slow]

REPLY = " ".join(f"word{k}" for k in range(24))  # streamed in 4 pieces 0.3 s apart (a checkpoint each second)
CLI = [sys.executable, "-m", "memchat.cli.main"]


@pytest.fixture(scope="module")
def model() -> Iterator[FakeServer]:
    server = FakeServer(delay=0.3, reply=REPLY).start()
    yield server
    server.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "crash.db") if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def env_for(db: str, model: FakeServer, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MEMCHAT_HOME": str(home),
        "MEMCHAT_DB": db,
        "MEMCHAT_PROVIDER": "compat",
        "MEMCHAT_BASE_URL": model.url,
        "MEMCHAT_API_KEY": "sk-crash-test",
        "MEMCHAT_TOOLS": "none",
        "PYTHONIOENCODING": "utf-8",
    }


def kill(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


# -- one round per interface: returns whether the user was told the turn completed -----------------


def round_ask(env: dict[str, str], name: str, rng: random.Random) -> bool:
    proc = subprocess.Popen(
        [*CLI, "ask", "-s", name, f"question {name}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(rng.uniform(0.2, 2.4))  # start-up (~0.4 s) + the reply (~1.2 s) and beyond
    done = proc.poll() == 0
    kill(proc)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    if done:
        assert out.decode().strip() == REPLY, err.decode()
    return done


def round_repl(env: dict[str, str], name: str, rng: random.Random) -> bool:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "chat", "-s", name, "--system", "Be brief."], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    seen = b""

    def read_for(seconds: float, until: Callable[[bytes], bool] = lambda _: False) -> None:
        nonlocal seen
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until(seen):
            ready, _, _ = select.select([master], [], [], 0.02)
            if ready:
                try:
                    got = os.read(master, 65536)
                except OSError:
                    return
                for _ in range(got.count(b"\x1b[6n")):  # answer cursor position requests, as a terminal does
                    os.write(master, b"\x1b[1;1R")
                seen += got

    try:
        read_for(30, lambda s: b"You" in s)
        assert b"You" in seen, seen.decode(errors="replace")
        mark = len(seen)
        os.write(master, f"question {name}\r".encode())

        # the reply ends, then the next prompt: the user was told the turn is over
        def told(s: bytes) -> bool:  # the reply's last word (the REPL wraps lines), then a prompt
            end = s.find(b"word23", mark)
            return end >= 0 and b"You" in s[end:]

        read_for(rng.uniform(0.0, 2.6), told)
        done = told(seen)
    finally:
        kill(proc)
        os.close(master)
    return done


def round_server(env: dict[str, str], name: str, rng: random.Random) -> bool:
    """One ``memchat serve`` process per round (its start-up recovers the database)."""
    proc, url = serve_process(env)
    try:
        sid = httpx.post(url + "/api/sessions", json={"name": name}, timeout=10).json()["id"]
        deadline = time.monotonic() + rng.uniform(0.0, 1.8)
        done = False
        try:
            with httpx.stream(
                "POST", f"{url}/api/sessions/{sid}/turns", json={"text": f"question {name}"}, timeout=10
            ) as r:
                for line in r.iter_lines():
                    if line == "event: done":
                        done = True
                    if done or time.monotonic() >= deadline:
                        break
        except httpx.TransportError:
            pass
    finally:
        kill(proc)
    return done


# -- the audit ------------------------------------------------------------------------------------


def audit(db: str, told_done: dict[str, bool]) -> dict[str, int]:
    """Open the database as the next process would (which recovers it), then count the faults."""
    corrupt = 0
    if not db.startswith("postgres"):
        with open_store(db) as store:  # the index changes the killed turns queued, applied (as by a search)
            assert isinstance(store, SQLiteStore)
            store.settle_search()
        raw = sqlite3.connect(db)
        corrupt += raw.execute("PRAGMA integrity_check").fetchone()[0] != "ok"
        corrupt += len(raw.execute("PRAGMA foreign_key_check").fetchall())
        try:
            raw.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError:
            corrupt += 1
        raw.close()
    lost = dangling = unmarked = 0
    with open_store(db) as store:
        for info in store.list_sessions():
            messages = store.messages(info.name)
            seqs = [m.seq for m in messages]
            corrupt += seqs != sorted(set(seqs))  # type: ignore[type-var]
            settled = sum(m.status is not Status.STREAMING for m in messages)
            (kept,) = store._read("SELECT settled_count FROM sessions WHERE id = ?", (info.id,))[0]
            corrupt += kept != settled
            for k, m in enumerate(messages):
                if m.role is Role.USER and (k + 1 == len(messages) or messages[k + 1].role is not Role.ASSISTANT):
                    dangling += 1
                if m.role is Role.ASSISTANT:
                    if m.status is Status.STREAMING:
                        unmarked += 1
                    elif m.status is Status.COMPLETE and m.content != REPLY:
                        unmarked += 1  # cut short, yet stored as complete
            if told_done.get(info.name):
                pairs = [(q.content, a.content, a.status) for q, a in zip(messages, messages[1:], strict=False)]
                lost += (f"question {info.name}", REPLY, Status.COMPLETE) not in pairs
        lost += sum(1 for name, done in told_done.items() if done and store.find_session(name) is None)
    return {"corrupt": corrupt, "lost": lost, "dangling": dangling, "unmarked": unmarked}


@pytest.mark.parametrize("interface", ["ask", "repl", "server"])
def test_kill_9_at_random_moments_of_a_turn_loses_and_corrupts_nothing(
    interface: str, db: str, model: FakeServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store_kind = "postgres" if db.startswith("postgres") else "sqlite"
    open_store(db).close()  # migrated before the first kill
    env = env_for(db, model, tmp_path / "home")
    rounds = campaign.size(3, 100)
    run = {"ask": round_ask, "repl": round_repl, "server": round_server}[interface]
    rng = random.Random(f"{interface}-{store_kind}")
    told_done: dict[str, bool] = {}
    for k in range(rounds):
        name = f"{interface}-{k}"
        told_done[name] = run(env, name, rng)
    figures = audit(db, told_done)
    completed = sum(told_done.values())
    campaign.record(
        f"crash_{interface}_{store_kind}",
        {"kills": rounds, "told_complete_before_the_kill": completed, **figures},
    )
    assert figures == {"corrupt": 0, "lost": 0, "dangling": 0, "unmarked": 0}
