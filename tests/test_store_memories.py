"""The store's long-term memories (SQLite m009, PostgreSQL pg003) and the ranked word search of
messages (m008, pg002): the same contract on SQLite in memory, on disk, and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from memchat.domain import EndReason, Memory, MemoryKind, MemoryOrigin, Message, Role, Usage
from memchat.errors import MemoryNotFound, SessionNotFound, StoreError
from memchat.factory import open_store
from memchat.memory.terms import query_words
from memchat.stores.base import Store
from memchat.stores.sqlite import SQLiteStore


def remember(store: SQLiteStore, text: str, *, supersedes: int | None = None, **fields: object) -> Memory:
    return store.add_memory(Memory(content=text, **fields), supersedes=supersedes)  # type: ignore[arg-type]


def contents(memories: list[Memory]) -> list[str]:
    return [m.content for m in memories]


def test_satisfies_the_store_protocol(store: SQLiteStore) -> None:
    assert isinstance(store, Store)


# -- records ----------------------------------------------------------------------------------


def test_add_get_and_list_newest_first(store: SQLiteStore) -> None:
    session = store.create_session("chat")
    msgs = store.append_messages("chat", [Message(Role.USER, "I live in Munich"), Message(Role.ASSISTANT, "ok")])
    city = remember(
        store,
        "Lives in Munich",
        kind=MemoryKind.FACT,
        origin=MemoryOrigin.AUTO,
        session_id=session.id,
        source_ids=(msgs[0].id,),
        tokens=4,
    )
    dentist = remember(store, "Dentist appointment", kind=MemoryKind.EVENT, event_date=date(2026, 12, 1))
    metric = remember(store, "Always answer in metric units", kind=MemoryKind.INSTRUCTION)
    assert city.id is not None and city.active and city.created is not None and city.created.tzinfo is not None
    assert (city.kind, city.origin, city.session_id, city.session_name) == (
        MemoryKind.FACT,
        MemoryOrigin.AUTO,
        session.id,
        "chat",
    )
    assert city.source_ids == (msgs[0].id,) and city.tokens == 4
    assert city.ended is None and city.end_reason is None and city.supersedes is None and city.superseded_by is None
    assert store.get_memory(dentist.id or 0).event_date == date(2026, 12, 1)
    assert store.get_memory(city.id or 0) == city
    assert contents(store.memories()) == [metric.content, dentist.content, city.content]
    assert contents(store.memories(kinds=[MemoryKind.EVENT, MemoryKind.INSTRUCTION])) == [
        metric.content,
        dentist.content,
    ]
    assert contents(store.memories(limit=2)) == [metric.content, dentist.content]
    assert store.memories(kinds=[]) == []
    with pytest.raises(MemoryNotFound):
        store.get_memory(10_000)
    # the session's name comes from the session; once it is deleted, it is gone
    store.delete_session("chat")
    gone = store.get_memory(city.id or 0)
    assert gone.session_id is None and gone.session_name is None and gone.content == "Lives in Munich"


def test_a_given_creation_time_is_kept(store: SQLiteStore) -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    assert remember(store, "old news", created=when).created == when


def test_add_refuses_another_owners_session(store: SQLiteStore) -> None:
    bob = store.for_owner(store.add_user("bob")[0])
    theirs = bob.create_session("bob's")
    with pytest.raises(SessionNotFound):
        remember(store, "x", session_id=theirs.id)
    assert store.memories(include_ended=True) == []


def test_supersede_ends_the_old_one_in_the_same_transaction(store: SQLiteStore) -> None:
    old = remember(store, "Lives in Munich")
    new = remember(store, "Lives in Hangzhou", supersedes=old.id)
    ended = store.get_memory(old.id or 0)
    assert new.supersedes == old.id and new.active and new.superseded_by is None
    assert ended.end_reason is EndReason.SUPERSEDED and ended.superseded_by == new.id
    assert ended.ended is not None and new.created is not None and ended.ended >= ended.created  # type: ignore[operator]
    assert contents(store.memories()) == ["Lives in Hangzhou"]
    assert contents(store.memories(include_ended=True)) == ["Lives in Hangzhou", "Lives in Munich"]
    # only an active memory of the owner can be superseded; a refusal stores nothing
    version = store.memory_version()
    with pytest.raises(MemoryNotFound):
        remember(store, "Lives in Paris", supersedes=old.id)
    with pytest.raises(MemoryNotFound):
        remember(store, "Lives in Paris", supersedes=10_000)
    with pytest.raises(SessionNotFound):  # a bad session: the old one is not ended either
        remember(store, "Lives in Paris", supersedes=new.id, session_id=10_000)
    assert store.get_memory(new.id or 0).active
    assert contents(store.memories(include_ended=True)) == ["Lives in Hangzhou", "Lives in Munich"]
    assert store.memory_version() == version


def test_forget_and_restore_a_forgotten_memory(store: SQLiteStore) -> None:
    cats = remember(store, "Has two cats")
    forgotten = store.end_memory(cats.id or 0, EndReason.FORGOTTEN)
    assert not forgotten.active and forgotten.end_reason is EndReason.FORGOTTEN and forgotten.superseded_by is None
    assert store.memories() == [] and contents(store.memories(include_ended=True)) == ["Has two cats"]
    with pytest.raises(MemoryNotFound):  # only an active memory is forgotten
        store.end_memory(cats.id or 0, EndReason.FORGOTTEN)
    back = store.restore_memory(cats.id or 0)
    assert back.active and back.end_reason is None and back.ended is None
    assert contents(store.memories()) == ["Has two cats"]
    version = store.memory_version()
    assert store.restore_memory(cats.id or 0) == back  # restoring an active memory changes nothing
    assert store.memory_version() == version
    with pytest.raises(StoreError):  # superseding takes a new version
        store.end_memory(cats.id or 0, EndReason.SUPERSEDED)
    assert store.get_memory(cats.id or 0).active


def test_restore_a_superseded_version_reverts_the_active_one(store: SQLiteStore) -> None:
    a = remember(store, "Lives in Munich")
    b = remember(store, "Lives in Berlin", supersedes=a.id)
    c = remember(store, "Lives in Hangzhou", supersedes=b.id)
    restored = store.restore_memory(a.id or 0)
    assert restored.active and restored.end_reason is None and restored.superseded_by is None
    reverted = store.get_memory(c.id or 0)
    assert reverted.end_reason is EndReason.REVERTED and reverted.ended is not None
    assert reverted.superseded_by is None and reverted.supersedes == b.id  # the line's links stay
    middle = store.get_memory(b.id or 0)
    assert middle.end_reason is EndReason.SUPERSEDED and middle.superseded_by == c.id
    assert contents(store.memories()) == ["Lives in Munich"]
    # the whole line is still one history, from any version of it
    for member in (a, b, c):
        assert [m.id for m in store.memory_history(member.id or 0)] == [a.id, b.id, c.id]
    # and the reverted one can come back in turn (the restored one then ends as reverted)
    store.restore_memory(c.id or 0)
    assert contents(store.memories()) == ["Lives in Hangzhou"]
    assert store.get_memory(a.id or 0).end_reason is EndReason.REVERTED
    # an edit of the served version continues the line
    d = remember(store, "Lives in Shanghai", supersedes=c.id)
    assert [m.id for m in store.memory_history(a.id or 0)] == [a.id, b.id, c.id, d.id]
    # a forgotten head: restoring an older version brings it back, the forgotten one stays forgotten
    store.end_memory(d.id or 0, EndReason.FORGOTTEN)
    store.restore_memory(b.id or 0)
    assert contents(store.memories()) == ["Lives in Berlin"]
    assert store.get_memory(d.id or 0).end_reason is EndReason.FORGOTTEN
    assert [m for m in store.memory_history(a.id or 0) if m.active] == [store.get_memory(b.id or 0)]


def test_history_of_a_lone_memory_and_of_an_unknown_one(store: SQLiteStore) -> None:
    alone = remember(store, "Likes tea")
    other = remember(store, "Likes coffee")
    assert store.memory_history(alone.id or 0) == [alone]
    assert store.memory_history(other.id or 0) == [other]
    with pytest.raises(MemoryNotFound):
        store.memory_history(10_000)


def test_another_owner_cannot_see_or_change_them(store: SQLiteStore) -> None:
    mine = remember(store, "我住在杭州")
    old = remember(store, "Works at a bakery")
    remember(store, "Works at a bank", supersedes=old.id)
    bob_id = store.add_user("bob")[0]
    bob = store.for_owner(bob_id)
    assert bob.memories(include_ended=True) == [] and bob.search_memories(["杭州", "bank"]) == []
    for action in (
        lambda: bob.get_memory(mine.id or 0),
        lambda: bob.end_memory(mine.id or 0, EndReason.FORGOTTEN),
        lambda: bob.restore_memory(old.id or 0),
        lambda: bob.memory_history(mine.id or 0),
        lambda: bob.add_memory(Memory("Lives in Paris"), supersedes=mine.id),
    ):
        with pytest.raises(MemoryNotFound):
            action()
    assert store.get_memory(mine.id or 0).active and not store.get_memory(old.id or 0).active
    theirs = bob.add_memory(Memory("Bob's own"))
    assert contents(bob.memories()) == ["Bob's own"] and "Bob's own" not in contents(store.memories())
    with pytest.raises(MemoryNotFound):
        store.get_memory(theirs.id or 0)
    assert contents(store.for_owner(bob_id).memories()) == ["Bob's own"]
    assert [m.id for m, _ in store.search_memories(["杭州"])] == [mine.id]


# -- ranked search of memories ----------------------------------------------------------------


def test_search_memories_ranks_the_better_match_first(store: SQLiteStore) -> None:
    remember(store, "Has a dog named Rex")
    both = remember(store, "Allergic to cats and to dogs")
    remember(store, "Allergic to peanuts, badly, since childhood, and careful about what is in every meal")
    remember(store, "Prefers window seats")
    hits = store.search_memories(query_words("Is the user allergic to dogs?"))
    assert hits[0][0].id == both.id and len(hits) == 3
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert store.search_memories(["dog"])[0][0].content in {"Has a dog named Rex", "Allergic to cats and to dogs"}
    assert store.search_memories([]) == [] and store.search_memories(["zebra"]) == []


def test_search_memories_finds_chinese_and_only_active_ones(store: SQLiteStore) -> None:
    home = remember(store, "我住在杭州")
    remember(store, "我喜欢喝龙井茶")
    assert [m.id for m, _ in store.search_memories(["杭州"])] == [home.id]
    assert [m.id for m, _ in store.search_memories(query_words("杭州的天气怎么样？"))] == [home.id]
    assert [m.id for m, _ in store.search_memories(["住在杭州"])] == [home.id]  # a longer word: its bigrams
    store.end_memory(home.id or 0, EndReason.FORGOTTEN)
    assert store.search_memories(["杭州"]) == []
    moved = remember(store, "Lives in Hangzhou now")
    remember(store, "Lives in Shanghai", supersedes=moved.id)
    assert contents([m for m, _ in store.search_memories(["hangzhou", "shanghai", "lives"])]) == ["Lives in Shanghai"]


def test_search_words_are_never_read_as_query_syntax(store: SQLiteStore) -> None:
    remember(store, "Uses C++ and Rust")
    odd = ['"', "AND", "OR", "NOT", "a & b", "!c:*", "(x", "NEAR(", "*", "'", "rust:*", "||", "<->"]
    for word in odd:
        store.search_memories([word])  # no syntax error, whatever it finds
        store.search_words([word])
    assert contents([m for m, _ in store.search_memories(['"rust"'])]) == ["Uses C++ and Rust"]


def test_memory_version_moves_with_every_change(store: SQLiteStore) -> None:
    bob = store.for_owner(store.add_user("bob")[0])
    seen = [store.memory_version()]

    def moved(action: Callable[[], object]) -> None:
        bob_before = bob.memory_version()
        action()
        seen.append(store.memory_version())
        assert seen[-1] > seen[-2] and bob.memory_version() == bob_before

    a = store.add_memory(Memory("Lives in Munich"))
    seen.append(store.memory_version())
    assert seen[1] > seen[0]
    moved(lambda: remember(store, "Lives in Berlin", supersedes=a.id))
    moved(lambda: store.end_memory(store.memories()[0].id or 0, EndReason.FORGOTTEN))
    moved(lambda: store.restore_memory(a.id or 0))
    moved(lambda: store.import_memories([Memory("Imported", origin=MemoryOrigin.IMPORT)]))
    before = store.memory_version()
    store.memories(include_ended=True)
    store.search_memories(["munich"])
    store.memory_history(a.id or 0)
    assert store.memory_version() == before
    bob.add_memory(Memory("Bob's"))
    assert store.memory_version() == before


# -- import -----------------------------------------------------------------------------------


def test_import_round_trips_ended_versions_with_their_links(store: SQLiteStore, tmp_path: Path) -> None:
    a = remember(store, "Lives in Munich", origin=MemoryOrigin.AUTO)
    b = remember(store, "Lives in Berlin", supersedes=a.id)
    remember(store, "Lives in Hangzhou", supersedes=b.id)
    store.restore_memory(a.id or 0)  # one reverted, one superseded, one active
    gone = remember(store, "小名叫阿毛", kind=MemoryKind.PREFERENCE)
    store.end_memory(gone.id or 0, EndReason.FORGOTTEN)
    remember(store, "Trip to Hangzhou", kind=MemoryKind.EVENT, event_date=date(2026, 5, 1), tokens=5)
    exported = list(reversed(store.memories(include_ended=True)))  # oldest first, as an export is

    with open_store(tmp_path / "other.db") as other:
        other.add_memory(Memory("already there"))
        imported = other.import_memories(exported)
        assert len(imported) == len(exported)
        old_to_new = {m.id: n.id for m, n in zip(exported, imported, strict=True)}
        assert len(set(old_to_new.values())) == len(exported)
        for m, n in zip(exported, imported, strict=True):
            assert (n.content, n.kind, n.origin, n.event_date, n.tokens) == (
                m.content,
                m.kind,
                m.origin,
                m.event_date,
                m.tokens,
            )
            assert (n.created, n.ended, n.end_reason) == (m.created, m.ended, m.end_reason)
            assert n.supersedes == (old_to_new[m.supersedes] if m.supersedes else None)
            assert n.superseded_by == (old_to_new[m.superseded_by] if m.superseded_by else None)
        assert contents(other.memories()) == ["Trip to Hangzhou", "Lives in Munich", "already there"]
        line = other.memory_history(old_to_new[a.id] or 0)
        assert contents(line) == ["Lives in Munich", "Lives in Berlin", "Lives in Hangzhou"]
        assert [m.end_reason for m in line] == [None, EndReason.SUPERSEDED, EndReason.REVERTED]
        assert [m.id for m, _ in other.search_memories(["阿毛", "munich"])] == [old_to_new[a.id]]
        assert other.import_memories([]) == []


def test_a_bad_import_is_refused_and_changes_nothing(store: SQLiteStore) -> None:
    remember(store, "kept")
    bob = store.for_owner(store.add_user("bob")[0])
    theirs = bob.create_session("bob's")
    before, version = store.memories(include_ended=True), store.memory_version()
    ended = datetime(2026, 1, 2, tzinfo=UTC)
    bad_batches = [
        [Memory("a", id=1), Memory("b", id=2, supersedes=7)],  # a link outside the batch
        [Memory("a", id=1, superseded_by=2, ended=ended, end_reason=EndReason.SUPERSEDED)],
        [Memory("a", id=1), Memory("b", id=1)],  # the same id twice
        [Memory("a", id=1, ended=ended)],  # ended without a reason
        [Memory("a", id=1, end_reason=EndReason.FORGOTTEN)],  # a reason but not ended
        [Memory("fine", id=1), Memory("b", id=2, supersedes=1, session_id=theirs.id)],  # not the owner's session
    ]
    for batch in bad_batches:
        with pytest.raises(StoreError):
            store.import_memories(batch)
        assert store.memories(include_ended=True) == before and store.memory_version() == version
    assert bob.memories(include_ended=True) == []


# -- ranked word search of messages -----------------------------------------------------------


def turn(store: SQLiteStore, session: str, user: str, reply: str) -> None:
    handle = store.begin_turn(session, Message(Role.USER, user))
    store.finish_turn(handle, reply, usage=Usage(3, 2))


def test_search_words_ranks_more_query_words_first_and_stems(store: SQLiteStore) -> None:
    store.create_session("a")
    store.append_messages(
        "a",
        [
            Message(Role.USER, "The weather in Lisbon was lovely"),
            Message(Role.ASSISTANT, "Lisbon trams and Lisbon weather, the best time to visit Lisbon is spring"),
            Message(Role.USER, "Which restaurant gave you the recommendation?"),
            Message(Role.ASSISTANT, "Nothing to see here"),
        ],
    )
    hits = store.search_words(["lisbon", "trams", "spring"])
    assert [h.message.seq for h in hits] == [2, 1]
    assert hits[0].score > hits[1].score and hits[0].session == "a"
    stemmed = store.search_words(query_words("what was recommended?"))
    assert [h.message.content for h in stemmed] == ["Which restaurant gave you the recommendation?"]
    assert store.search_words([]) == [] and store.search_words(["zzz"]) == []


def test_search_words_finds_chinese_bigrams(store: SQLiteStore) -> None:
    store.create_session("trip")
    store.append_messages("trip", [Message(Role.USER, "我们去了长城"), Message(Role.ASSISTANT, "长城很美，故宫也好")])
    turn(store, "trip", "后来去了杭州西湖", "西湖边喝了龙井")
    assert {h.message.content for h in store.search_words(["长城"])} == {"我们去了长城", "长城很美，故宫也好"}
    assert [h.message.content for h in store.search_words(query_words("我们在哪里喝了龙井？"))][0] == "西湖边喝了龙井"


def test_search_words_scope_incognito_and_streaming(store: SQLiteStore) -> None:
    store.create_session("here")
    store.create_session("there")
    store.create_session("secret", settings={"incognito": True})
    for name in ("here", "there", "secret"):
        turn(store, name, f"kayak trip from {name}", "sounds fun")
    turn(store, "here", "another kayak story", "ok")
    handle = store.begin_turn("there", Message(Role.USER, "streaming kayak question"))
    store.checkpoint_turn(handle, "a kayak reply still streaming")

    def where(hits: list[object]) -> set[tuple[str, str]]:
        return {(h.session, h.message.content) for h in hits}  # type: ignore[attr-defined]

    everywhere = where(store.search_words(["kayak"]))
    assert everywhere == {
        ("here", "kayak trip from here"),
        ("here", "another kayak story"),
        ("there", "kayak trip from there"),
        ("there", "streaming kayak question"),  # the question is settled; the streaming reply is not
    }
    assert where(store.search_words(["kayak"], exclude_session="here")) == {
        ("there", "kayak trip from there"),
        ("there", "streaming kayak question"),
    }
    # within one session (incognito or not: it is its own), before a sequence number
    assert where(store.search_words(["kayak"], session="secret")) == {("secret", "kayak trip from secret")}
    assert where(store.search_words(["kayak"], session="here", before_seq=3)) == {("here", "kayak trip from here")}
    assert all(h.message.status.value != "streaming" for h in store.search_words(["kayak", "streaming"]))
    store.finish_turn(handle, "a kayak reply, done")
    assert ("there", "a kayak reply, done") in where(store.search_words(["kayak"]))
    # another owner's sessions are not searched
    bob = store.for_owner(store.add_user("bob")[0])
    bob.create_session("bob's")
    turn(bob, "bob's", "bob's kayak", "ok")
    assert ("bob's", "bob's kayak") not in where(store.search_words(["kayak"]))
    assert where(bob.search_words(["kayak"])) == {("bob's", "bob's kayak")}


def test_search_words_limit_and_messages_at(store: SQLiteStore) -> None:
    store.create_session("s")
    for k in range(6):
        turn(store, "s", f"question {k} about gardening", f"answer {k}")
    assert len(store.search_words(["gardening"], limit=3)) == 3
    got = store.messages_at("s", [4, 1, 4, 99])
    assert [(m.seq, m.content) for m in got] == [(1, "question 0 about gardening"), (4, "answer 1")]
    assert store.messages_at("s", []) == []
    handle = store.begin_turn("s", Message(Role.USER, "q"))
    assert [m.content for m in store.messages_at("s", [13, 14])] == ["q"]  # not the streaming reply
    store.abort_turn(handle)


def test_a_forked_or_edited_message_stays_searchable(store: SQLiteStore) -> None:
    store.create_session("s")
    turn(store, "s", "我们去了长城", "good")
    store.fork_session("s", "f")
    assert {h.session for h in store.search_words(["长城"])} == {"s", "f"}


# -- db copy ----------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memchat.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def seed_memories(store: SQLiteStore) -> tuple[list[Memory], str]:
    """A local user's memories (a line with a reverted and a superseded version, a forgotten one,
    one with its session and source message) and an account's; returns the local ones and the
    account's token."""
    session = store.create_session("trip")
    rows = store.append_messages("trip", [Message(Role.USER, "我住在杭州"), Message(Role.ASSISTANT, "好的")])
    store.create_session("notes")
    a = remember(store, "我住在杭州", session_id=session.id, source_ids=(rows[0].id,), origin=MemoryOrigin.AUTO)
    b = remember(store, "Lives in Berlin", supersedes=a.id)
    remember(store, "Lives in Paris", supersedes=b.id)
    store.restore_memory(a.id or 0)
    gone = remember(store, "Trip to Rome", kind=MemoryKind.EVENT, event_date=date(2026, 5, 1))
    store.end_memory(gone.id or 0, EndReason.FORGOTTEN)
    ann_id, token = store.add_user("ann")
    ann = store.for_owner(ann_id)
    ann.create_session("ann's")
    ann.add_memory(Memory("Ann likes jazz", kind=MemoryKind.PREFERENCE))
    return list(reversed(store.memories(include_ended=True))), token


