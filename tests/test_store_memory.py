"""The store's memory records (migration m002): change counters, paging, summaries, pins,
full-text search and token calibration — and m002 applied to a database made by m001."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from memchat import open_store
from memchat.domain import Message, Role, Status, Summary
from memchat.errors import StoreError
from memchat.stores.base import TurnHandle
from memchat.stores.dialect import IntegrityViolation
from memchat.stores.migrations import MIGRATIONS
from memchat.stores.sqlite import SQLiteStore


def turn(user: str, reply: str) -> list[Message]:
    return [Message(Role.USER, user), Message(Role.ASSISTANT, reply)]


def seeded(store: SQLiteStore, name: str = "s", turns: int = 3) -> list[Message]:
    store.create_session(name)
    return store.append_messages(name, [m for k in range(turns) for m in turn(f"q{k}", f"a{k}")])


# -- change counters -----------------------------------------------------------------------------


def moves(store: SQLiteStore, action: Callable[[], object], name: str = "s") -> tuple[bool, bool]:
    """(version moved, rewrites moved) by ``action``."""
    v0, r0 = store.session_state(name)
    action()
    v1, r1 = store.session_state(name)
    assert v1 >= v0 and r1 >= r0
    return v1 != v0, r1 != r0


def test_an_append_at_the_end_moves_only_the_version(store: SQLiteStore) -> None:
    seeded(store)
    assert moves(store, lambda: store.append_messages("s", turn("more", "ok"))) == (True, False)
    handle = store.begin_turn("s", Message(Role.USER, "stream"))
    assert moves(store, lambda: store.checkpoint_turn(handle, "part")) == (True, False)
    assert moves(store, lambda: store.finish_turn(handle, "partly done")) == (True, False)
    handle = store.begin_turn("s", Message(Role.USER, "cut"))
    assert moves(store, lambda: store.finish_turn(handle, "half", status=Status.INTERRUPTED)) == (True, False)


def test_summaries_and_pins_move_only_the_version(store: SQLiteStore) -> None:
    msgs = seeded(store)
    assert moves(store, lambda: store.add_summary("s", Summary(1, 2, "sum", 1))) == (True, False)
    assert moves(store, lambda: store.forget_summaries("s")) == (True, False)
    assert moves(store, lambda: store.pin("s", msgs[0].id or 0)) == (True, False)
    assert moves(store, lambda: store.unpin("s", msgs[0].id or 0)) == (True, False)


def test_anything_but_an_append_moves_rewrites(store: SQLiteStore) -> None:
    msgs = seeded(store, turns=6)
    assert moves(store, lambda: store.remove_last_turn("s")) == (True, True)
    assert moves(store, lambda: store.truncate("s", 6)) == (True, True)
    handle = store.begin_turn("s", Message(Role.USER, "fails"))
    assert moves(store, lambda: store.abort_turn(handle)) == (True, True)

    def edit() -> None:
        with store._write() as db:
            db.execute("UPDATE messages SET content = 'changed' WHERE id = ?", (msgs[0].id,))

    assert moves(store, edit) == (True, True)
    # a retry sets the old reply aside (another version of that point) as it begins
    last = store.messages("s")[-1]
    holder: list[TurnHandle] = []
    assert moves(store, lambda: holder.append(store.begin_turn("s", None, replace=last.id))) == (True, True)
    store.finish_turn(holder[0], "new a2")
    assert moves(store, lambda: store.choose_version("s", last.id or 0)) == (True, True)  # shown again


def test_a_reply_finished_after_newer_messages_moves_rewrites(store: SQLiteStore) -> None:
    seeded(store)
    late = store.begin_turn("s", Message(Role.USER, "slow question"))
    assert moves(store, lambda: store.append_messages("s", turn("meanwhile", "ok"))) == (True, False)
    assert moves(store, lambda: store.finish_turn(late, "slow answer")) == (True, True)


def test_recovering_a_dead_writers_reply_moves_rewrites_only_when_newer_rows_exist(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    store = open_store(path)
    seeded(store)
    for newer in (False, True):
        handle = store.begin_turn("s", Message(Role.USER, "crash"))
        store.checkpoint_turn(handle, "half a")
        if newer:
            store.append_messages("s", turn("later", "ok"))
        with store._write() as db:  # as if its host had died long ago
            db.execute(
                "UPDATE messages SET writer = 'gone-host:1', heartbeat = '2000-01-01T00:00:00.000000Z' WHERE id = ?",
                (handle.assistant_id,),
            )
        before = store.session_state("s")
        again = open_store(path)
        assert again.recover() == 0  # the one opening has recovered it already
        after = again.session_state("s")
        again.close()
        assert after[0] > before[0] and (after[1] > before[1]) == newer
    store.close()


def test_counters_are_per_session(store: SQLiteStore) -> None:
    seeded(store, "a")
    seeded(store, "b")
    assert moves(store, lambda: store.remove_last_turn("a"), name="b") == (False, False)
    assert store.session_state(10_000) == (0, 0)


# -- paging ---------------------------------------------------------------------------------


def test_messages_before_pages_back_from_the_newest(store: SQLiteStore) -> None:
    msgs = seeded(store, turns=5)  # seq 1..10
    store.begin_turn("s", Message(Role.USER, "q5"))  # seq 11 user, 12 streaming
    seqs = lambda page: [m.seq for m in page]  # noqa: E731
    assert seqs(store.messages_before("s", None, 3)) == [9, 10, 11]
    assert seqs(store.messages_before("s", 9, 3)) == [6, 7, 8]
    assert seqs(store.messages_before("s", 3, 10)) == [1, 2]
    assert store.messages_before("s", 1, 10) == []
    assert store.messages_before("s", None, 100)[:10] == msgs
    # paging back until a short page gives the whole session, oldest first
    pages, before = [], None
    while True:
        page = store.messages_before("s", before, 4)
        pages[:0] = page
        if len(page) < 4:
            break
        before = page[0].seq
    assert pages == store.messages("s")


def test_messages_between_is_inclusive_and_skips_streaming(store: SQLiteStore) -> None:
    seeded(store, turns=3)
    store.begin_turn("s", Message(Role.USER, "q3"))
    assert [m.seq for m in store.messages_between("s", 2, 4)] == [2, 3, 4]
    assert [m.seq for m in store.messages_between("s", 5, 99)] == [5, 6, 7]
    assert store.messages_between("s", 4, 3) == []


# -- summaries --------------------------------------------------------------------------------


def test_summaries_crud_and_order(store: SQLiteStore) -> None:
    seeded(store, turns=6)
    seeded(store, "other")
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    b = store.add_summary("s", Summary(1, 8, "up to 8", 3, "exact:test", "m1", created=created))
    a = store.add_summary("s", Summary(1, 4, "up to 4", 3))
    c = store.add_summary("s", Summary(1, 8, "up to 8, again", 4))
    assert b.id is not None and b.created == created and (b.token_method, b.model) == ("exact:test", "m1")
    assert a.created is not None and a.token_method == "estimate"
    assert [x.content for x in store.summaries("s")] == ["up to 4", "up to 8", "up to 8, again"]
    assert store.latest_summary("s") == c
    assert store.latest_summary("other") is None and store.summaries("other") == []
    # originals are never touched by summaries
    before = store.messages("s")
    assert store.forget_summaries("s") == 3
    assert store.summaries("s") == [] and store.latest_summary("s") is None
    assert store.forget_summaries("s") == 0
    assert store.messages("s") == before
    with pytest.raises(IntegrityViolation):
        store.add_summary("s", Summary(5, 4, "backwards", 1))


def test_a_summary_goes_when_a_message_it_covers_is_deleted_or_changed(store: SQLiteStore) -> None:
    """Summaries stand for their messages as they were (m003): removed text never comes back
    through a summary, and kept messages are not hidden behind a summary of deleted ones."""
    msgs = seeded(store, turns=6)  # seq 1..12
    store.add_summary("s", Summary(1, 4, "first two turns", 3))
    store.add_summary("s", Summary(1, 8, "first four turns", 3))
    store.remove_last_turn("s")  # 11-12: covered by neither
    assert [x.last_seq for x in store.summaries("s")] == [4, 8]
    handle = store.begin_turn("s", Message(Role.USER, "q"))
    store.abort_turn(handle)  # a failed turn: covered by neither
    assert [x.last_seq for x in store.summaries("s")] == [4, 8]
    store.truncate("s", 6)  # deletes 7..10: the summary of 1-8 is stale
    assert [x.last_seq for x in store.summaries("s")] == [4]
    with store._write() as db:
        db.execute("UPDATE messages SET content = 'q0 edited' WHERE id = ?", (msgs[0].id,))
    assert store.summaries("s") == []
    assert [m.seq for m in store.messages("s")] == [1, 2, 3, 4, 5, 6]


def test_deleting_a_session_deletes_its_summaries_and_pins(store: SQLiteStore) -> None:
    msgs = seeded(store)
    store.add_summary("s", Summary(1, 2, "sum", 1))
    store.pin("s", msgs[0].id or 0)
    store.delete_session("s")
    assert store._read("SELECT COUNT(*) FROM summaries")[0][0] == 0
    assert store._read("SELECT COUNT(*) FROM pins")[0][0] == 0


# -- pins ----------------------------------------------------------------------------------------


def test_pin_unpin_and_order(store: SQLiteStore) -> None:
    msgs = seeded(store, turns=3)
    store.pin("s", msgs[4].id or 0)
    store.pin("s", msgs[1].id or 0)
    store.pin("s", msgs[1].id or 0)  # twice is once
    assert [p.seq for p in store.pins("s")] == [2, 5]
    assert store.pins("s")[0] == msgs[1]
    assert store.unpin("s", msgs[1].id or 0) is True
    assert store.unpin("s", msgs[1].id or 0) is False
    assert [p.seq for p in store.pins("s")] == [5]


def test_a_pin_goes_with_its_message(store: SQLiteStore) -> None:
    msgs = seeded(store, turns=3)
    store.pin("s", msgs[-1].id or 0)
    store.pin("s", msgs[0].id or 0)
    store.remove_last_turn("s")
    assert [p.seq for p in store.pins("s")] == [1]
    store.truncate("s", 0)
    assert store.pins("s") == []


def test_pinning_another_sessions_message_is_refused(store: SQLiteStore) -> None:
    seeded(store, "a")
    theirs = seeded(store, "b")
    with pytest.raises(StoreError):
        store.pin("a", theirs[0].id or 0)
    with pytest.raises(StoreError):
        store.pin("a", 999_999)
    assert store.unpin("a", theirs[0].id or 0) is False
    assert store.pins("a") == []


# -- search ---------------------------------------------------------------------------------------


def found(store: SQLiteStore, *terms: str, **scope: object) -> list[str]:
    return [h.message.content for h in store.search(list(terms), **scope)]  # type: ignore[arg-type]


def test_search_english_and_chinese_with_the_trigram_index(store: SQLiteStore) -> None:
    store.create_session("s")
    store.append_messages(
        "s",
        [
            Message(Role.USER, "My sister lives in Paris."),
            Message(Role.ASSISTANT, "Noted: Paris."),
            Message(Role.USER, "我最喜欢的水果是葡萄酒和火龙果。"),
            Message(Role.USER, "nothing relevant"),
        ],
    )
    assert found(store, "paris", session="s") == ["Noted: Paris.", "My sister lives in Paris."]  # newest first
    assert found(store, "SISTER", session="s") == ["My sister lives in Paris."]  # case-insensitive
    assert found(store, "火龙果", session="s") == ["我最喜欢的水果是葡萄酒和火龙果。"]
    assert found(store, "葡萄酒", "zebra", session="s") == ["我最喜欢的水果是葡萄酒和火龙果。"]
    assert found(store, "zebra", session="s") == []
    assert store.search([], session="s") == [] and store.search([""], session="s") == []
    hit = store.search(["sister"], session="s")[0]
    assert hit.session == "s" and hit.message.role is Role.USER and hit.message.seq == 1


def test_two_character_terms_use_the_like_fallback(store: SQLiteStore) -> None:
    store.create_session("s")
    store.append_messages(
        "s", [Message(Role.USER, "我喜欢葡萄。"), Message(Role.USER, "Go to the UK"), Message(Role.USER, "其他")]
    )
    assert found(store, "葡萄", session="s") == ["我喜欢葡萄。"]
    assert found(store, "uk", session="s") == ["Go to the UK"]
    assert found(store, "葡萄", "其他", session="s") == ["其他", "我喜欢葡萄。"]
    assert found(store, "苹果", session="s") == []


def test_two_character_words_are_found_through_the_index_however_old(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memchat.stores import sqlite

    monkeypatch.setattr(sqlite, "SHORT_TERM_SPAN", 10)  # the LIKE scan sees only the newest 10
    store.create_session("s")
    early = ["我的牙医预约在周四下午。", "这是牙医", "Room 42b is ours"]
    store.append_messages("s", [Message(Role.USER, text) for text in early])
    store.append_messages("s", [Message(Role.USER, f"第{k}轮：今天天气不错。") for k in range(30)])
    # 牙医 inside a message: one of the indexed trigrams 牙医预; at the very end of one, only
    # the scan of the newest messages finds it (there is no trigram starting with it)
    old_hits = found(store, "牙医", session="s")
    assert "我的牙医预约在周四下午。" in old_hits
    if type(store).__name__ == "SQLiteStore":  # PostgreSQL scans for two-character terms: it finds both
        assert old_hits == ["我的牙医预约在周四下午。"]
    assert found(store, "42", session="s") == ["Room 42b is ours"]
    store.append_messages("s", [Message(Role.USER, "我讨厌看牙医")])
    assert found(store, "牙医", session="s")[0] == "我讨厌看牙医"
    assert found(store, "医生", session="s") == []


def test_search_scope_one_session_before_a_seq_or_all_sessions(store: SQLiteStore) -> None:
    store.create_session("a")
    store.create_session("b")
    store.append_messages("a", [Message(Role.USER, f"cherry {k}") for k in range(5)])  # seq 1..5
    store.append_messages("b", [Message(Role.USER, "cherry in b"), Message(Role.USER, "樱桃")])
    assert found(store, "cherry", session="a", before_seq=3) == ["cherry 1", "cherry 0"]
    assert found(store, "cherry", session="a", before_seq=1) == []
    assert len(found(store, "cherry", session="a")) == 5
    everywhere = store.search(["cherry", "樱桃"], session=None)
    assert {h.session for h in everywhere} == {"a", "b"} and len(everywhere) == 7
    assert found(store, "cherry", session="a", limit=2) == ["cherry 4", "cherry 3"]
    b_id = store.get_session("b").id
    assert found(store, "樱桃", session=b_id) == ["樱桃"]  # by id


def test_search_never_returns_streaming_rows_and_follows_edits(store: SQLiteStore) -> None:
    store.create_session("s")
    handle = store.begin_turn("s", Message(Role.USER, "tell me about penguins"))
    store.checkpoint_turn(handle, "penguins are birds, 企鹅")
    assert found(store, "penguins", session="s") == ["tell me about penguins"]
    assert found(store, "企鹅", session="s") == []
    store.finish_turn(handle, "penguins are flightless birds")
    assert found(store, "penguins", session="s") == ["penguins are flightless birds", "tell me about penguins"]
    store.remove_last_turn("s")
    assert found(store, "penguins", session="s") == []


@pytest.mark.parametrize(
    "term, expected",
    [
        ('say "hi"', ['she said: say "hi" to him']),
        ('"', ['she said: say "hi" to him']),
        ("50%", ["a 50% discount"]),
        ("%", ["a 50% discount"]),
        ("a_b", ["the a_b key"]),
        ("_", ["the a_b key"]),
        ("it's", ["it's fine"]),
        ("\\", ["back\\slash"]),
        ("NEAR(", []),
        ("x OR y", []),
        ("*", []),
    ],
)
def test_search_terms_are_literal(store: SQLiteStore, term: str, expected: list[str]) -> None:
    store.create_session("s")
    texts = ['she said: say "hi" to him', "a 50% discount", "the a_b key", "axb", "it's fine", "back\\slash", "plain"]
    store.append_messages("s", [Message(Role.USER, t) for t in texts])
    assert found(store, term, session="s") == expected


# -- calibration ----------------------------------------------------------------------------------


def test_calibration_is_a_bounded_moving_average(tmp_path: Path) -> None:
    store = open_store(tmp_path / "m.db")
    assert store.calibration("m") is None
    assert store.record_calibration("m", 2.0) == pytest.approx(2.0)  # the first sample is taken as it is
    assert store.record_calibration("m", 1.0) == pytest.approx(1.7)  # then 0.7 old + 0.3 new
    ratios = [store.record_calibration("m", 1.0) for _ in range(30)]
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] == pytest.approx(1.0, abs=1e-3)
    assert store.record_calibration("wild", 100.0) == pytest.approx(3.0)
    assert store.record_calibration("tiny", 0.01) == pytest.approx(0.5)
    assert store.record_calibration("tiny", 0.0) == pytest.approx(0.5)
    assert store.calibration("other") is None
    store.close()
    again = open_store(tmp_path / "m.db")  # stored, per model
    assert again.calibration("m") == pytest.approx(ratios[-1]) and again.calibration("wild") == pytest.approx(3.0)
    assert again._read("SELECT samples FROM calibration WHERE model = 'm'")[0][0] == 32
    again.close()


# -- migration m002 on a database made by m001 --------------------------------------------------------


def test_m002_upgrades_an_m001_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE _memchat_migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)")
    name, m001 = MIGRATIONS[0]
    assert name == "m001_initial"
    db.execute("BEGIN")
    m001(db)
    db.execute("INSERT INTO _memchat_migrations VALUES (?, '2025-01-01T00:00:00.000000Z')", (name,))
    now = "2025-01-01T00:00:00.000000Z"
    db.execute(
        "INSERT INTO sessions (id, name, created, updated, last_seq) VALUES (1, 'old', ?, ?, 4)", (now, now)
    )  # memory: the m001 default, 'full'
    db.execute(
        "INSERT INTO sessions (id, name, memory, created, updated, last_seq) VALUES (2, 'win', 'window', ?, ?, 0)",
        (now, now),
    )
    rows = [
        (1, "user", "My cat is called Whiskers.", "complete"),
        (2, "assistant", "Hello Whiskers!", "complete"),
        (3, "user", "我住在杭州西湖旁边。", "complete"),
        (4, "assistant", "杭州很美", "interrupted"),
    ]
    for seq, role, content, status in rows:
        db.execute(
            "INSERT INTO messages (session_id, seq, role, content, status, tokens, token_method, created) "
            "VALUES (1, ?, ?, ?, ?, 5, 'estimate', ?)",
            (seq, role, content, status, now),
        )
    db.execute("COMMIT")
    db.close()

    store = open_store(path)
    applied = [r[0] for r in store._read("SELECT name FROM _memchat_migrations ORDER BY name")]
    assert applied == [n for n, _ in MIGRATIONS]
    assert store.get_session("old").memory == "auto"  # the old default became auto
    assert store.get_session("win").memory == "window"  # a deliberate choice stays
    # the full-text index covers the rows written before it existed
    assert found(store, "whiskers", session="old") == ["Hello Whiskers!", "My cat is called Whiskers."]
    assert found(store, "杭州西湖", session="old") == ["我住在杭州西湖旁边。"]
    assert found(store, "杭州", session="old") == ["杭州很美", "我住在杭州西湖旁边。"]
    # the counters exist and move from here on
    assert store.session_state("old") == (0, 0)
    store.append_messages("old", turn("more", "ok"))
    assert store.session_state("old") == (2, 0)
    store.remove_last_turn("old")
    assert store.session_state("old")[1] == 2  # one per settled row deleted
    # and the new records work
    store.pin("old", store.messages("old")[0].id or 0)
    store.add_summary("old", Summary(1, 2, "a cat called Whiskers", 6))
    assert store.latest_summary("old") is not None and len(store.pins("old")) == 1
    assert [m.seq for m in store.messages("old")] == [1, 2, 3, 4]
    assert store.append_messages("old", [Message(Role.USER, "next")])[0].seq == 7  # seqs are never reused
    store.close()
    # opening again applies nothing
    assert open_store(path).migrate() == []


def test_users_own_their_sessions_and_searches(tmp_path: Path) -> None:
    with open_store(tmp_path / "u.db") as store:
        ann_id, ann_token = store.add_user("ann")
        assert store.user_for_token(ann_token) == ann_id and store.user_for_token("guess") is None
        with pytest.raises(StoreError, match="already exists"):
            store.add_user("ann")
        ann = store.for_owner(ann_id)
        ann.create_session("diary")
        ann.append_messages("diary", [Message(Role.USER, "the vault code is 7319")])
        store.create_session("diary")  # the local user's own, same name
        assert [s.name for s in ann.list_sessions()] == ["diary"] and len(store.list_sessions()) == 1
        ann_sid = ann.get_session("diary").id
        assert store.find_session(ann_sid) is None  # not by id either
        assert store.search(["vault"], session=None) == [] and len(ann.search(["vault"], session=None)) == 1
        ann.close()  # a view: the shared connection stays open
        assert store.list_sessions()
        assert store.remove_user("ann") and store.for_owner(ann_id).list_sessions() == []
        assert store.users() == [] and not store.remove_user("ann")
