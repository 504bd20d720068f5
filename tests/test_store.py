"""Store contract: the same behaviour from every backend (SQLite in memory and on disk)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memchat.domain import Message, Role, SessionInfo, Status, Usage
from memchat.errors import SessionExists, SessionNotFound, StoreError, TurnInProgress
from memchat.stores.base import Accounts, Migrating, SessionRef, Store
from memchat.stores.migrations import MIGRATIONS
from memchat.stores.sqlite import SQLiteStore


def turn(store: SQLiteStore, session: str, user: str, reply: str) -> None:
    handle = store.begin_turn(session, Message(Role.USER, user))
    store.finish_turn(handle, reply, usage=Usage(3, 2))


def test_satisfies_the_store_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, Store)
    assert isinstance(store, Accounts) and isinstance(store, Migrating)


def test_a_store_without_accounts_or_migrations_is_told_apart() -> None:
    class Plain:
        def users(self) -> list[tuple[int, str]]:  # one method of the protocol is not the protocol
            return []

    assert not isinstance(Plain(), Accounts) and not isinstance(Plain(), Migrating)


def test_accounts(store: SQLiteStore) -> None:
    accounts: Accounts = store
    assert accounts.users() == [] and accounts.user_records() == []
    ann_id, ann_token = accounts.add_user("ann")
    bob_id, _ = accounts.add_user("bob")
    assert accounts.users() == [(ann_id, "ann"), (bob_id, "bob")]
    assert accounts.user_for_token(ann_token) == ann_id and accounts.user_for_token("guess") is None
    with pytest.raises(StoreError, match="already exists"):
        accounts.add_user("ann")
    with pytest.raises(StoreError, match="1 to 100"):
        accounts.add_user(" ")
    store.for_owner(ann_id).create_session("ann's")
    records = accounts.user_records()
    assert [(r[0], r[1]) for r in records] == [(ann_id, "ann"), (bob_id, "bob")] and all(r[2] for r in records)
    assert accounts.remove_user("ann") and not accounts.remove_user("ann") and not accounts.remove_user("local")
    assert accounts.user_for_token(ann_token) is None and store.for_owner(ann_id).list_sessions() == []
    restored = accounts.restore_user("ann", records[0][2], records[0][3])  # the copied token works again
    assert accounts.user_for_token(ann_token) == restored and accounts.users()[-1] == (restored, "ann")


def test_migrations(store: SQLiteStore) -> None:
    migrating: Migrating = store
    assert migrating.pending_migrations() == [] and migrating.migrate() == []


def test_sessions_create_list_rename_delete(store: SQLiteStore) -> None:
    a = store.create_session("alpha", persona="你是孙悟空", model="m1")
    store.create_session("beta")
    assert a.persona == "你是孙悟空" and a.model == "m1"
    turn(store, "alpha", "hi", "hello")  # alpha is now the most recently updated
    assert [s.name for s in store.list_sessions()] == ["alpha", "beta"]
    assert store.list_sessions()[0].message_count == 2
    store.rename_session("alpha", "gamma")
    assert store.find_session("alpha") is None
    assert [m.content for m in store.messages("gamma")] == ["hi", "hello"]
    with pytest.raises(SessionExists):
        store.rename_session("gamma", "beta")
    store.delete_session("gamma")
    with pytest.raises(SessionNotFound):
        store.messages("gamma")
    assert [s.name for s in store.list_sessions()] == ["beta"]


def test_duplicate_and_empty_names_are_refused(store: SQLiteStore) -> None:
    store.create_session("x")
    with pytest.raises(SessionExists):
        store.create_session("x")
    with pytest.raises(StoreError):
        store.create_session("   ")


def test_generated_names_are_unique(store: SQLiteStore) -> None:
    names = {store.create_session().name for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("chat-") for n in names)


def test_turn_lifecycle_and_sequence(store: SQLiteStore) -> None:
    store.create_session("s")
    handle = store.begin_turn("s", Message(Role.USER, "q1"))
    # while streaming, the reply is not part of the history
    assert [m.content for m in store.messages("s")] == ["q1"]
    streaming = store.messages("s", include_streaming=True)
    assert streaming[-1].status is Status.STREAMING
    store.checkpoint_turn(handle, "partial")
    assert store.messages("s", include_streaming=True)[-1].content == "partial"
    msg = store.finish_turn(handle, "full answer", usage=Usage(10, 2), model="m")
    assert msg.status is Status.COMPLETE and msg.usage == Usage(10, 2) and msg.model == "m"
    turn(store, "s", "q2", "a2")
    seqs = [m.seq for m in store.messages("s")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4


def test_abort_turn_leaves_no_trace(store: SQLiteStore) -> None:
    store.create_session("s")
    turn(store, "s", "q1", "a1")
    before = store.messages("s")
    handle = store.begin_turn("s", Message(Role.USER, "doomed"))
    store.abort_turn(handle)
    assert store.messages("s", include_streaming=True) == before


def test_truncate_fork_and_remove_last_turn(store: SQLiteStore) -> None:
    store.create_session("s", persona="p")
    for i in range(3):
        turn(store, "s", f"q{i}", f"a{i}")
    fork = store.fork_session("s", "f", at=3)
    assert fork.persona == "p" and fork.parent_id is not None and fork.fork_at == 3
    assert [m.content for m in store.messages("f")] == ["q0", "a0", "q1"]
    assert [m.content for m in store.messages("s")][-1] == "a2"  # the source is untouched
    with pytest.raises(StoreError):
        store.fork_session("s", "g", at=99)
    whole = store.fork_session("s")
    assert whole.name == "s-fork" and whole.message_count == 6
    removed = store.remove_last_turn("s")
    assert [m.content for m in removed] == ["q2", "a2"]
    assert store.truncate("s", 1) == 3
    assert [m.content for m in store.messages("s")] == ["q0"]
    assert store.truncate("s", 5) == 0
    with pytest.raises(StoreError):
        store.truncate("s", -1)


def test_session_ref(store: SQLiteStore) -> None:
    ref = store.session("lib", persona="be brief")
    assert isinstance(ref, SessionRef) and ref.persona == "be brief"
    ref.add_messages([Message(Role.USER, "a"), Message(Role.ASSISTANT, "b")])
    assert [m.content for m in ref.messages()] == ["a", "b"]
    assert all(m.tokens and m.tokens > 0 for m in ref.messages())
    assert ref.truncate(1) == 1
    assert store.session("lib").persona == "be brief"  # existing session: not recreated


def test_session_ref_takes_openai_style_dicts(store: SQLiteStore) -> None:
    ref = store.session("sdk")
    call = {"id": "call_1", "type": "function", "function": {"name": "clock", "arguments": "{}"}}
    tz = {"name": "clock", "arguments": {"tz": "東京"}}  # arguments as a dict: written as JSON
    added = ref.add_messages(
        [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "What time is it?"},
            {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None, "annotations": []},
            {"role": "tool", "tool_call_id": "call_1", "name": "clock", "content": "12:00"},
            Message(Role.ASSISTANT, "Noon."),
            {"role": "user", "content": [{"type": "text", "text": "And"}, {"type": "input_text", "text": "now?"}]},
            {"role": "assistant", "content": "", "tool_calls": [{**call, "id": "c2", "function": tz}]},
        ]
    )
    assert [(m.role, m.content) for m in added] == [
        (Role.SYSTEM, "be brief"),
        (Role.USER, "What time is it?"),
        (Role.ASSISTANT, ""),
        (Role.TOOL, "12:00"),
        (Role.ASSISTANT, "Noon."),
        (Role.USER, "And\nnow?"),
        (Role.ASSISTANT, ""),
    ]
    stored = ref.messages()
    assert stored[2].tool_calls == (call,) and stored[3].tool_call_id == "call_1"
    assert stored[6].tool_calls and stored[6].tool_calls[0]["function"]["arguments"] == '{"tz": "東京"}'
    assert [m.to_wire() for m in stored[:4]] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "12:00", "tool_call_id": "call_1"},
    ]


@pytest.mark.parametrize(
    ("item", "error"),
    [
        ({"role": "bot", "content": "hi"}, r"\[1\]: unknown role 'bot' \(one of system, user, assistant, tool\)"),
        ({"content": "hi"}, r"messages\[1\]: unknown role None"),
        ({"role": "user", "content": 42}, r"\[1\]: content must be a string or a list of text parts, not int"),
        ({"role": "user"}, r"messages\[1\]: content is missing"),
        ({"role": "user", "content": [{"type": "image_url"}]}, r"\[1\]: content\[0\] is not a text part \('image_url"),
        ({"role": "tool", "content": "12:00"}, r"messages\[1\]: a tool message needs its tool_call_id"),
        ({"role": "user", "content": "hi", "tool_call_id": "c"}, r"\[1\]: only a tool message has a tool_call_id"),
        ({"role": "user", "content": "", "tool_calls": [{}]}, r"\[1\]: only an assistant message has tool_calls"),
        ({"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}, r"\[1\]\.tool_calls\[0\]: the function"),
        ({"role": "assistant", "content": None, "tool_calls": "call"}, r"messages\[1\]: tool_calls must be a list"),
        ({"role": "assistant", "content": None}, r"messages\[1\]: content is missing"),
        ({"role": "user", "content": "hi", "name": "ann"}, r"messages\[1\]: 'name' is not kept by memchat"),
        ({"role": "assistant", "content": "no", "refusal": "I can't"}, r"messages\[1\]: 'refusal' is not kept"),
        ("hello", r"messages\[1\]: a message is a Message or a dict, not str"),
    ],
)  # fmt: skip
def test_session_ref_refuses_a_dict_it_cannot_take_and_stores_nothing(
    store: SQLiteStore, item: object, error: str
) -> None:
    ref = store.session("sdk")
    with pytest.raises(StoreError, match=error):
        ref.add_messages([{"role": "user", "content": "kept?"}, item])  # type: ignore[list-item]
    assert ref.messages() == []
    with pytest.raises(StoreError, match="a list of messages or dicts, not one"):
        ref.add_messages({"role": "user", "content": "hi"})  # type: ignore[arg-type]


def _declared_memory_default(store: SQLiteStore) -> str:
    if store.path.startswith("postgresql"):
        rows = store._read(
            "SELECT column_default FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'sessions' AND column_name = 'memory'"
        )
        return str(rows[0][0]).split("::")[0]
    return next(str(r[4]) for r in store._read("PRAGMA table_info(sessions)") if r[1] == "memory")


def test_the_default_memory_strategy_is_auto_everywhere(store: SQLiteStore) -> None:
    assert SessionInfo(0, "x").memory == "auto"
    assert store.create_session("new").memory == "auto"
    assert store.import_session(SessionInfo(0, "imported"), [Message(Role.USER, "hi")]).memory == "auto"
    assert store.session("lib").info.memory == "auto"
    assert _declared_memory_default(store) == "'auto'"  # the schema says the same on every backend
    # an explicit choice is kept, and a fork inherits it
    chosen = store.create_session("chosen", memory="full")
    assert chosen.memory == "full" and store.fork_session("chosen").memory == "full"
    assert store.import_session(SessionInfo(0, "imp-full", memory="full"), []).memory == "full"


def test_deleting_a_session_deletes_its_messages(store: SQLiteStore) -> None:
    turn(store, store.create_session("s").name, "q", "a")
    store.delete_session("s")
    assert store._read("SELECT COUNT(*) FROM messages") == [(0,)]


def test_migrations_from_a_blank_database(tmp_path: Path) -> None:
    path = tmp_path / "blank.db"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    applied = [r[0] for r in db.execute("SELECT name FROM _memchat_migrations ORDER BY name")]
    assert applied == [name for name, _ in MIGRATIONS]
    cols = {r[1] for r in db.execute("PRAGMA table_info(messages)")}
    assert {"session_id", "seq", "role", "content", "status", "tokens", "usage", "tool_calls"} <= cols
    fks = {(r[2], r[3]) for r in db.execute("PRAGMA foreign_key_list(messages)")}
    assert ("sessions", "session_id") in fks
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    # opening again applies nothing
    again = SQLiteStore(path)
    assert again.migrate() == []
    again.close()


def test_a_reply_cut_by_kill_9_is_found_interrupted(tmp_path: Path) -> None:
    """The writer dies mid-reply: the next open marks the row interrupted, text kept."""
    path = tmp_path / "crash.db"
    script = textwrap.dedent(
        f"""
        import os, signal
        from memchat.domain import Message, Role
        from memchat.stores.sqlite import SQLiteStore
        s = SQLiteStore({str(path)!r})
        s.create_session("s")
        h = s.begin_turn("s", Message(Role.USER, "tell me a story"))
        s.checkpoint_turn(h, "Once upon a")
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    s = SQLiteStore(path)
    msgs = s.messages("s")
    assert [(m.role, m.content, m.status) for m in msgs] == [
        (Role.USER, "tell me a story", Status.COMPLETE),
        (Role.ASSISTANT, "Once upon a", Status.INTERRUPTED),
    ]
    assert msgs[1].tokens and msgs[1].tokens > 0
    s.close()


