"""The conversation service (issue 14): the use cases every interface calls, over an agent it
never changes — a setting chosen for a session moves the service to a configured twin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memchat import Agent
from memchat.errors import MemchatError, SessionExists, StoreError
from memchat.service import Conversations
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import ScriptedProvider


@pytest.fixture
def chats() -> Iterator[Conversations]:
    store = SQLiteStore(":memory:")
    agent = Agent(store, ScriptedProvider(default="ok"), model="flag-model", memory="full", date_line=False)
    yield Conversations(agent)
    store.close()


def test_a_setting_chosen_for_a_session_wins_over_the_flags_without_changing_the_given_agent(
    chats: Conversations,
) -> None:
    given = chats.agent
    info = chats.open("s")
    assert chats.agent.model_for(info) == "flag-model" and chats.agent.memory_for(info) == "full"
    info = chats.set_model("s", "session-model")
    info = chats.set_memory("s", "window")
    assert chats.agent.model_for(info) == "session-model" and chats.agent.memory_for(info) == "window"
    assert (given.model, given.memory) == ("flag-model", "full")  # the agent it was given is as it was
    assert chats.agent is not given and chats.agent.store is given.store and chats.agent.provider is given.provider
    with pytest.raises(MemchatError, match="unknown memory strategy"):
        chats.set_memory("s", "everything")
    with pytest.raises(MemchatError, match="unknown tool"):
        chats.set_tools("s", ["now", "teleport"])
    assert chats.agent.tools_for(chats.set_tools("s", ["now"])) == ["now"]


def test_sessions_history_pins_undo_and_clear(chats: Conversations) -> None:
    chats.create("a", persona="P")
    with pytest.raises(SessionExists):
        chats.create("a")
    for text in ("one", "two"):
        for _ in chats.stream("a", text):
            pass
    pinned = chats.pin("a")  # the last user message
    assert (pinned.number, pinned.message.content, pinned.changed) == (3, "two", True)
    assert chats.pin("a", 3).changed is False
    with pytest.raises(StoreError, match="no message 9"):
        chats.pin("a", 9)
    history = chats.history("a")
    assert [m.content for m in history.messages] == ["one", "ok", "two", "ok"]
    assert history.pinned == {pinned.message.id}
    assert chats.unpin("a", 3).changed is True
    assert [m.content for m in chats.undo("a")] == ["two", "ok"]
    assert chats.clear("a") == 2 and chats.messages("a") == [] and chats.get("a").persona == "P"
    assert [s.name for s in chats.list()] == ["a"]


def test_an_edit_is_a_version_of_that_point_in_the_same_session(chats: Conversations) -> None:
    # issue 17: an edit used to fork the session into a sidebar entry "s · edit 3"
    for text in ("first", "second", "third"):
        for _ in chats.stream("s", text):
            pass
    for _ in chats.edit("s", 3, "second, edited"):
        pass
    assert [m.content for m in chats.messages("s")] == ["first", "ok", "second, edited", "ok"]
    assert [s.name for s in chats.list()] == ["s"]  # no branch session
    edited = chats.messages("s")[2]
    versions = chats.versions("s", edited.id or 0)
    assert [(v.number, v.shown, [m.content for m in v.messages], v.more) for v in versions] == [
        (1, False, ["second", "ok"], 2),  # the original, its reply, and the turn after it
        (2, True, ["second, edited", "ok"], 0),
    ]
    assert chats.history("s").versions[edited.id or 0].count == 2
    assert chats.choose_version("s", versions[0].head) is True
    assert [m.content for m in chats.messages("s")] == ["first", "ok", "second", "ok", "third", "ok"]
    with pytest.raises(StoreError, match="not a user message"):
        chats.edit("s", 2, "a reply cannot be edited")


def test_no_image_provider_is_one_clear_error(chats: Conversations) -> None:
    chats.open("s")
    with pytest.raises(MemchatError, match="no image provider"):
        chats.generate_image("s", object())
