"""No empty sessions (issue 17, finding 6): a session is stored when its first message is — in
the library, the service (drafts), ``memchat ask``, and the HTTP API's new chat — and a first
turn that fails leaves no session behind."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from fakeserver import FakeReply, FakeServer
from memchat.agent import Agent
from memchat.domain import Role
from memchat.errors import AuthenticationError, ProviderError, SessionExists, StreamError
from memchat.factory import open_store
from memchat.service import Conversations
from memchat.testing import ScriptedProvider


def agent_with(*replies: Any) -> Agent:
    return Agent(open_store(":memory:"), ScriptedProvider(replies), date_line=False)


def events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in response.text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields["event"], json.loads(fields["data"])))
    return out


# -- the library and the service ----------------------------------------------------------------


def test_a_new_session_is_stored_with_its_first_message_not_before() -> None:
    agent = agent_with("hello")
    turn = agent.stream(None, "hi")
    agent.context("not-yet", "and this?")  # planning a session that does not exist writes nothing
    assert agent.store.list_sessions() == []  # a turn not begun has stored nothing
    for _ in turn:
        pass
    [info] = agent.store.list_sessions()
    assert [m.content for m in agent.store.messages(info.id)] == ["hi", "hello"]
    assert turn.session.id == info.id


@pytest.mark.parametrize("session", [None, "new-name", "draft"])
@pytest.mark.parametrize("failure", [AuthenticationError("bad key"), ["Hal", StreamError("cut")], ""])
def test_a_first_turn_that_fails_leaves_no_session(session: str | None, failure: Any) -> None:
    agent = agent_with(failure)
    key = Conversations(agent).draft(persona="P") if session == "draft" else session
    with pytest.raises(ProviderError):
        for _ in agent.stream(key, "hi"):
            pass
    assert agent.store.list_sessions() == []


def test_a_failed_turn_keeps_a_session_made_before_it() -> None:
    agent = agent_with(AuthenticationError("bad key"))
    chats = Conversations(agent)
    made = chats.create("explicit")  # an API client asked for it: it stays
    with pytest.raises(ProviderError):
        for _ in chats.stream(made, "hi"):
            pass
    assert [s.name for s in agent.store.list_sessions()] == ["explicit"]


def test_a_drafts_settings_are_stored_with_its_first_message() -> None:
    agent = agent_with("ok")
    chats = Conversations(agent)
    draft = chats.draft("trip", persona="You plan trips.", incognito=True)
    draft = chats.change(draft, memory="window")
    draft = chats.set_tools(draft, ["now"])
    assert agent.store.list_sessions() == []
    assert chats.history(draft).messages == [] and chats.undo(draft) == [] and chats.clear(draft) == 0
    for _ in chats.stream(draft, "Where to?"):
        pass
    info = agent.store.get_session("trip")
    assert (info.persona, info.memory, info.settings["incognito"], info.settings["tools"]) == (
        "You plan trips.",
        "window",
        True,
        ["now"],
    )
    assert agent.provider.calls[0][0] == {"role": "system", "content": "You plan trips."}  # type: ignore[attr-defined]


def test_a_draft_cannot_take_a_name_in_use() -> None:
    agent = agent_with("ok")
    chats = Conversations(agent)
    agent.ask("taken", "hi")
    with pytest.raises(SessionExists):
        chats.draft("taken")
    with pytest.raises(SessionExists):
        chats.rename(chats.draft(), "taken")


# -- the HTTP API: a new chat's first turn --------------------------------------------------------


def test_the_api_makes_a_new_chat_with_its_first_message(serve: Any, fake: FakeServer) -> None:
    _, client, agent = serve()
    before = client.get("/api/sessions").json()["total"]
    body = {"text": "Plan a haiku walk", "persona": "Be a poet.", "memory": "window", "incognito": True}
    response = client.post("/api/sessions/turns", json=body)
    assert response.status_code == 200
    sid = int(response.headers["X-Memchat-Session-Id"])
    kinds = [kind for kind, _ in events(response)]
    assert kinds[-1] == "done"
    info = client.get(f"/api/sessions/{sid}").json()
    assert (info["persona"], info["memory"], info["incognito"], info["messages"]) == ("Be a poet.", "window", True, 2)
    assert info["title"] == "Plan a haiku walk"
    assert client.get("/api/sessions").json()["total"] == before + 1
    assert fake.chat_requests[-1].messages[0] == {"role": "system", "content": "Be a poet."}
    messages = client.get(f"/api/sessions/{sid}/messages").json()["messages"]
    assert [m["role"] for m in messages] == [Role.USER.value, Role.ASSISTANT.value]


def test_a_new_chats_failed_first_turn_leaves_no_session(serve: Any, fake: FakeServer) -> None:
    _, client, _ = serve()
    fake.script(FakeReply.auth_openai())
    response = client.post("/api/sessions/turns", json={"text": "hi"})
    kind, data = events(response)[-1]
    assert kind == "error" and data["dropped"] is True
    assert client.get("/api/sessions").json() == {"sessions": [], "total": 0}
    bad = client.post("/api/sessions/turns", json={"text": "hi", "memory": "everything"})
    assert bad.status_code == 422
    assert client.get("/api/sessions").json()["total"] == 0