def same(m: Memory, n: Memory) -> bool:
    keep = ("content", "kind", "origin", "event_date", "session_name", "tokens", "created", "ended", "end_reason")
    return all(getattr(m, f) == getattr(n, f) for f in keep)


def check_copy(copied: SQLiteStore, original: list[Memory], token: str) -> None:
    got = list(reversed(copied.memories(include_ended=True)))
    assert len(got) == len(original) and all(same(m, n) for m, n in zip(original, got, strict=True))
    ids = {m.id: n.id for m, n in zip(original, got, strict=True)}
    for m, n in zip(original, got, strict=True):
        assert n.supersedes == ids.get(m.supersedes) and n.superseded_by == ids.get(m.superseded_by)
    first = got[0]
    assert first.session_name == "trip" and first.session_id == copied.get_session("trip").id
    assert [copied.messages("trip")[0].id] == list(first.source_ids)
    assert contents(copied.memory_history(first.id or 0)) == ["我住在杭州", "Lives in Berlin", "Lives in Paris"]
    ann = copied.for_owner(copied.user_for_token(token) or 0)
    assert contents(ann.memories(include_ended=True)) == ["Ann likes jazz"]


def test_db_copy_carries_every_owners_memories(tmp_path: Path) -> None:
    src_path, dst_path = tmp_path / "src.db", tmp_path / "dst.db"
    with open_store(src_path) as src:
        original, token = seed_memories(src)
    done = cli("db", "copy", str(src_path), str(dst_path))
    assert done.returncode == 0, done.stderr
    assert "copied 3 session(s) and 1 user(s)" in done.stderr and "with 5 memory record(s)" in done.stderr
    with open_store(dst_path) as dst:
        check_copy(dst, original, token)
    # a database that holds memories already is not copied into
    third = tmp_path / "third.db"
    with open_store(third) as s:
        s.add_memory(Memory("mine"))
    again = cli("db", "copy", str(src_path), str(third))
    assert again.returncode == 2 and again.stderr.strip().endswith("copy into an empty database")


