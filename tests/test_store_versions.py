"""Reply versions in the store (issue 17; migration m013 / pg006), on SQLite in memory, on disk
and on PostgreSQL: a retry or an edit sets the shown path from its point aside as another
version, whole — ids, seqs, pins and vectors kept — and ``choose_version`` brings it back; only
the version shown is the session's history (what memory, search and the counters see)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from memchat.domain import Message, Role, SessionInfo, Status, Summary
from memchat.errors import StoreError, TurnInProgress
from memchat.stores.base import ImportedVersion, Store, TurnHandle


def turn(user: str, reply: str) -> list[Message]:
    return [Message(Role.USER, user), Message(Role.ASSISTANT, reply)]


def said(store: Store, name: str = "s") -> list[str]:
    return [m.content for m in store.messages(name)]


def retry(store: Store, reply: str, name: str = "s") -> Message:
    """What a retry does: the reply after the last question set aside, a new one in its place."""
    shown = store.messages(name)
    last_user = max(i for i, m in enumerate(shown) if m.role is Role.USER)
    head = shown[last_user + 1].id if last_user + 1 < len(shown) else None
    return store.finish_turn(store.begin_turn(name, None, replace=head), reply)


def edit(store: Store, message: Message, text: str, reply: str, name: str = "s") -> Message:
    return store.finish_turn(store.begin_turn(name, Message(Role.USER, text), replace=message.id), reply)


def moves(store: Store, action: Callable[[], Any], name: str = "s") -> tuple[bool, bool]:
    v0, r0 = store.session_state(name)
    action()
    v1, r1 = store.session_state(name)
    return v1 != v0, r1 != r0


def test_a_retry_keeps_every_earlier_reply_as_a_version_of_that_point(store: Store) -> None:
    store.create_session("s")
    first = store.append_messages("s", turn("q", "a1"))
    retry(store, "a2")
    third = retry(store, "a3")
    assert said(store) == ["q", "a3"] and store.get_session("s").message_count == 2
    versions = store.versions("s", third.id or 0)
    assert [(v.number, v.shown, [m.content for m in v.messages]) for v in versions] == [
        (1, False, ["a1"]),
        (2, False, ["a2"]),
        (3, True, ["a3"]),
    ]
    assert versions[0].head == first[1].id and all(v.after == first[0].id for v in versions)
    assert store.version_marks("s") == {third.id: store.version_marks("s")[third.id or 0]}
    assert store.version_marks("s")[third.id or 0].heads == tuple(v.head for v in versions)
    # the first one comes back as it was: same id, same seq
    assert moves(store, lambda: store.choose_version("s", first[1].id or 0)) == (True, True)
    assert [(m.id, m.seq, m.content) for m in store.messages("s")] == [(m.id, m.seq, m.content) for m in first]
    assert store.version_marks("s")[first[1].id or 0].number == 1
    assert store.choose_version("s", first[1].id or 0) is False  # already shown
    # a message that is only a version is not part of the history: not searchable, not counted
    assert not store.search(["a3"], session="s") and store.get_session("s").message_count == 2


def test_an_edit_sets_the_rest_of_the_conversation_aside_and_later_points_come_back_with_it(store: Store) -> None:
    store.create_session("s")
    msgs = store.append_messages("s", [*turn("q1", "a1"), *turn("q2", "a2"), *turn("q3", "a3")])
    edited = edit(store, msgs[2], "q2 edited", "b2")
    assert said(store) == ["q1", "a1", "q2 edited", "b2"]
    # a regenerate on the new version makes a point with versions inside it
    retry(store, "b2 again")
    old = store.versions("s", store.messages("s")[2].id or 0)
    assert [(v.shown, [m.content for m in v.messages], v.more) for v in old] == [
        (False, ["q2", "a2"], 2),  # its first turn, and the turn after it
        (True, ["q2 edited", "b2 again"], 0),
    ]
    store.choose_version("s", msgs[2].id or 0)
    assert said(store) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert store.version_marks("s").keys() == {msgs[2].id}
    store.choose_version("s", store.versions("s", msgs[2].id or 0)[1].head)  # back to the edit…
    assert said(store) == ["q1", "a1", "q2 edited", "b2 again"]  # …and its own choice there
    assert store.version_marks("s").keys() == {store.messages("s")[2].id, store.messages("s")[3].id}
    assert edited.id not in {m.id for m in store.messages("s")}  # "b2" is a version of the reply


def test_pins_and_vectors_go_aside_with_their_version_and_come_back(store: Store) -> None:
    store.create_session("s")
    msgs = store.append_messages("s", turn("q", "a1"))
    store.pin("s", msgs[1].id or 0)
    store.add_vectors("m", [(msgs[1].id or 0, b"\x01\x02")])
    retry(store, "a2")
    assert store.pins("s") == [] and store.vectors_after("m") == []
    store.choose_version("s", msgs[1].id or 0)
    assert [p.id for p in store.pins("s")] == [msgs[1].id]
    assert store.vectors_after("m") == [(msgs[1].id, b"\x01\x02")]


def test_a_summary_of_what_went_aside_goes(store: Store) -> None:
    store.create_session("s")
    msgs = store.append_messages("s", [*turn("q1", "a1"), *turn("q2", "a2")])
    store.add_summary("s", Summary(msgs[0].seq or 0, msgs[1].seq or 0, "first turn", 2))
    store.add_summary("s", Summary(msgs[0].seq or 0, msgs[3].seq or 0, "both turns", 2))
    retry(store, "b2")
    assert [s.content for s in store.summaries("s")] == ["first turn"]  # memory plans from what is shown


def test_ids_set_aside_are_never_given_again(store: Store) -> None:
    # SQLite gives a new row the largest id plus one: that could be the id of a message set aside
    store.create_session("s")
    msgs = store.append_messages("s", turn("q", "a1"))
    second = retry(store, "a2")
    store.choose_version("s", msgs[1].id or 0)  # the largest id (a2's) is now set aside
    third = store.append_messages("s", turn("more", "ok"))
    assert {m.id for m in third}.isdisjoint({second.id, *(m.id for m in msgs)})
    store.choose_version("s", second.id or 0)
    assert said(store) == ["q", "a2"]


def test_a_failed_or_empty_retry_shows_the_earlier_version_again(store: Store) -> None:
    store.create_session("s")
    msgs = store.append_messages("s", turn("q", "a1"))
    store.abort_turn(store.begin_turn("s", None, replace=msgs[1].id))  # the model failed
    assert [(m.id, m.content) for m in store.messages("s")] == [(m.id, m.content) for m in msgs]
    store.abort_turn(store.begin_turn("s", None, replace=msgs[1].id), keep_question=True)  # stopped at once
    assert said(store) == ["q", "a1"] and store.version_marks("s") == {}
    # an edit stopped before any word keeps its new text (a version), with no reply yet
    store.abort_turn(store.begin_turn("s", Message(Role.USER, "q, edited"), replace=msgs[0].id), keep_question=True)
    assert said(store) == ["q, edited"]
    assert [v.shown for v in store.versions("s", store.messages("s")[0].id or 0)] == [False, True]
    # a new turn stopped before any word keeps its question
    store.abort_turn(store.begin_turn("s", Message(Role.USER, "and?")), keep_question=True)
    assert said(store) == ["q, edited", "and?"]


def test_a_partial_regeneration_is_a_version_too(store: Store) -> None:
    store.create_session("s")
    msgs = store.append_messages("s", turn("q", "the whole answer"))
    handle = store.begin_turn("s", None, replace=msgs[1].id)
    store.finish_turn(handle, "a fragm", status=Status.STOPPED)
    versions = store.versions("s", handle.assistant_id)
    assert [(v.messages[0].content, v.messages[0].status) for v in versions] == [
        ("the whole answer", Status.COMPLETE),
        ("a fragm", Status.STOPPED),
    ]


def test_nothing_changes_versions_while_a_reply_streams(store: Store) -> None:
    store.create_session("s")
    msgs = store.append_messages("s", turn("q", "a1"))
    retry(store, "a2")
    live: TurnHandle = store.begin_turn("s", Message(Role.USER, "next"))
    with pytest.raises(TurnInProgress):
        store.choose_version("s", msgs[1].id or 0)
    store.finish_turn(live, "ok")
    with pytest.raises(StoreError, match="no version"):
        store.choose_version("s", 10**9)
    with pytest.raises(StoreError, match="not shown"):
        store.versions("s", 10**9)


def test_undo_clear_truncate_and_delete_take_the_versions_of_what_they_remove(store: Store) -> None:
    store.create_session("s")
    msgs = store.append_messages("s", [*turn("q1", "a1"), *turn("q2", "a2")])
    retry(store, "b2")
    edit(store, store.messages("s")[2], "q2 edited", "c2")
    store.remove_last_turn("s")  # the last turn, with every version of it
    assert said(store) == ["q1", "a1"] and store.shelved_versions("s") == []
    retry(store, "b1")
    assert len(store.shelved_versions("s")) == 1
    store.truncate("s", 1)
    assert said(store) == ["q1"] and store.shelved_versions("s") == []
    retry(store, "c1")
    retry(store, "d1")
    store.truncate("s", 0)
    assert store.shelved_versions("s") == []
    store.append_messages("s", turn("x", "y"))
    retry(store, "z")
    store.delete_session("s")
    store.create_session("s")
    assert store.shelved_versions("s") == [] and msgs[0].id is not None


def test_a_fork_copies_the_versions_shown(store: Store) -> None:
    store.create_session("s")
    store.append_messages("s", turn("q", "a1"))
    retry(store, "a2")
    store.fork_session("s", "copy")
    assert said(store, "copy") == ["q", "a2"] and store.version_marks("copy") == {}
    assert store.messages("copy")[1].id not in {m.id for v in store.shelved_versions("s") for m in v.messages}


def test_an_import_stores_versions_where_they_began(store: Store) -> None:
    messages = [*turn("q1", "a1"), *turn("q2", "a2")]
    versions = [
        ImportedVersion(1, 1, (Message(Role.ASSISTANT, "a1, first try"),)),  # before a1: version 1 of 2
        ImportedVersion(4, 2, (Message(Role.USER, "q2 first"), Message(Role.ASSISTANT, "x")), pins=(1,)),
        ImportedVersion(4, 6, (Message(Role.ASSISTANT, "x again"),)),  # follows "q2 first" (message 6)
    ]
    info = store.import_session(SessionInfo(0, "imported"), messages, versions=versions)
    shown = store.messages(info.id)
    assert [m.content for m in shown] == ["q1", "a1", "q2", "a2"]
    assert store.version_marks(info.id)[shown[1].id or 0].number == 2
    assert store.version_marks(info.id)[shown[2].id or 0].number == 1  # "q2 first" began after q2
    store.choose_version(info.id, store.version_marks(info.id)[shown[2].id or 0].heads[1])
    now = store.messages(info.id)
    assert [m.content for m in now] == ["q1", "a1", "q2 first", "x"]
    assert [p.id for p in store.pins(info.id)] == [now[3].id]  # pinned in the file
    assert store.version_marks(info.id)[now[3].id or 0].count == 2  # "x again" is a version of "x"
    with pytest.raises(StoreError, match="comes after it"):
        store.import_session(SessionInfo(0, "bad"), messages, versions=[ImportedVersion(0, 2, versions[0].messages)])


def test_export_and_import_keep_every_version_on_every_engine(store: Store) -> None:
    from memchat.serialization import export_jsonl, import_jsonl

    store.create_session("s")
    msgs = store.append_messages("s", [*turn("q1", "a1"), *turn("q2", "a2")])
    retry(store, "b2")
    store.pin("s", store.messages("s")[-1].id or 0)
    edit(store, msgs[0], "q1 edited", "c1")
    retry(store, "d1")
    store.choose_version("s", msgs[0].id or 0)  # the original shown; the edit (with its own versions) aside
    exported = export_jsonl(store, "s")
    assert exported.count('"type": "version"') == 3
    imported = import_jsonl(store, exported, name="copy")
    assert export_jsonl(store, imported.id).split("\n")[1:] == exported.split("\n")[1:]
    store.choose_version("copy", store.version_marks("copy")[store.messages("copy")[0].id or 0].heads[1])
    assert said(store, "copy") == ["q1 edited", "d1"]