def test_a_live_writers_streaming_row_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    writer = SQLiteStore(path)
    writer.create_session("s")
    writer.begin_turn("s", Message(Role.USER, "q"))
    reader = SQLiteStore(path)  # same process: the writer is alive
    assert reader.messages("s", include_streaming=True)[-1].status is Status.STREAMING
    reader.close()
    writer.close()


def test_threads_share_one_store(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    s = SQLiteStore(tmp_path / "t.db")
    names = [f"s{k}" for k in range(4)]
    for name in names:
        s.create_session(name)

    def chat(name: str) -> None:
        for i in range(10):
            turn(s, name, f"q{i}", f"a{i}")

    with ThreadPoolExecutor(4) as pool:  # turns in different sessions, side by side
        list(pool.map(chat, names))
    for name in names:
        msgs = s.messages(name)
        assert [m.content for m in msgs] == [x for i in range(10) for x in (f"q{i}", f"a{i}")]
    # one session: a second turn while a reply streams is refused, and writes nothing
    first = s.begin_turn("s0", Message(Role.USER, "slow"))
    with pytest.raises(TurnInProgress, match="still being generated"):
        s.begin_turn("s0", Message(Role.USER, "impatient"))
    s.finish_turn(first, "done")
    assert [m.content for m in s.messages("s0")][-2:] == ["slow", "done"]
    s.close()


def test_sequence_numbers_are_never_reused(store: SQLiteStore) -> None:
    store.create_session("s")
    for i in range(3):
        turn(store, "s", f"q{i}", f"a{i}")
    highest = store.messages("s")[-1].seq or 0
    store.truncate("s", 1)
    turn(store, "s", "again", "ok")
    assert [m.seq for m in store.messages("s")][1] > highest
    assert store.get_session("s").message_count == 3


def test_message_count_follows_every_change(store: SQLiteStore) -> None:
    store.create_session("s")

    def check() -> None:
        assert store.get_session("s").message_count == len(store.messages("s"))

    for i in range(3):
        turn(store, "s", f"q{i}", f"a{i}")
        check()
    handle = store.begin_turn("s", Message(Role.USER, "streaming now"))
    check()  # the user message counts, the streaming reply does not yet
    store.finish_turn(handle, "done")
    check()
    store.abort_turn(store.begin_turn("s", Message(Role.USER, "doomed")))
    check()
    store.remove_last_turn("s")
    check()
    store.truncate("s", 2)
    check()
    assert store.fork_session("s", "f").message_count == 2
