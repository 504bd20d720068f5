"""Resource bounds (issue 8): a model that will not stop does not grow memory, events and the
database without bound — the reply is cut at ``Agent.max_reply_chars`` with one clear line, what
streamed is kept (interrupted), and the session goes on."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.domain import Status
from memchat.errors import ReplyTooLong
from memchat.factory import open_store
from memchat.i18n import describe_error
from memchat.providers.openai_compat import OpenAICompatible
from memchat.server.app import create_app
from serving import Served

RUNAWAY = [f"{k:04d}-runaway " for k in range(400)]  # 4,800 characters, more than the limit below


def agent_for(fake: FakeServer, tmp_path: Path) -> Agent:
    provider = OpenAICompatible(fake.url, api_key="k", model="fake/model-a", max_retries=0)
    agent = Agent(open_store(tmp_path / "bounds.db"), provider, date_line=False)
    agent.max_reply_chars = 1_000
    return agent


def test_a_runaway_reply_is_cut_kept_as_interrupted_and_the_session_goes_on(fake: FakeServer, tmp_path: Path) -> None:
    agent = agent_for(fake, tmp_path)
    fake.script(FakeReply.text(*RUNAWAY))
    with pytest.raises(ReplyTooLong) as caught:
        for _ in agent.stream("s", "count forever"):
            pass
    assert describe_error(caught.value) == (
        "the reply passed memchat's limit of 1,000 characters and was cut there (kept, marked interrupted)"
    )
    question, partial = agent.store.messages("s")
    assert question.content == "count forever"
    assert partial.status is Status.INTERRUPTED
    assert 1_000 - 12 < len(partial.content) <= 1_000 + 12 and "".join(RUNAWAY).startswith(partial.content)
    fake.script(FakeReply.text("fine"))
    assert agent.ask("s", "next").text == "fine"
    agent.close()


def test_the_server_says_the_runaway_reply_was_cut_and_kept(fake: FakeServer, tmp_path: Path) -> None:
    agent = agent_for(fake, tmp_path)
    served = Served(create_app(agent))
    try:
        with httpx.Client(base_url=served.url, timeout=20) as client:
            sid = client.post("/api/sessions", json={"name": "s"}).json()["id"]
            fake.script(FakeReply.text(*RUNAWAY))
            body = client.post(f"/api/sessions/{sid}/turns", json={"text": "count forever"}).text
            frames = [f for f in body.split("\n\n") if "event: error" in f]
            assert len(frames) == 1
            error = json.loads(frames[0].split("data: ", 1)[1])
            assert error["kind"] == "reply_too_long" and error["dropped"] is False
            assert "limit of 1,000 characters" in error["message"]
            stored = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
            assert [m["status"] for m in stored] == ["complete", "interrupted"]
    finally:
        served.close()
        agent.close()
