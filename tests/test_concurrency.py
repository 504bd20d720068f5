"""Many processes, one database: 8 processes x 50 turns (4 sessions shared by two processes each,
and one private session per process), on SQLite and on PostgreSQL. Every turn is stored once,
each reply right after its own question, none lost, none interleaved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fakeserver import FakeServer
from memchat.domain import Role, Status
from memchat.factory import open_store

WORKER = """
import sys
from memchat.agent import Agent
from memchat.factory import open_store
from memchat.providers.openai_compat import OpenAICompatible

db, url, me = sys.argv[1], sys.argv[2], int(sys.argv[3])
agent = Agent(open_store(db), OpenAICompatible(url, api_key="k", model="m"), date_line=False, enabled_tools=[])
agent.wait_for_turn = 120  # the other process of a shared session may be mid-reply
for i in range(25):
    agent.ask(f"shared-{me % 4}", f"p{me} shared {i}")
    agent.ask(f"private-{me}", f"p{me} private {i}")
agent.close()
"""


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_eight_processes_fifty_turns_each_lose_and_interleave_nothing(
    engine: str, fake_server: FakeServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    fake_server.reset()
    db = str(tmp_path / "shared.db") if engine == "sqlite" else request.getfixturevalue("pg_url")
    open_store(db).close()  # migrated once before the race
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, db, fake_server.url, str(k)], stderr=subprocess.PIPE, text=True)
        for k in range(8)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with open_store(db) as store:
        total = 0
        for name in [f"shared-{k}" for k in range(4)] + [f"private-{k}" for k in range(8)]:
            messages = store.messages(name)
            total += len(messages)
            assert all(m.status is Status.COMPLETE for m in messages)
            pairs = list(zip(messages[::2], messages[1::2], strict=True))
            for question, reply in pairs:  # each reply right after its own question
                assert question.role is Role.USER and reply.role is Role.ASSISTANT
                assert reply.content == "echo: " + question.content
            asked = sorted(q.content for q, _ in pairs)
            if name.startswith("shared"):
                k = int(name.rsplit("-", 1)[1])
                expected = sorted(f"p{p} shared {i}" for p in (k, k + 4) for i in range(25))
            else:
                expected = sorted(f"{name.replace('private-', 'p')} private {i}" for i in range(25))
            assert asked == expected  # every turn once
        assert total == 8 * 50 * 2
    fake_server.reset()