def test_db_copy_of_memories_to_postgresql_and_back(tmp_path: Path, pg_url: str) -> None:
    src_path, back_path = tmp_path / "src.db", tmp_path / "back.db"
    with open_store(src_path) as src:
        original, token = seed_memories(src)
    assert cli("db", "copy", str(src_path), pg_url).returncode == 0
    with open_store(pg_url) as pg:
        check_copy(pg, original, token)
    back = cli("db", "copy", pg_url, str(back_path))
    assert back.returncode == 0, back.stderr
    with open_store(back_path) as again:
        check_copy(again, original, token)


def test_postgresql_migration_indexes_the_messages_stored_before(pg_url: str) -> None:
    """pg002 fills ``search_text`` for existing Chinese messages, so their bigrams are found."""
    import psycopg

    from memchat.stores.pg_migrations import PG_MIGRATIONS

    then = "2026-01-01T00:00:00.000000Z"
    name, script = PG_MIGRATIONS[0]
    assert isinstance(script, str)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(script)
        conn.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
        conn.execute("INSERT INTO _memchat_migrations VALUES (%s, 'then')", (name,))
        sid = conn.execute(
            "INSERT INTO sessions (name, created, updated) VALUES ('old', %s, %s) RETURNING id",
            (then, then),
        ).fetchone()[0]  # type: ignore[index]
        for seq, text in enumerate(["我们去了长城", "plain english kayaking"], 1):
            conn.execute(
                "INSERT INTO messages (session_id, seq, role, content, created) VALUES (%s, %s, 'user', %s, %s)",
                (sid, seq, text, then),
            )
    with open_store(pg_url) as store:
        assert [h.message.content for h in store.search_words(["长城"])] == ["我们去了长城"]
        assert [h.message.content for h in store.search_words(["kayak"])] == ["plain english kayaking"]
        assert store.memory_version() == 0 and store.memories() == []
