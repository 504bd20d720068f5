"""The search indexes follow the messages after the turn (issue 16): a turn's transactions only
queue what the indexes need (``search_backlog``, m015); the queue is applied when the turns leave
room (``QuietWorker``) and by any search first. Whatever happened to the messages, once applied
the indexes hold exactly the messages (FTS5's own check against its content), and a search never
misses a settled message."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memchat import Agent, open_store
from memchat.domain import Message, Role
from memchat.memory.quiet import QuietWorker
from memchat.stores.migrations import MIGRATIONS
from memchat.stores.sqlite import SQLiteStore
from memchat.testing import ScriptedProvider


def backlog(store: SQLiteStore) -> int:
    return int(store._read("SELECT COUNT(*) FROM search_backlog")[0][0])


def indexes_match(path: Path) -> bool:
    """FTS5's check of both indexes against what they index (rank 1: the content too)."""
    raw = sqlite3.connect(path)
    try:
        for table in ("messages_fts", "messages_words"):
            raw.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
        return True
    except sqlite3.DatabaseError:
        return False
    finally:
        raw.close()


def test_a_turn_queues_the_index_and_a_search_applies_it_first(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    store.create_session("s")
    turn = store.begin_turn("s", Message(Role.USER, "where is the kayak?"))
    store.checkpoint_turn(turn, "In the")
    store.finish_turn(turn, "In the boathouse, next to the canoe.")
    assert backlog(store) > 0 and not indexes_match(tmp_path / "db")  # nothing indexed in the turn
    assert [h.message.content for h in store.search(["canoe"], session="s")] == ["In the boathouse, next to the canoe."]
    assert backlog(store) == 0 and indexes_match(tmp_path / "db")
    store.append_messages("s", [Message(Role.USER, "and the paddles?")])
    assert [h.message.content for h in store.search_words(["paddles"], session="s")] == ["and the paddles?"]
    store.close()


def test_the_backlog_is_applied_in_steps(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    store.create_session("s")
    store.append_messages("s", [Message(Role.USER, f"message {k} about llamas") for k in range(250)])
    assert store.settle_search(100) == 100 and backlog(store) == 150
    assert store.settle_search() == 150 and backlog(store) == 0
    assert store.settle_search() == 0
    assert indexes_match(tmp_path / "db")
    store.close()


EDITS = st.lists(
    st.tuples(st.sampled_from(["append", "turn", "abort", "edit", "delete", "truncate", "settle"]), st.integers(0, 50)),
    min_size=1,
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(edits=EDITS)
def test_whatever_happens_to_the_messages_the_indexes_end_exact(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, int]]
) -> None:
    path = tmp_path_factory.mktemp("backlog") / "db"
    store = SQLiteStore(path)
    store.create_session("s")
    words = ["kayak", "canoe", "长城", "paddle", "boathouse"]
    for op, k in edits:
        settled = store.messages("s")
        if op == "append":
            store.append_messages("s", [Message(Role.USER, f"{words[k % 5]} {k}"), Message(Role.ASSISTANT, "ok")])
        elif op in ("turn", "abort"):
            turn = store.begin_turn("s", Message(Role.USER, f"question {k} {words[k % 5]}"))
            store.checkpoint_turn(turn, f"partial {k}")
            if op == "turn":
                store.finish_turn(turn, f"answer {words[(k + 1) % 5]} {k}")
            else:
                store.abort_turn(turn)
        elif op == "edit" and settled:
            with store._write() as db:
                db.execute(
                    "UPDATE messages SET content = ? WHERE id = ?", (f"edited {k}", settled[k % len(settled)].id)
                )
        elif op == "delete" and settled:
            store.remove_last_turn("s")
        elif op == "truncate":
            store.truncate("s", k % 7)
        elif op == "settle":
            store.settle_search(k % 4 + 1)
    store.settle_search()
    assert indexes_match(path)
    for w in words[:2]:  # every settled message holding the word, and nothing else
        expected = sorted(m.id for m in store.messages("s") if w in m.content)
        assert sorted(h.message.id for h in store.search([w], session="s", limit=1000)) == expected
    store.close()


def test_a_database_from_before_the_backlog_keeps_its_index(tmp_path: Path) -> None:
    path = tmp_path / "m014.db"
    store = open_store(path, migrate=None)
    with store._write() as db:
        db.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        for name, fn in MIGRATIONS:
            if name != "m015_search_backlog":
                fn(db)
                db.execute("INSERT INTO _memchat_migrations VALUES (?, 'then')", (name,))
    store.recover()
    store.create_session("s")
    store.append_messages("s", [Message(Role.USER, "the old kayak"), Message(Role.ASSISTANT, "noted")])
    streaming = store.begin_turn("s", Message(Role.USER, "a question while the upgrade comes"))
    store.checkpoint_turn(streaming, "half an answer")
    store.close()
    with open_store(path) as new:  # m015 applied: the old index stays, the reply ends through the backlog
        assert isinstance(new, SQLiteStore) and new.pending_migrations() == []
        new.finish_turn(streaming, "a whole answer about canoes")
        assert [h.message.content for h in new.search(["kayak"], session="s")] == ["the old kayak"]
        assert [h.message.content for h in new.search(["canoes"], session="s")] == ["a whole answer about canoes"]
    assert indexes_match(path)


def test_the_agent_indexes_when_the_turns_leave_room(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("memchat.memory.quiet.QUIET", 0.2)
    store = SQLiteStore(tmp_path / "db")
    agent = Agent(store=store, provider=ScriptedProvider(default="The canoe is blue."), memory="full")
    agent.ask("s", "what colour is the canoe?")
    agent.ask("s", "and the kayak?")
    deadline = time.monotonic() + 10
    while backlog(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backlog(store) == 0 and indexes_match(tmp_path / "db")
    agent.close()


def test_a_quiet_worker_waits_for_a_pause_runs_on_bursts_and_stops() -> None:
    runs: list[float] = []
    left = [3]

    def step() -> bool:
        runs.append(time.monotonic())
        left[0] -= 1
        return left[0] > 0

    worker = QuietWorker(step, name="test-quiet", quiet=0.3, burst=5)
    start = time.monotonic()
    for _ in range(4):  # turns in quick succession: no pause, fewer than a burst
        worker.notice()
        time.sleep(0.05)
    assert runs == []
    time.sleep(0.6)
    assert len(runs) == 3 and runs[0] - start >= 0.45  # after the pause, every step until none is left
    left[0] = 100
    runs.clear()
    for _ in range(8):  # a burst without a pause: one step per turn once it is reached
        worker.notice()
        time.sleep(0.02)
    time.sleep(0.05)
    assert 1 <= len(runs) <= 5
    done = threading.Event()
    threading.Thread(target=lambda: (worker.close(), done.set())).start()
    assert done.wait(5)
    count = len(runs)
    worker.notice()
    time.sleep(0.5)
    assert len(runs) == count  # closed: nothing more runs


def test_an_import_or_a_fork_is_indexed_by_itself(tmp_path: Path) -> None:
    """A bulk write's indexing is its own, not the next turn's (the first search after an import of
    20,000 messages took 0.6 s)."""
    from memchat.domain import SessionInfo

    store = SQLiteStore(tmp_path / "db")
    made = store.import_session(
        SessionInfo(0, "imported"),
        [Message(Role.USER if k % 2 == 0 else Role.ASSISTANT, f"m{k} otter") for k in range(40)],
    )
    assert backlog(store) == 0 and indexes_match(tmp_path / "db")
    store.fork_session(made.name, "copy", at=10)
    assert backlog(store) == 0 and indexes_match(tmp_path / "db")
    assert len(store.search(["otter"], session="copy", limit=100)) == 10
    store.close()


def test_a_search_that_cannot_find_the_last_turn_leaves_it_for_later(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db")
    store.create_session("a")
    store.append_messages("a", [Message(Role.USER, "the otter sleeps"), Message(Role.ASSISTANT, "otters do")])
    store.settle_search()
    store.create_session("b")
    turn = store.begin_turn("b", Message(Role.USER, "tell me about otters"))
    store.finish_turn(turn, "otters hold hands")
    left = backlog(store)
    assert left > 0
    # the other sessions, from b: its turn cannot be found there, so it is left for later
    found = store.search_words(["otter"], session=None, exclude_session="b")
    assert {h.message.content for h in found} == {"the otter sleeps", "otters do"} and backlog(store) == left
    store.append_messages("a", [Message(Role.USER, "one more otter")])  # another session's: applied first
    found = store.search_words(["otter"], session=None, exclude_session="b")
    assert "one more otter" in {h.message.content for h in found} and backlog(store) == 0
    turn = store.begin_turn("b", Message(Role.USER, "otters again"))
    store.finish_turn(turn, "yes, otters")
    left = backlog(store)
    # b's older messages only (before its last turn): still nothing to apply
    assert store.search(["otter"], session="b", before_seq=1) == [] and backlog(store) == left
    # b searched whole: applied first, its turn found
    assert {h.message.content for h in store.search(["otter"], session="b")} == {
        "tell me about otters",
        "otters hold hands",
        "otters again",
        "yes, otters",
    }
    assert backlog(store) == 0 and indexes_match(tmp_path / "db")
    store.close()
